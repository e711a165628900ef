/* lregex.c - the fluxloop.regex module: PCRE2 patterns (src/regex.c) for the regex grader.
 *   regex.compile(pattern [, flags]) -> re | nil, message, offset   (flags: "i", "m", "s")
 *   re:find(s) -> start, end (1-based, inclusive) | nil | raises when the search explodes
 *   re:test(s) -> boolean (raises likewise) */
#include <lauxlib.h>
#include <lua.h>

#include "regex.h"

#define REGEX_MT "fluxloop.Regex"

typedef struct lregex {
  fl_regex *re;
} lregex;

static int re_gc(lua_State *L) {
  lregex *x = luaL_checkudata(L, 1, REGEX_MT);
  regex_free(x->re);
  x->re = NULL;
  return 0;
}

static int parse_flags(lua_State *L, int idx) {
  size_t n;
  const char *f = luaL_optlstring(L, idx, "", &n);
  int flags = 0;
  for (size_t i = 0; i < n; i++) {
    switch (f[i]) {
      case 'i': flags |= REGEX_CASELESS; break;
      case 'm': flags |= REGEX_MULTILINE; break;
      case 's': flags |= REGEX_DOTALL; break;
      default: return luaL_argerror(L, idx, "flags are letters of \"ims\"");
    }
  }
  return flags;
}

static int re_compile(lua_State *L) {
  size_t n, where = 0;
  const char *pattern = luaL_checklstring(L, 1, &n);
  int flags = parse_flags(L, 2);
  char err[256];
  lregex *x = lua_newuserdatauv(L, sizeof *x, 0);
  x->re = NULL;
  luaL_setmetatable(L, REGEX_MT);
  x->re = regex_compile(pattern, n, flags, err, sizeof err, &where);
  if (x->re == NULL) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    lua_pushinteger(L, (lua_Integer)where + 1);
    return 3;
  }
  return 1;
}

/* Searches; on an exploding search raises its message (the grader turns it into an error). */
static int search(lua_State *L, size_t *start, size_t *end) {
  lregex *x = luaL_checkudata(L, 1, REGEX_MT);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  char err[256];
  int rc;
  luaL_argcheck(L, x->re != NULL, 1, "regex already freed");
  rc = regex_search(x->re, s, n, start, end, err, sizeof err);
  if (rc < 0) return luaL_error(L, "%s", err);
  return rc;
}

static int re_find(lua_State *L) {
  size_t start, end;
  if (!search(L, &start, &end)) {
    luaL_pushfail(L);
    return 1;
  }
  lua_pushinteger(L, (lua_Integer)start + 1);
  lua_pushinteger(L, (lua_Integer)end);
  return 2;
}

static int re_test(lua_State *L) {
  size_t start, end;
  lua_pushboolean(L, search(L, &start, &end));
  return 1;
}

static const luaL_Reg re_methods[] = {
  { "find", re_find }, { "test", re_test }, { NULL, NULL }
};

static const luaL_Reg re_funcs[] = {
  { "compile", re_compile }, { NULL, NULL }
};

int luaopen_fluxloop_regex(lua_State *L); /* the module's only export */
int luaopen_fluxloop_regex(lua_State *L) {
  if (luaL_newmetatable(L, REGEX_MT)) {
    luaL_newlib(L, re_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, re_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, re_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  luaL_newlib(L, re_funcs);
  return 1;
}
