/* yamlscalar.c - what a plain YAML scalar means, and how values are written (see yamlscalar.h). */
#include "yamlscalar.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_word(const char *s, size_t n, const char *const *words) {
  for (; *words; words++)
    if (strlen(*words) == n && memcmp(s, *words, n) == 0) return 1;
  return 0;
}

static const char *const null_words[] = { "~", "null", "Null", "NULL", NULL };
static const char *const true_words[] = { "true", "True", "TRUE", "yes", "Yes", "YES",
                                          "on", "On", "ON", NULL };
static const char *const false_words[] = { "false", "False", "FALSE", "no", "No", "NO",
                                           "off", "Off", "OFF", NULL };
static const char *const inf_words[] = { ".inf", ".Inf", ".INF", NULL };
static const char *const nan_words[] = { ".nan", ".NaN", ".NAN", NULL };

static int digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return 99;
}

/* [0-9_]* digits of `base` from s[i]; returns the index after them and counts real digits. */
static size_t scan_digits(const char *s, size_t i, size_t n, int base, size_t *ndigits) {
  *ndigits = 0;
  for (; i < n; i++) {
    if (s[i] == '_') continue;
    if (digit_value(s[i]) >= base) break;
    (*ndigits)++;
  }
  return i;
}

/* The base of an integer written 0x / 0o / 0b from s[i], or 0. */
static int radix_of(const char *s, size_t i, size_t n) {
  if (n - i <= 2 || s[i] != '0') return 0;
  return s[i + 1] == 'x' ? 16 : s[i + 1] == 'o' ? 8 : s[i + 1] == 'b' ? 2 : 0;
}

/* Integers: [-+]? then 0x/0o/0b with digits, or decimal [0-9][0-9_]*.  A leading zero does
 * NOT mean octal (YAML 1.1 reads 0755 as 493, YAML 1.2 and most people as 755): we choose
 * decimal, so "0755" is 755; write 0o755 for octal.  Sexagesimal (1:30) stays a string.
 * Floats: [-+]? then digits '.' digits?, '.' digits, or digits with an exponent (1e3),
 * each with an optional [eE][-+]?[0-9]+; plus [-+]?.inf and .nan in three spellings. */
int scalar_kind(const char *s, size_t n) {
  size_t i = 0, nd, nd2;
  int base;
  if (n == 0 || is_word(s, n, null_words)) return SCALAR_NULL;
  if (is_word(s, n, true_words)) return SCALAR_TRUE;
  if (is_word(s, n, false_words)) return SCALAR_FALSE;
  if (is_word(s, n, nan_words)) return SCALAR_FLOAT;
  if (s[0] == '-' || s[0] == '+') i = 1;
  if (is_word(s + i, n - i, inf_words)) return SCALAR_FLOAT;
  if (i == n) return SCALAR_STR;
  if ((base = radix_of(s, i, n)) != 0) {
    size_t end = scan_digits(s, i + 2, n, base, &nd);
    return end == n && nd > 0 ? SCALAR_INT : SCALAR_STR;
  }
  if (s[i] >= '0' && s[i] <= '9') {
    i = scan_digits(s, i, n, 10, &nd);
    if (i == n) return SCALAR_INT;
    if (s[i] == '.') i = scan_digits(s, i + 1, n, 10, &nd2);
    else if (s[i] != 'e' && s[i] != 'E') return SCALAR_STR;
  } else if (s[i] == '.' && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '9') {
    i = scan_digits(s, i + 1, n, 10, &nd2);
  } else {
    return SCALAR_STR;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '-' || s[i] == '+')) i++;
    if (i == n) return SCALAR_STR;
    for (; i < n; i++)
      if (s[i] < '0' || s[i] > '9') return SCALAR_STR;
  }
  return i == n ? SCALAR_FLOAT : SCALAR_STR;
}

int scalar_special_float(const char *s, size_t n) {
  size_t i = n > 0 && (s[0] == '-' || s[0] == '+');
  if (is_word(s + i, n - i, inf_words)) return s[0] == '-' ? -1 : 1;
  if (is_word(s, n, nan_words)) return 2;
  return 0;
}

int scalar_radix_int(const char *s, size_t n, unsigned long long *u, double *d, int *over, int *neg) {
  size_t i = n > 0 && (s[0] == '-' || s[0] == '+');
  int base = radix_of(s, i, n);
  if (!base) return 0;
  *neg = s[0] == '-';
  *u = 0, *d = 0, *over = 0;
  for (i += 2; i < n; i++) {
    int v = digit_value(s[i]);
    if (s[i] == '_') continue;
    if (*u > (~0ULL - (unsigned)v) / (unsigned)base) *over = 1;
    *u = *u * (unsigned)base + (unsigned)v;
    *d = *d * base + v;
  }
  return 1;
}

size_t scalar_format_float(char *out, double x) {
  int prec;
  char *e;
  if (x != x) return (size_t)sprintf(out, ".nan");
  if (isinf(x)) return (size_t)sprintf(out, x > 0 ? ".inf" : "-.inf");
  for (prec = 15; prec < 17; prec++) {
    sprintf(out, "%.*g", prec, x);
    if (strtod(out, NULL) == x) break;
  }
  sprintf(out, "%.*g", prec, x);
  if (strchr(out, '.') == NULL) {
    e = strchr(out, 'e');
    if (e) {
      memmove(e + 2, e, strlen(e) + 1);
      memcpy(e, ".0", 2);
    } else {
      strcat(out, ".0");
    }
  }
  return strlen(out);
}

int scalar_needs_quotes(const char *s, size_t n) {
  size_t i = (n > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  if (scalar_kind(s, n) != SCALAR_STR) return 1;
  if (n == 1 && strchr("yYnN", s[0])) return 1;
  if (n == 2 && memcmp(s, "<<", 2) == 0) return 1;
  if (i < n && s[i] == '.') i++;
  return i < n && s[i] >= '0' && s[i] <= '9';
}
