/* procstart.c - starts a worker command under a reaper: a forked copy of this process that
 * leads the worker's process group, waits for the worker and leaves as it did, and kills
 * the whole group when this process dies (kill -9 included). The parent-death signal alone
 * ends only the worker: what the worker started would be left to init. */
#define _GNU_SOURCE /* _Fork, close_range */
#include "proc.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void kill_own_group(int sig) {
  (void)sig;
  kill(0, SIGKILL);
  _exit(128 + SIGKILL); /* not reached: the group includes us */
}

void proc_lead_group(pid_t parent) {
  struct sigaction sa;
  setpgid(0, 0);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = kill_own_group;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGHUP, &sa, NULL);
  prctl(PR_SET_PDEATHSIG, SIGHUP);
  if (getppid() != parent) kill_own_group(SIGHUP); /* the parent went before the line above */
}

static void say(const char *s) { (void)!write(2, s, strlen(s)); }

/* Every descriptor of this process closed: the reaper must hold no pipe (the worker's end
 * of file would wait for it) and none of the runner's files. */
static void close_all(void) {
  if (close_range(0, ~0U, 0) != 0) {
    struct rlimit r;
    int max = getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < 65536 ? (int)r.rlim_cur : 65536;
    for (int fd = 0; fd < max; fd++) close(fd);
  }
}

/* Leaves the way the worker did: the same exit status, or death by the same signal. */
static void leave_like(int status) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    struct rlimit no_core = { 0, 0 };
    sigset_t set;
    setrlimit(RLIMIT_CORE, &no_core); /* the worker's core, if any, is the one to keep */
    signal(sig, SIG_DFL);
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    kill(getpid(), sig);
    _exit(128 + sig);
  }
  _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

/* The worker itself: dies with the reaper, then becomes the command. */
static void worker_exec(char *const argv[], char **env, pid_t reaper) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != reaper) _exit(127);
  signal(SIGHUP, SIG_DFL);
  environ = env; /* the whole environment, made before the fork */
  execvp(argv[0], argv);
  say("fluxloop: cannot start the worker command: ");
  say(strerror(errno));
  say("\n");
  _exit(127);
}

/* In the reaper (the first child): the pipes as 0/1/2, the worker forked and exec'd, then
 * nothing but waiting. Only async-signal-safe calls (the runner may have threads). */
static void reaper_main(char *const argv[], const char *cwd, char **env, int in[2], int out[2], int err[2],
                        pid_t parent) {
  sigset_t none;
  pid_t worker, self;
  int status;
  proc_lead_group(parent);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL); /* a thread's blocked signals are not the worker's */
  signal(SIGPIPE, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGCHLD, SIG_DFL); /* waitpid below must see the worker's status */
  dup2(in[0], 0);
  dup2(out[1], 1);
  dup2(err[1], 2);
  close(in[0]); close(in[1]); close(out[0]); close(out[1]); close(err[0]); close(err[1]);
  if (cwd != NULL && chdir(cwd) != 0) {
    say("fluxloop: cannot enter the worker's working directory\n");
    _exit(127);
  }
  self = getpid();
  worker = _Fork(); /* no fork handlers: they are the runner's, and may take its locks */
  if (worker < 0) {
    say("fluxloop: cannot start the worker command: fork failed\n");
    _exit(127);
  }
  if (worker == 0) worker_exec(argv, env, self);
  close_all();
  while (waitpid(worker, &status, 0) != worker) {
    if (errno != EINTR) _exit(127);
  }
  leave_like(status);
}

pid_t proc_start(char *const argv[], const char *cwd, char **env, int in[2], int out[2], int err[2]) {
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) reaper_main(argv, cwd, env, in, out, err, parent);
  if (pid > 0) setpgid(pid, pid); /* also here: no race with a kill before the child ran setpgid */
  return pid;
}
