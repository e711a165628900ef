/* sink.c - writes trace lines in trace order from any number of worker threads. */
#include "sink.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "jsonl.h"
#include "signame.h"

#define WINDOW SINK_WINDOW
/* Lines reach the disk when a buffer holds this much, or this long after the last write. */
#define FLUSH_BYTES (64 * 1024)
#define FLUSH_NS (100 * 1000000LL)
/* The flusher makes a file durable (fdatasync) each time this much more of it has been
 * written. The close-time fsync then waits only for the tail: on a virtual disk it
 * otherwise waited 0.2 s per 250 MB, all of it after the last run. */
#define SYNC_BYTES (16 * 1024 * 1024)

static void sink_free(sink_t *s);
static void register_open(sink_t *s);
static void unregister_open(sink_t *s);

static const char *const file_names[SINK_FILES] = {
  "trace_summary.jsonl", "traces.jsonl", "observations.jsonl", "scores.jsonl"
};

typedef struct slot {
  int64_t k;        /* which trace the slot holds, 0 when empty */
  int skipped;
  buf_t text;       /* the files' lines, one after the other */
  size_t lens[SINK_FILES];
  double ms;
  int success;
} slot_t;

struct sink {
  int refs;                /* changed with __atomic builtins */
  pthread_mutex_t lock;
  pthread_cond_t room;     /* signalled when next advances */
  jsonl_file files[SINK_FILES];
  char *paths[SINK_FILES];
  stats_t stats;
  gradestats_t *grades;    /* figures of the score lines written, when scores.jsonl is open */
  slot_t *slots;           /* WINDOW slots, trace k in slot k % WINDOW */
  int64_t next;            /* the trace the files wait for */
  int64_t last_flush;
  int err;
  int err_file;
  int shutting_down;
  int closed;
  pthread_t flusher;       /* writes what waits in the buffers when no run finishes */
  int has_flusher;
  int stopping;            /* the flusher is asked to end */
  int flusher_running;     /* the flusher thread has started */
  pthread_cond_t tick;     /* wakes the flusher: to stop, or SYNC_BYTES were written */
};

/* Under the lock: writes the buffers, observations first and summaries last, so a
 * summary line on disk means the rest of its trace is there too. */
static int flush_locked(sink_t *s);

static int sync_due(const sink_t *s) {
  for (int i = 0; i < SINK_FILES; i++) {
    if (s->files[i].unsynced >= SYNC_BYTES) return 1;
  }
  return 0;
}

/* Under the lock: fdatasyncs, with the lock released, each file that has SYNC_BYTES
 * unsynced. Workers go on writing meanwhile; sink_close stops the flusher before it
 * closes the files, so the descriptors stay valid. */
static void sync_due_files_locked(sink_t *s) {
  for (int i = 0; i < SINK_FILES; i++) {
    jsonl_file *f = &s->files[i];
    int fd = f->fd, err;
    if (f->unsynced < SYNC_BYTES || fd < 0) continue;
    f->unsynced = 0;
    pthread_mutex_unlock(&s->lock);
    err = fdatasync(fd) == 0 ? 0 : errno;
    pthread_mutex_lock(&s->lock);
    /* A failed sync may have dropped pages, and the close-time fsync would not say so. */
    if (err != 0 && err != EINVAL && !s->err) { s->err = err; s->err_file = i; }
  }
}

/* The flusher: a finished trace reaches the disk within about FLUSH_NS even when no later
 * run finishes for a long time (slow runs, a hang, a crash before the next put); and
 * large files are made durable as they grow (SYNC_BYTES). */
static void *flusher_main(void *arg) {
  sink_t *s = arg;
  pthread_mutex_lock(&s->lock);
  s->flusher_running = 1; /* see start_flusher */
  pthread_cond_broadcast(&s->room);
  while (!s->stopping) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += FLUSH_NS;
    until.tv_sec += until.tv_nsec / 1000000000;
    until.tv_nsec %= 1000000000;
    pthread_cond_timedwait(&s->tick, &s->lock, &until);
    if (s->stopping || s->err) continue;
    if ((s->files[0].buf.len || s->files[1].buf.len || s->files[2].buf.len) &&
        clock_mono_ns() - s->last_flush >= FLUSH_NS)
      flush_locked(s);
    if (sync_due(s)) sync_due_files_locked(s);
  }
  pthread_mutex_unlock(&s->lock);
  return NULL;
}

