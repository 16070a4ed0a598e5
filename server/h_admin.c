/* /stats (JSON counts for people and dashboards; with access control on,
 * only modules the caller may read, and per-user detail for admins) and the
 * admin endpoints, which need `admin_token` or an identity in
 * `auth_admins`: POST /admin/purge drops a module (or one version) from
 * every replica's hot cache and from the metadata caches; POST /admin/warm
 * makes sure the versions a go.sum names are committed (warm.h). */
#include "access.h"
#include "auth/auth.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "counters.h"
#include "hot.h"
#include "http.h"
#include "mod/gosum.h"
#include "mod/modpath.h"
#include "server.h"
#include "storage/meta.h"
#include "warm.h"

#include <civetweb.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int send_json(struct req *r, int status, struct json_object *o) {
  const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
  int st = http_send(r, status, CT_JSON, CACHE_NONE, NULL, text, strlen(text));
  json_object_put(o);
  return st;
}

int h_stats(struct req *r) {
  struct server *srv = r->srv;
  if (r->id.source != AUTH_ADMIN_TOKEN && !access_any(r))
    return r->status;
  int admin = r->id.source == AUTH_ADMIN_TOKEN ||
              (srv->auth && auth_is_admin(srv->auth, &r->id));
  /* Let the hits before this request reach the store first. */
  counters_sync(srv->counters, 1000);
  struct meta_stats ms;
  memset(&ms, 0, sizeof ms);
  int rc = srv->meta->ops->stats_get(srv->meta, &ms);
  struct counters_local cl;
  counters_local(srv->counters, &cl);
  struct json_object *o = json_object_new_object();
  json_object_object_add(o, "meta",
                         json_object_new_string(srv->meta->ops->name));
  json_object_object_add(o, "meta_available", json_object_new_boolean(rc == 0));
  json_object_object_add(o, "hits", json_object_new_int64(ms.hits));
  json_object_object_add(o, "misses", json_object_new_int64(ms.misses));
  long long total = ms.hits + ms.misses;
  json_object_object_add(
      o, "hit_ratio",
      json_object_new_double(total ? (double)ms.hits / (double)total : 0.0));
  json_object_object_add(o, "upstream_fetches",
                         json_object_new_int64(ms.upstream_fetches));
  json_object_object_add(o, "errors", json_object_new_int64(ms.errors));
  struct json_object *top = json_object_new_array();
  for (size_t i = 0; i < ms.ntop; i++) {
    /* Nobody learns here of a module they may not read, and private
     * module names are for administrators only, even when anyone may
     * fetch them. */
    if (!admin && (access_is_private(r, ms.top[i].module) ||
                   (srv->auth &&
                    !auth_may_read(srv->auth, &r->id, ms.top[i].module, NULL))))
      continue;
    struct json_object *t = json_object_new_object();
    json_object_object_add(t, "module",
                           json_object_new_string(ms.top[i].module));
    json_object_object_add(t, "hits", json_object_new_int64(ms.top[i].hits));
    json_object_array_add(top, t);
  }
  json_object_object_add(o, "top_today", top);
  if (srv->auth && admin) {
    struct json_object *users = json_object_new_array();
    for (size_t i = 0; i < ms.nusers; i++) {
      struct json_object *u = json_object_new_object();
      json_object_object_add(u, "user",
                             json_object_new_string(ms.top_users[i].user));
      json_object_object_add(u, "requests",
                             json_object_new_int64(ms.top_users[i].requests));
      json_object_array_add(users, u);
    }
    json_object_object_add(o, "top_users_today", users);
    struct auth_stats as;
    auth_stats(srv->auth, &as);
    struct json_object *a = json_object_new_object();
    json_object_object_add(a, "credentials_cached",
                           json_object_new_int64((int64_t)as.cached));
    json_object_object_add(a, "cache_hits",
                           json_object_new_int64(as.cache_hits));
    json_object_object_add(a, "verified", json_object_new_int64(as.verified));
    json_object_object_add(a, "failed", json_object_new_int64(as.failures));
    json_object_object_add(
        a, "denied", json_object_new_int64(atomic_load(&srv->metrics.denied)));
    json_object_object_add(
        a, "rate_limited",
        json_object_new_int64(atomic_load(&srv->metrics.rate_limited)));
    json_object_object_add(o, "access_control", a);
  }
  struct json_object *rep = json_object_new_object();
  json_object_object_add(rep, "counters_queued",
                         json_object_new_int64(cl.queued));
  json_object_object_add(rep, "counters_flushed",
                         json_object_new_int64(cl.flushed));
  json_object_object_add(rep, "counters_dropped",
                         json_object_new_int64(cl.dropped));
  json_object_object_add(rep, "hot_cache_bytes",
                         json_object_new_int64((int64_t)hot_bytes(srv->hot)));
  json_object_object_add(rep, "in_flight",
                         json_object_new_int64(atomic_load(&srv->in_flight)));
  json_object_object_add(o, "replica", rep);
  return send_json(r, 200, o);
}

