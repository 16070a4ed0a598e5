/* Unit tests for the identity files: htpasswd (auth/htpasswd.c), API tokens
 * (auth/tokens.c), the group file (auth/groups.c) and the line walking they
 * share (auth/textfile.c). The htpasswd lines below were written by
 * apache2-utils' htpasswd (-B, -2, -5, -m, -d, -s, -p) and openssl passwd. */
#include "auth/groups.h"
#include "auth/htpasswd.h"
#include "auth/identity.h"
#include "auth/textfile.h"
#include "auth/tokens.h"
#include "core/err.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define N(a) (sizeof(a) / sizeof *(a))

/* htpasswd -nbB alice 'correct horse' */
#define ALICE_BCRYPT                                                           \
  "alice:$2y$05$PwQTOcQ8jj/3uAX9GVbCxOMfTnk13G7On18SX.ljrTtRLXbzyMD7O"
/* htpasswd -nbB -C 4 bob 's3cret:with:colons' */
#define BOB_BCRYPT                                                             \
  "bob:$2y$04$EPRvL6ZtD21N5eMpagPYCOeNTlsQLp80MS75qJqejimejfbsUIBre"
/* htpasswd -nbB -C 4 erin 'b-variant', with the $2b$ prefix OpenBSD and
 * Python's bcrypt write: for ASCII passwords both give the same hash. */
#define ERIN_BCRYPT_2B                                                         \
  "erin:$2b$04$EAVVYjMn9qsOfqc5K9qPfObSpGx7VPIN0Gw6iJEOF2gVJYhRpeEZa"
/* htpasswd -nb5 carol 'carol-sha512' (-5 is SHA-512-crypt) */
#define CAROL_SHA512                                                           \
  "carol:$6$FQgY3eHageiWYJSi$camBuMhyxKZXxEw3c//9GFx.Ds8tqTEVDEv0pFy76cLZPw"   \
  "mclgfPIahOVyXuE07j2aRHY0BPnBj751UMh63670"
/* htpasswd -nb2 dave 'dave-sha256' (-2 is SHA-256-crypt) */
#define DAVE_SHA256                                                            \
  "dave:$5$cF.NBVxAj2aSi6ns$mBnaRqtJdDaJrV5ZX5k3NPgwVumq9OJ22QWZiKjlhV."
/* htpasswd -nb2 -r 10000 ivan 'roundspass' */
#define IVAN_SHA256_ROUNDS                                                     \
  "ivan:$5$rounds=10000$vMtR4T77pzNjG4JI$OXbUeFexAQ3GSX1qE3OygOJa.rAIC5fe1b"   \
  "DqFMS/rgC"
/* htpasswd -nb5 -r 6000 judy 'roundspass' */
#define JUDY_SHA512_ROUNDS                                                     \
  "judy:$6$rounds=6000$dzFOzfrQHaMz0QqH$LaZXoji8vBZUeJ5OrEiWyYR3KVhd0SVTgZ/"   \
  "XvcPFSShlbqiLh6EjU6XH1nA3wOzUpezy2bAPe9PKigx.h/2/x0"

/* Schemes that are refused. */
#define EVE_APR1 "eve:$apr1$B9TiT/q1$KVW./7iC/CwlI8.6WMQD5." /* -m */
#define FRANK_DES "frank:5Fr5T86hIuQs."                      /* -d */
#define GINA_SHA1 "gina:{SHA}z0jT3TdveclVlHs5WCpg5cPeIe8="   /* -s */
#define HANK_PLAIN "hank:plain"                              /* -p */
/* openssl passwd -1 md5crypt */
#define KIM_MD5CRYPT "kim:$1$ZUW1/Eib$Xu0G749FW0XJTBBzqYoV9."

/* sha256("abc") and sha256(""), FIPS 180-2 and the usual empty vector. */
#define SHA256_ABC                                                             \
  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA256_EMPTY                                                           \
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static int htp(const char *text, struct htpasswd **h, struct reason *why) {
  return htpasswd_parse(text, strlen(text), "users.htpasswd", h, why);
}

/* --- htpasswd ------------------------------------------------------------ */

