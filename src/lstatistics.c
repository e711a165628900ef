/* lstatistics.c - the fluxloop.statistics module: samples (exact percentiles up to a limit of
 * values, then logarithmic bins), Wilson intervals, Fisher's exact test, Mann-Whitney U, the
 * Cochran-Mantel-Haenszel test, Holm's correction and the runs two rates need, for `report`
 * and `compare`. */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "groups.h"
#include "lstats.h"
#include "sketch.h"
#include "stats.h"
#include "stattest.h"

#define SAMPLE_MT "fluxloop.Sample"
#define GROUPS_MT "fluxloop.Groups"
#define PVALUES_MT "fluxloop.PValues"
#define STRATA_MT "fluxloop.Strata"
#define DEFAULT_LIMIT (1u << 18) /* exact values a sample keeps by default: 2 MB */

/* Values are kept exactly (s.durations) up to `limit`; past it they all move into bins, and
 * s keeps only the running figures (sum, sumsq, min, max, successful, failed). */
typedef struct sample {
  stats_t s;
  int sorted;       /* durations sorted since the last add */
  size_t limit;
  uint64_t *bins;   /* NULL while exact */
  uint64_t n;       /* values added in all */
} sample_t;

static sample_t *check_sample(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, SAMPLE_MT);
}

static sample_t *new_sample(lua_State *L, size_t limit) {
  sample_t *x = lua_newuserdatauv(L, sizeof *x, 0);
  stats_init(&x->s);
  x->sorted = 1;
  x->limit = limit;
  x->bins = NULL;
  x->n = 0;
  luaL_setmetatable(L, SAMPLE_MT);
  return x;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void sort_sample(sample_t *x) {
  if (!x->sorted && x->s.count > 1) qsort(x->s.durations, x->s.count, sizeof(double), cmp_double);
  x->sorted = 1;
}

/* sample([limit]) -> an empty sample: exact (8 bytes a value) up to limit values (default
 * 262,144), then binned in fixed memory (percentiles within 0.27%, see sketch.h). */
static int st_sample(lua_State *L) {
  lua_Integer limit = luaL_optinteger(L, 1, DEFAULT_LIMIT);
  luaL_argcheck(L, limit >= 1, 1, "the limit is at least 1");
  new_sample(L, (size_t)limit);
  return 1;
}

/* Room for one more value. A report holds a sample per input and per persona, most of them
 * small: start at 8 and grow by half (stats_add alone starts at 1024 and doubles). */
static int reserve(stats_t *s) {
  size_t cap;
  double *p;
  if (s->count < s->cap) return 0;
  cap = s->cap ? s->cap + s->cap / 2 : 8;
  p = realloc(s->durations, cap * sizeof *p);
  if (p == NULL) return -1;
  s->durations = p;
  s->cap = cap;
  return 0;
}

/* Moves the exact values into bins: the sample's memory stops growing here. */
static int to_bins(sample_t *x) {
  x->bins = calloc(SKETCH_BINS, sizeof *x->bins);
  if (x->bins == NULL) return -1;
  for (size_t i = 0; i < x->s.count; i++) x->bins[sketch_bin(x->s.durations[i])]++;
  free(x->s.durations);
  x->s.durations = NULL;
  x->s.count = x->s.cap = 0;
  x->sorted = 1;
  return 0;
}

static int push(sample_t *x, double v, int success) {
  if (x->bins == NULL && x->s.count < x->limit) {
    if (reserve(&x->s) != 0 || stats_add(&x->s, v, success) != 0) return -1;
    x->sorted = 0;
    x->n++;
    return 0;
  }
  if (x->bins == NULL && to_bins(x) != 0) return -1;
  x->bins[sketch_bin(v)]++;
  if (success) x->s.successful++; else x->s.failed++;
  if (v < x->s.min) x->s.min = v;
  if (v > x->s.max) x->s.max = v;
  x->s.sum += v;
  x->s.sumsq += v * v;
  x->n++;
  return 0;
}

/* s:add(x [, success]) */
static int sample_add(lua_State *L) {
  sample_t *x = check_sample(L, 1);
  double v = (double)luaL_checknumber(L, 2);
  if (push(x, v, lua_isnone(L, 3) || lua_toboolean(L, 3)) != 0) return luaL_error(L, "not enough memory for a sample");
  return 0;
}

static void sample_clear(sample_t *x) {
  stats_free(&x->s);
  free(x->bins);
  x->bins = NULL;
  x->n = 0;
  x->sorted = 1;
}

/* s:reset(): empty again (its exact limit kept). */
static int sample_reset(lua_State *L) {
  sample_clear(check_sample(L, 1));
  return 0;
}

static int sample_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_sample(L, 1)->n);
  return 1;
}

