/* Authorization header parsing. Base64 is decoded by OpenSSL's
 * EVP_DecodeBlock after a strict check of the alphabet and padding here,
 * since EVP_DecodeBlock itself skips white space and reports padding as
 * decoded zero bytes. */
#include "header.h"

#include "core/err.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>
#include <strings.h>

/* A header longer than this is not a credential gomirror issues. */
#define HEADER_MAX 2048

static int b64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* token68 (RFC 7235): what a Bearer token may hold. */
static int token68_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
         c == '~' || c == '+' || c == '/';
}

static int fail(struct auth_credential *out, struct reason *why,
                const char *text) {
  auth_credential_wipe(out);
  return reason_set(why, ERR_INVALID, "%s", text);
}

/* Length of the scheme word at h if it is `name` (any case) followed by at
 * least one space; 0 otherwise. */
static size_t scheme_is(const char *h, const char *name) {
  size_t n = strlen(name);
  if (strncasecmp(h, name, n) != 0 || (h[n] != ' ' && h[n] != '\t'))
    return 0;
  while (h[n] == ' ' || h[n] == '\t')
    n++;
  return n;
}

static int parse_basic(const char *v, size_t n, struct auth_credential *out,
                       struct reason *why) {
  if (n == 0 || n % 4 != 0)
    return fail(out, why, "Basic credentials are not valid base64");
  size_t pad = 0;
  while (pad < 2 && pad < n && v[n - 1 - pad] == '=')
    pad++;
  for (size_t i = 0; i < n - pad; i++)
    if (!b64_char(v[i]))
      return fail(out, why, "Basic credentials are not valid base64");
  /* The decoded user:password must fit both fields and a ':'. */
  unsigned char dec[AUTH_USER_MAX + AUTH_SECRET_MAX + 4];
  if (n / 4 * 3 > sizeof dec)
    return fail(out, why, "Basic credentials are too long");
  int got = EVP_DecodeBlock(dec, (const unsigned char *)v, (int)n);
  if (got < 0 || (size_t)got < pad)
    return fail(out, why, "Basic credentials are not valid base64");
  size_t len = (size_t)got - pad;
  const unsigned char *colon = memchr(dec, ':', len);
  int rc = 0;
  if (!colon) {
    rc = fail(out, why, "Basic credentials need user:password");
    goto out;
  }
  size_t ul = (size_t)(colon - dec), pl = len - ul - 1;
  for (size_t i = 0; i < len; i++)
    if (dec[i] < 0x20 || dec[i] == 0x7f) {
      rc = fail(out, why, "Basic credentials hold a control character");
      goto out;
    }
  if (ul >= sizeof out->user || pl >= sizeof out->secret) {
    rc = fail(out, why, "Basic credentials are too long");
    goto out;
  }
  out->scheme = AUTH_SCHEME_BASIC;
  memcpy(out->user, dec, ul);
  out->user[ul] = '\0';
  memcpy(out->secret, colon + 1, pl);
  out->secret[pl] = '\0';
  out->secret_len = pl;
out:
  OPENSSL_cleanse(dec, sizeof dec);
  return rc;
}

static int parse_bearer(const char *v, size_t n, struct auth_credential *out,
                        struct reason *why) {
  size_t i = 0;
  while (i < n && token68_char(v[i]))
    i++;
  size_t chars = i; /* token68 is 1*tchar *"=": padding alone is not one */
  while (i < n && v[i] == '=')
    i++;
  if (chars == 0 || i != n)
    return fail(out, why, "Bearer token holds characters a token cannot");
  if (n >= sizeof out->secret)
    return fail(out, why, "Bearer token is too long");
  out->scheme = AUTH_SCHEME_BEARER;
  memcpy(out->secret, v, n);
  out->secret[n] = '\0';
  out->secret_len = n;
  return 0;
}

int auth_parse_header(const char *h, struct auth_credential *out,
                      struct reason *why) {
  memset(out, 0, sizeof *out);
  if (!h)
    return 0;
  size_t hl = strnlen(h, HEADER_MAX + 1);
  if (hl > HEADER_MAX)
    return fail(out, why, "Authorization header is too long");
  /* Trailing white space is not part of the credentials. */
  while (hl && (h[hl - 1] == ' ' || h[hl - 1] == '\t'))
    hl--;
  size_t s;
  if ((s = scheme_is(h, "Basic")) != 0)
    return s < hl ? parse_basic(h + s, hl - s, out, why)
                  : fail(out, why, "Basic credentials are empty");
  if ((s = scheme_is(h, "Bearer")) != 0)
    return s < hl ? parse_bearer(h + s, hl - s, out, why)
                  : fail(out, why, "Bearer token is empty");
  return fail(out, why,
              "unsupported Authorization scheme (use Basic, e.g. from "
              ".netrc, or Bearer)");
}

void auth_credential_wipe(struct auth_credential *c) {
  OPENSSL_cleanse(c->secret, sizeof c->secret);
  OPENSSL_cleanse(c->user, sizeof c->user);
  c->secret_len = 0;
  c->scheme = AUTH_SCHEME_NONE;
}
