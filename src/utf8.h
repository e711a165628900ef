/* utf8.h - well-formed UTF-8, for the encoders that repair strings before writing them
 * (JSON in lconv.c, YAML in lyaml.c). No Lua here. */
#ifndef FLUXLOOP_UTF8_H
#define FLUXLOOP_UTF8_H

#include <stddef.h>

/* Length of the well-formed UTF-8 sequence starting at p (lead byte >= 0x80), or 0:
 * overlongs, surrogates, code points past U+10FFFF and truncated sequences are bad. */
size_t utf8_seq_len(const unsigned char *p, const unsigned char *end);

/* Whether all n bytes of s are well-formed UTF-8. */
int utf8_valid(const unsigned char *s, size_t n);

#endif
