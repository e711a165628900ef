/* curlapi.c - finds libcurl's functions with dlopen/dlsym, once per process (see curlapi.h). */
#include "curlapi.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* Loaded once for the whole process and shared by every worker: dlopen's handle is the
 * process's, like the library it maps. */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static curl_api api;
static int loaded;
static char load_error[300];

static void *sym(void *lib, const char *name, int *missing) {
  void *p = dlsym(lib, name);
  if (p == NULL && !*missing) {
    *missing = 1;
    snprintf(load_error, sizeof load_error, "libcurl has no %s (libcurl >= 7.62 is needed)", name);
  }
  return p;
}

/* Function pointers come back from dlsym as void *; POSIX guarantees the round trip. */
#define LOAD(field, name) *(void **)&api.field = sym(lib, name, &missing)

static void load(void) {
  const char *names[] = { "libcurl.so.4", "libcurl-gnutls.so.4", "libcurl.so", NULL };
  void *lib = NULL;
  int missing = 0;
  for (int i = 0; names[i] && lib == NULL; i++) lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    snprintf(load_error, sizeof load_error, "cannot load libcurl (%s); install it (Debian: apt-get install "
             "libcurl4)", dlerror());
    return;
  }
  LOAD(global_init, "curl_global_init");
  LOAD(version, "curl_version");
  LOAD(easy_init, "curl_easy_init");
  LOAD(easy_setopt, "curl_easy_setopt");
  LOAD(easy_perform, "curl_easy_perform");
  LOAD(easy_getinfo, "curl_easy_getinfo");
  LOAD(easy_reset, "curl_easy_reset");
  LOAD(easy_cleanup, "curl_easy_cleanup");
  LOAD(easy_strerror, "curl_easy_strerror");
  LOAD(slist_append, "curl_slist_append");
  LOAD(slist_free_all, "curl_slist_free_all");
  LOAD(url, "curl_url");
  LOAD(url_set, "curl_url_set");
  LOAD(url_get, "curl_url_get");
  LOAD(url_cleanup, "curl_url_cleanup");
  LOAD(url_strerror, "curl_url_strerror");
  LOAD(free, "curl_free");
  LOAD(getdate, "curl_getdate");
  if (missing) return; /* the library stays mapped: harmless, and dlclose could race */
  if (api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    snprintf(load_error, sizeof load_error, "curl_global_init failed");
    return;
  }
  loaded = 1;
}

const curl_api *curl_api_get(char *why, size_t why_size) {
  pthread_once(&once, load);
  if (loaded) return &api;
  if (why && why_size) snprintf(why, why_size, "%s", load_error);
  return NULL;
}
