/* Access control on the request path; see access.h. */
#include "access.h"

#include "auth/audit.h"
#include "auth/auth.h"
#include "auth/header.h"
#include "auth/ratelimit.h"
#include "auth/tokens.h"
#include "core/config.h"
#include "core/err.h"
#include "http.h"
#include "mod/private.h"
#include "server.h"

#include <civetweb.h>
#include <math.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

static int id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

void access_begin(struct req *r) {
  struct server *srv = r->srv;
  const struct mg_request_info *ri = mg_get_request_info(r->conn);
  int trusted =
      srv->trusted && cidr_list_contains(srv->trusted, ri->remote_addr);
  client_address(srv->trusted, ri->remote_addr,
                 trusted ? http_header(r, "X-Forwarded-For") : NULL, r->client,
                 sizeof r->client);
  /* A trusted proxy's request id ties its log lines to ours. */
  const char *in = trusted ? http_header(r, "X-Request-Id") : NULL;
  size_t n = in ? strlen(in) : 0;
  int ok = n > 0 && n < sizeof r->request_id;
  for (size_t i = 0; ok && i < n; i++)
    ok = id_char(in[i]);
  if (ok) {
    memcpy(r->request_id, in, n + 1);
    return;
  }
  unsigned long long seq =
      atomic_fetch_add_explicit(&srv->request_seq, 1, memory_order_relaxed);
  snprintf(r->request_id, sizeof r->request_id, "%s-%llx", srv->boot_id, seq);
}

/* The host name a .netrc line names: the Host header without its port,
 * when it is a plain name; else a placeholder. */
static void netrc_host(struct req *r, char *out, size_t cap) {
  const char *h = http_header(r, "Host");
  size_t n = h ? strcspn(h, ":") : 0;
  int ok = n > 0 && n < cap && n < 254;
  for (size_t i = 0; ok && i < n; i++)
    ok = id_char(h[i]) && h[i] != '_';
  snprintf(out, cap, "%.*s", ok ? (int)n : 0, ok ? h : "");
  if (!ok)
    snprintf(out, cap, "gomirror.example.com");
}

/* 401: WWW-Authenticate and a line saying what to add to .netrc. */
static int unauthorized(struct req *r, const char *action, const char *why) {
  char host[256], line[REASON_MAX + 200];
  netrc_host(r, host, sizeof host);
  if (why)
    snprintf(line, sizeof line,
             "authentication failed: %s; check the 'machine %s' line of "
             "~/.netrc\n",
             why, host);
  else
    snprintf(line, sizeof line,
             "authentication required: add 'machine %s login USER password "
             "TOKEN' to ~/.netrc (the go command sends it over https only)\n",
             host);
  r->action = action;
  r->refused = 1;
  r->cache = "-";
  if (why)
    snprintf(r->detail, sizeof r->detail, "%s", why);
  return http_send(r, 401, CT_TEXT, CACHE_NONE,
                   "WWW-Authenticate: Basic realm=\"gomirror\"\r\n", line,
                   strlen(line));
}

/* The user name a failed Basic login tried, for the audit log, unless it
 * could be a secret typed into the wrong field. */
static void attempted_user(struct req *r) {
  struct auth_credential cred;
  if (auth_parse_header(http_header(r, "Authorization"), &cred, NULL) == 0 &&
      cred.scheme == AUTH_SCHEME_BASIC &&
      auth_name_ok(cred.user, strlen(cred.user)) &&
      strncmp(cred.user, TOKEN_PREFIX, sizeof TOKEN_PREFIX - 1) != 0)
    memcpy(r->id.name, cred.user, strlen(cred.user) + 1); /* < AUTH_NAME_MAX */
  auth_credential_wipe(&cred);
}

static void rate_key(const struct req *r, char *out, size_t cap) {
  switch (r->id.source) {
  case AUTH_ANONYMOUS:
    snprintf(out, cap, "addr:%s", r->client);
    break;
  case AUTH_TOKEN:
    snprintf(out, cap, "token:%s", r->id.name);
    break;
  default:
    snprintf(out, cap, "user:%s", r->id.name);
  }
}

int access_admit(struct req *r) {
  struct server *srv = r->srv;
  if (srv->auth) {
    struct reason why = {{0}};
    int cached = 0;
    int rc =
        auth_identify(srv->auth, r->w->auth, http_header(r, "Authorization"),
                      &r->id, &cached, &why);
    if (rc == ERR_UNAVAILABLE) {
      r->action = "auth_unavailable";
      r->refused = 1;
      snprintf(r->detail, sizeof r->detail, "%s", why.text);
      return !http_error(r, 503,
                         why.text[0] ? why.text
                                     : "the identity provider is "
                                       "unavailable; try again later");
    }
    if (rc) {
      atomic_fetch_add(&srv->metrics.auth_failed, 1);
      attempted_user(r);
      return !unauthorized(r, "auth_failed", reason_text(&why, rc));
    }
  }
  if (!srv->limits)
    return 1;
  r->bw = ratelimit_bandwidth(srv->limits, &r->id);
  char key[CLIENTADDR_MAX + AUTH_NAME_MAX + 16];
  rate_key(r, key, sizeof key);
  struct rate_outcome o;
  if (ratelimit_take(srv->limits, key, &r->id, &o) == 0)
    return 1;
  atomic_fetch_add(&srv->metrics.rate_limited, 1);
  long after = (long)ceil(o.retry_s);
  if (after < 1)
    after = 1;
  char extra[64], line[REASON_MAX];
  snprintf(extra, sizeof extra, "Retry-After: %ld\r\n", after);
  int n = snprintf(line, sizeof line,
                   "rate limit exceeded: %s may make %g requests per second "
                   "(bursts of %g); retry in %ld s\n",
                   r->id.source == AUTH_ANONYMOUS ? r->client
                                                  : identity_label(&r->id),
                   o.rate, o.burst, after);
  r->action = "rate_limited";
  r->refused = 1;
  snprintf(r->detail, sizeof r->detail, "%g/s burst %g%s", o.rate, o.burst,
           o.shared ? " (shared)" : " (this replica)");
  http_send(r, 429, CT_TEXT, CACHE_NONE, extra, line,
            n > 0 && (size_t)n < sizeof line ? (size_t)n : strlen(line));
  return 0;
}

