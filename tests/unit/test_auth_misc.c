/* Unit tests for the smaller access-control pieces: identity helpers
 * (auth/identity.c), LDAP filter escaping (ldapauth_filter), the credential
 * cache (auth/credcache.c), request rate limits (auth/ratelimit.c) and
 * trusted proxies with X-Forwarded-For (server/clientaddr.c). */
#include "auth/credcache.h"
#include "auth/header.h"
#include "auth/identity.h"
#include "auth/ldapauth.h"
#include "auth/ratelimit.h"
#include "core/err.h"
#include "server/clientaddr.h"
#include "test.h"

#include <openssl/evp.h>
#include <stdio.h>

#define N(a) (sizeof(a) / sizeof *(a))

static struct identity who(enum auth_source src, const char *name,
                           const char *groups) {
  struct identity id;
  memset(&id, 0, sizeof id);
  id.source = src;
  snprintf(id.name, sizeof id.name, "%s", name);
  snprintf(id.groups, sizeof id.groups, "%s", groups);
  return id;
}

/* --- identity ------------------------------------------------------------ */

static void test_identity_add_groups(void) {
  struct identity id = who(AUTH_LDAP, "alice", "");
  ASSERT_EQ_INT(identity_add_groups(&id, "a,b"), 0);
  ASSERT_EQ_STR(id.groups, "a,b");
  ASSERT_EQ_INT(identity_add_groups(&id, "b,c,a"), 0);
  ASSERT_EQ_STR(id.groups, "a,b,c");
  /* Empty entries and duplicates inside one list. */
  ASSERT_EQ_INT(identity_add_groups(&id, ",,d,,d,"), 0);
  ASSERT_EQ_STR(id.groups, "a,b,c,d");
  /* A name that is a prefix or extension of a held one is another group. */
  ASSERT_EQ_INT(identity_add_groups(&id, "ab,a-b,b.c"), 0);
  ASSERT_EQ_STR(id.groups, "a,b,c,d,ab,a-b,b.c");
  /* Names that are not names are skipped. */
  ASSERT_EQ_INT(identity_add_groups(&id, "bad name,x/y,e"), 0);
  ASSERT_EQ_STR(id.groups, "a,b,c,d,ab,a-b,b.c,e");
  ASSERT_EQ_INT(identity_add_groups(&id, NULL), 0);
  ASSERT_EQ_INT(identity_add_groups(&id, ""), 0);
  ASSERT_EQ_STR(id.groups, "a,b,c,d,ab,a-b,b.c,e");
}

static void test_identity_groups_overflow(void) {
  /* Eight names of 127 bytes and seven commas fill 1023 bytes exactly; a
   * ninth does not fit, nor does a one-byte name after it. */
  struct identity id = who(AUTH_LDAP, "alice", "");
  char names[9][128];
  for (int i = 0; i < 9; i++) {
    memset(names[i], 'a' + i, 127);
    names[i][127] = '\0';
  }
  for (int i = 0; i < 8; i++)
    ASSERT_EQ_INT(identity_add_groups(&id, names[i]), 0);
  ASSERT_EQ_INT(strlen(id.groups), 1023);
  ASSERT_EQ_INT(identity_add_groups(&id, names[8]), ERR_TOO_LARGE);
  ASSERT_EQ_INT(identity_add_groups(&id, "z"), ERR_TOO_LARGE);
  ASSERT_EQ_INT(strlen(id.groups), 1023);
  ASSERT_TRUE(identity_in_group(&id, names[0]));
  ASSERT_TRUE(identity_in_group(&id, names[7]));
  ASSERT_FALSE(identity_in_group(&id, names[8]));
  ASSERT_FALSE(identity_in_group(&id, "z"));
  /* A duplicate is not an overflow. */
  ASSERT_EQ_INT(identity_add_groups(&id, names[3]), 0);

  /* A list that would need exactly 1024 bytes (no room for the NUL) does
   * not fit: 7 x 127 + 126 and seven commas is 1022 bytes, ",z" two more. */
  id = who(AUTH_LDAP, "carol", "");
  for (int i = 0; i < 7; i++)
    ASSERT_EQ_INT(identity_add_groups(&id, names[i]), 0);
  char n126[127];
  memset(n126, 'y', 126);
  n126[126] = '\0';
  ASSERT_EQ_INT(identity_add_groups(&id, n126), 0);
  ASSERT_EQ_INT(strlen(id.groups), 1022);
  ASSERT_EQ_INT(identity_add_groups(&id, "z"), ERR_TOO_LARGE);
  ASSERT_EQ_INT(strlen(id.groups), 1022);
  ASSERT_FALSE(identity_in_group(&id, "z"));

  /* What fits is added even when something before it did not. */
  id = who(AUTH_LDAP, "bob", "");
  for (int i = 0; i < 7; i++)
    identity_add_groups(&id, names[i]);
  ASSERT_EQ_INT(strlen(id.groups), 7 * 127 + 6);
  char list[400];
  snprintf(list, sizeof list, "%s%s,%s,short", names[7], "xx", names[8]);
  /* names[7]+"xx" is 129 bytes: not a name, skipped; names[8] fits (1023
   * bytes); "short" no longer does. */
  ASSERT_EQ_INT(identity_add_groups(&id, list), ERR_TOO_LARGE);
  ASSERT_EQ_INT(strlen(id.groups), 1023);
  ASSERT_TRUE(identity_in_group(&id, names[8]));
  ASSERT_FALSE(identity_in_group(&id, "short"));
}

