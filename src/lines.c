/* lines.c - line-at-a-time reading of the trace files for merge and other readers. */
#include "lines.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int lines_open(lines_t *r, const char *path, size_t bufsize, int64_t limit) {
  memset(r, 0, sizeof *r);
  r->left = limit;
  r->cap = bufsize < 4096 ? 4096 : bufsize;
  r->buf = malloc(r->cap);
  if (r->buf == NULL) { r->fd = -1; errno = ENOMEM; return -1; }
  r->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (r->fd < 0) { int e = errno; free(r->buf); r->buf = NULL; errno = e; return -1; }
#ifdef POSIX_FADV_SEQUENTIAL
  posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
  return 0;
}

/* Moves the unread bytes to the front and reads more after them. Returns 0, or -1. */
static int fill(lines_t *r) {
  size_t want;
  ssize_t n;
  if (r->pos > 0) {
    memmove(r->buf, r->buf + r->pos, r->len - r->pos);
    r->len -= r->pos;
    r->pos = 0;
  }
  if (r->len == r->cap) { /* a line longer than the buffer: double it */
    char *p = realloc(r->buf, r->cap * 2);
    if (p == NULL) { r->err = ENOMEM; return -1; }
    r->buf = p;
    r->cap *= 2;
  }
  want = r->cap - r->len;
  if (r->left >= 0 && (int64_t)want > r->left) want = (size_t)r->left;
  if (want == 0) { r->eof = 1; return 0; }
  do n = read(r->fd, r->buf + r->len, want); while (n < 0 && errno == EINTR);
  if (n < 0) { r->err = errno; return -1; }
  if (n == 0) { r->eof = 1; return 0; }
  r->len += (size_t)n;
  if (r->left >= 0) r->left -= n;
  return 0;
}

int lines_next(lines_t *r, const char **line, size_t *len) {
  for (;;) {
    size_t from = r->pos + r->scanned;
    char *nl = from < r->len ? memchr(r->buf + from, '\n', r->len - from) : NULL;
    if (nl != NULL) {
      *line = r->buf + r->pos;
      *len = (size_t)(nl - *line) + 1;
      r->pos += *len;
      r->scanned = 0;
      r->lineno++;
      return LINES_OK;
    }
    r->scanned = r->len - r->pos;
    if (r->eof) {
      if (r->pos == r->len) return LINES_END;
      *line = r->buf + r->pos;
      *len = r->len - r->pos;
      r->pos = r->len;
      r->scanned = 0;
      r->lineno++;
      return LINES_TORN;
    }
    if (fill(r) != 0) return LINES_ERR;
  }
}

void lines_close(lines_t *r) {
  if (r->fd >= 0) close(r->fd);
  r->fd = -1;
  free(r->buf);
  r->buf = NULL;
}

int64_t lines_trace_number(const char *line, size_t len) {
  static const char prefix[] = "{\"trace_id\":\"trace_";
  const size_t plen = sizeof prefix - 1;
  int64_t k = 0;
  size_t i = plen;
  if (len < plen + 2 || memcmp(line, prefix, plen) != 0) return -1;
  for (; i < len && line[i] >= '0' && line[i] <= '9'; i++) {
    if (k > (INT64_MAX - 9) / 10) return -1;
    k = k * 10 + (line[i] - '0');
  }
  if (i == plen || i >= len || line[i] != '"') return -1;
  return k;
}
