/* Checksum-database pass-through (PROTOCOL.md E). Bodies are relayed byte for
 * byte: the client checks signatures and proofs itself. Successful lookups
 * and full tiles never change, so they are kept in storage under
 * sumdb/<name>/...; /latest and partial tiles are relayed each time, with
 * the last good /latest kept to serve when the database is unreachable. */
#include "sumdb.h"

#include "sumdb_verify.h"

#include "access.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "mod/hash1.h"
#include "http.h"
#include "mod/private.h"
#include "mod/modpath.h"
#include "orgsumdb.h"
#include "server.h"
#include "storage/meta.h"
#include "storage/storage.h"
#include "upstream.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SUMDB_BODY_MAX (1u << 20)

void sumdb_list_free(struct sumdb_list *l) {
  if (!l)
    return;
  for (size_t i = 0; i < l->n; i++) {
    free(l->v[i].name);
    free(l->v[i].url);
    free(l->v[i].shown);
  }
  free(l->v);
  free(l);
}

enum sumdb_mode sumdb_mode(const struct config *cfg) {
  const char *v = cfg->sumdb_verify ? cfg->sumdb_verify : "strict";
  if (!strcmp(v, "warn"))
    return SUMDB_WARN;
  if (!strcmp(v, "off") || !strcmp(v, "false"))
    return SUMDB_OFF;
  return SUMDB_STRICT;
}

int sumdb_list_parse(const char *spec, struct sumdb_list **out,
                     struct reason *why) {
  *out = NULL;
  struct sumdb_list *l = calloc(1, sizeof *l);
  if (!l)
    return ERR_NOMEM;
  const char *p = spec;
  while (*p) {
    size_t n = strcspn(p, ",");
    const char *eq = memchr(p, '=', n);
    if (!eq || eq == p || eq + 1 == p + n) {
      sumdb_list_free(l);
      return reason_set(why, ERR_CONFIG,
                        "sumdb: entries are key=url, got '%.*s'",
                        (int)(n > 80 ? 80 : n), p);
    }
    struct sumdb_entry *v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v) {
      sumdb_list_free(l);
      return ERR_NOMEM;
    }
    l->v = v;
    struct sumdb_entry *e = &v[l->n++];
    size_t ul = (size_t)(p + n - eq - 1);
    while (ul && eq[ul] == '/')
      ul--;
    const char *plus = memchr(p, '+', (size_t)(eq - p));
    e->has_key = 0;
    if (plus) {
      char vkey[NOTE_KEY_MAX];
      snprintf(vkey, sizeof vkey, "%.*s", (int)(eq - p), p);
      struct reason kwhy = {{0}};
      if (note_verifier_parse(vkey, &e->key, &kwhy)) {
        e->name = e->url = e->shown = NULL;
        sumdb_list_free(l);
        return reason_set(why, ERR_CONFIG, "sumdb: %s", kwhy.text);
      }
      e->has_key = 1;
    }
    e->name = strndup(p, (size_t)((plus ? plus : eq) - p));
    e->url = strndup(eq + 1, ul);
    e->shown = malloc(ul + 1);
    if (!e->name || !e->url || !e->shown) {
      sumdb_list_free(l);
      return ERR_NOMEM;
    }
    upstream_redact(e->url, e->shown, ul + 1);
    p += n;
    if (*p == ',')
      p++;
  }
  *out = l;
  return 0;
}

static int sink_buf(void *arg, const void *p, size_t n) {
  return buf_append(arg, p, n);
}
static int sink_reset(void *arg) {
  buf_reset(arg);
  return 0;
}

int sumdb_get(struct server *srv, struct worker *w,
              const struct sumdb_entry *db, const char *rest, struct buf *out,
              struct reason *why) {
  struct buf url;
  buf_init(&url, 4096);
  buf_reset(out);
  int rc = buf_appendf(&url, "%s/%s", db->url, rest);
  if (!rc) {
    struct up_sink sink = {sink_buf, sink_reset, out};
    long status;
    double t0 = clock_now_s();
    rc = upstream_get_url(worker_curl(w), url.data, db->shown,
                          srv->up ? srv->up->redirect_hosts : NULL,
                          srv->cfg->connect_timeout, srv->cfg->fetch_timeout,
                          &sink,
                          metrics_sumdb_peer(&srv->metrics, srv->sumdbs, db),
                          &status, why);
    metrics_upstream(&srv->metrics, clock_now_s() - t0);
    atomic_fetch_add(&srv->metrics.upstream_fetches, 1);
  }
  buf_free(&url);
  if (!rc)
    rc = sumdb_check_answer(db, rest, out->data, out->len, why);
  return rc;
}

