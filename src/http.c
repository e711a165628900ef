/* http.c - HTTP requests on libcurl: one easy handle per client keeps connections alive
 * between requests; each attempt waits for the shared rate limit; failed attempts are
 * retried with exponential backoff and full jitter (or what Retry-After asks) within the
 * retry count and the run's time limit; body bytes go to the caller's callbacks as they
 * arrive, and server-sent events are parsed out of them. */
#include "http.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "curlapi.h"
#include "httpretry.h"
#include "ratelimit.h"
#include "redirect.h"
#include "sse.h"

#define MAX_HEADER_BYTES (1024 * 1024)
/* A body buffer grown past this by one large response is freed after it, not kept. */
#define KEEP_BODY_CAP (1024 * 1024)

struct http_client {
  const curl_api *api;     /* libcurl's functions (curlapi.h) */
  CURL *curl;
  pid_t pid;               /* a forked worker makes its own handle: sockets are not shareable */
  http_result res;
  sse_t sse;
  struct curl_slist *hdrs;
  const http_request *req; /* during http_perform */
  int64_t start_ns;        /* of the whole request */
  int first_write;         /* this attempt has seen body bytes */
  int deliver;             /* this attempt's response is 2xx: bytes go to the callbacks */
  int delivered;           /* callbacks got something: a retry would repeat it */
  int cb_result;           /* a callback stopped (1) or failed (-1) the transfer */
  int too_big;
  int header_too_big;      /* libcurl refused a header line over its limit */
  int cancelled;
  ratelimit_ticket ticket; /* this attempt's place in the rate's window */
  /* Redirects are followed here, one hop at a time (libcurl would carry every header but
   * Authorization to another origin). */
  const char *hop_url;     /* this hop's URL: req->url, then each Location */
  const char *hop_method;
  int hop_body;            /* the request's body goes with this hop */
  int stripped;            /* c->hdrs lacks the secret headers (another origin was reached) */
  char *next_url;          /* the Location being followed (owned) */
  uint64_t rng;
  char errbuf[CURL_ERROR_SIZE];
};

const char *http_version(void) {
  const curl_api *C = curl_api_get(NULL, 0);
  return C ? C->version() : "libcurl not loaded";
}

http_client *http_client_new(char *why, size_t why_size) {
  http_client *c;
  const curl_api *C = curl_api_get(why, why_size);
  if (C == NULL) return NULL;
  c = calloc(1, sizeof *c);
  if (c == NULL) { snprintf(why, why_size, "out of memory"); return NULL; }
  c->api = C;
  c->curl = C->easy_init();
  if (c->curl == NULL) { free(c); snprintf(why, why_size, "curl_easy_init failed"); return NULL; }
  c->pid = getpid();
  buf_init(&c->res.body);
  buf_init(&c->res.headers);
  buf_init(&c->res.usage);
  sse_init(&c->sse);
  c->rng = (uint64_t)clock_mono_ns() ^ ((uint64_t)(uintptr_t)c << 16) ^ (uint64_t)getpid();
  if (c->rng == 0) c->rng = 0x9e3779b97f4a7c15ULL;
  return c;
}

void http_client_free(http_client *c) {
  const curl_api *C;
  if (c == NULL) return;
  C = c->api;
  /* In a forked copy the handle's connections belong to the parent: leave them alone. */
  if (c->curl && c->pid == getpid()) C->easy_cleanup(c->curl);
  C->slist_free_all(c->hdrs);
  free(c->next_url);
  buf_free(&c->res.body);
  buf_free(&c->res.headers);
  buf_free(&c->res.usage);
  sse_free(&c->sse);
  free(c);
}

http_result *http_client_result(http_client *c) { return &c->res; }

