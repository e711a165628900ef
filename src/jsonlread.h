/* jsonlread.h - streaming reader of JSONL files: whole lines from a fixed buffer, and a scanner that
 * finds a line's top-level fields without building a tree. */
#ifndef FLUXLOOP_JSONLREAD_H
#define FLUXLOOP_JSONLREAD_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* A top-level value of a long line that was left in the file (see jr_limit). */
typedef struct jr_ref {
  long long off, len;   /* where its JSON text is in the file */
  size_t at;            /* where its placeholder (null) is in the line handed out */
  size_t key_at, key_n; /* its key (the text between the quotes) in that line */
  char first;           /* the first byte of its text: its type */
  int escaped;          /* a string with backslash escapes */
} jr_ref;

typedef struct jr_reader {
  int fd;
  char *buf;            /* [start, end) holds bytes not yet handed out */
  size_t cap, start, end;
  long long lineno;     /* line number of the last line returned (1-based) */
  long long offset;     /* file offset of the last line returned */
  long long consumed;   /* file offset of buf[start] */
  int eof;
  size_t limit;         /* 0, or the longest line held whole (jr_limit) */
  buf_t kept;           /* a long line as handed out */
  jr_ref *refs;         /* the values of the last line left in the file */
  size_t nrefs, refcap;
  const char *why;      /* the last line was long and bad JSON: why, and where (byte offset) */
  size_t where;
} jr_reader;

/* Opens path for reading; returns 0, or -1 with errno set. */
int jr_open(jr_reader *r, const char *path);
/* Lines longer than limit bytes are not held whole: each is checked as it streams by, and handed
 * out with every top-level value that would take it past the limit replaced by null and listed
 * in r->refs (its place in the file). A bad long line sets r->why. Returns 0, or -1 (ENOMEM). */
int jr_limit(jr_reader *r, size_t limit);
/* The next line without its '\n'. Returns 1 (a line; *complete is 0 when the file ended
 * without a newline, as a line still being written does), 0 at the end, -1 on a read or
 * memory error (errno set). The line stays valid until the next call. */
int jr_next(jr_reader *r, const char **line, size_t *len, int *complete);
void jr_close(jr_reader *r);

typedef enum { JV_ABSENT, JV_NULL, JV_FALSE, JV_TRUE, JV_NUMBER, JV_STRING, JV_OBJECT, JV_ARRAY } jv_type;

/* A value inside a line: for a string, p/n hold the text between the quotes. */
typedef struct jv_span {
  jv_type type;
  const char *p;
  size_t n;
  int escaped;          /* a string with backslash escapes (needs jv_unescape) */
} jv_span;

/* Checks that s is one JSON object and fills spans[i] for each top-level key equal to keys[i]
 * (the rest JV_ABSENT). Returns 0, or -1 with *why and *where (byte offset) set. */
int jv_scan(const char *s, size_t n, const char *const *keys, const size_t *keylens, int nkeys,
            jv_span *spans, const char **why, size_t *where);
/* The number of elements of an array span that jv_scan found, or -1 when it is no array
 * (how many observations a trace recorded, without decoding them). */
long long jv_count(const jv_span *v);
/* The raw JSON text of a span (strings with their quotes). */
void jv_raw(const jv_span *v, const char **p, size_t *n);
/* Appends the decoded contents of a string span to out (\u escapes to UTF-8). */
void jv_unescape(const jv_span *v, buf_t *out);
/* The same for the text of a string in pieces: decodes s[0..n) up to an escape that may go on
 * past n (unless final) and returns the bytes used; the caller keeps the rest for the next piece. */
size_t jv_unescape_some(const char *s, size_t n, int final, buf_t *out);
/* 64-bit FNV-1a of n bytes: equal values have equal hashes. */
uint64_t jv_hash(const char *p, size_t n);

#endif
