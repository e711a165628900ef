/* lkmerge.c - the fluxloop.kmerge module: the C half of `fluxloop merge` (checks and
 * statistics over the shards' trace_summary.jsonl, k-way merge of each trace file). */
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>

#include "kmerge.h"
#include "lstats.h"

#define MERGER_MT "fluxloop.Merger"

typedef struct merger {
  kmerge_t m;
  int open;
} merger_t;

static merger_t *check_merger(lua_State *L) {
  merger_t *g = luaL_checkudata(L, 1, MERGER_MT);
  luaL_argcheck(L, g->open, 1, "merger is closed");
  return g;
}

/* new(planned, shards) -> merger: planned traces in the whole plan, N shards. */
static int kmerge_new(lua_State *L) {
  lua_Integer planned = luaL_checkinteger(L, 1), shards = luaL_checkinteger(L, 2);
  luaL_argcheck(L, planned >= 0, 1, "planned traces must be >= 0");
  luaL_argcheck(L, shards >= 1, 2, "shards must be >= 1");
  merger_t *g = lua_newuserdatauv(L, sizeof *g, 0);
  g->open = 0;
  luaL_setmetatable(L, MERGER_MT);
  if (kmerge_init(&g->m, planned, shards) != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, g->m.err);
    kmerge_free(&g->m);
    return 2;
  }
  g->open = 1;
  return 1;
}

/* m:scan(path, index [, limit]) -> { traces, failed, missing, first_missing = {k...}, torn
 * [, damaged, first_damaged (its line number)] } | fail, message */
static int merger_scan(lua_State *L) {
  merger_t *g = check_merger(L);
  const char *path = luaL_checkstring(L, 2);
  lua_Integer index = luaL_checkinteger(L, 3);
  lua_Integer limit = luaL_optinteger(L, 4, -1);
  kmerge_scan_t out;
  luaL_argcheck(L, index >= 0 && index < g->m.shards, 3, "shard index out of range");
  if (kmerge_scan(&g->m, path, index, limit, &out) != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, g->m.err);
    return 2;
  }
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, out.traces); lua_setfield(L, -2, "traces");
  lua_pushinteger(L, out.failed); lua_setfield(L, -2, "failed");
  lua_pushinteger(L, out.missing); lua_setfield(L, -2, "missing");
  lua_pushboolean(L, out.torn); lua_setfield(L, -2, "torn");
  lua_createtable(L, out.n_first_missing, 0);
  for (int i = 0; i < out.n_first_missing; i++) {
    lua_pushinteger(L, out.first_missing[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "first_missing");
  if (out.damaged > 0) {
    lua_pushinteger(L, out.damaged); lua_setfield(L, -2, "damaged");
    lua_pushinteger(L, out.first_damaged); lua_setfield(L, -2, "first_damaged");
  }
  return 1;
}

static void push_ks(lua_State *L, const int64_t *ks, int n, const char *field) {
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushinteger(L, ks[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, field);
}

/* m:check(index, traces_path, traces_limit, observations_path, observations_limit) -> { no_trace,
 * first_no_trace, short_obs, first_short_obs, damaged_traces, first_damaged_trace, damaged_obs,
 * first_damaged_obs } | fail, message. Traces found not whole leave the merge. */
static int merger_check(lua_State *L) {
  merger_t *g = check_merger(L);
  lua_Integer index = luaL_checkinteger(L, 2);
  kmerge_input_t t = { luaL_checkstring(L, 3), index, luaL_optinteger(L, 4, -1) };
  kmerge_input_t o = { luaL_checkstring(L, 5), index, luaL_optinteger(L, 6, -1) };
  kmerge_check_t out;
  luaL_argcheck(L, index >= 0 && index < g->m.shards, 2, "shard index out of range");
  if (kmerge_check(&g->m, &t, &o, &out) != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, g->m.err);
    return 2;
  }
  lua_createtable(L, 0, 8);
  lua_pushinteger(L, out.no_trace); lua_setfield(L, -2, "no_trace");
  push_ks(L, out.first_no_trace, out.n_first_no_trace, "first_no_trace");
  lua_pushinteger(L, out.short_obs); lua_setfield(L, -2, "short_obs");
  push_ks(L, out.first_short_obs, out.n_first_short_obs, "first_short_obs");
  lua_pushinteger(L, out.damaged_traces); lua_setfield(L, -2, "damaged_traces");
  lua_pushinteger(L, out.first_damaged_trace); lua_setfield(L, -2, "first_damaged_trace");
  lua_pushinteger(L, out.damaged_obs); lua_setfield(L, -2, "damaged_obs");
  lua_pushinteger(L, out.first_damaged_obs); lua_setfield(L, -2, "first_damaged_obs");
  return 1;
}

/* m:merge(out_path, { {path=, index=, limit=}, ... }, unique [, counts]) -> lines written | fail, message.
 * counts: the files are trace_summary.jsonl, whose merged runs make m:summary(). */
static int merger_merge(lua_State *L) {
  merger_t *g = check_merger(L);
  const char *out_path = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  int unique = lua_toboolean(L, 4), counts = lua_toboolean(L, 5);
  lua_Integer n = luaL_len(L, 3);
  luaL_argcheck(L, n >= 0 && n < 1000000, 3, "too many inputs");
  kmerge_input_t *in = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *in, 0); /* freed by the GC */
  for (lua_Integer i = 0; i < n; i++) {
    lua_geti(L, 3, i + 1);
    luaL_argcheck(L, lua_istable(L, -1), 3, "each input must be a table {path=, index=, limit=}");
    luaL_argcheck(L, lua_getfield(L, -1, "path") == LUA_TSTRING, 3, "each input needs a path (a string)");
    in[i].path = lua_tostring(L, -1); /* kept alive by the inputs table */
    lua_getfield(L, -2, "index");
    in[i].index = luaL_checkinteger(L, -1);
    luaL_argcheck(L, in[i].index >= 0 && in[i].index < g->m.shards, 3, "shard index out of range");
    lua_getfield(L, -3, "limit");
    in[i].limit = luaL_optinteger(L, -1, -1);
    lua_pop(L, 4);
  }
  int64_t written = kmerge_merge(&g->m, out_path, in, (int)n, unique, counts);
  if (written < 0) {
    luaL_pushfail(L);
    lua_pushstring(L, g->m.err);
    return 2;
  }
  lua_pushinteger(L, written);
  return 1;
}

