/* Prometheus metrics: fixed tables of atomic counters, so recording costs
 * a few atomic adds and no allocation or lock; /metrics renders them in the
 * text exposition format. */
#ifndef GOMIRROR_SERVER_METRICS_H
#define GOMIRROR_SERVER_METRICS_H

#include <stdatomic.h>

struct req;

enum metrics_endpoint {
  EP_LIST,
  EP_INFO,
  EP_MOD,
  EP_ZIP,
  EP_LATEST,
  EP_SUMDB,
  EP_HEALTH,
  EP_STATS,
  EP_METRICS,
  EP_ADMIN,
  EP_OTHER,
  EP__COUNT
};

#define METRICS_STATUSES 18 /* the codes gomirror answers, plus "other" */
#define METRICS_BUCKETS 14  /* upstream duration histogram */

struct metrics {
  atomic_llong requests[EP__COUNT][METRICS_STATUSES];
  atomic_llong hot_hits, hot_misses;         /* hot cache */
  atomic_llong storage_hits, storage_misses; /* storage, after a hot miss */
  atomic_llong upstream_fetches; /* fetches that left for upstream */
  atomic_llong upstream_seconds[METRICS_BUCKETS]; /* cumulative buckets */
  atomic_llong upstream_micros;                   /* sum, microseconds */
  atomic_llong upstream_requests;                 /* count */
  atomic_llong bytes_served;
  atomic_llong storage_errors, redis_errors;
  atomic_llong auth_failed;  /* 401 for wrong or unknown credentials */
  atomic_llong denied;       /* refused by the access rules */
  atomic_llong rate_limited; /* 429 */
};

void metrics_request(struct metrics *m, enum metrics_endpoint ep, int status,
                     long long bytes);
/* One request to an upstream, a checksum database or version control. */
void metrics_upstream(struct metrics *m, double seconds);

int h_metrics(struct req *r);

#endif
