/* The version policy at work (policy.h): the rules file kept current, the
 * decisions where versions are served, listed, resolved and committed,
 * publication times for the cooldown, and the policy hook. */
#include "policy.h"

#include "auth/identity.h"
#include "auth/textfile.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "hot.h"
#include "http.h"
#include "mod/hash1.h"
#include "mod/modpath.h"
#include "mod/policy.h"
#include "mod/private.h"
#include "mod/semver.h"
#include "mod/validate.h"
#include "pipeline.h"
#include "server.h"
#include "storage/meta.h"
#include "storage/storage.h"
#include "upstream.h"

#include <curl/curl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_MAX (16u << 20)
/* Publication times one list answer may look up upstream (newest versions
 * first); the rest are looked up by later answers. */
#define TIME_FETCHES_MAX 32
#define HOOK_BODY_MAX 4096

enum decision {
  PD_DENY,             /* a version refused by a deny rule */
  PD_COOLDOWN,         /* a version refused inside its cooldown */
  PD_EXEMPT,           /* a cooldown waived for cooldown_exempt */
  PD_FILTERED,         /* a list or @latest answer with versions taken out */
  PD_ONLY,             /* an upstream fetch refused by `only` */
  PD_HOOK_ALLOW,       /* the hook answered 200 */
  PD_HOOK_DENY,        /* the hook refused */
  PD_HOOK_DOWN_CLOSED, /* the hook was down: not committed */
  PD_HOOK_DOWN_OPEN,   /* the hook was down: committed anyway */
  PD__COUNT
};

static const char *const decision_names[PD__COUNT] = {
    "deny",       "cooldown",  "cooldown_exempt",   "filtered",         "only",
    "hook_allow", "hook_deny", "hook_down_refused", "hook_down_allowed"};

/* One version of the rules, shared by the requests that use it. */
struct snapshot {
  struct policy_rules *rules;
  atomic_int refs;
};

struct policy {
  const struct config *cfg;
  char *path;         /* NULL: no rules file (only a hook) */
  pthread_mutex_t mu; /* cur, sig, checked */
  struct snapshot *cur;
  struct file_sig sig;
  double checked; /* monotonic seconds of the last look at the file */
  atomic_llong counts[PD__COUNT];
  atomic_llong reloads, reload_errors;
};

/* --- the rules file --------------------------------------------------- */

static int load(const char *path, struct snapshot **out, struct reason *why) {
  char *text = NULL;
  size_t len = 0;
  struct reason rwhy = {{0}};
  int rc = textfile_read(path, &text, &len, &rwhy);
  if (rc)
    return reason_set(why, rc == ERR_NOMEM ? rc : ERR_CONFIG, "policy: %s",
                      reason_text(&rwhy, rc));
  struct policy_rules *r = NULL;
  rc = policy_rules_parse(text, len, path, &r, why);
  free(text);
  if (rc)
    return rc;
  struct snapshot *s = calloc(1, sizeof *s);
  if (!s) {
    policy_rules_free(r);
    return reason_set(why, ERR_NOMEM, "out of memory");
  }
  s->rules = r;
  atomic_init(&s->refs, 1);
  *out = s;
  return 0;
}

static void release(struct snapshot *s) {
  if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
    policy_rules_free(s->rules);
    free(s);
  }
}

/* Re-reads the file if it changed since it was last read (pol->mu held).
 * A version that does not parse is logged once and never used. */
static void refresh_locked(struct policy *pol) {
  struct file_sig sig;
  file_sig_get(pol->path, &sig);
  if (!file_sig_changed(&sig, &pol->sig))
    return;
  pol->sig = sig;
  struct snapshot *s = NULL;
  struct reason why = {{0}};
  int rc = load(pol->path, &s, &why);
  if (rc) {
    atomic_fetch_add(&pol->reload_errors, 1);
    log_error("%s; keeping the last good policy", reason_text(&why, rc));
    return;
  }
  struct snapshot *old = pol->cur;
  pol->cur = s;
  release(old);
  atomic_fetch_add(&pol->reloads, 1);
  log_info("policy %s re-read: %zu rules", pol->path,
           policy_rules_count(s->rules));
}

/* The current rules, looked at again at most once a second; NULL when
 * there is no rules file. Release with release(). */
static struct snapshot *acquire(struct policy *pol) {
  if (!pol || !pol->path)
    return NULL;
  pthread_mutex_lock(&pol->mu);
  double now = clock_now_s();
  if (now - pol->checked >= 1.0) {
    pol->checked = now;
    refresh_locked(pol);
  }
  struct snapshot *s = pol->cur;
  if (s)
    atomic_fetch_add(&s->refs, 1);
  pthread_mutex_unlock(&pol->mu);
  return s;
}

