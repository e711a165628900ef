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
#include "jsonspan.h"

#define READER_MT "fluxloop.JsonlReader"
#define SPAN_MT "fluxloop.JsonlSpan"
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
  int ref[MAX_KEYS];      /* the jr_ref of a field left in the file, or -1 */
  const char *line; /* the last line returned, valid until the next call */
  size_t len;
  long long damaged;
  long long damaged_line[KEEP_DAMAGED];
  char damaged_why[KEEP_DAMAGED][80];
  int incomplete_last; /* the file ended inside a line */
  buf_t tmp, big;          /* big: a field read back from the file, when asked for decoded */
  int closed;
} reader_t;

/* A value of a long line left in the file (jsonlread.open's max_line); its uservalue is the reader. */
typedef struct span {
  long long off, len;
  char first;
  int escaped;
} span_t;

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
    buf_free(&x->big);
    x->closed = 1;
  }
  return 0;
}

/* open(path, keys [, {max_line = bytes}]) -> reader | nil, message, code. keys: field names;
 * "=name" gives the raw JSON text of the value, "#name" a 64-bit hash of that text (equal values,
 * equal hashes), "*name" the number of elements of an array (nil when the value is no array).
 * With max_line, a longer line is not held whole: a top-level value that would take it past the
 * limit stays in the file, and an "=name" field of it is a span (see span methods). */
