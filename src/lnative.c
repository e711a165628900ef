/* lnative.c - the fluxloop.native module: C-native agents as callable Lua objects, agent(input, ctx). */
#include <lauxlib.h>
#include <lua.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "lconv.h"
#include "native.h"

#define LIB_MT "fluxloop.NativeLibrary"
#define AGENT_MT "fluxloop.NativeAgent"
/* A scratch buffer bigger than this after a call is freed rather than kept for the next. */
#define SCRATCH_KEEP (1024 * 1024)
#define CB_ERR_SIZE 512

/* The library handle, shared by every agent loaded from it; dlclose'd by its __gc only. */
typedef struct nlib {
  void *handle;
} nlib;

/* User values: 1 the nlib, 2 the path, 3 the symbol. */
typedef struct nagent {
  const fluxloop_agent *desc;
  void *state;
  int open;  /* init succeeded and finish has not run */
  int busy;  /* inside run: the scratch buffer is in use */
  buf_t scratch; /* JSON texts of the request (input, metadata, args) */
} nagent;

/* One call of run: what the host callbacks need. Lives on the C stack of agent_call. */
typedef struct call_state {
  lua_State *L;
  int ctx;      /* stack index of ctx in agent_call's frame */
  int active;   /* run has not returned */
  pthread_t thread;
  int code;     /* set by a protected callback body */
  const char *type, *name, *in, *out, *meta, *error;
  lua_Integer span;
  size_t size;
  char err[CB_ERR_SIZE];
} call_state;

/* ---- library handles -------------------------------------------------- */

static int lib_gc(lua_State *L) {
  nlib *lib = luaL_checkudata(L, 1, LIB_MT);
  native_close(lib->handle);
  lib->handle = NULL;
  return 0;
}

/* ---- host callbacks ---------------------------------------------------- */

static void cb_set_error(call_state *cs, const char *msg) {
  snprintf(cs->err, sizeof cs->err, "%s", msg ? msg : "(error object is not a string)");
}

/* Decodes a *_json argument and pushes it (nil for NULL); on bad JSON records the
 * message, sets FLUXLOOP_ERR_JSON and returns -1. */
static int push_json_arg(lua_State *L, call_state *cs, const char *text, const char *name) {
  if (text == NULL) {
    lua_pushnil(L);
    return 0;
  }
  if (lconv_decode_json(L, text, strlen(text), name) != 0) {
    cb_set_error(cs, lua_tostring(L, -1));
    cs->code = FLUXLOOP_ERR_JSON;
    return -1;
  }
  return 0;
}

/* Protected bodies: 1 = call_state, 2 = ctx. */
static int p_observe(lua_State *L) {
  call_state *cs = lua_touserdata(L, 1);
  lua_getfield(L, 2, "observe");
  lua_pushvalue(L, 2);
  lua_createtable(L, 0, 5);
  if (cs->type) { lua_pushstring(L, cs->type); lua_setfield(L, -2, "type"); }
  if (cs->name) { lua_pushstring(L, cs->name); lua_setfield(L, -2, "name"); }
  if (push_json_arg(L, cs, cs->in, "observe input_json") != 0) return 0;
  lua_setfield(L, -2, "input");
  if (push_json_arg(L, cs, cs->out, "observe output_json") != 0) return 0;
  lua_setfield(L, -2, "output");
  if (push_json_arg(L, cs, cs->meta, "observe metadata_json") != 0) return 0;
  lua_setfield(L, -2, "metadata");
  lua_call(L, 2, 0);
  return 0;
}

static int p_span_begin(lua_State *L) {
  call_state *cs = lua_touserdata(L, 1);
  int ok;
  lua_getfield(L, 2, "span_open");
  lua_pushvalue(L, 2);
  lua_pushstring(L, cs->type ? cs->type : "span");
  if (cs->name) lua_pushstring(L, cs->name); else lua_pushnil(L);
  if (push_json_arg(L, cs, cs->in, "span_begin input_json") != 0) return 0;
  lua_call(L, 4, 1);
  cs->span = lua_tointegerx(L, -1, &ok);
  if (!ok || cs->span <= 0 || cs->span > 0x7fffffff) return luaL_error(L, "ctx:span_open returned no span handle");
  return 0;
}

static int p_span_end(lua_State *L) {
  call_state *cs = lua_touserdata(L, 1);
  lua_getfield(L, 2, "span_close");
  lua_pushvalue(L, 2);
  lua_pushinteger(L, cs->span);
  if (push_json_arg(L, cs, cs->out, "span_end output_json") != 0) return 0;
  if (cs->error) lua_pushstring(L, cs->error); else lua_pushnil(L);
  lua_call(L, 4, 0);
  return 0;
}

