/* jsonpush.c - a JSON object line checked chunk by chunk (see jsonpush.h): a state machine over the
 * bytes, with the same rules and messages as jv_scan, that never needs more than one byte at a time. */
#include "jsonpush.h"

#include <string.h>

enum {
  S_BEGIN,          /* before the top-level '{' */
  S_KEY_OR_CLOSE,   /* just after '{' */
  S_KEY,            /* after ',' in an object */
  S_COLON,
  S_VALUE,
  S_VALUE_OR_CLOSE, /* just after '[' */
  S_AFTER,          /* after a value: ',' or the container's close */
  S_DONE,           /* after the top-level '}' */
  S_STRING, S_ESCAPE, S_HEX,
  S_WORD,
  N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_ESIGN, N_EXP
};

void jp_init(jp_state *s) {
  memset(s, 0, sizeof *s);
  s->state = S_BEGIN;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

/* A value ended: the event when it was a top-level one. */
static int value_done(jp_state *s) {
  s->state = S_AFTER;
  return s->level == 1 ? JP_VALUE_END : JP_MORE;
}

static int open_container(jp_state *s, char close) {
  if (s->level >= JP_MAX_LEVEL) { s->why = "nested too deeply"; return -1; }
  s->close[s->level++] = close;
  s->state = close == '}' ? S_KEY_OR_CLOSE : S_VALUE_OR_CLOSE;
  return 0;
}

/* The container closes: the line's end, or a value done. */
static int close_container(jp_state *s) {
  if (--s->level == 0) { s->state = S_DONE; return JP_MORE; }
  return value_done(s);
}

/* The first byte of a value (c, consumed). Returns JP_*, or -1 on bad JSON. */
static int start_value(jp_state *s, char c) {
  int top = s->level == 1;
  if (top) s->escaped = 0;
  switch (c) {
  case '"': s->state = S_STRING; s->is_key = 0; break;
  case '{': if (open_container(s, '}') != 0) return -1; break;
  case '[': if (open_container(s, ']') != 0) return -1; break;
  case 't': s->word = "rue"; s->state = S_WORD; break;
  case 'f': s->word = "alse"; s->state = S_WORD; break;
  case 'n': s->word = "ull"; s->state = S_WORD; break;
  case '-': s->state = N_MINUS; break;
  case '0': s->state = N_ZERO; break;
  default:
    if (!is_digit(c)) { s->why = "unexpected character"; return -1; }
    s->state = N_INT;
  }
  return top ? JP_VALUE_START : JP_MORE;
}

/* The string state: plain bytes in one loop (they are most of a long line). */
static size_t skip_plain(const char *p, size_t n) {
  size_t i = 0;
  while (i < n && p[i] != '"' && p[i] != '\\' && (unsigned char)p[i] >= 0x20) i++;
  return i;
}

/* One byte c in a structural or number state; returns JP_*, -1 on bad JSON, or -2 when c is not
 * consumed (a number ended just before it). */
static int step(jp_state *s, char c) {
  switch (s->state) {
  case S_BEGIN:
    if (is_ws(c)) return JP_MORE;
    if (c != '{') { s->why = "not a JSON object"; return -1; }
    return open_container(s, '}') == 0 ? JP_MORE : -1;
  case S_KEY_OR_CLOSE:
    if (c == '}') return close_container(s);
    /* fall through */
  case S_KEY:
    if (is_ws(c)) return JP_MORE;
    if (c != '"') { s->why = "expected a key"; return -1; }
    s->state = S_STRING;
    s->is_key = 1;
    return s->level == 1 ? JP_KEY_START : JP_MORE;
  case S_COLON:
    if (is_ws(c)) return JP_MORE;
    if (c != ':') { s->why = "expected ':'"; return -1; }
    s->state = S_VALUE;
    return JP_MORE;
  case S_VALUE_OR_CLOSE:
    if (c == ']') return close_container(s);
    /* fall through */
  case S_VALUE:
    if (is_ws(c)) return JP_MORE;
    return start_value(s, c);
  case S_AFTER:
    if (is_ws(c)) return JP_MORE;
    if (c == ',') { s->state = s->close[s->level - 1] == '}' ? S_KEY : S_VALUE; return JP_MORE; }
    if (c == s->close[s->level - 1]) return close_container(s);
    s->why = s->close[s->level - 1] == '}' ? "expected ',' or '}'" : "expected ',' or ']'";
    return -1;
  case S_DONE:
    if (is_ws(c)) return JP_MORE;
    s->why = "text after the object";
    return -1;
  case S_ESCAPE:
    if (c == 'u') { s->state = S_HEX; s->hex = 4; return JP_MORE; }
    if (strchr("\"\\/bfnrt", c) == NULL || c == '\0') { s->why = "bad escape in a string"; return -1; }
    s->state = S_STRING;
    return JP_MORE;
  case S_HEX:
    if (!is_hex(c)) { s->why = "bad \\u escape"; return -1; }
    if (--s->hex == 0) s->state = S_STRING;
    return JP_MORE;
  case S_WORD:
    if (c != *s->word) { s->why = "unexpected character"; return -1; }
    if (*++s->word == '\0') return value_done(s);
    return JP_MORE;
  case N_MINUS:
    if (c == '0') { s->state = N_ZERO; return JP_MORE; }
    if (!is_digit(c)) { s->why = "bad number"; return -1; }
    s->state = N_INT;
    return JP_MORE;
  case N_INT:
    if (is_digit(c)) return JP_MORE;
    /* fall through */
  case N_ZERO:
    if (c == '.') { s->state = N_DOT; return JP_MORE; }
    if (c == 'e' || c == 'E') { s->state = N_E; return JP_MORE; }
    return -2;
  case N_DOT:
    if (!is_digit(c)) { s->why = "bad number"; return -1; }
    s->state = N_FRAC;
    return JP_MORE;
  case N_FRAC:
    if (is_digit(c)) return JP_MORE;
    if (c == 'e' || c == 'E') { s->state = N_E; return JP_MORE; }
    return -2;
  case N_E:
    if (c == '+' || c == '-') { s->state = N_ESIGN; return JP_MORE; }
    /* fall through */
  case N_ESIGN:
    if (!is_digit(c)) { s->why = "bad number"; return -1; }
    s->state = N_EXP;
    return JP_MORE;
  case N_EXP:
    return is_digit(c) ? JP_MORE : -2;
  }
  return JP_MORE;
}

int jp_feed(jp_state *s, const char *p, size_t n, size_t *used) {
  size_t i = 0;
  while (i < n) {
    int ev;
    if (s->state == S_STRING) {
      i += skip_plain(p + i, n - i);
      if (i >= n) break;
      if (p[i] == '\\') { s->state = S_ESCAPE; s->escaped |= !s->is_key; i++; continue; }
      if (p[i] != '"') { s->why = "control character in a string"; *used = i; return JP_ERROR; }
      i++;
      if (!s->is_key) ev = value_done(s);
      else { s->state = S_COLON; ev = s->level == 1 ? JP_KEY_END : JP_MORE; }
    } else {
      ev = step(s, p[i]);
      if (ev == -1) { *used = i; return JP_ERROR; }
      if (ev == -2) ev = value_done(s); /* a number ended before p[i]: p[i] is read next */
      else i++;
    }
    if (ev != JP_MORE) { *used = i; return ev; }
  }
  *used = n;
  return JP_MORE;
}

int jp_finish(jp_state *s) {
  if (s->state == S_DONE) return 0;
  if (s->why != NULL) return -1;
  if (s->state == S_BEGIN) s->why = "empty line";
  else if (s->state == S_STRING || s->state == S_ESCAPE || s->state == S_HEX) s->why = "unterminated string";
  else s->why = "unexpected end of line";
  return -1;
}
