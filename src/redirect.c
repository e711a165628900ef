/* redirect.c - the rules of following a redirect by hand (http.c follows redirects itself so
 * that secret headers stay with the origin they were meant for). */
#include "redirect.h"

#include <string.h>
#include <strings.h>

int redirect_status(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

const char *redirect_method(int status, const char *method, int *keep_body) {
  *keep_body = 1;
  if ((status == 303 && strcmp(method, "HEAD") != 0) ||
      ((status == 301 || status == 302) && strcmp(method, "POST") == 0)) {
    *keep_body = 0;
    return "GET";
  }
  return method;
}

/* The parts of a URL that make its origin; 0, or -1 when it cannot be read. */
typedef struct origin {
  char *scheme, *host, *port;
} origin_t;

static int origin_of(const curl_api *C, const char *url, origin_t *o) {
  CURLU *u = C->url();
  int ok;
  memset(o, 0, sizeof *o);
  if (u == NULL) return -1;
  ok = C->url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
       C->url_get(u, CURLUPART_SCHEME, &o->scheme, 0) == CURLUE_OK &&
       C->url_get(u, CURLUPART_HOST, &o->host, 0) == CURLUE_OK &&
       C->url_get(u, CURLUPART_PORT, &o->port, CURLU_DEFAULT_PORT) == CURLUE_OK;
  C->url_cleanup(u);
  return ok ? 0 : -1;
}

static void origin_free(const curl_api *C, origin_t *o) {
  C->free(o->scheme);
  C->free(o->host);
  C->free(o->port);
}

int redirect_same_origin(const curl_api *C, const char *a, const char *b) {
  origin_t x = { NULL, NULL, NULL }, y = { NULL, NULL, NULL };
  int same = origin_of(C, a, &x) == 0 && origin_of(C, b, &y) == 0 && strcasecmp(x.scheme, y.scheme) == 0 &&
             strcasecmp(x.host, y.host) == 0 && strcmp(x.port, y.port) == 0;
  origin_free(C, &x);
  origin_free(C, &y);
  return same;
}
