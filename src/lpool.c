/* lpool.c - the fluxloop.pool module: N worker threads, each with its own lua_State that
 * runs fluxloop.worker, taking trace numbers from a shared counter and writing through
 * the shared sink. Values cross between states only as copied strings. */
#include <lauxlib.h>
#include <lua.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "guard.h"
#include "host.h"
#include "lalloc.h"

#define POOL_KEY "fluxloop.pool"
/* Workers still busy this long after the grace period are left behind (native code
 * cannot be stopped); the experiment ends without them. */
#define STRAGGLER_NS (1000LL * 1000000)

typedef struct pool pool_t;

typedef struct worker {
  pool_t *pool;
  int index;          /* 1-based */
  pthread_t thread;
  int started;
  int finished;       /* set under pool->lock */
  char *error;        /* malloc'd message when the worker's script failed */
  int not_started;    /* its agent did not start: error says why, and the others go on */
} worker_t;

struct pool {
  int64_t total;      /* runs 1..total, in the order the files take them */
  int64_t *ks;        /* the trace number of each run (a resume has gaps), or NULL: k = seq */
  int64_t next;       /* next trace number to hand out (__atomic) */
  int64_t completed;  /* runs finished (__atomic) */
  int stop;           /* a worker failed: hand out nothing more (__atomic) */
  void *sink;         /* light userdata handed to worker states */
  char *setup, *path, *cpath;
  char *module;       /* the Lua module each worker runs (its main(setup, index)) */
  size_t setup_len;
  int nworkers;
  worker_t *workers;
  pthread_mutex_t lock;
  pthread_cond_t changed;
};

/* ---- inside a worker state ------------------------------------------- */

static pool_t *worker_pool(lua_State *L) {
  pool_t *p;
  lua_getfield(L, LUA_REGISTRYINDEX, POOL_KEY);
  p = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (p == NULL) luaL_error(L, "fluxloop.pool: not inside a worker");
  return p;
}

/* next() -> k, seq | nil: the next run's trace number and its place in the files, or nil
 * when all are handed out, a worker failed, or Ctrl-C was pressed. */
static int pool_next(lua_State *L) {
  pool_t *p = worker_pool(L);
  int64_t seq;
  if (guard_interrupted() || __atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) return 0;
  seq = __atomic_add_fetch(&p->next, 1, __ATOMIC_ACQ_REL);
  if (seq > p->total) return 0;
  lua_pushinteger(L, (lua_Integer)(p->ks ? p->ks[seq - 1] : seq));
  lua_pushinteger(L, (lua_Integer)seq);
  return 2;
}

/* completed(): one run finished (for the in-flight count of the progress line). */
static int pool_completed(lua_State *L) {
  pool_t *p = worker_pool(L);
  __atomic_add_fetch(&p->completed, 1, __ATOMIC_ACQ_REL);
  lua_pushboolean(L, 1);
  return 1;
}

/* sink() -> the shared sink, for recorder.attach. */
static int pool_sink(lua_State *L) {
  lua_pushlightuserdata(L, worker_pool(L)->sink);
  return 1;
}

static void worker_done(worker_t *w, const char *error) {
  pool_t *p = w->pool;
  pthread_mutex_lock(&p->lock);
  if (error) {
    w->error = strdup(error);
    if (!w->not_started) __atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
  }
  w->finished = 1;
  pthread_cond_broadcast(&p->changed);
  pthread_mutex_unlock(&p->lock);
}

/* Runs in the worker's own state: require(module).main(setup, index); the module is
 * fluxloop.worker (runs of an experiment) unless run{} named another (fluxloop.grade.worker). */
static int worker_pmain(lua_State *L) {
  worker_t *w = lua_touserdata(L, 1);
  pool_t *p = w->pool;
  host_open(L, 0, NULL);
  lua_getglobal(L, "package");
  lua_pushstring(L, p->path);
  lua_setfield(L, -2, "path");
  lua_pushstring(L, p->cpath);
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
  lua_pushlightuserdata(L, p);
  lua_setfield(L, LUA_REGISTRYINDEX, POOL_KEY);
  lua_getglobal(L, "require");
  lua_pushstring(L, p->module);
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "main");
  lua_pushlstring(L, p->setup, p->setup_len);
  lua_pushinteger(L, w->index);
  lua_call(L, 2, 2);
  /* main returns true, or nil and a message (a write failure): the message is returned,
   * not raised, so it reaches the user without a traceback of this function. false and a
   * message: this worker's agent did not start (it took no run). */
  if (!lua_toboolean(L, -2)) {
    w->not_started = lua_isboolean(L, -2);
    if (!lua_isstring(L, -1)) lua_pushliteral(L, "worker failed");
    return 1;
  }
  return 0;
}

