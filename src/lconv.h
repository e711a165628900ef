/* lconv.h - every conversion between Lua values and JSON/YAML lives behind this header. */
#ifndef FLUXLOOP_LCONV_H
#define FLUXLOOP_LCONV_H

#include <lua.h>
#include "buf.h"

/* Deepest nesting accepted when encoding or decoding; deeper input is an error,
 * which also catches tables that contain themselves. */
#define LCONV_MAX_DEPTH 128

/* The JSON/YAML null: one light userdata shared by every module and state. */
void lconv_push_null(lua_State *L);
int lconv_isnull(lua_State *L, int idx);

/* Pushes the metatable that marks a table as an array (so {} encodes as []).
 * Created once per state in the registry under "fluxloop.array". */
void lconv_push_array_mt(lua_State *L);
/* Sets the array metatable on the table at the top of the stack. */
void lconv_mark_array(lua_State *L);

/* Pushes the state's weak-keyed table of function names (function -> string), made on
 * first use: the encoder writes a function found there as its name. */
void lconv_push_function_names(lua_State *L);

/* Appends the JSON text of the value at idx to b.  Tables: an array when they
 * carry the array metatable or are a non-empty sequence 1..n with no other keys;
 * else an object with keys sorted (so files are byte-identical across runs).
 * Strings that are not valid UTF-8 have each bad byte replaced by U+FFFD.
 * NaN and infinities encode as null; userdata as their tostring; a function as its
 * name in the function-names table, else "<callable:KEY>" (KEY: the string key it is
 * under, or "function").
 * indent < 0: one line; else pretty-printed with that many spaces per level.
 * Returns 0, or -1 with a message pushed on the stack (depth exceeded, OOM). */
int lconv_encode_json(lua_State *L, int idx, buf_t *b, int indent);

/* The same, one line, for a value that another writer puts `depth` containers deep into
 * its own text (the recorder's trace lines): the depth limit counts those containers too,
 * so the text and the errors are those of encoding the whole. */
int lconv_encode_json_in(lua_State *L, int idx, buf_t *b, int depth);

/* Appends s (n bytes) as a JSON string literal, quotes included, with the same
 * UTF-8 repair as above. */
void lconv_put_json_string(buf_t *b, const char *s, size_t n);

/* Writes v in decimal to out (>= 21 bytes), no printf; returns the length. */
size_t lconv_format_integer(char *out, lua_Integer v);

/* Decodes JSON text; pushes the value, or returns -1 with "name:line:col: problem"
 * pushed.  Objects become tables, arrays tables with the array metatable, null
 * the null sentinel. */
int lconv_decode_json(lua_State *L, const char *text, size_t len, const char *name);

#endif
