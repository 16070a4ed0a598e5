/* The module pipeline (pipeline.h): fetch once, validate, verify, commit;
 * lists, @latest and queries cached in metadata with a TTL and served
 * stale, merged with what is stored, when the upstream fails. */
#include "pipeline.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "dlock.h"
#include "fetch.h"
#include "hot.h"
#include "mod/hash1.h"
#include "mod/private.h"
#include "mod/modpath.h"
#include "mod/semver.h"
#include "server.h"
#include "storage/meta.h"
#include "storage/storage.h"
#include "sumdb.h"
#include "sumdb_verify.h"
#include "upstream.h"
#include "mod/validate.h"
#include "orgsumdb.h"
#include "policy.h"
#include "vcs.h"
#include "verify.h"

#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LIST_MAX (16u << 20)

void pipe_init(struct pipe *p, struct server *srv, struct worker *w) {
  p->srv = srv;
  p->w = w;
  p->cache = "hit";
  p->upstream = 0;
  p->offline = srv->cfg->offline;
  p->id = NULL;
  p->policy = POLICY_UNCHECKED;
  p->chain = NULL;
}

/* The chain this call fetches from: private_upstream while a private path
 * is fetched from another gomirror (region.h), else upstream. */
static const struct upstream *pipe_chain(const struct pipe *p) {
  return p->chain ? p->chain : p->srv->up;
}

/* "<module_esc>/@v/<version_esc>.<ext>", truncated to cap (keys of valid
 * requests always fit PIPE_KEY_MAX). Built with memcpy: it runs per request. */
void pipe_key(const struct modreq *m, const char *ext, char *out,
                    size_t cap) {
  const char *parts[] = {m->module_esc, "/@v/", m->version_esc, ".", ext};
  size_t n = 0;
  for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
    size_t l = strlen(parts[i]);
    if (n + l >= cap)
      l = cap - 1 - n;
    memcpy(out + n, parts[i], l);
    n += l;
  }
  out[n] = '\0';
}

/* --- fetching into memory or a spool file ------------------------------ */

static int buf_write(void *arg, const void *p, size_t n) {
  return buf_append(arg, p, n);
}
static int buf_reset_sink(void *arg) {
  buf_reset(arg);
  return 0;
}

static int fetch_buf(struct pipe *p, const char *rel, struct buf *out,
                     struct reason *why) {
  struct up_sink sink = {buf_write, buf_reset_sink, out};
  long attempts = 0;
  double t0 = clock_now_s();
  int rc = upstream_get(pipe_chain(p), worker_curl(p->w), rel, &sink, &attempts, why);
  if (attempts)
    metrics_upstream(&p->srv->metrics, clock_now_s() - t0);
  atomic_fetch_add(&p->srv->metrics.upstream_fetches, attempts);
  p->upstream += (int)attempts;
  if (rc == ERR_TOO_LARGE)
    reason_set(why, rc, "upstream %s is larger than %zu bytes", rel, out->max);
  return rc;
}

struct spool {
  int fd;
  uint64_t size;
};

static int spool_write(void *arg, const void *p, size_t n) {
  struct spool *s = arg;
  if (s->size + n > VALIDATE_ZIP_MAX)
    return ERR_TOO_LARGE;
  const char *c = p;
  while (n) {
    ssize_t w = write(s->fd, c, n);
    if (w <= 0)
      return ERR_IO;
    c += w;
    n -= (size_t)w;
    s->size += (uint64_t)w;
  }
  return 0;
}

static int spool_reset(void *arg) {
  struct spool *s = arg;
  s->size = 0;
  if (ftruncate(s->fd, 0) || lseek(s->fd, 0, SEEK_SET) < 0)
    return ERR_IO;
  return 0;
}

/* An unlinked temp file: a crash leaves nothing behind, and no child
 * process (go, git, ssh) inherits it. */
static int spool_open(struct server *srv, struct spool *s) {
  char path[300];
  snprintf(path, sizeof path, "%s/gomirror-zip-XXXXXX", srv->spool_dir);
  s->fd = mkostemp(path, O_CLOEXEC);
  s->size = 0;
  if (s->fd < 0)
    return ERR_IO;
  unlink(path);
  return 0;
}

/* --- immutable versions ------------------------------------------------ */

/* 1 when m's artifact of this kind ("info", "mod", "zip") is held: in the
 * hot cache or in the committed index (no storage round trip); 2 when only
 * storage holds it: another writer put it there (bucket replication, a
 * copy, lost metadata), and verify_stored checks it before it is served
 * and indexed. 0 when it is not held, ERR_STORAGE when storage cannot
 * say. */
static int have(struct server *srv, const struct modreq *m, const char *kind) {
  char key[PIPE_KEY_MAX];
  pipe_key(m, kind, key, sizeof key);
  const struct hot_entry *e = hot_get(srv->hot, key);
  if (e) {
    hot_release(srv->hot, e);
    return 1;
  }
  if (srv->meta->ops->index_has(srv->meta, m->module, m->version, kind) == 1)
    return 1;
  struct blob_stat st;
  int rc = storage_stat(srv->store, key, &st);
  if (rc == 0)
    return verify_stored_seen(srv, key) ? 1 : 2;
  if (rc == ERR_NOT_FOUND)
    return 0;
  atomic_fetch_add(&srv->metrics.storage_errors, 1);
  return ERR_STORAGE;
}

static int storage_down(const struct modreq *m, struct reason *why) {
  return reason_set(why, ERR_STORAGE,
                    "storage unavailable: %s@%s is not in this replica's "
                    "cache and cannot be read or stored now",
                    m->module, m->version);
}

