/* lrules.c - the fluxloop.rules module: rule graders on the output's text, in C (src/rules.c),
 * for fluxloop.grade, which keeps the other graders in Lua.
 *   rules.new() -> rs;  rs:add{type=, name=, value=, values=, flags=, limit=} -> true | nil, message
 *   rs:grade(trace_id, text, duration_ms) -> the trace's lines of scores.jsonl (one a rule)
 * The recorder grades with a set itself when a trace's scores name it (lrules.h).
 *   rs:count() -> rules */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "lrules.h"
#include "regex.h"

#define RULES_MT "fluxloop.Rules"

typedef struct lrules {
  rules_t *r;
  buf_t out;
} lrules;

static const char *const TYPES[] = { "equals", "contains", "icontains", "not_contains", "starts_with", "regex",
                                     "one_of", "max_length", "max_latency_ms", NULL };
static const int TYPE_IDS[] = { RULE_EQUALS, RULE_CONTAINS, RULE_ICONTAINS, RULE_NOT_CONTAINS, RULE_STARTS_WITH,
                                RULE_REGEX, RULE_ONE_OF, RULE_MAX_LENGTH, RULE_MAX_LATENCY };

/* The metatable's registry key by address: lrules_to runs for every graded trace, and a
 * lookup by name would hash the name each time. */
static const char rules_mt_key = 0;

rules_t *lrules_to(lua_State *L, int idx) {
  lrules *x = lua_touserdata(L, idx);
  int same;
  if (x == NULL || !lua_getmetatable(L, idx)) return NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &rules_mt_key);
  same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return same ? x->r : NULL;
}

static lrules *check_rules(lua_State *L) {
  lrules *x = luaL_checkudata(L, 1, RULES_MT);
  luaL_argcheck(L, x->r != NULL, 1, "rules already freed");
  return x;
}

static int rules_gc(lua_State *L) {
  lrules *x = luaL_checkudata(L, 1, RULES_MT);
  rules_free(x->r);
  x->r = NULL;
  buf_free(&x->out);
  return 0;
}

static int rules_new_l(lua_State *L) {
  lrules *x = lua_newuserdatauv(L, sizeof *x, 0);
  x->r = NULL;
  buf_init(&x->out);
  luaL_setmetatable(L, RULES_MT);
  x->r = rules_new();
  if (x->r == NULL) return luaL_error(L, "not enough memory");
  return 1;
}

static int regex_flags(const char *f) {
  int flags = 0;
  for (; f && *f; f++) {
    if (*f == 'i') flags |= REGEX_CASELESS;
    else if (*f == 'm') flags |= REGEX_MULTILINE;
    else if (*f == 's') flags |= REGEX_DOTALL;
  }
  return flags;
}

/* rs:add(spec): spec is a checked grader spec (fluxloop.grade.rules). */
static int rules_add_l(lua_State *L) {
  lrules *x = check_rules(L);
  size_t name_len, value_len = 0;
  const char *name, *value = NULL;
  char err[256];
  int type;
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_getfield(L, 2, "type");
  type = TYPE_IDS[luaL_checkoption(L, -1, NULL, TYPES)];
  lua_getfield(L, 2, "name");
  name = luaL_checklstring(L, -1, &name_len);
  if (lua_getfield(L, 2, "value") == LUA_TSTRING) value = lua_tolstring(L, -1, &value_len);
  lua_getfield(L, 2, "flags");
  lua_getfield(L, 2, "value");
  double limit = lua_type(L, -1) == LUA_TNUMBER ? (double)lua_tonumber(L, -1) : 0;
  if (rules_add(x->r, type, name, name_len, value, value_len, regex_flags(lua_tostring(L, -2)), limit, err,
                sizeof err) != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  if (type == RULE_ONE_OF && lua_getfield(L, 2, "values") == LUA_TTABLE) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
      size_t len;
      lua_rawgeti(L, -1, i);
      const char *v = luaL_checklstring(L, -1, &len);
      if (rules_add_value(x->r, v, len) != 0) return luaL_error(L, "not enough memory");
      lua_pop(L, 1);
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int rules_grade_l(lua_State *L) {
  lrules *x = check_rules(L);
  size_t tid_len, n;
  const char *tid = luaL_checklstring(L, 2, &tid_len);
  const char *text = luaL_checklstring(L, 3, &n);
  double ms = (double)luaL_optnumber(L, 4, 0);
  buf_reset(&x->out);
  rules_grade(x->r, &x->out, tid, tid_len, text, n, ms);
  if (x->out.failed) return luaL_error(L, "not enough memory for the grades");
  lua_pushlstring(L, x->out.data ? x->out.data : "", x->out.len);
  return 1;
}

static int rules_count_l(lua_State *L) {
  lua_pushinteger(L, rules_count(check_rules(L)->r));
  return 1;
}

static const luaL_Reg rules_methods[] = {
  { "add", rules_add_l }, { "grade", rules_grade_l }, { "count", rules_count_l }, { NULL, NULL }
};

static const luaL_Reg rules_funcs[] = {
  { "new", rules_new_l }, { NULL, NULL }
};

int luaopen_fluxloop_rules(lua_State *L); /* the module's only export */
int luaopen_fluxloop_rules(lua_State *L) {
  if (luaL_newmetatable(L, RULES_MT)) {
    luaL_newlib(L, rules_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, rules_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &rules_mt_key);
  }
  lua_pop(L, 1);
  luaL_newlib(L, rules_funcs);
  return 1;
}
