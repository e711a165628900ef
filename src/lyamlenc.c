/* lyamlenc.c - encode() of fluxloop.yaml: walks a Lua value (tables as mappings or
 * sequences, a mapping's keys in the marks' order when given) into yamlemit.c's emitter.
 * The rest of the module is lyaml.c; lyaml.h is what both share. */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "lconv.h"
#include "lyaml.h"
#include "yamlemit.h"
#include "yamlscalar.h"

int lyaml_emitter_close(lua_State *L) {
  yamlemit_close((yamlemit_t *)luaL_checkudata(L, 1, EMITTER_MT));
  return 0;
}

typedef struct {
  lua_State *L;
  yamlemit_t *e;
  int order;    /* stack index of opts.order, or 0 */
  int array_mt; /* stack index */
} estate;

/* Raises what the emitter said unless ok. */
static void check(estate *s, int ok) {
  if (!ok) luaL_error(s->L, "yaml.encode: %s", s->e->error);
}

/* Pushes the text used for table key k (at index idx): strings and numbers only. */
static void push_key_text(estate *s, int idx) {
  lua_State *L = s->L;
  char num[64];
  switch (lua_type(L, idx)) {
  case LUA_TSTRING: lua_pushvalue(L, idx); break;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, idx));
    else lua_pushlstring(L, num, scalar_format_float(num, (double)lua_tonumber(L, idx)));
    break;
  case LUA_TBOOLEAN: lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false"); break;
  default: luaL_error(L, "yaml.encode: cannot use a %s as a mapping key", luaL_typename(L, idx));
  }
}

/* Pushes the path of a child (only when ordering): parent "" -> "k", else "parent.k". */
static int push_child_path(estate *s, int path, int key) {
  const char *p, *k;
  if (!path) return 0;
  p = lua_tostring(s->L, path);
  k = lua_tostring(s->L, key);
  if (*p) lua_pushfstring(s->L, "%s.%s", p, k); else lua_pushstring(s->L, k);
  return lua_gettop(s->L);
}

static void emit_value(estate *s, int idx, int depth, int path);

/* Emits key k of t and its value; list[2i-1] is key i's text, list[2i] the key itself. */
static void emit_member(estate *s, int t, int list, yamlkey_t *k, int depth, int path) {
  lua_State *L = s->L;
  int top = lua_gettop(L), cp;
  k->done = 1;
  check(s, yamlemit_string(s->e, k->s, k->n));
  lua_rawgeti(L, list, 2 * k->index - 1);
  cp = push_child_path(s, path, top + 1);
  lua_rawgeti(L, list, 2 * k->index);
  lua_rawget(L, t);
  emit_value(s, lua_gettop(L), depth + 1, cp);
  lua_settop(L, top);
}

/* A mapping: the keys the marks list for its path first (opts.order), then the rest sorted. */
static void emit_mapping(estate *s, int t, int depth, int path) {
  lua_State *L = s->L;
  int list, top;
  lua_Integer n = 0, i;
  yamlkey_t *keys;
  const yamlkey_t *dup;
  lua_newtable(L);
  list = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, t)) { /* k v */
    lua_pop(L, 1);
    push_key_text(s, -1);
    lua_rawseti(L, list, 2 * ++n - 1);
    lua_pushvalue(L, -1);
    lua_rawseti(L, list, 2 * n);
  }
  keys = (yamlkey_t *)lua_newuserdatauv(L, sizeof(yamlkey_t) * (size_t)(n ? n : 1), 0);
  top = lua_gettop(L);
  for (i = 0; i < n; i++) {
    lua_rawgeti(L, list, 2 * i + 1);
    keys[i].s = lua_tolstring(L, -1, &keys[i].n); /* kept alive by list */
    keys[i].index = i + 1;
    keys[i].done = 0;
    lua_pop(L, 1);
  }
  if ((dup = yamlemit_sort_keys(keys, (size_t)n)) != NULL) luaL_error(L, "yaml.encode: two keys read as '%s'", dup->s);
  check(s, yamlemit_start(s->e, 1, n == 0));
  if (s->order && path && lua_getfield(L, s->order, lua_tostring(L, path)) == LUA_TTABLE &&
      lua_getfield(L, -1, "keys") == LUA_TTABLE) {
    int order = lua_gettop(L);
    for (i = 1; lua_rawgeti(L, order, i) != LUA_TNIL; i++) {
      size_t len;
      const char *name = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
      yamlkey_t *k = name ? yamlemit_find_key(keys, (size_t)n, name, len) : NULL;
      if (k && !k->done) emit_member(s, t, list, k, depth, path);
      lua_pop(L, 1);
    }
  }
  lua_settop(L, top);
  for (i = 0; i < n; i++)
    if (!keys[i].done) emit_member(s, t, list, &keys[i], depth, path);
  check(s, yamlemit_end(s->e, 1));
  lua_settop(L, list - 1);
}

