/* libFuzzer target for the access-control files and the client-address
 * helpers: the bytes are parsed as an auth_rules file, an htpasswd file, an
 * auth_tokens file and an auth_groups file; their first three lines are
 * also a trusted_proxies list, a peer address and an X-Forwarded-For value
 * (and an LDAP filter, user and DN). Every parser answers 0 or ERR_CONFIG
 * (ERR_NOMEM) with a one-line reason; decisions are 0 or 1 and agree with
 * the rule they name; nothing is read or written out of bounds. */
#include "auth/groups.h"
#include "auth/htpasswd.h"
#include "auth/identity.h"
#include "auth/ldapauth.h"
#include "auth/rules.h"
#include "auth/tokens.h"
#include "core/err.h"
#include "mod/private.h"
#include "server/clientaddr.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      abort();                                                                 \
  } while (0)

static void check_outcome(int rc, const void *out, const struct reason *why) {
  CHECK(rc == 0 || rc == ERR_CONFIG || rc == ERR_NOMEM);
  if (rc == 0) {
    CHECK(out != NULL);
    return;
  }
  CHECK(out == NULL);
  if (rc == ERR_CONFIG) {
    size_t n = strnlen(why->text, sizeof why->text);
    CHECK(n > 0 && n < sizeof why->text);
    CHECK(!memchr(why->text, '\n', n));
  }
}

static struct identity who(enum auth_source src, const char *name,
                           const char *groups) {
  struct identity id;
  memset(&id, 0, sizeof id);
  id.source = src;
  strncpy(id.name, name, sizeof id.name - 1);
  strncpy(id.groups, groups, sizeof id.groups - 1);
  return id;
}

/* id's group list: NUL-terminated in its field, names only, no repeats. */
static void check_groups(const struct identity *id) {
  size_t n = strnlen(id->groups, sizeof id->groups);
  CHECK(n < sizeof id->groups);
  for (const char *p = id->groups; *p;) {
    size_t l = strcspn(p, ",");
    CHECK(auth_name_ok(p, l));
    for (const char *q = p + l; *q;) {
      q++;
      size_t m = strcspn(q, ",");
      CHECK(m != l || memcmp(p, q, l) != 0);
      q += m;
    }
    p += l;
    if (*p)
      p++;
  }
}

static void check_decisions(const struct rules *r, const char *text,
                            size_t size, const char *own_module) {
  long lines = 1;
  for (size_t i = 0; i < size; i++)
    lines += text[i] == '\n';
  CHECK((long)rules_count(r) <= lines);
  struct identity ids[] = {
      who(AUTH_ANONYMOUS, "", ""),
      who(AUTH_HTPASSWD, "alice", "payments,ops"),
      who(AUTH_TOKEN, "ci", "ci"),
      who(AUTH_LDAP, "bob", ""),
      who(AUTH_ADMIN_TOKEN, "admin_token", ""),
  };
  const char *mods[] = {"git.corp.example/payments/api",
                        "git.corp.example/payments/api/v2",
                        "github.com/x/y",
                        "golang.org/x/mod",
                        "a",
                        own_module};
  for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
    int any = rules_allow_any(r, &ids[i]);
    CHECK(any == 0 || any == 1);
    for (size_t j = 0; j < sizeof mods / sizeof *mods; j++) {
      if (!mods[j][0])
        continue;
      struct rule_match m;
      memset(&m, 0xa5, sizeof m);
      int d = rules_decide(r, &ids[i], mods[j], &m);
      CHECK(d == 0 || d == 1);
      CHECK(m.allow == d);
      CHECK(rules_decide(r, &ids[i], mods[j], NULL) == d);
      CHECK(m.line >= 0 && m.line <= lines);
      CHECK(strnlen(m.who, sizeof m.who) < sizeof m.who);
      CHECK(strnlen(m.patterns, sizeof m.patterns) < sizeof m.patterns);
      if (m.line == 0) {
        CHECK(d == 0 && !m.who[0] && !m.patterns[0]);
      } else {
        /* The deciding rule's patterns match the module. */
        CHECK(private_match(m.patterns, mods[j]) == 1);
      }
      /* Whoever may read some module may use the module-less endpoints
       * (a deny of "*" that would hide every allow also hides this one:
       * "*" matches every module path "*" matches). */
      if (d == 1 && private_match("*", mods[j]) == 1)
        CHECK(any == 1);
    }
  }
}

/* The n-th line of text (0-based) into out, NUL-terminated, at most cap-1
 * bytes; "" when there are fewer lines. */
static void nth_line(const char *text, size_t size, int n, char *out,
                     size_t cap) {
  const char *p = text, *end = text + size;
  for (; n > 0 && p < end; n--) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    p = nl ? nl + 1 : end;
  }
  const char *nl = memchr(p, '\n', (size_t)(end - p));
  size_t l = (size_t)((nl ? nl : end) - p);
  if (l >= cap)
    l = cap - 1;
  memcpy(out, p, l);
  out[l] = '\0'; /* a NUL inside ends it early */
}

