/* stattest.h - the tests behind `fluxloop compare` and the report's intervals: Wilson score
 * interval, Fisher's exact test (2x2, two-sided), the Mann-Whitney U test, the
 * Cochran-Mantel-Haenszel test over 2x2 strata, and the runs two proportions need. */
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

/* Its inverse: z with P(Z > z) = p, 0 < p < 1 (to about 1e-15). */
double st_norm_isf(double p);

/* Cochran-Mantel-Haenszel test of 2x2 tables [[a, b], [c, d]], one a stratum (an input:
 * rows base and new, columns pass and fail), added one at a time so no table is kept. */
typedef struct st_cmh {
  double sum_a, sum_e, sum_v; /* a, its expectation and its variance with no difference, summed */
  double or_num, or_den;      /* the Mantel-Haenszel common odds ratio: sum ad/n over sum bc/n */
  long strata;                /* strata that inform the test (n >= 2 and a variance) */
} st_cmh;

void st_cmh_init(st_cmh *s);
void st_cmh_add(st_cmh *s, double a, double b, double c, double d);
/* The continuity-corrected statistic (chi-square, 1 df, as R's mantelhaen.test), its two-sided
 * p (1 when no stratum informs), and the common odds ratio (NAN when undefined). */
void st_cmh_result(const st_cmh *s, double *chi2, double *p, double *odds_ratio);

/* Runs a side that a two-sided test at level alpha needs to find p1 and p2 apart with the
 * given power: the normal approximation with Fleiss' continuity correction,
 *   n = (z(alpha/2) sqrt(2 pbar qbar) + z(1 - power) sqrt(p1 q1 + p2 q2))^2 / (p1 - p2)^2,
 *   n' = n/4 (1 + sqrt(1 + 4 / (n |p1 - p2|)))^2, rounded up.
 * Returns INFINITY when p1 == p2. */
double st_two_prop_n(double p1, double p2, double alpha, double power);

#endif