const char *http_error_code(int error) {
  switch (error) {
    case HTTP_OK: return "OK";
    case HTTP_ECONNREFUSED: return "ECONNREFUSED";
    case HTTP_EDNS: return "EDNS";
    case HTTP_ETLS: return "ETLS";
    case HTTP_ETIMEDOUT: return "ETIMEDOUT";
    case HTTP_ETOOBIG: return "ETOOBIG";
    case HTTP_EREDIRECT: return "EREDIRECT";
    case HTTP_ECLOSED: return "ECLOSED";
    case HTTP_EURL: return "EURL";
    case HTTP_ECANCELED: return "ECANCELED";
    case HTTP_ECALLBACK: return "ECALLBACK";
    case HTTP_ENOMEM: return "ENOMEM";
    default: return "EHTTP";
  }
}

int http_check_url(const char *url, char *why, size_t why_size) {
  CURLU *u;
  CURLUcode rc;
  char *scheme = NULL, *host = NULL;
  int ok = -1;
  const curl_api *C = curl_api_get(why, why_size);
  if (C == NULL) return -1;
  u = C->url();
  if (u == NULL) { snprintf(why, why_size, "out of memory"); return -1; }
  rc = C->url_set(u, CURLUPART_URL, url, 0);
  if (rc != CURLUE_OK) {
    snprintf(why, why_size, "%s", C->url_strerror(rc));
  } else if (C->url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
             (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
    snprintf(why, why_size, "the scheme must be http:// or https://");
  } else if (C->url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') {
    snprintf(why, why_size, "no host name");
  } else {
    ok = 0;
  }
  C->free(scheme);
  C->free(host);
  C->url_cleanup(u);
  return ok;
}

/* ---- callbacks of one transfer ------------------------------------------ */

static int on_sse_event(void *ud, const sse_event *ev) {
  http_client *c = ud;
  http_result *res = &c->res;
  if (res->events++ == 0) res->first_event_ns = clock_mono_ns() - c->start_ns;
  /* The usage of a streamed answer comes in one of the last events: keep the latest. */
  if (ev->data_len < 65536 && strstr(ev->data, "\"usage\"") != NULL) {
    buf_reset(&res->usage);
    buf_put(&res->usage, ev->data, ev->data_len);
  }
  if (c->deliver && c->req->on_event) {
    int r;
    c->delivered = 1;
    r = c->req->on_event(c->req->ud, ev->event, ev->data, ev->data_len, ev->id);
    if (r != 0) { c->cb_result = r; return 1; }
  }
  return 0;
}

/* The first body bytes of an attempt: the status and headers are known now. */
static int start_body(http_client *c) {
  const curl_api *C = c->api;
  const http_request *req = c->req;
  long code = 0;
  curl_off_t length = -1;
  char *type = NULL;
  c->first_write = 1;
  c->res.ttfb_ns = clock_mono_ns() - c->start_ns;
  C->easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
  C->easy_getinfo(c->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
  C->easy_getinfo(c->curl, CURLINFO_CONTENT_TYPE, &type);
  if (length > 0 && (size_t)length > req->max_body) { c->too_big = 1; return -1; }
  c->res.event_stream = type != NULL && strncasecmp(type, "text/event-stream", 17) == 0;
  /* Only a 2xx body reaches the callbacks: an error body must stay retryable. */
  c->deliver = code >= 200 && code < 300;
  return 0;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *ud) {
  http_client *c = ud;
  const http_request *req = c->req;
  size_t n = size * nmemb;
  if (!c->first_write && start_body(c) != 0) return CURL_WRITEFUNC_ERROR;
  if (c->res.body.len + n > req->max_body) { c->too_big = 1; return CURL_WRITEFUNC_ERROR; }
  buf_put(&c->res.body, data, n);
  if (c->res.body.failed) return CURL_WRITEFUNC_ERROR;
  if (c->deliver && req->on_chunk) {
    int r;
    c->delivered = 1;
    r = req->on_chunk(req->ud, data, n);
    if (r != 0) { c->cb_result = r; return CURL_WRITEFUNC_ERROR; }
  }
  if (c->res.event_stream) {
    int r = sse_feed(&c->sse, data, n, on_sse_event, c);
    if (r < 0 && c->cb_result == 0) { c->res.body.failed = 1; return CURL_WRITEFUNC_ERROR; }
    if (r != 0) return CURL_WRITEFUNC_ERROR;
  }
  return n;
}

/* Header lines of every response of the attempt (redirects, 100 Continue): a status line
 * starts the set over, so what is kept is the final response's. */
static size_t header_cb(char *line, size_t size, size_t nitems, void *ud) {
  http_client *c = ud;
  size_t n = size * nitems;
  if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
    buf_reset(&c->res.headers);
    return n;
  }
  if (n <= 2) return n; /* the blank line */
  if (c->res.headers.len + n > MAX_HEADER_BYTES) return n; /* more is dropped */
  buf_put(&c->res.headers, line, n);
  return n;
}

static int xferinfo_cb(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
  http_client *c = ud;
  (void)dltotal; (void)dlnow; (void)ultotal; (void)ulnow;
  if (c->req->cancel) {
    int why = c->req->cancel(c->req->ud, clock_mono_ns());
    if (why) { c->cancelled = why; return 1; }
  }
  return 0;
}

/* The connection is made and the request is about to go: this is the time the rate's
 * window must remember (a first request's connection can take tens of ms). */
static int prereq_cb(void *ud, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
                     int conn_local_port) {
  http_client *c = ud;
  (void)conn_primary_ip; (void)conn_local_ip; (void)conn_primary_port; (void)conn_local_port;
  ratelimit_sent(&c->ticket);
  return CURL_PREREQFUNC_OK;
}

/* ---- one attempt --------------------------------------------------------- */

static int set_method(const curl_api *C, CURL *h, const http_client *c, const http_request *req) {
  const char *m = c->hop_method;
  int has_body = c->hop_body;
  if (strcmp(m, "GET") == 0 && !has_body) return C->easy_setopt(h, CURLOPT_HTTPGET, 1L) != CURLE_OK;
  if (strcmp(m, "HEAD") == 0) return C->easy_setopt(h, CURLOPT_NOBODY, 1L) != CURLE_OK;
  if (strcmp(m, "POST") == 0 || has_body) {
    C->easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(has_body ? req->body_len : 0));
    C->easy_setopt(h, CURLOPT_POSTFIELDS, has_body ? req->body : "");
  }
  if (strcmp(m, "POST") != 0) return C->easy_setopt(h, CURLOPT_CUSTOMREQUEST, m) != CURLE_OK;
  return 0;
}

