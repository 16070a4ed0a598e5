/* Counters for /metrics and the status page; see metrics.h. */
#include "metrics.h"

#include "auth/auth.h"
#include "connguard.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "counters.h"
#include "hot.h"
#include "http.h"
#include "orgsumdb.h"
#include "policy.h"
#include "region.h"
#include "server.h"
#include "storage/meta.h"
#include "storage/storage.h"
#include "sumdb.h"
#include "upstream.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static const int statuses[METRICS_STATUSES - 1] = {200, 206, 302, 304, 400, 401,
                                                   403, 404, 405, 410, 416, 500,
                                                   501, 502, 503, 504, 429};

static const char *const endpoints[EP__COUNT] = {
    "list",   "info",  "mod",     "zip",   "latest", "sumdb",
    "health", "stats", "metrics", "admin", "status", "other"};

static const char *const classes[METRICS_CLASSES] = {"2xx", "3xx", "4xx",
                                                     "5xx"};

static const double latency_bounds[METRICS_LATENCY_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25,   0.5,   1,      2.5,   5,    10,    30,   60};

static const char *const outcomes[OUTCOME__COUNT] = {
    "ok",      "not_found", "timeout",    "refused",    "dns",
    "blocked", "redirect",  "status_4xx", "status_5xx", "status_other",
    "invalid", "too_large", "network",    "local"};

static const double bounds[METRICS_BUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};

static int status_index(int status) {
  for (int i = 0; i < METRICS_STATUSES - 1; i++)
    if (statuses[i] == status)
      return i;
  return METRICS_STATUSES - 1;
}

#define RELAXED memory_order_relaxed

/* Seconds on a clock that never jumps, cheap enough for every request (the
 * coarse clock is read from the vDSO without a system call); +1 so that a
 * zeroed slot never looks current. */
static long long second_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (long long)ts.tv_sec + 1;
}

/* The first request of each second copies the totals into that second's
 * slot; a window's sums are then the totals minus the oldest slot in it. */
static void snapshot(struct metrics *m) {
  long long now = second_now();
  struct metrics_slot *sl = &m->window[now % METRICS_WINDOW_S];
  long long st = atomic_load_explicit(&sl->stamp, RELAXED);
  if (st == now || st == -1 ||
      !atomic_compare_exchange_strong_explicit(&sl->stamp, &st, -1,
                                               memory_order_acquire, RELAXED))
    return;
  for (int i = 0; i < MT__COUNT; i++)
    atomic_store_explicit(
        &sl->snap[i], atomic_load_explicit(&m->totals[i], RELAXED), RELAXED);
  atomic_store_explicit(&sl->stamp, now, memory_order_release);
}

void metrics_request(struct metrics *m, enum metrics_endpoint ep, int status,
                     long long bytes, const char *cache, double seconds) {
  snapshot(m);
  atomic_fetch_add_explicit(&m->requests[ep][status_index(status)], 1, RELAXED);
  int c = status / 100 - 2;
  if (c < 0 || c >= METRICS_CLASSES)
    c = METRICS_CLASSES - 1; /* no answer at all counts as a 5xx */
  struct metrics_hist *h = &m->latency[ep][c];
  int b = 0;
  while (b < METRICS_LATENCY_BUCKETS && seconds > latency_bounds[b])
    b++;
  atomic_fetch_add_explicit(&h->bucket[b], 1, RELAXED);
  atomic_fetch_add_explicit(&h->micros, (long long)(seconds * 1e6), RELAXED);
  atomic_fetch_add_explicit(&m->totals[MT_REQUESTS], 1, RELAXED);
  atomic_fetch_add_explicit(&m->totals[MT_BYTES], bytes, RELAXED);
  if (cache[0] == 'h' || cache[0] == 's') /* "hit", "stale" */
    atomic_fetch_add_explicit(&m->totals[MT_HITS], 1, RELAXED);
  else if (cache[0] == 'm')
    atomic_fetch_add_explicit(&m->totals[MT_MISSES], 1, RELAXED);
  if (c == METRICS_CLASSES - 1)
    atomic_fetch_add_explicit(&m->totals[MT_5XX], 1, RELAXED);
}

