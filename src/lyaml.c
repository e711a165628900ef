/* lyaml.c - the fluxloop.yaml module: YAML text <-> Lua values through libyaml, with source
 * marks. Here: the module, decode and stream_list; encode is lyamlenc.c (lyaml.h is what
 * they share). libyaml's parser and emitter as fluxloop uses them are yamlparse.c and
 * yamlemit.c, what a scalar means yamlscalar.c: plain C. */
#include <lauxlib.h>
#include <errno.h>
#include <lua.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "lconv.h"
#include "lyaml.h"
#include "yamlparse.h"
#include "yamlscalar.h"

#define PARSER_MT "fluxloop.yaml.parser"

/* ---------------------------------------------------------------- scalars */

/* Pushes s without underscores converted by Lua (decimal ints that overflow become floats). */
static void push_cleaned_number(lua_State *L, const char *s, size_t n) {
  luaL_Buffer b;
  size_t i;
  luaL_buffinit(L, &b);
  for (i = 0; i < n; i++)
    if (s[i] != '_') luaL_addchar(&b, s[i]);
  luaL_pushresult(&b);
  if (lua_stringtonumber(L, lua_tostring(L, -1)) == 0) lua_pushvalue(L, -1); /* cannot happen */
  lua_remove(L, -2);
}

/* Pushes the value of a scalar of kind k (SCALAR_INT/SCALAR_FLOAT checked by scalar_kind). */
static void push_kind(lua_State *L, int k, const char *s, size_t n) {
  unsigned long long u;
  double d;
  int over, neg, special;
  switch (k) {
  case SCALAR_NULL: lconv_push_null(L); return;
  case SCALAR_TRUE: lua_pushboolean(L, 1); return;
  case SCALAR_FALSE: lua_pushboolean(L, 0); return;
  case SCALAR_STR: lua_pushlstring(L, s, n); return;
  default: break;
  }
  special = scalar_special_float(s, n);
  if (special == 2) { lua_pushnumber(L, (lua_Number)NAN); return; }
  if (special) { lua_pushnumber(L, special > 0 ? HUGE_VAL : -HUGE_VAL); return; }
  if (k == SCALAR_INT && scalar_radix_int(s, n, &u, &d, &over, &neg)) {
    /* 0x / 0o / 0b: exact while it fits in 64 bits, else a float */
    if (!over && !neg && u <= (unsigned long long)LUA_MAXINTEGER)
      lua_pushinteger(L, (lua_Integer)u);
    else if (!over && neg && u <= (unsigned long long)LUA_MAXINTEGER + 1ULL)
      lua_pushinteger(L, (lua_Integer)(0ULL - u));
    else
      lua_pushnumber(L, neg ? -d : d);
    return;
  }
  push_cleaned_number(L, s, n);
  if (k == SCALAR_FLOAT && lua_isinteger(L, -1)) { /* !!float 1 */
    lua_pushnumber(L, (lua_Number)lua_tointeger(L, -1));
    lua_remove(L, -2);
  }
}

/* ---------------------------------------------------------------- decoder */

/* The parser lives in a userdata, released by one idempotent close (__gc and __close). */
static int parser_close(lua_State *L) {
  yamlparse_close((yamlparse_t *)luaL_checkudata(L, 1, PARSER_MT));
  return 0;
}

/* Pushes a closed parser, to be closed with the function's other values (stack index 4). */
static yamlparse_t *new_parser(lua_State *L) {
  yamlparse_t *p = (yamlparse_t *)lua_newuserdatauv(L, sizeof *p, 0);
  memset(p, 0, sizeof *p);
  luaL_setmetatable(L, PARSER_MT);
  lua_toclose(L, -1);
  return p;
}

typedef struct {
  lua_State *L;
  yamlparse_t *p;
  const char *name;
  int marks;            /* building marks? */
  int anchors;          /* stack index: anchor name -> { v=, m=, s= } or false while being built */
  lua_Integer nodes;    /* nodes parsed, bounds the marks that aliases may expand to */
  lua_Integer nmarks;
  lua_Integer expanded; /* nodes of the value with every alias expanded (bounded the same way) */
} dstate;

/* Aliases share values, but whoever walks the value (JSON of a trace, a config snapshot)
 * meets every copy: an alias bomb is refused when its expansion passes this. */
#define MAX_EXPANDED(d) (10 * (d)->nodes + 100000)