static void test_identity_in_group(void) {
  struct identity id = who(AUTH_HTPASSWD, "alice", "payments-eu,ops,a");
  ASSERT_TRUE(identity_in_group(&id, "payments-eu"));
  ASSERT_TRUE(identity_in_group(&id, "ops"));
  ASSERT_TRUE(identity_in_group(&id, "a"));
  /* Exact names only: no prefix, suffix or substring across a comma. */
  ASSERT_FALSE(identity_in_group(&id, "payments"));
  ASSERT_FALSE(identity_in_group(&id, "payments-e"));
  ASSERT_FALSE(identity_in_group(&id, "op"));
  ASSERT_FALSE(identity_in_group(&id, "opsx"));
  ASSERT_FALSE(identity_in_group(&id, "eu,ops"));
  ASSERT_FALSE(identity_in_group(&id, "Ops"));
  ASSERT_FALSE(identity_in_group(&id, ""));
  id = who(AUTH_HTPASSWD, "alice", "");
  ASSERT_FALSE(identity_in_group(&id, ""));
  ASSERT_FALSE(identity_in_group(&id, "ops"));
}

static void test_identity_names(void) {
  ASSERT_EQ_STR(identity_source_name(AUTH_ANONYMOUS), "anonymous");
  ASSERT_EQ_STR(identity_source_name(AUTH_HTPASSWD), "htpasswd");
  ASSERT_EQ_STR(identity_source_name(AUTH_TOKEN), "token");
  ASSERT_EQ_STR(identity_source_name(AUTH_LDAP), "ldap");
  ASSERT_EQ_STR(identity_source_name(AUTH_ADMIN_TOKEN), "admin_token");
  struct identity id = who(AUTH_TOKEN, "ci", "");
  ASSERT_EQ_STR(identity_label(&id), "ci");
  id = who(AUTH_ANONYMOUS, "", "");
  ASSERT_EQ_STR(identity_label(&id), "anonymous");
  id = who(AUTH_ANONYMOUS, "tried-bob", "");
  ASSERT_EQ_STR(identity_label(&id), "anonymous");
  ASSERT_TRUE(auth_name_ok("alice.b_c@corp-x+y", 18));
  ASSERT_TRUE(auth_name_ok("ab/cd", 2)); /* the length is honoured */
  ASSERT_FALSE(auth_name_ok("", 0));
  ASSERT_FALSE(auth_name_ok("a b", 3));
  ASSERT_FALSE(auth_name_ok("a:b", 3));
  ASSERT_FALSE(auth_name_ok("a,b", 3));
  ASSERT_FALSE(auth_name_ok("\xc3\xa9", 2));
  char name[130];
  memset(name, 'n', sizeof name);
  ASSERT_TRUE(auth_name_ok(name, 127));
  ASSERT_FALSE(auth_name_ok(name, 128));
}

/* --- ldapauth_filter ----------------------------------------------------- */

static void expect_filter(const char *filter, const char *user, const char *dn,
                          const char *want, int at) {
  char out[256];
  memset(out, 'X', sizeof out);
  int rc = ldapauth_filter(filter, user, dn, out, sizeof out);
  if (rc != 0 || strcmp(out, want) != 0)
    TEST_FAIL_("line %d: \"%s\": rc %d \"%.*s\", want \"%s\"", at, filter, rc,
               rc ? 0 : 255, out, want);
}
#define EXPECT_FILTER(f, u, d, w) expect_filter((f), (u), (d), (w), __LINE__)

static void test_ldap_filter(void) {
  EXPECT_FILTER("(uid={user})", "alice", "", "(uid=alice)");
  EXPECT_FILTER("(&(objectClass=person)(|(uid={user})(mail={user})))", "bob",
                "", "(&(objectClass=person)(|(uid=bob)(mail=bob)))");
  /* RFC 4515 escapes: * ( ) \ and control bytes. */
  EXPECT_FILTER("(uid={user})", "*", "", "(uid=\\2a)");
  EXPECT_FILTER("(uid={user})", "a*)(uid=*", "", "(uid=a\\2a\\29\\28uid=\\2a)");
  EXPECT_FILTER("(uid={user})", "x\\y", "", "(uid=x\\5cy)");
  EXPECT_FILTER("(uid={user})", "a\x01\x1f\tb\n", "",
                "(uid=a\\01\\1f\\09b\\0a)");
  /* Other bytes, UTF-8 included, pass through. */
  EXPECT_FILTER("(uid={user})", "j\xc3\xb6rg=,+", "", "(uid=j\xc3\xb6rg=,+)");
  /* {dn} for group searches, escaped the same way. */
  EXPECT_FILTER("(&(objectClass=groupOfNames)(member={dn}))", "alice",
                "uid=alice,ou=People,dc=corp",
                "(&(objectClass=groupOfNames)(member=uid=alice,ou=People,dc="
                "corp))");
  EXPECT_FILTER("(|(member={dn})(memberUid={user}))", "a(b)", "cn=a\\2cb*,dc=x",
                "(|(member=cn=a\\5c2cb\\2a,dc=x)(memberUid=a"
                "\\28b\\29))");
  /* The filter's own characters are not escaped; near-placeholders stay. */
  EXPECT_FILTER("(cn=*)", "alice", "", "(cn=*)");
  EXPECT_FILTER("({use}{user}{dn{user}})", "u", "d", "({use}u{dnu})");
  EXPECT_FILTER("", "alice", "", "");
  EXPECT_FILTER("(uid={user})", "", "", "(uid=)");
}

