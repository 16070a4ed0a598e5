/* The GOPROXY protocol's HTTP side: list, .info, .mod, .zip and @latest.
 * Parses and authorizes the request, asks the pipeline (pipeline.h) to make
 * sure the answer exists, and serves it: small artifacts from the hot cache,
 * zips streamed from storage (with ranges and bandwidth caps). */
#include "pipeline.h"

#include "access.h"
#include "connguard.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "counters.h"
#include "hot.h"
#include "http.h"
#include "lastuse.h"
#include "mod/modpath.h"
#include "mod/validate.h"
#include "orgsumdb.h"
#include "policy.h"
#include "server.h"
#include "storage/storage.h"

#include <civetweb.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LIST_MAX (16u << 20)

/* The pipeline's context for r: storage only when the configuration says
 * offline or the client sends Disable-Module-Fetch: true (Athens' header). */
static void req_pipe(struct req *r, struct pipe *p) {
  pipe_init(p, r->srv, r->w);
  p->id = &r->id;
  const char *h = http_header(r, "Disable-Module-Fetch");
  if (h && strcasecmp(h, "true") == 0)
    p->offline = 1;
}

/* Reads a small blob into the hot cache (when it fits) and pins it. NULL
 * with *rc set when storage fails. */
static const struct hot_entry *load(struct server *srv, const char *key,
                                    size_t max, int *rc) {
  const struct hot_entry *e = hot_get(srv->hot, key);
  if (e)
    return e;
  struct blob_stat st;
  *rc = storage_stat(srv->store, key, &st);
  if (*rc)
    return NULL;
  if (st.size > hot_item_max(srv->hot) || st.size > max) {
    *rc = ERR_TOO_LARGE;
    return NULL;
  }
  struct buf b;
  buf_init(&b, max);
  *rc = storage_get_buf(srv->store, key, &b);
  if (!*rc)
    *rc = hot_put(srv->hot, key, b.data ? b.data : "", b.len, st.etag);
  buf_free(&b);
  if (*rc)
    return NULL;
  e = hot_get(srv->hot, key);
  if (!e)
    *rc = ERR_TOO_LARGE; /* evicted at once: the cache is too small */
  return e;
}

static int serve_small(struct req *r, const char *key, const char *ctype) {
  struct server *srv = r->srv;
  int rc = 0;
  const struct hot_entry *e = load(srv, key, VALIDATE_MOD_MAX, &rc);
  if (e) {
    int st = http_send(r, 200, ctype, CACHE_IMMUTABLE, NULL, e->data, e->len);
    hot_release(srv->hot, e);
    return st;
  }
  if (rc != ERR_TOO_LARGE)
    return http_fail(r, ERR_STORAGE, NULL);
  /* Bigger than the hot cache takes (or it is off): read it for this
   * request only. */
  struct buf b;
  buf_init(&b, VALIDATE_MOD_MAX);
  rc = storage_get_buf(srv->store, key, &b);
  int st = rc ? http_fail(r, ERR_STORAGE, NULL)
              : http_send(r, 200, ctype, CACHE_IMMUTABLE, NULL, b.data, b.len);
  buf_free(&b);
  return st;
}

/* A zip streamed from storage. The status line and headers leave with the
 * first byte the store delivers, so a store that fails before that gets a
 * clean error answer on a connection that stays usable; and no byte past
 * the promised Content-Length is ever written. */
struct zip_stream {
  struct req *r;
  int status;
  const char *extra;
  uint64_t want, sent;
  int begun;
};

static int zip_sink(void *arg, const void *data, size_t len) {
  struct zip_stream *z = arg;
  if (!z->begun) {
    z->begun = 1;
    if (http_begin(z->r, z->status, CT_ZIP, CACHE_IMMUTABLE, z->extra, z->want))
      return ERR_IO;
  }
  if (len > z->want - z->sent)
    return ERR_STORAGE; /* more than the store promised: none of it goes */
  int rc = http_write(z->r, data, len);
  if (!rc)
    z->sent += len;
  return rc;
}

