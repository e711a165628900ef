/* stattest.c - Wilson interval, Fisher's exact test and Mann-Whitney U (exact at small N), the
 * Cochran-Mantel-Haenszel test, and the runs two proportions need to be told apart. */
#include "stattest.h"

#include <math.h>
#include <stdlib.h>

void st_wilson(double k, double n, double z, double *lo, double *hi) {
  double p, z2, den, mid, half;
  if (n <= 0) { *lo = 0; *hi = 1; return; }
  p = k / n;
  z2 = z * z;
  den = 1 + z2 / n;
  mid = (p + z2 / (2 * n)) / den;
  half = z * sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / den;
  *lo = mid - half < 0 ? 0 : mid - half;
  *hi = mid + half > 1 ? 1 : mid + half;
}

static double lchoose(double n, double k) {
  return lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1);
}

double st_fisher(long a, long b, long c, long d) {
  /* x = the top-left cell; rows r1 = a+b, columns c1 = a+c; x runs from lo to hi. */
  double r1 = (double)(a + b), r2 = (double)(c + d), c1 = (double)(a + c), n = r1 + r2;
  long lo = (long)(c1 - r2 > 0 ? c1 - r2 : 0), hi = (long)(c1 < r1 ? c1 : r1);
  double lden = lchoose(n, c1), lobs, sum = 0, lp;
  if (n == 0) return 1;
  lobs = lchoose(r1, (double)a) + lchoose(r2, c1 - (double)a) - lden;
  /* log P(x) from log P(lo), stepping by the ratio P(x+1)/P(x): one lgamma, not four per x. */
  lp = lchoose(r1, (double)lo) + lchoose(r2, c1 - (double)lo) - lden;
  for (long x = lo; x <= hi; x++) {
    if (lp <= lobs + log1p(1e-7)) sum += exp(lp);
    if (x < hi) {
      double xd = (double)x;
      lp += log((r1 - xd) * (c1 - xd)) - log((xd + 1) * (r2 - c1 + xd + 1));
    }
  }
  return sum > 1 ? 1 : sum;
}

double st_norm_sf(double z) {
  return 0.5 * erfc(z / sqrt(2.0));
}

/* P(U <= u) for samples of m and n without ties: counts of rank arrangements by U, built
 * with the recurrence f(u; m, n) = f(u - n; m - 1, n) + f(u; m, n - 1), one row per m. */
static int exact_cdf(size_t m, size_t n, double u, double *cdf) {
  size_t umax = m * n, ui = (size_t)u, row = umax + 1;
  /* Two layers (i - 1 and i) of (n + 1) rows of counts by U. */
  double *prev = calloc((n + 1) * row, sizeof *prev), *cur = calloc((n + 1) * row, sizeof *cur);
  double total = 0, below = 0;
  if (prev == NULL || cur == NULL) { free(prev); free(cur); return -1; }
  for (size_t j = 0; j <= n; j++) prev[j * row] = 1; /* i = 0: U is 0 */
  for (size_t i = 1; i <= m; i++) {
    for (size_t j = 0; j <= n; j++) {
      double *c = cur + j * row;
      for (size_t k = 0; k <= umax; k++) c[k] = 0;
      if (j == 0) { c[0] = 1; continue; }
      for (size_t k = 0; k <= i * j; k++)
        c[k] = (k >= j ? prev[j * row + k - j] : 0) + cur[(j - 1) * row + k];
    }
    double *t = prev; prev = cur; cur = t;
  }
  for (size_t k = 0; k <= umax; k++) {
    total += prev[n * row + k];
    if (k <= ui) below += prev[n * row + k];
  }
  free(prev);
  free(cur);
  *cdf = below / total;
  return 0;
}