static void test_ldap_filter_overflow(void) {
  char out[32];
  /* "(uid=alice)" is 11 bytes and a NUL: 12 fit, 11 do not. */
  ASSERT_EQ_INT(ldapauth_filter("(uid={user})", "alice", "", out, 12), 0);
  ASSERT_EQ_STR(out, "(uid=alice)");
  ASSERT_EQ_INT(ldapauth_filter("(uid={user})", "alice", "", out, 11),
                ERR_TOO_LARGE);
  /* Escaping grows the value: "(uid=\2a)" is 9 bytes. */
  ASSERT_EQ_INT(ldapauth_filter("(uid={user})", "*", "", out, 10), 0);
  ASSERT_EQ_STR(out, "(uid=\\2a)");
  ASSERT_EQ_INT(ldapauth_filter("(uid={user})", "*", "", out, 9),
                ERR_TOO_LARGE);
  ASSERT_EQ_INT(ldapauth_filter("(uid={user})", "*", "", out, 7),
                ERR_TOO_LARGE);
  ASSERT_EQ_INT(ldapauth_filter("", "", "", out, 1), 0);
  ASSERT_EQ_STR(out, "");
  ASSERT_EQ_INT(ldapauth_filter("", "", "", out, 0), ERR_TOO_LARGE);
  ASSERT_EQ_INT(ldapauth_filter("x", "", "", out, 1), ERR_TOO_LARGE);
  /* Nothing is written past cap: a guard byte survives. */
  char guard[16];
  memset(guard, 'G', sizeof guard);
  ASSERT_EQ_INT(ldapauth_filter("(uid={user})", "aaaaaaaaaaaa", "", guard, 8),
                ERR_TOO_LARGE);
  for (size_t i = 8; i < sizeof guard; i++)
    ASSERT_TRUE(guard[i] == 'G');
  char long_user[600];
  memset(long_user, '*', sizeof long_user - 1);
  long_user[sizeof long_user - 1] = '\0';
  char big[1024];
  ASSERT_EQ_INT(ldapauth_filter("(uid={user})", long_user, "", big, sizeof big),
                ERR_TOO_LARGE);
}

/* --- credcache ----------------------------------------------------------- */

static struct auth_credential cred(enum auth_scheme s, const char *user,
                                   const char *secret) {
  struct auth_credential c;
  memset(&c, 0, sizeof c);
  c.scheme = s;
  snprintf(c.user, sizeof c.user, "%s", user);
  snprintf(c.secret, sizeof c.secret, "%s", secret);
  c.secret_len = strlen(c.secret);
  return c;
}

static void test_credcache_key(void) {
  struct credcache *c = NULL, *c2 = NULL;
  ASSERT_EQ_INT(credcache_new(100, &c), 0);
  ASSERT_EQ_INT(credcache_new(100, &c2), 0);
  if (!c || !c2)
    return;
  struct credcache_hasher *h = credcache_hasher_new(c);
  struct credcache_hasher *h1 = credcache_hasher_new(c);
  struct credcache_hasher *h2 = credcache_hasher_new(c2);
  ASSERT_TRUE(h && h1 && h2);
  if (!h || !h1 || !h2)
    goto out;
  static const struct {
    enum auth_scheme s;
    const char *user, *secret;
  } cs[] = {
      {AUTH_SCHEME_BASIC, "alice", "pw"},
      {AUTH_SCHEME_BASIC, "alice", "pw2"},
      {AUTH_SCHEME_BASIC, "alicf", "pw"},
      {AUTH_SCHEME_BASIC, "bob", "pw"},
      /* user and secret cannot run into each other */
      {AUTH_SCHEME_BASIC, "ab", "c"},
      {AUTH_SCHEME_BASIC, "a", "bc"},
      {AUTH_SCHEME_BASIC, "", "pw"},
      {AUTH_SCHEME_BEARER, "", "pw"},
      {AUTH_SCHEME_BEARER, "", "gomirror_x"},
      {AUTH_SCHEME_BASIC, "", "gomirror_x"},
  };
  unsigned char k[N(cs)][CREDCACHE_KEY_LEN];
  for (size_t i = 0; i < N(cs); i++) {
    struct auth_credential x = cred(cs[i].s, cs[i].user, cs[i].secret);
    ASSERT_EQ_INT(credcache_key(h, &x, k[i]), 0);
    /* Stable: again, and with another hasher of the same cache. */
    unsigned char again[CREDCACHE_KEY_LEN], other[CREDCACHE_KEY_LEN];
    ASSERT_EQ_INT(credcache_key(h, &x, again), 0);
    ASSERT_EQ_INT(credcache_key(h1, &x, other), 0);
    ASSERT_TRUE(memcmp(k[i], again, CREDCACHE_KEY_LEN) == 0);
    ASSERT_TRUE(memcmp(k[i], other, CREDCACHE_KEY_LEN) == 0);
    /* Another cache has another key: the key is not a plain hash. */
    ASSERT_EQ_INT(credcache_key(h2, &x, other), 0);
    ASSERT_TRUE(memcmp(k[i], other, CREDCACHE_KEY_LEN) != 0);
  }
  for (size_t i = 0; i < N(cs); i++)
    for (size_t j = i + 1; j < N(cs); j++)
      if (memcmp(k[i], k[j], CREDCACHE_KEY_LEN) == 0)
        TEST_FAIL_("credentials %zu and %zu share a key", i, j);
  /* The secret counts up to secret_len, not to a NUL. */
  struct auth_credential x = cred(AUTH_SCHEME_BASIC, "alice", "pw");
  unsigned char a[CREDCACHE_KEY_LEN], b[CREDCACHE_KEY_LEN];
  ASSERT_EQ_INT(credcache_key(h, &x, a), 0);
  x.secret_len = 1;
  ASSERT_EQ_INT(credcache_key(h, &x, b), 0);
  ASSERT_TRUE(memcmp(a, b, CREDCACHE_KEY_LEN) != 0);
out:
  credcache_hasher_free(h);
  credcache_hasher_free(h1);
  credcache_hasher_free(h2);
  credcache_hasher_free(NULL);
  credcache_free(c);
  credcache_free(c2);
  credcache_free(NULL);
}

/* A distinct, deterministic key per n. */
static void key_of(unsigned n, unsigned char key[CREDCACHE_KEY_LEN]) {
  unsigned int len = 0;
  EVP_Digest(&n, sizeof n, key, &len, EVP_sha256(), NULL);
}