int policy_open(const struct config *cfg, struct policy **out,
                struct reason *why) {
  *out = NULL;
  int has_file = cfg->policy && cfg->policy[0];
  int has_hook = cfg->policy_hook && cfg->policy_hook[0];
  if (!has_file && !has_hook)
    return 0;
  struct policy *pol = calloc(1, sizeof *pol);
  if (!pol)
    return reason_set(why, ERR_NOMEM, "out of memory");
  pol->cfg = cfg;
  pthread_mutex_init(&pol->mu, NULL);
  if (has_file) {
    pol->path = strdup(cfg->policy);
    if (!pol->path) {
      policy_close(pol);
      return reason_set(why, ERR_NOMEM, "out of memory");
    }
    file_sig_get(pol->path, &pol->sig);
    int rc = load(pol->path, &pol->cur, why);
    if (rc) {
      policy_close(pol);
      return rc;
    }
    pol->checked = clock_now_s();
  }
  *out = pol;
  return 0;
}

void policy_close(struct policy *pol) {
  if (!pol)
    return;
  release(pol->cur);
  free(pol->path);
  pthread_mutex_destroy(&pol->mu);
  free(pol);
}

void policy_reload(struct policy *pol) {
  if (!pol || !pol->path)
    return;
  pthread_mutex_lock(&pol->mu);
  pol->checked = clock_now_s();
  refresh_locked(pol);
  pthread_mutex_unlock(&pol->mu);
}

static void count(struct policy *pol, enum decision d) {
  if (pol)
    atomic_fetch_add_explicit(&pol->counts[d], 1, memory_order_relaxed);
}

/* --- who is exempt -------------------------------------------------------- */

/* 1 when id is in cooldown_exempt, written as auth_admins is: user names,
 * token:NAME, group:NAME. A tool (no identity) and anonymous callers never
 * are. */
static int is_exempt(const struct config *cfg, const struct identity *id) {
  if (!id || id->source == AUTH_ANONYMOUS || !cfg->cooldown_exempt)
    return 0;
  for (const char *p = cfg->cooldown_exempt; *p;) {
    while (*p == ' ' || *p == ',')
      p++;
    size_t n = strcspn(p, ", ");
    if (!n)
      break;
    char e[AUTH_NAME_MAX + 8];
    if (n < sizeof e) {
      memcpy(e, p, n);
      e[n] = '\0';
      if (strncmp(e, "group:", 6) == 0) {
        if (identity_in_group(id, e + 6))
          return 1;
      } else if (strncmp(e, "token:", 6) == 0) {
        if (id->source == AUTH_TOKEN && strcmp(id->name, e + 6) == 0)
          return 1;
      } else if (id->source != AUTH_TOKEN && strcmp(id->name, e) == 0) {
        return 1;
      }
    }
    p += n;
  }
  return 0;
}

static int is_private(const struct server *srv, const char *module) {
  const char *p = srv->cfg->private_patterns;
  return p && p[0] && private_match(p, module) == 1;
}

/* --- publication times ------------------------------------------------------
 * A version's .info Time never changes, so what was learned is kept in one
 * metadata cache entry per module ("pubtime:<module>", lines "<version>
 * <unix seconds>"): a list answer costs one lookup, not one per version. */

static void times_key(const char *module, char *out, size_t cap) {
  snprintf(out, cap, "pubtime:%s", module);
}

static int times_get(struct server *srv, const char *module, struct buf *out) {
  char key[MODPATH_MAX + 16];
  times_key(module, key, sizeof key);
  buf_reset(out);
  return srv->meta->ops->cache_get(srv->meta, key, out, NULL);
}

static int times_find(const struct buf *times, const char *version, time_t *t) {
  size_t vl = strlen(version);
  const char *p = times->data, *end = p ? p + times->len : NULL;
  while (p && p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = (size_t)((nl ? nl : end) - p);
    if (n > vl + 1 && p[vl] == ' ' && memcmp(p, version, vl) == 0) {
      char num[24];
      size_t dl = n - vl - 1;
      if (dl < sizeof num) {
        memcpy(num, p + vl + 1, dl);
        num[dl] = '\0';
        char *e;
        long long v = strtoll(num, &e, 10);
        if (!*e && e != num) {
          *t = (time_t)v;
          return 0;
        }
      }
    }
    p = nl ? nl + 1 : end;
  }
  return ERR_NOT_FOUND;
}

static void times_put(struct server *srv, const char *module,
                      const struct buf *times) {
  char key[MODPATH_MAX + 16];
  times_key(module, key, sizeof key);
  srv->meta->ops->cache_put(srv->meta, key, times->data ? times->data : "",
                            times->len);
}

/* Remembers one version's time (a read-modify-write: a lost race only
 * costs a later lookup). */
static void times_record(struct server *srv, const char *module,
                         const char *version, time_t t) {
  struct buf times;
  buf_init(&times, LIST_MAX);
  time_t old;
  int known = times_get(srv, module, &times) == 0 &&
              times_find(&times, version, &old) == 0;
  if (!known && buf_appendf(&times, "%s %lld\n", version, (long long)t) == 0)
    times_put(srv, module, &times);
  buf_free(&times);
}

