/* Hit sums and their flusher thread; see counters.h. */
#include "counters.h"

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "storage/meta.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SHARDS 16
#define BUCKETS 256 /* per shard */
#define BATCH_MAX 256

struct sum {
  struct sum *next;
  uint64_t hash;
  long day;
  struct meta_hit h; /* key and counts */
};

struct shard {
  pthread_mutex_t mu;
  struct sum *buckets[BUCKETS];
  size_t n;
};

struct counters {
  struct meta *meta;
  long flush_ms;
  size_t cap; /* distinct keys per shard */
  struct shard shards[SHARDS];
  atomic_llong queued, flushed, dropped, failures;
  pthread_mutex_t mu; /* stop, down_logged; wakes the flusher and sync */
  pthread_cond_t cv;
  pthread_cond_t done;
  int stop;
  int down_logged;
  int started; /* the flusher thread runs */
  pthread_t thread;
};

static uint64_t fnv(uint64_t h, const char *s) {
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return (h ^ 0xff) * 1099511628211ull; /* a separator */
}

static long long requests_of(const struct meta_hit *h) {
  return h->hits + h->misses;
}

/* Adds h's counts to the sum of its key in s (the caller holds s->mu).
 * 0, or -1 when the shard is full (nothing added). */
static int add_locked(struct counters *c, struct shard *s, uint64_t hash,
                      long day, const struct meta_hit *h) {
  struct sum **b = &s->buckets[hash % BUCKETS];
  for (struct sum *x = *b; x; x = x->next)
    if (x->hash == hash && x->day == day &&
        strcmp(x->h.module, h->module) == 0 &&
        strcmp(x->h.version, h->version) == 0 &&
        strcmp(x->h.user, h->user) == 0) {
      x->h.hits += h->hits;
      x->h.misses += h->misses;
      x->h.upstream += h->upstream;
      x->h.errors += h->errors;
      if (h->at > x->h.at)
        x->h.at = h->at;
      return 0;
    }
  struct sum *x = s->n < c->cap ? malloc(sizeof *x) : NULL;
  if (!x)
    return -1;
  x->hash = hash;
  x->day = day;
  x->h = *h;
  x->next = *b;
  *b = x;
  s->n++;
  return 0;
}

static void copy(char *dst, size_t cap, const char *src) {
  size_t n = strlen(src);
  if (n >= cap)
    n = 0; /* too long to be a real name: counted in the totals only */
  memcpy(dst, src, n);
  dst[n] = '\0';
}

void counters_add(struct counters *c, const char *module, const char *version,
                  const char *user, int hit, int upstream, int error,
                  time_t at) {
  struct meta_hit h;
  copy(h.module, sizeof h.module, module ? module : "");
  copy(h.version, sizeof h.version, version ? version : "");
  copy(h.user, sizeof h.user, user ? user : "");
  h.hits = hit != 0;
  h.misses = hit == 0;
  h.upstream = upstream > 0 ? upstream : 0;
  h.errors = error != 0;
  h.at = at;
  long day = (long)(at / 86400);
  uint64_t hash =
      fnv(fnv(fnv(1469598103934665603ull, h.module), h.version), h.user) ^
      (uint64_t)day;
  struct shard *s = &c->shards[hash % SHARDS];
  pthread_mutex_lock(&s->mu);
  int rc = add_locked(c, s, hash, day, &h);
  pthread_mutex_unlock(&s->mu);
  atomic_fetch_add_explicit(&c->queued, 1, memory_order_relaxed);
  if (rc)
    atomic_fetch_add_explicit(&c->dropped, 1, memory_order_relaxed);
}

/* Takes every sum out of the shards: a list the caller owns. */
static struct sum *take_all(struct counters *c) {
  struct sum *all = NULL;
  for (size_t i = 0; i < SHARDS; i++) {
    struct shard *s = &c->shards[i];
    pthread_mutex_lock(&s->mu);
    for (size_t b = 0; b < BUCKETS; b++) {
      while (s->buckets[b]) {
        struct sum *x = s->buckets[b];
        s->buckets[b] = x->next;
        x->next = all;
        all = x;
      }
    }
    s->n = 0;
    pthread_mutex_unlock(&s->mu);
  }
  return all;
}

/* Puts sums that could not be sent back (merged with newer ones); what no
 * longer fits is dropped. Frees the list. */