static void *worker_thread(void *arg) {
  worker_t *w = arg;
  lua_State *L = lalloc_newstate();
  if (L == NULL) { worker_done(w, "cannot create a Lua state: not enough memory"); return NULL; }
  lua_pushcfunction(L, worker_pmain);
  lua_pushlightuserdata(L, w);
  if (host_pcall(L, 1, 1) != LUA_OK) { /* a raise: a bug, so its traceback helps */
    worker_done(w, lua_tostring(L, -1) ? lua_tostring(L, -1) : "worker failed");
  } else {
    worker_done(w, lua_tostring(L, -1)); /* NULL when the worker finished its share */
  }
  lalloc_close(L); /* releases the worker's recorder and its reference to the sink */
  return NULL;
}

/* ---- in the main state ------------------------------------------------ */

static void pool_free(pool_t *p) {
  for (int i = 0; i < p->nworkers; i++) free(p->workers[i].error);
  free(p->ks);
  free(p->workers);
  free(p->setup);
  free(p->path);
  free(p->cpath);
  free(p->module);
  pthread_cond_destroy(&p->changed);
  pthread_mutex_destroy(&p->lock);
  free(p);
}

static char *dup_field(lua_State *L, int t, const char *key, size_t *len) {
  size_t n;
  const char *s;
  lua_getfield(L, t, key);
  s = luaL_checklstring(L, -1, &n);
  char *copy = malloc(n + 1);
  if (copy) memcpy(copy, s, n + 1);
  if (len) *len = n;
  lua_pop(L, 1);
  return copy;
}

/* Whether some worker's agent started (the others' runs were theirs to do). */
static int started_any(const pool_t *p) {
  for (int i = 0; i < p->nworkers; i++) if (!p->workers[i].not_started) return 1;
  return 0;
}

/* Counts the workers that have finished (under lock). */
static int finished_count(pool_t *p) {
  int n = 0;
  for (int i = 0; i < p->nworkers; i++) n += p->workers[i].finished;
  return n;
}

/* run{ workers = N, total = runs, ks = {trace numbers} (optional: 1..total), sink = rec:sink(),
 *      setup = string, path = package.path, cpath = package.cpath, module = "fluxloop.worker",
 *      on_progress = function(done, in_flight) end }
 *   -> { left_behind = n, not_started = {messages} } | nil, message [, "not_started"]
 * Starts N workers and waits for them, calling on_progress about ten times a second. A
 * worker whose agent does not start takes no run and stops nobody (not_started says why);
 * when none starts, that is the error (the first worker's message, and "not_started": no
 * run ran, which is no failure to write results).
 * After Ctrl-C, workers get the grace period to finish their runs; any still busy a
 * second later is left behind (it is inside native code). */
