/* Checking a version's bytes against the checksum database: at fetch,
 * before the first commit (verify_sums), and for a version that storage
 * holds but this region never committed (verify_stored): bucket
 * replication, `aws s3 sync`, a restored backup. Also the h1: hashes of
 * committed artifacts, shared with the organisation checksum database. */
#ifndef GOMIRROR_SERVER_VERIFY_H
#define GOMIRROR_SERVER_VERIFY_H

#include "mod/hash1.h"

#include <stddef.h>

struct modreq;
struct reason;
struct server;
struct worker;

/* Checks fetched bytes (mod, NULL when no .mod was fetched; zip_path, NULL
 * when no zip was) against the first checksum database before they are
 * stored. A lookup that fails its proof is refused in every mode; a
 * database that cannot answer refuses with sumdb_verify=strict (502/504)
 * and passes with a warning with warn. 0 or the error, with one line. */
int verify_sums(struct server *srv, struct worker *w, const struct modreq *m,
                const char *mod, size_t modlen, const char *zip_path,
                struct reason *why);

/* m's .info is in storage but not in the committed index: another writer
 * put it there (with a shared metadata store, Redis; in-memory metadata
 * starts empty at every start, so there it is only indexed). Hashes its stored .mod and zip (those present) and compares
 * them with the checksum database (public paths; priv: nothing to ask),
 * then records what it checked in the index so it is checked once per
 * region. A mismatch or a damaged zip is a security event: one SECURITY
 * line, gomirror_stored_mismatch_total, ERR_BAD_UPSTREAM_DATA (502), and
 * nothing indexed. A database that cannot answer is handled as at fetch
 * (strict refuses, 502/504; warn serves with a warning). VERIFY_INCOMPLETE
 * when the .info has no .mod beside it: a copy still arriving (replication
 * keeps no order), which the caller fetches as if it were not there. */
int verify_stored(struct server *srv, struct worker *w, const struct modreq *m,
                  int priv, struct reason *why);
#define VERIFY_INCOMPLETE 2 /* positive; not 1, which dlock.c reserves */

/* 1 when verify_stored passed the artifact stored under key lately, in
 * this process: held, even when the committed index cannot say so. */
int verify_stored_seen(struct server *srv, const char *key);

/* 1 when verify_stored has anything to ask a database for (a public path,
 * verification on, a shared metadata store). */
int verify_stored_asks(const struct server *srv, int priv);

/* h1: of a stored zip (key): from its file on fs storage, else spooled
 * once to an unlinked temp file. ERR_STORAGE when it cannot be read;
 * ERR_BAD_UPSTREAM_DATA when it is no valid zip. */
int stored_hash_zip(struct server *srv, const char *key, char out[HASH1_LEN],
                    struct reason *why);

/* h1: of m's stored .mod. ERR_STORAGE when it cannot be read. */
int stored_hash_mod(struct server *srv, const struct modreq *m,
                    char out[HASH1_LEN], struct reason *why);

#endif