/* Sets every option of a hop: curl_easy_reset clears the last request's but keeps the
 * connections, DNS and TLS session caches. */
static int setup(http_client *c, const http_request *req, long timeout_ms) {
  const curl_api *C = c->api;
  CURL *h = c->curl;
  C->easy_reset(h);
  C->easy_setopt(h, CURLOPT_URL, c->hop_url);
  C->easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  C->easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* threads: no alarm(), no SIGPIPE games */
  C->easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
  C->easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
  C->easy_setopt(h, CURLOPT_WRITEDATA, c);
  C->easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
  C->easy_setopt(h, CURLOPT_HEADERDATA, c);
  C->easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  C->easy_setopt(h, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
  C->easy_setopt(h, CURLOPT_XFERINFODATA, c);
  C->easy_setopt(h, CURLOPT_PREREQFUNCTION, prereq_cb); /* libcurl >= 7.80; older ones skip it */
  C->easy_setopt(h, CURLOPT_PREREQDATA, c);
  C->easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* whatever libcurl can decode */
  C->easy_setopt(h, CURLOPT_USERAGENT, "fluxloop/0.1 (libcurl)");
  C->easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
  if (req->connect_timeout_ms > 0) C->easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);
  if (c->hdrs) C->easy_setopt(h, CURLOPT_HTTPHEADER, c->hdrs);
  return set_method(C, h, c, req);
}

