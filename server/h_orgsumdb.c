/* GET /sumdb/<org_sumdb_name>/...: the organisation checksum database
 * (orgsumdb.h) as x/mod's sumdb server answers: supported, latest, lookups
 * and tiles. A lookup is authorized like the module itself, and a version
 * the log does not hold yet is made sure of (committed with its zip, through
 * the pipeline) and logged then; private paths are the point here, never
 * refused as the public databases' relay refuses them. */
#include "orgsumdb.h"

#include "access.h"
#include "core/buf.h"
#include "core/err.h"
#include "http.h"
#include "mod/modpath.h"
#include "mod/sumdb.h"
#include "mod/tlog.h"
#include "pipeline.h"
#include "server.h"
#include "sumdb.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define BODY_MAX (1u << 20)

static int send_body(struct req *r, const char *ctype, const char *cache,
                     struct buf *body) {
  int st = http_send(r, 200, ctype, cache, NULL, body->data ? body->data : "",
                     body->len);
  buf_free(body);
  return st;
}

/* The lookup of mod@ver (escaped), logging the version first if the log
 * covers it and does not hold it yet. */
static int lookup(struct req *r, const char *mod, const char *ver) {
  struct server *srv = r->srv;
  struct orgsumdb *db = srv->orgsumdb;
  /* Authorized like the module itself: nobody learns from the log that a
   * module they may not read exists, nor gets it logged. */
  int st = sumdb_lookup_refused(r, mod, ver);
  if (st)
    return st;
  struct reason why = {{0}};
  struct modreq m;
  char path[PIPE_KEY_MAX + 8];
  snprintf(path, sizeof path, "/%s/@v/%s.zip", mod, ver);
  int rc = modpath_parse(path, &m, &why);
  if (rc)
    return http_fail(r, rc, &why);
  struct buf body;
  buf_init(&body, BODY_MAX);
  rc = orgsumdb_lookup(db, m.module, m.version, &body, NULL, NULL, &why);
  if (rc == ERR_NOT_FOUND && !orgsumdb_covers(srv, m.module)) {
    buf_free(&body);
    reason_set(&why, ERR_NOT_FOUND,
               "%s is a public module and org_sumdb_public is off: %s logs "
               "private modules only",
               m.module, orgsumdb_name(db));
    return http_fail(r, ERR_NOT_FOUND, &why);
  }
  if (rc == ERR_NOT_FOUND) {
    /* Committed before the log had it, or not fetched yet: make sure of
     * the version and its zip (the commit logs it), else log what is
     * committed. */
    struct pipe p;
    pipe_init(&p, srv, r->w);
    const char *h = http_header(r, "Disable-Module-Fetch");
    if (h && strcasecmp(h, "true") == 0)
      p.offline = 1;
    rc = pipe_ensure(&p, &m, 1, &why);
    r->cache = p.cache;
    r->upstream += p.upstream;
    if (!rc) {
      buf_reset(&body);
      rc = orgsumdb_lookup(db, m.module, m.version, &body, NULL, NULL, &why);
    }
    /* Offline (an air-gapped site serving an imported log) nothing is
     * appended: that site's log must stay a copy of the source's. */
    if (rc == ERR_NOT_FOUND && !p.offline) {
      rc = orgsumdb_append_committed(srv, &m, &why);
      buf_reset(&body);
      if (!rc)
        rc = orgsumdb_lookup(db, m.module, m.version, &body, NULL, NULL, &why);
    }
  }
  if (rc) {
    buf_free(&body);
    return http_fail(r, rc, &why);
  }
  return send_body(r, CT_TEXT, CACHE_SHORT, &body);
}

int h_orgsumdb(struct req *r, const char *rest) {
  struct server *srv = r->srv;
  r->action = "sumdb";
  if (rest[0] != '/')
    return http_error(r, 404, "unknown checksum database");
  char path[2048];
  if (strlen(rest + 1) >= sizeof path)
    return http_error(r, 400, "checksum database path too long");
  snprintf(path, sizeof path, "%s", rest + 1);
  if (sumdb_unescape_rest(path))
    return http_error(r, 400, "invalid escape in checksum database path");
  struct reason why = {{0}};
  enum sumdb_kind kind;
  int partial;
  char mod[MODPATH_ESC_MAX + 1], ver[VERSION_ESC_MAX + 1];
  int rc = sumdb_parse_rest(path, &kind, &partial, mod, sizeof mod, ver,
                            sizeof ver, &why);
  if (rc)
    return http_fail(r, rc, &why);
  if (kind == SUMDB_LOOKUP)
    return lookup(r, mod, ver);
  if (!access_any(r))
    return r->status;
  if (kind == SUMDB_SUPPORTED)
    return http_send(r, 200, CT_TEXT, CACHE_SHORT, NULL, "", 0);
  struct buf body;
  buf_init(&body, BODY_MAX);
  if (kind == SUMDB_LATEST) {
    rc = orgsumdb_head(srv->orgsumdb, 0, &body, NULL, &why);
    if (rc) {
      buf_free(&body);
      return http_fail(r, rc, &why);
    }
    return send_body(r, CT_TEXT, CACHE_NONE, &body);
  }
  struct tlog_tile t;
  if (tlog_tile_parse(path, &t)) {
    buf_free(&body);
    return http_error(r, 404, "not a tile path");
  }
  rc = orgsumdb_tile(srv->orgsumdb, &t, &body, &why);
  if (rc) {
    buf_free(&body);
    return http_fail(r, rc, &why);
  }
  return send_body(r, t.l < 0 ? CT_TEXT : "application/octet-stream",
                   partial ? CACHE_SHORT : CACHE_IMMUTABLE, &body);
}
