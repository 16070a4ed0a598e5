/* Identity helpers: names, labels and group lists. */
#include "identity.h"

#include "core/err.h"

#include <string.h>

const char *identity_source_name(enum auth_source s) {
  switch (s) {
  case AUTH_HTPASSWD:
    return "htpasswd";
  case AUTH_TOKEN:
    return "token";
  case AUTH_LDAP:
    return "ldap";
  case AUTH_ADMIN_TOKEN:
    return "admin_token";
  case AUTH_ANONYMOUS:
    break;
  }
  return "anonymous";
}

const char *identity_label(const struct identity *id) {
  return id->source == AUTH_ANONYMOUS || !id->name[0] ? "anonymous" : id->name;
}

/* 1 when list (comma-separated) holds item[0..n). */
static int list_has(const char *list, const char *item, size_t n) {
  for (const char *p = list; *p;) {
    size_t l = strcspn(p, ",");
    if (l == n && memcmp(p, item, n) == 0)
      return 1;
    p += l;
    if (*p == ',')
      p++;
  }
  return 0;
}

int identity_in_group(const struct identity *id, const char *group) {
  return list_has(id->groups, group, strlen(group));
}

int identity_add_groups(struct identity *id, const char *list) {
  int rc = 0;
  for (const char *p = list; p && *p;) {
    size_t n = strcspn(p, ",");
    if (n && auth_name_ok(p, n) && !list_has(id->groups, p, n)) {
      size_t have = strlen(id->groups);
      size_t need = have + (have ? 1 : 0) + n;
      if (need >= sizeof id->groups) {
        rc = ERR_TOO_LARGE;
      } else {
        if (have)
          id->groups[have++] = ',';
        memcpy(id->groups + have, p, n);
        id->groups[have + n] = '\0';
      }
    }
    p += n;
    if (*p == ',')
      p++;
  }
  return rc;
}

int auth_name_ok(const char *s, size_t n) {
  if (n == 0 || n >= AUTH_NAME_MAX)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '@' ||
          c == '-' || c == '+'))
      return 0;
  }
  return 1;
}