static void test_htpasswd_accepts(void) {
  static const char text[] = ALICE_BCRYPT
      "\n" BOB_BCRYPT "\n" ERIN_BCRYPT_2B "\n" CAROL_SHA512 "\n" DAVE_SHA256
      "\n" IVAN_SHA256_ROUNDS "\n" JUDY_SHA512_ROUNDS "\n";
  struct htpasswd *h = NULL;
  struct reason why = {{0}};
  int rc = htp(text, &h, &why);
  ASSERT_EQ_INT(rc, 0);
  if (rc) {
    fprintf(stderr, "  reason: %s\n", why.text);
    return;
  }
  ASSERT_EQ_INT(htpasswd_count(h), 7);
  static const struct {
    const char *user, *right;
  } users[] = {
      {"alice", "correct horse"}, {"bob", "s3cret:with:colons"},
      {"erin", "b-variant"},      {"carol", "carol-sha512"},
      {"dave", "dave-sha256"},    {"ivan", "roundspass"},
      {"judy", "roundspass"},
  };
  for (size_t i = 0; i < N(users); i++) {
    int ok = htpasswd_verify(h, users[i].user, users[i].right);
    if (ok != 1)
      TEST_FAIL_("%s with the right password: %d", users[i].user, ok);
    ok = htpasswd_verify(h, users[i].user, "wrong password");
    if (ok != 0)
      TEST_FAIL_("%s with a wrong password: %d", users[i].user, ok);
  }
  /* A password is compared whole: a prefix, an extension, another case. */
  ASSERT_EQ_INT(htpasswd_verify(h, "alice", "correct"), 0);
  ASSERT_EQ_INT(htpasswd_verify(h, "alice", "correct horse!"), 0);
  ASSERT_EQ_INT(htpasswd_verify(h, "alice", "Correct horse"), 0);
  ASSERT_EQ_INT(htpasswd_verify(h, "alice", ""), 0);
  /* Another user's password does not open this one. */
  ASSERT_EQ_INT(htpasswd_verify(h, "dave", "carol-sha512"), 0);
  /* Unknown users, and names that differ by case or a prefix. */
  ASSERT_EQ_INT(htpasswd_verify(h, "mallory", "correct horse"), ERR_NOT_FOUND);
  ASSERT_EQ_INT(htpasswd_verify(h, "Alice", "correct horse"), ERR_NOT_FOUND);
  ASSERT_EQ_INT(htpasswd_verify(h, "alic", "correct horse"), ERR_NOT_FOUND);
  ASSERT_EQ_INT(htpasswd_verify(h, "", "correct horse"), ERR_NOT_FOUND);
  ASSERT_EQ_INT(htpasswd_dummy(h, "whatever"), 0);
  htpasswd_free(h);

  /* No file at all: every user is unknown. */
  ASSERT_EQ_INT(htpasswd_verify(NULL, "alice", "x"), ERR_NOT_FOUND);
  ASSERT_EQ_INT(htpasswd_dummy(NULL, "x"), 0);
  ASSERT_EQ_INT(htpasswd_count(NULL), 0);
  htpasswd_free(NULL);
}

static void test_htpasswd_comments(void) {
  static const char text[] = "# users of the mirror\n"
                             "\n"
                             "   \t\n"
                             "  # an indented comment\n"
                             "  " ALICE_BCRYPT "  \r\n"
                             "\r\n" DAVE_SHA256; /* no final newline */
  struct htpasswd *h = NULL;
  struct reason why = {{0}};
  ASSERT_EQ_INT(htp(text, &h, &why), 0);
  ASSERT_EQ_INT(htpasswd_count(h), 2);
  ASSERT_EQ_INT(htpasswd_verify(h, "alice", "correct horse"), 1);
  ASSERT_EQ_INT(htpasswd_verify(h, "dave", "dave-sha256"), 1);
  htpasswd_free(h);

  ASSERT_EQ_INT(htp("", &h, &why), 0);
  ASSERT_EQ_INT(htpasswd_count(h), 0);
  ASSERT_EQ_INT(htpasswd_verify(h, "alice", "x"), ERR_NOT_FOUND);
  htpasswd_free(h);
}

/* Parses two good lines, a comment and then bad_line (line 4): refused with
 * one line naming the file, line 4, the user and the scheme, and never the
 * hash. */
static void expect_refused(const char *bad_line, const char *user,
                           const char *scheme, int line) {
  char text[1024];
  snprintf(text, sizeof text, "%s\n# comment\n%s\n%s\n%s\n", ALICE_BCRYPT,
           DAVE_SHA256, bad_line, BOB_BCRYPT);
  struct htpasswd *h = (struct htpasswd *)&text; /* must become NULL */
  struct reason why = {{0}};
  int rc = htp(text, &h, &why);
  if (rc != ERR_CONFIG) {
    TEST_FAIL_("line %d: %s accepted (rc %d)", line, bad_line, rc);
    if (!rc)
      htpasswd_free(h);
    return;
  }
  if (h)
    TEST_FAIL_("line %d: *out not NULL on failure", line);
  char want[128];
  snprintf(want, sizeof want, "users.htpasswd:4: user %s: ", user);
  if (strncmp(why.text, want, strlen(want)) != 0)
    TEST_FAIL_("line %d: reason \"%s\" does not start \"%s\"", line, why.text,
               want);
  if (!strstr(why.text, scheme))
    TEST_FAIL_("line %d: reason \"%s\" does not name %s", line, why.text,
               scheme);
  const char *hash = strchr(bad_line, ':') + 1;
  if (strlen(hash) >= 8 && strstr(why.text, hash))
    TEST_FAIL_("line %d: reason \"%s\" quotes the hash", line, why.text);
  if (strchr(why.text, '\n'))
    TEST_FAIL_("line %d: reason is not one line", line);
}
#define EXPECT_REFUSED(l, u, s) expect_refused((l), (u), (s), __LINE__)

