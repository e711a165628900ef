/* ratelimit.c - the experiment's shared request rate and in-flight cap. They live in one
 * MAP_SHARED anonymous page made before workers start, so threads and forked worker
 * processes draw from the same limits. The rate is two rules: an even pace (a place in the
 * schedule is reserved with one compare-and-swap), and a sliding window that remembers when
 * the last N requests really went, so that no window of time ever holds more than the rate
 * allows, however late a worker woke. The window's few lines run under a robust
 * process-shared mutex: a worker killed at any instant (a timeout in --isolate) leaves
 * nothing locked for the others. */
#include "ratelimit.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#include "clock.h"

/* Waits are cut into slices so that a run's time limit or Ctrl-C ends them promptly. */
#define SLICE_NS (20 * 1000000LL)
/* How often a full cap looks for slots held by worker processes that died. */
#define REAP_EVERY_NS (100 * 1000000LL)
/* The window is held this much longer than its length (1/50: 20 ms a second), for what
 * happens between the token and the server's clock: scheduling, the network. The first
 * requests (new connections, a server that was idle) may reach it much later than they
 * went, so the window of each of the first N is held 1/10 longer: a cost paid once. */
#define MARGIN_DIVISOR 50
#define COLD_MARGIN_DIVISOR 10

typedef struct shared {
  pthread_mutex_t lock;  /* guards the window below */
  /* The pace, as a generic cell rate algorithm: tat is the theoretical arrival time of the
   * next request; a request may go at tat - tolerance, and moves tat on by one interval. */
  int64_t tat;           /* monotonic ns (CLOCK_MONOTONIC is the same in every process) */
  int64_t interval_ns;   /* 1e9 / rps; 0: no rate limit */
  int64_t tolerance_ns;  /* (burst - 1) * interval */
  /* The window: at most window_n requests in any window_ns + margin_ns. sent (after the
   * slots) holds when each of the last window_n requests went, a ring from head. */
  int64_t window_ns, margin_ns, cold_margin_ns;
  int64_t taken;         /* places taken since configure */
  int window_n, head, used;
  size_t sent_offset;
  int64_t requests, waited_ns; /* statistics */
  double rps;
  int burst;
  int max_concurrent;    /* 0: no cap */
  int32_t slot_pid[];    /* owner process of each in-flight slot, 0 = free */
} shared_t;

/* The limits are the process's by nature: every worker state and every forked worker must
 * find the same page, so the pointer is the one static here (set before workers start). */
static shared_t *limit = NULL;
static size_t limit_size = 0;

static int64_t *sent_of(shared_t *s) { return (int64_t *)(void *)((char *)s + s->sent_offset); }

/* The window of a rate: R requests in one second; a fractional R holds floor(R) in
 * floor(R)/R seconds (2.5/s: 2 in 0.8 s), a rate under 1 holds 1 in 1/R seconds, and a rate
 * past RATELIMIT_MAX_WINDOW holds that many in a fraction of a second. */
static void window_of(double rps, int *n, int64_t *window_ns) {
  double count = rps < 1 ? 1 : rps > RATELIMIT_MAX_WINDOW ? RATELIMIT_MAX_WINDOW : (double)(int64_t)rps;
  *n = (int)count;
  *window_ns = (int64_t)(count / rps * 1e9);
}

static int init_lock(pthread_mutex_t *m) {
  pthread_mutexattr_t a;
  int rc = pthread_mutexattr_init(&a);
  if (rc == 0) rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  if (rc == 0) rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  if (rc == 0) rc = pthread_mutex_init(m, &a);
  pthread_mutexattr_destroy(&a);
  return rc;
}

static void unmap(void) {
  if (limit == NULL) return;
  pthread_mutex_destroy(&limit->lock);
  munmap(limit, limit_size);
  limit = NULL;
  limit_size = 0;
}

