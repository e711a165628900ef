/* lplan.c - the fluxloop.plan module: an experiment's inputs held compactly (plan.c), read
 * like a list (#plan, plan[i], ipairs) with each entry decoded when it is asked for. */
#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>
#include <stdio.h>

#include "buf.h"
#include "lconv.h"
#include "plan.h"

#define PLAN_MT "fluxloop.Plan"

typedef struct {
  plan_t *plan;
} plan_ud;

static plan_ud *check_plan(lua_State *L) {
  plan_ud *u = luaL_checkudata(L, 1, PLAN_MT);
  if (u->plan == NULL) luaL_error(L, "the plan was released");
  return u;
}

static void push_plan(lua_State *L, plan_t *p) {
  plan_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->plan = p;
  luaL_setmetatable(L, PLAN_MT);
}

/* new() -> an empty plan. */
static int plan_new_l(lua_State *L) {
  plan_t *p = plan_new();
  if (p == NULL) return luaL_error(L, "not enough memory for the plan");
  push_plan(L, p);
  return 1;
}

/* plan:add(entry): stores the entry (a table) as JSON. */
static int plan_add_l(lua_State *L) {
  plan_ud *u = check_plan(L);
  buf_t b = BUF_INIT;
  luaL_checktype(L, 2, LUA_TTABLE);
  if (lconv_encode_json(L, 2, &b, -1) != 0) {
    buf_free(&b);
    return lua_error(L);
  }
  if (b.failed || plan_add(u->plan, b.data, b.len) != 0) {
    buf_free(&b);
    return luaL_error(L, "not enough memory for the plan");
  }
  buf_free(&b);
  return 0;
}

/* #plan -> the number of entries. */
static int plan_len_l(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)plan_count(check_plan(L)->plan));
  return 1;
}

/* plan[i] -> entry i (1-based) as a new table, nil past the end; plan.method -> method. */
static int plan_index_l(lua_State *L) {
  plan_ud *u = check_plan(L);
  if (lua_isinteger(L, 2)) {
    lua_Integer i = lua_tointeger(L, 2);
    size_t len;
    const char *text = i >= 1 ? plan_get(u->plan, (size_t)(i - 1), &len) : NULL;
    if (text == NULL) return 0;
    if (lconv_decode_json(L, text, len, "plan entry") != 0) return lua_error(L);
    return 1;
  }
  luaL_getmetafield(L, 1, "methods");
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

/* plan:json(i) -> entry i's JSON text. */
static int plan_json_l(lua_State *L) {
  plan_ud *u = check_plan(L);
  lua_Integer i = luaL_checkinteger(L, 2);
  size_t len;
  const char *text = i >= 1 ? plan_get(u->plan, (size_t)(i - 1), &len) : NULL;
  if (text == NULL) return 0;
  lua_pushlstring(L, text, len);
  return 1;
}

/* plan:hash(prefix, suffix) -> 16 hex digits: FNV-1a of prefix .. e1 .. "," .. e2 .. suffix,
 * the same as fluxloop.stats.hash of that text. */
static int plan_hash_l(lua_State *L) {
  plan_ud *u = check_plan(L);
  size_t plen, slen;
  const char *prefix = luaL_checklstring(L, 2, &plen);
  const char *suffix = luaL_checklstring(L, 3, &slen);
  char out[17];
  snprintf(out, sizeof out, "%016llx", (unsigned long long)plan_hash(u->plan, prefix, plen, suffix, slen));
  lua_pushstring(L, out);
  return 1;
}

/* plan:share() -> an integer handle for plan.attach in other states of this process (worker
 * threads). It is valid while this plan object lives: the owner keeps it while they start. */
static int plan_share_l(lua_State *L) {
  plan_ud *u = check_plan(L);
  lua_pushinteger(L, (lua_Integer)(uintptr_t)u->plan);
  return 1;
}

/* attach(handle) -> the shared plan, in this state, holding its own reference (a worker
 * stuck in an agent past the end keeps the entries it reads alive). */
static int plan_attach_l(lua_State *L) {
  lua_Integer h = luaL_checkinteger(L, 1);
  luaL_argcheck(L, h != 0, 1, "not a plan handle");
  plan_retain((plan_t *)(uintptr_t)h);
  push_plan(L, (plan_t *)(uintptr_t)h);
  return 1;
}

static int plan_gc_l(lua_State *L) {
  plan_ud *u = luaL_checkudata(L, 1, PLAN_MT);
  plan_release(u->plan);
  u->plan = NULL;
  return 0;
}

static int plan_tostring_l(lua_State *L) {
  plan_ud *u = luaL_checkudata(L, 1, PLAN_MT);
  lua_pushfstring(L, "fluxloop.Plan (%d entries)", u->plan ? (int)plan_count(u->plan) : 0);
  return 1;
}

static const luaL_Reg plan_methods[] = {
  { "add", plan_add_l },
  { "json", plan_json_l },
  { "hash", plan_hash_l },
  { "share", plan_share_l },
  { NULL, NULL }
};

static const luaL_Reg plan_funcs[] = {
  { "new", plan_new_l },
  { "attach", plan_attach_l },
  { NULL, NULL }
};

int luaopen_fluxloop_plan(lua_State *L); /* the module's only export */
int luaopen_fluxloop_plan(lua_State *L) {
  if (luaL_newmetatable(L, PLAN_MT)) {
    luaL_newlib(L, plan_methods);
    lua_setfield(L, -2, "methods");
    lua_pushcfunction(L, plan_index_l);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, plan_len_l);
    lua_setfield(L, -2, "__len");
    lua_pushcfunction(L, plan_gc_l);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, plan_tostring_l);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  luaL_newlib(L, plan_funcs);
  return 1;
}
