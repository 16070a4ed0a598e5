/* Hit counting off the request path: requests append an outcome to a
 * bounded in-memory queue; one thread flushes it to the metadata store in
 * batches (one pipelined round trip each) every flush interval. When the
 * store is down the queue holds what it can, and what does not fit is
 * dropped and counted. */
#ifndef GOMIRROR_SERVER_COUNTERS_H
#define GOMIRROR_SERVER_COUNTERS_H

#include <stddef.h>

struct meta;
struct meta_hit;
struct counters;

struct counters_local {
  long long queued, flushed, dropped;
  long long flush_failures; /* batches the metadata store refused */
};

int counters_start(struct meta *meta, long flush_ms, size_t capacity,
                   struct counters **out);
/* Flushes what is queued (best effort) and stops the thread. NULL-safe. */
void counters_stop(struct counters *c);
/* Never blocks on the store: a full queue drops the hit and counts it. */
void counters_add(struct counters *c, const struct meta_hit *hit);
/* Waits (up to timeout_ms) until everything queued so far is flushed or
 * dropped; for /stats, so counts include the requests before it. */
void counters_sync(struct counters *c, long timeout_ms);
void counters_local(struct counters *c, struct counters_local *out);

#endif
