/* lffi.c - the fluxloop.ffi module: declared C functions of a shared library, called from Lua via libffi. */
#include <ffi.h>
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "ffisig.h"
#include "native.h"

#define LIB_MT "fluxloop.FfiLibrary"
#define FN_MT "fluxloop.FfiFunction"
#define SIG_TEXT_MAX 512

/* User value 1: the path given to load (nil for the program itself). */
typedef struct flib {
  void *handle;
} flib;

/* User value 1: the flib, so the library stays loaded while the function exists.
 * cif points into atypes, which is safe because Lua never moves a userdata. */
typedef struct ffn {
  void (*fn)(void);
  ffi_cif cif;
  ffi_type *atypes[FFISIG_MAX_ARGS];
  ffisig sig;
} ffn;

/* One argument or result, in the width libffi expects. */
typedef union fvalue {
  int i;
  unsigned u;
  long l;
  unsigned long ul;
  int64_t i64;
  uint64_t u64;
  size_t z;
  double d;
  float f;
  const void *p;
  ffi_arg ret_u;  /* integer results narrower than a word come back widened */
  ffi_sarg ret_s;
} fvalue;

/* ---- libraries ----------------------------------------------------------- */

static int lib_gc(lua_State *L) {
  flib *lib = luaL_checkudata(L, 1, LIB_MT);
  native_close(lib->handle);
  lib->handle = NULL;
  return 0;
}

static int lib_tostring(lua_State *L) {
  luaL_checkudata(L, 1, LIB_MT);
  lua_getiuservalue(L, 1, 1);
  lua_pushfstring(L, "fluxloop.ffi library (%s)", lua_isnil(L, -1) ? "the program" : lua_tostring(L, -1));
  return 1;
}

/* load([path]) -> lib | nil, message, code. No path: the program and the libraries it
 * was linked with (libc, libm ...). */
static int ffi_load(lua_State *L) {
  const char *path = luaL_optstring(L, 1, NULL);
  char err[NATIVE_ERR_SIZE];
  native_status st;
  flib *lib;
  lua_settop(L, 1);
  lib = lua_newuserdatauv(L, sizeof *lib, 1);
  lib->handle = NULL;
  luaL_setmetatable(L, LIB_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  lib->handle = native_open(path, &st, err, sizeof err);
  if (lib->handle == NULL) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    lua_pushstring(L, native_code(st));
    return 3;
  }
  return 1;
}

/* Reads lib:fn(name, ret [, {args}]) into sig; raises on a type it does not know. */
static void declare_from_table(lua_State *L, ffisig *sig) {
  size_t n;
  const char *name = luaL_checklstring(L, 2, &n), *ret = luaL_checkstring(L, 3);
  int t;
  luaL_argcheck(L, n > 0 && n < FFISIG_NAME_MAX, 2, "function name empty or too long");
  memcpy(sig->name, name, n + 1);
  t = ffisig_lookup(ret, strlen(ret));
  if (t < 0)
    luaL_error(L, "ffi: %s: unknown return type '%s' (known: %s)", name, ret, ffisig_type_list());
  sig->ret = (ffisig_type)t;
  if (lua_isnoneornil(L, 4)) return;
  luaL_checktype(L, 4, LUA_TTABLE);
  n = (size_t)lua_rawlen(L, 4);
  if (n > FFISIG_MAX_ARGS) luaL_error(L, "ffi: %s: more than %d arguments", name, FFISIG_MAX_ARGS);
  for (size_t i = 1; i <= n; i++) {
    const char *a;
    if (lua_rawgeti(L, 4, (lua_Integer)i) != LUA_TSTRING)
      luaL_error(L, "ffi: %s: argument type %d must be a type name, got a %s", name, (int)i, luaL_typename(L, -1));
    a = lua_tostring(L, -1);
    t = ffisig_lookup(a, strlen(a));
    if (t < 0 || t == FFISIG_VOID)
      luaL_error(L, "ffi: %s: %s type '%s' for argument %d (known: %s)", name, t < 0 ? "unknown" : "invalid", a,
                 (int)i, ffisig_type_list());
    sig->args[sig->nargs++] = (ffisig_type)t;
    lua_pop(L, 1);
  }
}

/* lib:fn("int add(int, int)") or lib:fn("add", "int", {"int", "int"}) -> f | nil, message, code.
 * A type name it does not know raises; a symbol the library lacks returns nil, message, "ENOSYM". */
