/* Signed notes (note.h), ported from golang.org/x/mod/sumdb/note: the same
 * key formats, key hash, note grammar and checks, with Ed25519, SHA-256 and
 * base64 from OpenSSL. */
#include "note.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/utf8.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALG_ED25519 1
#define SIG_PREFIX "\xe2\x80\x94 " /* U+2014 EM DASH, space */

/* x/mod isValidName: non-empty, valid UTF-8, no Unicode space, no '+'. */
/* x/mod isValidName: non-empty, valid UTF-8, no Unicode space
 * (unicode.IsSpace), no '+'. */
static int valid_name(const char *s, size_t n) {
  if (n == 0 || n > NOTE_NAME_MAX)
    return 0;
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    size_t k = utf8_decode(u + i, n - i, &cp);
    if (!k)
      return 0;
    unsigned char c = u[i];
    if (c == '+' || c == ' ' || (c >= '\t' && c <= '\r'))
      return 0;
    if (k == 2 && c == 0xc2 && (u[i + 1] == 0x85 || u[i + 1] == 0xa0))
      return 0; /* U+0085, U+00A0 */
    if (k == 3) {
      if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 ||
          cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000)
        return 0;
    }
    i += k;
  }
  return 1;
}


/* Strict standard base64 (with padding) into out; -1 when malformed or
 * longer than cap. */
static long b64_decode(const char *s, size_t n, unsigned char *out,
                       size_t cap) {
  if (n == 0 || n % 4 != 0 || n / 4 * 3 > cap + 2)
    return -1;
  size_t pad = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
             (c >= '0' && c <= '9') || c == '+' || c == '/';
    if (c == '=' && i >= n - 2) {
      pad++;
      continue;
    }
    if (!ok || pad)
      return -1;
  }
  if (pad == 2 && s[n - 2] != '=')
    return -1;
  unsigned char *tmp = malloc(n / 4 * 3 + 1);
  if (!tmp)
    return -1;
  int got = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)n);
  if (got < 0 || (size_t)got < pad || (size_t)got - pad > cap) {
    free(tmp);
    return -1;
  }
  size_t len = (size_t)got - pad;
  memcpy(out, tmp, len);
  free(tmp);
  return (long)len;
}

static void b64_encode(const unsigned char *in, size_t n, char *out) {
  EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

static uint32_t key_hash(const char *name, size_t nn, const unsigned char *key,
                         size_t kn) {
  unsigned char sum[32];
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  unsigned int len = 0;
  if (!c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL) ||
      !EVP_DigestUpdate(c, name, nn) || !EVP_DigestUpdate(c, "\n", 1) ||
      !EVP_DigestUpdate(c, key, kn) || !EVP_DigestFinal_ex(c, sum, &len)) {
    EVP_MD_CTX_free(c);
    return 0;
  }
  EVP_MD_CTX_free(c);
  return (uint32_t)sum[0] << 24 | (uint32_t)sum[1] << 16 |
         (uint32_t)sum[2] << 8 | sum[3];
}

/* "<hash8>+<base64>" after a name: the hash and the decoded key. */
static int parse_tail(const char *s, uint32_t *hash, unsigned char *key,
                      size_t *kn) {
  const char *plus = strchr(s, '+');
  if (!plus || plus - s != 8)
    return -1;
  uint32_t h = 0;
  for (int i = 0; i < 8; i++) {
    char c = s[i];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0)
      return -1;
    h = h << 4 | (uint32_t)d;
  }
  long n = b64_decode(plus + 1, strlen(plus + 1), key, 64);
  if (n <= 0)
    return -1;
  *hash = h;
  *kn = (size_t)n;
  return 0;
}

int note_verifier_parse(const char *vkey, struct note_verifier *out,
                        struct reason *why) {
  memset(out, 0, sizeof *out);
  const char *plus = vkey ? strchr(vkey, '+') : NULL;
  unsigned char key[64];
  size_t kn;
  uint32_t hash;
  if (!plus || !valid_name(vkey, (size_t)(plus - vkey)) ||
      parse_tail(plus + 1, &hash, key, &kn))
    return reason_set(why, ERR_INVALID,
                      "malformed verifier key (want name+hash+key)");
  size_t nn = (size_t)(plus - vkey);
  if (hash != key_hash(vkey, nn, key, kn))
    return reason_set(why, ERR_INVALID,
                      "verifier key %.*s: the hash does not match the key",
                      (int)nn, vkey);
  if (key[0] != ALG_ED25519)
    return reason_set(why, ERR_INVALID,
                      "verifier key %.*s: unknown algorithm %d", (int)nn, vkey,
                      key[0]);
  if (kn != 33)
    return reason_set(why, ERR_INVALID,
                      "verifier key %.*s: malformed Ed25519 key", (int)nn,
                      vkey);
  memcpy(out->name, vkey, nn);
  out->hash = hash;
  memcpy(out->key, key + 1, 32);
  return 0;
}

