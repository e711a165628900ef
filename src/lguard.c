/* lguard.c - the fluxloop.guard module: runs an agent call under a time limit and stops it
 * on Ctrl-C, with a count hook that the agent's own pcall cannot swallow; protect() closes
 * the ways around it (coroutines made before a run, os.exit kept in a local). */
#include <lauxlib.h>
#include <lua.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "guard.h"
#include "sink.h"

/* After SIGINT/SIGTERM, runs in flight get this long to finish before they are stopped. */
#define GRACE_NS (2000LL * 1000000)
/* The hook looks at the clock every this many VM instructions (about a microsecond). */
#define HOOK_COUNT 1000

/* The signal state is process-wide by nature: a signal is delivered to the process, and
 * every worker state must see it. Only these two variables are static. */
static volatile sig_atomic_t signal_count = 0;
static volatile int64_t signal_ns = 0;

static void on_signal(int sig) {
  (void)sig;
  if (signal_count > 0) {
    /* Second Ctrl-C: at once, with the finished traces already in order written first. */
    sink_emergency_flush();
    _exit(130);
  }
  signal_ns = clock_mono_ns();      /* clock_gettime is async-signal-safe */
  signal_count = 1;
}

int guard_interrupted(void) { return signal_count > 0; }

static void on_sigpipe(int sig) { (void)sig; }

void guard_catch_sigpipe(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigpipe;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPIPE, &sa, NULL);
}

int64_t guard_interrupt_deadline(void) {
  return signal_count > 0 ? signal_ns + GRACE_NS : 0;
}

/* Per-state guard, kept in the state's extra space (lua_getextraspace) so the hook finds
 * it without a table lookup; coroutines get a copy of the pointer. */
static guard_state *state_guard(lua_State *L) {
  return *(guard_state **)lua_getextraspace(L);
}

/* Which limit has passed, if any: GUARD_TIMEOUT, GUARD_INTERRUPT or 0. */
int guard_expired(const guard_state *g, int64_t now) {
  int64_t stop_at;
  if (g == NULL || !g->armed) return 0;
  if (g->deadline && now >= g->deadline) return GUARD_TIMEOUT;
  stop_at = guard_interrupt_deadline();
  if (stop_at && now >= stop_at) return GUARD_INTERRUPT;
  return 0;
}

static void count_hook(lua_State *L, lua_Debug *ar) {
  guard_state *g = state_guard(L);
  int why;
  (void)ar;
  why = guard_expired(g, clock_mono_ns());
  if (!why) {
    /* A coroutine keeps its hook across runs: after a stop it may still fire every
     * instruction, so it goes back to the usual pace. */
    if (lua_gethookcount(L) != HOOK_COUNT) lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_COUNT);
    return;
  }
  g->fired = why;
  /* From now on every instruction raises, so a pcall inside the agent cannot keep it
   * alive: the raise lands outside it at the latest when it returns. */
  lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
  luaL_error(L, "%s", why == GUARD_TIMEOUT ? "run timed out" : "run interrupted");
}

/* The error table for a failed call: { type, message, traceback }. A table raised by
 * the agent keeps its own type, message and traceback (see below). Runs as the message handler, in C, so the
 * every-instruction hook does not fire inside it. */
static int msghandler(lua_State *L) {
  guard_state *g = state_guard(L);
  const char *msg;
  lua_createtable(L, 0, 3);
  if (g && g->fired) {
    if (g->fired == GUARD_TIMEOUT)
      lua_pushfstring(L, "run exceeded the time limit of %d ms (runner.timeout_ms / --timeout)", (int)g->limit_ms);
    else
      lua_pushliteral(L, "run interrupted (Ctrl-C) and did not finish within the grace period");
    lua_setfield(L, -2, "message");
    lua_pushstring(L, g->fired == GUARD_TIMEOUT ? "timeout" : "interrupted");
    lua_setfield(L, -2, "type");
    return 1;
  }
  lua_pushliteral(L, "error");
  lua_setfield(L, -2, "type");
  if (lua_type(L, 1) == LUA_TTABLE) {
    if (lua_getfield(L, 1, "type") == LUA_TSTRING) lua_setfield(L, -2, "type");
    else lua_pop(L, 1);
    lua_getfield(L, 1, "message");
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      luaL_tolstring(L, 1, NULL);
    } else if (!lua_isstring(L, -1)) {
      luaL_tolstring(L, -1, NULL);
      lua_remove(L, -2);
    }
  } else {
    luaL_tolstring(L, 1, NULL);
  }
  msg = lua_tostring(L, -1);
  /* Stack: error, result, message.  A raised table's own `traceback` wins: a string is kept,
   * false means none (a native agent's stack is not Lua's, so ours would only mislead). */
  if (lua_type(L, 1) == LUA_TTABLE && lua_getfield(L, 1, "traceback") != LUA_TNIL) {
    if (lua_type(L, -1) == LUA_TSTRING) lua_setfield(L, -3, "traceback");
    else lua_pop(L, 1);
  } else {
    if (lua_type(L, 1) == LUA_TTABLE) lua_pop(L, 1); /* the nil traceback field */
    luaL_traceback(L, L, msg, 1);
    lua_setfield(L, -3, "traceback");
  }
  lua_setfield(L, -2, "message");
  return 1;
}

