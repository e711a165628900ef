/* ljsonlread.c - the fluxloop.jsonlread module: reads the chosen top-level fields of each line of a
 * JSONL file, streaming, and skips (and counts) damaged lines. */
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "jsonlread.h"

#define READER_MT "fluxloop.JsonlReader"
#define MAX_KEYS 32
#define KEEP_DAMAGED 20 /* damaged lines named one by one; the rest are only counted */

/* How a field is handed to Lua. */
enum { AS_VALUE, AS_RAW, AS_HASH, AS_COUNT };

typedef struct reader {
  jr_reader r;
  int nkeys;
  const char *keys[MAX_KEYS];
  size_t keylens[MAX_KEYS];
  int mode[MAX_KEYS];
  jv_span spans[MAX_KEYS];
  const char *line; /* the last line returned, valid until the next call */
  size_t len;
  long long damaged;
  long long damaged_line[KEEP_DAMAGED];
  char damaged_why[KEEP_DAMAGED][80];
  int incomplete_last; /* the file ended inside a line */
  buf_t tmp;
  int closed;
} reader_t;

static reader_t *check_reader(lua_State *L) {
  reader_t *x = luaL_checkudata(L, 1, READER_MT);
  if (x->closed) luaL_error(L, "jsonlread: the reader is closed");
  return x;
}

static int reader_close(lua_State *L) {
  reader_t *x = luaL_checkudata(L, 1, READER_MT);
  if (!x->closed) {
    jr_close(&x->r);
    buf_free(&x->tmp);
    x->closed = 1;
  }
  return 0;
}

/* open(path, keys) -> reader | nil, message, code. keys: field names; "=name" gives the
 * raw JSON text of the value, "#name" a 64-bit hash of that text (equal values, equal hashes),
 * "*name" the number of elements of an array (nil when the value is no array). */
static int jl_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int nkeys;
  reader_t *x;
  luaL_checktype(L, 2, LUA_TTABLE);
  nkeys = (int)luaL_len(L, 2);
  luaL_argcheck(L, nkeys <= MAX_KEYS, 2, "too many keys");
  x = lua_newuserdatauv(L, sizeof *x, 1);
  memset(x, 0, sizeof *x);
  x->closed = 1;
  luaL_setmetatable(L, READER_MT);
  /* The key strings are kept alive in a table held by the userdata. */
  lua_createtable(L, nkeys, 0);
  for (int i = 0; i < nkeys; i++) {
    size_t n;
    const char *k;
    lua_geti(L, 2, i + 1);
    k = luaL_checklstring(L, -1, &n);
    x->mode[i] = AS_VALUE;
    if (n > 0 && (k[0] == '=' || k[0] == '#' || k[0] == '*')) {
      x->mode[i] = k[0] == '=' ? AS_RAW : (k[0] == '#' ? AS_HASH : AS_COUNT);
      k++;
      n--;
    }
    x->keys[i] = k;
    x->keylens[i] = n;
    lua_rawseti(L, -2, i + 1);
  }
  lua_setiuservalue(L, -2, 1);
  x->nkeys = nkeys;
  buf_init(&x->tmp);
  if (jr_open(&x->r, path) != 0) {
    int err = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(err));
    lua_pushstring(L, err == ENOENT ? "ENOENT" : "EIO");
    return 3;
  }
  x->closed = 0;
  return 1;
}

static void note_damage(reader_t *x, const char *why, size_t where) {
  if (x->damaged < KEEP_DAMAGED) {
    int i = (int)x->damaged;
    x->damaged_line[i] = x->r.lineno;
    snprintf(x->damaged_why[i], sizeof x->damaged_why[i], "%s at byte %zu", why ? why : "not JSON", where + 1);
  }
  x->damaged++;
}

static void push_span(lua_State *L, reader_t *x, int i) {
  const jv_span *v = &x->spans[i];
  const char *p;
  size_t n;
  if (v->type == JV_ABSENT) { lua_pushnil(L); return; }
  if (x->mode[i] == AS_COUNT) {
    long long count = jv_count(v);
    if (count < 0) lua_pushnil(L);
    else lua_pushinteger(L, (lua_Integer)count);
    return;
  }
  if (x->mode[i] != AS_VALUE) {
    jv_raw(v, &p, &n);
    if (x->mode[i] == AS_HASH) lua_pushinteger(L, (lua_Integer)jv_hash(p, n));
    else lua_pushlstring(L, p, n);
    return;
  }
  switch (v->type) {
  case JV_NULL: lua_pushnil(L); break;
  case JV_TRUE: lua_pushboolean(L, 1); break;
  case JV_FALSE: lua_pushboolean(L, 0); break;
  case JV_NUMBER: {
    char tmp[64];
    if (v->n < sizeof tmp) {
      memcpy(tmp, v->p, v->n);
      tmp[v->n] = '\0';
      if (lua_stringtonumber(L, tmp) != 0) break;
    }
    lua_pushlstring(L, v->p, v->n);
    lua_pushnumber(L, strtod(lua_tostring(L, -1), NULL));
    lua_remove(L, -2);
    break;
  }
  case JV_STRING:
    if (!v->escaped) { lua_pushlstring(L, v->p, v->n); break; }
    buf_reset(&x->tmp);
    jv_unescape(v, &x->tmp);
    if (x->tmp.failed) luaL_error(L, "jsonlread: out of memory");
    lua_pushlstring(L, x->tmp.data, x->tmp.len);
    break;
  default: /* objects and arrays: their JSON text, for json.decode when wanted */
    lua_pushlstring(L, v->p, v->n);
  }
}