/* The Ed25519 public key of a 32-byte seed. */
static int pub_of_seed(const unsigned char seed[32], unsigned char pub[32]) {
  EVP_PKEY *k =
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
  size_t len = 32;
  int ok = k && EVP_PKEY_get_raw_public_key(k, pub, &len) == 1 && len == 32;
  EVP_PKEY_free(k);
  return ok ? 0 : -1;
}

int note_signer_parse(const char *skey, struct note_signer *out,
                      struct reason *why) {
  memset(out, 0, sizeof *out);
  static const char pre[] = "PRIVATE+KEY+";
  if (!skey || strncmp(skey, pre, sizeof pre - 1) != 0)
    return reason_set(why, ERR_INVALID,
                      "malformed signer key (want PRIVATE+KEY+name+hash+key)");
  const char *name = skey + sizeof pre - 1;
  const char *plus = strchr(name, '+');
  unsigned char key[64];
  size_t kn;
  uint32_t hash;
  if (!plus || !valid_name(name, (size_t)(plus - name)) ||
      parse_tail(plus + 1, &hash, key, &kn))
    return reason_set(why, ERR_INVALID,
                      "malformed signer key (want PRIVATE+KEY+name+hash+key)");
  size_t nn = (size_t)(plus - name);
  if (key[0] != ALG_ED25519 || kn != 33)
    return reason_set(why, ERR_INVALID,
                      "signer key %.*s: not an Ed25519 key", (int)nn, name);
  unsigned char pub[33];
  pub[0] = ALG_ED25519;
  if (pub_of_seed(key + 1, pub + 1))
    return reason_set(why, ERR_INVALID, "signer key %.*s: bad Ed25519 seed",
                      (int)nn, name);
  if (hash != key_hash(name, nn, pub, sizeof pub))
    return reason_set(why, ERR_INVALID,
                      "signer key %.*s: the hash does not match the key",
                      (int)nn, name);
  memcpy(out->name, name, nn);
  out->hash = hash;
  memcpy(out->seed, key + 1, 32);
  memcpy(out->pub, pub + 1, 32);
  return 0;
}

void note_signer_vkey(const struct note_signer *s, char vkey[NOTE_KEY_MAX]) {
  unsigned char pub[33];
  char b64[64];
  pub[0] = ALG_ED25519;
  memcpy(pub + 1, s->pub, 32);
  b64_encode(pub, sizeof pub, b64);
  snprintf(vkey, NOTE_KEY_MAX, "%s+%08x+%s", s->name, (unsigned)s->hash, b64);
}

int note_keygen(const char *name, char skey[NOTE_KEY_MAX],
                char vkey[NOTE_KEY_MAX], struct reason *why) {
  if (!name || !valid_name(name, strlen(name)))
    return reason_set(why, ERR_INVALID,
                      "invalid key name (no spaces, no '+', at most %d bytes)",
                      NOTE_NAME_MAX);
  struct note_signer s;
  memset(&s, 0, sizeof s);
  snprintf(s.name, sizeof s.name, "%s", name);
  if (RAND_bytes(s.seed, sizeof s.seed) != 1 || pub_of_seed(s.seed, s.pub))
    return reason_set(why, ERR_IO, "no randomness for a new key");
  unsigned char pub[33], priv[33];
  pub[0] = priv[0] = ALG_ED25519;
  memcpy(pub + 1, s.pub, 32);
  memcpy(priv + 1, s.seed, 32);
  s.hash = key_hash(name, strlen(name), pub, sizeof pub);
  char b64[64];
  b64_encode(priv, sizeof priv, b64);
  snprintf(skey, NOTE_KEY_MAX, "PRIVATE+KEY+%s+%08x+%s", name,
           (unsigned)s.hash, b64);
  note_signer_vkey(&s, vkey);
  OPENSSL_cleanse(&s, sizeof s);
  OPENSSL_cleanse(priv, sizeof priv);
  OPENSSL_cleanse(b64, sizeof b64);
  return 0;
}

static int ed25519_verify(const unsigned char key[32], const char *msg,
                          size_t len, const unsigned char sig[64]) {
  EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, key, 32);
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  int ok = k && c && EVP_DigestVerifyInit(c, NULL, NULL, NULL, k) == 1 &&
           EVP_DigestVerify(c, sig, 64, (const unsigned char *)msg, len) == 1;
  EVP_MD_CTX_free(c);
  EVP_PKEY_free(k);
  return ok;
}

