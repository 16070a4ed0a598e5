/* Unit tests for auth/header.c: the Authorization header as the go command
 * (Basic, from .netrc) and CI tools (Bearer) send it, and the malformed
 * values a client or an attacker may send instead. */
#include "auth/header.h"
#include "core/err.h"
#include "test.h"

#include <openssl/evp.h>
#include <stdlib.h>

#define N(a) (sizeof(a) / sizeof *(a))

/* "Basic " and the base64 of raw[0..n) into out (cap bytes). */
static void basic_of(const void *raw, size_t n, char *out, size_t cap) {
  size_t need = 6 + 4 * ((n + 2) / 3) + 1;
  if (need > cap) {
    TEST_FAIL_("basic_of: %zu bytes do not fit %zu", need, cap);
    out[0] = '\0';
    return;
  }
  memcpy(out, "Basic ", 6);
  EVP_EncodeBlock((unsigned char *)out + 6, raw, (int)n);
}

/* 1 when every byte of p[0..n) is zero. */
static int all_zero(const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i])
      return 0;
  return 1;
}

/* Checks that h is refused with ERR_INVALID, a reason, and a wiped *out;
 * secret (may be NULL) must not appear in the reason. */
static void expect_invalid(const char *h, const char *secret, int line) {
  struct auth_credential c;
  memset(&c, 'X', sizeof c);
  struct reason why = {{0}};
  int rc = auth_parse_header(h, &c, &why);
  if (rc != ERR_INVALID) {
    TEST_FAIL_("line %d: \"%.60s\": rc %d, want ERR_INVALID", line, h, rc);
    return;
  }
  if (!why.text[0])
    TEST_FAIL_("line %d: \"%.60s\": empty reason", line, h);
  if (c.scheme != AUTH_SCHEME_NONE || c.secret_len != 0 ||
      !all_zero(c.secret, sizeof c.secret) || !all_zero(c.user, sizeof c.user))
    TEST_FAIL_("line %d: \"%.60s\": credential not wiped", line, h);
  if (secret && secret[0] && strstr(why.text, secret))
    TEST_FAIL_("line %d: reason \"%s\" quotes the secret", line, why.text);
  if (strchr(why.text, '\n'))
    TEST_FAIL_("line %d: reason is not one line", line);
}
#define EXPECT_INVALID(h, secret) expect_invalid((h), (secret), __LINE__)

static void test_missing(void) {
  struct auth_credential c;
  memset(&c, 'X', sizeof c);
  struct reason why = {{0}};
  ASSERT_EQ_INT(auth_parse_header(NULL, &c, &why), 0);
  ASSERT_EQ_INT(c.scheme, AUTH_SCHEME_NONE);
  ASSERT_EQ_INT(c.secret_len, 0);
  ASSERT_EQ_STR(c.user, "");
  ASSERT_EQ_STR(c.secret, "");
}

static void test_basic(void) {
  struct auth_credential c;
  struct reason why = {{0}};
  /* base64("user:pass") */
  ASSERT_EQ_INT(auth_parse_header("Basic dXNlcjpwYXNz", &c, &why), 0);
  ASSERT_EQ_INT(c.scheme, AUTH_SCHEME_BASIC);
  ASSERT_EQ_STR(c.user, "user");
  ASSERT_EQ_STR(c.secret, "pass");
  ASSERT_EQ_INT(c.secret_len, 4);

  /* One and two padding characters: "user:pas", "user:pa". */
  ASSERT_EQ_INT(auth_parse_header("Basic dXNlcjpwYXM=", &c, &why), 0);
  ASSERT_EQ_STR(c.secret, "pas");
  ASSERT_EQ_INT(c.secret_len, 3);
  ASSERT_EQ_INT(auth_parse_header("Basic dXNlcjpwYQ==", &c, &why), 0);
  ASSERT_EQ_STR(c.secret, "pa");
  ASSERT_EQ_INT(c.secret_len, 2);

  /* The password may hold ':' (RFC 7617: the user-id may not). */
  char h[128];
  basic_of("alice:pa:ss:word", 16, h, sizeof h);
  ASSERT_EQ_INT(auth_parse_header(h, &c, &why), 0);
  ASSERT_EQ_STR(c.user, "alice");
  ASSERT_EQ_STR(c.secret, "pa:ss:word");
  ASSERT_EQ_INT(c.secret_len, 10);

  /* Bytes above 0x7f (UTF-8 passwords) pass through. */
  basic_of("j\xc3\xb6rg:p\xc3\xa4ss", 11, h, sizeof h);
  ASSERT_EQ_INT(auth_parse_header(h, &c, &why), 0);
  ASSERT_EQ_STR(c.user, "j\xc3\xb6rg");
  ASSERT_EQ_STR(c.secret, "p\xc3\xa4ss");
  auth_credential_wipe(&c);
}

