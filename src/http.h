/* http.h - HTTP requests over libcurl for agents that call models: one client (connection
 * cache) per worker, retries with backoff, Retry-After, the shared rate limit, streamed
 * chunks and server-sent events, and a bound on the body (no Lua here). */
#ifndef FLUXLOOP_HTTP_H
#define FLUXLOOP_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define HTTP_MAX_ATTEMPTS 21         /* retries are capped at 20 */
#define HTTP_DEFAULT_MAX_BODY (64u * 1024 * 1024)

/* Why a request failed (no HTTP response to show for it). */
enum {
  HTTP_OK = 0,
  HTTP_ECONNREFUSED, /* nothing listens there, or the connection was reset at once */
  HTTP_EDNS,         /* the host name does not resolve */
  HTTP_ETLS,         /* the TLS handshake or the certificate failed */
  HTTP_ETIMEDOUT,    /* the request's own timeout_ms passed */
  HTTP_ETOOBIG,      /* the response body is larger than max_body */
  HTTP_EREDIRECT,    /* too many redirects (a loop) */
  HTTP_ECLOSED,      /* the server closed the connection before the response was whole */
  HTTP_EURL,         /* the URL is not an http:// or https:// URL */
  HTTP_ECANCELED,    /* the run's time limit or Ctrl-C (see http_result.cancelled) */
  HTTP_ECALLBACK,    /* a chunk or event callback failed (the caller holds its error) */
  HTTP_ENOMEM,
  HTTP_EOTHER
};

typedef struct http_request http_request;

/* Callbacks get the request's ud. A chunk or event callback returns 0 to go on, 1 to stop
 * the transfer (a success: the response so far is the response) or -1 on failure. */
typedef int (*http_chunk_fn)(void *ud, const char *data, size_t n);
typedef int (*http_event_fn)(void *ud, const char *event, const char *data, size_t n, const char *id);
/* Nonzero (a guard reason: the run's time limit passed, or Ctrl-C) cancels the request. */
typedef int (*http_cancel_fn)(void *ud, int64_t now_ns);
/* Nonzero when the header called name[0, n) holds a secret: it is not sent on to another
 * origin (scheme, host or port) after a redirect. */
typedef int (*http_secret_fn)(void *ud, const char *name, size_t n);

struct http_request {
  const char *method;          /* "GET", "POST", ... */
  const char *url;
  const char *body;            /* NULL: no body */
  size_t body_len;
  const char *const *headers;  /* "Name: value" lines, NULL-terminated (or NULL) */
  long timeout_ms;             /* per attempt; 0 = none */
  long connect_timeout_ms;     /* 0 = libcurl's default */
  int retries;                 /* attempts after the first, 0..20 */
  int64_t backoff_ms;          /* the first retry waits up to this (full jitter), doubling */
  int64_t max_backoff_ms;
  int64_t max_retry_after_ms;  /* a Retry-After beyond this is not waited for */
  size_t max_body;
  int follow_redirects, max_redirects; /* followed here, hop by hop, each taking a rate token */
  int64_t deadline_ns;         /* the run's time limit (monotonic), 0 = none */
  http_chunk_fn on_chunk;      /* raw body bytes of a 2xx response, as they arrive */
  http_event_fn on_event;      /* server-sent events of a 2xx text/event-stream */
  http_cancel_fn cancel;
  http_secret_fn is_secret;    /* NULL: none of headers goes to another origin */
  void *ud;
};

typedef struct http_attempt {
  int status;                  /* 0 when the attempt got no response */
  int error;                   /* HTTP_E* of a failed attempt */
  int64_t wait_ms;             /* waited before it (backoff or Retry-After) */
  int64_t duration_ns;
} http_attempt;

typedef struct http_result {
  int status;                  /* the last response's status, 0 if none */
  int error;                   /* HTTP_OK: a response (any status) is in body/headers */
  char message[400];           /* what went wrong, for people; "" on success */
  int cancelled;               /* the cancel function's reason when error == HTTP_ECANCELED */
  int stopped;                 /* a callback stopped the transfer early */
  int attempts;
  http_attempt log[HTTP_MAX_ATTEMPTS];
  int64_t duration_ns;         /* the whole request, waits and retries included */
  int64_t ttfb_ns;             /* start to the first body byte of the final response, -1 if none */
  int64_t first_event_ns;      /* start to the first server-sent event, -1 if none */
  int64_t rate_wait_ns;        /* time spent waiting for the shared rate limit and cap */
  int64_t bytes_sent, bytes_received;
  long events;                 /* server-sent events seen */
  int event_stream;            /* the response is text/event-stream */
  buf_t body;                  /* the final response's body */
  buf_t headers;               /* its header lines, "Name: value\r\n" each */
  buf_t usage;                 /* data of the last event that mentions "usage" (streams) */
  char effective_url[2048];
} http_result;

typedef struct http_client http_client;

/* A client holds one connection cache; use it from one thread (a worker) at a time. NULL
 * with the reason in why when libcurl cannot be loaded. */
http_client *http_client_new(char *why, size_t why_size);
void http_client_free(http_client *c);
/* The result of the last http_perform, valid until the next one. */
http_result *http_client_result(http_client *c);

/* Performs the request, retrying on connection errors, 429, 500, 502, 503 and 504 as the
 * request says. Returns 0 when a response came (res->status holds it, 2xx or not), else -1
 * with res->error and res->message. */
int http_perform(http_client *c, const http_request *req);

/* Checks an http(s) URL; 0, or -1 with a reason in why. */
int http_check_url(const char *url, char *why, size_t why_size);

/* The code a script sees for an error ("ECONNREFUSED", ...). */
const char *http_error_code(int error);
/* "libcurl/7.88.1 OpenSSL/3.0.11 ..." */
const char *http_version(void);

#endif