/* s:exact() -> whether every value is still kept (percentiles exact). */
static int sample_exact(lua_State *L) {
  lua_pushboolean(L, check_sample(L, 1)->bins == NULL);
  return 1;
}

/* s:percentile(p) -> linear interpolation between closest ranks (as summary.json); nil if empty. */
static int sample_percentile(lua_State *L) {
  sample_t *x = check_sample(L, 1);
  double p = (double)luaL_checknumber(L, 2);
  luaL_argcheck(L, p >= 0 && p <= 100, 2, "a percentile is from 0 to 100");
  if (x->n == 0) return 0;
  if (x->bins != NULL) {
    lua_pushnumber(L, sketch_percentile(x->bins, x->n, x->s.min, x->s.max, p));
    return 1;
  }
  sort_sample(x);
  lua_pushnumber(L, stats_percentile(x->s.durations, x->s.count, p));
  return 1;
}

/* s:summary() -> the summary.json figures (count, successful, failed, min, mean, p50 ... stddev). */
static int sample_summary(lua_State *L) {
  sample_t *x = check_sample(L, 1);
  stats_summary_t o;
  if (x->bins != NULL) {
    double mean = x->s.sum / (double)x->n, var = x->s.sumsq / (double)x->n - mean * mean;
    o.count = (size_t)x->n;
    o.successful = x->s.successful;
    o.failed = x->s.failed;
    o.min = x->s.min;
    o.max = x->s.max;
    o.mean = mean;
    o.stddev = var > 0 ? sqrt(var) : 0;
    o.p50 = sketch_percentile(x->bins, x->n, o.min, o.max, 50);
    o.p90 = sketch_percentile(x->bins, x->n, o.min, o.max, 90);
    o.p95 = sketch_percentile(x->bins, x->n, o.min, o.max, 95);
    o.p99 = sketch_percentile(x->bins, x->n, o.min, o.max, 99);
  } else {
    stats_summarize(&x->s, &o);
    x->sorted = 1;
  }
  lstats_push(L, &o);
  return 1;
}

/* s:histogram(lo, hi, bins) -> counts of values in bins equal parts of [lo, hi] (values outside
 * go to the first or last bin). */
static int sample_histogram(lua_State *L) {
  sample_t *x = check_sample(L, 1);
  double lo = (double)luaL_checknumber(L, 2), hi = (double)luaL_checknumber(L, 3);
  lua_Integer bins = luaL_checkinteger(L, 4);
  lua_Integer *counts;
  luaL_argcheck(L, bins >= 1 && bins <= 10000, 4, "bins from 1 to 10000");
  counts = lua_newuserdatauv(L, (size_t)bins * sizeof *counts, 0);
  for (lua_Integer b = 0; b < bins; b++) counts[b] = 0;
  for (size_t i = 0; i < (x->bins ? SKETCH_BINS : x->s.count); i++) {
    double v = x->bins ? sketch_value((int)i) : x->s.durations[i];
    lua_Integer b = hi > lo ? (lua_Integer)floor((v - lo) / (hi - lo) * (double)bins) : 0;
    if (x->bins && x->bins[i] == 0) continue;
    if (b < 0) b = 0;
    if (b >= bins) b = bins - 1;
    counts[b] += x->bins ? (lua_Integer)x->bins[i] : 1;
  }
  lua_createtable(L, (int)bins, 0);
  for (lua_Integer b = 0; b < bins; b++) {
    lua_pushinteger(L, counts[b]);
    lua_rawseti(L, -2, b + 1);
  }
  return 1;
}

