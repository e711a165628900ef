/* kmerge.c - checks and merges the trace files of an experiment's shards (fluxloop merge). */
#include "kmerge.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "jsonlread.h"
#include "lines.h"

/* Output is written in blocks of this size; input buffers share READ_BUDGET between them. */
#define WRITE_BLOCK (1 << 20)
#define READ_BUDGET (64u << 20)
#define READ_MAX (1u << 20)
#define READ_MIN (64u << 10)

static void fail(kmerge_t *m, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m->err, sizeof m->err, fmt, ap);
  va_end(ap);
}

int kmerge_init(kmerge_t *m, int64_t planned, int64_t shards) {
  memset(m, 0, sizeof *m);
  stats_init(&m->stats);
  m->planned = planned;
  m->shards = shards;
  m->present = calloc((size_t)(planned / 8 + 1), 1);
  if (m->present == NULL) { fail(m, "not enough memory for %lld trace numbers", (long long)planned); return -1; }
  return 0;
}

void kmerge_free(kmerge_t *m) {
  free(m->present);
  m->present = NULL;
  stats_free(&m->stats);
}

static int has(const kmerge_t *m, int64_t k) {
  return k >= 1 && k <= m->planned && (m->present[(k - 1) >> 3] >> ((k - 1) & 7) & 1);
}

/* The last occurrence of key in line: in trace_summary.jsonl only input and output (which
 * may be JSON objects with any keys) come before duration_ms and success, and what follows
 * them (iteration, persona, error) holds no such key outside a string, where quotes are
 * escaped. So the last one is the trace's own. */
static const char *last_key(const char *line, size_t len, const char *key, size_t klen) {
  if (len < klen) return NULL;
  for (size_t i = len - klen + 1; i-- > 0;) {
    if (line[i] == key[0] && memcmp(line + i, key, klen) == 0) return line + i + klen;
  }
  return NULL;
}

/* The figures of one summary line: 0, or -1 when duration_ms or success is missing. */
static int summary_fields(const char *line, size_t len, double *ms, int *success) {
  static const char dkey[] = ",\"duration_ms\":", skey[] = ",\"success\":";
  const char *d = last_key(line, len, dkey, sizeof dkey - 1);
  const char *s = last_key(line, len, skey, sizeof skey - 1);
  char num[64];
  size_t n = 0;
  char *end;
  if (d == NULL || s == NULL) return -1;
  while (d + n < line + len && n < sizeof num - 1 && strchr("0123456789.eE+-", d[n]) != NULL) n++;
  if (n == 0 || n == sizeof num - 1) return -1;
  memcpy(num, d, n);
  num[n] = '\0';
  *ms = strtod(num, &end);
  if (*end != '\0') return -1;
  if ((size_t)(line + len - s) >= 4 && memcmp(s, "true", 4) == 0) *success = 1;
  else if ((size_t)(line + len - s) >= 5 && memcmp(s, "false", 5) == 0) *success = 0;
  else return -1;
  return 0;
}

/* A line (its '\n' included) that is one whole JSON object. */
static int whole(const char *line, size_t len) {
  const char *why;
  size_t where;
  if (len > 0 && line[len - 1] == '\n') len--;
  return jv_scan(line, len, NULL, NULL, 0, NULL, &why, &where) == 0;
}

/* Counts the shard's trace numbers from `from` up to (not including) `to` as missing. */
static void note_missing(kmerge_t *m, kmerge_scan_t *out, int64_t from, int64_t to) {
  for (int64_t k = from; k < to && out->n_first_missing < KMERGE_FIRST_MISSING; k += m->shards)
    out->first_missing[out->n_first_missing++] = k;
  if (to > from) out->missing += (to - from + m->shards - 1) / m->shards;
}

