/* Unit tests for auth/rules.c: parsing the auth_rules file and deciding,
 * first match wins, who may read which module. Module patterns have
 * GOPRIVATE semantics (mod/private.h): a pattern of N path elements matches
 * the first N elements of a module path. */
#include "auth/identity.h"
#include "auth/rules.h"
#include "core/err.h"
#include "test.h"

#include <stdio.h>

#define N(a) (sizeof(a) / sizeof *(a))

static int parse(const char *text, struct rules **r, struct reason *why) {
  return rules_parse(text, strlen(text), "auth_rules", r, why);
}

static struct identity who(enum auth_source src, const char *name,
                           const char *groups) {
  struct identity id;
  memset(&id, 0, sizeof id);
  id.source = src;
  snprintf(id.name, sizeof id.name, "%s", name);
  snprintf(id.groups, sizeof id.groups, "%s", groups);
  return id;
}

/* Decides and checks the verdict and the deciding line (0: none). */
static void expect(const struct rules *r, const struct identity *id,
                   const char *module, int allow, long line, int at) {
  struct rule_match m;
  memset(&m, 'X', sizeof m);
  int got = rules_decide(r, id, module, &m);
  if (got != allow || m.allow != allow || m.line != line)
    TEST_FAIL_("line %d: %s (%s) reading %s: %d by line %ld, want %d by "
               "line %ld",
               at, id->name[0] ? id->name : "anonymous",
               identity_source_name(id->source), module, got, m.line, allow,
               line);
  /* Without a match to fill, the verdict is the same. */
  if (rules_decide(r, id, module, NULL) != got)
    TEST_FAIL_("line %d: verdict differs without a rule_match", at);
}
#define EXPECT(r, id, mod, allow, line)                                        \
  expect((r), (id), (mod), (allow), (line), __LINE__)

static const char rules_text[] =
    "# Access rules for the mirror\n"                                    /* 1 */
    "\n"                                                                 /* 2 */
    "deny  user:mallory   *                       # blocked\n"           /* 3 */
    "allow group:payments git.corp.example/payments/*\n"                 /* 4 */
    "deny  *              git.corp.example/payments/*   # nobody else\n" /* 5 */
    "allow token:ci       git.corp.example/tools,git.corp.example/lib\n" /* 6 */
    "deny  token:ci       *\n"                                           /* 7 */
    "allow user:ci        git.corp.example/ci\n"                         /* 8 */
    "  # indented comment\n"                                             /* 9 */
    "allow authenticated  git.corp.example\n"            /* 10 */
    "allow anonymous      github.com/*,golang.org/x\r\n" /* 11 */
    "allow *              *.public.example\n";           /* 12 */

static void test_parse_good(void) {
  struct rules *r = NULL;
  struct reason why = {{0}};
  int rc = parse(rules_text, &r, &why);
  ASSERT_EQ_INT(rc, 0);
  if (rc) {
    fprintf(stderr, "  reason: %s\n", why.text);
    return;
  }
  ASSERT_EQ_INT(rules_count(r), 9);
  rules_free(r);
  rules_free(NULL);
  ASSERT_EQ_INT(rules_count(NULL), 0);
  /* Only comments: no rules, everyone denied. */
  ASSERT_EQ_INT(parse("# nothing\n\n  # here\n", &r, &why), 0);
  ASSERT_EQ_INT(rules_count(r), 0);
  struct identity alice = who(AUTH_HTPASSWD, "alice", "");
  EXPECT(r, &alice, "example.com/m", 0, 0);
  rules_free(r);
}

