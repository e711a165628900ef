/* rules.c - rule graders on the output's text (see rules.h). Their reasons match the words
 * of the Lua graders (grade/rules.lua) so a reader sees one voice. */
#include "rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "regex.h"
#include "traceline.h"

#define QUOTE_MAX 80 /* bytes of a text quoted in a reason; longer ones end in "..." */

typedef struct rule {
  int type;
  char *name;           /* as JSON text, quotes and all (written into every line) */
  size_t name_len;
  char *value;          /* the value (icontains: lowered) */
  size_t value_len;
  char *why;            /* the reason of a failure, when it is the same every time */
  size_t why_len;
  fl_regex *re;
  char **values;        /* one_of */
  size_t *lens;
  int nvalues;
  double limit;
} rule_t;

struct rules {
  rule_t *list;
  int n, cap;
  buf_t reason;         /* scratch for a reason made per trace */
  buf_t tid;            /* the trace id as JSON text, made once a trace */
};

rules_t *rules_new(void) {
  return calloc(1, sizeof(rules_t));
}

void rules_free(rules_t *r) {
  if (r == NULL) return;
  for (int i = 0; i < r->n; i++) {
    rule_t *x = &r->list[i];
    free(x->name);
    free(x->value);
    free(x->why);
    regex_free(x->re);
    for (int j = 0; j < x->nvalues; j++) free(x->values[j]);
    free(x->values);
    free(x->lens);
  }
  free(r->list);
  buf_free(&r->reason);
  buf_free(&r->tid);
  free(r);
}

int rules_count(const rules_t *r) {
  return r->n;
}

