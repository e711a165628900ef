/* lrecorder.c - the fluxloop.recorder module: times runs, collects observations, and (with
 * lrecwrite.c, its write()) encodes each trace's lines for trace_summary.jsonl, traces.jsonl,
 * observations.jsonl and scores.jsonl, which a sink (sink.c) writes in trace order. One
 * recorder per Lua state; workers share a sink. */
#include <errno.h>
#include <math.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "frame.h"
#include "lgradestats.h"
#include "lrecorder.h"
#include "lrules.h"
#include "lstats.h"
#include "stats.h"
#include "traceline.h"

static void begin_append(recorder *r) {
  r->arena_mark = r->arena.len;
  r->nobs_mark = r->nobs;
  r->pending = 1;
}

static void rollback(recorder *r) {
  for (int i = 0; i < F_COUNT; i++) buf_reset(&r->lines[i]);
  r->arena.len = r->arena_mark;
  r->arena.failed = 0;
  r->nobs = r->nobs_mark;
  r->pending = 0;
}

/* self (argument 1) must be an open recorder.  Its metatable is every method's upvalue:
 * comparing with it skips luaL_checkudata's registry lookup, which ran 4+ times a trace. */
recorder *lrecorder_check(lua_State *L) {
  recorder *r = lua_touserdata(L, 1);
  int is_recorder = r != NULL && lua_getmetatable(L, 1);
  if (is_recorder) {
    is_recorder = lua_rawequal(L, -1, lua_upvalueindex(1));
    lua_pop(L, 1);
  }
  if (!is_recorder) luaL_typeerror(L, 1, RECORDER_MT);
  if (r->closed) luaL_error(L, "attempt to use a closed recorder");
  if (r->pending) rollback(r);
  return r;
}

/* Pushes fail, "path: strerror(err)", "ECODE". */
int lrecorder_push_io_error(lua_State *L, const char *path, int err) {
  luaL_pushfail(L);
  lua_pushfstring(L, "%s: %s", path ? path : "trace files", strerror(err));
  lua_pushstring(L, err == ENOSPC ? "ENOSPC" : err == EDQUOT ? "EDQUOT" : err == EFBIG ? "EFBIG"
                    : err == ENOMEM ? "ENOMEM" : "EIO");
  return 3;
}

/* The recorder of an isolated worker has no sink: the methods about files are the parent's. */
static sink_t *need_sink(lua_State *L, recorder *r) {
  if (r->sink == NULL) luaL_error(L, "this recorder sends its traces to the parent process; it has no files");
  return r->sink;
}

int lrecorder_push_sink_error(lua_State *L, recorder *r) {
  const char *path;
  int err = sink_error(r->sink, &path);
  return lrecorder_push_io_error(L, path, err ? err : EIO);
}

/* ---- open / close ----------------------------------------------------- */

/* Releases the recorder once; the owner also closes the sink (flushing it). */
static int recorder_release(recorder *r) {
  int rc = 0;
  if (r->closed) return 0;
  r->closed = 1;
  if (r->owns_sink && r->sink) {
    rc = sink_close(r->sink);
  }
  for (int i = 0; i < F_COUNT; i++) buf_free(&r->lines[i]);
  buf_free(&r->arena);
  buf_free(&r->scratch);
  free(r->obs);
  r->obs = NULL;
  redact_free(&r->redact);
  return rc;
}

static void recorder_free_sink(recorder *r) {
  sink_release(r->sink);
  r->sink = NULL;
}

/* __gc and __close: releases everything once, flushing what is buffered. */
static int recorder_gc(lua_State *L) {
  recorder *r = luaL_checkudata(L, 1, RECORDER_MT);
  recorder_release(r);
  recorder_free_sink(r);
  return 0;
}

/* close() -> true | fail, msg, code: the owner writes what is held, fsyncs and closes the files. */
static int recorder_close(lua_State *L) {
  recorder *r = lrecorder_check(L);
  int n = 1;
  if (recorder_release(r) != 0) n = lrecorder_push_sink_error(L, r);
  else lua_pushboolean(L, 1);
  recorder_free_sink(r);
  return n;
}

/* The registry key of a weak table whose [1] is the last recorder made in this state: the
 * one runs record into, found there by modules that record on their own (fluxloop.http). */
#define CURRENT_KEY "fluxloop.recorder.current"