/* Raises "name:line:col: message" (never returns). */
static void derror(dstate *d, yaml_mark_t m, const char *fmt, ...) {
  lua_State *L = d->L;
  va_list ap;
  lua_pushfstring(L, "%s:%d:%d: ", d->name, (int)m.line + 1, (int)m.column + 1);
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_concat(L, 2);
  lua_error(L);
}

/* Replaces the current event with the next one; raises the parse error there is. */
static yaml_event_t *next_event(dstate *d) {
  yaml_event_t *ev = yamlparse_next(d->p);
  yaml_mark_t m;
  char msg[512];
  if (ev) return ev;
  if (!yamlparse_problem(d->p, &m, msg, sizeof msg)) luaL_error(d->L, "%s: out of memory", d->name);
  derror(d, m, "%s", msg);
  return NULL;
}

static void parse_node(dstate *d, int depth);

/* Pushes a mark record { line=, col= } for a node starting at m. */
static void new_rec(dstate *d, yaml_mark_t m) {
  lua_createtable(d->L, 0, 4);
  lua_pushinteger(d->L, (lua_Integer)m.line + 1);
  lua_setfield(d->L, -2, "line");
  lua_pushinteger(d->L, (lua_Integer)m.column + 1);
  lua_setfield(d->L, -2, "col");
}

/* Pushes the value of the current scalar event (yamlparse_scalar_kind says what it is). */
static void push_scalar_value(dstate *d) {
  yaml_event_t *ev = &d->p->event;
  const char *s = (const char *)ev->data.scalar.value;
  size_t n = ev->data.scalar.length;
  char shown[YAML_SHOWN_MAX];
  int k = yamlparse_scalar_kind(ev);
  if (k == YAML_BAD_VALUE)
    derror(d, ev->start_mark, "invalid !!%s value '%s'", yaml_tag_suffix(ev->data.scalar.tag), yaml_shown(shown, s, n));
  if (k == YAML_BAD_TAG) derror(d, ev->start_mark, "unsupported tag '%s'", yaml_shown_tag(shown, ev->data.scalar.tag));
  push_kind(d->L, k, s, n);
}

/* Anchors: the name is pushed at the start of the node (returns its index, or 0), then
 * end_anchor stores { v = value, m = rec, s = text, n = expanded size } and removes the
 * name from the stack. */
static int begin_anchor(dstate *d, const yaml_char_t *anchor) {
  if (anchor == NULL) return 0;
  lua_pushstring(d->L, (const char *)anchor);
  lua_pushvalue(d->L, -1);
  lua_pushboolean(d->L, 0);
  lua_rawset(d->L, d->anchors);
  return lua_gettop(d->L);
}

/* Stack: name value [rec] -> value [rec]; `text` is the scalar text (or NULL). */
static void end_anchor(dstate *d, int name, const char *text, size_t len, lua_Integer size) {
  lua_State *L = d->L;
  int v = name + 1;
  if (name == 0) return;
  lua_pushvalue(L, name);
  lua_createtable(L, 0, 4);
  lua_pushvalue(L, v);
  lua_setfield(L, -2, "v");
  lua_pushinteger(L, size);
  lua_setfield(L, -2, "n");
  if (d->marks) {
    lua_pushvalue(L, v + 1);
    lua_setfield(L, -2, "m");
  }
  if (text) {
    lua_pushlstring(L, text, len);
    lua_setfield(L, -2, "s");
  }
  lua_rawset(L, d->anchors);
  lua_remove(L, name);
}

/* Pushes the anchor entry named by the current alias event; raises when unknown. */
static void push_anchor_entry(dstate *d) {
  yaml_event_t *ev = &d->p->event;
  const char *name = (const char *)ev->data.alias.anchor;
  lua_getfield(d->L, d->anchors, name);
  if (lua_isnil(d->L, -1)) derror(d, ev->start_mark, "unknown alias '*%s'", name);
  if (!lua_toboolean(d->L, -1)) derror(d, ev->start_mark, "alias '*%s' refers to a node that contains it", name);
}