int kmerge_scan(kmerge_t *m, const char *path, int64_t index, int64_t limit, kmerge_scan_t *out) {
  lines_t r;
  const char *line;
  size_t len;
  int rc;
  int64_t expect = index + 1; /* the shard's next trace number */
  memset(out, 0, sizeof *out);
  if (lines_open(&r, path, READ_MAX, limit) != 0) {
    fail(m, "%s: %s", path, strerror(errno));
    return -1;
  }
  while ((rc = lines_next(&r, &line, &len)) == LINES_OK) {
    int64_t k = lines_trace_number(line, len);
    double ms;
    int success;
    if (!whole(line, len)) {
      if (out->damaged++ == 0) out->first_damaged = r.lineno;
      continue;
    }
    if (k < 1) {
      fail(m, "%s:%lld: not a trace line (it does not start with {\"trace_id\":\"trace_...)", path, (long long)r.lineno);
      goto bad;
    }
    if (k > m->planned) {
      fail(m, "%s:%lld: trace_%03lld is beyond the plan's %lld traces", path, (long long)r.lineno, (long long)k,
           (long long)m->planned);
      goto bad;
    }
    if ((k - 1) % m->shards != index) {
      fail(m, "%s:%lld: trace_%03lld belongs to shard %lld-of-%lld, not to this shard %lld-of-%lld", path,
           (long long)r.lineno, (long long)k, (long long)((k - 1) % m->shards), (long long)m->shards,
           (long long)index, (long long)m->shards);
      goto bad;
    }
    if (k < expect) {
      fail(m, "%s:%lld: trace_%03lld comes after trace_%03lld (a line repeated or out of order)", path,
           (long long)r.lineno, (long long)k, (long long)(expect - m->shards));
      goto bad;
    }
    if (summary_fields(line, len, &ms, &success) != 0) {
      fail(m, "%s:%lld: trace_%03lld has no duration_ms or success", path, (long long)r.lineno, (long long)k);
      goto bad;
    }
    note_missing(m, out, expect, k);
    expect = k + m->shards;
    if (stats_add(&m->stats, ms, success) != 0) { fail(m, "not enough memory for run statistics"); goto bad; }
    m->present[(k - 1) >> 3] |= (uint8_t)(1u << ((k - 1) & 7));
    out->traces++;
    if (!success) out->failed++;
  }
  if (rc == LINES_ERR) { fail(m, "%s: %s", path, strerror(r.err)); goto bad; }
  if (rc == LINES_TORN) out->torn = 1;
  note_missing(m, out, expect, m->planned + 1);
  lines_close(&r);
  return 0;
bad:
  lines_close(&r);
  return -1;
}

static void clear(kmerge_t *m, int64_t k) {
  m->present[(k - 1) >> 3] &= (uint8_t) ~(1u << ((k - 1) & 7));
}

static void note_k(int64_t k, int64_t *count, int64_t *first, int *n_first) {
  if (*n_first < KMERGE_FIRST_MISSING) first[(*n_first)++] = k;
  (*count)++;
}

/* The next line of observations.jsonl: its trace number (-1 for a line that names none), or 0
 * at the end; *ok says whether it is whole JSON. */
static int64_t next_obs(lines_t *r, kmerge_check_t *out, int *ok, int *rc) {
  const char *line;
  size_t len;
  *rc = lines_next(r, &line, &len);
  if (*rc != LINES_OK) return 0;
  *ok = whole(line, len);
  if (!*ok && out->damaged_obs++ == 0) out->first_damaged_obs = r->lineno;
  return lines_trace_number(line, len);
}