static void test_credcache_get_put(void) {
  struct credcache *c = NULL;
  ASSERT_EQ_INT(credcache_new(100, &c), 0);
  if (!c)
    return;
  unsigned char k1[CREDCACHE_KEY_LEN], k2[CREDCACHE_KEY_LEN];
  key_of(1, k1);
  key_of(2, k2);
  struct identity alice = who(AUTH_HTPASSWD, "alice", "payments,ops");
  struct identity got;
  memset(&got, 0, sizeof got);
  ASSERT_EQ_INT(credcache_get(c, k1, 1, 1000, &got), 0);
  ASSERT_EQ_INT(credcache_size(c), 0);
  credcache_put(c, k1, 1, 1000, 60, &alice);
  ASSERT_EQ_INT(credcache_size(c), 1);
  ASSERT_EQ_INT(credcache_get(c, k1, 1, 1001, &got), 1);
  ASSERT_EQ_STR(got.name, "alice");
  ASSERT_EQ_STR(got.groups, "payments,ops");
  ASSERT_EQ_INT(got.source, AUTH_HTPASSWD);
  /* Another key misses. */
  memset(&got, 0, sizeof got);
  ASSERT_EQ_INT(credcache_get(c, k2, 1, 1001, &got), 0);
  ASSERT_EQ_STR(got.name, "");
  /* Another generation (the files changed) misses, older or newer. */
  ASSERT_EQ_INT(credcache_get(c, k1, 2, 1001, &got), 0);
  ASSERT_EQ_INT(credcache_get(c, k1, 0, 1001, &got), 0);
  /* Expiry: good until now + ttl, not at it. */
  ASSERT_EQ_INT(credcache_get(c, k1, 1, 1059.9, &got), 1);
  ASSERT_EQ_INT(credcache_get(c, k1, 1, 1060, &got), 0);
  ASSERT_EQ_INT(credcache_get(c, k1, 1, 5000, &got), 0);

  /* A wrong credential is remembered as such (2), without an identity. */
  credcache_put(c, k2, 1, 1000, 5, NULL);
  memset(&got, 0, sizeof got);
  snprintf(got.name, sizeof got.name, "untouched");
  ASSERT_EQ_INT(credcache_get(c, k2, 1, 1001, &got), 2);
  ASSERT_EQ_STR(got.name, "untouched");
  ASSERT_EQ_INT(credcache_get(c, k2, 1, 1005, &got), 0);
  ASSERT_EQ_INT(credcache_get(c, k2, 2, 1001, &got), 0);

  /* Replacing an entry: a verified one over a wrong one and back, in the
   * same slot. */
  credcache_put(c, k2, 1, 1000, 60, &alice);
  ASSERT_EQ_INT(credcache_get(c, k2, 1, 1001, &got), 1);
  ASSERT_EQ_STR(got.name, "alice");
  credcache_put(c, k2, 1, 1000, 60, NULL);
  ASSERT_EQ_INT(credcache_get(c, k2, 1, 1001, &got), 2);
  /* A new generation replaces the old entry. */
  credcache_put(c, k1, 2, 2000, 60, &alice);
  ASSERT_EQ_INT(credcache_get(c, k1, 2, 2001, &got), 1);
  ASSERT_EQ_INT(credcache_get(c, k1, 1, 2001, &got), 0);
  ASSERT_EQ_INT(credcache_size(c), 2);
  credcache_free(c);
}

static void test_credcache_many(void) {
  enum { CAP = 100, FLOOD = 20000 };
  struct credcache *c = NULL;
  ASSERT_EQ_INT(credcache_new(CAP, &c), 0);
  if (!c)
    return;
  struct identity id = who(AUTH_LDAP, "u", "");
  unsigned char k[CREDCACHE_KEY_LEN];
  /* Far more live entries than the capacity: no crash, the size stays
   * bounded, and the newest entry is there. */
  for (unsigned i = 0; i < FLOOD; i++) {
    key_of(i, k);
    snprintf(id.name, sizeof id.name, "u%u", i);
    credcache_put(c, k, 1, 100, 1e6, i % 3 ? &id : NULL);
  }
  size_t size = credcache_size(c);
  ASSERT_TRUE(size > 0 && size < FLOOD);
  ASSERT_TRUE(size <= 16 * 64); /* never more than the smallest tables hold */
  struct identity got;
  key_of(FLOOD - 1, k);
  ASSERT_EQ_INT(credcache_get(c, k, 1, 101, &got), 1);
  ASSERT_EQ_STR(got.name, "u19999");
  /* A wrong credential (every third) never comes back as verified. */
  key_of(FLOOD - 2, k);
  ASSERT_TRUE(credcache_get(c, k, 1, 101, &got) != 1);

  /* Once those have expired, recent entries all find room. */
  for (unsigned i = 0; i < 40; i++) {
    key_of(100000 + i, k);
    snprintf(id.name, sizeof id.name, "r%u", i);
    credcache_put(c, k, 1, 2e6, 60, &id);
  }
  for (unsigned i = 0; i < 40; i++) {
    key_of(100000 + i, k);
    char want[16];
    snprintf(want, sizeof want, "r%u", i);
    if (credcache_get(c, k, 1, 2e6 + 1, &got) != 1 ||
        strcmp(got.name, want) != 0)
      TEST_FAIL_("recent entry %u is missing", i);
  }
  /* And so do entries of a new generation, whatever the old one left. */
  for (unsigned i = 0; i < 40; i++) {
    key_of(200000 + i, k);
    credcache_put(c, k, 2, 2e6, 60, &id);
  }
  for (unsigned i = 0; i < 40; i++) {
    key_of(200000 + i, k);
    if (credcache_get(c, k, 2, 2e6 + 1, &got) != 1)
      TEST_FAIL_("generation-2 entry %u is missing", i);
  }
  credcache_free(c);

  /* Expired entries are dropped to make room, not kept: after a flood
   * that has expired, a few hundred live entries all stay. */
  ASSERT_EQ_INT(credcache_new(1000, &c), 0);
  if (!c)
    return;
  for (unsigned i = 0; i < FLOOD; i++) {
    key_of(i, k);
    credcache_put(c, k, 1, 100, 1, &id);
  }
  for (unsigned i = 0; i < 400; i++) {
    key_of(300000 + i, k);
    credcache_put(c, k, 1, 200, 60, &id);
  }
  unsigned missing = 0;
  for (unsigned i = 0; i < 400; i++) {
    key_of(300000 + i, k);
    missing += credcache_get(c, k, 1, 201, &got) != 1;
  }
  ASSERT_EQ_INT(missing, 0);
  ASSERT_TRUE(credcache_size(c) >= 400 && credcache_size(c) <= 1500);
  credcache_free(c);
}

