/* sse.h - an incremental parser of server-sent events (text/event-stream), fed raw chunks
 * as they arrive (no Lua here). */
#ifndef FLUXLOOP_SSE_H
#define FLUXLOOP_SSE_H

#include <stddef.h>

#include "buf.h"

/* One dispatched event: `data` is its data lines joined with "\n" (NUL-terminated). */
typedef struct sse_event {
  const char *event; /* the event: field, "message" when none was given */
  const char *data;
  size_t data_len;
  const char *id;    /* the last id: field seen, "" when none */
} sse_event;

/* Called per event; nonzero stops the parse (sse_feed returns it). */
typedef int (*sse_emit_fn)(void *ud, const sse_event *ev);

typedef struct sse {
  buf_t line;   /* the line being read (a chunk may end mid-line) */
  buf_t data, event, id;
  int has_data; /* a data: field was seen since the last dispatch */
  int after_cr; /* the last byte was CR: a following LF ends nothing */
} sse_t;

void sse_init(sse_t *p);
void sse_reset(sse_t *p);
void sse_free(sse_t *p);
/* Parses n more bytes. Returns 0, what emit returned when it stopped, or -1 out of memory. */
int sse_feed(sse_t *p, const char *s, size_t n, sse_emit_fn emit, void *ud);

#endif