/* Runs body under lua_pcall; Lua errors must never unwind through the agent's C frames. */
static int protected_callback(call_state *cs, lua_CFunction body) {
  lua_State *L = cs->L;
  if (!cs->active || !pthread_equal(cs->thread, pthread_self())) {
    cb_set_error(cs, "host callback called outside run or from another thread");
    return FLUXLOOP_ERR_REJECTED;
  }
  if (lua_type(L, cs->ctx) != LUA_TTABLE) {
    cb_set_error(cs, "no ctx: the agent was called without a context to record into");
    return FLUXLOOP_ERR_REJECTED;
  }
  if (!lua_checkstack(L, 3)) {
    cb_set_error(cs, "not enough memory");
    return FLUXLOOP_ERR_REJECTED;
  }
  cs->code = FLUXLOOP_OK;
  lua_pushcfunction(L, body);
  lua_pushlightuserdata(L, cs);
  lua_pushvalue(L, cs->ctx);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    cb_set_error(cs, lua_tostring(L, -1));
    lua_pop(L, 1);
    return FLUXLOOP_ERR_REJECTED;
  }
  return cs->code;
}

static int cb_observe(void *hd, const char *type, const char *name, const char *input_json,
                      const char *output_json, const char *metadata_json) {
  call_state *cs = hd;
  if (cs == NULL) return FLUXLOOP_ERR_REJECTED;
  cs->type = type; cs->name = name;
  cs->in = input_json; cs->out = output_json; cs->meta = metadata_json;
  return protected_callback(cs, p_observe);
}

static int cb_span_begin(void *hd, const char *type, const char *name, const char *input_json) {
  call_state *cs = hd;
  int rc;
  if (cs == NULL) return FLUXLOOP_ERR_REJECTED;
  cs->type = type; cs->name = name; cs->in = input_json;
  rc = protected_callback(cs, p_span_begin);
  return rc == FLUXLOOP_OK ? (int)cs->span : rc;
}

static int cb_span_end(void *hd, int span, const char *output_json, const char *error) {
  call_state *cs = hd;
  if (cs == NULL) return FLUXLOOP_ERR_REJECTED;
  if (span <= 0) {
    cb_set_error(cs, "span_end: not a span handle (span_begin returns a handle > 0)");
    return FLUXLOOP_ERR_REJECTED;
  }
  cs->span = span; cs->out = output_json; cs->error = error;
  return protected_callback(cs, p_span_end);
}

static int p_alloc(lua_State *L) {
  call_state *cs = lua_touserdata(L, 1);
  lua_newuserdatauv(L, cs->size, 0);
  return 1;
}

/* The block is a userdata left on agent_call's stack, so it lives until that call returns. */
static void *cb_alloc(void *hd, size_t size) {
  call_state *cs = hd;
  lua_State *L;
  if (cs == NULL || !cs->active || !pthread_equal(cs->thread, pthread_self())) return NULL;
  L = cs->L;
  if (!lua_checkstack(L, 2)) return NULL;
  cs->size = size;
  lua_pushcfunction(L, p_alloc);
  lua_pushlightuserdata(L, cs);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    cb_set_error(cs, "alloc: not enough memory");
    lua_pop(L, 1);
    return NULL;
  }
  return lua_touserdata(L, -1);
}

static const char *cb_last_error(void *hd) {
  call_state *cs = hd;
  return cs ? cs->err : "";
}

static const fluxloop_host host_callbacks = {
  cb_observe, cb_span_begin, cb_span_end, cb_alloc, cb_last_error
};

/* ---- agent objects ------------------------------------------------------ */

static void agent_finish(nagent *a) {
  if (!a->open) return;
  a->open = 0;
  if (a->desc->finish) {
    native_enter(a->desc);
    a->desc->finish(a->state);
    native_leave(a->desc);
  }
  a->state = NULL;
}

/* __gc and __close: finish once, then drop the buffer (the library outlives us). */
static int agent_gc(lua_State *L) {
  nagent *a = luaL_checkudata(L, 1, AGENT_MT);
  agent_finish(a);
  buf_free(&a->scratch);
  return 0;
}

static nagent *check_open(lua_State *L) {
  nagent *a = luaL_checkudata(L, 1, AGENT_MT);
  if (!a->open) {
    lua_getiuservalue(L, 1, 2);
    lua_getiuservalue(L, 1, 3);
    luaL_error(L, "native agent %s:%s is closed", lua_tostring(L, -2), lua_tostring(L, -1));
  }
  return a;
}

/* close() -> true: calls the agent's finish hook (once); later calls of the agent raise. */
static int agent_close(lua_State *L) {
  nagent *a = luaL_checkudata(L, 1, AGENT_MT);
  if (a->busy) return luaL_error(L, "a native agent cannot be closed while it runs");
  agent_finish(a);
  lua_pushboolean(L, 1);
  return 1;
}

