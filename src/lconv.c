/* lconv.c - Lua <-> JSON: null sentinel, array marker, streaming encoder, cJSON-checked decoder. */
#include "lconv.h"

#include <cJSON.h>
#include <lauxlib.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonenc.h"
#include "utf8.h"

#define ARRAY_MT "fluxloop.array"

/* Only its address matters: the same pointer in every state. */
static const char null_sentinel = 0;

void lconv_push_null(lua_State *L) {
  lua_pushlightuserdata(L, (void *)&null_sentinel);
}

int lconv_isnull(lua_State *L, int idx) {
  return lua_type(L, idx) == LUA_TLIGHTUSERDATA &&
         lua_touserdata(L, idx) == (const void *)&null_sentinel;
}

/* Registry keys by address as well as by name: lua_rawgetp skips the string interning
 * (hash, compare) of a named lookup, and every encode looks the array marker up. */
static const char array_mt_key = 0, function_names_key = 0;

void lconv_push_array_mt(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key) == LUA_TTABLE) return;
  lua_pop(L, 1);
  luaL_newmetatable(L, ARRAY_MT); /* also sets __name, and is found by that name too */
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &array_mt_key);
}

void lconv_mark_array(lua_State *L) {
  lconv_push_array_mt(L);
  lua_setmetatable(L, -2);
}

void lconv_push_function_names(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &function_names_key) == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_createtable(L, 0, 4);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k"); /* a name must not keep its function alive */
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &function_names_key);
}

size_t lconv_format_integer(char *out, lua_Integer v) {
  return jsonenc_integer(out, (long long)v);
}

void lconv_put_json_string(buf_t *b, const char *s, size_t n) {
  jsonenc_string(b, s, n);
}

/* ---- encoder ---------------------------------------------------------- */

typedef struct enc {
  lua_State *L;
  buf_t *b;
  int indent; /* < 0: one line */
  const void *array_mt; /* the array metatable's address, looked up at the first metatable */
  int depth;  /* containers open */
  const char *key; /* the string key of the member being written, else NULL */
  size_t key_len;
} enc_t;

/* One object member: key text (anchored on the Lua stack at pos, value at pos + 1). */
typedef struct member {
  const char *s;
  size_t len;
  int kind; /* original key type: 0 string, 1 number, 2 boolean; breaks ties */
  int pos;
} member_t;

#define LOCAL_MEMBERS 16

static int enc_value(enc_t *e, int idx);

static int enc_fail(enc_t *e, const char *msg) {
  lua_pushstring(e->L, msg);
  return -1;
}

static void enc_newline(enc_t *e, int depth) {
  buf_t *b = e->b;
  size_t k;
  if (e->indent < 0) return;
  k = (size_t)e->indent * (size_t)depth;
  if (buf_reserve(b, k + 1) != 0) return;
  b->data[b->len++] = '\n';
  memset(b->data + b->len, ' ', k);
  b->len += k;
}

static void enc_number(enc_t *e, int idx) {
  char tmp[48];
  size_t n;
  if (lua_isinteger(e->L, idx)) {
    n = lconv_format_integer(tmp, lua_tointeger(e->L, idx));
  } else {
    double d = (double)lua_tonumber(e->L, idx);
    if (!isfinite(d)) {
      buf_put(e->b, "null", 4);
      return;
    }
    n = jsonenc_float(tmp, d);
  }
  buf_put(e->b, tmp, n);
}

/* A non-empty table whose keys are exactly the integers 1..n. */
static int is_sequence(lua_State *L, int idx, lua_Unsigned n) {
  lua_Unsigned count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_Integer k;
    if (!lua_isinteger(L, -2) || (k = lua_tointeger(L, -2)) < 1 || (lua_Unsigned)k > n) {
      lua_pop(L, 2);
      return 0;
    }
    count++;
    lua_pop(L, 1);
  }
  return count == n; /* n distinct keys within 1..n */
}

