/* regex.c - PCRE2 patterns for graders (see regex.h). JIT-compiled when the platform allows:
 * a grader runs its pattern on every trace, so the matcher is on the per-run path. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "regex.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>

/* Backtracking steps one search may take: far above what a sane pattern needs on a large
 * output, far below what a catastrophic one ((a+)+$ on a long line) would run for. */
#define MATCH_LIMIT 5000000
#define DEPTH_LIMIT 100000

struct fl_regex {
  pcre2_code *code;
  pcre2_match_data *match;
  pcre2_match_context *mctx;
};

fl_regex *regex_compile(const char *pattern, size_t n, int flags, char *err, size_t errcap, size_t *where) {
  int code_err = 0;
  PCRE2_SIZE off = 0;
  /* UTF with invalid sequences tolerated: an agent's output is not always valid UTF-8, and
   * a grader must answer for it rather than fail. */
  uint32_t options = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
  fl_regex *re;
  if (flags & REGEX_CASELESS) options |= PCRE2_CASELESS;
  if (flags & REGEX_MULTILINE) options |= PCRE2_MULTILINE;
  if (flags & REGEX_DOTALL) options |= PCRE2_DOTALL;
  re = calloc(1, sizeof *re);
  if (re == NULL) {
    snprintf(err, errcap, "not enough memory");
    *where = 0;
    return NULL;
  }
  re->code = pcre2_compile((PCRE2_SPTR)pattern, n, options, &code_err, &off, NULL);
  if (re->code == NULL) {
    PCRE2_UCHAR msg[256];
    if (pcre2_get_error_message(code_err, msg, sizeof msg) < 0) snprintf((char *)msg, sizeof msg, "error %d", code_err);
    snprintf(err, errcap, "%s", (const char *)msg);
    *where = (size_t)off;
    free(re);
    return NULL;
  }
  (void)pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
  re->match = pcre2_match_data_create_from_pattern(re->code, NULL);
  re->mctx = pcre2_match_context_create(NULL);
  if (re->match == NULL || re->mctx == NULL) {
    regex_free(re);
    snprintf(err, errcap, "not enough memory");
    *where = 0;
    return NULL;
  }
  pcre2_set_match_limit(re->mctx, MATCH_LIMIT);
  pcre2_set_depth_limit(re->mctx, DEPTH_LIMIT);
  return re;
}

int regex_search(fl_regex *re, const char *s, size_t n, size_t *start, size_t *end, char *err, size_t errcap) {
  int rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, 0, 0, re->match, re->mctx);
  if (rc >= 0) {
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(re->match);
    *start = (size_t)ov[0];
    *end = (size_t)ov[1];
    return 1;
  }
  if (rc == PCRE2_ERROR_NOMATCH) return 0;
  if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT) {
    snprintf(err, errcap, "the pattern backtracked past its limit on this text (%d steps); make it less "
             "ambiguous, e.g. replace nested repeats like (a+)+", MATCH_LIMIT);
  } else {
    PCRE2_UCHAR msg[256];
    if (pcre2_get_error_message(rc, msg, sizeof msg) < 0) snprintf((char *)msg, sizeof msg, "error %d", rc);
    snprintf(err, errcap, "%s", (const char *)msg);
  }
  return -1;
}

void regex_free(fl_regex *re) {
  if (re == NULL) return;
  if (re->match) pcre2_match_data_free(re->match);
  if (re->mctx) pcre2_match_context_free(re->mctx);
  if (re->code) pcre2_code_free(re->code);
  free(re);
}
