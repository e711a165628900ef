/* ltasks.c - the fluxloop.tasks module: runs a Lua handler over a list of jobs in N threads,
 * each thread with its own lua_State (as fluxloop.pool does for runs), for work that waits on
 * the network, such as `fluxloop generate inputs`' chat requests. Jobs and results cross
 * between states only as copied strings. */
#include <lauxlib.h>
#include <lua.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "guard.h"
#include "host.h"
#include "lalloc.h"

/* Threads still busy this long after the interrupt deadline are left behind. */
#define STRAGGLER_NS (1000LL * 1000000)
#define MAX_WORKERS 1024

typedef struct text {
  char *s;
  size_t n;
} text_t;

typedef struct tasks tasks_t;

typedef struct worker {
  tasks_t *t;
  pthread_t thread;
  int started;
  int finished; /* under t->lock */
  char *error;  /* the handler could not be made: nothing more is handed out */
} worker_t;

struct tasks {
  text_t *jobs, *results, *errors;
  int64_t njobs;
  int64_t next;      /* jobs handed out (__atomic) */
  int64_t completed; /* jobs done (__atomic) */
  int stop;          /* a worker failed (__atomic) */
  char *module, *fn, *setup, *path, *cpath;
  size_t setup_len;
  int nworkers;
  worker_t *workers;
  pthread_mutex_t lock;
  pthread_cond_t changed;
};

static int copy_text(text_t *dst, const char *s, size_t n) {
  dst->s = malloc(n + 1);
  if (dst->s == NULL) return -1;
  memcpy(dst->s, s, n);
  dst->s[n] = '\0';
  dst->n = n;
  return 0;
}

/* ---- inside a worker's state ------------------------------------------------ */

