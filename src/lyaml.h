/* lyaml.h - what the two files of fluxloop.yaml share (private to them): lyaml.c (the module,
 * decode, stream_list) and lyamlenc.c (encode). */
#ifndef FLUXLOOP_LYAML_H
#define FLUXLOOP_LYAML_H

#include <lua.h>

/* The metatable of encode's emitter userdata, closed by lyaml_emitter_close (__gc, __close). */
#define EMITTER_MT "fluxloop.yaml.emitter"
int lyaml_emitter_close(lua_State *L);

/* encode(value [, { order = marks }]) -> YAML text (block style, UTF-8). */
int lyaml_encode(lua_State *L);

#endif
