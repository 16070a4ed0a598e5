/* Replays a fuzz target's committed corpus without libFuzzer, so every
 * build (gcc too, with or without sanitizers) runs each seed through the
 * target's checks under ctest. Linked with one fuzz_<target>.c.
 *
 *     fuzz_replay_<target> DIR_OR_FILE...
 *
 * Each regular file (in name order; names starting with '.' skipped) goes
 * to LLVMFuzzerTestOneInput once; a target's abort() or a sanitizer report
 * fails the run. No input at all is a failure too: an empty or misnamed
 * corpus must not pass as a clean replay. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Inputs larger than this are not seeds. */
#define REPLAY_MAX (16L << 20)

static int replay_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
    return -1;
  }
  struct stat st;
  long size = fstat(fileno(f), &st) == 0 ? (long)st.st_size : -1;
  /* Exactly the input's size, so that reading one byte past it is caught
   * by AddressSanitizer as it would be under libFuzzer. */
  uint8_t *data =
      size >= 0 && size <= REPLAY_MAX ? malloc(size ? (size_t)size : 1) : NULL;
  size_t n = data ? fread(data, 1, (size_t)size, f) : 0;
  int bad = !data || n != (size_t)size || ferror(f);
  fclose(f);
  if (bad) {
    fprintf(stderr, "replay: %s: unreadable, or over %ld bytes\n", path,
            REPLAY_MAX);
    free(data);
    return -1;
  }
  LLVMFuzzerTestOneInput(data, n);
  free(data);
  return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b) {
  return strcmp((*a)->d_name, (*b)->d_name);
}

static int skip_dot(const struct dirent *e) {
  return e->d_name[0] != '.';
}

/* Replays path (a file, or every regular file in a directory); adds the
 * inputs run to *count. 0, or -1 after an error it reported. */
static int replay(const char *path, long *count) {
  struct stat st;
  if (stat(path, &st)) {
    fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
    return -1;
  }
  if (!S_ISDIR(st.st_mode)) {
    if (replay_file(path))
      return -1;
    ++*count;
    return 0;
  }
  struct dirent **names;
  int n = scandir(path, &names, skip_dot, by_name);
  if (n < 0) {
    fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
    return -1;
  }
  int rc = 0;
  for (int i = 0; i < n; i++) {
    char file[4096];
    int len = snprintf(file, sizeof file, "%s/%s", path, names[i]->d_name);
    if (!rc && len > 0 && (size_t)len < sizeof file && stat(file, &st) == 0 &&
        S_ISREG(st.st_mode)) {
      rc = replay_file(file);
      if (!rc)
        ++*count;
    }
    free(names[i]);
  }
  free(names);
  return rc;
}

int main(int argc, char **argv) {
  long count = 0;
  for (int i = 1; i < argc; i++)
    if (replay(argv[i], &count))
      return 1;
  if (count == 0) {
    fprintf(stderr, "replay: no inputs (usage: %s DIR_OR_FILE...)\n", argv[0]);
    return 1;
  }
  printf("replayed %ld inputs\n", count);
  return 0;
}