static int classify(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_CONNECT: return HTTP_ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_RESOLVE_PROXY: return HTTP_EDNS;
    case CURLE_SSL_CONNECT_ERROR: case CURLE_PEER_FAILED_VERIFICATION: case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER: case CURLE_SSL_CACERT_BADFILE: case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED: case CURLE_SSL_ENGINE_INITFAILED: case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS: case CURLE_SSL_ISSUER_ERROR: case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED: case CURLE_USE_SSL_FAILED:
      return HTTP_ETLS;
    case CURLE_OPERATION_TIMEDOUT: return HTTP_ETIMEDOUT;
    case CURLE_TOO_MANY_REDIRECTS: return HTTP_EREDIRECT;
    case CURLE_PARTIAL_FILE: case CURLE_RECV_ERROR: case CURLE_GOT_NOTHING: case CURLE_SEND_ERROR:
    case CURLE_HTTP2: case CURLE_HTTP2_STREAM: case CURLE_WEIRD_SERVER_REPLY: case CURLE_BAD_CONTENT_ENCODING:
      return HTTP_ECLOSED;
    case CURLE_URL_MALFORMAT: case CURLE_UNSUPPORTED_PROTOCOL: return HTTP_EURL;
    case CURLE_ABORTED_BY_CALLBACK: return HTTP_ECANCELED;
    case CURLE_OUT_OF_MEMORY: return HTTP_ENOMEM;
    default: return HTTP_EOTHER;
  }
}

static void describe(http_client *c, const http_request *req, CURLcode rc, int error, long timeout_ms) {
  const curl_api *C = c->api;
  http_result *res = &c->res;
  const char *detail = c->errbuf[0] ? c->errbuf : C->easy_strerror(rc);
  switch (error) {
    case HTTP_ECONNREFUSED:
      snprintf(res->message, sizeof res->message, "connection refused: nothing accepts connections there (%s)",
               detail);
      break;
    case HTTP_EDNS:
      snprintf(res->message, sizeof res->message, "the host name does not resolve (%s)", detail);
      break;
    case HTTP_ETLS:
      snprintf(res->message, sizeof res->message, "TLS failed (%s); an https:// URL needs a TLS server at that "
               "port, with a certificate this machine trusts", detail);
      break;
    case HTTP_ETIMEDOUT:
      if (timeout_ms > 0)
        snprintf(res->message, sizeof res->message, "no complete response within timeout_ms = %ld ms (%s)",
                 timeout_ms, detail);
      else
        snprintf(res->message, sizeof res->message, "timed out (%s)", detail);
      break;
    case HTTP_ETOOBIG:
      if (c->header_too_big)
        snprintf(res->message, sizeof res->message, "a response header line is larger than %d bytes (%d KB), "
                 "the most libcurl accepts; the request was stopped", CURL_MAX_HTTP_HEADER, CURL_MAX_HTTP_HEADER / 1024);
      else
        snprintf(res->message, sizeof res->message, "the response body is larger than max_body = %zu bytes; "
                 "the request was stopped (raise max_body if it is expected)", req->max_body);
      break;
    case HTTP_EREDIRECT:
      snprintf(res->message, sizeof res->message, "more than %d redirects, a redirect loop? (%s)",
               req->max_redirects, detail);
      break;
    case HTTP_ECLOSED:
      snprintf(res->message, sizeof res->message, "the server closed the connection before the response was "
               "complete, after %zu body bytes (%s)", res->body.len, detail);
      break;
    case HTTP_EURL:
      snprintf(res->message, sizeof res->message, "invalid URL (%s)", detail);
      break;
    case HTTP_ECANCELED:
      snprintf(res->message, sizeof res->message, "%s", "stopped by the run's time limit or by Ctrl-C");
      break;
    case HTTP_ENOMEM:
      snprintf(res->message, sizeof res->message, "%s", "not enough memory for the response");
      break;
    default:
      snprintf(res->message, sizeof res->message, "%s", detail);
  }
}

