/* What this process has checked already, by name: a bounded, thread-safe
 * table of slots keyed by a 128-bit fingerprint (SHA-256) of the name, each
 * holding a small state and a time. A newer name may take an older one's
 * slot, so a lookup can forget (the check then runs again) but never
 * confuse two names. Used for the stored versions checked against a
 * checksum database (verify.c, orgsumdb.c). */
#ifndef GOMIRROR_SERVER_SEEN_H
#define GOMIRROR_SERVER_SEEN_H

#include <stddef.h>
#include <time.h>

struct seen;

/* A table of slots entries. 0, or ERR_NOMEM. */
int seen_new(size_t slots, struct seen **out);
void seen_free(struct seen *s); /* NULL-safe */

/* The state (> 0) and time recorded for name, or 0 when none is. */
int seen_get(struct seen *s, const char *name, time_t *at);

/* Records state (> 0) and at for name. */
void seen_put(struct seen *s, const char *name, int state, time_t at);

#endif
