/* native.h - shared libraries and agent descriptors: dlopen, dlsym, ABI check, init (no Lua). */
#ifndef FLUXLOOP_NATIVE_H
#define FLUXLOOP_NATIVE_H

#include <stddef.h>

#include "fluxloop/agent.h"

/* Why a load failed; native_code() gives the short code the Lua modules return. */
typedef enum native_status {
  NATIVE_OK = 0,
  NATIVE_ENOENT,  /* no such file */
  NATIVE_ENOEXEC, /* the file is not a shared library */
  NATIVE_EDLOPEN, /* a shared library that dlopen refused (missing dependency, undefined symbol) */
  NATIVE_ENOSYM,  /* the library has no such symbol */
  NATIVE_EABI,    /* the descriptor's ABI version differs from ours, or it has no run */
  NATIVE_EINIT    /* the agent's init hook failed */
} native_status;

/* Room for any message below; longer dlerror() texts are cut. */
#define NATIVE_ERR_SIZE 1024

/* "ENOENT", "ENOEXEC", "EDLOPEN", "ENOSYM", "EABI", "EINIT" (or "OK"). */
const char *native_code(native_status st);

/* dlopen(path, RTLD_NOW | RTLD_LOCAL); path NULL opens the program itself. Returns the
 * handle, or NULL with *st set and a message in err that names the path, quotes dlerror()
 * and says what to do. */
void *native_open(const char *path, native_status *st, char *err, size_t err_size);

/* dlclose; NULL is ignored. */
void native_close(void *handle);

/* dlsym; returns the address, or NULL with NATIVE_ENOSYM and a message naming path
 * (for messages only; NULL: "the program") and symbol. */
void *native_symbol(void *handle, const char *path, const char *symbol, native_status *st,
                    char *err, size_t err_size);

/* Finds the agent descriptor `symbol` and checks its ABI version and run hook. */
const fluxloop_agent *native_agent(void *handle, const char *path, const char *symbol,
                                   native_status *st, char *err, size_t err_size);

/* Calls the descriptor's init (if any) with config_json; on failure returns NATIVE_EINIT
 * with the agent's reason in err. *state is the agent's state (NULL when it has no init). */
native_status native_init(const fluxloop_agent *agent, const char *path, const char *symbol,
                          const char *config_json, void **state, char *err, size_t err_size);

/* Brackets every call into an agent without FLUXLOOP_AGENT_THREAD_SAFE (init, run,
 * finish), so that such an agent never runs on two threads at once, whichever Lua state
 * (worker) calls it. One recursive process-wide lock: a nested call on the same thread
 * goes through. Agents with the flag are not locked. */
void native_enter(const fluxloop_agent *agent);
void native_leave(const fluxloop_agent *agent);

#endif