static guard_state *get_or_make_guard(lua_State *L) {
  guard_state *g = state_guard(L);
  if (g != NULL) return g;
  /* Anchored in the registry for the state's lifetime. */
  g = lua_newuserdatauv(L, sizeof *g, 0);
  memset(g, 0, sizeof *g);
  lua_setfield(L, LUA_REGISTRYINDEX, "fluxloop.guard");
  *(guard_state **)lua_getextraspace(L) = g;
  return g;
}

/* call(timeout_ms, fn, ...) -> true, results... | false, { type, message, traceback } [, why]
 * timeout_ms 0 means no limit (Ctrl-C still stops the call after the grace period).
 * `why` is "timeout" or "interrupted" only when the guard itself stopped the call: an error
 * table the agent raises may say any type, but only a signal interrupts the experiment. */
static int guard_call(lua_State *L) {
  lua_Integer limit = luaL_checkinteger(L, 1);
  guard_state *g = get_or_make_guard(L);
  int64_t start;
  int status;
  luaL_checkany(L, 2);
  g->limit_ms = limit;
  g->fired = 0;
  start = clock_mono_ns();
  g->deadline = limit > 0 ? start + (int64_t)limit * 1000000 : 0;
  g->armed = 1;
  lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_COUNT);
  lua_pushcfunction(L, msghandler);
  lua_replace(L, 1); /* handler where the limit was: [handler, fn, args...] */
  status = lua_pcall(L, lua_gettop(L) - 2, LUA_MULTRET, 1);
  /* Disarm before any Lua instruction of ours runs. */
  g->armed = 0;
  lua_sethook(L, NULL, 0, 0);
  if (status == LUA_OK && g->deadline && clock_mono_ns() >= g->deadline) {
    /* Native code cannot be stopped midway: a call that came back late still fails. */
    g->fired = GUARD_TIMEOUT;
    lua_settop(L, 0);
    msghandler(L); /* pushes the timeout's error table */
    status = LUA_ERRRUN;
  }
  if (status != LUA_OK) {
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    if (!g->fired) return 2; /* false, error (a table; a string for a memory error) */
    lua_pushstring(L, g->fired == GUARD_TIMEOUT ? "timeout" : "interrupted");
    return 3;
  }
  lua_pushboolean(L, 1);
  lua_replace(L, 1); /* the handler's slot becomes `true` */
  return lua_gettop(L);
}

/* install(): Ctrl-C, SIGTERM and SIGHUP (a dropped SSH session) stop new runs; a second one
 * exits at once with status 130. SIGPIPE is caught: when the terminal or pipe that reads
 * fluxloop's output goes away (`| head`), writes fail and the experiment goes on. */
static int guard_install(lua_State *L) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  guard_catch_sigpipe();
  (void)L;
  return 0;
}

/* interrupted() -> whether Ctrl-C or SIGTERM has been received. */
static int guard_is_interrupted(lua_State *L) {
  lua_pushboolean(L, guard_interrupted());
  return 1;
}

/* The coroutine functions of protect(): every coroutine carries the count hook from birth,
 * so one made at module load and resumed inside a run is stopped like the run itself.
 * Outside guard.call the hook only checks `armed` once every HOOK_COUNT instructions. */
