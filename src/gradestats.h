/* gradestats.h - per-grader figures of scores.jsonl, fed its lines in trace order: counts,
 * mean score, and pass^k (the share of inputs whose k runs would all pass). One pass, memory
 * in the number of graders and iterations, never in the number of traces or inputs. */
#ifndef FLUXLOOP_GRADESTATS_H
#define FLUXLOOP_GRADESTATS_H

#include <stddef.h>
#include <stdint.h>

/* pass^k is kept for k up to this many runs of one input (a summary line per k). */
#define GRADESTATS_MAX_K 1000

typedef struct gradestats gradestats_t;

typedef struct grader_figures {
  const char *name;
  size_t name_len;
  int64_t graded, passed, failed, errors; /* graded = passed + failed + errors */
  int64_t scored;                         /* lines with a numeric score */
  double score_sum;
  int max_k;                              /* pass_hat_k[1..max_k] are set */
  const double *pass_hat_sum;             /* [k]: sum over inputs of C(c,k)/C(n,k) */
  const int64_t *pass_hat_inputs;         /* [k]: inputs with at least k graded runs */
} grader_figures;

/* iterations: the experiment's runs per input, which places trace k in input (k-1)/iterations. */
gradestats_t *gradestats_new(int64_t iterations);
void gradestats_free(gradestats_t *g);
/* A copy, to read while the original goes on counting (NULL when memory ran out). */
gradestats_t *gradestats_clone(const gradestats_t *g);

/* One grade of trace k: outcome 1 pass, 0 fail, -1 the grader failed (an error); score is
 * NAN when there is none. Returns 0, or -1 when memory ran out. */
int gradestats_add(gradestats_t *g, int64_t k, const char *grader, size_t len, int outcome, double score);

/* One line of scores.jsonl ({"trace_id":"trace_001","grader":...,"pass":...,"score":...}).
 * Returns 0; 1 when the line is not a score line (skipped); -1 when memory ran out. */
int gradestats_add_line(gradestats_t *g, const char *line, size_t n);
/* Every '\n'-terminated line of text. Returns the number of lines skipped, or -1. */
long gradestats_add_lines(gradestats_t *g, const char *text, size_t n);

/* Graders in the order they first appeared; the figures count every input seen so far (the
 * input in progress included, as if it ended here). */
int gradestats_count(gradestats_t *g);
void gradestats_get(gradestats_t *g, int i, grader_figures *out);

/* trace_001 -> 1; 0 when id is not a trace id. */
int64_t gradestats_trace_number(const char *id, size_t n);

#endif
