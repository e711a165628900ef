/* sink.h - the ordered, thread-safe writer of the trace files and the run statistics.
 * Workers hand it each finished trace's lines with the trace number k; it writes them in
 * k order (holding early arrivals in a bounded window) so files are the same whatever
 * the number of workers. */
#ifndef FLUXLOOP_SINK_H
#define FLUXLOOP_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "gradestats.h"
#include "stats.h"

/* scores.jsonl (one line per trace and grader) is written only when an experiment grades. */
enum { SINK_SUMMARY, SINK_TRACES, SINK_OBSERVATIONS, SINK_SCORES, SINK_FILES };

/* Which files sink_open_files opens: bit 1 << SINK_x each. */
#define SINK_TRACE_FILES ((1 << SINK_SUMMARY) | (1 << SINK_TRACES) | (1 << SINK_OBSERVATIONS))
#define SINK_ALL_FILES (SINK_TRACE_FILES | (1 << SINK_SCORES))

typedef struct sink sink_t;

/* How far ahead of the oldest unwritten trace a trace may be handed over before sink_put
 * waits: bounds the memory held for reordering. A single-threaded caller that must never
 * wait (the isolate parent) hands out no trace number at or past sink_done() + 1 +
 * SINK_WINDOW. */
#define SINK_WINDOW 1024

/* Opens (creating, appending) the three trace files in dir, with one reference. Returns NULL
 * with errno set and *bad_path (malloc'd, caller frees) naming the file that failed. */
sink_t *sink_open(const char *dir, char **bad_path);
/* The same for the files of mask (SINK_TRACE_FILES, SINK_ALL_FILES, 1 << SINK_SCORES ...).
 * With scores.jsonl, the sink keeps per-grader figures of the lines it writes, in trace order
 * (iterations places a trace in its input, for pass^k). Lines for a file not opened are dropped. */
sink_t *sink_open_files(const char *dir, int mask, int64_t iterations, char **bad_path);

/* References: each recorder using the sink holds one; the last release frees it. A worker
 * stuck in native code past the grace period keeps its reference, so the sink is never
 * freed under it. */
void sink_retain(sink_t *s);
void sink_release(sink_t *s);

/* Hands over trace k's lines (each a whole number of '\n'-terminated lines, possibly
 * empty). Copies them; blocks while k is too far ahead of the oldest unwritten trace.
 * Returns 0, or -1 when writing failed (see sink_error) or the sink is shutting down. */
int sink_put(sink_t *s, int64_t k, const char *const lines[SINK_FILES], const size_t lens[SINK_FILES],
             double duration_ms, int success);

/* Trace k will never come (its run was abandoned): later traces need not wait for it. */
void sink_skip(sink_t *s, int64_t k);

/* Writes every buffered line now (in order). Returns 0 or -1. */
int sink_flush(sink_t *s);

/* Stops waiting: blocked sink_put calls return -1; used when the experiment is abandoned. */
void sink_shutdown(sink_t *s);

/* Writes whatever is held (in k order, skipping gaps), fsyncs and closes the files; later
 * sink_put calls return -1. Returns 0 or -1. Safe to call twice. */
int sink_close(sink_t *s);

/* Copies the statistics so far (thread-safe). */
void sink_stats(sink_t *s, stats_summary_t *out);

/* A copy of the per-grader figures of the score lines written so far (the caller frees it
 * with gradestats_free); NULL when the sink writes no scores, *oom set when memory ran out. */
gradestats_t *sink_grades(sink_t *s, int *oom);

/* The first write error: errno value and the file's path (NULL if none; path may be NULL). */
int sink_error(sink_t *s, const char **path);

/* Traces written (or skipped) so far: the next k the files are waiting for, minus one. */
int64_t sink_done(sink_t *s);

/* For a process about to die (a crash in an agent, a second Ctrl-C): writes, with write(2)
 * only, the whole lines every open sink of this process holds in order, and returns how
 * many traces are on disk (-1 when a sink was busy and had to be left as it was).
 * Async-signal-safe in practice: it takes no lock that another thread holds. */
long long sink_emergency_flush(void);

/* Installs handlers for SIGSEGV, SIGBUS, SIGABRT, SIGFPE and SIGILL that call
 * sink_emergency_flush, print `message` (with the signal's name and the traces saved) on
 * stderr, then die of the same signal. For runs in this process (no --isolate). */
void sink_flush_on_crash(const char *message);

#endif
