/* lrecshared.c - the fields both lines of a trace share (trace.shared: a conversation's
 * transcript, turn count and termination reason), spliced into each line by write()
 * (lrecwrite.c). The text is the generic encoder's (lconv.c), byte for byte; but an entry of
 * the transcript in the shape conversation/init.lua makes goes to traceline_turn: no
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

/* Whether the metadata at idx (absolute) is an empty table without the array mark, whose
 * text is "{}": most entries', which share one table, checked once a write. */
static int plain_metadata(lua_State *L, int idx, names *n) {
  const void *p = lua_topointer(L, idx);
  int empty, array, top;
  if (p == n->plain_meta) return 1;
  top = lua_gettop(L);
  array = lua_getmetatable(L, idx) && lua_topointer(L, -1) == n->array_mt;
  lua_settop(L, top);
  lua_pushnil(L);
  empty = !lua_next(L, idx);
  lua_settop(L, top);
  if (!empty || array) return 0;
  n->plain_meta = p;
  return 1;
}

/* Whether the value on top of the stack suits entry key k; reads it into text/len/turn. */
static int read_value(lua_State *L, int k, names *n, const char **text, size_t *len, lua_Integer *turn) {
  switch (k) {
  case K_METADATA:
    return lua_type(L, -1) == LUA_TTABLE && plain_metadata(L, lua_gettop(L), n);
  case K_TURN_INDEX:
    if (!lua_isinteger(L, -1)) return 0;
    *turn = lua_tointeger(L, -1);
    return 1;
  case K_CONTENT: case K_ROLE: case K_SOURCE:
    if (lua_type(L, -1) != LUA_TSTRING) return 0;
    text[k] = lua_tolstring(L, -1, &len[k]);
    return 1;
  default:
    return 0;
  }
}

/* Writes the transcript entry at idx when it has the usual shape (conversation/init.lua's):
 * a table without a metatable whose keys are exactly ENTRY_KEYS, with string content, role
 * and source, an integer turn_index and an empty, unmarked metadata table. Returns 1 when
 * written, 0 when not (nothing written; the encoder writes it). The strings read stay put:
 * the entry holds them, and no Lua code runs in between. */
static int put_entry(lua_State *L, int idx, names *n, buf_t *b) {
  const char *text[K_COUNT];
  size_t len[K_COUNT];
  lua_Integer turn = 0;
  int seen = 0, top = lua_gettop(L);
  if (lua_getmetatable(L, idx)) {
    lua_settop(L, top);
    return 0;
  }
  lua_pushnil(L);
  while (lua_next(L, idx)) { /* key, value */
    if (!read_value(L, key_of(L, -2, n), n, text, len, &turn)) {
      lua_settop(L, top);
      return 0;
    }
    seen++;
    lua_pop(L, 1); /* the key stays, for lua_next */
  }
  if (seen != K_COUNT) return 0;
  traceline_turn(b, text[K_CONTENT], len[K_CONTENT], text[K_ROLE], len[K_ROLE], text[K_SOURCE], len[K_SOURCE],
                 (long long)turn);
  return 1;
}

/* Writes the transcript at idx (shared.conversation): a json.array of entries, each through
 * put_entry or else the encoder, 2 containers deep as in the whole (so the depth limit and
 * its errors are the same). Anything but a json.array is the encoder's. Returns 0, or -1
 * with the encoder's message pushed. */
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
    if (i > 1) buf_putc(b, ',');
    if (!(lua_rawgeti(L, idx, i) == LUA_TTABLE && put_entry(L, top + 1, n, b)) && encode(L, top + 1, n, b, 2) != 0)
      return -1;
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