static void test_bearer(void) {
  struct auth_credential c;
  struct reason why = {{0}};
  static const char tok[] = "gomirror_AbC-_.~+/09xyz==";
  char h[64];
  snprintf(h, sizeof h, "Bearer %s", tok);
  ASSERT_EQ_INT(auth_parse_header(h, &c, &why), 0);
  ASSERT_EQ_INT(c.scheme, AUTH_SCHEME_BEARER);
  ASSERT_EQ_STR(c.user, "");
  ASSERT_EQ_STR(c.secret, tok);
  ASSERT_EQ_INT(c.secret_len, strlen(tok));
}

static void test_scheme_case(void) {
  static const char *const hs[] = {"basic dXNlcjpwYXNz", "BASIC dXNlcjpwYXNz",
                                   "bAsIc dXNlcjpwYXNz"};
  struct auth_credential c;
  struct reason why = {{0}};
  for (size_t i = 0; i < N(hs); i++) {
    ASSERT_EQ_INT(auth_parse_header(hs[i], &c, &why), 0);
    ASSERT_EQ_INT(c.scheme, AUTH_SCHEME_BASIC);
    ASSERT_EQ_STR(c.user, "user");
  }
  ASSERT_EQ_INT(auth_parse_header("bearer abc", &c, &why), 0);
  ASSERT_EQ_INT(c.scheme, AUTH_SCHEME_BEARER);
  ASSERT_EQ_INT(auth_parse_header("BEARER abc", &c, &why), 0);
  ASSERT_EQ_INT(c.scheme, AUTH_SCHEME_BEARER);
  ASSERT_EQ_STR(c.secret, "abc");
}

static void test_spaces(void) {
  static const char *const hs[] = {
      "Basic    dXNlcjpwYXNz",   "Basic\tdXNlcjpwYXNz",
      "Basic \t dXNlcjpwYXNz",   "Basic dXNlcjpwYXNz   ",
      "Basic dXNlcjpwYXNz\t \t", "Basic   dXNlcjpwYXNz  "};
  struct auth_credential c;
  struct reason why = {{0}};
  for (size_t i = 0; i < N(hs); i++) {
    int rc = auth_parse_header(hs[i], &c, &why);
    if (rc != 0 || c.scheme != AUTH_SCHEME_BASIC ||
        strcmp(c.user, "user") != 0 || strcmp(c.secret, "pass") != 0 ||
        c.secret_len != 4)
      TEST_FAIL_("\"%s\": rc %d user \"%s\"", hs[i], rc, c.user);
  }
  ASSERT_EQ_INT(auth_parse_header("Bearer   tok  ", &c, &why), 0);
  ASSERT_EQ_STR(c.secret, "tok");
  ASSERT_EQ_INT(c.secret_len, 3);
  /* White space inside the credentials is not trimmed away. */
  EXPECT_INVALID("Basic dXNl cjpwYXNz", NULL);
  EXPECT_INVALID("Bearer to k", NULL);
  /* No space after the scheme word: not the scheme. */
  EXPECT_INVALID("BasicdXNlcjpwYXNz", NULL);
  EXPECT_INVALID("Bearertok", NULL);
}

static void test_empty(void) {
  EXPECT_INVALID("", NULL);
  EXPECT_INVALID("   ", NULL);
  EXPECT_INVALID("Basic", NULL);
  EXPECT_INVALID("Basic ", NULL);
  EXPECT_INVALID("Basic    \t ", NULL);
  EXPECT_INVALID("Bearer", NULL);
  EXPECT_INVALID("Bearer ", NULL);
  EXPECT_INVALID("Bearer   ", NULL);
}

static void test_bad_base64(void) {
  /* Characters outside the alphabet (base64url's - and _ included). */
  EXPECT_INVALID("Basic dXNl*jpwYXNz", NULL);
  EXPECT_INVALID("Basic dXNlcjpwYX-z", NULL);
  EXPECT_INVALID("Basic dXNlcjpwYX_z", NULL);
  EXPECT_INVALID("Basic dXNlcjpwYXN\x01", NULL);
  EXPECT_INVALID("Basic dXNlcjpwYXN\xff", NULL);
  /* Padding in the wrong place or too much of it. */
  EXPECT_INVALID("Basic dXNlcjpwY===", NULL);
  EXPECT_INVALID("Basic dXNl=jpwYXNz", NULL);
  EXPECT_INVALID("Basic =XNlcjpwYXNz", NULL);
  EXPECT_INVALID("Basic dXNlcjpw====", NULL);
  EXPECT_INVALID("Basic ====", NULL);
  EXPECT_INVALID("Basic dXNlcjpwYXNz====", NULL);
  /* A length that is not a multiple of 4 (unpadded base64). */
  EXPECT_INVALID("Basic dXNlcjpwYXM", NULL);
  EXPECT_INVALID("Basic dXNlcjpwYQ", NULL);
  EXPECT_INVALID("Basic dXNlcjpwYXNz=", NULL);
  EXPECT_INVALID("Basic d", NULL);
}

