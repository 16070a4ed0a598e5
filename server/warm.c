/* The warming engine (warm.h): worker threads take the next version of the
 * list, each through its own struct pipe and curl handle, and report under
 * one mutex. pipe_ensure does the rest: a committed version costs no
 * upstream request, and replicas fetch each version once between them. */
#include "warm.h"

#include "core/clock.h"
#include "core/err.h"
#include "mod/gosum.h"
#include "mod/modpath.h"
#include "pipeline.h"
#include "server.h"
#include "storage/storage.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct run {
  struct server *srv;
  const struct gosum_list *l;
  struct warm_result *out;
  warm_progress_fn progress;
  void *arg;
  atomic_size_t next; /* the next list index to take */
  pthread_mutex_t mu; /* guards out's counters and the callback */
  size_t done;
  double t0;
};

/* The committed size of m's artifact, 0 when storage cannot say. */
static uint64_t stored_size(struct server *srv, const struct modreq *m,
                            const char *ext) {
  char key[PIPE_KEY_MAX];
  struct blob_stat st;
  pipe_key(m, ext, key, sizeof key);
  return storage_stat(srv->store, key, &st) == 0 ? st.size : 0;
}

/* Fills m for e: a .zip request when the zip is wanted, else a .mod one. */
static int make_modreq(const struct gosum_entry *e, struct modreq *m,
                       struct reason *why) {
  m->kind = e->want_zip ? MODREQ_ZIP : MODREQ_MOD;
  m->canonical = 1;
  snprintf(m->module, sizeof m->module, "%s", e->module);
  snprintf(m->version, sizeof m->version, "%s", e->version);
  if (modpath_escape(e->module, m->module_esc, sizeof m->module_esc) ||
      modpath_escape_version(e->version, m->version_esc, sizeof m->version_esc))
    return reason_set(why, ERR_INVALID, "cannot escape %s@%s", e->module,
                      e->version);
  return 0;
}

static void warm_one(struct run *run, struct worker *w, size_t i) {
  struct server *srv = run->srv;
  const struct gosum_entry *e = &run->l->v[i];
  struct warm_item *it = &run->out->items[i];
  struct modreq *m = malloc(sizeof *m); /* 2.3 KiB: not on every stack */
  struct reason why = {{0}};
  int rc;
  if (!m)
    rc = reason_set(&why, ERR_NOMEM, "out of memory");
  else if (atomic_load(&srv->draining))
    rc = reason_set(&why, ERR_UNAVAILABLE,
                    "not started: the server is shutting down");
  else
    rc = make_modreq(e, m, &why);
  if (!rc) {
    struct pipe p;
    pipe_init(&p, srv, w);
    rc = pipe_ensure(&p, m, e->want_zip, &why);
    it->upstream = p.upstream;
    it->already = !rc && strcmp(p.cache, "hit") == 0;
  }
  if (!rc) {
    it->bytes = stored_size(srv, m, "mod");
    if (e->want_zip)
      it->bytes += stored_size(srv, m, "zip");
  } else {
    /* NULL when out of memory: readers fall back to err_str(rc). */
    it->error = strdup(reason_text(&why, rc));
  }
  it->rc = rc;
  free(m);

  pthread_mutex_lock(&run->mu);
  struct warm_result *out = run->out;
  run->done++;
  out->upstream += it->upstream;
  if (rc) {
    out->failed++;
  } else {
    out->committed++;
    out->already += (size_t)it->already;
    out->bytes += it->bytes;
  }
  if (run->progress) {
    struct warm_progress pr = {
        .done = run->done,
        .total = out->total,
        .failed = out->failed,
        .bytes = out->bytes,
        .elapsed = clock_now_s() - run->t0,
        .entry = e,
        .item = it,
    };
    run->progress(run->arg, &pr);
  }
  pthread_mutex_unlock(&run->mu);
}

/* One fetcher: takes versions until none are left. Its curl handle (made
 * on the first upstream request) keeps its connections for the next. */
static void *fetcher(void *arg) {
  struct run *run = arg;
  struct worker w;
  memset(&w, 0, sizeof w);
  for (;;) {
    size_t i = atomic_fetch_add(&run->next, 1);
    if (i >= run->l->n)
      break;
    warm_one(run, &w, i);
  }
  if (w.curl)
    curl_easy_cleanup(w.curl);
  return NULL;
}

int warm_run(struct server *srv, const struct gosum_list *l, int jobs,
             warm_progress_fn progress, void *arg, struct warm_result *out,
             struct reason *why) {
  memset(out, 0, sizeof *out);
  if (jobs < 1)
    jobs = 1;
  if (jobs > WARM_JOBS_MAX)
    jobs = WARM_JOBS_MAX;
  if ((size_t)jobs > l->n)
    jobs = l->n ? (int)l->n : 1;
  out->total = l->n;
  if (l->n) {
    out->items = calloc(l->n, sizeof *out->items);
    if (!out->items)
      return reason_set(why, ERR_NOMEM, "out of memory for %zu versions", l->n);
  }
  struct run run = {.srv = srv,
                    .l = l,
                    .out = out,
                    .progress = progress,
                    .arg = arg,
                    .t0 = clock_now_s()};
  atomic_init(&run.next, 0);
  pthread_mutex_init(&run.mu, NULL);
  pthread_t tids[WARM_JOBS_MAX];
  int started = 0;
  /* The calling thread is the last fetcher; fewer threads than asked for
   * (the system refused some) only make the run slower. */
  for (int k = 0; k < jobs - 1; k++) {
    if (pthread_create(&tids[started], NULL, fetcher, &run) != 0)
      break;
    started++;
  }
  fetcher(&run);
  for (int k = 0; k < started; k++)
    pthread_join(tids[k], NULL);
  pthread_mutex_destroy(&run.mu);
  out->seconds = clock_now_s() - run.t0;
  return 0;
}

void warm_result_free(struct warm_result *out) {
  if (!out)
    return;
  for (size_t i = 0; out->items && i < out->total; i++)
    free(out->items[i].error);
  free(out->items);
  memset(out, 0, sizeof *out);
}
