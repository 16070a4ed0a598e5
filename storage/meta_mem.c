/* The in-process metadata backend: one mutex-protected hash table. Entries
 * outlive their TTL on purpose (stale lists are served when the upstream is
 * down); the table is bounded, and when full the oldest eighth is dropped. */
#include "meta.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEM_BUCKETS 4096
#define MEM_MAX_ENTRIES 65536

struct entry {
  struct entry *next;
  char *key;
  char *data; /* NULL when only a negative entry */
  size_t len;
  time_t stored_at;
  int neg_status; /* 0: none */
  time_t neg_until;
  char neg_why[REASON_MAX];
  long long count; /* "hits:<module>" entries: requests for the module */
};

struct mem_meta {
  struct meta base;
  pthread_mutex_t mu;
  struct entry *buckets[MEM_BUCKETS];
  size_t count;
  struct meta_stats totals; /* ntop and top unused here */
  meta_purge_fn purge_fn;
  void *purge_arg;
};

static struct mem_meta *mem_of(struct meta *m) {
  return (struct mem_meta *)m;
}

static size_t hash(const char *s) {
  size_t h = 1469598103934665603ull; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h % MEM_BUCKETS;
}

static void entry_free(struct entry *e) {
  free(e->key);
  free(e->data);
  free(e);
}

static struct entry **find(struct mem_meta *mm, const char *key) {
  struct entry **pp = &mm->buckets[hash(key)];
  while (*pp && strcmp((*pp)->key, key) != 0)
    pp = &(*pp)->next;
  return pp;
}

static int cmp_time(const void *a, const void *b) {
  time_t x = *(const time_t *)a, y = *(const time_t *)b;
  return x < y ? -1 : x > y;
}

/* Drops the oldest eighth of the entries. Called with the lock held. */
static void evict(struct mem_meta *mm) {
  time_t *times = malloc(mm->count * sizeof *times);
  if (!times)
    return;
  size_t n = 0;
  for (size_t b = 0; b < MEM_BUCKETS; b++)
    for (struct entry *e = mm->buckets[b]; e; e = e->next)
      times[n++] = e->stored_at;
  qsort(times, n, sizeof *times, cmp_time);
  time_t cut = times[n / 8];
  free(times);
  for (size_t b = 0; b < MEM_BUCKETS; b++) {
    struct entry **pp = &mm->buckets[b];
    while (*pp) {
      if ((*pp)->stored_at <= cut) {
        struct entry *e = *pp;
        *pp = e->next;
        entry_free(e);
        mm->count--;
      } else {
        pp = &(*pp)->next;
      }
    }
  }
}

/* Finds or adds key. Called with the lock held; NULL on allocation failure. */
static struct entry *upsert(struct mem_meta *mm, const char *key) {
  struct entry **pp = find(mm, key);
  if (*pp)
    return *pp;
  if (mm->count >= MEM_MAX_ENTRIES) {
    evict(mm);
    pp = find(mm, key);
  }
  struct entry *e = calloc(1, sizeof *e);
  if (!e || !(e->key = strdup(key))) {
    free(e);
    return NULL;
  }
  e->stored_at = time(NULL);
  *pp = e;
  mm->count++;
  return e;
}

static int mem_open(const struct config *c, struct meta **out,
                    struct reason *why) {
  (void)c;
  (void)why;
  struct mem_meta *mm = calloc(1, sizeof *mm);
  if (!mm)
    return ERR_NOMEM;
  mm->base.ops = &meta_mem_ops;
  pthread_mutex_init(&mm->mu, NULL);
  *out = &mm->base;
  return 0;
}

static void mem_close(struct meta *m) {
  if (!m)
    return;
  struct mem_meta *mm = mem_of(m);
  for (size_t b = 0; b < MEM_BUCKETS; b++) {
    struct entry *e = mm->buckets[b];
    while (e) {
      struct entry *next = e->next;
      entry_free(e);
      e = next;
    }
  }
  pthread_mutex_destroy(&mm->mu);
  free(mm);
}

static int mem_cache_get(struct meta *m, const char *key, struct buf *out,
                         time_t *stored_at) {
  struct mem_meta *mm = mem_of(m);
  int rc = ERR_NOT_FOUND;
  pthread_mutex_lock(&mm->mu);
  struct entry *e = *find(mm, key);
  if (e && e->data) {
    rc = buf_append(out, e->data, e->len);
    if (stored_at)
      *stored_at = e->stored_at;
  }
  pthread_mutex_unlock(&mm->mu);
  return rc;
}

