/* lines.h - reads a file line by line through one growable buffer, up to a size fixed when
 * it is opened (so a file that another process still appends to is read as it was). */
#ifndef FLUXLOOP_LINES_H
#define FLUXLOOP_LINES_H

#include <stddef.h>
#include <stdint.h>

typedef struct lines {
  int fd;
  char *buf;
  size_t cap;
  size_t pos, len;    /* the unread bytes are buf[pos..len) */
  size_t scanned;     /* bytes after pos known to hold no '\n' */
  int64_t left;       /* bytes still to read before the limit; -1: to the end of the file */
  int eof;
  int err;            /* errno of a failed read or allocation, 0 if none */
  int64_t lineno;     /* 1-based number of the line last returned */
} lines_t;

enum { LINES_END = 0, LINES_OK = 1, LINES_TORN = 2, LINES_ERR = -1 };

/* Opens path for reading bufsize bytes at a time, stopping after limit bytes (-1: at the
 * end of the file). Returns 0, or -1 with errno set. */
int lines_open(lines_t *r, const char *path, size_t bufsize, int64_t limit);
/* Reads the next line: LINES_OK with *line and *len (the '\n' included), valid until the
 * next call; LINES_TORN for a last line without '\n' (a writer died or is still writing);
 * LINES_END; LINES_ERR with r->err set. */
int lines_next(lines_t *r, const char **line, size_t *len);
void lines_close(lines_t *r);

/* The trace number of a trace line (every line of the three trace files starts
 * {"trace_id":"trace_<digits>"), or -1 when the line does not start that way. */
int64_t lines_trace_number(const char *line, size_t len);

#endif