static int jl_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer max_line = 0;
  int nkeys;
  reader_t *x;
  luaL_checktype(L, 2, LUA_TTABLE);
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    if (lua_getfield(L, 3, "max_line") != LUA_TNIL) {
      max_line = luaL_checkinteger(L, -1);
      luaL_argcheck(L, max_line > 0, 3, "max_line must be a positive number of bytes");
    }
    lua_pop(L, 1);
  }
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
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "path"); /* named when a span cannot be read back */
  lua_setiuservalue(L, -2, 1);
  x->nkeys = nkeys;
  buf_init(&x->tmp);
  buf_init(&x->big);
  if (jr_open(&x->r, path) != 0 || (max_line > 0 && jr_limit(&x->r, (size_t)max_line) != 0)) {
    int err = errno;
    jr_close(&x->r);
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

/* ---- values left in the file ------------------------------------------- */

/* Pieces of a copy: 256 KB, or the reader's max_line when smaller (a test's small limit goes
 * through many pieces). */
static size_t piece_of(const reader_t *x) {
  return x->r.limit > 0 && x->r.limit < 256 * 1024 ? x->r.limit : 256 * 1024;
}

static jv_type type_of(char first) {
  switch (first) {
  case '"': return JV_STRING;
  case '{': return JV_OBJECT;
  case '[': return JV_ARRAY;
  case 't': return JV_TRUE;
  case 'f': return JV_FALSE;
  case 'n': return JV_NULL;
  default: return JV_NUMBER;
  }
}

/* Pushes a span of ref (the reader at index 1). */
static void push_ref(lua_State *L, const jr_ref *ref) {
  span_t *sp = lua_newuserdatauv(L, sizeof *sp, 1);
  sp->off = ref->off;
  sp->len = ref->len;
  sp->first = ref->first;
  sp->escaped = ref->escaped;
  luaL_setmetatable(L, SPAN_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
}

/* Field i was left in the file and is wanted decoded, hashed or counted: it is read back into
 * x->big (memory as before the limit, for the fields a caller needs whole). 0 or JSPAN_E*. */
static int read_back(reader_t *x, int i) {
  const jr_ref *ref = &x->r.refs[x->ref[i]];
  jv_span *v = &x->spans[i];
  buf_reset(&x->big);
  int rc = jspan_copy(x->r.fd, ref->off, ref->len, JSPAN_RAW, piece_of(x), jspan_to_buf, &x->big);
  if (rc != 0) return rc;
  v->type = type_of(ref->first);
  v->escaped = ref->escaped;
  v->p = x->big.data + (v->type == JV_STRING);
  v->n = x->big.len - (v->type == JV_STRING ? 2 : 0);
  return 0;
}

/* Which fields of the line handed out are placeholders of values left in the file. */
static void find_refs(reader_t *x) {
  for (int i = 0; i < x->nkeys; i++) {
    x->ref[i] = -1;
    for (size_t k = 0; k < x->r.nrefs && x->spans[i].type == JV_NULL; k++)
      if (x->spans[i].p == x->line + x->r.refs[k].at) x->ref[i] = (int)k;
  }
}

/* Pushes field i; returns 0, or JSPAN_E* (nothing pushed) when it could not be read back. */
static int push_span(lua_State *L, reader_t *x, int i) {
  const jv_span *v = &x->spans[i];
  const char *p;
  size_t n;
  if (x->ref[i] >= 0) {
    int rc;
    if (x->mode[i] == AS_RAW) { push_ref(L, &x->r.refs[x->ref[i]]); return 0; }
    if ((rc = read_back(x, i)) != 0) return rc;
  }
  if (v->type == JV_ABSENT) { lua_pushnil(L); return 0; }
  if (x->mode[i] == AS_COUNT) {
    long long count = jv_count(v);
    if (count < 0) lua_pushnil(L);
    else lua_pushinteger(L, (lua_Integer)count);
    return 0;
  }
  if (x->mode[i] != AS_VALUE) {
    jv_raw(v, &p, &n);
    if (x->mode[i] == AS_HASH) lua_pushinteger(L, (lua_Integer)jv_hash(p, n));
    else lua_pushlstring(L, p, n);
    return 0;
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
  return 0;
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
    if (len == 0 && complete && x->r.why == NULL) continue; /* a blank line is not damage */
    if (x->r.why != NULL) { why = x->r.why; where = x->r.where; } /* a long line, checked as it went by */
    if (why != NULL || jv_scan(line, len, x->keys, x->keylens, x->nkeys, x->spans, &why, &where) != 0 || !complete) {
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
    find_refs(x);
    luaL_checkstack(L, x->nkeys + 1, "too many fields");
    lua_pushinteger(L, (lua_Integer)x->r.lineno);
    for (int i = 0; i < x->nkeys; i++) {
      int failed = push_span(L, x, i);
      if (failed != 0) { /* the file changed under the reader (or memory ran out): said, like a read error */
        lua_pushnil(L);
        lua_pushfstring(L, "line %I: cannot read a field back: %s", (lua_Integer)x->r.lineno,
                        failed == JSPAN_ESHORT ? "the file ends early (it changed while it was read)" : strerror(errno));
        return 2;
      }
    }
    return x->nkeys + 1;
  }
}

/* r:spans() -> { key = span } for the top-level values of the last line left in the file (a
 * line longer than max_line; its r:line() text has null in their place) | nil when none were. */
static int reader_spans(lua_State *L) {
  reader_t *x = check_reader(L);
  if (x->line == NULL || x->r.nrefs == 0) return 0;
  lua_createtable(L, 0, (int)x->r.nrefs);
  for (size_t k = 0; x->line != NULL && k < x->r.nrefs; k++) {
    const jr_ref *ref = &x->r.refs[k];
    lua_pushlstring(L, x->line + ref->key_at, ref->key_n);
    push_ref(L, ref);
    lua_rawset(L, -3);
  }
  return 1;
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

/* is_span(v) -> whether v is a span (a value a reader left in its file). */
static int jl_is_span(lua_State *L) {
  lua_pushboolean(L, luaL_testudata(L, 1, SPAN_MT) != NULL);
  return 1;
}

/* hash(text) -> the same 64-bit hash as a "#key" field of text. */
static int jl_hash(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_pushinteger(L, (lua_Integer)jv_hash(s, n));
  return 1;
}

/* ---- span methods --------------------------------------------------------- */

static span_t *check_span(lua_State *L, int *fd, size_t *piece) {
  span_t *sp = luaL_checkudata(L, 1, SPAN_MT);
  reader_t *x;
  lua_getiuservalue(L, 1, 1);
  x = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (x == NULL || x->closed) luaL_error(L, "jsonlread: the span's reader is closed");
  *fd = x->r.fd;
  *piece = piece_of(x);
  return sp;
}

static const char *const span_modes[] = { "raw", "json", "text", "line", NULL };

/* The mode at index i; the last three need a string. */
static int check_mode(lua_State *L, int i, const span_t *sp) {
  int mode = luaL_checkoption(L, i, "raw", span_modes);
  if (mode != JSPAN_RAW && sp->first != '"') luaL_argerror(L, i, "the span is no string");
  return mode;
}

/* nil and what went wrong: the output's failure (the caller names it), or the file's, named. */
static int span_fail(lua_State *L, const span_t *sp, int rc) {
  const char *err = strerror(errno);
  if (rc == JSPAN_ESINK) {
    lua_pushstring(L, err);
  } else {
    lua_getiuservalue(L, 1, 1); /* the reader, then its keys table with the path */
    lua_getiuservalue(L, -1, 1);
    lua_getfield(L, -1, "path");
    if (rc == JSPAN_ESHORT)
      lua_pushfstring(L, "%s: the file ends before byte %I: it changed while it was read", lua_tostring(L, -1),
                      (lua_Integer)(sp->off + sp->len));
    else lua_pushfstring(L, "%s: read error: %s", lua_tostring(L, -1), err);
  }
  lua_pushnil(L);
  lua_insert(L, -2); /* nil, message */
  return 2;
}

/* span:kind() -> "string" | "object" | "array" | "number" | "boolean" | "null" */
static int span_kind(lua_State *L) {
  static const char *const names[] = { "absent", "null", "boolean", "boolean", "number", "string", "object", "array" };
  span_t *sp = luaL_checkudata(L, 1, SPAN_MT);
  lua_pushstring(L, names[type_of(sp->first)]);
  return 1;
}

/* span:length() -> bytes of its JSON text in the file */
static int span_length(lua_State *L) {
  span_t *sp = luaL_checkudata(L, 1, SPAN_MT);
  lua_pushinteger(L, (lua_Integer)sp->len);
  return 1;
}

/* span:read() -> its JSON text, whole (for a value wanted decoded) | nil, message */
static int span_read(lua_State *L) {
  int fd, rc;
  size_t piece;
  span_t *sp = check_span(L, &fd, &piece);
  buf_t b = BUF_INIT;
  rc = jspan_copy(fd, sp->off, sp->len, JSPAN_RAW, piece, jspan_to_buf, &b);
  if (rc == 0) lua_pushlstring(L, b.data != NULL ? b.data : "", b.len);
  buf_free(&b);
  return rc == 0 ? 1 : span_fail(L, sp, rc);
}

/* span:write(file [, mode]) -> true | nil, message. mode: "raw" (its JSON text, the default);
 * for a string "json" (as json.encode writes the decoded string), "text" (decoded), "line"
 * (decoded, each newline a space). Written in pieces into the Lua file's buffer. */
static int span_write(lua_State *L) {
  int fd, rc, mode;
  size_t piece;
  span_t *sp = check_span(L, &fd, &piece);
  luaL_Stream *f = luaL_checkudata(L, 2, LUA_FILEHANDLE);
  if (f->closef == NULL) luaL_argerror(L, 2, "the file is closed");
  mode = check_mode(L, 3, sp);
  rc = jspan_copy(fd, sp->off, sp->len, mode, piece, jspan_to_file, f->f);
  if (rc != 0) return span_fail(L, sp, rc);
  lua_pushboolean(L, 1);
  return 1;
}

/* span:longest_run(char [, mode]) -> the longest run of that byte in the text mode gives (how long
 * a fence around it must be) | nil, message */
static int span_longest_run(lua_State *L) {
  int fd, rc, mode;
  size_t piece;
  span_t *sp = check_span(L, &fd, &piece);
  size_t n;
  const char *ch = luaL_checklstring(L, 2, &n);
  jspan_run run = { 0, 0, 0 };
  luaL_argcheck(L, n == 1, 2, "one byte");
  mode = check_mode(L, 3, sp);
  run.ch = ch[0];
  rc = jspan_copy(fd, sp->off, sp->len, mode, piece, jspan_to_run, &run);
  if (rc != 0) return span_fail(L, sp, rc);
  lua_pushinteger(L, (lua_Integer)run.longest);
  return 1;
}

static const luaL_Reg span_methods[] = {
  { "kind", span_kind },
  { "length", span_length },
  { "read", span_read },
  { "write", span_write },
  { "longest_run", span_longest_run },
  { NULL, NULL }
};

static const luaL_Reg reader_methods[] = {
  { "next", reader_next },
  { "line", reader_line },
  { "spans", reader_spans },
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
  { "is_span", jl_is_span },
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
  if (luaL_newmetatable(L, SPAN_MT)) {
    luaL_newlib(L, span_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_newlib(L, jl_funcs);
  return 1;
}