/* An answer read from storage: its shape, and its proof when db verifies
 * (a stored answer may predate verification, or storage may be tampered). */
static int stored_ok(struct server *srv, struct worker *w,
                     const struct sumdb_entry *db, const char *rest,
                     const struct buf *b, struct reason *why) {
  int rc = sumdb_check_answer(db, rest, b->data, b->len, why);
  if (!rc && sumdb_verifies(srv, db))
    rc = sumdb_verify_answer(srv, w, db, rest, b->data, b->len, why);
  return rc;
}

int sumdb_fetch(struct server *srv, struct worker *w,
                const struct sumdb_entry *db, const char *rest, int immutable,
                struct buf *out, int *hit, struct reason *why) {
  struct buf key;
  buf_init(&key, 4096);
  int rc = buf_appendf(&key, "sumdb/%s/%s", db->name, rest);
  if (rc)
    return rc;
  *hit = 0;
  if (srv->cfg->offline) {
    /* Only what storage holds, /latest and partial tiles included (a bundle
     * import stores them: gomirror import), proven like any answer. */
    rc = storage_get_buf(srv->store, key.data, out);
    if (rc && strcmp(rest, "latest") == 0)
      rc = sumdb_verified_head(srv, db, out);
    if (!rc)
      rc = stored_ok(srv, w, db, rest, out, why);
    else
      rc = reason_set(why, ERR_NOT_FOUND,
                      "%s/%s is not stored here, and fetching is disabled "
                      "(offline)",
                      db->name, rest);
    *hit = rc == 0;
    buf_free(&key);
    return rc;
  }
  if (immutable && storage_get_buf(srv->store, key.data, out) == 0) {
    struct reason bad = {{0}};
    int bad_rc = stored_ok(srv, w, db, rest, out, &bad);
    if (!bad_rc) {
      *hit = 1;
      buf_free(&key);
      return 0;
    }
    if (bad_rc == ERR_BAD_UPSTREAM_DATA) {
      /* Stored before answers were checked, or altered in storage: fetch a
       * good one instead. */
      log_warn("dropping the stored %s: %s", key.data,
               reason_text(&bad, bad_rc));
      storage_del(srv->store, key.data);
    } else {
      /* It could not be proven now (a tile out of reach): keep it, and
       * try the database. */
      log_debug("stored %s not proven now: %s", key.data,
                reason_text(&bad, bad_rc));
    }
  }
  rc = sumdb_get(srv, w, db, rest, out, why);
  if (!rc && sumdb_verifies(srv, db))
    rc = sumdb_verify_answer(srv, w, db, rest, out->data, out->len, why);
  if (!rc && immutable)
    storage_put_buf(srv->store, key.data, out->data, out->len);
  int is_latest = strcmp(rest, "latest") == 0;
  if (rc && rc != ERR_NOT_FOUND && rc != ERR_GONE &&
      (rc != ERR_BAD_UPSTREAM_DATA || is_latest) && !immutable) {
    /* The database is out of reach (or its /latest failed its proof): the
     * newest verified head answers /latest, and a partial tile stored by a
     * bundle import is what an air-gapped site has; each is proven again. */
    struct buf stored;
    buf_init(&stored, out->max);
    struct reason bad = {{0}};
    int got = is_latest ? sumdb_verified_head(srv, db, &stored)
                  : storage_get_buf(srv->store, key.data, &stored);
    if (got == 0 && stored_ok(srv, w, db, rest, &stored, &bad) == 0) {
      buf_reset(out);
      if (buf_append(out, stored.data, stored.len) == 0) {
        *hit = 1;
        rc = 0;
      }
    }
    buf_free(&stored);
  }
  if (rc)
    buf_reset(out);
  buf_free(&key);
  return rc;
}

/* A lookup for a private module is answered here and never forwarded: the
 * public database cannot know the module, and asking it would leak the
 * path. The one-line body tells the developer what to set. Returns 0 when
 * the module is not private (the caller goes on). */
static int private_lookup(struct req *r, const char *mod_esc,
                          const struct sumdb_entry *db) {
  const char *patterns = r->srv->cfg->private_patterns;
  char module[MODPATH_MAX + 1];
  if (!patterns || !patterns[0] ||
      modpath_unescape(mod_esc, module, sizeof module) ||
      private_match(patterns, module) != 1)
    return 0;
  /* Name the pattern that matched, so the advice is copy-and-paste. */
  char pattern[256] = "";
  for (const char *p = patterns; *p;) {
    size_t n = strcspn(p, ",");
    if (n < sizeof pattern) {
      memcpy(pattern, p, n);
      pattern[n] = '\0';
      if (private_match(pattern, module) == 1)
        break;
    }
    pattern[0] = '\0';
    p += n;
    if (*p == ',')
      p++;
  }
  struct reason line;
  reason_set(&line, ERR_FORBIDDEN,
             "%s is a private module: %s cannot verify it; add %s to "
             "GONOSUMDB (or GOPRIVATE)",
             module, db->name, pattern[0] ? pattern : module);
  return http_error(r, 403, line.text);
}

