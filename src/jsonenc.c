/* jsonenc.c - JSON text of numbers and strings, straight into a buffer: the pieces every
 * line writer uses (the trace recorder, the Lua encoder in lconv.c). No Lua here. */
#include "jsonenc.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

/* ---- numbers ---------------------------------------------------------- */

size_t jsonenc_integer(char *out, long long v) {
  char tmp[24], *p = tmp + sizeof tmp;
  unsigned long long u = v < 0 ? 0u - (unsigned long long)v : (unsigned long long)v;
  size_t n;
  do {
    *--p = (char)('0' + (int)(u % 10));
    u /= 10;
  } while (u != 0);
  if (v < 0) *--p = '-';
  n = (size_t)(tmp + sizeof tmp - p);
  memcpy(out, p, n);
  return n;
}

size_t jsonenc_float(char *out, double d) {
  static const double pow10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8,
                                  1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15 };
  int prec, n = 0, plain = 1, i, k;
  double a = fabs(d);
  /* Fast path, no printf: the fewest decimals k such that m / 10^k == d for an
   * integer m.  Both are exact doubles, so the division is correctly rounded,
   * i.e. it is what strtod makes of the text "m with k decimals". */
  if (a >= 1e-4 && a < 1e15) {
    for (k = 0; k < (int)(sizeof pow10 / sizeof pow10[0]); k++) {
      double m = floor(a * pow10[k] + 0.5);
      if (m >= 9007199254740992.0) break; /* 2^53: m would not be exact */
      if (m / pow10[k] == a) {
        char digits[24];
        size_t nd = jsonenc_integer(digits, (long long)m), pos = 0;
        if (d < 0) out[pos++] = '-';
        if (nd <= (size_t)k) { /* 0.000ddd */
          out[pos++] = '0';
          out[pos++] = '.';
          memset(out + pos, '0', (size_t)k - nd);
          pos += (size_t)k - nd;
          memcpy(out + pos, digits, nd);
          return pos + nd;
        }
        memcpy(out + pos, digits, nd - (size_t)k);
        pos += nd - (size_t)k;
        out[pos++] = '.';
        if (k == 0) {
          out[pos++] = '0';
        } else {
          memcpy(out + pos, digits + nd - (size_t)k, (size_t)k);
          pos += (size_t)k;
        }
        return pos;
      }
    }
  }
  for (prec = 15; prec <= 17; prec++) {
    n = snprintf(out, 40, "%.*g", prec, d);
    if (prec == 17 || strtod(out, NULL) == d) break;
  }
  for (i = 0; i < n; i++) {
    char c = out[i];
    if (c == 'e' || c == 'E') plain = 0;
    else if (!(c >= '0' && c <= '9') && c != '-' && c != '+') {
      out[i] = '.'; /* the decimal point, whatever the locale says */
      plain = 0;
    }
  }
  if (plain) {
    out[n++] = '.';
    out[n++] = '0';
  }
  return (size_t)n;
}

/* ---- strings ---------------------------------------------------------- */

static void put_escape(buf_t *b, unsigned c) {
  static const char hex[] = "0123456789abcdef";
  char e[6] = { '\\', 'u', '0', '0', 0, 0 };
  switch (c) {
  case '"': buf_put(b, "\\\"", 2); return;
  case '\\': buf_put(b, "\\\\", 2); return;
  case '\n': buf_put(b, "\\n", 2); return;
  case '\t': buf_put(b, "\\t", 2); return;
  case '\r': buf_put(b, "\\r", 2); return;
  case '\b': buf_put(b, "\\b", 2); return;
  case '\f': buf_put(b, "\\f", 2); return;
  default:
    e[4] = hex[c >> 4];
    e[5] = hex[c & 15];
    buf_put(b, e, 6);
  }
}

#define ONES 0x0101010101010101u
#define HIGHS 0x8080808080808080u
/* Nonzero when some byte of w is not plain printable ASCII or is '"' or '\\'. */
#define HAS_SPECIAL(w) \
  ((((w) - ONES * 0x20) & ~(w) & HIGHS) | ((w) & HIGHS) | \
   ((((w) ^ (ONES * '"')) - ONES) & ~((w) ^ (ONES * '"')) & HIGHS) | \
   ((((w) ^ (ONES * '\\')) - ONES) & ~((w) ^ (ONES * '\\')) & HIGHS))

/* A byte copied as it is: printable ASCII other than '"' and '\\'. */
#define PLAIN(c) ((c) >= 0x20 && (c) < 0x80 && (c) != '"' && (c) != '\\')

#ifdef __SSE2__
#include <emmintrin.h>
/* Skips 16-byte blocks of plain printable ASCII without '"' or '\\' (SSE2, which every
 * x86-64 has): a 2 KB recorded prompt costs a few hundred instructions, not thousands. */
static const unsigned char *skip_plain16(const unsigned char *p, const unsigned char *end) {
  const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
  const __m128i space = _mm_set1_epi8(' ');
  while (end - p >= 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    /* A signed compare: bytes >= 0x80 are negative, so "below ' '" catches them too. */
    __m128i bad = _mm_or_si128(_mm_cmplt_epi8(v, space),
                               _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)));
    if (_mm_movemask_epi8(bad) != 0) break;
    p += 16;
  }
  return p;
}
#else
static const unsigned char *skip_plain16(const unsigned char *p, const unsigned char *end) {
  (void)end;
  return p;
}
#endif

void jsonenc_string(buf_t *b, const char *s, size_t n) {
  if (buf_reserve(b, n + 2) != 0) return;
  b->data[b->len++] = '"';
  jsonenc_string_body(b, s, n);
  buf_putc(b, '"');
}

void jsonenc_string_body(buf_t *b, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *end = p + n, *run = p;
  while (p < end) {
    unsigned c;
    size_t k;
    /* Plain ASCII and valid UTF-8 extend the current run, copied in one go. */
    p = skip_plain16(p, end);
    while (end - p >= 8) {
      uint64_t w;
      memcpy(&w, p, 8);
      if (HAS_SPECIAL(w)) break;
      p += 8;
    }
    /* The last few bytes, or those before the special one in this word: a byte at a time
     * here, not through the block loops again (short keys and values are all tail). */
    while (p < end && PLAIN(*p)) p++;
    if (p >= end) break;
    c = *p;
    if (c >= 0x80 && (k = utf8_seq_len(p, end)) != 0) {
      p += k;
      continue;
    }
    if (p > run) buf_put(b, run, (size_t)(p - run));
    if (c >= 0x80) buf_put(b, "\xEF\xBF\xBD", 3); /* U+FFFD for each bad byte */
    else put_escape(b, c);
    run = ++p;
  }
  if (p > run) buf_put(b, run, (size_t)(p - run));
}

