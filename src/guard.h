/* guard.h - time limits and interruption of agent calls, shared by fluxloop.guard and
 * fluxloop.clock (whose sleep must end when a limit passes). */
#ifndef FLUXLOOP_GUARD_H
#define FLUXLOOP_GUARD_H

#include <stdint.h>

enum { GUARD_TIMEOUT = 1, GUARD_INTERRUPT = 2 };

/* One per Lua state that runs agents; found through lua_getextraspace. */
typedef struct guard_state {
  int64_t deadline;  /* monotonic ns, 0 = no time limit */
  int64_t limit_ms;
  int armed;         /* inside guard.call */
  int fired;         /* GUARD_TIMEOUT / GUARD_INTERRUPT once a limit stopped the call */
  int hold_exit;     /* between runs of the run loop: os.exit fails the run instead */
} guard_state;

/* Whether SIGINT/SIGTERM has arrived, and when runs in flight must stop (0: not yet). */
int guard_interrupted(void);
int64_t guard_interrupt_deadline(void);
/* SIGPIPE caught by a handler that does nothing: a write into a closed pipe (`fluxloop ... |
 * head`) fails with EPIPE instead of ending the process. Not SIG_IGN, which exec passes on:
 * programs an agent starts (`yes | head` in a shell) get the default disposition back. */
void guard_catch_sigpipe(void);
/* Which limit of g has passed at `now`, or 0. */
int guard_expired(const guard_state *g, int64_t now);

#endif
