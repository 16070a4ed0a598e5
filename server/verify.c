/* Checking versions against the checksum database (verify.h). */
#include "verify.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "mod/modpath.h"
#include "mod/validate.h"
#include "pipeline.h"
#include "seen.h"
#include "server.h"
#include "storage/meta.h"
#include "storage/storage.h"
#include "sumdb.h"
#include "sumdb_verify.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* lookup_sums: the database could not say (unreachable, the module unknown
 * to it, or a lookup without the module's lines); *cause holds the error. */
#define SUMS_UNKNOWN 1

/* How long this process trusts its own record of a stored artifact it
 * checked, when the committed index could not record it. */
#define VERIFIED_TTL_S 600

/* m's two go.sum hashes from db, proven in its signed log (sumdb_fetch,
 * sumdb_verify.h). 0 with both set; ERR_BAD_UPSTREAM_DATA when the answer
 * failed its proof (already logged as a security event); SUMS_UNKNOWN. */
static int lookup_sums(struct server *srv, struct worker *w,
                       const struct sumdb_entry *db, const struct modreq *m,
                       char want_zip[HASH1_LEN], char want_mod[HASH1_LEN],
                       int *cause, struct reason *why) {
  char rest[PIPE_KEY_MAX];
  snprintf(rest, sizeof rest, "lookup/%s@%s", m->module_esc, m->version_esc);
  struct buf body;
  buf_init(&body, 1u << 20);
  int hit;
  int rc = sumdb_fetch(srv, w, db, rest, 1, &body, &hit, why);
  if (rc == ERR_BAD_UPSTREAM_DATA && sumdb_verifies(srv, db)) {
    buf_free(&body);
    return rc;
  }
  if (rc) {
    buf_free(&body);
    *cause = rc;
    reason_set(why, rc, "%s", reason_text(why, rc));
    return SUMS_UNKNOWN;
  }
  hash1_from_lookup(body.data, body.len, m->module, m->version, want_zip,
                    want_mod);
  buf_free(&body);
  /* sumdb_fetch refuses such a lookup; never skip the check silently. */
  if (!want_zip[0] || !want_mod[0]) {
    *cause = ERR_BAD_UPSTREAM_DATA;
    reason_set(why, ERR_BAD_UPSTREAM_DATA,
               "its lookup holds no go.sum lines for it");
    return SUMS_UNKNOWN;
  }
  return 0;
}

/* The database could not say: strict refuses (what is the error's
 * status), warn goes on with one warning line. */
static int unknown(struct server *srv, const struct sumdb_entry *db,
                   const struct modreq *m, const char *what, int cause,
                   const struct reason *lwhy, struct reason *why) {
  if (sumdb_mode(srv->cfg) == SUMDB_STRICT) {
    int code = cause == ERR_UPSTREAM_TIMEOUT    ? ERR_UPSTREAM_TIMEOUT
               : cause == ERR_BAD_UPSTREAM_DATA ? ERR_BAD_UPSTREAM_DATA
                                                : ERR_UPSTREAM;
    return reason_set(why, code,
                      "%s@%s %s: cannot verify it against %s "
                      "(sumdb_verify=strict): %s",
                      m->module, m->version, what, db->name,
                      reason_text(lwhy, cause));
  }
  log_warn("not verified against %s: %s@%s: %s", db->name, m->module,
           m->version, reason_text(lwhy, cause));
  return 0;
}

/* m's go.sum hashes from db, or the refusal: 0 with both set;
 * SUMS_UNKNOWN when the database could not say and sumdb_verify=warn lets
 * the caller go on unchecked (after one warning line); else the error, its
 * line saying what happens to m ("not committed", ...). */
static int sums_for(struct server *srv, struct worker *w,
                    const struct sumdb_entry *db, const struct modreq *m,
                    const char *what, char want_zip[HASH1_LEN],
                    char want_mod[HASH1_LEN], struct reason *why) {
  struct reason lwhy = {{0}};
  int cause = 0;
  int rc = lookup_sums(srv, w, db, m, want_zip, want_mod, &cause, &lwhy);
  if (rc == ERR_BAD_UPSTREAM_DATA)
    return reason_set(why, rc, "%s@%s %s: %s", m->module, m->version, what,
                      reason_text(&lwhy, rc));
  if (rc == SUMS_UNKNOWN) {
    rc = unknown(srv, db, m, what, cause, &lwhy, why);
    return rc ? rc : SUMS_UNKNOWN;
  }
  return 0;
}