static void test_parse_bad(void) {
  static const struct {
    const char *text, *want;
  } cs[] = {
      {"permit user:alice *\n", "auth_rules:1: the action must be allow or "
                                "deny"},
      {"Allow user:alice *\n", "auth_rules:1: the action must be"},
      {"# c\n\nallow luser:alice *\n", "auth_rules:3: who must be"},
      {"allow user: *\n", "auth_rules:1: who must be"},
      {"allow user:al/ice *\n", "auth_rules:1: who must be"},
      {"allow alice *\n", "auth_rules:1: who must be"},
      {"allow User:alice *\n", "auth_rules:1: who must be"},
      {"allow group:a,b *\n", "auth_rules:1: who must be"},
      {"allow everyone *\n", "auth_rules:1: who must be"},
      {"allow ** *\n", "auth_rules:1: who must be"},
      {"allow user:alice\n", "auth_rules:1: expected '<allow|deny> <who> "
                             "<modules>'"},
      {"allow\n", "auth_rules:1: expected"},
      {"allow user:alice a b\n", "auth_rules:1: expected"},
      {"allow user:alice a b c d\n", "auth_rules:1: expected"},
      {"allow * git.corp/x\nallow user:alice # only a comment\n",
       "auth_rules:2: expected"},
      {"allow * git.corp/[a\n", "auth_rules:1: private pattern \"git.corp/[a\" "
                                "is malformed"},
      {"allow * ok,bad\\\n", "auth_rules:1: private pattern \"bad\\\""},
      {"deny * [-x]\n", "auth_rules:1: private pattern"},
  };
  for (size_t i = 0; i < N(cs); i++) {
    struct rules *r = NULL;
    struct reason why = {{0}};
    int rc = parse(cs[i].text, &r, &why);
    if (rc != ERR_CONFIG || r) {
      TEST_FAIL_("case %zu (%s): rc %d", i, cs[i].text, rc);
      rules_free(r);
      continue;
    }
    if (strncmp(why.text, cs[i].want, strlen(cs[i].want)) != 0)
      TEST_FAIL_("case %zu: reason \"%s\", want \"%s...\"", i, why.text,
                 cs[i].want);
  }
  /* Who and patterns up to 255 bytes fit; 256 do not. */
  char text[700], name[300];
  memset(name, 'p', 255);
  name[255] = '\0';
  snprintf(text, sizeof text, "allow * %s\n", name);
  struct rules *r = NULL;
  ASSERT_EQ_INT(parse(text, &r, NULL), 0);
  rules_free(r);
  name[255] = 'p';
  name[256] = '\0';
  snprintf(text, sizeof text, "allow * %s\n", name);
  ASSERT_EQ_INT(parse(text, &r, NULL), ERR_CONFIG);
  /* A user name is at most 127 bytes. */
  memset(name, 'u', 127);
  name[127] = '\0';
  snprintf(text, sizeof text, "allow user:%s *\n", name);
  ASSERT_EQ_INT(parse(text, &r, NULL), 0);
  struct identity id = who(AUTH_HTPASSWD, name, "");
  EXPECT(r, &id, "x.example/m", 1, 1);
  rules_free(r);
  name[127] = 'u';
  name[128] = '\0';
  snprintf(text, sizeof text, "allow user:%s *\n", name);
  ASSERT_EQ_INT(parse(text, &r, NULL), ERR_CONFIG);
}

