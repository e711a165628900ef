/* sketch.c - logarithmic bins of durations: percentiles and the Mann-Whitney test in fixed
 * memory, for samples past their exact limit. */
#include "sketch.h"

#include <math.h>

int sketch_bin(double v) {
  double at;
  if (!(v > 0)) return 0;
  at = (log2(v) - SKETCH_LOW_OCTAVE) * SKETCH_PER_OCTAVE;
  if (at < 0) return 1;
  if (at >= SKETCH_BINS - 2) return SKETCH_BINS - 1;
  return (int)at + 1;
}

double sketch_value(int bin) {
  if (bin <= 0) return 0;
  return exp2(SKETCH_LOW_OCTAVE + ((double)bin - 0.5) / SKETCH_PER_OCTAVE);
}

/* The value of the value at 0-based rank r: its bin's middle. */
static double at_rank(const uint64_t *bins, uint64_t r) {
  uint64_t seen = 0;
  for (int b = 0; b < SKETCH_BINS; b++) {
    seen += bins[b];
    if (seen > r) return sketch_value(b);
  }
  return sketch_value(SKETCH_BINS - 1);
}

double sketch_percentile(const uint64_t *bins, uint64_t n, double min, double max, double p) {
  double rank, frac, v;
  uint64_t lo;
  if (n == 0) return 0;
  if (p <= 0) return min;
  if (p >= 100) return max;
  rank = p / 100.0 * (double)(n - 1);
  lo = (uint64_t)rank;
  frac = rank - (double)lo;
  v = at_rank(bins, lo);
  if (frac > 0 && lo + 1 < n) v += (at_rank(bins, lo + 1) - v) * frac;
  return v < min ? min : (v > max ? max : v);
}

int sketch_mannwhitney(const uint64_t *x, uint64_t n1, const uint64_t *y, uint64_t n2, st_mwu *out) {
  double r1 = 0, ties = 0, rank = 0, N = (double)n1 + (double)n2, mean, sd, z, corr;
  if (n1 == 0 || n2 == 0) return -1;
  for (int b = 0; b < SKETCH_BINS; b++) {
    double t = (double)x[b] + (double)y[b];
    if (t == 0) continue;
    r1 += (double)x[b] * (rank + (t + 1) / 2);
    rank += t;
    if (t > 1) ties += t * t * t - t;
  }
  out->u = r1 - (double)n1 * ((double)n1 + 1) / 2;
  out->exact = 0;
  mean = (double)n1 * (double)n2 / 2;
  sd = sqrt((double)n1 * (double)n2 / 12 * ((N + 1) - ties / (N * (N - 1))));
  z = out->u - mean;
  corr = z > 0 ? 0.5 : (z < 0 ? -0.5 : 0);
  z = sd > 0 ? (z - corr) / sd : 0;
  out->z = z;
  out->p = 2 * (z > 0 ? st_norm_sf(z) : st_norm_sf(-z));
  if (out->p > 1) out->p = 1;
  return 0;
}
