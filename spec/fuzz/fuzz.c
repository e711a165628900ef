/* fuzz.c - shared by the fuzz harnesses: one Lua state per process, a temp folder, loud failure. */
#include "fuzz.h"

#include <dirent.h>
#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host.h"

/* A fuzz harness is one process running one target, so statics are fine here. */
const char *fuzz_input_name;
static lua_State *state;
static char tmpdir[64];

void fuzz_fail(const char *fmt, ...) {
  va_list ap;
  fputs("fuzz: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  if (fuzz_input_name) fprintf(stderr, "\nfuzz: while running %s", fuzz_input_name);
  fputc('\n', stderr);
  fflush(stderr);
  abort();
}

/* Removes path and everything below it (the harnesses only make a few files). */
static void remove_tree(const char *path) {
  struct stat st;
  DIR *d;
  struct dirent *e;
  char sub[4096];
  if (lstat(path, &st) != 0) return;
  if (S_ISDIR(st.st_mode) && (d = opendir(path)) != NULL) {
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      if ((size_t)snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) < sizeof sub)
        remove_tree(sub);
    }
    closedir(d);
    rmdir(path);
  } else {
    unlink(path);
  }
}

static void cleanup(void) {
  if (tmpdir[0]) remove_tree(tmpdir);
  if (state) lua_close(state);
  state = NULL;
}

const char *fuzz_tmpdir(void) {
  if (tmpdir[0] == '\0') {
    const char *base = getenv("TMPDIR");
    if (base == NULL || *base == '\0' || strlen(base) > 40) base = "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/fluxloop-fuzz.XXXXXX", base);
    if (mkdtemp(tmpdir) == NULL) fuzz_fail("cannot create a temporary folder under %s", base);
  }
  return tmpdir;
}

/* fuzzlib, a Lua module the drivers require: value comparison and message checks. */
static const char fuzzlib[] =
  "-- fuzzlib: checks shared by the Lua drivers of spec/fuzz/*.c.\n"
  "local json = require(\"fluxloop.json\")\n"
  "local null, array_mt = json.null, json.array_mt\n"
  "local F = {}\n"
  "\n"
  "local function fail(fmt, ...) error(fmt:format(...), 0) end\n"
  "F.fail = fail\n"
  "\n"
  "local function same(a, b, path, seen, json_side)\n"
  "  local ta, tb = type(a), type(b)\n"
  "  if ta == \"number\" and tb == \"number\" then\n"
  "    if a ~= a and b ~= b then return true end\n"
  "    if a == b and math.type(a) == math.type(b) then return true end\n"
  "    return false, path\n"
  "  end\n"
  "  if json_side and ta == \"number\" and (a ~= a or a == math.huge or a == -math.huge) then\n"
  "    return b == null, path\n"
  "  end\n"
  "  if ta ~= \"table\" or tb ~= \"table\" then return rawequal(a, b), path end\n"
  "  if getmetatable(a) ~= getmetatable(b) then return false, path .. \" (list or mapping)\" end\n"
  "  local sa = seen[a]\n"
  "  if sa and sa[b] then return true end\n"
  "  if not sa then sa = {} seen[a] = sa end\n"
  "  sa[b] = true\n"
  "  for k, v in pairs(a) do\n"
  "    local ok, where = same(v, b[k], path .. \".\" .. tostring(k), seen, json_side)\n"
  "    if not ok then return false, where end\n"
  "  end\n"
  "  for k in pairs(b) do\n"
  "    if rawget(a, k) == nil then return false, path .. \".\" .. tostring(k) .. \" (extra)\" end\n"
  "  end\n"
  "  return true\n"
  "end\n"
  "\n"
  "-- Raises unless a and b are the same value (NaN equals NaN, integer ~= float);\n"
  "-- with json_side, b came through JSON, where NaN and infinities are null.\n"
  "function F.same(a, b, what, json_side)\n"
  "  local ok, where = same(a, b, \"value\", {}, json_side)\n"
  "  if not ok then fail(\"%s: values differ at %s\", what, where or \"?\") end\n"
  "end\n"
  "\n"
  "-- Raises unless every line of msg starts with \"NAME:LINE:COL: \" (or matches one\n"
  "-- of the allowed patterns, anchored).\n"
  "function F.positioned(msg, names, what, allowed)\n"
  "  if type(msg) ~= \"string\" then fail(\"%s: message is %s, not a string\", what, type(msg)) end\n"
  "  if type(names) == \"string\" then names = { names } end\n"
  "  for line in (msg .. \"\\n\"):gmatch(\"(.-)\\n\") do\n"
  "    local ok = false\n"
  "    for _, name in ipairs(names) do\n"
  "      local prefix = line:sub(1, #name + 1)\n"
  "      local l, c = line:match(\"^:(%d+):(%d+): \", #name + 1)\n"
  "      if prefix == name .. \":\" and l and tonumber(l) >= 1 and tonumber(c) >= 1 then ok = true end\n"
  "    end\n"
  "    for _, pat in ipairs(allowed or {}) do\n"
  "      if line:find(pat) then ok = true end\n"
  "    end\n"
  "    if not ok then fail(\"%s: a message line without file:line:col: %q\", what, line) end\n"
  "  end\n"
  "end\n"
  "\n"
  "-- Raises unless marks (from decode with marks) are well formed.\n"
  "function F.check_marks(marks)\n"
  "  if type(marks) ~= \"table\" or type(marks[\"\"]) ~= \"table\" then fail(\"marks: no root record\") end\n"
  "  for p, m in pairs(marks) do\n"
  "    for _, f in ipairs({ \"line\", \"col\", \"key_line\", \"key_col\" }) do\n"
  "      local v = m[f]\n"
  "      if (v ~= nil or f == \"line\" or f == \"col\") and (math.type(v) ~= \"integer\" or v < 1) then\n"
  "        fail(\"marks[%q].%s is %s\", p, f, tostring(v))\n"
  "      end\n"
  "    end\n"
  "    if m.keys ~= nil then\n"
  "      for i, k in ipairs(m.keys) do\n"
  "        if type(k) ~= \"string\" then fail(\"marks[%q].keys[%d] is a %s\", p, i, type(k)) end\n"
  "      end\n"
  "    end\n"
  "  end\n"
  "end\n"
  "\n"
  "F.null, F.array_mt = null, array_mt\n"
  "return F\n";

