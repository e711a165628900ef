/* signame.h - the names messages give signals ("SIGSEGV"), async-signal-safe (no Lua here). */
#ifndef FLUXLOOP_SIGNAME_H
#define FLUXLOOP_SIGNAME_H

/* "SIGSEGV", "SIGKILL", ...; "a signal" for one without a name here. */
const char *signal_name(int sig);

#endif
