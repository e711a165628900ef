/* jsonlread.c - streaming JSONL reading: lines from a fixed buffer and a validating field scanner. */
#include "jsonlread.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsonpush.h"

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
  buf_free(&r->kept);
  free(r->refs);
  r->refs = NULL;
}

int jr_limit(jr_reader *r, size_t limit) {
  if (limit < 64) limit = 64;
  r->limit = limit;
  if (limit < r->cap) { /* a buffer no bigger than the limit: a longer line never fits */
    char *smaller = realloc(r->buf, limit);
    if (smaller == NULL) { errno = ENOMEM; return -1; }
    r->buf = smaller;
    r->cap = limit;
  }
  return 0;
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

/* The long line being read: what is kept of it, and the top-level value under way. */
typedef struct longline {
  jr_reader *r;
  long long line_off, pos; /* file offset of the line; line bytes before the current piece */
  size_t from;             /* bytes of the piece already kept or dropped */
  int in_value, spilled;
  size_t value_at, key_at, key_n;
  long long value_off;
  char first;
} longline_t;

static int add_ref(longline_t *l, long long end, int escaped) {
  jr_reader *r = l->r;
  if (r->nrefs == r->refcap) {
    size_t cap = r->refcap ? r->refcap * 2 : 8;
    jr_ref *more = realloc(r->refs, cap * sizeof *more);
    if (more == NULL) return -1;
    r->refs = more;
    r->refcap = cap;
  }
  r->refs[r->nrefs++] = (jr_ref){ l->value_off, end - l->value_off, l->value_at, l->key_at, l->key_n, l->first, escaped };
  buf_put(&r->kept, "null", 4);
  return 0;
}

/* Keeps p[from..to) unless it belongs to a value that is left in the file, or would take the
 * kept line past the limit (then the value is left in the file from now on). */
static void keep(longline_t *l, const char *p, size_t to) {
  buf_t *k = &l->r->kept;
  if (l->in_value && !l->spilled && k->len + (to - l->from) > l->r->limit) {
    l->spilled = 1;
    k->len = l->value_at;
  }
  if (!(l->in_value && l->spilled)) buf_put(k, p + l->from, to - l->from);
  l->from = to;
}

/* Feeds one piece of the line p[0..n) to the checker s. Returns 0, or -1 (ENOMEM). */
static int long_piece(longline_t *l, jp_state *s, const char *p, size_t n) {
  size_t i = 0;
  l->from = 0;
  while (i < n && l->r->why == NULL) {
    size_t used;
    int ev = jp_feed(s, p + i, n - i, &used);
    i += used;
    switch (ev) {
    case JP_ERROR:
      l->r->why = s->why;
      l->r->where = (size_t)(l->pos + (long long)i);
      break;
    case JP_KEY_START: l->key_at = l->r->kept.len + (i - 1 - l->from); break;
    case JP_KEY_END: l->key_n = l->r->kept.len + (i - 1 - l->from) - l->key_at - 1; l->key_at++; break;
    case JP_VALUE_START:
      keep(l, p, i - 1);
      l->in_value = 1;
      l->spilled = 0;
      l->value_at = l->r->kept.len;
      l->value_off = l->line_off + l->pos + (long long)(i - 1);
      l->first = p[i - 1];
      break;
    case JP_VALUE_END:
      keep(l, p, i);
      if (l->spilled && add_ref(l, l->line_off + l->pos + (long long)i, s->escaped) != 0) return -1;
      l->in_value = 0;
      break;
    }
  }
  if (l->r->why == NULL) keep(l, p, n);
  l->pos += (long long)n;
  return l->r->kept.failed ? -1 : 0;
}

/* A line longer than the limit, from buf[start]: read to its newline piece by piece. */
static int long_line(jr_reader *r, const char **line, size_t *len, int *complete) {
  longline_t l = { r, r->consumed + (long long)r->start, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
  jp_state s;
  jp_init(&s);
  buf_reset(&r->kept);
  r->nrefs = 0;
  r->why = NULL;
  for (;;) {
    char *p = r->buf + r->start, *nl = memchr(p, '\n', r->end - r->start);
    size_t n = nl != NULL ? (size_t)(nl - p) : r->end - r->start;
    if (long_piece(&l, &s, p, n) != 0) { errno = ENOMEM; return -1; }
    r->start += n;
    if (nl != NULL) { r->start++; *complete = 1; break; }
    if (r->eof) { *complete = 0; break; }
    ssize_t got = fill(r);
    if (got < 0) return -1;
    if (got == 0) r->eof = 1;
  }
  if (r->why == NULL && jp_finish(&s) != 0) { r->why = s.why; r->where = (size_t)l.pos; }
  r->offset = l.line_off;
  r->lineno++;
  *line = r->kept.data != NULL ? r->kept.data : "";
  *len = r->kept.len;
  return 1;
}

int jr_next(jr_reader *r, const char **line, size_t *len, int *complete) {
  size_t scanned = r->start;
  if (r->buf == NULL) return 0;
  r->nrefs = 0;
  r->why = NULL;
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
    if (r->limit > 0 && r->end - r->start >= r->limit) return long_line(r, line, len, complete);
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
  jv_unescape_some(v->p, v->n, 1, out);
}

/* The bytes an escape at q needs (12 for a high surrogate, which may pair with the next one). */
static size_t escape_len(const char *q, const char *end) {
  if (q[1] != 'u') return 2;
  if (end - q < 6) return 6;
  unsigned cp = hex4(q + 2);
  return cp >= 0xD800 && cp < 0xDC00 ? 12 : 6;
}

size_t jv_unescape_some(const char *s, size_t n, int final, buf_t *out) {
  const char *p = s, *end = s + n;
  while (p < end) {
    const char *q = memchr(p, '\\', (size_t)(end - p));
    if (q == NULL) { buf_put(out, p, (size_t)(end - p)); return n; }
    buf_put(out, p, (size_t)(q - p));
    if (!final && (end - q < 2 || (size_t)(end - q) < escape_len(q, end))) return (size_t)(q - s);
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
  return n;
}

uint64_t jv_hash(const char *p, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)p[i];
    h *= 1099511628211ULL;
  }
  return h;
}