/* --- ratelimit ----------------------------------------------------------- */

/* Takes from key's bucket until refused (at most limit times); the number
 * of requests let through. */
static int takes_until_refused(struct ratelimit *rl, const char *key,
                               const struct identity *id, int limit,
                               struct rate_outcome *last) {
  int n = 0;
  while (n < limit && ratelimit_take(rl, key, id, last) == 0)
    n++;
  return n;
}

static void test_ratelimit_basic(void) {
  struct ratelimit *rl = NULL;
  struct reason why = {{0}};
  ASSERT_EQ_INT(ratelimit_new(5, 5, NULL, NULL, NULL, &rl, &why), 0);
  if (!rl)
    return;
  ASSERT_EQ_INT(ratelimit_active(rl), 1);
  struct identity alice = who(AUTH_HTPASSWD, "alice", "");
  struct rate_outcome o;
  for (int i = 0; i < 5; i++)
    ASSERT_EQ_INT(ratelimit_take(rl, "user:alice", &alice, &o), 0);
  ASSERT_EQ_INT(ratelimit_take(rl, "user:alice", &alice, &o), ERR_RATE_LIMITED);
  ASSERT_TRUE(o.retry_s > 0 && o.retry_s <= 0.2 + 1e-6);
  ASSERT_TRUE(o.rate == 5 && o.burst == 5);
  ASSERT_EQ_INT(o.shared, 0);
  /* Refused again at once. */
  ASSERT_EQ_INT(ratelimit_take(rl, "user:alice", &alice, &o), ERR_RATE_LIMITED);
  /* Another key has its own bucket. */
  struct identity anon = who(AUTH_ANONYMOUS, "", "");
  ASSERT_EQ_INT(takes_until_refused(rl, "addr:10.0.0.7", &anon, 100, &o), 5);
  ASSERT_TRUE(o.retry_s > 0);
  ratelimit_free(rl);
  ratelimit_free(NULL);

  /* burst 0: twice the rate. */
  ASSERT_EQ_INT(ratelimit_new(3, 0, "", "", NULL, &rl, &why), 0);
  ASSERT_EQ_INT(takes_until_refused(rl, "k", &alice, 100, &o), 6);
  ASSERT_TRUE(o.burst == 6);
  ratelimit_free(rl);

  /* rate 0: no limit. */
  ASSERT_EQ_INT(ratelimit_new(0, 0, NULL, NULL, NULL, &rl, &why), 0);
  ASSERT_EQ_INT(ratelimit_active(rl), 0);
  ASSERT_EQ_INT(takes_until_refused(rl, "k", &alice, 1000, &o), 1000);
  ASSERT_TRUE(o.rate == 0);
  ratelimit_free(rl);
  ASSERT_EQ_INT(ratelimit_active(NULL), 0);
  ASSERT_EQ_INT(ratelimit_take(NULL, "k", &alice, &o), 0);
}

static void test_ratelimit_groups(void) {
  struct ratelimit *rl = NULL;
  struct reason why = {{0}};
  ASSERT_EQ_INT(
      ratelimit_new(5, 5, "ci:100/200,slow:1/1,bots:50", NULL, NULL, &rl, &why),
      0);
  if (!rl)
    return;
  struct rate_outcome o;
  /* A CI identity gets the group's burst of 200, not the default 5 (100/s
   * refills one more request every 10 ms: the bound leaves room for a
   * half-second stall on a busy machine). */
  struct identity ci = who(AUTH_TOKEN, "ci-deploy", "ci");
  int n = takes_until_refused(rl, "token:ci-deploy", &ci, 1000, &o);
  ASSERT_TRUE(n >= 200 && n <= 250);
  ASSERT_TRUE(o.rate == 100 && o.burst == 200);
  ASSERT_TRUE(o.retry_s > 0 && o.retry_s <= 0.01 + 1e-6);
  /* Without burst: twice the rate. */
  struct identity bot = who(AUTH_TOKEN, "renovate", "bots");
  n = takes_until_refused(rl, "token:renovate", &bot, 1000, &o);
  ASSERT_TRUE(n >= 100 && n <= 120);
  ASSERT_TRUE(o.rate == 50 && o.burst == 100);
  /* In several groups the most generous applies. */
  struct identity both = who(AUTH_TOKEN, "both", "slow,ci");
  n = takes_until_refused(rl, "token:both", &both, 1000, &o);
  ASSERT_TRUE(n >= 200 && n <= 250);
  /* ...whatever the order of the overrides or of the groups. */
  struct identity sb = who(AUTH_TOKEN, "sb", "bots,slow");
  n = takes_until_refused(rl, "token:sb", &sb, 1000, &o);
  ASSERT_TRUE(n >= 100 && n <= 120);
  ASSERT_TRUE(o.rate == 50);
  struct identity slow = who(AUTH_HTPASSWD, "snail", "slow");
  ASSERT_EQ_INT(takes_until_refused(rl, "user:snail", &slow, 100, &o), 1);
  ASSERT_TRUE(o.retry_s > 0.9 && o.retry_s <= 1 + 1e-6);
  /* A group that merely starts like one does not count. */
  struct identity other = who(AUTH_HTPASSWD, "bob", "cicd,ops");
  ASSERT_EQ_INT(takes_until_refused(rl, "user:bob", &other, 100, &o), 5);
  ratelimit_free(rl);

  /* Group overrides make limits active even with no default rate. */
  ASSERT_EQ_INT(ratelimit_new(0, 0, "ci:10", NULL, NULL, &rl, &why), 0);
  ASSERT_EQ_INT(ratelimit_active(rl), 1);
  struct identity alice = who(AUTH_HTPASSWD, "alice", "");
  ASSERT_EQ_INT(takes_until_refused(rl, "user:alice", &alice, 500, &o), 500);
  ASSERT_EQ_INT(takes_until_refused(rl, "token:ci", &ci, 500, &o), 20);
  ratelimit_free(rl);
}