/* Performs one hop (c->hop_url) within timeout_ms; returns libcurl's code, *code the status. */
static CURLcode perform_hop(http_client *c, const http_request *req, long timeout_ms, long *code) {
  const curl_api *C = c->api;
  http_result *res = &c->res;
  curl_off_t up = 0, down = 0;
  CURLcode rc;
  sigset_t pipe_set, old_set, pending;
  buf_reset(&res->body);
  buf_reset(&res->headers);
  sse_reset(&c->sse);
  res->event_stream = 0;
  c->first_write = c->deliver = c->cb_result = c->too_big = c->header_too_big = c->cancelled = 0;
  c->errbuf[0] = '\0';
  *code = 0;
  if (setup(c, req, timeout_ms) != 0) return CURLE_BAD_FUNCTION_ARGUMENT;
  /* A write to a connection the server closed raises SIGPIPE, which would end an --isolate
   * worker (where it is not ignored): block it for this thread and drop any that came. */
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  rc = C->easy_perform(c->curl);
  if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) && !sigismember(&old_set, SIGPIPE)) {
    struct timespec zero = { 0, 0 };
    sigtimedwait(&pipe_set, NULL, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old_set, NULL);
  C->easy_getinfo(c->curl, CURLINFO_SIZE_UPLOAD_T, &up);
  C->easy_getinfo(c->curl, CURLINFO_SIZE_DOWNLOAD_T, &down);
  res->bytes_sent += up;
  res->bytes_received += down;
  C->easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, code);
  return rc;
}

/* The header lines of the request: every one, or (strip) those the request's is_secret
 * says are not secret; a request without is_secret sends none of its own to another origin. */
static int build_headers(http_client *c, const http_request *req, int strip) {
  const curl_api *C = c->api;
  struct curl_slist *l = NULL, *t;
  C->slist_free_all(c->hdrs);
  c->hdrs = NULL;
  c->stripped = strip;
  /* libcurl would send "Expect: 100-continue" with large bodies and wait for an answer
   * many servers never give. */
  if ((l = C->slist_append(l, "Expect:")) == NULL) return -1;
  for (const char *const *h = req->headers; h && *h; h++) {
    if (strip) {
      const char *colon = strchr(*h, ':');
      size_t n = colon ? (size_t)(colon - *h) : strlen(*h);
      if (req->is_secret == NULL || req->is_secret(req->ud, *h, n)) continue;
    }
    if ((t = C->slist_append(l, *h)) == NULL) { C->slist_free_all(l); return -1; }
    l = t;
  }
  c->hdrs = l;
  return 0;
}

/* After a redirect answer: sets up the next hop (its URL, method, body, headers) and waits
 * for its rate-limit token. HTTP_OK, or an HTTP_E* with res->message set. */
static int next_hop(http_client *c, const http_request *req, int status, const char *location) {
  http_result *res = &c->res;
  char why[160];
  char *copy;
  int keep_body, r, cancel_why = 0;
  int64_t waited = 0;
  if (http_check_url(location, why, sizeof why) != 0) {
    snprintf(res->message, sizeof res->message, "redirected (HTTP %d) to a URL that is not followed: %s", status,
             why);
    return HTTP_EURL;
  }
  copy = strdup(location);
  /* Once another origin is reached, the secret headers stay behind for the rest of it. */
  if (copy == NULL || (!c->stripped && !redirect_same_origin(c->api, c->hop_url, copy) &&
                       build_headers(c, req, 1) != 0)) {
    free(copy);
    snprintf(res->message, sizeof res->message, "not enough memory to follow a redirect");
    return HTTP_ENOMEM;
  }
  free(c->next_url);
  c->next_url = copy;
  c->hop_url = copy;
  c->hop_method = redirect_method(status, c->hop_method, &keep_body);
  c->hop_body = c->hop_body && keep_body;
  /* Each hop is a request to some server: it takes a token like any other. */
  r = ratelimit_acquire(req->cancel, req->ud, &waited, &cancel_why, &c->ticket);
  res->rate_wait_ns += waited;
  if (r != RATELIMIT_OK) {
    c->cancelled = cancel_why;
    snprintf(res->message, sizeof res->message, "stopped by the run's time limit or by Ctrl-C while waiting "
             "for the rate limit");
    return HTTP_ECANCELED;
  }
  return HTTP_OK;
}

