/* Audit lines through core/log's JSON line writer (the same escaping as the
 * JSON log). The descriptor is swapped atomically on reopen, so writers
 * never see a closed one for long: the old descriptor is closed after a
 * grace period long enough for any write in progress. */
#include "audit.h"

#include "core/err.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct audit {
  char *path; /* NULL for stdout */
  atomic_int fd;
  atomic_long failures;
};

static int open_file(const char *path, struct reason *why) {
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0)
    return reason_set(why, ERR_CONFIG, "audit_log %.100s: %s", path,
                      strerror(errno));
  return fd;
}

int audit_open(const char *spec, struct audit **out, struct reason *why) {
  *out = NULL;
  if (!spec || strcmp(spec, "off") == 0)
    return 0;
  struct audit *a = calloc(1, sizeof *a);
  if (!a)
    return ERR_NOMEM;
  if (strcmp(spec, "stdout") == 0) {
    atomic_store(&a->fd, STDOUT_FILENO);
  } else {
    a->path = strdup(spec);
    int fd = a->path ? open_file(spec, why) : ERR_NOMEM;
    if (fd < 0) {
      free(a->path);
      free(a);
      return fd;
    }
    atomic_store(&a->fd, fd);
  }
  *out = a;
  return 0;
}

void audit_close(struct audit *a) {
  if (!a)
    return;
  if (a->path)
    close(atomic_load(&a->fd));
  free(a->path);
  free(a);
}

int audit_reopen(struct audit *a, struct reason *why) {
  if (!a || !a->path)
    return 0;
  int fd = open_file(a->path, why);
  if (fd < 0)
    return fd;
  int old = atomic_exchange(&a->fd, fd);
  /* A writer that loaded the old descriptor finishes its write(2) well
   * within this. */
  usleep(100 * 1000);
  close(old);
  return 0;
}

static struct log_field str(const char *k, const char *v) {
  struct log_field f = {k, v ? v : "", 0, 0};
  return f;
}

static struct log_field num(const char *k, double v, int integer) {
  struct log_field f = {k, NULL, v, integer};
  return f;
}

void audit_write(struct audit *a, const struct audit_event *e) {
  if (!a)
    return;
  struct log_field f[16];
  size_t n = 0;
  f[n++] = str("request_id", e->request_id);
  f[n++] = str("user", e->user);
  f[n++] = str("source", e->source);
  f[n++] = str("client", e->client);
  f[n++] = str("action", e->action);
  f[n++] = str("path", e->path);
  f[n++] = str("module", e->module);
  f[n++] = str("version", e->version);
  f[n++] = num("status", e->status, 1);
  f[n++] = num("bytes", (double)e->bytes, 1);
  f[n++] = num("duration_ms", e->duration_ms, 0);
  f[n++] = str("cache", e->cache);
  if (e->detail && e->detail[0])
    f[n++] = str("detail", e->detail);
  if (log_json_line(atomic_load(&a->fd), "time", f, n) &&
      atomic_fetch_add(&a->failures, 1) == 0)
    log_error("audit log: write failed: %s", strerror(errno));
}
