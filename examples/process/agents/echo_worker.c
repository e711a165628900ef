/* echo_worker.c - a fluxloop worker (docs/agent-protocol.md) in plain C, with no JSON
 * library: it answers the hello, then each run request with the run's input as the output.
 * Build: cc -O2 -o echo_worker echo_worker.c (make builds build/examples/echo_worker), and
 * set runner.command: ["./echo_worker"].
 *
 * It does not decode the request: it finds the top-level "id" and "input" members by
 * skipping over JSON values (strings with their escapes, nested objects and arrays), and
 * copies their text. A real agent would call its model where the output is written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The end of the JSON value starting at s (s itself when it is not one). */
static const char *skip_value(const char *s) {
  int depth = 0;
  do {
    if (*s == '"') {
      for (s++; *s && *s != '"'; s++)
        if (*s == '\\' && s[1]) s++;
      if (*s) s++;
    } else if (*s == '{' || *s == '[') {
      depth++, s++;
    } else if (*s == '}' || *s == ']') {
      depth--, s++;
    } else if (depth == 0) {
      while (*s && *s != ',' && *s != '}' && *s != ']' && *s != '\n') s++;
    } else {
      s++;
    }
  } while (*s && depth > 0);
  return s;
}

/* The value of member key of the top-level object in line: its text and length, or NULL. */
static const char *member(const char *line, const char *key, size_t *len) {
  const char *s = strchr(line, '{');
  size_t klen = strlen(key);
  if (!s) return NULL;
  s++;
  while (*s == ' ') s++;
  while (*s == '"') {
    const char *name = s + 1, *end = skip_value(s), *value;
    int match = (size_t)(end - name - 1) == klen && memcmp(name, key, klen) == 0;
    value = end;
    while (*value == ' ' || *value == ':') value++;
    end = skip_value(value);
    if (match) {
      *len = (size_t)(end - value);
      return value;
    }
    s = end;
    while (*s == ' ' || *s == ',') s++;
  }
  return NULL;
}

int main(void) {
  char *line = NULL;
  size_t cap = 0;
  /* One write per line: the runner wakes once per message. */
  setvbuf(stdout, NULL, _IOFBF, 1 << 16);
  if (getline(&line, &cap, stdin) < 0) return 1; /* the hello */
  fputs("{\"type\":\"hello\",\"protocol\":1,\"language\":\"c\"}\n", stdout);
  fflush(stdout);
  while (getline(&line, &cap, stdin) >= 0) {
    size_t id_len, input_len;
    const char *id = member(line, "id", &id_len), *input = member(line, "input", &input_len);
    if (!id || !input) {
      fprintf(stderr, "echo_worker: a line without id or input: %.80s\n", line);
      continue;
    }
    printf("{\"type\":\"result\",\"id\":%.*s,\"output\":%.*s}\n", (int)id_len, id, (int)input_len, input);
    fflush(stdout);
  }
  free(line);
  return 0;
}