/* The Time of module@version's stored .info (hot cache or storage). */
static int stored_time(struct server *srv, const char *module_esc,
                       const char *version_esc, time_t *t) {
  char key[PIPE_KEY_MAX];
  snprintf(key, sizeof key, "%s/@v/%s.info", module_esc, version_esc);
  const struct hot_entry *e = hot_get(srv->hot, key);
  if (e) {
    int rc = policy_info_time(e->data, e->len, t);
    hot_release(srv->hot, e);
    if (!rc)
      return 0;
  }
  struct buf b;
  buf_init(&b, VALIDATE_INFO_MAX);
  int rc = storage_get_buf(srv->store, key, &b);
  if (!rc)
    rc = policy_info_time(b.data, b.len, t);
  buf_free(&b);
  return rc ? ERR_NOT_FOUND : 0;
}

static int buf_sink(void *arg, const void *p, size_t n) {
  return buf_append(arg, p, n);
}
static int buf_reset_sink(void *arg) {
  buf_reset(arg);
  return 0;
}

/* The Time of the upstream's .info for module@version, when fetching is
 * allowed (not offline, not private, `only` permits). */
static int upstream_time(struct pipe *p, const char *module,
                         const char *module_esc, const char *version_esc,
                         time_t *t) {
  struct server *srv = p->srv;
  if (p->offline || is_private(srv, module) ||
      policy_may_fetch(srv, module, NULL))
    return ERR_NOT_FOUND;
  CURL *h = worker_curl(p->w);
  if (!h)
    return ERR_NOMEM;
  char rel[PIPE_KEY_MAX];
  snprintf(rel, sizeof rel, "%s/@v/%s.info", module_esc, version_esc);
  struct buf b;
  buf_init(&b, VALIDATE_INFO_MAX);
  struct up_sink sink = {buf_sink, buf_reset_sink, &b};
  long attempts = 0;
  double t0 = clock_now_s();
  struct reason why = {{0}};
  int rc = upstream_get(srv->up, h, rel, &sink, &attempts, &why);
  if (attempts)
    metrics_upstream(&srv->metrics, clock_now_s() - t0);
  atomic_fetch_add(&srv->metrics.upstream_fetches, attempts);
  p->upstream += (int)attempts;
  if (rc == 0)
    rc = policy_info_time(b.data, b.len, t);
  buf_free(&b);
  return rc ? ERR_NOT_FOUND : 0;
}

/* --- decisions --------------------------------------------------------------
 */

static int refuse_deny(struct policy *pol, const char *module,
                       const char *version, const struct policy_match *pm,
                       struct policy_outcome *v, struct reason *why) {
  count(pol, PD_DENY);
  if (v) {
    v->refused = 1;
    v->action = "policy_denied";
    snprintf(v->detail, sizeof v->detail, "policy line %ld: %.200s", pm->line,
             pm->rule);
  }
  return reason_set(why, ERR_FORBIDDEN, "%s@%s is denied: %s (policy line %ld)",
                    module, version, pm->reason, pm->line);
}

/* The cooldown of pm for a version published at pub: 0 when it is over
 * (or the caller is exempt), else ERR_FORBIDDEN with the date it ends. */
static int cooldown_verdict(struct pipe *p, const char *module,
                            const char *version, const struct policy_match *pm,
                            time_t pub, struct policy_outcome *v,
                            struct reason *why) {
  struct policy *pol = p->srv->policy;
  time_t now = time(NULL);
  if (now >= pub + pm->cooldown_s)
    return 0;
  char hold[32], at[40], until[40];
  policy_duration_format(pm->cooldown_s, hold, sizeof hold);
  policy_time_format(pub, at, sizeof at);
  policy_time_format(pub + pm->cooldown_s, until, sizeof until);
  if (v)
    snprintf(v->detail, sizeof v->detail,
             "policy line %ld: %.120s; published %.24s, available from %.24s",
             pm->line, pm->rule, at, until);
  if (is_exempt(p->srv->cfg, p->id)) {
    count(pol, PD_EXEMPT);
    if (v) {
      v->exempt = 1;
      v->action = "cooldown_exempt";
    }
    log_info("cooldown waived for %s (cooldown_exempt): %s@%s, published %s",
             identity_label(p->id), module, version, at);
    return 0;
  }
  count(pol, PD_COOLDOWN);
  if (v) {
    v->refused = 1;
    v->action = "policy_cooldown";
  }
  return reason_set(why, ERR_FORBIDDEN,
                    "%s@%s is in its %s cooldown (published %s): available "
                    "from %s (policy line %ld)",
                    module, version, hold, at, until, pm->line);
}

/* The current rules' verdict on m's version: 0 when no policy is loaded. */
static int decide(struct server *srv, const struct modreq *m,
                  struct policy_match *pm, enum policy_verdict *d) {
  struct snapshot *s = acquire(srv->policy);
  if (!s)
    return 0;
  *d = policy_rules_decide(s->rules, m->module, m->version, pm);
  release(s);
  return 1;
}

