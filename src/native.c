/* native.c - opens shared libraries and finds agent descriptors in them, with messages that say what to do. */
#include "native.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The descriptor of an agent lives once per process, whatever the number of Lua states that
 * call it, so the lock that serializes agents without FLUXLOOP_AGENT_THREAD_SAFE is
 * process-wide too: the only static state of this file. */
static pthread_mutex_t serial_lock;
static pthread_once_t serial_once = PTHREAD_ONCE_INIT;

static void serial_init(void) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&serial_lock, &attr);
  pthread_mutexattr_destroy(&attr);
}

void native_enter(const fluxloop_agent *agent) {
  if (agent->flags & FLUXLOOP_AGENT_THREAD_SAFE) return;
  pthread_once(&serial_once, serial_init);
  pthread_mutex_lock(&serial_lock);
}

void native_leave(const fluxloop_agent *agent) {
  if (agent->flags & FLUXLOOP_AGENT_THREAD_SAFE) return;
  pthread_mutex_unlock(&serial_lock);
}

const char *native_code(native_status st) {
  switch (st) {
  case NATIVE_OK: return "OK";
  case NATIVE_ENOENT: return "ENOENT";
  case NATIVE_ENOEXEC: return "ENOEXEC";
  case NATIVE_EDLOPEN: return "EDLOPEN";
  case NATIVE_ENOSYM: return "ENOSYM";
  case NATIVE_EABI: return "EABI";
  case NATIVE_EINIT: return "EINIT";
  }
  return "EDLOPEN";
}

/* Copies the current dlerror() text (it is thread-local and reset by the next dl call). */
static void take_dlerror(char *out, size_t size) {
  const char *e = dlerror();
  snprintf(out, size, "%s", e ? e : "no error text");
}

/* 1 when the file starts like an ELF or Mach-O object, 0 when not, -1 when unreadable. */
static int looks_like_object(const char *path) {
  unsigned char m[4];
  ssize_t n;
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  n = read(fd, m, sizeof m);
  close(fd);
  if (n != (ssize_t)sizeof m) return 0;
  if (m[0] == 0x7f && m[1] == 'E' && m[2] == 'L' && m[3] == 'F') return 1;
  /* Mach-O 32/64 bit, either byte order, and fat binaries. */
  if ((m[0] == 0xfe && m[1] == 0xed && m[2] == 0xfa && (m[3] == 0xce || m[3] == 0xcf)) ||
      ((m[0] == 0xce || m[0] == 0xcf) && m[1] == 0xfa && m[2] == 0xed && m[3] == 0xfe) ||
      (m[0] == 0xca && m[1] == 0xfe && m[2] == 0xba && m[3] == 0xbe))
    return 1;
  return 0;
}

/* Tells the reasons dlopen gives in one string apart, so the message can say what to do. */
static native_status classify(const char *path, const char *dlmsg) {
  struct stat sb;
  if (path == NULL) return NATIVE_EDLOPEN;
  if (strchr(path, '/') == NULL) /* searched on the library path: no file to look at */
    return strstr(dlmsg, "No such file") ? NATIVE_ENOENT : NATIVE_EDLOPEN;
  if (stat(path, &sb) != 0) return errno == ENOENT || errno == ENOTDIR ? NATIVE_ENOENT : NATIVE_EDLOPEN;
  if (!S_ISREG(sb.st_mode)) return NATIVE_ENOEXEC;
  return looks_like_object(path) == 0 ? NATIVE_ENOEXEC : NATIVE_EDLOPEN;
}

void *native_open(const char *path, native_status *st, char *err, size_t err_size) {
  char dlmsg[NATIVE_ERR_SIZE / 2];
  void *h;
  dlerror(); /* clear a stale message */
  h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (h != NULL) {
    *st = NATIVE_OK;
    return h;
  }
  take_dlerror(dlmsg, sizeof dlmsg);
  *st = classify(path, dlmsg);
  switch (*st) {
  case NATIVE_ENOENT:
    snprintf(err, err_size, "%s: no such file (dlopen: %s); check the path and build the library first",
             path, dlmsg);
    break;
  case NATIVE_ENOEXEC:
    snprintf(err, err_size, "%s is not a shared library (dlopen: %s); build one with "
             "cc -shared -fPIC -o %s your_sources.c", path, dlmsg, path);
    break;
  default:
    snprintf(err, err_size, "%s could not be loaded (dlopen: %s); a library it needs may be missing, or it "
             "uses a symbol nothing defines (check with: ldd -r %s)", path ? path : "the program", dlmsg,
             path ? path : "");
    break;
  }
  return NULL;
}

void native_close(void *handle) {
  if (handle != NULL) dlclose(handle);
}

void *native_symbol(void *handle, const char *path, const char *symbol, native_status *st,
                    char *err, size_t err_size) {
  char dlmsg[NATIVE_ERR_SIZE / 2];
  void *p;
  dlerror();
  p = dlsym(handle, symbol);
  if (p != NULL) {
    *st = NATIVE_OK;
    return p;
  }
  take_dlerror(dlmsg, sizeof dlmsg);
  *st = NATIVE_ENOSYM;
  snprintf(err, err_size, "%s has no symbol '%s' (dlsym: %s)", path ? path : "the program", symbol, dlmsg);
  return NULL;
}

const fluxloop_agent *native_agent(void *handle, const char *path, const char *symbol,
                                   native_status *st, char *err, size_t err_size) {
  const fluxloop_agent *a = native_symbol(handle, path, symbol, st, err, err_size);
  size_t n;
  if (a == NULL) {
    n = strlen(err);
    snprintf(err + n, err_size - n, "; check the name after ':' in runner.target and that the descriptor "
             "is exported (not static): FLUXLOOP_EXPORT const fluxloop_agent %s = {...};", symbol);
    return NULL;
  }
  if (a->abi_version != FLUXLOOP_AGENT_ABI_VERSION) {
    *st = NATIVE_EABI;
    snprintf(err, err_size, "%s: '%s' has agent ABI version %lu, but this fluxloop implements version %d; "
             "rebuild the agent against this fluxloop's include/fluxloop/agent.h (and check that '%s' is the "
             "fluxloop_agent descriptor, not a function)", path, symbol, (unsigned long)a->abi_version,
             FLUXLOOP_AGENT_ABI_VERSION, symbol);
    return NULL;
  }
  if (a->run == NULL) {
    *st = NATIVE_EABI;
    snprintf(err, err_size, "%s: '%s' has no run function (fluxloop_agent.run is NULL); set it in the descriptor",
             path, symbol);
    return NULL;
  }
  *st = NATIVE_OK;
  return a;
}

native_status native_init(const fluxloop_agent *agent, const char *path, const char *symbol,
                          const char *config_json, void **state, char *err, size_t err_size) {
  char reason[NATIVE_ERR_SIZE / 2];
  int rc;
  *state = NULL;
  if (agent->init == NULL) return NATIVE_OK;
  reason[0] = '\0';
  native_enter(agent);
  rc = agent->init(config_json, state, reason, sizeof reason);
  native_leave(agent);
  if (rc == 0) return NATIVE_OK;
  reason[sizeof reason - 1] = '\0'; /* whatever the agent wrote, it ends here */
  snprintf(err, err_size, "%s: '%s' init failed: %s", path, symbol, reason[0] ? reason : "(the agent gave no reason)");
  *state = NULL;
  return NATIVE_EINIT;
}
