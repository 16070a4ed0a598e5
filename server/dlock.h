/* One fetch per module version across all replicas: the work runs under a
 * metadata lock (Redis SET NX PX with a random token, renewed while the work
 * runs, released by compare-and-delete). Replicas that find the lock taken
 * wait for the holder's completion record; if the holder dies, its lock
 * expires after lock_ttl and a waiter takes over. When the metadata store is
 * down the work simply runs here: in-process coalescing still holds. */
#ifndef GOMIRROR_SERVER_DLOCK_H
#define GOMIRROR_SERVER_DLOCK_H

struct server;
struct reason;

typedef int (*dlock_fn)(void *arg, struct reason *why);

/* Runs fn under the lock named key ("fetch:<module>@<version>"), or waits for
 * the replica running it and returns that replica's result code and reason.
 * A busy lock never turns into a 500: after a long wait it is 503. */
int dlock_run(struct server *srv, const char *key, dlock_fn fn, void *arg,
              struct reason *why);

#endif
