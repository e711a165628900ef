/* yamlscalar.h - what a plain YAML scalar means, and how a value is written so that it
 * reads back the same (the rules fluxloop.yaml decodes and encodes by). No Lua here. */
#ifndef FLUXLOOP_YAMLSCALAR_H
#define FLUXLOOP_YAMLSCALAR_H

#include <stddef.h>

/* What a plain scalar means (YAML 1.1 as PyYAML reads it, with the exceptions in
 * yamlscalar.c: a leading zero is decimal, sexagesimal stays a string). */
enum { SCALAR_STR, SCALAR_NULL, SCALAR_TRUE, SCALAR_FALSE, SCALAR_INT, SCALAR_FLOAT };

int scalar_kind(const char *s, size_t n);

/* For a SCALAR_FLOAT: 1 for .inf, -1 for -.inf, 2 for .nan, 0 for an ordinary number. */
int scalar_special_float(const char *s, size_t n);

/* For a SCALAR_INT written 0x / 0o / 0b (a sign allowed): 1 with its magnitude in *u (and
 * *over set when it passed 64 bits; *d holds it as a double then) and *neg its sign; 0
 * for a decimal integer. */
int scalar_radix_int(const char *s, size_t n, unsigned long long *u, double *d, int *over, int *neg);

/* Writes the shortest %g text of x that reads back as x, with a '.' so that it stays a
 * float (.nan, .inf, -.inf for those); out holds >= 32 bytes. Returns the length. */
size_t scalar_format_float(char *out, double x);

/* Whether a string must be quoted: plain, it would read back as something else, or
 * surprise other YAML 1.1 readers (y/n, dates, times, versions, the merge key). */
int scalar_needs_quotes(const char *s, size_t n);

#endif
