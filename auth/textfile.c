/* Text-file helpers shared by the access-control file parsers. */
#include "textfile.h"

#include "core/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int textfile_read(const char *path, char **out, size_t *len,
                  struct reason *why) {
  *out = NULL;
  *len = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return reason_set(why, ERR_IO, "%.100s: %s", path, strerror(errno));
  size_t cap = 4096, n = 0;
  char *b = malloc(cap);
  int rc = b ? 0 : ERR_NOMEM;
  while (!rc) {
    if (n + 1 >= cap) {
      if (cap >= TEXTFILE_MAX) {
        rc = reason_set(why, ERR_TOO_LARGE, "%.100s: larger than %u bytes",
                        path, TEXTFILE_MAX);
        break;
      }
      char *nb = realloc(b, cap * 2);
      if (!nb) {
        rc = ERR_NOMEM;
        break;
      }
      b = nb;
      cap *= 2;
    }
    ssize_t got = read(fd, b + n, cap - 1 - n);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0)
      rc = reason_set(why, ERR_IO, "%.100s: %s", path, strerror(errno));
    if (got <= 0)
      break;
    n += (size_t)got;
  }
  close(fd);
  if (!rc && memchr(b, '\0', n))
    rc = reason_set(why, ERR_CONFIG, "%.100s: holds a NUL byte", path);
  if (rc) {
    free(b);
    return rc;
  }
  b[n] = '\0';
  *out = b;
  *len = n;
  return 0;
}

void line_iter_init(struct line_iter *it, const char *text, size_t len) {
  it->p = text;
  it->end = text + len;
  it->lineno = 0;
}

static int space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

int line_next(struct line_iter *it, const char **s, size_t *n) {
  while (it->p < it->end) {
    const char *nl = memchr(it->p, '\n', (size_t)(it->end - it->p));
    const char *e = nl ? nl : it->end;
    const char *b = it->p;
    it->p = nl ? nl + 1 : it->end;
    it->lineno++;
    while (b < e && space(*b))
      b++;
    while (e > b && space(e[-1]))
      e--;
    if (b == e || *b == '#')
      continue;
    *s = b;
    *n = (size_t)(e - b);
    return 1;
  }
  return 0;
}

int field_next(const char **s, size_t *n, const char **f, size_t *fl) {
  const char *p = *s, *e = *s + *n;
  while (p < e && space(*p))
    p++;
  if (p == e) {
    *s = p;
    *n = 0;
    return 0;
  }
  const char *b = p;
  while (p < e && !space(*p))
    p++;
  *f = b;
  *fl = (size_t)(p - b);
  *s = p;
  *n = (size_t)(e - p);
  return 1;
}

void file_sig_get(const char *path, struct file_sig *sig) {
  memset(sig, 0, sizeof *sig);
  struct stat st;
  if (!path || stat(path, &st) != 0)
    return;
  sig->exists = 1;
  sig->dev = st.st_dev;
  sig->ino = st.st_ino;
  sig->size = st.st_size;
  sig->mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL +
                  (long long)st.st_mtim.tv_nsec;
}

int file_sig_changed(const struct file_sig *a, const struct file_sig *b) {
  return a->exists != b->exists || a->dev != b->dev || a->ino != b->ino ||
         a->size != b->size || a->mtime_ns != b->mtime_ns;
}