static int sample_gc(lua_State *L) {
  sample_clear(check_sample(L, 1));
  return 0;
}

/* merge(list of samples) -> one sample holding every value (binned when one of them is, or
 * when they hold more than the default limit). */
static int st_merge(lua_State *L) {
  lua_Integer n;
  sample_t *out;
  luaL_checktype(L, 1, LUA_TTABLE);
  n = luaL_len(L, 1);
  out = new_sample(L, DEFAULT_LIMIT);
  for (lua_Integer i = 1; i <= n; i++) {
    sample_t *x;
    lua_geti(L, 1, i);
    x = check_sample(L, -1);
    for (size_t k = 0; k < x->s.count; k++)
      if (push(out, x->s.durations[k], 1) != 0) return luaL_error(L, "not enough memory for a sample");
    if (x->bins != NULL) {
      if (out->bins == NULL && to_bins(out) != 0) return luaL_error(L, "not enough memory for a sample");
      for (int b = 0; b < SKETCH_BINS; b++) out->bins[b] += x->bins[b];
      if (out->n == 0 || x->s.min < out->s.min) out->s.min = x->s.min;
      if (out->n == 0 || x->s.max > out->s.max) out->s.max = x->s.max;
      out->s.sum += x->s.sum;
      out->s.sumsq += x->s.sumsq;
      out->s.successful += x->n;
      out->n += x->n;
    }
    lua_pop(L, 1);
  }
  return 1;
}

/* wilson(k, n [, z = 1.959964]) -> lo, hi */
static int st_wilson_l(lua_State *L) {
  double k = (double)luaL_checknumber(L, 1), n = (double)luaL_checknumber(L, 2), lo, hi;
  double z = (double)luaL_optnumber(L, 3, 1.959963984540054);
  luaL_argcheck(L, k >= 0 && k <= n, 1, "need 0 <= k <= n");
  st_wilson(k, n, z, &lo, &hi);
  lua_pushnumber(L, lo);
  lua_pushnumber(L, hi);
  return 2;
}

/* fisher(a, b, c, d) -> two-sided p of [[a, b], [c, d]] */
static int st_fisher_l(lua_State *L) {
  lua_Integer v[4];
  for (int i = 0; i < 4; i++) {
    v[i] = luaL_checkinteger(L, i + 1);
    luaL_argcheck(L, v[i] >= 0, i + 1, "counts are >= 0");
  }
  lua_pushnumber(L, st_fisher((long)v[0], (long)v[1], (long)v[2], (long)v[3]));
  return 1;
}

static int push_mwu(lua_State *L, const double *x, size_t n1, const double *y, size_t n2, int method) {
  st_mwu r;
  if (st_mannwhitney(x, n1, y, n2, method, &r) != 0)
    return luaL_error(L, "mannwhitney: the exact distribution needs samples of at most 200 values without "
      "ties (or memory ran out)");
  lua_createtable(L, 0, 4);
  lua_pushnumber(L, r.u); lua_setfield(L, -2, "u");
  lua_pushnumber(L, r.p); lua_setfield(L, -2, "p");
  lua_pushnumber(L, r.z); lua_setfield(L, -2, "z");
  lua_pushboolean(L, r.exact); lua_setfield(L, -2, "exact");
  return 1;
}

static const char *const MW_METHODS[] = { "auto", "exact", "asymptotic", NULL };

/* The bins of a sample (its exact values binned when it has none) into out. */
static void bins_of(const sample_t *x, uint64_t *out) {
  if (x->bins != NULL) { memcpy(out, x->bins, SKETCH_BINS * sizeof *out); return; }
  memset(out, 0, SKETCH_BINS * sizeof *out);
  for (size_t i = 0; i < x->s.count; i++) out[sketch_bin(x->s.durations[i])]++;
}

