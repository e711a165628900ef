/* redact.c - masks known secret strings inside encoded lines, in place. */
#define _GNU_SOURCE /* memmem */
#include "redact.h"

#include <stdlib.h>
#include <string.h>

int redact_add(redact_t *r, const char *s, size_t n) {
  char **needle;
  size_t *len, at;
  char *copy;
  if (n <= sizeof REDACT_MASK - 1) return 0; /* masking could only grow the line */
  needle = realloc(r->needle, (r->n + 1) * sizeof *needle);
  if (needle == NULL) return -1;
  r->needle = needle;
  len = realloc(r->len, (r->n + 1) * sizeof *len);
  if (len == NULL) return -1;
  r->len = len;
  copy = malloc(n);
  if (copy == NULL) return -1;
  memcpy(copy, s, n);
  /* Keep the list longest first. */
  for (at = r->n; at > 0 && r->len[at - 1] < n; at--) {
    r->needle[at] = r->needle[at - 1];
    r->len[at] = r->len[at - 1];
  }
  r->needle[at] = copy;
  r->len[at] = n;
  r->n++;
  return 0;
}

/* One secret: every occurrence becomes the mask. The text only shrinks, so the copy goes
 * left to right within the same buffer. */
static size_t mask_one(char *data, size_t len, const char *needle, size_t nlen) {
  const size_t mlen = sizeof REDACT_MASK - 1;
  char *hit, *out, *in, *end;
  if (len < nlen) return len; /* also an empty buffer, whose data may be NULL */
  hit = memmem(data, len, needle, nlen);
  if (hit == NULL) return len;
  end = data + len;
  out = hit;
  in = hit;
  while (hit != NULL) {
    memmove(out, in, (size_t)(hit - in));
    out += hit - in;
    memcpy(out, REDACT_MASK, mlen);
    out += mlen;
    in = hit + nlen;
    hit = memmem(in, (size_t)(end - in), needle, nlen);
  }
  memmove(out, in, (size_t)(end - in));
  out += end - in;
  return (size_t)(out - data);
}

size_t redact_apply(const redact_t *r, char *data, size_t len) {
  for (size_t i = 0; i < r->n; i++) len = mask_one(data, len, r->needle[i], r->len[i]);
  return len;
}

void redact_free(redact_t *r) {
  for (size_t i = 0; i < r->n; i++) free(r->needle[i]);
  free(r->needle);
  free(r->len);
  r->needle = NULL;
  r->len = NULL;
  r->n = 0;
}
