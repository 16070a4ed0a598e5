/* Warming: make sure every version of a list (mod/gosum.h) is committed,
 * with N fetches in parallel through the module pipeline (pipe_ensure, so
 * one fetch per version across replicas). Shared by `gomirror warm`
 * (cmd_warm.c) and POST /admin/warm (h_admin.c). */
#ifndef GOMIRROR_SERVER_WARM_H
#define GOMIRROR_SERVER_WARM_H

#include <stddef.h>
#include <stdint.h>

struct gosum_entry;
struct gosum_list;
struct reason;
struct req;
struct server;

#define WARM_JOBS_MAX 64
/* The endpoint runs inside a serving replica: fewer fetchers. */
#define WARM_HTTP_JOBS_MAX 16
/* The largest POST /admin/warm body (a go.sum of ~70,000 versions). */
#define WARM_BODY_MAX ((size_t)16 << 20)
/* Failed versions its JSON answer names; "failed_more" counts the rest. */
#define WARM_FAILED_SHOWN 1000

/* What became of one version. */
struct warm_item {
  int rc;         /* 0: committed (now or before); else ERR_* */
  int already;    /* committed before: no fetch was needed */
  int upstream;   /* requests sent to upstreams or version control */
  uint64_t bytes; /* committed .mod (and .zip when wanted) sizes */
  char *error;    /* the one-line reason when rc != 0; owned by the result */
};

struct warm_result {
  size_t total, committed, already, failed; /* committed includes already */
  int upstream;
  uint64_t bytes;
  double seconds;
  struct warm_item *items; /* one per list entry, in list order */
};

/* Where a run is, passed to the progress callback after each version. */
struct warm_progress {
  size_t done, total, failed;
  uint64_t bytes;
  double elapsed;                  /* seconds since warm_run started */
  const struct gosum_entry *entry; /* the version just finished */
  const struct warm_item *item;    /* and what became of it */
};

/* Called after each version, under the run's mutex (one call at a time),
 * from whichever thread finished it. */
typedef void (*warm_progress_fn)(void *arg, const struct warm_progress *p);

/* Makes sure every version of l is committed, with jobs (clamped to
 * 1..WARM_JOBS_MAX and to the list's length) fetches in parallel, each in
 * its own thread with its own curl handle; the calling thread is one of
 * them. progress may be NULL. Once srv->draining is set the versions not
 * started yet fail with ERR_UNAVAILABLE. 0 with *out filled (free it with
 * warm_result_free) however many versions failed; ERR_NOMEM with why when
 * nothing could be run (*out is then empty). */
int warm_run(struct server *srv, const struct gosum_list *l, int jobs,
             warm_progress_fn progress, void *arg, struct warm_result *out,
             struct reason *why);
/* Frees out's items and their reasons. NULL-safe. */
void warm_result_free(struct warm_result *out);

/* POST /admin/warm (h_admin.c): a go.sum, go.mod or module@version body,
 * jobs from the query string; answers the JSON summary. Returns the status
 * it sent. */
int h_admin_warm(struct req *r);

#endif
