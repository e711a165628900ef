/* plan.c - an experiment's inputs as JSON texts in one buffer, with offsets. */
#include "plan.h"

#include <stdlib.h>
#include <string.h>

struct plan {
  char *text;     /* every entry's JSON, one after the other */
  size_t len, cap;
  size_t *start;  /* start[i]: where entry i begins; entry i ends where i + 1 begins */
  size_t n, ncap;
  int refs;       /* changed with __atomic builtins */
};

plan_t *plan_new(void) {
  plan_t *p = calloc(1, sizeof *p);
  if (p != NULL) p->refs = 1;
  return p;
}

void plan_retain(plan_t *p) { __atomic_add_fetch(&p->refs, 1, __ATOMIC_ACQ_REL); }

void plan_release(plan_t *p) {
  if (p == NULL || __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
  free(p->text);
  free(p->start);
  free(p);
}

/* Grows to hold `need` (doubling: appends stay amortised O(1)). */
static int reserve(void **data, size_t *cap, size_t need, size_t size) {
  size_t c = *cap ? *cap : 64;
  void *grown;
  if (need <= *cap) return 0;
  while (c < need) c *= 2;
  grown = realloc(*data, c * size);
  if (grown == NULL) return -1;
  *data = grown;
  *cap = c;
  return 0;
}

int plan_add(plan_t *p, const char *json, size_t len) {
  if (reserve((void **)&p->text, &p->cap, p->len + len, 1) != 0) return -1;
  if (reserve((void **)&p->start, &p->ncap, p->n + 2, sizeof *p->start) != 0) return -1;
  memcpy(p->text + p->len, json, len);
  p->start[p->n] = p->len;
  p->len += len;
  p->n++;
  p->start[p->n] = p->len; /* the end of the last entry */
  return 0;
}

size_t plan_count(const plan_t *p) { return p->n; }

const char *plan_get(const plan_t *p, size_t i, size_t *len) {
  if (i >= p->n) return NULL;
  *len = p->start[i + 1] - p->start[i];
  return p->text + p->start[i];
}

static uint64_t fnv1a(uint64_t h, const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < n; i++) {
    h ^= u[i];
    h *= 1099511628211ULL;
  }
  return h;
}

uint64_t plan_hash(const plan_t *p, const char *prefix, size_t plen, const char *suffix, size_t slen) {
  uint64_t h = fnv1a(1469598103934665603ULL, prefix, plen);
  for (size_t i = 0; i < p->n; i++) {
    if (i > 0) h = fnv1a(h, ",", 1);
    h = fnv1a(h, p->text + p->start[i], p->start[i + 1] - p->start[i]);
  }
  return fnv1a(h, suffix, slen);
}