static int pool_run(lua_State *L) {
  pool_t *p;
  int n, left = 0, none_started = 0;
  char *first_error = NULL;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "workers");
  n = (int)luaL_checkinteger(L, -1);
  luaL_argcheck(L, n >= 1 && n <= 1024, 1, "workers must be 1..1024");
  lua_getfield(L, 1, "total");
  lua_getfield(L, 1, "sink");
  luaL_checktype(L, -1, LUA_TLIGHTUSERDATA);
  p = calloc(1, sizeof *p);
  if (p == NULL) return luaL_error(L, "not enough memory");
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->changed, NULL);
  p->total = (int64_t)luaL_checkinteger(L, -2);
  p->sink = lua_touserdata(L, -1);
  lua_pop(L, 3);
  p->setup = dup_field(L, 1, "setup", &p->setup_len);
  p->path = dup_field(L, 1, "path", NULL);
  p->cpath = dup_field(L, 1, "cpath", NULL);
  {
    const char *module = lua_getfield(L, 1, "module") == LUA_TNIL ? "fluxloop.worker" : luaL_checkstring(L, -1);
    p->module = strdup(module);
    lua_pop(L, 1);
  }
  p->workers = calloc((size_t)n, sizeof *p->workers);
  if (!p->setup || !p->path || !p->cpath || !p->module || !p->workers) { pool_free(p); return luaL_error(L, "not enough memory"); }
  p->nworkers = n;
  if (lua_getfield(L, 1, "ks") == LUA_TTABLE) {
    int64_t count = (int64_t)luaL_len(L, -1);
    luaL_argcheck(L, count == p->total, 1, "ks must hold `total` trace numbers");
    p->ks = malloc((size_t)(count > 0 ? count : 1) * sizeof *p->ks);
    if (p->ks == NULL) { pool_free(p); return luaL_error(L, "not enough memory"); }
    for (int64_t i = 0; i < count; i++) {
      lua_rawgeti(L, -1, (lua_Integer)(i + 1));
      p->ks[i] = (int64_t)lua_tointeger(L, -1);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  lua_getfield(L, 1, "on_progress"); /* stack top: progress callback or nil */

  for (int i = 0; i < n; i++) {
    worker_t *w = &p->workers[i];
    w->pool = p;
    w->index = i + 1;
    if (pthread_create(&w->thread, NULL, worker_thread, w) != 0) {
      w->finished = 1;
      w->error = strdup("cannot start a worker thread");
      __atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
    } else {
      w->started = 1;
    }
  }

  pthread_mutex_lock(&p->lock);
  for (;;) {
    struct timespec until;
    int64_t now = clock_mono_ns(), stop_at = guard_interrupt_deadline();
    if (finished_count(p) == n) break;
    if (stop_at && now > stop_at + STRAGGLER_NS) { left = n - finished_count(p); break; }
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 100 * 1000000;
    if (until.tv_nsec >= 1000000000) { until.tv_sec++; until.tv_nsec -= 1000000000; }
    pthread_cond_timedwait(&p->changed, &p->lock, &until);
    if (lua_isfunction(L, -1)) {
      int64_t handed = __atomic_load_n(&p->next, __ATOMIC_ACQUIRE);
      int64_t done = __atomic_load_n(&p->completed, __ATOMIC_ACQUIRE);
      if (handed > p->total) handed = p->total;
      pthread_mutex_unlock(&p->lock); /* the callback may take its time */
      lua_pushvalue(L, -1);
      lua_pushinteger(L, (lua_Integer)done);
      lua_pushinteger(L, (lua_Integer)(handed - done));
      lua_call(L, 2, 0);
      pthread_mutex_lock(&p->lock);
    }
  }
  for (int i = 0; i < n; i++) {
    worker_t *w = &p->workers[i];
    if (w->error && !w->not_started && first_error == NULL) first_error = w->error;
  }
  if (first_error == NULL && !started_any(p)) { /* none started */
    first_error = p->workers[0].error;
    none_started = 1;
  }
  pthread_mutex_unlock(&p->lock);

  if (left == 0) {
    for (int i = 0; i < n; i++) if (p->workers[i].started) pthread_join(p->workers[i].thread, NULL);
    if (first_error) {
      lua_pushnil(L);
      lua_pushstring(L, first_error);
      if (none_started) lua_pushliteral(L, "not_started");
      pool_free(p);
      return 2 + none_started;
    }
  } else {
    /* Threads still inside native code keep using p; it is left for the process exit. */
    for (int i = 0; i < n; i++) if (p->workers[i].started) pthread_detach(p->workers[i].thread);
  }
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, left);
  lua_setfield(L, -2, "left_behind");
  lua_newtable(L); /* why each worker that did not start did not */
  for (int i = 0, k = 0; i < n; i++) {
    if (!p->workers[i].not_started || !p->workers[i].error) continue;
    lua_pushstring(L, p->workers[i].error);
    lua_rawseti(L, -2, ++k);
  }
  lua_setfield(L, -2, "not_started");
  if (left == 0) pool_free(p);
  return 1;
}

static const luaL_Reg pool_funcs[] = {
  { "run", pool_run },
  { "next", pool_next },
  { "completed", pool_completed },
  { "sink", pool_sink },
  { NULL, NULL }
};

int luaopen_fluxloop_pool(lua_State *L); /* the module's only export */
int luaopen_fluxloop_pool(lua_State *L) {
  luaL_newlib(L, pool_funcs);
  return 1;
}