void metrics_window(struct metrics *m, long seconds, long long out[MT__COUNT]) {
  if (seconds > 3600)
    seconds = 3600;
  long long now = second_now();
  long long cur[MT__COUNT];
  for (int i = 0; i < MT__COUNT; i++) {
    cur[i] = atomic_load_explicit(&m->totals[i], memory_order_acquire);
    out[i] = 0;
  }
  /* The oldest second of the window that saw a request: no request came
   * in the seconds before it, so everything since its snapshot is in. */
  for (long long t = now - seconds + 1; t <= now; t++) {
    struct metrics_slot *sl = &m->window[t % METRICS_WINDOW_S];
    if (atomic_load_explicit(&sl->stamp, memory_order_acquire) != t)
      continue;
    for (int i = 0; i < MT__COUNT; i++) {
      long long d = cur[i] - atomic_load_explicit(&sl->snap[i], RELAXED);
      out[i] = d > 0 ? d : 0;
    }
    return;
  }
}

/* --- lines of text without locks ----------------------------------------- */

/* Writes text (up to sizeof words bytes, NUL-padded) with its time and
 * status. A writer that finds the line being written gives up: losing one
 * of two simultaneous lines is better than waiting on the request path. */
static void text_set(struct metrics_text *t, time_t at, int status,
                     const char *text, size_t len) {
  unsigned long long seq = atomic_load_explicit(&t->seq, RELAXED);
  if ((seq & 1) || !atomic_compare_exchange_strong_explicit(
                       &t->seq, &seq, seq + 1, memory_order_acquire, RELAXED))
    return;
  atomic_thread_fence(memory_order_release);
  char bytes[sizeof t->words];
  memset(bytes, 0, sizeof bytes);
  memcpy(bytes, text, len < sizeof bytes ? len : sizeof bytes - 1);
  for (size_t i = 0; i < METRICS_TEXT_WORDS; i++) {
    unsigned long long w;
    memcpy(&w, bytes + i * sizeof w, sizeof w);
    atomic_store_explicit(&t->words[i], w, RELAXED);
  }
  atomic_store_explicit(&t->at, (long long)at, RELAXED);
  atomic_store_explicit(&t->status, status, RELAXED);
  atomic_store_explicit(&t->seq, seq + 2, memory_order_release);
}

/* Copies the line into out (sizeof t->words bytes); 0 when nothing was
 * ever written or it is being written now. */
static int text_get(struct metrics_text *t, time_t *at, int *status,
                    char *out) {
  for (int tries = 0; tries < 3; tries++) {
    unsigned long long s1 = atomic_load_explicit(&t->seq, memory_order_acquire);
    if (s1 == 0)
      return 0;
    if (s1 & 1)
      continue;
    for (size_t i = 0; i < METRICS_TEXT_WORDS; i++) {
      unsigned long long w = atomic_load_explicit(&t->words[i], RELAXED);
      memcpy(out + i * sizeof w, &w, sizeof w);
    }
    *at = (time_t)atomic_load_explicit(&t->at, RELAXED);
    *status = atomic_load_explicit(&t->status, RELAXED);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&t->seq, RELAXED) == s1) {
      out[sizeof t->words - 1] = '\0';
      return 1;
    }
  }
  return 0;
}

/* Error lines hold three fields at fixed offsets, each NUL-terminated. */
#define F_MODULE 0
#define F_REQUEST 160
#define F_REASON 320

/* Copies as much of s as fits in cap bytes (cut short, NUL-terminated). */
static void copy(char *out, size_t cap, const char *s) {
  size_t n = strnlen(s, cap - 1);
  memcpy(out, s, n);
  out[n] = '\0';
}

