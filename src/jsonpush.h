/* jsonpush.h - a JSON object line checked as its bytes arrive, chunk by chunk (for lines too long to
 * hold): the checks of jv_scan, and where each top-level key and value begins and ends. No Lua. */
#ifndef FLUXLOOP_JSONPUSH_H
#define FLUXLOOP_JSONPUSH_H

#include <stddef.h>

#define JP_MAX_LEVEL 129 /* the top-level object and 128 nested containers, as jv_scan allows */

/* What jp_feed stopped at. Positions are in the bytes given to that call, *used of them consumed. */
enum {
  JP_MORE,        /* all bytes consumed: feed more, or jp_finish at the end of the line */
  JP_KEY_START,   /* a top-level key's opening quote is byte *used - 1 */
  JP_KEY_END,     /* ... and it ended just before byte *used */
  JP_VALUE_START, /* a top-level value's first byte is byte *used - 1 */
  JP_VALUE_END,   /* ... and it ended just before byte *used */
  JP_ERROR        /* bad JSON at byte *used (jp_state.why says what) */
};

typedef struct jp_state {
  int state;
  int level;                        /* open containers, the top-level object included */
  char close[JP_MAX_LEVEL];         /* '}' or ']' for each open container */
  int is_key;                       /* the string being read is a key */
  int hex;                          /* \u digits still to read */
  const char *word;                 /* the rest of true / false / null */
  int escaped;                      /* the current top-level value holds a backslash */
  const char *why;
} jp_state;

void jp_init(jp_state *s);
/* Reads p[0..n) up to the next top-level event; returns JP_*, *used the bytes consumed. */
int jp_feed(jp_state *s, const char *p, size_t n, size_t *used);
/* At the end of the line: 0 when it held one whole object, else -1 with s->why set. */
int jp_finish(jp_state *s);

#endif
