/* proc.c - a child process spoken to in lines (see proc.h). */
#define _GNU_SOURCE /* pipe2 */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

extern char **environ;

static pid_t self_pid;
static pthread_once_t self_once = PTHREAD_ONCE_INIT;

static void renew_self(void) { self_pid = getpid(); }
static void init_self(void) {
  renew_self();
  pthread_atfork(NULL, NULL, renew_self);
}

pid_t proc_self(void) {
  pthread_once(&self_once, init_self);
  return self_pid;
}

int proc_usable(const proc_t *p) {
  return p->pid > 0 && !p->reaped && p->owner == proc_self();
}


void proc_init(proc_t *p) {
  memset(p, 0, sizeof *p);
  p->in_fd = p->out_fd = p->err_fd = -1;
  buf_init(&p->out);
  buf_init(&p->err);
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/* This process's environment with extra's NAME=value strings in front (they win: getenv
 * takes the first). Made before the fork: the child may call nothing that allocates. */
static char **merged_env(char *const extra[]) {
  size_t n = 0, k = 0;
  char **env;
  while (environ[n] != NULL) n++;
  while (extra != NULL && extra[k] != NULL) k++;
  env = malloc((n + k + 1) * sizeof *env);
  if (env == NULL) return NULL;
  for (size_t i = 0; i < k; i++) env[i] = extra[i];
  for (size_t i = 0; i < n; i++) env[k + i] = environ[i];
  env[n + k] = NULL;
  return env;
}

static void close_pair(int fds[2]) {
  close(fds[0]);
  close(fds[1]);
}

/* Our ends never block: every wait is a poll with the run's deadline. */
static void nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

int proc_spawn(proc_t *p, char *const argv[], const char *cwd, char *const extra_env[]) {
  int in[2], out[2], err[2], e;
  pid_t pid;
  char **env = merged_env(extra_env);
  if (env == NULL) { errno = ENOMEM; return -1; }
  /* Close-on-exec from the start: another thread's worker must not inherit these. */
  if (pipe2(in, O_CLOEXEC) != 0) { free(env); return -1; }
  if (pipe2(out, O_CLOEXEC) != 0) { e = errno; close_pair(in); free(env); errno = e; return -1; }
  if (pipe2(err, O_CLOEXEC) != 0) { e = errno; close_pair(in); close_pair(out); free(env); errno = e; return -1; }
  pid = proc_start(argv, cwd, env, in, out, err);
  e = errno;
  free(env);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (pid < 0) {
    close(in[1]); close(out[0]); close(err[0]);
    errno = e;
    return -1;
  }
  nonblocking(in[1]);
  nonblocking(out[0]);
  nonblocking(err[0]);
  p->pid = pid;
  p->owner = proc_self();
  p->in_fd = in[1];
  p->out_fd = out[0];
  p->err_fd = err[0];
  p->reaped = 0;
  p->exited = 0;
  p->status = 0;
  p->checked_ns = clock_mono_ns();
  buf_reset(&p->out);
  p->out_pos = 0;
  buf_reset(&p->err);
  return 0;
}

/* Keeps the tail of stderr: at most PROC_ERR_KEEP bytes, cut at a line start. */
static void keep_err(proc_t *p, const char *s, size_t n) {
  buf_put(&p->err, s, n);
  if (p->err.len > 2 * PROC_ERR_KEEP) {
    size_t cut = p->err.len - PROC_ERR_KEEP;
    const char *nl = memchr(p->err.data + cut, '\n', p->err.len - cut);
    if (nl != NULL) cut = (size_t)(nl - p->err.data) + 1;
    memmove(p->err.data, p->err.data + cut, p->err.len - cut);
    p->err.len -= cut;
  }
}

/* Reads what fd has into the right buffer; returns bytes read (1 when there was nothing
 * to read yet), 0 at EOF, -1 on error. */
static ssize_t drain(proc_t *p, int which) {
  char chunk[65536];
  ssize_t n = read(which == 1 ? p->out_fd : p->err_fd, chunk, sizeof chunk);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return 1;
  if (n <= 0) return n;
  if (which == 1) {
    if (p->out_pos > 0 && p->out_pos == p->out.len) { p->out.len = 0; p->out_pos = 0; }
    buf_put(&p->out, chunk, (size_t)n);
  } else {
    keep_err(p, chunk, (size_t)n);
  }
  return n;
}

/* Reads the pipes that poll found ready (fds[k] is out_fd or err_fd, in that order);
 * a pipe at its end is closed. */
static void drain_ready(proc_t *p, struct pollfd *fds, int nfds) {
  for (int k = 0; k < nfds; k++) {
    if (!fds[k].revents) continue;
    if (fds[k].fd == p->out_fd && drain(p, 1) <= 0) close_fd(&p->out_fd);
    else if (fds[k].fd == p->err_fd && drain(p, 2) <= 0) close_fd(&p->err_fd);
  }
}

/* The pipes still open, as poll entries after `first` (a slot for stdin, or none). */
static int poll_outputs(proc_t *p, struct pollfd *fds, int first) {
  int n = first;
  if (p->out_fd >= 0 && p->out.len - p->out_pos <= PROC_MAX_LINE) {
    fds[n].fd = p->out_fd;
    fds[n].events = POLLIN;
    fds[n++].revents = 0;
  }
  if (p->err_fd >= 0) {
    fds[n].fd = p->err_fd;
    fds[n].events = POLLIN;
    fds[n++].revents = 0;
  }
  return n;
}

/* After the worker exited and its group was killed: what its pipes still hold, for at
 * most EXIT_DRAIN_MS (a process that left the group may keep them open for ever). Then
 * stdout counts as ended. */
#define EXIT_DRAIN_MS 200
static void drain_after_exit(proc_t *p) {
  int64_t until = clock_mono_ns() + (int64_t)EXIT_DRAIN_MS * 1000000;
  for (;;) {
    struct pollfd fds[2];
    int nfds = poll_outputs(p, fds, 0), left = (int)((until - clock_mono_ns()) / 1000000);
    if (nfds == 0 || left <= 0) break;
    if (poll(fds, (nfds_t)nfds, left) == 0) break;
    drain_ready(p, fds, nfds);
  }
  close_fd(&p->out_fd);
  close_fd(&p->err_fd);
}

/* Whether the worker has exited, asked without reaping it (its process id, which names its
 * group, stays ours until then). Once it has, its whole group is killed: what it started
 * may hold its pipes open, and must not keep fluxloop waiting or outlive it. */
static int check_exit(proc_t *p) {
  siginfo_t si;
  p->checked_ns = clock_mono_ns();
  if (p->exited || p->reaped) return 1;
  if (p->pid <= 0 || p->owner != proc_self()) return 0;
  memset(&si, 0, sizeof si);
  if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) return errno == ECHILD;
  if (si.si_pid == 0) return 0;
  p->exited = 1;
  kill(-p->pid, SIGKILL);
  return 1;
}

