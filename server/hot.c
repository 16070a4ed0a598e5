/* Hot cache: a hash table of entries on an LRU list, one mutex. Entries are
 * unlinked on eviction but freed only when the last reader releases them. */
#include "hot.h"

#include "core/err.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOT_BUCKETS 8192
#define HOT_ITEM_CAP (4u << 20)

struct node {
  struct hot_entry pub; /* first: a hot_entry * is a node * */
  struct node *next_hash;
  struct node *prev, *next; /* LRU: head is most recent */
  char *key;
  int refs;   /* readers + 1 while linked */
  int linked;
};

struct hot_cache {
  pthread_mutex_t mu;
  size_t max, bytes;
  struct node *buckets[HOT_BUCKETS];
  struct node *head, *tail;
};

static size_t hash(const char *s) {
  size_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h % HOT_BUCKETS;
}

int hot_new(size_t max_bytes, struct hot_cache **out) {
  struct hot_cache *h = calloc(1, sizeof *h);
  if (!h)
    return ERR_NOMEM;
  pthread_mutex_init(&h->mu, NULL);
  h->max = max_bytes;
  *out = h;
  return 0;
}

static void node_free(struct node *n) {
  free((void *)n->pub.data);
  free(n->key);
  free(n);
}

/* Unlinks n from the table and the LRU list; called with the lock held.
 * Returns 1 when the caller must free it (no readers left). */
static int unlink_node(struct hot_cache *h, struct node *n) {
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

void hot_free(struct hot_cache *h) {
  if (!h)
    return;
  while (h->head) {
    struct node *n = h->head;
    if (unlink_node(h, n))
      node_free(n);
  }
  pthread_mutex_destroy(&h->mu);
  free(h);
}

size_t hot_item_max(const struct hot_cache *h) {
  size_t m = h->max / 16;
  return m < HOT_ITEM_CAP ? m : HOT_ITEM_CAP;
}

static struct node *find(struct hot_cache *h, const char *key) {
  struct node *n = h->buckets[hash(key)];
  while (n && strcmp(n->key, key) != 0)
    n = n->next_hash;
  return n;
}

static void to_front(struct hot_cache *h, struct node *n) {
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

const struct hot_entry *hot_get(struct hot_cache *h, const char *key) {
  pthread_mutex_lock(&h->mu);
  struct node *n = find(h, key);
  if (n) {
    n->refs++;
    to_front(h, n);
  }
  pthread_mutex_unlock(&h->mu);
  return n ? &n->pub : NULL;
}

void hot_release(struct hot_cache *h, const struct hot_entry *e) {
  if (!e)
    return;
  struct node *n = (struct node *)(void *)e;
  pthread_mutex_lock(&h->mu);
  int last = --n->refs == 0;
  pthread_mutex_unlock(&h->mu);
  if (last)
    node_free(n);
}

int hot_put(struct hot_cache *h, const char *key, const void *data,
            size_t len, const char *etag) {
  if (len > hot_item_max(h))
    return 0;
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
  struct node *dead[64];
  size_t ndead = 0;
  pthread_mutex_lock(&h->mu);
  struct node *old = find(h, key);
  if (old && unlink_node(h, old))
    dead[ndead++] = old;
  while (h->tail && h->bytes + len > h->max && ndead < 64) {
    struct node *t = h->tail;
    if (unlink_node(h, t))
      dead[ndead++] = t;
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
  for (size_t i = 0; i < ndead; i++)
    node_free(dead[i]);
  return 0;
}

size_t hot_drop_prefix(struct hot_cache *h, const char *prefix) {
  size_t pl = strlen(prefix), dropped = 0;
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
  return dropped;
}

size_t hot_bytes(struct hot_cache *h) {
  pthread_mutex_lock(&h->mu);
  size_t b = h->bytes;
  pthread_mutex_unlock(&h->mu);
  return b;
}