int st_mannwhitney(const double *x, size_t n1, const double *y, size_t n2, int method, st_mwu *out) {
  size_t i = 0, j = 0, rank = 0;
  double r1 = 0, ties = 0, N = (double)(n1 + n2), mean, sd, z, corr;
  if (n1 == 0 || n2 == 0) return -1;
  /* Merge the sorted samples; a run of equal values shares the mean of its ranks. */
  while (i < n1 || j < n2) {
    double v = (j >= n2 || (i < n1 && x[i] <= y[j])) ? x[i] : y[j];
    size_t cx = 0, cy = 0, t;
    while (i < n1 && x[i] == v) { i++; cx++; }
    while (j < n2 && y[j] == v) { j++; cy++; }
    t = cx + cy;
    r1 += (double)cx * ((double)rank + ((double)t + 1) / 2);
    rank += t;
    if (t > 1) ties += (double)t * (double)t * (double)t - (double)t;
  }
  out->u = r1 - (double)n1 * ((double)n1 + 1) / 2;
  mean = (double)n1 * (double)n2 / 2;
  if (method == ST_EXACT && (ties != 0 || n1 > 200 || n2 > 200)) return -1;
  if (method == ST_EXACT || (method == ST_AUTO && n1 < 50 && n2 < 50 && ties == 0)) {
    double p;
    out->exact = 1;
    out->z = 0;
    /* R's wilcox.test: the tail on the side U lies, doubled. */
    if (out->u > mean) {
      double below;
      if (exact_cdf(n1, n2, out->u - 1, &below) != 0) return -1;
      p = 1 - below;
    } else if (exact_cdf(n1, n2, out->u, &p) != 0) {
      return -1;
    }
    out->p = 2 * p > 1 ? 1 : 2 * p;
    return 0;
  }
  out->exact = 0;
  sd = sqrt((double)n1 * (double)n2 / 12 * ((N + 1) - ties / (N * (N - 1))));
  z = out->u - mean;
  corr = z > 0 ? 0.5 : (z < 0 ? -0.5 : 0);
  z = sd > 0 ? (z - corr) / sd : 0;
  out->z = z;
  out->p = 2 * (z > 0 ? st_norm_sf(z) : st_norm_sf(-z));
  if (out->p > 1) out->p = 1;
  return 0;
}

/* A first guess (Abramowitz and Stegun 26.2.23, within 4.5e-4), then Newton's steps on the
 * exact tail: each about doubles the correct digits. */
double st_norm_isf(double p) {
  double q, t, z;
  if (p <= 0) return INFINITY;
  if (p >= 1) return -INFINITY;
  q = p < 0.5 ? p : 1 - p;
  t = sqrt(-2 * log(q));
  z = t - (2.515517 + 0.802853 * t + 0.010328 * t * t) / (1 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t);
  if (p > 0.5) z = -z;
  for (int i = 0; i < 4; i++) {
    double pdf = 0.3989422804014327 * exp(-z * z / 2); /* 1/sqrt(2 pi) e^(-z^2/2) */
    if (pdf <= 0) break;
    z += (st_norm_sf(z) - p) / pdf;
  }
  return z;
}

void st_cmh_init(st_cmh *s) {
  s->sum_a = s->sum_e = s->sum_v = s->or_num = s->or_den = 0;
  s->strata = 0;
}

void st_cmh_add(st_cmh *s, double a, double b, double c, double d) {
  double n = a + b + c + d, v;
  if (n < 2) return; /* R refuses such a stratum; here it carries no information */
  v = (a + b) * (c + d) * (a + c) * (b + d) / (n * n * (n - 1));
  s->sum_a += a;
  s->sum_e += (a + b) * (a + c) / n;
  s->sum_v += v;
  s->or_num += a * d / n;
  s->or_den += b * c / n;
  if (v > 0) s->strata++;
}

void st_cmh_result(const st_cmh *s, double *chi2, double *p, double *odds_ratio) {
  double delta = fabs(s->sum_a - s->sum_e), yates = delta < 0.5 ? delta : 0.5;
  *odds_ratio = s->or_den > 0 ? s->or_num / s->or_den : (s->or_num > 0 ? INFINITY : NAN);
  if (s->sum_v <= 0) { *chi2 = 0; *p = 1; return; }
  *chi2 = (delta - yates) * (delta - yates) / s->sum_v;
  *p = erfc(sqrt(*chi2 / 2)); /* the chi-square tail at 1 df */
}

double st_two_prop_n(double p1, double p2, double alpha, double power) {
  double d = fabs(p1 - p2), pbar = (p1 + p2) / 2, za, zb, root, n;
  if (d <= 0) return INFINITY;
  za = st_norm_isf(alpha / 2);
  zb = st_norm_isf(1 - power);
  root = za * sqrt(2 * pbar * (1 - pbar)) + zb * sqrt(p1 * (1 - p1) + p2 * (1 - p2));
  n = root * root / (d * d);
  n = n / 4 * pow(1 + sqrt(1 + 4 / (n * d)), 2);
  return ceil(n - 1e-9);
}
