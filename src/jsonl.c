/* jsonl.c - buffered append-only line files for the trace streams. */
#include "jsonl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Agents that tidy up their descriptors usually close 3..255 or 3..1023; ours sit above. */
#define HIGH_FD 1024

/* Opens path for appending at a high descriptor and notes its identity. */
static int open_high(jsonl_file *f) {
  struct stat st;
  int fd = open(f->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  {
    int high = fcntl(fd, F_DUPFD_CLOEXEC, HIGH_FD);
    if (high >= 0) { close(fd); fd = high; } /* past the limit: keep the low one */
  }
  if (fstat(fd, &st) != 0) { int e = errno; close(fd); errno = e; return -1; }
  f->fd = fd;
  f->dev = (unsigned long long)st.st_dev;
  f->ino = (unsigned long long)st.st_ino;
  return 0;
}

int jsonl_open(jsonl_file *f, const char *path) {
  buf_init(&f->buf);
  f->err = 0;
  f->unsynced = 0;
  f->fd = -1;
  f->path = strdup(path);
  if (f->path == NULL) { errno = ENOMEM; return -1; }
  if (open_high(f) != 0) {
    int e = errno;
    free(f->path);
    f->path = NULL;
    errno = e;
    return -1;
  }
  return 0;
}

/* Whether f->fd is still the file jsonl opened; if an agent closed it (or its number now
 * names another file), the path is opened again: nothing buffered is lost and nothing is
 * written into the agent's file. */
static int still_ours(jsonl_file *f) {
  struct stat st;
  if (fstat(f->fd, &st) == 0 && (unsigned long long)st.st_dev == f->dev &&
      (unsigned long long)st.st_ino == f->ino)
    return 0;
  if (open_high(f) != 0) { f->err = errno; return -1; }
  return 0;
}

int jsonl_flush(jsonl_file *f) {
  size_t off = 0;
  if (f->fd < 0) return f->err ? -1 : 0;
  if (f->buf.len == 0) return 0;
  if (still_ours(f) != 0) return -1;
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
  if (still_ours(f) == 0) {
    if (fsync(f->fd) != 0 && errno != EINVAL && !f->err) { f->err = errno; rc = -1; }
    if (close(f->fd) != 0 && !f->err) { f->err = errno; rc = -1; }
  } else {
    rc = -1;
  }
  f->fd = -1;
  buf_free(&f->buf);
  free(f->path);
  f->path = NULL;
  return rc;
}