/* Starts the flusher with every signal blocked: Ctrl-C belongs to the threads that run.
 * Returns once the thread runs: a new thread sets itself up in the allocator, and a fork
 * (--isolate's workers) while it does so can leave an allocator without atfork handlers
 * (AddressSanitizer's) locked in the child for ever. After that the flusher allocates
 * nothing. */
static void start_flusher(sink_t *s) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  s->has_flusher = pthread_create(&s->flusher, NULL, flusher_main, s) == 0;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_mutex_lock(&s->lock);
  while (s->has_flusher && !s->flusher_running) pthread_cond_wait(&s->room, &s->lock);
  pthread_mutex_unlock(&s->lock);
}

sink_t *sink_open(const char *dir, char **bad_path) {
  return sink_open_files(dir, SINK_TRACE_FILES, 1, bad_path);
}

sink_t *sink_open_files(const char *dir, int mask, int64_t iterations, char **bad_path) {
  sink_t *s = calloc(1, sizeof *s);
  *bad_path = NULL;
  if (s == NULL) return NULL;
  pthread_condattr_t mono;
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->room, NULL);
  pthread_condattr_init(&mono);
  pthread_condattr_setclock(&mono, CLOCK_MONOTONIC);
  pthread_cond_init(&s->tick, &mono);
  pthread_condattr_destroy(&mono);
  stats_init(&s->stats);
  for (int i = 0; i < SINK_FILES; i++) s->files[i].fd = -1;
  s->slots = calloc(WINDOW, sizeof *s->slots);
  if (s->slots == NULL) goto fail;
  if (mask & (1 << SINK_SCORES)) {
    s->grades = gradestats_new(iterations);
    if (s->grades == NULL) goto fail;
  }
  for (int i = 0; i < SINK_FILES; i++) {
    if (!(mask & (1 << i))) continue;
    size_t n = strlen(dir) + strlen(file_names[i]) + 2;
    s->paths[i] = malloc(n);
    if (s->paths[i] == NULL) goto fail;
    snprintf(s->paths[i], n, "%s/%s", dir, file_names[i]);
    if (jsonl_open(&s->files[i], s->paths[i]) != 0) {
      int e = errno;
      *bad_path = strdup(s->paths[i]);
      sink_free(s);
      errno = e;
      return NULL;
    }
  }
  s->next = 1;
  s->last_flush = clock_mono_ns();
  s->refs = 1;
  start_flusher(s);
  register_open(s);
  return s;
fail:
  sink_free(s);
  errno = ENOMEM;
  return NULL;
}

static int flush_locked(sink_t *s) {
  /* After a failed write nothing more is written, to any file: a summary line must never
   * promise a trace whose other lines did not make it (--resume trusts the summaries). */
  if (s->err) return -1;
  for (int i = SINK_FILES - 1; i >= 0; i--) {
    if (jsonl_flush(&s->files[i]) != 0) {
      if (!s->err) { s->err = s->files[i].err; s->err_file = i; }
      return -1;
    }
  }
  s->last_flush = clock_mono_ns();
  return 0;
}

/* Under the lock: appends one trace's lines to the file buffers (files not opened take
 * nothing), and counts its grades. */
static void put_lines_locked(sink_t *s, const char *const lines[SINK_FILES], const size_t lens[SINK_FILES]) {
  for (int i = 0; i < SINK_FILES; i++) {
    if (s->files[i].fd >= 0) buf_put(&s->files[i].buf, lines[i], lens[i]);
  }
  if (s->grades != NULL && lens[SINK_SCORES] > 0 &&
      gradestats_add_lines(s->grades, lines[SINK_SCORES], lens[SINK_SCORES]) < 0 && !s->err) {
    s->err = ENOMEM;
    s->err_file = SINK_SCORES;
  }
}

