/* kmerge.h - merging the trace files of an experiment's shards: a scan of each shard's
 * trace_summary.jsonl (checks, counts, statistics over every run) and a k-way merge of
 * one file kind of every shard into one file in trace order. */
#ifndef FLUXLOOP_KMERGE_H
#define FLUXLOOP_KMERGE_H

#include <stddef.h>
#include <stdint.h>

#include "stats.h"

#define KMERGE_FIRST_MISSING 5

typedef struct kmerge {
  int64_t planned;    /* traces in the whole plan: trace numbers 1..planned */
  int64_t shards;     /* N: trace k belongs to shard (k-1) mod N */
  uint8_t *present;   /* bit k-1 set: trace k has a line in a scanned trace_summary.jsonl */
  stats_t stats;      /* every scanned run's duration and outcome */
  char err[768];      /* what went wrong, naming the file and line */
} kmerge_t;

typedef struct kmerge_scan {
  int64_t traces, failed;
  int64_t missing;                          /* the shard's planned traces it has no line for */
  int64_t first_missing[KMERGE_FIRST_MISSING];
  int n_first_missing;
  int torn;                                 /* the file ended in a line without '\n' (not counted) */
  int64_t damaged, first_damaged;           /* lines not whole JSON (their traces count as missing) */
} kmerge_scan_t;

/* What kmerge_check found: traces of the shard's summary whose traces.jsonl line is missing or
 * damaged, or whose observations.jsonl lines are not as many as their observations array. */
typedef struct kmerge_check {
  int64_t no_trace, first_no_trace[KMERGE_FIRST_MISSING];
  int n_first_no_trace;
  int64_t short_obs, first_short_obs[KMERGE_FIRST_MISSING];
  int n_first_short_obs;
  int64_t damaged_traces, damaged_obs;        /* lines that are not whole JSON */
  int64_t first_damaged_trace, first_damaged_obs; /* their first line numbers (0: none) */
} kmerge_check_t;

typedef struct kmerge_input {
  const char *path;
  int64_t index;      /* the shard K the file belongs to */
  int64_t limit;      /* bytes to read (the size when scanned), -1: all */
} kmerge_input_t;

/* Returns 0, or -1 (m->err) when memory for the bitmap cannot be had. */
int kmerge_init(kmerge_t *m, int64_t planned, int64_t shards);
void kmerge_free(kmerge_t *m);

/* Reads shard `index`'s trace_summary.jsonl (up to limit bytes, -1: all): every line must be a
 * trace of that shard within the plan, in increasing order, with duration_ms and success.
 * Marks each in m->present and adds its run to m->stats; a line that is not whole JSON is counted as damaged and its trace
 * left out. Returns 0, or -1 with m->err set. */
int kmerge_scan(kmerge_t *m, const char *path, int64_t index, int64_t limit, kmerge_scan_t *out);

/* Checks shard `index`'s traces.jsonl and observations.jsonl (up to their limits) against the
 * traces its scan found: a trace stays in m->present only with a whole traces.jsonl line and
 * as many whole observations.jsonl lines as its observations array holds. Returns 0, or -1
 * with m->err set (a file that cannot be read). */
int kmerge_check(kmerge_t *m, const kmerge_input_t *traces, const kmerge_input_t *observations, kmerge_check_t *out);

/* Writes to out_path (created; it must not exist) the lines of the n inputs in trace order,
 * keeping only lines of traces that a scan found (a shard that died may hold lines of a
 * trace it never finished). unique: each trace has at most one line per file (traces.jsonl,
 * trace_summary.jsonl); else a trace's lines are consecutive (observations.jsonl). counts:
 * the files are trace_summary.jsonl: m->stats is counted again over the lines written, so
 * the statistics are those of the traces merged. Syncs the file before it returns. Returns the
 * number of lines written, or -1 with m->err set. */
int64_t kmerge_merge(kmerge_t *m, const char *out_path, const kmerge_input_t *in, int n, int unique, int counts);

#endif