static int lib_fn(lua_State *L) {
  flib *lib = luaL_checkudata(L, 1, LIB_MT);
  char err[NATIVE_ERR_SIZE];
  native_status st;
  union { void *obj; void (*fn)(void); } sym;
  ffisig sig;
  ffn *f;
  memset(&sig, 0, sizeof sig);
  if (lua_isnoneornil(L, 3)) {
    if (ffisig_parse(luaL_checkstring(L, 2), &sig, err, sizeof err) != 0)
      return luaL_error(L, "ffi: %s", err);
  } else {
    declare_from_table(L, &sig);
  }
  lua_getiuservalue(L, 1, 1);
  sym.obj = native_symbol(lib->handle, lua_tostring(L, -1), sig.name, &st, err, sizeof err);
  lua_pop(L, 1);
  if (sym.obj == NULL) {
    luaL_pushfail(L);
    lua_pushfstring(L, "%s; check the function name and that the library exports it", err);
    lua_pushstring(L, native_code(st));
    return 3;
  }
  f = lua_newuserdatauv(L, sizeof *f, 1);
  memset(f, 0, sizeof *f);
  f->fn = sym.fn;
  f->sig = sig;
  for (int i = 0; i < sig.nargs; i++) f->atypes[i] = ffisig_ffi_type(sig.args[i]);
  if (ffi_prep_cif(&f->cif, FFI_DEFAULT_ABI, (unsigned)sig.nargs, ffisig_ffi_type(sig.ret), f->atypes) != FFI_OK)
    return luaL_error(L, "ffi: %s: libffi cannot prepare this signature", sig.name);
  luaL_setmetatable(L, FN_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

/* ---- calls -------------------------------------------------------------- */

/* Raises "where: ffi: int add(int, int): <message>" at the caller's line. */
static int fn_error(lua_State *L, const ffn *f, const char *fmt, ...) {
  char sigtext[SIG_TEXT_MAX];
  va_list ap;
  ffisig_format(&f->sig, sigtext, sizeof sigtext);
  luaL_where(L, 1);
  lua_pushfstring(L, "ffi: %s: ", sigtext);
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_concat(L, 3);
  return lua_error(L);
}

/* Reads an integer argument in [lo, hi]; raises naming the argument otherwise. */
static lua_Integer int_arg(lua_State *L, const ffn *f, int i, lua_Integer lo, lua_Integer hi) {
  int idx = i + 2, ok = 0;
  lua_Integer v = 0;
  if (lua_type(L, idx) == LUA_TNUMBER) v = lua_tointegerx(L, idx, &ok);
  if (!ok)
    fn_error(L, f, "argument %d: expected an integer (%s), got %s", i + 1, ffisig_type_name(f->sig.args[i]),
             lua_type(L, idx) == LUA_TNUMBER ? "a number with a fraction" : luaL_typename(L, idx));
  if (v < lo || v > hi)
    fn_error(L, f, "argument %d: %I is out of range for %s", i + 1, v, ffisig_type_name(f->sig.args[i]));
  return v;
}

static void convert_arg(lua_State *L, const ffn *f, int i, fvalue *v) {
  int idx = i + 2, t = lua_type(L, idx);
  switch (f->sig.args[i]) {
  case FFISIG_INT: v->i = (int)int_arg(L, f, i, INT_MIN, INT_MAX); break;
  case FFISIG_UINT: v->u = (unsigned)int_arg(L, f, i, 0, UINT_MAX); break;
  case FFISIG_LONG: v->l = (long)int_arg(L, f, i, LONG_MIN, LONG_MAX); break;
  case FFISIG_ULONG: v->ul = (unsigned long)int_arg(L, f, i, 0, LUA_MAXINTEGER); break;
  case FFISIG_INT64: v->i64 = (int64_t)int_arg(L, f, i, LUA_MININTEGER, LUA_MAXINTEGER); break;
  case FFISIG_UINT64: v->u64 = (uint64_t)int_arg(L, f, i, 0, LUA_MAXINTEGER); break;
  case FFISIG_SIZE:
    v->z = (size_t)int_arg(L, f, i, 0, SIZE_MAX < (size_t)LUA_MAXINTEGER ? (lua_Integer)SIZE_MAX : LUA_MAXINTEGER);
    break;
  case FFISIG_DOUBLE:
  case FFISIG_FLOAT:
    if (t != LUA_TNUMBER) fn_error(L, f, "argument %d: expected a number, got %s", i + 1, luaL_typename(L, idx));
    if (f->sig.args[i] == FFISIG_DOUBLE) v->d = (double)lua_tonumber(L, idx);
    else v->f = (float)lua_tonumber(L, idx);
    break;
  case FFISIG_STRING:
    if (t != LUA_TSTRING && t != LUA_TNIL)
      fn_error(L, f, "argument %d: expected a string (or nil for NULL), got %s", i + 1, luaL_typename(L, idx));
    v->p = t == LUA_TNIL ? NULL : lua_tostring(L, idx); /* valid while the argument is on the stack */
    break;
  case FFISIG_POINTER:
    if (t != LUA_TLIGHTUSERDATA && t != LUA_TNIL)
      fn_error(L, f, "argument %d: expected a pointer (light userdata, or nil for NULL), got %s", i + 1,
               luaL_typename(L, idx));
    v->p = lua_touserdata(L, idx);
    break;
  case FFISIG_VOID:
  case FFISIG_NTYPES: break;
  }
}

static int push_result(lua_State *L, const ffn *f, const fvalue *r) {
  switch (f->sig.ret) {
  case FFISIG_VOID: return 0;
  case FFISIG_INT: lua_pushinteger(L, (lua_Integer)(int)r->ret_s); break;
  case FFISIG_UINT: lua_pushinteger(L, (lua_Integer)(unsigned)r->ret_u); break;
  case FFISIG_LONG: lua_pushinteger(L, (lua_Integer)(long)r->ret_s); break;
  case FFISIG_ULONG: lua_pushinteger(L, (lua_Integer)(unsigned long)r->ret_u); break; /* wraps above maxinteger */
  case FFISIG_INT64: lua_pushinteger(L, (lua_Integer)r->i64); break;
  case FFISIG_UINT64: lua_pushinteger(L, (lua_Integer)r->u64); break;
  case FFISIG_SIZE:
    lua_pushinteger(L, (lua_Integer)(sizeof(size_t) == 8 ? (size_t)r->u64 : (size_t)r->ret_u));
    break;
  case FFISIG_DOUBLE: lua_pushnumber(L, (lua_Number)r->d); break;
  case FFISIG_FLOAT: lua_pushnumber(L, (lua_Number)r->f); break;
  case FFISIG_STRING:
    if (r->p == NULL) lua_pushnil(L); else lua_pushstring(L, (const char *)r->p); /* copied */
    break;
  case FFISIG_POINTER:
    if (r->p == NULL) lua_pushnil(L); else lua_pushlightuserdata(L, (void *)r->p);
    break;
  case FFISIG_NTYPES: return 0;
  }
  return 1;
}

/* f(...) -> the result (nothing for void). Arguments are checked against the declaration. */
static int fn_call(lua_State *L) {
  ffn *f = luaL_checkudata(L, 1, FN_MT);
  fvalue args[FFISIG_MAX_ARGS], ret;
  void *ptrs[FFISIG_MAX_ARGS];
  int n = lua_gettop(L) - 1;
  if (n != f->sig.nargs)
    return fn_error(L, f, "expected %d argument%s, got %d", f->sig.nargs, f->sig.nargs == 1 ? "" : "s", n);
  for (int i = 0; i < n; i++) {
    memset(&args[i], 0, sizeof args[i]);
    convert_arg(L, f, i, &args[i]);
    ptrs[i] = &args[i];
  }
  memset(&ret, 0, sizeof ret);
  ffi_call(&f->cif, f->fn, &ret, ptrs);
  return push_result(L, f, &ret);
}

static int fn_tostring(lua_State *L) {
  ffn *f = luaL_checkudata(L, 1, FN_MT);
  char sigtext[SIG_TEXT_MAX];
  ffisig_format(&f->sig, sigtext, sizeof sigtext);
  lua_pushfstring(L, "fluxloop.ffi function (%s)", sigtext);
  return 1;
}

/* signature() -> "int add(int, int)" (our type names). */
static int fn_signature(lua_State *L) {
  ffn *f = luaL_checkudata(L, 1, FN_MT);
  char sigtext[SIG_TEXT_MAX];
  ffisig_format(&f->sig, sigtext, sizeof sigtext);
  lua_pushstring(L, sigtext);
  return 1;
}

static const luaL_Reg lib_methods[] = { { "fn", lib_fn }, { NULL, NULL } };
static const luaL_Reg lib_meta[] = { { "__gc", lib_gc }, { "__tostring", lib_tostring }, { NULL, NULL } };
static const luaL_Reg fn_methods[] = { { "signature", fn_signature }, { NULL, NULL } };
static const luaL_Reg fn_meta[] = { { "__call", fn_call }, { "__tostring", fn_tostring }, { NULL, NULL } };
static const luaL_Reg ffi_funcs[] = { { "load", ffi_load }, { NULL, NULL } };

static void new_class(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods) {
  if (luaL_newmetatable(L, name)) {
    luaL_setfuncs(L, meta, 0);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
}

int luaopen_fluxloop_ffi(lua_State *L); /* the module's only export */
int luaopen_fluxloop_ffi(lua_State *L) {
  new_class(L, LIB_MT, lib_meta, lib_methods);
  new_class(L, FN_MT, fn_meta, fn_methods);
  luaL_newlib(L, ffi_funcs);
  return 1;
}
