/* fluxloop/agent.h - the ABI of C-native agents: what fluxloop passes in, what an agent returns. */
#ifndef FLUXLOOP_AGENT_H
#define FLUXLOOP_AGENT_H

/*
 * A native agent is a shared library that exports one `fluxloop_agent` descriptor:
 *
 *     #include <fluxloop/agent.h>
 *
 *     static void run(void *state, const fluxloop_request *req, fluxloop_response *res) {
 *       (void)state;
 *       res->output = req->input;              // the host copies it after run returns
 *       res->output_len = req->input_len;
 *     }
 *     FLUXLOOP_EXPORT const fluxloop_agent my_agent = {
 *       FLUXLOOP_AGENT_ABI_VERSION, 0, "my_agent", NULL, run, NULL
 *     };
 *
 * built with `cc -shared -fPIC -I include -o libmy_agent.so my_agent.c` and named in the
 * config as `runner.target: "path/to/libmy_agent.so:my_agent"`.
 *
 * Ownership, in one rule: the host never frees what the agent gives it, and the agent never
 * frees what the host gives it. Every pointer the host passes is valid only until the call
 * that received it returns; every pointer the agent returns must stay valid until then too
 * (the host copies what it keeps right after the call). Strings are UTF-8 and
 * NUL-terminated unless a length comes with them. C99; no allocation crosses the boundary.
 */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this ABI. The host refuses a descriptor whose abi_version differs;
 * it changes whenever a struct below changes. */
#define FLUXLOOP_AGENT_ABI_VERSION 1

/* Marks the descriptor as exported even under -fvisibility=hidden. */
#if defined(__GNUC__) || defined(__clang__)
#define FLUXLOOP_EXPORT __attribute__((visibility("default")))
#else
#define FLUXLOOP_EXPORT
#endif

/* fluxloop_agent.flags */
/* init, run and finish may be called from several threads at once: with --parallel N
 * each worker loads the agent (its own init, state and finish) and runs it at the same
 * time as the others. Without this flag the host serializes every call into the agent
 * (init, run, finish) process-wide, so at most one runs at a time: correct, not parallel. */
#define FLUXLOOP_AGENT_THREAD_SAFE 0x1u

/* fluxloop_request.input_flags */
/* The run's input is not a string (a number, a mapping, a list): input holds its JSON text. */
#define FLUXLOOP_INPUT_JSON 0x1u

/* fluxloop_response.output_flags */
/* output is JSON text to store as a value (an object stays an object in the trace files);
 * without the flag, output is text and stored as a JSON string. */
#define FLUXLOOP_OUTPUT_JSON 0x1u

/* Status codes of the host callbacks. Nothing is recorded when a callback fails; the run
 * goes on, and the agent decides whether the failure matters. */
#define FLUXLOOP_OK 0
/* A *_json argument is not valid JSON (last_error names the argument, line and column). */
#define FLUXLOOP_ERR_JSON (-1)
/* The host refused the call: unknown observation type, unknown or closed span, a call from
 * another thread or outside run, out of memory (last_error says which). */
#define FLUXLOOP_ERR_REJECTED (-2)

/* Callbacks into the host, valid during run only, from the thread that called run.
 * Pass req->host_data as the first argument. A NULL string argument means "none" (JSON
 * null); *_json arguments are NUL-terminated JSON texts ("{\"k\": 1}", "\"text\"", "42"). */
typedef struct fluxloop_host {
  /* Records a finished observation. type is one of span, event, generation, tool, agent,
   * chain, evaluation (NULL: "event"); name may be NULL. If a span is open, the
   * observation becomes its child. Returns FLUXLOOP_OK or a FLUXLOOP_ERR_* code. */
  int (*observe)(void *host_data, const char *type, const char *name, const char *input_json,
                 const char *output_json, const char *metadata_json);
  /* Opens a timed span (type NULL: "span"); observations and spans opened until its
   * span_end are its children. Returns a handle > 0, or a FLUXLOOP_ERR_* code (< 0). */
  int (*span_begin)(void *host_data, const char *type, const char *name, const char *input_json);
  /* Closes the span `span` with its output (JSON or NULL) and, when it failed, an error
   * message (plain text or NULL). Spans still open when run returns are closed by the host
   * with the error "span was not closed before the run ended". Returns FLUXLOOP_OK or a code. */
  int (*span_end)(void *host_data, int span, const char *output_json, const char *error);
  /* Returns size bytes owned by the host (suitably aligned), freed by the host after it has
   * copied this call's response; NULL when out of memory. Use it for an output or error
   * message built during run, so nothing needs freeing. Never free it yourself. */
  void *(*alloc)(void *host_data, size_t size);
  /* The message of the last failed callback of this run, or "" (owned by the host, valid
   * until the next callback). */
  const char *(*last_error)(void *host_data);
} fluxloop_host;