static void test_ratelimit_bad_overrides(void) {
  static const char *const bad[] = {
      "ci",      "ci:",    "ci:0",     "ci:-1",    "ci:abc",
      "ci:5/0",  "ci:5/x", "ci:5/",    "ci:5x",    "ci:5/6/7",
      ":5",      "c i:5",  "c/i:5",    "ci:inf",   "ci:nan",
      "ci:1e10", "ci:5,,", "ci:5,bad", "ci:5;x:1", "ci:5/0.5",
  };
  for (size_t i = 0; i < N(bad); i++) {
    static char sentinel;
    struct ratelimit *rl = (struct ratelimit *)(void *)&sentinel;
    struct reason why = {{0}};
    int rc = ratelimit_new(5, 5, bad[i], NULL, NULL, &rl, &why);
    if (rc != ERR_CONFIG || rl) {
      TEST_FAIL_("\"%s\": rc %d", bad[i], rc);
      if (!rc)
        ratelimit_free(rl);
      continue;
    }
    if (strncmp(why.text, "rate_limit_groups: entry '", 26) != 0)
      TEST_FAIL_("\"%s\": reason \"%s\"", bad[i], why.text);
    if (ratelimit_check_groups(bad[i], NULL, NULL) != ERR_CONFIG)
      TEST_FAIL_("ratelimit_check_groups accepted \"%s\"", bad[i]);
  }
  static const char *const bad_mbps[] = {"dl",   "dl:0",  "dl:8/9",
                                         "dl:x", "d l:8", "dl:-8"};
  for (size_t i = 0; i < N(bad_mbps); i++) {
    struct ratelimit *rl = NULL;
    struct reason why = {{0}};
    if (ratelimit_new(5, 5, NULL, bad_mbps[i], NULL, &rl, &why) != ERR_CONFIG)
      TEST_FAIL_("mbps \"%s\" accepted", bad_mbps[i]);
    else if (!strstr(why.text, "rate_limit_mbps_groups"))
      TEST_FAIL_("mbps \"%s\": reason \"%s\"", bad_mbps[i], why.text);
    ratelimit_free(rl);
    if (ratelimit_check_groups(NULL, bad_mbps[i], NULL) != ERR_CONFIG)
      TEST_FAIL_("ratelimit_check_groups accepted mbps \"%s\"", bad_mbps[i]);
  }
  /* Good lists pass the check, empty or absent ones too. */
  struct reason why = {{0}};
  ASSERT_EQ_INT(ratelimit_check_groups("ci:100/200,bots:0.5,x.y@z:1e3/1e3",
                                       "dl:8,fast:1000.5", &why),
                0);
  ASSERT_EQ_INT(ratelimit_check_groups(NULL, NULL, &why), 0);
  ASSERT_EQ_INT(ratelimit_check_groups("", "", &why), 0);
  ASSERT_EQ_INT(ratelimit_check_groups("ci:5,", NULL, &why), 0);
  /* More than 64 overrides do not fit. */
  char many[2048] = "";
  size_t len = 0;
  for (int i = 0; i < 65; i++)
    len += (size_t)snprintf(many + len, sizeof many - len, "%sg%d:1",
                            i ? "," : "", i);
  struct ratelimit *rl = NULL;
  ASSERT_EQ_INT(ratelimit_new(5, 5, many, NULL, NULL, &rl, &why), ERR_CONFIG);
  ASSERT_TRUE(strstr(why.text, "too many") != NULL);
  ASSERT_TRUE(rl == NULL);
}

static void test_ratelimit_bandwidth(void) {
  struct ratelimit *rl = NULL;
  struct reason why = {{0}};
  ASSERT_EQ_INT(ratelimit_new(0, 0, NULL, "dl:8,fast:80", NULL, &rl, &why), 0);
  if (!rl)
    return;
  ASSERT_EQ_INT(ratelimit_active(rl), 2);
  struct identity plain = who(AUTH_HTPASSWD, "a", "ops");
  struct identity dl = who(AUTH_HTPASSWD, "b", "dl");
  struct identity both = who(AUTH_HTPASSWD, "c", "fast,dl");
  ASSERT_TRUE(ratelimit_bandwidth(rl, &plain) == NULL);
  struct bwbucket *b1 = ratelimit_bandwidth(rl, &dl);
  struct bwbucket *b2 = ratelimit_bandwidth(rl, &both);
  ASSERT_TRUE(b1 != NULL && b2 != NULL && b1 != b2);
  /* The most generous cap is the same bucket for every fast member. */
  struct identity fast = who(AUTH_HTPASSWD, "d", "fast");
  ASSERT_TRUE(ratelimit_bandwidth(rl, &fast) == b2);
  /* Within the quarter second's allowance (8 Mbit/s: 250 kB): no wait. */
  bwbucket_take(b1, 1000);
  bwbucket_take(NULL, 1000);
  ASSERT_TRUE(ratelimit_bandwidth(NULL, &dl) == NULL);
  ratelimit_free(rl);
}