static int enc_array(enc_t *e, int idx, lua_Unsigned n) {
  lua_State *L = e->L;
  lua_Unsigned i;
  if (n == 0) {
    buf_put(e->b, "[]", 2);
    return 0;
  }
  buf_putc(e->b, '[');
  for (i = 1; i <= n; i++) {
    if (i > 1) buf_putc(e->b, ',');
    enc_newline(e, e->depth);
    lua_rawgeti(L, idx, (lua_Integer)i);
    e->key = NULL;
    if (enc_value(e, lua_gettop(L)) != 0) return -1;
    lua_pop(L, 1);
    if (e->b->failed) return enc_fail(e, "not enough memory");
  }
  enc_newline(e, e->depth - 1);
  buf_putc(e->b, ']');
  return 0;
}

static int member_cmp(const void *pa, const void *pb) {
  const member_t *a = pa, *b = pb;
  size_t n = a->len < b->len ? a->len : b->len;
  int c = memcmp(a->s, b->s, n);
  if (c != 0) return c;
  if (a->len != b->len) return a->len < b->len ? -1 : 1;
  return a->kind - b->kind;
}

static void sort_members(member_t *m, size_t n) {
  size_t i, j;
  if (n > LOCAL_MEMBERS) {
    qsort(m, n, sizeof *m, member_cmp);
    return;
  }
  for (i = 1; i < n; i++) {
    member_t t = m[i];
    for (j = i; j > 0 && member_cmp(&m[j - 1], &t) > 0; j--) m[j] = m[j - 1];
    m[j] = t;
  }
}

/* Turns the key at kpos into its text in place (the slot keeps it alive). */
static int member_key(enc_t *e, int kpos, member_t *m) {
  lua_State *L = e->L;
  char tmp[48];
  size_t n;
  m->pos = kpos;
  switch (lua_type(L, kpos)) {
  case LUA_TSTRING:
    m->kind = 0;
    m->s = lua_tolstring(L, kpos, &m->len);
    return 0;
  case LUA_TNUMBER:
    m->kind = 1;
    if (lua_isinteger(L, kpos)) {
      n = lconv_format_integer(tmp, lua_tointeger(L, kpos));
    } else {
      double d = (double)lua_tonumber(L, kpos);
      if (isfinite(d)) n = jsonenc_float(tmp, d);
      else n = (size_t)snprintf(tmp, sizeof tmp, "%s", d < 0 ? "-inf" : "inf");
    }
    lua_pushlstring(L, tmp, n);
    break;
  case LUA_TBOOLEAN:
    m->kind = 2;
    lua_pushstring(L, lua_toboolean(L, kpos) ? "true" : "false");
    break;
  default:
    lua_pushfstring(L, "cannot encode value: table key of type %s", luaL_typename(L, kpos));
    return -1;
  }
  lua_replace(L, kpos);
  m->s = lua_tolstring(L, kpos, &m->len);
  return 0;
}

static int enc_object(enc_t *e, int idx) {
  lua_State *L = e->L;
  member_t local[LOCAL_MEMBERS], *m = local;
  size_t count = 0, cap = LOCAL_MEMBERS, i;
  int base = lua_gettop(L);
  /* Stack: base+1 holds the member array once it outgrows `local`, then key/value pairs. */
  lua_pushnil(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (!lua_checkstack(L, 4)) return enc_fail(e, "cannot encode value: table has too many keys");
    if (count == cap) {
      member_t *bigger = lua_newuserdatauv(L, 2 * cap * sizeof *m, 0);
      memcpy(bigger, m, count * sizeof *m);
      lua_replace(L, base + 1); /* the old array (if any) is garbage now */
      m = bigger;
      cap *= 2;
    }
    lua_pushvalue(L, -2); /* a copy of the key for lua_next: key value key */
    if (member_key(e, lua_gettop(L) - 2, &m[count]) != 0) return -1;
    count++;
  }
  if (count == 0) {
    lua_settop(L, base);
    buf_put(e->b, "{}", 2);
    return 0;
  }
  sort_members(m, count);
  buf_putc(e->b, '{');
  for (i = 0; i < count; i++) {
    if (i > 0) buf_putc(e->b, ',');
    enc_newline(e, e->depth);
    lconv_put_json_string(e->b, m[i].s, m[i].len);
    if (e->indent >= 0) buf_put(e->b, ": ", 2);
    else buf_putc(e->b, ':');
    e->key = m[i].kind == 0 ? m[i].s : NULL;
    e->key_len = m[i].len;
    if (enc_value(e, m[i].pos + 1) != 0) return -1;
    if (e->b->failed) return enc_fail(e, "not enough memory");
  }
  enc_newline(e, e->depth - 1);
  buf_putc(e->b, '}');
  lua_settop(L, base);
  return 0;
}

