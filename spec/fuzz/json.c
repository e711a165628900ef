/* json.c - fuzz target for the JSON decoder and encoder (src/lconv.c): errors carry
 * name:line:col, valid JSON is never refused, values agree with cJSON, and
 * decode -> encode -> decode -> encode gives the same text. */
#include <cJSON.h>
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "lconv.h"

#define NAME "fuzz.json"

/* ---- a strict RFC 8259 checker: what it accepts, lconv must accept too ---- */

typedef struct ref {
  const unsigned char *p, *end;
  int depth, max_depth;
} ref_t;

static int ref_value(ref_t *r);

static void ref_ws(ref_t *r) {
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
}

static int ref_digits(ref_t *r) {
  const unsigned char *s = r->p;
  while (r->p < r->end && *r->p >= '0' && *r->p <= '9') r->p++;
  return r->p > s;
}

static int ref_number(ref_t *r) {
  if (r->p < r->end && *r->p == '-') r->p++;
  if (r->p < r->end && *r->p == '0') r->p++;
  else if (!ref_digits(r)) return 0;
  if (r->p < r->end && *r->p == '.') {
    r->p++;
    if (!ref_digits(r)) return 0;
  }
  if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
    r->p++;
    if (r->p < r->end && (*r->p == '+' || *r->p == '-')) r->p++;
    if (!ref_digits(r)) return 0;
  }
  return 1;
}

static int ref_hex4(ref_t *r, unsigned *v) {
  int i;
  *v = 0;
  if (r->end - r->p < 4) return 0;
  for (i = 0; i < 4; i++) {
    unsigned c = r->p[i];
    *v <<= 4;
    if (c >= '0' && c <= '9') *v |= c - '0';
    else if (c >= 'a' && c <= 'f') *v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') *v |= c - 'A' + 10;
    else return 0;
  }
  r->p += 4;
  return 1;
}

/* Strings: unescaped bytes >= 0x20 (lconv keeps any bytes), the RFC escapes, and
 * \u escapes that are not lone surrogates (lconv refuses those; so does cJSON). */
static int ref_string(ref_t *r) {
  r->p++;
  while (r->p < r->end && *r->p != '"') {
    unsigned c = *r->p++, v, lo;
    if (c < 0x20) return 0;
    if (c != '\\') continue;
    if (r->p >= r->end) return 0;
    c = *r->p++;
    if (c == 'u') {
      if (!ref_hex4(r, &v)) return 0;
      if (v >= 0xDC00 && v <= 0xDFFF) return 0;
      if (v >= 0xD800 && v <= 0xDBFF) {
        if (r->end - r->p < 2 || r->p[0] != '\\' || r->p[1] != 'u') return 0;
        r->p += 2;
        if (!ref_hex4(r, &lo) || lo < 0xDC00 || lo > 0xDFFF) return 0;
      }
    } else if (!strchr("\"\\/bfnrt", (int)c) || c == 0) {
      return 0;
    }
  }
  if (r->p >= r->end) return 0;
  r->p++;
  return 1;
}

static int ref_word(ref_t *r, const char *w) {
  size_t n = strlen(w);
  if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n) != 0) return 0;
  r->p += n;
  return 1;
}

static int ref_container(ref_t *r, unsigned char close) {
  int object = close == '}';
  if (++r->depth > r->max_depth) r->max_depth = r->depth;
  r->p++;
  ref_ws(r);
  if (r->p < r->end && *r->p == close) {
    r->p++;
    r->depth--;
    return 1;
  }
  for (;;) {
    ref_ws(r);
    if (object) {
      if (r->p >= r->end || *r->p != '"' || !ref_string(r)) return 0;
      ref_ws(r);
      if (r->p >= r->end || *r->p != ':') return 0;
      r->p++;
    }
    if (!ref_value(r)) return 0;
    ref_ws(r);
    if (r->p < r->end && *r->p == ',') {
      r->p++;
      continue;
    }
    if (r->p < r->end && *r->p == close) break;
    return 0;
  }
  r->p++;
  r->depth--;
  return 1;
}

static int ref_value(ref_t *r) {
  ref_ws(r);
  if (r->p >= r->end || r->depth > 1000) return 0;
  switch (*r->p) {
  case '{': return ref_container(r, '}');
  case '[': return ref_container(r, ']');
  case '"': return ref_string(r);
  case 't': return ref_word(r, "true");
  case 'f': return ref_word(r, "false");
  case 'n': return ref_word(r, "null");
  default: return ref_number(r);
  }
}

/* 1 when text is JSON nested at most LCONV_MAX_DEPTH deep. */
static int ref_valid(const uint8_t *data, size_t size) {
  ref_t r = { data, data + size, 0, 0 };
  if (!ref_value(&r)) return 0;
  ref_ws(&r);
  return r.p == r.end && r.max_depth <= LCONV_MAX_DEPTH;
}

