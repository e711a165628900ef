/* lrecorder.h - what the three files of fluxloop.recorder share (private to them): the
 * recorder's state, lrecorder.c (open, runs, observations, figures), lrecwrite.c (write) and
 * lrecshared.c (the fields both trace lines share). */
#ifndef FLUXLOOP_LRECORDER_H
#define FLUXLOOP_LRECORDER_H

#include <lua.h>
#include <stdint.h>

#include "buf.h"
#include "lconv.h"
#include "redact.h"
#include "sink.h"

#define RECORDER_MT "fluxloop.Recorder"
#define TRACE_ID_MAX 128

enum { F_SUMMARY = SINK_SUMMARY, F_TRACES = SINK_TRACES, F_OBSERVATIONS = SINK_OBSERVATIONS,
       F_SCORES = SINK_SCORES, F_COUNT = SINK_FILES };

/* One observation of the current trace. Its JSON text lives in the arena as a head
 * (written when it starts) and a tail (written when it ends). */
typedef struct obs_slot {
  size_t head_off, head_len;
  size_t input_off, input_len;
  size_t tail_off, tail_len;
  int64_t mono_start;
  int parent; /* slot index, or -1 */
  int open;
} obs_slot;

typedef struct recorder {
  sink_t *sink;
  int pipe_fd;        /* >= 0: an isolated worker's recorder, which sends frames instead */
  int owns_sink;      /* open() made it; attach() borrows the opener's */
  buf_t lines[F_COUNT]; /* the lines of the trace being written */
  buf_t arena;        /* observation text of the current trace */
  buf_t scratch;      /* input and output JSON of the trace being written */
  obs_slot *obs;
  size_t nobs, obs_cap;
  int open_top;       /* innermost open span, or -1 */
  char trace_id[TRACE_ID_MAX];
  size_t trace_id_len;
  int64_t wall_start, mono_start, mono_end;
  int64_t next_k;     /* trace number used when a trace names none */
  int64_t turn;       /* a conversation's turn (turn()), stamped on observations; 0: none */
  int closed;
  /* Set while a method appends observation text. The encoder can raise (a __tostring
   * that fails, out of memory) past our own clean-up; the next call then cuts the
   * half-written text off at these marks, so nothing partial reaches a file. */
  int pending;
  size_t arena_mark, nobs_mark;
  /* The args_template strings last checked for newlines. The recorder's user values hold
   * them, so they stay alive and an equal address means the same string: a replay, which
   * passes the same template every run, has its 2 KB scanned once. */
  const char *template_checked[2];
  redact_t redact;    /* secret strings of the config, masked in every line (redact()) */
  /* grade_with(): rule graders applied to every trace written without scores of its own
   * (kept alive by the recorder's user value 3). */
  struct rules *rules;
} recorder;

/* self (argument 1) must be an open recorder; a half-written observation is undone. */
recorder *lrecorder_check(lua_State *L);
/* Pushes fail, "path: strerror(err)", "ECODE". */
int lrecorder_push_io_error(lua_State *L, const char *path, int err);
int lrecorder_push_sink_error(lua_State *L, recorder *r);
/* write(trace) and write_scores(seq, trace_id, scores): the methods of lrecwrite.c. */
int lrecorder_write(lua_State *L);
int lrecorder_write_scores(lua_State *L);

/* The members of the table on top of the stack, spliced into the object being written to b
 * (its fields so far, without the closing brace) as the encoder writes them: shared's with a
 * conversation's transcript written fast (lrecshared.c), any table's. 0, or -1 with the
 * encoder's message pushed. */
int lrecorder_splice_shared(lua_State *L, buf_t *b);
int lrecorder_splice_fields(lua_State *L, buf_t *b);

/* Encodes the value at idx (none/nil -> null); on failure -1 with the message pushed. */
static inline int lrecorder_put_value(lua_State *L, int idx, buf_t *b) {
  if (lua_isnoneornil(L, idx)) { buf_put(b, "null", 4); return 0; }
  return lconv_encode_json(L, idx, b, -1);
}

#endif
