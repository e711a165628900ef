/* rules.h - the rule graders that look at the output's text, evaluated in C: a grader set
 * runs them on every trace, so each costs a search and a line of scores.jsonl, no Lua. */
#ifndef FLUXLOOP_RULES_H
#define FLUXLOOP_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum { RULE_EQUALS, RULE_CONTAINS, RULE_ICONTAINS, RULE_NOT_CONTAINS, RULE_STARTS_WITH, RULE_REGEX,
       RULE_ONE_OF, RULE_MAX_LENGTH, RULE_MAX_LATENCY };

typedef struct rules rules_t;

rules_t *rules_new(void);
void rules_free(rules_t *r);

/* Adds a rule (graded in the order added). value: the text compared with or searched for, or
 * the regex; regex_flags as regex.h; limit: max_length's characters, max_latency's ms.
 * Returns 0, or -1 with a message in err (an invalid regex, no memory). */
int rules_add(rules_t *r, int type, const char *name, size_t name_len, const char *value, size_t value_len,
              int regex_flags, double limit, char *err, size_t errcap);
/* one_of: one more value that passes, for the rule added last. Returns 0 or -1. */
int rules_add_value(rules_t *r, const char *value, size_t value_len);
int rules_count(const rules_t *r);

/* Appends one scores.jsonl line per rule for trace tid, whose output as text is text (n
 * bytes) and whose run took duration_ms. A failed grade says why (its reason); a regex that
 * backtracked past its bound is an error of that grade (pass null). */
void rules_grade(rules_t *r, buf_t *out, const char *tid, size_t tid_len, const char *text, size_t n,
                 double duration_ms);

/* The lines of a run that failed before it could be graded: every rule fails, score 0,
 * reason "the run failed (TYPE)" (error_type, e.g. "timeout"), no rule called. */
void rules_fail(rules_t *r, buf_t *out, const char *tid, size_t tid_len, const char *error_type, size_t type_len);

#endif