/* Under the lock: moves every trace from next onwards that has arrived into the file
 * buffers, in order. */
static void drain_locked(sink_t *s) {
  int moved = 0;
  for (;;) {
    slot_t *sl = &s->slots[s->next % WINDOW];
    if (sl->k != s->next) break;
    if (!sl->skipped) {
      const char *lines[SINK_FILES];
      size_t off = 0;
      for (int i = 0; i < SINK_FILES; i++) {
        lines[i] = sl->text.data + off;
        off += sl->lens[i];
      }
      put_lines_locked(s, lines, sl->lens);
      stats_add(&s->stats, sl->ms, sl->success);
    }
    sl->k = 0;
    sl->skipped = 0;
    if (sl->text.cap > FLUSH_BYTES) buf_free(&sl->text); /* do not keep a 10 MB slot */
    s->next++;
    moved = 1;
  }
  if (!moved) return;
  pthread_cond_broadcast(&s->room);
  for (int i = 0; i < SINK_FILES; i++) {
    if (s->files[i].buf.failed && !s->err) { s->err = ENOMEM; s->err_file = i; }
  }
  if (s->files[0].buf.len >= FLUSH_BYTES || s->files[1].buf.len >= FLUSH_BYTES ||
      s->files[2].buf.len >= FLUSH_BYTES || s->files[3].buf.len >= FLUSH_BYTES ||
      clock_mono_ns() - s->last_flush >= FLUSH_NS) {
    flush_locked(s);
    if (s->has_flusher && sync_due(s)) pthread_cond_signal(&s->tick);
  }
}

/* Under the lock: waits until trace k fits in the window. Returns 0, or -1 on shutdown. */
static int wait_for_room(sink_t *s, int64_t k) {
  while (k >= s->next + WINDOW && !s->shutting_down) pthread_cond_wait(&s->room, &s->lock);
  return s->shutting_down ? -1 : 0;
}

int sink_put(sink_t *s, int64_t k, const char *const lines[SINK_FILES], const size_t lens[SINK_FILES],
             double duration_ms, int success) {
  slot_t *sl;
  int rc = 0;
  pthread_mutex_lock(&s->lock);
  if (s->closed || k < s->next || wait_for_room(s, k) != 0) { pthread_mutex_unlock(&s->lock); return -1; }
  if (k == s->next) {
    /* In order (always so with one worker): straight into the file buffers, no slot copy. */
    put_lines_locked(s, lines, lens);
    stats_add(&s->stats, duration_ms, success);
    s->slots[k % WINDOW].k = k; /* an empty, already-written slot: drain moves past it */
    s->slots[k % WINDOW].skipped = 1;
    drain_locked(s);
    rc = s->err ? -1 : 0;
    pthread_mutex_unlock(&s->lock);
    return rc;
  }
  sl = &s->slots[k % WINDOW];
  buf_reset(&sl->text);
  for (int i = 0; i < SINK_FILES; i++) {
    buf_put(&sl->text, lines[i], lens[i]);
    sl->lens[i] = lens[i];
  }
  if (sl->text.failed) {
    buf_free(&sl->text);
    if (!s->err) { s->err = ENOMEM; s->err_file = SINK_TRACES; }
    sl->skipped = 1;
    rc = -1;
  }
  sl->ms = duration_ms;
  sl->success = success;
  sl->k = k;
  drain_locked(s);
  if (s->err) rc = -1;
  pthread_mutex_unlock(&s->lock);
  return rc;
}

void sink_skip(sink_t *s, int64_t k) {
  pthread_mutex_lock(&s->lock);
  if (!s->closed && k >= s->next && wait_for_room(s, k) == 0) {
    slot_t *sl = &s->slots[k % WINDOW];
    sl->k = k;
    sl->skipped = 1;
    drain_locked(s);
  }
  pthread_mutex_unlock(&s->lock);
}

