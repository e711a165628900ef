/* groups.c - compact per-group run aggregates: about 40 bytes a group plus 8 a run and 12 a
 * counted output, so a report over 100,000 inputs fits in tens of MB. */
#include "groups.h"

#include <stdlib.h>
#include <string.h>

void groups_init(groups_t *s, uint32_t max_outputs) {
  s->g = NULL;
  s->count = s->cap = 0;
  s->max_outputs = max_outputs;
}

void groups_free(groups_t *s) {
  for (size_t i = 0; i < s->count; i++) {
    free(s->g[i].d);
    free(s->g[i].oh);
    free(s->g[i].oc);
  }
  free(s->g);
  groups_init(s, s->max_outputs);
}

/* Grows by half: most groups are small, and doubling would waste a third on average. */
static int grow_durations(group_t *g) {
  size_t cap = g->dcap ? g->dcap + g->dcap / 2 : 4;
  double *p = realloc(g->d, cap * sizeof *p);
  if (p == NULL) return -1;
  g->d = p;
  g->dcap = cap;
  return 0;
}

static int rehash(group_t *g, uint32_t cap) {
  uint64_t *oh = calloc(cap, sizeof *oh);
  uint32_t *oc = calloc(cap, sizeof *oc);
  if (oh == NULL || oc == NULL) { free(oh); free(oc); return -1; }
  for (uint32_t k = 0; k < g->ocap; k++) {
    if (g->oh[k] == 0) continue;
    uint32_t j = (uint32_t)(g->oh[k] & (cap - 1));
    while (oh[j] != 0) j = (j + 1) & (cap - 1);
    oh[j] = g->oh[k];
    oc[j] = g->oc[k];
  }
  free(g->oh);
  free(g->oc);
  g->oh = oh;
  g->oc = oc;
  g->ocap = cap;
  return 0;
}

static int count_output(group_t *g, uint64_t h, uint32_t max_outputs) {
  uint32_t j;
  if (h == 0) h = 1; /* 0 marks an empty slot */
  if (g->ocap == 0 && rehash(g, 4) != 0) return -1;
  j = (uint32_t)(h & (g->ocap - 1));
  while (g->oh[j] != 0) {
    if (g->oh[j] == h) { g->oc[j]++; return 0; }
    j = (j + 1) & (g->ocap - 1);
  }
  if (g->distinct >= max_outputs) { g->untracked++; return 0; }
  /* Keep the table at most half full, so probes stay short. */
  if ((g->distinct + 1) * 2 > g->ocap) {
    if (rehash(g, g->ocap * 2) != 0) return -1;
    j = (uint32_t)(h & (g->ocap - 1));
    while (g->oh[j] != 0) j = (j + 1) & (g->ocap - 1);
  }
  g->oh[j] = h;
  g->oc[j] = 1;
  g->distinct++;
  return 0;
}

int groups_add(groups_t *s, size_t i, double ms, int success, uint64_t h) {
  group_t *g;
  if (i > s->count) return -1;
  if (i == s->count) {
    if (s->count == s->cap) {
      size_t cap = s->cap ? s->cap * 2 : 16;
      group_t *p = realloc(s->g, cap * sizeof *p);
      if (p == NULL) return -1;
      s->g = p;
      s->cap = cap;
    }
    memset(&s->g[s->count++], 0, sizeof(group_t));
  }
  g = &s->g[i];
  if (g->n == g->dcap && grow_durations(g) != 0) return -1;
  g->d[g->n++] = ms;
  g->sorted = 0;
  if (success) {
    g->ok++;
    if (count_output(g, h, s->max_outputs) != 0) return -1;
  }
  return 0;
}

uint32_t groups_top(const groups_t *s, size_t i) {
  const group_t *g = &s->g[i];
  uint32_t top = 0;
  for (uint32_t k = 0; k < g->ocap; k++)
    if (g->oc[k] > top) top = g->oc[k];
  return top;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

const double *groups_sorted(groups_t *s, size_t i) {
  group_t *g = &s->g[i];
  if (!g->sorted && g->n > 1) qsort(g->d, g->n, sizeof *g->d, cmp_double);
  g->sorted = 1;
  return g->d;
}