static void make_current(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, CURRENT_KEY) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 1, 0);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, CURRENT_KEY);
  }
  lua_pushvalue(L, -2); /* stack: recorder, weak table, recorder */
  lua_rawseti(L, -2, 1);
  lua_pop(L, 1);
}

static recorder *new_recorder(lua_State *L) {
  recorder *r = lua_newuserdatauv(L, sizeof *r, 3); /* user values: template_checked, rules */
  memset(r, 0, sizeof *r);
  r->closed = 1; /* consistent for __gc until set up */
  luaL_setmetatable(L, RECORDER_MT);
  for (int i = 0; i < F_COUNT; i++) buf_init(&r->lines[i]);
  buf_init(&r->arena);
  buf_init(&r->scratch);
  r->open_top = -1;
  r->next_k = 1;
  r->pipe_fd = -1;
  make_current(L);
  return r;
}

/* open(dir [, opts]) -> recorder | fail, msg, code. Appends to DIR/{trace_summary,traces,
 * observations}.jsonl. opts.scores: scores.jsonl too (the experiment grades; opts.iterations
 * places traces in their inputs for pass^k); opts.only_scores: scores.jsonl alone (evaluate). */
static int recorder_open(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  char *bad = NULL;
  int mask = SINK_TRACE_FILES;
  lua_Integer iterations = 1;
  recorder *r;
  if (lua_istable(L, 2)) {
    if (lua_getfield(L, 2, "scores") != LUA_TNIL && lua_toboolean(L, -1)) mask = SINK_ALL_FILES;
    if (lua_getfield(L, 2, "only_scores") != LUA_TNIL && lua_toboolean(L, -1)) mask = 1 << SINK_SCORES;
    if (lua_getfield(L, 2, "iterations") == LUA_TNUMBER) iterations = lua_tointeger(L, -1);
    lua_pop(L, 3);
  }
  r = new_recorder(L);
  r->sink = sink_open_files(dir, mask, (int64_t)iterations, &bad);
  if (r->sink == NULL) {
    int err = errno, n;
    lua_pushstring(L, bad ? bad : dir);
    free(bad);
    n = lrecorder_push_io_error(L, lua_tostring(L, -1), err);
    return n;
  }
  r->owns_sink = 1;
  r->closed = 0;
  return 1;
}

/* sink() -> light userdata: the shared writer, for recorder.attach in worker states. */
static int recorder_sink(lua_State *L) {
  recorder *r = lrecorder_check(L);
  need_sink(L, r);
  lua_pushlightuserdata(L, r->sink);
  return 1;
}

/* attach(sink) -> recorder writing to another recorder's sink (a worker's recorder). It
 * holds a reference, so the sink outlives it even when the owner has closed the files. */
static int recorder_attach(lua_State *L) {
  recorder *r;
  luaL_checktype(L, 1, LUA_TLIGHTUSERDATA);
  r = new_recorder(L);
  r->sink = lua_touserdata(L, 1);
  sink_retain(r->sink);
  r->closed = 0;
  return 1;
}

/* to_pipe(fd) -> recorder for an isolated worker process: each trace goes to the parent
 * as a frame on fd (frame.h), and the parent's sink writes it. */
static int recorder_to_pipe(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  recorder *r = new_recorder(L);
  r->pipe_fd = fd;
  r->closed = 0;
  return 1;
}

