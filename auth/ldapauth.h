/* LDAP as an identity source, through OpenLDAP's client library: search
 * the user with the service account, bind as the user to check the
 * password, read the groups. ldap://, ldaps:// and StartTLS; referrals are
 * never followed and every wait is bounded by the timeout. */
#ifndef GOMIRROR_AUTH_LDAPAUTH_H
#define GOMIRROR_AUTH_LDAPAUTH_H

#include <stddef.h>

struct reason;

struct ldapauth_config {
  const char *url;           /* ldap://host:port or ldaps://host:port */
  const char *bind_dn;       /* service account; "" binds anonymously */
  const char *bind_password; /* secret */
  const char *user_base;
  const char *user_filter;  /* "{user}" is replaced, escaped */
  const char *group_base;   /* "" skips the group search */
  const char *group_filter; /* "{dn}" and "{user}" are replaced, escaped */
  const char *ca_file;      /* "" uses the system's CAs */
  int starttls;
  long timeout_s;
};

/* Checks user's password. 0 with the user's name as the directory spells
 * it in name (name_cap bytes; the directory may match names without regard
 * to case: uid does) and the user's groups appended to groups
 * (comma-separated, cap bytes with the NUL); ERR_UNAUTHORIZED when the user
 * is unknown, ambiguous or the password is wrong (or empty: an empty
 * password would be an anonymous bind); ERR_UNAVAILABLE when the directory
 * cannot be reached or the service account is refused. why never holds a
 * password. */
int ldapauth_check(const struct ldapauth_config *c, const char *user,
                   const char *password, char *name, size_t name_cap,
                   char *groups, size_t cap, struct reason *why);

/* Replaces {user} and {dn} in filter with their RFC 4515-escaped values.
 * 0, or ERR_TOO_LARGE when out (cap bytes) is too small. Pure; unit
 * tested. */
int ldapauth_filter(const char *filter, const char *user, const char *dn,
                    char *out, size_t cap);

#endif
