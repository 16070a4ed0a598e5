/* Request and bandwidth limits; see ratelimit.h. Local request buckets live
 * in 16 shards of chained hash tables under their own mutexes; a bucket that
 * has refilled completely is the same as no bucket, so when a shard is full
 * those are the ones dropped. */
#include "ratelimit.h"

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "identity.h"
#include "storage/meta.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SHARDS 16
#define SHARD_BUCKETS 1024
#define SHARD_MAX 8192 /* local buckets per shard */
#define GROUPS_MAX 64

struct bucket {
  struct bucket *next;
  double tokens, at;
  double rate, burst; /* the limit it was last taken under */
  char key[];
};

struct shard {
  pthread_mutex_t mu;
  struct bucket *heads[SHARD_BUCKETS];
  size_t n;
};

struct override {
  char group[AUTH_NAME_MAX];
  double rate, burst;
};

struct bwbucket {
  char group[AUTH_NAME_MAX];
  double bytes_per_s;
  pthread_mutex_t mu;
  double tokens, at; /* tokens may go negative: a debt paid by sleeping */
};

struct ratelimit {
  double rate, burst;
  struct override ov[GROUPS_MAX];
  size_t nov;
  struct bwbucket bw[GROUPS_MAX];
  size_t nbw;
  struct meta *meta;
  atomic_int shared_down_logged;
  struct shard shards[SHARDS];
};

/* Parses "name:a[/b],..." calling fn for each entry; b is -1 when absent.
 * 0, or ERR_CONFIG naming the key and the bad entry. */
static int parse_list(const char *list, const char *key, int with_burst,
                      int (*fn)(void *, const char *, size_t, double, double),
                      void *arg, struct reason *why) {
  for (const char *p = list; p && *p;) {
    size_t n = strcspn(p, ",");
    const char *colon = memchr(p, ':', n);
    char *end = NULL;
    double a = -1, b = -1;
    int ok = colon && auth_name_ok(p, (size_t)(colon - p));
    if (ok) {
      a = strtod(colon + 1, &end);
      ok = end != colon + 1 && a > 0 && isfinite(a) && a <= 1e9;
    }
    if (ok && with_burst && *end == '/') {
      const char *bs = end + 1;
      b = strtod(bs, &end);
      ok = end != bs && b >= 1 && isfinite(b) && b <= 1e9;
    }
    ok = ok && end == p + n;
    if (!ok)
      return reason_set(why, ERR_CONFIG, "%s: entry '%.*s' is not %s", key,
                        (int)(n > 60 ? 60 : n), p,
                        with_burst ? "group:rate or group:rate/burst"
                                   : "group:megabits-per-second");
    int rc = fn ? fn(arg, p, (size_t)(colon - p), a, b) : 0;
    if (rc)
      return reason_set(why, rc, "%s: too many entries", key);
    p += n;
    if (*p == ',')
      p++;
  }
  return 0;
}

static int add_override(void *arg, const char *g, size_t gl, double rate,
                        double burst) {
  struct ratelimit *rl = arg;
  if (rl->nov == GROUPS_MAX)
    return ERR_CONFIG;
  struct override *o = &rl->ov[rl->nov++];
  memcpy(o->group, g, gl);
  o->group[gl] = '\0';
  o->rate = rate;
  o->burst = burst > 0 ? burst : 2 * rate;
  return 0;
}

static int add_bw(void *arg, const char *g, size_t gl, double mbps,
                  double unused) {
  (void)unused;
  struct ratelimit *rl = arg;
  if (rl->nbw == GROUPS_MAX)
    return ERR_CONFIG;
  struct bwbucket *b = &rl->bw[rl->nbw++];
  memcpy(b->group, g, gl);
  b->group[gl] = '\0';
  b->bytes_per_s = mbps * 1e6 / 8;
  pthread_mutex_init(&b->mu, NULL);
  /* A quarter second's worth may go at once. */
  b->tokens = b->bytes_per_s / 4;
  b->at = clock_now_s();
  return 0;
}

int ratelimit_check_groups(const char *groups, const char *mbps_groups,
                           struct reason *why) {
  int rc = parse_list(groups, "rate_limit_groups", 1, NULL, NULL, why);
  return rc ? rc
            : parse_list(mbps_groups, "rate_limit_mbps_groups", 0, NULL, NULL,
                         why);
}

int ratelimit_new(long rate, long burst, const char *groups,
                  const char *mbps_groups, struct meta *meta,
                  struct ratelimit **out, struct reason *why) {
  *out = NULL;
  struct ratelimit *rl = calloc(1, sizeof *rl);
  if (!rl)
    return ERR_NOMEM;
  rl->rate = (double)rate;
  rl->burst = burst > 0 ? (double)burst : 2.0 * (double)rate;
  rl->meta = meta;
  for (size_t i = 0; i < SHARDS; i++)
    pthread_mutex_init(&rl->shards[i].mu, NULL);
  int rc = parse_list(groups, "rate_limit_groups", 1, add_override, rl, why);
  if (!rc)
    rc = parse_list(mbps_groups, "rate_limit_mbps_groups", 0, add_bw, rl, why);
  if (rc) {
    ratelimit_free(rl);
    return rc;
  }
  *out = rl;
  return 0;
}