/* Ends a zip response that cannot be completed (headers sent, body short):
 * the socket is shut down, so the client sees the connection end and never
 * reads another response as the rest of this body. */
static void zip_cut(struct req *r, const char *key, int rc) {
  if (rc != ERR_IO)
    log_warn("zip %s: response cut short: %s", key, err_str(rc));
  connguard_abort(r->conn);
}

/* Decides the answer for a zip of size bytes with etag, honouring
 * If-None-Match, Range and If-Range. 304 and 416 are sent here, complete;
 * for 200 and 206, *rg is the part to send and extra (cap bytes) holds the
 * header lines for http_begin, which the caller sends. */
static int zip_head(struct req *r, uint64_t size, const char *etag,
                    struct range *rg, char *extra, size_t cap) {
  if (http_none_match(http_header(r, "If-None-Match"), etag)) {
    snprintf(extra, cap, "ETag: %s\r\n", etag);
    return http_send(r, 304, CT_ZIP, CACHE_IMMUTABLE, extra, NULL, 0);
  }
  rg->start = 0;
  rg->len = size;
  int ranged = 0;
  const char *if_range = http_header(r, "If-Range");
  if (!if_range || strcmp(if_range, etag) == 0)
    ranged = http_parse_range(http_header(r, "Range"), size, rg);
  if (ranged < 0) {
    snprintf(extra, cap, "Content-Range: bytes */%" PRIu64 "\r\n", size);
    return http_send(r, 416, CT_TEXT, CACHE_NONE, extra,
                     "range not satisfiable\n", 22);
  }
  int n = snprintf(extra, cap, "ETag: %s\r\nAccept-Ranges: bytes\r\n", etag);
  if (ranged && n > 0 && (size_t)n < cap)
    snprintf(extra + n, cap - (size_t)n,
             "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n",
             rg->start, rg->start + rg->len - 1, size);
  return ranged ? 206 : 200;
}

/* A zip held in the hot cache, honouring the conditional and range headers. */
static int send_zip_entry(struct req *r, const struct hot_entry *e) {
  struct range rg;
  char extra[256];
  int st = zip_head(r, e->len, e->etag, &rg, extra, sizeof extra);
  if (st != 200 && st != 206)
    return st;
  if (http_begin(r, st, CT_ZIP, CACHE_IMMUTABLE, extra, rg.len) ||
      (!r->head && http_write(r, e->data + rg.start, (size_t)rg.len)))
    zip_cut(r, "(hot cache)", ERR_IO);
  return st;
}

