/* libFuzzer target for the Authorization header parser (auth/header.c),
 * which sees every request's raw header. Whatever the bytes: the answer is
 * 0 or ERR_INVALID; a refusal leaves the credential wiped and gives one of
 * the parser's fixed reasons (never text taken from the header, which may
 * hold a secret); an accepted credential is well-formed. ASan checks that
 * nothing is read out of bounds. */
#include "auth/header.h"
#include "core/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      abort();                                                                 \
  } while (0)

/* The reasons the parser gives, learnt once from inputs that provoke each
 * refusal: a reason outside this set was built from the input. A new
 * refusal in header.c needs a representative here. */
static const char *const provoke[] = {
    "Digest x",           /* unknown scheme */
    "Basic",              /* no space: unknown scheme too */
    "Basic ",             /* empty */
    "Bearer ",            /* empty */
    "Basic dXNl*jpw",     /* not base64 */
    "Basic dXNlcnBhc3M=", /* no ':' */
    "Basic dXM=",         /* no ':' either */
    "Basic dXNlcjoB",     /* "user:\x01" */
    "Bearer a,b",         /* not a token */
};
static struct reason known[32];
static size_t nknown;

static void learn(const char *h) {
  struct auth_credential c;
  struct reason why = {{0}};
  if (auth_parse_header(h, &c, &why) != ERR_INVALID)
    abort(); /* a representative above no longer provokes a refusal */
  for (size_t i = 0; i < nknown; i++)
    if (strcmp(known[i].text, why.text) == 0)
      return;
  if (nknown < sizeof known / sizeof *known)
    known[nknown++] = why;
}

static void learn_all(void) {
  if (nknown)
    return;
  for (size_t i = 0; i < sizeof provoke / sizeof *provoke; i++)
    learn(provoke[i]);
  /* The length refusals, built at run time. */
  static char h[4096];
  memcpy(h, "Bearer ", 7);
  memset(h + 7, 'a', 600);
  h[607] = '\0';
  learn(h); /* token too long */
  memset(h + 7, 'a', 3000);
  h[3007] = '\0';
  learn(h); /* header too long */
  memcpy(h, "Basic ", 6);
  memset(h + 6, 'Q', 1600);
  h[1606] = '\0';
  learn(h); /* base64 longer than any credential */
  /* "u...u:p" with a 300-byte user: decoded, then too long. */
  memset(h + 6, 'd', 400);
  memcpy(h + 6 + 400, "Ojpw", 5);
  learn(h);
}

static int all_zero(const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i])
      return 0;
  return 1;
}

static int token68(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || strchr("-._~+/=", c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  learn_all();
  if (size > 4096)
    return 0;
  char *s = malloc(size + 1);
  if (!s)
    return 0;
  memcpy(s, data, size);
  s[size] = '\0';

  struct auth_credential c;
  memset(&c, 0xa5, sizeof c);
  struct reason why = {{0}};
  int rc = auth_parse_header(s, &c, &why);
  CHECK(rc == 0 || rc == ERR_INVALID);
  if (rc == ERR_INVALID) {
    CHECK(c.scheme == AUTH_SCHEME_NONE && c.secret_len == 0);
    CHECK(all_zero(c.user, sizeof c.user));
    CHECK(all_zero(c.secret, sizeof c.secret));
    size_t i = 0;
    while (i < nknown && strcmp(known[i].text, why.text) != 0)
      i++;
    CHECK(i < nknown); /* a reason not among the parser's fixed ones */
  } else {
    CHECK(!why.text[0]);
    CHECK(c.scheme == AUTH_SCHEME_BASIC || c.scheme == AUTH_SCHEME_BEARER);
    size_t ul = strnlen(c.user, sizeof c.user);
    size_t sl = strnlen(c.secret, sizeof c.secret);
    CHECK(ul < sizeof c.user && sl < sizeof c.secret);
    CHECK(c.secret_len == sl);
    if (c.scheme == AUTH_SCHEME_BASIC) {
      CHECK(!memchr(c.user, ':', ul));
      for (size_t i = 0; i < ul; i++)
        CHECK((unsigned char)c.user[i] >= 0x20 && c.user[i] != 0x7f);
      for (size_t i = 0; i < sl; i++)
        CHECK((unsigned char)c.secret[i] >= 0x20 && c.secret[i] != 0x7f);
    } else {
      CHECK(ul == 0 && sl > 0 && c.secret[0] != '=');
      for (size_t i = 0; i < sl; i++)
        CHECK(token68(c.secret[i]));
      /* The token is the header's text, as sent. */
      CHECK(strstr(s, c.secret) != NULL);
    }
    /* Wiping leaves nothing behind. */
    auth_credential_wipe(&c);
    CHECK(all_zero(c.user, sizeof c.user));
    CHECK(all_zero(c.secret, sizeof c.secret));
    CHECK(c.secret_len == 0 && c.scheme == AUTH_SCHEME_NONE);
  }
  free(s);
  return 0;
}
