/* htpasswd parsing and verification. Users are kept sorted so a lookup is a
 * binary search; the hash string itself is the crypt(3) setting. */
#include "htpasswd.h"

#include "core/buf.h"
#include "core/err.h"
#include "identity.h"
#include "textfile.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

struct entry {
  char *user;
  char *hash;
};

struct htpasswd {
  struct entry *v;
  size_t n;
};

void htpasswd_free(struct htpasswd *h) {
  if (!h)
    return;
  for (size_t i = 0; i < h->n; i++) {
    free(h->v[i].user);
    OPENSSL_cleanse(h->v[i].hash, strlen(h->v[i].hash));
    free(h->v[i].hash);
  }
  free(h->v);
  free(h);
}

size_t htpasswd_count(const struct htpasswd *h) {
  return h ? h->n : 0;
}

const char *htpasswd_scheme_name(const char *hash) {
  if (!strncmp(hash, "$2y$", 4) || !strncmp(hash, "$2b$", 4))
    return "bcrypt";
  if (!strncmp(hash, "$2a$", 4) || !strncmp(hash, "$2x$", 4))
    return "old bcrypt ($2a$/$2x$)";
  if (!strncmp(hash, "$5$", 3))
    return "SHA-256-crypt";
  if (!strncmp(hash, "$6$", 3))
    return "SHA-512-crypt";
  if (!strncmp(hash, "$apr1$", 6))
    return "MD5-apr1 ($apr1$)";
  if (!strncmp(hash, "$1$", 3))
    return "MD5-crypt ($1$)";
  if (!strncmp(hash, "{SHA}", 5))
    return "SHA-1 ({SHA})";
  if (strlen(hash) == 13)
    return "DES crypt";
  return "plaintext";
}

static int accepted(const char *hash) {
  return !strncmp(hash, "$2y$", 4) || !strncmp(hash, "$2b$", 4) ||
         !strncmp(hash, "$5$", 3) || !strncmp(hash, "$6$", 3);
}

static int digit(char c) {
  return c >= '0' && c <= '9';
}

/* Whether an accepted hash is complete and one crypt_rn reproduces:
 * crypt_checksalt looks only at the alphabet, not at the length, the bcrypt
 * cost, the SHA-crypt rounds or salt length, so such a line would otherwise
 * fail every login silently. */
static int well_formed(const char *hash) {
  int cs = crypt_checksalt(hash);
  if (cs == CRYPT_SALT_INVALID || cs == CRYPT_SALT_METHOD_DISABLED)
    return 0;
  size_t n = strlen(hash);
  if (hash[1] == '2') {
    /* $2y$NN$: a two-digit cost of 04..31, then salt and hash. */
    int cost = digit(hash[4]) && digit(hash[5])
                   ? (hash[4] - '0') * 10 + (hash[5] - '0')
                   : -1;
    return n == 60 && hash[6] == '$' && cost >= 4 && cost <= 31;
  }
  const char *p = hash + 3;
  if (strncmp(p, "rounds=", 7) == 0) {
    /* 1000..999999999, written without leading zeros as crypt writes it. */
    p += 7;
    size_t d = 0;
    long rounds = 0;
    while (d < 10 && digit(p[d]))
      rounds = rounds * 10 + (p[d++] - '0');
    if (d == 0 || d > 9 || p[0] == '0' || p[d] != '$' || rounds < 1000)
      return 0;
    p += d + 1;
  }
  /* A salt of at most 16 characters (crypt cuts a longer one), '$', the
   * hash. */
  const char *last = strrchr(hash, '$');
  if (last < p || (size_t)(last - p) > 16 || memchr(p, '$', (size_t)(last - p)))
    return 0;
  size_t tail = n - (size_t)(last - hash) - 1;
  return hash[1] == '5' ? tail == 43 : tail == 86;
}

static int by_user(const void *a, const void *b) {
  return strcmp(((const struct entry *)a)->user,
                ((const struct entry *)b)->user);
}

