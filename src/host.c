/* host.c - Lua state set-up shared by fluxloop and fluxloop-lua: modules, paths, protected calls. */
#include "host.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Message handler: turns any error value into a string and appends a traceback. */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1; /* the object's own text is the message */
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int host_pcall(lua_State *L, int nargs, int nresults) {
  int status;
  int base = lua_gettop(L) - nargs; /* function index */
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base); /* handler under the function */
  status = lua_pcall(L, nargs, nresults, base);
  lua_remove(L, base);
  return status;
}

void host_report(lua_State *L, const char *progname) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "%s: %s\n", progname, msg ? msg : "(no error message)");
  fflush(stderr);
  lua_pop(L, 1);
}

/* Searcher for modules compiled into the binary: returns a loader, or a
 * "no embedded module" note for require's error message. */
static int embedded_searcher(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  const embedded_lua *m;
  for (m = embedded_lua_modules; m->name != NULL; m++) {
    if (strcmp(m->name, name) != 0) continue;
    if (luaL_loadbufferx(L, m->source, m->size, m->chunkname, "t") != LUA_OK)
      return luaL_error(L, "error loading embedded module '%s':\n\t%s", name, lua_tostring(L, -1));
    lua_pushstring(L, m->chunkname + 1); /* second loader argument: where it came from */
    return 2;
  }
  lua_pushfstring(L, "no embedded module '%s'", name);
  return 1;
}

/* package.searchers = { preload, files on package.path, embedded, C, C root }. */
static void install_embedded_searcher(lua_State *L) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchers");
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  for (lua_Integer i = n; i >= 3; i--) { /* shift C searchers up by one */
    lua_rawgeti(L, -1, i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushcfunction(L, embedded_searcher);
  lua_rawseti(L, -2, 3);
  lua_pop(L, 2);
}

static void preload_c_modules(lua_State *L) {
  const host_module *m;
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (m = host_modules; m->name != NULL; m++) {
    lua_pushcfunction(L, m->open);
    lua_setfield(L, -2, m->name);
  }
  lua_pop(L, 1);
}

/* Adds "DIR/?.lua;DIR/?/init.lua;" for each dir of a ':'-separated list. */
static void add_dirs(luaL_Buffer *b, const char *list) {
  while (list && *list) {
    const char *end = strchr(list, ':');
    size_t n = end ? (size_t)(end - list) : strlen(list);
    if (n > 0) {
      luaL_addlstring(b, list, n);
      luaL_addstring(b, "/?.lua;");
      luaL_addlstring(b, list, n);
      luaL_addstring(b, "/?/init.lua;");
    }
    list = end ? end + 1 : NULL;
  }
}

/* --lua-path DIR (or --lua-path=DIR) options first, then FLUXLOOP_LUA_PATH. */
static void set_user_path(lua_State *L, int argc, char **argv) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--lua-path") == 0 && i + 1 < argc)
      add_dirs(&b, argv[++i]);
    else if (strncmp(argv[i], "--lua-path=", 11) == 0)
      add_dirs(&b, argv[i] + 11);
  }
  add_dirs(&b, getenv("FLUXLOOP_LUA_PATH"));
  luaL_pushresult(&b); /* prefix */
  lua_getglobal(L, "package");
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "fluxloop_user_path");
  lua_getfield(L, -1, "path");
  lua_pushvalue(L, -3);
  lua_insert(L, -2);
  lua_concat(L, 2); /* prefix .. package.path */
  lua_setfield(L, -2, "path");
  lua_pop(L, 2);
}

void host_open(lua_State *L, int argc, char **argv) {
  /* Lua leaves the main thread's extra space uninitialised; fluxloop.guard keeps its
   * per-state pointer there (and coroutines copy it). */
  *(void **)lua_getextraspace(L) = NULL;
  luaL_openlibs(L);
  preload_c_modules(L);
  install_embedded_searcher(L);
  set_user_path(L, argc, argv);
  /* Before any user code runs: fluxloop.guard replaces os.exit and the coroutine
   * constructors, so an agent cannot keep the unguarded ones in a local. */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "fluxloop.guard");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "protect");
  lua_call(L, 0, 0);
  lua_pop(L, 1);
}

/* fluxloop.host: facts about this binary for the Lua layer (version, embedded modules and templates). */

/* A module is a .lua file outside lua/fluxloop/templates/; the rest are templates. */
static int is_module(const embedded_lua *m) {
  const char *path = m->chunkname + 1;
  size_t n = strlen(path);
  return n > 4 && strcmp(path + n - 4, ".lua") == 0 && strncmp(path, "lua/fluxloop/templates/", 23) != 0;
}

static int host_embedded(lua_State *L) {
  const embedded_lua *m;
  int i = 0;
  lua_newtable(L);
  for (m = embedded_lua_modules; m->name != NULL; m++) {
    if (!is_module(m)) continue;
    lua_pushstring(L, m->name);
    lua_rawseti(L, -2, ++i);
  }
  return 1;
}

/* embedded_files(prefix) -> the paths (lua/fluxloop/templates/...) of the embedded files that
 * start with prefix, in build order (sorted). */
static int host_embedded_files(lua_State *L) {
  size_t n;
  const char *prefix = luaL_checklstring(L, 1, &n);
  int i = 0;
  lua_newtable(L);
  for (const embedded_lua *m = embedded_lua_modules; m->name != NULL; m++) {
    if (strncmp(m->chunkname + 1, prefix, n) != 0) continue;
    lua_pushstring(L, m->chunkname + 1);
    lua_rawseti(L, -2, ++i);
  }
  return 1;
}

/* embedded_source(name) -> the text of an embedded file, by module name (fluxloop.run,
 * fluxloop.report.page.html) or by path (lua/fluxloop/templates/...), or nil. */
static int host_embedded_source(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  for (const embedded_lua *m = embedded_lua_modules; m->name != NULL; m++)
    if (strcmp(m->name, name) == 0 || strcmp(m->chunkname + 1, name) == 0) {
      lua_pushlstring(L, m->source, m->size);
      return 1;
    }
  return 0;
}

int luaopen_fluxloop_host(lua_State *L); /* the module's only export */
int luaopen_fluxloop_host(lua_State *L) {
  static const luaL_Reg funcs[] = {
    { "embedded_modules", host_embedded }, { "embedded_files", host_embedded_files },
    { "embedded_source", host_embedded_source }, { NULL, NULL }
  };
  luaL_newlib(L, funcs);
  lua_pushliteral(L, FLUXLOOP_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
