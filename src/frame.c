/* frame.c - writing and reading the frames of frame.h. */
#include "frame.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

int frame_write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

int frame_read_all(int fd, void *p, size_t n) {
  char *c = p;
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, c + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) return got == 0 ? 0 : -1;
    got += (size_t)r;
  }
  return 1;
}

int frame_send(int fd, int kind, int64_t seq, double ms, int success,
               const char *const lines[SINK_FILES], const size_t lens[SINK_FILES]) {
  frame_header h;
  struct iovec iov[1 + SINK_FILES];
  int n = 1;
  size_t total = sizeof h;
  memset(&h, 0, sizeof h);
  h.seq = seq;
  h.ms = ms;
  h.kind = kind;
  h.success = success;
  iov[0].iov_base = &h;
  iov[0].iov_len = sizeof h;
  for (int i = 0; lines && i < SINK_FILES; i++) {
    h.lens[i] = (uint64_t)lens[i];
    if (lens[i] == 0) continue;
    iov[n].iov_base = (void *)lines[i];
    iov[n].iov_len = lens[i];
    total += lens[i];
    n++;
  }
  /* One system call for the whole frame, unless the pipe takes it in parts. */
  {
    ssize_t w;
    do w = writev(fd, iov, n); while (w < 0 && errno == EINTR);
    if (w < 0) return -1;
    if ((size_t)w == total) return 0;
    /* Finish a partial write piece by piece. */
    for (int i = 0; i < n; i++) {
      size_t len = iov[i].iov_len;
      if ((size_t)w >= len) { w -= (ssize_t)len; continue; }
      if (frame_write_all(fd, (const char *)iov[i].iov_base + w, len - (size_t)w) != 0) return -1;
      w = 0;
    }
  }
  return 0;
}
