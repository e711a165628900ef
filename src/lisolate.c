/* lisolate.c - the fluxloop.isolate module: runs agent calls in forked worker processes, so
 * a crash (SIGSEGV, abort, exit inside the agent) or a hang fails that run only. Workers are
 * forked once (and again only to replace one that died), from the prepared main state. */
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "frame.h"
#include "guard.h"
#include "proc.h"
#include "signame.h"
#include "sink.h"

/* A worker whose run is over the time limit by this much is killed: in-process limits stop
 * Lua code first and report it; this catches native code that never returns. */
#define KILL_MARGIN_NS (250 * 1000000LL)
#define STRAGGLER_NS (1000 * 1000000LL)
/* Runs handed to a worker ahead of time, so it never waits for the parent between runs. */
#define PIPELINE 2
/* Workers forked per turn of the event loop (see spawn_some). */
#define SPAWN_BATCH 8

typedef struct child {
  pid_t pid;          /* 0 when there is no process */
  int to_fd, from_fd; /* the parent's ends of the two pipes, -1 when closed */
  int64_t q_seq[PIPELINE], q_k[PIPELINE]; /* runs handed over, the first one in flight */
  int qn;
  int64_t seq, k;     /* the run in flight (q[0]), seq 0 when idle */
  int64_t started_ns;
  int timed_out;      /* killed by the parent for going over the limit */
  int told_stop;      /* Ctrl-C passed on to it */
} child_t;

typedef struct iso {
  lua_State *L;
  child_t *kids;
  int n;
  int64_t total, handed, completed;
  int64_t *ks;
  int64_t *returned;  /* runs a dead worker had queued but not started: handed out again */
  int nreturned;
  int spawned;        /* workers started so far (kids[0..spawned-1]) */
  sink_t *sink;
  int64_t timeout_ns;
  buf_t frame;
  int fn_child, fn_lost, fn_progress; /* stack indexes of the Lua callbacks */
} iso_t;

/* ---- in the worker process -------------------------------------------- */

/* child_next(fd) -> k, seq | nil: the next run the parent hands this worker. */
static int iso_child_next(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  int64_t msg[2];
  /* What the agent printed reaches its stdout now, not when a buffer happens to fill: the
   * process may be killed before it exits. */
  fflush(NULL);
  if (guard_interrupted() || frame_read_all(fd, msg, sizeof msg) != 1) return 0;
  lua_pushinteger(L, (lua_Integer)msg[1]);
  lua_pushinteger(L, (lua_Integer)msg[0]);
  return 2;
}

/* exit() in a worker (an agent's os.exit or exit(3)) leaves at once with its status: the
 * exit handlers it would run are the runner's, copied by fork, and not the worker's to run
 * (under LeakSanitizer one even waits forever on a lock another thread held at the fork). */
static void leave_now(int status, void *unused) {
  (void)unused;
  fflush(NULL);
  _exit(status);
}

/* Runs in the new process: closes the parent's pipe ends, then calls child(in_fd, out_fd)
 * in the state inherited from the parent, and exits. Never returns. */
static void child_main(iso_t *s, int self, int in_fd, int out_fd, pid_t parent) {
  lua_State *L = s->L;
  int status;
  /* A worker must not outlive the runner (kill -9, a second Ctrl-C, a crash), nor what
   * its agent started: it leads a process group of its own, killed whole when the parent
   * goes (the runner forwards Ctrl-C, which no longer reaches this group from a terminal). */
  proc_lead_group(parent);
  on_exit(leave_now, NULL); /* registered last, so it runs first */
  for (int i = 0; i < s->n; i++) {
    if (s->kids[i].to_fd >= 0) close(s->kids[i].to_fd);
    if (s->kids[i].from_fd >= 0) close(s->kids[i].from_fd);
  }
  (void)self;
  /* SIGPIPE as the runner has it (caught, not ignored): an agent that prints into a closed
   * pipe gets EPIPE, not death. A parent that is gone fails the frame's write, and
   * PR_SET_PDEATHSIG ends the worker anyway. */
  guard_catch_sigpipe();
  /* A crash here is the parent's to report (sink_flush_on_crash's handlers are the
   * in-process runner's): die of it plainly. */
  signal(SIGSEGV, SIG_DFL);
  signal(SIGBUS, SIG_DFL);
  signal(SIGABRT, SIG_DFL);
  signal(SIGFPE, SIG_DFL);
  signal(SIGILL, SIG_DFL);
  lua_pushvalue(L, s->fn_child);
  lua_pushinteger(L, in_fd);
  lua_pushinteger(L, out_fd);
  status = lua_pcall(L, 2, 1, 0);
  if (status != LUA_OK) {
    fprintf(stderr, "fluxloop: worker process: %s\n", lua_tostring(L, -1));
    fflush(NULL);
    _exit(1);
  }
  fflush(NULL); /* _exit does not: the agent's last lines would be lost */
  _exit(lua_toboolean(L, -1) ? 0 : 1);
}

