/* The per-replica hot cache: immutable artifacts (.info, .mod, small zips,
 * checksum-database lookups) kept in memory, bounded in bytes, evicted least
 * recently used first. Entries are reference-counted so a response can be
 * written from one without copying it or holding the lock. */
#ifndef GOMIRROR_SERVER_HOT_H
#define GOMIRROR_SERVER_HOT_H

#include <stddef.h>

struct hot_cache;

struct hot_entry {
  const char *data; /* owned by the cache; valid until hot_release */
  size_t len;
  char etag[72];
};

/* max_bytes 0 gives a cache that stores nothing. */
int hot_new(size_t max_bytes, struct hot_cache **out);
void hot_free(struct hot_cache *h); /* NULL-safe; no entry may be held */

/* Largest single entry the cache takes (a fraction of its size). */
size_t hot_item_max(const struct hot_cache *h);

/* Pins the entry for key: NULL when absent. Release with hot_release. */
const struct hot_entry *hot_get(struct hot_cache *h, const char *key);
void hot_release(struct hot_cache *h, const struct hot_entry *e);

/* Copies data in under key (replacing an older entry), evicting as needed.
 * Too-large items are ignored. 0 or ERR_NOMEM. */
int hot_put(struct hot_cache *h, const char *key, const void *data, size_t len,
            const char *etag);

/* Drops every entry whose key starts with prefix; returns how many. */
size_t hot_drop_prefix(struct hot_cache *h, const char *prefix);

/* Bytes held now. */
size_t hot_bytes(struct hot_cache *h);

#endif