/* One wait of a slice for the pipes in fds[0..nfds-1] (filled by the caller), bounded by
 * the deadline. Returns 1 after reading what came (or finding the worker gone: then
 * drained), 0 at the deadline or on stop, -1 on a poll error. */
static int wait_slice(proc_t *p, struct pollfd *fds, int nfds, int64_t deadline_ns, int (*stop)(void *),
                      void *stop_data, int slice_ms) {
  int timeout = slice_ms, rc;
  int64_t now;
  if (stop != NULL && stop(stop_data)) return 0;
  if (deadline_ns) {
    int64_t left = deadline_ns - clock_mono_ns();
    if (left <= 0) return 0;
    if (left / 1000000 < timeout) timeout = (int)(left / 1000000) + 1;
  }
  rc = poll(fds, (nfds_t)nfds, timeout);
  if (rc < 0 && errno != EINTR) return -1;
  now = clock_mono_ns();
  /* A quiet slice, or one slice of busy pipes: did the worker exit meanwhile? */
  if ((rc == 0 || now - p->checked_ns >= (int64_t)slice_ms * 1000000) && check_exit(p)) {
    drain_after_exit(p);
    return 1;
  }
  if (rc > 0) drain_ready(p, fds, nfds);
  return 1;
}

/* stdout ended: the worker's last words on stderr are usually right behind, but a child
 * of the worker may hold stderr open for ever: wait for them a second at most. */