/* Length of t as a sequence: array-marked -> its length; else n when the keys are exactly
 * 1..n with n > 0; else -1 (a mapping). */
static lua_Integer sequence_length(estate *s, int t) {
  lua_State *L = s->L;
  lua_Integer n = 0, max = 0;
  if (lua_getmetatable(L, t)) {
    int arr = lua_rawequal(L, -1, s->array_mt);
    lua_pop(L, 1);
    if (arr) return (lua_Integer)lua_rawlen(L, t);
  }
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) { lua_pop(L, 1); return -1; }
    if (lua_tointeger(L, -1) > max) max = lua_tointeger(L, -1);
    n++;
  }
  return n > 0 && max == n ? n : -1;
}

static void emit_value(estate *s, int idx, int depth, int path) {
  lua_State *L = s->L;
  size_t n;
  const char *text;
  lua_Integer len, i;
  switch (lua_type(L, idx)) {
  case LUA_TNIL: check(s, yamlemit_plain(s->e, "null", 4)); return;
  case LUA_TBOOLEAN:
    check(s, lua_toboolean(L, idx) ? yamlemit_plain(s->e, "true", 4) : yamlemit_plain(s->e, "false", 5));
    return;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) check(s, yamlemit_integer(s->e, (long long)lua_tointeger(L, idx)));
    else check(s, yamlemit_float(s->e, (double)lua_tonumber(L, idx)));
    return;
  case LUA_TSTRING:
    text = lua_tolstring(L, idx, &n);
    check(s, yamlemit_string(s->e, text, n));
    return;
  case LUA_TTABLE: break;
  default:
    if (lconv_isnull(L, idx)) { check(s, yamlemit_plain(s->e, "null", 4)); return; }
    text = luaL_tolstring(L, idx, &n);
    check(s, yamlemit_string(s->e, text, n)); /* leaves the text: callers reset the stack */
    return;
  }
  if (depth > LCONV_MAX_DEPTH)
    luaL_error(L, "yaml.encode: nested deeper than %d levels (or a table contains itself)", LCONV_MAX_DEPTH);
  luaL_checkstack(L, 16, "yaml.encode: nested too deep");
  len = sequence_length(s, idx);
  if (len < 0) { emit_mapping(s, idx, depth, path); return; }
  check(s, yamlemit_start(s->e, 0, len == 0));
  for (i = 1; i <= len; i++) {
    int top = lua_gettop(L), cp = 0;
    if (path) {
      lua_pushinteger(L, i);
      cp = push_child_path(s, path, lua_gettop(L));
    }
    lua_rawgeti(L, idx, i);
    emit_value(s, lua_gettop(L), depth + 1, cp);
    lua_settop(L, top);
  }
  check(s, yamlemit_end(s->e, 0));
}

int lyaml_encode(lua_State *L) {
  estate s;
  int path = 0;
  luaL_checkany(L, 1);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  s.L = L;
  s.order = 0;
  if (lua_istable(L, 2) && lua_getfield(L, 2, "order") == LUA_TTABLE) {
    s.order = lua_gettop(L);
    lua_pushliteral(L, "");
    path = lua_gettop(L);
  }
  lconv_push_array_mt(L);
  s.array_mt = lua_gettop(L);
  s.e = (yamlemit_t *)lua_newuserdatauv(L, sizeof *s.e, 0);
  memset(s.e, 0, sizeof *s.e);
  luaL_setmetatable(L, EMITTER_MT);
  lua_toclose(L, -1);
  check(&s, yamlemit_open(s.e));
  emit_value(&s, 1, 1, path); /* the root is level 1, as in decode */
  check(&s, yamlemit_finish(s.e));
  lua_pushlstring(L, s.e->out.data, s.e->out.len);
  return 1;
}
