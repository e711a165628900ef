/* lclock.c - the fluxloop.clock module: monotonic ns, UTC ISO time, local folder stamp, sleep. */
#include <lauxlib.h>
#include <lua.h>

#include "clock.h"
#include "guard.h"

/* Sleeps are cut into slices so Ctrl-C and a run's time limit end them promptly. */
#define SLEEP_SLICE_NS (50 * 1000000LL)

/* now_ns() -> integer nanoseconds of the monotonic clock (for durations). */
static int clock_now_ns(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)clock_mono_ns());
  return 1;
}

/* wall_ns() -> integer nanoseconds since the epoch. */
static int clock_wall(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)clock_wall_ns());
  return 1;
}

/* utc_iso([wall_ns]) -> "2026-11-25T17:00:00.000012Z" (now when no argument). */
static int clock_utc_iso(lua_State *L) {
  char out[CLOCK_ISO_SIZE];
  int64_t ns = lua_isnoneornil(L, 1) ? clock_wall_ns() : (int64_t)luaL_checkinteger(L, 1);
  lua_pushlstring(L, out, clock_format_utc(ns, out));
  return 1;
}

/* local_stamp([wall_ns]) -> "YYYYMMDD_HHMMSS" in local time. */
static int clock_local_stamp(lua_State *L) {
  char out[16];
  int64_t ns = lua_isnoneornil(L, 1) ? clock_wall_ns() : (int64_t)luaL_checkinteger(L, 1);
  lua_pushlstring(L, out, clock_format_local_stamp(ns, out));
  return 1;
}

/* sleep(ms): blocks this worker (other workers go on) for ms milliseconds. Inside an agent
 * call with a time limit (fluxloop.guard), it ends the run when the limit passes. */
static int clock_sleep(lua_State *L) {
  lua_Number ms = luaL_checknumber(L, 1);
  guard_state *g = *(guard_state **)lua_getextraspace(L);
  int64_t now = clock_mono_ns(), end;
  luaL_argcheck(L, ms >= 0, 1, "expected milliseconds >= 0");
  end = now + (int64_t)(ms * 1e6);
  for (;;) {
    int64_t slice;
    int why = guard_expired(g, now);
    if (why) {
      g->fired = why;
      return luaL_error(L, "%s", why == GUARD_TIMEOUT ? "run timed out" : "run interrupted");
    }
    if (now >= end) break;
    slice = end - now;
    if (slice > SLEEP_SLICE_NS) slice = SLEEP_SLICE_NS;
    if (g && g->armed && g->deadline && g->deadline - now < slice) slice = g->deadline - now;
    clock_sleep_ms((double)slice / 1e6);
    now = clock_mono_ns();
  }
  return 0;
}

static const luaL_Reg clock_funcs[] = {
  { "now_ns", clock_now_ns },
  { "wall_ns", clock_wall },
  { "utc_iso", clock_utc_iso },
  { "local_stamp", clock_local_stamp },
  { "sleep", clock_sleep },
  { NULL, NULL }
};

int luaopen_fluxloop_clock(lua_State *L); /* the module's only export */
int luaopen_fluxloop_clock(lua_State *L) {
  luaL_newlib(L, clock_funcs);
  return 1;
}