int sink_flush(sink_t *s) {
  int rc;
  pthread_mutex_lock(&s->lock);
  rc = flush_locked(s);
  pthread_mutex_unlock(&s->lock);
  return rc;
}

void sink_shutdown(sink_t *s) {
  pthread_mutex_lock(&s->lock);
  s->shutting_down = 1;
  pthread_cond_broadcast(&s->room);
  pthread_mutex_unlock(&s->lock);
}

/* Ends the flusher (it must not sync a descriptor that close() is about to free). */
static void stop_flusher(sink_t *s) {
  int join;
  pthread_mutex_lock(&s->lock);
  join = s->has_flusher && !s->stopping;
  s->stopping = 1;
  pthread_cond_signal(&s->tick);
  pthread_mutex_unlock(&s->lock);
  if (join) pthread_join(s->flusher, NULL);
}

int sink_close(sink_t *s) {
  int rc = 0;
  stop_flusher(s);
  pthread_mutex_lock(&s->lock);
  if (s->closed) { pthread_mutex_unlock(&s->lock); return s->err ? -1 : 0; }
  /* Traces that finished after one that never came are still written, in order. */
  for (int64_t n = 0; s->slots != NULL && !s->err && n < WINDOW; n++) {
    slot_t *sl = &s->slots[s->next % WINDOW];
    if (sl->k != s->next) {
      int64_t k = s->next, nearest = 0;
      for (int i = 0; i < WINDOW; i++) {
        int64_t sk = s->slots[i].k;
        if (sk > k && (nearest == 0 || sk < nearest)) nearest = sk;
      }
      if (nearest == 0) break;
      s->next = nearest;
    }
    drain_locked(s);
  }
  for (int i = SINK_FILES - 1; i >= 0; i--) {
    /* Once a write failed, what is still buffered is dropped (those runs are missing, and
     * --resume runs them); what is on disk is synced and closed. */
    if (s->err) buf_reset(&s->files[i].buf);
    if (jsonl_close(&s->files[i]) != 0) {
      if (!s->err) { s->err = s->files[i].err; s->err_file = i; }
      rc = -1;
    }
  }
  s->closed = 1;
  s->shutting_down = 1;
  pthread_cond_broadcast(&s->room);
  if (s->err) rc = -1;
  pthread_mutex_unlock(&s->lock);
  unregister_open(s);
  return rc;
}

void sink_retain(sink_t *s) {
  __atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
}

void sink_release(sink_t *s) {
  if (s != NULL && __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0) sink_free(s);
}

static void sink_free(sink_t *s) {
  if (s == NULL) return;
  if (!s->closed) sink_close(s);
  for (int i = 0; i < SINK_FILES; i++) free(s->paths[i]);
  if (s->slots) {
    for (int i = 0; i < WINDOW; i++) buf_free(&s->slots[i].text);
    free(s->slots);
  }
  stats_free(&s->stats);
  gradestats_free(s->grades);
  pthread_cond_destroy(&s->room);
  pthread_cond_destroy(&s->tick);
  pthread_mutex_destroy(&s->lock);
  free(s);
}

void sink_stats(sink_t *s, stats_summary_t *out) {
  pthread_mutex_lock(&s->lock);
  stats_summarize(&s->stats, out);
  pthread_mutex_unlock(&s->lock);
}

gradestats_t *sink_grades(sink_t *s, int *oom) {
  gradestats_t *copy = NULL;
  pthread_mutex_lock(&s->lock);
  if (s->grades != NULL) copy = gradestats_clone(s->grades);
  *oom = s->grades != NULL && copy == NULL;
  pthread_mutex_unlock(&s->lock);
  return copy;
}

int sink_error(sink_t *s, const char **path) {
  int err;
  pthread_mutex_lock(&s->lock);
  err = s->err;
  if (path != NULL) *path = err ? s->paths[s->err_file] : NULL;
  pthread_mutex_unlock(&s->lock);
  return err;
}

int64_t sink_done(sink_t *s) {
  int64_t n;
  pthread_mutex_lock(&s->lock);
  n = s->next - 1;
  pthread_mutex_unlock(&s->lock);
  return n;
}