/* r:next() -> lineno, field values... | nil at the end | nil, message on a read error. Damaged
 * lines are skipped and counted. */
static int reader_next(lua_State *L) {
  reader_t *x = check_reader(L);
  for (;;) {
    const char *line, *why = NULL;
    size_t len, where = 0;
    int complete, rc = jr_next(&x->r, &line, &len, &complete);
    if (rc < 0) { /* the disk, not the caller: nil and a message, like the end but said */
      lua_pushnil(L);
      lua_pushfstring(L, "line %I: read error: %s", (lua_Integer)(x->r.lineno + 1), strerror(errno));
      return 2;
    }
    if (rc == 0) { x->line = NULL; lua_pushnil(L); return 1; }
    if (len == 0 && complete) continue; /* a blank line is not damage */
    if (jv_scan(line, len, x->keys, x->keylens, x->nkeys, x->spans, &why, &where) != 0 || !complete) {
      if (!complete) {
        x->incomplete_last = 1;
        if (why == NULL) why = "the file ends inside this line (no newline)";
        else why = "the file ends inside this line";
        where = len;
      }
      note_damage(x, why, where);
      continue;
    }
    x->line = line;
    x->len = len;
    luaL_checkstack(L, x->nkeys + 1, "too many fields");
    lua_pushinteger(L, (lua_Integer)x->r.lineno);
    for (int i = 0; i < x->nkeys; i++) push_span(L, x, i);
    return x->nkeys + 1;
  }
}

/* r:line() -> the text of the line last returned by next(), and its byte offset in the file. */
static int reader_line(lua_State *L) {
  reader_t *x = check_reader(L);
  if (x->line == NULL) return 0;
  lua_pushlstring(L, x->line, x->len);
  lua_pushinteger(L, (lua_Integer)x->r.offset);
  return 2;
}

/* r:offset() -> the byte offset of the line last returned. */
static int reader_offset(lua_State *L) {
  reader_t *x = check_reader(L);
  lua_pushinteger(L, (lua_Integer)x->r.offset);
  return 1;
}

/* r:damaged() -> count, { {line = n, reason = "..."}, ... (the first 20) }, ended_inside_a_line */
static int reader_damaged(lua_State *L) {
  reader_t *x = luaL_checkudata(L, 1, READER_MT);
  int kept = x->damaged < KEEP_DAMAGED ? (int)x->damaged : KEEP_DAMAGED;
  lua_pushinteger(L, (lua_Integer)x->damaged);
  lua_createtable(L, kept, 0);
  for (int i = 0; i < kept; i++) {
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, (lua_Integer)x->damaged_line[i]);
    lua_setfield(L, -2, "line");
    lua_pushstring(L, x->damaged_why[i]);
    lua_setfield(L, -2, "reason");
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushboolean(L, x->incomplete_last);
  return 3;
}

/* line_at(path, offset) -> the line that starts at byte offset | nil, message (a second look at
 * the few traces a report shows in full). */
static int jl_line_at(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer off = luaL_checkinteger(L, 2);
  jr_reader r;
  const char *line;
  size_t len;
  int complete, rc;
  if (jr_open(&r, path) != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(errno));
    return 2;
  }
  if (lseek(r.fd, (off_t)off, SEEK_SET) < 0) {
    jr_close(&r);
    lua_pushnil(L);
    lua_pushfstring(L, "%s: cannot seek", path);
    return 2;
  }
  rc = jr_next(&r, &line, &len, &complete);
  if (rc == 1) lua_pushlstring(L, line, len);
  else lua_pushnil(L);
  jr_close(&r);
  return 1;
}

/* count_lines(path) -> the lines of a file that are not blank, a torn last one left out (no
 * JSON read: an upper bound of the records, at the speed of the disk). | nil, message */
static int jl_count_lines(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  jr_reader r;
  const char *line;
  size_t len;
  int complete, rc;
  lua_Integer n = 0;
  if (jr_open(&r, path) != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(errno));
    return 2;
  }
  while ((rc = jr_next(&r, &line, &len, &complete)) == 1) n += complete && len > 0;
  jr_close(&r);
  if (rc < 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: read error: %s", path, strerror(errno));
    return 2;
  }
  lua_pushinteger(L, n);
  return 1;
}

/* hash(text) -> the same 64-bit hash as a "#key" field of text. */
static int jl_hash(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_pushinteger(L, (lua_Integer)jv_hash(s, n));
  return 1;
}

static const luaL_Reg reader_methods[] = {
  { "next", reader_next },
  { "line", reader_line },
  { "offset", reader_offset },
  { "damaged", reader_damaged },
  { "close", reader_close },
  { NULL, NULL }
};

static const luaL_Reg jl_funcs[] = {
  { "open", jl_open },
  { "line_at", jl_line_at },
  { "count_lines", jl_count_lines },
  { "hash", jl_hash },
  { NULL, NULL }
};

int luaopen_fluxloop_jsonlread(lua_State *L); /* the module's only export */
int luaopen_fluxloop_jsonlread(lua_State *L) {
  if (luaL_newmetatable(L, READER_MT)) {
    lua_pushcfunction(L, reader_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, reader_close);
    lua_setfield(L, -2, "__close");
    luaL_newlib(L, reader_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_newlib(L, jl_funcs);
  return 1;
}
