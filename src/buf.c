/* buf.c - growth and release for buf_t. */
#include "buf.h"

#include <stdlib.h>

void buf_init(buf_t *b) {
  b->data = NULL;
  b->len = b->cap = 0;
  b->failed = 0;
}

void buf_free(buf_t *b) {
  free(b->data);
  buf_init(b);
}

int buf_grow(buf_t *b, size_t extra) {
  size_t need, cap;
  char *p;
  if (b->failed) return -1;
  need = b->len + extra;
  if (need < b->len) goto fail; /* overflow */
  cap = b->cap ? b->cap : 256;
  while (cap < need) {
    if (cap > ((size_t)-1) / 2) { cap = need; break; }
    cap *= 2;
  }
  p = realloc(b->data, cap);
  if (p == NULL) goto fail;
  b->data = p;
  b->cap = cap;
  return 0;
fail:
  b->failed = 1;
  return -1;
}
