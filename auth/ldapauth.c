/* LDAP authentication; see ldapauth.h. One connection per check: the user
 * bind changes the connection's identity, and checks are rare (the
 * credential cache absorbs repeats). */
#include "ldapauth.h"

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "identity.h"

#include <errno.h>
#include <fcntl.h>
#include <ldap.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* RFC 4515: '*', '(', ')', '\\' and NUL become \\xx. */
static int escape_into(const char *v, char *out, size_t cap, size_t *o) {
  static const char hex[] = "0123456789abcdef";
  for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
    int esc = *p == '*' || *p == '(' || *p == ')' || *p == '\\' || *p < 0x20;
    size_t need = esc ? 3 : 1;
    if (*o + need >= cap)
      return ERR_TOO_LARGE;
    if (esc) {
      out[(*o)++] = '\\';
      out[(*o)++] = hex[*p >> 4];
      out[(*o)++] = hex[*p & 15];
    } else {
      out[(*o)++] = (char)*p;
    }
  }
  return 0;
}

int ldapauth_filter(const char *filter, const char *user, const char *dn,
                    char *out, size_t cap) {
  size_t o = 0;
  for (const char *p = filter; *p;) {
    const char *v = NULL;
    if (strncmp(p, "{user}", 6) == 0)
      v = user, p += 6;
    else if (strncmp(p, "{dn}", 4) == 0)
      v = dn, p += 4;
    if (v) {
      if (escape_into(v, out, cap, &o))
        return ERR_TOO_LARGE;
      continue;
    }
    if (o + 1 >= cap)
      return ERR_TOO_LARGE;
    out[o++] = *p++;
  }
  if (o >= cap)
    return ERR_TOO_LARGE;
  out[o] = '\0';
  return 0;
}

static int fail(int lrc, const char *what, struct reason *why) {
  return reason_set(why, ERR_UNAVAILABLE,
                    "the identity provider (LDAP) is unavailable: %s: %s", what,
                    ldap_err2string(lrc));
}

static int bind_simple(LDAP *ld, const char *dn, const char *password) {
  struct berval cred;
  cred.bv_val = (char *)(password ? password : "");
  cred.bv_len = strlen(cred.bv_val);
  return ldap_sasl_bind_s(ld, dn && dn[0] ? dn : NULL, LDAP_SASL_SIMPLE, &cred,
                          NULL, NULL, NULL);
}

/* libldap 2.5 (Debian 12's) does the TLS handshake with blocking reads
 * that neither LDAP_OPT_NETWORK_TIMEOUT nor LDAP_OPT_TIMEOUT bound: a
 * server that accepts the connection and never answers would hold the
 * worker thread forever. While the TLS set-up runs, a watchdog thread shuts
 * the socket down at the deadline; the blocked read then sees the end of
 * the stream and the handshake fails. The connect callback hands it a
 * dup() of the socket, so it never touches a descriptor reused since. */
struct tls_watch {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct ldap_conncb cb; /* registered on the handle until it is freed */
  int fd;                /* dup of the connection's socket, or -1 */
  int done, fired;
  struct timespec deadline;
};

static int watch_add(LDAP *ld, Sockbuf *sb, LDAPURLDesc *srv,
                     struct sockaddr *addr, struct ldap_conncb *ctx) {
  (void)ld, (void)srv, (void)addr;
  struct tls_watch *w = ctx->lc_arg;
  ber_socket_t fd = -1;
  if (ber_sockbuf_ctrl(sb, LBER_SB_OPT_GET_FD, &fd) != 1 || fd < 0)
    return 0;
  pthread_mutex_lock(&w->mu);
  if (w->fd < 0)
    w->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  pthread_mutex_unlock(&w->mu);
  return 0;
}

static void watch_del(LDAP *ld, Sockbuf *sb, struct ldap_conncb *ctx) {
  (void)ld, (void)sb, (void)ctx;
}

