/* jsonl.c - buffered append-only line files for the trace streams. */
#include "jsonl.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

int jsonl_open(jsonl_file *f, const char *path) {
  buf_init(&f->buf);
  f->err = 0;
  f->unsynced = 0;
  f->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  return f->fd < 0 ? -1 : 0;
}

int jsonl_flush(jsonl_file *f) {
  size_t off = 0;
  if (f->fd < 0) return f->err ? -1 : 0;
  while (off < f->buf.len) {
    ssize_t n = write(f->fd, f->buf.data + off, f->buf.len - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      f->err = errno;
      break;
    }
    off += (size_t)n;
  }
  /* Keep what did not reach the file, so a later flush can retry. */
  if (off > 0) {
    memmove(f->buf.data, f->buf.data + off, f->buf.len - off);
    f->buf.len -= off;
    f->unsynced += off;
  }
  return f->buf.len == 0 ? 0 : -1;
}

int jsonl_close(jsonl_file *f) {
  int rc = 0;
  if (f->fd < 0) return f->err ? -1 : 0;
  if (jsonl_flush(f) != 0) rc = -1;
  if (fsync(f->fd) != 0 && errno != EINVAL && !f->err) { f->err = errno; rc = -1; }
  if (close(f->fd) != 0 && !f->err) { f->err = errno; rc = -1; }
  f->fd = -1;
  buf_free(&f->buf);
  return rc;
}