static void finish_stderr(proc_t *p, int64_t deadline_ns) {
  int64_t until = clock_mono_ns() + 1000 * 1000000LL;
  if (deadline_ns && deadline_ns < until) until = deadline_ns;
  while (p->err_fd >= 0) {
    struct pollfd fds[2];
    int nfds = poll_outputs(p, fds, 0);
    if (nfds == 0 || wait_slice(p, fds, nfds, until, NULL, NULL, 50) != 1) break;
  }
}

int proc_write(proc_t *p, const char *s, size_t n, int64_t deadline_ns, int (*stop)(void *), void *stop_data,
               int slice_ms) {
  while (n > 0) {
    struct pollfd fds[3];
    ssize_t w;
    int nfds, rc;
    if (p->in_fd < 0) return -1;
    w = write(p->in_fd, s, n);
    if (w > 0) {
      s += w;
      n -= (size_t)w;
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w == 0 || errno != EAGAIN) return -1;
    /* The pipe is full: the worker is busy, stuck, or blocked writing to us. */
    fds[0].fd = p->in_fd;
    fds[0].events = POLLOUT;
    fds[0].revents = 0;
    nfds = poll_outputs(p, fds, 1);
    rc = wait_slice(p, fds, nfds, deadline_ns, stop, stop_data, slice_ms);
    if (rc <= 0) return rc;
    if (p->exited || (fds[0].revents & (POLLERR | POLLHUP))) return -1;
  }
  return 1;
}

/* A whole line buffered: returns 1 with it; -2 for a partial line past the limit; else 0. */
static int buffered_line(proc_t *p, const char **line, size_t *len) {
  if (p->out_pos < p->out.len) {
    char *start = p->out.data + p->out_pos;
    char *nl = memchr(start, '\n', p->out.len - p->out_pos);
    if (nl != NULL) {
      *line = start;
      *len = (size_t)(nl - start);
      p->out_pos += *len + 1;
      return 1;
    }
    if (p->out.len - p->out_pos > PROC_MAX_LINE) return -2;
    if (p->out_pos > 0) { /* move the partial line to the front */
      memmove(p->out.data, start, p->out.len - p->out_pos);
      p->out.len -= p->out_pos;
      p->out_pos = 0;
    }
  } else {
    p->out.len = 0;
    p->out_pos = 0;
  }
  return 0;
}

int proc_read_line(proc_t *p, int64_t deadline_ns, int (*stop)(void *), void *stop_data, int slice_ms,
                   const char **line, size_t *len) {
  for (;;) {
    struct pollfd fds[2];
    int rc = buffered_line(p, line, len);
    if (rc != 0) return rc;
    if (p->out_fd < 0) {
      finish_stderr(p, deadline_ns);
      return -1;
    }
    rc = wait_slice(p, fds, poll_outputs(p, fds, 0), deadline_ns, stop, stop_data, slice_ms);
    if (rc <= 0) return rc;
  }
}

size_t proc_unread(const proc_t *p) {
  int n = 0;
  if (p->in_fd < 0 || ioctl(p->in_fd, FIONREAD, &n) != 0 || n < 0) return 0;
  return (size_t)n;
}

void proc_kill(proc_t *p) {
  if (proc_usable(p)) {
    kill(-p->pid, SIGKILL);
    kill(p->pid, SIGKILL);
    while (waitpid(p->pid, &p->status, 0) < 0 && errno == EINTR) {
    }
    p->reaped = 1;
  }
}

int proc_reap(proc_t *p, int wait_ms) {
  int64_t until = clock_mono_ns() + (int64_t)wait_ms * 1000000;
  if (p->pid <= 0 || p->reaped) return 1;
  if (p->owner != proc_self()) return 0;
  for (;;) {
    if (check_exit(p)) {
      while (waitpid(p->pid, &p->status, 0) < 0 && errno == EINTR) {
      }
      p->reaped = 1;
      return 1;
    }
    if (clock_mono_ns() >= until) return 0;
    {
      struct timespec ts = { 0, 5 * 1000000 };
      nanosleep(&ts, NULL);
    }
  }
}

void proc_close(proc_t *p) {
  close_fd(&p->in_fd);
  close_fd(&p->out_fd);
  close_fd(&p->err_fd);
  buf_free(&p->out);
  buf_free(&p->err);
  p->out_pos = 0;
  p->pid = 0;
}
