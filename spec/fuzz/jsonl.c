/* jsonl.c - fuzz target for long JSONL lines (src/jsonpush.c, the long-line reader of
 * src/jsonlread.c, src/jsonspan.c): a line checked piece by piece is judged as jv_scan judges it
 * whole, with its top-level values where jv_scan finds them; read with a 64-byte limit, a file
 * gives the same good and damaged lines as read whole, each value left in the file is the text
 * jv_scan finds, and a string written from the file piece by piece is the text decoded whole. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "jsonenc.h"
#include "jsonlread.h"
#include "jsonpush.h"
#include "jsonspan.h"

#define MAX_KEYS 32
#define LIMIT 64

typedef struct keys {
  const char *k[MAX_KEYS];
  size_t n[MAX_KEYS];
  const char *at[MAX_KEYS]; /* where the last value of that key starts, and its length */
  size_t len[MAX_KEYS];
  int count;
} keys_t;

static void note_value(keys_t *K, const char *key, size_t kn, const char *v, size_t vn) {
  int i;
  for (i = 0; i < K->count; i++)
    if (K->n[i] == kn && memcmp(K->k[i], key, kn) == 0) break;
  if (i == K->count) {
    if (K->count == MAX_KEYS) return;
    K->k[i] = key;
    K->n[i] = kn;
    K->count++;
  }
  K->at[i] = v;
  K->len[i] = vn;
}

/* The line checked in pieces of 1..7 bytes; the verdict and values must be jv_scan's. */
static void check_push(const char *s, size_t n, unsigned seed) {
  jp_state st;
  keys_t K = { { 0 }, { 0 }, { 0 }, { 0 }, 0 };
  const char *key = NULL, *value = NULL;
  size_t kn = 0, pos = 0;
  int bad = 0;
  jv_span spans[MAX_KEYS];
  const char *why;
  size_t where;
  jp_init(&st);
  while (pos < n && !bad) {
    size_t piece = 1 + (seed = seed * 1103515245u + 12345u) % 7, i = 0;
    if (piece > n - pos) piece = n - pos;
    while (i < piece && !bad) {
      size_t used;
      int ev = jp_feed(&st, s + pos + i, piece - i, &used);
      const char *at = s + pos + i + used;
      i += used;
      if (ev == JP_ERROR) bad = 1;
      else if (ev == JP_KEY_START) key = at;
      else if (ev == JP_KEY_END) kn = (size_t)(at - 1 - key);
      else if (ev == JP_VALUE_START) value = at - 1;
      else if (ev == JP_VALUE_END) note_value(&K, key, kn, value, (size_t)(at - value));
    }
    pos += piece;
  }
  if (!bad) bad = jp_finish(&st) != 0;
  int whole_bad = jv_scan(s, n, K.k, K.n, K.count, spans, &why, &where) != 0;
  if (bad != whole_bad) fuzz_fail("jsonpush says %s, jv_scan %s", bad ? st.why : "good", whole_bad ? why : "good");
  for (int i = 0; i < K.count && !bad; i++) {
    const char *p;
    size_t pn;
    jv_raw(&spans[i], &p, &pn);
    if (p != K.at[i] || pn != K.len[i]) fuzz_fail("key %d: value at %zu+%zu, jv_scan %zu+%zu", i,
                                                  (size_t)(K.at[i] - s), K.len[i], (size_t)(p - s), pn);
  }
}

/* A string value copied from the file in pieces is the string decoded (and encoded) whole. */
static void check_copy(int fd, const jr_ref *ref, const char *whole, size_t n) {
  static const int modes[] = { JSPAN_TEXT, JSPAN_JSON };
  jv_span v = { JV_STRING, whole + 1, n - 2, 1 };
  buf_t dec = BUF_INIT, want = BUF_INIT, got = BUF_INIT;
  jv_unescape(&v, &dec);
  for (int m = 0; m < 2; m++) {
    buf_reset(&want);
    buf_reset(&got);
    if (modes[m] == JSPAN_TEXT) buf_put(&want, dec.data, dec.len);
    else jsonenc_string(&want, dec.data, dec.len);
    if (jspan_copy(fd, ref->off, ref->len, modes[m], 1, jspan_to_buf, &got) != 0) fuzz_fail("jspan_copy failed");
    if (got.len != want.len || memcmp(got.data, want.data, got.len) != 0) fuzz_fail("mode %d: copy differs", modes[m]);
  }
  buf_free(&dec);
  buf_free(&want);
  buf_free(&got);
}

