/* Access control: the identity files as one snapshot (re-read by a
 * background thread), the credential cache in front of the slow checks
 * (bcrypt, LDAP), the rules and the admin list. */
#include "auth.h"

#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "credcache.h"
#include "groups.h"
#include "header.h"
#include "htpasswd.h"
#include "ldapauth.h"
#include "textfile.h"
#include "tokens.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CACHE_CAPACITY 20000
/* A wrong credential is remembered this long at most, so a typo corrected
 * in .netrc works at once and a retry storm still costs one check. */
#define NEGATIVE_TTL 10.0

enum file_kind { F_HTPASSWD, F_TOKENS, F_GROUPS, F_RULES, F__COUNT };
static const char *const file_keys[F__COUNT] = {"auth_htpasswd", "auth_tokens",
                                                "auth_groups", "auth_rules"};

/* Everything parsed from the files at one moment; immutable once built,
 * shared by reference count. */
struct snap {
  atomic_int refs;
  uint64_t generation;
  struct htpasswd *htpasswd;
  struct tokens *tokens;
  struct groups *groups;
  struct rules *rules;
};

struct watched {
  const char *path; /* NULL: not configured */
  struct file_sig sig;
  char *good; /* the last text that parsed */
  size_t good_len;
  struct file_sig bad_sig; /* the version that failed, reported once */
};

struct auth {
  const struct config *cfg;
  struct watched files[F__COUNT];
  pthread_rwlock_t lock; /* guards snap (the pointer) */
  struct snap *snap;
  _Atomic uint64_t generation; /* snap's, readable without the lock */
  struct credcache *cache;
  struct ldapauth_config ldap;
  int have_ldap;
  double ttl;
  pthread_t reloader;
  pthread_mutex_t stop_mu;
  pthread_cond_t stop_cv;
  int stop, started;
  atomic_llong hits, misses, verified, failures, unavailable, reloads,
      reload_errors;
};

struct auth_thread {
  struct credcache_hasher *hasher;
};

/* --- snapshots ------------------------------------------------------------ */

static void snap_free(struct snap *s) {
  if (!s)
    return;
  htpasswd_free(s->htpasswd);
  tokens_free(s->tokens);
  groups_free(s->groups);
  rules_free(s->rules);
  free(s);
}

static void snap_put(struct snap *s) {
  if (s && atomic_fetch_sub(&s->refs, 1) == 1)
    snap_free(s);
}

static struct snap *snap_get(struct auth *a) {
  pthread_rwlock_rdlock(&a->lock);
  struct snap *s = a->snap;
  atomic_fetch_add(&s->refs, 1);
  pthread_rwlock_unlock(&a->lock);
  return s;
}

/* Parses text as a file of kind into s. */
static int parse_into(struct snap *s, enum file_kind k, const char *text,
                      size_t len, const char *name, struct reason *why) {
  switch (k) {
  case F_HTPASSWD:
    return htpasswd_parse(text, len, name, &s->htpasswd, why);
  case F_TOKENS:
    return tokens_parse(text, len, name, &s->tokens, why);
  case F_GROUPS:
    return groups_parse(text, len, name, &s->groups, why);
  case F_RULES:
    return rules_parse(text, len, name, &s->rules, why);
  case F__COUNT:
    break;
  }
  return ERR_INVALID;
}

/* Builds a snapshot from every configured file. At start-up (initial) any
 * failure is returned; afterwards a file that fails keeps its last good
 * text and the failure is logged once per version of the file. *changed
 * gets a bit (1 << kind) for each file whose content was taken anew. */
static int build(struct auth *a, int initial, uint64_t generation,
                 struct snap **out, unsigned *changed, struct reason *why) {
  *out = NULL;
  *changed = 0;
  struct snap *s = calloc(1, sizeof *s);
  if (!s)
    return ERR_NOMEM;
  atomic_init(&s->refs, 1);
  s->generation = generation;
  for (int k = 0; k < F__COUNT; k++) {
    struct watched *w = &a->files[k];
    if (!w->path)
      continue;
    struct file_sig sig;
    file_sig_get(w->path, &sig);
    int fresh = initial || file_sig_changed(&sig, &w->sig);
    char *text = NULL;
    size_t len = 0;
    struct reason fwhy = {{0}};
    int rc = 0;
    if (fresh) {
      rc = textfile_read(w->path, &text, &len, &fwhy);
      if (!rc)
        rc = parse_into(s, (enum file_kind)k, text, len, w->path, &fwhy);
    }
    if (fresh && !rc) {
      free(w->good);
      w->good = text;
      w->good_len = len;
      w->sig = sig;
      memset(&w->bad_sig, 0, sizeof w->bad_sig);
      *changed |= 1u << k;
      continue;
    }
    free(text);
    if (fresh && initial) {
      reason_set(why, rc == ERR_NOMEM ? rc : ERR_CONFIG, "%s: %s", file_keys[k],
                 reason_text(&fwhy, rc));
      snap_free(s);
      return rc == ERR_NOMEM ? rc : ERR_CONFIG;
    }
    if (fresh && file_sig_changed(&sig, &w->bad_sig)) {
      w->bad_sig = sig;
      atomic_fetch_add(&a->reload_errors, 1);
      log_error("%s: keeping the last good version: %s", file_keys[k],
                reason_text(&fwhy, rc));
    }
    /* The last good text parsed before, so it parses again. */
    rc = parse_into(s, (enum file_kind)k, w->good ? w->good : "", w->good_len,
                    w->path, &fwhy);
    if (rc) {
      snap_free(s);
      return rc;
    }
  }
  if (!s->rules) {
    int rc = rules_default(&s->rules);
    if (rc) {
      snap_free(s);
      return rc;
    }
  }
  *out = s;
  return 0;
}

