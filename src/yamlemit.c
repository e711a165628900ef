/* yamlemit.c - libyaml's emitter as fluxloop.yaml writes a document (see yamlemit.h). */
#include "yamlemit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "yamlscalar.h"

static int write_out(void *data, unsigned char *s, size_t n) {
  buf_t *b = (buf_t *)data;
  buf_put(b, s, n);
  return !b->failed;
}

/* Emits ev once its initializer said ok. */
static int emit(yamlemit_t *e, yaml_event_t *ev, int ok) {
  if (!ok) { e->error = "out of memory"; return 0; }
  if (!yaml_emitter_emit(&e->emitter, ev)) {
    e->error = e->emitter.problem ? e->emitter.problem : "emitter failed";
    return 0;
  }
  return 1;
}

int yamlemit_open(yamlemit_t *e) {
  yaml_event_t ev;
  buf_init(&e->out);
  buf_init(&e->repaired);
  if (!yaml_emitter_initialize(&e->emitter)) { e->error = "out of memory"; return 0; }
  e->emitter_ok = 1;
  yaml_emitter_set_output(&e->emitter, write_out, &e->out);
  yaml_emitter_set_unicode(&e->emitter, 1);
  yaml_emitter_set_width(&e->emitter, -1); /* never fold long lines */
  yaml_emitter_set_indent(&e->emitter, 2);
  return emit(e, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING)) &&
         emit(e, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1));
}

int yamlemit_finish(yamlemit_t *e) {
  yaml_event_t ev;
  if (!emit(e, &ev, yaml_document_end_event_initialize(&ev, 1)) ||
      !emit(e, &ev, yaml_stream_end_event_initialize(&ev)))
    return 0;
  if (!yaml_emitter_flush(&e->emitter) || e->out.failed) { e->error = "out of memory"; return 0; }
  return 1;
}

void yamlemit_close(yamlemit_t *e) {
  if (e->emitter_ok) yaml_emitter_delete(&e->emitter);
  e->emitter_ok = 0;
  buf_free(&e->out);
  buf_free(&e->repaired);
}

static int scalar(yamlemit_t *e, const char *text, size_t n, yaml_scalar_style_t style) {
  yaml_event_t ev;
  if (n > 0x7fffffff) { e->error = "string too long"; return 0; }
  return emit(e, &ev, yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)text, (int)n, 1, 1, style));
}

int yamlemit_plain(yamlemit_t *e, const char *text, size_t n) { return scalar(e, text, n, YAML_PLAIN_SCALAR_STYLE); }

int yamlemit_integer(yamlemit_t *e, long long v) {
  char num[32];
  return yamlemit_plain(e, num, (size_t)snprintf(num, sizeof num, "%lld", v));
}

int yamlemit_float(yamlemit_t *e, double x) {
  char num[64];
  return yamlemit_plain(e, num, scalar_format_float(num, x));
}

/* s with each byte that is not part of valid UTF-8 replaced by U+FFFD, in e->repaired. */
static void repair_utf8(yamlemit_t *e, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  e->repaired.len = 0;
  while (p < end) {
    size_t w = *p < 0x80 ? 1 : utf8_seq_len(p, end);
    if (w) buf_put(&e->repaired, p, w), p += w;
    else buf_put(&e->repaired, "\xEF\xBF\xBD", 3), p++;
  }
}

int yamlemit_string(yamlemit_t *e, const char *text, size_t n) {
  yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;
  if (!utf8_valid((const unsigned char *)text, n)) {
    repair_utf8(e, text, n);
    if (e->repaired.failed) { e->error = "out of memory"; return 0; }
    text = e->repaired.data;
    n = e->repaired.len;
  }
  if (scalar_needs_quotes(text, n) || memchr(text, '\r', n)) style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
  else if (memchr(text, '\n', n)) style = YAML_LITERAL_SCALAR_STYLE; /* libyaml falls back when unfit */
  return scalar(e, text, n, style);
}

int yamlemit_start(yamlemit_t *e, int mapping, int empty) {
  yaml_event_t ev;
  if (mapping)
    return emit(e, &ev, yaml_mapping_start_event_initialize(
                            &ev, NULL, NULL, 1, empty ? YAML_FLOW_MAPPING_STYLE : YAML_BLOCK_MAPPING_STYLE));
  return emit(e, &ev, yaml_sequence_start_event_initialize(
                          &ev, NULL, NULL, 1, empty ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE));
}

int yamlemit_end(yamlemit_t *e, int mapping) {
  yaml_event_t ev;
  if (mapping) return emit(e, &ev, yaml_mapping_end_event_initialize(&ev));
  return emit(e, &ev, yaml_sequence_end_event_initialize(&ev));
}

static int key_cmp(const void *a, const void *b) {
  const yamlkey_t *x = (const yamlkey_t *)a, *y = (const yamlkey_t *)b;
  int c = memcmp(x->s, y->s, x->n < y->n ? x->n : y->n);
  return c ? c : (x->n > y->n) - (x->n < y->n);
}

const yamlkey_t *yamlemit_sort_keys(yamlkey_t *keys, size_t n) {
  size_t i;
  if (n > 1) qsort(keys, n, sizeof *keys, key_cmp);
  for (i = 1; i < n; i++)
    if (key_cmp(&keys[i - 1], &keys[i]) == 0) return &keys[i];
  return NULL;
}

yamlkey_t *yamlemit_find_key(yamlkey_t *keys, size_t n, const char *s, size_t len) {
  yamlkey_t probe;
  probe.s = s;
  probe.n = len;
  return n ? (yamlkey_t *)bsearch(&probe, keys, n, sizeof *keys, key_cmp) : NULL;
}
