/* The organisation checksum database (docs/sumdb.md): an append-only
 * transparency log of the go.sum lines of the versions gomirror commits,
 * RFC 6962 hashing and tiles of height 8 as golang.org/x/mod/sumdb/tlog lays
 * them out, kept in the configured storage under sumdb/<name>/, its tree
 * heads signed with the org_sumdb_key note key, so the go command verifies
 * private modules with GOSUMDB=<verifier key> and nothing else. Appends are
 * serialised across replicas by a metadata lock and write the signed head
 * last; every replica serves the newest committed head. */
#ifndef GOMIRROR_SERVER_ORGSUMDB_H
#define GOMIRROR_SERVER_ORGSUMDB_H

#include "mod/hash1.h"
#include "mod/note.h"
#include "mod/tlog.h"
#include "mod/tlogproof.h"

#include <stddef.h>
#include <stdint.h>

struct buf;
struct config;
struct meta;
struct modreq;
struct reason;
struct req;
struct server;
struct storage;

/* The tile height of the log: the go command's (TLOG_CLIENT_HEIGHT). */
#define ORGSUMDB_HEIGHT TLOG_CLIENT_HEIGHT
/* The test-only hook: milliseconds an append sleeps between writing its
 * record, tiles and index and writing the signed head, so a test can kill
 * the process mid-append. Read from the environment at start; never set it
 * in production. Not a GOMIRROR_* name: those are configuration keys. */
#define ORGSUMDB_TEST_PAUSE_ENV "ORGSUMDB_TEST_APPEND_PAUSE_MS"

struct orgsumdb;

/* What the engine needs, for orgsumdb_new (the unit tests build one over a
 * temp fs storage and in-memory metadata). */
struct orgsumdb_params {
  const char *skey;      /* signer key text, PRIVATE+KEY+<name>+<hash>+<key> */
  struct storage *store; /* where the log lives; not owned */
  struct meta *meta;     /* the cross-replica lock (memory: one process) */
  long lock_ttl_ms;      /* the lock's time to live without renewal */
  long pause_ms;         /* ORGSUMDB_TEST_PAUSE_ENV; 0 in production */
};

/* 1 when name may name the log: a note key name that is also one path
 * element (letters, digits, '.', '-', '_'; not "." or ".."), at most 255
 * bytes. */
int orgsumdb_name_ok(const char *name);

/* A log over p->store signed by p->skey (copied, then wiped from the
 * engine's own buffers when freed). *out is the caller's: orgsumdb_free.
 * ERR_CONFIG with why (never quoting the key) when the key is malformed. */
int orgsumdb_new(const struct orgsumdb_params *p, struct orgsumdb **out,
                 struct reason *why);
void orgsumdb_free(struct orgsumdb *db); /* NULL-safe; wipes the key */

/* For srv: NULL *out when org_sumdb_name is empty; else reads the key file
 * org_sumdb_key (never logged or quoted), checks that it is a signer key for
 * org_sumdb_name and that the name is not also a `sumdb` entry. ERR_CONFIG
 * with why otherwise. store and meta may be NULL (--check-config). */
int orgsumdb_open(const struct config *cfg, struct storage *store,
                  struct meta *meta, struct orgsumdb **out, struct reason *why);

const char *orgsumdb_name(const struct orgsumdb *db);
/* The verifier key developers put in GOSUMDB (owned by db). */
const char *orgsumdb_vkey(const struct orgsumdb *db);

/* The go.sum record text of a version: "<module> <version> <zip_h1>\n<module>
 * <version>/go.mod <mod_h1>\n", into out (cap bytes). 0, or ERR_INVALID when
 * it does not fit or a field holds a space or newline. */
int orgsumdb_record_text(const char *module, const char *version,
                         const char *zip_h1, const char *mod_h1, char *out,
                         size_t cap);

/* Appends module@version with its h1: hashes, under the log's lock (taken
 * across replicas through the metadata store: ERR_UNAVAILABLE when that
 * store cannot grant it, never an append without it). Inside the lock the
 * head is read from storage again; a version already logged with the same
 * hashes is left as it is (0); one logged with other hashes is refused
 * (ERR_BAD_UPSTREAM_DATA and a SECURITY log line). *id (may be NULL) gets
 * the version's record number. 0 or ERR_* with a one-line reason. */
int orgsumdb_append(struct orgsumdb *db, const char *module,
                    const char *version, const char *zip_h1, const char *mod_h1,
                    int64_t *id, struct reason *why);

/* The newest committed head: its signed note appended to note (may be
 * NULL) and its tree in *tree (may be NULL). Read from storage at most once
 * a second (refresh: now). An empty log is tree size 0 and a signed note of
 * it. 0, ERR_STORAGE, or ERR_BAD_UPSTREAM_DATA when the stored head is not
 * signed by the log's key (a SECURITY line). */
int orgsumdb_head(struct orgsumdb *db, int refresh, struct buf *note,
                  struct tlog_tree *tree, struct reason *why);

/* The log's answer to a lookup of module@version: the record as x/mod's
 * server formats it ("<id>\n<text>\n") and the signed head that includes it,
 * appended to out; zip_h1/mod_h1 (may be NULL) get its hashes. Only records
 * below the committed head count. 0 or ERR_NOT_FOUND (not logged),
 * ERR_STORAGE. */
int orgsumdb_lookup(struct orgsumdb *db, const char *module,
                    const char *version, struct buf *out,
                    char zip_h1[HASH1_LEN], char mod_h1[HASH1_LEN],
                    struct reason *why);

