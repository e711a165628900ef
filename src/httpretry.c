/* httpretry.c - when an HTTP request is tried again, and after how long (see httpretry.h). */
#include "httpretry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"

/* Waits are cut into slices so that the run's time limit or Ctrl-C ends them promptly. */
#define WAIT_SLICE_NS (20 * 1000000LL)

int httpretry_status(int s) { return s == 429 || s == 500 || s == 502 || s == 503 || s == 504; }

int httpretry_error(int e) {
  return e == HTTP_ECONNREFUSED || e == HTTP_ECLOSED || e == HTTP_ETIMEDOUT;
}

static uint64_t next_random(uint64_t *rng) {
  uint64_t x = *rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *rng = x;
}

/* The value of header `name` (lower case) of the last response, copied into out; 0 if absent. */
static int header_value(const http_result *res, const char *name, char *out, size_t size) {
  size_t nlen = strlen(name);
  const char *p = res->headers.data, *end = p + res->headers.len;
  while (p && p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *line_end = eol ? eol : end;
    if ((size_t)(line_end - p) > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
      const char *v = p + nlen + 1;
      size_t n;
      while (v < line_end && (*v == ' ' || *v == '\t')) v++;
      n = (size_t)(line_end - v);
      while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == ' ')) n--;
      if (n >= size) n = size - 1;
      memcpy(out, v, n);
      out[n] = '\0';
      return 1;
    }
    p = eol ? eol + 1 : end;
  }
  return 0;
}

/* What the server asked to wait (retry-after-ms, or Retry-After in seconds or as an HTTP
 * date), in ms; -1 when it said nothing. */
static int64_t retry_after_ms(const http_result *res, httpretry_getdate getdate) {
  char v[128];
  if (header_value(res, "retry-after-ms", v, sizeof v)) {
    char *end;
    double ms = strtod(v, &end);
    if (end != v && ms >= 0) return (int64_t)ms;
  }
  if (header_value(res, "retry-after", v, sizeof v)) {
    char *end;
    double s = strtod(v, &end);
    if (end != v && *end == '\0' && s >= 0) return (int64_t)(s * 1000);
    {
      time_t when = getdate(v, NULL);
      if (when != (time_t)-1) {
        int64_t ms = ((int64_t)when * 1000) - clock_wall_ns() / 1000000;
        return ms > 0 ? ms : 0;
      }
    }
  }
  return -1;
}

/* Sleeps ms, asking the cancel function between slices; returns its reason or 0. */
int httpretry_wait(const http_request *req, int64_t ms) {
  int64_t until = clock_mono_ns() + ms * 1000000;
  for (;;) {
    int64_t now = clock_mono_ns(), slice;
    int why = req->cancel ? req->cancel(req->ud, now) : 0;
    if (why) return why;
    if (now >= until) return 0;
    slice = until - now;
    if (slice > WAIT_SLICE_NS) slice = WAIT_SLICE_NS;
    clock_sleep_ms((double)slice / 1e6);
  }
}

/* The wait before attempt n (2, 3, ...), or -1 when there should be no more attempts
 * (with the reason in res->message for a response, which has none otherwise). */
int64_t httpretry_next_wait(http_result *res, const http_request *req, int n, uint64_t *rng,
                            httpretry_getdate getdate) {
  int64_t asked = res->error == HTTP_OK ? retry_after_ms(res, getdate) : -1, wait;
  if (asked >= 0) {
    if (asked > req->max_retry_after_ms) {
      snprintf(res->message, sizeof res->message, "not retried: the server asked to wait %lld ms (Retry-After), "
               "more than max_retry_after_ms = %lld", (long long)asked, (long long)req->max_retry_after_ms);
      return -1;
    }
    wait = asked;
  } else {
    /* Full jitter: uniform in [0, min(max, base * 2^(n-2))]. */
    int64_t cap = req->backoff_ms;
    for (int i = 2; i < n && cap < req->max_backoff_ms; i++) cap *= 2;
    if (cap > req->max_backoff_ms) cap = req->max_backoff_ms;
    wait = cap > 0 ? (int64_t)(next_random(rng) % (uint64_t)(cap + 1)) : 0;
  }
  if (req->deadline_ns > 0 && clock_mono_ns() + wait * 1000000 >= req->deadline_ns) {
    snprintf(res->message, sizeof res->message, "not retried: waiting %lld ms for attempt %d would pass the "
             "run's time limit", (long long)wait, n);
    return -1;
  }
  return wait;
}
