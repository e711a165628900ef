/* curlapi.h - libcurl's functions, loaded with dlopen when fluxloop.http is first used: a
 * run that makes no request never maps libcurl and the 30-odd libraries it pulls in (6 MB
 * of RSS and 10 ms at every start). No Lua here. */
#ifndef FLUXLOOP_CURLAPI_H
#define FLUXLOOP_CURLAPI_H

#include <stddef.h>
#include <time.h>

#define CURL_DISABLE_TYPECHECK /* calls go through the pointers below, not the macros */
#include <curl/curl.h>

typedef struct curl_api {
  CURLcode (*global_init)(long flags);
  char *(*version)(void);
  CURL *(*easy_init)(void);
  CURLcode (*easy_setopt)(CURL *h, CURLoption option, ...);
  CURLcode (*easy_perform)(CURL *h);
  CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
  void (*easy_reset)(CURL *h);
  void (*easy_cleanup)(CURL *h);
  const char *(*easy_strerror)(CURLcode code);
  struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
  void (*slist_free_all)(struct curl_slist *list);
  CURLU *(*url)(void);
  CURLUcode (*url_set)(CURLU *u, CURLUPart part, const char *content, unsigned int flags);
  CURLUcode (*url_get)(const CURLU *u, CURLUPart part, char **content, unsigned int flags);
  void (*url_cleanup)(CURLU *u);
  const char *(*url_strerror)(CURLUcode code);
  void (*free)(void *p);
  time_t (*getdate)(const char *s, const time_t *unused);
} curl_api;

/* The loaded functions (libcurl.so.4, initialised once per process), or NULL with the reason
 * in why. Thread-safe. */
const curl_api *curl_api_get(char *why, size_t why_size);

#endif