/* Runs one job: the handler is at index 1. Stack after: nothing of its own. */
static void run_job(lua_State *L, tasks_t *t, int64_t i) {
  const char *s;
  size_t n;
  lua_pushvalue(L, 1);
  lua_pushlstring(L, t->jobs[i].s, t->jobs[i].n);
  if (host_pcall(L, 1, 2) != LUA_OK) { /* a raise: kept with its traceback */
    s = lua_tolstring(L, -1, &n);
    if (s == NULL) s = "the handler raised a non-string error", n = strlen(s);
    if (copy_text(&t->errors[i], s, n) != 0) t->errors[i].s = NULL;
    lua_pop(L, 1);
    return;
  }
  if (lua_type(L, -2) == LUA_TSTRING) { /* result, nil */
    s = lua_tolstring(L, -2, &n);
    copy_text(&t->results[i], s, n);
  } else { /* nil, message */
    s = luaL_tolstring(L, -1, &n);
    copy_text(&t->errors[i], s, n);
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
}

/* The body of a worker: handler = require(module)[fn](setup), then jobs until none are left. */
static int worker_pmain(lua_State *L) {
  worker_t *w = lua_touserdata(L, 1);
  tasks_t *t = w->t;
  lua_settop(L, 0);
  host_open(L, 0, NULL);
  lua_getglobal(L, "package");
  lua_pushstring(L, t->path);
  lua_setfield(L, -2, "path");
  lua_pushstring(L, t->cpath);
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
  lua_getglobal(L, "require");
  lua_pushstring(L, t->module);
  lua_call(L, 1, 1);
  lua_getfield(L, -1, t->fn);
  lua_pushlstring(L, t->setup, t->setup_len);
  lua_call(L, 1, 1);
  if (!lua_isfunction(L, -1)) return luaL_error(L, "%s.%s(setup) must return a function", t->module, t->fn);
  lua_replace(L, 1);
  lua_settop(L, 1);
  for (;;) {
    int64_t i;
    if (guard_interrupted() || __atomic_load_n(&t->stop, __ATOMIC_ACQUIRE)) break;
    i = __atomic_fetch_add(&t->next, 1, __ATOMIC_ACQ_REL);
    if (i >= t->njobs) break;
    run_job(L, t, i);
    __atomic_add_fetch(&t->completed, 1, __ATOMIC_ACQ_REL);
    lua_gc(L, LUA_GCSTEP, 0);
  }
  return 0;
}

static void *worker_thread(void *arg) {
  worker_t *w = arg;
  tasks_t *t = w->t;
  char *error = NULL;
  lua_State *L = lalloc_newstate();
  if (L == NULL) {
    error = strdup("cannot create a Lua state: not enough memory");
  } else {
    lua_pushcfunction(L, worker_pmain);
    lua_pushlightuserdata(L, w);
    if (host_pcall(L, 1, 0) != LUA_OK) {
      const char *msg = lua_tostring(L, -1);
      error = strdup(msg ? msg : "a worker failed");
    }
    lalloc_close(L);
  }
  pthread_mutex_lock(&t->lock);
  if (error) {
    w->error = error;
    __atomic_store_n(&t->stop, 1, __ATOMIC_RELEASE);
  }
  w->finished = 1;
  pthread_cond_broadcast(&t->changed);
  pthread_mutex_unlock(&t->lock);
  return NULL;
}

/* ---- in the calling state ------------------------------------------------------ */

static void free_texts(text_t *list, int64_t n) {
  if (list == NULL) return;
  for (int64_t i = 0; i < n; i++) free(list[i].s);
  free(list);
}

static void tasks_free(tasks_t *t) {
  free_texts(t->jobs, t->njobs);
  free_texts(t->results, t->njobs);
  free_texts(t->errors, t->njobs);
  for (int i = 0; i < t->nworkers; i++) free(t->workers[i].error);
  free(t->workers);
  free(t->module);
  free(t->fn);
  free(t->setup);
  free(t->path);
  free(t->cpath);
  pthread_cond_destroy(&t->changed);
  pthread_mutex_destroy(&t->lock);
  free(t);
}

/* A string field of the options table (at index 1), copied; def when absent. The fields
 * were checked by check_opts, so nothing here raises. */
static char *opt_string(lua_State *L, const char *key, const char *def, size_t *len) {
  size_t n = 0;
  const char *s = def;
  char *copy;
  if (lua_getfield(L, 1, key) == LUA_TSTRING) s = lua_tolstring(L, -1, &n);
  else n = strlen(def);
  copy = malloc(n + 1);
  if (copy) memcpy(copy, s, n + 1);
  if (len) *len = n;
  lua_pop(L, 1);
  return copy;
}

/* Raises on misuse, before anything is allocated. Returns the number of workers. */
static int check_opts(lua_State *L) {
  static const char *const strings[] = { "module", "setup", "fn", "path", "cpath" };
  lua_Integer n;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_getfield(L, 1, "workers");
  n = luaL_checkinteger(L, -1);
  luaL_argcheck(L, n >= 1 && n <= MAX_WORKERS, 1, "workers must be 1..1024");
  lua_pop(L, 1);
  for (int i = 0; i < 5; i++) {
    int type = lua_getfield(L, 1, strings[i]);
    if (type != LUA_TSTRING && (i < 2 || type != LUA_TNIL)) luaL_error(L, "tasks.map: %s must be a string", strings[i]);
    lua_pop(L, 1);
  }
  if (lua_getfield(L, 1, "jobs") != LUA_TTABLE) luaL_error(L, "tasks.map: jobs must be a list of strings");
  for (lua_Integer i = 1, len = luaL_len(L, -1); i <= len; i++) {
    if (lua_rawgeti(L, -1, i) != LUA_TSTRING) luaL_error(L, "tasks.map: jobs[%d] is not a string", (int)i);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return (int)n;
}

/* Reads opts.jobs (a list of strings, checked) into t. */
static int read_jobs(lua_State *L, tasks_t *t) {
  size_t count;
  lua_getfield(L, 1, "jobs");
  t->njobs = (int64_t)luaL_len(L, -1);
  count = (size_t)(t->njobs ? t->njobs : 1);
  t->jobs = calloc(count, sizeof *t->jobs);
  t->results = calloc(count, sizeof *t->results);
  t->errors = calloc(count, sizeof *t->errors);
  if (!t->jobs || !t->results || !t->errors) return -1;
  for (int64_t i = 0; i < t->njobs; i++) {
    size_t n;
    const char *s;
    lua_rawgeti(L, -1, (lua_Integer)(i + 1));
    s = lua_tolstring(L, -1, &n);
    if (copy_text(&t->jobs[i], s, n) != 0) return -1;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return 0;
}

/* Waits for the workers, calling on_progress (at the top of the stack, or nil) about ten
 * times a second. Returns how many were left behind after an interruption. */
static int wait_workers(lua_State *L, tasks_t *t) {
  int left = 0;
  pthread_mutex_lock(&t->lock);
  for (;;) {
    struct timespec until;
    int done_workers = 0;
    int64_t stop_at = guard_interrupt_deadline();
    for (int i = 0; i < t->nworkers; i++) done_workers += t->workers[i].finished;
    if (done_workers == t->nworkers) break;
    if (stop_at && clock_mono_ns() > stop_at + STRAGGLER_NS) { left = t->nworkers - done_workers; break; }
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 100 * 1000000;
    if (until.tv_nsec >= 1000000000) { until.tv_sec++; until.tv_nsec -= 1000000000; }
    pthread_cond_timedwait(&t->changed, &t->lock, &until);
    if (lua_isfunction(L, -1)) {
      int64_t handed = __atomic_load_n(&t->next, __ATOMIC_ACQUIRE);
      int64_t done = __atomic_load_n(&t->completed, __ATOMIC_ACQUIRE);
      if (handed > t->njobs) handed = t->njobs;
      pthread_mutex_unlock(&t->lock); /* the callback may take its time */
      lua_pushvalue(L, -1);
      lua_pushinteger(L, (lua_Integer)done);
      lua_pushinteger(L, (lua_Integer)(handed - done));
      lua_call(L, 2, 0);
      pthread_mutex_lock(&t->lock);
    }
  }
  pthread_mutex_unlock(&t->lock);
  return left;
}

/* Pushes results and errors: two tables indexed like jobs (holes where there is none). */
static void push_outcome(lua_State *L, tasks_t *t) {
  lua_createtable(L, (int)t->njobs, 0);
  lua_createtable(L, 0, 0);
  for (int64_t i = 0; i < t->njobs; i++) {
    if (t->results[i].s) {
      lua_pushlstring(L, t->results[i].s, t->results[i].n);
      lua_rawseti(L, -3, (lua_Integer)(i + 1));
    } else if (t->errors[i].s) {
      lua_pushlstring(L, t->errors[i].s, t->errors[i].n);
      lua_rawseti(L, -2, (lua_Integer)(i + 1));
    }
  }
}

/* map{ module = "name", fn = "worker" (default), setup = string, jobs = {string, ...},
 *      workers = N, path = package.path, cpath = package.cpath,
 *      on_progress = function(done, in_flight) end }
 *   -> results, errors, done | nil, message
 * Each thread calls require(module)[fn](setup) once for its handler, then handler(job)
 * for the jobs it takes: a string result goes to results[i]; `nil, message` or a raise
 * (with its traceback) to errors[i]. done counts the jobs finished: fewer than #jobs after
 * Ctrl-C (nothing more is handed out). A handler that cannot be made stops the whole map. */
static int tasks_map(lua_State *L) {
  tasks_t *t;
  int n = check_opts(L), left;
  char *first_error = NULL;
  t = calloc(1, sizeof *t);
  if (t == NULL) return luaL_error(L, "not enough memory");
  pthread_mutex_init(&t->lock, NULL);
  pthread_cond_init(&t->changed, NULL);
  t->module = opt_string(L, "module", "", NULL);
  t->fn = opt_string(L, "fn", "worker", NULL);
  t->setup = opt_string(L, "setup", "", &t->setup_len);
  t->path = opt_string(L, "path", "", NULL);
  t->cpath = opt_string(L, "cpath", "", NULL);
  t->workers = calloc((size_t)n, sizeof *t->workers);
  if (!t->module || !t->fn || !t->setup || !t->path || !t->cpath || !t->workers || read_jobs(L, t) != 0) {
    tasks_free(t);
    return luaL_error(L, "not enough memory");
  }
  if (n > t->njobs) n = t->njobs > 0 ? (int)t->njobs : 1;
  t->nworkers = n;
  lua_getfield(L, 1, "on_progress"); /* top: the callback or nil */

  for (int i = 0; i < n; i++) {
    worker_t *w = &t->workers[i];
    w->t = t;
    if (pthread_create(&w->thread, NULL, worker_thread, w) != 0) {
      w->finished = 1;
      w->error = strdup("cannot start a thread");
      __atomic_store_n(&t->stop, 1, __ATOMIC_RELEASE);
    } else {
      w->started = 1;
    }
  }
  left = wait_workers(L, t);
  if (left > 0) { /* threads inside a request past the grace period: t stays theirs */
    for (int i = 0; i < n; i++) if (t->workers[i].started) pthread_detach(t->workers[i].thread);
    lua_pushnil(L);
    lua_pushfstring(L, "interrupted: %d thread(s) did not stop in time", left);
    return 2;
  }
  for (int i = 0; i < n; i++) if (t->workers[i].started) pthread_join(t->workers[i].thread, NULL);
  for (int i = 0; i < n && first_error == NULL; i++) first_error = t->workers[i].error;
  if (first_error) {
    lua_pushnil(L);
    lua_pushstring(L, first_error);
    tasks_free(t);
    return 2;
  }
  push_outcome(L, t);
  lua_pushinteger(L, (lua_Integer)__atomic_load_n(&t->completed, __ATOMIC_ACQUIRE));
  tasks_free(t);
  return 3;
}

int luaopen_fluxloop_tasks(lua_State *L); /* the module's only export */
int luaopen_fluxloop_tasks(lua_State *L) {
  static const luaL_Reg funcs[] = { { "map", tasks_map }, { NULL, NULL } };
  luaL_newlib(L, funcs);
  return 1;
}
