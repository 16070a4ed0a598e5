/* libFuzzer target for the config file parser: the input becomes a config
 * file loaded through --config, then checked and printed. Any crash,
 * sanitizer report or leak is a bug; errors are expected and fine. */
#include "core/config.h"
#include "core/err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One scratch file and one sink per process, reused by every input. */
static char path[64];
static FILE *sink;

static void cleanup(void) {
  unlink(path);
  if (sink)
    fclose(sink);
}

static int setup(void) {
  if (path[0])
    return 0;
  snprintf(path, sizeof path, "/tmp/gomirror-fuzz-config-%ld-XXXXXX",
           (long)getpid());
  int fd = mkstemp(path);
  if (fd < 0)
    return -1;
  close(fd);
  atexit(cleanup);
  sink = fopen("/dev/null", "w");
  return sink ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (setup())
    abort();
  FILE *f = fopen(path, "wb");
  if (!f)
    abort();
  if (size && fwrite(data, 1, size, f) != size)
    abort();
  fclose(f);

  char *argv[] = {"gomirror", "--config", path, "--check-config", NULL};
  char *envp[] = {"GOMIRROR_THREADS=4", NULL};
  struct config c;
  struct reason why = {{0}};
  enum config_action action;
  if (config_init(&c))
    abort();
  int rc = config_load(&c, 4, argv, envp, &action, &why);
  if (rc != 0 && rc != ERR_CONFIG && rc != ERR_NOMEM)
    abort();
  if (rc == 0) {
    if (action != CONFIG_CHECK || c.threads != 4)
      abort(); /* the environment and flags must still apply */
    rc = config_check(&c, &why);
    if (rc != 0 && rc != ERR_CONFIG)
      abort();
    config_print(&c, sink);
  }
  /* A reason is one line: no newline may survive reason_set. */
  for (const char *p = why.text; *p; p++)
    if (*p == '\n')
      abort();
  config_free(&c);
  return 0;
}