static int serve_zip(struct req *r, const char *key) {
  struct server *srv = r->srv;
  if (srv->cfg->zip_redirect) {
    char url[16384], extra[16500];
    if (storage_presign(srv->store, key, srv->cfg->zip_redirect_ttl, url,
                        sizeof url) == 0) {
      snprintf(extra, sizeof extra, "Location: %s\r\n", url);
      return http_send(r, 302, CT_TEXT, CACHE_NONE, extra, NULL, 0);
    }
  }
  struct range rg;
  int rc = 0;
  const struct hot_entry *e = load(srv, key, hot_item_max(srv->hot), &rc);
  if (e) {
    int st = send_zip_entry(r, e);
    hot_release(srv->hot, e);
    return st;
  }
  if (rc != ERR_TOO_LARGE)
    return http_fail(r, rc == ERR_NOT_FOUND ? ERR_STORAGE : rc, NULL);
  struct blob_stat bs;
  rc = storage_stat(srv->store, key, &bs);
  if (rc)
    return http_fail(r, ERR_STORAGE, NULL);
  char extra[256];
  int st = zip_head(r, bs.size, bs.etag, &rg, extra, sizeof extra);
  if (st != 200 && st != 206)
    return st;
  if (r->head) {
    if (http_begin(r, st, CT_ZIP, CACHE_IMMUTABLE, extra, rg.len))
      zip_cut(r, key, ERR_IO);
    return st;
  }
  /* A whole zip on local disk goes out with sendfile(2), never through
   * user space; ranges and remote stores are streamed in 64 KiB pieces.
   * CivetWeb sends a file to its end, so it is handed the very file whose
   * size was promised (through /proc/self/fd), never a path that might
   * name another by then. */
  char path[4096];
  if (st == 200 && !r->bw &&
      storage_local_path(srv->store, key, path, sizeof path) == 0) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat fst;
    if (fd >= 0 && fstat(fd, &fst) == 0 && S_ISREG(fst.st_mode) &&
        (uint64_t)fst.st_size == bs.size) {
      snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
      if (http_begin(r, st, CT_ZIP, CACHE_IMMUTABLE, extra, rg.len))
        zip_cut(r, key, ERR_IO);
      else if (mg_send_file_body(r->conn, path) < 0)
        zip_cut(r, key, ERR_STORAGE);
      else
        r->bytes += (long long)bs.size;
      close(fd);
      return st;
    }
    if (fd >= 0)
      close(fd);
  }
  struct zip_stream z = {r, st, extra, rg.len, 0, 0};
  rc = storage_get(srv->store, key, &rg, zip_sink, &z);
  if (!rc && !z.begun && z.want == 0) {
    z.begun = 1;
    if (http_begin(r, st, CT_ZIP, CACHE_IMMUTABLE, extra, 0))
      rc = ERR_IO;
  }
  if (!z.begun) {
    log_warn("streaming %s failed before its first byte: %s", key,
             err_str(rc ? rc : ERR_STORAGE));
    return http_fail(r, ERR_STORAGE, NULL);
  }
  if (rc || z.sent != z.want)
    zip_cut(r, key, rc ? rc : ERR_STORAGE);
  return st;
}

/* Serves a pinned hot-cache entry: the common case, with no storage or
 * metadata round trip, no allocation, and for .info/.mod one write. */
static int serve_hot(struct req *r, const struct modreq *m,
                     const struct hot_entry *e) {
  if (m->kind == MODREQ_ZIP)
    return send_zip_entry(r, e);
  return http_send(r, 200, m->kind == MODREQ_INFO ? CT_JSON : CT_TEXT,
                   CACHE_IMMUTABLE, NULL, e->data, e->len);
}

static int h_version(struct req *r, const struct modreq *m) {
  struct server *srv = r->srv;
  struct reason why = {{0}};
  int want_zip = m->kind == MODREQ_ZIP;
  struct pipe p;
  req_pipe(r, &p);
  /* The version policy comes before anything is served, the hot cache too:
   * a stored version stays stored while denied, and is not served. */
  int pst = policy_request(r, &p, m, 0);
  if (pst)
    return pst;
  char key[PIPE_KEY_MAX];
  pipe_key(m,
          m->kind == MODREQ_INFO  ? "info"
          : m->kind == MODREQ_MOD ? "mod"
                                  : "zip",
          key, sizeof key);
  if (!(want_zip && srv->cfg->zip_redirect)) {
    const struct hot_entry *e = hot_get(srv->hot, key);
    if (e) {
      atomic_fetch_add_explicit(&srv->metrics.hot_hits, 1,
                                memory_order_relaxed);
      int st = serve_hot(r, m, e);
      hot_release(srv->hot, e);
      return st;
    }
  }
  atomic_fetch_add_explicit(&srv->metrics.hot_misses, 1, memory_order_relaxed);
  int rc = pipe_ensure(&p, m, want_zip, &why);
  r->cache = p.cache;
  r->upstream += p.upstream;
  atomic_fetch_add_explicit(strcmp(r->cache, "miss") == 0
                                ? &srv->metrics.storage_misses
                                : &srv->metrics.storage_hits,
                            1, memory_order_relaxed);
  if ((rc == ERR_NOT_FOUND || rc == ERR_GONE) && m->kind == MODREQ_INFO) {
    struct buf info;
    buf_init(&info, VALIDATE_INFO_MAX);
    if (pipe_info_only(&p, m, &info) == 0) {
      int st = http_send(r, 200, CT_JSON, CACHE_SHORT, NULL, info.data,
                         info.len);
      buf_free(&info);
      return st;
    }
    buf_free(&info);
  }
  if (rc)
    return http_fail(r, rc, &why);
  /* A cooldown that waited for the .info: it is stored now. */
  if ((pst = policy_request(r, &p, m, 1)) != 0)
    return pst;
  /* A stored .mod or .zip whose hash disagrees with the organisation
   * checksum database was altered after it was logged: never served. */
  if (m->kind != MODREQ_INFO &&
      (rc = orgsumdb_check_served(srv, m, m->kind == MODREQ_MOD ? "mod" : "zip",
                                  &why)) != 0)
    return http_fail(r, rc, &why);
  switch (m->kind) {
  case MODREQ_INFO:
    return serve_small(r, key, CT_JSON);
  case MODREQ_MOD:
    return serve_small(r, key, CT_TEXT);
  default:
    return serve_zip(r, key);
  }
}