static void *reload_main(void *arg) {
  struct auth *a = arg;
  pthread_mutex_lock(&a->stop_mu);
  while (!a->stop) {
    struct timespec ts;
    clock_deadline_in(&ts, 1000);
    pthread_cond_timedwait(&a->stop_cv, &a->stop_mu, &ts);
    if (a->stop)
      break;
    pthread_mutex_unlock(&a->stop_mu);
    struct snap *s = NULL;
    unsigned changed = 0;
    /* Only this thread swaps snapshots, so it may read a->snap unlocked. */
    uint64_t gen = a->snap->generation;
    if (build(a, 0, gen, &s, &changed, NULL) == 0 && changed) {
      /* New identities drop every cached credential; new rules do not
       * need to (they are applied per request), so an edit of the rules
       * while LDAP is down does not lock everyone out. */
      int identities = (changed & ~(1u << F_RULES)) != 0;
      if (identities)
        s->generation = ++gen;
      pthread_rwlock_wrlock(&a->lock);
      struct snap *old = a->snap;
      a->snap = s;
      atomic_store(&a->generation, gen);
      pthread_rwlock_unlock(&a->lock);
      snap_put(old);
      atomic_fetch_add(&a->reloads, 1);
      log_info("access control files reloaded (%zu htpasswd users, %zu "
               "tokens, %zu groups, %zu rules)%s",
               htpasswd_count(s->htpasswd), tokens_count(s->tokens),
               groups_count(s->groups), rules_count(s->rules),
               identities ? "; cached credentials dropped" : "");
    } else {
      snap_free(s);
    }
    pthread_mutex_lock(&a->stop_mu);
  }
  pthread_mutex_unlock(&a->stop_mu);
  return NULL;
}

/* --- life cycle ----------------------------------------------------------- */

static const char *opt(const char *s) {
  return s && s[0] ? s : NULL;
}

int auth_new(const struct config *c, struct auth **out, struct reason *why) {
  *out = NULL;
  const char *paths[F__COUNT] = {opt(c->auth_htpasswd), opt(c->auth_tokens),
                                 opt(c->auth_groups), opt(c->auth_rules)};
  int have_ldap = opt(c->auth_ldap_url) != NULL;
  if (!paths[F_HTPASSWD] && !paths[F_TOKENS] && !paths[F_RULES] && !have_ldap) {
    if (paths[F_GROUPS])
      return reason_set(why, ERR_CONFIG,
                        "auth_groups needs an identity source (auth_htpasswd, "
                        "auth_tokens or auth_ldap_url)");
    return 0;
  }
  struct auth *a = calloc(1, sizeof *a);
  if (!a)
    return ERR_NOMEM;
  a->cfg = c;
  a->ttl = (double)c->auth_cache_ttl;
  pthread_rwlock_init(&a->lock, NULL);
  pthread_mutex_init(&a->stop_mu, NULL);
  pthread_cond_init(&a->stop_cv, NULL);
  for (int k = 0; k < F__COUNT; k++)
    a->files[k].path = paths[k];
  a->have_ldap = have_ldap;
  a->ldap = (struct ldapauth_config){
      .url = c->auth_ldap_url,
      .bind_dn = c->auth_ldap_bind_dn,
      .bind_password = c->auth_ldap_bind_password,
      .user_base = c->auth_ldap_user_base,
      .user_filter = c->auth_ldap_user_filter,
      .group_base = c->auth_ldap_group_base,
      .group_filter = c->auth_ldap_group_filter,
      .ca_file = c->auth_ldap_ca_file,
      .starttls = c->auth_ldap_starttls,
      .timeout_s = c->auth_ldap_timeout,
  };
  unsigned changed;
  if (have_ldap && c->auth_ldap_starttls &&
      strncmp(c->auth_ldap_url, "ldaps://", 8) == 0) {
    auth_free(a);
    return reason_set(why, ERR_CONFIG,
                      "auth_ldap_starttls is for ldap:// URLs; ldaps:// is TLS "
                      "from the start");
  }
  atomic_init(&a->generation, 1);
  int rc = build(a, 1, 1, &a->snap, &changed, why);
  if (!rc)
    rc = credcache_new(CACHE_CAPACITY, &a->cache);
  if (!rc && pthread_create(&a->reloader, NULL, reload_main, a) != 0)
    rc = reason_set(why, ERR_NOMEM, "cannot start the auth reload thread");
  else if (!rc)
    a->started = 1;
  if (rc) {
    auth_free(a);
    return rc;
  }
  *out = a;
  return 0;
}