/* What is left of an attempt's timeout_ms (0: none) after its earlier hops. */
static long hop_timeout(long timeout_ms, int64_t t0) {
  long left;
  if (timeout_ms == 0) return 0;
  left = timeout_ms - (long)((clock_mono_ns() - t0) / 1000000);
  return left < 1 ? 1 : left;
}

/* The code of a failed hop, from what the callbacks saw and libcurl's code. */
static int hop_error(http_client *c, const http_request *req, CURLcode rc) {
  int error;
  if (c->too_big) error = HTTP_ETOOBIG;
  else if (c->cb_result != 0) error = HTTP_ECALLBACK;
  else if (c->res.body.failed) error = HTTP_ENOMEM;
  else if (!c->first_write && (rc == CURLE_OUT_OF_MEMORY || (int)rc == 100 /* CURLE_TOO_LARGE, 8.6 */)) {
    /* libcurl says "out of memory" for a header line past CURL_MAX_HTTP_HEADER, before
     * any body byte: a real shortage of memory would hardly strike just there. */
    c->header_too_big = 1;
    error = HTTP_ETOOBIG;
  } else error = classify(rc);
  /* The run's time limit is reached through libcurl's own timeout: say which it was. */
  if (error == HTTP_ETIMEDOUT && req->cancel && req->deadline_ns > 0 &&
      clock_mono_ns() >= req->deadline_ns - 2000000) {
    int why = req->cancel(req->ud, req->deadline_ns);
    if (why) { c->cancelled = why; error = HTTP_ECANCELED; }
  }
  return error;
}

/* Runs one attempt, redirects followed. Returns HTTP_OK with the response in res, or an
 * HTTP_E* code. */
static int attempt(http_client *c, const http_request *req, http_attempt *log) {
  const curl_api *C = c->api;
  http_result *res = &c->res;
  int64_t t0 = clock_mono_ns();
  long timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : 0, code = 0;
  CURLcode rc = CURLE_OK;
  int error = HTTP_OK;
  if (req->deadline_ns > 0) {
    long left = (long)((req->deadline_ns - t0) / 1000000) + 1;
    if (left < 1) left = 1;
    if (timeout_ms == 0 || left < timeout_ms) timeout_ms = left;
  }
  if (c->stripped && build_headers(c, req, 0) != 0) { /* a retry starts whole */
    snprintf(res->message, sizeof res->message, "not enough memory for the headers");
    return HTTP_ENOMEM;
  }
  c->hop_url = req->url;
  c->hop_method = req->method ? req->method : "GET";
  c->hop_body = req->body != NULL;
  for (int hops = 0;; hops++) {
    char *location = NULL;
    rc = perform_hop(c, req, hop_timeout(timeout_ms, t0), &code);
    if (rc != CURLE_OK || !req->follow_redirects || !redirect_status((int)code) ||
        C->easy_getinfo(c->curl, CURLINFO_REDIRECT_URL, &location) != CURLE_OK || location == NULL)
      break;
    if (hops == req->max_redirects) {
      snprintf(res->message, sizeof res->message, "more than %d redirects, a redirect loop?", req->max_redirects);
      error = HTTP_EREDIRECT;
      break;
    }
    if ((error = next_hop(c, req, (int)code, location)) != HTTP_OK) break;
  }
  log->duration_ns = clock_mono_ns() - t0;
  if (error == HTTP_OK && (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && c->cb_result == 1))) {
    char *url = NULL;
    res->stopped = rc != CURLE_OK;
    res->status = (int)code;
    log->status = (int)code;
    if (C->easy_getinfo(c->curl, CURLINFO_EFFECTIVE_URL, &url) == CURLE_OK && url)
      snprintf(res->effective_url, sizeof res->effective_url, "%s", url);
    return HTTP_OK;
  }
  if (error == HTTP_OK) {
    error = hop_error(c, req, rc);
    describe(c, req, rc, error, timeout_ms);
  }
  if (error == HTTP_ECANCELED) res->cancelled = c->cancelled;
  res->status = code > 0 && error != HTTP_ECLOSED ? (int)code : 0;
  log->status = (int)code;
  log->error = error;
  return error;
}