int kmerge_check(kmerge_t *m, const kmerge_input_t *traces, const kmerge_input_t *observations, kmerge_check_t *out) {
  static const char *const keys[] = { "observations" };
  static const size_t keylens[] = { 12 };
  lines_t t, o;
  const char *line, *why;
  size_t len, where;
  int rc, orc = LINES_OK, ook = 0;
  int64_t ok_k = 0, ko;                  /* ok_k: the last trace found whole */
  memset(out, 0, sizeof *out);
  if (lines_open(&t, traces->path, READ_MAX, traces->limit) != 0) { fail(m, "%s: %s", traces->path, strerror(errno)); return -1; }
  if (lines_open(&o, observations->path, READ_MAX, observations->limit) != 0) {
    fail(m, "%s: %s", observations->path, strerror(errno));
    lines_close(&t);
    return -1;
  }
  ko = next_obs(&o, out, &ook, &orc);
  /* Both files are in trace order: walk them in step, so nothing is held per trace. The
   * traces of the scan that end up without a whole traces.jsonl line are cleared after. */
  while ((rc = lines_next(&t, &line, &len)) == LINES_OK) {
    int64_t k = lines_trace_number(line, len), want, got = 0;
    int bad = 0;
    jv_span span;
    if (len > 0 && line[len - 1] == '\n') len--;
    if (jv_scan(line, len, keys, keylens, 1, &span, &why, &where) != 0) {
      if (out->damaged_traces++ == 0) out->first_damaged_trace = t.lineno;
      continue;
    }
    if (k < 1 || (k - 1) % m->shards != traces->index || !has(m, k) || k <= ok_k) continue;
    want = span.type == JV_ABSENT ? -1 : jv_count(&span);
    while (orc == LINES_OK && (ko < k)) ko = next_obs(&o, out, &ook, &orc);
    while (orc == LINES_OK && ko == k) {
      if (ook) got++; else bad = 1;
      ko = next_obs(&o, out, &ook, &orc);
    }
    if (orc == LINES_ERR) break;
    /* Lines of trace k, damaged ones included, are consumed: the trace is whole when none was
     * damaged and they are as many as its array says (no array: whatever there is). */
    if (bad || (want >= 0 && got != want)) {
      note_k(k, &out->short_obs, out->first_short_obs, &out->n_first_short_obs);
      clear(m, k);
      continue;
    }
    /* Traces of the scan between the last whole one and k have no whole traces.jsonl line. */
    for (int64_t j = ok_k + 1; j < k; j++)
      if ((j - 1) % m->shards == traces->index && has(m, j)) {
        note_k(j, &out->no_trace, out->first_no_trace, &out->n_first_no_trace);
        clear(m, j);
      }
    ok_k = k;
  }
  if (rc == LINES_ERR || orc == LINES_ERR) {
    fail(m, "%s: %s", rc == LINES_ERR ? traces->path : observations->path, strerror(rc == LINES_ERR ? t.err : o.err));
    lines_close(&t);
    lines_close(&o);
    return -1;
  }
  for (int64_t j = ok_k + 1; j <= m->planned; j++)
    if ((j - 1) % m->shards == traces->index && has(m, j)) {
      note_k(j, &out->no_trace, out->first_no_trace, &out->n_first_no_trace);
      clear(m, j);
    }
  lines_close(&t);
  lines_close(&o);
  return 0;
}

/* One input of the merge: its reader and the line it offers next. */
typedef struct source {
  lines_t r;
  const kmerge_input_t *in;
  const char *line;
  size_t len;
  int64_t k, prev;
} source_t;

/* Reads the source's next line; 1 when there is one, 0 at its end, -1 on an error. A torn
 * last line belongs to a trace the shard never finished: it ends the source. */
static int advance(kmerge_t *m, source_t *s, int unique) {
  int rc = lines_next(&s->r, &s->line, &s->len);
  if (rc == LINES_END || rc == LINES_TORN) return 0;
  if (rc == LINES_ERR) { fail(m, "%s: %s", s->in->path, strerror(s->r.err)); return -1; }
  s->k = lines_trace_number(s->line, s->len);
  if (s->k < 1 || (s->k - 1) % m->shards != s->in->index) {
    fail(m, "%s:%lld: not a trace line of shard %lld-of-%lld", s->in->path, (long long)s->r.lineno,
         (long long)s->in->index, (long long)m->shards);
    return -1;
  }
  if (s->k < s->prev || (unique && s->k == s->prev)) {
    fail(m, "%s:%lld: trace_%03lld comes after trace_%03lld (a line repeated or out of order)", s->in->path,
         (long long)s->r.lineno, (long long)s->k, (long long)s->prev);
    return -1;
  }
  s->prev = s->k;
  return 1;
}