int access_module(struct req *r, const char *module, const char *version,
                  const char *action) {
  snprintf(r->module, sizeof r->module, "%s", module);
  snprintf(r->version, sizeof r->version, "%s", version ? version : "");
  r->action = action;
  struct server *srv = r->srv;
  if (!srv->auth)
    return 1;
  struct rule_match m;
  if (auth_may_read(srv->auth, &r->id, module, &m))
    return 1;
  atomic_fetch_add(&srv->metrics.denied, 1);
  if (m.line)
    snprintf(r->detail, sizeof r->detail,
             "auth_rules line %ld: %s %.60s %.120s", m.line,
             m.allow ? "allow" : "deny", m.who, m.patterns);
  else
    snprintf(r->detail, sizeof r->detail, "no rule allows it");
  if (r->id.source == AUTH_ANONYMOUS) {
    unauthorized(r, "auth_required", NULL);
    return 0;
  }
  /* The same line whether or not the module exists. */
  char line[REASON_MAX + RULE_TEXT_MAX * 2];
  int n =
      snprintf(line, sizeof line, "access denied: %s may not read %s (%s)\n",
               identity_label(&r->id), module, r->detail);
  r->action = "denied";
  r->refused = 1;
  r->cache = "-";
  http_send(r, 403, CT_TEXT, CACHE_NONE, NULL, line,
            n > 0 && (size_t)n < sizeof line ? (size_t)n : strlen(line));
  return 0;
}

int access_any(struct req *r) {
  struct server *srv = r->srv;
  if (!srv->auth || auth_may_use(srv->auth, &r->id))
    return 1;
  atomic_fetch_add(&srv->metrics.denied, 1);
  if (r->id.source == AUTH_ANONYMOUS) {
    unauthorized(r, "auth_required", NULL);
    return 0;
  }
  char line[REASON_MAX];
  snprintf(line, sizeof line, "access denied: no rule allows %s anything",
           identity_label(&r->id));
  r->action = "denied";
  r->refused = 1;
  return !http_error(r, 403, line);
}

int access_identified(struct req *r) {
  if (r->id.source != AUTH_ANONYMOUS)
    return 1;
  unauthorized(r, "auth_required", NULL);
  return 0;
}

int access_admin_token(struct req *r) {
  const char *want = r->srv->cfg->admin_token;
  const char *h = http_header(r, "Authorization");
  if (!want || !want[0] || !h || strncmp(h, "Bearer ", 7) != 0)
    return 0;
  h += 7;
  size_t n = strlen(want);
  if (strlen(h) != n || CRYPTO_memcmp(h, want, n) != 0)
    return 0;
  r->id.source = AUTH_ADMIN_TOKEN;
  snprintf(r->id.name, sizeof r->id.name, "admin_token");
  return 1;
}

int access_admin(struct req *r) {
  struct server *srv = r->srv;
  const struct config *c = srv->cfg;
  if (r->id.source == AUTH_ADMIN_TOKEN ||
      (srv->auth && auth_is_admin(srv->auth, &r->id)))
    return 1;
  r->refused = 1;
  r->action = r->action ? r->action : "admin";
  int has_admins = srv->auth && c->auth_admins && c->auth_admins[0];
  if ((!c->admin_token || !c->admin_token[0]) && !has_admins)
    return !http_error(r, 404,
                       "admin endpoints are off (set admin_token or "
                       "auth_admins)");
  if (r->id.source == AUTH_ANONYMOUS) {
    if (!srv->auth)
      return !http_error(r, 401, "admin token missing or wrong");
    return !unauthorized(r, "auth_required", NULL);
  }
  char line[REASON_MAX];
  snprintf(line, sizeof line,
           "access denied: %s is not an administrator (auth_admins)",
           identity_label(&r->id));
  r->action = "denied";
  return !http_error(r, 403, line);
}

int access_is_private(const struct req *r, const char *module) {
  const char *p = r->srv->cfg->private_patterns;
  return p && p[0] && private_match(p, module) == 1;
}

void access_finish(struct req *r, double duration_ms) {
  struct server *srv = r->srv;
  if (!srv->audit || !r->action)
    return;
  /* A waived cooldown is written like a refusal: it is an exception. */
  if (!r->refused && !srv->cfg->audit_public &&
      strcmp(r->action, "cooldown_exempt") != 0 &&
      (!r->module[0] || !access_is_private(r, r->module)))
    return;
  struct audit_event e = {
      .request_id = r->request_id,
      .user = identity_label(&r->id),
      .source = identity_source_name(r->id.source),
      .client = r->client,
      .action = r->action,
      .path = r->path,
      .module = r->module,
      .version = r->version,
      .status = r->status,
      .bytes = r->bytes,
      .duration_ms = duration_ms,
      .cache = r->cache,
      .detail = r->detail,
  };
  /* A failed login's attempted name is not an identity. */
  if (r->id.source == AUTH_ANONYMOUS && r->id.name[0])
    e.user = r->id.name;
  audit_write(srv->audit, &e);
}