static void test_no_colon(void) {
  /* base64("userpass") */
  EXPECT_INVALID("Basic dXNlcnBhc3M=", NULL);
  struct auth_credential c;
  struct reason why = {{0}};
  ASSERT_EQ_INT(auth_parse_header("Basic dXNlcnBhc3M=", &c, &why), ERR_INVALID);
  ASSERT_TRUE(strstr(why.text, "user:password") != NULL);
}

static void test_control_bytes(void) {
  static const struct {
    const char *raw;
    size_t n;
  } cs[] = {
      {"user:pa\x01ss", 10}, {"us\0er:pass", 10},   {"user:pass\0", 10},
      {"user:pa\tss", 10},   {"user:pass\x7f", 10}, {"user:pa\nss", 10},
      {"\x1fuser:pass", 10}, {"user:\rpass", 10},
  };
  for (size_t i = 0; i < N(cs); i++) {
    char h[64];
    basic_of(cs[i].raw, cs[i].n, h, sizeof h);
    struct auth_credential c;
    struct reason why = {{0}};
    if (auth_parse_header(h, &c, &why) != ERR_INVALID)
      TEST_FAIL_("control byte case %zu was accepted", i);
    else if (!strstr(why.text, "control"))
      TEST_FAIL_("case %zu: reason \"%s\"", i, why.text);
    EXPECT_INVALID(h, NULL);
  }
}

static void test_too_long(void) {
  struct auth_credential c;
  struct reason why = {{0}};
  static char raw[2000], h[4096];
  /* The longest user (255) and the longest password (511) fit. */
  memset(raw, 'u', 255);
  raw[255] = ':';
  memset(raw + 256, 'p', 511);
  basic_of(raw, 767, h, sizeof h);
  ASSERT_EQ_INT(auth_parse_header(h, &c, &why), 0);
  ASSERT_EQ_INT(strlen(c.user), 255);
  ASSERT_EQ_INT(c.secret_len, 511);
  ASSERT_EQ_INT(strlen(c.secret), 511);
  /* One more byte of either does not. */
  memset(raw, 'u', 256);
  raw[256] = ':';
  raw[257] = 'p';
  basic_of(raw, 258, h, sizeof h);
  EXPECT_INVALID(h, NULL);
  ASSERT_EQ_INT(auth_parse_header(h, &c, &why), ERR_INVALID);
  ASSERT_TRUE(strstr(why.text, "too long") != NULL);
  raw[0] = 'u';
  raw[1] = ':';
  memset(raw + 2, 'p', 512);
  basic_of(raw, 514, h, sizeof h);
  EXPECT_INVALID(h, NULL);
  /* Base64 longer than any credential that fits. */
  memset(raw, 'p', 1500);
  raw[3] = ':';
  basic_of(raw, 1500, h, sizeof h);
  EXPECT_INVALID(h, NULL);
  /* A header over the 2 KiB cap. */
  memcpy(h, "Bearer ", 7);
  memset(h + 7, 'a', 3000);
  h[3007] = '\0';
  EXPECT_INVALID(h, NULL);
  /* The cap is on the whole value, white space included: 2048 bytes are
   * read, 2049 are not. */
  memcpy(h, "Bearer tok", 10);
  memset(h + 10, ' ', 2038);
  h[2048] = '\0';
  ASSERT_EQ_INT(auth_parse_header(h, &c, &why), 0);
  ASSERT_EQ_STR(c.secret, "tok");
  h[2048] = ' ';
  h[2049] = '\0';
  EXPECT_INVALID(h, NULL);
  ASSERT_EQ_INT(auth_parse_header(h, &c, &why), ERR_INVALID);
  ASSERT_TRUE(strstr(why.text, "too long") != NULL);
  /* Bearer tokens: 511 characters fit, 512 do not. */
  memset(h + 7, 'a', 511);
  h[7 + 511] = '\0';
  ASSERT_EQ_INT(auth_parse_header(h, &c, &why), 0);
  ASSERT_EQ_INT(c.secret_len, 511);
  memset(h + 7, 'a', 512);
  h[7 + 512] = '\0';
  EXPECT_INVALID(h, NULL);
}

