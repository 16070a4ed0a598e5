/* Counters for /metrics; see metrics.h. */
#include "metrics.h"

#include "auth/auth.h"
#include "connguard.h"
#include "core/buf.h"
#include "core/err.h"
#include "counters.h"
#include "hot.h"
#include "http.h"
#include "server.h"

#include <stdio.h>

static const int statuses[METRICS_STATUSES - 1] = {200, 206, 302, 304, 400, 401,
                                                   403, 404, 405, 410, 416, 500,
                                                   501, 502, 503, 504, 429};

static const char *const endpoints[EP__COUNT] = {
    "list",   "info",  "mod",     "zip",   "latest", "sumdb",
    "health", "stats", "metrics", "admin", "other"};

static const double bounds[METRICS_BUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};

static int status_index(int status) {
  for (int i = 0; i < METRICS_STATUSES - 1; i++)
    if (statuses[i] == status)
      return i;
  return METRICS_STATUSES - 1;
}

void metrics_request(struct metrics *m, enum metrics_endpoint ep, int status,
                     long long bytes) {
  atomic_fetch_add_explicit(&m->requests[ep][status_index(status)], 1,
                            memory_order_relaxed);
  atomic_fetch_add_explicit(&m->bytes_served, bytes, memory_order_relaxed);
}

void metrics_upstream(struct metrics *m, double seconds) {
  for (int i = 0; i < METRICS_BUCKETS; i++)
    if (seconds <= bounds[i])
      atomic_fetch_add_explicit(&m->upstream_seconds[i], 1,
                                memory_order_relaxed);
  atomic_fetch_add_explicit(&m->upstream_micros, (long long)(seconds * 1e6),
                            memory_order_relaxed);
  atomic_fetch_add_explicit(&m->upstream_requests, 1, memory_order_relaxed);
}

static long long get(atomic_llong *v) {
  return atomic_load_explicit(v, memory_order_relaxed);
}

