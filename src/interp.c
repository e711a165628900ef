/* interp.c - fluxloop-lua: runs a Lua script with every fluxloop module available (used by the specs). */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>

#include "host.h"
#include "lalloc.h"

/* arg[0] = script, arg[1..] = its arguments, as lua.c does; then runs the script. */
static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  host_open(L, argc, argv);
  lua_createtable(L, argc - 2, 2);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - 1);
  }
  lua_setglobal(L, "arg");
  if (luaL_loadfile(L, argv[1]) != LUA_OK) return lua_error(L);
  luaL_checkstack(L, argc, "too many arguments"); /* the script's arguments go on the stack at once */
  for (int i = 2; i < argc; i++) lua_pushstring(L, argv[i]);
  lua_call(L, argc - 2, 1);
  return 1;
}

int main(int argc, char **argv) {
  int status = EXIT_SUCCESS;
  lua_State *L;
  if (argc < 2) {
    fprintf(stderr, "usage: %s script.lua [args...]\n", argv[0]);
    return 2;
  }
  L = lalloc_newstate();
  if (L == NULL) return EXIT_FAILURE;
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  if (host_pcall(L, 2, 1) != LUA_OK) {
    host_report(L, argv[0]);
    status = EXIT_FAILURE;
  } else if (lua_isinteger(L, -1)) {
    status = (int)lua_tointeger(L, -1);
  }
  lalloc_close(L);
  return status;
}
