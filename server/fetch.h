/* In-process request coalescing ("single flight"): of N concurrent callers
 * for one key, one becomes the leader and does the work; the others wait and
 * receive the leader's result code and reason. */
#ifndef GOMIRROR_SERVER_FETCH_H
#define GOMIRROR_SERVER_FETCH_H

#include "core/err.h"

struct flight_group;
struct flight;

int flight_group_new(struct flight_group **out);
void flight_group_free(struct flight_group *g); /* NULL-safe */

/* Joins the flight for key. Returns 1 if the caller is the leader (it must
 * call flight_done exactly once), 0 if it waited: then *rc and *why hold the
 * leader's result. ERR_NOMEM on allocation failure. */
int flight_join(struct flight_group *g, const char *key, struct flight **f,
                int *rc, struct reason *why);
/* Publishes the leader's result, wakes the waiters and forgets the key, so
 * the next caller starts a fresh flight. */
void flight_done(struct flight_group *g, struct flight *f, int rc,
                 const struct reason *why);

#endif