/* ---- in the parent ---------------------------------------------------- */

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/* The run at the head of c's queue is the one in flight. */
static void head(child_t *c) {
  c->seq = c->qn ? c->q_seq[0] : 0;
  c->k = c->qn ? c->q_k[0] : 0;
}

/* Forks worker i. Returns 0 or -1. */
static int spawn(iso_t *s, int i) {
  int to[2], from[2];
  child_t *c = &s->kids[i];
  pid_t pid, parent;
  if (pipe(to) != 0) return -1;
  if (pipe(from) != 0) { close(to[0]); close(to[1]); return -1; }
  fflush(NULL);
  parent = getpid();
  pid = fork();
  if (pid < 0) { close(to[0]); close(to[1]); close(from[0]); close(from[1]); return -1; }
  if (pid == 0) {
    close(to[1]);
    close(from[0]);
    child_main(s, i, to[0], from[1], parent);
  }
  close(to[0]);
  close(from[1]);
  c->pid = pid;
  c->to_fd = to[1];
  c->from_fd = from[0];
  c->qn = 0;
  head(c);
  c->timed_out = 0;
  c->told_stop = 0;
  return 0;
}

static int work_left(const iso_t *s) {
  return s->nreturned > 0 || s->handed < s->total;
}

/* No run starts after Ctrl-C, or once the files refused a write (a full disk). */
static int stopping(iso_t *s) {
  return guard_interrupted() || sink_error(s->sink, NULL) != 0;
}

/* Whether the next new trace number fits the sink's window. This process is the only one
 * that hands traces to the sink, so it must never wait in sink_put for a trace that only
 * it can read from another worker: a number past the window waits until the files catch
 * up (runs given back by a dead worker are older, so they always fit). */
static int fits_window(iso_t *s) {
  return s->nreturned > 0 || s->handed + 1 < sink_done(s->sink) + 1 + SINK_WINDOW;
}

/* Tops up worker c's queue, or closes its input when there is no work left (it exits once
 * its queue is done). A worker whose next run does not fit the window yet is topped up
 * later, from the main loop. */
static void assign(iso_t *s, child_t *c) {
  while (c->to_fd >= 0 && c->qn < PIPELINE) {
    int64_t msg[2];
    if (stopping(s) || !work_left(s)) { close_fd(&c->to_fd); return; }
    if (!fits_window(s)) return;
    msg[0] = s->nreturned > 0 ? s->returned[--s->nreturned] : ++s->handed;
    msg[1] = s->ks ? s->ks[msg[0] - 1] : msg[0];
    c->q_seq[c->qn] = msg[0];
    c->q_k[c->qn] = msg[1];
    if (c->qn++ == 0) c->started_ns = clock_mono_ns();
    head(c);
    /* If the worker is gone the write fails; its end of file reports the run as lost. */
    frame_write_all(c->to_fd, msg, sizeof msg);
  }
}