/* m:summary() -> the statistics of every scanned run (see fluxloop.stats). */
static int merger_summary(lua_State *L) {
  merger_t *g = check_merger(L);
  stats_summary_t o;
  stats_summarize(&g->m.stats, &o);
  lstats_push(L, &o);
  return 1;
}

/* m:has(k) -> whether a scan found trace k. */
static int merger_has(lua_State *L) {
  merger_t *g = check_merger(L);
  lua_Integer k = luaL_checkinteger(L, 2);
  lua_pushboolean(L, k >= 1 && k <= g->m.planned && (g->m.present[(k - 1) >> 3] >> ((k - 1) & 7) & 1));
  return 1;
}

/* __gc, __close and m:close(): frees the bitmap and the durations, once. */
static int merger_close(lua_State *L) {
  merger_t *g = luaL_checkudata(L, 1, MERGER_MT);
  if (g->open) kmerge_free(&g->m);
  g->open = 0;
  return 0;
}

static const luaL_Reg merger_methods[] = {
  { "scan", merger_scan },
  { "merge", merger_merge },
  { "check", merger_check },
  { "summary", merger_summary },
  { "has", merger_has },
  { "close", merger_close },
  { NULL, NULL }
};

static const luaL_Reg kmerge_funcs[] = {
  { "new", kmerge_new },
  { NULL, NULL }
};

int luaopen_fluxloop_kmerge(lua_State *L); /* the module's only export */
int luaopen_fluxloop_kmerge(lua_State *L) {
  if (luaL_newmetatable(L, MERGER_MT)) {
    lua_pushcfunction(L, merger_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, merger_close);
    lua_setfield(L, -2, "__close");
    luaL_newlib(L, merger_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_newlib(L, kmerge_funcs);
  return 1;
}
