/* utf8.c - well-formed UTF-8 (see utf8.h). */
#include "utf8.h"

size_t utf8_seq_len(const unsigned char *p, const unsigned char *end) {
  unsigned c = p[0], lo = 0x80, hi = 0xBF;
  size_t avail = (size_t)(end - p);
  if (c < 0xC2) return 0;
  if (c < 0xE0) return (avail >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
  if (c < 0xF0) {
    if (c == 0xE0) lo = 0xA0;
    else if (c == 0xED) hi = 0x9F;
    return (avail >= 3 && p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80) ? 3 : 0;
  }
  if (c < 0xF5) {
    if (c == 0xF0) lo = 0x90;
    else if (c == 0xF4) hi = 0x8F;
    return (avail >= 4 && p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 &&
            (p[3] & 0xC0) == 0x80) ? 4 : 0;
  }
  return 0;
}

int utf8_valid(const unsigned char *s, size_t n) {
  const unsigned char *p = s, *end = s + n;
  while (p < end) {
    size_t k;
    if (*p < 0x80) { p++; continue; }
    if ((k = utf8_seq_len(p, end)) == 0) return 0;
    p += k;
  }
  return 1;
}
