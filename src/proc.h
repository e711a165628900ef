/* proc.h - a long-lived child process spoken to in lines: spawn with an argv (no shell) in
 * its own process group, write lines to its stdin, read lines from its stdout, keep the
 * last lines of its stderr, kill the group, reap (no Lua here). */
#ifndef FLUXLOOP_PROC_H
#define FLUXLOOP_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

/* The longest stdout line accepted; a longer one is an error of the worker. */
#define PROC_MAX_LINE (64u * 1024 * 1024)
/* stderr kept for messages and the run's logs: the last this many bytes. */
#define PROC_ERR_KEEP (16u * 1024)

typedef struct proc {
  pid_t pid;     /* 0 when not running */
  int in_fd;     /* the child's stdin, -1 when closed */
  int out_fd;    /* its stdout */
  int err_fd;    /* its stderr */
  buf_t out;     /* stdout bytes not yet returned as lines */
  size_t out_pos;/* where the next line starts in out */
  buf_t err;     /* stderr kept (the tail) */
  int status;    /* wait status once reaped */
  int reaped;
  pid_t owner;   /* the process that started it (a fork's copy must not kill it) */
} proc_t;

void proc_init(proc_t *p);
/* Starts argv[0] (searched on PATH) with argv, in cwd (NULL: ours), with this process's
 * environment plus the "NAME=value" strings of extra_env (NULL-terminated; may be NULL).
 * The child dies with us (PR_SET_PDEATHSIG). Returns 0, or -1 with errno. */
int proc_spawn(proc_t *p, char *const argv[], const char *cwd, char *const extra_env[]);
/* Writes all of s. 0, or -1 (the child closed its stdin or died). */
int proc_write(proc_t *p, const char *s, size_t n);
/* Waits for the next whole stdout line, reading stderr meanwhile, until deadline_ns
 * (monotonic; 0 = none) or until stop() says so (checked every slice_ms). Returns 1 with
 * the line in *line and *len (valid until the next call, without its newline); 0 at the
 * deadline or when stop() returned non-zero; -1 at end of file (the child closed stdout or
 * died); -2 for a line longer than PROC_MAX_LINE. */
int proc_read_line(proc_t *p, int64_t deadline_ns, int (*stop)(void *), void *stop_data, int slice_ms,
                   const char **line, size_t *len);
/* Kills the whole process group (SIGKILL) and reaps the child. */
void proc_kill(proc_t *p);
/* Reaps the child if it has exited (waiting up to wait_ms). 1 reaped, 0 still running. */
int proc_reap(proc_t *p, int wait_ms);
/* Whether p may be used for a run: this process started it (a forked copy's handle is not
 * its own) and it has not been reaped. No system call (the process id is cached and renewed
 * in a fork's child), so the run loop may ask before every run; a worker that died since
 * is found by the write or the read that follows. */
int proc_usable(const proc_t *p);
/* This process's id, cached (renewed in the child of a fork). */
pid_t proc_self(void);
/* Closes the pipes and frees the buffers (call after proc_kill or proc_reap). */
void proc_close(proc_t *p);

#endif