void auth_free(struct auth *a) {
  if (!a)
    return;
  if (a->started) {
    pthread_mutex_lock(&a->stop_mu);
    a->stop = 1;
    pthread_cond_signal(&a->stop_cv);
    pthread_mutex_unlock(&a->stop_mu);
    pthread_join(a->reloader, NULL);
  }
  snap_put(a->snap);
  for (int k = 0; k < F__COUNT; k++)
    free(a->files[k].good);
  credcache_free(a->cache);
  pthread_rwlock_destroy(&a->lock);
  pthread_mutex_destroy(&a->stop_mu);
  pthread_cond_destroy(&a->stop_cv);
  free(a);
}

void auth_reload(struct auth *a) {
  pthread_mutex_lock(&a->stop_mu);
  pthread_cond_signal(&a->stop_cv); /* the reloader wakes and looks */
  pthread_mutex_unlock(&a->stop_mu);
}

void auth_describe(const struct auth *a, char *out, size_t cap) {
  if (!a) {
    snprintf(out, cap,
             "access control is off: anyone who reaches gomirror reads every "
             "module it can fetch (set auth_htpasswd, auth_tokens or "
             "auth_ldap_url)");
    return;
  }
  const struct snap *s = a->snap;
  snprintf(out, cap,
           "access control is on: %zu htpasswd users, %zu API tokens, LDAP "
           "%s, %zu groups, %s (%zu rules), credentials cached %lds",
           htpasswd_count(s->htpasswd), tokens_count(s->tokens),
           a->have_ldap ? "on" : "off", groups_count(s->groups),
           a->files[F_RULES].path ? a->files[F_RULES].path : "default rules",
           rules_count(s->rules), (long)a->ttl);
}

struct auth_thread *auth_thread_new(struct auth *a) {
  struct auth_thread *t = calloc(1, sizeof *t);
  if (!t)
    return NULL;
  t->hasher = credcache_hasher_new(a->cache);
  if (!t->hasher) {
    free(t);
    return NULL;
  }
  return t;
}

void auth_thread_free(struct auth_thread *t) {
  if (!t)
    return;
  credcache_hasher_free(t->hasher);
  free(t);
}

/* --- identification ------------------------------------------------------- */

static void token_identity(const struct token_entry *e, struct identity *id) {
  id->source = AUTH_TOKEN;
  snprintf(id->name, sizeof id->name, "%s", e->name);
  identity_add_groups(id, e->groups);
}

/* The slow path: checks cred against the files and LDAP. */
static int verify(struct auth *a, struct snap *s,
                  const struct auth_credential *cred, struct identity *id,
                  struct reason *why) {
  const struct token_entry *te =
      tokens_find(s->tokens, cred->secret, cred->secret_len);
  if (te) {
    token_identity(te, id);
    return 0;
  }
  if (cred->scheme == AUTH_SCHEME_BEARER)
    return reason_set(why, ERR_UNAUTHORIZED, "unknown or revoked token");
  if (!auth_name_ok(cred->user, strlen(cred->user)))
    return reason_set(why, ERR_UNAUTHORIZED, "unknown user or wrong password");
  int ok = s->htpasswd ? htpasswd_verify(s->htpasswd, cred->user, cred->secret)
                       : ERR_NOT_FOUND;
  if (ok == 1) {
    id->source = AUTH_HTPASSWD;
    snprintf(id->name, sizeof id->name, "%.*s", AUTH_NAME_MAX - 1, cred->user);
    return 0;
  }
  if (ok == ERR_NOT_FOUND && a->have_ldap) {
    char groups[AUTH_GROUPS_MAX] = "", name[AUTH_NAME_MAX] = "";
    int rc = ldapauth_check(&a->ldap, cred->user, cred->secret, name,
                            sizeof name, groups, sizeof groups, why);
    if (rc)
      return rc;
    id->source = AUTH_LDAP;
    /* The directory's spelling of the name (uid ignores case). */
    snprintf(id->name, sizeof id->name, "%.*s", AUTH_NAME_MAX - 1, name);
    identity_add_groups(id, groups);
    return 0;
  }
  if (ok == ERR_NOT_FOUND)
    htpasswd_dummy(s->htpasswd, cred->secret);
  return reason_set(why, ok == ERR_NOMEM ? ERR_NOMEM : ERR_UNAUTHORIZED,
                    "unknown user or wrong password");
}