static void test_htpasswd_refuses_weak(void) {
  EXPECT_REFUSED(EVE_APR1, "eve", "MD5-apr1 ($apr1$) hashes are refused");
  EXPECT_REFUSED(FRANK_DES, "frank", "DES crypt hashes are refused");
  EXPECT_REFUSED(GINA_SHA1, "gina", "SHA-1 ({SHA}) hashes are refused");
  EXPECT_REFUSED(KIM_MD5CRYPT, "kim", "MD5-crypt ($1$) hashes are refused");
  EXPECT_REFUSED(HANK_PLAIN, "hank", "plaintext hashes are refused");
  /* An empty hash is a plaintext empty password. */
  EXPECT_REFUSED("nobody:", "nobody", "plaintext");
  /* Old bcrypt variants with their known bugs. */
  EXPECT_REFUSED(
      "oscar:$2a$05$PwQTOcQ8jj/3uAX9GVbCxOMfTnk13G7On18SX.ljrTtRLXbzyMD7O",
      "oscar", "old bcrypt");
  EXPECT_REFUSED(
      "oscar:$2x$05$PwQTOcQ8jj/3uAX9GVbCxOMfTnk13G7On18SX.ljrTtRLXbzyMD7O",
      "oscar", "old bcrypt");
  /* The advice names the way out. */
  struct htpasswd *h = NULL;
  struct reason why = {{0}};
  ASSERT_EQ_INT(htp(EVE_APR1 "\n", &h, &why), ERR_CONFIG);
  ASSERT_TRUE(strstr(why.text, "htpasswd -B") != NULL);
  ASSERT_TRUE(strstr(why.text, "users.htpasswd:1: user eve:") == why.text);
}

static void test_htpasswd_refuses_malformed(void) {
  /* Truncated by one character, by a lot, and padded by one. */
  EXPECT_REFUSED(
      "alice:$2y$05$PwQTOcQ8jj/3uAX9GVbCxOMfTnk13G7On18SX.ljrTtRLXbzyMD7",
      "alice", "malformed bcrypt hash");
  EXPECT_REFUSED("alice:$2y$05$PwQTOcQ8jj/3uAX9GVbCxO", "alice",
                 "malformed bcrypt hash");
  EXPECT_REFUSED("alice:$2y$", "alice", "malformed bcrypt hash");
  EXPECT_REFUSED(
      "alice:$2y$05$PwQTOcQ8jj/3uAX9GVbCxOMfTnk13G7On18SX.ljrTtRLXbzyMD7OO",
      "alice", "malformed bcrypt hash");
  EXPECT_REFUSED("dave:$5$cF.NBVxAj2aSi6ns$mBnaRqtJdDaJrV5ZX5k3NPgwVumq9OJ22Q",
                 "dave", "malformed SHA-256-crypt hash");
  EXPECT_REFUSED("carol:$6$FQgY3eHageiWYJSi$camBuMhyxKZXxEw3c//9GFx.Ds8tqTEV",
                 "carol", "malformed SHA-512-crypt hash");
  EXPECT_REFUSED("carol:$6$", "carol", "malformed SHA-512-crypt hash");
  EXPECT_REFUSED(DAVE_SHA256 "x", "dave", "malformed SHA-256-crypt hash");
  EXPECT_REFUSED(CAROL_SHA512 "x", "carol", "malformed SHA-512-crypt hash");
  /* Settings crypt_checksalt lets through but crypt_rn cannot reproduce,
   * so that every login would fail: a bcrypt cost outside 04..31 or not
   * two digits, SHA-crypt rounds below 1000 or with a leading zero, and a
   * salt longer than the 16 characters SHA-crypt uses. */
  EXPECT_REFUSED(
      "alice:$2y$99$PwQTOcQ8jj/3uAX9GVbCxOMfTnk13G7On18SX.ljrTtRLXbzyMD7O",
      "alice", "malformed bcrypt hash");
  EXPECT_REFUSED(
      "alice:$2y$03$PwQTOcQ8jj/3uAX9GVbCxOMfTnk13G7On18SX.ljrTtRLXbzyMD7O",
      "alice", "malformed bcrypt hash");
  EXPECT_REFUSED(
      "alice:$2y$5$PwQTOcQ8jj/3uAX9GVbCxOMfTnk13G7On18SX.ljrTtRLXbzyMD7Oa",
      "alice", "malformed bcrypt hash");
  EXPECT_REFUSED("ivan:$5$rounds=999$vMtR4T77pzNjG4JI$OXbUeFexAQ3GSX1qE3OygOJa."
                 "rAIC5fe1bDqFMS/rgC",
                 "ivan", "malformed SHA-256-crypt hash");
  EXPECT_REFUSED("ivan:$5$rounds=010000$vMtR4T77pzNjG4JI$OXbUeFexAQ3GSX1qE3OygO"
                 "Ja.rAIC5fe1bDqFMS/rgC",
                 "ivan", "malformed SHA-256-crypt hash");
  EXPECT_REFUSED("ivan:$5$rounds=$vMtR4T77pzNjG4JI$OXbUeFexAQ3GSX1qE3OygOJa."
                 "rAIC5fe1bDqFMS/rgC",
                 "ivan", "malformed SHA-256-crypt hash");
  EXPECT_REFUSED("dave:$5$cF.NBVxAj2aSi6nsX$mBnaRqtJdDaJrV5ZX5k3NPgwVumq9OJ22Q"
                 "WZiKjlhV.",
                 "dave", "malformed SHA-256-crypt hash");
  EXPECT_REFUSED("dave:$5$cF.NB$xAj2aSi6ns$mBnaRqtJdDaJrV5ZX5k3NPgwVumq9OJ22Q"
                 "WZiKjlhV.",
                 "dave", "malformed SHA-256-crypt hash");
}

