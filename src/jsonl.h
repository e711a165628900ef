/* jsonl.h - an append-only line file with a large buffer; only whole lines reach the disk. */
#ifndef FLUXLOOP_JSONL_H
#define FLUXLOOP_JSONL_H

#include "buf.h"

typedef struct jsonl_file {
  int fd;       /* -1 when closed; a high number, out of the way of agents' own files */
  char *path;   /* to reopen the file if an agent closed or replaced the descriptor */
  unsigned long long dev, ino; /* what fd must still be */
  buf_t buf;    /* whole lines not yet written */
  int err;      /* first errno seen by a write, 0 if none */
  size_t unsynced; /* bytes written since the owner last synced them (it resets this) */
} jsonl_file;

/* Opens (creating, appending) path; returns 0 or -1 with errno set. The descriptor is
 * moved to a high number; before each write jsonl checks that it is still this file and
 * reopens the path when an in-process agent closed it or reused its number. */
int jsonl_open(jsonl_file *f, const char *path);
/* Writes the buffered lines; returns 0 or -1 with f->err set. A failed write
 * keeps the unwritten bytes buffered. */
int jsonl_flush(jsonl_file *f);
/* Flushes, fsyncs and closes; safe to call twice. Returns 0 or -1 (f->err). */
int jsonl_close(jsonl_file *f);

#endif