static int open_fuzzlib(lua_State *L) {
  if (luaL_loadbufferx(L, fuzzlib, sizeof fuzzlib - 1, "=(fuzzlib)", "t") != LUA_OK) return lua_error(L);
  lua_call(L, 0, 1);
  return 1;
}

static int open_all(lua_State *L) {
  host_open(L, 0, NULL);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, open_fuzzlib);
  lua_setfield(L, -2, "fuzzlib");
  return 0;
}

lua_State *fuzz_state(void) {
  if (state == NULL) {
    state = luaL_newstate();
    if (state == NULL) fuzz_fail("cannot create a Lua state");
    lua_pushcfunction(state, open_all);
    if (host_pcall(state, 0, 0) != LUA_OK) fuzz_fail("host_open: %s", lua_tostring(state, -1));
    fuzz_tmpdir();
    atexit(cleanup);
  }
  return state;
}

/* Pushes the check function of driver, loading it on first use (cached in the registry). */
static void push_driver(lua_State *L, const char *driver, const char *chunkname) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, chunkname) == LUA_TFUNCTION) return;
  lua_pop(L, 1);
  if (luaL_loadbufferx(L, driver, strlen(driver), chunkname, "t") != LUA_OK)
    fuzz_fail("%s", lua_tostring(L, -1));
  if (host_pcall(L, 0, 1) != LUA_OK || !lua_isfunction(L, -1))
    fuzz_fail("%s: %s", chunkname, lua_isstring(L, -1) ? lua_tostring(L, -1) : "no check function");
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, chunkname);
}

void fuzz_run_lua(const char *driver, const char *chunkname, const uint8_t *data, size_t size) {
  lua_State *L = fuzz_state();
  int top = lua_gettop(L);
  push_driver(L, driver, chunkname);
  lua_pushlstring(L, (const char *)data, size);
  lua_pushstring(L, fuzz_tmpdir());
  if (host_pcall(L, 2, 0) != LUA_OK) fuzz_fail("%s", lua_tostring(L, -1));
  lua_settop(L, top);
}