static void test_decide(void) {
  struct rules *r = NULL;
  ASSERT_EQ_INT(parse(rules_text, &r, NULL), 0);
  if (!r)
    return;
  struct identity alice = who(AUTH_HTPASSWD, "alice", "payments,ops");
  struct identity bob = who(AUTH_LDAP, "bob", "ops");
  struct identity mallory = who(AUTH_HTPASSWD, "mallory", "payments");
  struct identity ci_tok = who(AUTH_TOKEN, "ci", "");
  struct identity ci_user = who(AUTH_HTPASSWD, "ci", "");
  struct identity anon = who(AUTH_ANONYMOUS, "", "");

  /* First match wins: mallory's deny on line 3 comes before her group. */
  EXPECT(r, &mallory, "git.corp.example/payments/api", 0, 3);
  EXPECT(r, &mallory, "git.corp.example/tools", 0, 3);
  EXPECT(r, &mallory, "github.com/x/y", 0, 3);

  /* group:payments, with the pattern's prefix semantics. */
  EXPECT(r, &alice, "git.corp.example/payments/api", 1, 4);
  EXPECT(r, &alice, "git.corp.example/payments/api/v2", 1, 4);
  EXPECT(r, &alice, "git.corp.example/payments/api/v2/internal", 1, 4);
  /* ...but a 3-element pattern does not match a 2-element path, and the
   * element must match whole. */
  EXPECT(r, &alice, "git.corp.example/payments", 1, 10);
  EXPECT(r, &alice, "git.corp.example/paymentsx/api", 1, 10);
  /* Everyone else is denied payments by line 5. */
  EXPECT(r, &bob, "git.corp.example/payments/api", 0, 5);
  EXPECT(r, &bob, "git.corp.example/payments/api/v2", 0, 5);
  EXPECT(r, &anon, "git.corp.example/payments/api", 0, 5);
  EXPECT(r, &ci_tok, "git.corp.example/payments/api", 0, 5);
  /* authenticated (line 10): a 1-element pattern is a host prefix. */
  EXPECT(r, &bob, "git.corp.example/tools", 1, 10);
  EXPECT(r, &bob, "git.corp.example/a/b/c", 1, 10);
  EXPECT(r, &bob, "git.corp.examplex/tools", 0, 0);
  EXPECT(r, &bob, "git.corp.exampl/tools", 0, 0);

  /* token:ci reads its two modules (a comma list), nothing else. */
  EXPECT(r, &ci_tok, "git.corp.example/tools", 1, 6);
  EXPECT(r, &ci_tok, "git.corp.example/lib/sub", 1, 6);
  EXPECT(r, &ci_tok, "git.corp.example/ci", 0, 7);
  EXPECT(r, &ci_tok, "github.com/x/y", 0, 7);
  /* A user named ci is not the token named ci, and the other way. */
  EXPECT(r, &ci_user, "git.corp.example/ci", 1, 8);
  EXPECT(r, &ci_user, "git.corp.example/tools", 1, 10);

  /* anonymous: only lines 11 (its github.com pattern has two elements)
   * and 12. */
  EXPECT(r, &anon, "github.com/x/y", 1, 11);
  EXPECT(r, &anon, "github.com/x", 1, 11);
  EXPECT(r, &anon, "github.com", 0, 0);
  EXPECT(r, &anon, "golang.org/x/mod", 1, 11);
  EXPECT(r, &anon, "golang.org/y/mod", 0, 0);
  EXPECT(r, &anon, "git.corp.example/tools", 0, 0);
  /* anonymous does not cover authenticated users. */
  EXPECT(r, &bob, "github.com/x/y", 0, 0);
  /* * covers both; a glob in the first element. */
  EXPECT(r, &anon, "docs.public.example/m", 1, 12);
  EXPECT(r, &bob, "docs.public.example/m/v2", 1, 12);
  EXPECT(r, &bob, "public.example/m", 0, 0);
  rules_free(r);
}

static void test_who_kinds(void) {
  struct rules *r = NULL;
  static const char text[] = "allow user:alice     a.example\n"
                             "allow group:ops      b.example\n"
                             "allow token:alice    c.example\n"
                             "allow authenticated  d.example\n"
                             "allow anonymous      e.example\n"
                             "allow *              f.example\n";
  ASSERT_EQ_INT(parse(text, &r, NULL), 0);
  if (!r)
    return;
  static const char *const mods[] = {"a.example/m", "b.example/m",
                                     "c.example/m", "d.example/m",
                                     "e.example/m", "f.example/m"};
  static const struct {
    enum auth_source src;
    const char *name, *groups;
    int want[6];
  } cs[] = {
      {AUTH_HTPASSWD, "alice", "", {1, 0, 0, 1, 0, 1}},
      {AUTH_LDAP, "alice", "ops", {1, 1, 0, 1, 0, 1}},
      {AUTH_TOKEN, "alice", "ops", {0, 1, 1, 1, 0, 1}},
      {AUTH_HTPASSWD, "bob", "devops,opsx,op", {0, 0, 0, 1, 0, 1}},
      {AUTH_ADMIN_TOKEN, "admin_token", "", {0, 0, 0, 1, 0, 1}},
      {AUTH_ANONYMOUS, "", "", {0, 0, 0, 0, 1, 1}},
      /* An anonymous identity is never a user or a group member, whatever
       * its fields say. */
      {AUTH_ANONYMOUS, "alice", "ops", {0, 0, 0, 0, 1, 1}},
  };
  for (size_t i = 0; i < N(cs); i++) {
    struct identity id = who(cs[i].src, cs[i].name, cs[i].groups);
    for (size_t j = 0; j < N(mods); j++) {
      int got = rules_decide(r, &id, mods[j], NULL);
      if (got != cs[i].want[j])
        TEST_FAIL_("case %zu (%s %s) reading %s: %d, want %d", i,
                   identity_source_name(cs[i].src), cs[i].name, mods[j], got,
                   cs[i].want[j]);
    }
  }
  rules_free(r);
}