int auth_identify(struct auth *a, struct auth_thread *t, const char *header,
                  struct identity *id, int *cached, struct reason *why) {
  memset(id, 0, sizeof *id);
  *cached = 0;
  struct auth_credential cred;
  int rc = auth_parse_header(header, &cred, why);
  if (rc) {
    atomic_fetch_add(&a->failures, 1);
    return ERR_UNAUTHORIZED;
  }
  if (cred.scheme == AUTH_SCHEME_NONE)
    return 0; /* anonymous */
  unsigned char key[CREDCACHE_KEY_LEN];
  uint64_t gen = atomic_load_explicit(&a->generation, memory_order_relaxed);
  double now = clock_now_s();
  int have_key = a->ttl > 0 && credcache_key(t->hasher, &cred, key) == 0;
  if (have_key) {
    int got = credcache_get(a->cache, key, gen, now, id);
    if (got == 1) {
      atomic_fetch_add_explicit(&a->hits, 1, memory_order_relaxed);
      *cached = 1;
      auth_credential_wipe(&cred);
      return 0;
    }
    if (got == 2) {
      atomic_fetch_add(&a->failures, 1);
      auth_credential_wipe(&cred);
      *cached = 1;
      return reason_set(why, ERR_UNAUTHORIZED,
                        "unknown user or wrong password");
    }
  }
  atomic_fetch_add_explicit(&a->misses, 1, memory_order_relaxed);
  struct snap *s = snap_get(a);
  rc = verify(a, s, &cred, id, why);
  if (!rc)
    groups_apply(s->groups, id);
  if (have_key && (rc == 0 || rc == ERR_UNAUTHORIZED))
    credcache_put(a->cache, key, s->generation, now,
                  rc ? (a->ttl < NEGATIVE_TTL ? a->ttl : NEGATIVE_TTL) : a->ttl,
                  rc ? NULL : id);
  snap_put(s);
  auth_credential_wipe(&cred);
  if (!rc)
    atomic_fetch_add(&a->verified, 1);
  else if (rc == ERR_UNAUTHORIZED)
    atomic_fetch_add(&a->failures, 1);
  else if (rc == ERR_UNAVAILABLE)
    atomic_fetch_add(&a->unavailable, 1);
  if (rc)
    memset(id, 0, sizeof *id);
  return rc;
}

/* --- authorization ---------------------------------------------------------
 */

int auth_may_read(struct auth *a, const struct identity *id, const char *module,
                  struct rule_match *m) {
  pthread_rwlock_rdlock(&a->lock);
  int ok = rules_decide(a->snap->rules, id, module, m);
  pthread_rwlock_unlock(&a->lock);
  return ok;
}

int auth_may_use(struct auth *a, const struct identity *id) {
  pthread_rwlock_rdlock(&a->lock);
  int ok = rules_allow_any(a->snap->rules, id);
  pthread_rwlock_unlock(&a->lock);
  return ok;
}

int auth_is_admin(struct auth *a, const struct identity *id) {
  if (id->source == AUTH_ANONYMOUS)
    return 0;
  for (const char *p = a->cfg->auth_admins; p && *p;) {
    size_t n = strcspn(p, ",");
    if (n > 6 && strncmp(p, "group:", 6) == 0) {
      char g[AUTH_NAME_MAX];
      if (n - 6 < sizeof g) {
        memcpy(g, p + 6, n - 6);
        g[n - 6] = '\0';
        if (identity_in_group(id, g))
          return 1;
      }
    } else if (id->source != AUTH_TOKEN && strlen(id->name) == n &&
               memcmp(p, id->name, n) == 0) {
      return 1;
    } else if (id->source == AUTH_TOKEN && n > 6 &&
               strncmp(p, "token:", 6) == 0 && strlen(id->name) == n - 6 &&
               memcmp(p + 6, id->name, n - 6) == 0) {
      return 1;
    }
    p += n;
    if (*p == ',')
      p++;
  }
  return 0;
}

void auth_stats(struct auth *a, struct auth_stats *out) {
  memset(out, 0, sizeof *out);
  if (!a)
    return;
  out->cache_hits = atomic_load(&a->hits);
  out->cache_misses = atomic_load(&a->misses);
  out->verified = atomic_load(&a->verified);
  out->failures = atomic_load(&a->failures);
  out->unavailable = atomic_load(&a->unavailable);
  out->reloads = atomic_load(&a->reloads);
  out->reload_errors = atomic_load(&a->reload_errors);
  out->cached = credcache_size(a->cache);
}