static void parse_alias(dstate *d) {
  lua_State *L = d->L;
  yaml_mark_t m = d->p->event.start_mark;
  push_anchor_entry(d);
  lua_getfield(L, -1, "n");
  d->expanded += lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (d->expanded > MAX_EXPANDED(d)) derror(d, m, "aliases expand to too many nodes");
  lua_getfield(L, -1, "v");
  if (d->marks) { /* a fresh record at the alias that shares what is below the anchored node */
    new_rec(d, m);
    lua_getfield(L, -3, "m");
    lua_getfield(L, -1, "keys");
    lua_setfield(L, -3, "keys");
    lua_getfield(L, -1, "kids");
    lua_setfield(L, -3, "kids");
    lua_pop(L, 1);
  }
  lua_remove(L, d->marks ? -3 : -2);
}

static void parse_scalar(dstate *d) {
  yaml_event_t *ev = &d->p->event;
  int name = begin_anchor(d, ev->data.scalar.anchor);
  push_scalar_value(d);
  if (d->marks) new_rec(d, ev->start_mark);
  end_anchor(d, name, (const char *)ev->data.scalar.value, ev->data.scalar.length, 1);
}

static void check_container(dstate *d, int depth, const yaml_char_t *tag, const char *kind) {
  yaml_mark_t m = d->p->event.start_mark;
  char shown[YAML_SHOWN_MAX];
  if (depth > LCONV_MAX_DEPTH) derror(d, m, "nested deeper than %d levels", LCONV_MAX_DEPTH);
  if (!lua_checkstack(d->L, 16)) derror(d, m, "out of stack space");
  if (!yamlparse_container_tag_ok(tag, kind))
    derror(d, m, "unsupported tag '%s' on a %s", yaml_shown_tag(shown, tag), kind[0] == 'm' ? "mapping" : "sequence");
}

static void parse_sequence(dstate *d, int depth) {
  lua_State *L = d->L;
  yaml_event_t *ev = &d->p->event;
  int name = begin_anchor(d, ev->data.sequence_start.anchor), t, kids = 0;
  lua_Integer start = d->expanded; /* this node is counted already */
  lua_Integer n = 0;
  check_container(d, depth, ev->data.sequence_start.tag, "seq");
  lua_newtable(L);
  lconv_mark_array(L);
  t = lua_gettop(L);
  if (d->marks) {
    new_rec(d, ev->start_mark);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "kids");
    kids = lua_gettop(L);
  }
  while (next_event(d)->type != YAML_SEQUENCE_END_EVENT) {
    parse_node(d, depth); /* value [rec] */
    n++;
    if (d->marks) lua_rawseti(L, kids, n);
    lua_rawseti(L, t, n);
  }
  if (d->marks) lua_pop(L, 1);
  end_anchor(d, name, NULL, 0, d->expanded - start + 1);
}

/* Pushes the key of a mapping entry as a string (the scalar's own text); returns 1 for
 * a merge key `<<`.  Anchored scalar keys are registered like any scalar. */
static int push_key(dstate *d) {
  lua_State *L = d->L;
  yaml_event_t *ev = &d->p->event;
  if (ev->type == YAML_ALIAS_EVENT) {
    push_anchor_entry(d);
    lua_getfield(L, -1, "s");
    if (!lua_isstring(L, -1)) derror(d, ev->start_mark, "mapping keys must be scalars");
    lua_remove(L, -2);
    return 0;
  }
  if (ev->type != YAML_SCALAR_EVENT) derror(d, ev->start_mark, "mapping keys must be scalars");
  lua_pushlstring(L, (const char *)ev->data.scalar.value, ev->data.scalar.length);
  if (ev->data.scalar.anchor) {
    parse_scalar(d);
    lua_pop(L, d->marks ? 2 : 1);
  }
  return yamlparse_is_merge_key(ev);
}

