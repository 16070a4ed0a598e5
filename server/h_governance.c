/* The HTTP side of governance: GET /catalog (what is stored, paged, as far
 * as the caller may read) and POST /admin/gc (garbage collection with a
 * JSON report). Thin adapters over catalog.h and gc.h. */
#include "access.h"
#include "auth/auth.h"
#include "catalog.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "gc.h"
#include "http.h"
#include "mod/policy.h"
#include "mod/private.h"
#include "server.h"

#include <civetweb.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CATALOG_TOKEN_MAX 2100 /* an escaped module path and version */

/* A query-string parameter: 1 with its decoded value, 0 when absent. */
static int param(struct req *r, const char *name, char *out, size_t cap) {
  const struct mg_request_info *ri = mg_get_request_info(r->conn);
  return ri->query_string &&
         mg_get_var(ri->query_string, strlen(ri->query_string), name, out,
                    cap) >= 0;
}

struct reader {
  struct server *srv;
  const struct identity *id;
};

static int may_read(void *arg, const char *module) {
  struct reader *rd = arg;
  return auth_may_read(rd->srv->auth, rd->id, module, NULL);
}

int h_catalog(struct req *r) {
  struct server *srv = r->srv;
  r->action = "catalog";
  int admin = r->id.source == AUTH_ADMIN_TOKEN;
  if (!admin && !access_any(r))
    return r->status;
  char token[CATALOG_TOKEN_MAX] = "", size[24] = "";
  long pagesize = CATALOG_PAGE_DEFAULT;
  if (param(r, "token", token, sizeof token) &&
      strlen(token) >= sizeof token - 1)
    return http_error(r, 400, "token too long");
  if (param(r, "pagesize", size, sizeof size) && size[0]) {
    char *end;
    errno = 0;
    pagesize = strtol(size, &end, 10);
    if (errno || *end || end == size || pagesize < 1)
      return http_error(r, 400,
                        "pagesize must be a positive number (at most "
                        "10000)");
    if (pagesize > CATALOG_PAGE_MAX)
      pagesize = CATALOG_PAGE_MAX;
  }
  struct reader rd = {srv, &r->id};
  struct buf out;
  buf_init(&out, (size_t)64 << 20);
  struct reason why = {{0}};
  int rc = catalog_page(srv->store, token, (size_t)pagesize,
                        srv->auth && !admin ? may_read : NULL, &rd, &out, &why);
  int st = rc ? http_fail(r, rc, &why)
              : http_send(r, 200, CT_JSON, CACHE_NONE, NULL, out.data, out.len);
  buf_free(&out);
  return st;
}

/* The form of a boolean parameter: 1, true, yes, on. */
static int truthy(const char *v) {
  return !strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes") ||
         !strcmp(v, "on");
}

