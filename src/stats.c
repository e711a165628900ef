/* stats.c - keeps run durations and reduces them to the summary's figures. */
#include "stats.h"

#include <math.h>
#include <stdlib.h>

void stats_init(stats_t *s) {
  s->durations = NULL;
  s->count = s->cap = 0;
  s->successful = s->failed = 0;
  s->sum = s->sumsq = 0;
  s->min = s->max = 0;
  s->failed_alloc = 0;
}

void stats_free(stats_t *s) {
  free(s->durations);
  stats_init(s);
}

int stats_add(stats_t *s, double ms, int success) {
  if (s->count == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 1024;
    double *p = realloc(s->durations, cap * sizeof *p);
    if (p == NULL) { s->failed_alloc = 1; return -1; }
    s->durations = p;
    s->cap = cap;
  }
  s->durations[s->count++] = ms;
  if (success) s->successful++; else s->failed++;
  if (s->count == 1 || ms < s->min) s->min = ms;
  if (s->count == 1 || ms > s->max) s->max = ms;
  s->sum += ms;
  s->sumsq += ms * ms;
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double stats_percentile(const double *sorted, size_t n, double p) {
  double rank, frac;
  size_t lo;
  if (n == 0) return 0;
  rank = p / 100.0 * (double)(n - 1);
  lo = (size_t)rank;
  if (lo >= n - 1) return sorted[n - 1];
  frac = rank - (double)lo;
  return sorted[lo] + (sorted[lo + 1] - sorted[lo]) * frac;
}

void stats_summarize(stats_t *s, stats_summary_t *out) {
  size_t n = s->count;
  double mean, var = 0;
  out->count = n;
  out->successful = s->successful;
  out->failed = s->failed;
  if (n == 0) {
    out->min = out->mean = out->p50 = out->p90 = out->p95 = out->p99 = out->max = out->stddev = 0;
    return;
  }
  qsort(s->durations, n, sizeof *s->durations, cmp_double);
  mean = s->sum / (double)n;
  /* Population standard deviation, from a second pass for accuracy. */
  for (size_t i = 0; i < n; i++) {
    double d = s->durations[i] - mean;
    var += d * d;
  }
  out->mean = mean;
  out->stddev = sqrt(var / (double)n);
  out->min = s->durations[0];
  out->max = s->durations[n - 1];
  out->p50 = stats_percentile(s->durations, n, 50);
  out->p90 = stats_percentile(s->durations, n, 90);
  out->p95 = stats_percentile(s->durations, n, 95);
  out->p99 = stats_percentile(s->durations, n, 99);
}