static int enc_table(enc_t *e, int idx) {
  lua_State *L = e->L;
  lua_Unsigned n;
  int array = 0, r;
  if (e->depth >= LCONV_MAX_DEPTH) {
    lua_pushfstring(L, "cannot encode value: nested deeper than %d levels (is there a cycle?)",
                    LCONV_MAX_DEPTH);
    return -1;
  }
  if (!lua_checkstack(L, 8)) return enc_fail(e, "not enough memory");
  if (lua_getmetatable(L, idx)) {
    /* Compared by address: most encodes meet no metatable and never look it up. */
    if (e->array_mt == NULL) {
      lconv_push_array_mt(L);
      e->array_mt = lua_topointer(L, -1); /* alive: the registry holds it */
      lua_pop(L, 1);
    }
    array = lua_topointer(L, -1) == e->array_mt;
    lua_pop(L, 1);
  }
  n = lua_rawlen(L, idx);
  if (!array && n > 0) array = is_sequence(L, idx, n);
  e->depth++;
  r = array ? enc_array(e, idx, n) : enc_object(e, idx);
  e->depth--;
  return r;
}

/* A function has no JSON form.  One named in lconv_push_function_names' table (replay's
 * capture callbacks) writes that name, its recorded placeholder; any other writes
 * "<callable:KEY>" after the key it sits under, so a trace reads the same in every run
 * (tostring would give an address). */
static int enc_function(enc_t *e, int idx) {
  lua_State *L = e->L;
  if (!lua_checkstack(L, 3)) return enc_fail(e, "not enough memory");
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &function_names_key) == LUA_TTABLE) {
    lua_pushvalue(L, idx);
    if (lua_rawget(L, -2) == LUA_TSTRING) {
      size_t n;
      const char *s = lua_tolstring(L, -1, &n);
      lconv_put_json_string(e->b, s, n);
      lua_pop(L, 2);
      return 0;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_pushliteral(L, "<callable:");
  if (e->key != NULL) lua_pushlstring(L, e->key, e->key_len);
  else lua_pushliteral(L, "function");
  lua_pushliteral(L, ">");
  lua_concat(L, 3);
  {
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    lconv_put_json_string(e->b, s, n);
  }
  lua_pop(L, 1);
  return 0;
}

static int enc_value(enc_t *e, int idx) {
  lua_State *L = e->L;
  const char *s;
  size_t n;
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    buf_put(e->b, "null", 4);
    return 0;
  case LUA_TBOOLEAN:
    if (lua_toboolean(L, idx)) buf_put(e->b, "true", 4);
    else buf_put(e->b, "false", 5);
    return 0;
  case LUA_TNUMBER:
    enc_number(e, idx);
    return 0;
  case LUA_TSTRING:
    s = lua_tolstring(L, idx, &n);
    lconv_put_json_string(e->b, s, n);
    return 0;
  case LUA_TTABLE:
    return enc_table(e, idx);
  case LUA_TLIGHTUSERDATA:
    if (lconv_isnull(L, idx)) {
      buf_put(e->b, "null", 4);
      return 0;
    }
    /* fall through */
  case LUA_TFUNCTION:
    return enc_function(e, idx);
  default: /* userdata, threads: their tostring text */
    if (!lua_checkstack(L, 4)) return enc_fail(e, "not enough memory");
    s = luaL_tolstring(L, idx, &n);
    lconv_put_json_string(e->b, s, n);
    lua_pop(L, 1);
    return 0;
  }
}

