/* sketch.h - durations in logarithmic bins: what a sample becomes past its exact limit, so a
 * report or compare of any size holds a fixed amount of memory. A bin spans a factor of
 * 2^(1/128) (0.54%), from 2^-20 ms to 2^30 ms: a percentile read from the bins is within 0.27%
 * of the exact one (values outside that range fall into the end bins). */
#ifndef FLUXLOOP_SKETCH_H
#define FLUXLOOP_SKETCH_H

#include <stddef.h>
#include <stdint.h>

#include "stattest.h"

#define SKETCH_PER_OCTAVE 128
#define SKETCH_LOW_OCTAVE (-20)
#define SKETCH_OCTAVES 50
#define SKETCH_BINS (SKETCH_OCTAVES * SKETCH_PER_OCTAVE + 2) /* bin 0: <= 0; the last: the top */

/* The bin of a duration, and the value a bin stands for (the geometric middle). */
int sketch_bin(double v);
double sketch_value(int bin);

/* The p-th percentile (0..100) of n values in bins, interpolated between closest ranks as
 * stats_percentile, clamped to [min, max]. */
double sketch_percentile(const uint64_t *bins, uint64_t n, double min, double max, double p);

/* The Mann-Whitney U test of two binned samples: values of one bin are ties (normal
 * approximation with tie and continuity correction). Returns 0, or -1 when one is empty. */
int sketch_mannwhitney(const uint64_t *x, uint64_t n1, const uint64_t *y, uint64_t n2, st_mwu *out);

#endif
