/* Metadata behind one table of operations: the in-process `memory` backend
 * and Redis (standalone or Sentinel). Holds what is mutable, short-lived or
 * shared between replicas: cached version lists and @latest answers, the
 * negative cache, fetch locks and their completion records, the index of
 * committed versions, hit counters, and the purge broadcast.
 *
 * Keys passed in are "<kind>:<module>" or "<kind>:<module>@<version>"
 * ("list:example.com/x", "v:example.com/x@v1.0.0"). The Redis backend stores
 * them as "<meta_prefix>{<module>}:<kind>[:<version>]", so one module's keys
 * share a hash slot on Redis Cluster.
 *
 * Every operation that needs the backend can fail with ERR_UNAVAILABLE
 * (Redis down or timing out); callers treat that as "unknown" and carry on
 * with what they can do locally. */
#ifndef GOMIRROR_STORAGE_META_H
#define GOMIRROR_STORAGE_META_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct config;
struct reason;
struct buf;
struct meta;

#define META_TOKEN_LEN 33 /* 32 hex digits and a NUL */
#define META_TOP_N 10

/* The outcome of the requests for one module version by one user, summed
 * over a flush interval, for the counters. */
struct meta_hit {
  char module[520];  /* "" counts in the totals only */
  char version[260]; /* "" for list and @latest */
  char user[128];    /* who asked (access control on), else "" */
  long long hits;    /* requests served from cache or storage */
  long long misses;  /* requests that fetched */
  long long upstream; /* upstream requests they made */
  long long errors;   /* requests answered 5xx */
  time_t at;          /* the latest of them */
};

struct meta_stats {
  long long hits, misses, upstream_fetches, errors;
  size_t ntop;
  struct {
    char module[520];
    long long hits;
  } top[META_TOP_N]; /* today's most requested modules, most first */
  size_t nusers;
  struct {
    char user[128];
    long long requests;
  } top_users[META_TOP_N]; /* today's busiest users, most first */
};

typedef void (*meta_purge_fn)(void *arg, const char *prefix);

/* Round trips to the backend: one command, or one pipelined batch. */
enum meta_op { META_OP_COMMAND, META_OP_PIPELINE, META_OP__COUNT };

/* Round trips since start: how many, their summed latency, and how many
 * failed (no connection, a timeout or an error reply). */
struct meta_op_stats {
  long long count[META_OP__COUNT];
  long long micros[META_OP__COUNT];
  long long errors[META_OP__COUNT];
};

struct meta_ops {
  const char *name; /* "memory", "redis" */
  int (*open)(const struct config *c, struct meta **out, struct reason *why);
  void (*close)(struct meta *); /* NULL-safe; stops the purge subscriber */

  /* --- caches of mutable answers ---------------------------------------- */
  /* Cached body for key appended to out, with the time it was stored.
   * ERR_NOT_FOUND when absent. Entries outlive their TTL so they can be
   * served stale. */
  int (*cache_get)(struct meta *, const char *key, struct buf *out,
                   time_t *stored_at);
  int (*cache_put)(struct meta *, const char *key, const void *data,
                   size_t len);
  /* Negative cache: key answered status (404/410) with a one-line reason,
   * for ttl seconds. neg_get: 0 with status and why while live, else
   * ERR_NOT_FOUND. */
  int (*neg_put)(struct meta *, const char *key, int status, const char *why,
                 long ttl);
  int (*neg_get)(struct meta *, const char *key, int *status,
                 struct reason *why);
  /* Drops the cache and negative entries for key. */
  int (*forget)(struct meta *, const char *key);

