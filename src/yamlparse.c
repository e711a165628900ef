/* yamlparse.c - libyaml's parser as fluxloop.yaml reads a document (see yamlparse.h). */
#include "yamlparse.h"

#include <string.h>

#include "yamlscalar.h"

#define TAG_PREFIX "tag:yaml.org,2002:"
#define TAG_PREFIX_LEN (sizeof TAG_PREFIX - 1)

int yamlparse_open_string(yamlparse_t *p, const char *text, size_t len) {
  if (!yaml_parser_initialize(&p->parser)) return -1;
  p->parser_ok = 1;
  p->text = text;
  p->len = len;
  yaml_parser_set_input_string(&p->parser, (const unsigned char *)text, len);
  return 0;
}

int yamlparse_open_file(yamlparse_t *p, const char *path) {
  p->file = fopen(path, "rb");
  if (p->file == NULL) return -1;
  if (!yaml_parser_initialize(&p->parser)) return -2;
  p->parser_ok = 1;
  yaml_parser_set_input_file(&p->parser, p->file);
  return 0;
}

yaml_event_t *yamlparse_next(yamlparse_t *p) {
  if (p->has_event) yaml_event_delete(&p->event);
  p->has_event = 0;
  if (!yaml_parser_parse(&p->parser, &p->event)) return NULL;
  p->has_event = 1;
  return &p->event;
}

void yamlparse_close(yamlparse_t *p) {
  if (p->has_event) yaml_event_delete(&p->event);
  if (p->parser_ok) yaml_parser_delete(&p->parser);
  if (p->file) fclose(p->file);
  p->file = NULL;
  p->has_event = p->parser_ok = 0;
}

int yamlparse_problem(const yamlparse_t *p, yaml_mark_t *m, char *msg, size_t cap) {
  const yaml_parser_t *ps = &p->parser;
  const char *problem = ps->problem ? ps->problem : "cannot parse";
  if (ps->error == YAML_MEMORY_ERROR) return 0;
  *m = ps->problem_mark;
  if (ps->error == YAML_READER_ERROR) { /* only a byte offset is known: count lines up to it */
    size_t i, off = ps->problem_offset < p->len ? ps->problem_offset : p->len;
    memset(m, 0, sizeof *m);
    for (i = 0; i < off; i++) {
      if (p->text[i] == '\n') m->line++, m->column = 0;
      else if (((unsigned char)p->text[i] & 0xC0) != 0x80) m->column++;
    }
  }
  /* libyaml's words for a tab say nothing of tabs: the most common slip in a hand-written file. */
  if (p->text != NULL && ps->error == YAML_SCANNER_ERROR && m->index < p->len && p->text[m->index] == '\t')
    snprintf(msg, cap, "a tab character; YAML indents with spaces only: replace the tab with spaces");
  else if (ps->context && (ps->context_mark.line != m->line || ps->context_mark.column != m->column))
    snprintf(msg, cap, "%s (%s at %d:%d)", problem, ps->context, (int)ps->context_mark.line + 1,
             (int)ps->context_mark.column + 1);
  else if (ps->context)
    snprintf(msg, cap, "%s (%s)", problem, ps->context);
  else
    snprintf(msg, cap, "%s", problem);
  return 1;
}

const char *yaml_shown(char *out, const char *s, size_t n) {
  size_t i, o = 0, max = n > 60 ? 60 : n;
  while (max < n && max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80) max--; /* whole characters */
  for (i = 0; i < max; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\n') {
      memcpy(out + o, "\\n", 2), o += 2;
    } else if (c < 0x20 || c == 0x7F) {
      snprintf(out + o, 5, "\\x%02x", c);
      o += 4;
    } else {
      out[o++] = (char)c;
    }
  }
  if (max < n) memcpy(out + o, "...", 3), o += 3;
  out[o] = '\0';
  return out;
}

static int is_standard(const yaml_char_t *tag) {
  return strncmp((const char *)tag, TAG_PREFIX, TAG_PREFIX_LEN) == 0;
}

const char *yaml_shown_tag(char *out, const yaml_char_t *tag) {
  const char *tail = (const char *)tag + (is_standard(tag) ? TAG_PREFIX_LEN : 0);
  if (!is_standard(tag)) return yaml_shown(out, tail, strlen(tail));
  memcpy(out, "!!", 2);
  yaml_shown(out + 2, tail, strlen(tail));
  return out;
}

int yaml_tag_is(const yaml_char_t *tag, const char *suffix) {
  return tag && is_standard(tag) && strcmp((const char *)tag + TAG_PREFIX_LEN, suffix) == 0;
}

const char *yaml_tag_suffix(const yaml_char_t *tag) { return (const char *)tag + TAG_PREFIX_LEN; }

int yamlparse_scalar_kind(const yaml_event_t *ev) {
  const char *s = (const char *)ev->data.scalar.value;
  size_t n = ev->data.scalar.length;
  const yaml_char_t *tag = ev->data.scalar.tag;
  int k;
  if (tag == NULL) return ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? scalar_kind(s, n) : SCALAR_STR;
  if (strcmp((const char *)tag, "!") == 0 || yaml_tag_is(tag, "str")) return SCALAR_STR;
  k = scalar_kind(s, n);
  if ((yaml_tag_is(tag, "int") && k == SCALAR_INT) || (yaml_tag_is(tag, "null") && k == SCALAR_NULL) ||
      (yaml_tag_is(tag, "bool") && (k == SCALAR_TRUE || k == SCALAR_FALSE)))
    return k;
  if (yaml_tag_is(tag, "float") && (k == SCALAR_INT || k == SCALAR_FLOAT)) return SCALAR_FLOAT;
  if (yaml_tag_is(tag, "int") || yaml_tag_is(tag, "null") || yaml_tag_is(tag, "bool") || yaml_tag_is(tag, "float"))
    return YAML_BAD_VALUE;
  return YAML_BAD_TAG;
}

int yamlparse_container_tag_ok(const yaml_char_t *tag, const char *kind) {
  return !tag || strcmp((const char *)tag, "!") == 0 || yaml_tag_is(tag, kind);
}

int yamlparse_is_merge_key(const yaml_event_t *ev) {
  return yaml_tag_is(ev->data.scalar.tag, "merge") ||
         (ev->data.scalar.tag == NULL && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
          strcmp((const char *)ev->data.scalar.value, "<<") == 0);
}