/* ---- helpers ---------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at p, or 0 (Unicode 15, table 3-7). */
static size_t utf8_seq(const unsigned char *p, size_t avail) {
  unsigned c = p[0], lo = 0x80, hi = 0xBF;
  size_t n, i;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c >= 0xE0 && c <= 0xEF) n = 3;
  else if (c >= 0xF0 && c <= 0xF4) n = 4;
  else return 0;
  if (c == 0xE0) lo = 0xA0;
  if (c == 0xED) hi = 0x9F;
  if (c == 0xF0) lo = 0x90;
  if (c == 0xF4) hi = 0x8F;
  if (avail < n || p[1] < lo || p[1] > hi) return 0;
  for (i = 2; i < n; i++)
    if ((p[i] & 0xC0) != 0x80) return 0;
  return n;
}

/* "name:line:col: problem" with line and col >= 1. */
static void check_message(lua_State *L, const char *what) {
  const char *msg = lua_tostring(L, -1);
  int line = 0, col = 0, used = 0;
  if (msg == NULL) fuzz_fail("%s: the error is not a string", what);
  if (sscanf(msg, NAME ":%d:%d: %n", &line, &col, &used) != 2 || used == 0 || line < 1 || col < 1)
    fuzz_fail("%s: error without " NAME ":line:col: %s", what, msg);
}

/* Encodes the value at the top; the text is left in b (reset first). */
static void encode(lua_State *L, buf_t *b, int indent, const char *what) {
  buf_reset(b);
  if (lconv_encode_json(L, -1, b, indent) != 0)
    fuzz_fail("%s: encode failed: %s", what, lua_tostring(L, -1));
}

static int all_utf8(const uint8_t *data, size_t size) {
  size_t i = 0, k;
  while (i < size) {
    if ((k = utf8_seq(data + i, size - i)) == 0) return 0;
    i += k;
  }
  return 1;
}

static void same_text(const buf_t *a, const buf_t *b, const char *what) {
  if (a->len != b->len || memcmp(a->data, b->data, a->len) != 0)
    fuzz_fail("%s:\n%.*s\n%.*s", what, (int)a->len, a->data, (int)b->len, b->data);
}

/* ---- the value agrees with cJSON's tree of the same text ---------------- */

static void same_as_cjson(lua_State *L, int idx, const cJSON *j) {
  const cJSON *c;
  size_t n;
  const char *s;
  luaL_checkstack(L, 8, "fuzz");
  switch (j->type & 0xFF) {
  case cJSON_NULL:
    if (!lconv_isnull(L, idx)) fuzz_fail("cJSON: null, lconv: %s", luaL_typename(L, idx));
    return;
  case cJSON_True:
  case cJSON_False:
    if (!lua_isboolean(L, idx) || lua_toboolean(L, idx) != ((j->type & 0xFF) == cJSON_True))
      fuzz_fail("cJSON: a boolean, lconv: %s", luaL_typename(L, idx));
    return;
  case cJSON_Number: {
    double d = (double)lua_tonumber(L, idx);
    if (lua_type(L, idx) != LUA_TNUMBER || !(d == j->valuedouble || (isnan(d) && isnan(j->valuedouble))))
      fuzz_fail("cJSON: %.17g, lconv: %s %.17g", j->valuedouble, luaL_typename(L, idx), d);
    return;
  }
  case cJSON_String: {
    size_t k = strlen(j->valuestring); /* cJSON stops at a \u0000 */
    if (lua_type(L, idx) != LUA_TSTRING) fuzz_fail("cJSON: a string, lconv: %s", luaL_typename(L, idx));
    s = lua_tolstring(L, idx, &n);
    if (n < k || memcmp(s, j->valuestring, k) != 0 || (n > k && s[k] != '\0'))
      fuzz_fail("cJSON: string '%s', lconv: '%s'", j->valuestring, s);
    return;
  }
  case cJSON_Array: {
    lua_Integer i = 0;
    if (!lua_istable(L, idx) || !lua_getmetatable(L, idx)) fuzz_fail("cJSON: an array, lconv: not an array");
    lua_pop(L, 1);
    for (c = j->child; c; c = c->next) {
      lua_rawgeti(L, idx, ++i);
      same_as_cjson(L, lua_gettop(L), c);
      lua_pop(L, 1);
    }
    if ((lua_Integer)lua_rawlen(L, idx) != i) fuzz_fail("cJSON: %d elements, lconv: %d", (int)i, (int)lua_rawlen(L, idx));
    return;
  }
  case cJSON_Object: {
    int cut = 0; /* some key holds a \u0000, which cJSON cuts: its keys are ambiguous */
    if (!lua_istable(L, idx) || lua_getmetatable(L, idx)) fuzz_fail("cJSON: an object, lconv: not an object");
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      s = lua_tolstring(L, -2, &n);
      if (strlen(s) != n) cut = 1;
      lua_pop(L, 1);
    }
    for (c = j->child; c && !cut; c = c->next) {
      const cJSON *later;
      for (later = c->next; later; later = later->next)
        if (strcmp(later->string, c->string) == 0) break;
      if (later) continue; /* a repeated key: the last one wins */
      if (lua_getfield(L, idx, c->string) == LUA_TNIL) fuzz_fail("cJSON has key '%s', lconv has not", c->string);
      same_as_cjson(L, lua_gettop(L), c);
      lua_pop(L, 1);
    }
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      s = lua_tolstring(L, -2, &n);
      lua_pop(L, 1);
      if (strlen(s) == n && cJSON_GetObjectItemCaseSensitive(j, s) == NULL)
        fuzz_fail("lconv has key '%s', cJSON has not", s);
    }
    return;
  }
  default:
    fuzz_fail("cJSON type %d", j->type);
  }
}

