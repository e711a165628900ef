/* redact.h - replaces known secret strings in encoded lines with "***" (no Lua here). */
#ifndef FLUXLOOP_REDACT_H
#define FLUXLOOP_REDACT_H

#include <stddef.h>

/* The secrets, as they appear in the files (JSON-escaped). Longest first, so a secret that
 * contains another is masked whole. */
typedef struct redact {
  char **needle;
  size_t *len;
  size_t n;
} redact_t;

#define REDACT_MASK "***"

/* Adds a secret (copied); secrets shorter than the mask are ignored. 0, or -1 out of memory. */
int redact_add(redact_t *r, const char *s, size_t n);
/* Masks every occurrence in data[0, len) in place; returns the new length (never longer). */
size_t redact_apply(const redact_t *r, char *data, size_t len);
void redact_free(redact_t *r);

#endif