void metrics_error(const struct req *r, int status, const char *reason) {
  if (status < 500 || !r->srv || r->endpoint == EP_HEALTH)
    return;
  struct metrics *m = &r->srv->metrics;
  char bytes[METRICS_TEXT_WORDS * 8];
  memset(bytes, 0, sizeof bytes);
  char request[F_REASON - F_REQUEST];
  snprintf(request, sizeof request, "%s %s", r->method ? r->method : "?",
           r->path ? r->path : "?");
  /* A module cut short could not be checked against the rules: mark it,
   * and the page shows the line to administrators only. */
  copy(bytes + F_MODULE, F_REQUEST - F_MODULE,
       strlen(r->module) < F_REQUEST - F_MODULE ? r->module : "\x01");
  copy(bytes + F_REQUEST, F_REASON - F_REQUEST, request);
  copy(bytes + F_REASON, sizeof bytes - F_REASON, reason ? reason : "");
  unsigned long long n = atomic_fetch_add_explicit(&m->errors_next, 1, RELAXED);
  text_set(&m->errors[n % METRICS_ERRORS], time(NULL), status, bytes,
           sizeof bytes);
}

size_t metrics_errors(struct metrics *m, struct metrics_error_line *out,
                      size_t cap) {
  unsigned long long next = atomic_load_explicit(&m->errors_next, RELAXED);
  size_t n = 0;
  for (unsigned long long i = 0; i < METRICS_ERRORS && i < next && n < cap;
       i++) {
    char bytes[METRICS_TEXT_WORDS * 8];
    struct metrics_error_line *l = &out[n];
    if (!text_get(&m->errors[(next - 1 - i) % METRICS_ERRORS], &l->at,
                  &l->status, bytes))
      continue;
    copy(l->module, sizeof l->module, bytes + F_MODULE);
    copy(l->request, sizeof l->request, bytes + F_REQUEST);
    copy(l->reason, sizeof l->reason, bytes + F_REASON);
    n++;
  }
  return n;
}

/* --- upstream and checksum-database health -------------------------------- */

const char *metrics_outcome_name(enum metrics_outcome o) {
  return (unsigned)o < OUTCOME__COUNT ? outcomes[o] : "?";
}

void metrics_peer_note(struct metrics_peer *p, enum metrics_outcome o,
                       const char *why) {
  if (!p || (unsigned)o >= OUTCOME__COUNT)
    return;
  atomic_fetch_add_explicit(&p->outcomes[o], 1, RELAXED);
  if (o == OUTCOME_LOCAL)
    return; /* not the peer's doing */
  time_t now = time(NULL);
  if (o == OUTCOME_OK || o == OUTCOME_NOT_FOUND) {
    atomic_store_explicit(&p->ok_at, (long long)now, RELAXED);
    return;
  }
  atomic_store_explicit(&p->fail_at, (long long)now, RELAXED);
  const char *text = why && why[0] ? why : metrics_outcome_name(o);
  text_set(&p->error, now, 0, text, strlen(text));
}

void metrics_peer_read(struct metrics_peer *p, time_t *ok_at, time_t *fail_at,
                       char *why, size_t cap) {
  *ok_at = (time_t)atomic_load_explicit(&p->ok_at, RELAXED);
  *fail_at = (time_t)atomic_load_explicit(&p->fail_at, RELAXED);
  char bytes[METRICS_TEXT_WORDS * 8];
  time_t at;
  int status;
  if (cap)
    why[0] = '\0';
  if (cap && text_get(&p->error, &at, &status, bytes))
    copy(why, cap, bytes);
}

struct metrics_peer *metrics_sumdb_peer(struct metrics *m,
                                        const struct sumdb_list *l,
                                        const struct sumdb_entry *db) {
  for (size_t i = 0; l && i < l->n && i < METRICS_SUMDBS; i++)
    if (&l->v[i] == db)
      return &m->sumdb[i];
  return NULL;
}

/* --- the process -----------------------------------------------------------
 */