  /* --- fetch locks across replicas --------------------------------------- */
  /* Takes lock key for ttl_ms under a fresh random token (written to
   * token). 0: taken; ERR_EXISTS: someone holds it. The memory backend
   * always grants it (in-process coalescing already serialises). */
  int (*lock_take)(struct meta *, const char *key, long ttl_ms,
                   char token[META_TOKEN_LEN]);
  /* Extends the lock if token still holds it: 0, or ERR_NOT_FOUND when it
   * was lost (expired and maybe taken by another). */
  int (*lock_renew)(struct meta *, const char *key, const char *token,
                    long ttl_ms);
  /* Deletes the lock only if token still holds it (compare-and-delete). */
  int (*lock_release)(struct meta *, const char *key, const char *token);
  /* 1 while anyone holds the lock, 0 when it is free. */
  int (*lock_held)(struct meta *, const char *key);
  /* The holder's result, left for waiters on other replicas: code (0 or an
   * ERR_*) and reason, kept ttl_ms. done_get: 0 and the record, or
   * ERR_NOT_FOUND. */
  int (*done_put)(struct meta *, const char *key, int code, const char *why,
                  long ttl_ms);
  int (*done_get)(struct meta *, const char *key, int *code,
                  struct reason *why);

  /* --- committed versions ------------------------------------------------- */
  /* Records that module@version's artifact ("info", "mod" or "zip") is in
   * storage, with its size. */
  int (*index_put)(struct meta *, const char *module, const char *version,
                   const char *kind, uint64_t size);
  /* 1 when recorded, 0 when not. */
  int (*index_has)(struct meta *, const char *module, const char *version,
                   const char *kind);
  /* Appends every version with a recorded "info", one per line. */
  int (*index_versions)(struct meta *, const char *module, struct buf *out);
  /* Forgets what is recorded about module@version: its index entries (every
   * kind), its hit count and its last access (garbage collection, once the
   * version left storage). */
  int (*version_forget)(struct meta *, const char *module,
                        const char *version);
  /* When module@version was last requested, as the counters recorded it: 0
   * with *at, ERR_NOT_FOUND when nothing is recorded, ERR_UNSUPPORTED when
   * the backend keeps no record other processes can read (memory). */
  int (*last_access)(struct meta *, const char *module, const char *version,
                     time_t *at);

  /* --- counters ------------------------------------------------------------
   */
  /* Adds a batch of outcomes (one round trip for Redis: pipelined). */
  int (*hits_add)(struct meta *, const struct meta_hit *hits, size_t n);
  int (*stats_get)(struct meta *, struct meta_stats *out);

  /* --- rate limits shared by every replica -------------------------------
   */
  /* Takes one token from the bucket named key, which refills at rate per
   * second up to burst, on the backend's clock. 0: taken; ERR_RATE_LIMITED
   * with *retry_s (seconds until a token is there); ERR_UNSUPPORTED when the
   * backend keeps no shared buckets (memory: the caller's own are the same
   * thing); ERR_UNAVAILABLE when it cannot answer now. */
  int (*rate_take)(struct meta *, const char *key, double rate, double burst,
                   double *retry_s);

  /* --- hot-cache purges ----------------------------------------------------
   */
  /* Tells every replica (this one included) to drop hot-cache entries whose
   * key starts with prefix. */
  int (*purge_publish)(struct meta *, const char *prefix);
  /* Calls fn(arg, prefix) for every purge published from now on, from a
   * thread of the backend's, until close. */
  int (*purge_subscribe)(struct meta *, meta_purge_fn fn, void *arg);

  /* 0 when the backend answers; else why says what is wrong. */
  int (*ready)(struct meta *, struct reason *why);
  /* Fills out with the round-trip counts (all zero for a backend that
   * makes none, like memory). Never blocks. */
  void (*op_stats)(struct meta *, struct meta_op_stats *out);
};

struct meta {
  const struct meta_ops *ops;
};

int meta_open(const struct config *c, struct meta **out, struct reason *why);
/* Checks what meta_open would refuse, without connecting anywhere (for
 * --check-config): the backend name, the Redis URL's syntax. 0 or
 * ERR_CONFIG with a reason. */
int meta_check(const struct config *c, struct reason *why);
/* meta_redis.c's part of meta_check. */
int meta_redis_check(const struct config *c, struct reason *why);
void meta_close(struct meta *m);

extern const struct meta_ops meta_mem_ops;
extern const struct meta_ops meta_redis_ops;

#endif
