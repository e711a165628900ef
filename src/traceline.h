/* traceline.h - pieces of the trace files' lines that need no Lua: milliseconds, times,
 * an observation's ids, and a whole line of scores.jsonl. The recorder (lrecorder.c) reads
 * the Lua values and puts them together with these. */
#ifndef FLUXLOOP_TRACELINE_H
#define FLUXLOOP_TRACELINE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "jsonenc.h"

/* Milliseconds as "%.6f" with trailing zeros cut ("12.5", "0.0"); null when not finite. */
void traceline_ms(buf_t *b, double ms);
void traceline_int(buf_t *b, long long v);
/* A wall time as a quoted ISO 8601 UTC string with microseconds. */
void traceline_time(buf_t *b, int64_t wall_ns);

/* An observation's first fields: {"trace_id":T,"id":"T.n","parent_id":"T.p"|null
 * (parent is a 0-based slot index, or -1). */
void traceline_obs_ids(buf_t *b, const char *tid, size_t tid_len, size_t n, int parent);

/* One grade of a trace, as scores.jsonl holds it. */
typedef struct score_line {
  const char *grader; size_t grader_len; /* its JSON text, quotes and all, when grader_json */
  int grader_json;
  int outcome;                          /* 1 pass, 0 fail, -1 the grader failed (pass: null) */
  int has_score; double score;
  const char *reason; size_t reason_len; /* NULL: null */
  const char *error; size_t error_len;   /* NULL: null */
  double ms;
} score_line;

/* {"trace_id":..,"grader":..,"pass":..,"score":..,"reason":..,"error":..,"duration_ms":..}\n */
void traceline_score(buf_t *b, const char *tid, size_t tid_len, const score_line *s);
/* The same with the trace id's JSON text given (a trace's graders share it). */
void traceline_score_tid_json(buf_t *b, const char *tid_json, size_t tid_json_len, const score_line *s);

/* One entry of a conversation's transcript with no metadata, as the Lua encoder writes the
 * table {turn_index, role, content, source, metadata = {}} (keys sorted):
 * {"content":C,"metadata":{},"role":R,"source":S,"turn_index":N} */
void traceline_turn(buf_t *b, const char *content, size_t content_len, const char *role, size_t role_len,
                    const char *source, size_t source_len, long long turn_index);

#endif