/* Reads a form field from the query string or a small urlencoded body. */
static int field(struct req *r, const char *body, const char *name, char *out,
                 size_t cap) {
  const struct mg_request_info *ri = mg_get_request_info(r->conn);
  if (ri->query_string && mg_get_var(ri->query_string, strlen(ri->query_string),
                                     name, out, cap) > 0)
    return 1;
  return body[0] && mg_get_var(body, strlen(body), name, out, cap) > 0;
}

/* Called for every purge published by any replica (this one included). */
void h_admin_on_purge(void *arg, const char *prefix) {
  struct server *srv = arg;
  size_t n = hot_drop_prefix(srv->hot, prefix);
  log_info("purge %s: dropped %zu hot-cache entries", prefix, n);
}

int h_admin_purge(struct req *r) {
  struct server *srv = r->srv;
  r->action = "admin_purge";
  if (!access_admin(r))
    return r->status;
  if (strcmp(r->method, "POST") != 0)
    return http_send(r, 405, CT_TEXT, CACHE_NONE, "Allow: POST\r\n",
                     "method not allowed: use POST\n", 29);
  char body[4096] = "";
  int got = mg_read(r->conn, body, sizeof body - 1);
  if (got > 0)
    body[got] = '\0';
  char module[MODPATH_MAX + 1] = "", version[VERSION_MAX + 1] = "";
  if (!field(r, body, "module", module, sizeof module))
    return http_error(r, 400, "purge needs module=<module path>");
  field(r, body, "version", version, sizeof version);
  struct reason why = {{0}};
  int rc = modpath_check_path(module, &why);
  if (!rc && version[0])
    rc = modpath_check_version(module, version, 0, &why);
  if (rc)
    return http_fail(r, rc, &why);
  snprintf(r->module, sizeof r->module, "%s", module);
  snprintf(r->version, sizeof r->version, "%s", version);
  char esc[MODPATH_ESC_MAX + 1], vesc[VERSION_ESC_MAX + 1] = "";
  char prefix[MODPATH_ESC_MAX + VERSION_ESC_MAX + 16];
  if (modpath_escape(module, esc, sizeof esc) ||
      (version[0] && modpath_escape_version(version, vesc, sizeof vesc)))
    return http_error(r, 400, "cannot escape module path or version");
  snprintf(prefix, sizeof prefix, "%s/@v/%s%s", esc, vesc, vesc[0] ? "." : "");
  /* Mutable answers go too, so the next request asks the upstream. */
  const char *kinds[] = {"list", "latest"};
  for (size_t i = 0; i < 2; i++) {
    char key[MODPATH_MAX + 16];
    snprintf(key, sizeof key, "%s:%s", kinds[i], module);
    srv->meta->ops->forget(srv->meta, key);
  }
  /* A version's remembered 404 or refusal too (h_module.c's "v:" and "vz:"
   * keys), so an operator who fixed the upstream need not wait out
   * negative_ttl. */
  for (size_t i = 0; version[0] && i < 2; i++) {
    char key[MODPATH_MAX + VERSION_MAX + 8];
    snprintf(key, sizeof key, "%s:%s@%s", i ? "vz" : "v", module, version);
    srv->meta->ops->forget(srv->meta, key);
  }
  size_t here = hot_drop_prefix(srv->hot, prefix);
  rc = srv->meta->ops->purge_publish(srv->meta, prefix);
  log_info("admin purge %s%s%s (%zu here)%s", module, version[0] ? "@" : "",
           version, here,
           rc ? ": other replicas not told (metadata down)" : "");
  struct json_object *o = json_object_new_object();
  json_object_object_add(o, "purged", json_object_new_string(prefix));
  json_object_object_add(o, "dropped_here",
                         json_object_new_int64((int64_t)here));
  json_object_object_add(o, "broadcast", json_object_new_boolean(rc == 0));
  return send_json(r, 200, o);
}

/* The request body, at most max bytes. 0, or the status to answer: 413
 * when it is larger, 400 when the client stopped sending. */
