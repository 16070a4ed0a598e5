/* Backend selection and the convenience wrappers every caller uses, so that
 * handlers never touch the ops table directly. */
#include "storage.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

int storage_open(const struct config *c, struct storage **out,
                 struct reason *why) {
  *out = NULL;
  if (strncmp(c->storage, "fs://", 5) == 0)
    return storage_fs_ops.open(c, out, why);
  return reason_set(why, ERR_CONFIG, "storage=%s: unsupported scheme",
                    c->storage);
}

void storage_close(struct storage *s) {
  if (s)
    s->ops->close(s);
}

int storage_stat(struct storage *s, const char *key, struct blob_stat *out) {
  return s->ops->stat(s, key, out);
}

int storage_get(struct storage *s, const char *key, const struct range *r,
                blob_sink_fn sink, void *arg) {
  return s->ops->get(s, key, r, sink, arg);
}

static int buf_sink(void *arg, const void *data, size_t len) {
  return buf_append(arg, data, len);
}

int storage_get_buf(struct storage *s, const char *key, struct buf *out) {
  return s->ops->get(s, key, NULL, buf_sink, out);
}

struct mem_source {
  const char *data;
  size_t len, off;
};

static long long mem_read(void *arg, void *data, size_t cap) {
  struct mem_source *m = arg;
  size_t n = m->len - m->off;
  if (n > cap)
    n = cap;
  memcpy(data, m->data + m->off, n);
  m->off += n;
  return (long long)n;
}

int storage_put_buf(struct storage *s, const char *key, const void *data,
                    size_t len) {
  struct mem_source m = {data, len, 0};
  return s->ops->put(s, key, mem_read, &m, len);
}

struct fd_source {
  int fd;
  off_t off;
};

static long long fd_read(void *arg, void *data, size_t cap) {
  struct fd_source *f = arg;
  for (;;) {
    ssize_t n = pread(f->fd, data, cap, f->off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return ERR_IO;
    f->off += n;
    return n;
  }
}

int storage_put_fd(struct storage *s, const char *key, int fd, uint64_t size) {
  struct fd_source f = {fd, 0};
  return s->ops->put(s, key, fd_read, &f, size);
}

int storage_del(struct storage *s, const char *key) {
  return s->ops->del(s, key);
}

int storage_list(struct storage *s, const char *prefix, blob_list_fn fn,
                 void *arg) {
  return s->ops->list(s, prefix, fn, arg);
}

int storage_ready(struct storage *s, struct reason *why) {
  return s->ops->ready(s, why);
}
