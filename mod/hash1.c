/* dirhash.Hash1: sort the file names; for each, the line
 * hex(sha256(content)) + "  " + name + "\n"; the hash is
 * "h1:" + base64(sha256(all lines)). Entries are read one at a time through
 * libzip, so memory does not grow with the zip's contents, and with the
 * limits of validate_zip_read, so a zip bomb is refused, not hashed. */
#include "hash1.h"

#include "core/err.h"
#include "validate.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

struct named_sum {
  char *name;
  unsigned char sum[32];
};

static int by_name(const void *a, const void *b) {
  return strcmp(((const struct named_sum *)a)->name,
                ((const struct named_sum *)b)->name);
}

static void finish(const struct named_sum *v, size_t n, char out[HASH1_LEN]) {
  static const char hexd[] = "0123456789abcdef";
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
  for (size_t i = 0; i < n; i++) {
    char hex[64];
    for (int j = 0; j < 32; j++) {
      hex[2 * j] = hexd[v[i].sum[j] >> 4];
      hex[2 * j + 1] = hexd[v[i].sum[j] & 15];
    }
    EVP_DigestUpdate(ctx, hex, sizeof hex);
    EVP_DigestUpdate(ctx, "  ", 2);
    EVP_DigestUpdate(ctx, v[i].name, strlen(v[i].name));
    EVP_DigestUpdate(ctx, "\n", 1);
  }
  unsigned char sum[32];
  EVP_DigestFinal_ex(ctx, sum, NULL);
  EVP_MD_CTX_free(ctx);
  memcpy(out, "h1:", 3);
  EVP_EncodeBlock((unsigned char *)out + 3, sum, sizeof sum);
}

int hash1_mod(const void *data, size_t len, char out[HASH1_LEN]) {
  struct named_sum one = {.name = "go.mod"};
  EVP_Digest(data, len, one.sum, NULL, EVP_sha256(), NULL);
  finish(&one, 1, out);
  return 0;
}

static int digest_sink(void *ctx, const void *data, size_t len) {
  return EVP_DigestUpdate(ctx, data, len) == 1 ? 0 : ERR_NOMEM;
}

/* Every entry goes through validate_zip_read, as archive/zip reads it for
 * the go command: an entry that inflates past its declared size, a CRC-32
 * mismatch or more than VALIDATE_UNZIP_MAX bytes in all stop the hash. */
int hash1_zip(const char *path, char out[HASH1_LEN], struct reason *why) {
  zip_t *za = NULL;
  int rc = validate_zip_open(path, &za, why);
  if (rc)
    return rc;
  /* At most VALIDATE_ZIP_ENTRIES_MAX: validate_zip_open checked. */
  zip_int64_t n = zip_get_num_entries(za, 0);
  struct named_sum *v = calloc(n > 0 ? (size_t)n : 1, sizeof *v);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  uint64_t budget = VALIDATE_UNZIP_MAX;
  if (!v || !ctx) {
    rc = reason_set(why, ERR_NOMEM, "out of memory hashing a zip");
    goto out;
  }
  for (zip_int64_t i = 0; i < n; i++) {
    const char *name = zip_get_name(za, (zip_uint64_t)i, ZIP_FL_ENC_RAW);
    if (!name || strchr(name, '\n')) {
      rc = reason_set(why, ERR_BAD_UPSTREAM_DATA, "zip entry name unusable");
      goto out;
    }
    if (!(v[i].name = strdup(name))) {
      rc = reason_set(why, ERR_NOMEM, "out of memory hashing a zip");
      goto out;
    }
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    rc = validate_zip_read(za, (zip_uint64_t)i, &budget, digest_sink, ctx, why);
    if (rc)
      goto out;
    EVP_DigestFinal_ex(ctx, v[i].sum, NULL);
  }
  qsort(v, (size_t)n, sizeof *v, by_name);
  finish(v, (size_t)n, out);
out:
  for (zip_int64_t i = 0; v && i < n; i++)
    free(v[i].name);
  free(v);
  EVP_MD_CTX_free(ctx);
  zip_discard(za);
  return rc;
}

/* Copies the h1 field of the line "<module> <version><suffix> h1:..." */
static void find_line(const char *body, size_t len, const char *module,
                      const char *version, const char *suffix,
                      char h1[HASH1_LEN]) {
  size_t ml = strlen(module), vl = strlen(version), sl = strlen(suffix);
  const char *p = body, *end = body + len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end;
    size_t ll = (size_t)(le - p);
    if (ll > ml + vl + sl + 2 && !memcmp(p, module, ml) && p[ml] == ' ' &&
        !memcmp(p + ml + 1, version, vl) &&
        !memcmp(p + ml + 1 + vl, suffix, sl) && p[ml + 1 + vl + sl] == ' ') {
      const char *h = p + ml + vl + sl + 2;
      size_t hl = (size_t)(le - h);
      if (hl > 3 && hl < HASH1_LEN && !memcmp(h, "h1:", 3)) {
        memcpy(h1, h, hl);
        h1[hl] = '\0';
        return;
      }
    }
    p = le + 1;
  }
}

void hash1_from_lookup(const char *body, size_t len, const char *module,
                       const char *version, char zip_h1[HASH1_LEN],
                       char mod_h1[HASH1_LEN]) {
  zip_h1[0] = mod_h1[0] = '\0';
  if (!body)
    return;
  /* Only the record's go.sum lines count: they start after the record id
   * line and end at the first blank line (tlog.ParseRecord). What follows
   * is the tree note, which is no place for a go.sum line. */
  const char *nl = memchr(body, '\n', len);
  if (!nl)
    return;
  const char *text = nl + 1;
  size_t n = len - (size_t)(text - body);
  const char *blank = memmem(text, n, "\n\n", 2);
  if (blank)
    n = (size_t)(blank + 1 - text);
  find_line(text, n, module, version, "", zip_h1);
  find_line(text, n, module, version, "/go.mod", mod_h1);
}