static void *watch_main(void *arg) {
  struct tls_watch *w = arg;
  pthread_mutex_lock(&w->mu);
  int rc = 0;
  while (!w->done && rc != ETIMEDOUT)
    rc = pthread_cond_timedwait(&w->cv, &w->mu, &w->deadline);
  if (!w->done && w->fd >= 0) {
    shutdown(w->fd, SHUT_RDWR);
    w->fired = 1;
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

static void watch_init(struct tls_watch *w) {
  memset(w, 0, sizeof *w);
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  w->cb.lc_add = watch_add;
  w->cb.lc_del = watch_del;
  w->cb.lc_arg = w;
  w->fd = -1;
}

/* After the handle is freed (its delete callback points at w). */
static void watch_destroy(struct tls_watch *w) {
  if (w->fd >= 0)
    close(w->fd);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
}

/* Starts the watchdog for the next seconds; 0 or -1. */
static int watch_start(struct tls_watch *w, pthread_t *th, long seconds) {
  clock_deadline_in(&w->deadline, seconds * 1000);
  w->done = 0;
  return pthread_create(th, NULL, watch_main, w) == 0 ? 0 : -1;
}

/* Stops the watchdog; 1 when it shut the connection down. */
static int watch_stop(struct tls_watch *w, pthread_t th) {
  pthread_mutex_lock(&w->mu);
  w->done = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(th, NULL);
  return w->fired;
}

/* Opens a connection with the options set, StartTLS done and the service
 * account bound. w watches the TLS set-up. */
static int open_conn(const struct ldapauth_config *c, LDAP **out,
                     struct tls_watch *w, struct reason *why) {
  *out = NULL;
  LDAP *ld = NULL;
  int lrc = ldap_initialize(&ld, c->url);
  if (lrc != LDAP_SUCCESS)
    return reason_set(why, ERR_UNAVAILABLE, "auth_ldap_url: %s",
                      ldap_err2string(lrc));
  long timeout_s = c->timeout_s > 0 ? c->timeout_s : 5;
  int v3 = LDAP_VERSION3, demand = LDAP_OPT_X_TLS_DEMAND, zero = 0;
  struct timeval tv = {timeout_s, 0};
  ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
  ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
  ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
  ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
  int tls = c->starttls || strncmp(c->url, "ldaps://", 8) == 0;
  if (tls) {
    ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
    if (c->ca_file && c->ca_file[0])
      ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, c->ca_file);
    /* Applies the options above to this handle's own TLS context. */
    lrc = ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
    if (lrc == LDAP_SUCCESS)
      lrc = ldap_set_option(ld, LDAP_OPT_CONNECT_CB, &w->cb);
  }
  if (lrc == LDAP_SUCCESS && tls) {
    /* Connects (and for ldaps:// does the handshake) now, under the
     * watchdog: the connect, the StartTLS request and the handshake may
     * take the timeout each. */
    pthread_t th;
    if (watch_start(w, &th, timeout_s * (c->starttls ? 3 : 2))) {
      ldap_unbind_ext_s(ld, NULL, NULL);
      return reason_set(why, ERR_UNAVAILABLE,
                        "the identity provider (LDAP) is unavailable: cannot "
                        "start a thread");
    }
    lrc = ldap_connect(ld);
    if (lrc == LDAP_SUCCESS && c->starttls)
      lrc = ldap_start_tls_s(ld, NULL, NULL);
    if (watch_stop(w, th))
      lrc = LDAP_TIMEOUT;
  }
  if (lrc != LDAP_SUCCESS) {
    /* libldap's own words say why (an untrusted certificate, a host name
     * that does not match): for the operator's log, not the client. */
    char *diag = NULL;
    if (ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag) == 0 && diag &&
        diag[0])
      log_warn("ldap: %s to %s failed: %.200s",
               c->starttls ? "StartTLS" : "TLS set-up", c->url, diag);
    ldap_memfree(diag);
    ldap_unbind_ext_s(ld, NULL, NULL);
    return fail(lrc, c->starttls ? "StartTLS" : "TLS set-up", why);
  }
  lrc = bind_simple(ld, c->bind_dn, c->bind_password);
  if (lrc != LDAP_SUCCESS) {
    ldap_unbind_ext_s(ld, NULL, NULL);
    if (lrc == LDAP_INVALID_CREDENTIALS)
      log_error("ldap: the service account (auth_ldap_bind_dn) was refused: "
                "check auth_ldap_bind_password");
    return fail(lrc, "service bind", why);
  }
  *out = ld;
  return 0;
}

/* The attribute the user filter compares the name with: ATTR of the first
 * "(ATTR={user})" in it, or "" when there is none. */
static void name_attr(const char *filter, char *out, size_t cap) {
  out[0] = '\0';
  const char *eq = strstr(filter, "={user})");
  if (!eq)
    return;
  const char *b = eq;
  while (b > filter && b[-1] != '(')
    b--;
  size_t n = (size_t)(eq - b);
  if (b == filter || n == 0 || n >= cap)
    return;
  for (size_t i = 0; i < n; i++) {
    char ch = b[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || ch == '-' || ch == '.'))
      return;
  }
  memcpy(out, b, n);
  out[n] = '\0';
}

/* The directory matched user by its attribute's matching rule (uid's
 * ignores case): name gets the entry's own spelling, so that BOB and bob
 * are one identity for user: rules, rate limits and the audit log. The
 * name as typed when the entry has no such value. */
static void canonical_name(LDAP *ld, LDAPMessage *e, const char *attr,
                           const char *user, char *name, size_t cap) {
  size_t n = strlen(user);
  snprintf(name, cap, "%s", user);
  struct berval **vals = attr[0] ? ldap_get_values_len(ld, e, attr) : NULL;
  for (size_t i = 0; vals && vals[i]; i++) {
    if (vals[i]->bv_len == n && n < cap &&
        strncasecmp(vals[i]->bv_val, user, n) == 0) {
      memcpy(name, vals[i]->bv_val, n);
      name[n] = '\0';
      break;
    }
  }
  if (vals)
    ldap_value_free_len(vals);
}

