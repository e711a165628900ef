/* jsonspan.h - a JSON value left in its file (a jr_ref of a long line) copied out piece by piece:
 * as it is, or, for a string, as JSON text again or as its decoded text. No Lua here. */
#ifndef FLUXLOOP_JSONSPAN_H
#define FLUXLOOP_JSONSPAN_H

#include <stdio.h>

#include "buf.h"

/* How the text goes out. The last three take a string (its JSON text, quotes included). */
enum {
  JSPAN_RAW,  /* the bytes of the file */
  JSPAN_JSON, /* what the Lua encoder writes for the decoded string (escapes as it makes them) */
  JSPAN_TEXT, /* the decoded string */
  JSPAN_LINE  /* the decoded string with each newline a space */
};

/* Takes n bytes; returns 0, or -1 (errno set) to stop. */
typedef int (*jspan_sink)(void *ctx, const char *p, size_t n);

/* Reads len bytes at off of fd and hands them to sink in pieces of about `piece` bytes, as mode
 * says. Returns 0; JSPAN_EREAD (errno set), JSPAN_ESHORT (the file ends early: it changed), or
 * JSPAN_ESINK (the sink failed, errno set). */
enum { JSPAN_EREAD = -1, JSPAN_ESHORT = -2, JSPAN_ESINK = -3 };
int jspan_copy(int fd, long long off, long long len, int mode, size_t piece, jspan_sink sink, void *ctx);

/* Sinks: ctx a FILE *; a buf_t *; a jspan_run (the longest run of one byte, as for a fence). */
int jspan_to_file(void *ctx, const char *p, size_t n);
int jspan_to_buf(void *ctx, const char *p, size_t n);
typedef struct jspan_run {
  char ch;
  long long run, longest;
} jspan_run;
int jspan_to_run(void *ctx, const char *p, size_t n);

#endif