/* info() -> { path, symbol, name, abi_version, thread_safe, open } */
static int agent_info(lua_State *L) {
  nagent *a = luaL_checkudata(L, 1, AGENT_MT);
  lua_createtable(L, 0, 6);
  lua_getiuservalue(L, 1, 2);
  lua_setfield(L, -2, "path");
  lua_getiuservalue(L, 1, 3);
  lua_setfield(L, -2, "symbol");
  if (a->desc->name) { lua_pushstring(L, a->desc->name); lua_setfield(L, -2, "name"); }
  lua_pushinteger(L, (lua_Integer)a->desc->abi_version);
  lua_setfield(L, -2, "abi_version");
  lua_pushboolean(L, (a->desc->flags & FLUXLOOP_AGENT_THREAD_SAFE) != 0);
  lua_setfield(L, -2, "thread_safe");
  lua_pushboolean(L, a->open);
  lua_setfield(L, -2, "open");
  return 1;
}

static int agent_tostring(lua_State *L) {
  nagent *a = luaL_checkudata(L, 1, AGENT_MT);
  lua_getiuservalue(L, 1, 2);
  lua_getiuservalue(L, 1, 3);
  lua_pushfstring(L, "fluxloop.NativeAgent (%s:%s%s)", lua_tostring(L, -2), lua_tostring(L, -1),
                  a->open ? "" : ", closed");
  return 1;
}

/* Raises { type = kind, message = msg, traceback = false } (run.lua keeps type and message
 * in the trace; false: no Lua traceback, which would show fluxloop's frames, not the agent's). */
static int raise_typed(lua_State *L, const char *kind, int msg_idx) {
  msg_idx = lua_absindex(L, msg_idx);
  lua_createtable(L, 0, 3);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "type");
  lua_pushvalue(L, msg_idx);
  lua_setfield(L, -2, "message");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "traceback");
  return lua_error(L);
}

/* Appends the JSON of the value at idx and a NUL; returns its offset. Raises when the
 * value cannot be JSON (a function, a cycle). */
static size_t put_json(lua_State *L, nagent *a, int idx, const char *what) {
  size_t off = a->scratch.len;
  if (lconv_encode_json(L, idx, &a->scratch, -1) != 0)
    luaL_error(L, "native agent: the run's %s cannot be passed as JSON: %s", what, lua_tostring(L, -1));
  buf_putc(&a->scratch, '\0');
  return off;
}

/* Stack: 1 agent, 2 input, 3 ctx, then 4 persona, 5 trace_id, 6 metadata, 7 args, 8 iteration. */
static void read_ctx(lua_State *L) {
  static const char *const keys[] = { "persona", "trace_id", "metadata", "args", "iteration" };
  int is_table = lua_type(L, 3) == LUA_TTABLE;
  for (int i = 0; i < 5; i++) {
    if (is_table) lua_getfield(L, 3, keys[i]);
    else lua_pushnil(L);
  }
}

/* agent(input, ctx) -> output | nil: one run. input is a string or any JSON-able value;
 * ctx supplies persona, iteration, trace_id, metadata, args and the observe/span methods. */