/* Finds user's DN (exactly one entry) and the name the entry spells. */
static int find_user(LDAP *ld, const struct ldapauth_config *c,
                     const char *user, char **dn, char *name, size_t name_cap,
                     struct reason *why) {
  char filter[1024];
  if (ldapauth_filter(c->user_filter, user, "", filter, sizeof filter))
    return reason_set(why, ERR_UNAUTHORIZED, "user name too long");
  struct timeval tv = {c->timeout_s > 0 ? c->timeout_s : 5, 0};
  char attr[64];
  name_attr(c->user_filter, attr, sizeof attr);
  char *attrs[] = {attr[0] ? attr : LDAP_NO_ATTRS, NULL};
  LDAPMessage *res = NULL;
  int lrc = ldap_search_ext_s(ld, c->user_base, LDAP_SCOPE_SUBTREE, filter,
                              attrs, 0, NULL, NULL, &tv, 2, &res);
  int rc = 0;
  if (lrc == LDAP_SIZELIMIT_EXCEEDED) {
    rc = reason_set(why, ERR_UNAUTHORIZED,
                    "%s matches more than one LDAP entry", user);
  } else if (lrc != LDAP_SUCCESS) {
    rc = fail(lrc, "user search", why);
  } else if (ldap_count_entries(ld, res) != 1) {
    rc = reason_set(why, ERR_UNAUTHORIZED, "unknown user or wrong password");
  } else {
    LDAPMessage *e = ldap_first_entry(ld, res);
    *dn = ldap_get_dn(ld, e);
    if (!*dn)
      rc = reason_set(why, ERR_UNAVAILABLE, "LDAP entry without a DN");
    else
      canonical_name(ld, e, attr, user, name, name_cap);
  }
  if (res)
    ldap_msgfree(res);
  return rc;
}

/* Appends the cn of every group matching the group filter. */
static int read_groups(LDAP *ld, const struct ldapauth_config *c,
                       const char *user, const char *dn, char *groups,
                       size_t cap, struct reason *why) {
  if (!c->group_base || !c->group_base[0])
    return 0;
  char filter[2048];
  if (ldapauth_filter(c->group_filter, user, dn, filter, sizeof filter))
    return reason_set(why, ERR_UNAVAILABLE, "LDAP group filter too long");
  struct timeval tv = {c->timeout_s > 0 ? c->timeout_s : 5, 0};
  char *attrs[] = {"cn", NULL};
  LDAPMessage *res = NULL;
  int lrc = ldap_search_ext_s(ld, c->group_base, LDAP_SCOPE_SUBTREE, filter,
                              attrs, 0, NULL, NULL, &tv, 1000, &res);
  if (lrc != LDAP_SUCCESS && lrc != LDAP_SIZELIMIT_EXCEEDED) {
    if (res)
      ldap_msgfree(res);
    return fail(lrc, "group search", why);
  }
  struct identity tmp;
  memset(&tmp, 0, sizeof tmp);
  for (LDAPMessage *e = ldap_first_entry(ld, res); e;
       e = ldap_next_entry(ld, e)) {
    struct berval **vals = ldap_get_values_len(ld, e, "cn");
    for (size_t i = 0; vals && vals[i]; i++) {
      char name[AUTH_NAME_MAX];
      if (vals[i]->bv_len && vals[i]->bv_len < sizeof name) {
        memcpy(name, vals[i]->bv_val, vals[i]->bv_len);
        name[vals[i]->bv_len] = '\0';
        /* Names a rules file cannot spell (spaces, commas) are skipped. */
        identity_add_groups(&tmp, name);
      }
    }
    ldap_value_free_len(vals);
  }
  ldap_msgfree(res);
  size_t have = strlen(groups), add = strlen(tmp.groups);
  if (add && have + 1 + add < cap) {
    if (have)
      groups[have++] = ',';
    memcpy(groups + have, tmp.groups, add + 1);
  }
  return 0;
}

int ldapauth_check(const struct ldapauth_config *c, const char *user,
                   const char *password, char *name, size_t name_cap,
                   char *groups, size_t cap, struct reason *why) {
  if (!password || !password[0])
    return reason_set(why, ERR_UNAUTHORIZED, "empty password");
  LDAP *ld;
  struct tls_watch w;
  watch_init(&w);
  int rc = open_conn(c, &ld, &w, why);
  if (rc) {
    watch_destroy(&w);
    return rc;
  }
  char *dn = NULL;
  rc = find_user(ld, c, user, &dn, name, name_cap, why);
  if (!rc) {
    int lrc = bind_simple(ld, dn, password);
    if (lrc == LDAP_INVALID_CREDENTIALS)
      rc = reason_set(why, ERR_UNAUTHORIZED, "unknown user or wrong password");
    else if (lrc != LDAP_SUCCESS)
      rc = fail(lrc, "user bind", why);
  }
  /* Groups are read as the service account: the user may not see them. */
  if (!rc) {
    int lrc = bind_simple(ld, c->bind_dn, c->bind_password);
    rc = lrc == LDAP_SUCCESS ? read_groups(ld, c, user, dn, groups, cap, why)
                             : fail(lrc, "service bind", why);
  }
  if (dn)
    ldap_memfree(dn);
  ldap_unbind_ext_s(ld, NULL, NULL);
  watch_destroy(&w);
  return rc;
}