static void test_htpasswd_bad_lines(void) {
  static const struct {
    const char *text;
    const char *want; /* start of the reason */
  } cs[] = {
      {ALICE_BCRYPT "\n" ALICE_BCRYPT "\n",
       "users.htpasswd: user alice is listed twice"},
      {ALICE_BCRYPT "\n" DAVE_SHA256 "\nalice:$2y$04$EPRvL6ZtD21N5eMpagPYCOeNT"
                    "lsQLp80MS75qJqejimejfbsUIBre\n",
       "users.htpasswd: user alice is listed twice"},
      {"just-a-name\n", "users.htpasswd:1: expected user:hash"},
      {"# c\n\nbad user:$2y$04$EPRvL6ZtD21N5eMpagPYCOeNTlsQLp80MS75qJqejimejf"
       "bsUIBre\n",
       "users.htpasswd:3: user name must be"},
      {":$2y$04$EPRvL6ZtD21N5eMpagPYCOeNTlsQLp80MS75qJqejimejfbsUIBre\n",
       "users.htpasswd:1: user name must be"},
      {"us/er:$2y$04$EPRvL6ZtD21N5eMpagPYCOeNTlsQLp80MS75qJqejimejfbsUIBre\n",
       "users.htpasswd:1: user name must be"},
      {"us\xc3\xa9r:$2y$04$EPRvL6ZtD21N5eMpagPYCOeNTlsQLp80MS75qJqejimejfbsUI"
       "Bre\n",
       "users.htpasswd:1: user name must be"},
  };
  for (size_t i = 0; i < N(cs); i++) {
    struct htpasswd *h = NULL;
    struct reason why = {{0}};
    int rc = htp(cs[i].text, &h, &why);
    if (rc != ERR_CONFIG || h) {
      TEST_FAIL_("case %zu: rc %d", i, rc);
      htpasswd_free(h);
      continue;
    }
    if (strncmp(why.text, cs[i].want, strlen(cs[i].want)) != 0)
      TEST_FAIL_("case %zu: reason \"%s\", want \"%s...\"", i, why.text,
                 cs[i].want);
  }
  /* A 127-byte name is the longest; 128 bytes is refused. */
  char text[512], name[130];
  memset(name, 'n', 127);
  name[127] = '\0';
  snprintf(text, sizeof text, "%s:%s\n", name, strchr(ALICE_BCRYPT, ':') + 1);
  struct htpasswd *h = NULL;
  struct reason why = {{0}};
  ASSERT_EQ_INT(htp(text, &h, &why), 0);
  ASSERT_EQ_INT(htpasswd_verify(h, name, "correct horse"), 1);
  htpasswd_free(h);
  name[127] = 'n';
  name[128] = '\0';
  snprintf(text, sizeof text, "%s:%s\n", name, strchr(ALICE_BCRYPT, ':') + 1);
  ASSERT_EQ_INT(htp(text, &h, &why), ERR_CONFIG);
}

/* The parser takes a length, so a NUL byte can reach it (textfile_read
 * refuses such files, but the parser must not rely on that): a refused
 * hash cut short by a NUL is wiped within its allocation. OPENSSL_cleanse
 * is assembly that ASan does not see, so the line goes on for 4 MiB past
 * the NUL: wiping the line's length instead would run off the heap. */
static void test_htpasswd_nul_byte(void) {
  static const char head[] = "eve:$apr1$B9Ti";
  size_t len = sizeof head + (4u << 20) + 1;
  char *text = malloc(len);
  ASSERT_TRUE(text != NULL);
  if (!text)
    return;
  memcpy(text, head, sizeof head); /* with its NUL */
  memset(text + sizeof head, 'x', len - sizeof head - 1);
  text[len - 1] = '\n';
  struct htpasswd *h = NULL;
  struct reason why = {{0}};
  ASSERT_EQ_INT(htpasswd_parse(text, len, "f", &h, &why), ERR_CONFIG);
  ASSERT_TRUE(h == NULL);
  ASSERT_TRUE(strstr(why.text, "f:1: user eve: MD5-apr1") == why.text);
  free(text);
}

static void test_htpasswd_scheme_name(void) {
  ASSERT_EQ_STR(htpasswd_scheme_name("$2y$05$x"), "bcrypt");
  ASSERT_EQ_STR(htpasswd_scheme_name("$2b$05$x"), "bcrypt");
  ASSERT_EQ_STR(htpasswd_scheme_name("$5$x"), "SHA-256-crypt");
  ASSERT_EQ_STR(htpasswd_scheme_name("$6$x"), "SHA-512-crypt");
  ASSERT_EQ_STR(htpasswd_scheme_name("$apr1$x"), "MD5-apr1 ($apr1$)");
  ASSERT_EQ_STR(htpasswd_scheme_name("$1$x"), "MD5-crypt ($1$)");
  ASSERT_EQ_STR(htpasswd_scheme_name("{SHA}x"), "SHA-1 ({SHA})");
  ASSERT_EQ_STR(htpasswd_scheme_name("5Fr5T86hIuQs."), "DES crypt");
  ASSERT_EQ_STR(htpasswd_scheme_name("plain"), "plaintext");
}

