/* redirect.h - the rules of following a redirect by hand: which method the next request
 * uses, and whether it stays with the same origin (no Lua here). */
#ifndef FLUXLOOP_REDIRECT_H
#define FLUXLOOP_REDIRECT_H

#include "curlapi.h"

/* Whether status is a redirect that has a Location to follow. */
int redirect_status(int status);

/* The method of the request that follows a `status` answer to `method`: 303 turns anything
 * but HEAD into GET, and 301 or 302 turn a POST into GET (as browsers and libcurl do);
 * *keep_body says whether the body goes again. */
const char *redirect_method(int status, const char *method, int *keep_body);

/* 1 when two http(s) URLs have the same scheme, host (any case) and port (the scheme's
 * default when none is given); 0 when they differ or one cannot be read. */
int redirect_same_origin(const curl_api *C, const char *a, const char *b);

#endif
