/* The credential cache: 16 shards, each a small open-addressing table
 * under its own mutex, so concurrent workers rarely meet on a lock. A
 * lookup hashes nothing but the 32-byte key that credcache_key computed. */
#include "credcache.h"

#include "core/err.h"
#include "header.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SHARDS 16

/* The table holds keys and pointers; identities (about 1 KiB each) are
 * allocated only for the entries in use. */
struct entry {
  int bad; /* a wrong credential, remembered briefly */
  uint64_t generation;
  double expires;
  struct identity id;
};

struct slot {
  unsigned char key[CREDCACHE_KEY_LEN];
  struct entry *e; /* NULL: free slot */
};

struct shard {
  pthread_mutex_t mu;
  struct slot *v;
  size_t cap; /* power of two */
  size_t used;
};

struct credcache {
  unsigned char secret[32];
  EVP_MAC *mac;
  struct shard shards[SHARDS];
};

struct credcache_hasher {
  EVP_MAC_CTX *ctx;
};

int credcache_new(size_t capacity, struct credcache **out) {
  *out = NULL;
  struct credcache *c = calloc(1, sizeof *c);
  if (!c)
    return ERR_NOMEM;
  if (RAND_bytes(c->secret, sizeof c->secret) != 1) {
    free(c);
    return ERR_IO;
  }
  c->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  size_t per = 64;
  while (per * SHARDS < capacity * 2)
    per <<= 1;
  for (size_t i = 0; i < SHARDS; i++) {
    pthread_mutex_init(&c->shards[i].mu, NULL);
    c->shards[i].v = calloc(per, sizeof(struct slot));
    c->shards[i].cap = per;
    if (!c->shards[i].v) {
      credcache_free(c);
      return ERR_NOMEM;
    }
  }
  if (!c->mac) {
    credcache_free(c);
    return ERR_CONFIG;
  }
  *out = c;
  return 0;
}

void credcache_free(struct credcache *c) {
  if (!c)
    return;
  for (size_t i = 0; i < SHARDS; i++) {
    for (size_t j = 0; c->shards[i].v && j < c->shards[i].cap; j++)
      free(c->shards[i].v[j].e);
    free(c->shards[i].v);
    pthread_mutex_destroy(&c->shards[i].mu);
  }
  EVP_MAC_free(c->mac);
  OPENSSL_cleanse(c->secret, sizeof c->secret);
  free(c);
}

struct credcache_hasher *credcache_hasher_new(const struct credcache *c) {
  struct credcache_hasher *h = calloc(1, sizeof *h);
  if (!h)
    return NULL;
  h->ctx = EVP_MAC_CTX_new(c->mac);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  /* Initialised once with the key; each use re-inits with a NULL key, which
   * keeps it and skips the key schedule. */
  if (!h->ctx || !EVP_MAC_init(h->ctx, c->secret, sizeof c->secret, params)) {
    credcache_hasher_free(h);
    return NULL;
  }
  return h;
}

void credcache_hasher_free(struct credcache_hasher *h) {
  if (!h)
    return;
  EVP_MAC_CTX_free(h->ctx);
  free(h);
}

int credcache_key(struct credcache_hasher *h,
                  const struct auth_credential *cred,
                  unsigned char key[CREDCACHE_KEY_LEN]) {
  unsigned char scheme = (unsigned char)cred->scheme;
  size_t out = 0;
  /* The user is NUL-terminated, so user and secret cannot run together. */
  if (!EVP_MAC_init(h->ctx, NULL, 0, NULL) ||
      !EVP_MAC_update(h->ctx, &scheme, 1) ||
      !EVP_MAC_update(h->ctx, (const unsigned char *)cred->user,
                      strlen(cred->user) + 1) ||
      !EVP_MAC_update(h->ctx, (const unsigned char *)cred->secret,
                      cred->secret_len) ||
      !EVP_MAC_final(h->ctx, key, &out, CREDCACHE_KEY_LEN) ||
      out != CREDCACHE_KEY_LEN)
    return ERR_IO;
  return 0;
}