int ratelimit_configure(double rps, int burst, int max_concurrent) {
  shared_t *s;
  size_t size, sent_offset;
  int n = 0;
  int64_t window_ns = 0;
  unmap();
  if (!(rps > 0) && max_concurrent <= 0) return RATELIMIT_OK;
  if (max_concurrent > RATELIMIT_MAX_CONCURRENT) max_concurrent = RATELIMIT_MAX_CONCURRENT;
  if (max_concurrent < 0) max_concurrent = 0;
  if (burst < 1) burst = 1;
  if (rps > 0) window_of(rps, &n, &window_ns);
  sent_offset = sizeof *s + (size_t)max_concurrent * sizeof s->slot_pid[0];
  sent_offset = (sent_offset + 7) & ~(size_t)7;
  size = sent_offset + (size_t)n * sizeof(int64_t);
  s = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (s == MAP_FAILED) return RATELIMIT_NOMEM;
  memset(s, 0, size); /* fresh anonymous pages are zero already; this documents it */
  if (init_lock(&s->lock) != 0) {
    munmap(s, size);
    return RATELIMIT_NOMEM;
  }
  s->sent_offset = sent_offset;
  if (rps > 0) {
    double interval = 1e9 / rps;
    if (interval < 1) interval = 1;
    s->interval_ns = (int64_t)interval;
    s->tolerance_ns = (int64_t)(burst - 1) * s->interval_ns;
    s->rps = rps;
    s->burst = burst;
    s->window_n = n;
    s->window_ns = window_ns;
    s->margin_ns = window_ns / MARGIN_DIVISOR;
    s->cold_margin_ns = window_ns / COLD_MARGIN_DIVISOR;
  }
  s->max_concurrent = max_concurrent;
  limit = s;
  limit_size = size;
  return RATELIMIT_OK;
}

int ratelimit_active(double *rps, int *burst, int *max_concurrent) {
  if (rps) *rps = limit ? limit->rps : 0;
  if (burst) *burst = limit ? limit->burst : 0;
  if (max_concurrent) *max_concurrent = limit ? limit->max_concurrent : 0;
  return limit != NULL;
}

/* Sleeps until `until` (monotonic ns) in slices, asking cancel between them. */
static int sleep_until(int64_t until, ratelimit_cancel_fn cancel, void *ud, int *why) {
  for (;;) {
    int64_t now = clock_mono_ns(), slice;
    int r = cancel ? cancel(ud, now) : 0;
    if (r) { if (why) *why = r; return RATELIMIT_CANCELLED; }
    if (now >= until) return RATELIMIT_OK;
    slice = until - now;
    if (slice > SLICE_NS) slice = SLICE_NS;
    clock_sleep_ms((double)slice / 1e6);
  }
}

/* Takes a place in the window at the time it is now, or says (in *until) when the oldest
 * request of a full window leaves it. 1 when taken. */
static int window_take(shared_t *s, int64_t *until, ratelimit_ticket *ticket) {
  int64_t *sent = sent_of(s), now, margin;
  int taken = 0;
  /* A worker that died holding the lock left at most one time written without its head
   * moved: the window stays valid, so go on. */
  if (pthread_mutex_lock(&s->lock) == EOWNERDEAD) pthread_mutex_consistent(&s->lock);
  now = clock_mono_ns();
  /* sent[head] is the time of place taken - window_n: one of the first window_n or not. */
  margin = s->taken < 2 * (int64_t)s->window_n ? s->cold_margin_ns : s->margin_ns;
  if (s->used == s->window_n && now < sent[s->head] + s->window_ns + margin) {
    *until = sent[s->head] + s->window_ns + margin;
  } else {
    s->taken++;
    sent[s->head] = now;
    if (ticket) {
      ticket->index = s->head;
      ticket->stamp = now;
    }
    s->head = (s->head + 1) % s->window_n;
    if (s->used < s->window_n) s->used++;
    taken = 1;
  }
  pthread_mutex_unlock(&s->lock);
  return taken;
}

int ratelimit_acquire(ratelimit_cancel_fn cancel, void *ud, int64_t *waited_ns, int *why,
                      ratelimit_ticket *ticket) {
  shared_t *s = limit;
  int64_t now, old, base, go_at, start, until;
  int r;
  if (waited_ns) *waited_ns = 0;
  if (ticket) ticket->index = -1;
  if (s == NULL || s->interval_ns == 0) return RATELIMIT_OK;
  /* The pace: reserve the next place of the schedule with one compare-and-swap, then sleep
   * until it. The reservation is made whether or not this request is later cancelled,
   * which only ever errs on the slow side. */
  old = __atomic_load_n(&s->tat, __ATOMIC_ACQUIRE);
  do {
    now = clock_mono_ns();
    base = old > now ? old : now;
    go_at = base - s->tolerance_ns;
  } while (!__atomic_compare_exchange_n(&s->tat, &old, base + s->interval_ns, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE));
  start = now;
  r = go_at > now ? sleep_until(go_at, cancel, ud, why) : RATELIMIT_OK;
  /* The window: a worker that woke late, or a burst, may not crowd the ones before it. */
  while (r == RATELIMIT_OK && !window_take(s, &until, ticket)) r = sleep_until(until, cancel, ud, why);
  now = clock_mono_ns() - start;
  if (waited_ns) *waited_ns = now;
  __atomic_add_fetch(&s->waited_ns, now, __ATOMIC_RELAXED);
  if (r == RATELIMIT_OK) __atomic_add_fetch(&s->requests, 1, __ATOMIC_RELAXED);
  return r;
}

