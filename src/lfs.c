/* lfs.c - the fluxloop.fs module: the few file-system and terminal calls the Lua layer needs. */
#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

/* Pushes fail, "path: strerror", "ECODE" (the convention for environmental failures). */
static int push_errno(lua_State *L, const char *path, int err) {
  const char *code;
  switch (err) {
    case ENOENT: code = "ENOENT"; break;
    case EEXIST: code = "EEXIST"; break;
    case EACCES: code = "EACCES"; break;
    case ENOTDIR: code = "ENOTDIR"; break;
    case ENOSPC: code = "ENOSPC"; break;
    default: code = "EIO"; break;
  }
  luaL_pushfail(L);
  lua_pushfstring(L, "%s: %s", path, strerror(err));
  lua_pushstring(L, code);
  return 3;
}

/* getcwd() -> absolute path of the current directory. */
static int fs_getcwd(lua_State *L) {
  char buf[PATH_MAX];
  if (getcwd(buf, sizeof buf) == NULL) return push_errno(L, ".", errno);
  lua_pushstring(L, buf);
  return 1;
}

/* realpath(p) -> canonical absolute path | fail, msg, code. */
static int fs_realpath(lua_State *L) {
  const char *p = luaL_checkstring(L, 1);
  char buf[PATH_MAX];
  if (realpath(p, buf) == NULL) return push_errno(L, p, errno);
  lua_pushstring(L, buf);
  return 1;
}

/* exists(p) -> boolean. */
static int fs_exists(lua_State *L) {
  struct stat st;
  lua_pushboolean(L, stat(luaL_checkstring(L, 1), &st) == 0);
  return 1;
}

/* executable(p) -> whether p is a file this process may execute (as execvp would find it). */
static int fs_executable(lua_State *L) {
  const char *p = luaL_checkstring(L, 1);
  struct stat st;
  lua_pushboolean(L, stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0);
  return 1;
}

/* isdir(p) -> boolean. */
static int fs_isdir(lua_State *L) {
  struct stat st;
  lua_pushboolean(L, stat(luaL_checkstring(L, 1), &st) == 0 && S_ISDIR(st.st_mode));
  return 1;
}

/* mkdir(p) -> true | fail, msg, code ("EEXIST" when it already exists). */
static int fs_mkdir(lua_State *L) {
  const char *p = luaL_checkstring(L, 1);
  if (mkdir(p, 0777) != 0) return push_errno(L, p, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* mkdirs(p) -> true | fail, msg, code: creates p and its missing parents. */
static int fs_mkdirs(lua_State *L) {
  size_t n;
  const char *p = luaL_checklstring(L, 1, &n);
  char buf[PATH_MAX];
  struct stat st;
  if (n == 0 || n >= sizeof buf) return push_errno(L, p, ENAMETOOLONG);
  memcpy(buf, p, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != '\0') continue;
    buf[i] = '\0';
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return push_errno(L, buf, errno);
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) return push_errno(L, buf, ENOTDIR);
    if (i < n) buf[i] = '/';
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* truncate(p, size) -> true | fail, msg, code: cuts a file to size bytes (a resume drops
 * a torn last line this way). */
static int fs_truncate(lua_State *L) {
  const char *p = luaL_checkstring(L, 1);
  lua_Integer size = luaL_checkinteger(L, 2);
  luaL_argcheck(L, size >= 0, 2, "size must be >= 0");
  if (truncate(p, (off_t)size) != 0) return push_errno(L, p, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* remove_files_dir(dir) -> true | fail, msg, code: removes a folder of plain files (no
 * subfolders), as a resume does with its scratch folder. */
static int fs_remove_files_dir(lua_State *L) {
  const char *p = luaL_checkstring(L, 1);
  DIR *d = opendir(p);
  struct dirent *e;
  char buf[PATH_MAX];
  if (d == NULL) return push_errno(L, p, errno);
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    snprintf(buf, sizeof buf, "%s/%s", p, e->d_name);
    if (unlink(buf) != 0) { int err = errno; closedir(d); return push_errno(L, buf, err); }
  }
  closedir(d);
  if (rmdir(p) != 0) return push_errno(L, p, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* list(dir) -> sorted list of the names in dir (without . and ..) | fail, msg, code. */
static int fs_list(lua_State *L) {
  const char *p = luaL_checkstring(L, 1);
  DIR *d = opendir(p);
  struct dirent *e;
  lua_Integer n = 0;
  if (d == NULL) return push_errno(L, p, errno);
  lua_newtable(L);
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    lua_pushstring(L, e->d_name);
    lua_rawseti(L, -2, ++n);
  }
  closedir(d);
  /* sorted by table.sort, so the order does not depend on the file system */
  lua_getglobal(L, "table");
  lua_getfield(L, -1, "sort");
  lua_pushvalue(L, -3);
  lua_call(L, 1, 0);
  lua_pop(L, 1);
  return 1;
}

/* size(p) -> bytes in the file | fail, msg, code. */
static int fs_size(lua_State *L) {
  const char *p = luaL_checkstring(L, 1);
  struct stat st;
  if (stat(p, &st) != 0) return push_errno(L, p, errno);
  lua_pushinteger(L, (lua_Integer)st.st_size);
  return 1;
}

/* setenv(name, value): sets a variable of this process's environment (runner.env), which
 * the agent reads with os.getenv, native agents with getenv. Call before workers start. */
static int fs_setenv(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  const char *value = luaL_checkstring(L, 2);
  if (setenv(name, value, 1) != 0) return push_errno(L, name, errno);
  lua_pushboolean(L, 1);
  return 1;
}

extern char **environ;

/* environ() -> { NAME = value } of this process's environment (the secrets an agent could
 * read with os.getenv are masked in its traces: fluxloop.secrets). */
static int fs_environ(lua_State *L) {
  lua_newtable(L);
  for (char **e = environ; e && *e; e++) {
    const char *eq = strchr(*e, '=');
    if (eq == NULL || eq == *e) continue;
    lua_pushlstring(L, *e, (size_t)(eq - *e));
    lua_pushstring(L, eq + 1);
    lua_rawset(L, -3);
  }
  return 1;
}

/* isatty(fd) -> boolean; fd 1 is stdout, 2 stderr. */
static int fs_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}

/* peak_rss_kb(["children"]) -> peak resident set size in KiB of this process, or of the
 * largest child waited for (for benchmarks that run the binary). */
static int fs_peak_rss_kb(lua_State *L) {
  static const char *const whose[] = { "self", "children", NULL };
  struct rusage ru;
  int opt = luaL_checkoption(L, 1, "self", whose);
  getrusage(opt == 0 ? RUSAGE_SELF : RUSAGE_CHILDREN, &ru);
  lua_pushinteger(L, ru.ru_maxrss);
  return 1;
}

static const luaL_Reg fs_funcs[] = {
  { "getcwd", fs_getcwd },
  { "realpath", fs_realpath },
  { "exists", fs_exists },
  { "isdir", fs_isdir },
  { "executable", fs_executable },
  { "mkdir", fs_mkdir },
  { "mkdirs", fs_mkdirs },
  { "isatty", fs_isatty },
  { "truncate", fs_truncate },
  { "setenv", fs_setenv },
  { "environ", fs_environ },
  { "remove_files_dir", fs_remove_files_dir },
  { "list", fs_list },
  { "size", fs_size },
  { "peak_rss_kb", fs_peak_rss_kb },
  { NULL, NULL }
};

int luaopen_fluxloop_fs(lua_State *L); /* the module's only export */
int luaopen_fluxloop_fs(lua_State *L) {
  luaL_newlib(L, fs_funcs);
  return 1;
}