static void test_bad_bearer(void) {
  EXPECT_INVALID("Bearer abc,def", NULL);
  EXPECT_INVALID("Bearer abc\"def", NULL);
  EXPECT_INVALID("Bearer a=b", NULL);
  EXPECT_INVALID("Bearer \x01", NULL);
  /* token68 needs a character before its padding. */
  EXPECT_INVALID("Bearer =", NULL);
  EXPECT_INVALID("Bearer ===", NULL);
}

static void test_unknown_scheme(void) {
  EXPECT_INVALID("Digest username=\"alice\", response=\"hunter2\"", "hunter2");
  EXPECT_INVALID("Negotiate YIIBhgYGKwYBBQUCoIIBejCCAXag", NULL);
  EXPECT_INVALID("Token gomirror_abc", NULL);
  EXPECT_INVALID("Basix dXNlcjpwYXNz", NULL);
  EXPECT_INVALID(" Basic dXNlcjpwYXNz", NULL);
  struct auth_credential c;
  struct reason why = {{0}};
  ASSERT_EQ_INT(auth_parse_header("Digest x", &c, &why), ERR_INVALID);
  ASSERT_TRUE(strstr(why.text, "scheme") != NULL);
}

/* No refusal quotes what was sent: the value may be a password or a token
 * pasted into the wrong field. */
static void test_reason_has_no_secret(void) {
  char h[256];
  /* Unpadded base64 of "hunter2": refused, and the reason quotes neither
   * the base64 nor the password. */
  EXPECT_INVALID("Basic aHVudGVyMg", "aHVudGVyMg");
  /* base64("hunter2") has no ':' */
  EXPECT_INVALID("Basic aHVudGVyMg==", "hunter2");
  EXPECT_INVALID("Basic aHVudGVyMg==", "aHVudGVyMg");
  basic_of("alice:hunter2\x01", 14, h, sizeof h);
  EXPECT_INVALID(h, "hunter2");
  EXPECT_INVALID(h, h + 6);
  EXPECT_INVALID("Bearer gomirror_hunter2!", "hunter2");
  EXPECT_INVALID("Bearer gomirror_hunter2 x", "gomirror_hunter2");
  EXPECT_INVALID("Digest gomirror_hunter2", "hunter2");
  EXPECT_INVALID("hunter2", "hunter2");
}

static void test_wipe(void) {
  struct auth_credential c;
  struct reason why = {{0}};
  ASSERT_EQ_INT(auth_parse_header("Basic dXNlcjpwYXNz", &c, &why), 0);
  ASSERT_EQ_STR(c.secret, "pass");
  /* Fill every byte so a partial wipe shows. */
  memset(c.user, 'u', sizeof c.user - 1);
  c.user[sizeof c.user - 1] = '\0';
  memset(c.secret, 's', sizeof c.secret - 1);
  c.secret[sizeof c.secret - 1] = '\0';
  c.secret_len = sizeof c.secret - 1;
  auth_credential_wipe(&c);
  ASSERT_TRUE(all_zero(c.secret, sizeof c.secret));
  ASSERT_TRUE(all_zero(c.user, sizeof c.user));
  ASSERT_EQ_INT(c.secret_len, 0);
  ASSERT_EQ_INT(c.scheme, AUTH_SCHEME_NONE);

  /* A failed parse after a good one leaves nothing of the good one. */
  ASSERT_EQ_INT(auth_parse_header("Basic dXNlcjpwYXNz", &c, &why), 0);
  ASSERT_EQ_INT(auth_parse_header("Basic dXNlcnBhc3M=", &c, &why), ERR_INVALID);
  ASSERT_TRUE(all_zero(c.secret, sizeof c.secret));
  ASSERT_TRUE(all_zero(c.user, sizeof c.user));
  ASSERT_EQ_INT(c.scheme, AUTH_SCHEME_NONE);
}

static void test_reason_may_be_null(void) {
  struct auth_credential c;
  ASSERT_EQ_INT(auth_parse_header("Digest x", &c, NULL), ERR_INVALID);
  ASSERT_EQ_INT(auth_parse_header("Basic dXNlcjpwYXNz", &c, NULL), 0);
  ASSERT_EQ_STR(c.user, "user");
}

int main(void) {
  RUN_TEST(test_missing);
  RUN_TEST(test_basic);
  RUN_TEST(test_bearer);
  RUN_TEST(test_scheme_case);
  RUN_TEST(test_spaces);
  RUN_TEST(test_empty);
  RUN_TEST(test_bad_base64);
  RUN_TEST(test_no_colon);
  RUN_TEST(test_control_bytes);
  RUN_TEST(test_too_long);
  RUN_TEST(test_bad_bearer);
  RUN_TEST(test_unknown_scheme);
  RUN_TEST(test_reason_has_no_secret);
  RUN_TEST(test_wipe);
  RUN_TEST(test_reason_may_be_null);
  return test_summary();
}