static int malformed(struct reason *why, const char *what) {
  return reason_set(why, ERR_BAD_UPSTREAM_DATA, "malformed signed note: %s",
                    what);
}

int note_open(const char *msg, size_t len, const struct note_verifier *v,
              size_t *text_len, struct reason *why) {
  if (!msg || len == 0)
    return malformed(why, "empty");
  for (size_t i = 0; i < len;) {
    unsigned char c = (unsigned char)msg[i];
    if (c < 0x20 && c != '\n')
      return malformed(why, "control character");
    uint32_t cp;
    size_t n = utf8_decode((const unsigned char *)msg + i, len - i, &cp);
    if (!n)
      return malformed(why, "invalid UTF-8");
    i += n;
  }
  /* The last blank line separates text from signatures. */
  size_t split = len;
  for (size_t i = len - 1; i > 0; i--)
    if (msg[i] == '\n' && msg[i - 1] == '\n') {
      split = i - 1;
      break;
    }
  if (split == len)
    return malformed(why, "no blank line before the signatures");
  const char *sigs = msg + split + 2;
  size_t sl = len - split - 2;
  if (sl == 0 || sigs[sl - 1] != '\n')
    return malformed(why, "signatures do not end with a newline");
  int found = 0, nsig = 0;
  while (sl > 0) {
    const char *nl = memchr(sigs, '\n', sl);
    size_t ll = (size_t)(nl - sigs);
    if (++nsig > 100)
      return malformed(why, "more than 100 signatures");
    if (ll < sizeof SIG_PREFIX - 1 ||
        memcmp(sigs, SIG_PREFIX, sizeof SIG_PREFIX - 1) != 0)
      return malformed(why, "a signature line without the em dash");
    const char *name = sigs + sizeof SIG_PREFIX - 1;
    const char *end = sigs + ll;
    const char *sp = memchr(name, ' ', (size_t)(end - name));
    if (!sp || !valid_name(name, (size_t)(sp - name)) || sp + 1 == end)
      return malformed(why, "a signature line without name and signature");
    unsigned char sig[128];
    long sn = b64_decode(sp + 1, (size_t)(end - sp - 1), sig, sizeof sig);
    if (sn < 5)
      return malformed(why, "a signature that is not base64");
    uint32_t hash = (uint32_t)sig[0] << 24 | (uint32_t)sig[1] << 16 |
                    (uint32_t)sig[2] << 8 | sig[3];
    size_t nn = (size_t)(sp - name);
    if (hash == v->hash && nn == strlen(v->name) &&
        memcmp(name, v->name, nn) == 0) {
      if (sn != 68 || !ed25519_verify(v->key, msg, split + 1, sig + 4))
        return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                          "invalid signature for key %s+%08x", v->name,
                          (unsigned)v->hash);
      found = 1;
    }
    sl -= ll + 1;
    sigs = nl + 1;
  }
  if (!found)
    return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "note has no signature by %s+%08x", v->name,
                      (unsigned)v->hash);
  *text_len = split + 1;
  return 0;
}

int note_sign(const char *text, size_t len, const struct note_signer *s,
              struct buf *out, struct reason *why) {
  if (len == 0 || text[len - 1] != '\n')
    return reason_set(why, ERR_INVALID, "a note's text must end in a newline");
  EVP_PKEY *k =
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, s->seed, 32);
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  unsigned char sig[68];
  size_t sn = 64;
  int ok = k && c && EVP_DigestSignInit(c, NULL, NULL, NULL, k) == 1 &&
           EVP_DigestSign(c, sig + 4, &sn, (const unsigned char *)text, len) ==
               1 &&
           sn == 64;
  EVP_MD_CTX_free(c);
  EVP_PKEY_free(k);
  if (!ok)
    return reason_set(why, ERR_IO, "Ed25519 signing failed");
  sig[0] = (unsigned char)(s->hash >> 24);
  sig[1] = (unsigned char)(s->hash >> 16);
  sig[2] = (unsigned char)(s->hash >> 8);
  sig[3] = (unsigned char)s->hash;
  char b64[100];
  b64_encode(sig, sizeof sig, b64);
  int rc = buf_append(out, text, len);
  if (!rc)
    rc = buf_appendf(out, "\n" SIG_PREFIX "%s %s\n", s->name, b64);
  return rc ? reason_set(why, rc, "note too large") : 0;
}
