/* main.c - the fluxloop command: a protected pmain that hands argv to the Lua layer (fluxloop.main). */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>

#include "guard.h"
#include "host.h"
#include "lalloc.h"

/* Exit status when the Lua layer itself fails (a bug or a broken override). */
#define EXIT_INTERNAL 70

/* Runs require("fluxloop.main").main(args) and leaves its exit status on the stack. */
static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  host_open(L, argc, argv);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "fluxloop.main");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "main");
  lua_createtable(L, argc > 0 ? argc - 1 : 0, 0);
  for (int i = 1; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i);
  }
  lua_call(L, 1, 1);
  return 1;
}

int main(int argc, char **argv) {
  int status;
  lua_State *L;
  /* Output into a pipe that closed (`fluxloop run experiment | head -n 1`) must not kill the
   * experiment: writes fail instead, and the runs go on. */
  guard_catch_sigpipe();
  L = lalloc_newstate();
  if (L == NULL) {
    fprintf(stderr, "fluxloop: cannot create Lua state: not enough memory\n");
    return EXIT_INTERNAL;
  }
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  if (host_pcall(L, 2, 1) != LUA_OK) {
    host_report(L, "fluxloop");
    status = EXIT_INTERNAL;
  } else {
    status = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : 0;
  }
  lalloc_close(L); /* closes files the Lua layer left open, flushing them */
  return status;
}