/* ---- last words: a process that is about to die ------------------------ */

/* The open sinks of this process, for a signal handler to find. Process-wide by nature (a
 * signal is the process's); a forked worker inherits the table but is not the owner. */
#define MAX_OPEN 8
static sink_t *volatile open_sinks[MAX_OPEN];
static volatile pid_t open_owner[MAX_OPEN];
static char crash_message[512];

static void register_open(sink_t *s) {
  for (int i = 0; i < MAX_OPEN; i++) {
    if (__sync_bool_compare_and_swap(&open_sinks[i], NULL, s)) { open_owner[i] = getpid(); return; }
  }
}

static void unregister_open(sink_t *s) {
  for (int i = 0; i < MAX_OPEN; i++) __sync_bool_compare_and_swap(&open_sinks[i], s, NULL);
}

/* write(2) of a whole buffer, retrying short writes; nothing else. */
static void write_fully(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    p += w;
    n -= (size_t)w;
  }
}

long long sink_emergency_flush(void) {
  long long saved = 0;
  pid_t self = getpid();
  for (int i = 0; i < MAX_OPEN; i++) {
    sink_t *s = open_sinks[i];
    if (s == NULL || open_owner[i] != self) continue;
    /* A thread inside the sink (or this very thread) holds the lock: its buffers may be
     * half-moved, so they are left alone rather than written torn. */
    if (pthread_mutex_trylock(&s->lock) != 0) return -1;
    if (!s->closed) {
      for (int f = SINK_FILES - 1; f >= 0; f--) { /* summaries last, as flush_locked */
        jsonl_file *jf = &s->files[f];
        if (jf->fd >= 0 && jf->buf.len > 0 && !jf->buf.failed) write_fully(jf->fd, jf->buf.data, jf->buf.len);
        jf->buf.len = 0;
      }
      saved += s->next - 1;
    }
    pthread_mutex_unlock(&s->lock);
  }
  return saved;
}

/* Formats n in decimal without stdio (signal handler). */
static size_t put_decimal(char *out, long long n) {
  char tmp[24];
  size_t len = 0, i = 0;
  if (n < 0) n = 0;
  do { tmp[len++] = (char)('0' + n % 10); n /= 10; } while (n > 0);
  while (len > 0) out[i++] = tmp[--len];
  return i;
}

static void on_crash(int sig) {
  char line[700];
  size_t n = 0;
  long long saved = sink_emergency_flush();
  const char *name = signal_name(sig);
  const char *parts[] = { "fluxloop: ", name, ": ", crash_message, NULL };
  for (int i = 0; parts[i] != NULL; i++) {
    size_t len = strlen(parts[i]);
    if (n + len >= sizeof line - 64) break;
    memcpy(line + n, parts[i], len);
    n += len;
  }
  if (saved >= 0) {
    static const char a[] = " (";
    static const char b[] = " finished traces are on disk)";
    memcpy(line + n, a, sizeof a - 1);
    n += sizeof a - 1;
    n += put_decimal(line + n, saved);
    memcpy(line + n, b, sizeof b - 1);
    n += sizeof b - 1;
  }
  line[n++] = '\n';
  write_fully(2, line, n);
  /* SA_RESETHAND restored the default action: die of the same signal. */
  raise(sig);
}

void sink_flush_on_crash(const char *message) {
  static const int sigs[] = { SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL };
  static char altstack[64 * 1024]; /* a stack overflow still gets its last words */
  struct sigaction sa;
  stack_t ss;
  size_t len = strlen(message);
  if (len >= sizeof crash_message) len = sizeof crash_message - 1;
  memcpy(crash_message, message, len);
  crash_message[len] = '\0';
  ss.ss_sp = altstack;
  ss.ss_size = sizeof altstack;
  ss.ss_flags = 0;
  sigaltstack(&ss, NULL);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_crash;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = (int)(SA_RESETHAND | SA_ONSTACK | SA_NODEFER);
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
}
