/* jsonlread.c - streaming JSONL reading: lines from a fixed buffer and a validating field scanner. */
#include "jsonlread.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JR_CHUNK (256 * 1024)
#define JV_MAX_DEPTH 128

int jr_open(jr_reader *r, const char *path) {
  memset(r, 0, sizeof *r);
  r->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (r->fd < 0) return -1;
  r->cap = JR_CHUNK;
  r->buf = malloc(r->cap);
  if (r->buf == NULL) {
    close(r->fd);
    r->fd = -1;
    errno = ENOMEM;
    return -1;
  }
  return 0;
}

void jr_close(jr_reader *r) {
  if (r->fd >= 0) close(r->fd);
  r->fd = -1;
  free(r->buf);
  r->buf = NULL;
}

/* Moves the pending bytes to the front and reads more; grows the buffer only for a line
 * longer than it, so memory is the longest line, not the file. Returns bytes read or -1. */
static ssize_t fill(jr_reader *r) {
  ssize_t got;
  if (r->start > 0) {
    memmove(r->buf, r->buf + r->start, r->end - r->start);
    r->consumed += (long long)r->start;
    r->end -= r->start;
    r->start = 0;
  }
  if (r->end == r->cap) {
    char *bigger = realloc(r->buf, r->cap * 2);
    if (bigger == NULL) { errno = ENOMEM; return -1; }
    r->buf = bigger;
    r->cap *= 2;
  }
  do got = read(r->fd, r->buf + r->end, r->cap - r->end);
  while (got < 0 && errno == EINTR);
  if (got > 0) r->end += (size_t)got;
  return got;
}

int jr_next(jr_reader *r, const char **line, size_t *len, int *complete) {
  size_t scanned = r->start;
  if (r->buf == NULL) return 0;
  for (;;) {
    char *nl = memchr(r->buf + scanned, '\n', r->end - scanned);
    if (nl != NULL) {
      size_t at = (size_t)(nl - r->buf);
      *line = r->buf + r->start;
      *len = at - r->start;
      *complete = 1;
      r->offset = r->consumed + (long long)r->start;
      r->start = at + 1;
      r->lineno++;
      return 1;
    }
    if (r->eof) {
      if (r->start == r->end) return 0;
      *line = r->buf + r->start;
      *len = r->end - r->start;
      *complete = 0;
      r->offset = r->consumed + (long long)r->start;
      r->start = r->end;
      r->lineno++;
      return 1;
    }
    scanned = r->end - r->start; /* relative: fill() moves the pending bytes to the front */
    ssize_t got = fill(r);
    if (got < 0) return -1;
    if (got == 0) r->eof = 1;
    scanned += r->start;
  }
}

/* The scanner: a recursive-descent check of RFC 8259 syntax that remembers where values are. */
typedef struct scan {
  const char *s, *end, *p;
  const char *why;
  int depth;
} scan_t;

static void skip_ws(scan_t *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n')) c->p++;
}

static int fail(scan_t *c, const char *why) {
  if (c->why == NULL) c->why = why;
  return -1;
}

static int is_hex(char ch) {
  return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* At '"': skips the string; sets *escaped when it holds a backslash. */
static int skip_string(scan_t *c, int *escaped) {
  c->p++;
  for (;;) {
    const char *q = c->p;
    while (q < c->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20) q++;
    c->p = q;
    if (q >= c->end) return fail(c, "unterminated string");
    if (*q == '"') { c->p++; return 0; }
    if (*q != '\\') return fail(c, "control character in a string");
    *escaped = 1;
    if (q + 1 >= c->end) return fail(c, "unterminated string");
    switch (q[1]) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
      c->p = q + 2;
      break;
    case 'u':
      if (c->end - q < 6 || !is_hex(q[2]) || !is_hex(q[3]) || !is_hex(q[4]) || !is_hex(q[5]))
        return fail(c, "bad \\u escape");
      c->p = q + 6;
      break;
    default:
      return fail(c, "bad escape in a string");
    }
  }
}