void ratelimit_free(struct ratelimit *rl) {
  if (!rl)
    return;
  for (size_t i = 0; i < SHARDS; i++) {
    struct shard *s = &rl->shards[i];
    for (size_t b = 0; b < SHARD_BUCKETS; b++)
      for (struct bucket *x = s->heads[b], *next; x; x = next) {
        next = x->next;
        free(x);
      }
    pthread_mutex_destroy(&s->mu);
  }
  for (size_t i = 0; i < rl->nbw; i++)
    pthread_mutex_destroy(&rl->bw[i].mu);
  free(rl);
}

int ratelimit_active(const struct ratelimit *rl) {
  if (!rl)
    return 0;
  return rl->nbw ? 2 : rl->rate > 0 || rl->nov > 0;
}

static size_t fnv(const char *s) {
  size_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* Drops buckets that have refilled by now; the caller holds the lock. */
static void sweep(struct shard *s, double now) {
  for (size_t b = 0; b < SHARD_BUCKETS; b++)
    for (struct bucket **pp = &s->heads[b]; *pp;) {
      struct bucket *x = *pp;
      if (x->tokens + (now - x->at) * x->rate >= x->burst) {
        *pp = x->next;
        free(x);
        s->n--;
      } else {
        pp = &x->next;
      }
    }
}

static int take_local(struct ratelimit *rl, const char *key, double rate,
                      double burst, double *retry_s) {
  size_t h = fnv(key);
  struct shard *s = &rl->shards[h % SHARDS];
  double now = clock_now_s();
  int rc = 0;
  pthread_mutex_lock(&s->mu);
  struct bucket **head = &s->heads[(h / SHARDS) % SHARD_BUCKETS];
  struct bucket *x = *head;
  while (x && strcmp(x->key, key) != 0)
    x = x->next;
  if (!x) {
    if (s->n >= SHARD_MAX)
      sweep(s, now);
    size_t kl = strlen(key);
    if (s->n < SHARD_MAX && (x = malloc(sizeof *x + kl + 1)) != NULL) {
      memcpy(x->key, key, kl + 1);
      x->tokens = burst;
      x->at = now;
      x->next = *head;
      *head = x;
      s->n++;
    }
  }
  /* With no room to track the key, it is let through: a limit must never
   * turn into refusing everyone. */
  if (x) {
    x->tokens = fmin(burst, x->tokens + (now - x->at) * rate);
    x->at = now;
    x->rate = rate;
    x->burst = burst;
    if (x->tokens >= 1) {
      x->tokens -= 1;
    } else {
      rc = ERR_RATE_LIMITED;
      *retry_s = (1 - x->tokens) / rate;
    }
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

int ratelimit_take(struct ratelimit *rl, const char *key,
                   const struct identity *id, struct rate_outcome *out) {
  memset(out, 0, sizeof *out);
  if (!rl)
    return 0;
  double rate = rl->rate, burst = rl->burst;
  int overridden = 0;
  for (size_t i = 0; i < rl->nov; i++)
    if (identity_in_group(id, rl->ov[i].group) &&
        (!overridden || rl->ov[i].rate > rate)) {
      rate = rl->ov[i].rate;
      burst = rl->ov[i].burst;
      overridden = 1;
    }
  out->rate = rate;
  out->burst = burst;
  if (rate <= 0)
    return 0;
  if (burst < 1)
    burst = 1;
  if (rl->meta) {
    int rc =
        rl->meta->ops->rate_take(rl->meta, key, rate, burst, &out->retry_s);
    if (rc == 0 || rc == ERR_RATE_LIMITED) {
      out->shared = 1;
      if (atomic_exchange(&rl->shared_down_logged, 0))
        log_info("rate limits: shared buckets are back");
      return rc;
    }
    if (rc != ERR_UNSUPPORTED && !atomic_exchange(&rl->shared_down_logged, 1))
      log_warn("rate limits: shared buckets unavailable (%s); limiting per "
               "replica until the metadata store is back",
               err_str(rc));
  }
  return take_local(rl, key, rate, burst, &out->retry_s);
}

struct bwbucket *ratelimit_bandwidth(struct ratelimit *rl,
                                     const struct identity *id) {
  struct bwbucket *best = NULL;
  for (size_t i = 0; rl && i < rl->nbw; i++)
    if (identity_in_group(id, rl->bw[i].group) &&
        (!best || rl->bw[i].bytes_per_s > best->bytes_per_s))
      best = &rl->bw[i];
  return best;
}

void bwbucket_take(struct bwbucket *b, size_t n) {
  if (!b || !n)
    return;
  pthread_mutex_lock(&b->mu);
  double now = clock_now_s();
  double cap = b->bytes_per_s / 4;
  b->tokens = fmin(cap, b->tokens + (now - b->at) * b->bytes_per_s);
  b->at = now;
  b->tokens -= (double)n;
  double wait = b->tokens < 0 ? -b->tokens / b->bytes_per_s : 0;
  pthread_mutex_unlock(&b->mu);
  if (wait > 0) {
    struct timespec ts = {(time_t)wait, (long)((wait - floor(wait)) * 1e9)};
    while (nanosleep(&ts, &ts) != 0)
      ;
  }
}