int policy_check(struct pipe *p, const struct modreq *m,
                 struct policy_outcome *v, struct reason *why) {
  memset(v, 0, sizeof *v);
  struct server *srv = p->srv;
  p->policy = POLICY_CHECKED;
  struct policy_match pm;
  enum policy_verdict d;
  if (!decide(srv, m, &pm, &d))
    return 0;
  if (d == POLICY_DENY)
    return refuse_deny(srv->policy, m->module, m->version, &pm, v, why);
  if (d != POLICY_COOLDOWN)
    return 0;
  time_t pub;
  struct buf times;
  buf_init(&times, LIST_MAX);
  int known = stored_time(srv, m->module_esc, m->version_esc, &pub) == 0 ||
              (times_get(srv, m->module, &times) == 0 &&
               times_find(&times, m->version, &pub) == 0);
  buf_free(&times);
  if (!known) {
    v->pending = 1;
    p->policy = POLICY_PENDING;
    return 0;
  }
  return cooldown_verdict(p, m->module, m->version, &pm, pub, v, why);
}

int policy_request(struct req *r, struct pipe *p, const struct modreq *m,
                   int after) {
  if (!r->srv->policy || (after && p->policy != POLICY_PENDING))
    return 0;
  struct policy_outcome v;
  struct reason why = {{0}};
  int rc = policy_check(p, m, &v, &why);
  if (v.action) {
    r->action = v.action;
    snprintf(r->detail, sizeof r->detail, "%s", v.detail);
  }
  if (!rc)
    return 0;
  r->refused = 1;
  r->cache = "-";
  return http_fail(r, rc, &why);
}

int policy_may_fetch(struct server *srv, const char *module,
                     struct reason *why) {
  if (!srv || !srv->policy || is_private(srv, module))
    return 0;
  struct snapshot *s = acquire(srv->policy);
  if (!s)
    return 0;
  long line = 0;
  int ok = policy_rules_only(s->rules, module, &line);
  release(s);
  if (ok)
    return 0;
  if (why) { /* NULL: a lookup on the side, not a refused fetch */
    count(srv->policy, PD_ONLY);
    log_info("policy: %s is not in the only list (line %ld): not fetched",
             module, line);
  }
  return reason_set(why, ERR_FORBIDDEN,
                    "%s is not in the policy's only list (policy line %ld): "
                    "it is not fetched from upstream",
                    module, line);
}

int policy_on_info(struct pipe *p, const struct modreq *m, const char *info,
                   size_t len, struct reason *why) {
  struct server *srv = p->srv;
  struct policy_match pm;
  enum policy_verdict d;
  if (!decide(srv, m, &pm, &d))
    return 0;
  if (d == POLICY_DENY)
    return refuse_deny(srv->policy, m->module, m->version, &pm, NULL, why);
  if (d != POLICY_COOLDOWN)
    return 0;
  time_t pub;
  if (policy_info_time(info, len, &pub)) {
    if (is_exempt(srv->cfg, p->id))
      return 0;
    count(srv->policy, PD_COOLDOWN);
    return reason_set(why, ERR_FORBIDDEN,
                      "%s@%s has no publication time in its .info, so its "
                      "cooldown cannot be checked (policy line %ld)",
                      m->module, m->version, pm.line);
  }
  times_record(srv, m->module, m->version, pub);
  return cooldown_verdict(p, m->module, m->version, &pm, pub, NULL, why);
}

/* --- the policy hook ------------------------------------------------------ */

static size_t on_hook_data(char *data, size_t size, size_t n, void *arg) {
  struct buf *b = arg;
  size_t len = size * n;
  size_t room = b->max > b->len ? b->max - b->len : 0;
  buf_append(b, data, len < room ? len : room); /* the rest is dropped */
  return len;
}

/* The first line of a hook's answer, printable ASCII only, for a reason. */
static void first_line(const struct buf *b, char *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; b->data && i < b->len && o + 1 < cap && o < 160; i++) {
    char c = b->data[i];
    if (c == '\n' || c == '\r')
      break;
    out[o++] = c >= 0x20 && c < 0x7f ? c : '?';
  }
  while (o && out[o - 1] == ' ')
    o--;
  out[o] = '\0';
}

/* Asks the hook about m's version (h1 of the zip at zip_path). A 200
 * allows; any other 4xx refuses with the first line of the body; no answer,
 * a redirect or a 5xx is the hook being down (policy_hook_failure). Answers
 * are cached per version: allows for good (the version is committed right
 * after), refusals for negative_ttl. */
