/* proc.c - a child process spoken to in lines (see proc.h). */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
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

/* In the child: its own process group (so a kill reaches what it starts), death with the
 * parent, the pipes as 0/1/2, then exec. Only async-signal-safe calls. */
static void child_exec(char *const argv[], const char *cwd, char **env, int in[2], int out[2],
                       int err[2], pid_t parent) {
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);
  signal(SIGPIPE, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGHUP, SIG_DFL);
  dup2(in[0], 0);
  dup2(out[1], 1);
  dup2(err[1], 2);
  close(in[0]); close(in[1]); close(out[0]); close(out[1]); close(err[0]); close(err[1]);
  if (cwd != NULL && chdir(cwd) != 0) {
    static const char msg[] = "fluxloop: cannot enter the worker's working directory\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(127);
  }
  environ = env; /* the whole environment, made before the fork */
  execvp(argv[0], argv);
  {
    static const char msg[] = "fluxloop: cannot start the worker command: ";
    const char *why = strerror(errno);
    (void)!write(2, msg, sizeof msg - 1);
    (void)!write(2, why, strlen(why));
    (void)!write(2, "\n", 1);
  }
  _exit(127);
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

int proc_spawn(proc_t *p, char *const argv[], const char *cwd, char *const extra_env[]) {
  int in[2], out[2], err[2];
  pid_t parent = getpid(), pid;
  char **env = merged_env(extra_env);
  if (env == NULL) { errno = ENOMEM; return -1; }
  if (pipe(in) != 0) { free(env); return -1; }
  if (pipe(out) != 0) { close(in[0]); close(in[1]); free(env); return -1; }
  if (pipe(err) != 0) { close(in[0]); close(in[1]); close(out[0]); close(out[1]); free(env); return -1; }
  pid = fork();
  if (pid < 0) {
    int e = errno;
    close(in[0]); close(in[1]); close(out[0]); close(out[1]); close(err[0]); close(err[1]);
    free(env);
    errno = e;
    return -1;
  }
  if (pid == 0) child_exec(argv, cwd, env, in, out, err, parent);
  free(env);
  setpgid(pid, pid); /* also here: no race with a kill before the child ran setpgid */
  close(in[0]);
  close(out[1]);
  close(err[1]);
  fcntl(in[1], F_SETFD, FD_CLOEXEC);
  fcntl(out[0], F_SETFD, FD_CLOEXEC);
  fcntl(err[0], F_SETFD, FD_CLOEXEC);
  p->pid = pid;
  p->owner = parent;
  p->in_fd = in[1];
  p->out_fd = out[0];
  p->err_fd = err[0];
  p->reaped = 0;
  p->status = 0;
  buf_reset(&p->out);
  p->out_pos = 0;
  buf_reset(&p->err);
  return 0;
}

int proc_write(proc_t *p, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w;
    if (p->in_fd < 0) return -1;
    w = write(p->in_fd, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    s += w;
    n -= (size_t)w;
  }
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

/* Reads what fd has into the right buffer; returns bytes read, 0 at EOF, -1 on error. */
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

int proc_read_line(proc_t *p, int64_t deadline_ns, int (*stop)(void *), void *stop_data, int slice_ms,
                   const char **line, size_t *len) {
  for (;;) {
    struct pollfd fds[2];
    int nfds = 0, timeout = slice_ms;
    /* A whole line already buffered? */
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
    if (p->out_fd < 0) return -1;
    if (stop != NULL && stop(stop_data)) return 0;
    if (deadline_ns) {
      int64_t left = deadline_ns - clock_mono_ns();
      if (left <= 0) return 0;
      if (left / 1000000 < timeout) timeout = (int)(left / 1000000) + 1;
    }
    fds[nfds].fd = p->out_fd;
    fds[nfds++].events = POLLIN;
    if (p->err_fd >= 0) {
      fds[nfds].fd = p->err_fd;
      fds[nfds++].events = POLLIN;
    }
    if (poll(fds, (nfds_t)nfds, timeout) < 0 && errno != EINTR) return -1;
    if (nfds > 1 && fds[1].revents) {
      if (drain(p, 2) <= 0) close_fd(&p->err_fd);
    }
    if (fds[0].revents) {
      if (drain(p, 1) <= 0) {
        close_fd(&p->out_fd);
        /* stderr's last words are usually right behind */
        while (p->err_fd >= 0 && drain(p, 2) > 0) {
        }
        return -1;
      }
    }
  }
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
  for (;;) {
    pid_t r = waitpid(p->pid, &p->status, WNOHANG);
    if (r == p->pid) { p->reaped = 1; return 1; }
    if (r < 0 && errno != EINTR) { p->reaped = 1; return 1; }
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
