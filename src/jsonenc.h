/* jsonenc.h - JSON text of numbers and strings, appended to a buffer (no Lua). */
#ifndef FLUXLOOP_JSONENC_H
#define FLUXLOOP_JSONENC_H

#include <stddef.h>

#include "buf.h"

/* Appends a string literal to b (quotes included) without its length: PUT_LIT(b, "null"). */
#define PUT_LIT(b, s) buf_put((b), (s), sizeof(s) - 1)

/* Writes v in decimal to out (>= 21 bytes), no printf; returns the length. */
size_t jsonenc_integer(char *out, long long v);

/* Writes finite d to out (>= 40 bytes) with the fewest of 15..17 digits that read back as
 * d, always with a '.' or an exponent so it stays a float. Returns the length. */
size_t jsonenc_float(char *out, double d);

/* Appends s (n bytes) as a JSON string literal, quotes included. Bytes that are not valid
 * UTF-8 become U+FFFD each; control characters are escaped. */
void jsonenc_string(buf_t *b, const char *s, size_t n);
/* The same without the quotes: a long string encoded piece by piece (cut between UTF-8
 * sequences, or a cut one would become U+FFFD). */
void jsonenc_string_body(buf_t *b, const char *s, size_t n);

#endif