static int encode_at(lua_State *L, int idx, buf_t *b, int indent, int depth) {
  enc_t e;
  int top, r;
  size_t len0 = b->len;
  idx = lua_absindex(L, idx);
  top = lua_gettop(L);
  e.L = L;
  e.b = b;
  e.indent = indent;
  e.array_mt = NULL;
  e.depth = depth;
  e.key = NULL;
  e.key_len = 0;
  r = enc_value(&e, idx);
  if (r == 0 && b->failed) r = enc_fail(&e, "not enough memory");
  if (r != 0) {
    /* Keep only the message; drop the partial text. */
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    if (!b->failed) b->len = len0;
    return -1;
  }
  lua_settop(L, top);
  return 0;
}

int lconv_encode_json(lua_State *L, int idx, buf_t *b, int indent) {
  return encode_at(L, idx, b, indent, 0);
}

int lconv_encode_json_in(lua_State *L, int idx, buf_t *b, int depth) {
  return encode_at(L, idx, b, -1, depth);
}

/* ---- decoder ---------------------------------------------------------- */

/* cJSON checks the text (it skips every byte <= ' ' as white space, and a
 * leading BOM; the walker does the same).  The walker below then builds the
 * Lua value from the text itself, because cJSON's tree loses the bytes after
 * a \u0000, reads "\uZZZZ" as U+0000, and keeps no spelling of numbers:
 * JSON 1.0 must stay a float and 2^63-1 an exact integer. */

enum { DEC_SYNTAX = 1, DEC_STRING, DEC_DEPTH, DEC_STACK };

typedef struct dec {
  lua_State *L;
  const char *p, *end;
  const char *err_at; /* position of the problem, when one was found */
  int err;            /* DEC_* */
  int depth;
  int mt; /* stack index of the array metatable */
} dec_t;

static int dec_value(dec_t *d);

static int dec_fail(dec_t *d, int err, const char *at) {
  d->err = err;
  d->err_at = at;
  return -1;
}

static void skip_ws(dec_t *d) {
  while (d->p < d->end && (unsigned char)*d->p <= ' ') d->p++;
}

static int hex4(const char *p, unsigned *out) {
  unsigned v = 0;
  int i;
  for (i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return 0;
  }
  *out = v;
  return 1;
}

static size_t utf8_encode(char *out, unsigned cp) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Reads the \u escape at p (p[0] == '\\', p[1] == 'u'), surrogate pairs joined. */
static const char *dec_unicode(dec_t *d, const char *p, unsigned *cp) {
  unsigned lo;
  if (d->end - p < 6 || !hex4(p + 2, cp)) return NULL;
  p += 6;
  if (*cp >= 0xDC00 && *cp <= 0xDFFF) return NULL;
  if (*cp >= 0xD800 && *cp <= 0xDBFF) {
    if (d->end - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, &lo) ||
        lo < 0xDC00 || lo > 0xDFFF)
      return NULL;
    *cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
    p += 6;
  }
  return p;
}

/* Pushes the string starting at the opening quote d->p. */
static int dec_string(dec_t *d) {
  lua_State *L = d->L;
  const char *p = d->p + 1, *run = p, *end = d->end;
  luaL_Buffer B;
  while (p < end && *p != '"' && *p != '\\') p++;
  if (p >= end) return dec_fail(d, DEC_STRING, d->p);
  if (*p == '"') { /* no escapes: the common case */
    lua_pushlstring(L, run, (size_t)(p - run));
    d->p = p + 1;
    return 0;
  }
  luaL_buffinit(L, &B);
  for (;;) {
    char c, u[4];
    unsigned cp;
    size_t n;
    const char *q;
    while (p < end && *p != '"' && *p != '\\') p++;
    if (p >= end) return dec_fail(d, DEC_STRING, d->p);
    luaL_addlstring(&B, run, (size_t)(p - run));
    if (*p == '"') break;
    if (p + 1 >= end) return dec_fail(d, DEC_SYNTAX, p);
    switch (p[1]) {
    case '"': c = '"'; break;
    case '\\': c = '\\'; break;
    case '/': c = '/'; break;
    case 'b': c = '\b'; break;
    case 'f': c = '\f'; break;
    case 'n': c = '\n'; break;
    case 'r': c = '\r'; break;
    case 't': c = '\t'; break;
    case 'u':
      if ((q = dec_unicode(d, p, &cp)) == NULL) return dec_fail(d, DEC_SYNTAX, p);
      n = utf8_encode(u, cp);
      luaL_addlstring(&B, u, n);
      run = p = q;
      continue;
    default:
      return dec_fail(d, DEC_SYNTAX, p);
    }
    luaL_addchar(&B, c);
    run = p += 2;
  }
  luaL_pushresult(&B);
  d->p = p + 1;
  return 0;
}