static int skip_digits(scan_t *c) {
  const char *q = c->p;
  while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
  return c->p > q ? 0 : fail(c, "bad number");
}

static int skip_number(scan_t *c) {
  if (*c->p == '-') c->p++;
  if (c->p < c->end && *c->p == '0') c->p++;
  else if (skip_digits(c) != 0) return -1;
  if (c->p < c->end && *c->p == '.') { c->p++; if (skip_digits(c) != 0) return -1; }
  if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
    c->p++;
    if (c->p < c->end && (*c->p == '+' || *c->p == '-')) c->p++;
    if (skip_digits(c) != 0) return -1;
  }
  return 0;
}

static int skip_word(scan_t *c, const char *w, size_t n) {
  if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0) return fail(c, "unexpected character");
  c->p += n;
  return 0;
}

static int skip_value(scan_t *c, jv_span *out);

static int skip_container(scan_t *c, char close) {
  if (++c->depth > JV_MAX_DEPTH) return fail(c, "nested too deeply");
  c->p++;
  skip_ws(c);
  if (c->p < c->end && *c->p == close) { c->p++; c->depth--; return 0; }
  for (;;) {
    skip_ws(c);
    if (close == '}') {
      int esc = 0;
      if (c->p >= c->end || *c->p != '"') return fail(c, "expected a key");
      if (skip_string(c, &esc) != 0) return -1;
      skip_ws(c);
      if (c->p >= c->end || *c->p != ':') return fail(c, "expected ':'");
      c->p++;
    }
    if (skip_value(c, NULL) != 0) return -1;
    skip_ws(c);
    if (c->p >= c->end) return fail(c, "unexpected end of line");
    if (*c->p == ',') { c->p++; continue; }
    if (*c->p == close) { c->p++; c->depth--; return 0; }
    return fail(c, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
  }
}

static int skip_value(scan_t *c, jv_span *out) {
  const char *start;
  jv_type t;
  int esc = 0, rc;
  skip_ws(c);
  if (c->p >= c->end) return fail(c, "unexpected end of line");
  start = c->p;
  switch (*c->p) {
  case '"': t = JV_STRING; rc = skip_string(c, &esc); break;
  case '{': t = JV_OBJECT; rc = skip_container(c, '}'); break;
  case '[': t = JV_ARRAY; rc = skip_container(c, ']'); break;
  case 't': t = JV_TRUE; rc = skip_word(c, "true", 4); break;
  case 'f': t = JV_FALSE; rc = skip_word(c, "false", 5); break;
  case 'n': t = JV_NULL; rc = skip_word(c, "null", 4); break;
  default:
    if (*c->p != '-' && (*c->p < '0' || *c->p > '9')) return fail(c, "unexpected character");
    t = JV_NUMBER;
    rc = skip_number(c);
  }
  if (rc != 0) return -1;
  if (out != NULL) {
    out->type = t;
    out->escaped = esc;
    if (t == JV_STRING) { out->p = start + 1; out->n = (size_t)(c->p - start) - 2; }
    else { out->p = start; out->n = (size_t)(c->p - start); }
  }
  return 0;
}

int jv_scan(const char *s, size_t n, const char *const *keys, const size_t *keylens, int nkeys,
            jv_span *spans, const char **why, size_t *where) {
  scan_t c = { s, s + n, s, NULL, 0 };
  for (int i = 0; i < nkeys; i++) spans[i].type = JV_ABSENT;
  skip_ws(&c);
  if (c.p >= c.end || *c.p != '{') { fail(&c, c.p >= c.end ? "empty line" : "not a JSON object"); goto bad; }
  c.p++;
  skip_ws(&c);
  if (c.p < c.end && *c.p == '}') { c.p++; goto done; }
  for (;;) {
    const char *k;
    size_t kn;
    int esc = 0, hit = -1;
    skip_ws(&c);
    if (c.p >= c.end || *c.p != '"') { fail(&c, "expected a key"); goto bad; }
    k = c.p + 1;
    if (skip_string(&c, &esc) != 0) goto bad;
    kn = (size_t)(c.p - k) - 1;
    for (int i = 0; i < nkeys; i++)
      if (keylens[i] == kn && memcmp(keys[i], k, kn) == 0) { hit = i; break; }
    skip_ws(&c);
    if (c.p >= c.end || *c.p != ':') { fail(&c, "expected ':'"); goto bad; }
    c.p++;
    if (skip_value(&c, hit >= 0 ? &spans[hit] : NULL) != 0) goto bad;
    for (int i = hit + 1; hit >= 0 && i < nkeys; i++) /* the same key asked for twice (raw and hash) */
      if (keylens[i] == kn && memcmp(keys[i], k, kn) == 0) spans[i] = spans[hit];
    skip_ws(&c);
    if (c.p >= c.end) { fail(&c, "unexpected end of line"); goto bad; }
    if (*c.p == ',') { c.p++; continue; }
    if (*c.p == '}') { c.p++; break; }
    fail(&c, "expected ',' or '}'");
    goto bad;
  }
done:
  skip_ws(&c);
  if (c.p != c.end) { fail(&c, "text after the object"); goto bad; }
  return 0;
bad:
  *why = c.why;
  *where = (size_t)(c.p - s);
  return -1;
}

long long jv_count(const jv_span *v) {
  scan_t c = { v->p, v->p + v->n, v->p, NULL, 0 };
  long long n = 0;
  if (v->type != JV_ARRAY) return -1;
  c.p++;
  skip_ws(&c);
  if (c.p < c.end && *c.p == ']') return 0;
  for (;;) {
    if (skip_value(&c, NULL) != 0) return -1;
    n++;
    skip_ws(&c);
    if (c.p >= c.end || *c.p != ',') return n;
    c.p++;
  }
}

void jv_raw(const jv_span *v, const char **p, size_t *n) {
  if (v->type == JV_STRING) { *p = v->p - 1; *n = v->n + 2; }
  else { *p = v->p; *n = v->n; }
}

static unsigned hex4(const char *p) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char ch = p[i];
    v = v * 16 + (unsigned)(ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10);
  }
  return v;
}

