/* lstats.c - the fluxloop.stats module: run statistics for Lua (a resume recounts the
 * traces already on disk) and a stable hash of a trace plan. */
#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>
#include <stdio.h>

#include "lstats.h"
#include "stats.h"

#define STATS_MT "fluxloop.Stats"

static stats_t *check_stats(lua_State *L) {
  return luaL_checkudata(L, 1, STATS_MT);
}

/* new() -> an empty accumulator. */
static int stats_new(lua_State *L) {
  stats_t *s = lua_newuserdatauv(L, sizeof *s, 0);
  stats_init(s);
  luaL_setmetatable(L, STATS_MT);
  return 1;
}

/* s:add(duration_ms, success) */
static int stats_add_l(lua_State *L) {
  stats_t *s = check_stats(L);
  if (stats_add(s, (double)luaL_checknumber(L, 2), lua_toboolean(L, 3)) != 0)
    return luaL_error(L, "not enough memory for run statistics");
  return 0;
}

void lstats_push(lua_State *L, const stats_summary_t *o) {
  lua_createtable(L, 0, 11);
  lua_pushinteger(L, (lua_Integer)o->count); lua_setfield(L, -2, "count");
  lua_pushinteger(L, (lua_Integer)o->successful); lua_setfield(L, -2, "successful");
  lua_pushinteger(L, (lua_Integer)o->failed); lua_setfield(L, -2, "failed");
  lua_pushnumber(L, o->min); lua_setfield(L, -2, "min");
  lua_pushnumber(L, o->mean); lua_setfield(L, -2, "mean");
  lua_pushnumber(L, o->p50); lua_setfield(L, -2, "p50");
  lua_pushnumber(L, o->p90); lua_setfield(L, -2, "p90");
  lua_pushnumber(L, o->p95); lua_setfield(L, -2, "p95");
  lua_pushnumber(L, o->p99); lua_setfield(L, -2, "p99");
  lua_pushnumber(L, o->max); lua_setfield(L, -2, "max");
  lua_pushnumber(L, o->stddev); lua_setfield(L, -2, "stddev");
}

/* s:summary() -> { count, successful, failed, min, mean, p50, p90, p95, p99, max, stddev } */
static int stats_summary_l(lua_State *L) {
  stats_summary_t o;
  stats_summarize(check_stats(L), &o);
  lstats_push(L, &o);
  return 1;
}

static int stats_gc(lua_State *L) {
  stats_free(check_stats(L));
  return 0;
}

/* hash(text) -> 16 hex digits of the 64-bit FNV-1a hash (not for security: it tells
 * whether a trace plan changed). */
static int stats_hash(lua_State *L) {
  size_t n;
  const unsigned char *p = (const unsigned char *)luaL_checklstring(L, 1, &n);
  uint64_t h = 1469598103934665603ULL;
  char out[17];
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 1099511628211ULL;
  }
  snprintf(out, sizeof out, "%016llx", (unsigned long long)h);
  lua_pushstring(L, out);
  return 1;
}

static const luaL_Reg stats_methods[] = {
  { "add", stats_add_l },
  { "summary", stats_summary_l },
  { NULL, NULL }
};

static const luaL_Reg stats_funcs[] = {
  { "new", stats_new },
  { "hash", stats_hash },
  { NULL, NULL }
};

int luaopen_fluxloop_stats(lua_State *L); /* the module's only export */
int luaopen_fluxloop_stats(lua_State *L) {
  if (luaL_newmetatable(L, STATS_MT)) {
    lua_pushcfunction(L, stats_gc);
    lua_setfield(L, -2, "__gc");
    luaL_newlib(L, stats_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_newlib(L, stats_funcs);
  return 1;
}
