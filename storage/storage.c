/* Backend selection and the convenience wrappers every caller uses, so that
 * handlers never touch the ops table directly; the wrappers also record how
 * long each operation took (a clock read and three relaxed atomic adds). */
#include "storage.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const double storage_latency_bounds[STORAGE_LATENCY_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5};

static const char *const op_names[STORAGE_OP__COUNT] = {"get", "put", "stat",
                                                        "list", "del"};

const char *storage_op_name(enum storage_op op) {
  return (unsigned)op < STORAGE_OP__COUNT ? op_names[op] : "?";
}

static struct timespec now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t;
}

static void note(struct storage *s, enum storage_op op,
                 const struct timespec *t0, int rc) {
  struct timespec t1 = now();
  double secs = (double)(t1.tv_sec - t0->tv_sec) +
                (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
  struct storage_op_record *rec = &s->ops_seen[op];
  int b = 0;
  while (b < STORAGE_LATENCY_BUCKETS && secs > storage_latency_bounds[b])
    b++;
  atomic_fetch_add_explicit(&rec->bucket[b], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&rec->micros, (long long)(secs * 1e6),
                            memory_order_relaxed);
  if (rc && rc != ERR_NOT_FOUND)
    atomic_fetch_add_explicit(&rec->errors, 1, memory_order_relaxed);
}

void storage_op_stats(struct storage *s, enum storage_op op,
                      struct storage_op_stats *out) {
  memset(out, 0, sizeof *out);
  if (!s || (unsigned)op >= STORAGE_OP__COUNT)
    return;
  struct storage_op_record *rec = &s->ops_seen[op];
  long long sum = 0;
  for (int b = 0; b <= STORAGE_LATENCY_BUCKETS; b++) {
    sum += atomic_load_explicit(&rec->bucket[b], memory_order_relaxed);
    out->bucket[b] = sum;
  }
  out->micros = atomic_load_explicit(&rec->micros, memory_order_relaxed);
  out->errors = atomic_load_explicit(&rec->errors, memory_order_relaxed);
}

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
  struct timespec t0 = now();
  int rc = s->ops->stat(s, key, out);
  note(s, STORAGE_OP_STAT, &t0, rc);
  return rc;
}

/* A get's latency is its time to the first byte: after that the sink (a
 * client's socket, often) sets the pace, not the store. */
struct first_byte {
  struct storage *s;
  struct timespec t0;
  blob_sink_fn sink;
  void *arg;
  int seen;
  int sink_rc;
};

static int first_byte_sink(void *arg, const void *data, size_t len) {
  struct first_byte *fb = arg;
  if (!fb->seen) {
    fb->seen = 1;
    note(fb->s, STORAGE_OP_GET, &fb->t0, 0);
  }
  fb->sink_rc = fb->sink(fb->arg, data, len);
  return fb->sink_rc;
}

int storage_get(struct storage *s, const char *key, const struct range *r,
                blob_sink_fn sink, void *arg) {
  struct first_byte fb = {s, now(), sink, arg, 0, 0};
  int rc = s->ops->get(s, key, r, first_byte_sink, &fb);
  if (!fb.seen)
    note(s, STORAGE_OP_GET, &fb.t0, rc);
  else if (rc && rc != fb.sink_rc) /* failed after the first byte */
    atomic_fetch_add_explicit(&s->ops_seen[STORAGE_OP_GET].errors, 1,
                              memory_order_relaxed);
  return rc;
}

static int buf_sink(void *arg, const void *data, size_t len) {
  return buf_append(arg, data, len);
}

int storage_get_buf(struct storage *s, const char *key, struct buf *out) {
  return storage_get(s, key, NULL, buf_sink, out);
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
  struct timespec t0 = now();
  int rc = s->ops->put(s, key, mem_read, &m, len);
  note(s, STORAGE_OP_PUT, &t0, rc);
  return rc;
}

int storage_replace_buf(struct storage *s, const char *key, const void *data,
                        size_t len) {
  struct mem_source m = {data, len};
  struct timespec t0 = now();
  int rc = s->ops->replace ? s->ops->replace(s, key, mem_read, &m, len)
                           : s->ops->put(s, key, mem_read, &m, len);
  note(s, STORAGE_OP_PUT, &t0, rc);
  return rc;
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
  struct timespec t0 = now();
  int rc = s->ops->put(s, key, fd_read, &fd, size);
  note(s, STORAGE_OP_PUT, &t0, rc);
  return rc;
}

int storage_del(struct storage *s, const char *key) {
  struct timespec t0 = now();
  int rc = s->ops->del(s, key);
  note(s, STORAGE_OP_DEL, &t0, rc);
  return rc;
}

int storage_list(struct storage *s, const char *prefix, blob_list_fn fn,
                 void *arg) {
  struct timespec t0 = now();
  int rc = s->ops->list(s, prefix, fn, arg);
  note(s, STORAGE_OP_LIST, &t0, rc);
  return rc;
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
