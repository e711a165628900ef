/* lproc.c - the fluxloop.proc module: long-lived worker processes spoken to in lines
 * (proc.c), for agents that are programs; every read and write inside a run obeys the run's
 * time limit, and Ctrl-C. */
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "guard.h"
#include "signame.h"
#include "proc.h"

#define PROC_MT "fluxloop.Proc"
#define MAX_ARGS 256
#define MAX_ENV 256

static proc_t *check_proc(lua_State *L) {
  return luaL_checkudata(L, 1, PROC_MT);
}

/* spawn(argv [, {cwd = dir, env = {NAME = value}}]) -> worker | nil, message */
static int proc_spawn_l(lua_State *L) {
  char *argv[MAX_ARGS + 1], *env[MAX_ENV + 1];
  const char *cwd = NULL;
  int argc, nenv = 0;
  proc_t *p;
  luaL_checktype(L, 1, LUA_TTABLE);
  argc = (int)luaL_len(L, 1);
  luaL_argcheck(L, argc >= 1 && argc <= MAX_ARGS, 1, "a command is a list of 1 to 256 words");
  for (int i = 0; i < argc; i++) {
    lua_geti(L, 1, i + 1);
    argv[i] = (char *)luaL_checkstring(L, -1); /* kept alive by the table */
    lua_pop(L, 1);
  }
  argv[argc] = NULL;
  if (lua_istable(L, 2)) {
    if (lua_getfield(L, 2, "cwd") == LUA_TSTRING) cwd = lua_tostring(L, -1);
    lua_pop(L, 1); /* the options table keeps the string alive */
    if (lua_getfield(L, 2, "env") == LUA_TTABLE) {
      lua_pushnil(L);
      while (lua_next(L, -2) != 0 && nenv < MAX_ENV) {
        if (lua_type(L, -2) == LUA_TSTRING) {
          /* Name first: luaL_tolstring pushes, so the key's index must be read before it
           * (the order C evaluates arguments in is not fixed). */
          const char *name = lua_tostring(L, -2);
          const char *value = luaL_tolstring(L, -1, NULL);
          lua_pushfstring(L, "%s=%s", name, value);
          lua_remove(L, -2);
          env[nenv++] = (char *)lua_tostring(L, -1);
          /* anchored in the registry's list below until the fork is done */
          lua_rawsetp(L, LUA_REGISTRYINDEX, env[nenv - 1]);
        }
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
  }
  env[nenv] = NULL;
  p = lua_newuserdatauv(L, sizeof *p, 0);
  proc_init(p);
  luaL_setmetatable(L, PROC_MT);
  if (proc_spawn(p, argv, cwd, env) != 0) {
    int e = errno;
    for (int i = 0; i < nenv; i++) { lua_pushnil(L); lua_rawsetp(L, LUA_REGISTRYINDEX, env[i]); }
    lua_pushnil(L);
    lua_pushfstring(L, "cannot start %s: %s", argv[0], strerror(e));
    return 2;
  }
  for (int i = 0; i < nenv; i++) { lua_pushnil(L); lua_rawsetp(L, LUA_REGISTRYINDEX, env[i]); }
  return 1;
}

static int guard_stop(void *data) {
  return guard_expired((const guard_state *)data, clock_mono_ns()) != 0;
}

static int signal_stop(void *data) {
  (void)data;
  return guard_interrupted();
}

/* Every wait on a worker obeys the run it belongs to: inside a run (fluxloop.guard), the
 * run's time limit and Ctrl-C (after the grace period); outside one (starting a worker),
 * wait_ms and Ctrl-C at once. */
typedef struct wait_rule {
  guard_state *g;
  int armed;
  int64_t deadline;
  int (*stop)(void *);
} wait_rule;

static wait_rule rule_of(lua_State *L, int wait_arg) {
  wait_rule r;
  lua_Integer wait_ms = luaL_optinteger(L, wait_arg, 0);
  r.g = *(guard_state **)lua_getextraspace(L);
  r.armed = r.g != NULL && r.g->armed;
  r.deadline = wait_ms > 0 ? clock_mono_ns() + (int64_t)wait_ms * 1000000 : 0;
  r.stop = r.armed ? guard_stop : signal_stop;
  return r;
}

/* A wait ended without its line or its write: when the run's limit stopped it, the
 * worker's group is killed and the run fails like any run over its limit (this raises);
 * else the reason, "timeout" or "interrupted", is pushed. */
static int push_stopped(lua_State *L, proc_t *p, const wait_rule *r) {
  if (r->armed) {
    int why = guard_expired(r->g, clock_mono_ns());
    if (why) {
      proc_kill(p);
      r->g->fired = why;
      return luaL_error(L, "%s", why == GUARD_TIMEOUT ? "run timed out" : "run interrupted");
    }
  }
  lua_pushnil(L);
  lua_pushstring(L, !r->armed && guard_interrupted() ? "interrupted" : "timeout");
  return 2;
}

/* w:send(text [, wait_ms]) -> true | nil, "closed" | "timeout" | "interrupted"
 * "closed": the worker does not take input (it exited or closed its stdin). */
static int proc_send_l(lua_State *L) {
  proc_t *p = check_proc(L);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  wait_rule r = rule_of(L, 3);
  int rc = proc_write(p, s, n, r.deadline, r.stop, r.g, 50);
  if (rc == 1) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (rc == 0) return push_stopped(L, p, &r);
  lua_pushnil(L);
  lua_pushliteral(L, "closed");
  return 2;
}

/* w:read_line([wait_ms]) -> line | nil, "eof" | "timeout" | "interrupted" | "too_long" */
static int proc_read_line_l(lua_State *L) {
  proc_t *p = check_proc(L);
  wait_rule r = rule_of(L, 2);
  const char *line;
  size_t len;
  int rc = proc_read_line(p, r.deadline, r.stop, r.g, 50, &line, &len);
  if (rc == 1) {
    lua_pushlstring(L, line, len);
    return 1;
  }
  if (rc == 0) return push_stopped(L, p, &r);
  lua_pushnil(L);
  lua_pushstring(L, rc == -2 ? "too_long" : "eof");
  return 2;
}

/* w:unread() -> bytes sent to the worker that it has not read yet: after its end of
 * file, whether it ever read the last request. */
static int proc_unread_l(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)proc_unread(check_proc(L)));
  return 1;
}

