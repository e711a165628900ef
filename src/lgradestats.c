/* lgradestats.c - the fluxloop.gradestats module: per-grader figures of score lines
 * (src/gradestats.c), for `evaluate`, a resume and a merge, which read scores.jsonl back.
 *   gradestats.new(iterations) -> g;  g:add(k, grader, pass (true|false|nil), score|nil)
 *   g:add_line(text) -> true | false (not a score line);  g:figures() -> list (lgradestats.h)
 *   gradestats.read(path, iterations) -> figures, skipped_lines | nil, message, code */
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <string.h>

#include "jsonlread.h"
#include "lgradestats.h"

#define GRADESTATS_MT "fluxloop.GradeStats"

typedef struct lgs {
  gradestats_t *g;
} lgs;

void lgradestats_push(lua_State *L, gradestats_t *g) {
  int n = gradestats_count(g);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    grader_figures f;
    gradestats_get(g, i, &f);
    lua_createtable(L, 0, 8);
    lua_pushlstring(L, f.name, f.name_len); lua_setfield(L, -2, "name");
    lua_pushinteger(L, (lua_Integer)f.graded); lua_setfield(L, -2, "graded");
    lua_pushinteger(L, (lua_Integer)f.passed); lua_setfield(L, -2, "passed");
    lua_pushinteger(L, (lua_Integer)f.failed); lua_setfield(L, -2, "failed");
    lua_pushinteger(L, (lua_Integer)f.errors); lua_setfield(L, -2, "errors");
    lua_pushinteger(L, (lua_Integer)f.scored); lua_setfield(L, -2, "scored");
    lua_pushnumber(L, f.score_sum); lua_setfield(L, -2, "score_sum");
    lua_createtable(L, f.max_k, 0);
    for (int k = 1; k <= f.max_k; k++) {
      if (f.pass_hat_inputs[k] <= 0) break;
      lua_pushnumber(L, f.pass_hat_sum[k] / (double)f.pass_hat_inputs[k]);
      lua_rawseti(L, -2, k);
    }
    lua_setfield(L, -2, "pass_hat_k");
    lua_rawseti(L, -2, i + 1);
  }
}

static lgs *check_gs(lua_State *L) {
  lgs *x = luaL_checkudata(L, 1, GRADESTATS_MT);
  luaL_argcheck(L, x->g != NULL, 1, "grade statistics already freed");
  return x;
}

static int gs_gc(lua_State *L) {
  lgs *x = luaL_checkudata(L, 1, GRADESTATS_MT);
  gradestats_free(x->g);
  x->g = NULL;
  return 0;
}

static lgs *push_new(lua_State *L, lua_Integer iterations) {
  lgs *x = lua_newuserdatauv(L, sizeof *x, 0);
  x->g = NULL;
  luaL_setmetatable(L, GRADESTATS_MT);
  x->g = gradestats_new((int64_t)iterations);
  if (x->g == NULL) luaL_error(L, "not enough memory for grade statistics");
  return x;
}

static int gs_new(lua_State *L) {
  push_new(L, luaL_checkinteger(L, 1));
  return 1;
}

static int gs_add(lua_State *L) {
  lgs *x = check_gs(L);
  lua_Integer k = luaL_checkinteger(L, 2);
  size_t len;
  const char *name = luaL_checklstring(L, 3, &len);
  int outcome = lua_isboolean(L, 4) ? lua_toboolean(L, 4) : -1;
  double score = lua_isnumber(L, 5) ? (double)lua_tonumber(L, 5) : NAN;
  if (gradestats_add(x->g, (int64_t)k, name, len, outcome, score) != 0)
    return luaL_error(L, "not enough memory for grade statistics");
  return 0;
}

static int gs_add_line(lua_State *L) {
  lgs *x = check_gs(L);
  size_t n;
  const char *line = luaL_checklstring(L, 2, &n);
  int rc = gradestats_add_line(x->g, line, n);
  if (rc < 0) return luaL_error(L, "not enough memory for grade statistics");
  lua_pushboolean(L, rc == 0);
  return 1;
}

static int gs_figures(lua_State *L) {
  lgradestats_push(L, check_gs(L)->g);
  return 1;
}

/* read(path, iterations): one pass over a scores.jsonl in C. */
static int gs_read(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lgs *x = push_new(L, luaL_checkinteger(L, 2));
  jr_reader r;
  const char *line;
  size_t len;
  int complete, rc;
  lua_Integer skipped = 0;
  if (jr_open(&r, path) != 0) {
    int e = errno;
    luaL_pushfail(L);
    lua_pushfstring(L, "%s: %s", path, strerror(e));
    lua_pushstring(L, e == ENOENT ? "ENOENT" : "EIO");
    return 3;
  }
  while ((rc = jr_next(&r, &line, &len, &complete)) == 1) {
    int added = complete ? gradestats_add_line(x->g, line, len) : 1;
    if (added < 0) { jr_close(&r); return luaL_error(L, "not enough memory for grade statistics"); }
    skipped += added;
  }
  jr_close(&r);
  if (rc < 0) {
    luaL_pushfail(L);
    lua_pushfstring(L, "%s: %s", path, strerror(errno));
    lua_pushliteral(L, "EIO");
    return 3;
  }
  lgradestats_push(L, x->g);
  lua_pushinteger(L, skipped);
  return 2;
}

static const luaL_Reg gs_methods[] = {
  { "add", gs_add }, { "add_line", gs_add_line }, { "figures", gs_figures }, { NULL, NULL }
};

static const luaL_Reg gs_funcs[] = {
  { "new", gs_new }, { "read", gs_read }, { NULL, NULL }
};

int luaopen_fluxloop_gradestats(lua_State *L); /* the module's only export */
int luaopen_fluxloop_gradestats(lua_State *L) {
  if (luaL_newmetatable(L, GRADESTATS_MT)) {
    luaL_newlib(L, gs_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, gs_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_newlib(L, gs_funcs);
  return 1;
}