static lua_State *new_hooked_thread(lua_State *L) {
  lua_State *co;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  co = lua_newthread(L);
  lua_sethook(co, count_hook, LUA_MASKCOUNT, HOOK_COUNT);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1); /* the body waits on the new thread's stack */
  return co;
}

/* coroutine.create(f) */
static int guard_co_create(lua_State *L) {
  new_hooked_thread(L);
  return 1;
}

/* The function coroutine.wrap returns: resumes its thread (upvalue 1) with the arguments,
 * returns what it yields or returns, and raises what it raises (a string error gets the
 * caller's position, as Lua's own wrap does). */
static int guard_co_wrapped(lua_State *L) {
  lua_State *co = lua_tothread(L, lua_upvalueindex(1));
  int nargs = lua_gettop(L), nres, status;
  if (!lua_checkstack(co, nargs + 1)) return luaL_error(L, "too many arguments to resume");
  if (lua_status(co) == LUA_OK && lua_gettop(co) == 0) return luaL_error(L, "cannot resume dead coroutine");
  lua_xmove(L, co, nargs);
  status = lua_resume(co, L, nargs, &nres);
  if (status == LUA_OK || status == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      return luaL_error(L, "too many results to resume");
    }
    lua_xmove(co, L, nres);
    return nres;
  }
  lua_xmove(co, L, 1); /* the error */
  lua_resetthread(co); /* a dead coroutine closes its to-be-closed variables */
  if (status != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
    luaL_where(L, 1);
    lua_insert(L, -2);
    lua_concat(L, 2);
  }
  return lua_error(L);
}

/* coroutine.wrap(f) */
static int guard_co_wrap(lua_State *L) {
  new_hooked_thread(L);
  lua_pushcclosure(L, guard_co_wrapped, 1);
  return 1;
}

/* os.exit while a run goes on (inside guard.call, or between runs of the run loop) would
 * end the whole experiment with finished runs unsaved: it fails that run instead. Outside
 * runs it is Lua's own os.exit (upvalue 1). */
static int guard_os_exit(lua_State *L) {
  guard_state *g = state_guard(L);
  if (g != NULL && (g->armed || g->hold_exit)) {
    const char *code = lua_isnoneornil(L, 1) ? "true" : luaL_tolstring(L, 1, NULL);
    lua_createtable(L, 0, 2);
    lua_pushliteral(L, "exit");
    lua_setfield(L, -2, "type");
    lua_pushfstring(L, "the agent called os.exit(%s), which would end the whole experiment; "
                       "return a value or raise an error instead", code);
    lua_setfield(L, -2, "message");
    return lua_error(L);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 0);
  return 0;
}

static void replace_field(lua_State *L, const char *table, const char *name, lua_CFunction fn, int with_old) {
  lua_getglobal(L, table);
  if (!lua_istable(L, -1)) { lua_pop(L, 1); return; }
  if (with_old) {
    lua_getfield(L, -1, name);
    lua_pushcclosure(L, fn, 1);
  } else {
    lua_pushcfunction(L, fn);
  }
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
}

/* protect(): called by the host on every state before any user code runs, so no agent can
 * keep the unguarded functions: os.exit, coroutine.create and coroutine.wrap are replaced,
 * and the state's guard exists before the first coroutine copies its pointer. */
static int guard_protect(lua_State *L) {
  get_or_make_guard(L);
  replace_field(L, "os", "exit", guard_os_exit, 1);
  replace_field(L, "coroutine", "create", guard_co_create, 0);
  replace_field(L, "coroutine", "wrap", guard_co_wrap, 0);
  return 0;
}

/* hold_exit(on): the run loop holds os.exit for as long as it runs runs (hooks included). */
static int guard_hold_exit(lua_State *L) {
  get_or_make_guard(L)->hold_exit = lua_toboolean(L, 1);
  return 0;
}

static const luaL_Reg guard_funcs[] = {
  { "call", guard_call },
  { "install", guard_install },
  { "interrupted", guard_is_interrupted },
  { "protect", guard_protect },
  { "hold_exit", guard_hold_exit },
  { NULL, NULL }
};

int luaopen_fluxloop_guard(lua_State *L); /* the module's only export */
int luaopen_fluxloop_guard(lua_State *L) {
  luaL_newlib(L, guard_funcs);
  return 1;
}