int verify_sums(struct server *srv, struct worker *w, const struct modreq *m,
                const char *mod, size_t modlen, const char *zip_path,
                struct reason *why) {
  if (sumdb_mode(srv->cfg) == SUMDB_OFF || srv->sumdbs->n == 0)
    return 0;
  const struct sumdb_entry *db = &srv->sumdbs->v[0];
  char want_zip[HASH1_LEN], want_mod[HASH1_LEN], got[HASH1_LEN];
  int rc = sums_for(srv, w, db, m, "not committed", want_zip, want_mod, why);
  if (rc)
    return rc == SUMS_UNKNOWN ? 0 : rc;
  if (mod) {
    hash1_mod(mod, modlen, got);
    if (strcmp(got, want_mod) != 0)
      return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                        "checksum mismatch: upstream %s@%s/go.mod has %s, "
                        "%s says %s",
                        m->module, m->version, got, db->name, want_mod);
  }
  if (zip_path) {
    rc = hash1_zip(zip_path, got, why);
    if (rc)
      return rc;
    if (strcmp(got, want_zip) != 0)
      return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                        "checksum mismatch: upstream %s@%s zip has %s, %s "
                        "says %s",
                        m->module, m->version, got, db->name, want_zip);
  }
  return 0;
}

/* --- versions committed elsewhere --------------------------------------- */

/* A stored version that does not match: never served, never indexed. */
static int mismatch(struct server *srv, struct reason *why, const char *fmt,
                    ...) __attribute__((format(printf, 3, 4)));
static int mismatch(struct server *srv, struct reason *why, const char *fmt,
                    ...) {
  char text[sizeof why->text];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  atomic_fetch_add(&srv->metrics.stored_mismatch, 1);
  log_error("SECURITY: %s", text);
  return reason_set(why, ERR_BAD_UPSTREAM_DATA, "%s", text);
}

/* Compares the stored ext ("mod", "zip") of m with want, the hash dbname
 * vouches for. 0, the mismatch, or ERR_STORAGE. */
static int check_artifact(struct server *srv, const struct modreq *m,
                          const char *ext, const char *want,
                          const char *dbname, struct reason *why) {
  int zip = strcmp(ext, "zip") == 0;
  const char *what = zip ? "zip" : ".mod";
  char got[HASH1_LEN], key[PIPE_KEY_MAX];
  struct reason hwhy = {{0}};
  pipe_key(m, ext, key, sizeof key);
  int rc = zip ? stored_hash_zip(srv, key, got, &hwhy)
               : stored_hash_mod(srv, m, got, &hwhy);
  if (rc == ERR_STORAGE)
    return reason_set(why, rc, "%s", reason_text(&hwhy, rc));
  if (rc)
    return mismatch(srv, why,
                    "the stored %s of %s@%s, not committed by this region, "
                    "is damaged (%s): refusing to serve it",
                    what, m->module, m->version, reason_text(&hwhy, rc));
  if (strcmp(got, want) != 0)
    return mismatch(srv, why,
                    "the stored %s of %s@%s, not committed by this region, "
                    "has %s but %s says %s: refusing to serve it",
                    what, m->module, m->version, got, dbname, want);
  return 0;
}

int verify_stored_asks(const struct server *srv, int priv) {
  /* In-memory metadata starts empty at every start: there, "not in the
   * index" says nothing about who wrote a version. */
  return !priv && sumdb_mode(srv->cfg) != SUMDB_OFF && srv->sumdbs->n > 0 &&
         strcmp(srv->meta->ops->name, "memory") != 0;
}