/* 1 when m's .info is stored without its .mod: a copy from elsewhere
 * still arriving (gomirror itself writes .mod first). */
static int copy_in_flight(struct server *srv, const struct modreq *m) {
  char key[PIPE_KEY_MAX];
  struct blob_stat st;
  pipe_key(m, "mod", key, sizeof key);
  return storage_stat(srv->store, key, &st) == ERR_NOT_FOUND;
}

/* Fetches .info and .mod (unless have_info) and the zip (when need_zip)
 * down the upstream chain. UPSTREAM_DIRECT when the chain says `direct`. */
static int gather_upstream(struct pipe *p, const struct modreq *m, int have_info,
                           int need_zip, struct buf *info, struct buf *mod,
                           struct spool *sp, int *info_only,
                           struct reason *why) {
  struct server *srv = p->srv;
  char rel[PIPE_KEY_MAX];
  int rc;
  if (!have_info) {
    snprintf(rel, sizeof rel, "%s/@v/%s.info", m->module_esc, m->version_esc);
    rc = fetch_buf(p, rel, info, why);
    if (rc)
      return rc;
    char got[VERSION_MAX + 1];
    /* Checked here too, so garbage costs no further upstream requests. */
    rc = validate_info(info->data, info->len, m->version, 1, got, sizeof got,
                       why);
    if (!rc) /* a version inside its cooldown costs nothing more either */
      rc = policy_on_info(p, m, info->data, info->len, why);
    if (rc)
      return rc;
    snprintf(rel, sizeof rel, "%s/@v/%s.mod", m->module_esc, m->version_esc);
    rc = fetch_buf(p, rel, mod, why);
    if (rc == ERR_NOT_FOUND || rc == ERR_GONE) {
      /* The upstream knows the version but has no .mod: nothing is
       * committed, the .info stays servable (pipe_info_only). */
      *info_only = 1;
      return reason_set(why, rc,
                        "%s@%s: the upstream has its .info but no .mod",
                        m->module, m->version);
    }
    if (!rc)
      rc = validate_mod(mod->data, mod->len, m->module, why);
    if (rc)
      return rc;
  }
  if (!need_zip)
    return 0;
  rc = spool_open(srv, sp);
  if (rc)
    return reason_set(why, rc, "cannot create a spool file in %s",
                      srv->spool_dir);
  snprintf(rel, sizeof rel, "%s/@v/%s.zip", m->module_esc, m->version_esc);
  struct up_sink sink = {spool_write, spool_reset, sp};
  long attempts = 0;
  double t0 = clock_now_s();
  rc = upstream_get(pipe_chain(p), worker_curl(p->w), rel, &sink, &attempts, why);
  if (attempts)
    metrics_upstream(&srv->metrics, clock_now_s() - t0);
  atomic_fetch_add(&srv->metrics.upstream_fetches, attempts);
  p->upstream += (int)attempts;
  if (rc == ERR_TOO_LARGE)
    reason_set(why, rc, "upstream zip for %s@%s is larger than 500 MiB",
               m->module, m->version);
  return rc;
}

static int read_file(const char *path, struct buf *out) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return ERR_IO;
  char chunk[4096];
  int rc = 0;
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0) {
      rc = ERR_IO;
      break;
    }
    if (n == 0)
      break;
    rc = buf_append(out, chunk, (size_t)n);
    if (rc)
      break;
  }
  close(fd);
  return rc;
}

/* Runs `go mod download` for module@query and reads what it produced:
 * .info and .mod into buffers (unless have_info), the zip opened into sp
 * (when need_zip). *resolved gets the canonical version. */
