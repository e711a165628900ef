/* frame.h - how an isolated worker process hands a finished trace to its parent over a
 * pipe: a fixed header, then the three files' lines. */
#ifndef FLUXLOOP_FRAME_H
#define FLUXLOOP_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "sink.h"

enum { FRAME_TRACE = 1, FRAME_SKIP = 2 };

typedef struct frame_header {
  int64_t seq;            /* place in the files */
  double ms;              /* duration */
  int32_t kind;           /* FRAME_TRACE or FRAME_SKIP */
  int32_t success;
  uint64_t lens[SINK_FILES];
} frame_header;

/* Writes all of n bytes (retrying on EINTR and short writes); 0 or -1 with errno. */
int frame_write_all(int fd, const void *p, size_t n);
/* Reads exactly n bytes; 1 done, 0 end of file before any byte, -1 error or torn. */
int frame_read_all(int fd, void *p, size_t n);
/* Sends one trace (or a skip, with no lines) as a frame. */
int frame_send(int fd, int kind, int64_t seq, double ms, int success,
               const char *const lines[SINK_FILES], const size_t lens[SINK_FILES]);

#endif
