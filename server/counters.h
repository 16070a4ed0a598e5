/* Hit counting off the request path: requests add their outcome to
 * in-memory sums, one per (module, version, user, day), in 16 shards with
 * their own locks; one thread sends the sums to the metadata store every
 * flush interval, in batches (one pipelined round trip each). Memory grows
 * with the distinct keys of one interval, not with the request rate. When
 * the store is down the sums are kept, up to capacity distinct keys; what
 * does not fit is dropped and counted. */
#ifndef GOMIRROR_SERVER_COUNTERS_H
#define GOMIRROR_SERVER_COUNTERS_H

#include <stddef.h>
#include <time.h>

struct meta;
struct counters;

struct counters_local {
  long long queued, flushed, dropped; /* requests */
  long long flush_failures;           /* batches the store refused */
};

/* capacity: distinct keys held at most. */
int counters_start(struct meta *meta, long flush_ms, size_t capacity,
                   struct counters **out);
/* Flushes what is held (best effort) and stops the thread. NULL-safe. */
void counters_stop(struct counters *c);
/* Counts one answered request: served from cache or storage (hit) or
 * fetched, with the upstream requests it made and whether it answered 5xx.
 * module may be "" (then it counts in the totals only); user "" when access
 * control is off. Never blocks on the store. */
void counters_add(struct counters *c, const char *module, const char *version,
                  const char *user, int hit, int upstream, int error,
                  time_t at);
/* Waits (up to timeout_ms) until everything counted so far is flushed or
 * dropped; for /stats, so counts include the requests before it. */
void counters_sync(struct counters *c, long timeout_ms);
void counters_local(struct counters *c, struct counters_local *out);

#endif
