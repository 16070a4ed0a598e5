/* Metadata behind one table of operations: the in-process `memory` backend
 * now, Redis next. Holds what is mutable or short-lived: cached version lists
 * and @latest answers (with the time they were fetched, so a stale copy can
 * still be served when the upstream fails) and the negative cache. */
#ifndef GOMIRROR_STORAGE_META_H
#define GOMIRROR_STORAGE_META_H

#include <stddef.h>
#include <time.h>

struct config;
struct reason;
struct buf;
struct meta;

struct meta_ops {
  const char *name; /* "memory", "redis" */
  int (*open)(const struct config *c, struct meta **out, struct reason *why);
  void (*close)(struct meta *); /* NULL-safe */
  /* Cached body for key (e.g. "list:<module>" or "latest:<module>") appended
   * to out, with the time it was stored. ERR_NOT_FOUND when absent. Entries
   * are kept past their TTL so they can be served stale. */
  int (*cache_get)(struct meta *, const char *key, struct buf *out,
                   time_t *stored_at);
  int (*cache_put)(struct meta *, const char *key, const void *data,
                   size_t len);
  /* Negative cache: remembers that key answered status (404/410) with a
   * one-line reason, for ttl seconds. neg_get returns 0 and fills status
   * and why while the entry is live, else ERR_NOT_FOUND. */
  int (*neg_put)(struct meta *, const char *key, int status, const char *why,
                 long ttl);
  int (*neg_get)(struct meta *, const char *key, int *status,
                 struct reason *why);
  /* Drops both the cache and negative entries for key. */
  int (*forget)(struct meta *, const char *key);
};

struct meta {
  const struct meta_ops *ops;
};

int meta_open(const struct config *c, struct meta **out, struct reason *why);
void meta_close(struct meta *m);

extern const struct meta_ops meta_mem_ops;

#endif