static struct json_object *report_json(const struct gc_report *rep,
                                       long unused_for) {
  struct json_object *o = json_object_new_object();
  char t[40];
  json_object_object_add(o, "dry_run", json_object_new_boolean(rep->dry_run));
  json_object_object_add(o, "unused_for", json_object_new_int64(unused_for));
  policy_time_format(rep->cutoff, t, sizeof t);
  json_object_object_add(o, "unused_since", json_object_new_string(t));
  json_object_object_add(o, "modules_scanned",
                         json_object_new_int64((int64_t)rep->modules));
  json_object_object_add(o, "versions_scanned",
                         json_object_new_int64((int64_t)rep->versions));
  struct json_object *removed = json_object_new_array();
  struct json_object *during = json_object_new_array();
  struct json_object *mods = json_object_new_array();
  struct json_object *cur = NULL;
  const char *cur_name = NULL;
  for (size_t i = 0; i < rep->nitems; i++) {
    const struct gc_item *it = &rep->items[i];
    struct json_object *e = json_object_new_object();
    json_object_object_add(e, "module", json_object_new_string(it->module));
    json_object_object_add(e, "version", json_object_new_string(it->version));
    if (!it->removed) {
      json_object_array_add(during, e);
      continue;
    }
    json_object_object_add(e, "bytes",
                           json_object_new_int64((int64_t)it->bytes));
    policy_time_format(it->last, t, sizeof t);
    json_object_object_add(e, "last_used", json_object_new_string(t));
    json_object_array_add(removed, e);
    if (!cur_name || strcmp(cur_name, it->module) != 0) {
      cur = json_object_new_object();
      json_object_object_add(cur, "module", json_object_new_string(it->module));
      json_object_object_add(cur, "versions", json_object_new_int64(0));
      json_object_object_add(cur, "bytes", json_object_new_int64(0));
      json_object_array_add(mods, cur);
      cur_name = it->module;
    }
    struct json_object *v, *b;
    json_object_object_get_ex(cur, "versions", &v);
    json_object_object_get_ex(cur, "bytes", &b);
    json_object_set_int64(v, json_object_get_int64(v) + 1);
    json_object_set_int64(b, json_object_get_int64(b) + (int64_t)it->bytes);
  }
  json_object_object_add(o, rep->dry_run ? "would_remove" : "removed", removed);
  json_object_object_add(o, "modules", mods);
  json_object_object_add(o, "versions",
                         json_object_new_int64((int64_t)rep->removed));
  json_object_object_add(o, "bytes",
                         json_object_new_int64((int64_t)rep->bytes));
  struct json_object *kept = json_object_new_object();
  json_object_object_add(kept, "recent",
                         json_object_new_int64((int64_t)rep->kept_recent));
  json_object_object_add(kept, "newest",
                         json_object_new_int64((int64_t)rep->kept_newest));
  json_object_object_add(kept, "keep",
                         json_object_new_int64((int64_t)rep->kept_keep));
  json_object_object_add(kept, "used_during_run",
                         json_object_new_int64((int64_t)rep->kept_during));
  json_object_object_add(kept, "busy",
                         json_object_new_int64((int64_t)rep->kept_busy));
  json_object_object_add(kept, "unknown",
                         json_object_new_int64((int64_t)rep->kept_unknown));
  json_object_object_add(o, "kept", kept);
  json_object_object_add(o, "used_during_run", during);
  json_object_object_add(o, "errors",
                         json_object_new_int64((int64_t)rep->errors));
  if (rep->errors)
    json_object_object_add(o, "error", json_object_new_string(rep->error));
  json_object_object_add(o, "seconds", json_object_new_double(rep->seconds));
  return o;
}

int h_admin_gc(struct req *r) {
  struct server *srv = r->srv;
  r->action = "admin_gc";
  if (!access_admin(r))
    return r->status;
  if (strcmp(r->method, "POST") != 0)
    return http_send(r, 405, CT_TEXT, CACHE_NONE, "Allow: POST\r\n",
                     "method not allowed: use POST\n", 29);
  char v[512];
  struct gc_options o = {.grace = GC_GRACE_DEFAULT};
  if (!param(r, "unused_for", v, sizeof v) || !v[0])
    return http_error(r, 400, "gc needs unused_for=<duration> (e.g. 180d)");
  if (policy_duration_parse(v, strlen(v), &o.unused_for))
    return http_error(r, 400,
                      "unused_for must be a duration: a number and "
                      "s, m, h, d or w (e.g. 180d)");
  if (param(r, "grace", v, sizeof v) && v[0] &&
      policy_duration_parse(v, strlen(v), &o.grace))
    return http_error(r, 400, "grace must be a duration (e.g. 2s)");
  if (param(r, "dry_run", v, sizeof v))
    o.dry_run = !v[0] || truthy(v);
  if (param(r, "newest", v, sizeof v))
    o.newest = !v[0] || truthy(v);
  char keep[512] = "";
  if (param(r, "keep", keep, sizeof keep) && keep[0]) {
    struct reason kwhy = {{0}};
    if (private_check(keep, &kwhy))
      return http_error(r, 400, reason_text(&kwhy, ERR_CONFIG));
    o.keep = keep;
  }
  struct gc_report rep;
  struct reason why = {{0}};
  int rc = gc_run(srv, &o, &rep, &why);
  if (rc)
    return http_fail(r, rc, &why);
  snprintf(r->detail, sizeof r->detail, "%s%zu versions, %llu bytes%s",
           o.dry_run ? "dry run: " : "", rep.removed,
           (unsigned long long)rep.bytes, rep.errors ? ", with errors" : "");
  log_info("admin gc: %s", r->detail);
  struct json_object *j = report_json(&rep, o.unused_for);
  gc_report_free(&rep);
  const char *text = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN);
  int st = http_send(r, rep.errors ? 500 : 200, CT_JSON, CACHE_NONE, NULL, text,
                     strlen(text));
  json_object_put(j);
  return st;
}
