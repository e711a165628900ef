/* lstats.h - run statistics as a Lua table, for every module that reports them. */
#ifndef FLUXLOOP_LSTATS_H
#define FLUXLOOP_LSTATS_H

#include <lua.h>

#include "stats.h"

/* Pushes { count, successful, failed, min, mean, p50, p90, p95, p99, max, stddev } (ms). */
void lstats_push(lua_State *L, const stats_summary_t *s);

#endif
