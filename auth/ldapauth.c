/* LDAP authentication; see ldapauth.h. One connection per check: the user
 * bind changes the connection's identity, and checks are rare (the
 * credential cache absorbs repeats). */
#include "ldapauth.h"

#include "core/err.h"
#include "core/log.h"
#include "identity.h"

#include <ldap.h>
#include <stdlib.h>
#include <string.h>

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

/* Opens a connection with the options set, StartTLS done and the service
 * account bound. */
static int open_conn(const struct ldapauth_config *c, LDAP **out,
                     struct reason *why) {
  *out = NULL;
  LDAP *ld = NULL;
  int lrc = ldap_initialize(&ld, c->url);
  if (lrc != LDAP_SUCCESS)
    return reason_set(why, ERR_UNAVAILABLE, "auth_ldap_url: %s",
                      ldap_err2string(lrc));
  int v3 = LDAP_VERSION3, demand = LDAP_OPT_X_TLS_DEMAND, zero = 0;
  struct timeval tv = {c->timeout_s > 0 ? c->timeout_s : 5, 0};
  ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
  ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
  ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
  ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
  if (c->starttls || strncmp(c->url, "ldaps://", 8) == 0) {
    ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
    if (c->ca_file && c->ca_file[0])
      ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, c->ca_file);
    /* Applies the options above to this handle's own TLS context. */
    lrc = ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
  }
  if (lrc == LDAP_SUCCESS && c->starttls)
    lrc = ldap_start_tls_s(ld, NULL, NULL);
  if (lrc != LDAP_SUCCESS) {
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

/* Finds user's DN (exactly one entry). */
static int find_user(LDAP *ld, const struct ldapauth_config *c,
                     const char *user, char **dn, struct reason *why) {
  char filter[1024];
  if (ldapauth_filter(c->user_filter, user, "", filter, sizeof filter))
    return reason_set(why, ERR_UNAUTHORIZED, "user name too long");
  struct timeval tv = {c->timeout_s > 0 ? c->timeout_s : 5, 0};
  char *attrs[] = {LDAP_NO_ATTRS, NULL};
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
    *dn = ldap_get_dn(ld, ldap_first_entry(ld, res));
    if (!*dn)
      rc = reason_set(why, ERR_UNAVAILABLE, "LDAP entry without a DN");
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
                   const char *password, char *groups, size_t cap,
                   struct reason *why) {
  if (!password || !password[0])
    return reason_set(why, ERR_UNAUTHORIZED, "empty password");
  LDAP *ld;
  int rc = open_conn(c, &ld, why);
  if (rc)
    return rc;
  char *dn = NULL;
  rc = find_user(ld, c, user, &dn, why);
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
  return rc;
}