static int h_mutable(struct req *r, const struct modreq *m) {
  struct reason why = {{0}};
  struct buf body;
  buf_init(&body, LIST_MAX);
  struct pipe p;
  req_pipe(r, &p);
  int rc = pipe_resolve(&p, m, &body, &why);
  if (!rc) /* denied and cooling versions leave the answer */
    rc = policy_answer(r, &p, m, &body, &why);
  r->cache = p.cache;
  r->upstream += p.upstream;
  int st = rc ? http_fail(r, rc, &why)
              : http_send(r, 200, m->kind == MODREQ_LIST ? CT_TEXT : CT_JSON,
                          CACHE_SHORT, NULL, body.data, body.len);
  buf_free(&body);
  return st;
}

int h_module(struct req *r) {
  struct modreq mr; /* ~2.5 KiB: worker stacks hold it, no malloc needed */
  struct modreq *m = &mr;
  struct reason why = {{0}};
  int rc = modpath_parse(r->path, m, &why);
  int st;
  r->cache = rc ? "-" : "hit"; /* until a fetch says otherwise */
  if (!rc)
    r->endpoint = m->kind == MODREQ_LIST   ? EP_LIST
                  : m->kind == MODREQ_INFO ? EP_INFO
                  : m->kind == MODREQ_MOD  ? EP_MOD
                  : m->kind == MODREQ_ZIP  ? EP_ZIP
                                           : EP_LATEST;
  const char *action = m->kind == MODREQ_LIST     ? "list"
                       : m->kind == MODREQ_LATEST ? "latest"
                                                  : "download";
  if (rc) {
    r->action = "download";
    st = http_fail(r, rc, &why);
  } else if (!access_module(r, m->module, m->version, action)) {
    return r->status; /* refused before any lookup */
  } else if (m->kind == MODREQ_LIST || m->kind == MODREQ_LATEST ||
             (m->kind == MODREQ_INFO && !m->canonical)) {
    st = h_mutable(r, m);
  } else {
    st = h_version(r, m);
  }
  if (!rc) {
    /* Only answered requests name their module in the counts: a client
     * asking for modules that do not exist must not fill the top list.
     * Refusals and errors still count in the totals. */
    int ok = st < 400;
    counters_add(r->srv->counters, ok ? m->module : "", ok ? m->version : "",
                 r->srv->auth ? identity_label(&r->id) : "",
                 strcmp(r->cache, "miss") != 0, r->upstream, st >= 500,
                 time(NULL));
    /* Garbage collection's record of use (meta=memory; lastuse.h). */
    if (ok && m->canonical && m->kind != MODREQ_LIST &&
        m->kind != MODREQ_LATEST)
      lastuse_note(r->srv->lastuse, m, time(NULL));
  }
  return st;
}