/* Mann-Whitney U when a sample is past its exact limit: values of one bin count as ties. */
static int binned_mwu(lua_State *L, const sample_t *a, const sample_t *b) {
  uint64_t *x = lua_newuserdatauv(L, 2 * SKETCH_BINS * sizeof *x, 0), *y = x + SKETCH_BINS;
  st_mwu r;
  bins_of(a, x);
  bins_of(b, y);
  sketch_mannwhitney(x, a->n, y, b->n, &r);
  lua_pop(L, 1);
  lua_createtable(L, 0, 4);
  lua_pushnumber(L, r.u); lua_setfield(L, -2, "u");
  lua_pushnumber(L, r.p); lua_setfield(L, -2, "p");
  lua_pushnumber(L, r.z); lua_setfield(L, -2, "z");
  lua_pushboolean(L, 0); lua_setfield(L, -2, "exact");
  return 1;
}

/* mannwhitney(x, y [, "auto" | "exact" | "asymptotic"]) -> { u, p, z, exact } (two-sided);
 * x and y are samples or lists of numbers. */
static int st_mannwhitney_l(lua_State *L) {
  int method = luaL_checkoption(L, 3, "auto", MW_METHODS);
  sample_t *a, *b;
  for (int idx = 1; idx <= 2; idx++) {
    if (lua_istable(L, idx)) {
      lua_Integer n = luaL_len(L, idx);
      sample_t *x = new_sample(L, (size_t)(n > 0 ? n : 1));
      for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, idx, i);
        if (push(x, (double)luaL_checknumber(L, -1), 1) != 0) return luaL_error(L, "out of memory");
        lua_pop(L, 1);
      }
      x->sorted = 0;
      lua_replace(L, idx);
    }
  }
  a = check_sample(L, 1);
  b = check_sample(L, 2);
  luaL_argcheck(L, a->n > 0, 1, "empty sample");
  luaL_argcheck(L, b->n > 0, 2, "empty sample");
  if (a->bins != NULL || b->bins != NULL) return binned_mwu(L, a, b);
  sort_sample(a);
  sort_sample(b);
  return push_mwu(L, a->s.durations, a->s.count, b->s.durations, b->s.count, method);
}

/* Groups: the per-input (or per-persona) aggregates of a report, one C array for all. */

static groups_t *check_groups(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, GROUPS_MT);
}

/* A 1-based group index argument, checked against the groups there are (+1 for add). */
static size_t check_index(lua_State *L, groups_t *s, int idx, int adding) {
  lua_Integer i = luaL_checkinteger(L, idx);
  luaL_argcheck(L, i >= 1 && (size_t)i <= s->count + (adding ? 1 : 0), idx, "no such group");
  return (size_t)i - 1;
}

/* groups([max_outputs = 1000]) -> an empty set of groups */
static int st_groups(lua_State *L) {
  lua_Integer max = luaL_optinteger(L, 1, 1000);
  groups_t *s;
  luaL_argcheck(L, max >= 0 && max <= 1000000, 1, "max_outputs from 0 to 1000000");
  s = lua_newuserdatauv(L, sizeof *s, 0);
  groups_init(s, (uint32_t)max);
  luaL_setmetatable(L, GROUPS_MT);
  return 1;
}

/* gs:add(i, duration_ms, success, output_hash): i == gs:count() + 1 starts a new group. */
static int groups_add_l(lua_State *L) {
  groups_t *s = check_groups(L, 1);
  size_t i = check_index(L, s, 2, 1);
  double ms = (double)luaL_checknumber(L, 3);
  uint64_t h = (uint64_t)luaL_optinteger(L, 5, 0);
  if (groups_add(s, i, ms, lua_toboolean(L, 4), h) != 0) return luaL_error(L, "not enough memory for run statistics");
  return 0;
}

static int groups_count_l(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_groups(L, 1)->count);
  return 1;
}

/* gs:get(i) -> runs, successful, distinct outputs, count of the most common output, successful
 * runs whose output was not counted (past max_outputs distinct ones) */
static int groups_get_l(lua_State *L) {
  groups_t *s = check_groups(L, 1);
  size_t i = check_index(L, s, 2, 0);
  group_t *g = &s->g[i];
  lua_pushinteger(L, (lua_Integer)g->n);
  lua_pushinteger(L, (lua_Integer)g->ok);
  lua_pushinteger(L, (lua_Integer)g->distinct);
  lua_pushinteger(L, (lua_Integer)groups_top(s, i));
  lua_pushinteger(L, (lua_Integer)g->untracked);
  return 5;
}

