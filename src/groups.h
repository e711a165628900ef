/* groups.h - run aggregates of many groups (the inputs or personas of an experiment): counts,
 * durations for exact percentiles, and counts of distinct outputs, compact and in C. */
#ifndef FLUXLOOP_GROUPS_H
#define FLUXLOOP_GROUPS_H

#include <stddef.h>
#include <stdint.h>

typedef struct group {
  size_t n, ok;
  double *d;            /* the n durations; sorted when `sorted` */
  size_t dcap;
  uint64_t *oh;         /* open addressing: output hash (0 = empty slot) ... */
  uint32_t *oc;         /* ... and its count */
  uint32_t ocap, distinct;
  size_t untracked;     /* successful runs whose output was not counted (past max_outputs) */
  int sorted;
} group_t;

typedef struct groups {
  group_t *g;
  size_t count, cap;
  uint32_t max_outputs; /* distinct outputs counted per group */
} groups_t;

void groups_init(groups_t *s, uint32_t max_outputs);
void groups_free(groups_t *s);
/* Adds a run to group i (0-based; i == count makes a new group). Returns 0, or -1 when memory
 * ran out or i > count. */
int groups_add(groups_t *s, size_t i, double duration_ms, int success, uint64_t output_hash);
/* The count of the most common output of group i. */
uint32_t groups_top(const groups_t *s, size_t i);
/* Sorts group i's durations (once) and returns them. */
const double *groups_sorted(groups_t *s, size_t i);

#endif
