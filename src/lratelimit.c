/* lratelimit.c - the fluxloop.ratelimit module: sets the experiment's shared request rate and
 * in-flight cap (src/ratelimit.c), which every fluxloop.http request obeys, and lets other
 * code take a token from the same bucket. */
#include <lauxlib.h>
#include <lua.h>

#include "guard.h"
#include "ratelimit.h"

static int cancel_cb(void *ud, int64_t now) {
  guard_state *g = ud;
  int64_t stop;
  if (g && g->armed) return guard_expired(g, now);
  stop = guard_interrupt_deadline();
  return stop && now >= stop ? GUARD_INTERRUPT : 0;
}

/* configure{requests_per_second = R, burst = B, max_concurrent = N} | configure(nil)
 * Sets the limits for every worker started after it (threads and --isolate processes);
 * nil or an empty table removes them. */
static int rl_configure(lua_State *L) {
  double rps = 0;
  lua_Integer burst = 1, cap = 0;
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_getfield(L, 1, "requests_per_second") != LUA_TNIL) {
      int ok;
      rps = lua_tonumberx(L, -1, &ok);
      luaL_argcheck(L, ok && rps > 0 && rps < 1e9, 1, "requests_per_second must be a number > 0");
    }
    if (lua_getfield(L, 1, "burst") != LUA_TNIL) {
      int ok;
      burst = lua_tointegerx(L, -1, &ok);
      luaL_argcheck(L, ok && burst >= 1 && burst <= 1000000, 1, "burst must be an integer >= 1");
    }
    if (lua_getfield(L, 1, "max_concurrent") != LUA_TNIL) {
      int ok;
      cap = lua_tointegerx(L, -1, &ok);
      luaL_argcheck(L, ok && cap >= 1 && cap <= RATELIMIT_MAX_CONCURRENT, 1,
                    "max_concurrent must be an integer from 1 to 4096");
    }
  }
  if (ratelimit_configure(rps, (int)burst, (int)cap) != RATELIMIT_OK)
    return luaL_error(L, "fluxloop.ratelimit: cannot map the shared page (out of memory)");
  return 0;
}

/* acquire() -> waited_ms: waits for a token of the shared bucket (at once when there is no
 * rate limit). Inside a run, the run's time limit and Ctrl-C end the wait with the run. */
static int rl_acquire(lua_State *L) {
  guard_state *g = *(guard_state **)lua_getextraspace(L);
  int64_t waited = 0;
  int why = 0;
  if (ratelimit_acquire(cancel_cb, g, &waited, &why, NULL) != RATELIMIT_OK) {
    if (g && g->armed) g->fired = why;
    return luaL_error(L, "%s", why == GUARD_TIMEOUT ? "run timed out" : "run interrupted");
  }
  lua_pushnumber(L, (lua_Number)waited / 1e6);
  return 1;
}

/* settings() -> {requests_per_second, burst, max_concurrent} | nil when no limit is set. */
static int rl_settings(lua_State *L) {
  double rps;
  int burst, cap;
  if (!ratelimit_active(&rps, &burst, &cap)) return 0;
  lua_createtable(L, 0, 3);
  if (rps > 0) {
    lua_pushnumber(L, rps);
    lua_setfield(L, -2, "requests_per_second");
    lua_pushinteger(L, burst);
    lua_setfield(L, -2, "burst");
  }
  if (cap > 0) {
    lua_pushinteger(L, cap);
    lua_setfield(L, -2, "max_concurrent");
  }
  return 1;
}

/* stats() -> {requests, waited_ms, in_flight}: since configure, over every worker. */
static int rl_stats(lua_State *L) {
  int64_t requests, waited, in_flight;
  ratelimit_stats(&requests, &waited, &in_flight);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, (lua_Integer)requests);
  lua_setfield(L, -2, "requests");
  lua_pushnumber(L, (lua_Number)waited / 1e6);
  lua_setfield(L, -2, "waited_ms");
  lua_pushinteger(L, (lua_Integer)in_flight);
  lua_setfield(L, -2, "in_flight");
  return 1;
}

static const luaL_Reg rl_funcs[] = {
  { "configure", rl_configure },
  { "acquire", rl_acquire },
  { "settings", rl_settings },
  { "stats", rl_stats },
  { NULL, NULL }
};

int luaopen_fluxloop_ratelimit(lua_State *L); /* the module's only export */
int luaopen_fluxloop_ratelimit(lua_State *L) {
  luaL_newlib(L, rl_funcs);
  return 1;
}
