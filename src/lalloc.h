/* lalloc.h - the Lua states of fluxloop (main, workers, the test interpreter), each with
 * its own small-block allocator. */
#ifndef FLUXLOOP_LALLOC_H
#define FLUXLOOP_LALLOC_H

#include <lua.h>

/* Like luaL_newstate (same panic handler; warnings off until "@on"), but blocks of up to
 * 512 bytes come from the state's own pools. NULL when out of memory. A state must be
 * used by one thread at a time, as every Lua state must. */
lua_State *lalloc_newstate(void);

/* lua_close, then frees the state's pools. */
void lalloc_close(lua_State *L);

#endif