static int hook_run(struct pipe *p, const struct modreq *m,
                    const char *zip_path, struct reason *why) {
  struct server *srv = p->srv;
  const struct config *cfg = srv->cfg;
  struct policy *pol = srv->policy;
  struct meta *meta = srv->meta;
  char ckey[MODPATH_MAX + VERSION_MAX + 16];
  snprintf(ckey, sizeof ckey, "hook:%s@%s", m->module, m->version);
  struct buf cached;
  buf_init(&cached, 1024);
  time_t at = 0;
  if (meta->ops->cache_get(meta, ckey, &cached, &at) == 0) {
    const char *c = buf_cstr(&cached);
    if (strcmp(c, "200") == 0) {
      buf_free(&cached);
      return 0;
    }
    if (strncmp(c, "403 ", 4) == 0 && time(NULL) - at < cfg->negative_ttl) {
      int rc = reason_set(why, ERR_FORBIDDEN,
                          "%s@%s is refused by the policy hook: %s", m->module,
                          m->version, c + 4);
      buf_free(&cached);
      return rc;
    }
  }
  buf_free(&cached);

  char h1[HASH1_LEN] = "";
  if (zip_path) {
    struct reason hwhy = {{0}};
    int rc = hash1_zip(zip_path, h1, &hwhy);
    if (rc)
      return reason_set(why, rc, "%s", reason_text(&hwhy, rc));
  }
  struct json_object *o = json_object_new_object();
  if (!o)
    return reason_set(why, ERR_NOMEM, "out of memory");
  json_object_object_add(o, "module", json_object_new_string(m->module));
  json_object_object_add(o, "version", json_object_new_string(m->version));
  json_object_object_add(o, "h1", json_object_new_string(h1));
  const char *body = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
  CURL *h = worker_curl(p->w);
  if (!h) {
    json_object_put(o);
    return reason_set(why, ERR_NOMEM, "out of memory");
  }
  struct buf answer;
  buf_init(&answer, HOOK_BODY_MAX);
  struct curl_slist *hl =
      curl_slist_append(NULL, "Content-Type: application/json");
  /* What the handle carries across resets (upstream.c reads it back). */
  char *keep_private = NULL;
  curl_easy_getinfo(h, CURLINFO_PRIVATE, &keep_private);
  curl_easy_reset(h);
  curl_easy_setopt(h, CURLOPT_URL, cfg->policy_hook);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  /* Like an upstream entry, the hook's own host may be internal, and an
   * answer never leads anywhere else: redirects are not followed. */
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, cfg->connect_timeout);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, cfg->policy_hook_timeout);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "gomirror/0.1");
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_hook_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &answer);
  CURLcode cc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_reset(h); /* the body and headers must not outlive this call */
  curl_easy_setopt(h, CURLOPT_PRIVATE, keep_private);
  curl_slist_free_all(hl);
  json_object_put(o);
  p->upstream++;
  char line[200];
  first_line(&answer, line, sizeof line);
  buf_free(&answer);
  char shown[256];
  upstream_redact(cfg->policy_hook, shown, sizeof shown);
  if (cc == CURLE_OK && status == 200) {
    count(pol, PD_HOOK_ALLOW);
    meta->ops->cache_put(meta, ckey, "200", 3);
    return 0;
  }
  if (cc == CURLE_OK && status >= 400 && status < 500 && status != 408 &&
      status != 429) {
    count(pol, PD_HOOK_DENY);
    char rec[220];
    int n = snprintf(rec, sizeof rec, "403 %s",
                     line[0] ? line : "refused (no reason given)");
    if (n > 0)
      meta->ops->cache_put(meta, ckey, rec,
                           (size_t)n < sizeof rec ? (size_t)n : sizeof rec - 1);
    log_info("policy hook refused %s@%s (HTTP %ld): %s", m->module, m->version,
             status, line);
    return reason_set(why, ERR_FORBIDDEN,
                      "%s@%s is refused by the policy hook: %s", m->module,
                      m->version, line[0] ? line : "refused (no reason given)");
  }
  char what[120];
  if (cc != CURLE_OK)
    snprintf(what, sizeof what, "%s", curl_easy_strerror(cc));
  else
    snprintf(what, sizeof what, "HTTP %ld", status);
  if (strcmp(cfg->policy_hook_failure, "open") == 0) {
    count(pol, PD_HOOK_DOWN_OPEN);
    log_warn("policy hook %s unavailable (%s): committing %s@%s anyway "
             "(policy_hook_failure=open)",
             shown, what, m->module, m->version);
    return 0;
  }
  count(pol, PD_HOOK_DOWN_CLOSED);
  log_warn("policy hook %s unavailable (%s): %s@%s not committed", shown, what,
           m->module, m->version);
  return reason_set(why, ERR_UNAVAILABLE,
                    "%s@%s not committed: the policy hook is unavailable (%s) "
                    "and policy_hook_failure=closed",
                    m->module, m->version, what);
}

int policy_on_commit(struct pipe *p, const struct modreq *m, const char *info,
                     size_t info_len, const char *zip_path,
                     struct reason *why) {
  struct server *srv = p->srv;
  if (!srv->policy)
    return 0;
  if (info) {
    int rc = policy_on_info(p, m, info, info_len, why);
    if (rc)
      return rc;
  }
  if (!info || !srv->cfg->policy_hook || !srv->cfg->policy_hook[0])
    return 0;
  return hook_run(p, m, zip_path, why);
}

