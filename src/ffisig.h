/* ffisig.h - the C types fluxloop.ffi knows and the parser of its small signature strings (no Lua). */
#ifndef FLUXLOOP_FFISIG_H
#define FLUXLOOP_FFISIG_H

#include <ffi.h>
#include <stddef.h>

typedef enum ffisig_type {
  FFISIG_VOID,
  FFISIG_INT,
  FFISIG_UINT,
  FFISIG_LONG,
  FFISIG_ULONG,
  FFISIG_INT64,
  FFISIG_UINT64,
  FFISIG_SIZE,
  FFISIG_DOUBLE,
  FFISIG_FLOAT,
  FFISIG_STRING,  /* in: const char * from a Lua string (nil: NULL); out: copied, NULL -> nil */
  FFISIG_POINTER, /* light userdata, nil for NULL */
  FFISIG_NTYPES
} ffisig_type;

#define FFISIG_MAX_ARGS 16
#define FFISIG_NAME_MAX 128

/* A declared function: return type, argument types, symbol name. */
typedef struct ffisig {
  ffisig_type ret;
  int nargs;
  ffisig_type args[FFISIG_MAX_ARGS];
  char name[FFISIG_NAME_MAX];
} ffisig;

/* Looks up a type name: our names (void int uint long ulong int64 uint64 size_t double
 * float string pointer) and the C spellings ("const char *", "int64_t", "void *", any
 * "T *"). Returns the type, or -1. */
int ffisig_lookup(const char *name, size_t len);

/* "int", "string", ... (our name of the type). */
const char *ffisig_type_name(ffisig_type t);

/* The space-separated list of our type names, for error messages. */
const char *ffisig_type_list(void);

/* The libffi description of the type. */
ffi_type *ffisig_ffi_type(ffisig_type t);

/* Parses "int add(int a, int b)" or "const char *version(void)". Returns 0, or -1 with a
 * message in err. */
int ffisig_parse(const char *decl, ffisig *out, char *err, size_t err_size);

/* Writes "int add(int, int)" into out. */
void ffisig_format(const ffisig *sig, char *out, size_t size);

#endif