/* gs:percentile(i, p) -> as sample:percentile, for group i */
static int groups_percentile_l(lua_State *L) {
  groups_t *s = check_groups(L, 1);
  size_t i = check_index(L, s, 2, 0);
  double p = (double)luaL_checknumber(L, 3);
  luaL_argcheck(L, p >= 0 && p <= 100, 3, "a percentile is from 0 to 100");
  if (s->g[i].n == 0) return 0;
  lua_pushnumber(L, stats_percentile(groups_sorted(s, i), s->g[i].n, p));
  return 1;
}

/* gs:mannwhitney(i, other, j [, method]) -> Mann-Whitney U of group i against other's group j */
static int groups_mannwhitney_l(lua_State *L) {
  groups_t *a = check_groups(L, 1), *b = check_groups(L, 3);
  size_t i = check_index(L, a, 2, 0), j = check_index(L, b, 4, 0);
  int method = luaL_checkoption(L, 5, "auto", MW_METHODS);
  const double *x = groups_sorted(a, i), *y = groups_sorted(b, j);
  luaL_argcheck(L, a->g[i].n > 0 && b->g[j].n > 0, 2, "empty group");
  return push_mwu(L, x, a->g[i].n, y, b->g[j].n, method);
}

static int groups_gc(lua_State *L) {
  groups_free(check_groups(L, 1));
  return 0;
}

/* P-values of many tests (one an input), 8 bytes each, and Holm's step-down adjustment over
 * them: compare holds these, not the rows, for a million inputs. NaN marks "no test". */
typedef struct pvalues {
  double *p;
  size_t n, cap;
} pvalues_t;

static pvalues_t *check_pvalues(lua_State *L) {
  return luaL_checkudata(L, 1, PVALUES_MT);
}

/* pvalues() -> an empty list */
static int st_pvalues(lua_State *L) {
  pvalues_t *v = lua_newuserdatauv(L, sizeof *v, 0);
  memset(v, 0, sizeof *v);
  luaL_setmetatable(L, PVALUES_MT);
  return 1;
}

/* pv:add(p | nil) */
static int pvalues_add(lua_State *L) {
  pvalues_t *v = check_pvalues(L);
  double p = lua_isnoneornil(L, 2) ? NAN : (double)luaL_checknumber(L, 2);
  if (v->n == v->cap) {
    size_t cap = v->cap ? v->cap * 2 : 256;
    double *q = realloc(v->p, cap * sizeof *q);
    if (q == NULL) return luaL_error(L, "not enough memory for p-values");
    v->p = q;
    v->cap = cap;
  }
  v->p[v->n++] = p;
  return 0;
}

/* pv:get(i) -> the i-th value (adjusted after holm()), or nil for none */
static int pvalues_get(lua_State *L) {
  pvalues_t *v = check_pvalues(L);
  lua_Integer i = luaL_checkinteger(L, 2);
  luaL_argcheck(L, i >= 1 && (size_t)i <= v->n, 2, "no such p-value");
  if (isnan(v->p[i - 1])) return 0;
  lua_pushnumber(L, v->p[i - 1]);
  return 1;
}

static int pvalues_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_pvalues(L)->n);
  return 1;
}

/* Sifts order[i] down a max-heap of n indices keyed by p[index]. */
static void sift(uint32_t *order, size_t n, size_t i, const double *p) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, top = i;
    if (l < n && p[order[l]] > p[order[top]]) top = l;
    if (r < n && p[order[r]] > p[order[top]]) top = r;
    if (top == i) return;
    uint32_t t = order[i]; order[i] = order[top]; order[top] = t;
    i = top;
  }
}

/* Heapsort of indices by their p-value, ascending (qsort has no context argument, and the
 * order of ties does not change Holm's adjusted values). */
static void sort_by_p(uint32_t *order, size_t n, const double *p) {
  for (size_t i = n / 2; i-- > 0;) sift(order, n, i, p);
  for (size_t end = n; end > 1; end--) {
    uint32_t t = order[0]; order[0] = order[end - 1]; order[end - 1] = t;
    sift(order, end - 1, 0, p);
  }
}

