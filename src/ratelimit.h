/* ratelimit.h - one request-rate bucket and one in-flight cap shared by every worker of an
 * experiment, threads and forked (--isolate) processes alike (no Lua here). */
#ifndef FLUXLOOP_RATELIMIT_H
#define FLUXLOOP_RATELIMIT_H

#include <stdint.h>

/* The most requests in flight a cap may name (the slots live in the shared page). */
#define RATELIMIT_MAX_CONCURRENT 4096
/* The most requests the sliding window remembers: a rate up to this many per second is held
 * in every one-second window; a higher one in every window of 4096 requests. */
#define RATELIMIT_MAX_WINDOW 4096

enum { RATELIMIT_OK = 0, RATELIMIT_CANCELLED = -1, RATELIMIT_NOMEM = -2 };

/* Which place of the window a request took (acquire fills it; index -1: none). */
typedef struct ratelimit_ticket {
  int index;
  int64_t stamp;
} ratelimit_ticket;

/* Asked while waiting: nonzero (a guard reason) ends the wait. */
typedef int (*ratelimit_cancel_fn)(void *ud, int64_t now_ns);

/* Sets the process-wide limits, before workers start (threads see them, forked workers
 * inherit the shared mapping). rps <= 0: no rate limit; burst >= 1 requests may go at once;
 * max_concurrent <= 0: no cap. Both off: the limits are removed. Returns RATELIMIT_OK or
 * RATELIMIT_NOMEM. */
int ratelimit_configure(double rps, int burst, int max_concurrent);

/* Whether a rate or a cap is set, and its settings (NULL pointers are skipped). */
int ratelimit_active(double *rps, int *burst, int *max_concurrent);

/* Waits for the next request's turn: its place in the even pace, then a place in the
 * sliding window (no window of 1 s holds more than the rate; see window_of). *waited_ns
 * gets the time spent waiting. Returns RATELIMIT_OK, or RATELIMIT_CANCELLED with *why set
 * to the cancel function's reason. */
int ratelimit_acquire(ratelimit_cancel_fn cancel, void *ud, int64_t *waited_ns, int *why,
                      ratelimit_ticket *ticket);

/* Moves the time the window remembers for a ticket's request to now: called when the
 * request really goes (its connection made), which can be long after the token on a cold
 * start. Does nothing for an empty ticket or one the window has forgotten. */
void ratelimit_sent(ratelimit_ticket *ticket);

/* Waits for a free in-flight slot; *slot gets it (-1 when there is no cap). Same returns. */
int ratelimit_enter(ratelimit_cancel_fn cancel, void *ud, int *slot, int64_t *waited_ns, int *why);
void ratelimit_leave(int slot);

/* Requests let through and the total time they waited, since configure (all workers). */
void ratelimit_stats(int64_t *requests, int64_t *waited_ns, int64_t *in_flight);

#endif