static void reset_result(http_client *c) {
  http_result *res = &c->res;
  buf_t body = res->body, headers = res->headers, usage = res->usage;
  if (body.cap > KEEP_BODY_CAP) buf_free(&body);
  buf_reset(&body);
  buf_reset(&headers);
  buf_reset(&usage);
  memset(res, 0, sizeof *res);
  res->body = body;
  res->headers = headers;
  res->usage = usage;
  res->ttfb_ns = res->first_event_ns = -1;
}

int http_perform(http_client *c, const http_request *req) {
  const curl_api *C = c->api;
  http_result *res = &c->res;
  int max_attempts = 1 + (req->retries < 0 ? 0 : req->retries > HTTP_MAX_ATTEMPTS - 1 ? HTTP_MAX_ATTEMPTS - 1
                                                                                       : req->retries);
  int64_t wait = 0;
  if (c->pid != getpid()) { /* forked: the inherited handle's sockets are the parent's */
    c->curl = C->easy_init();
    c->pid = getpid();
    if (c->curl == NULL) { reset_result(c); res->error = HTTP_ENOMEM; return -1; }
  }
  reset_result(c);
  c->req = req;
  c->delivered = 0;
  c->start_ns = clock_mono_ns();
  {
    /* libcurl would guess a scheme for "host/path" (and "http//x"): only a URL that says
     * http:// or https:// goes out. */
    char why[160];
    if (http_check_url(req->url, why, sizeof why) != 0) {
      res->error = HTTP_EURL;
      snprintf(res->message, sizeof res->message, "invalid URL (%s)", why);
      return -1;
    }
  }
  if (build_headers(c, req, 0) != 0) {
    res->error = HTTP_ENOMEM;
    snprintf(res->message, sizeof res->message, "not enough memory for the headers");
    return -1;
  }
  for (int n = 1; n <= max_attempts; n++) {
    http_attempt *log = &res->log[n - 1];
    int slot = -1, why = 0, rl;
    int64_t waited = 0, waited2 = 0;
    memset(log, 0, sizeof *log);
    log->wait_ms = wait;
    res->attempts = n;
    res->message[0] = '\0';
    /* The in-flight slot first, then the rate: the rate's token is taken just before the
     * request goes, so that the time the window remembers is the time it was sent. */
    rl = ratelimit_enter(req->cancel, req->ud, &slot, &waited2, &why);
    if (rl == RATELIMIT_OK) rl = ratelimit_acquire(req->cancel, req->ud, &waited, &why, &c->ticket);
    res->rate_wait_ns += waited + waited2;
    if (rl != RATELIMIT_OK) {
      ratelimit_leave(slot);
      res->error = HTTP_ECANCELED;
      res->cancelled = why;
      log->error = HTTP_ECANCELED;
      snprintf(res->message, sizeof res->message, "stopped by the run's time limit or by Ctrl-C while waiting "
               "for the rate limit");
      break;
    }
    res->error = attempt(c, req, log);
    ratelimit_leave(slot);
    if (res->error == HTTP_ECANCELED || res->error == HTTP_ECALLBACK || n == max_attempts || c->delivered) break;
    if (res->error == HTTP_OK ? !httpretry_status(res->status) : !httpretry_error(res->error)) break;
    wait = httpretry_next_wait(res, req, n + 1, &c->rng, C->getdate);
    if (wait < 0) break;
    if (wait > 0 && (why = httpretry_wait(req, wait)) != 0) {
      res->error = HTTP_ECANCELED;
      res->cancelled = why;
      snprintf(res->message, sizeof res->message, "stopped by the run's time limit or by Ctrl-C while waiting "
               "to retry");
      break;
    }
  }
  res->duration_ns = clock_mono_ns() - c->start_ns;
  c->req = NULL;
  if (res->body.cap > KEEP_BODY_CAP && res->error != HTTP_OK) buf_free(&res->body);
  return res->error == HTTP_OK ? 0 : -1;
}
