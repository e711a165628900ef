/* lrecwrite.c - write() of fluxloop.recorder: puts a finished trace's lines together (the
 * summary and traces lines, its observations, its scores) and hands them to the sink, or to
 * the parent process. The rest of the module is lrecorder.c; lrecorder.h is what both share. */
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "clock.h"
#include "frame.h"
#include "lrecorder.h"
#include "lrules.h"
#include "traceline.h"

/* Appends observation i (head + tail) to b. */
static void put_obs(buf_t *b, const recorder *r, size_t i) {
  const obs_slot *s = &r->obs[i];
  buf_put(b, r->arena.data + s->head_off, s->head_len);
  buf_put(b, r->arena.data + s->tail_off, s->tail_len);
}

/* Reads trace field `key` of the table at index 2 onto the stack; returns its type. */
static int field(lua_State *L, const char *key) {
  return lua_getfield(L, 2, key);
}

/* Encodes field `key` into the scratch buffer; returns its [off, len) or -1 on failure. */
static int scratch_value(lua_State *L, recorder *r, const char *key, size_t *off, size_t *len) {
  field(L, key);
  *off = r->scratch.len;
  if (lrecorder_put_value(L, -1, &r->scratch) != 0) return -1;
  *len = r->scratch.len - *off;
  lua_pop(L, 1);
  return 0;
}

static void put_string_field(lua_State *L, buf_t *b, int idx) {
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    lconv_put_json_string(b, s, n);
  } else {
    PUT_LIT(b, "null");
  }
}

/* The fields trace_summary.jsonl and traces.jsonl share, from "{" to "success"; stack
 * slots 6 (iteration) and 7 (persona) are read by recorder_write. */
static void put_shared_fields(lua_State *L, recorder *r, buf_t *b, const char *tid, size_t tid_len,
                              size_t in_off, size_t in_len, size_t out_off, size_t out_len,
                              double ms, int success) {
  PUT_LIT(b, "{\"trace_id\":");
  lconv_put_json_string(b, tid, tid_len);
  PUT_LIT(b, ",\"input\":");
  buf_put(b, r->scratch.data + in_off, in_len);
  PUT_LIT(b, ",\"output\":");
  buf_put(b, r->scratch.data + out_off, out_len);
  PUT_LIT(b, ",\"duration_ms\":");
  traceline_ms(b, ms);
  PUT_LIT(b, ",\"iteration\":");
  traceline_int(b, (long long)lua_tointeger(L, 6));
  PUT_LIT(b, ",\"persona\":");
  put_string_field(L, b, 7);
  PUT_LIT(b, ",\"success\":");
  if (success) PUT_LIT(b, "true"); else PUT_LIT(b, "false");
}

/* Optional text field `key` of the score entry on top of the stack: NULL when absent. */
static const char *score_text(lua_State *L, const char *key, size_t *n) {
  const char *s;
  lua_getfield(L, -1, key);
  s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, n) : NULL;
  lua_pop(L, 1); /* the entry keeps the string alive */
  return s;
}

/* The output of a trace as its graders read it: a string as it is, else its JSON. */
typedef struct out_text {
  const char *p;
  size_t n;
  double ms; /* the run's duration */
} out_text;

/* The lines of scores.jsonl for trace.scores (at idx): first the C rules' (fluxloop.rules):
 * the set `rules`, graded here on the output's text and the run's duration (o), then the
 * lines `text` made already; then a list of { grader, pass = true | false | nil (the grader
 * failed), score, reason, error, duration_ms }. */
