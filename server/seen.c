/* A bounded table of checked names (seen.h). */
#include "seen.h"

#include "core/err.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct slot {
  unsigned char fp[16];
  int state; /* 0: empty */
  time_t at;
};

struct seen {
  pthread_mutex_t mu;
  size_t n;
  struct slot slots[];
};

int seen_new(size_t slots, struct seen **out) {
  if (slots == 0)
    slots = 1;
  struct seen *s = calloc(1, sizeof *s + slots * sizeof(struct slot));
  if (!s)
    return ERR_NOMEM;
  pthread_mutex_init(&s->mu, NULL);
  s->n = slots;
  *out = s;
  return 0;
}

void seen_free(struct seen *s) {
  if (!s)
    return;
  pthread_mutex_destroy(&s->mu);
  free(s);
}

/* The name's fingerprint (the digest's first half) and slot (its second). */
static struct slot *slot_of(struct seen *s, const char *name,
                            unsigned char fp[16]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  EVP_Digest(name, strlen(name), md, &mdlen, EVP_sha256(), NULL);
  memcpy(fp, md, 16);
  uint64_t x;
  memcpy(&x, md + 16, sizeof x);
  return &s->slots[x % s->n];
}

int seen_get(struct seen *s, const char *name, time_t *at) {
  unsigned char fp[16];
  struct slot *sl = slot_of(s, name, fp);
  int state = 0;
  pthread_mutex_lock(&s->mu);
  if (sl->state && memcmp(sl->fp, fp, 16) == 0) {
    state = sl->state;
    if (at)
      *at = sl->at;
  }
  pthread_mutex_unlock(&s->mu);
  return state;
}

void seen_put(struct seen *s, const char *name, int state, time_t at) {
  unsigned char fp[16];
  struct slot *sl = slot_of(s, name, fp);
  pthread_mutex_lock(&s->mu);
  memcpy(sl->fp, fp, 16);
  sl->state = state;
  sl->at = at;
  pthread_mutex_unlock(&s->mu);
}
