/* lrules.h - a fluxloop.rules set seen from C (the recorder grades with it as it writes). */
#ifndef FLUXLOOP_LRULES_H
#define FLUXLOOP_LRULES_H

#include <lua.h>

#include "rules.h"

/* The rules of the fluxloop.rules set at idx, or NULL when the value there is not one. */
rules_t *lrules_to(lua_State *L, int idx);

#endif
