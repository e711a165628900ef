/* ljson.c - the fluxloop.json module: encode and decode JSON text (conversion lives in lconv.c). */
#include "lconv.h"

#include <lauxlib.h>

#define BOX_MT "fluxloop.json.buffer"
#define KEEP_CAP (64 * 1024) /* a cached buffer larger than this is released after use */

/* The output buffer of encode.  One box per module is kept as an upvalue and
 * reused; a nested encode (from a __tostring) gets a fresh one. */
typedef struct box {
  buf_t b;
  int busy;
  int cached;
} box_t;

/* __close: after every encode, normal or not. */
static int box_close(lua_State *L) {
  box_t *x = luaL_checkudata(L, 1, BOX_MT);
  if (x->cached && x->b.cap <= KEEP_CAP) buf_reset(&x->b);
  else buf_free(&x->b);
  x->busy = 0;
  return 0;
}

static int box_gc(lua_State *L) {
  box_t *x = luaL_checkudata(L, 1, BOX_MT);
  buf_free(&x->b);
  return 0;
}

static box_t *new_box(lua_State *L, int cached) {
  box_t *x = lua_newuserdatauv(L, sizeof *x, 0);
  buf_init(&x->b);
  x->busy = 0;
  x->cached = cached;
  luaL_setmetatable(L, BOX_MT);
  return x;
}

/* encode(value [, {indent = n}]) -> string; raises on cycles, depth and bad keys. */
static int json_encode(lua_State *L) {
  int indent = -1;
  box_t *x;
  luaL_checkany(L, 1);
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "indent");
    if (!lua_isnil(L, -1)) {
      int ok;
      lua_Integer n = lua_tointegerx(L, -1, &ok);
      if (!ok || n < 0 || n > 64) luaL_argerror(L, 2, "indent must be an integer from 0 to 64");
      indent = (int)n;
    }
  }
  lua_settop(L, 2);
  x = lua_touserdata(L, lua_upvalueindex(1));
  if (x->busy) {
    x = new_box(L, 0);
  } else {
    lua_pushvalue(L, lua_upvalueindex(1));
    x->busy = 1;
  }
  lua_toclose(L, 3); /* stack: value opts box */
  if (lconv_encode_json(L, 1, &x->b, indent) != 0) return lua_error(L);
  lua_pushlstring(L, x->b.len ? x->b.data : "", x->b.len);
  return 1;
}

/* decode(text [, name]) -> value | nil, "name:line:col: problem" */
static int json_decode(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  const char *name = luaL_optstring(L, 2, "json");
  lua_settop(L, 2);
  if (lconv_decode_json(L, text, len, name) != 0) {
    luaL_pushfail(L);
    lua_insert(L, -2);
    return 2;
  }
  return 1;
}

/* array([t]) -> t (or a new table), marked so that it encodes as an array even when empty. */
static int json_array(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  } else {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
  }
  lconv_mark_array(L);
  return 1;
}

int luaopen_fluxloop_json(lua_State *L); /* the module's only export */
int luaopen_fluxloop_json(lua_State *L) {
  lua_createtable(L, 0, 5);
  if (luaL_newmetatable(L, BOX_MT)) {
    lua_pushcfunction(L, box_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  new_box(L, 1);
  lua_pushcclosure(L, json_encode, 1);
  lua_setfield(L, -2, "encode");
  lua_pushcfunction(L, json_decode);
  lua_setfield(L, -2, "decode");
  lua_pushcfunction(L, json_array);
  lua_setfield(L, -2, "array");
  lconv_push_null(L);
  lua_setfield(L, -2, "null");
  lconv_push_function_names(L);
  lua_setfield(L, -2, "function_names");
  lconv_push_array_mt(L);
  lua_setfield(L, -2, "array_mt");
  return 1;
}