static int put_scores(lua_State *L, int idx, buf_t *b, const char *tid, size_t tid_len, const out_text *o) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  if (lua_getfield(L, idx, "rules") == LUA_TUSERDATA) {
    rules_t *rs = lrules_to(L, -1);
    if (rs != NULL && o->p != NULL) rules_grade(rs, b, tid, tid_len, o->p, o->n, o->ms);
  }
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "text") == LUA_TSTRING) {
    size_t len;
    const char *text = lua_tolstring(L, -1, &len);
    buf_put(b, text, len);
  }
  lua_pop(L, 1);
  for (lua_Integer i = 1; i <= n; i++) {
    score_line sl;
    if (lua_rawgeti(L, idx, i) != LUA_TTABLE) {
      lua_pushfstring(L, "trace.scores[%d] must be a table", (int)i);
      return -1;
    }
    sl.grader = score_text(L, "grader", &sl.grader_len);
    sl.grader_json = 0;
    if (sl.grader == NULL) {
      lua_pushfstring(L, "trace.scores[%d].grader must be a string", (int)i);
      return -1;
    }
    lua_getfield(L, -1, "pass");
    sl.outcome = lua_isboolean(L, -1) ? lua_toboolean(L, -1) : -1;
    lua_getfield(L, -2, "score");
    sl.has_score = lua_type(L, -1) == LUA_TNUMBER;
    sl.score = sl.has_score ? (double)lua_tonumber(L, -1) : 0;
    lua_getfield(L, -3, "duration_ms");
    sl.ms = lua_type(L, -1) == LUA_TNUMBER ? (double)lua_tonumber(L, -1) : 0;
    lua_pop(L, 3);
    sl.reason = score_text(L, "reason", &sl.reason_len);
    sl.error = score_text(L, "error", &sl.error_len);
    traceline_score(b, tid, tid_len, &sl);
    lua_pop(L, 1);
  }
  return 0;
}

/* The recorder's own rule graders (grade_with) on a trace written without scores: its output
 * as text (a string as it is, else its JSON, in the scratch buffer), or the failed grades of a
 * run that failed (its error's type at stack slot 8). */
static void grade_with_rules(lua_State *L, recorder *r, const char *tid, size_t tid_len, size_t out_off,
                             size_t out_len, double ms, int success) {
  buf_t *b = &r->lines[F_SCORES];
  if (success) {
    const char *text = r->scratch.data + out_off;
    size_t n = out_len;
    if (field(L, "output") == LUA_TSTRING) text = lua_tolstring(L, -1, &n);
    rules_grade(r->rules, b, tid, tid_len, text, n, ms);
  } else {
    size_t n = 5;
    const char *type = "error";
    if (lua_istable(L, 8) && lua_getfield(L, 8, "type") == LUA_TSTRING) type = lua_tolstring(L, -1, &n);
    rules_fail(r->rules, b, tid, tid_len, type, n);
  }
}

/* write(trace) -> true | fail, msg, code
 * trace = { trace_id, input, output, success, error = {type, message, traceback} | nil,
 *           iteration, persona, metadata, args, args_template = {before, after} (args as
 *           before .. input's JSON .. after, in place of args), replay_line and
 *           callback_messages (replay's, written when replay_line is set), extra = {field = value}
 *           (more fields of traces.jsonl), shared = {field = value} (more fields of both files),
 *           k / seq (position in the files), duration_ms (optional override),
 *           scores = { {grader, pass, score, reason, error, duration_ms}, ... } (scores.jsonl) }.
 * Appends one line to each trace file and the trace's observations; all or nothing:
 * a value that cannot be encoded raises and leaves no partial line. */