/* ---- the checks --------------------------------------------------------- */

static buf_t t1, t2, t3;

/* Any bytes as one JSON string: must decode to the same bytes, bad UTF-8 as U+FFFD each. */
static void check_string(lua_State *L, const uint8_t *data, size_t size) {
  size_t i = 0, n, k;
  const char *s;
  buf_reset(&t1);
  buf_reset(&t2);
  lconv_put_json_string(&t1, (const char *)data, size);
  while (i < size) { /* the expected text */
    k = utf8_seq(data + i, size - i);
    if (k == 0) buf_put(&t2, "\xEF\xBF\xBD", 3), i++;
    else buf_put(&t2, data + i, k), i += k;
  }
  if (t1.failed || t2.failed) fuzz_fail("out of memory");
  if (lconv_decode_json(L, t1.data, t1.len, NAME) != 0)
    fuzz_fail("an encoded string does not decode: %s", lua_tostring(L, -1));
  s = lua_tolstring(L, -1, &n);
  if (s == NULL || n != t2.len || (n > 0 && memcmp(s, t2.data, n) != 0))
    fuzz_fail("string round trip: %zu bytes in, %zu expected, %zu out", size, t2.len, n);
  for (i = 0; i < t1.len; i++)
    if ((unsigned char)t1.data[i] < 0x20) fuzz_fail("a control byte left unescaped at %zu", i);
  lua_pop(L, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = fuzz_state();
  int top = lua_gettop(L);
  cJSON *root;

  check_string(L, data, size);

  if (lconv_decode_json(L, (const char *)data, size, NAME) != 0) {
    check_message(L, "decode");
    if (ref_valid(data, size)) fuzz_fail("valid JSON refused: %s", lua_tostring(L, -1));
    lua_settop(L, top);
    return 0;
  }
  root = cJSON_ParseWithLengthOpts((const char *)data, size, NULL, 0);
  if (root == NULL) fuzz_fail("lconv accepted what cJSON refuses");
  same_as_cjson(L, lua_gettop(L), root);
  cJSON_Delete(root);

  /* Round trips.  Text that is not UTF-8 is repaired by the first encode (U+FFFD), which
   * may also merge keys or change their order, so from such text the second pass must
   * be stable; from UTF-8 text already the first. */
  encode(L, &t1, -1, "first encode");
  if (lconv_decode_json(L, t1.data, t1.len, NAME) != 0)
    fuzz_fail("encoded text does not decode: %s\n%.*s", lua_tostring(L, -1), (int)t1.len, t1.data);
  encode(L, &t2, -1, "second encode");
  if (all_utf8(data, size)) same_text(&t1, &t2, "round trip changed the text");
  if (lconv_decode_json(L, t2.data, t2.len, NAME) != 0)
    fuzz_fail("encoded text does not decode: %s\n%.*s", lua_tostring(L, -1), (int)t2.len, t2.data);
  encode(L, &t3, -1, "third encode");
  same_text(&t2, &t3, "second round trip changed the text");
  encode(L, &t1, 2, "pretty encode");
  if (lconv_decode_json(L, t1.data, t1.len, NAME) != 0)
    fuzz_fail("pretty text does not decode: %s", lua_tostring(L, -1));
  encode(L, &t2, -1, "encode after pretty");
  same_text(&t3, &t2, "pretty round trip changed the value");
  if (t1.cap > 1 << 20) buf_free(&t1), buf_free(&t2), buf_free(&t3);
  lua_settop(L, top);
  return 0;
}
