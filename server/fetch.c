/* Single-flight coalescing with one mutex and a condition variable per
 * flight. Flights are few (one per uncached version being fetched), so a
 * linked list is enough. */
#include "fetch.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct flight {
  struct flight *next;
  char *key;
  pthread_cond_t cv;
  int done;
  int rc;
  struct reason why;
  int waiters; /* the leader frees the flight once all waiters have left */
};

struct flight_group {
  pthread_mutex_t mu;
  struct flight *head;
};

int flight_group_new(struct flight_group **out) {
  struct flight_group *g = calloc(1, sizeof *g);
  if (!g)
    return ERR_NOMEM;
  pthread_mutex_init(&g->mu, NULL);
  *out = g;
  return 0;
}

void flight_group_free(struct flight_group *g) {
  if (!g)
    return;
  pthread_mutex_destroy(&g->mu);
  free(g);
}

static void flight_free(struct flight *f) {
  pthread_cond_destroy(&f->cv);
  free(f->key);
  free(f);
}

int flight_join(struct flight_group *g, const char *key, struct flight **out,
                int *rc, struct reason *why) {
  pthread_mutex_lock(&g->mu);
  struct flight *f = g->head;
  while (f && strcmp(f->key, key) != 0)
    f = f->next;
  if (!f) {
    f = calloc(1, sizeof *f);
    if (!f || !(f->key = strdup(key))) {
      free(f);
      pthread_mutex_unlock(&g->mu);
      return ERR_NOMEM;
    }
    pthread_cond_init(&f->cv, NULL);
    f->next = g->head;
    g->head = f;
    pthread_mutex_unlock(&g->mu);
    *out = f;
    return 1;
  }
  f->waiters++;
  while (!f->done)
    pthread_cond_wait(&f->cv, &g->mu);
  *rc = f->rc;
  if (why)
    *why = f->why;
  int last = --f->waiters == 0;
  pthread_mutex_unlock(&g->mu);
  if (last)
    flight_free(f);
  *out = NULL;
  return 0;
}

void flight_done(struct flight_group *g, struct flight *f, int rc,
                 const struct reason *why) {
  pthread_mutex_lock(&g->mu);
  struct flight **pp = &g->head;
  while (*pp && *pp != f)
    pp = &(*pp)->next;
  if (*pp)
    *pp = f->next;
  f->done = 1;
  f->rc = rc;
  if (why)
    f->why = *why;
  else
    f->why.text[0] = '\0';
  int none = f->waiters == 0;
  pthread_cond_broadcast(&f->cv);
  pthread_mutex_unlock(&g->mu);
  if (none)
    flight_free(f);
}
