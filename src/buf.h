/* buf.h - growable byte buffer with a sticky out-of-memory flag. */
#ifndef FLUXLOOP_BUF_H
#define FLUXLOOP_BUF_H

#include <stddef.h>
#include <string.h>

/* Appends never fail loudly: after an allocation failure every later append
 * is a no-op and `failed` stays set, so hot encoders check once at the end. */
typedef struct buf {
  char *data;
  size_t len;
  size_t cap;
  int failed;
} buf_t;

#define BUF_INIT { NULL, 0, 0, 0 }

void buf_init(buf_t *b);
void buf_free(buf_t *b);
/* Makes room for `extra` more bytes; returns 0, or -1 (and sets failed). */
int buf_grow(buf_t *b, size_t extra);

static inline int buf_reserve(buf_t *b, size_t extra) {
  if (b->cap - b->len >= extra) return 0;
  return buf_grow(b, extra);
}

static inline void buf_put(buf_t *b, const void *s, size_t n) {
  if (n == 0 || buf_reserve(b, n) != 0) return; /* s may be NULL when n is 0 */
  memcpy(b->data + b->len, s, n);
  b->len += n;
}

static inline void buf_putc(buf_t *b, char c) {
  if (buf_reserve(b, 1) != 0) return;
  b->data[b->len++] = c;
}

static inline void buf_puts(buf_t *b, const char *s) { buf_put(b, s, strlen(s)); }

static inline void buf_reset(buf_t *b) { b->len = 0; b->failed = 0; }

#endif
