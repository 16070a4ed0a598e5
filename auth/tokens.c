/* API token files and token generation. Hashing is OpenSSL's SHA-256,
 * randomness getrandom(2) (core/random.h), the encoding OpenSSL's base64
 * made URL-safe. */
#include "tokens.h"

#include "core/buf.h"
#include "core/ascii.h"
#include "core/err.h"
#include "core/random.h"
#include "identity.h"
#include "textfile.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

struct tokens {
  struct token_entry *v;
  size_t n;
};

void tokens_free(struct tokens *t) {
  if (!t)
    return;
  OPENSSL_cleanse(t->v, t->n * sizeof *t->v);
  free(t->v);
  free(t);
}

size_t tokens_count(const struct tokens *t) {
  return t ? t->n : 0;
}

/* A group list: names separated by ',', none empty. */
static int groups_ok(const char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && s[j] != ',')
      j++;
    if (!auth_name_ok(s + i, j - i))
      return 0;
    i = j + 1;
    if (j < n && i == n)
      return 0; /* trailing ',' */
  }
  return 1;
}

int tokens_parse(const char *text, size_t len, const char *name,
                 struct tokens **out, struct reason *why) {
  *out = NULL;
  struct tokens *t = calloc(1, sizeof *t);
  if (!t)
    return ERR_NOMEM;
  size_t cap = 0;
  struct line_iter it;
  line_iter_init(&it, text, len);
  const char *s;
  size_t n;
  int rc = 0;
  while (!rc && line_next(&it, &s, &n)) {
    const char *f[4];
    size_t fl[4], nf = 0;
    while (nf < 4 && field_next(&s, &n, &f[nf], &fl[nf]))
      nf++;
    if (nf < 2 || nf > 3) {
      rc = reason_set(why, ERR_CONFIG,
                      "%.100s:%ld: expected '<name> <sha256-hex> "
                      "[<group,group>]'",
                      name, it.lineno);
      break;
    }
    if (!auth_name_ok(f[0], fl[0])) {
      rc = reason_set(why, ERR_CONFIG,
                      "%.100s:%ld: token name must be 1-127 letters, digits "
                      "or ._@-+",
                      name, it.lineno);
      break;
    }
    if (nf == 3 && (!groups_ok(f[2], fl[2]) || fl[2] >= 1024)) {
      rc = reason_set(why, ERR_CONFIG,
                      "%.100s:%ld: groups must be names separated by ','", name,
                      it.lineno);
      break;
    }
    struct token_entry e;
    memset(&e, 0, sizeof e);
    memcpy(e.name, f[0], fl[0]);
    if (nf == 3)
      memcpy(e.groups, f[2], fl[2]);
    int ok = fl[1] == 64;
    for (size_t i = 0; ok && i < 32; i++) {
      int hi = ascii_hexval(f[1][2 * i]), lo = ascii_hexval(f[1][2 * i + 1]);
      ok = hi >= 0 && lo >= 0;
      if (ok)
        e.digest[i] = (unsigned char)(hi << 4 | lo);
    }
    if (!ok) {
      rc = reason_set(why, ERR_CONFIG,
                      "%.100s:%ld: token %s: the second field must be the 64 "
                      "hex digits of the token's SHA-256 (gomirror token new "
                      "prints the line)",
                      name, it.lineno, e.name);
      break;
    }
    for (size_t i = 0; i < t->n; i++)
      if (strcmp(t->v[i].name, e.name) == 0)
        rc = reason_set(why, ERR_CONFIG, "%.100s:%ld: token %s is listed twice",
                        name, it.lineno, e.name);
    if (rc)
      break;
    struct token_entry *v = array_grow(t->v, &cap, t->n, sizeof *v);
    if (!v) {
      rc = ERR_NOMEM;
      break;
    }
    t->v = v;
    t->v[t->n++] = e;
  }
  if (rc) {
    tokens_free(t);
    return rc;
  }
  *out = t;
  return 0;
}

const struct token_entry *tokens_find(const struct tokens *t,
                                      const char *secret, size_t len) {
  if (!t || !t->n)
    return NULL;
  unsigned char d[32];
  unsigned int dl = 0;
  if (!EVP_Digest(secret, len, d, &dl, EVP_sha256(), NULL) || dl != 32)
    return NULL;
  const struct token_entry *found = NULL;
  for (size_t i = 0; i < t->n; i++) {
    /* No early exit: the time taken does not say which entry matched. */
    int same = CRYPTO_memcmp(d, t->v[i].digest, 32) == 0;
    if (same && !found)
      found = &t->v[i];
  }
  return found;
}

void tokens_hash_hex(const char *secret, size_t len, char hex[65]) {
  static const char digits[] = "0123456789abcdef";
  unsigned char d[32];
  unsigned int dl = 0;
  if (!EVP_Digest(secret, len, d, &dl, EVP_sha256(), NULL) || dl != 32)
    memset(d, 0, sizeof d);
  for (size_t i = 0; i < 32; i++) {
    hex[2 * i] = digits[d[i] >> 4];
    hex[2 * i + 1] = digits[d[i] & 15];
  }
  hex[64] = '\0';
}

int tokens_generate(char *out, size_t cap) {
  if (cap < TOKEN_LEN + 1)
    return ERR_INVALID;
  unsigned char raw[32];
  if (random_fill(raw, sizeof raw))
    return ERR_IO;
  unsigned char b64[48];
  int n = EVP_EncodeBlock(b64, raw, sizeof raw); /* 44 with one '=' */
  OPENSSL_cleanse(raw, sizeof raw);
  if (n != 44)
    return ERR_IO;
  size_t p = sizeof TOKEN_PREFIX - 1;
  memcpy(out, TOKEN_PREFIX, p);
  for (int i = 0; i < 43; i++)
    out[p + (size_t)i] = b64[i] == '+'   ? '-'
                         : b64[i] == '/' ? '_'
                                         : (char)b64[i];
  out[TOKEN_LEN] = '\0';
  OPENSSL_cleanse(b64, sizeof b64);
  return 0;
}
