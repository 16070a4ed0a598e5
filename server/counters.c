/* The hit queue and its flusher thread; see counters.h. */
#include "counters.h"

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "storage/meta.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH_MAX 256

struct counters {
  struct meta *meta;
  long flush_ms;
  pthread_mutex_t mu;
  pthread_cond_t cv;      /* wakes the flusher */
  pthread_cond_t flushed; /* wakes counters_sync */
  struct meta_hit *ring;
  size_t cap, head, len; /* ring buffer */
  struct counters_local stats;
  int stop;
  int down_logged;
  pthread_t thread;
};

/* Sends up to BATCH_MAX queued hits. Called with the lock held; drops it
 * around the round trip. Returns 1 if something was sent. */
static int flush_some(struct counters *c, struct meta_hit *batch) {
  size_t n = c->len < BATCH_MAX ? c->len : BATCH_MAX;
  if (!n)
    return 0;
  for (size_t i = 0; i < n; i++)
    batch[i] = c->ring[(c->head + i) % c->cap];
  pthread_mutex_unlock(&c->mu);
  int rc = c->meta->ops->hits_add(c->meta, batch, n);
  pthread_mutex_lock(&c->mu);
  if (rc) {
    c->stats.flush_failures++;
    if (!c->down_logged)
      log_warn("counters: metadata store unavailable (%s); holding up to "
               "%zu hits, then dropping",
               err_str(rc), c->cap);
    c->down_logged = 1;
    return 0;
  }
  if (c->down_logged)
    log_info("counters: metadata store is back; flushing");
  c->down_logged = 0;
  c->head = (c->head + n) % c->cap;
  c->len -= n;
  c->stats.flushed += (long long)n;
  pthread_cond_broadcast(&c->flushed);
  return 1;
}

static void *flusher(void *arg) {
  struct counters *c = arg;
  struct meta_hit *batch = malloc(BATCH_MAX * sizeof *batch);
  pthread_mutex_lock(&c->mu);
  while (!c->stop) {
    struct timespec ts;
    clock_deadline_in(&ts, c->flush_ms);
    pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    if (batch)
      while (flush_some(c, batch))
        ;
  }
  if (batch)
    while (flush_some(c, batch))
      ;
  pthread_mutex_unlock(&c->mu);
  free(batch);
  return NULL;
}

int counters_start(struct meta *meta, long flush_ms, size_t capacity,
                   struct counters **out) {
  struct counters *c = calloc(1, sizeof *c);
  if (!c)
    return ERR_NOMEM;
  c->ring = calloc(capacity, sizeof *c->ring);
  if (!c->ring) {
    free(c);
    return ERR_NOMEM;
  }
  c->meta = meta;
  c->flush_ms = flush_ms;
  c->cap = capacity;
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  pthread_cond_init(&c->flushed, NULL);
  if (pthread_create(&c->thread, NULL, flusher, c)) {
    free(c->ring);
    free(c);
    return ERR_NOMEM;
  }
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
  pthread_join(c->thread, NULL);
  pthread_cond_destroy(&c->cv);
  pthread_cond_destroy(&c->flushed);
  pthread_mutex_destroy(&c->mu);
  free(c->ring);
  free(c);
}

void counters_add(struct counters *c, const struct meta_hit *hit) {
  pthread_mutex_lock(&c->mu);
  if (c->len == c->cap) {
    c->stats.dropped++;
  } else {
    c->ring[(c->head + c->len) % c->cap] = *hit;
    c->len++;
    c->stats.queued++;
  }
  pthread_mutex_unlock(&c->mu);
}

void counters_sync(struct counters *c, long timeout_ms) {
  struct timespec ts;
  clock_deadline_in(&ts, timeout_ms);
  pthread_mutex_lock(&c->mu);
  long long target = c->stats.queued;
  pthread_cond_signal(&c->cv);
  while (c->stats.flushed < target && !c->down_logged)
    if (pthread_cond_timedwait(&c->flushed, &c->mu, &ts) == ETIMEDOUT)
      break;
  pthread_mutex_unlock(&c->mu);
}

void counters_local(struct counters *c, struct counters_local *out) {
  pthread_mutex_lock(&c->mu);
  *out = c->stats;
  pthread_mutex_unlock(&c->mu);
}
