/* gradestats.c - per-grader figures of scores.jsonl lines (see gradestats.h).
 * pass^k of one input with n graded runs and c passes is C(c,k)/C(n,k): the chance that k
 * runs drawn from its n would all pass, an unbiased estimate of p^k. Runs of an input are
 * consecutive in trace order, so each input is folded in when the next one starts. */
#include "gradestats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "jsonlread.h"

typedef struct grader {
  char *name;
  size_t name_len;
  int64_t graded, passed, failed, errors, scored;
  double score_sum;
  int64_t cur_n, cur_c;       /* the current input's graded runs (errors left out) and passes */
  int max_k;
  double *pass_hat_sum;       /* [0..GRADESTATS_MAX_K] */
  int64_t *pass_hat_inputs;
} grader_t;

struct gradestats {
  int64_t iterations;
  int64_t input;              /* the input in progress (0-based), -1 before the first */
  grader_t *graders;
  int n, cap;
  int last;                   /* the grader found last: graders come in the same order each run */
  int folded;                 /* the current input's counts are in the sums already (a view) */
  buf_t name;                 /* scratch for an escaped grader name */
};

gradestats_t *gradestats_new(int64_t iterations) {
  gradestats_t *g = calloc(1, sizeof *g);
  if (g == NULL) return NULL;
  g->iterations = iterations > 0 ? iterations : 1;
  g->input = -1;
  return g;
}

void gradestats_free(gradestats_t *g) {
  if (g == NULL) return;
  for (int i = 0; i < g->n; i++) {
    free(g->graders[i].name);
    free(g->graders[i].pass_hat_sum);
    free(g->graders[i].pass_hat_inputs);
  }
  free(g->graders);
  buf_free(&g->name);
  free(g);
}

gradestats_t *gradestats_clone(const gradestats_t *g) {
  gradestats_t *c = gradestats_new(g->iterations);
  if (c == NULL) return NULL;
  c->input = g->input;
  c->folded = g->folded;
  c->graders = calloc(g->n > 0 ? (size_t)g->n : 1, sizeof *c->graders);
  if (c->graders == NULL) { gradestats_free(c); return NULL; }
  c->cap = g->n > 0 ? g->n : 1;
  for (int i = 0; i < g->n; i++) {
    const grader_t *from = &g->graders[i];
    grader_t *to = &c->graders[i];
    *to = *from;
    to->name = malloc(from->name_len + 1);
    to->pass_hat_sum = malloc((GRADESTATS_MAX_K + 1) * sizeof *to->pass_hat_sum);
    to->pass_hat_inputs = malloc((GRADESTATS_MAX_K + 1) * sizeof *to->pass_hat_inputs);
    c->n = i + 1; /* freed with the copy from here on */
    if (to->name == NULL || to->pass_hat_sum == NULL || to->pass_hat_inputs == NULL) {
      gradestats_free(c);
      return NULL;
    }
    memcpy(to->name, from->name, from->name_len + 1);
    memcpy(to->pass_hat_sum, from->pass_hat_sum, (GRADESTATS_MAX_K + 1) * sizeof *to->pass_hat_sum);
    memcpy(to->pass_hat_inputs, from->pass_hat_inputs, (GRADESTATS_MAX_K + 1) * sizeof *to->pass_hat_inputs);
  }
  return c;
}

/* Adds (sign 1) or takes back (sign -1) one input's C(c,k)/C(n,k) for k = 1..n. */
static void fold(grader_t *gr, int sign) {
  int64_t n = gr->cur_n, c = gr->cur_c;
  double r = 1.0;
  if (n > GRADESTATS_MAX_K) n = GRADESTATS_MAX_K;
  for (int64_t k = 1; k <= n; k++) {
    /* C(c,k)/C(n,k) = prod over i < k of (c-i)/(n-i), with the real n (not the cap). */
    r = c - (k - 1) <= 0 ? 0.0 : r * (double)(c - (k - 1)) / (double)(gr->cur_n - (k - 1));
    gr->pass_hat_sum[k] += sign * r;
    gr->pass_hat_inputs[k] += sign;
  }
  if (sign > 0 && (int)n > gr->max_k) gr->max_k = (int)n;
}

/* The sums hold only finished inputs again (undoes the view of gradestats_get). */
static void unfold_view(gradestats_t *g) {
  if (!g->folded) return;
  for (int i = 0; i < g->n; i++) fold(&g->graders[i], -1);
  g->folded = 0;
}