static struct shard *shard_of(struct credcache *c, const unsigned char *key) {
  return &c->shards[key[0] % SHARDS];
}

static size_t home(const struct shard *s, const unsigned char *key) {
  size_t h;
  memcpy(&h, key + 1, sizeof h);
  return h & (s->cap - 1);
}

int credcache_get(struct credcache *c, const unsigned char *key,
                  uint64_t generation, double now, struct identity *id) {
  struct shard *s = shard_of(c, key);
  int found = 0;
  pthread_mutex_lock(&s->mu);
  for (size_t i = home(s, key), probes = 0; probes < s->cap;
       i = (i + 1) & (s->cap - 1), probes++) {
    struct slot *sl = &s->v[i];
    if (!sl->e)
      break;
    if (memcmp(sl->key, key, CREDCACHE_KEY_LEN) != 0)
      continue;
    if (sl->e->generation == generation && sl->e->expires > now) {
      found = sl->e->bad ? 2 : 1;
      if (!sl->e->bad)
        *id = sl->e->id;
    }
    break;
  }
  pthread_mutex_unlock(&s->mu);
  return found;
}

static int live(const struct slot *sl, uint64_t generation, double now) {
  return sl->e && sl->e->generation == generation && sl->e->expires > now;
}

/* Rebuilds a shard that is three quarters full, keeping only live entries
 * of this generation; if they still fill half of it, it is emptied (every
 * credential can be verified again). */
static void compact(struct shard *s, uint64_t generation, double now) {
  size_t keep = 0;
  for (size_t i = 0; i < s->cap; i++)
    keep += live(&s->v[i], generation, now);
  struct slot *old = s->v;
  struct slot *nv = keep * 2 <= s->cap ? calloc(s->cap, sizeof *nv) : NULL;
  s->used = 0;
  if (!nv) {
    for (size_t i = 0; i < s->cap; i++) {
      free(old[i].e);
      old[i].e = NULL;
    }
    return;
  }
  s->v = nv;
  for (size_t i = 0; i < s->cap; i++) {
    struct slot *sl = &old[i];
    if (!live(sl, generation, now)) {
      free(sl->e);
      continue;
    }
    size_t j = home(s, sl->key);
    while (s->v[j].e)
      j = (j + 1) & (s->cap - 1);
    s->v[j] = *sl;
    s->used++;
  }
  free(old);
}

void credcache_put(struct credcache *c, const unsigned char *key,
                   uint64_t generation, double now, double ttl,
                   const struct identity *id) {
  struct shard *s = shard_of(c, key);
  pthread_mutex_lock(&s->mu);
  if (s->used * 4 >= s->cap * 3)
    compact(s, generation, now);
  size_t i = home(s, key);
  while (s->v[i].e && memcmp(s->v[i].key, key, CREDCACHE_KEY_LEN) != 0)
    i = (i + 1) & (s->cap - 1);
  struct slot *sl = &s->v[i];
  if (!sl->e) {
    sl->e = malloc(sizeof *sl->e);
    if (!sl->e) {
      pthread_mutex_unlock(&s->mu);
      return; /* not cached: verified again next time */
    }
    s->used++;
  }
  memcpy(sl->key, key, CREDCACHE_KEY_LEN);
  sl->e->generation = generation;
  sl->e->expires = now + ttl;
  sl->e->bad = id == NULL;
  if (id)
    sl->e->id = *id;
  else
    memset(&sl->e->id, 0, sizeof sl->e->id);
  pthread_mutex_unlock(&s->mu);
}

size_t credcache_size(struct credcache *c) {
  size_t n = 0;
  for (size_t i = 0; i < SHARDS; i++) {
    pthread_mutex_lock(&c->shards[i].mu);
    n += c->shards[i].used;
    pthread_mutex_unlock(&c->shards[i].mu);
  }
  return n;
}
