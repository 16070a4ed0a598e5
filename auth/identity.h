/* Who a request comes from, once authenticated: the name, where the name
 * was proven (htpasswd, an API token, LDAP), and the groups it belongs to.
 * A plain value: copied into each request, never shared. */
#ifndef GOMIRROR_AUTH_IDENTITY_H
#define GOMIRROR_AUTH_IDENTITY_H

#include <stddef.h>

enum auth_source {
  AUTH_ANONYMOUS = 0, /* no credentials presented */
  AUTH_HTPASSWD,
  AUTH_TOKEN, /* an auth_tokens entry: name is the token's name */
  AUTH_LDAP,
  AUTH_ADMIN_TOKEN /* the admin_token key, for automation */
};

#define AUTH_NAME_MAX 128    /* user or token name, with its NUL */
#define AUTH_GROUPS_MAX 1024 /* "a,b,c", with its NUL */

struct identity {
  enum auth_source source;
  char name[AUTH_NAME_MAX];     /* "" when anonymous */
  char groups[AUTH_GROUPS_MAX]; /* comma-separated, no duplicates */
};

/* "anonymous", "htpasswd", "token", "ldap" or "admin_token". */
const char *identity_source_name(enum auth_source s);
/* The name to show in logs: the user or token name, or "anonymous". */
const char *identity_label(const struct identity *id);
/* 1 when group is one of id's groups. */
int identity_in_group(const struct identity *id, const char *group);
/* Adds each group of the comma-separated list to id's groups, skipping
 * duplicates; groups that would not fit are dropped (0, or ERR_TOO_LARGE
 * after adding what fits). */
int identity_add_groups(struct identity *id, const char *list);

/* A user or group name: 1..AUTH_NAME_MAX-1 bytes of letters, digits and
 * ._@-+ (what htpasswd, LDAP uids and token names use in practice). */
int auth_name_ok(const char *s, size_t n);

#endif
