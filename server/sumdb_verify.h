/* Verifying a checksum database as the go command does (x/mod/sumdb's
 * client): every signed note against the verifier key of the `sumdb`
 * entry, every lookup's record proven in the signed tree through tiles, and
 * every tree head consistent with the newest head verified before, which is
 * kept in storage (sumdb/<name>/verified-head) and advanced under a lock,
 * so every replica advances the same head and none goes back. The proofs
 * themselves are mod/tlogproof.c's; this file fetches tiles (storage first,
 * then the database) and keeps the head. */
#ifndef GOMIRROR_SERVER_SUMDB_VERIFY_H
#define GOMIRROR_SERVER_SUMDB_VERIFY_H

#include <stddef.h>

struct buf;
struct reason;
struct server;
struct sumdb_entry;
struct worker;

/* The tile height x/mod's client and sum.golang.org use. */
#define SUMDB_TILE_HEIGHT 8

/* Whether db's answers are verified: it names a verifier key and
 * sumdb_verify is not off. */
int sumdb_verifies(const struct server *srv, const struct sumdb_entry *db);

/* Proves body, db's answer to rest ("lookup/...", "latest", "tile/..."):
 * a lookup's note is signed by db's key, its record is in that tree, and the
 * tree is consistent with the newest verified head (which it may advance);
 * /latest likewise; a tile's hashes (or a data tile's records) are those of
 * the newest verified head's tree. 0, or ERR_BAD_UPSTREAM_DATA with a
 * one-line reason (counted, and logged as a security event), or the error
 * met fetching a tile (ERR_UPSTREAM, ...). */
int sumdb_verify_answer(struct server *srv, struct worker *w,
                        const struct sumdb_entry *db, const char *rest,
                        const char *body, size_t len, struct reason *why);

/* The newest verified head of db as its signed note (what /latest answers
 * when the database is out of reach). 0 or ERR_NOT_FOUND. */
int sumdb_verified_head(struct server *srv, const struct sumdb_entry *db,
                        struct buf *out);

#endif
