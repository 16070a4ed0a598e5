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
  if (strncmp(c->storage, "s3://", 5) == 0)
    return storage_s3_ops.open(c, out, why);
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
  size_t len;
};

static long long mem_read(void *arg, uint64_t off, void *data, size_t cap) {
  struct mem_source *m = arg;
  if (off >= m->len)
    return 0;
  size_t n = m->len - (size_t)off;
  if (n > cap)
    n = cap;
  memcpy(data, m->data + off, n);
  return (long long)n;
}

int storage_put_buf(struct storage *s, const char *key, const void *data,
                    size_t len) {
  struct mem_source m = {data, len};
  return s->ops->put(s, key, mem_read, &m, len);
}

static long long fd_read(void *arg, uint64_t off, void *data, size_t cap) {
  int fd = *(int *)arg;
  for (;;) {
    ssize_t n = pread(fd, data, cap, (off_t)off);
    if (n < 0 && errno == EINTR)
      continue;
    return n < 0 ? ERR_IO : n;
  }
}

int storage_put_fd(struct storage *s, const char *key, int fd, uint64_t size) {
  return s->ops->put(s, key, fd_read, &fd, size);
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

int storage_presign(struct storage *s, const char *key, long ttl, char *url,
                    size_t cap) {
  if (!s->ops->presign)
    return ERR_UNSUPPORTED;
  return s->ops->presign(s, key, ttl, url, cap);
}

int storage_local_path(struct storage *s, const char *key, char *out,
                       size_t cap) {
  if (!s->ops->local_path)
    return ERR_UNSUPPORTED;
  return s->ops->local_path(s, key, out, cap);
}