int policy_wants_zip(const struct server *srv) {
  return srv && srv->policy && srv->cfg->policy_hook &&
         srv->cfg->policy_hook[0];
}

/* --- answers: list, @latest, queries ------------------------------------- */

struct item {
  const char *line;
  size_t len;
  char version[VERSION_MAX + 1];
  enum policy_verdict d;
  struct policy_match pm;
  time_t pub;
  int known; /* pub is known */
  int drop;
};

static int by_version_desc(const void *a, const void *b) {
  const struct item *x = *(const struct item *const *)a;
  const struct item *y = *(const struct item *const *)b;
  return semver_compare(y->version, x->version);
}

/* Filters a list body in place. *young_waived: versions a cooldown would
 * have hidden that the caller's exemption kept; *dropped: how many went. */
static int filter_list(struct pipe *p, const struct modreq *m,
                       struct policy_rules *rules, struct buf *body,
                       int *young_waived, size_t *dropped,
                       struct policy_outcome *v) {
  struct server *srv = p->srv;
  size_t n = 0;
  for (size_t i = 0; body->data && i < body->len; i++)
    n += body->data[i] == '\n';
  n++;
  struct item *items = calloc(n, sizeof *items);
  struct item **cool = calloc(n, sizeof *cool);
  struct buf times, out;
  buf_init(&times, LIST_MAX);
  buf_init(&out, LIST_MAX);
  int rc = items && cool ? 0 : ERR_NOMEM;
  size_t k = 0, nc = 0;
  const char *q = body->data, *end = q ? q + body->len : NULL;
  while (!rc && q && q < end) {
    const char *nl = memchr(q, '\n', (size_t)(end - q));
    size_t l = (size_t)((nl ? nl : end) - q);
    struct item *it = &items[k];
    it->line = q;
    it->len = l;
    size_t vl = 0;
    while (vl < l && q[vl] != ' ' && q[vl] != '\t' && q[vl] != '\r')
      vl++;
    if (vl > 0 && vl <= VERSION_MAX) {
      memcpy(it->version, q, vl);
      it->version[vl] = '\0';
      it->d = policy_rules_decide(rules, m->module, it->version, &it->pm);
      /* "<version> <time>" lines carry the time already. */
      const char *ts = q + vl;
      while (ts < q + l && (*ts == ' ' || *ts == '\t'))
        ts++;
      if (ts < q + l &&
          policy_time_parse(ts, (size_t)(q + l - ts), &it->pub) == 0)
        it->known = 1;
      if (it->d == POLICY_COOLDOWN)
        cool[nc++] = it;
      k++;
    }
    q = nl ? nl + 1 : end;
  }
  int learned = 0;
  if (!rc && nc) {
    int have_times = times_get(srv, m->module, &times) == 0;
    qsort(cool, nc, sizeof *cool, by_version_desc);
    int fetches = 0;
    for (size_t i = 0; i < nc; i++) {
      struct item *it = cool[i];
      if (it->known ||
          (have_times && times_find(&times, it->version, &it->pub) == 0)) {
        it->known = 1;
        continue;
      }
      char vesc[VERSION_ESC_MAX + 1];
      if (modpath_escape_version(it->version, vesc, sizeof vesc))
        continue;
      if (stored_time(srv, m->module_esc, vesc, &it->pub) == 0 ||
          (fetches++ < TIME_FETCHES_MAX &&
           upstream_time(p, m->module, m->module_esc, vesc, &it->pub) == 0)) {
        it->known = 1;
        learned += buf_appendf(&times, "%s %lld\n", it->version,
                               (long long)it->pub) == 0;
      }
    }
  }
  if (learned)
    times_put(srv, m->module, &times);
  int exempt = is_exempt(srv->cfg, p->id);
  time_t now = time(NULL);
  for (size_t i = 0; !rc && i < k; i++) {
    struct item *it = &items[i];
    if (it->d == POLICY_DENY) {
      it->drop = 1;
    } else if (it->d == POLICY_COOLDOWN && it->known &&
               now < it->pub + it->pm.cooldown_s) {
      /* Unknown times stay listed: a request for the version is checked
       * against its .info anyway. */
      if (exempt) {
        if (!*young_waived && v)
          snprintf(v->detail, sizeof v->detail,
                   "policy line %ld: %.120s; %.60s kept for cooldown_exempt",
                   it->pm.line, it->pm.rule, it->version);
        (*young_waived)++;
      } else {
        it->drop = 1;
      }
    }
    if (it->drop)
      (*dropped)++;
    else
      rc = buf_append(&out, it->line, it->len) || buf_append(&out, "\n", 1);
  }
  if (!rc && *dropped) {
    buf_reset(body);
    rc = buf_append(body, out.data ? out.data : "", out.len);
  }
  buf_free(&times);
  buf_free(&out);
  free(items);
  free(cool);
  return rc ? ERR_NOMEM : 0;
}