static void put_utf8(buf_t *out, unsigned cp) {
  char t[4];
  size_t n;
  if (cp < 0x80) { t[0] = (char)cp; n = 1; }
  else if (cp < 0x800) { t[0] = (char)(0xC0 | cp >> 6); t[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
  else if (cp < 0x10000) {
    t[0] = (char)(0xE0 | cp >> 12); t[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    t[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
  } else {
    t[0] = (char)(0xF0 | cp >> 18); t[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    t[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); t[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
  }
  buf_put(out, t, n);
}

void jv_unescape(const jv_span *v, buf_t *out) {
  const char *p = v->p, *end = v->p + v->n;
  while (p < end) {
    const char *q = memchr(p, '\\', (size_t)(end - p));
    if (q == NULL) { buf_put(out, p, (size_t)(end - p)); return; }
    buf_put(out, p, (size_t)(q - p));
    switch (q[1]) {
    case 'b': buf_putc(out, '\b'); break;
    case 'f': buf_putc(out, '\f'); break;
    case 'n': buf_putc(out, '\n'); break;
    case 'r': buf_putc(out, '\r'); break;
    case 't': buf_putc(out, '\t'); break;
    case 'u': {
      unsigned cp = hex4(q + 2);
      p = q + 6;
      /* A surrogate pair is one code point; a lone surrogate becomes U+FFFD. */
      if (cp >= 0xD800 && cp < 0xDC00 && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
        unsigned lo = hex4(p + 2);
        if (lo >= 0xDC00 && lo < 0xE000) { cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00); p += 6; }
        else cp = 0xFFFD;
      } else if (cp >= 0xD800 && cp < 0xE000) {
        cp = 0xFFFD;
      }
      put_utf8(out, cp);
      continue;
    }
    default: buf_putc(out, q[1]); /* " \ / */
    }
    p = q + 2;
  }
}

uint64_t jv_hash(const char *p, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)p[i];
    h *= 1099511628211ULL;
  }
  return h;
}
