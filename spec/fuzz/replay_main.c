/* replay_main.c - runs a fuzz harness over saved inputs (files, or every file of folders),
 * without libFuzzer: what `make test` does with spec/fuzz/corpus/<target>/. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Reads the whole file into a buffer of exactly its size (so ASan sees over-reads). */
static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  unsigned char *data = NULL;
  long n;
  if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
    fprintf(stderr, "fuzz-replay: %s: %s\n", path, strerror(errno));
    if (f) fclose(f);
    return -1;
  }
  data = malloc(n > 0 ? (size_t)n : 1);
  if (data == NULL || fread(data, 1, (size_t)n, f) != (size_t)n) {
    fprintf(stderr, "fuzz-replay: %s: cannot read\n", path);
    free(data);
    fclose(f);
    return -1;
  }
  fclose(f);
  fuzz_input_name = path;
  LLVMFuzzerTestOneInput(data, (size_t)n);
  fuzz_input_name = NULL;
  free(data);
  return 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file of dir, in name order; returns the count or -1. */
static long run_dir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char **names = NULL;
  size_t n = 0, cap = 0, i;
  long count = 0;
  if (d == NULL) {
    fprintf(stderr, "fuzz-replay: %s: %s\n", dir, strerror(errno));
    return -1;
  }
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    if (n == cap) {
      char **bigger = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names);
      if (bigger == NULL) abort();
      names = bigger;
    }
    if ((names[n] = malloc(strlen(dir) + strlen(e->d_name) + 2)) == NULL) abort();
    sprintf(names[n++], "%s/%s", dir, e->d_name);
  }
  closedir(d);
  if (n > 0) qsort(names, n, sizeof *names, by_name);
  for (i = 0; i < n; i++) {
    struct stat st;
    if (count >= 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
      if (run_file(names[i]) != 0) count = -1;
      else count++;
    }
    free(names[i]);
  }
  free(names);
  return count;
}

int main(int argc, char **argv) {
  long total = 0;
  int i;
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
    return 2;
  }
  for (i = 1; i < argc; i++) {
    struct stat st;
    long n;
    if (stat(argv[i], &st) != 0) {
      fprintf(stderr, "fuzz-replay: %s: %s\n", argv[i], strerror(errno));
      return 1;
    }
    n = S_ISDIR(st.st_mode) ? run_dir(argv[i]) : (run_file(argv[i]) == 0 ? 1 : -1);
    if (n < 0) return 1;
    total += n;
  }
  printf("%s: %ld inputs, no failures\n", argv[0], total);
  return 0;
}