static int gather_vcs(struct pipe *p, struct vcs *vcs, const char *module,
                      const char *query, int have_info, int need_zip,
                      struct buf *info, struct buf *mod, struct spool *sp,
                      char *resolved, size_t cap, struct reason *why) {
  if (!vcs)
    return reason_set(why, ERR_UNSUPPORTED,
                      "fetching from version control is not configured");
  struct vcs_download d;
  p->upstream++;
  atomic_fetch_add(&p->srv->metrics.upstream_fetches, 1);
  double t0 = clock_now_s();
  int rc = vcs_download(vcs, module, query, &d, why);
  metrics_upstream(&p->srv->metrics, clock_now_s() - t0);
  if (rc)
    return rc;
  snprintf(resolved, cap, "%s", d.version);
  if (!have_info) {
    rc = read_file(d.info_path, info);
    if (!rc)
      rc = read_file(d.mod_path, mod);
    if (rc)
      reason_set(why, rc == ERR_TOO_LARGE ? rc : ERR_UPSTREAM,
                 "reading what the go command fetched for %s@%s failed", module,
                 d.version);
  }
  if (!rc && need_zip) {
    sp->fd = open(d.zip_path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (sp->fd < 0 || fstat(sp->fd, &st))
      rc = reason_set(why, ERR_UPSTREAM, "the go command left no zip for %s@%s",
                      module, d.version);
    else
      sp->size = (uint64_t)st.st_size;
  }
  /* The open zip survives the removal of its directory. */
  vcs_download_done(&d);
  return rc;
}

static int is_private(const struct server *srv, const char *module) {
  const char *p = srv->cfg->private_patterns;
  return p && p[0] && private_match(p, module) == 1;
}

/* Validates what was gathered for m (the .info and .mod unless have_info,
 * the zip in sp when need_zip), checks public modules against the checksum
 * database, and commits: .mod and .zip first, .info last. */
static int commit_version(struct pipe *p, const struct modreq *m, int priv,
                          int have_info, int need_zip, struct buf *info,
                          struct buf *mod, struct spool *sp,
                          struct reason *why) {
  struct server *srv = p->srv;
  char info_key[PIPE_KEY_MAX], mod_key[PIPE_KEY_MAX], zip_key[PIPE_KEY_MAX];
  pipe_key(m, "info", info_key, sizeof info_key);
  pipe_key(m, "mod", mod_key, sizeof mod_key);
  pipe_key(m, "zip", zip_key, sizeof zip_key);
  char got[VERSION_MAX + 1];
  int rc = 0;
  if (!have_info) {
    rc = validate_info(info->data, info->len, m->version, 1, got, sizeof got,
                       why);
    if (!rc)
      rc = validate_mod(mod->data, mod->len, m->module, why);
    if (rc)
      return rc;
  }
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", sp->fd);
  if (need_zip) {
    rc = validate_zip(path, m->module, m->version, why);
    if (rc)
      return rc;
  }
  /* A private path is never sent to a checksum database. */
  if (!priv)
    rc = verify_sums(srv, p->w, m, have_info ? NULL : mod->data, mod->len,
                     need_zip ? path : NULL, why);
  if (rc)
    return rc;
  /* Logged in the organisation checksum database (when it covers m)
   * before anything is committed: no version is served without its
   * record, and one that fails to be logged is not committed. */
  /* The version policy (cooldown, the policy hook) before the first
   * commit: a refused version leaves nothing behind. */
  rc = policy_on_commit(p, m, have_info ? NULL : info->data,
                        have_info ? 0 : info->len, need_zip ? path : NULL, why);
  if (rc)
    return rc;
  rc = orgsumdb_on_commit(srv, m, have_info ? NULL : mod->data,
                          have_info ? 0 : mod->len, need_zip ? path : NULL,
                          why);
  if (rc)
    return rc;
  /* Commit: .mod and .zip first, .info last; .info marks the version. */
  if (!have_info) {
    rc = storage_put_buf(srv->store, mod_key, mod->data, mod->len);
    if (rc)
      goto stored;
  }
  if (need_zip) {
    rc = storage_put_fd(srv->store, zip_key, sp->fd, sp->size);
    if (rc)
      goto stored;
  }
  if (!have_info)
    rc = storage_put_buf(srv->store, info_key, info->data, info->len);
  if (!rc) {
    struct meta *meta = srv->meta;
    if (need_zip)
      meta->ops->index_put(meta, m->module, m->version, "zip", sp->size);
    if (!have_info) {
      meta->ops->index_put(meta, m->module, m->version, "mod", mod->len);
      meta->ops->index_put(meta, m->module, m->version, "info", info->len);
    }
  }
stored:
  if (rc) {
    atomic_fetch_add(&srv->metrics.storage_errors, 1);
    reason_set(why, ERR_STORAGE, "storing %s@%s failed: %s", m->module,
               m->version, err_str(rc));
  } else
    log_info("committed %s@%s%s", m->module, m->version,
             need_zip ? " (with zip)" : "");
  return rc;
}

/* Negative-cache keys of a version. "v:<module>@<version>" holds 404s, 410s
 * and refusals met fetching .info and .mod, which every request for the
 * version meets again; "vz:..." holds refusals met by zip requests, which
 * only zip requests check, so a bad zip never denies a good .info or .mod. */
static void neg_key(const struct modreq *m, int zip, char *out, size_t cap) {
  snprintf(out, cap, "%s:%s@%s", zip ? "vz" : "v", m->module, m->version);
}

/* Upstream data refused on its merits (invalid, checksum mismatch, too
 * large) would be refused again, so it is remembered for negative_ttl like
 * a 404: a zip bomb costs one check per negative_ttl, not one per request.
 * Timeouts, upstream 5xx and storage failures may pass and are not. */
static int is_refusal(int rc) {
  return rc == ERR_BAD_UPSTREAM_DATA || rc == ERR_TOO_LARGE;
}

/* 0 when no answer is remembered for m (and its zip when want_zip), else
 * that answer's code (404, 410, or 502 for a refusal) with why set to the
 * one-line reason it had. */
static int neg_cached(struct server *srv, const struct modreq *m, int want_zip,
                      struct reason *why) {
  char nk[PIPE_KEY_MAX];
  int status;
  for (int zip = 0; zip <= !!want_zip; zip++) {
    neg_key(m, zip, nk, sizeof nk);
    if (srv->meta->ops->neg_get(srv->meta, nk, &status, why) == 0)
      return status == 410   ? ERR_GONE
             : status == 404 ? ERR_NOT_FOUND
                             : ERR_BAD_UPSTREAM_DATA;
  }
  return 0;
}

/* The metadata key of a version whose .info the upstream serves without
 * its .mod. */
static void info_only_key(const struct modreq *m, char *out, size_t cap) {
  snprintf(out, cap, "infoonly:%s@%s", m->module, m->version);
}

int pipe_info_only(struct pipe *p, const struct modreq *m, struct buf *out) {
  char ik[PIPE_KEY_MAX + 16];
  info_only_key(m, ik, sizeof ik);
  time_t at = 0;
  buf_reset(out);
  int rc = p->srv->meta->ops->cache_get(p->srv->meta, ik, out, &at);
  if (!rc && time(NULL) - at > p->srv->cfg->negative_ttl)
    rc = ERR_NOT_FOUND; /* as old as the 404 of its .mod */
  if (rc)
    buf_reset(out);
  return rc;
}

/* Fetches, validates and commits what is missing of m's version (and its
 * zip when want_zip). Only ever run by one thread per version: private
 * modules and `direct` come from version control, the rest from the
 * upstream chain. */
static int fetch_version(struct pipe *p, const struct modreq *m, int want_zip,
                         struct reason *why) {
  struct server *srv = p->srv;
  int have_info = have(srv, m, "info");
  if (have_info == 2 && copy_in_flight(srv, m))
    have_info = 0; /* fetch .info and .mod; the copy's .info stays */
  int have_zip = want_zip ? have(srv, m, "zip") : 1;
  if (have_info < 0 || have_zip < 0)
    return storage_down(m, why);
  int need_zip = !have_zip;
  /* The policy hook is asked with the zip's hash: a first commit takes it. */
  if (!have_info && !need_zip && policy_wants_zip(srv)) {
    int hz = have(srv, m, "zip");
    if (hz < 0)
      return storage_down(m, why);
    need_zip = !hz;
  }
  if (have_info && !need_zip)
    return 0;
  /* Another replica may have met a refusal while we waited for the lock. */
  int cached = neg_cached(srv, m, want_zip, why);
  if (cached)
    return cached;

  struct buf info, mod;
  buf_init(&info, VALIDATE_INFO_MAX);
  buf_init(&mod, VALIDATE_MOD_MAX);
  struct spool sp = {-1, 0};
  int priv = is_private(srv, m->module);
  char got[VERSION_MAX + 1];
  int rc;
  if (priv && srv->up_private) {
    /* Another region's gomirror fetches it (private_upstream): never the
     * public chain, never a checksum database. */
    int info_only = 0;
    p->chain = srv->up_private;
    rc = gather_upstream(p, m, have_info, need_zip, &info, &mod, &sp,
                         &info_only, why);
    p->chain = NULL;
    if (rc == UPSTREAM_DIRECT)
      rc = reason_set(why, ERR_CONFIG, "private_upstream names direct");
  } else if (priv) {
    /* go mod download fetches all three at once: keep the zip too. */
    need_zip = !have(srv, m, "zip");
    rc = gather_vcs(p, srv->vcs_private, m->module, m->version, have_info,
                    need_zip, &info, &mod, &sp, got, sizeof got, why);
  } else {
    int info_only = 0;
    rc = policy_may_fetch(srv, m->module, why); /* `only` */
    if (!rc)
      rc = gather_upstream(p, m, have_info, need_zip, &info, &mod, &sp,
                           &info_only, why);
    if (info_only) {
      char ik[PIPE_KEY_MAX + 16];
      info_only_key(m, ik, sizeof ik);
      srv->meta->ops->cache_put(srv->meta, ik, info.data, info.len);
    }
    if (rc == UPSTREAM_DIRECT) {
      buf_reset(&info);
      buf_reset(&mod);
      if (sp.fd >= 0)
        close(sp.fd);
      sp.fd = -1;
      if (why)
        why->text[0] = '\0';
      rc = gather_vcs(p, srv->vcs_direct, m->module, m->version, have_info,
                      need_zip, &info, &mod, &sp, got, sizeof got, why);
    }
  }
  if (!rc)
    rc = commit_version(p, m, priv, have_info, need_zip, &info, &mod, &sp, why);
  if (rc == ERR_NOT_FOUND || rc == ERR_GONE || is_refusal(rc)) {
    char nk[PIPE_KEY_MAX];
    neg_key(m, is_refusal(rc) && want_zip, nk, sizeof nk);
    srv->meta->ops->neg_put(srv->meta, nk, err_http_status(rc),
                            reason_text(why, rc), srv->cfg->negative_ttl);
  }
  if (is_refusal(rc))
    log_warn("fetch %s@%s: %s (refused for %lds)", m->module, m->version,
             reason_text(why, rc), srv->cfg->negative_ttl);
  else if (rc && rc != ERR_STORAGE && rc != ERR_NOT_FOUND && rc != ERR_GONE &&
           rc != ERR_FORBIDDEN) /* the version policy: audited, counted */
    log_warn("fetch %s@%s: %s", m->module, m->version, reason_text(why, rc));
  if (sp.fd >= 0)
    close(sp.fd);
  buf_free(&info);
  buf_free(&mod);
  return rc == ERR_STORAGE ? ERR_STORAGE : rc;
}

struct fetch_args {
  struct pipe *p;
  const struct modreq *m;
  int want_zip;
};

static int fetch_locked(void *arg, struct reason *why) {
  struct fetch_args *fa = arg;
  return fetch_version(fa->p, fa->m, fa->want_zip, why);
}

static int check_locked(void *arg, struct reason *why) {
  struct fetch_args *fa = arg;
  struct server *srv = fa->p->srv;
  const struct modreq *m = fa->m;
  /* Another replica may have checked it while we waited for the lock. */
  struct meta *meta = srv->meta;
  if (meta->ops->index_has(meta, m->module, m->version, "info") == 1 &&
      (!fa->want_zip ||
       meta->ops->index_has(meta, m->module, m->version, "zip") == 1))
    return 0;
  return verify_stored(srv, fa->p->w, m, is_private(srv, m->module), why);
}

/* m's version is in storage but not in the committed index: checks it
 * (verify.h) once across replicas, under the lock its fetch would take,
 * before anything of it is served. */
static int check_stored(struct pipe *p, const struct modreq *m,
                        struct reason *why) {
  struct server *srv = p->srv;
  int priv = is_private(srv, m->module);
  if (!verify_stored_asks(srv, priv)) /* nothing to ask: just index it */
    return verify_stored(srv, p->w, m, priv, why);
  struct fetch_args fa = {p, m, 1};
  char lk[PIPE_KEY_MAX + 16];
  snprintf(lk, sizeof lk, "fetch:%s@%s+zip", m->module, m->version);
  return dlock_run(srv, lk, check_locked, &fa, why);
}

/* Makes sure m's version (and zip) is committed, fetching it at most once
 * however many requests ask at the same time, on this replica or any. */
int pipe_ensure(struct pipe *p, const struct modreq *m, int want_zip,
                struct reason *why) {
  struct server *srv = p->srv;
  char info_key[PIPE_KEY_MAX], zip_key[PIPE_KEY_MAX], fk[PIPE_KEY_MAX];
  pipe_key(m, "info", info_key, sizeof info_key);
  pipe_key(m, "zip", zip_key, sizeof zip_key);
  snprintf(fk, sizeof fk, "%s@%s", m->module, m->version);
  if (p->policy == POLICY_UNCHECKED) {
    struct policy_outcome pv;
    int prc = policy_check(p, m, &pv, why);
    if (prc)
      return prc;
  }
  for (int round = 0; round < 4; round++) {
    int hi = have(srv, m, "info");
    int hz = want_zip && hi > 0 ? have(srv, m, "zip") : 1;
    if (hi < 0 || hz < 0)
      return storage_down(m, why);
    if (hi == 2 || hz == 2) {
      /* Stored by another writer: checked once, then indexed. */
      int rc = check_stored(p, m, why);
      if (rc < 0)
        return rc;
      if (rc != VERIFY_INCOMPLETE)
        continue;
      hi = 0; /* an .info without its .mod yet: fetched as a miss */
      if (why)
        why->text[0] = '\0';
    }
    if (hi && hz)
      return 0;
    if (p->offline)
      return reason_set(why, ERR_NOT_FOUND,
                        "%s@%s%s is not stored here, and fetching is "
                        "disabled (%s)",
                        m->module, m->version, hi ? " (its zip)" : "",
                        srv->cfg->offline ? "offline" : "Disable-Module-Fetch");
    int cached = neg_cached(srv, m, want_zip, why);
    if (cached)
      return cached;
    struct flight *f;
    int rc = 0;
    int lead = flight_join(srv->flights, fk, &f, &rc, why);
    if (lead < 0)
      return lead;
    p->cache = "miss";
    if (lead) {
      struct fetch_args fa = {p, m, want_zip};
      char lk[PIPE_KEY_MAX + 16];
      snprintf(lk, sizeof lk, "fetch:%s@%s%s", m->module, m->version,
               want_zip ? "+zip" : "");
      rc = dlock_run(srv, lk, fetch_locked, &fa, why);
      flight_done(srv->flights, f, rc, why);
      if (rc)
        return rc;
      continue; /* re-check: another replica may have fetched it */
    }
    if (rc)
      return rc;
    /* The leader may have fetched less than we need (no zip): go again. */
  }
  return reason_set(why, ERR_UNAVAILABLE, "%s@%s: fetch did not settle",
                    m->module, m->version);
}

/* --- mutable answers: list, @latest, queries --------------------------- */

struct stored_versions {
  const char *dir; /* "<module_esc>/@v/" */
  struct buf *out;
};

static int collect_version(void *arg, const char *key, uint64_t size) {
  (void)size;
  struct stored_versions *sv = arg;
  size_t dl = strlen(sv->dir), kl = strlen(key);
  if (kl <= dl + 5 || strcmp(key + kl - 5, ".info") != 0)
    return 0;
  const char *base = key + dl;
  if (memchr(base, '/', kl - dl))
    return 0; /* a nested module's file */
  char esc[VERSION_ESC_MAX + 1], v[VERSION_MAX + 1];
  size_t el = kl - dl - 5;
  if (el >= sizeof esc)
    return 0;
  memcpy(esc, base, el);
  esc[el] = '\0';
  if (modpath_unescape(esc, v, sizeof v) == 0)
    buf_appendf(sv->out, "%s\n", v);
  return 0;
}

/* Appends the committed versions of m's module, one per line: from the
 * committed index when the metadata store has one, else by listing
 * storage. */
static int stored_versions(struct server *srv, const struct modreq *m,
                           struct buf *out) {
  if (srv->meta->ops->index_versions(srv->meta, m->module, out) == 0 &&
      out->len > 0)
    return 0;
  buf_reset(out);
  char dir[PIPE_KEY_MAX];
  snprintf(dir, sizeof dir, "%s/@v/", m->module_esc);
  struct stored_versions sv = {dir, out};
  return storage_list(srv->store, dir, collect_version, &sv);
}

/* The stale list (may be NULL) merged with stored versions. */
static int merged_list(struct server *srv, const struct modreq *m,
                       const struct buf *stale, struct buf *out) {
  struct buf stored;
  buf_init(&stored, LIST_MAX);
  stored_versions(srv, m, &stored);
  int rc = versions_merge(stale ? stale->data : NULL, stale ? stale->len : 0,
                          stored.data, stored.len, out);
  buf_free(&stored);
  return rc;
}

enum mutable_kind { MUT_LIST, MUT_LATEST, MUT_QUERY };

/* Fetches a mutable answer through the flight group and caches it. The
 * leader fetches; waiters read what it cached. */
struct mutable_args {
  struct pipe *p;
  const struct modreq *m;
  enum mutable_kind kind;
  const char *ckey;
  struct buf *out;
};

struct sha_ctx {
  EVP_MD_CTX *ctx;
};

static int sha_sink(void *arg, const void *data, size_t len) {
  EVP_DigestUpdate(((struct sha_ctx *)arg)->ctx, data, len);
  return 0;
}

/* 1 when the zip in fd differs from the stored one, 0 when equal, <0 when
 * either cannot be read. */
static int zip_differs(struct server *srv, const struct modreq *m, int fd) {
  unsigned char a[32], b[32];
  struct sha_ctx s = {EVP_MD_CTX_new()};
  if (!s.ctx)
    return ERR_NOMEM;
  char key[PIPE_KEY_MAX];
  pipe_key(m, "zip", key, sizeof key);
  EVP_DigestInit_ex(s.ctx, EVP_sha256(), NULL);
  int rc = storage_get(srv->store, key, NULL, sha_sink, &s);
  EVP_DigestFinal_ex(s.ctx, a, NULL);
  EVP_DigestInit_ex(s.ctx, EVP_sha256(), NULL);
  char chunk[8192];
  off_t off = 0;
  ssize_t n;
  while (!rc && (n = pread(fd, chunk, sizeof chunk, off)) > 0) {
    EVP_DigestUpdate(s.ctx, chunk, (size_t)n);
    off += n;
  }
  EVP_DigestFinal_ex(s.ctx, b, NULL);
  EVP_MD_CTX_free(s.ctx);
  return rc ? rc : memcmp(a, b, sizeof a) != 0;
}

/* A mutable answer from version control: `go list` for list; for @latest
 * and queries (`master`, a commit), `go mod download`, whose canonical
 * version is committed here too. A version committed before is never
 * replaced: if version control now has other content under it (a moved
 * tag), the first content stays and the mismatch is logged. */
static int mutable_vcs(struct pipe *p, const struct modreq *m,
                       enum mutable_kind kind, struct vcs *vcs, int priv,
                       struct buf *out, struct reason *why) {
  struct server *srv = p->srv;
  if (!vcs)
    return reason_set(why, ERR_UNSUPPORTED,
                      "fetching from version control is not configured");
  if (kind == MUT_LIST) {
    p->upstream++;
    atomic_fetch_add(&srv->metrics.upstream_fetches, 1);
    double t0 = clock_now_s();
    int rc = vcs_list(vcs, m->module, out, why);
    metrics_upstream(&srv->metrics, clock_now_s() - t0);
    return rc;
  }
  struct modreq *lm = malloc(sizeof *lm);
  if (!lm)
    return ERR_NOMEM;
  *lm = *m;
  struct buf info, mod;
  buf_init(&info, VALIDATE_INFO_MAX);
  buf_init(&mod, VALIDATE_MOD_MAX);
  struct spool sp = {-1, 0};
  int rc =
      gather_vcs(p, vcs, m->module, kind == MUT_LATEST ? "latest" : m->version,
                 0, 1, &info, &mod, &sp, lm->version, sizeof lm->version, why);
  if (!rc && modpath_escape_version(lm->version, lm->version_esc,
                                    sizeof lm->version_esc))
    rc = reason_set(why, ERR_BAD_UPSTREAM_DATA, "bad version %.80s",
                    lm->version);
  if (rc)
    goto out;
  lm->canonical = 1;
  int hi = have(srv, lm, "info");
  if (hi < 0) {
    rc = storage_down(lm, why);
  } else if (hi > 0) {
    if (have(srv, lm, "zip") > 0 && zip_differs(srv, lm, sp.fd) == 1)
      log_warn("%s@%s in version control no longer matches what was first "
               "served (a moved tag?); keeping the first content",
               lm->module, lm->version);
    char key[PIPE_KEY_MAX];
    pipe_key(lm, "info", key, sizeof key);
    rc = storage_get_buf(srv->store, key, out);
  } else {
    rc = commit_version(p, lm, priv, 0, have(srv, lm, "zip") == 0, &info, &mod,
                        &sp, why);
    if (!rc)
      rc = buf_append(out, info.data, info.len);
  }
out:
  if (sp.fd >= 0)
    close(sp.fd);
  buf_free(&info);
  buf_free(&mod);
  free(lm);
  return rc;
}

/* The stored .info of m's module at version v. 0 or ERR_*. */
static int stored_info(struct server *srv, const struct modreq *m,
                       const char *v, struct buf *out) {
  struct modreq lm = *m;
  snprintf(lm.version, sizeof lm.version, "%s", v);
  if (modpath_escape_version(v, lm.version_esc, sizeof lm.version_esc))
    return ERR_NOT_FOUND;
  char key[PIPE_KEY_MAX];
  pipe_key(&lm, "info", key, sizeof key);
  return storage_get_buf(srv->store, key, out);
}

/* Versions committed in storage by another writer (bucket replication,
 * `aws s3 sync`, an import) join the answer (issue 15); they join the
 * committed index when first requested, once checked (verify_stored). It
 * runs when a list or @latest is refreshed, so at most once per list_ttl
 * per module across replicas, and lists only the module's own "@v/"
 * directory, never the bucket. Only versions whose .info (the commit
 * marker) is stored count: a half-replicated version stays invisible. A
 * listing that fails changes nothing. */
static void merge_stored(struct server *srv, const struct modreq *m,
                         enum mutable_kind kind, struct buf *out) {
  char dir[PIPE_KEY_MAX];
  snprintf(dir, sizeof dir, "%s/@v/", m->module_esc);
  struct buf stored, merged;
  buf_init(&stored, LIST_MAX);
  buf_init(&merged, LIST_MAX);
  struct stored_versions sv = {dir, &stored};
  if (storage_list(srv->store, dir, collect_version, &sv) != 0 ||
      stored.len == 0)
    goto out;
  if (kind == MUT_LIST) {
    if (versions_merge(out->data, out->len, stored.data, stored.len,
                       &merged) == 0) {
      buf_reset(out);
      buf_append(out, merged.data, merged.len);
    }
    goto out;
  }
  /* @latest: a stored version newer than the upstream's answer wins. */
  char cur[VERSION_MAX + 1], v[VERSION_MAX + 1];
  if (validate_info(out->data, out->len, NULL, 0, cur, sizeof cur, NULL) ||
      buf_appendf(&stored, "%s\n", cur) ||
      versions_latest(stored.data, stored.len, v, sizeof v) ||
      strcmp(v, cur) == 0)
    goto out;
  if (stored_info(srv, m, v, &merged) == 0 &&
      validate_info(merged.data, merged.len, v, 1, cur, sizeof cur, NULL) ==
          0) {
    log_info("@latest of %s: %s, stored here, is newer than the upstream's "
             "answer",
             m->module, v);
    buf_reset(out);
    buf_append(out, merged.data, merged.len);
  }
out:
  buf_free(&stored);
  buf_free(&merged);
}

/* Fetches and validates a mutable answer and caches it for every replica. */
static int mutable_fetch(void *arg, struct reason *why) {
  struct mutable_args *a = arg;
  const struct modreq *m = a->m;
  struct server *srv = a->p->srv;
  struct buf *out = a->out;
  int priv = is_private(srv, m->module);
  int rc = UPSTREAM_DIRECT;
  if (priv && srv->up_private) {
    char rel[PIPE_KEY_MAX];
    if (a->kind == MUT_LIST)
      snprintf(rel, sizeof rel, "%s/@v/list", m->module_esc);
    else if (a->kind == MUT_LATEST)
      snprintf(rel, sizeof rel, "%s/@latest", m->module_esc);
    else
      snprintf(rel, sizeof rel, "%s/@v/%s.info", m->module_esc, m->version_esc);
    a->p->chain = srv->up_private;
    rc = fetch_buf(a->p, rel, out, why);
    a->p->chain = NULL;
    if (rc == UPSTREAM_DIRECT)
      rc = reason_set(why, ERR_CONFIG, "private_upstream names direct");
  } else if (!priv) {
    char rel[PIPE_KEY_MAX];
    if (a->kind == MUT_LIST)
      snprintf(rel, sizeof rel, "%s/@v/list", m->module_esc);
    else if (a->kind == MUT_LATEST)
      snprintf(rel, sizeof rel, "%s/@latest", m->module_esc);
    else
      snprintf(rel, sizeof rel, "%s/@v/%s.info", m->module_esc, m->version_esc);
    rc = policy_may_fetch(srv, m->module, why); /* `only` */
    if (!rc)
      rc = fetch_buf(a->p, rel, out, why);
  }
  if (rc == UPSTREAM_DIRECT) {
    buf_reset(out);
    if (why)
      why->text[0] = '\0';
    rc = mutable_vcs(a->p, m, a->kind,
                     priv ? srv->vcs_private : srv->vcs_direct, priv, out, why);
  }
  if (!rc && a->kind == MUT_LIST &&
      memchr(out->data ? out->data : "", 0, out->len))
    rc = reason_set(why, ERR_BAD_UPSTREAM_DATA,
                    "upstream list for %s holds a NUL byte", m->module);
  if (!rc && a->kind != MUT_LIST) {
    char got[VERSION_MAX + 1];
    rc = validate_info(out->data, out->len, NULL, 0, got, sizeof got, why);
    if (!rc && !semver_is_canonical(got))
      rc = reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "upstream answered %s for %s with non-canonical "
                      "version %.80s",
                      a->kind == MUT_LATEST ? "@latest" : m->version, m->module,
                      got);
  }
  if (!rc && a->kind != MUT_QUERY)
    merge_stored(srv, m, a->kind, out);
  if (!rc)
    srv->meta->ops->cache_put(srv->meta, a->ckey, out->data, out->len);
  return rc;
}