void metrics_process(struct metrics_process *out) {
  memset(out, 0, sizeof *out);
  out->open_fds = -1;
  long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
  char text[1024];
  FILE *f = fopen("/proc/self/stat", "re");
  if (f) {
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    /* The command name may hold spaces and parentheses: fields start after
     * the last ')'. Then state (3), ... utime (14), stime (15), threads
     * (20), starttime (22, ticks after boot). */
    char *p = strrchr(text, ')');
    unsigned long long v[20] = {0};
    int got = 0;
    for (p = p ? p + 2 : NULL; p && *p && got < 20; got++) {
      v[got] = strtoull(p, NULL, 10); /* field 3, the state, reads as 0 */
      p = strchr(p, ' ');
      if (p)
        p++;
    }
    if (got >= 20 && tick > 0) {
      out->threads = (long)v[17];
      struct timespec boot, mono;
      clock_gettime(CLOCK_REALTIME, &boot);
      clock_gettime(CLOCK_BOOTTIME, &mono);
      double booted = (double)boot.tv_sec + (double)boot.tv_nsec / 1e9 -
                      ((double)mono.tv_sec + (double)mono.tv_nsec / 1e9);
      out->start_time = booted + (double)v[19] / (double)tick;
    }
  }
  /* Microseconds here, where /proc/self/stat counts clock ticks. */
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) == 0)
    out->cpu_seconds =
        (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
        (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
  f = fopen("/proc/self/statm", "re");
  if (f) {
    unsigned long long size = 0, resident = 0;
    if (fscanf(f, "%llu %llu", &size, &resident) == 2 && page > 0)
      out->rss_bytes = (long long)(resident * (unsigned long long)page);
    fclose(f);
  }
  DIR *d = opendir("/proc/self/fd");
  if (d) {
    long n = 0;
    for (struct dirent *e; (e = readdir(d));)
      if (e->d_name[0] != '.')
        n++;
    closedir(d);
    out->open_fds = n - 1; /* not the one opendir holds */
  }
}

void metrics_upstream(struct metrics *m, double seconds) {
  for (int i = 0; i < METRICS_BUCKETS; i++)
    if (seconds <= bounds[i])
      atomic_fetch_add_explicit(&m->upstream_seconds[i], 1,
                                memory_order_relaxed);
  atomic_fetch_add_explicit(&m->upstream_micros, (long long)(seconds * 1e6),
                            memory_order_relaxed);
  atomic_fetch_add_explicit(&m->upstream_requests, 1, memory_order_relaxed);
}

static long long get(atomic_llong *v) {
  return atomic_load_explicit(v, memory_order_relaxed);
}

/* The request-duration histogram: only the (endpoint, class) pairs seen. */
static void render_requests(struct buf *b, struct metrics *m) {
  buf_appendf(b, "# HELP gomirror_request_duration_seconds Time from a "
                 "request's arrival to the end of its answer, by endpoint and "
                 "status class.\n"
                 "# TYPE gomirror_request_duration_seconds histogram\n");
  for (int e = 0; e < EP__COUNT; e++)
    for (int c = 0; c < METRICS_CLASSES; c++) {
      struct metrics_hist *h = &m->latency[e][c];
      long long n[METRICS_LATENCY_BUCKETS + 1], count = 0;
      for (int i = 0; i <= METRICS_LATENCY_BUCKETS; i++)
        count += n[i] = get(&h->bucket[i]);
      if (!count)
        continue;
      long long cum = 0;
      for (int i = 0; i < METRICS_LATENCY_BUCKETS; i++) {
        cum += n[i];
        buf_appendf(b,
                    "gomirror_request_duration_seconds_bucket{endpoint=\"%s\","
                    "class=\"%s\",le=\"%g\"} %lld\n",
                    endpoints[e], classes[c], latency_bounds[i], cum);
      }
      buf_appendf(b,
                  "gomirror_request_duration_seconds_bucket{endpoint=\"%s\","
                  "class=\"%s\",le=\"+Inf\"} %lld\n"
                  "gomirror_request_duration_seconds_sum{endpoint=\"%s\","
                  "class=\"%s\"} %.6f\n"
                  "gomirror_request_duration_seconds_count{endpoint=\"%s\","
                  "class=\"%s\"} %lld\n",
                  endpoints[e], classes[c], count, endpoints[e], classes[c],
                  (double)get(&h->micros) / 1e6, endpoints[e], classes[c],
                  count);
    }
}

static void render_process(struct buf *b, struct server *srv) {
  struct metrics_process p;
  metrics_process(&p);
  buf_appendf(
      b,
      "# HELP gomirror_build_info The version this replica runs.\n"
      "# TYPE gomirror_build_info gauge\n"
      "gomirror_build_info{version=\"%s\"} 1\n"
      "# HELP gomirror_process_cpu_seconds_total User and system CPU time "
      "used.\n"
      "# TYPE gomirror_process_cpu_seconds_total counter\n"
      "gomirror_process_cpu_seconds_total %.6f\n"
      "# HELP gomirror_process_resident_memory_bytes Resident memory.\n"
      "# TYPE gomirror_process_resident_memory_bytes gauge\n"
      "gomirror_process_resident_memory_bytes %lld\n"
      "# HELP gomirror_process_open_fds Open file descriptors.\n"
      "# TYPE gomirror_process_open_fds gauge\n"
      "gomirror_process_open_fds %ld\n"
      "# HELP gomirror_process_threads Operating-system threads.\n"
      "# TYPE gomirror_process_threads gauge\n"
      "gomirror_process_threads %ld\n"
      "# HELP gomirror_process_start_time_seconds When the process started, "
      "in seconds since the epoch.\n"
      "# TYPE gomirror_process_start_time_seconds gauge\n"
      "gomirror_process_start_time_seconds %.0f\n"
      "# HELP gomirror_worker_threads Worker threads (the threads key): each "
      "serves one connection at a time.\n"
      "# TYPE gomirror_worker_threads gauge\n"
      "gomirror_worker_threads %ld\n"
      "# HELP gomirror_worker_threads_busy Worker threads serving a request "
      "now.\n"
      "# TYPE gomirror_worker_threads_busy gauge\n"
      "gomirror_worker_threads_busy %ld\n",
      GOMIRROR_VERSION, p.cpu_seconds, p.rss_bytes, p.open_fds, p.threads,
      p.start_time, srv->cfg->threads, atomic_load(&srv->in_flight));
}

static void render_storage(struct buf *b, struct server *srv) {
  buf_appendf(b, "# HELP gomirror_storage_op_duration_seconds Storage "
                 "operations by kind (get: until the first byte).\n"
                 "# TYPE gomirror_storage_op_duration_seconds histogram\n");
  for (int op = 0; op < STORAGE_OP__COUNT; op++) {
    struct storage_op_stats st;
    storage_op_stats(srv->store, (enum storage_op)op, &st);
    const char *name = storage_op_name((enum storage_op)op);
    for (int i = 0; i < STORAGE_LATENCY_BUCKETS; i++)
      buf_appendf(b,
                  "gomirror_storage_op_duration_seconds_bucket{op=\"%s\","
                  "le=\"%g\"} %lld\n",
                  name, storage_latency_bounds[i], st.bucket[i]);
    buf_appendf(b,
                "gomirror_storage_op_duration_seconds_bucket{op=\"%s\","
                "le=\"+Inf\"} %lld\n"
                "gomirror_storage_op_duration_seconds_sum{op=\"%s\"} %.6f\n"
                "gomirror_storage_op_duration_seconds_count{op=\"%s\"} "
                "%lld\n",
                name, st.bucket[STORAGE_LATENCY_BUCKETS], name,
                (double)st.micros / 1e6, name,
                st.bucket[STORAGE_LATENCY_BUCKETS]);
  }
  buf_appendf(b, "# HELP gomirror_storage_op_errors_total Storage operations "
                 "that failed (not counting \"not found\").\n"
                 "# TYPE gomirror_storage_op_errors_total counter\n");
  for (int op = 0; op < STORAGE_OP__COUNT; op++) {
    struct storage_op_stats st;
    storage_op_stats(srv->store, (enum storage_op)op, &st);
    buf_appendf(b, "gomirror_storage_op_errors_total{op=\"%s\"} %lld\n",
                storage_op_name((enum storage_op)op), st.errors);
  }
  struct meta_op_stats ms;
  memset(&ms, 0, sizeof ms);
  if (srv->meta && srv->meta->ops->op_stats)
    srv->meta->ops->op_stats(srv->meta, &ms);
  static const char *const meta_ops[META_OP__COUNT] = {"command", "pipeline"};
  buf_appendf(b, "# HELP gomirror_redis_op_duration_seconds Round trips to "
                 "Redis: one command, or one pipelined batch (zero with "
                 "meta=memory).\n"
                 "# TYPE gomirror_redis_op_duration_seconds summary\n");
  for (int i = 0; i < META_OP__COUNT; i++)
    buf_appendf(b,
                "gomirror_redis_op_duration_seconds_sum{op=\"%s\"} %.6f\n"
                "gomirror_redis_op_duration_seconds_count{op=\"%s\"} %lld\n",
                meta_ops[i], (double)ms.micros[i] / 1e6, meta_ops[i],
                ms.count[i]);
  buf_appendf(b, "# HELP gomirror_redis_op_errors_total Redis operations "
                 "that failed: no connection, a timeout or an error reply.\n"
                 "# TYPE gomirror_redis_op_errors_total counter\n");
  for (int i = 0; i < META_OP__COUNT; i++)
    buf_appendf(b, "gomirror_redis_op_errors_total{op=\"%s\"} %lld\n",
                meta_ops[i], ms.errors[i]);
}

/* Every outcome but the answers and our own failures, summed over the
 * upstream entries and checksum databases. */
static void render_upstream_errors(struct buf *b, struct server *srv) {
  long long sum[OUTCOME__COUNT] = {0};
  for (size_t i = 0; srv->up && i < srv->up->n; i++)
    for (int o = 0; srv->up->v[i].health && o < OUTCOME__COUNT; o++)
      sum[o] += get(&srv->up->v[i].health->outcomes[o]);
  for (size_t i = 0; i < METRICS_SUMDBS; i++)
    for (int o = 0; o < OUTCOME__COUNT; o++)
      sum[o] += get(&srv->metrics.sumdb[i].outcomes[o]);
  sum[OUTCOME_INVALID] += get(&srv->metrics.upstream_invalid);
  buf_appendf(b, "# HELP gomirror_upstream_errors_total Failed requests to "
                 "upstreams and checksum databases, by outcome (invalid: "
                 "answers refused after checking them).\n"
                 "# TYPE gomirror_upstream_errors_total counter\n");
  for (int o = OUTCOME_TIMEOUT; o < OUTCOME_LOCAL; o++)
    buf_appendf(b, "gomirror_upstream_errors_total{outcome=\"%s\"} %lld\n",
                outcomes[o], sum[o]);
}

int h_metrics(struct req *r) {
  struct server *srv = r->srv;
  struct metrics *m = &srv->metrics;
  struct buf b;
  buf_init(&b, 1u << 20);
  buf_appendf(&b, "# HELP gomirror_requests_total HTTP requests by endpoint "
                  "and status.\n# TYPE gomirror_requests_total counter\n");
  for (int e = 0; e < EP__COUNT; e++)
    for (int s = 0; s < METRICS_STATUSES; s++) {
      long long n = get(&m->requests[e][s]);
      if (!n)
        continue;
      if (s < METRICS_STATUSES - 1)
        buf_appendf(&b,
                    "gomirror_requests_total{endpoint=\"%s\",code=\"%d\"} "
                    "%lld\n",
                    endpoints[e], statuses[s], n);
      else
        buf_appendf(&b,
                    "gomirror_requests_total{endpoint=\"%s\",code=\"other\"} "
                    "%lld\n",
                    endpoints[e], n);
    }
  buf_appendf(
      &b,
      "# HELP gomirror_cache_lookups_total Artifact lookups by cache layer "
      "(hot: this replica's memory; storage: after a hot miss).\n"
      "# TYPE gomirror_cache_lookups_total counter\n"
      "gomirror_cache_lookups_total{layer=\"hot\",result=\"hit\"} %lld\n"
      "gomirror_cache_lookups_total{layer=\"hot\",result=\"miss\"} %lld\n"
      "gomirror_cache_lookups_total{layer=\"storage\",result=\"hit\"} %lld\n"
      "gomirror_cache_lookups_total{layer=\"storage\",result=\"miss\"} "
      "%lld\n"
      "# HELP gomirror_upstream_fetches_total Misses fetched from upstream "
      "(a proxy, version control or a checksum database).\n"
      "# TYPE gomirror_upstream_fetches_total counter\n"
      "gomirror_upstream_fetches_total %lld\n",
      get(&m->hot_hits), get(&m->hot_misses), get(&m->storage_hits),
      get(&m->storage_misses), get(&m->upstream_fetches));
  buf_appendf(&b, "# HELP gomirror_upstream_request_seconds Duration of "
                  "upstream requests.\n"
                  "# TYPE gomirror_upstream_request_seconds histogram\n");
  for (int i = 0; i < METRICS_BUCKETS; i++)
    buf_appendf(&b,
                "gomirror_upstream_request_seconds_bucket{le=\"%g\"} %lld\n",
                bounds[i], get(&m->upstream_seconds[i]));
  long long nreq = get(&m->upstream_requests);
  struct counters_local cl;
  counters_local(srv->counters, &cl);
  buf_appendf(
      &b,
      "gomirror_upstream_request_seconds_bucket{le=\"+Inf\"} %lld\n"
      "gomirror_upstream_request_seconds_sum %.6f\n"
      "gomirror_upstream_request_seconds_count %lld\n"
      "# HELP gomirror_in_flight_requests Requests being served.\n"
      "# TYPE gomirror_in_flight_requests gauge\n"
      "gomirror_in_flight_requests %ld\n"
      "# HELP gomirror_bytes_served_total Response body bytes sent.\n"
      "# TYPE gomirror_bytes_served_total counter\n"
      "gomirror_bytes_served_total %lld\n"
      "# HELP gomirror_storage_errors_total Storage operations that failed.\n"
      "# TYPE gomirror_storage_errors_total counter\n"
      "gomirror_storage_errors_total %lld\n"
      "# HELP gomirror_redis_errors_total Metadata operations that found "
      "Redis unavailable.\n"
      "# TYPE gomirror_redis_errors_total counter\n"
      "gomirror_redis_errors_total %lld\n"
      "# HELP gomirror_counters_dropped_total Hit counts dropped while Redis "
      "was down and the queue was full.\n"
      "# TYPE gomirror_counters_dropped_total counter\n"
      "gomirror_counters_dropped_total %lld\n"
      "# HELP gomirror_hot_cache_bytes Bytes held in the hot cache.\n"
      "# TYPE gomirror_hot_cache_bytes gauge\n"
      "gomirror_hot_cache_bytes %zu\n",
      nreq, (double)get(&m->upstream_micros) / 1e6, nreq,
      atomic_load(&srv->in_flight), get(&m->totals[MT_BYTES]),
      get(&m->storage_errors), get(&m->redis_errors) + cl.flush_failures,
      cl.dropped, hot_bytes(srv->hot));
  long long slow = 0, over_cap = 0;
  connguard_counts(srv->guard, &slow, &over_cap);
  buf_appendf(&b,
              "# HELP gomirror_connections_closed_total Client connections "
              "the guard closed: no complete request headers within "
              "header_timeout, or beyond max_client_conns for one address.\n"
              "# TYPE gomirror_connections_closed_total counter\n"
              "gomirror_connections_closed_total{reason=\"slow_headers\"} "
              "%lld\n"
              "gomirror_connections_closed_total{reason=\"over_cap\"} %lld\n",
              slow, over_cap);
  struct auth_stats as;
  auth_stats(srv->auth, &as);
  buf_appendf(
      &b,
      "# HELP gomirror_auth_credentials_total Credential checks: answered "
      "from the cache, verified (htpasswd, token or LDAP), refused, or "
      "refused because the identity provider was down.\n"
      "# TYPE gomirror_auth_credentials_total counter\n"
      "gomirror_auth_credentials_total{result=\"cached\"} %lld\n"
      "gomirror_auth_credentials_total{result=\"verified\"} %lld\n"
      "gomirror_auth_credentials_total{result=\"failed\"} %lld\n"
      "gomirror_auth_credentials_total{result=\"unavailable\"} %lld\n"
      "# HELP gomirror_auth_denied_total Requests refused by the access "
      "rules.\n"
      "# TYPE gomirror_auth_denied_total counter\n"
      "gomirror_auth_denied_total %lld\n"
      "# HELP gomirror_sumdb_verified_total Checksum-database answers proven "
      "against a signed tree head.\n"
      "# TYPE gomirror_sumdb_verified_total counter\n"
      "gomirror_sumdb_verified_total %lld\n"
      "# HELP gomirror_sumdb_refused_total Checksum-database answers that "
      "failed verification (never cached or relayed).\n"
      "# TYPE gomirror_sumdb_refused_total counter\n"
      "gomirror_sumdb_refused_total %lld\n"
      "# HELP gomirror_sumdb_forks_total Checksum-database heads inconsistent "
      "with one verified before (a forked or rolled-back log).\n"
      "# TYPE gomirror_sumdb_forks_total counter\n"
      "gomirror_sumdb_forks_total %lld\n"
      "# HELP gomirror_stored_checked_total Versions found in storage "
      "without this region committing them (bucket replication, a copy), "
      "checked against the checksum database before first served.\n"
      "# TYPE gomirror_stored_checked_total counter\n"
      "gomirror_stored_checked_total %lld\n"
      "# HELP gomirror_stored_mismatch_total Such versions whose stored "
      "bytes disagree with the checksum database (never served).\n"
      "# TYPE gomirror_stored_mismatch_total counter\n"
      "gomirror_stored_mismatch_total %lld\n"
      "# HELP gomirror_rate_limited_total Requests refused with 429.\n"
      "# TYPE gomirror_rate_limited_total counter\n"
      "gomirror_rate_limited_total %lld\n"
      "# HELP gomirror_auth_reloads_total Access-control files re-read after "
      "a change, and changes that did not parse (the last good version "
      "stays).\n"
      "# TYPE gomirror_auth_reloads_total counter\n"
      "gomirror_auth_reloads_total{result=\"ok\"} %lld\n"
      "gomirror_auth_reloads_total{result=\"error\"} %lld\n",
      as.cache_hits, as.verified, get(&m->auth_failed), as.unavailable,
      get(&m->denied), get(&m->sumdb_verified), get(&m->sumdb_refused),
      get(&m->sumdb_forks), get(&m->stored_checked),
      get(&m->stored_mismatch), get(&m->rate_limited), as.reloads,
      as.reload_errors);
  policy_metrics(srv->policy, &b);
  orgsumdb_metrics(srv->orgsumdb, &b);
  render_requests(&b, m);
  render_process(&b, srv);
  render_storage(&b, srv);
  render_upstream_errors(&b, srv);
  region_render_metrics(&b, srv);
  int st = b.data
               ? http_send(r, 200, "text/plain; version=0.0.4; charset=utf-8",
                           CACHE_NONE, NULL, b.data, b.len)
               : http_fail(r, ERR_NOMEM, NULL);
  buf_free(&b);
  return st;
}