static char *dup_bytes(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (p) {
    if (n) memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}

static unsigned char lower(unsigned char c) {
  return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* A text as the reasons quote it: a JSON string of at most QUOTE_MAX bytes (cut to
 * QUOTE_MAX - 3 and "..."). */
static void put_quoted(buf_t *b, const char *s, size_t n) {
  if (n <= QUOTE_MAX) {
    jsonenc_string(b, s, n);
    return;
  }
  buf_t tmp = BUF_INIT;
  buf_put(&tmp, s, QUOTE_MAX - 3);
  buf_put(&tmp, "...", 3);
  jsonenc_string(b, tmp.data, tmp.len);
  buf_free(&tmp);
}

/* Characters of UTF-8 text: every byte but continuation bytes (a stray byte counts one). */
static size_t chars(const char *s, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
  return c;
}

/* A number as Lua's tostring writes it: 100, 2.5. */
static int put_number(char *out, size_t cap, double v) {
  if (v == (double)(long long)v && v > -1e15 && v < 1e15) return snprintf(out, cap, "%lld", (long long)v);
  return snprintf(out, cap, "%.14g", v);
}

static int set_why(rule_t *x, const char *prefix, const char *suffix) {
  buf_t b = BUF_INIT;
  buf_puts(&b, prefix);
  put_quoted(&b, x->value, x->value_len);
  buf_puts(&b, suffix);
  if (b.failed) { buf_free(&b); return -1; }
  x->why = b.data;
  x->why_len = b.len;
  return 0;
}

int rules_add(rules_t *r, int type, const char *name, size_t name_len, const char *value, size_t value_len,
              int regex_flags, double limit, char *err, size_t errcap) {
  rule_t *x;
  if (r->n == r->cap) {
    int cap = r->cap ? r->cap * 2 : 8;
    rule_t *more = realloc(r->list, (size_t)cap * sizeof *more);
    if (more == NULL) goto oom;
    r->list = more;
    r->cap = cap;
  }
  x = &r->list[r->n];
  memset(x, 0, sizeof *x);
  x->type = type;
  x->limit = limit;
  {
    buf_t json = BUF_INIT;
    jsonenc_string(&json, name, name_len);
    x->name = json.failed ? NULL : json.data;
    x->name_len = json.len;
  }
  x->value = dup_bytes(value ? value : "", value ? value_len : 0);
  x->value_len = value ? value_len : 0;
  if (x->name == NULL || x->value == NULL) goto oom_rule;
  r->n++; /* freed with the set from here on */
  switch (type) {
  case RULE_CONTAINS:
    if (set_why(x, "output does not contain ", "") != 0) goto oom;
    break;
  case RULE_ICONTAINS:
    if (set_why(x, "output does not contain ", " (any case)") != 0) goto oom;
    for (size_t i = 0; i < x->value_len; i++) x->value[i] = (char)lower((unsigned char)x->value[i]);
    break;
  case RULE_REGEX: {
    size_t where;
    char flags[4] = "";
    int nf = 0;
    if (regex_flags & REGEX_CASELESS) flags[nf++] = 'i';
    if (regex_flags & REGEX_MULTILINE) flags[nf++] = 'm';
    if (regex_flags & REGEX_DOTALL) flags[nf++] = 's';
    x->re = regex_compile(value, value_len, regex_flags, err, errcap, &where);
    if (x->re == NULL) return -1;
    {
      buf_t b = BUF_INIT;
      buf_puts(&b, "output does not match /");
      buf_put(&b, value, value_len);
      buf_putc(&b, '/');
      buf_put(&b, flags, (size_t)nf);
      if (b.failed) { buf_free(&b); goto oom; }
      x->why = b.data;
      x->why_len = b.len;
    }
    break;
  }
  default:
    break;
  }
  return 0;
oom_rule:
  free(x->name);
  free(x->value);
oom:
  snprintf(err, errcap, "not enough memory");
  return -1;
}

int rules_add_value(rules_t *r, const char *value, size_t value_len) {
  rule_t *x = &r->list[r->n - 1];
  char **vs = realloc(x->values, (size_t)(x->nvalues + 1) * sizeof *vs);
  size_t *ls;
  if (vs == NULL) return -1;
  x->values = vs;
  ls = realloc(x->lens, (size_t)(x->nvalues + 1) * sizeof *ls);
  if (ls == NULL) return -1;
  x->lens = ls;
  vs[x->nvalues] = dup_bytes(value, value_len);
  if (vs[x->nvalues] == NULL) return -1;
  ls[x->nvalues++] = value_len;
  return 0;
}

/* needle (m > 0 bytes) in hay: a memchr for its first byte, then a compare. For the short
 * texts of most runs this is several times cheaper than memmem's set-up. */
static const char *find_bytes(const char *hay, size_t n, const char *needle, size_t m) {
  const char *p = hay, *end = hay + n;
  while ((size_t)(end - p) >= m) {
    p = memchr(p, needle[0], (size_t)(end - p) - m + 1);
    if (p == NULL) return NULL;
    if (memcmp(p + 1, needle + 1, m - 1) == 0) return p;
    p++;
  }
  return NULL;
}

/* Case-insensitive (ASCII) search of needle (already lowered) in hay. */
static const char *find_lower(const char *hay, size_t n, const char *needle, size_t m) {
  if (m == 0) return hay;
  for (size_t i = 0; i + m <= n; i++) {
    if (lower((unsigned char)hay[i]) != (unsigned char)needle[0]) continue;
    size_t j = 1;
    while (j < m && lower((unsigned char)hay[i + j]) == (unsigned char)needle[j]) j++;
    if (j == m) return hay + i;
  }
  return NULL;
}

/* Grades one rule: pass (1), fail (0) or error (-1); a reason (or the error) in *why. */
static int grade_one(rules_t *r, rule_t *x, const char *text, size_t n, double duration_ms, const char **why,
                     size_t *why_len) {
  buf_t *b = &r->reason;
  char num[64];
  buf_reset(b);
  *why = x->why;
  *why_len = x->why_len;
  switch (x->type) {
  case RULE_CONTAINS:
    return x->value_len == 0 || find_bytes(text, n, x->value, x->value_len) != NULL;
  case RULE_ICONTAINS:
    return find_lower(text, n, x->value, x->value_len) != NULL;
  case RULE_NOT_CONTAINS: {
    const char *at = x->value_len ? find_bytes(text, n, x->value, x->value_len) : text;
    if (at == NULL) return 1;
    buf_puts(b, "output contains ");
    put_quoted(b, x->value, x->value_len);
    snprintf(num, sizeof num, " at character %zu", chars(text, (size_t)(at - text)) + 1);
    buf_puts(b, num);
    break;
  }
  case RULE_STARTS_WITH:
    if (n >= x->value_len && memcmp(text, x->value, x->value_len) == 0) return 1;
    buf_puts(b, "output starts with ");
    put_quoted(b, text, n < x->value_len ? n : x->value_len);
    buf_puts(b, ", not ");
    put_quoted(b, x->value, x->value_len);
    break;
  case RULE_EQUALS:
    if (n == x->value_len && memcmp(text, x->value, n) == 0) return 1;
    buf_puts(b, "output ");
    put_quoted(b, text, n);
    buf_puts(b, " is not ");
    put_quoted(b, x->value, x->value_len);
    break;
  case RULE_REGEX: {
    size_t s, e;
    char err[256];
    int rc = regex_search(x->re, text, n, &s, &e, err, sizeof err);
    if (rc >= 0) return rc;
    buf_puts(b, err);
    *why = b->data;
    *why_len = b->len;
    return -1;
  }
  case RULE_ONE_OF:
    for (int i = 0; i < x->nvalues; i++) {
      if (x->lens[i] == n && memcmp(x->values[i], text, n) == 0) return 1;
    }
    buf_puts(b, "output ");
    put_quoted(b, text, n);
    snprintf(num, sizeof num, " is none of the %d values", x->nvalues);
    buf_puts(b, num);
    break;
  case RULE_MAX_LENGTH: {
    size_t c;
    if (n <= x->limit) return 1; /* bytes bound characters */
    c = chars(text, n);
    if (c <= x->limit) return 1;
    snprintf(num, sizeof num, "output is %zu characters, more than ", c);
    buf_puts(b, num);
    put_number(num, sizeof num, x->limit);
    buf_puts(b, num);
    break;
  }
  case RULE_MAX_LATENCY:
    if (duration_ms <= x->limit) return 1;
    snprintf(num, sizeof num, "the run took %.1f ms, more than ", duration_ms);
    buf_puts(b, num);
    put_number(num, sizeof num, x->limit);
    buf_puts(b, num);
    break;
  default:
    return 0;
  }
  *why = b->data;
  *why_len = b->len;
  return 0;
}

void rules_grade(rules_t *r, buf_t *out, const char *tid, size_t tid_len, const char *text, size_t n,
                 double duration_ms) {
  int64_t t = clock_mono_ns();
  buf_reset(&r->tid);
  jsonenc_string(&r->tid, tid, tid_len);
  for (int i = 0; i < r->n; i++) {
    rule_t *x = &r->list[i];
    score_line sl;
    const char *why;
    size_t why_len;
    int outcome = grade_one(r, x, text, n, duration_ms, &why, &why_len);
    int64_t t2 = clock_mono_ns();
    sl.grader = x->name;
    sl.grader_len = x->name_len;
    sl.grader_json = 1;
    sl.outcome = outcome;
    sl.has_score = outcome >= 0;
    sl.score = outcome > 0 ? 1 : 0;
    sl.reason = outcome == 0 ? why : NULL;
    sl.reason_len = why_len;
    sl.error = outcome < 0 ? why : NULL;
    sl.error_len = why_len;
    sl.ms = (double)(t2 - t) / 1e6;
    traceline_score_tid_json(out, r->tid.data, r->tid.len, &sl);
    t = t2;
  }
}

void rules_fail(rules_t *r, buf_t *out, const char *tid, size_t tid_len, const char *error_type, size_t type_len) {
  buf_t *why = &r->reason;
  buf_reset(why);
  buf_puts(why, "the run failed (");
  buf_put(why, error_type, type_len);
  buf_putc(why, ')');
  buf_reset(&r->tid);
  jsonenc_string(&r->tid, tid, tid_len);
  for (int i = 0; i < r->n; i++) {
    score_line sl = { .grader = r->list[i].name, .grader_len = r->list[i].name_len, .grader_json = 1, .outcome = 0,
                      .has_score = 1, .score = 0, .reason = why->data, .reason_len = why->len };
    traceline_score_tid_json(out, r->tid.data, r->tid.len, &sl);
  }
}
