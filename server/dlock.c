/* Cross-replica fetch locks; see dlock.h. The holder writes a "pending"
 * completion record when it takes the lock and the real result when it is
 * done, so a waiter never mistakes an older fetch's record for this one's. */
#include "dlock.h"

#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "server.h"
#include "storage/meta.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define DONE_PENDING 1    /* a completion record for work in progress */
#define DONE_TTL_MS 15000 /* how long a result stays for waiters */
#define POLL_MIN_US 50000 /* waiters look every 50-150 ms */

struct renewer {
  struct meta *meta;
  const char *key;
  const char *token;
  long ttl_ms;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop;
};

/* Extends the lock every third of its TTL until told to stop. */
static void *renew_loop(void *arg) {
  struct renewer *rn = arg;
  pthread_mutex_lock(&rn->mu);
  while (!rn->stop) {
    struct timespec ts;
    clock_deadline_in(&ts, rn->ttl_ms / 3);
    int w = pthread_cond_timedwait(&rn->cv, &rn->mu, &ts);
    if (rn->stop || w != ETIMEDOUT)
      continue;
    pthread_mutex_unlock(&rn->mu);
    int rc =
        rn->meta->ops->lock_renew(rn->meta, rn->key, rn->token, rn->ttl_ms);
    if (rc == ERR_NOT_FOUND)
      log_warn("fetch lock %s was lost while fetching; another replica may "
               "fetch too (storage keeps the first copy)",
               rn->key);
    pthread_mutex_lock(&rn->mu);
  }
  pthread_mutex_unlock(&rn->mu);
  return NULL;
}

static int run_holding(struct server *srv, const char *key, const char *token,
                       long ttl_ms, dlock_fn fn, void *arg,
                       struct reason *why) {
  struct meta *meta = srv->meta;
  meta->ops->done_put(meta, key, DONE_PENDING, "", ttl_ms * 2);
  struct renewer rn = {
      .meta = meta, .key = key, .token = token, .ttl_ms = ttl_ms};
  pthread_mutex_init(&rn.mu, NULL);
  pthread_cond_init(&rn.cv, NULL);
  pthread_t th;
  int renewing = pthread_create(&th, NULL, renew_loop, &rn) == 0;
  int rc = fn(arg, why);
  if (renewing) {
    pthread_mutex_lock(&rn.mu);
    rn.stop = 1;
    pthread_cond_signal(&rn.cv);
    pthread_mutex_unlock(&rn.mu);
    pthread_join(th, NULL);
  }
  pthread_cond_destroy(&rn.cv);
  pthread_mutex_destroy(&rn.mu);
  meta->ops->done_put(meta, key, rc, reason_text(why, rc), DONE_TTL_MS);
  meta->ops->lock_release(meta, key, token);
  return rc;
}

int dlock_run(struct server *srv, const char *key, dlock_fn fn, void *arg,
              struct reason *why) {
  struct meta *meta = srv->meta;
  const struct config *cfg = srv->cfg;
  long ttl_ms = cfg->lock_ttl * 1000;
  time_t give_up = time(NULL) + 2 * cfg->fetch_timeout + 2 * cfg->lock_ttl;
  for (;;) {
    char token[META_TOKEN_LEN];
    int rc = meta->ops->lock_take(meta, key, ttl_ms, token);
    if (rc == 0)
      return run_holding(srv, key, token, ttl_ms, fn, arg, why);
    if (rc != ERR_EXISTS) {
      atomic_fetch_add(&srv->metrics.redis_errors, 1);
      log_debug("fetch lock %s unavailable (%s): fetching here", key,
                err_str(rc));
      return fn(arg, why);
    }
    /* Another replica holds it: wait for its result, or for its lock to
     * vanish (it finished without a record, or died and the TTL ran out). */
    for (;;) {
      usleep(POLL_MIN_US + arc4random_uniform(2 * POLL_MIN_US));
      int code = 0;
      int d = meta->ops->done_get(meta, key, &code, why);
      if (d == 0 && code != DONE_PENDING)
        return code;
      int held = meta->ops->lock_held(meta, key);
      if (held == 0)
        break;
      if (held < 0) {
        atomic_fetch_add(&srv->metrics.redis_errors, 1);
        log_debug("fetch lock %s: metadata down while waiting: fetching here",
                  key);
        return fn(arg, why);
      }
      if (time(NULL) > give_up)
        return reason_set(why, ERR_UNAVAILABLE,
                          "another replica is still fetching %s; try again",
                          key + 6);
    }
  }
}