/* Calls on_lost(k, seq, kind, message, duration_ms) so the parent writes the failed trace. */
static void report_lost(iso_t *s, child_t *c, int status) {
  lua_State *L = s->L;
  char msg[200];
  double ms = (double)(clock_mono_ns() - c->started_ns) / 1e6;
  const char *kind = "crash";
  if (c->timed_out) {
    kind = "timeout";
    snprintf(msg, sizeof msg, "run exceeded the time limit of %lld ms; its worker process was killed",
             (long long)(s->timeout_ns / 1000000));
  } else if (WIFSIGNALED(status)) {
    snprintf(msg, sizeof msg, "the agent's worker process was killed by %s (signal %d)",
             signal_name(WTERMSIG(status)), WTERMSIG(status));
  } else if (WIFEXITED(status)) {
    snprintf(msg, sizeof msg, "the agent's worker process exited with status %d during the run "
             "(exit() or os.exit in the agent)", WEXITSTATUS(status));
  } else {
    snprintf(msg, sizeof msg, "the agent's worker process stopped during the run");
  }
  lua_pushvalue(L, s->fn_lost);
  lua_pushinteger(L, (lua_Integer)c->k);
  lua_pushinteger(L, (lua_Integer)c->seq);
  lua_pushstring(L, kind);
  lua_pushstring(L, msg);
  lua_pushnumber(L, ms);
  lua_call(L, 5, 0);
  s->completed++;
}

/* Ends worker c with what its agent started (its process group). */
static void kill_worker(child_t *c) {
  kill(-c->pid, SIGKILL);
  kill(c->pid, SIGKILL);
}

/* Reaps worker c, whose pipe has ended, and ends what its agent left running in its group
 * (asked without reaping first: the leader's id names the group until then). One that
 * closed its pipe but lives on (an agent that closes descriptors, then hangs) is killed
 * after a second: the parent must never wait on a worker without bound. Returns the wait
 * status. */
static int reap(child_t *c) {
  int status = 0;
  int64_t give_up = clock_mono_ns() + 1000 * 1000000LL;
  long pause_ns = 10000; /* an exiting worker is usually gone within microseconds */
  for (;;) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 && errno != EINTR) return 0;
    if (si.si_pid == c->pid || clock_mono_ns() > give_up) break;
    {
      struct timespec t = { 0, pause_ns };
      nanosleep(&t, NULL);
      if (pause_ns < 1000000) pause_ns *= 2;
    }
  }
  kill_worker(c);
  while (waitpid(c->pid, &status, 0) < 0) {
    if (errno != EINTR) return 0;
  }
  return status;
}

/* Worker c's pipe ended: reap it, account for its run, give back the runs it had queued,
 * and replace it if work remains. */
static void on_death(iso_t *s, int i) {
  child_t *c = &s->kids[i];
  int status;
  close_fd(&c->from_fd);
  close_fd(&c->to_fd);
  status = reap(c);
  c->pid = 0;
  if (c->qn > 0) {
    if (guard_interrupted() && !c->timed_out) sink_skip(s->sink, c->seq); /* --resume runs it */
    else report_lost(s, c, status);
    for (int q = c->qn - 1; q >= 1; q--) {
      if (guard_interrupted()) sink_skip(s->sink, c->q_seq[q]);
      else s->returned[s->nreturned++] = c->q_seq[q];
    }
    c->qn = 0;
    head(c);
  }
  if (!stopping(s) && work_left(s) && spawn(s, i) == 0) assign(s, c);
}

/* Reads one frame from worker i. Returns 0, or -1 when the worker is gone. */
static int on_frame(iso_t *s, int i) {
  child_t *c = &s->kids[i];
  frame_header h;
  size_t total = 0;
  if (frame_read_all(c->from_fd, &h, sizeof h) != 1) return -1;
  for (int f = 0; f < SINK_FILES; f++) total += (size_t)h.lens[f];
  buf_reset(&s->frame);
  if (buf_reserve(&s->frame, total + 1) != 0) return -1;
  if (total > 0 && frame_read_all(c->from_fd, s->frame.data, total) != 1) return -1;
  if (h.kind == FRAME_TRACE) {
    const char *lines[SINK_FILES];
    size_t lens[SINK_FILES], off = 0;
    for (int f = 0; f < SINK_FILES; f++) {
      lines[f] = s->frame.data + off;
      lens[f] = (size_t)h.lens[f];
      off += lens[f];
    }
    sink_put(s->sink, h.seq, lines, lens, h.ms, h.success);
  } else {
    sink_skip(s->sink, h.seq);
  }
  if (c->qn > 0 && h.seq == c->q_seq[0]) {
    for (int q = 1; q < c->qn; q++) { c->q_seq[q - 1] = c->q_seq[q]; c->q_k[q - 1] = c->q_k[q]; }
    c->qn--;
    c->started_ns = clock_mono_ns(); /* the next queued run starts now */
    head(c);
    s->completed++;
    assign(s, c);
  }
  return 0;
}