int htpasswd_parse(const char *text, size_t len, const char *name,
                   struct htpasswd **out, struct reason *why) {
  *out = NULL;
  struct htpasswd *h = calloc(1, sizeof *h);
  if (!h)
    return ERR_NOMEM;
  size_t cap = 0;
  struct line_iter it;
  line_iter_init(&it, text, len);
  const char *s;
  size_t n;
  int rc = 0;
  while (line_next(&it, &s, &n)) {
    const char *colon = memchr(s, ':', n);
    if (!colon) {
      rc = reason_set(why, ERR_CONFIG, "%.100s:%ld: expected user:hash", name,
                      it.lineno);
      break;
    }
    size_t ul = (size_t)(colon - s), hl = n - ul - 1;
    if (!auth_name_ok(s, ul)) {
      rc = reason_set(why, ERR_CONFIG,
                      "%.100s:%ld: user name must be 1-127 letters, digits or "
                      "._@-+",
                      name, it.lineno);
      break;
    }
    char *user = strndup(s, ul), *hash = strndup(colon + 1, hl);
    if (!user || !hash) {
      free(user);
      free(hash);
      rc = ERR_NOMEM;
      break;
    }
    /* The hash must be one the file may hold, and well-formed: a setting
     * crypt_rn would reject fails every login, silently. */
    int bad = !accepted(hash);
    if (!bad && !well_formed(hash))
      bad = 2;
    if (bad) {
      rc = reason_set(why, ERR_CONFIG,
                      bad == 1 ? "%.100s:%ld: user %s: %s hashes are refused; "
                                 "recreate the entry with htpasswd -B (bcrypt)"
                               : "%.100s:%ld: user %s: malformed %s hash",
                      name, it.lineno, user, htpasswd_scheme_name(hash));
      free(user);
      OPENSSL_cleanse(hash, strlen(hash)); /* strndup stops at a NUL */
      free(hash);
      break;
    }
    struct entry *v = array_grow(h->v, &cap, h->n, sizeof *v);
    if (!v) {
      free(user);
      free(hash);
      rc = ERR_NOMEM;
      break;
    }
    h->v = v;
    h->v[h->n].user = user;
    h->v[h->n].hash = hash;
    h->n++;
  }
  if (!rc && h->n > 1) {
    qsort(h->v, h->n, sizeof *h->v, by_user);
    for (size_t i = 1; i < h->n; i++)
      if (strcmp(h->v[i - 1].user, h->v[i].user) == 0) {
        rc = reason_set(why, ERR_CONFIG, "%.100s: user %s is listed twice",
                        name, h->v[i].user);
        break;
      }
  }
  if (rc) {
    htpasswd_free(h);
    return rc;
  }
  *out = h;
  return 0;
}

static const struct entry *find(const struct htpasswd *h, const char *user) {
  size_t lo = 0, hi = h ? h->n : 0;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(user, h->v[mid].user);
    if (c == 0)
      return &h->v[mid];
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

/* 1 when crypt_rn(password, hash) reproduces hash. */
static int check(const char *hash, const char *password) {
  /* struct crypt_data is ~32 KiB: too big for a worker's stack. */
  struct crypt_data *cd = calloc(1, sizeof *cd);
  if (!cd)
    return ERR_NOMEM;
  const char *got = crypt_rn(password, hash, cd, (int)sizeof *cd);
  size_t n = strlen(hash);
  int ok = got && got[0] != '*' && strlen(got) == n &&
           CRYPTO_memcmp(got, hash, n) == 0;
  OPENSSL_cleanse(cd, sizeof *cd);
  free(cd);
  return ok;
}

int htpasswd_verify(const struct htpasswd *h, const char *user,
                    const char *password) {
  const struct entry *e = find(h, user);
  if (!e)
    return ERR_NOT_FOUND;
  return check(e->hash, password);
}

int htpasswd_dummy(const struct htpasswd *h, const char *password) {
  if (h && h->n)
    (void)check(h->v[0].hash, password);
  return 0;
}