/* --- tokens -------------------------------------------------------------- */

static int tok(const char *text, struct tokens **t, struct reason *why) {
  return tokens_parse(text, strlen(text), "auth_tokens", t, why);
}

static void test_tokens_hash_hex(void) {
  char hex[65];
  memset(hex, 'X', sizeof hex);
  tokens_hash_hex("abc", 3, hex);
  ASSERT_EQ_STR(hex, SHA256_ABC);
  tokens_hash_hex("", 0, hex);
  ASSERT_EQ_STR(hex, SHA256_EMPTY);
  /* The length is honoured: "abcd" cut at 3 is "abc". */
  tokens_hash_hex("abcd", 3, hex);
  ASSERT_EQ_STR(hex, SHA256_ABC);
}

static void test_tokens_parse(void) {
  static const char text[] =
      "# name        sha256 of the token                                  "
      "groups\n"
      "ci-deploy " SHA256_ABC " ci,deploy\n"
      "\n"
      "  renovate\t" SHA256_EMPTY "   \r\n"
      /* Upper-case hex is the same digest. */
      "bot@corp.example BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410F"
      "F61F20015AD ci";
  struct tokens *t = NULL;
  struct reason why = {{0}};
  int rc = tok(text, &t, &why);
  ASSERT_EQ_INT(rc, 0);
  if (rc) {
    fprintf(stderr, "  reason: %s\n", why.text);
    return;
  }
  ASSERT_EQ_INT(tokens_count(t), 3);
  const struct token_entry *e = tokens_find(t, "abc", 3);
  ASSERT_TRUE(e != NULL);
  if (e) {
    ASSERT_EQ_STR(e->name, "ci-deploy");
    ASSERT_EQ_STR(e->groups, "ci,deploy");
  }
  e = tokens_find(t, "", 0);
  ASSERT_TRUE(e != NULL);
  if (e) {
    ASSERT_EQ_STR(e->name, "renovate");
    ASSERT_EQ_STR(e->groups, "");
  }
  tokens_free(t);
  tokens_free(NULL);
  ASSERT_EQ_INT(tokens_count(NULL), 0);
}

static void test_tokens_bad(void) {
  static const struct {
    const char *text, *want;
  } cs[] = {
      /* not hex */
      {"ci " SHA256_ABC "\nbad ba7816bf8f01cfea414140de5dae2223b00361a396177a9"
       "cb410ff61f20015ag\n",
       "auth_tokens:2: token bad: the second field must be the 64 hex digits"},
      /* 63 and 65 digits */
      {"short ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a"
       "\n",
       "auth_tokens:1: token short: the second field"},
      {"long " SHA256_ABC "0\n", "auth_tokens:1: token long: the second field"},
      /* the token itself instead of its digest */
      {"ci gomirror_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
       "auth_tokens:1: token ci: the second field"},
      {"ci " SHA256_ABC "\n# x\nci " SHA256_EMPTY "\n",
       "auth_tokens:3: token ci is listed twice"},
      {"ci " SHA256_ABC " a,,b\n", "auth_tokens:1: groups must be"},
      {"ci " SHA256_ABC " ,a\n", "auth_tokens:1: groups must be"},
      {"ci " SHA256_ABC " a,\n", "auth_tokens:1: groups must be"},
      {"ci " SHA256_ABC " a;b\n", "auth_tokens:1: groups must be"},
      {"ci " SHA256_ABC " a b\n", "auth_tokens:1: expected '<name>"},
      {"ci " SHA256_ABC " a b c\n", "auth_tokens:1: expected '<name>"},
      {"ci\n", "auth_tokens:1: expected '<name>"},
      {"c/i " SHA256_ABC "\n", "auth_tokens:1: token name must be"},
  };
  for (size_t i = 0; i < N(cs); i++) {
    struct tokens *t = NULL;
    struct reason why = {{0}};
    int rc = tok(cs[i].text, &t, &why);
    if (rc != ERR_CONFIG || t) {
      TEST_FAIL_("case %zu: rc %d", i, rc);
      tokens_free(t);
      continue;
    }
    if (strncmp(why.text, cs[i].want, strlen(cs[i].want)) != 0)
      TEST_FAIL_("case %zu: reason \"%s\", want \"%s...\"", i, why.text,
                 cs[i].want);
    /* A digest is never repeated back. */
    if (strstr(why.text, "ba7816bf8f01") || strstr(why.text, "e3b0c44298fc"))
      TEST_FAIL_("case %zu: reason \"%s\" quotes a digest", i, why.text);
  }
  /* A group list of 1023 bytes fits the entry (8 names of 127 bytes and 7
   * commas); 1024 bytes do not, even of valid names. */
  static char text[2048];
  int n = snprintf(text, sizeof text, "ci %s ", SHA256_ABC);
  char *p = text + n;
  for (int i = 0; i < 8; i++) {
    if (i)
      *p++ = ',';
    memset(p, 'a' + i, 127);
    p += 127;
  }
  *p = '\0';
  ASSERT_EQ_INT(p - (text + n), 1023);
  struct tokens *t = NULL;
  ASSERT_EQ_INT(tok(text, &t, NULL), 0);
  const struct token_entry *e = tokens_find(t, "abc", 3);
  ASSERT_TRUE(e && strlen(e->groups) == 1023);
  tokens_free(t);
  p = text + n;
  for (int i = 0; i < 9; i++) {
    if (i)
      *p++ = ',';
    size_t l = i < 8 ? 120 : 56;
    memset(p, 'a' + i, l);
    p += l;
  }
  *p = '\0';
  ASSERT_EQ_INT(p - (text + n), 1024);
  ASSERT_EQ_INT(tok(text, &t, NULL), ERR_CONFIG);
}