int lrecorder_write(lua_State *L) {
  recorder *r = lrecorder_check(L);
  buf_t *sum = &r->lines[F_SUMMARY], *tr = &r->lines[F_TRACES], *ob = &r->lines[F_OBSERVATIONS];
  int64_t k;
  size_t in_off, in_len, out_off, out_len, tid_len;
  const char *tid;
  int success, top;
  size_t shared_off = 0, shared_len = 0; /* the shared fields' text in the summary line */
  double ms;
  int64_t mono_end = r->mono_end ? r->mono_end : clock_mono_ns();
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  for (int i = 0; i < F_COUNT; i++) buf_reset(&r->lines[i]);
  buf_reset(&r->scratch);
  /* The position in the files: seq when the run order has gaps (a resume), else k. */
  lua_getfield(L, 2, "seq");
  if (!lua_isinteger(L, -1)) {
    lua_pop(L, 1);
    lua_getfield(L, 2, "k");
  }
  k = lua_isinteger(L, -1) ? (int64_t)lua_tointeger(L, -1) : r->next_k;
  lua_pop(L, 1);
  if (scratch_value(L, r, "input", &in_off, &in_len) != 0) goto encode_error;
  if (scratch_value(L, r, "output", &out_off, &out_len) != 0) goto encode_error;

  field(L, "trace_id"); /* 3 */
  tid = lua_tolstring(L, 3, &tid_len);
  if (tid == NULL) return luaL_error(L, "trace.trace_id must be a string");
  field(L, "success"); /* 4 */
  success = lua_toboolean(L, 4);
  field(L, "duration_ms"); /* 5 */
  ms = lua_isnumber(L, 5) ? (double)lua_tonumber(L, 5) : (double)(mono_end - r->mono_start) / 1e6;
  field(L, "iteration"); /* 6 */
  field(L, "persona"); /* 7 */
  field(L, "error"); /* 8 */
  top = lua_gettop(L);

  /* trace_summary.jsonl: the fields both files share, then the error message. */
  put_shared_fields(L, r, sum, tid, tid_len, in_off, in_len, out_off, out_len, ms, success);
  PUT_LIT(sum, ",\"error\":");
  if (lua_istable(L, 8)) {
    lua_getfield(L, 8, "message");
    put_string_field(L, sum, -1);
    lua_pop(L, 1);
  } else {
    PUT_LIT(sum, "null");
  }
  if (field(L, "shared") == LUA_TTABLE) {
    shared_off = sum->len;
    if (lrecorder_splice_shared(L, sum) != 0) goto encode_error;
    shared_len = sum->len - shared_off;
  }
  lua_settop(L, top);
  PUT_LIT(sum, "}\n");

  /* traces.jsonl: the shared fields, the whole error, then everything else. */
  put_shared_fields(L, r, tr, tid, tid_len, in_off, in_len, out_off, out_len, ms, success);
  PUT_LIT(tr, ",\"error\":");
  if (lua_istable(L, 8)) {
    PUT_LIT(tr, "{\"type\":");
    lua_getfield(L, 8, "type");
    put_string_field(L, tr, -1);
    PUT_LIT(tr, ",\"message\":");
    lua_getfield(L, 8, "message");
    put_string_field(L, tr, -1);
    PUT_LIT(tr, ",\"traceback\":");
    lua_getfield(L, 8, "traceback");
    put_string_field(L, tr, -1);
    lua_pop(L, 3);
    buf_putc(tr, '}');
  } else {
    PUT_LIT(tr, "null");
  }
  PUT_LIT(tr, ",\"metadata\":");
  field(L, "metadata");
  if (lua_isnoneornil(L, -1)) PUT_LIT(tr, "{}");
  else if (lconv_encode_json(L, -1, tr, -1) != 0) goto encode_error;
  lua_settop(L, top);
  PUT_LIT(tr, ",\"started_at\":");
  traceline_time(tr, r->wall_start);
  PUT_LIT(tr, ",\"completed_at\":");
  traceline_time(tr, r->wall_start + (int64_t)(ms * 1e6));
  PUT_LIT(tr, ",\"observations\":[");
  for (size_t i = 0; i < r->nobs; i++) {
    size_t start = ob->len;
    if (i > 0) buf_putc(tr, ',');
    put_obs(ob, r, i);
    buf_put(tr, ob->data + start, ob->len - start);
    buf_putc(ob, '\n');
  }
  buf_putc(tr, ']');
  if (field(L, "args_template") == LUA_TTABLE) {
    /* Replay's args: the recording's JSON text around the input, which is encoded already.
     * No per-run encode of (or allocation for) a 2 KB table. */
    size_t n[2];
    const char *part[2];
    for (int i = 0; i < 2; i++) {
      lua_rawgeti(L, -1 - i, i + 1);
      part[i] = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n[i]) : NULL;
      if (part[i] != NULL && part[i] == r->template_checked[i]) continue;
      if (part[i] == NULL || memchr(part[i], '\n', n[i]) != NULL) {
        lua_pushliteral(L, "trace.args_template must be two strings of one-line JSON text");
        goto encode_error;
      }
      lua_pushvalue(L, -1);
      lua_setiuservalue(L, 1, i + 1);
      r->template_checked[i] = part[i];
    }
    PUT_LIT(tr, ",\"args\":");
    buf_put(tr, part[0], n[0]);
    buf_put(tr, r->scratch.data + in_off, in_len);
    buf_put(tr, part[1], n[1]);
  } else if (field(L, "args") != LUA_TNIL) {
    PUT_LIT(tr, ",\"args\":");
    if (lconv_encode_json(L, -1, tr, -1) != 0) goto encode_error;
  }
  lua_settop(L, top);
  /* Replay's fields, known here so a replayed run needs no `extra` table. Every replayed
   * trace has a replay_line, so a plain run looks up only that. */
  if (field(L, "replay_line") != LUA_TNIL) {
    if (field(L, "callback_messages") != LUA_TNIL) {
      PUT_LIT(tr, ",\"callback_messages\":");
      if (lconv_encode_json(L, -1, tr, -1) != 0) goto encode_error;
    }
    PUT_LIT(tr, ",\"replay_line\":");
    if (lconv_encode_json(L, top + 1, tr, -1) != 0) goto encode_error;
  }
  /* More top-level fields (a conversation's, a process agent's logs, a script's). */
  lua_settop(L, top);
  buf_put(tr, sum->data + shared_off, shared_len); /* encoded once (a conversation is long) */
  if (field(L, "extra") == LUA_TTABLE && lrecorder_splice_fields(L, tr) != 0) goto encode_error;
  PUT_LIT(tr, "}\n");
  if (field(L, "scores") == LUA_TTABLE) {
    int at = lua_gettop(L);
    out_text o = { r->scratch.data + out_off, out_len, ms };
    if (field(L, "output") == LUA_TSTRING) o.p = lua_tolstring(L, -1, &o.n);
    if (put_scores(L, at, &r->lines[F_SCORES], tid, tid_len, &o) != 0) goto encode_error;
  } else if (r->rules != NULL) {
    grade_with_rules(L, r, tid, tid_len, out_off, out_len, ms, success);
  }
  lua_settop(L, top);

  if (sum->failed || tr->failed || ob->failed || r->lines[F_SCORES].failed) {
    lua_pushliteral(L, "not enough memory to write the trace");
    goto encode_error;
  }
  r->nobs = 0;
  r->next_k = k + 1;
  /* A config secret that an agent or hook echoed into the trace never reaches a file. */
  for (int i = 0; r->redact.n > 0 && i < F_COUNT; i++)
    r->lines[i].len = redact_apply(&r->redact, r->lines[i].data, r->lines[i].len);
  {
    const char *text[F_COUNT] = { sum->data, tr->data, ob->data, r->lines[F_SCORES].data };
    size_t lens[F_COUNT] = { sum->len, tr->len, ob->len, r->lines[F_SCORES].len };
    if (r->pipe_fd >= 0) {
      if (frame_send(r->pipe_fd, FRAME_TRACE, k, ms, success, text, lens) != 0)
        return lrecorder_push_io_error(L, "pipe to the parent process", errno);
    } else if (sink_put(r->sink, k, text, lens, ms, success) != 0) {
      return lrecorder_push_sink_error(L, r);
    }
  }
  lua_pushboolean(L, 1);
  return 1;