/* Refreshes a mutable answer: one request per replica (flight group) and
 * one replica at a time (a metadata lock). A replica that holds a stale copy
 * and finds another replica refreshing serves its copy instead of waiting;
 * one without a copy waits for the refresher and reads what it cached. */
static int fetch_mutable(struct pipe *p, const struct modreq *m,
                         enum mutable_kind kind, const char *ckey,
                         struct buf *out, struct reason *why) {
  struct server *srv = p->srv;
  struct meta *meta = srv->meta;
  struct flight *f;
  int rc = 0;
  int lead = flight_join(srv->flights, ckey, &f, &rc, why);
  if (lead < 0)
    return lead;
  p->cache = "miss";
  if (!lead) {
    if (rc)
      return rc;
    return meta->ops->cache_get(meta, ckey, out, NULL);
  }
  struct mutable_args a = {p, m, kind, ckey, out};
  char lk[PIPE_KEY_MAX + 16];
  snprintf(lk, sizeof lk, "refresh-%s", ckey);
  if (meta->ops->cache_get(meta, ckey, out, NULL) == 0) {
    char token[META_TOKEN_LEN];
    int lr = meta->ops->lock_take(meta, lk, srv->cfg->lock_ttl * 1000, token);
    if (lr == ERR_EXISTS) {
      p->cache = "stale"; /* another replica is refreshing it */
    } else {
      buf_reset(out);
      rc = mutable_fetch(&a, why);
      if (lr == 0)
        meta->ops->lock_release(meta, lk, token);
    }
  } else {
    buf_reset(out);
    rc = dlock_run(srv, lk, mutable_fetch, &a, why);
    if (!rc && out->len == 0) /* another replica fetched it */
      meta->ops->cache_get(meta, ckey, out, NULL);
  }
  flight_done(srv->flights, f, rc, why);
  return rc;
}

