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

/* How far ahead of the oldest unwritten trace a worker may finish before it waits:
 * bounds the memory held for reordering. */
#define WINDOW 1024
/* Lines reach the disk when a buffer holds this much, or this long after the last write. */
#define FLUSH_BYTES (64 * 1024)
#define FLUSH_NS (100 * 1000000LL)
/* The flusher makes a file durable (fdatasync) each time this much more of it has been
 * written. The close-time fsync then waits only for the tail: on a virtual disk it
 * otherwise waited 0.2 s per 250 MB, all of it after the last run. */
#define SYNC_BYTES (16 * 1024 * 1024)

static void sink_free(sink_t *s);

static const char *const file_names[SINK_FILES] = {
  "trace_summary.jsonl", "traces.jsonl", "observations.jsonl"
};

typedef struct slot {
  int64_t k;        /* which trace the slot holds, 0 when empty */
  int skipped;
  buf_t text;       /* the three files' lines, one after the other */
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

/* Starts the flusher with every signal blocked: Ctrl-C belongs to the threads that run. */
static void start_flusher(sink_t *s) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  s->has_flusher = pthread_create(&s->flusher, NULL, flusher_main, s) == 0;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

sink_t *sink_open(const char *dir, char **bad_path) {
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
  for (int i = 0; i < SINK_FILES; i++) {
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
  return s;
fail:
  sink_free(s);
  errno = ENOMEM;
  return NULL;
}

static int flush_locked(sink_t *s) {
  for (int i = SINK_FILES - 1; i >= 0; i--) {
    if (jsonl_flush(&s->files[i]) != 0) {
      if (!s->err) { s->err = s->files[i].err; s->err_file = i; }
      return -1;
    }
  }
  s->last_flush = clock_mono_ns();
  return 0;
}

/* Under the lock: moves every trace from next onwards that has arrived into the file
 * buffers, in order. */
static void drain_locked(sink_t *s) {
  int moved = 0;
  for (;;) {
    slot_t *sl = &s->slots[s->next % WINDOW];
    if (sl->k != s->next) break;
    if (!sl->skipped) {
      size_t off = 0;
      for (int i = 0; i < SINK_FILES; i++) {
        buf_put(&s->files[i].buf, sl->text.data + off, sl->lens[i]);
        off += sl->lens[i];
      }
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
      s->files[2].buf.len >= FLUSH_BYTES || clock_mono_ns() - s->last_flush >= FLUSH_NS) {
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
    for (int i = 0; i < SINK_FILES; i++) buf_put(&s->files[i].buf, lines[i], lens[i]);
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
  for (int64_t n = 0; s->slots != NULL && n < WINDOW; n++) {
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

int sink_error(sink_t *s, const char **path) {
  *path = s->err ? s->paths[s->err_file] : NULL;
  return s->err;
}

int64_t sink_done(sink_t *s) {
  int64_t n;
  pthread_mutex_lock(&s->lock);
  n = s->next - 1;
  pthread_mutex_unlock(&s->lock);
  return n;
}