static void test_match_fields(void) {
  struct rules *r = NULL;
  static const char text[] = "# header\n"
                             "deny  group:contractors  git.corp.example/secret "
                             "# keep out\n"
                             "allow authenticated      "
                             "git.corp.example/pay/*,*.internal/\n";
  ASSERT_EQ_INT(parse(text, &r, NULL), 0);
  struct identity c = who(AUTH_HTPASSWD, "carl", "contractors");
  struct rule_match m;
  memset(&m, 'X', sizeof m);
  ASSERT_EQ_INT(rules_decide(r, &c, "git.corp.example/secret/x", &m), 0);
  ASSERT_EQ_INT(m.allow, 0);
  ASSERT_EQ_INT(m.line, 2);
  ASSERT_EQ_STR(m.who, "group:contractors");
  ASSERT_EQ_STR(m.patterns, "git.corp.example/secret");
  ASSERT_EQ_INT(rules_decide(r, &c, "git.corp.example/pay/api", &m), 1);
  ASSERT_EQ_INT(m.allow, 1);
  ASSERT_EQ_INT(m.line, 3);
  ASSERT_EQ_STR(m.who, "authenticated");
  ASSERT_EQ_STR(m.patterns, "git.corp.example/pay/*,*.internal/");
  /* A trailing '/' on a pattern is dropped, as the go command does. */
  ASSERT_EQ_INT(rules_decide(r, &c, "svc.internal/x/y", &m), 1);
  ASSERT_EQ_INT(m.line, 3);
  /* No rule matches: denied, and the match says so. */
  memset(&m, 'X', sizeof m);
  ASSERT_EQ_INT(rules_decide(r, &c, "github.com/x/y", &m), 0);
  ASSERT_EQ_INT(m.allow, 0);
  ASSERT_EQ_INT(m.line, 0);
  ASSERT_EQ_STR(m.who, "");
  ASSERT_EQ_STR(m.patterns, "");
  /* No rules at all deny everything too. */
  memset(&m, 'X', sizeof m);
  ASSERT_EQ_INT(rules_decide(NULL, &c, "git.corp.example/pay/api", &m), 0);
  ASSERT_EQ_INT(m.line, 0);
  ASSERT_EQ_STR(m.who, "");
  rules_free(r);
}

static void test_default(void) {
  struct rules *r = NULL;
  ASSERT_EQ_INT(rules_default(&r), 0);
  ASSERT_EQ_INT(rules_count(r), 1);
  struct identity users[] = {
      who(AUTH_HTPASSWD, "alice", ""), who(AUTH_TOKEN, "ci", ""),
      who(AUTH_LDAP, "bob", "ops"), who(AUTH_ADMIN_TOKEN, "admin_token", "")};
  for (size_t i = 0; i < N(users); i++) {
    EXPECT(r, &users[i], "github.com/x/y", 1, 1);
    EXPECT(r, &users[i], "git.corp.example/a/b/c/d", 1, 1);
    ASSERT_EQ_INT(rules_allow_any(r, &users[i]), 1);
  }
  struct identity anon = who(AUTH_ANONYMOUS, "", "");
  EXPECT(r, &anon, "github.com/x/y", 0, 0);
  ASSERT_EQ_INT(rules_allow_any(r, &anon), 0);
  struct rule_match m;
  rules_decide(r, &users[0], "github.com/x/y", &m);
  ASSERT_EQ_STR(m.who, "authenticated");
  ASSERT_EQ_STR(m.patterns, "*");
  rules_free(r);
}