/* Stack: value [rec] of a `<<` entry -> (popped), each mapping appended to merges as (t, rec). */
static void add_merge(dstate *d, int merges, yaml_mark_t m) {
  lua_State *L = d->L;
  int v = d->marks ? -2 : -1;
  lua_Integer n = (lua_Integer)lua_rawlen(L, merges), i, len;
  if (lua_type(L, v) != LUA_TTABLE) goto bad;
  if (!lua_getmetatable(L, v)) { /* one mapping */
    lua_pushvalue(L, v);
    lua_rawseti(L, merges, n + 1);
    if (d->marks) lua_pushvalue(L, -1); else lua_pushboolean(L, 0);
    lua_rawseti(L, merges, n + 2);
  } else { /* a list of mappings */
    lua_pop(L, 1);
    len = (lua_Integer)lua_rawlen(L, v);
    for (i = 1; i <= len; i++) {
      lua_rawgeti(L, v, i);
      if (lua_type(L, -1) != LUA_TTABLE || lua_getmetatable(L, -1)) goto bad;
      lua_rawseti(L, merges, n + 2 * i - 1);
      if (d->marks) {
        lua_getfield(L, -1, "kids");
        lua_rawgeti(L, -1, i);
        lua_remove(L, -2);
      } else {
        lua_pushboolean(L, 0);
      }
      lua_rawseti(L, merges, n + 2 * i);
    }
  }
  lua_pop(L, d->marks ? 2 : 1);
  return;
bad:
  derror(d, m, "'<<' needs a mapping or a list of mappings");
}

/* Adds the members of the merged mappings that the mapping t lacks (earlier sources win);
 * with marks, their records and names (inserted into keys at position pos). */
static void apply_merges(dstate *d, int t, int kids, int keys, int merges, lua_Integer pos) {
  lua_State *L = d->L;
  lua_Integer i, j, n = (lua_Integer)lua_rawlen(L, merges), added = 0, nkeys;
  int nk = 0;
  if (d->marks) {
    lua_newtable(L);
    nk = lua_gettop(L);
  }
  for (i = 1; i < n; i += 2) {
    lua_rawgeti(L, merges, i);     /* src */
    lua_rawgeti(L, merges, i + 1); /* srcrec | false */
    if (d->marks) {
      lua_getfield(L, -1, "keys");
      lua_getfield(L, -2, "kids");
      for (j = 1; lua_rawgeti(L, -2, j) != LUA_TNIL; j++) { /* src srcrec skeys skids k */
        lua_pushvalue(L, -1);
        if (lua_rawget(L, t) == LUA_TNIL) {
          lua_pushvalue(L, -2);
          lua_pushvalue(L, -1);
          lua_rawget(L, -8);
          lua_rawset(L, t);
          lua_pushvalue(L, -2);
          lua_pushvalue(L, -1);
          lua_rawget(L, -5);
          lua_rawset(L, kids);
          lua_pushvalue(L, -2);
          lua_rawseti(L, nk, ++added);
        }
        lua_pop(L, 2);
      }
      lua_pop(L, 3);
    } else {
      lua_pushnil(L);
      while (lua_next(L, -3)) { /* src false k v */
        lua_pushvalue(L, -2);
        if (lua_rawget(L, t) == LUA_TNIL) {
          lua_pushvalue(L, -3);
          lua_pushvalue(L, -3);
          lua_rawset(L, t);
        }
        lua_pop(L, 2);
      }
    }
    lua_pop(L, 2);
  }
  if (!d->marks) return;
  /* keys = keys[1..pos] .. merged .. keys[pos+1..] */
  nkeys = (lua_Integer)lua_rawlen(L, keys);
  for (j = nkeys; j > pos; j--) {
    lua_rawgeti(L, keys, j);
    lua_rawseti(L, keys, j + added);
  }
  for (j = 1; j <= added; j++) {
    lua_rawgeti(L, nk, j);
    lua_rawseti(L, keys, pos + j);
  }
  lua_pop(L, 1);
}