static int mem_cache_put(struct meta *m, const char *key, const void *data,
                         size_t len) {
  struct mem_meta *mm = mem_of(m);
  char *copy = malloc(len + 1);
  if (!copy)
    return ERR_NOMEM;
  memcpy(copy, data, len);
  copy[len] = '\0';
  pthread_mutex_lock(&mm->mu);
  struct entry *e = upsert(mm, key);
  if (e) {
    free(e->data);
    e->data = copy;
    e->len = len;
    e->stored_at = time(NULL);
    e->neg_status = 0; /* a good answer replaces a remembered 404 */
    copy = NULL;
  }
  pthread_mutex_unlock(&mm->mu);
  free(copy);
  return e ? 0 : ERR_NOMEM;
}

static int mem_neg_put(struct meta *m, const char *key, int status,
                       const char *why, long ttl) {
  struct mem_meta *mm = mem_of(m);
  if (ttl <= 0)
    return 0;
  pthread_mutex_lock(&mm->mu);
  struct entry *e = upsert(mm, key);
  if (e) {
    e->neg_status = status;
    e->neg_until = time(NULL) + ttl;
    snprintf(e->neg_why, sizeof e->neg_why, "%s", why ? why : "");
  }
  pthread_mutex_unlock(&mm->mu);
  return e ? 0 : ERR_NOMEM;
}

static int mem_neg_get(struct meta *m, const char *key, int *status,
                       struct reason *why) {
  struct mem_meta *mm = mem_of(m);
  int rc = ERR_NOT_FOUND;
  pthread_mutex_lock(&mm->mu);
  struct entry *e = *find(mm, key);
  if (e && e->neg_status && e->neg_until > time(NULL)) {
    *status = e->neg_status;
    if (why)
      snprintf(why->text, sizeof why->text, "%s", e->neg_why);
    rc = 0;
  }
  pthread_mutex_unlock(&mm->mu);
  return rc;
}

static int mem_forget(struct meta *m, const char *key) {
  struct mem_meta *mm = mem_of(m);
  pthread_mutex_lock(&mm->mu);
  struct entry **pp = find(mm, key);
  if (*pp) {
    struct entry *e = *pp;
    *pp = e->next;
    entry_free(e);
    mm->count--;
  }
  pthread_mutex_unlock(&mm->mu);
  return 0;
}

/* One process is the whole cluster: in-process coalescing already makes one
 * fetch per version, so every lock is granted at once. */
static int mem_lock_take(struct meta *m, const char *key, long ttl_ms,
                         char token[META_TOKEN_LEN]) {
  (void)m;
  (void)key;
  (void)ttl_ms;
  snprintf(token, META_TOKEN_LEN, "local");
  return 0;
}

static int mem_lock_renew(struct meta *m, const char *key, const char *token,
                          long ttl_ms) {
  (void)m;
  (void)key;
  (void)token;
  (void)ttl_ms;
  return 0;
}

static int mem_lock_release(struct meta *m, const char *key,
                            const char *token) {
  (void)m;
  (void)key;
  (void)token;
  return 0;
}

static int mem_lock_held(struct meta *m, const char *key) {
  (void)m;
  (void)key;
  return 0;
}

/* Waiters are in the same process and get the result from the flight
 * group; nothing to leave behind. */
static int mem_done_put(struct meta *m, const char *key, int code,
                        const char *why, long ttl_ms) {
  (void)m;
  (void)key;
  (void)code;
  (void)why;
  (void)ttl_ms;
  return 0;
}

static int mem_done_get(struct meta *m, const char *key, int *code,
                        struct reason *why) {
  (void)m;
  (void)key;
  (void)code;
  (void)why;
  return ERR_NOT_FOUND;
}

/* Storage itself (local disk, or S3 behind the hot cache) is the index of
 * a single process: say "not recorded" and let the caller look there. */
static int mem_index_put(struct meta *m, const char *module,
                         const char *version, const char *kind, uint64_t size) {
  (void)m;
  (void)module;
  (void)version;
  (void)kind;
  (void)size;
  return 0;
}

static int mem_index_has(struct meta *m, const char *module,
                         const char *version, const char *kind) {
  (void)m;
  (void)module;
  (void)version;
  (void)kind;
  return 0;
}

static int mem_index_versions(struct meta *m, const char *module,
                              struct buf *out) {
  (void)m;
  (void)module;
  (void)out;
  return ERR_UNSUPPORTED;
}

static int mem_version_forget(struct meta *m, const char *module,
                              const char *version) {
  (void)m;
  (void)module;
  (void)version;
  return 0;
}

/* This process's counts die with it: another process (gomirror gc) could
 * not read them, so access is recorded in storage instead (server/lastuse.c). */
static int mem_last_access(struct meta *m, const char *module,
                           const char *version, time_t *at) {
  (void)m;
  (void)module;
  (void)version;
  (void)at;
  return ERR_UNSUPPORTED;
}