/* Forks the next few workers not started yet: forking 1024 workers of a large parent takes
 * seconds, and meanwhile the first ones work, their frames are read and a signal is seen.
 * Returns whether some are still to be started. */
static int spawn_some(iso_t *s) {
  for (int n = 0; n < SPAWN_BATCH && s->spawned < s->n; n++) {
    if (!work_left(s) || stopping(s) || spawn(s, s->spawned) != 0) { s->spawned = s->n; break; }
    assign(s, &s->kids[s->spawned++]);
  }
  return s->spawned < s->n;
}

static int busy_or_open(iso_t *s) {
  for (int i = 0; i < s->n; i++) if (s->kids[i].pid) return 1;
  return 0;
}

static void progress(iso_t *s) {
  int in_flight = 0;
  if (!lua_isfunction(s->L, s->fn_progress)) return;
  for (int i = 0; i < s->n; i++) in_flight += s->kids[i].seq != 0;
  lua_pushvalue(s->L, s->fn_progress);
  lua_pushinteger(s->L, (lua_Integer)s->completed);
  lua_pushinteger(s->L, in_flight);
  lua_call(s->L, 2, 0);
}

/* Kills workers over the time limit, and after Ctrl-C those past the grace period. Ctrl-C
 * is passed on once to each worker busy with a run: they lead groups of their own, which
 * a terminal's Ctrl-C does not reach, and their runs get the same grace period. */
static void police(iso_t *s) {
  int64_t now = clock_mono_ns(), stop_at = guard_interrupt_deadline();
  for (int i = 0; i < s->n; i++) {
    child_t *c = &s->kids[i];
    if (!c->pid || !c->seq) continue;
    if (stop_at && !c->told_stop) {
      c->told_stop = 1;
      kill(c->pid, SIGINT);
    }
    if (s->timeout_ns && !c->timed_out && now - c->started_ns > s->timeout_ns + KILL_MARGIN_NS) {
      c->timed_out = 1;
      kill_worker(c);
    } else if (stop_at && now > stop_at + KILL_MARGIN_NS) {
      kill_worker(c);
    }
  }
  if (guard_interrupted()) {
    for (int i = 0; i < s->n; i++) if (!s->kids[i].seq) close_fd(&s->kids[i].to_fd);
  }
}

/* run{ workers, total, ks (optional), sink, timeout_ms, child = function(in_fd, out_fd),
 *      on_lost = function(k, seq, kind, message, ms), on_progress = function(done, in_flight) }
 *   -> true | nil, message */
