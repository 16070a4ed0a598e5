/* Verified credentials, kept in memory so that a bcrypt or LDAP round trip
 * is paid once per client per TTL, not per request. Entries are keyed by a
 * keyed hash (HMAC-SHA-256 under a random per-process key) of the
 * credential, never by the credential itself, and carry the generation of
 * the identity files they were verified against: when a file changes the
 * generation moves on and every older entry stops counting. */
#ifndef GOMIRROR_AUTH_CREDCACHE_H
#define GOMIRROR_AUTH_CREDCACHE_H

#include "identity.h"

#include <stddef.h>
#include <stdint.h>

struct credcache;
struct auth_credential;

#define CREDCACHE_KEY_LEN 32

/* capacity: entries kept at most (the oldest go first when full). */
int credcache_new(size_t capacity, struct credcache **out);
void credcache_free(struct credcache *c); /* NULL-safe */

/* Per-thread hashing state (an HMAC context under the cache's key); one per
 * worker thread, never shared. */
struct credcache_hasher;
struct credcache_hasher *credcache_hasher_new(const struct credcache *c);
void credcache_hasher_free(struct credcache_hasher *h); /* NULL-safe */
/* The cache key of a credential: HMAC over scheme, user and secret. */
int credcache_key(struct credcache_hasher *h,
                  const struct auth_credential *cred,
                  unsigned char key[CREDCACHE_KEY_LEN]);

/* Looks key up: 1 with *id (a verified identity), 2 when the credential is
 * known to be wrong, 0 when absent or expired or of an older generation. */
int credcache_get(struct credcache *c, const unsigned char *key,
                  uint64_t generation, double now, struct identity *id);
/* Remembers a verified identity (id) or a wrong credential (id NULL) until
 * now + ttl. */
void credcache_put(struct credcache *c, const unsigned char *key,
                   uint64_t generation, double now, double ttl,
                   const struct identity *id);
/* Entries held now (expired ones included until they are replaced). */
size_t credcache_size(struct credcache *c);

#endif
