/* regex.h - compiled PCRE2 patterns for graders: Perl syntax (\d, \b, lookarounds), searched
 * in UTF-8 text that may hold invalid bytes, with a bound on the work one search may take. */
#ifndef FLUXLOOP_REGEX_H
#define FLUXLOOP_REGEX_H

#include <stddef.h>

typedef struct fl_regex fl_regex;

enum { REGEX_CASELESS = 1, REGEX_MULTILINE = 2, REGEX_DOTALL = 4 };

/* Compiles pattern (n bytes, may hold NUL). Returns the regex, or NULL with a message in
 * err (PCRE2's own words) and the byte offset of the problem in *where. */
fl_regex *regex_compile(const char *pattern, size_t n, int flags, char *err, size_t errcap, size_t *where);

/* Searches s (n bytes). Returns 1 with [*start, *end) set on a match, 0 on none, and -1 when
 * the search took more than its bound of backtracking (a pattern that explodes on this text;
 * err says so). Not thread-safe for one regex: each Lua state compiles its own. */
int regex_search(fl_regex *re, const char *s, size_t n, size_t *start, size_t *end, char *err, size_t errcap);

void regex_free(fl_regex *re);

#endif
