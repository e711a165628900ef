/* yamlparse.h - libyaml's parser as fluxloop.yaml reads a document: its events, from a string
 * or a file; the message and position of a parse error; how user text and tags show in
 * messages; what a scalar's tag asks for. No Lua here. */
#ifndef FLUXLOOP_YAMLPARSE_H
#define FLUXLOOP_YAMLPARSE_H

#include <stddef.h>
#include <stdio.h>
#include <yaml.h>

/* A parser and its current event; yamlparse_close releases both (and the file), once. */
typedef struct {
  yaml_parser_t parser;
  yaml_event_t event;
  int parser_ok, has_event;
  FILE *file;       /* a file read by the parser itself, or NULL */
  const char *text; /* the string parsed (NULL for a file): errors point into it */
  size_t len;
} yamlparse_t;

/* 0, or -1 when out of memory. p must be zeroed. */
int yamlparse_open_string(yamlparse_t *p, const char *text, size_t len);
/* 0; -1 when the file cannot be opened (errno says why); -2 when out of memory. */
int yamlparse_open_file(yamlparse_t *p, const char *path);
/* Replaces the current event with the next one: it, or NULL on a parse error. */
yaml_event_t *yamlparse_next(yamlparse_t *p);
void yamlparse_close(yamlparse_t *p);

/* After yamlparse_next failed: 0 when the parser ran out of memory; else 1, with the
 * problem's position in *m and its words in msg (cap bytes, cut if longer). */
int yamlparse_problem(const yamlparse_t *p, yaml_mark_t *m, char *msg, size_t cap);

/* User text (a value, key or tag) as messages show it: one line, control bytes as \n or
 * \xHH, cut after 60 bytes with "...". out holds YAML_SHOWN_MAX bytes; returns out. */
#define YAML_SHOWN_MAX (2 + 60 * 4 + 3 + 1)
const char *yaml_shown(char *out, const char *s, size_t n);
/* A tag as messages show it: tag:yaml.org,2002:str as !!str, any other as itself. */
const char *yaml_shown_tag(char *out, const yaml_char_t *tag);

/* Whether tag is the standard tag !!suffix (tag:yaml.org,2002:suffix). */
int yaml_tag_is(const yaml_char_t *tag, const char *suffix);
/* The standard tag's suffix ("int" for tag:yaml.org,2002:int). */
const char *yaml_tag_suffix(const yaml_char_t *tag);

/* What the current scalar event holds, as a yamlscalar.h kind: plain untagged scalars are
 * resolved, quoted and block scalars are strings, ! and !!str/int/float/bool/null are
 * honoured. YAML_BAD_VALUE: a !!int (float, bool, null) whose text is not one;
 * YAML_BAD_TAG: a tag fluxloop does not know. */
enum { YAML_BAD_VALUE = -1, YAML_BAD_TAG = -2 };
int yamlparse_scalar_kind(const yaml_event_t *ev);
/* Whether a sequence ("seq") or mapping ("map") may carry tag (none, ! or its own). */
int yamlparse_container_tag_ok(const yaml_char_t *tag, const char *kind);
/* Whether the current scalar event is the merge key `<<` (plain, or tagged !!merge). */
int yamlparse_is_merge_key(const yaml_event_t *ev);

#endif