int sumdb_lookup_refused(struct req *r, const char *mod_esc,
                         const char *ver_esc) {
  /* Authorized like the module itself: nobody learns from a checksum
   * database that a module they may not read exists. */
  char module[MODPATH_MAX + 1], version[VERSION_MAX + 1];
  if (modpath_unescape(mod_esc, module, sizeof module) ||
      modpath_unescape(ver_esc, version, sizeof version))
    return http_error(r, 400, "invalid escaped lookup path");
  if (!access_module(r, module, version, "sumdb"))
    return r->status;
  return 0;
}

int h_sumdb(struct req *r) {
  struct server *srv = r->srv;
  const char *p = r->path + strlen("/sumdb/");
  size_t nl = strcspn(p, "/");
  /* The organisation's own log is served here, not relayed (orgsumdb.h). */
  if (srv->orgsumdb && strlen(orgsumdb_name(srv->orgsumdb)) == nl &&
      !memcmp(orgsumdb_name(srv->orgsumdb), p, nl))
    return h_orgsumdb(r, p + nl);
  const struct sumdb_entry *db = NULL;
  for (size_t i = 0; i < srv->sumdbs->n; i++)
    if (strlen(srv->sumdbs->v[i].name) == nl &&
        !memcmp(srv->sumdbs->v[i].name, p, nl))
      db = &srv->sumdbs->v[i];
  if (!db || p[nl] != '/')
    return http_error(r, 404, "unknown checksum database");
  char rest[2048];
  if (strlen(p + nl + 1) >= sizeof rest)
    return http_error(r, 400, "checksum database path too long");
  snprintf(rest, sizeof rest, "%s", p + nl + 1);
  if (sumdb_unescape_rest(rest))
    return http_error(r, 400, "invalid escape in checksum database path");

  struct reason why = {{0}};
  enum sumdb_kind kind;
  int partial;
  char mod[MODPATH_ESC_MAX + 1], ver[VERSION_ESC_MAX + 1];
  int rc = sumdb_parse_rest(rest, &kind, &partial, mod, sizeof mod, ver,
                            sizeof ver, &why);
  r->action = "sumdb";
  if (rc)
    return http_fail(r, rc, &why);
  if (kind == SUMDB_LOOKUP) {
    int st = sumdb_lookup_refused(r, mod, ver);
    if (st)
      return st;
    st = private_lookup(r, mod, db);
    if (st)
      return st;
  } else if (!access_any(r)) {
    return r->status;
  }
  if (kind == SUMDB_SUPPORTED)
    return http_send(r, 200, CT_TEXT, CACHE_SHORT, NULL, "", 0);

  const char *ctype = kind == SUMDB_TILE ? "application/octet-stream" : CT_TEXT;
  int immutable = kind == SUMDB_LOOKUP || (kind == SUMDB_TILE && !partial);
  struct buf body;
  buf_init(&body, SUMDB_BODY_MAX);
  int hit = 0;
  rc = sumdb_fetch(srv, r->w, db, rest, immutable, &body, &hit, &why);
  r->cache = hit ? "hit" : "miss";
  char lkey[300];
  snprintf(lkey, sizeof lkey, "sumdb-latest:%s", db->name);
  if (rc == 0) {
    if (kind == SUMDB_LATEST)
      srv->meta->ops->cache_put(srv->meta, lkey, body.data, body.len);
    int st = http_send(r, 200, ctype, immutable ? CACHE_IMMUTABLE : CACHE_NONE,
                       NULL, body.data, body.len);
    buf_free(&body);
    return st;
  }
  buf_reset(&body);
  if (kind == SUMDB_LATEST && rc != ERR_NOT_FOUND &&
      srv->meta->ops->cache_get(srv->meta, lkey, &body, NULL) == 0) {
    r->cache = "stale";
    log_warn("checksum database %s: %s; serving the last /latest", db->name,
             reason_text(&why, rc));
    int st = http_send(r, 200, ctype, CACHE_NONE, NULL, body.data, body.len);
    buf_free(&body);
    return st;
  }
  buf_free(&body);
  if (rc == ERR_BAD_UPSTREAM_DATA && sumdb_verifies(srv, db)) {
    /* A security event: audited whatever audit_public says. */
    r->refused = 1;
    snprintf(r->detail, sizeof r->detail, "SECURITY: %s",
             reason_text(&why, rc));
  }
  return http_fail(r, rc, &why);
}