int h_metrics(struct req *r) {
  struct server *srv = r->srv;
  struct metrics *m = &srv->metrics;
  struct buf b;
  buf_init(&b, 1u << 20);
  buf_appendf(&b, "# HELP gomirror_requests_total HTTP requests by endpoint "
                  "and status.\n# TYPE gomirror_requests_total counter\n");
  for (int e = 0; e < EP__COUNT; e++)
    for (int s = 0; s < METRICS_STATUSES; s++) {
      long long n = get(&m->requests[e][s]);
      if (!n)
        continue;
      if (s < METRICS_STATUSES - 1)
        buf_appendf(&b,
                    "gomirror_requests_total{endpoint=\"%s\",code=\"%d\"} "
                    "%lld\n",
                    endpoints[e], statuses[s], n);
      else
        buf_appendf(&b,
                    "gomirror_requests_total{endpoint=\"%s\",code=\"other\"} "
                    "%lld\n",
                    endpoints[e], n);
    }
  buf_appendf(
      &b,
      "# HELP gomirror_cache_lookups_total Artifact lookups by cache layer "
      "(hot: this replica's memory; storage: after a hot miss).\n"
      "# TYPE gomirror_cache_lookups_total counter\n"
      "gomirror_cache_lookups_total{layer=\"hot\",result=\"hit\"} %lld\n"
      "gomirror_cache_lookups_total{layer=\"hot\",result=\"miss\"} %lld\n"
      "gomirror_cache_lookups_total{layer=\"storage\",result=\"hit\"} %lld\n"
      "gomirror_cache_lookups_total{layer=\"storage\",result=\"miss\"} "
      "%lld\n"
      "# HELP gomirror_upstream_fetches_total Misses fetched from upstream "
      "(a proxy, version control or a checksum database).\n"
      "# TYPE gomirror_upstream_fetches_total counter\n"
      "gomirror_upstream_fetches_total %lld\n",
      get(&m->hot_hits), get(&m->hot_misses), get(&m->storage_hits),
      get(&m->storage_misses), get(&m->upstream_fetches));
  buf_appendf(&b, "# HELP gomirror_upstream_request_seconds Duration of "
                  "upstream requests.\n"
                  "# TYPE gomirror_upstream_request_seconds histogram\n");
  for (int i = 0; i < METRICS_BUCKETS; i++)
    buf_appendf(&b,
                "gomirror_upstream_request_seconds_bucket{le=\"%g\"} %lld\n",
                bounds[i], get(&m->upstream_seconds[i]));
  long long nreq = get(&m->upstream_requests);
  struct counters_local cl;
  counters_local(srv->counters, &cl);
  buf_appendf(
      &b,
      "gomirror_upstream_request_seconds_bucket{le=\"+Inf\"} %lld\n"
      "gomirror_upstream_request_seconds_sum %.6f\n"
      "gomirror_upstream_request_seconds_count %lld\n"
      "# HELP gomirror_in_flight_requests Requests being served.\n"
      "# TYPE gomirror_in_flight_requests gauge\n"
      "gomirror_in_flight_requests %ld\n"
      "# HELP gomirror_bytes_served_total Response body bytes sent.\n"
      "# TYPE gomirror_bytes_served_total counter\n"
      "gomirror_bytes_served_total %lld\n"
      "# HELP gomirror_storage_errors_total Storage operations that failed.\n"
      "# TYPE gomirror_storage_errors_total counter\n"
      "gomirror_storage_errors_total %lld\n"
      "# HELP gomirror_redis_errors_total Metadata operations that found "
      "Redis unavailable.\n"
      "# TYPE gomirror_redis_errors_total counter\n"
      "gomirror_redis_errors_total %lld\n"
      "# HELP gomirror_counters_dropped_total Hit counts dropped while Redis "
      "was down and the queue was full.\n"
      "# TYPE gomirror_counters_dropped_total counter\n"
      "gomirror_counters_dropped_total %lld\n"
      "# HELP gomirror_hot_cache_bytes Bytes held in the hot cache.\n"
      "# TYPE gomirror_hot_cache_bytes gauge\n"
      "gomirror_hot_cache_bytes %zu\n",
      nreq, (double)get(&m->upstream_micros) / 1e6, nreq,
      atomic_load(&srv->in_flight), get(&m->bytes_served),
      get(&m->storage_errors), get(&m->redis_errors) + cl.flush_failures,
      cl.dropped, hot_bytes(srv->hot));
  long long slow = 0, over_cap = 0;
  connguard_counts(srv->guard, &slow, &over_cap);
  buf_appendf(&b,
              "# HELP gomirror_connections_closed_total Client connections "
              "the guard closed: no complete request headers within "
              "header_timeout, or beyond max_client_conns for one address.\n"
              "# TYPE gomirror_connections_closed_total counter\n"
              "gomirror_connections_closed_total{reason=\"slow_headers\"} "
              "%lld\n"
              "gomirror_connections_closed_total{reason=\"over_cap\"} %lld\n",
              slow, over_cap);
  struct auth_stats as;
  auth_stats(srv->auth, &as);
  buf_appendf(
      &b,
      "# HELP gomirror_auth_credentials_total Credential checks: answered "
      "from the cache, verified (htpasswd, token or LDAP), refused, or "
      "refused because the identity provider was down.\n"
      "# TYPE gomirror_auth_credentials_total counter\n"
      "gomirror_auth_credentials_total{result=\"cached\"} %lld\n"
      "gomirror_auth_credentials_total{result=\"verified\"} %lld\n"
      "gomirror_auth_credentials_total{result=\"failed\"} %lld\n"
      "gomirror_auth_credentials_total{result=\"unavailable\"} %lld\n"
      "# HELP gomirror_auth_denied_total Requests refused by the access "
      "rules.\n"
      "# TYPE gomirror_auth_denied_total counter\n"
      "gomirror_auth_denied_total %lld\n"
      "# HELP gomirror_rate_limited_total Requests refused with 429.\n"
      "# TYPE gomirror_rate_limited_total counter\n"
      "gomirror_rate_limited_total %lld\n"
      "# HELP gomirror_auth_reloads_total Access-control files re-read after "
      "a change, and changes that did not parse (the last good version "
      "stays).\n"
      "# TYPE gomirror_auth_reloads_total counter\n"
      "gomirror_auth_reloads_total{result=\"ok\"} %lld\n"
      "gomirror_auth_reloads_total{result=\"error\"} %lld\n",
      as.cache_hits, as.verified, get(&m->auth_failed), as.unavailable,
      get(&m->denied), get(&m->rate_limited), as.reloads, as.reload_errors);
  int st = b.data
               ? http_send(r, 200, "text/plain; version=0.0.4; charset=utf-8",
                           CACHE_NONE, NULL, b.data, b.len)
               : http_fail(r, ERR_NOMEM, NULL);
  buf_free(&b);
  return st;
}
