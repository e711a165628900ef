/* lalloc.c - a small-block allocator for each Lua state.
 *
 * A run makes and drops a few dozen small objects (tables, closures, strings, hash parts).
 * Through malloc each pair cost about 200 instructions, most of them in free's slow path,
 * because the collector frees in bulk and overflows malloc's per-thread caches. Here each
 * state keeps a free list per 16-byte size class, carved from 64 KB chunks, with no lock
 * (a state is used by one thread at a time). Larger blocks go to malloc.
 *
 * Lua passes the current size of every block it resizes or frees, so blocks need no
 * header. The rule that keeps this sound: a small block is always at least as large as
 * the class of its current size. Growing moves a block; shrinking within the pools keeps
 * it in place (it then serves a smaller class when freed). Chunks return to the system
 * when the state closes; until then freed blocks are reused, so memory follows the most
 * that was live at once.
 *
 * Under AddressSanitizer states use malloc alone, so it still sees every bad access. */
#include "lalloc.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define LALLOC_POOLS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LALLOC_POOLS 0
#endif
#endif
#ifndef LALLOC_POOLS
#define LALLOC_POOLS 1
#endif

#define CLASS_BYTES 16
#define SMALL_MAX 512
#define CLASSES (SMALL_MAX / CLASS_BYTES)
#define CHUNK_BYTES (64 * 1024)
#define CHUNK_HEADER 16 /* keeps blocks 16-byte aligned; holds the next-chunk link */

typedef struct pools {
  void *free_list[CLASSES + 1]; /* by class, 1..CLASSES; each block's first word links on */
  char *bump, *bump_end;        /* the unused rest of the newest chunk */
  void *chunks;                 /* the chunks, linked through their first word */
  int warnings_on;              /* warn("@on") / warn("@off") */
  int warning_continues;        /* inside a multi-part warning */
} pools_t;

static size_t class_of(size_t n) {
  return (n + CLASS_BYTES - 1) / CLASS_BYTES;
}

static void *small_get(pools_t *p, size_t c) {
  void *b = p->free_list[c];
  size_t bytes = c * CLASS_BYTES;
  if (b != NULL) {
    memcpy(&p->free_list[c], b, sizeof(void *));
    return b;
  }
  if ((size_t)(p->bump_end - p->bump) < bytes) {
    char *chunk = malloc(CHUNK_BYTES);
    if (chunk == NULL) return NULL;
    memcpy(chunk, &p->chunks, sizeof(void *));
    p->chunks = chunk;
    p->bump = chunk + CHUNK_HEADER;
    p->bump_end = chunk + CHUNK_BYTES;
  }
  b = p->bump;
  p->bump += bytes;
  return b;
}

/* Frees a block of Lua size `size` (never NULL). */
static void release(pools_t *p, void *block, size_t size) {
  if (size > SMALL_MAX) {
    free(block);
    return;
  }
  size_t c = class_of(size);
  memcpy(block, &p->free_list[c], sizeof(void *));
  p->free_list[c] = block;
}

static void *pool_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  pools_t *p = ud;
  void *block;
  if (ptr == NULL) osize = 0; /* osize then tells the kind of object, not a size */
  if (nsize == 0) {
    if (ptr != NULL) release(p, ptr, osize);
    return NULL;
  }
  if (nsize > SMALL_MAX) {
    if (ptr != NULL && osize > SMALL_MAX) return realloc(ptr, nsize);
    block = malloc(nsize);
  } else if (ptr != NULL && osize > 0 && class_of(nsize) <= class_of(osize) && osize <= SMALL_MAX) {
    return ptr; /* a shrink within the pools stays in place */
  } else {
    block = small_get(p, class_of(nsize));
    /* Lua assumes a shrink never fails. A malloc block shrunk below SMALL_MAX with no
     * chunk to move to stays where it is, larger than any class: the pools adopt it. */
    if (block == NULL && ptr != NULL && osize > nsize) return ptr;
  }
  if (block == NULL) return NULL;
  if (ptr != NULL) {
    memcpy(block, ptr, osize < nsize ? osize : nsize);
    release(p, ptr, osize);
  }
  return block;
}

static int panic(lua_State *L) {
  const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error object is not a string";
  fprintf(stderr, "PANIC: unprotected error in call to Lua API (%s)\n", msg);
  fflush(stderr);
  return 0; /* Lua aborts */
}

/* Lua's warn(): off until "@on", as with luaL_newstate; a message may come in parts. */
static void warning(void *ud, const char *msg, int tocont) {
  pools_t *p = ud;
  if (!p->warning_continues && !tocont && msg[0] == '@') {
    if (strcmp(msg, "@on") == 0) p->warnings_on = 1;
    else if (strcmp(msg, "@off") == 0) p->warnings_on = 0;
    return;
  }
  if (p->warnings_on) {
    if (!p->warning_continues) fputs("Lua warning: ", stderr);
    fputs(msg, stderr);
    if (!tocont) fputs("\n", stderr);
    fflush(stderr);
  }
  p->warning_continues = tocont;
}

lua_State *lalloc_newstate(void) {
  if (!LALLOC_POOLS) return luaL_newstate();
  pools_t *p = calloc(1, sizeof *p);
  if (p == NULL) return NULL;
  lua_State *L = lua_newstate(pool_alloc, p);
  if (L == NULL) {
    free(p);
    return NULL;
  }
  lua_atpanic(L, panic);
  lua_setwarnf(L, warning, p);
  return L;
}

void lalloc_close(lua_State *L) {
  void *ud = NULL;
  int pooled = lua_getallocf(L, &ud) == pool_alloc;
  lua_close(L);
  if (!pooled) return;
  pools_t *p = ud;
  while (p->chunks != NULL) {
    void *next;
    memcpy(&next, p->chunks, sizeof next);
    free(p->chunks);
    p->chunks = next;
  }
  free(p);
}