static void parse_mapping(dstate *d, int depth) {
  lua_State *L = d->L;
  yaml_event_t *ev = &d->p->event;
  int name = begin_anchor(d, ev->data.mapping_start.anchor), t, keys = 0, kids = 0, merges;
  lua_Integer start = d->expanded; /* this node is counted already */
  lua_Integer nkeys = 0, merge_pos = -1;
  check_container(d, depth, ev->data.mapping_start.tag, "map");
  lua_newtable(L);
  t = lua_gettop(L);
  if (d->marks) {
    new_rec(d, ev->start_mark);
    lua_newtable(L);
    keys = lua_gettop(L);
    lua_newtable(L);
    kids = lua_gettop(L);
    lua_pushvalue(L, kids);
    lua_setfield(L, t + 1, "kids");
  }
  lua_newtable(L);
  merges = lua_gettop(L);
  while (next_event(d)->type != YAML_MAPPING_END_EVENT) {
    yaml_mark_t km = ev->start_mark, vm;
    int merge = push_key(d); /* key */
    if (merge) {
      if (merge_pos >= 0) derror(d, km, "duplicate key '<<'");
      merge_pos = nkeys;
      lua_pop(L, 1);
      vm = next_event(d)->start_mark;
      parse_node(d, depth);
      add_merge(d, merges, vm);
      continue;
    }
    lua_pushvalue(L, -1);
    if (lua_rawget(L, t) != LUA_TNIL) {
      size_t klen;
      const char *k = lua_tolstring(L, -2, &klen);
      char shown[YAML_SHOWN_MAX];
      derror(d, km, "duplicate key '%s'", yaml_shown(shown, k, klen));
    }
    lua_pop(L, 1);
    next_event(d);
    parse_node(d, depth); /* key value [rec] */
    if (d->marks) {
      lua_pushinteger(L, (lua_Integer)km.line + 1);
      lua_setfield(L, -2, "key_line");
      lua_pushinteger(L, (lua_Integer)km.column + 1);
      lua_setfield(L, -2, "key_col");
      lua_pushvalue(L, -3);
      lua_rawseti(L, keys, ++nkeys);
      lua_pushvalue(L, -3);
      lua_insert(L, -2);
      lua_rawset(L, kids);
    }
    lua_rawset(L, t);
  }
  if (merge_pos >= 0) apply_merges(d, t, kids, keys, merges, merge_pos);
  lua_settop(L, merges - 1);
  if (d->marks) {
    lua_pop(L, 1); /* kids, already in rec */
    lua_setfield(L, t + 1, "keys");
  }
  end_anchor(d, name, NULL, 0, d->expanded - start + 1);
}

/* The current event starts a node: pushes its value, and its mark record when marking. */
static void parse_node(dstate *d, int depth) {
  yaml_event_t *ev = &d->p->event;
  d->nodes++;
  if (ev->type != YAML_ALIAS_EVENT) d->expanded++;
  switch (ev->type) {
  case YAML_ALIAS_EVENT: parse_alias(d); break;
  case YAML_SCALAR_EVENT: parse_scalar(d); break;
  case YAML_SEQUENCE_START_EVENT: parse_sequence(d, depth + 1); break;
  case YAML_MAPPING_START_EVENT: parse_mapping(d, depth + 1); break;
  default: derror(d, ev->start_mark, "unexpected event %d", (int)ev->type);
  }
}

/* Turns the record tree at the top into out[path] = { line, col, key_line, key_col, keys }
 * for every node; aliases share records, so the count is bounded against alias bombs. */
static void flatten(dstate *d, int out, const char *path) {
  lua_State *L = d->L;
  int rec = lua_gettop(L), keys, kids;
  lua_Integer i;
  static const char *const fields[] = { "line", "col", "key_line", "key_col", NULL };
  const char *const *f;
  if (++d->nmarks > 10 * d->nodes + 100000)
    luaL_error(L, "%s:1:1: aliases expand to too many nodes", d->name);
  if (!lua_checkstack(L, 12)) luaL_error(L, "%s: out of stack space", d->name);
  lua_createtable(L, 0, 5);
  for (f = fields; *f; f++) {
    lua_getfield(L, rec, *f);
    lua_setfield(L, -2, *f);
  }
  lua_getfield(L, rec, "keys");
  keys = lua_gettop(L);
  if (!lua_isnil(L, keys)) {
    lua_newtable(L);
    for (i = 1; lua_rawgeti(L, keys, i) != LUA_TNIL; i++) lua_rawseti(L, -2, i);
    lua_pop(L, 1);
    lconv_mark_array(L);
    lua_setfield(L, -3, "keys");
  }
  lua_pushstring(L, path);
  lua_pushvalue(L, -3);
  lua_rawset(L, out);
  lua_getfield(L, rec, "kids"); /* rec entry keys kids */
  kids = lua_gettop(L);
  for (i = 1; !lua_isnil(L, kids); i++) {
    int base = lua_gettop(L);
    if (!lua_isnil(L, keys)) {
      const char *k;
      if (lua_rawgeti(L, keys, i) == LUA_TNIL) break;
      k = lua_tostring(L, -1);
      if (*path) lua_pushfstring(L, "%s.%s", path, k); else lua_pushvalue(L, -1);
      lua_pushvalue(L, base + 1);
      lua_rawget(L, kids); /* k childpath childrec */
    } else {
      if (lua_rawgeti(L, kids, i) == LUA_TNIL) break;
      if (*path) lua_pushfstring(L, "%s.%I", path, (LUAI_UACINT)i);
      else lua_pushfstring(L, "%I", (LUAI_UACINT)i);
      lua_insert(L, -2); /* childpath childrec */
    }
    if (lua_istable(L, -1)) flatten(d, out, lua_tostring(L, -2));
    lua_settop(L, base);
  }
  lua_settop(L, rec - 1);
}

