/* traceline.c - pieces of trace lines that need no Lua (see traceline.h). */
#include "traceline.h"

#include <math.h>
#include <stdio.h>

#include "clock.h"

/* Hand-formatted from whole nanoseconds: this runs two or three times per trace and printf
 * was 8% of a run. */
void traceline_ms(buf_t *b, double ms) {
  char tmp[64];
  int n;
  if (ms >= 0 && ms < 9e12) {
    uint64_t ns = (uint64_t)(ms * 1e6 + 0.5), frac = ns % 1000000;
    n = (int)jsonenc_integer(tmp, (long long)(ns / 1000000));
    tmp[n++] = '.';
    for (int i = 5; i >= 0; i--) { tmp[n + i] = (char)('0' + frac % 10); frac /= 10; }
    n += 6;
  } else if (isfinite(ms)) {
    n = snprintf(tmp, sizeof tmp, "%.6f", ms); /* negative or huge: rare, keep printf */
  } else {
    PUT_LIT(b, "null"); /* a NaN or infinite override is not a number JSON can hold */
    return;
  }
  while (n > 2 && tmp[n - 1] == '0' && tmp[n - 2] != '.') n--;
  buf_put(b, tmp, (size_t)n);
}

void traceline_int(buf_t *b, long long v) {
  char tmp[24];
  buf_put(b, tmp, jsonenc_integer(tmp, v));
}

void traceline_time(buf_t *b, int64_t wall_ns) {
  char iso[CLOCK_ISO_SIZE];
  buf_putc(b, '"');
  buf_put(b, iso, clock_format_utc(wall_ns, iso));
  buf_putc(b, '"');
}

void traceline_obs_ids(buf_t *b, const char *tid, size_t tid_len, size_t n, int parent) {
  PUT_LIT(b, "{\"trace_id\":");
  jsonenc_string(b, tid, tid_len);
  PUT_LIT(b, ",\"id\":\"");
  buf_put(b, tid, tid_len);
  buf_putc(b, '.');
  traceline_int(b, (long long)n);
  PUT_LIT(b, "\",\"parent_id\":");
  if (parent < 0) {
    PUT_LIT(b, "null");
  } else {
    buf_putc(b, '"');
    buf_put(b, tid, tid_len);
    buf_putc(b, '.');
    traceline_int(b, (long long)parent + 1);
    buf_putc(b, '"');
  }
}

static void put_text_or_null(buf_t *b, const char *s, size_t n) {
  if (s == NULL) PUT_LIT(b, "null");
  else jsonenc_string(b, s, n);
}

static void put_score_fields(buf_t *b, const score_line *s);

void traceline_score(buf_t *b, const char *tid, size_t tid_len, const score_line *s) {
  PUT_LIT(b, "{\"trace_id\":");
  jsonenc_string(b, tid, tid_len);
  put_score_fields(b, s);
}

void traceline_score_tid_json(buf_t *b, const char *tid_json, size_t tid_json_len, const score_line *s) {
  PUT_LIT(b, "{\"trace_id\":");
  buf_put(b, tid_json, tid_json_len);
  put_score_fields(b, s);
}

/* Everything after the trace id. */
static void put_score_fields(buf_t *b, const score_line *s) {
  PUT_LIT(b, ",\"grader\":");
  if (s->grader_json) buf_put(b, s->grader, s->grader_len);
  else jsonenc_string(b, s->grader, s->grader_len);
  PUT_LIT(b, ",\"pass\":");
  if (s->outcome > 0) PUT_LIT(b, "true");
  else if (s->outcome == 0) PUT_LIT(b, "false");
  else PUT_LIT(b, "null");
  PUT_LIT(b, ",\"score\":");
  if (s->has_score && isfinite(s->score)) {
    char tmp[48];
    double whole = floor(s->score);
    /* 1 and 0, the common scores, as integers; others as the shortest exact float. */
    if (whole == s->score && fabs(s->score) < 1e15) buf_put(b, tmp, jsonenc_integer(tmp, (long long)whole));
    else buf_put(b, tmp, jsonenc_float(tmp, s->score));
  } else {
    PUT_LIT(b, "null");
  }
  PUT_LIT(b, ",\"reason\":");
  put_text_or_null(b, s->reason, s->reason_len);
  PUT_LIT(b, ",\"error\":");
  put_text_or_null(b, s->error, s->error_len);
  PUT_LIT(b, ",\"duration_ms\":");
  traceline_ms(b, s->ms);
  PUT_LIT(b, "}\n");
}

void traceline_turn(buf_t *b, const char *content, size_t content_len, const char *role, size_t role_len,
                    const char *source, size_t source_len, long long turn_index) {
  PUT_LIT(b, "{\"content\":");
  jsonenc_string(b, content, content_len);
  PUT_LIT(b, ",\"metadata\":{},\"role\":");
  jsonenc_string(b, role, role_len);
  PUT_LIT(b, ",\"source\":");
  jsonenc_string(b, source, source_len);
  PUT_LIT(b, ",\"turn_index\":");
  traceline_int(b, turn_index);
  buf_putc(b, '}');
}
