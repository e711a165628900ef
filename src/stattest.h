/* stattest.h - the tests behind `fluxloop compare` and the report's intervals: Wilson score
 * interval, Fisher's exact test (2x2, two-sided) and the Mann-Whitney U test. */
#ifndef FLUXLOOP_STATTEST_H
#define FLUXLOOP_STATTEST_H

#include <stddef.h>

/* 95% (or any z) Wilson score interval of k successes in n trials; n == 0 gives [0, 1]. */
void st_wilson(double k, double n, double z, double *lo, double *hi);

/* Two-sided p of Fisher's exact test on [[a, b], [c, d]]: the sum of the probabilities of
 * tables with the same margins no more likely than this one (R's fisher.test rule, with its
 * relative tolerance 1e-7 for ties in probability). */
double st_fisher(long a, long b, long c, long d);

typedef struct st_mwu {
  double u;        /* U of the first sample: rank sum minus n1(n1+1)/2 (R's W) */
  double p;        /* two-sided */
  double z;        /* the normal score (0 when exact) */
  int exact;       /* 1: the exact distribution (n1, n2 < 50 and no ties), else normal
                      approximation with tie and continuity correction */
} st_mwu;

enum { ST_AUTO, ST_EXACT, ST_ASYMPTOTIC };

/* x (n1 values) and y (n2 values) must be sorted ascending. method: ST_AUTO (exact when both
 * are under 50 and nothing ties, as R), ST_EXACT (refused with ties or over 200 values: -1),
 * ST_ASYMPTOTIC. Returns 0, or -1 when a sample is empty or memory ran out. */
int st_mannwhitney(const double *x, size_t n1, const double *y, size_t n2, int method, st_mwu *out);

/* Upper tail of the standard normal distribution. */
double st_norm_sf(double z);

#endif