/* The newest stored version's .info, for @latest when the upstream is down. */
static int latest_from_storage(struct server *srv, const struct modreq *m,
                               struct buf *out) {
  struct buf list;
  buf_init(&list, LIST_MAX);
  int rc = merged_list(srv, m, NULL, &list);
  char v[VERSION_MAX + 1];
  if (!rc)
    rc = versions_latest(list.data, list.len, v, sizeof v);
  buf_free(&list);
  if (rc)
    return rc;
  return stored_info(srv, m, v, out);
}


int pipe_resolve(struct pipe *p, const struct modreq *m, struct buf *out,
                 struct reason *why) {
  struct server *srv = p->srv;
  const struct config *cfg = srv->cfg;
  enum mutable_kind kind = m->kind == MODREQ_LIST     ? MUT_LIST
                           : m->kind == MODREQ_LATEST ? MUT_LATEST
                                                      : MUT_QUERY;
  char ckey[PIPE_KEY_MAX], nkey[PIPE_KEY_MAX + 8];
  if (kind == MUT_LIST)
    snprintf(ckey, sizeof ckey, "list:%s", m->module);
  else if (kind == MUT_LATEST)
    snprintf(ckey, sizeof ckey, "latest:%s", m->module);
  else
    snprintf(ckey, sizeof ckey, "query:%s@%s", m->module, m->version);
  snprintf(nkey, sizeof nkey, "neg:%s", ckey);

  buf_reset(out);
  if (p->offline) {
    /* Only what storage holds: a cached list may name versions that are
     * not stored, which could then not be served. */
    int rc = ERR_NOT_FOUND;
    if (kind == MUT_LIST)
      rc = merged_list(srv, m, NULL, out);
    else if (kind == MUT_LATEST)
      rc = latest_from_storage(srv, m, out);
    if (rc == 0 && out->len > 0)
      return 0;
    buf_reset(out);
    return reason_set(why, ERR_NOT_FOUND,
                      "%s: %s not stored here, and fetching is disabled (%s)",
                      m->module,
                      kind == MUT_QUERY ? m->version : "no version",
                      srv->cfg->offline ? "offline" : "Disable-Module-Fetch");
  }
  int status;
  int rc = srv->meta->ops->neg_get(srv->meta, nkey, &status, why);
  if (rc == 0) {
    p->cache = "hit";
    return status == 410 ? ERR_GONE : ERR_NOT_FOUND;
  }
  if (why)
    why->text[0] = '\0';
  time_t at = 0;
  rc = srv->meta->ops->cache_get(srv->meta, ckey, out, &at);
  if (rc == 0 && time(NULL) - at < cfg->list_ttl) {
    p->cache = "hit";
    return 0;
  }
  buf_reset(out);
  rc = fetch_mutable(p, m, kind, ckey, out, why);
  if (rc == 0)
    return 0;

  /* The upstream failed. Never deny a module we hold versions of. */
  struct buf stale, merged;
  buf_init(&stale, LIST_MAX);
  buf_init(&merged, LIST_MAX);
  int have_stale =
      srv->meta->ops->cache_get(srv->meta, ckey, &stale, NULL) == 0;
  int not_found = rc == ERR_NOT_FOUND || rc == ERR_GONE;
  int served = 0;
  buf_reset(out);
  if (kind == MUT_LIST) {
    if (merged_list(srv, m, not_found ? NULL : (have_stale ? &stale : NULL),
                    &merged) == 0 &&
        merged.len > 0)
      served = buf_append(out, merged.data, merged.len) == 0;
  } else if (!not_found) {
    if (have_stale)
      served = buf_append(out, stale.data, stale.len) == 0;
    else if (kind == MUT_LATEST && latest_from_storage(srv, m, out) == 0)
      served = 1;
  }
  buf_free(&stale);
  buf_free(&merged);
  if (served) {
    p->cache = "stale";
    log_warn("serving %s from cache: %s", ckey, reason_text(why, rc));
    return 0;
  }
  buf_reset(out);
  if (not_found)
    srv->meta->ops->neg_put(srv->meta, nkey, err_http_status(rc),
                            reason_text(why, rc), cfg->negative_ttl);
  return rc;
}

int pipe_read(struct pipe *p, const struct modreq *m, const char *ext,
              struct buf *out) {
  char key[PIPE_KEY_MAX];
  pipe_key(m, ext, key, sizeof key);
  buf_reset(out);
  return storage_get_buf(p->srv->store, key, out);
}

void pipe_note_committed(struct server *srv, const struct modreq *m,
                         uint64_t info_len, uint64_t mod_len,
                         long long zip_len) {
  struct meta *meta = srv->meta;
  if (zip_len >= 0)
    meta->ops->index_put(meta, m->module, m->version, "zip",
                         (uint64_t)zip_len);
  meta->ops->index_put(meta, m->module, m->version, "mod", mod_len);
  meta->ops->index_put(meta, m->module, m->version, "info", info_len);
  char key[PIPE_KEY_MAX + 16];
  for (int zip = 0; zip <= 1; zip++) {
    neg_key(m, zip, key, sizeof key);
    meta->ops->forget(meta, key);
  }
  const char *kinds[] = {"list", "latest", "neg:list", "neg:latest"};
  for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
    snprintf(key, sizeof key, "%s:%s", kinds[i], m->module);
    meta->ops->forget(meta, key);
  }
}
