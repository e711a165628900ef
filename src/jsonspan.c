/* jsonspan.c - a JSON value left in its file copied out piece by piece (see jsonspan.h), so that a
 * 200 MB output is written with a few hundred KB of memory. */
#include "jsonspan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsonenc.h"
#include "jsonlread.h"

#define CARRY 16 /* room for an escape cut by a piece's end (12 bytes at most) */

/* n bytes at off: 0, JSPAN_EREAD or JSPAN_ESHORT. */
static int read_at(int fd, char *p, size_t n, long long off) {
  while (n > 0) {
    ssize_t got = pread(fd, p, n, (off_t)off);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return JSPAN_EREAD;
    if (got == 0) return JSPAN_ESHORT;
    p += got;
    n -= (size_t)got;
    off += got;
  }
  return 0;
}

static int copy_raw(int fd, long long off, long long len, size_t piece, jspan_sink sink, void *ctx) {
  char *b = malloc(piece);
  int rc = 0;
  if (b == NULL) { errno = ENOMEM; return JSPAN_ESINK; }
  while (len > 0 && rc == 0) {
    size_t n = len < (long long)piece ? (size_t)len : piece;
    rc = read_at(fd, b, n, off);
    if (rc == 0 && sink(ctx, b, n) != 0) rc = JSPAN_ESINK;
    off += (long long)n;
    len -= (long long)n;
  }
  free(b);
  return rc;
}

/* Where to cut decoded text so that no UTF-8 sequence is split: before a lead byte among the
 * last three whose sequence would go on past the end. */
static size_t utf8_cut(const char *p, size_t n) {
  for (size_t back = 1; back <= 3 && back <= n; back++) {
    unsigned char c = (unsigned char)p[n - back];
    if ((c & 0xC0) == 0x80) continue; /* a continuation byte: look further back */
    if (c >= 0xC2 && c < 0xF5 && (size_t)(c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4) > back) return n - back;
    return n;
  }
  return n;
}

/* The decoded text of the piece in dec goes out as mode says; for JSON what a cut UTF-8
 * sequence left is kept in dec for the next piece. */
static int put_decoded(buf_t *dec, buf_t *out, int mode, int final, jspan_sink sink, void *ctx) {
  int rc;
  if (mode != JSPAN_JSON) {
    if (mode == JSPAN_LINE)
      for (char *q = dec->data; (q = memchr(q, '\n', dec->len - (size_t)(q - dec->data))) != NULL; q++) *q = ' ';
    rc = dec->len > 0 ? sink(ctx, dec->data, dec->len) : 0;
    dec->len = 0;
    return rc != 0 ? JSPAN_ESINK : 0;
  }
  size_t k = final ? dec->len : utf8_cut(dec->data, dec->len);
  buf_reset(out);
  jsonenc_string_body(out, dec->data, k);
  if (out->failed) { errno = ENOMEM; return JSPAN_ESINK; }
  memmove(dec->data, dec->data + k, dec->len - k);
  dec->len -= k;
  return out->len > 0 && sink(ctx, out->data, out->len) != 0 ? JSPAN_ESINK : 0;
}

/* A string's text between its quotes, decoded (and encoded again for JSON) piece by piece. */
static int copy_string(int fd, long long off, long long len, int mode, size_t piece, jspan_sink sink, void *ctx) {
  char *raw = malloc(piece + CARRY);
  buf_t dec = BUF_INIT, out = BUF_INIT;
  size_t carry = 0;
  int rc = raw == NULL ? (errno = ENOMEM, JSPAN_ESINK) : 0;
  if (rc == 0 && mode == JSPAN_JSON && sink(ctx, "\"", 1) != 0) rc = JSPAN_ESINK;
  off++;
  len -= 2;
  while (rc == 0) {
    size_t n = len < (long long)piece ? (size_t)len : piece, used;
    int final = (long long)n == len;
    if ((rc = read_at(fd, raw + carry, n, off)) != 0) break;
    off += (long long)n;
    len -= (long long)n;
    used = jv_unescape_some(raw, carry + n, final, &dec);
    carry = carry + n - used;
    memmove(raw, raw + used, carry);
    if (dec.failed) { errno = ENOMEM; rc = JSPAN_ESINK; break; }
    rc = put_decoded(&dec, &out, mode, final, sink, ctx);
    if (final) break;
  }
  if (rc == 0 && mode == JSPAN_JSON && sink(ctx, "\"", 1) != 0) rc = JSPAN_ESINK;
  free(raw);
  buf_free(&dec);
  buf_free(&out);
  return rc;
}

int jspan_copy(int fd, long long off, long long len, int mode, size_t piece, jspan_sink sink, void *ctx) {
  if (piece < CARRY * 4) piece = CARRY * 4;
  if (mode == JSPAN_RAW) return copy_raw(fd, off, len, piece, sink, ctx);
  if (len < 2) { errno = EINVAL; return JSPAN_EREAD; }
  return copy_string(fd, off, len, mode, piece, sink, ctx);
}

int jspan_to_file(void *ctx, const char *p, size_t n) {
  return fwrite(p, 1, n, (FILE *)ctx) == n ? 0 : -1;
}

int jspan_to_buf(void *ctx, const char *p, size_t n) {
  buf_t *b = ctx;
  buf_put(b, p, n);
  if (b->failed) { errno = ENOMEM; return -1; }
  return 0;
}

int jspan_to_run(void *ctx, const char *p, size_t n) {
  jspan_run *r = ctx;
  for (size_t i = 0; i < n; i++) {
    if (p[i] != r->ch) { r->run = 0; continue; }
    if (++r->run > r->longest) r->longest = r->run;
  }
  return 0;
}
