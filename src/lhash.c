/* lhash.c - the fluxloop.hash module: hash.sha256(s) -> 64 hex digits (src/sha256.c). */
#include <lauxlib.h>
#include <lua.h>

#include "sha256.h"

static int hash_sha256(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  char hex[2 * SHA256_BYTES + 1];
  sha256_hex(s, n, hex);
  lua_pushlstring(L, hex, 2 * SHA256_BYTES);
  return 1;
}

int luaopen_fluxloop_hash(lua_State *L); /* the module's only export */
int luaopen_fluxloop_hash(lua_State *L) {
  static const luaL_Reg funcs[] = { { "sha256", hash_sha256 }, { NULL, NULL } };
  luaL_newlib(L, funcs);
  return 1;
}