/* tokens_find compares the presented token's digest with every entry using
 * CRYPTO_memcmp and no early exit, so its time does not tell which entry
 * matched. A unit test cannot measure that; it checks instead that a match
 * is found wherever it sits (first, middle, last), which a loop that
 * stopped early or skipped an end would get wrong. */
static void test_tokens_find_every_position(void) {
  enum { K = 6 };
  char secret[K][32], text[K * 128] = "";
  size_t len = 0;
  for (int i = 0; i < K; i++) {
    snprintf(secret[i], sizeof secret[i], "gomirror_secret_%d", i);
    char hex[65];
    tokens_hash_hex(secret[i], strlen(secret[i]), hex);
    len += (size_t)snprintf(text + len, sizeof text - len, "t%d %s\n", i, hex);
  }
  struct tokens *t = NULL;
  ASSERT_EQ_INT(tok(text, &t, NULL), 0);
  ASSERT_EQ_INT(tokens_count(t), K);
  for (int i = 0; i < K; i++) {
    const struct token_entry *e = tokens_find(t, secret[i], strlen(secret[i]));
    char want[8];
    snprintf(want, sizeof want, "t%d", i);
    if (!e || strcmp(e->name, want) != 0)
      TEST_FAIL_("token %d: found %s", i, e ? e->name : "nothing");
  }
  /* Wrong tokens: another one, a prefix, one byte more, empty. */
  ASSERT_TRUE(tokens_find(t, "gomirror_secret_9", 17) == NULL);
  ASSERT_TRUE(tokens_find(t, secret[0], strlen(secret[0]) - 1) == NULL);
  ASSERT_TRUE(tokens_find(t, "gomirror_secret_00", 18) == NULL);
  ASSERT_TRUE(tokens_find(t, "", 0) == NULL);
  tokens_free(t);

  /* One entry: the first is also the last. */
  char hex[65], one[256];
  tokens_hash_hex(secret[3], strlen(secret[3]), hex);
  snprintf(one, sizeof one, "only %s\n", hex);
  ASSERT_EQ_INT(tok(one, &t, NULL), 0);
  const struct token_entry *e = tokens_find(t, secret[3], strlen(secret[3]));
  ASSERT_TRUE(e && strcmp(e->name, "only") == 0);
  ASSERT_TRUE(tokens_find(t, secret[2], strlen(secret[2])) == NULL);
  tokens_free(t);

  /* The same digest under two names: the first line wins. */
  snprintf(one, sizeof one, "first %s\nsecond %s\n", SHA256_ABC, SHA256_ABC);
  ASSERT_EQ_INT(tok(one, &t, NULL), 0);
  e = tokens_find(t, "abc", 3);
  ASSERT_TRUE(e && strcmp(e->name, "first") == 0);
  tokens_free(t);

  /* Every byte of the digest counts: entries that differ from
   * sha256("abc") in one hex digit (first, middle two, last) match nothing,
   * and listed first they do not shadow the real one. */
  static const size_t flip[] = {0, 31, 32, 63};
  for (size_t i = 0; i < sizeof flip / sizeof *flip; i++) {
    char fake[65], line[256];
    memcpy(fake, SHA256_ABC, sizeof fake);
    fake[flip[i]] = fake[flip[i]] == '0' ? '1' : '0';
    snprintf(line, sizeof line, "fake %s\n", fake);
    ASSERT_EQ_INT(tok(line, &t, NULL), 0);
    if (tokens_find(t, "abc", 3) != NULL)
      TEST_FAIL_("digest differing at hex digit %zu matched", flip[i]);
    tokens_free(t);
    snprintf(line, sizeof line, "fake %s\nreal %s\n", fake, SHA256_ABC);
    ASSERT_EQ_INT(tok(line, &t, NULL), 0);
    e = tokens_find(t, "abc", 3);
    if (!e || strcmp(e->name, "real") != 0)
      TEST_FAIL_("flip %zu: found %s", flip[i], e ? e->name : "nothing");
    tokens_free(t);
  }

  /* No file, or an empty one. */
  ASSERT_TRUE(tokens_find(NULL, "abc", 3) == NULL);
  ASSERT_EQ_INT(tok("# nothing\n", &t, NULL), 0);
  ASSERT_TRUE(tokens_find(t, "", 0) == NULL);
  tokens_free(t);
}