/* Protected body of decode: (text, name, want_marks) -> value [, marks]. */
static int decode_run(lua_State *L) {
  dstate d;
  yamlparse_t *p;
  yaml_event_t *ev;
  size_t len;
  const char *text = lua_tolstring(L, 1, &len);
  memset(&d, 0, sizeof d);
  d.L = L;
  d.name = lua_tostring(L, 2);
  d.marks = lua_toboolean(L, 3);
  lua_settop(L, 3);
  p = new_parser(L);
  if (yamlparse_open_string(p, text, len) != 0) return luaL_error(L, "%s: out of memory", d.name);
  d.p = p;
  lua_newtable(L);
  d.anchors = lua_gettop(L); /* 5 */
  next_event(&d);          /* stream start */
  ev = next_event(&d);
  if (ev->type == YAML_STREAM_END_EVENT) { /* no document at all */
    lconv_push_null(L);
    if (d.marks) new_rec(&d, ev->start_mark);
  } else {
    next_event(&d);
    parse_node(&d, 0);
    if (next_event(&d)->type != YAML_DOCUMENT_END_EVENT)
      derror(&d, p->event.start_mark, "expected the end of the document");
  }
  if (!d.marks) return 1;
  lua_newtable(L); /* value rec out */
  lua_insert(L, -2);
  flatten(&d, lua_gettop(L) - 1, "");
  return 2;
}

/* decode(text [, name [, want_marks]]) -> value [, marks] | nil, "name:line:col: problem" */
static int yaml_decode(lua_State *L) {
  int want, status;
  luaL_checkstring(L, 1);
  luaL_optstring(L, 2, "yaml");
  lua_settop(L, 3);
  want = lua_toboolean(L, 3);
  lua_pushcfunction(L, decode_run);
  lua_pushvalue(L, 1);
  if (lua_isnoneornil(L, 2)) lua_pushliteral(L, "yaml"); else lua_pushvalue(L, 2);
  lua_pushboolean(L, want);
  status = lua_pcall(L, 3, 2, 0);
  if (status == LUA_OK) {
    if (!want) lua_pop(L, 1); /* the padding nil */
    return want ? 2 : 1;
  }
  if (status != LUA_ERRRUN || lua_type(L, -1) != LUA_TSTRING) return lua_error(L);
  lua_pushnil(L);
  lua_insert(L, -2);
  return 2;
}

/* ---------------------------------------------------------------- streaming a list */

/* Calls fn(item, index) for each item of the sequence whose start event is current.
 * Returns 1 when it reached the end, 0 when fn returned false. */
static int stream_items(dstate *d, int fn) {
  lua_State *L = d->L;
  lua_Integer i = 0;
  while (next_event(d)->type != YAML_SEQUENCE_END_EVENT) {
    parse_node(d, 1);
    lua_pushvalue(L, fn);
    lua_insert(L, -2);
    lua_pushinteger(L, ++i);
    lua_call(L, 2, 1);
    if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) return 0;
    lua_pop(L, 1);
  }
  return 1;
}