static int is_number_char(char c) {
  return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

/* Integers stay integers when they fit in 64 bits; anything with '.', an
 * exponent, or too many digits is a float (Lua's own reading of the text). */
static int dec_number(dec_t *d) {
  lua_State *L = d->L;
  const char *start = d->p, *p = d->p;
  char tmp[64];
  size_t n, ok;
  while (p < d->end && is_number_char(*p)) p++;
  n = (size_t)(p - start);
  if (n < sizeof tmp) {
    memcpy(tmp, start, n);
    tmp[n] = '\0';
    ok = lua_stringtonumber(L, tmp);
  } else {
    lua_pushlstring(L, start, n);
    ok = lua_stringtonumber(L, lua_tostring(L, -1));
    if (ok) lua_remove(L, -2);
    else lua_pop(L, 1);
  }
  if (ok == 0) return dec_fail(d, DEC_SYNTAX, start);
  d->p = p;
  return 0;
}

static int dec_open(dec_t *d) {
  if (d->depth >= LCONV_MAX_DEPTH) return dec_fail(d, DEC_DEPTH, d->p);
  if (!lua_checkstack(d->L, 6)) return dec_fail(d, DEC_STACK, d->p);
  d->depth++;
  d->p++;
  skip_ws(d);
  return 0;
}

static int dec_array(dec_t *d) {
  lua_State *L = d->L;
  lua_Integer i;
  if (dec_open(d) != 0) return -1;
  lua_newtable(L);
  lua_pushvalue(L, d->mt);
  lua_setmetatable(L, -2);
  if (d->p < d->end && *d->p == ']') {
    d->p++;
    d->depth--;
    return 0;
  }
  for (i = 1;; i++) {
    if (dec_value(d) != 0) return -1;
    lua_rawseti(L, -2, i);
    skip_ws(d);
    if (d->p < d->end && *d->p == ',') {
      d->p++;
      continue;
    }
    if (d->p < d->end && *d->p == ']') break;
    return dec_fail(d, DEC_SYNTAX, d->p);
  }
  d->p++;
  d->depth--;
  return 0;
}

static int dec_object(dec_t *d) {
  lua_State *L = d->L;
  if (dec_open(d) != 0) return -1;
  lua_newtable(L);
  if (d->p < d->end && *d->p == '}') {
    d->p++;
    d->depth--;
    return 0;
  }
  for (;;) {
    skip_ws(d);
    if (d->p >= d->end || *d->p != '"') return dec_fail(d, DEC_SYNTAX, d->p);
    if (dec_string(d) != 0) return -1;
    skip_ws(d);
    if (d->p >= d->end || *d->p != ':') return dec_fail(d, DEC_SYNTAX, d->p);
    d->p++;
    if (dec_value(d) != 0) return -1;
    lua_rawset(L, -3); /* a repeated key: the last one wins */
    skip_ws(d);
    if (d->p < d->end && *d->p == ',') {
      d->p++;
      continue;
    }
    if (d->p < d->end && *d->p == '}') break;
    return dec_fail(d, DEC_SYNTAX, d->p);
  }
  d->p++;
  d->depth--;
  return 0;
}

static int dec_literal(dec_t *d, const char *word, size_t n) {
  if ((size_t)(d->end - d->p) < n || memcmp(d->p, word, n) != 0)
    return dec_fail(d, DEC_SYNTAX, d->p);
  d->p += n;
  return 0;
}

static int dec_value(dec_t *d) {
  lua_State *L = d->L;
  skip_ws(d);
  if (d->p >= d->end) return dec_fail(d, DEC_SYNTAX, d->p);
  switch (*d->p) {
  case '{': return dec_object(d);
  case '[': return dec_array(d);
  case '"': return dec_string(d);
  case 't':
    if (dec_literal(d, "true", 4) != 0) return -1;
    lua_pushboolean(L, 1);
    return 0;
  case 'f':
    if (dec_literal(d, "false", 5) != 0) return -1;
    lua_pushboolean(L, 0);
    return 0;
  case 'n':
    if (dec_literal(d, "null", 4) != 0) return -1;
    lconv_push_null(L);
    return 0;
  default:
    if (*d->p == '-' || (*d->p >= '0' && *d->p <= '9')) return dec_number(d);
    return dec_fail(d, DEC_SYNTAX, d->p);
  }
}

/* Pushes "name:line:col: problem" for position at of text (1-based, columns in characters). */
static void push_error(lua_State *L, const char *name, const char *text, const char *end,
                       const char *at, int err) {
  int line = 1, col = 1;
  const char *q;
  char near[24];
  size_t n = 0;
  for (q = text; q < at; q++) {
    if (*q == '\n') {
      line++;
      col = 1;
    } else if ((*q & 0xC0) != 0x80) {
      col++;
    }
  }
  if (err == DEC_DEPTH) {
    lua_pushfstring(L, "%s:%d:%d: nested deeper than %d levels", name, line, col, LCONV_MAX_DEPTH);
    return;
  }
  if (err == DEC_STRING) {
    lua_pushfstring(L, "%s:%d:%d: unterminated string", name, line, col);
    return;
  }
  if (err == DEC_STACK) {
    lua_pushfstring(L, "%s:%d:%d: not enough memory", name, line, col);
    return;
  }
  if (at >= end) {
    lua_pushfstring(L, "%s:%d:%d: invalid JSON at end of text", name, line, col);
    return;
  }
  /* Up to 20 bytes of context, on one line, not cutting a UTF-8 character. */
  while (n < 20 && at + n < end && at[n] != '\n' && at[n] != '\r') {
    near[n] = (unsigned char)at[n] < ' ' ? '?' : at[n];
    n++;
  }
  if (at + n < end)
    while (n > 0 && (at[n] & 0xC0) == 0x80) n--;
  near[n] = '\0';
  lua_pushfstring(L, "%s:%d:%d: invalid JSON near '%s'", name, line, col, near);
}

int lconv_decode_json(lua_State *L, const char *text, size_t len, const char *name) {
  const char *end = text + len, *start = text, *parse_end = NULL;
  cJSON *root;
  dec_t d;
  int base, valid;
  if (name == NULL) name = "json";
  if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) start += 3;
  d.p = start;
  d.end = end;
  skip_ws(&d);
  if (d.p >= end) {
    lua_pushfstring(L, "%s:1:1: empty JSON text", name);
    return -1;
  }
  root = cJSON_ParseWithLengthOpts(text, len, &parse_end, 0);
  valid = root != NULL;
  cJSON_Delete(root);

  base = lua_gettop(L);
  lconv_push_array_mt(L);
  d.L = L;
  d.p = start;
  d.err = 0;
  d.err_at = NULL;
  d.depth = 0;
  d.mt = base + 1;
  if (dec_value(&d) == 0) {
    skip_ws(&d);
    if (d.p < end) { /* something after the value */
      dec_fail(&d, DEC_SYNTAX, d.p);
    } else if (!valid) { /* never seen: the walker is the stricter of the two */
      if (parse_end == NULL || parse_end < text || parse_end > end) parse_end = text;
      dec_fail(&d, DEC_SYNTAX, parse_end);
    } else {
      lua_replace(L, base + 1); /* the value takes the metatable's slot */
      return 0;
    }
  }
  /* The walker's position is exact where cJSON's is not (at the end of the text
   * it names the last byte), so errors are reported from the walker. */
  lua_settop(L, base);
  push_error(L, name, start, end, d.err_at, d.err);
  return -1;
}
