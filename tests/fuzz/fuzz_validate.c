/* libFuzzer target for server/validate.c: every input is tried as an
 * upstream .info (exact and query), as a .mod, and, written to a memfd, as a
 * zip for example.com/m@v1.0.0, which server/hash1.c must then hash if
 * validate_zip accepted it (both read entries through validate_zip_read).
 * Any crash, sanitizer report or leak is a bug; rejections are expected.
 * Seeds: corpus/validate/ (hostile zips: bomb_*, lying sizes, crc_*,
 * too_many_entries), words: validate.dict. */
#include "core/err.h"
#include "mod/hash1.h"
#include "mod/validate.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One memfd per process, rewritten for each input. */
static int memfd = -1;
static char path[64];

static void cleanup(void) {
  if (memfd >= 0)
    close(memfd);
}

static int setup(void) {
  if (memfd >= 0)
    return 0;
  memfd = memfd_create("fuzz_validate", MFD_CLOEXEC);
  if (memfd < 0)
    return -1;
  snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
  atexit(cleanup);
  return 0;
}

/* A reason is one line, and failures always come with one. */
static void check_reason(int rc, const struct reason *why) {
  if (rc == 0)
    return;
  if (!why->text[0] || strlen(why->text) >= sizeof why->text)
    abort();
  for (const char *p = why->text; *p; p++)
    if (*p == '\n' || *p == '\r')
      abort();
}

static void fuzz_info(const char *body, size_t size) {
  char version[32];
  for (int exact = 0; exact < 2; exact++) {
    struct reason why = {{0}};
    memset(version, 'x', sizeof version);
    int rc = validate_info(body, size, "v1.0.0", exact, version, sizeof version,
                           &why);
    if (rc != 0 && rc != ERR_BAD_UPSTREAM_DATA && rc != ERR_TOO_LARGE &&
        rc != ERR_NOMEM)
      abort();
    check_reason(rc, &why);
    if (rc == 0) {
      size_t n = strnlen(version, sizeof version);
      if (n == 0 || n == sizeof version)
        abort(); /* a non-empty, terminated version */
      if (exact && strcmp(version, "v1.0.0") != 0)
        abort();
    }
  }
}

static void fuzz_mod(const char *body, size_t size) {
  struct reason why = {{0}};
  int rc = validate_mod(body, size, "example.com/m", &why);
  int has_nul = size && memchr(body, '\0', size) != NULL;
  if (rc != 0 && rc != ERR_BAD_UPSTREAM_DATA)
    abort();
  /* Whatever passes holds no NUL and declares a module. */
  if (rc == 0 && (has_nul || !memmem(body, size, "module", 6)))
    abort();
  check_reason(rc, &why);
}

static void fuzz_zip(const uint8_t *data, size_t size) {
  if (ftruncate(memfd, 0) != 0)
    abort();
  if (size && pwrite(memfd, data, size, 0) != (ssize_t)size)
    abort();
  struct reason why = {{0}};
  int rc = validate_zip(path, "example.com/m", "v1.0.0", &why);
  if (rc != 0 && rc != ERR_BAD_UPSTREAM_DATA && rc != ERR_TOO_LARGE &&
      rc != ERR_NOMEM)
    abort();
  check_reason(rc, &why);
  if (rc != 0)
    return;
  /* What validate_zip read whole, hash1_zip reads the same way. */
  char h1[HASH1_LEN];
  struct reason hwhy = {{0}};
  int hrc = hash1_zip(path, h1, &hwhy);
  if (hrc == ERR_NOMEM)
    return;
  if (hrc != 0 || strncmp(h1, "h1:", 3) != 0 || strlen(h1) != HASH1_LEN - 1)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (setup())
    abort();
  /* libFuzzer hands over an exact-size heap copy: ASan sees overreads. */
  fuzz_info((const char *)data, size);
  fuzz_mod((const char *)data, size);
  fuzz_zip(data, size);
  return 0;
}
