/* lrecorder.c - the fluxloop.recorder module: times runs, collects observations and encodes
 * each trace's lines for trace_summary.jsonl, traces.jsonl and observations.jsonl, which a
 * sink (sink.c) writes in trace order. One recorder per Lua state; workers share a sink. */
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
#include "lconv.h"
#include "frame.h"
#include "lstats.h"
#include "redact.h"
#include "sink.h"
#include "stats.h"

#define RECORDER_MT "fluxloop.Recorder"
#define TRACE_ID_MAX 128

enum { F_SUMMARY = SINK_SUMMARY, F_TRACES = SINK_TRACES, F_OBSERVATIONS = SINK_OBSERVATIONS,
       F_COUNT = SINK_FILES };

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
} recorder;

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
static recorder *check_recorder(lua_State *L) {
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
static int push_io_error(lua_State *L, const char *path, int err) {
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

static int push_sink_error(lua_State *L, recorder *r) {
  const char *path;
  int err = sink_error(r->sink, &path);
  return push_io_error(L, path, err ? err : EIO);
}

/* ---- number and string formatting ------------------------------------- */

/* Milliseconds with nanosecond resolution: "245.0", "0.000512". */
#define PUT_LIT(b, s) buf_put((b), (s), sizeof(s) - 1)

/* Milliseconds as "%.6f" with trailing zeros cut ("12.5", "0.0").  Hand-formatted from
 * whole nanoseconds: this runs two or three times per trace and printf was 8% of a run. */
static void put_ms(buf_t *b, double ms) {
  char tmp[64];
  int n;
  if (ms >= 0 && ms < 9e12) {
    uint64_t ns = (uint64_t)(ms * 1e6 + 0.5), frac = ns % 1000000;
    n = (int)lconv_format_integer(tmp, (lua_Integer)(ns / 1000000));
    tmp[n++] = '.';
    for (int i = 5; i >= 0; i--) { tmp[n + i] = (char)('0' + frac % 10); frac /= 10; }
    n += 6;
  } else if (isfinite(ms)) {
    n = snprintf(tmp, sizeof tmp, "%.6f", ms); /* negative or huge: rare, keep printf */
  } else {
    PUT_LIT(b, "null"); /* a NaN or infinite override is not a number JSON can hold */
    return;
  }
  while (n > 2 && tmp[n - 1] == '0' && tmp[n - 2] != '.') n--;
  buf_put(b, tmp, (size_t)n);
}

static void put_int(buf_t *b, long long v) {
  char tmp[24];
  buf_put(b, tmp, lconv_format_integer(tmp, (lua_Integer)v));
}

static void put_time(buf_t *b, int64_t wall_ns) {
  char iso[CLOCK_ISO_SIZE];
  buf_putc(b, '"');
  buf_put(b, iso, clock_format_utc(wall_ns, iso));
  buf_putc(b, '"');
}

/* Encodes the value at idx (none/nil -> null); on failure raises after the caller's rollback. */
static int put_value(lua_State *L, int idx, buf_t *b) {
  if (lua_isnoneornil(L, idx)) { PUT_LIT(b, "null"); return 0; }
  return lconv_encode_json(L, idx, b, -1);
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
  recorder *r = check_recorder(L);
  int n = 1;
  if (recorder_release(r) != 0) n = push_sink_error(L, r);
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
  recorder *r = lua_newuserdatauv(L, sizeof *r, 2); /* user values: template_checked */
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

/* open(dir) -> recorder | fail, msg, code. Appends to DIR/{trace_summary,traces,observations}.jsonl. */
static int recorder_open(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  char *bad = NULL;
  recorder *r = new_recorder(L);
  r->sink = sink_open(dir, &bad);
  if (r->sink == NULL) {
    int err = errno, n;
    lua_pushstring(L, bad ? bad : dir);
    free(bad);
    n = push_io_error(L, lua_tostring(L, -1), err);
    return n;
  }
  r->owns_sink = 1;
  r->closed = 0;
  return 1;
}

/* sink() -> light userdata: the shared writer, for recorder.attach in worker states. */
static int recorder_sink(lua_State *L) {
  recorder *r = check_recorder(L);
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
  recorder *r = check_recorder(L);
  if (r->pipe_fd >= 0) { lua_pushboolean(L, 1); return 1; }
  if (sink_flush(r->sink) != 0) return push_sink_error(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- one trace -------------------------------------------------------- */

/* begin(trace_id): starts timing a run and clears the observations of the last one. */
static int recorder_begin(lua_State *L) {
  recorder *r = check_recorder(L);
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
  recorder *r = check_recorder(L);
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
  PUT_LIT(b, "{\"trace_id\":");
  lconv_put_json_string(b, r->trace_id, r->trace_id_len);
  PUT_LIT(b, ",\"id\":\"");
  buf_put(b, r->trace_id, r->trace_id_len);
  buf_putc(b, '.');
  put_int(b, (long long)n);
  PUT_LIT(b, "\",\"parent_id\":");
  if (parent < 0) {
    PUT_LIT(b, "null");
  } else {
    buf_putc(b, '"');
    buf_put(b, r->trace_id, r->trace_id_len);
    buf_putc(b, '.');
    put_int(b, (long long)parent + 1);
    buf_putc(b, '"');
  }
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
    put_int(b, (long long)r->turn);
  }
  PUT_LIT(b, ",\"started_at\":");
  put_time(b, wall);
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
      if (put_value(L, lua_gettop(L), b) != 0) return -1;
    }
    lua_pop(L, 1);
  }
  return 0;
}

/* observe(type, name, input, output, metadata [, duration_ms [, extra]]) -> id
 * Records a finished observation (an event, or a call the agent timed itself). extra may
 * hold model, prompt_tokens, completion_tokens and total_tokens. */
static int recorder_observe(lua_State *L) {
  recorder *r = check_recorder(L);
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
  put_ms(b, ms);
  PUT_LIT(b, ",\"input\":");
  if (put_value(L, 4, b) != 0) return obs_fail(L, r);
  PUT_LIT(b, ",\"output\":");
  if (put_value(L, 5, b) != 0) return obs_fail(L, r);
  PUT_LIT(b, ",\"metadata\":");
  if (put_value(L, 6, b) != 0) return obs_fail(L, r);
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
  recorder *r = check_recorder(L);
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
  if (put_value(L, 4, b) != 0) return obs_fail(L, r);
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
  put_ms(b, (double)(mono_end - s->mono_start) / 1e6);
  PUT_LIT(b, ",\"input\":");
  if (buf_reserve(b, s->input_len) == 0) {
    memcpy(b->data + b->len, b->data + s->input_off, s->input_len); /* arena is one block */
    b->len += s->input_len;
  }
  PUT_LIT(b, ",\"output\":");
  if (put_value(L, out_idx, b) != 0) { b->len = mark; return -1; }
  PUT_LIT(b, ",\"metadata\":");
  if (put_value(L, meta_idx, b) != 0) { b->len = mark; return -1; }
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
  recorder *r = check_recorder(L);
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
  recorder *r = check_recorder(L);
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
  if (put_value(L, -1, &r->scratch) != 0) return -1;
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
  put_ms(b, ms);
  PUT_LIT(b, ",\"iteration\":");
  put_int(b, (long long)lua_tointeger(L, 6));
  PUT_LIT(b, ",\"persona\":");
  put_string_field(L, b, 7);
  PUT_LIT(b, ",\"success\":");
  if (success) PUT_LIT(b, "true"); else PUT_LIT(b, "false");
}

/* Splices the members of the table on top of the stack into the object being written to
 * b (its fields so far, without the closing brace): encoded as an object whose braces are
 * dropped. Pops nothing; returns -1 when the encoder failed (its message on the stack). */
static int splice_fields(lua_State *L, buf_t *b) {
  size_t start = b->len;
  if (lconv_encode_json(L, -1, b, -1) != 0) return -1;
  if (b->len - start > 2) {
    b->data[start] = ','; /* "{...}" -> ",..." */
    b->len--;             /* drop "}" */
  } else {
    b->len = start;       /* "{}" adds nothing */
  }
  return 0;
}

/* write(trace) -> true | fail, msg, code
 * trace = { trace_id, input, output, success, error = {type, message, traceback} | nil,
 *           iteration, persona, metadata, args, args_template = {before, after} (args as
 *           before .. input's JSON .. after, in place of args), replay_line and
 *           callback_messages (replay's, written when replay_line is set), extra = {field = value}
 *           (more fields of traces.jsonl), shared = {field = value} (more fields of both files),
 *           k / seq (position in the files), duration_ms (optional override) }.
 * Appends one line to each trace file and the trace's observations; all or nothing:
 * a value that cannot be encoded raises and leaves no partial line. */
static int recorder_write(lua_State *L) {
  recorder *r = check_recorder(L);
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
    if (splice_fields(L, sum) != 0) goto encode_error;
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
  put_time(tr, r->wall_start);
  PUT_LIT(tr, ",\"completed_at\":");
  put_time(tr, r->wall_start + (int64_t)(ms * 1e6));
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
  if (field(L, "extra") == LUA_TTABLE && splice_fields(L, tr) != 0) goto encode_error;
  PUT_LIT(tr, "}\n");

  if (sum->failed || tr->failed || ob->failed) {
    lua_pushliteral(L, "not enough memory to write the trace");
    goto encode_error;
  }
  r->nobs = 0;
  r->next_k = k + 1;
  /* A config secret that an agent or hook echoed into the trace never reaches a file. */
  for (int i = 0; r->redact.n > 0 && i < F_COUNT; i++)
    r->lines[i].len = redact_apply(&r->redact, r->lines[i].data, r->lines[i].len);
  {
    const char *text[F_COUNT] = { sum->data, tr->data, ob->data };
    size_t lens[F_COUNT] = { sum->len, tr->len, ob->len };
    if (r->pipe_fd >= 0) {
      if (frame_send(r->pipe_fd, FRAME_TRACE, k, ms, success, text, lens) != 0)
        return push_io_error(L, "pipe to the parent process", errno);
    } else if (sink_put(r->sink, k, text, lens, ms, success) != 0) {
      return push_sink_error(L, r);
    }
  }
  lua_pushboolean(L, 1);
  return 1;

encode_error:
  /* Nothing was handed to the sink; the message from the encoder is on top of the stack. */
  for (int i = 0; i < F_COUNT; i++) buf_reset(&r->lines[i]);
  return lua_error(L);
}

/* redact(list): the strings of list (the config's secret values) are written as "***"
 * wherever they occur in this recorder's lines. Strings of 3 bytes or fewer are ignored. */
static int recorder_redact(lua_State *L) {
  recorder *r = check_recorder(L);
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
  recorder *r = check_recorder(L);
  int64_t k = (int64_t)luaL_checkinteger(L, 2);
  if (r->pipe_fd >= 0) frame_send(r->pipe_fd, FRAME_SKIP, k, 0, 0, NULL, NULL);
  else sink_skip(r->sink, k);
  return 0;
}

/* done() -> traces written or skipped so far (in order). */
static int recorder_done(lua_State *L) {
  recorder *r = check_recorder(L);
  need_sink(L, r);
  lua_pushinteger(L, (lua_Integer)sink_done(r->sink));
  return 1;
}

/* shutdown(): makes workers waiting for room in the sink give up (experiment abandoned). */
static int recorder_shutdown(lua_State *L) {
  recorder *r = check_recorder(L);
  need_sink(L, r);
  sink_shutdown(r->sink);
  return 0;
}

/* stats() -> { count, successful, failed, min, mean, p50, p90, p95, p99, max, stddev } (ms). */
static int recorder_stats(lua_State *L) {
  recorder *r = check_recorder(L);
  stats_summary_t s;
  sink_stats(need_sink(L, r), &s);
  lstats_push(L, &s);
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
  { "write", recorder_write },
  { "flush", recorder_flush },
  { "redact", recorder_redact },
  { "skip", recorder_skip },
  { "done", recorder_done },
  { "shutdown", recorder_shutdown },
  { "sink", recorder_sink },
  { "stats", recorder_stats },
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
