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
  pid_t pid;     /* the worker's reaper (procstart.c), the leader of its group; 0 when none */
  int in_fd;     /* the child's stdin, -1 when closed */
  int out_fd;    /* its stdout */
  int err_fd;    /* its stderr */
  buf_t out;     /* stdout bytes not yet returned as lines */
  size_t out_pos;/* where the next line starts in out */
  buf_t err;     /* stderr kept (the tail) */
  int status;    /* wait status once reaped */
  int reaped;
  int exited;    /* seen to have exited (not reaped yet); its group was killed then */
  int64_t checked_ns; /* when a wait for it last asked whether it had exited */
  pid_t owner;   /* the process that started it (a fork's copy must not kill it) */
} proc_t;

void proc_init(proc_t *p);
/* Starts argv[0] (searched on PATH) with argv, in cwd (NULL: ours), with this process's
 * environment plus the "NAME=value" strings of extra_env (NULL-terminated; may be NULL).
 * The command runs under a small reaper that leads its process group and mirrors its exit
 * status; when this process dies (even by kill -9) the reaper kills the whole group, so
 * nothing the worker started outlives us. Returns 0, or -1 with errno. */
int proc_spawn(proc_t *p, char *const argv[], const char *cwd, char *const extra_env[]);
/* Writes all of s. While the worker does not read, waits for room until deadline_ns
 * (monotonic; 0 = none) or until stop() says so (checked every slice_ms), reading its
 * output meanwhile (it may be blocked writing it). 1 written; 0 at the deadline or on
 * stop; -1 when the worker does not take input (it exited or closed its stdin). */
int proc_write(proc_t *p, const char *s, size_t n, int64_t deadline_ns, int (*stop)(void *), void *stop_data,
               int slice_ms);
/* Waits for the next whole stdout line, reading stderr meanwhile, until deadline_ns
 * (monotonic; 0 = none) or until stop() says so (checked every slice_ms). Returns 1 with
 * the line in *line and *len (valid until the next call, without its newline); 0 at the
 * deadline or when stop() returned non-zero; -1 at end of file (the child closed stdout or
 * died: within a slice of its exit, whatever its own children still hold); -2 for a line
 * longer than PROC_MAX_LINE. */
int proc_read_line(proc_t *p, int64_t deadline_ns, int (*stop)(void *), void *stop_data, int slice_ms,
                   const char **line, size_t *len);
/* Bytes written to the worker's stdin that it has not read (0 when unknown). */
size_t proc_unread(const proc_t *p);
/* Kills the whole process group (SIGKILL) and reaps the child. */
void proc_kill(proc_t *p);
/* Reaps the child if it has exited (waiting up to wait_ms), ending its group. 1 reaped, 0
 * still running. */
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

/* In a process just forked from `parent`: makes it the leader of a new process group that
 * is killed whole (SIGKILL) when the parent dies, kill -9 included, so that what it starts
 * dies with it. Async-signal-safe; it takes SIGHUP for the parent-death signal. */
void proc_lead_group(pid_t parent);

/* procstart.c: the fork of proc_spawn. Starts argv under a reaper (see proc_spawn) with
 * the pipe ends in[0], out[1], err[1] as its stdin, stdout and stderr. Returns the
 * reaper's process id, or -1 with errno. */
pid_t proc_start(char *const argv[], const char *cwd, char **env, int in[2], int out[2], int err[2]);

#endif
