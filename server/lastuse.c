/* Access records in storage for meta=memory (lastuse.h): notes land in a
 * small table under one lock, and a thread writes them once a second. */
#include "lastuse.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "mod/modpath.h"
#include "server.h"
#include "storage/meta.h"
#include "storage/storage.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 1024
#define PENDING_MAX 16384
#define KEY_MAX (sizeof LASTUSE_PREFIX + MODPATH_ESC_MAX + VERSION_ESC_MAX + 8)

struct note {
  struct note *next;
  time_t at;
  char key[]; /* the record's storage key */
};

struct lastuse {
  struct server *srv;
  pthread_mutex_t mu; /* table, n, stop */
  pthread_cond_t cv;
  struct note *table[BUCKETS];
  size_t n;
  int stop;
  pthread_t thread;
  atomic_llong dropped, failed;
};

static uint64_t fnv(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static void record_key(const char *module_esc, const char *version_esc,
                       char *out, size_t cap) {
  snprintf(out, cap, "%s%s/@v/%s", LASTUSE_PREFIX, module_esc, version_esc);
}

void lastuse_note(struct lastuse *lu, const struct modreq *m, time_t at) {
  if (!lu)
    return;
  char key[KEY_MAX];
  record_key(m->module_esc, m->version_esc, key, sizeof key);
  size_t b = fnv(key) % BUCKETS;
  pthread_mutex_lock(&lu->mu);
  struct note *x;
  for (x = lu->table[b]; x; x = x->next)
    if (strcmp(x->key, key) == 0)
      break;
  if (x) {
    if (at > x->at)
      x->at = at;
  } else if (lu->n < PENDING_MAX &&
             (x = malloc(sizeof *x + strlen(key) + 1)) != NULL) {
    memcpy(x->key, key, strlen(key) + 1);
    x->at = at;
    x->next = lu->table[b];
    lu->table[b] = x;
    lu->n++;
  } else {
    atomic_fetch_add(&lu->dropped, 1);
  }
  pthread_mutex_unlock(&lu->mu);
}

/* Takes the pending notes (the caller owns the list). */
static struct note *take(struct lastuse *lu) {
  struct note *all = NULL;
  pthread_mutex_lock(&lu->mu);
  for (size_t b = 0; b < BUCKETS; b++)
    while (lu->table[b]) {
      struct note *x = lu->table[b];
      lu->table[b] = x->next;
      x->next = all;
      all = x;
    }
  lu->n = 0;
  pthread_mutex_unlock(&lu->mu);
  return all;
}

static void write_all(struct lastuse *lu, struct note *list) {
  int warned = 0;
  while (list) {
    struct note *x = list;
    list = x->next;
    char text[24];
    int n = snprintf(text, sizeof text, "%lld\n", (long long)x->at);
    if (storage_replace_buf(lu->srv->store, x->key, text, (size_t)n)) {
      atomic_fetch_add(&lu->failed, 1);
      if (!warned++)
        log_warn("gc access records: storing %s failed", x->key);
    }
    free(x);
  }
}

void lastuse_flush(struct lastuse *lu) {
  if (lu)
    write_all(lu, take(lu));
}

static void *writer(void *arg) {
  struct lastuse *lu = arg;
  pthread_mutex_lock(&lu->mu);
  while (!lu->stop) {
    struct timespec ts;
    clock_deadline_in(&ts, 1000);
    pthread_cond_timedwait(&lu->cv, &lu->mu, &ts);
    pthread_mutex_unlock(&lu->mu);
    lastuse_flush(lu);
    pthread_mutex_lock(&lu->mu);
  }
  pthread_mutex_unlock(&lu->mu);
  return NULL;
}

int lastuse_start(struct server *srv, struct lastuse **out) {
  *out = NULL;
  if (strcmp(srv->meta->ops->name, "memory") != 0)
    return 0; /* the counters record it in Redis */
  struct lastuse *lu = calloc(1, sizeof *lu);
  if (!lu)
    return ERR_NOMEM;
  lu->srv = srv;
  pthread_mutex_init(&lu->mu, NULL);
  pthread_cond_init(&lu->cv, NULL);
  if (pthread_create(&lu->thread, NULL, writer, lu)) {
    pthread_cond_destroy(&lu->cv);
    pthread_mutex_destroy(&lu->mu);
    free(lu);
    return ERR_NOMEM;
  }
  *out = lu;
  return 0;
}

void lastuse_stop(struct lastuse *lu) {
  if (!lu)
    return;
  pthread_mutex_lock(&lu->mu);
  lu->stop = 1;
  pthread_cond_signal(&lu->cv);
  pthread_mutex_unlock(&lu->mu);
  pthread_join(lu->thread, NULL);
  lastuse_flush(lu);
  if (atomic_load(&lu->dropped))
    log_warn("gc access records: %lld notes dropped (too many versions at "
             "once)",
             (long long)atomic_load(&lu->dropped));
  pthread_cond_destroy(&lu->cv);
  pthread_mutex_destroy(&lu->mu);
  free(lu);
}

int lastuse_get(struct server *srv, const char *module, const char *version,
                const char *module_esc, const char *version_esc, time_t *at) {
  *at = 0;
  time_t rec = 0;
  int rc = srv->meta->ops->last_access(srv->meta, module, version, &rec);
  if (rc == ERR_UNSUPPORTED) {
    char key[KEY_MAX];
    record_key(module_esc, version_esc, key, sizeof key);
    struct buf b;
    buf_init(&b, 64);
    rc = storage_get_buf(srv->store, key, &b);
    if (!rc) {
      char *end;
      long long v = strtoll(buf_cstr(&b), &end, 10);
      rec = v > 0 && (*end == '\n' || !*end) ? (time_t)v : 0;
    }
    buf_free(&b);
    if (rc && rc != ERR_NOT_FOUND)
      return ERR_STORAGE;
  } else if (rc && rc != ERR_NOT_FOUND) {
    return ERR_UNAVAILABLE;
  }
  char key[KEY_MAX];
  snprintf(key, sizeof key, "%s/@v/%s.info", module_esc, version_esc);
  struct blob_stat st;
  rc = storage_stat(srv->store, key, &st);
  if (rc)
    return rc == ERR_NOT_FOUND ? rc : ERR_STORAGE;
  *at = rec > st.mtime ? rec : st.mtime;
  return 0;
}

void lastuse_forget(struct server *srv, const char *module_esc,
                    const char *version_esc) {
  char key[KEY_MAX];
  record_key(module_esc, version_esc, key, sizeof key);
  storage_del(srv->store, key);
}