static int mem_hits_add(struct meta *m, const struct meta_hit *hits, size_t n) {
  struct mem_meta *mm = mem_of(m);
  pthread_mutex_lock(&mm->mu);
  for (size_t i = 0; i < n; i++) {
    long long reqs = hits[i].hits + hits[i].misses;
    mm->totals.hits += hits[i].hits;
    mm->totals.misses += hits[i].misses;
    mm->totals.upstream_fetches += hits[i].upstream;
    mm->totals.errors += hits[i].errors;
    char key[600];
    struct entry *e;
    if (hits[i].module[0]) { /* "" counts in the totals only */
      snprintf(key, sizeof key, "hits:%s", hits[i].module);
      if ((e = upsert(mm, key)) != NULL)
        e->count += reqs;
    }
    if (hits[i].user[0]) {
      snprintf(key, sizeof key, "users:%s", hits[i].user);
      if ((e = upsert(mm, key)) != NULL)
        e->count += reqs;
    }
  }
  pthread_mutex_unlock(&mm->mu);
  return 0;
}

/* Inserts (name, n) into the top list arr[0..len), kept most-first and at
 * most META_TOP_N long; field and countf name the entries' members. */
#define TOP_INSERT(arr, len, field, countf, name, n)                           \
  do {                                                                         \
    size_t at_ = (len);                                                        \
    while (at_ > 0 && (arr)[at_ - 1].countf < (n))                             \
      at_--;                                                                   \
    if (at_ >= META_TOP_N)                                                     \
      break;                                                                   \
    size_t last_ = (len) < META_TOP_N ? (len) : META_TOP_N - 1;                \
    memmove(&(arr)[at_ + 1], &(arr)[at_], (last_ - at_) * sizeof(arr)[0]);     \
    snprintf((arr)[at_].field, sizeof(arr)[at_].field, "%s", (name));          \
    (arr)[at_].countf = (n);                                                   \
    if ((len) < META_TOP_N)                                                    \
      (len)++;                                                                 \
  } while (0)

static int mem_stats_get(struct meta *m, struct meta_stats *out) {
  struct mem_meta *mm = mem_of(m);
  pthread_mutex_lock(&mm->mu);
  *out = mm->totals;
  out->ntop = 0;
  out->nusers = 0;
  for (size_t b = 0; b < MEM_BUCKETS; b++) {
    for (struct entry *e = mm->buckets[b]; e; e = e->next) {
      if (strncmp(e->key, "hits:", 5) == 0)
        TOP_INSERT(out->top, out->ntop, module, hits, e->key + 5, e->count);
      else if (strncmp(e->key, "users:", 6) == 0)
        TOP_INSERT(out->top_users, out->nusers, user, requests, e->key + 6,
                   e->count);
    }
  }
  pthread_mutex_unlock(&mm->mu);
  return 0;
}

/* One process is the whole cluster: the caller's own buckets are shared
 * enough. */
static int mem_rate_take(struct meta *m, const char *key, double rate,
                         double burst, double *retry_s) {
  (void)m;
  (void)key;
  (void)rate;
  (void)burst;
  (void)retry_s;
  return ERR_UNSUPPORTED;
}

static int mem_purge_publish(struct meta *m, const char *prefix) {
  struct mem_meta *mm = mem_of(m);
  if (mm->purge_fn)
    mm->purge_fn(mm->purge_arg, prefix);
  return 0;
}

static int mem_purge_subscribe(struct meta *m, meta_purge_fn fn, void *arg) {
  struct mem_meta *mm = mem_of(m);
  mm->purge_fn = fn;
  mm->purge_arg = arg;
  return 0;
}

static int mem_ready(struct meta *m, struct reason *why) {
  (void)m;
  (void)why;
  return 0;
}

/* Nothing leaves the process: no round trips to count. */
static void mem_op_stats(struct meta *m, struct meta_op_stats *out) {
  (void)m;
  memset(out, 0, sizeof *out);
}

const struct meta_ops meta_mem_ops = {
    .name = "memory",
    .open = mem_open,
    .close = mem_close,
    .cache_get = mem_cache_get,
    .cache_put = mem_cache_put,
    .neg_put = mem_neg_put,
    .neg_get = mem_neg_get,
    .forget = mem_forget,
    .lock_take = mem_lock_take,
    .lock_renew = mem_lock_renew,
    .lock_release = mem_lock_release,
    .lock_held = mem_lock_held,
    .done_put = mem_done_put,
    .done_get = mem_done_get,
    .index_put = mem_index_put,
    .index_has = mem_index_has,
    .index_versions = mem_index_versions,
    .version_forget = mem_version_forget,
    .last_access = mem_last_access,
    .hits_add = mem_hits_add,
    .stats_get = mem_stats_get,
    .rate_take = mem_rate_take,
    .purge_publish = mem_purge_publish,
    .purge_subscribe = mem_purge_subscribe,
    .ready = mem_ready,
    .op_stats = mem_op_stats,
};