static void next_input(gradestats_t *g, int64_t input) {
  unfold_view(g);
  for (int i = 0; i < g->n; i++) {
    fold(&g->graders[i], 1);
    g->graders[i].cur_n = g->graders[i].cur_c = 0;
  }
  g->input = input;
}

static grader_t *find(gradestats_t *g, const char *name, size_t len) {
  if (g->last < g->n && g->graders[g->last].name_len == len && memcmp(g->graders[g->last].name, name, len) == 0)
    return &g->graders[g->last];
  for (int i = 0; i < g->n; i++) {
    if (g->graders[i].name_len == len && memcmp(g->graders[i].name, name, len) == 0) {
      g->last = i;
      return &g->graders[i];
    }
  }
  if (g->n == g->cap) {
    int cap = g->cap ? g->cap * 2 : 8;
    grader_t *more = realloc(g->graders, (size_t)cap * sizeof *more);
    if (more == NULL) return NULL;
    g->graders = more;
    g->cap = cap;
  }
  grader_t *gr = &g->graders[g->n];
  memset(gr, 0, sizeof *gr);
  gr->name = malloc(len + 1);
  gr->pass_hat_sum = calloc(GRADESTATS_MAX_K + 1, sizeof *gr->pass_hat_sum);
  gr->pass_hat_inputs = calloc(GRADESTATS_MAX_K + 1, sizeof *gr->pass_hat_inputs);
  if (gr->name == NULL || gr->pass_hat_sum == NULL || gr->pass_hat_inputs == NULL) {
    free(gr->name);
    free(gr->pass_hat_sum);
    free(gr->pass_hat_inputs);
    return NULL;
  }
  memcpy(gr->name, name, len);
  gr->name[len] = '\0';
  gr->name_len = len;
  g->last = g->n++;
  return gr;
}

int gradestats_add(gradestats_t *g, int64_t k, const char *grader, size_t len, int outcome, double score) {
  int64_t input = k > 0 ? (k - 1) / g->iterations : 0;
  grader_t *gr;
  unfold_view(g);
  if (input != g->input) next_input(g, input);
  gr = find(g, grader, len);
  if (gr == NULL) return -1;
  gr->graded++;
  if (outcome > 0) { gr->passed++; gr->cur_n++; gr->cur_c++; }
  else if (outcome == 0) { gr->failed++; gr->cur_n++; }
  else gr->errors++;
  if (!isnan(score)) { gr->scored++; gr->score_sum += score; }
  return 0;
}

int64_t gradestats_trace_number(const char *id, size_t n) {
  int64_t k = 0;
  if (n <= 6 || memcmp(id, "trace_", 6) != 0 || n > 6 + 18) return 0;
  for (size_t i = 6; i < n; i++) {
    if (id[i] < '0' || id[i] > '9') return 0;
    k = k * 10 + (id[i] - '0');
  }
  return k;
}

/* Reads a line in the recorder's own layout ({"trace_id":"..","grader":"..","pass":..,
 * "score":..,...}, no escapes in the id and name) without a JSON scan: the sink does this for
 * every grade of every run. Returns 1 when the line is in that layout (and is added), 0 when
 * it is not (the caller scans it as JSON), -1 out of memory. */
