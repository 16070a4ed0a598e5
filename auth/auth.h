/* Access control: who is asking (htpasswd users, API tokens, LDAP, with
 * groups from a group file) and what they may read (auth_rules). The rate
 * limits (ratelimit.h) and the audit log (audit.h) sit beside it and work
 * with access control off too. One struct auth per server;
 * every function is thread-safe. The identity and rule files are re-read by
 * a background thread within a second of changing; a file that no longer
 * parses keeps its last good version and logs one error. */
#ifndef GOMIRROR_AUTH_AUTH_H
#define GOMIRROR_AUTH_AUTH_H

#include "identity.h"
#include "rules.h"

#include <stddef.h>

struct config;
struct reason;
struct auth;
struct auth_thread;

/* Builds access control from c. With no identity source and no rules file
 * *out is NULL (everything open, as before) and 0 is returned. Errors in a
 * file (a refused hash format, a bad rule) are ERR_CONFIG with one line
 * naming the file, line and user. */
int auth_new(const struct config *c, struct auth **out, struct reason *why);
/* Stops the reload thread and frees everything. NULL-safe. */
void auth_free(struct auth *a);
/* One line for the start-up log saying what is on. */
void auth_describe(const struct auth *a, char *out, size_t cap);

/* Re-reads the identity and rule files now instead of within a second
 * (SIGHUP). */
void auth_reload(struct auth *a);

/* Per-worker-thread state; NULL on allocation failure. */
struct auth_thread *auth_thread_new(struct auth *a);
void auth_thread_free(struct auth_thread *t); /* NULL-safe */

/* Who sent the Authorization header value (NULL when absent: anonymous).
 * 0 with *id; ERR_UNAUTHORIZED when the credentials are malformed, unknown
 * or wrong; ERR_UNAVAILABLE when the identity provider (LDAP) cannot be
 * reached and the credential is not in the cache. Verified credentials are
 * cached (auth_cache_ttl); *cached says whether this one was. why never
 * holds a secret. */
int auth_identify(struct auth *a, struct auth_thread *t, const char *header,
                  struct identity *id, int *cached, struct reason *why);

/* 1 when id may read module (every endpoint of the module, and its
 * checksum-database lookups), else 0; *m (may be NULL) gets the rule. */
int auth_may_read(struct auth *a, const struct identity *id, const char *module,
                  struct rule_match *m);
/* 1 when id may use the endpoints about no one module (checksum-database
 * tiles and latest, /stats): some allow rule applies to id. */
int auth_may_use(struct auth *a, const struct identity *id);
/* 1 when id is listed in auth_admins (by name or group:NAME). */
int auth_is_admin(struct auth *a, const struct identity *id);

struct auth_stats {
  long long cache_hits, cache_misses; /* credential lookups */
  long long verified;                 /* misses that proved an identity */
  long long failures;                 /* wrong or unknown credentials */
  long long unavailable;              /* identity provider down */
  long long reloads, reload_errors;   /* identity and rule files */
  size_t cached;                      /* credentials held */
};
void auth_stats(struct auth *a, struct auth_stats *out);

#endif