encode_error:
  /* Nothing was handed to the sink; the message from the encoder is on top of the stack. */
  for (int i = 0; i < F_COUNT; i++) buf_reset(&r->lines[i]);
  return lua_error(L);
}

/* write_scores(seq, trace_id, scores [, output_text, duration_ms]) -> true | fail, msg,
 * code: only the lines of scores.jsonl for one trace (`evaluate`, which grades a finished
 * experiment and writes nothing else), in the place seq of the files. */
int lrecorder_write_scores(lua_State *L) {
  recorder *r = lrecorder_check(L);
  int64_t seq = (int64_t)luaL_checkinteger(L, 2);
  size_t tid_len;
  const char *tid = luaL_checklstring(L, 3, &tid_len);
  buf_t *sc = &r->lines[F_SCORES];
  out_text o = { NULL, 0, (double)luaL_optnumber(L, 6, 0) };
  luaL_checktype(L, 4, LUA_TTABLE);
  o.p = luaL_optlstring(L, 5, NULL, &o.n);
  for (int i = 0; i < F_COUNT; i++) buf_reset(&r->lines[i]);
  if (put_scores(L, 4, sc, tid, tid_len, &o) != 0 || sc->failed) {
    if (sc->failed) lua_pushliteral(L, "not enough memory to write the scores");
    buf_reset(sc);
    return lua_error(L);
  }
  if (r->redact.n > 0) sc->len = redact_apply(&r->redact, sc->data, sc->len);
  {
    const char *text[F_COUNT] = { "", "", "", sc->data };
    size_t lens[F_COUNT] = { 0, 0, 0, sc->len };
    if (r->pipe_fd >= 0) {
      if (frame_send(r->pipe_fd, FRAME_TRACE, seq, 0, 1, text, lens) != 0)
        return lrecorder_push_io_error(L, "pipe to the parent process", errno);
    } else if (sink_put(r->sink, seq, text, lens, 0, 1) != 0) {
      return lrecorder_push_sink_error(L, r);
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}
