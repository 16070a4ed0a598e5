/* Blob storage behind one table of operations: the fs backend now, s3 next.
 * Keys use the $GOMODCACHE/cache/download layout (see DESIGN.md):
 * "<escaped module>/@v/<escaped version>.zip", "sumdb/<name>/...". Keys are
 * built only from validated, escaped module paths, never from raw input. */
#ifndef GOMIRROR_STORAGE_STORAGE_H
#define GOMIRROR_STORAGE_STORAGE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct config;
struct reason;
struct buf;
struct storage;

struct blob_stat {
  uint64_t size;
  time_t mtime;
  char etag[72]; /* strong validator, quoted, e.g. "\"<hex>\"" */
};

struct range {
  uint64_t start;
  uint64_t len; /* bytes from start */
};

/* Receives the next chunk of a blob. Returns 0 to continue, non-zero to stop
 * (that value is then returned by get). */
typedef int (*blob_sink_fn)(void *arg, const void *data, size_t len);
/* Copies up to cap bytes starting at byte off of the blob being stored, like
 * pread(2). Returns bytes copied, 0 past the end, <0 on error. Positional so
 * a backend can re-read for a retry or a multipart upload. */
typedef long long (*blob_source_fn)(void *arg, uint64_t off, void *data,
                                    size_t cap);
/* Called for each key under a prefix; non-zero stops the listing. */
typedef int (*blob_list_fn)(void *arg, const char *key, uint64_t size);

struct storage_ops {
  const char *name; /* "fs", "s3" */
  /* Opens the backend named by c->storage. *out is owned by the caller, free
   * with close. On failure *out is NULL and why says what is wrong. */
  int (*open)(const struct config *c, struct storage **out, struct reason *why);
  void (*close)(struct storage *); /* NULL-safe */
  /* 0 and *out filled, ERR_NOT_FOUND, or ERR_STORAGE. */
  int (*stat)(struct storage *, const char *key, struct blob_stat *out);
  /* Streams the blob (or the range, when r is non-NULL) into sink in chunks;
   * never holds the whole blob. With r, 0 means exactly r->len bytes of that
   * range reached sink, and never a byte more (a store that answers with
   * other bytes is an ERR_STORAGE before the first). ERR_NOT_FOUND,
   * ERR_STORAGE, or the sink's non-zero return. */
  int (*get)(struct storage *, const char *key, const struct range *r,
             blob_sink_fn sink, void *arg);
  /* Stores exactly size bytes read from src, atomically: readers see the old
   * blob or the whole new one, never part. */
  int (*put)(struct storage *, const char *key, blob_source_fn src, void *arg,
             uint64_t size);
  /* put for the few objects that change (signed tree heads): the new blob
   * replaces the old atomically even where put keeps the first copy (S3's
   * If-None-Match). NULL: put already replaces. */
  int (*replace)(struct storage *, const char *key, blob_source_fn src,
                 void *arg, uint64_t size);
  /* 0, or ERR_NOT_FOUND when absent. */
  int (*del)(struct storage *, const char *key);
  /* Every key starting with prefix, in no particular order. */
  int (*list)(struct storage *, const char *prefix, blob_list_fn fn, void *arg);
  /* 0 when the backend can serve; otherwise why says what is wrong:
   * ERR_CONFIG when it answered and refused (a wrong secret, a missing
   * bucket: waiting will not help), another error when it may pass. */
  int (*ready)(struct storage *, struct reason *why);
  /* A URL from which a client can GET key for ttl seconds without
   * credentials, written to url (cap bytes). NULL slot: not supported. */
  int (*presign)(struct storage *, const char *key, long ttl, char *url,
                 size_t cap);
  /* The local file holding key, so the server can sendfile(2) it. NULL
   * slot: blobs are not local files. */
  int (*local_path)(struct storage *, const char *key, char *out, size_t cap);
};

/* The operations whose latency storage.c records around the backend call
 * (get: until the first byte reached the sink, or the end when none did). */
enum storage_op {
  STORAGE_OP_GET,
  STORAGE_OP_PUT,
  STORAGE_OP_STAT,
  STORAGE_OP_LIST,
  STORAGE_OP_DEL,
  STORAGE_OP__COUNT
};

#define STORAGE_LATENCY_BUCKETS 10

/* Upper bounds, in seconds, of the latency buckets. */
extern const double storage_latency_bounds[STORAGE_LATENCY_BUCKETS];

/* Relaxed atomic counters, written on every operation without a lock. */
struct storage_op_record {
  atomic_llong bucket[STORAGE_LATENCY_BUCKETS + 1]; /* last: +Inf */
  atomic_llong micros; /* sum of the latencies */
  atomic_llong errors; /* failures other than ERR_NOT_FOUND */
};

/* A copy of one operation's record: bucket[] is cumulative, as Prometheus
 * wants it; bucket[STORAGE_LATENCY_BUCKETS] is the count. */
struct storage_op_stats {
  long long bucket[STORAGE_LATENCY_BUCKETS + 1];
  long long micros, errors;
};

struct storage {
  const struct storage_ops *ops;
  struct storage_op_record ops_seen[STORAGE_OP__COUNT]; /* zeroed by open */
};

/* Picks the backend from c->storage's scheme and opens it. */
int storage_open(const struct config *c, struct storage **out,
                 struct reason *why);
void storage_close(struct storage *s);

/* Convenience wrappers over the table. */
int storage_stat(struct storage *s, const char *key, struct blob_stat *out);
int storage_get(struct storage *s, const char *key, const struct range *r,
                blob_sink_fn sink, void *arg);
/* Reads a small blob whole into out (capped by out->max). */
int storage_get_buf(struct storage *s, const char *key, struct buf *out);
int storage_put_buf(struct storage *s, const char *key, const void *data,
                    size_t len);
/* Replaces a small mutable blob (see the replace op). */
int storage_replace_buf(struct storage *s, const char *key, const void *data,
                        size_t len);
/* Stores the contents of an open file (read from offset 0). */
int storage_put_fd(struct storage *s, const char *key, int fd, uint64_t size);
int storage_del(struct storage *s, const char *key);
int storage_list(struct storage *s, const char *prefix, blob_list_fn fn,
                 void *arg);
int storage_ready(struct storage *s, struct reason *why);

/* ERR_UNSUPPORTED when the backend cannot pre-sign. */
int storage_presign(struct storage *s, const char *key, long ttl, char *url,
                    size_t cap);

/* ERR_UNSUPPORTED when the backend does not keep blobs in local files. */
int storage_local_path(struct storage *s, const char *key, char *out,
                       size_t cap);

/* One operation's latency record, copied (s may be NULL: all zero). */
void storage_op_stats(struct storage *s, enum storage_op op,
                      struct storage_op_stats *out);
/* "get", "put", "stat", "list", "del". */
const char *storage_op_name(enum storage_op op);

extern const struct storage_ops storage_fs_ops;
extern const struct storage_ops storage_s3_ops;

#endif