/* pv:holm(): every value replaced by its Holm-adjusted one (min(1, (m - rank + 1) p), made
 * monotone), m the count of values that are not nil. */
static int pvalues_holm(lua_State *L) {
  pvalues_t *v = check_pvalues(L);
  uint32_t *order = malloc((v->n ? v->n : 1) * sizeof *order);
  size_t m = 0;
  double running = 0;
  luaL_argcheck(L, v->n < UINT32_MAX, 1, "too many p-values");
  if (order == NULL) return luaL_error(L, "not enough memory for p-values");
  for (size_t i = 0; i < v->n; i++) if (!isnan(v->p[i])) order[m++] = (uint32_t)i;
  sort_by_p(order, m, v->p);
  for (size_t rank = 0; rank < m; rank++) {
    double adj = (double)(m - rank) * v->p[order[rank]];
    if (adj > 1) adj = 1;
    if (adj < running) adj = running;
    running = adj;
    v->p[order[rank]] = adj;
  }
  free(order);
  return 0;
}

static int pvalues_gc(lua_State *L) {
  pvalues_t *v = check_pvalues(L);
  free(v->p);
  v->p = NULL;
  v->n = v->cap = 0;
  return 0;
}

/* Strata: 2x2 tables added one at a time for the Cochran-Mantel-Haenszel test. */

static st_cmh *check_strata(lua_State *L) {
  return luaL_checkudata(L, 1, STRATA_MT);
}

/* strata() -> an empty set of 2x2 tables */
static int st_strata(lua_State *L) {
  st_cmh *s = lua_newuserdatauv(L, sizeof *s, 0);
  st_cmh_init(s);
  luaL_setmetatable(L, STRATA_MT);
  return 1;
}

static void check_cells(lua_State *L, int first, double *cell) {
  for (int i = 0; i < 4; i++) {
    lua_Number v = luaL_checknumber(L, first + i);
    luaL_argcheck(L, v >= 0, first + i, "counts are >= 0");
    cell[i] = (double)v;
  }
}

/* st:add(a, b, c, d): one stratum [[a, b], [c, d]] */
static int strata_add(lua_State *L) {
  st_cmh *s = check_strata(L);
  double v[4];
  check_cells(L, 2, v);
  st_cmh_add(s, v[0], v[1], v[2], v[3]);
  return 0;
}

/* { chi2, p, odds_ratio (nil when undefined), strata (those that inform), observed (the a
 * cells summed), expected (their expectation with no difference) } */
static int push_cmh(lua_State *L, const st_cmh *s) {
  double chi2, p, ratio;
  st_cmh_result(s, &chi2, &p, &ratio);
  lua_createtable(L, 0, 6);
  lua_pushnumber(L, chi2); lua_setfield(L, -2, "chi2");
  lua_pushnumber(L, p); lua_setfield(L, -2, "p");
  if (!isnan(ratio)) { lua_pushnumber(L, ratio); lua_setfield(L, -2, "odds_ratio"); }
  lua_pushinteger(L, (lua_Integer)s->strata); lua_setfield(L, -2, "strata");
  lua_pushnumber(L, s->sum_a); lua_setfield(L, -2, "observed");
  lua_pushnumber(L, s->sum_e); lua_setfield(L, -2, "expected");
  return 1;
}

/* st:cmh() -> the test over the strata added so far (see push_cmh) */
static int strata_cmh(lua_State *L) {
  return push_cmh(L, check_strata(L));
}

/* cmh({ {a, b, c, d}, ... }) -> the test over those strata (see push_cmh) */
static int st_cmh_l(lua_State *L) {
  st_cmh s;
  lua_Integer n;
  luaL_checktype(L, 1, LUA_TTABLE);
  n = luaL_len(L, 1);
  st_cmh_init(&s);
  for (lua_Integer i = 1; i <= n; i++) {
    double v[4];
    int t = lua_geti(L, 1, i);
    luaL_argcheck(L, t == LUA_TTABLE, 1, "each stratum is a list {a, b, c, d}");
    for (int k = 0; k < 4; k++) {
      lua_Number x;
      lua_geti(L, -1 - k, k + 1);
      x = lua_tonumber(L, -1);
      luaL_argcheck(L, lua_isnumber(L, -1) && x >= 0, 1, "each stratum is four counts >= 0");
      v[k] = (double)x;
    }
    lua_pop(L, 5);
    st_cmh_add(&s, v[0], v[1], v[2], v[3]);
  }
  return push_cmh(L, &s);
}