/* The .info to answer @latest with for version ver: the stored one, else
 * one made of the version and its publication time. */
static int latest_info(struct pipe *p, const struct modreq *m, const char *ver,
                       struct buf *out) {
  struct server *srv = p->srv;
  char vesc[VERSION_ESC_MAX + 1], key[PIPE_KEY_MAX];
  buf_reset(out);
  if (modpath_escape_version(ver, vesc, sizeof vesc) == 0) {
    snprintf(key, sizeof key, "%s/@v/%s.info", m->module_esc, vesc);
    if (storage_get_buf(srv->store, key, out) == 0)
      return 0;
    buf_reset(out);
  }
  struct buf times;
  buf_init(&times, LIST_MAX);
  time_t t;
  int known = times_get(srv, m->module, &times) == 0 &&
              times_find(&times, ver, &t) == 0;
  buf_free(&times);
  if (!known)
    return buf_appendf(out, "{\"Version\":\"%s\"}", ver);
  char ts[40];
  policy_time_format(t, ts, sizeof ts);
  return buf_appendf(out, "{\"Version\":\"%s\",\"Time\":\"%s\"}", ver, ts);
}

int policy_filter(struct pipe *p, const struct modreq *m, struct buf *body,
                  struct policy_outcome *v, struct reason *why) {
  memset(v, 0, sizeof *v);
  struct server *srv = p->srv;
  struct snapshot *s = acquire(srv->policy);
  if (!s)
    return 0;
  int rc = 0, waived = 0;
  size_t dropped = 0;
  if (m->kind == MODREQ_LIST) {
    rc = filter_list(p, m, s->rules, body, &waived, &dropped, v);
    if (!rc && dropped)
      count(srv->policy, PD_FILTERED);
    goto out;
  }
  /* @latest or a query: the .info of the version it resolved to. */
  char ver[VERSION_MAX + 1];
  if (validate_info(body->data, body->len, NULL, 0, ver, sizeof ver, NULL))
    goto out; /* not ours to judge: the pipeline validated it */
  struct policy_match pm;
  enum policy_verdict d = policy_rules_decide(s->rules, m->module, ver, &pm);
  struct reason refusal = {{0}};
  int bad = 0;
  if (d == POLICY_DENY) {
    bad = refuse_deny(srv->policy, m->module, ver, &pm, v, &refusal);
  } else if (d == POLICY_COOLDOWN) {
    time_t pub = time(NULL); /* no Time: as young as can be */
    if (policy_info_time(body->data, body->len, &pub) == 0)
      times_record(srv, m->module, ver, pub);
    bad = cooldown_verdict(p, m->module, ver, &pm, pub, v, &refusal);
  }
  if (!bad)
    goto out;
  if (m->kind != MODREQ_LATEST) {
    rc = reason_set(why, bad, "%s", refusal.text);
    goto out;
  }
  /* @latest: the newest version the caller may have instead. */
  struct modreq *lm = malloc(sizeof *lm);
  struct buf list;
  buf_init(&list, LIST_MAX);
  if (!lm) {
    rc = reason_set(why, ERR_NOMEM, "out of memory");
    goto out;
  }
  *lm = *m;
  lm->kind = MODREQ_LIST;
  struct reason lwhy = {{0}};
  char pick[VERSION_MAX + 1];
  int lrc = pipe_resolve(p, lm, &list, &lwhy);
  if (!lrc)
    lrc = filter_list(p, lm, s->rules, &list, &waived, &dropped, NULL);
  if (!lrc)
    lrc = versions_latest(list.data, list.len, pick, sizeof pick);
  if (!lrc)
    lrc = latest_info(p, m, pick, body);
  if (lrc) {
    rc = reason_set(why, bad,
                    "%s@latest: no version is allowed by the policy "
                    "(newest: %s)",
                    m->module, refusal.text);
  } else {
    count(srv->policy, PD_FILTERED);
    v->refused = 0;
    v->action = NULL;
    log_debug("policy: %s@latest is %s instead of %s", m->module, pick, ver);
  }
  buf_free(&list);
  free(lm);
out:
  release(s);
  if (!rc && waived && !v->action) {
    v->exempt = 1;
    v->action = "cooldown_exempt";
    count(srv->policy, PD_EXEMPT);
  }
  return rc;
}

int policy_answer(struct req *r, struct pipe *p, const struct modreq *m,
                  struct buf *body, struct reason *why) {
  if (!r->srv->policy)
    return 0;
  struct policy_outcome v;
  int rc = policy_filter(p, m, body, &v, why);
  if (v.action) {
    r->action = v.action;
    snprintf(r->detail, sizeof r->detail, "%s", v.detail);
  }
  if (rc)
    r->refused = 1;
  return rc;
}