static void test_allow_any(void) {
  struct rules *r = NULL;
  static const char text[] = "deny  user:mallory  *\n"
                             "deny  group:frozen  */\n"
                             "deny  user:eve      git.corp.example/payments\n"
                             "allow user:alice    git.corp.example/x\n"
                             "allow group:ops     git.corp.example/ops\n"
                             "allow user:mallory  git.corp.example/x\n"
                             "allow user:eve      git.corp.example/x\n"
                             "allow anonymous     github.com\n"
                             "allow user:frank    a.example\n"
                             "deny  authenticated *\n"
                             "allow user:zed      a.example\n";
  ASSERT_EQ_INT(parse(text, &r, NULL), 0);
  struct identity alice = who(AUTH_HTPASSWD, "alice", "");
  struct identity bob = who(AUTH_HTPASSWD, "bob", "ops");
  struct identity carol = who(AUTH_HTPASSWD, "carol", "");
  struct identity anon = who(AUTH_ANONYMOUS, "", "");
  struct identity mallory = who(AUTH_HTPASSWD, "mallory", "");
  struct identity eve = who(AUTH_HTPASSWD, "eve", "");
  struct identity frank = who(AUTH_HTPASSWD, "frank", "frozen");
  struct identity zed = who(AUTH_HTPASSWD, "zed", "");
  ASSERT_EQ_INT(rules_allow_any(r, &alice), 1);
  ASSERT_EQ_INT(rules_allow_any(r, &bob), 1);
  ASSERT_EQ_INT(rules_allow_any(r, &carol), 0);
  ASSERT_EQ_INT(rules_allow_any(r, &anon), 1);
  /* A deny of every module before an allow: the allow can never apply. */
  ASSERT_EQ_INT(rules_allow_any(r, &mallory), 0);
  EXPECT(r, &mallory, "git.corp.example/x", 0, 1);
  ASSERT_EQ_INT(rules_allow_any(r, &frank), 0);
  EXPECT(r, &frank, "a.example/m", 0, 2);
  ASSERT_EQ_INT(rules_allow_any(r, &zed), 0);
  EXPECT(r, &zed, "a.example/m", 0, 10);
  /* A deny of some modules leaves the others. */
  ASSERT_EQ_INT(rules_allow_any(r, &eve), 1);
  EXPECT(r, &eve, "git.corp.example/x", 1, 7);
  ASSERT_EQ_INT(rules_allow_any(NULL, &alice), 0);
  rules_free(r);
}

/* user:NAME names people only: neither a token nor the admin token of the
 * same name is that user. */
static void test_user_is_a_person(void) {
  struct rules *r = NULL;
  struct reason why = {{0}};
  ASSERT_EQ_INT(parse("allow user:admin_token *\nallow user:ci *\n", &r, &why),
                0);
  struct identity admin = who(AUTH_ADMIN_TOKEN, "admin_token", "");
  struct identity tok = who(AUTH_TOKEN, "ci", "");
  struct identity ldap = who(AUTH_LDAP, "ci", "");
  EXPECT(r, &admin, "example.com/x", 0, 0);
  EXPECT(r, &tok, "example.com/x", 0, 0);
  EXPECT(r, &ldap, "example.com/x", 1, 2);
  rules_free(r);
}

int main(void) {
  RUN_TEST(test_user_is_a_person);
  RUN_TEST(test_parse_good);
  RUN_TEST(test_parse_bad);
  RUN_TEST(test_decide);
  RUN_TEST(test_who_kinds);
  RUN_TEST(test_match_fields);
  RUN_TEST(test_default);
  RUN_TEST(test_allow_any);
  return test_summary();
}
