/* yamlemit.h - libyaml's emitter as fluxloop.yaml writes a document into memory: block style,
 * UTF-8, two-space indent, no folded lines; each string in the style that reads back as the
 * same string; and the order of a mapping's keys. No Lua here. */
#ifndef FLUXLOOP_YAMLEMIT_H
#define FLUXLOOP_YAMLEMIT_H

#include <stddef.h>
#include <yaml.h>

#include "buf.h"

/* An emitter writing into out; yamlemit_close releases it, once. Every call returns 1, or 0
 * with error saying why (out of memory, string too long, libyaml's problem). */
typedef struct {
  yaml_emitter_t emitter;
  buf_t out;
  buf_t repaired; /* a string's copy with invalid UTF-8 replaced */
  int emitter_ok;
  const char *error;
} yamlemit_t;

/* Starts the stream and its one document. e must be zeroed. */
int yamlemit_open(yamlemit_t *e);
/* Ends the document and the stream; the text is then in e->out. */
int yamlemit_finish(yamlemit_t *e);
void yamlemit_close(yamlemit_t *e);

/* A plain scalar written as it stands (null, true, a number). */
int yamlemit_plain(yamlemit_t *e, const char *text, size_t n);
int yamlemit_integer(yamlemit_t *e, long long v);
int yamlemit_float(yamlemit_t *e, double x);
/* A string: each byte that is not part of valid UTF-8 becomes U+FFFD; quoted when plain
 * it would read back as something else, a literal block when it has lines. */
int yamlemit_string(yamlemit_t *e, const char *s, size_t n);

/* A mapping or a sequence (YAML_MAPPING_START_EVENT ...): empty ones in flow style ({}, []). */
int yamlemit_start(yamlemit_t *e, int mapping, int empty);
int yamlemit_end(yamlemit_t *e, int mapping);

/* A mapping's key as written (its text) and where its value is (index, for the caller). */
typedef struct {
  const char *s;
  size_t n;
  long long index;
  int done; /* written already */
} yamlkey_t;

/* Sorts keys bytewise (the order they are written in, after any given first); returns a
 * key whose text another key has too, or NULL. */
const yamlkey_t *yamlemit_sort_keys(yamlkey_t *keys, size_t n);
/* The key with text s among sorted keys, or NULL. */
yamlkey_t *yamlemit_find_key(yamlkey_t *keys, size_t n, const char *s, size_t len);

#endif