/* w:take_stderr() -> what the worker wrote on stderr since the last call (its tail). */
static int proc_take_stderr_l(lua_State *L) {
  proc_t *p = check_proc(L);
  lua_pushlstring(L, p->err.data ? p->err.data : "", p->err.len);
  buf_reset(&p->err);
  return 1;
}

/* w:status([wait_ms]) -> "running" | "exited", code | "signal", name, number */
static int proc_status_l(lua_State *L) {
  proc_t *p = check_proc(L);
  if (!proc_reap(p, (int)luaL_optinteger(L, 2, 0))) {
    lua_pushliteral(L, "running");
    return 1;
  }
  if (WIFSIGNALED(p->status)) {
    lua_pushliteral(L, "signal");
    lua_pushstring(L, signal_name(WTERMSIG(p->status)));
    lua_pushinteger(L, WTERMSIG(p->status));
    return 3;
  }
  lua_pushliteral(L, "exited");
  lua_pushinteger(L, WIFEXITED(p->status) ? WEXITSTATUS(p->status) : -1);
  return 2;
}

/* w:kill(): ends the worker's whole process group. */
static int proc_kill_l(lua_State *L) {
  proc_kill(check_proc(L));
  return 0;
}

/* w:pid() -> the worker's process id. */
static int proc_pid_l(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_proc(L)->pid);
  return 1;
}

/* getpid() -> this process's id (a forked --isolate worker must start its own agents). */
static int proc_getpid_l(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)proc_self());
  return 1;
}

/* w:usable() -> whether this process started the worker and it has not been reaped (killed
 * at a time limit, or found dead): no system call, asked before every run. */
static int proc_usable_l(lua_State *L) {
  lua_pushboolean(L, proc_usable(check_proc(L)));
  return 1;
}

/* __gc / __close: the worker never outlives its handle. Only the process that started it
 * kills it: a forked copy of the handle (an --isolate worker) leaves it alone. */
static int proc_gc_l(lua_State *L) {
  proc_t *p = luaL_checkudata(L, 1, PROC_MT);
  if (p->pid > 0 && p->owner == proc_self()) proc_kill(p);
  proc_close(p);
  return 0;
}

static const luaL_Reg proc_methods[] = {
  { "send", proc_send_l },
  { "read_line", proc_read_line_l },
  { "unread", proc_unread_l },
  { "take_stderr", proc_take_stderr_l },
  { "status", proc_status_l },
  { "kill", proc_kill_l },
  { "pid", proc_pid_l },
  { "usable", proc_usable_l },
  { NULL, NULL }
};

static const luaL_Reg proc_funcs[] = {
  { "spawn", proc_spawn_l },
  { "getpid", proc_getpid_l },
  { NULL, NULL }
};

int luaopen_fluxloop_proc(lua_State *L); /* the module's only export */
int luaopen_fluxloop_proc(lua_State *L) {
  if (luaL_newmetatable(L, PROC_MT)) {
    luaL_newlib(L, proc_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, proc_gc_l);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, proc_gc_l);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  luaL_newlib(L, proc_funcs);
  return 1;
}