/* The top-level keys and values of a good line, in order (at most max). */
typedef struct pair {
  const char *key, *v;
  size_t kn, vn;
} pair_t;

static int pairs_of(const char *s, size_t n, pair_t *out, int max) {
  jp_state st;
  size_t i = 0, used;
  int count = 0;
  jp_init(&st);
  while (i < n && count < max) {
    int ev = jp_feed(&st, s + i, n - i, &used);
    const char *at = s + i + used;
    i += used;
    if (ev == JP_KEY_START) out[count].key = at;
    else if (ev == JP_KEY_END) out[count].kn = (size_t)(at - 1 - out[count].key);
    else if (ev == JP_VALUE_START) out[count].v = at - 1;
    else if (ev == JP_VALUE_END) { out[count].vn = (size_t)(at - out[count].v); count++; }
  }
  return count;
}

/* A good line read with the limit against the same line read whole: each value is the same text,
 * or null in its place with a ref to where it is in the file. */
static void check_values(const jr_reader *a, const char *la, size_t na, const jr_reader *b, const char *lb, size_t nb) {
  static pair_t pa[256], pb[256];
  int ka = pairs_of(la, na, pa, 256), kb = pairs_of(lb, nb, pb, 256);
  size_t next = 0;
  if (ka != kb) fuzz_fail("line %lld: %d values whole, %d with a limit", a->lineno, ka, kb);
  for (int j = 0; j < ka; j++) {
    if (pa[j].kn != pb[j].kn || memcmp(pa[j].key, pb[j].key, pa[j].kn) != 0) fuzz_fail("keys differ");
    if (next < b->nrefs && pb[j].v == lb + b->refs[next].at) {
      const jr_ref *ref = &b->refs[next++];
      if (pb[j].vn != 4 || memcmp(pb[j].v, "null", 4) != 0) fuzz_fail("no null where a value was left out");
      if (ref->key_n != pb[j].kn || lb + ref->key_at != pb[j].key) fuzz_fail("a value left out has another key");
      if (ref->off != a->offset + (pa[j].v - la) || (size_t)ref->len != pa[j].vn) fuzz_fail("a value left out is elsewhere");
      if (ref->first == '"') check_copy(a->fd, ref, pa[j].v, pa[j].vn);
    } else if (pa[j].vn != pb[j].vn || memcmp(pa[j].v, pb[j].v, pa[j].vn) != 0) {
      fuzz_fail("line %lld: value %d differs", a->lineno, j);
    }
  }
  if (ka < 256 && next != b->nrefs) fuzz_fail("refs to no value");
}

/* The file read whole and with a small limit: the same lines, good and damaged alike. */
static void check_reader(const char *path) {
  jr_reader a, b;
  const char *la, *lb, *why;
  size_t na, nb, where;
  int ca, cb, ra, rb;
  if (jr_open(&a, path) != 0 || jr_open(&b, path) != 0 || jr_limit(&b, LIMIT) != 0) fuzz_fail("open failed");
  for (;;) {
    ra = jr_next(&a, &la, &na, &ca);
    rb = jr_next(&b, &lb, &nb, &cb);
    if (ra != rb || ca != cb || a.lineno != b.lineno || a.offset != b.offset) fuzz_fail("lines differ");
    if (ra != 1) break;
    int bad_a = jv_scan(la, na, NULL, NULL, 0, NULL, &why, &where) != 0;
    int bad_b = b.why != NULL || jv_scan(lb, nb, NULL, NULL, 0, NULL, &why, &where) != 0;
    if (bad_a != bad_b) fuzz_fail("line %lld: damaged %d whole, %d with a limit", a.lineno, bad_a, bad_b);
    if (!bad_a) check_values(&a, la, na, &b, lb, nb);
  }
  jr_close(&a);
  jr_close(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  const char *nl;
  char path[4096];
  int fd;
  for (const char *line = s, *end = s + size; line < end; line = nl + 1) { /* each line in pieces */
    nl = memchr(line, '\n', (size_t)(end - line));
    if (nl == NULL) nl = end;
    check_push(line, (size_t)(nl - line), (unsigned)(line - s) + (size > 0 ? data[0] : 0));
  }
  snprintf(path, sizeof path, "%s/lines.jsonl", fuzz_tmpdir());
  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || write(fd, data, size) != (ssize_t)size || close(fd) != 0) fuzz_fail("cannot write %s", path);
  check_reader(path);
  return 0;
}
