/* Hot cache: HOT_SHARDS independent shards (hash table, LRU list, mutex,
 * byte budget), so concurrent workers rarely wait on the same lock. Entries
 * are unlinked on eviction but freed only when the last reader releases
 * them. */
#include "hot.h"

#include "core/err.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOT_SHARDS 16
#define HOT_BUCKETS 1024 /* per shard */
#define HOT_ITEM_CAP (4u << 20)

struct node {
  struct hot_entry pub; /* first: a hot_entry * is a node * */
  struct node *next_hash;
  struct node *prev, *next; /* LRU: head is most recent */
  char *key;
  int refs; /* readers + 1 while linked */
  int linked;
};

struct shard {
  pthread_mutex_t mu;
  size_t max, bytes;
  struct node *buckets[HOT_BUCKETS];
  struct node *head, *tail;
};

struct hot_cache {
  size_t max;
  struct shard shards[HOT_SHARDS];
};

static size_t hash_full(const char *s) {
  size_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static size_t hash(const char *s) {
  return hash_full(s) % HOT_BUCKETS;
}

/* Shards use the hash's high bits, buckets its low ones. */
static struct shard *shard_of(struct hot_cache *c, const char *key) {
  return &c->shards[(hash_full(key) >> 40) % HOT_SHARDS];
}

int hot_new(size_t max_bytes, struct hot_cache **out) {
  struct hot_cache *c = calloc(1, sizeof *c);
  if (!c)
    return ERR_NOMEM;
  c->max = max_bytes;
  for (int i = 0; i < HOT_SHARDS; i++) {
    pthread_mutex_init(&c->shards[i].mu, NULL);
    c->shards[i].max = max_bytes / HOT_SHARDS;
  }
  *out = c;
  return 0;
}

static void node_free(struct node *n) {
  free((void *)n->pub.data);
  free(n->key);
  free(n);
}

/* Unlinks n from the table and the LRU list; called with the lock held.
 * Returns 1 when the caller must free it (no readers left). */
static int unlink_node(struct shard *h, struct node *n) {
  struct node **pp = &h->buckets[hash(n->key)];
  while (*pp && *pp != n)
    pp = &(*pp)->next_hash;
  if (*pp)
    *pp = n->next_hash;
  if (n->prev)
    n->prev->next = n->next;
  else
    h->head = n->next;
  if (n->next)
    n->next->prev = n->prev;
  else
    h->tail = n->prev;
  n->linked = 0;
  h->bytes -= n->pub.len;
  return --n->refs == 0;
}

void hot_free(struct hot_cache *c) {
  if (!c)
    return;
  for (int i = 0; i < HOT_SHARDS; i++) {
    struct shard *h = &c->shards[i];
    while (h->head) {
      struct node *n = h->head;
      if (unlink_node(h, n))
        node_free(n);
    }
    pthread_mutex_destroy(&h->mu);
  }
  free(c);
}

size_t hot_item_max(const struct hot_cache *c) {
  size_t m = c->max / 16; /* one shard's budget */
  return m < HOT_ITEM_CAP ? m : HOT_ITEM_CAP;
}

static struct node *find(struct shard *h, const char *key) {
  struct node *n = h->buckets[hash(key)];
  while (n && strcmp(n->key, key) != 0)
    n = n->next_hash;
  return n;
}

static void to_front(struct shard *h, struct node *n) {
  if (h->head == n)
    return;
  n->prev->next = n->next;
  if (n->next)
    n->next->prev = n->prev;
  else
    h->tail = n->prev;
  n->prev = NULL;
  n->next = h->head;
  h->head->prev = n;
  h->head = n;
}

const struct hot_entry *hot_get(struct hot_cache *c, const char *key) {
  struct shard *h = shard_of(c, key);
  pthread_mutex_lock(&h->mu);
  struct node *n = find(h, key);
  if (n) {
    n->refs++;
    to_front(h, n);
  }
  pthread_mutex_unlock(&h->mu);
  return n ? &n->pub : NULL;
}

void hot_release(struct hot_cache *c, const struct hot_entry *e) {
  if (!e)
    return;
  struct node *n = (struct node *)(void *)e;
  struct shard *h = shard_of(c, n->key);
  pthread_mutex_lock(&h->mu);
  int last = --n->refs == 0;
  pthread_mutex_unlock(&h->mu);
  if (last)
    node_free(n);
}

int hot_put(struct hot_cache *c, const char *key, const void *data, size_t len,
            const char *etag) {
  if (len > hot_item_max(c))
    return 0;
  struct shard *h = shard_of(c, key);
  struct node *n = calloc(1, sizeof *n);
  char *copy = malloc(len ? len : 1);
  if (!n || !copy || !(n->key = strdup(key))) {
    free(n ? n->key : NULL);
    free(n);
    free(copy);
    return ERR_NOMEM;
  }
  memcpy(copy, data, len);
  n->pub.data = copy;
  n->pub.len = len;
  snprintf(n->pub.etag, sizeof n->pub.etag, "%s", etag ? etag : "");
  n->refs = 1;
  n->linked = 1;
  /* Nodes to free once the lock is let go, chained through next_hash
   * (unlinked nodes no longer use it): however many it takes. */
  struct node *dead = NULL;
  pthread_mutex_lock(&h->mu);
  struct node *old = find(h, key);
  if (old && unlink_node(h, old)) {
    old->next_hash = dead;
    dead = old;
  }
  while (h->tail && h->bytes + len > h->max) {
    struct node *t = h->tail;
    if (unlink_node(h, t)) {
      t->next_hash = dead;
      dead = t;
    }
  }
  size_t b = hash(key);
  n->next_hash = h->buckets[b];
  h->buckets[b] = n;
  n->next = h->head;
  if (h->head)
    h->head->prev = n;
  h->head = n;
  if (!h->tail)
    h->tail = n;
  h->bytes += len;
  pthread_mutex_unlock(&h->mu);
  while (dead) {
    struct node *next = dead->next_hash;
    node_free(dead);
    dead = next;
  }
  return 0;
}

size_t hot_drop_prefix(struct hot_cache *c, const char *prefix) {
  size_t pl = strlen(prefix), dropped = 0;
  for (int i = 0; i < HOT_SHARDS; i++) {
    struct shard *h = &c->shards[i];
    pthread_mutex_lock(&h->mu);
    struct node *n = h->head;
    while (n) {
      struct node *next = n->next;
      if (strncmp(n->key, prefix, pl) == 0) {
        dropped++;
        if (unlink_node(h, n))
          node_free(n); /* no reader holds it */
      }
      n = next;
    }
    pthread_mutex_unlock(&h->mu);
  }
  return dropped;
}

size_t hot_bytes(struct hot_cache *c) {
  size_t b = 0;
  for (int i = 0; i < HOT_SHARDS; i++) {
    pthread_mutex_lock(&c->shards[i].mu);
    b += c->shards[i].bytes;
    pthread_mutex_unlock(&c->shards[i].mu);
  }
  return b;
}