static int b64url_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static void test_tokens_generate(void) {
  char a[TOKEN_LEN + 1], b[TOKEN_LEN + 1];
  ASSERT_EQ_INT(TOKEN_LEN, 9 + 43);
  ASSERT_EQ_INT(tokens_generate(a, sizeof a), 0);
  ASSERT_EQ_INT(tokens_generate(b, sizeof b), 0);
  ASSERT_EQ_INT(strlen(a), TOKEN_LEN);
  ASSERT_EQ_INT(strlen(b), TOKEN_LEN);
  ASSERT_TRUE(strncmp(a, "gomirror_", 9) == 0);
  ASSERT_TRUE(strncmp(b, TOKEN_PREFIX, sizeof TOKEN_PREFIX - 1) == 0);
  for (size_t i = 9; i < TOKEN_LEN; i++)
    if (!b64url_char(a[i]) || !b64url_char(b[i]))
      TEST_FAIL_("byte %zu is not base64url: %c %c", i, a[i], b[i]);
  ASSERT_TRUE(strcmp(a, b) != 0);
  /* The 43rd character carries 4 bits of the last byte and 2 zero bits. */
  ASSERT_TRUE(strchr("AEIMQUYcgkosw048", a[TOKEN_LEN - 1]) != NULL);
  /* Too small a buffer is refused, not overrun. */
  char small[TOKEN_LEN];
  ASSERT_EQ_INT(tokens_generate(small, sizeof small), ERR_INVALID);

  /* A generated token, written as its digest, is found by tokens_find;
   * what a Bearer header carries is accepted as the same token. */
  char hex[65], line[160];
  tokens_hash_hex(a, strlen(a), hex);
  snprintf(line, sizeof line, "fresh %s ci\n", hex);
  struct tokens *t = NULL;
  ASSERT_EQ_INT(tok(line, &t, NULL), 0);
  const struct token_entry *e = tokens_find(t, a, strlen(a));
  ASSERT_TRUE(e && strcmp(e->name, "fresh") == 0);
  ASSERT_TRUE(tokens_find(t, b, strlen(b)) == NULL);
  tokens_free(t);
}

/* --- groups -------------------------------------------------------------- */

static int grp(const char *text, struct groups **g, struct reason *why) {
  return groups_parse(text, strlen(text), "auth_groups", g, why);
}

static struct identity named(enum auth_source src, const char *name) {
  struct identity id;
  memset(&id, 0, sizeof id);
  id.source = src;
  snprintf(id.name, sizeof id.name, "%s", name);
  return id;
}

static void test_groups(void) {
  static const char text[] = "# AuthGroupFile\n"
                             "payments: alice bob\n"
                             "ops:alice\tcarol   \n"
                             "\n"
                             "payments : carol ci-deploy\r\n"
                             "empty:\n"
                             "dup: alice alice";
  struct groups *g = NULL;
  struct reason why = {{0}};
  int rc = grp(text, &g, &why);
  ASSERT_EQ_INT(rc, 0);
  if (rc) {
    fprintf(stderr, "  reason: %s\n", why.text);
    return;
  }
  /* payments (on two lines), ops, dup; "empty" has no members. */
  ASSERT_EQ_INT(groups_count(g), 3);

  struct identity id = named(AUTH_HTPASSWD, "alice");
  groups_apply(g, &id);
  ASSERT_EQ_STR(id.groups, "payments,ops,dup");
  /* Applying again adds nothing twice. */
  groups_apply(g, &id);
  ASSERT_EQ_STR(id.groups, "payments,ops,dup");

  /* carol is in payments through the second payments line. */
  id = named(AUTH_LDAP, "carol");
  ASSERT_EQ_INT(identity_add_groups(&id, "ldap-users,ops"), 0);
  groups_apply(g, &id);
  ASSERT_EQ_STR(id.groups, "ldap-users,ops,payments");

  /* Token names are members too. */
  id = named(AUTH_TOKEN, "ci-deploy");
  groups_apply(g, &id);
  ASSERT_EQ_STR(id.groups, "payments");

  id = named(AUTH_HTPASSWD, "bob");
  groups_apply(g, &id);
  ASSERT_EQ_STR(id.groups, "payments");
  /* Names are matched whole and with their case. */
  id = named(AUTH_HTPASSWD, "ali");
  groups_apply(g, &id);
  ASSERT_EQ_STR(id.groups, "");
  id = named(AUTH_HTPASSWD, "Alice");
  groups_apply(g, &id);
  ASSERT_EQ_STR(id.groups, "");
  /* Anonymous (no name) is in no group; a NULL file does nothing. */
  id = named(AUTH_ANONYMOUS, "");
  groups_apply(g, &id);
  ASSERT_EQ_STR(id.groups, "");
  id = named(AUTH_HTPASSWD, "alice");
  groups_apply(NULL, &id);
  ASSERT_EQ_STR(id.groups, "");
  groups_free(g);
  groups_free(NULL);
  ASSERT_EQ_INT(groups_count(NULL), 0);
}