/* --- clientaddr ---------------------------------------------------------- */

static void test_cidr_parse(void) {
  struct cidr_list *l = NULL;
  struct reason why = {{0}};
  ASSERT_EQ_INT(cidr_list_parse("10.0.0.0/8, 192.168.1.7,::1/128,\tfd00::/8, "
                                "172.16.0.0/12 ,100.64.0.0/10,2001:db8::/33",
                                &l, &why),
                0);
  ASSERT_TRUE(l != NULL);
  static const struct {
    const char *addr;
    int in;
  } cs[] = {
      {"10.0.0.0", 1},
      {"10.255.255.255", 1},
      {"11.0.0.0", 0},
      {"9.255.255.255", 0},
      {"192.168.1.7", 1},
      {"192.168.1.8", 0},
      {"192.168.1.6", 0},
      {"::1", 1},
      {"::2", 0},
      {"fd00::1", 1},
      {"fdff:ffff::1", 1},
      {"fe00::1", 0},
      {"fc00::1", 0},
      {"172.16.0.1", 1},
      {"172.31.255.255", 1},
      {"172.32.0.0", 0},
      {"172.15.255.255", 0},
      {"100.64.0.1", 1},
      {"100.127.255.255", 1},
      {"100.128.0.0", 0},
      {"2001:db8::1", 1},
      {"2001:db8:7fff::1", 1},
      {"2001:db8:8000::1", 0},
      /* An IPv4 peer on a dual-stack socket (::ffff:a.b.c.d) is that IPv4
       * address; other IPv6 addresses never match IPv4 ranges. */
      {"::ffff:10.0.0.1", 1},
      {"::ffff:11.0.0.1", 0},
      {"::10.0.0.1", 0},
      /* Not addresses. */
      {"", 0},
      {"10.0.0", 0},
      {"10.0.0.1 ", 0},
      {"host.example", 0},
      {"10.0.0.1/32", 0},
  };
  for (size_t i = 0; i < N(cs); i++)
    if (cidr_list_contains(l, cs[i].addr) != cs[i].in)
      TEST_FAIL_("contains(%s) != %d", cs[i].addr, cs[i].in);
  ASSERT_EQ_INT(cidr_list_contains(l, NULL), 0);
  cidr_list_free(l);
  cidr_list_free(NULL);
  ASSERT_EQ_INT(cidr_list_contains(NULL, "10.0.0.1"), 0);

  /* /0 is every address of the family; /32 and /128 are one host. */
  ASSERT_EQ_INT(cidr_list_parse("0.0.0.0/0,2001:db8::1/128", &l, &why), 0);
  ASSERT_EQ_INT(cidr_list_contains(l, "203.0.113.9"), 1);
  ASSERT_EQ_INT(cidr_list_contains(l, "2001:db8::1"), 1);
  ASSERT_EQ_INT(cidr_list_contains(l, "2001:db8::2"), 0);
  ASSERT_EQ_INT(cidr_list_contains(l, "::"), 0);
  cidr_list_free(l);
  /* Host bits set in the network are ignored (10.1.2.3/8 is 10/8). */
  ASSERT_EQ_INT(cidr_list_parse("10.1.2.3/8,10.0.0.9/32", &l, &why), 0);
  ASSERT_EQ_INT(cidr_list_contains(l, "10.200.0.1"), 1);
  ASSERT_EQ_INT(cidr_list_contains(l, "10.0.0.9"), 1);
  cidr_list_free(l);

  /* Empty: no list. */
  l = (struct cidr_list *)&why;
  ASSERT_EQ_INT(cidr_list_parse("", &l, &why), 0);
  ASSERT_TRUE(l == NULL);
  ASSERT_EQ_INT(cidr_list_parse(NULL, &l, &why), 0);
  ASSERT_TRUE(l == NULL);
  /* A trailing comma is tolerated. */
  ASSERT_EQ_INT(cidr_list_parse("10.0.0.0/8,", &l, &why), 0);
  ASSERT_EQ_INT(cidr_list_contains(l, "10.0.0.1"), 1);
  cidr_list_free(l);
}

static void test_cidr_bad(void) {
  static const char *const bad[] = {
      "10.0.0.0/33",
      "::/129",
      "10.0.0.0/",
      "10.0.0.0/-1",
      "10.0.0.0/+8",
      "10.0.0.0/ 8",
      "10.0.0/8",
      "10.0.0.0/8x",
      "10.0.0.0/8/8",
      "host.example",
      "10.0.0.1,,10.0.0.2",
      "/8",
      "10.0.0.256",
      "1.2.3.4 5.6.7.8",
      " ",
      "10.0.0.0/99999999999999999999",
      "::1/",
      "fd00::/8 ,x",
  };
  for (size_t i = 0; i < N(bad); i++) {
    struct cidr_list *l = NULL;
    struct reason why = {{0}};
    int rc = cidr_list_parse(bad[i], &l, &why);
    if (rc != ERR_CONFIG || l) {
      TEST_FAIL_("\"%s\": rc %d", bad[i], rc);
      cidr_list_free(l);
      continue;
    }
    if (strncmp(why.text, "trusted_proxies: '", 18) != 0)
      TEST_FAIL_("\"%s\": reason \"%s\"", bad[i], why.text);
  }
  struct cidr_list *l = NULL;
  struct reason why = {{0}};
  ASSERT_EQ_INT(cidr_list_parse("10.0.0.0/8, 10.0.0.0/33", &l, &why),
                ERR_CONFIG);
  ASSERT_EQ_STR(why.text, "trusted_proxies: '10.0.0.0/33' is not an address "
                          "or CIDR (e.g. 10.0.0.0/8)");
}

