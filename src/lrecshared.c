/* lrecshared.c - the fields both lines of a trace share (trace.shared: a conversation's
 * transcript, turn count and termination reason), spliced into each line by write()
 * (lrecwrite.c). The text is the generic encoder's (lconv.c), byte for byte; but an entry of
 * the transcript in the shape conversation/init.lua makes goes to traceline_turn_*: no
 * sorting or escaping of its keys, no dispatch per value. A 3-turn conversation writes six
 * entries or more a run, and the generic object path was a third of its cost. */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "lrecorder.h"
#include "traceline.h"

/* A transcript entry's keys, in the encoder's order (sorted). */
enum { K_CONTENT, K_METADATA, K_ROLE, K_SOURCE, K_TURN_INDEX, K_COUNT };
static const char *const ENTRY_KEYS[K_COUNT] = { "content", "metadata", "role", "source", "turn_index" };

/* What the fast path compares with. Short strings are interned, so a key of an entry is
 * the same string object as the name pushed here: its address tells which key it is, with
 * no comparison of bytes. (Were they not, nothing would match and the encoder would write
 * every entry: slower, the same text.) */
typedef struct names {
  const void *key[K_COUNT];
  const char *conversation;
  const void *array_mt;
  /* A metadata table found empty and unmarked (its text "{}") in this write: most entries
   * share one. Forgotten whenever the encoder runs, since a __tostring it calls could
   * change the table. */
  const void *plain_meta;
} names;

#define MAX_SHARED 8 /* more members than this: the generic encoder writes them */

/* Pushes the names (K_COUNT + 2 slots, popped by the caller) and fills n. */
static void push_names(lua_State *L, names *n) {
  for (int i = 0; i < K_COUNT; i++) {
    lua_pushstring(L, ENTRY_KEYS[i]);
    n->key[i] = lua_topointer(L, -1);
  }
  lua_pushliteral(L, "conversation");
  n->conversation = lua_tostring(L, -1);
  lconv_push_array_mt(L);
  n->array_mt = lua_topointer(L, -1);
  n->plain_meta = NULL;
}

/* Which entry key the value at idx is, or -1. (lua_topointer is NULL for a number, never a
 * name's address, and converts nothing, which lua_next would not survive.) */
static int key_of(lua_State *L, int idx, const names *n) {
  const void *p = lua_topointer(L, idx);
  for (int i = 0; i < K_COUNT; i++)
    if (p == n->key[i]) return i;
  return -1;
}

/* The encoder's text of a value `depth` containers deep; forgets plain_meta. */
static int encode(lua_State *L, int idx, names *n, buf_t *b, int depth) {
  n->plain_meta = NULL;
  return lconv_encode_json_in(L, idx, b, depth);
}

/* Writes the metadata at idx: an empty table without the array mark is "{}" (most
 * entries'), anything else the encoder's text, 3 containers deep as in the whole. */
static int put_metadata(lua_State *L, int idx, names *n, buf_t *b) {
  const void *p = lua_topointer(L, idx);
  if (p != n->plain_meta) {
    int empty, top = lua_gettop(L);
    int array = lua_getmetatable(L, idx) && lua_topointer(L, -1) == n->array_mt;
    lua_settop(L, top);
    lua_pushnil(L);
    empty = !lua_next(L, idx);
    lua_settop(L, top);
    if (!empty || array) return encode(L, idx, n, b, 3);
    n->plain_meta = p;
  }
  PUT_LIT(b, "{}");
  return 0;
}

/* Writes the transcript entry at idx when it has the shape of conversation/init.lua's
 * entries: a table without a metatable whose keys are exactly ENTRY_KEYS, with string
 * content, role and source, an integer turn_index and a table metadata. Returns 1 when
 * written, 0 when not of that shape (nothing written), -1 on an encoder error. */
static int put_entry(lua_State *L, int idx, names *n, buf_t *b) {
  int pos[K_COUNT], seen = 0, top = lua_gettop(L), r;
  size_t len[3];
  const char *text[3];
  if (lua_getmetatable(L, idx)) {
    lua_settop(L, top);
    return 0;
  }
  /* Stack: a key/value pair per member (the j-th's value at top + 2 + 2j); the key is
   * copied for lua_next. */
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int k = key_of(L, -2, n);
    if (k < 0) {
      lua_settop(L, top);
      return 0;
    }
    pos[k] = top + 2 + 2 * seen++;
    lua_pushvalue(L, -2);
  }
  if (seen != K_COUNT || lua_type(L, pos[K_CONTENT]) != LUA_TSTRING || lua_type(L, pos[K_ROLE]) != LUA_TSTRING ||
      lua_type(L, pos[K_SOURCE]) != LUA_TSTRING || !lua_isinteger(L, pos[K_TURN_INDEX]) ||
      lua_type(L, pos[K_METADATA]) != LUA_TTABLE) {
    lua_settop(L, top);
    return 0;
  }
  text[0] = lua_tolstring(L, pos[K_CONTENT], &len[0]);
  text[1] = lua_tolstring(L, pos[K_ROLE], &len[1]);
  text[2] = lua_tolstring(L, pos[K_SOURCE], &len[2]);
  traceline_turn_head(b, text[0], len[0]);
  r = put_metadata(L, pos[K_METADATA], n, b);
  if (r != 0) {
    lua_replace(L, top + 1); /* the encoder's message */
    lua_settop(L, top + 1);
    return -1;
  }
  traceline_turn_tail(b, text[1], len[1], text[2], len[2], (long long)lua_tointeger(L, pos[K_TURN_INDEX]));
  lua_settop(L, top);
  return 1;
}

