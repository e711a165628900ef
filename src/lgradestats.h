/* lgradestats.h - per-grader figures (gradestats.h) as a Lua table, for every module that
 * reports them (fluxloop.gradestats, the recorder's grades()). */
#ifndef FLUXLOOP_LGRADESTATS_H
#define FLUXLOOP_LGRADESTATS_H

#include <lua.h>

#include "gradestats.h"

/* Pushes a list, graders in first-seen order: { name, graded, passed, failed, errors,
 * scored, score_sum, pass_hat_k = { [k] = share, ... } } (k integer keys, 1..max). */
void lgradestats_push(lua_State *L, gradestats_t *g);

#endif