static void expect_client(const struct cidr_list *t, const char *remote,
                          const char *xff, const char *want, int at) {
  char out[CLIENTADDR_MAX];
  memset(out, 'X', sizeof out);
  client_address(t, remote, xff, out, sizeof out);
  if (strcmp(out, want) != 0)
    TEST_FAIL_("line %d: remote %s, XFF \"%s\": \"%s\", want \"%s\"", at,
               remote ? remote : "(null)", xff ? xff : "(null)", out, want);
}
#define EXPECT_CLIENT(t, r, x, w) expect_client((t), (r), (x), (w), __LINE__)

static void test_client_address(void) {
  struct cidr_list *t = NULL;
  ASSERT_EQ_INT(cidr_list_parse("10.0.0.0/8,fd00::/8", &t, NULL), 0);
  /* An untrusted peer's X-Forwarded-For is ignored. */
  EXPECT_CLIENT(t, "203.0.113.5", "1.2.3.4", "203.0.113.5");
  EXPECT_CLIENT(t, "203.0.113.5", NULL, "203.0.113.5");
  /* A trusted peer: the address it forwards for. */
  EXPECT_CLIENT(t, "10.0.0.1", "1.2.3.4", "1.2.3.4");
  EXPECT_CLIENT(t, "10.0.0.1", NULL, "10.0.0.1");
  EXPECT_CLIENT(t, "10.0.0.1", "  1.2.3.4\t", "1.2.3.4");
  /* The rightmost untrusted address wins: entries left of it were written
   * by the client and may be spoofed. */
  EXPECT_CLIENT(t, "10.0.0.1", "6.6.6.6, 1.2.3.4", "1.2.3.4");
  EXPECT_CLIENT(t, "10.0.0.1", "6.6.6.6, 1.2.3.4, 10.0.0.2", "1.2.3.4");
  EXPECT_CLIENT(t, "10.0.0.1", "10.9.9.9,6.6.6.6,1.2.3.4,10.0.0.3,10.0.0.2",
                "1.2.3.4");
  /* A spoofed "trusted" entry left of the client does not help. */
  EXPECT_CLIENT(t, "10.0.0.1", "10.0.0.5, 1.2.3.4", "1.2.3.4");
  /* Garbage stops the walk at the proxy that added it. */
  EXPECT_CLIENT(t, "10.0.0.1", "1.2.3.4, garbage, 10.0.0.2", "10.0.0.2");
  EXPECT_CLIENT(t, "10.0.0.1", "1.2.3.4, unknown", "10.0.0.1");
  EXPECT_CLIENT(t, "10.0.0.1", "1.2.3.4,", "10.0.0.1");
  EXPECT_CLIENT(t, "10.0.0.1", "1.2.3.4,,10.0.0.2", "10.0.0.2");
  EXPECT_CLIENT(t, "10.0.0.1", "", "10.0.0.1");
  EXPECT_CLIENT(t, "10.0.0.1", "1.2.3.4:5678", "10.0.0.1");
  EXPECT_CLIENT(t, "10.0.0.1", "[2001:db8::1]", "10.0.0.1");
  EXPECT_CLIENT(
      t, "10.0.0.1",
      "1.2.3.4, "
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      "10.0.0.1");
  /* Only trusted proxies all the way: the leftmost one. */
  EXPECT_CLIENT(t, "10.0.0.1", "10.0.0.3, 10.0.0.2", "10.0.0.3");
  /* IPv6 peers and clients. */
  EXPECT_CLIENT(t, "fd00::1", "2001:db8::7", "2001:db8::7");
  EXPECT_CLIENT(t, "fd00::1", "2001:db8::7, fd00::2, 10.0.0.4", "2001:db8::7");
  EXPECT_CLIENT(t, "2001:db8::9", "1.2.3.4", "2001:db8::9");
  /* A missing peer address, no trusted list. */
  EXPECT_CLIENT(t, NULL, "1.2.3.4", "-");
  EXPECT_CLIENT(NULL, "10.0.0.1", "1.2.3.4", "10.0.0.1");

  /* The output is cut to cap, NUL-terminated, never overrun. */
  char small[8];
  memset(small, 'X', sizeof small);
  client_address(t, "10.0.0.1", "2001:db8::1234:5678", small, 5);
  ASSERT_EQ_STR(small, "2001");
  ASSERT_TRUE(small[5] == 'X');
  client_address(t, "10.0.0.1", "1.2.3.4", small, 0);
  ASSERT_TRUE(small[0] == '2');
  /* An address exactly cap bytes long loses its last byte to the NUL. */
  char exact[12];
  memset(exact, 'X', sizeof exact);
  client_address(t, "10.0.0.1", "1.2.3.45", exact, 8);
  ASSERT_EQ_STR(exact, "1.2.3.4");
  ASSERT_TRUE(exact[8] == 'X');
  cidr_list_free(t);
}

int main(void) {
  RUN_TEST(test_identity_add_groups);
  RUN_TEST(test_identity_groups_overflow);
  RUN_TEST(test_identity_in_group);
  RUN_TEST(test_identity_names);
  RUN_TEST(test_ldap_filter);
  RUN_TEST(test_ldap_filter_overflow);
  RUN_TEST(test_credcache_key);
  RUN_TEST(test_credcache_get_put);
  RUN_TEST(test_credcache_many);
  RUN_TEST(test_ratelimit_basic);
  RUN_TEST(test_ratelimit_groups);
  RUN_TEST(test_ratelimit_bad_overrides);
  RUN_TEST(test_ratelimit_bandwidth);
  RUN_TEST(test_cidr_parse);
  RUN_TEST(test_cidr_bad);
  RUN_TEST(test_client_address);
  return test_summary();
}