static void test_groups_bad(void) {
  static const struct {
    const char *text, *want;
  } cs[] = {
      {"payments alice bob\n", "auth_groups:1: expected 'group: user"},
      {"ok: a\n\nbad group: alice\n", "auth_groups:3: expected 'group: user"},
      {": alice\n", "auth_groups:1: expected 'group: user"},
      {"pay/ments: alice\n", "auth_groups:1: expected 'group: user"},
      {"payments: alice b/ob\n", "auth_groups:1: member names are"},
      {"payments: alice bob:x\n", "auth_groups:1: member names are"},
      {"# c\npayments: alice,bob\n", "auth_groups:2: member names are"},
  };
  for (size_t i = 0; i < N(cs); i++) {
    struct groups *g = NULL;
    struct reason why = {{0}};
    int rc = grp(cs[i].text, &g, &why);
    if (rc != ERR_CONFIG || g) {
      TEST_FAIL_("case %zu: rc %d", i, rc);
      groups_free(g);
      continue;
    }
    if (strncmp(why.text, cs[i].want, strlen(cs[i].want)) != 0)
      TEST_FAIL_("case %zu: reason \"%s\", want \"%s...\"", i, why.text,
                 cs[i].want);
  }
}

/* --- textfile ------------------------------------------------------------ */

static void test_lines_and_fields(void) {
  static const char text[] = "# c\n  a b\t c  \r\n\n\t\n  #x\nd";
  struct line_iter it;
  line_iter_init(&it, text, sizeof text - 1);
  const char *s, *f;
  size_t n, fl;
  ASSERT_EQ_INT(line_next(&it, &s, &n), 1);
  ASSERT_EQ_INT(it.lineno, 2);
  ASSERT_EQ_INT(n, 6);
  ASSERT_TRUE(strncmp(s, "a b\t c", n) == 0);
  ASSERT_EQ_INT(field_next(&s, &n, &f, &fl), 1);
  ASSERT_TRUE(fl == 1 && f[0] == 'a');
  ASSERT_EQ_INT(field_next(&s, &n, &f, &fl), 1);
  ASSERT_TRUE(fl == 1 && f[0] == 'b');
  ASSERT_EQ_INT(field_next(&s, &n, &f, &fl), 1);
  ASSERT_TRUE(fl == 1 && f[0] == 'c');
  ASSERT_EQ_INT(field_next(&s, &n, &f, &fl), 0);
  ASSERT_EQ_INT(line_next(&it, &s, &n), 1);
  ASSERT_EQ_INT(it.lineno, 6);
  ASSERT_TRUE(n == 1 && s[0] == 'd');
  ASSERT_EQ_INT(line_next(&it, &s, &n), 0);
  /* The length is honoured: nothing past it is read as a line. */
  line_iter_init(&it, "abc\ndef", 3);
  ASSERT_EQ_INT(line_next(&it, &s, &n), 1);
  ASSERT_EQ_INT(n, 3);
  ASSERT_EQ_INT(line_next(&it, &s, &n), 0);
}

static void test_textfile_read(void) {
  char path[] = "/tmp/gomirror-test-auth-files-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_TRUE(fd >= 0);
  if (fd < 0)
    return;
  ASSERT_EQ_INT(write(fd, "a: b\n", 5), 5);
  struct file_sig s1, s2;
  file_sig_get(path, &s1);
  ASSERT_EQ_INT(s1.exists, 1);
  char *buf = NULL;
  size_t len = 0;
  struct reason why = {{0}};
  ASSERT_EQ_INT(textfile_read(path, &buf, &len, &why), 0);
  ASSERT_EQ_INT(len, 5);
  ASSERT_EQ_STR(buf, "a: b\n");
  free(buf);
  /* A NUL byte: not a text file. */
  ASSERT_EQ_INT(write(fd, "x\0y", 3), 3);
  ASSERT_EQ_INT(textfile_read(path, &buf, &len, &why), ERR_CONFIG);
  ASSERT_TRUE(buf == NULL);
  ASSERT_TRUE(strstr(why.text, "NUL") != NULL);
  file_sig_get(path, &s2);
  ASSERT_EQ_INT(file_sig_changed(&s1, &s2), 1);
  ASSERT_EQ_INT(file_sig_changed(&s2, &s2), 0);
  close(fd);
  unlink(path);
  ASSERT_EQ_INT(textfile_read(path, &buf, &len, &why), ERR_IO);
  ASSERT_TRUE(strstr(why.text, path) != NULL);
  file_sig_get(path, &s1);
  ASSERT_EQ_INT(s1.exists, 0);
  ASSERT_EQ_INT(file_sig_changed(&s1, &s2), 1);
}

int main(void) {
  RUN_TEST(test_htpasswd_accepts);
  RUN_TEST(test_htpasswd_comments);
  RUN_TEST(test_htpasswd_refuses_weak);
  RUN_TEST(test_htpasswd_refuses_malformed);
  RUN_TEST(test_htpasswd_bad_lines);
  RUN_TEST(test_htpasswd_nul_byte);
  RUN_TEST(test_htpasswd_scheme_name);
  RUN_TEST(test_tokens_hash_hex);
  RUN_TEST(test_tokens_parse);
  RUN_TEST(test_tokens_bad);
  RUN_TEST(test_tokens_find_every_position);
  RUN_TEST(test_tokens_generate);
  RUN_TEST(test_groups);
  RUN_TEST(test_groups_bad);
  RUN_TEST(test_lines_and_fields);
  RUN_TEST(test_textfile_read);
  return test_summary();
}