int policy_keeps(struct server *srv, const char *module, const char *version,
                 long *line) {
  struct snapshot *s = acquire(srv ? srv->policy : NULL);
  if (!s)
    return 0;
  int keep = policy_rules_keep(s->rules, module, version, line);
  release(s);
  return keep;
}

/* --- the command line and /metrics -------------------------------------------
 */

int policy_explain(struct pipe *p, const char *module, const char *version,
                   struct buf *out, struct reason *why) {
  struct server *srv = p->srv;
  char esc[MODPATH_ESC_MAX + 1], vesc[VERSION_ESC_MAX + 1];
  int rc = modpath_check_path(module, why);
  if (!rc)
    rc = modpath_check_version(module, version, 1, why);
  if (rc)
    return rc;
  if (modpath_escape(module, esc, sizeof esc) ||
      modpath_escape_version(version, vesc, sizeof vesc))
    return reason_set(why, ERR_INVALID, "cannot escape %s@%s", module, version);
  struct snapshot *s = acquire(srv->policy);
  if (!s) {
    buf_appendf(out, "%s@%s: allowed (no policy file is configured)\n", module,
                version);
    return 0;
  }
  struct policy_match pm;
  enum policy_verdict d = policy_rules_decide(s->rules, module, version, &pm);
  long only_line = 0, keep_line = 0;
  int only = is_private(srv, module) ||
             policy_rules_only(s->rules, module, &only_line);
  int keep = policy_rules_keep(s->rules, module, version, &keep_line);
  release(s);
  int refused = 0;
  switch (d) {
  case POLICY_DENY:
    refused = 1;
    buf_appendf(out, "%s@%s: denied by line %ld: %s \"%s\"\n", module, version,
                pm.line, pm.rule, pm.reason);
    break;
  case POLICY_ALLOW:
    if (pm.line)
      buf_appendf(out, "%s@%s: allowed by line %ld: %s\n", module, version,
                  pm.line, pm.rule);
    else
      buf_appendf(out, "%s@%s: allowed (no rule matches)\n", module, version);
    break;
  case POLICY_COOLDOWN: {
    time_t pub;
    char hold[32], at[40], until[40];
    policy_duration_format(pm.cooldown_s, hold, sizeof hold);
    int known = stored_time(srv, esc, vesc, &pub) == 0 ||
                upstream_time(p, module, esc, vesc, &pub) == 0;
    if (!known) {
      refused = 1;
      buf_appendf(out,
                  "%s@%s: %s cooldown by line %ld: %s; publication time "
                  "unknown (not stored, and the upstream has no .info for "
                  "it): held back\n",
                  module, version, hold, pm.line, pm.rule);
      break;
    }
    policy_time_format(pub, at, sizeof at);
    policy_time_format(pub + pm.cooldown_s, until, sizeof until);
    refused = time(NULL) < pub + pm.cooldown_s;
    buf_appendf(out,
                "%s@%s: %s cooldown by line %ld: %s; published %s, %s %s\n",
                module, version, hold, pm.line, pm.rule, at,
                refused ? "held back until" : "allowed since", until);
    if (refused && srv->cfg->cooldown_exempt && srv->cfg->cooldown_exempt[0])
      buf_appendf(out, "  (cooldown_exempt may fetch it: %s)\n",
                  srv->cfg->cooldown_exempt);
    break;
  }
  }
  if (!only)
    buf_appendf(out,
                "  only (line %ld): %s is not fetched from upstream (stored "
                "versions are still served)\n",
                only_line, module);
  if (keep)
    buf_appendf(out, "  keep (line %ld): garbage collection never removes it\n",
                keep_line);
  return refused;
}

void policy_metrics(struct policy *pol, struct buf *out) {
  buf_appendf(out,
              "# HELP gomirror_policy_decisions_total Version policy "
              "decisions: versions refused by a deny rule or a cooldown, "
              "cooldowns waived for cooldown_exempt, list and @latest "
              "answers with versions taken out, upstream fetches refused by "
              "only, and the policy hook's answers.\n"
              "# TYPE gomirror_policy_decisions_total counter\n");
  for (int i = 0; i < PD__COUNT; i++)
    buf_appendf(out, "gomirror_policy_decisions_total{decision=\"%s\"} %lld\n",
                decision_names[i],
                pol ? (long long)atomic_load(&pol->counts[i]) : 0LL);
  buf_appendf(out,
              "# HELP gomirror_policy_reloads_total Policy files re-read "
              "after a change, and changes that did not parse (the last good "
              "policy stays).\n"
              "# TYPE gomirror_policy_reloads_total counter\n"
              "gomirror_policy_reloads_total{result=\"ok\"} %lld\n"
              "gomirror_policy_reloads_total{result=\"error\"} %lld\n",
              pol ? (long long)atomic_load(&pol->reloads) : 0LL,
              pol ? (long long)atomic_load(&pol->reload_errors) : 0LL);
}
