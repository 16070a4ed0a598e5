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
};

struct mem_meta {
  struct meta base;
  pthread_mutex_t mu;
  struct entry *buckets[MEM_BUCKETS];
  size_t count;
};

static struct mem_meta *mem_of(struct meta *m) { return (struct mem_meta *)m; }

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

const struct meta_ops meta_mem_ops = {
    .name = "memory",
    .open = mem_open,
    .close = mem_close,
    .cache_get = mem_cache_get,
    .cache_put = mem_cache_put,
    .neg_put = mem_neg_put,
    .neg_get = mem_neg_get,
    .forget = mem_forget,
};