/* A binary min-heap of sources by their next trace number. */
static void sift_down(source_t **h, int n, int i) {
  for (;;) {
    int l = 2 * i + 1, r = l + 1, min = i;
    if (l < n && h[l]->k < h[min]->k) min = l;
    if (r < n && h[r]->k < h[min]->k) min = r;
    if (min == i) return;
    source_t *t = h[i]; h[i] = h[min]; h[min] = t;
    i = min;
  }
}

typedef struct out {
  int fd;
  char *buf;
  size_t len;
  const char *path;
} out_t;

static int out_write(kmerge_t *m, out_t *o, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(o->fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(m, "%s: %s", o->path, strerror(errno));
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int out_put(kmerge_t *m, out_t *o, const char *p, size_t n) {
  if (o->len + n > WRITE_BLOCK) {
    if (out_write(m, o, o->buf, o->len) != 0) return -1;
    o->len = 0;
    if (n > WRITE_BLOCK) return out_write(m, o, p, n);
  }
  memcpy(o->buf + o->len, p, n);
  o->len += n;
  return 0;
}

/* Many shards means many open files: lift the soft limit as far as the hard one allows. */
static void allow_files(int n) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || (rlim_t)n + 64 <= rl.rlim_cur) return;
  rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || (rlim_t)n + 64 < rl.rlim_max ? (rlim_t)n + 64 : rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
}

int64_t kmerge_merge(kmerge_t *m, const char *out_path, const kmerge_input_t *in, int n, int unique, int counts) {
  source_t *src = calloc((size_t)(n > 0 ? n : 1), sizeof *src);
  source_t **heap = calloc((size_t)(n > 0 ? n : 1), sizeof *heap);
  out_t o = { -1, malloc(WRITE_BLOCK), 0, out_path };
  size_t bufsize = READ_BUDGET / (unsigned)(n > 0 ? n : 1);
  int opened = 0, live = 0;
  int64_t written = -1, count = 0;
  if (bufsize > READ_MAX) bufsize = READ_MAX;
  if (bufsize < READ_MIN) bufsize = READ_MIN;
  if (src == NULL || heap == NULL || o.buf == NULL) { fail(m, "not enough memory to merge %d files", n); goto done; }
  allow_files(n + 1);
  for (; opened < n; opened++) {
    source_t *s = &src[opened];
    s->in = &in[opened];
    if (lines_open(&s->r, in[opened].path, bufsize, in[opened].limit) != 0) {
      fail(m, "%s: %s", in[opened].path, strerror(errno));
      goto done;
    }
    int rc = advance(m, s, unique);
    if (rc < 0) { opened++; goto done; }
    if (rc > 0) heap[live++] = s;
  }
  for (int i = live / 2 - 1; i >= 0; i--) sift_down(heap, live, i);
  if (counts) { /* counted again: a check may have left traces out since the scans */
    stats_free(&m->stats);
    stats_init(&m->stats);
  }
  o.fd = open(out_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (o.fd < 0) { fail(m, "%s: %s", out_path, strerror(errno)); goto done; }
  while (live > 0) {
    source_t *s = heap[0];
    if (has(m, s->k)) {
      if (out_put(m, &o, s->line, s->len) != 0) goto done;
      count++;
      if (counts) {
        double ms = 0;
        int success = 0;
        summary_fields(s->line, s->len, &ms, &success); /* the scan checked the line */
        if (stats_add(&m->stats, ms, success) != 0) { fail(m, "not enough memory for run statistics"); goto done; }
      }
    }
    int rc = advance(m, s, unique);
    if (rc < 0) goto done;
    if (rc == 0) heap[0] = heap[--live];
    sift_down(heap, live, 0);
  }
  if (out_write(m, &o, o.buf, o.len) != 0) goto done;
  if (fsync(o.fd) != 0) { fail(m, "%s: %s", out_path, strerror(errno)); goto done; }
  written = count;
done:
  if (o.fd >= 0 && close(o.fd) != 0 && written >= 0) { fail(m, "%s: %s", out_path, strerror(errno)); written = -1; }
  for (int i = 0; i < opened; i++) lines_close(&src[i].r);
  free(o.buf);
  free(src);
  free(heap);
  return written;
}