void ratelimit_sent(ratelimit_ticket *ticket) {
  shared_t *s = limit;
  int64_t *sent;
  if (s == NULL || ticket == NULL || ticket->index < 0 || ticket->index >= s->window_n) return;
  sent = sent_of(s);
  if (pthread_mutex_lock(&s->lock) == EOWNERDEAD) pthread_mutex_consistent(&s->lock);
  /* Only while the place still holds this request's time: else a later one took it. */
  if (sent[ticket->index] == ticket->stamp) {
    int64_t now = clock_mono_ns();
    if (now > ticket->stamp) sent[ticket->index] = ticket->stamp = now;
  }
  pthread_mutex_unlock(&s->lock);
}

/* Frees the slots whose owner process is gone (killed while its request was in flight). */
static void reap_dead(shared_t *s) {
  pid_t self = getpid();
  for (int i = 0; i < s->max_concurrent; i++) {
    int32_t pid = __atomic_load_n(&s->slot_pid[i], __ATOMIC_ACQUIRE);
    if (pid != 0 && pid != self && kill(pid, 0) != 0 && errno == ESRCH)
      __atomic_compare_exchange_n(&s->slot_pid[i], &pid, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
  }
}

int ratelimit_enter(ratelimit_cancel_fn cancel, void *ud, int *slot, int64_t *waited_ns, int *why) {
  shared_t *s = limit;
  int32_t self = (int32_t)getpid();
  int64_t start = 0, last_reap = 0, pause_ns = 50 * 1000;
  *slot = -1;
  if (waited_ns) *waited_ns = 0;
  if (s == NULL || s->max_concurrent == 0) return RATELIMIT_OK;
  for (;;) {
    for (int i = 0; i < s->max_concurrent; i++) {
      int32_t free_pid = 0;
      if (__atomic_load_n(&s->slot_pid[i], __ATOMIC_RELAXED) == 0 &&
          __atomic_compare_exchange_n(&s->slot_pid[i], &free_pid, self, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
        *slot = i;
        if (waited_ns && start) *waited_ns = clock_mono_ns() - start;
        return RATELIMIT_OK;
      }
    }
    {
      int64_t now = clock_mono_ns();
      int r = cancel ? cancel(ud, now) : 0;
      if (r) { if (why) *why = r; return RATELIMIT_CANCELLED; }
      if (start == 0) start = now;
      if (now - last_reap > REAP_EVERY_NS) { reap_dead(s); last_reap = now; }
    }
    /* Slots free up when requests end, which no one announces: poll, backing off to 2 ms. */
    clock_sleep_ms((double)pause_ns / 1e6);
    if (pause_ns < 2 * 1000000) pause_ns *= 2;
  }
}

void ratelimit_leave(int slot) {
  shared_t *s = limit;
  if (s == NULL || slot < 0 || slot >= s->max_concurrent) return;
  __atomic_store_n(&s->slot_pid[slot], 0, __ATOMIC_RELEASE);
}

void ratelimit_stats(int64_t *requests, int64_t *waited_ns, int64_t *in_flight) {
  shared_t *s = limit;
  int64_t n = 0;
  if (s) {
    for (int i = 0; i < s->max_concurrent; i++) n += __atomic_load_n(&s->slot_pid[i], __ATOMIC_RELAXED) != 0;
  }
  if (requests) *requests = s ? __atomic_load_n(&s->requests, __ATOMIC_RELAXED) : 0;
  if (waited_ns) *waited_ns = s ? __atomic_load_n(&s->waited_ns, __ATOMIC_RELAXED) : 0;
  if (in_flight) *in_flight = n;
}