int verify_stored(struct server *srv, struct worker *w, const struct modreq *m,
                  int priv, struct reason *why) {
  static const char *const kinds[3] = {"mod", "zip", "info"};
  struct blob_stat st[3];
  int present[3];
  for (int i = 0; i < 3; i++) {
    char key[PIPE_KEY_MAX];
    pipe_key(m, kinds[i], key, sizeof key);
    int rc = storage_stat(srv->store, key, &st[i]);
    if (rc && rc != ERR_NOT_FOUND)
      return reason_set(why, ERR_STORAGE,
                        "storage unavailable: cannot read %s@%s", m->module,
                        m->version);
    present[i] = rc == 0;
  }
  if (!present[2])
    return reason_set(why, ERR_NOT_FOUND, "%s@%s is not stored", m->module,
                      m->version);
  if (!present[0]) /* gomirror writes .mod before .info: a copy in flight */
    return VERIFY_INCOMPLETE;
  if (verify_stored_asks(srv, priv)) {
    const struct sumdb_entry *db = &srv->sumdbs->v[0];
    char want_zip[HASH1_LEN], want_mod[HASH1_LEN];
    int rc = sums_for(srv, w, db, m,
                      "found in storage (not committed here), not served",
                      want_zip, want_mod, why);
    if (rc && rc != SUMS_UNKNOWN)
      return rc;
    if (rc == 0) {
      if ((present[0] &&
           (rc = check_artifact(srv, m, "mod", want_mod, db->name, why))) ||
          (present[1] &&
           (rc = check_artifact(srv, m, "zip", want_zip, db->name, why))))
        return rc;
      atomic_fetch_add(&srv->metrics.stored_checked, 1);
      log_info("checked %s@%s, found in storage, against %s", m->module,
               m->version, db->name);
    }
  }
  /* Checked (or nothing to check): known from now on, for every replica,
   * and on this one when the index cannot record it (metadata down). */
  struct meta *meta = srv->meta;
  time_t now = time(NULL);
  for (int i = 0; i < 3; i++) {
    if (!present[i])
      continue;
    meta->ops->index_put(meta, m->module, m->version, kinds[i], st[i].size);
    char name[PIPE_KEY_MAX];
    pipe_key(m, kinds[i], name, sizeof name);
    seen_put(srv->verified, name, 1, now);
  }
  return 0;
}

int verify_stored_seen(struct server *srv, const char *key) {
  time_t at = 0;
  return seen_get(srv->verified, key, &at) && time(NULL) - at < VERIFIED_TTL_S;
}

/* --- hashes of committed artifacts -------------------------------------- */

static int fd_sink(void *arg, const void *data, size_t len) {
  int fd = *(int *)arg;
  const char *p = data;
  while (len) {
    ssize_t w = write(fd, p, len);
    if (w <= 0)
      return ERR_IO;
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

int stored_hash_zip(struct server *srv, const char *key, char out[HASH1_LEN],
                    struct reason *why) {
  char path[4096];
  struct reason hwhy = {{0}};
  int rc;
  if (storage_local_path(srv->store, key, path, sizeof path) == 0) {
    rc = hash1_zip(path, out, &hwhy);
  } else {
    snprintf(path, sizeof path, "%s/gomirror-verify-XXXXXX", srv->spool_dir);
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
      return reason_set(why, ERR_IO, "cannot create a spool file in %s",
                        srv->spool_dir);
    unlink(path);
    rc = storage_get(srv->store, key, NULL, fd_sink, &fd);
    if (rc)
      rc = ERR_STORAGE;
    else {
      snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
      rc = hash1_zip(path, out, &hwhy);
    }
    close(fd);
  }
  if (rc == ERR_IO || rc == ERR_STORAGE)
    return reason_set(why, ERR_STORAGE, "reading %s failed", key);
  if (rc)
    return reason_set(why, rc, "%s", reason_text(&hwhy, rc));
  return 0;
}

int stored_hash_mod(struct server *srv, const struct modreq *m,
                    char out[HASH1_LEN], struct reason *why) {
  char key[PIPE_KEY_MAX];
  pipe_key(m, "mod", key, sizeof key);
  struct buf b;
  buf_init(&b, VALIDATE_MOD_MAX);
  int rc = storage_get_buf(srv->store, key, &b);
  if (!rc)
    rc = hash1_mod(b.data ? b.data : "", b.len, out);
  buf_free(&b);
  return rc ? reason_set(why, ERR_STORAGE, "reading %s failed", key) : 0;
}
