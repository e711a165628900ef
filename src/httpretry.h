/* httpretry.h - when an HTTP request is tried again, and after how long: the statuses and
 * errors worth a retry, Retry-After (seconds, ms or an HTTP date), exponential backoff with
 * full jitter, all within the run's time limit. http.c's retry loop asks these. */
#ifndef FLUXLOOP_HTTPRETRY_H
#define FLUXLOOP_HTTPRETRY_H

#include <stdint.h>
#include <time.h>

#include "http.h"

/* Reads an HTTP date (libcurl's curl_getdate). */
typedef time_t (*httpretry_getdate)(const char *text, const time_t *unused);

/* 429, 500, 502, 503, 504: a status worth another attempt. */
int httpretry_status(int status);
/* A connection refused or closed, or a timeout: an error worth another attempt. */
int httpretry_error(int error);
/* Sleeps ms, asking req's cancel function between slices; returns its reason or 0. */
int httpretry_wait(const http_request *req, int64_t ms);
/* The wait before attempt n (2, 3, ...) after the response or error in res, or -1 when
 * there should be no more attempts (why in res->message). rng: the client's random state. */
int64_t httpretry_next_wait(http_result *res, const http_request *req, int n, uint64_t *rng,
                            httpretry_getdate getdate);

#endif
