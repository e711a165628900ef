/* fuzz.h - what the fuzz harnesses share: the libFuzzer entry point, one Lua state, loud failure. */
#ifndef FLUXLOOP_FUZZ_H
#define FLUXLOOP_FUZZ_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

/* Each harness (spec/fuzz/<target>.c) defines this; libFuzzer or replay_main.c calls it. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input being replayed (set by replay_main.c), named in failure messages. */
extern const char *fuzz_input_name;

/* Prints "fuzz: <message>" (and the replayed file) on stderr, then aborts, so that
 * libFuzzer keeps the input as a crash and the replay exits non-zero. */
void fuzz_fail(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2), noreturn))
#endif
    ;

/* The process's Lua state, made once: standard libraries and every fluxloop module. */
lua_State *fuzz_state(void);

/* A private temporary folder for this process (removed at exit). */
const char *fuzz_tmpdir(void);

/* Runs a Lua driver over one input.  driver is Lua source returning a function
 * check(data, tmpdir); it is loaded once per chunkname.  check must raise on any
 * broken contract; the raise (with a traceback) becomes fuzz_fail. */
void fuzz_run_lua(const char *driver, const char *chunkname, const uint8_t *data, size_t size);

#endif
