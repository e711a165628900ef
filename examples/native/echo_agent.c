/* echo_agent.c - the example native agent: echoes its input, records an observation and a span, fails on "fail". */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fluxloop/agent.h>

/* The state init makes and finish frees. It is read-only during runs, so run is
 * thread-safe and the descriptor says so. */
typedef struct echo_state {
  const char *prefix;
} echo_state;

/* init: receives the runner config as JSON (unused here) and makes the state. */
static int echo_init(const char *config_json, void **state, char *err, size_t err_size) {
  echo_state *s = malloc(sizeof *s);
  (void)config_json;
  if (s == NULL) {
    snprintf(err, err_size, "out of memory");
    return 1;
  }
  s->prefix = "echo: ";
  *state = s;
  return 0;
}

static void echo_finish(void *state) {
  free(state);
}

static void echo_run(void *state, const fluxloop_request *req, fluxloop_response *res) {
  const echo_state *s = state;
  const fluxloop_host *host = req->host;
  size_t plen = strlen(s->prefix), upper = 0;
  char json[64];
  char *out;
  int span;

  /* An error fails this run only; the message must outlive run, so a literal is fine. */
  if (req->input_len == 0 || strstr(req->input, "fail") != NULL) {
    res->error = "the input asked the echo agent to fail";
    return;
  }

  /* An observation: its input and metadata are JSON texts (metadata_json is already JSON). */
  snprintf(json, sizeof json, "{\"bytes\": %lu}", (unsigned long)req->input_len);
  host->observe(req->host_data, "event", "received", json, NULL, req->metadata_json);

  /* A span with a child observation: the output is built in host-owned memory. */
  span = host->span_begin(req->host_data, "tool", "shout", NULL);
  out = host->alloc(req->host_data, plen + req->input_len);
  if (out == NULL) {
    res->error = "out of memory";
    return;
  }
  memcpy(out, s->prefix, plen);
  for (size_t i = 0; i < req->input_len; i++) {
    unsigned char c = (unsigned char)req->input[i];
    out[plen + i] = (char)toupper(c);
    upper += out[plen + i] != (char)c;
  }
  snprintf(json, sizeof json, "{\"changed\": %lu}", (unsigned long)upper);
  host->observe(req->host_data, "generation", "uppercase", NULL, json, NULL);
  if (span > 0) host->span_end(req->host_data, span, "true", NULL);

  res->output = out; /* copied by the host when run returns; never freed by us */
  res->output_len = plen + req->input_len;
}

FLUXLOOP_EXPORT const fluxloop_agent echo_agent = {
  FLUXLOOP_AGENT_ABI_VERSION,
  FLUXLOOP_AGENT_THREAD_SAFE,
  "echo_agent",
  echo_init,
  echo_run,
  echo_finish,
};