static int agent_call(lua_State *L) {
  nagent *a = check_open(L);
  fluxloop_request req;
  fluxloop_response res;
  call_state cs;
  size_t in_off = 0, meta_off = 0, args_off = 0;
  int input_json;
  if (a->busy) return luaL_error(L, "native agent called again while it runs");
  lua_settop(L, 3);
  read_ctx(L);
  memset(&req, 0, sizeof req);
  memset(&res, 0, sizeof res);

  /* JSON texts go into the scratch buffer first; pointers are taken once it stops growing.
   * A buffer a huge input left behind is given back here, never while a response uses it. */
  if (a->scratch.cap > SCRATCH_KEEP) buf_free(&a->scratch);
  buf_reset(&a->scratch);
  input_json = lua_type(L, 2) != LUA_TSTRING;
  if (input_json) in_off = put_json(L, a, 2, "input");
  else req.input = lua_tolstring(L, 2, &req.input_len);
  if (!lua_isnil(L, 6)) meta_off = put_json(L, a, 6, "metadata");
  /* Replay calls the agent with ctx.args as its input: the same 2 KB, encoded once. */
  if (input_json && lua_rawequal(L, 2, 7)) args_off = in_off;
  else if (!lua_isnil(L, 7)) args_off = put_json(L, a, 7, "args");
  if (a->scratch.failed) return luaL_error(L, "not enough memory");
  if (input_json) {
    req.input = a->scratch.data + in_off;
    req.input_len = strlen(req.input); /* JSON text has no NUL of its own */
    req.input_flags = FLUXLOOP_INPUT_JSON;
  }
  req.metadata_json = lua_isnil(L, 6) ? "{}" : a->scratch.data + meta_off;
  req.args_json = lua_isnil(L, 7) ? NULL : a->scratch.data + args_off;
  req.persona = lua_type(L, 4) == LUA_TSTRING ? lua_tostring(L, 4) : NULL;
  req.trace_id = lua_type(L, 5) == LUA_TSTRING ? lua_tostring(L, 5) : "";
  req.iteration = (int64_t)lua_tointegerx(L, 8, NULL);

  memset(&cs, 0, sizeof cs);
  cs.L = L;
  cs.ctx = 3;
  cs.active = 1;
  cs.thread = pthread_self();
  req.host = &host_callbacks;
  req.host_data = &cs;

  a->busy = 1;
  native_enter(a->desc);
  a->desc->run(a->state, &req, &res);
  native_leave(a->desc);
  a->busy = 0;
  cs.active = 0;

  /* Copy what we keep; the response may point into the scratch buffer or alloc blocks. */
  if (res.error != NULL) {
    lua_pushstring(L, res.error);
    return raise_typed(L, res.error_type ? res.error_type : "agent_error", -1);
  }
  if (res.output == NULL) {
    lua_pushliteral(L, "native agent returned no output: set res->output (and output_len), or "
                       "res->error to fail the run");
    return raise_typed(L, "no_output", -1);
  }
  if (res.output_flags & FLUXLOOP_OUTPUT_JSON) {
    if (lconv_decode_json(L, res.output, res.output_len, "agent output") != 0) {
      lua_pushfstring(L, "the native agent's output is flagged as JSON but is not valid JSON: %s",
                      lua_tostring(L, -1));
      return raise_typed(L, "invalid_output", -1);
    }
    return 1;
  }
  lua_pushlstring(L, res.output, res.output_len);
  return 1;
}

/* ---- load ---------------------------------------------------------------- */

/* load(path, symbol [, config_json]) -> agent | nil, message, code
 * dlopen's the library, finds the descriptor, checks its ABI version and calls init with
 * config_json ("{}" by default). Each agent keeps its library loaded. */
static int native_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  const char *symbol = luaL_checkstring(L, 2);
  const char *config;
  char err[NATIVE_ERR_SIZE];
  native_status st;
  const fluxloop_agent *desc;
  nlib *lib;
  nagent *a;
  config = luaL_optstring(L, 3, "{}");
  lua_settop(L, 3);

  lib = lua_newuserdatauv(L, sizeof *lib, 0); /* 4 */
  lib->handle = NULL;
  luaL_setmetatable(L, LIB_MT);
  lib->handle = native_open(path, &st, err, sizeof err);
  if (lib->handle == NULL) goto fail;
  desc = native_agent(lib->handle, path, symbol, &st, err, sizeof err);
  if (desc == NULL) goto fail;

  /* The object exists before init, so a state that init made is always finished by __gc. */
  a = lua_newuserdatauv(L, sizeof *a, 3); /* 5 */
  memset(a, 0, sizeof *a);
  buf_init(&a->scratch);
  a->desc = desc;
  luaL_setmetatable(L, AGENT_MT);
  lua_pushvalue(L, 4);
  lua_setiuservalue(L, 5, 1);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, 5, 2);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, 5, 3);
  st = native_init(desc, path, symbol, config, &a->state, err, sizeof err);
  if (st != NATIVE_OK) goto fail;
  a->open = 1;
  return 1;

fail:
  luaL_pushfail(L);
  lua_pushstring(L, err);
  lua_pushstring(L, native_code(st));
  return 3;
}

static const luaL_Reg agent_methods[] = {
  { "close", agent_close },
  { "info", agent_info },
  { NULL, NULL }
};

static const luaL_Reg agent_meta[] = {
  { "__call", agent_call },
  { "__gc", agent_gc },
  { "__close", agent_gc },
  { "__tostring", agent_tostring },
  { NULL, NULL }
};

static const luaL_Reg native_funcs[] = {
  { "load", native_load },
  { NULL, NULL }
};

int luaopen_fluxloop_native(lua_State *L); /* the module's only export */
int luaopen_fluxloop_native(lua_State *L) {
  if (luaL_newmetatable(L, LIB_MT)) {
    lua_pushcfunction(L, lib_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, AGENT_MT)) {
    luaL_setfuncs(L, agent_meta, 0);
    luaL_newlib(L, agent_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_newlib(L, native_funcs);
  lua_pushinteger(L, FLUXLOOP_AGENT_ABI_VERSION);
  lua_setfield(L, -2, "ABI_VERSION");
  return 1;
}