/* What one run receives. Everything is owned by the host and valid until run returns. */
typedef struct fluxloop_request {
  /* The input: input_len bytes (which may include NULs and need not be valid UTF-8),
   * followed by a NUL that is not counted, so text inputs can be used as C strings. */
  const char *input;
  size_t input_len;
  /* FLUXLOOP_INPUT_JSON when the input entry was not a string and input is its JSON text. */
  uint32_t input_flags;
  /* The run's 0-based iteration for this input. */
  int64_t iteration;
  /* The entry's persona, or NULL when it has none. */
  const char *persona;
  /* The run's trace id ("trace_001"); the same on every run of the same experiment. */
  const char *trace_id;
  /* The run's metadata as a JSON object ("{}" when there is none): the entry's other keys,
   * then its metadata mapping. */
  const char *metadata_json;
  /* Replay mode: the recorded arguments (with the input set at the override path) as JSON;
   * NULL when the experiment does not replay arguments. */
  const char *args_json;
  /* Callbacks into the host and their first argument. */
  const fluxloop_host *host;
  void *host_data;
} fluxloop_request;

/* What one run returns. The host zeroes it before the call; the agent fills it in. */
typedef struct fluxloop_response {
  /* The output: output_len bytes (NULs and invalid UTF-8 allowed; bad bytes are stored as
   * U+FFFD). NULL with no error: the run fails with "agent returned nothing". The bytes must
   * stay valid until run returns: a string literal, memory the agent keeps, a pointer into
   * req->input, or a block from host->alloc. The host copies them. */
  const char *output;
  size_t output_len;
  /* FLUXLOOP_OUTPUT_JSON to store output as a JSON value (it must then be valid JSON,
   * else the run fails with error type "invalid_output"). */
  uint32_t output_flags;
  /* Non-NULL: the run failed with this message (NUL-terminated, same lifetime rule as
   * output); output is then ignored. */
  const char *error;
  /* Optional error type for the trace ("rate_limit", "timeout"...); NULL: "agent_error". */
  const char *error_type;
} fluxloop_response;

/* The descriptor, exported under the name given after ':' in runner.target. */
typedef struct fluxloop_agent {
  /* FLUXLOOP_AGENT_ABI_VERSION of the header the agent was built with. */
  uint32_t abi_version;
  /* FLUXLOOP_AGENT_THREAD_SAFE or 0; other bits are reserved (keep them 0). */
  uint32_t flags;
  /* A short name for messages, or NULL. */
  const char *name;
  /* Optional (NULL: no set-up). Called once per load (one load per worker thread with
   * --parallel, each with its own state), before any run of that load, with the runner
   * config as a JSON object (NUL-terminated; valid during the call). Sets *state to
   * whatever run and finish should receive (it starts as NULL). Returns 0 on success; on
   * failure returns non-zero and writes a NUL-terminated reason into err (err_size bytes,
   * owned by the host): the target then fails to load and finish is not called. */
  int (*init)(const char *config_json, void **state, char *err, size_t err_size);
  /* Required. Called once per run with the state init set (or NULL). See fluxloop_request
   * and fluxloop_response for what is valid when. */
  void (*run)(void *state, const fluxloop_request *req, fluxloop_response *res);
  /* Optional. Called once, after the last run, when the agent is closed or collected (also
   * when the experiment stops on an error or interruption): free the state here. */
  void (*finish)(void *state);
} fluxloop_agent;

#ifdef __cplusplus
}
#endif

#endif