/* Protected body of stream_list: (path, name, fn) -> result, key. */
static int stream_run(lua_State *L) {
  dstate d;
  yamlparse_t *p;
  yaml_event_t *ev;
  const char *path = lua_tostring(L, 1), *found = NULL;
  int fn = 3, done = -1, conflict = 0, opened;
  memset(&d, 0, sizeof d);
  d.L = L;
  d.name = lua_tostring(L, 2);
  lua_settop(L, 3);
  p = new_parser(L);
  opened = yamlparse_open_file(p, path);
  if (opened == -1) return luaL_error(L, "%s: cannot open: %s", d.name, strerror(errno));
  if (opened != 0) return luaL_error(L, "%s: out of memory", d.name);
  d.p = p;
  lua_newtable(L);
  d.anchors = lua_gettop(L);
  next_event(&d); /* stream start */
  if (next_event(&d)->type == YAML_STREAM_END_EVENT) { lua_pushboolean(L, 0); return 1; }
  ev = next_event(&d);
  d.nodes++;
  d.expanded++;
  if (ev->type == YAML_SEQUENCE_START_EVENT) {
    check_container(&d, 1, ev->data.sequence_start.tag, "seq");
    found = "";
    done = stream_items(&d, fn);
  } else if (ev->type == YAML_MAPPING_START_EVENT) {
    /* The list under generated_inputs (else inputs) is streamed; every other value is
     * parsed and dropped, so a syntax error anywhere is still found. */
    check_container(&d, 1, ev->data.mapping_start.tag, "map");
    while (next_event(&d)->type != YAML_MAPPING_END_EVENT) {
      const char *key = NULL;
      ev = &p->event;
      if (ev->type == YAML_SCALAR_EVENT && ev->data.scalar.anchor == NULL) {
        const char *k = (const char *)ev->data.scalar.value;
        if (strcmp(k, "generated_inputs") == 0) key = "generated_inputs";
        else if (strcmp(k, "inputs") == 0) key = "inputs";
      }
      if (key == NULL) {
        push_key(&d);
        lua_pop(L, 1);
      }
      ev = next_event(&d);
      if (key != NULL && found != NULL) conflict = 1; /* both lists: the full decode decides */
      if (key != NULL && found == NULL && ev->type == YAML_SEQUENCE_START_EVENT && ev->data.sequence_start.anchor == NULL) {
        d.nodes++;
        d.expanded++;
        check_container(&d, 1, ev->data.sequence_start.tag, "seq");
        found = key;
        done = stream_items(&d, fn);
        if (!done) break;
      } else {
        if (key != NULL) conflict = 1; /* not a plain list: the full decode says what it is */
        parse_node(&d, 1);
        lua_pop(L, 1);
      }
    }
  }
  if (done == 0) { lua_pushliteral(L, "stopped"); return 1; }
  if (found == NULL || conflict) { lua_pushboolean(L, 0); return 1; }
  /* The rest of the document must parse too. */
  if (next_event(&d)->type != YAML_DOCUMENT_END_EVENT)
    derror(&d, p->event.start_mark, "expected the end of the document");
  lua_pushboolean(L, 1);
  lua_pushstring(L, found);
  return 2;
}

/* stream_list(path, name, fn) -> true, key | false | "stopped" | nil, "name:line:col: problem"
 * Reads an inputs file from disk without holding it or the whole list: fn(item, index) is
 * called for each item of the top-level list, or of the list under generated_inputs: (else
 * inputs:). false: the document has no such plain list (or has both keys), and the caller
 * decodes it whole to say what it holds; "stopped": fn returned false. */
static int yaml_stream_list(lua_State *L) {
  int status;
  luaL_checkstring(L, 1);
  luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  lua_settop(L, 3);
  lua_pushcfunction(L, stream_run);
  lua_insert(L, 1);
  status = lua_pcall(L, 3, 2, 0);
  if (status == LUA_OK) return 2;
  if (status != LUA_ERRRUN || lua_type(L, -1) != LUA_TSTRING) return lua_error(L);
  lua_pushnil(L);
  lua_insert(L, -2);
  return 2;
}

/* array(t) -> t, marked so that it encodes as a sequence even when empty. */
static int yaml_array(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lconv_mark_array(L);
  return 1;
}

static const luaL_Reg yaml_funcs[] = {
  { "decode", yaml_decode },
  { "stream_list", yaml_stream_list },
  { "encode", lyaml_encode },
  { "array", yaml_array },
  { NULL, NULL }
};

int luaopen_fluxloop_yaml(lua_State *L); /* the module's only export */
int luaopen_fluxloop_yaml(lua_State *L) {
  const char *const mts[] = { PARSER_MT, EMITTER_MT };
  lua_CFunction fns[] = { parser_close, lyaml_emitter_close };
  int i;
  for (i = 0; i < 2; i++) {
    luaL_newmetatable(L, mts[i]);
    lua_pushcfunction(L, fns[i]);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, fns[i]);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
  }
  luaL_newlib(L, yaml_funcs);
  lconv_push_null(L);
  lua_setfield(L, -2, "null");
  lconv_push_array_mt(L);
  lua_setfield(L, -2, "array_mt");
  return 1;
}
