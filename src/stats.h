/* stats.h - run counts and duration statistics (min, mean, percentiles, max, stddev). */
#ifndef FLUXLOOP_STATS_H
#define FLUXLOOP_STATS_H

#include <stddef.h>

/* Every duration is kept (8 bytes a run: 8 MB at a million runs) so that the
 * percentiles are exact rather than estimated from buckets. */
typedef struct stats {
  double *durations;
  size_t count, cap;
  size_t successful, failed;
  double sum, sumsq, min, max;
  int failed_alloc;
} stats_t;

typedef struct stats_summary {
  size_t count, successful, failed;
  double min, mean, p50, p90, p95, p99, max, stddev;
} stats_summary_t;

void stats_init(stats_t *s);
void stats_free(stats_t *s);
/* Returns 0, or -1 when memory for the duration could not be had. */
int stats_add(stats_t *s, double duration_ms, int success);
/* Sorts the durations in place (cheap to repeat) and fills out. With no runs every figure is 0. */
void stats_summarize(stats_t *s, stats_summary_t *out);
/* Linear interpolation between closest ranks over sorted values, p in [0, 100]. */
double stats_percentile(const double *sorted, size_t n, double p);

#endif