/* flush() -> true | fail, msg, code: writes every buffered line now. */
static int recorder_flush(lua_State *L) {
  recorder *r = lrecorder_check(L);
  if (r->pipe_fd >= 0) { lua_pushboolean(L, 1); return 1; }
  if (sink_flush(r->sink) != 0) return lrecorder_push_sink_error(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- one trace -------------------------------------------------------- */

/* begin(trace_id): starts timing a run and clears the observations of the last one. */
static int recorder_begin(lua_State *L) {
  recorder *r = lrecorder_check(L);
  size_t n;
  const char *id = luaL_checklstring(L, 2, &n);
  luaL_argcheck(L, n < TRACE_ID_MAX, 2, "trace id too long");
  memcpy(r->trace_id, id, n + 1);
  r->trace_id_len = n;
  r->nobs = 0;
  r->open_top = -1;
  buf_reset(&r->arena);
  r->wall_start = clock_wall_ns();
  r->mono_start = clock_mono_ns();
  r->mono_end = 0;
  r->turn = 0;
  return 0;
}

/* turn(n): observations started from now on belong to turn n of a conversation (their
 * "turn_index" field); 0 (and every begin()) ends the stamping. */
static int recorder_turn(lua_State *L) {
  recorder *r = lrecorder_check(L);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 0, 2, "turn must be >= 0");
  r->turn = (int64_t)n;
  return 0;
}

static obs_slot *new_slot(lua_State *L, recorder *r) {
  obs_slot *s;
  if (r->nobs == r->obs_cap) {
    size_t cap = r->obs_cap ? r->obs_cap * 2 : 16;
    obs_slot *p = realloc(r->obs, cap * sizeof *p);
    if (p == NULL) luaL_error(L, "not enough memory");
    r->obs = p;
    r->obs_cap = cap;
  }
  s = &r->obs[r->nobs++];
  memset(s, 0, sizeof *s);
  s->parent = r->open_top;
  return s;
}

/* Writes the fields every observation starts with: trace_id .. started_at. */
static void put_obs_head(recorder *r, buf_t *b, size_t n, int parent, const char *type, size_t tlen,
                         lua_State *L, int name_idx, int64_t wall) {
  traceline_obs_ids(b, r->trace_id, r->trace_id_len, n, parent);
  PUT_LIT(b, ",\"type\":");
  lconv_put_json_string(b, type, tlen);
  PUT_LIT(b, ",\"name\":");
  if (lua_type(L, name_idx) == LUA_TSTRING) {
    size_t nl;
    const char *name = lua_tolstring(L, name_idx, &nl);
    lconv_put_json_string(b, name, nl);
  } else {
    PUT_LIT(b, "null");
  }
  if (r->turn > 0) {
    PUT_LIT(b, ",\"turn_index\":");
    traceline_int(b, (long long)r->turn);
  }
  PUT_LIT(b, ",\"started_at\":");
  traceline_time(b, wall);
}

/* Raises the encoder's message after undoing a half-written observation. */
static int obs_fail(lua_State *L, recorder *r) {
  rollback(r);
  return lua_error(L);
}

/* The fields of a model call, top-level in the observation as the Python SDK writes them:
 * the model's name and the token counts. Taken from the table at idx (when it is one). */
static const char *const EXTRA_FIELDS[] = { "model", "prompt_tokens", "completion_tokens", "total_tokens", NULL };

static int put_extra(lua_State *L, int idx, buf_t *b) {
  if (lua_type(L, idx) != LUA_TTABLE) return 0;
  for (int i = 0; EXTRA_FIELDS[i]; i++) {
    int t = lua_getfield(L, idx, EXTRA_FIELDS[i]);
    if (t == LUA_TSTRING || t == LUA_TNUMBER) {
      buf_putc(b, ',');
      lconv_put_json_string(b, EXTRA_FIELDS[i], strlen(EXTRA_FIELDS[i]));
      buf_putc(b, ':');
      if (lrecorder_put_value(L, lua_gettop(L), b) != 0) return -1;
    }
    lua_pop(L, 1);
  }
  return 0;
}

/* observe(type, name, input, output, metadata [, duration_ms [, extra]]) -> id
 * Records a finished observation (an event, or a call the agent timed itself). extra may
 * hold model, prompt_tokens, completion_tokens and total_tokens. */
static int recorder_observe(lua_State *L) {
  recorder *r = lrecorder_check(L);
  size_t tlen;
  const char *type = luaL_optlstring(L, 2, "event", &tlen);
  double ms = luaL_optnumber(L, 7, 0);
  obs_slot *s;
  begin_append(r);
  s = new_slot(L, r);
  buf_t *b = &r->arena;
  s->head_off = b->len;
  put_obs_head(r, b, r->nobs, s->parent, type, tlen, L, 3, clock_wall_ns());
  PUT_LIT(b, ",\"duration_ms\":");
  traceline_ms(b, ms);
  PUT_LIT(b, ",\"input\":");
  if (lrecorder_put_value(L, 4, b) != 0) return obs_fail(L, r);
  PUT_LIT(b, ",\"output\":");
  if (lrecorder_put_value(L, 5, b) != 0) return obs_fail(L, r);
  PUT_LIT(b, ",\"metadata\":");
  if (lrecorder_put_value(L, 6, b) != 0) return obs_fail(L, r);
  if (put_extra(L, 8, b) != 0) return obs_fail(L, r);
  buf_putc(b, '}');
  s->head_len = b->len - s->head_off;
  if (b->failed) { rollback(r); return luaL_error(L, "not enough memory"); }
  r->pending = 0;
  lua_pushfstring(L, "%s.%d", r->trace_id, (int)r->nobs);
  return 1;
}

/* span_open(type, name, input) -> slot: starts a timed observation; later ones nest under it. */
static int recorder_span_open(lua_State *L) {
  recorder *r = lrecorder_check(L);
  size_t tlen;
  const char *type = luaL_optlstring(L, 2, "span", &tlen);
  obs_slot *s;
  begin_append(r);
  s = new_slot(L, r);
  buf_t *b = &r->arena;
  s->head_off = b->len;
  put_obs_head(r, b, r->nobs, s->parent, type, tlen, L, 3, clock_wall_ns());
  s->head_len = b->len - s->head_off;
  s->input_off = b->len;
  if (lrecorder_put_value(L, 4, b) != 0) return obs_fail(L, r);
  s->input_len = b->len - s->input_off;
  if (b->failed) { rollback(r); return luaL_error(L, "not enough memory"); }
  r->pending = 0;
  s->open = 1;
  s->mono_start = clock_mono_ns();
  r->open_top = (int)(r->nobs - 1);
  lua_pushinteger(L, (lua_Integer)r->nobs);
  return 1;
}

/* Writes a span's tail: duration, input, output, metadata, and error if it failed. */
static int close_slot(lua_State *L, recorder *r, obs_slot *s, int64_t mono_end, int out_idx,
                      int err_idx, int meta_idx, int extra_idx) {
  buf_t *b = &r->arena;
  size_t mark = b->len;
  s->tail_off = b->len;
  PUT_LIT(b, ",\"duration_ms\":");
  traceline_ms(b, (double)(mono_end - s->mono_start) / 1e6);
  PUT_LIT(b, ",\"input\":");
  if (buf_reserve(b, s->input_len) == 0) {
    memcpy(b->data + b->len, b->data + s->input_off, s->input_len); /* arena is one block */
    b->len += s->input_len;
  }
  PUT_LIT(b, ",\"output\":");
  if (lrecorder_put_value(L, out_idx, b) != 0) { b->len = mark; return -1; }
  PUT_LIT(b, ",\"metadata\":");
  if (lrecorder_put_value(L, meta_idx, b) != 0) { b->len = mark; return -1; }
  if (extra_idx > 0 && put_extra(L, extra_idx, b) != 0) { b->len = mark; return -1; }
  if (!lua_isnoneornil(L, err_idx)) {
    size_t el;
    const char *e = luaL_tolstring(L, err_idx, &el);
    PUT_LIT(b, ",\"error\":");
    lconv_put_json_string(b, e, el);
    lua_pop(L, 1);
  }
  buf_putc(b, '}');
  s->tail_len = b->len - s->tail_off;
  s->open = 0;
  return 0;
}

/* span_close(slot, output, error, metadata [, extra]): ends a span (and any still open inside
 * it); extra as in observe. */
static int recorder_span_close(lua_State *L) {
  recorder *r = lrecorder_check(L);
  lua_Integer slot = luaL_checkinteger(L, 2);
  int64_t now = clock_mono_ns();
  obs_slot *s;
  luaL_argcheck(L, slot >= 1 && (size_t)slot <= r->nobs, 2, "no such span in this trace");
  s = &r->obs[slot - 1];
  luaL_argcheck(L, s->open, 2, "span already closed");
  lua_settop(L, 6); /* self, slot, output, error, metadata, extra */
  begin_append(r);
  if (close_slot(L, r, s, now, 3, 4, 5, 6) != 0) {
    /* The output cannot be stored: close with the encoder's message (slot 6) as the
     * span's error and no output or metadata, then raise that message. */
    lua_pushnil(L);
    lua_replace(L, 3);
    lua_copy(L, 6, 4);
    lua_pushnil(L);
    lua_replace(L, 5);
    close_slot(L, r, s, now, 3, 4, 5, 0);
    r->pending = 0;
    r->open_top = s->parent;
    return lua_error(L);
  }
  r->pending = 0;
  r->open_top = s->parent;
  return 0;
}

/* stop() -> duration_ms: ends the run's timing and closes any span left open. */
static int recorder_stop(lua_State *L) {
  recorder *r = lrecorder_check(L);
  r->mono_end = clock_mono_ns();
  lua_settop(L, 1);
  lua_pushnil(L); /* 2: no output */
  lua_pushliteral(L, "span was not closed before the run ended"); /* 3 */
  lua_pushnil(L); /* 4: no metadata */
  for (size_t i = r->nobs; i-- > 0;) {
    if (r->obs[i].open) close_slot(L, r, &r->obs[i], r->mono_end, 2, 3, 4, 0);
  }
  r->open_top = -1;
  lua_pushnumber(L, (lua_Number)(r->mono_end - r->mono_start) / 1e6);
  return 1;
}

/* observations() -> the current trace's observations as tables (as observations.jsonl will
 * hold them): for graders that look at what a run did before it is written. */
static int recorder_observations(lua_State *L) {
  recorder *r = lrecorder_check(L);
  buf_t text = BUF_INIT;
  lua_createtable(L, (int)r->nobs, 0);
  for (size_t i = 0; i < r->nobs; i++) {
    obs_slot *s = &r->obs[i];
    buf_reset(&text);
    buf_put(&text, r->arena.data + s->head_off, s->head_len);
    buf_put(&text, r->arena.data + s->tail_off, s->tail_len);
    if (text.failed || lconv_decode_json(L, text.data, text.len, "observation") != 0) {
      buf_free(&text);
      return luaL_error(L, "observations: %s", text.failed ? "not enough memory" : lua_tostring(L, -1));
    }
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  buf_free(&text);
  return 1;
}


/* redact(list): the strings of list (the config's secret values) are written as "***"
 * wherever they occur in this recorder's lines. Strings of 3 bytes or fewer are ignored. */
static int recorder_redact(lua_State *L) {
  recorder *r = lrecorder_check(L);
  buf_t enc = BUF_INIT;
  lua_Integer n;
  luaL_checktype(L, 2, LUA_TTABLE);
  n = luaL_len(L, 2);
  for (lua_Integer i = 1; i <= n; i++) {
    size_t len;
    const char *s;
    lua_geti(L, 2, i);
    s = luaL_checklstring(L, -1, &len);
    /* Matched as the files hold it: JSON-escaped, without the quotes. */
    buf_reset(&enc);
    lconv_put_json_string(&enc, s, len);
    if (enc.failed || enc.len < 2 || redact_add(&r->redact, enc.data + 1, enc.len - 2) != 0) {
      buf_free(&enc);
      return luaL_error(L, "not enough memory for the secrets to mask");
    }
    lua_pop(L, 1);
  }
  buf_free(&enc);
  return 0;
}

/* skip(k): trace k will not be written (its run was abandoned); later ones need not wait. */
static int recorder_skip(lua_State *L) {
  recorder *r = lrecorder_check(L);
  int64_t k = (int64_t)luaL_checkinteger(L, 2);
  if (r->pipe_fd >= 0) frame_send(r->pipe_fd, FRAME_SKIP, k, 0, 0, NULL, NULL);
  else sink_skip(r->sink, k);
  return 0;
}

/* done() -> traces written or skipped so far (in order). */
static int recorder_done(lua_State *L) {
  recorder *r = lrecorder_check(L);
  need_sink(L, r);
  lua_pushinteger(L, (lua_Integer)sink_done(r->sink));
  return 1;
}

/* shutdown(): makes workers waiting for room in the sink give up (experiment abandoned). */
static int recorder_shutdown(lua_State *L) {
  recorder *r = lrecorder_check(L);
  need_sink(L, r);
  sink_shutdown(r->sink);
  return 0;
}

/* stats() -> { count, successful, failed, min, mean, p50, p90, p95, p99, max, stddev } (ms). */
static int recorder_stats(lua_State *L) {
  recorder *r = lrecorder_check(L);
  stats_summary_t s;
  sink_stats(need_sink(L, r), &s);
  lstats_push(L, &s);
  return 1;
}

/* grade_with(rules | nil): the rule graders (a fluxloop.rules set) this recorder applies to
 * every trace it writes without scores of its own: a run's grades then cost no Lua. A failed
 * run's lines say "the run failed (TYPE)". */
static int recorder_grade_with(lua_State *L) {
  recorder *r = lrecorder_check(L);
  if (lua_isnoneornil(L, 2)) {
    r->rules = NULL;
  } else {
    r->rules = lrules_to(L, 2);
    luaL_argcheck(L, r->rules != NULL, 2, "a fluxloop.rules set");
  }
  lua_settop(L, 2);
  lua_setiuservalue(L, 1, 3);
  return 0;
}

/* grades() -> the per-grader figures of the score lines written so far (lgradestats.h), or
 * nil when this experiment writes no scores. */
static int recorder_grades(lua_State *L) {
  recorder *r = lrecorder_check(L);
  int oom;
  gradestats_t *g = sink_grades(need_sink(L, r), &oom);
  if (oom) return luaL_error(L, "not enough memory for grade statistics");
  if (g == NULL) {
    lua_pushnil(L);
    return 1;
  }
  /* Read from a copy: building the table may raise (out of memory), never with the sink's
   * lock held. Such a raise leaks the copy, a few KB. */
  lgradestats_push(L, g);
  gradestats_free(g);
  return 1;
}

static int recorder_tostring(lua_State *L) {
  recorder *r = luaL_checkudata(L, 1, RECORDER_MT);
  lua_pushfstring(L, "fluxloop.Recorder (%s)", r->closed ? "closed" : "open");
  return 1;
}

static const luaL_Reg recorder_methods[] = {
  { "begin", recorder_begin },
  { "observe", recorder_observe },
  { "span_open", recorder_span_open },
  { "span_close", recorder_span_close },
  { "stop", recorder_stop },
  { "turn", recorder_turn },
  { "observations", recorder_observations },
  { "write", lrecorder_write },
  { "write_scores", lrecorder_write_scores },
  { "flush", recorder_flush },
  { "redact", recorder_redact },
  { "skip", recorder_skip },
  { "done", recorder_done },
  { "shutdown", recorder_shutdown },
  { "sink", recorder_sink },
  { "stats", recorder_stats },
  { "grades", recorder_grades },
  { "grade_with", recorder_grade_with },
  { "close", recorder_close },
  { NULL, NULL }
};

static const luaL_Reg recorder_meta[] = {
  { "__gc", recorder_gc },
  { "__close", recorder_gc },
  { "__tostring", recorder_tostring },
  { NULL, NULL }
};

/* trace_id(k) -> "trace_001", "trace_1234": the id of trace number k (>= 0), zero-padded to
 * three digits.  In C because string.format's printf was a tenth of a trivial run. */
static int recorder_trace_id(lua_State *L) {
  lua_Integer k = luaL_checkinteger(L, 1);
  char id[32] = "trace_";
  size_t n;
  luaL_argcheck(L, k >= 0, 1, "trace number must be >= 0");
  n = lconv_format_integer(id + 6, k);
  if (n < 3) { /* pad to three digits */
    memmove(id + 6 + 3 - n, id + 6, n);
    memset(id + 6, '0', 3 - n);
    n = 3;
  }
  lua_pushlstring(L, id, 6 + n);
  return 1;
}

/* flush_on_crash(message): if this process crashes (an in-process agent's SIGSEGV, abort...),
 * the finished traces held in order are written first and `message` is printed. */
static int recorder_flush_on_crash(lua_State *L) {
  sink_flush_on_crash(luaL_checkstring(L, 1));
  return 0;
}

static const luaL_Reg recorder_funcs[] = {
  { "trace_id", recorder_trace_id },
  { "flush_on_crash", recorder_flush_on_crash },
  { "open", recorder_open },
  { "attach", recorder_attach },
  { "to_pipe", recorder_to_pipe },
  { NULL, NULL }
};

int luaopen_fluxloop_recorder(lua_State *L); /* the module's only export */
int luaopen_fluxloop_recorder(lua_State *L) {
  if (luaL_newmetatable(L, RECORDER_MT)) {
    luaL_setfuncs(L, recorder_meta, 0);
    luaL_newlibtable(L, recorder_methods);
    lua_pushvalue(L, -2); /* the metatable, as the methods' upvalue (check_recorder) */
    luaL_setfuncs(L, recorder_methods, 1);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_newlib(L, recorder_funcs);
  return 1;
}
