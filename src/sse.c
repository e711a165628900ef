/* sse.c - server-sent events as the HTML standard parses them: lines end in LF, CRLF or CR;
 * "field: value" (one space after the colon dropped); a line starting with ':' is a comment;
 * a blank line dispatches the event when it has data. Used to find the events of a model's
 * streamed answer as they arrive. */
#include "sse.h"

#include <string.h>

/* Lines longer than this are dropped rather than held (a stream that never ends a line). */
#define SSE_MAX_LINE (16 * 1024 * 1024)

void sse_init(sse_t *p) {
  memset(p, 0, sizeof *p);
  buf_init(&p->line);
  buf_init(&p->data);
  buf_init(&p->event);
  buf_init(&p->id);
}

void sse_reset(sse_t *p) {
  buf_reset(&p->line);
  buf_reset(&p->data);
  buf_reset(&p->event);
  buf_reset(&p->id);
  p->has_data = 0;
  p->after_cr = 0;
}

void sse_free(sse_t *p) {
  buf_free(&p->line);
  buf_free(&p->data);
  buf_free(&p->event);
  buf_free(&p->id);
}

static int dispatch(sse_t *p, sse_emit_fn emit, void *ud) {
  sse_event ev;
  int r;
  if (!p->has_data) {
    buf_reset(&p->event);
    return 0;
  }
  buf_putc(&p->data, '\0');
  buf_putc(&p->event, '\0');
  buf_putc(&p->id, '\0');
  if (p->data.failed || p->event.failed || p->id.failed) return -1;
  ev.data = p->data.data;
  ev.data_len = p->data.len - 1;
  ev.event = p->event.len > 1 ? p->event.data : "message";
  ev.id = p->id.data;
  r = emit(ud, &ev);
  p->id.len--; /* the id persists across events */
  buf_reset(&p->data);
  buf_reset(&p->event);
  p->has_data = 0;
  return r;
}

/* Handles one complete line (without its end). */
static int take_line(sse_t *p, const char *s, size_t n, sse_emit_fn emit, void *ud) {
  const char *colon;
  size_t name_len, vlen;
  const char *value;
  if (n == 0) return dispatch(p, emit, ud);
  if (s[0] == ':') return 0;
  colon = memchr(s, ':', n);
  name_len = colon ? (size_t)(colon - s) : n;
  value = colon ? colon + 1 : s + n;
  vlen = colon ? n - name_len - 1 : 0;
  if (vlen > 0 && value[0] == ' ') { value++; vlen--; }
  if (name_len == 4 && memcmp(s, "data", 4) == 0) {
    if (p->has_data) buf_putc(&p->data, '\n');
    buf_put(&p->data, value, vlen);
    p->has_data = 1;
  } else if (name_len == 5 && memcmp(s, "event", 5) == 0) {
    buf_reset(&p->event);
    buf_put(&p->event, value, vlen);
  } else if (name_len == 2 && memcmp(s, "id", 2) == 0 && memchr(value, '\0', vlen) == NULL) {
    buf_reset(&p->id);
    buf_put(&p->id, value, vlen);
  } /* retry: and unknown fields are ignored */
  return (p->data.failed || p->event.failed || p->id.failed) ? -1 : 0;
}

int sse_feed(sse_t *p, const char *s, size_t n, sse_emit_fn emit, void *ud) {
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    int r;
    if (p->after_cr && s[i] == '\n') { /* the LF of a CRLF that straddled two chunks */
      p->after_cr = 0;
      i++;
      continue;
    }
    p->after_cr = 0;
    while (j < n && s[j] != '\n' && s[j] != '\r') j++;
    if (j == n) { /* no line end yet: keep the piece */
      if (p->line.len + (n - i) <= SSE_MAX_LINE) buf_put(&p->line, s + i, n - i);
      return p->line.failed ? -1 : 0;
    }
    if (p->line.len > 0) {
      buf_put(&p->line, s + i, j - i);
      if (p->line.failed) return -1;
      r = take_line(p, p->line.data, p->line.len, emit, ud);
      buf_reset(&p->line);
    } else {
      r = take_line(p, s + i, j - i, emit, ud);
    }
    if (r != 0) return r;
    if (s[j] == '\r') {
      if (j + 1 < n && s[j + 1] == '\n') j++;
      else if (j + 1 == n) p->after_cr = 1;
    }
    i = j + 1;
  }
  return 0;
}