/* two_prop_n(p1, p2 [, alpha = 0.05 [, power = 0.8]]) -> runs a side, or nil when p1 == p2 */
static int st_two_prop_n_l(lua_State *L) {
  double p1 = (double)luaL_checknumber(L, 1), p2 = (double)luaL_checknumber(L, 2);
  double alpha = (double)luaL_optnumber(L, 3, 0.05), power = (double)luaL_optnumber(L, 4, 0.8), n;
  luaL_argcheck(L, p1 >= 0 && p1 <= 1, 1, "a rate is from 0 to 1");
  luaL_argcheck(L, p2 >= 0 && p2 <= 1, 2, "a rate is from 0 to 1");
  luaL_argcheck(L, alpha > 0 && alpha < 1, 3, "alpha is between 0 and 1");
  luaL_argcheck(L, power > 0 && power < 1, 4, "power is between 0 and 1");
  n = st_two_prop_n(p1, p2, alpha, power);
  if (isinf(n)) return 0;
  lua_pushnumber(L, n);
  return 1;
}

/* norm_isf(p) -> z with P(Z > z) = p */
static int st_norm_isf_l(lua_State *L) {
  double p = (double)luaL_checknumber(L, 1);
  luaL_argcheck(L, p > 0 && p < 1, 1, "p is between 0 and 1");
  lua_pushnumber(L, st_norm_isf(p));
  return 1;
}

static const luaL_Reg strata_methods[] = {
  { "add", strata_add },
  { "cmh", strata_cmh },
  { NULL, NULL }
};

static const luaL_Reg pvalues_methods[] = {
  { "add", pvalues_add },
  { "get", pvalues_get },
  { "count", pvalues_count },
  { "holm", pvalues_holm },
  { NULL, NULL }
};

static const luaL_Reg groups_methods[] = {
  { "add", groups_add_l },
  { "count", groups_count_l },
  { "get", groups_get_l },
  { "percentile", groups_percentile_l },
  { "mannwhitney", groups_mannwhitney_l },
  { NULL, NULL }
};

static const luaL_Reg sample_methods[] = {
  { "add", sample_add },
  { "reset", sample_reset },
  { "exact", sample_exact },
  { "count", sample_count },
  { "percentile", sample_percentile },
  { "summary", sample_summary },
  { "histogram", sample_histogram },
  { NULL, NULL }
};

static const luaL_Reg st_funcs[] = {
  { "sample", st_sample },
  { "merge", st_merge },
  { "wilson", st_wilson_l },
  { "fisher", st_fisher_l },
  { "mannwhitney", st_mannwhitney_l },
  { "groups", st_groups },
  { "pvalues", st_pvalues },
  { "strata", st_strata },
  { "cmh", st_cmh_l },
  { "two_prop_n", st_two_prop_n_l },
  { "norm_isf", st_norm_isf_l },
  { NULL, NULL }
};

int luaopen_fluxloop_statistics(lua_State *L); /* the module's only export */
int luaopen_fluxloop_statistics(lua_State *L) {
  if (luaL_newmetatable(L, SAMPLE_MT)) {
    lua_pushcfunction(L, sample_gc);
    lua_setfield(L, -2, "__gc");
    luaL_newlib(L, sample_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, GROUPS_MT)) {
    lua_pushcfunction(L, groups_gc);
    lua_setfield(L, -2, "__gc");
    luaL_newlib(L, groups_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, PVALUES_MT)) {
    lua_pushcfunction(L, pvalues_gc);
    lua_setfield(L, -2, "__gc");
    luaL_newlib(L, pvalues_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, STRATA_MT)) {
    luaL_newlib(L, strata_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_newlib(L, st_funcs);
  return 1;
}
