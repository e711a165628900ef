/* textstats.c - a plain C library (no fluxloop header) that examples/textstats_agent.lua calls through fluxloop.ffi. */
#include <ctype.h>
#include <stddef.h>

size_t ts_words(const char *s);
size_t ts_sentences(const char *s);
double ts_avg_word_length(const char *s);
const char *ts_level(double avg_word_length);
int ts_version(void);

/* Words are runs of letters, digits and apostrophes. */
static int word_char(char c) {
  return isalnum((unsigned char)c) || c == '\'';
}

size_t ts_words(const char *s) {
  size_t n = 0;
  int in_word = 0;
  if (s == NULL) return 0;
  for (; *s; s++) {
    if (word_char(*s)) {
      if (!in_word) n++;
      in_word = 1;
    } else {
      in_word = 0;
    }
  }
  return n;
}

/* Sentences end in '.', '!' or '?'; text after the last one counts as one more. */
size_t ts_sentences(const char *s) {
  size_t n = 0;
  int pending = 0;
  if (s == NULL) return 0;
  for (; *s; s++) {
    if (*s == '.' || *s == '!' || *s == '?') {
      if (pending) n++;
      pending = 0;
    } else if (word_char(*s)) {
      pending = 1;
    }
  }
  return n + (size_t)pending;
}

double ts_avg_word_length(const char *s) {
  size_t letters = 0, words = ts_words(s);
  if (words == 0) return 0.0;
  for (; *s; s++) letters += word_char(*s) != 0;
  return (double)letters / (double)words;
}

/* A string the library owns: callers copy it, never free it. */
const char *ts_level(double avg_word_length) {
  if (avg_word_length < 4.0) return "easy";
  if (avg_word_length < 6.0) return "medium";
  return "hard";
}

int ts_version(void) {
  return 1;
}