/* Tile t (height ORGSUMDB_HEIGHT; l == -1: a data tile) of the committed
 * log, appended to out: hash tiles as stored (a narrower one cut from the
 * head's own), data tiles made from the stored records. ERR_NOT_FOUND for a
 * tile the committed head does not have. */
int orgsumdb_tile(struct orgsumdb *db, const struct tlog_tile *t,
                  struct buf *out, struct reason *why);

/* Whether text is exactly the record of module@version (the two go.sum
 * lines orgsumdb_record_text writes); 1 with its hashes in zip_h1 and mod_h1
 * (either may be NULL), else 0. */
int orgsumdb_record_parse(const char *text, size_t len, const char *module,
                          const char *version, char zip_h1[HASH1_LEN],
                          char mod_h1[HASH1_LEN]);

/* A signed head note of this log: 0 and *tree when note is a tree signed by
 * the log's key, else ERR_BAD_UPSTREAM_DATA with why. */
int orgsumdb_open_head(const struct orgsumdb *db, const char *note, size_t len,
                       struct tlog_tree *tree, struct reason *why);

/* --- imports (bundle.c) ---------------------------------------------------
 * Another site's copy of this log (same name, same key): its signed head,
 * the hash tiles of that head's tree, and some of its records and index
 * entries. The caller has proven the records and tiles against the head. */
struct orgsumdb_import {
  const char *head; /* the signed head note */
  size_t head_len;
  tlog_tile_reader read_tile; /* the tiles of the head's tree */
  void *tile_arg;
  const int64_t *ids; /* the record ids carried, ascending */
  size_t nids;
  /* Object i of nobj, written in this order (records, then tiles, then
   * index entries): its key below sumdb/<name>/ into rest, its bytes
   * appended to out. 0 or ERR_* with why. */
  size_t nobj;
  int (*obj)(void *arg, size_t i, char *rest, size_t cap, struct buf *out,
             struct reason *why);
  void *obj_arg;
};

enum orgsumdb_import_state {
  ORGSUMDB_IMPORT_WRITTEN, /* the log's head is now the imported one */
  ORGSUMDB_IMPORT_CURRENT, /* it had that head, or a larger one extending it
                              (records and index entries may be written) */
  ORGSUMDB_IMPORT_WOULD,   /* dry run: it would be written */
};

struct orgsumdb_import_result {
  enum orgsumdb_import_state state;
  int64_t had;      /* records in this site's log before */
  size_t written;   /* objects stored (the head included) */
  size_t unchanged; /* already stored with the same bytes */
  size_t removed;   /* leftovers of killed appends past the old head */
};

/* Makes src's head this log's head when the stored log is empty or a prefix
 * of it (tlog_check_tree through src's tiles); when the stored head already
 * covers src's (the same tree, or a larger one extending it, proven through
 * the stored tiles) only src's records and index entries it lacks are
 * stored (a bundle of other versions under the same head). Under the log's
 * lock (as an append):
 * the stored head is read again, leftovers of killed appends between it and
 * src's head (records and their index entries, tiles of no committed tree)
 * are removed, then records, tiles and index entries are stored (same bytes
 * are not written again) and the head last, with storage_replace_buf. Never
 * signs anything. dry_run: only the decision, no lock, no write. 0 with
 * *res; ERR_EXISTS with why when the logs have diverged (nothing written);
 * ERR_UNAVAILABLE (lock), ERR_STORAGE, or src->obj's error. */
int orgsumdb_import(struct orgsumdb *db, const struct orgsumdb_import *src,
                    int dry_run, struct orgsumdb_import_result *res,
                    struct reason *why);

/* gomirror_orgsumdb_refused_total (the SECURITY refusals: tampered stored
 * artifacts, heads or tiles, appends refused) appended to out. NULL-safe:
 * nothing without a log. */
void orgsumdb_metrics(const struct orgsumdb *db, struct buf *out);

/* --- the server's side ---------------------------------------------------
 */

/* 1 when module's versions go in srv's log: private ones always, public
 * ones with org_sumdb_public; 0 when not (or no log). */
int orgsumdb_covers(const struct server *srv, const char *module);

/* The pipeline's hook (pipeline.c commit_version), after validation and
 * before the version's last artifact is written: appends m when the log
 * covers it and its zip is being committed. mod is the .mod (NULL: read the
 * committed one), zip_path the validated zip. 0 (also when not covered), or
 * the append's error: the commit must then fail. */
int orgsumdb_on_commit(struct server *srv, const struct modreq *m,
                       const void *mod, size_t modlen, const char *zip_path,
                       struct reason *why);

/* Appends a version committed before the log had it, from its stored .mod
 * and .zip (which pipe_ensure(want_zip) made sure of). 0 or ERR_*. */
int orgsumdb_append_committed(struct server *srv, const struct modreq *m,
                              struct reason *why);

/* Before a committed .mod or .zip (ext "mod", "zip") is served: when m is in
 * the log, its stored bytes must hash to the logged h1:. Checked once per
 * version and process (a bounded set remembers the good ones). 0 to serve;
 * ERR_BAD_UPSTREAM_DATA (502) with a SECURITY log line when they differ or
 * cannot be hashed; ERR_STORAGE when storage cannot say. */
int orgsumdb_check_served(struct server *srv, const struct modreq *m,
                          const char *ext, struct reason *why);

/* GET /sumdb/<org name>/<rest> (h_orgsumdb.c): supported, latest,
 * lookup/<path>@<version> (logging a version the caller may read on first
 * lookup), tile/8/<L>/<N>[.p/<W>] and tile/8/data/... Returns the status
 * sent. */
int h_orgsumdb(struct req *r, const char *rest);

#endif