static int iso_run(lua_State *L) {
  iso_t s;
  struct sigaction ign, old_pipe;
  memset(&s, 0, sizeof s);
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_getfield(L, 1, "child");      /* 2 */
  lua_getfield(L, 1, "on_lost");    /* 3 */
  lua_getfield(L, 1, "on_progress");/* 4 */
  luaL_checktype(L, 2, LUA_TFUNCTION);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  s.L = L;
  s.fn_child = 2;
  s.fn_lost = 3;
  s.fn_progress = 4;
  lua_getfield(L, 1, "workers");
  s.n = (int)luaL_checkinteger(L, -1);
  lua_getfield(L, 1, "total");
  s.total = (int64_t)luaL_checkinteger(L, -1);
  lua_getfield(L, 1, "timeout_ms");
  s.timeout_ns = (int64_t)luaL_optinteger(L, -1, 0) * 1000000;
  lua_getfield(L, 1, "sink");
  luaL_checktype(L, -1, LUA_TLIGHTUSERDATA);
  s.sink = lua_touserdata(L, -1);
  lua_pop(L, 4);
  luaL_argcheck(L, s.n >= 1 && s.n <= 1024, 1, "workers must be 1..1024");
  if (lua_getfield(L, 1, "ks") == LUA_TTABLE) {
    s.ks = malloc((size_t)(s.total > 0 ? s.total : 1) * sizeof *s.ks);
    if (s.ks == NULL) return luaL_error(L, "not enough memory");
    for (int64_t i = 0; i < s.total; i++) {
      lua_rawgeti(L, -1, (lua_Integer)(i + 1));
      s.ks[i] = (int64_t)lua_tointeger(L, -1);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  s.kids = calloc((size_t)s.n, sizeof *s.kids);
  s.returned = malloc((size_t)s.n * PIPELINE * sizeof *s.returned);
  if (s.kids == NULL || s.returned == NULL) {
    free(s.kids);
    free(s.returned);
    free(s.ks);
    return luaL_error(L, "not enough memory");
  }
  for (int i = 0; i < s.n; i++) s.kids[i].to_fd = s.kids[i].from_fd = -1;
  buf_init(&s.frame);
  memset(&ign, 0, sizeof ign);
  ign.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ign, &old_pipe); /* a dead worker's pipe gives EPIPE, not a signal */

  {
    int64_t last_progress = 0;
    struct pollfd *fds = calloc((size_t)s.n, sizeof *fds);
    int starting = fds != NULL && spawn_some(&s);
    while (fds && (starting || busy_or_open(&s))) {
      int64_t now;
      int64_t stop_at = guard_interrupt_deadline();
      for (int i = 0; i < s.n; i++) {
        fds[i].fd = s.kids[i].pid ? s.kids[i].from_fd : -1;
        fds[i].events = POLLIN;
        fds[i].revents = 0;
      }
      if (poll(fds, (nfds_t)s.n, starting ? 0 : 100) > 0) {
        for (int i = 0; i < s.n; i++) {
          if (fds[i].revents == 0 || !s.kids[i].pid) continue;
          if ((fds[i].revents & POLLIN) && on_frame(&s, i) == 0) continue;
          on_death(&s, i); /* end of file: the worker exited or died */
        }
      }
      if (starting) starting = spawn_some(&s);
      police(&s);
      /* Workers left waiting for the window get their runs once the files caught up. */
      for (int i = 0; i < s.n; i++) {
        child_t *c = &s.kids[i];
        if (c->pid && c->to_fd >= 0 && c->qn < PIPELINE) assign(&s, c);
      }
      now = clock_mono_ns();
      if (now - last_progress >= 100 * 1000000LL) { progress(&s); last_progress = now; }
      if (stop_at && now > stop_at + KILL_MARGIN_NS + STRAGGLER_NS) break; /* unkillable: give up */
    }
    free(fds);
  }
  for (int i = 0; i < s.n; i++) {
    close_fd(&s.kids[i].to_fd);
    close_fd(&s.kids[i].from_fd);
    if (s.kids[i].pid) { kill_worker(&s.kids[i]); waitpid(s.kids[i].pid, NULL, 0); }
  }
  sigaction(SIGPIPE, &old_pipe, NULL);
  buf_free(&s.frame);
  free(s.kids);
  free(s.returned);
  free(s.ks);
  {
    /* The files refused a write (a full disk): no run was started after it. */
    const char *path = NULL;
    int err = sink_error(s.sink, &path);
    if (err) {
      lua_pushnil(L);
      lua_pushfstring(L, "%s: %s", path ? path : "the result files", strerror(err));
      return 2;
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

static const luaL_Reg iso_funcs[] = {
  { "run", iso_run },
  { "child_next", iso_child_next },
  { NULL, NULL }
};

int luaopen_fluxloop_isolate(lua_State *L); /* the module's only export */
int luaopen_fluxloop_isolate(lua_State *L) {
  luaL_newlib(L, iso_funcs);
  return 1;
}
