/* plan.h - the inputs of an experiment held compactly: each entry as its JSON text in one
 * growing buffer, with offsets, so a million inputs cost their bytes and not a million Lua
 * tables (no Lua here). Shared read-only by worker threads through a reference count. */
#ifndef FLUXLOOP_PLAN_H
#define FLUXLOOP_PLAN_H

#include <stddef.h>
#include <stdint.h>

typedef struct plan plan_t;

plan_t *plan_new(void);
void plan_retain(plan_t *p);
void plan_release(plan_t *p);

/* Appends an entry's JSON text. 0, or -1 when out of memory. */
int plan_add(plan_t *p, const char *json, size_t len);
size_t plan_count(const plan_t *p);
/* Entry i (0-based): its JSON text and length; NULL when i is out of range. */
const char *plan_get(const plan_t *p, size_t i, size_t *len);

/* 64-bit FNV-1a of prefix, the entries' texts joined by ",", then suffix: the hash of the
 * JSON text that holds the entries as an array, computed without building that text. */
uint64_t plan_hash(const plan_t *p, const char *prefix, size_t plen, const char *suffix, size_t slen);

#endif