static void check_client(const char *spec, const char *remote,
                         const char *xff) {
  struct cidr_list *l = (struct cidr_list *)(void *)&spec;
  struct reason why = {{0}};
  int rc = cidr_list_parse(spec, &l, &why);
  CHECK(rc == 0 || rc == ERR_CONFIG || rc == ERR_NOMEM);
  if (rc) {
    CHECK(l == NULL);
    CHECK(rc != ERR_CONFIG || why.text[0]);
  }
  if (!rc && !spec[0])
    CHECK(l == NULL);
  int trusted = cidr_list_contains(l, remote);
  CHECK(trusted == 0 || trusted == 1);
  static const size_t caps[] = {CLIENTADDR_MAX, 9, 1};
  for (size_t i = 0; i < sizeof caps / sizeof *caps; i++) {
    char out[CLIENTADDR_MAX + 8];
    memset(out, 'Z', sizeof out);
    client_address(l, remote, xff, out, caps[i]);
    size_t n = strnlen(out, caps[i]);
    CHECK(n < caps[i]);         /* NUL-terminated within cap */
    CHECK(out[caps[i]] == 'Z'); /* nothing written past it */
    if (!trusted || !xff[0]) {
      /* The peer itself, cut to fit. */
      CHECK(strncmp(out, remote, n) == 0 && (n == caps[i] - 1 || !remote[n]));
    } else if (caps[i] == CLIENTADDR_MAX && strcmp(out, remote) != 0) {
      /* An address X-Forwarded-For gives. */
      unsigned char a[16];
      CHECK(inet_pton(AF_INET, out, a) == 1 ||
            inet_pton(AF_INET6, out, a) == 1);
      CHECK(strstr(xff, out) != NULL);
    }
  }
  cidr_list_free(l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 8192)
    return 0;
  char *s = malloc(size + 1);
  if (!s)
    return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  char l0[300], l1[300], l2[300];
  nth_line(s, size, 0, l0, sizeof l0);
  nth_line(s, size, 1, l1, sizeof l1);
  nth_line(s, size, 2, l2, sizeof l2);

  /* auth_rules */
  struct rules *r = (struct rules *)(void *)&s;
  struct reason why = {{0}};
  int rc = rules_parse(s, size, "fuzz_rules", &r, &why);
  check_outcome(rc, r, &why);
  if (r) {
    /* The second line, as a module path, too. */
    check_decisions(r, s, size, l1);
    rules_free(r);
  }

  /* htpasswd: parsing only (verifying would run the input's bcrypt cost). */
  struct htpasswd *h = (struct htpasswd *)(void *)&s;
  memset(&why, 0, sizeof why);
  rc = htpasswd_parse(s, size, "fuzz_htpasswd", &h, &why);
  check_outcome(rc, h, &why);
  if (h) {
    CHECK(htpasswd_verify(h, "no such user!", "x") == ERR_NOT_FOUND);
    htpasswd_free(h);
  }

  /* auth_tokens */
  struct tokens *t = (struct tokens *)(void *)&s;
  memset(&why, 0, sizeof why);
  rc = tokens_parse(s, size, "fuzz_tokens", &t, &why);
  check_outcome(rc, t, &why);
  if (t) {
    CHECK(tokens_count(t) <= size / 66 + 1);
    const struct token_entry *e = tokens_find(t, l0, strlen(l0));
    if (e) {
      CHECK(auth_name_ok(e->name, strlen(e->name)));
      CHECK(strnlen(e->groups, sizeof e->groups) < sizeof e->groups);
    }
    tokens_free(t);
  }

  /* auth_groups, applied to a known user and to the first line's name. */
  struct groups *g = (struct groups *)(void *)&s;
  memset(&why, 0, sizeof why);
  rc = groups_parse(s, size, "fuzz_groups", &g, &why);
  check_outcome(rc, g, &why);
  if (g) {
    struct identity a = who(AUTH_HTPASSWD, "alice", "ops");
    groups_apply(g, &a);
    check_groups(&a);
    size_t nl = strcspn(l0, ":");
    if (nl > 0 && nl < AUTH_NAME_MAX) {
      char name[AUTH_NAME_MAX];
      memcpy(name, l0, nl);
      name[nl] = '\0';
      struct identity b = who(AUTH_LDAP, name, "");
      groups_apply(g, &b);
      check_groups(&b);
    }
    groups_free(g);
  }

  /* Group lists from outside (tokens, LDAP) go through the same helper. */
  struct identity c = who(AUTH_TOKEN, "ci", "");
  int arc = identity_add_groups(&c, l0);
  CHECK(arc == 0 || arc == ERR_TOO_LARGE);
  check_groups(&c);

  /* trusted_proxies, peer, X-Forwarded-For. */
  check_client(l0, l1, l2);

  /* An LDAP filter with the next lines as user and DN. */
  static const size_t fcaps[] = {512, 16, 1, 0};
  for (size_t i = 0; i < sizeof fcaps / sizeof *fcaps; i++) {
    char out[520];
    memset(out, 'Z', sizeof out);
    int frc = ldapauth_filter(l0, l1, l2, out, fcaps[i]);
    CHECK(frc == 0 || frc == ERR_TOO_LARGE);
    CHECK(out[fcaps[i]] == 'Z');
    if (frc == 0) {
      CHECK(strnlen(out, fcaps[i]) < fcaps[i]);
      /* With no placeholders, the filter is copied as it is. */
      if (!strchr(l0, '{'))
        CHECK(strcmp(out, l0) == 0);
    }
  }
  free(s);
  return 0;
}