/* Writes the transcript at idx (shared.conversation): a json.array of entries, each through
 * put_entry or else the encoder (2 containers deep, as in the whole). Anything but a
 * json.array is the encoder's. Returns 0, or -1 with the encoder's message pushed. */
static int put_transcript(lua_State *L, int idx, names *n, buf_t *b) {
  lua_Integer count;
  int top = lua_gettop(L);
  int array = lua_getmetatable(L, idx) && lua_topointer(L, -1) == n->array_mt;
  lua_settop(L, top);
  if (!array) return encode(L, idx, n, b, 1);
  count = (lua_Integer)lua_rawlen(L, idx);
  if (count == 0) {
    PUT_LIT(b, "[]");
    return 0;
  }
  buf_putc(b, '[');
  for (lua_Integer i = 1; i <= count; i++) {
    int r = 0;
    if (i > 1) buf_putc(b, ',');
    if (lua_rawgeti(L, idx, i) == LUA_TTABLE) r = put_entry(L, top + 1, n, b);
    if (r == 0) r = encode(L, top + 1, n, b, 2) == 0 ? 1 : -1;
    if (r < 0) return -1;
    lua_settop(L, top);
  }
  buf_putc(b, ']');
  return 0;
}

/* The members of the table on top of the stack, as the encoder writes them into the object
 * being written to b (its fields so far, without the closing brace): "{...}" becomes
 * ",...". Returns 0, or -1 with the encoder's message pushed. */
int lrecorder_splice_fields(lua_State *L, buf_t *b) {
  size_t start = b->len;
  if (lconv_encode_json(L, -1, b, -1) != 0) return -1;
  if (b->len - start > 2) {
    b->data[start] = ','; /* "{...}" -> ",..." */
    b->len--;             /* drop "}" */
  } else {
    b->len = start;       /* "{}" adds nothing */
  }
  return 0;
}

/* One member of shared: its key's text and the stack slot of its value. */
typedef struct member {
  const char *s;
  size_t len;
  int pos;
} member;

static int member_before(const member *a, const member *b) {
  size_t n = a->len < b->len ? a->len : b->len;
  int c = memcmp(a->s, b->s, n);
  return c < 0 || (c == 0 && a->len < b->len);
}

/* Reads the members of the table at idx onto the stack (a key/value pair each), into m.
 * Returns how many, or -1 when the encoder must write them: a key that is not a string (its
 * text and order are the encoder's business), a function or light userdata value (its
 * text names its key), more than MAX_SHARED members. */
static int read_members(lua_State *L, int idx, member *m) {
  int count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int t = lua_type(L, -1);
    if (count == MAX_SHARED || lua_type(L, -2) != LUA_TSTRING || t == LUA_TFUNCTION ||
        (t == LUA_TLIGHTUSERDATA && !lconv_isnull(L, -1)))
      return -1;
    m[count].s = lua_tolstring(L, -2, &m[count].len);
    m[count].pos = lua_gettop(L);
    count++;
    lua_pushvalue(L, -2);
  }
  return count;
}

int lrecorder_splice_shared(lua_State *L, buf_t *b) {
  member m[MAX_SHARED];
  names n;
  int idx = lua_gettop(L), count;
  size_t start = b->len;
  if (!lua_checkstack(L, 2 * MAX_SHARED + 3 * K_COUNT + 16)) return luaL_error(L, "not enough memory");
  push_names(L, &n);
  count = read_members(L, idx, m);
  if (count < 0) {
    lua_settop(L, idx);
    return lrecorder_splice_fields(L, b);
  }
  for (int i = 1; i < count; i++) { /* insertion sort: a handful of keys */
    member t = m[i];
    int j = i;
    for (; j > 0 && member_before(&t, &m[j - 1]); j--) m[j] = m[j - 1];
    m[j] = t;
  }
  for (int i = 0; i < count; i++) {
    int r;
    buf_putc(b, ',');
    jsonenc_string(b, m[i].s, m[i].len);
    buf_putc(b, ':');
    if (m[i].s == n.conversation && lua_type(L, m[i].pos) == LUA_TTABLE) r = put_transcript(L, m[i].pos, &n, b);
    else r = encode(L, m[i].pos, &n, b, 1);
    if (r != 0) {
      lua_replace(L, idx + 1);
      lua_settop(L, idx + 1);
      b->len = start;
      return -1;
    }
  }
  lua_settop(L, idx);
  return 0;
}