static int read_body(struct req *r, size_t max, struct buf *out) {
  const struct mg_request_info *ri = mg_get_request_info(r->conn);
  if (ri->content_length > (long long)max)
    return 413;
  char chunk[16384];
  for (;;) {
    int n = mg_read(r->conn, chunk, sizeof chunk);
    if (n < 0)
      return 400;
    if (n == 0)
      return 0;
    if (out->len + (size_t)n > max)
      return 413;
    if (buf_append(out, chunk, (size_t)n))
      return 500;
  }
}

int h_admin_warm(struct req *r) {
  struct server *srv = r->srv;
  r->action = "admin_warm";
  if (!access_admin(r))
    return r->status;
  if (strcmp(r->method, "POST") != 0)
    return http_send(r, 405, CT_TEXT, CACHE_NONE, "Allow: POST\r\n",
                     "method not allowed: use POST\n", 29);
  long jobs = 4;
  char js[16];
  const struct mg_request_info *ri = mg_get_request_info(r->conn);
  if (ri->query_string && mg_get_var(ri->query_string, strlen(ri->query_string),
                                     "jobs", js, sizeof js) != -1) {
    char *end;
    errno = 0;
    jobs = strtol(js, &end, 10);
    if (errno || end == js || *end || jobs < 1 || jobs > WARM_HTTP_JOBS_MAX) {
      char line[64];
      snprintf(line, sizeof line, "jobs must be a number from 1 to %d",
               WARM_HTTP_JOBS_MAX);
      return http_error(r, 400, line);
    }
  }
  struct buf body;
  buf_init(&body, WARM_BODY_MAX);
  int st = read_body(r, WARM_BODY_MAX, &body);
  if (st) {
    buf_free(&body);
    char line[96];
    if (st == 413)
      snprintf(line, sizeof line,
               "body larger than %zu MiB (use gomirror warm)",
               WARM_BODY_MAX >> 20);
    else
      snprintf(line, sizeof line, "%s",
               st == 400 ? "the request body ended early"
                         : "out of memory reading the body");
    return http_error(r, st, line);
  }
  struct gosum_list l;
  gosum_init(&l, GOSUM_MAX);
  struct reason why = {{0}};
  int rc = gosum_parse(&l, "body", buf_cstr(&body), body.len, &why);
  buf_free(&body);
  if (rc) {
    gosum_free(&l);
    return http_error(r, rc == ERR_NOMEM ? 500 : 400, reason_text(&why, rc));
  }
  struct warm_result res;
  rc = warm_run(srv, &l, (int)jobs, NULL, NULL, &res, &why);
  if (rc) {
    gosum_free(&l);
    return http_fail(r, rc, &why);
  }
  r->upstream += res.upstream;
  r->cache = res.committed > res.already ? "miss" : "hit";
  snprintf(r->detail, sizeof r->detail,
           "%zu versions, %zu committed (%zu already), %zu failed", res.total,
           res.committed, res.already, res.failed);
  log_info("admin warm: %s, %d upstream requests, %.1fs", r->detail,
           res.upstream, res.seconds);
  struct json_object *o = json_object_new_object();
  json_object_object_add(o, "total", json_object_new_int64((int64_t)res.total));
  json_object_object_add(o, "committed",
                         json_object_new_int64((int64_t)res.committed));
  json_object_object_add(o, "already",
                         json_object_new_int64((int64_t)res.already));
  /* The failures named, at most WARM_FAILED_SHOWN: an upstream that is
   * down fails every version, and the answer stays small. */
  struct json_object *failed = json_object_new_array();
  size_t shown = 0;
  for (size_t i = 0; i < res.total && shown < WARM_FAILED_SHOWN; i++) {
    const struct warm_item *it = &res.items[i];
    if (!it->rc)
      continue;
    shown++;
    struct json_object *f = json_object_new_object();
    json_object_object_add(f, "module", json_object_new_string(l.v[i].module));
    json_object_object_add(f, "version",
                           json_object_new_string(l.v[i].version));
    json_object_object_add(
        f, "error",
        json_object_new_string(it->error ? it->error : err_str(it->rc)));
    json_object_array_add(failed, f);
  }
  json_object_object_add(o, "failed", failed);
  if (res.failed > shown)
    json_object_object_add(
        o, "failed_more", json_object_new_int64((int64_t)(res.failed - shown)));
  json_object_object_add(o, "bytes", json_object_new_int64((int64_t)res.bytes));
  json_object_object_add(o, "seconds", json_object_new_double(res.seconds));
  int status = res.failed ? 502 : 200;
  warm_result_free(&res);
  gosum_free(&l);
  return send_json(r, status, o);
}