static int add_line_fast(gradestats_t *g, const char *line, size_t n) {
  static const char head[] = "{\"trace_id\":\"", mid[] = "\",\"grader\":\"", pass[] = "\",\"pass\":",
                    score[] = ",\"score\":";
  const char *end = line + n, *p = line, *id, *name, *q;
  size_t id_len, name_len;
  int outcome;
  double v = NAN;
  if (n < sizeof head || memcmp(p, head, sizeof head - 1) != 0) return 0;
  id = p += sizeof head - 1;
  q = memchr(p, '"', (size_t)(end - p));
  if (q == NULL || memchr(p, '\\', (size_t)(q - p)) != NULL) return 0;
  id_len = (size_t)(q - id);
  p = q;
  if ((size_t)(end - p) < sizeof mid || memcmp(p, mid, sizeof mid - 1) != 0) return 0;
  name = p += sizeof mid - 1;
  q = memchr(p, '"', (size_t)(end - p));
  if (q == NULL || memchr(p, '\\', (size_t)(q - p)) != NULL) return 0;
  name_len = (size_t)(q - name);
  p = q;
  if ((size_t)(end - p) < sizeof pass + 4 || memcmp(p, pass, sizeof pass - 1) != 0) return 0;
  p += sizeof pass - 1;
  if (memcmp(p, "true", 4) == 0) { outcome = 1; p += 4; }
  else if (end - p >= 5 && memcmp(p, "false", 5) == 0) { outcome = 0; p += 5; }
  else if (memcmp(p, "null", 4) == 0) { outcome = -1; p += 4; }
  else return 0;
  if ((size_t)(end - p) < sizeof score || memcmp(p, score, sizeof score - 1) != 0) return 0;
  p += sizeof score - 1;
  if (end - p >= 2 && (*p == '0' || *p == '1') && (p[1] == ',' || p[1] == '}')) {
    v = *p - '0'; /* the scores of rule graders, read without strtod */
  } else if (p < end && (*p == '-' || (*p >= '0' && *p <= '9'))) {
    char tmp[64];
    size_t k = 0;
    while (p + k < end && k < sizeof tmp - 1 && p[k] != ',' && p[k] != '}') k++;
    memcpy(tmp, p, k);
    tmp[k] = '\0';
    v = strtod(tmp, NULL);
  } else if (!(end - p >= 4 && memcmp(p, "null", 4) == 0)) {
    return 0;
  }
  {
    int64_t k = gradestats_trace_number(id, id_len);
    if (k == 0) return 0;
    return gradestats_add(g, k, name, name_len, outcome, v) == 0 ? 1 : -1;
  }
}

int gradestats_add_line(gradestats_t *g, const char *line, size_t n) {
  static const char *const keys[] = { "trace_id", "grader", "pass", "score" };
  static const size_t lens[] = { 8, 6, 4, 5 };
  jv_span v[4];
  const char *why, *name;
  size_t where, name_len;
  int64_t k;
  int outcome;
  double score = NAN;
  int fast = add_line_fast(g, line, n);
  if (fast != 0) return fast > 0 ? 0 : -1;
  if (jv_scan(line, n, keys, lens, 4, v, &why, &where) != 0) return 1;
  if (v[0].type != JV_STRING || v[1].type != JV_STRING) return 1;
  k = gradestats_trace_number(v[0].p, v[0].n);
  if (k == 0) return 1;
  if (v[2].type == JV_TRUE) outcome = 1;
  else if (v[2].type == JV_FALSE) outcome = 0;
  else if (v[2].type == JV_NULL) outcome = -1;
  else return 1;
  if (v[3].type == JV_NUMBER) score = strtod(v[3].p, NULL);
  name = v[1].p;
  name_len = v[1].n;
  if (v[1].escaped) {
    buf_reset(&g->name);
    jv_unescape(&v[1], &g->name);
    if (g->name.failed) return -1;
    name = g->name.data;
    name_len = g->name.len;
  }
  return gradestats_add(g, k, name, name_len, outcome, score);
}

long gradestats_add_lines(gradestats_t *g, const char *text, size_t n) {
  long skipped = 0;
  while (n > 0) {
    const char *nl = memchr(text, '\n', n);
    size_t len = nl ? (size_t)(nl - text) : n;
    int rc = gradestats_add_line(g, text, len);
    if (rc < 0) return -1;
    skipped += rc;
    if (nl == NULL) break;
    n -= len + 1;
    text = nl + 1;
  }
  return skipped;
}

int gradestats_count(gradestats_t *g) {
  return g->n;
}

void gradestats_get(gradestats_t *g, int i, grader_figures *out) {
  grader_t *gr = &g->graders[i];
  /* The input in progress counts as if it ended here; the next add takes it back out. */
  if (!g->folded) {
    for (int j = 0; j < g->n; j++) fold(&g->graders[j], 1);
    g->folded = 1;
  }
  out->name = gr->name;
  out->name_len = gr->name_len;
  out->graded = gr->graded;
  out->passed = gr->passed;
  out->failed = gr->failed;
  out->errors = gr->errors;
  out->scored = gr->scored;
  out->score_sum = gr->score_sum;
  out->max_k = gr->max_k;
  out->pass_hat_sum = gr->pass_hat_sum;
  out->pass_hat_inputs = gr->pass_hat_inputs;
}