static void put_back(struct counters *c, struct sum *list) {
  while (list) {
    struct sum *x = list;
    list = x->next;
    struct shard *s = &c->shards[x->hash % SHARDS];
    pthread_mutex_lock(&s->mu);
    int rc = add_locked(c, s, x->hash, x->day, &x->h);
    pthread_mutex_unlock(&s->mu);
    if (rc)
      atomic_fetch_add(&c->dropped, requests_of(&x->h));
    free(x);
  }
}

/* Sends everything held, in batches. 0, or the store's error (what was not
 * sent is held again). */
static int flush(struct counters *c, struct meta_hit *batch) {
  struct sum *list = take_all(c);
  int rc = 0;
  while (list && !rc) {
    size_t n = 0;
    long long reqs = 0;
    struct sum *sent = list;
    struct sum *last = NULL;
    for (struct sum *x = list; x && n < BATCH_MAX; x = x->next) {
      batch[n++] = x->h;
      reqs += requests_of(&x->h);
      last = x;
    }
    list = last->next;
    last->next = NULL;
    rc = c->meta->ops->hits_add(c->meta, batch, n);
    if (rc) {
      atomic_fetch_add(&c->failures, 1);
      last->next = list; /* hold the whole rest again */
      put_back(c, sent);
      list = NULL;
      break;
    }
    atomic_fetch_add(&c->flushed, reqs);
    while (sent) {
      struct sum *x = sent;
      sent = x->next;
      free(x);
    }
  }
  return rc;
}

static void *flusher(void *arg) {
  struct counters *c = arg;
  struct meta_hit *batch = malloc(BATCH_MAX * sizeof *batch);
  pthread_mutex_lock(&c->mu);
  for (;;) {
    int stopping = c->stop;
    if (!stopping) {
      struct timespec ts;
      clock_deadline_in(&ts, c->flush_ms);
      pthread_cond_timedwait(&c->cv, &c->mu, &ts);
      stopping = c->stop;
    }
    pthread_mutex_unlock(&c->mu);
    int rc = batch ? flush(c, batch) : ERR_NOMEM;
    pthread_mutex_lock(&c->mu);
    if (rc && !c->down_logged)
      log_warn("counters: metadata store unavailable (%s); holding the "
               "counts of up to %zu keys, then dropping",
               err_str(rc), c->cap * SHARDS);
    else if (!rc && c->down_logged)
      log_info("counters: metadata store is back; flushing");
    c->down_logged = rc != 0;
    pthread_cond_broadcast(&c->done);
    if (stopping)
      break;
  }
  pthread_mutex_unlock(&c->mu);
  free(batch);
  return NULL;
}

int counters_start(struct meta *meta, long flush_ms, size_t capacity,
                   struct counters **out) {
  struct counters *c = calloc(1, sizeof *c);
  if (!c)
    return ERR_NOMEM;
  c->meta = meta;
  c->flush_ms = flush_ms;
  c->cap = capacity / SHARDS + 1;
  for (size_t i = 0; i < SHARDS; i++)
    pthread_mutex_init(&c->shards[i].mu, NULL);
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  pthread_cond_init(&c->done, NULL);
  if (pthread_create(&c->thread, NULL, flusher, c)) {
    counters_stop(c); /* frees what was set up; no thread to join */
    return ERR_NOMEM;
  }
  c->started = 1;
  *out = c;
  return 0;
}

void counters_stop(struct counters *c) {
  if (!c)
    return;
  pthread_mutex_lock(&c->mu);
  c->stop = 1;
  pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->mu);
  if (c->started)
    pthread_join(c->thread, NULL);
  struct sum *rest = take_all(c);
  while (rest) {
    struct sum *x = rest;
    rest = x->next;
    free(x);
  }
  for (size_t i = 0; i < SHARDS; i++)
    pthread_mutex_destroy(&c->shards[i].mu);
  pthread_cond_destroy(&c->cv);
  pthread_cond_destroy(&c->done);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

void counters_sync(struct counters *c, long timeout_ms) {
  struct timespec ts;
  clock_deadline_in(&ts, timeout_ms);
  long long target = atomic_load(&c->queued);
  pthread_mutex_lock(&c->mu);
  pthread_cond_signal(&c->cv);
  while (atomic_load(&c->flushed) + atomic_load(&c->dropped) < target &&
         !c->down_logged)
    if (pthread_cond_timedwait(&c->done, &c->mu, &ts) == ETIMEDOUT)
      break;
  pthread_mutex_unlock(&c->mu);
}

void counters_local(struct counters *c, struct counters_local *out) {
  out->queued = atomic_load(&c->queued);
  out->flushed = atomic_load(&c->flushed);
  out->dropped = atomic_load(&c->dropped);
  out->flush_failures = atomic_load(&c->failures);
}
