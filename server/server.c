/* CivetWeb start-up, per-thread resources, and the one dispatcher every
 * request passes through: request id, access control, method check,
 * routing, in-flight count, the access log line and the audit line. */
#include "server.h"

#include "access.h"
#include "auth/auth.h"
#include "connguard.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "http.h"
#include "region.h"
#include "catalog.h"
#include "gc.h"
#include "warm.h"

#include <civetweb.h>
#include <netdb.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void *init_thread(const struct mg_context *ctx, int thread_type) {
  if (thread_type != 1)
    return NULL;
  struct server *srv = mg_get_user_data(ctx);
  struct worker *w = calloc(1, sizeof *w);
  if (!w)
    return NULL;
  buf_init(&w->scratch, (size_t)1 << 30);
  if (srv && srv->auth)
    w->auth = auth_thread_new(srv->auth);
  if (srv)
    w->guard = connguard_slot_new(srv->guard);
  if (srv && srv->auth && !w->auth) {
    free(w);
    return NULL;
  }
  return w;
}

CURL *worker_curl(struct worker *w) {
  if (!w->curl) {
    w->curl = curl_easy_init();
    /* The request's Gomirror-Via line (region.c), read by upstream.c. */
    if (w->curl)
      curl_easy_setopt(w->curl, CURLOPT_PRIVATE, w->via);
  }
  return w->curl;
}

static void exit_thread(const struct mg_context *ctx, int thread_type,
                        void *p) {
  (void)thread_type;
  struct worker *w = p;
  if (!w)
    return;
  struct server *srv = mg_get_user_data(ctx);
  if (srv)
    connguard_slot_free(srv->guard, w->guard);
  if (w->curl)
    curl_easy_cleanup(w->curl);
  auth_thread_free(w->auth);
  buf_free(&w->scratch);
  free(w);
}

static int log_message(const struct mg_connection *conn, const char *msg) {
  (void)conn;
  log_warn("civetweb: %s", msg);
  return 1;
}

static int allow_all(struct mg_connection *conn, void *cbdata) {
  (void)conn;
  (void)cbdata;
  return 1;
}

static double ms_since(const struct timespec *t0) {
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
         (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Routes one request. Probes are always open; every other endpoint, the
 * status page too, first passes access control (access.h). */
static void route(struct req *r) {
  struct server *srv = r->srv;
  int is_get = strcmp(r->method, "GET") == 0;
  const char *path = r->path;
  if (strncmp(path, "/admin/", 7) == 0) {
    r->endpoint = EP_ADMIN;
    if (!access_admin_token(r) && !access_admit(r))
      return;
    if (strcmp(path, "/admin/purge") == 0)
      h_admin_purge(r);
    else if (strcmp(path, "/admin/warm") == 0)
      h_admin_warm(r);
    else if (strcmp(path, "/admin/gc") == 0)
      h_admin_gc(r);
    else
      http_error(r, 404, "unknown admin endpoint");
  } else if (!is_get && !r->head) {
    http_send(r, 405, CT_TEXT, CACHE_NONE, "Allow: GET, HEAD\r\n",
              "method not allowed: use GET or HEAD\n", 36);
  } else if (strcmp(path, "/healthz") == 0) {
    r->endpoint = EP_HEALTH;
    h_healthz(r);
  } else if (strcmp(path, "/readyz") == 0) {
    r->endpoint = EP_HEALTH;
    h_readyz(r);
  } else if (strcmp(path, "/metrics") == 0) {
    r->endpoint = EP_METRICS;
    if (srv->auth && srv->cfg->metrics_auth &&
        (!access_admit(r) || !access_identified(r) || !access_any(r)))
      return;
    h_metrics(r);
  } else if (strcmp(path, "/") == 0) {
    r->endpoint = EP_STATUS;
    if (access_admin_token(r) || access_admit(r))
      h_status(r);
  } else if (strcmp(path, "/stats") == 0) {
    r->endpoint = EP_STATS;
    if (access_admin_token(r) || access_admit(r))
      h_stats(r);
  } else if (strcmp(path, "/catalog") == 0) {
    if (access_admin_token(r) || access_admit(r))
      h_catalog(r);
  } else if (strncmp(path, "/sumdb/", 7) == 0) {
    r->endpoint = EP_SUMDB;
    if (access_admit(r))
      h_sumdb(r);
  } else if (access_admit(r)) {
    h_module(r);
  }
}

static int dispatch(struct mg_connection *conn, void *cbdata) {
  struct server *srv = cbdata;
  const struct mg_request_info *ri = mg_get_request_info(conn);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  struct req r;
  /* Only the header of the request record: the module and detail buffers
   * are written before they are read. */
  memset(&r, 0, offsetof(struct req, module));
  r.module[0] = r.version[0] = r.detail[0] = '\0';
  r.srv = srv;
  r.w = mg_get_thread_pointer(conn);
  r.conn = conn;
  r.method = ri->request_method;
  r.path = ri->local_uri_raw ? ri->local_uri_raw : "/";
  r.cache = "-";
  r.endpoint = EP_OTHER;
  r.head = strcmp(r.method, "HEAD") == 0;
  atomic_fetch_add(&srv->in_flight, 1);
  if (r.w)
    connguard_request_begin(r.w->guard, ri->remote_addr, ri->remote_port);
  access_begin(&r);
  if (!r.w)
    http_error(&r, 500, "worker thread has no state");
  else if (region_request_begin(&r) == 0)
    route(&r);
  double ms = ms_since(&t0);
  metrics_request(&srv->metrics, r.endpoint, r.status, r.bytes, r.cache,
                  ms / 1e3);
  log_access(r.method, r.path, r.status, r.bytes, ms, r.cache,
             srv->auth ? identity_label(&r.id) : NULL);
  access_finish(&r, ms);
  if (r.w)
    connguard_request_end(r.w->guard);
  atomic_fetch_sub(&srv->in_flight, 1);
  return r.status ? r.status : 500;
}

int server_start(struct server *srv, struct reason *why) {
  const struct config *c = srv->cfg;
  char threads[24], timeout[24];
  snprintf(threads, sizeof threads, "%ld", c->threads);
  /* Socket send/receive timeout; a slow client gets this long per write. */
  snprintf(timeout, sizeof timeout, "%ld", 120000L);
  const char *opts[] = {
      "listening_ports",
      c->listen,
      "num_threads",
      threads,
      "tcp_nodelay",
      "1",
      "decode_url",
      "no",
      "enable_keep_alive",
      "yes",
      /* CivetWeb holds a worker thread for each open connection; idle
       * keep-alive connections must let go soon, or clients beyond the
       * thread count wait for them (measured: 30 s with 30000). */
      "keep_alive_timeout_ms",
      "5000",
      "request_timeout_ms",
      timeout,
      NULL,
  };
  /* The guard watches the sockets on our port; it must exist before the
   * worker threads (they register with it). */
  const char *colon = strrchr(c->listen, ':');
  struct connguard_config gc = {
      .listen_port = colon ? (int)strtol(colon + 1, NULL, 10) : 0,
      .header_timeout_ms = c->header_timeout * 1000,
      .max_client_conns = c->max_client_conns,
      .trusted = srv->trusted,
  };
  int rc = connguard_start(&gc, &srv->guard, why);
  if (rc)
    return rc;
  struct mg_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.init_thread = init_thread;
  cb.exit_thread = exit_thread;
  cb.log_message = log_message;
  struct mg_init_data init = {&cb, srv, opts};
  char err[256] = "";
  unsigned code = 0;
  struct mg_error_data ed = {&code, err, sizeof err};
  srv->ctx = mg_start2(&init, &ed);
  if (!srv->ctx) {
    connguard_stop(srv->guard);
    srv->guard = NULL;
    return reason_set(why, ERR_CONFIG, "cannot serve on %s: %s", c->listen,
                      err[0] ? err : "civetweb failed to start");
  }
  mg_set_request_handler(srv->ctx, "/", dispatch, srv);
  /* Without an authorization handler CivetWeb looks for a .htpasswd file on
   * every request (a failed stat(2) each time); gomirror has none. */
  mg_set_auth_handler(srv->ctx, "/", allow_all, NULL);
  return 0;
}

struct stopper {
  struct mg_context *ctx;
  atomic_int done;
};

static void *stop_thread(void *arg) {
  struct stopper *st = arg;
  mg_stop(st->ctx);
  atomic_store(&st->done, 1);
  return NULL;
}

/* Opens and closes one connection to the listen address. */
static void poke(const char *listen) {
  char host[128];
  const char *colon = strrchr(listen, ':');
  if (!colon || (size_t)(colon - listen) >= sizeof host)
    return;
  memcpy(host, listen, (size_t)(colon - listen));
  host[colon - listen] = '\0';
  if (!host[0] || strcmp(host, "0.0.0.0") == 0)
    snprintf(host, sizeof host, "127.0.0.1");
  struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
  struct addrinfo *ai = NULL;
  if (getaddrinfo(host, colon + 1, &hints, &ai) || !ai)
    return;
  int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    (void)connect(fd, ai->ai_addr, ai->ai_addrlen);
    close(fd);
  }
  freeaddrinfo(ai);
}

int server_stop(struct server *srv) {
  if (!srv->ctx)
    return 0;
  /* 1. /readyz answers 503 at once while everything is still served: the
   * load balancer (or Kubernetes, which removes the pod from its endpoints
   * a few seconds after SIGTERM) stops sending new requests. */
  atomic_store(&srv->draining, 1);
  long delay = srv->cfg->drain_delay;
  if (delay > 0) {
    log_info("draining: /readyz answers 503 for %lds while requests are "
             "still served",
             delay);
    struct timespec ts = {delay, 0};
    while (nanosleep(&ts, &ts) != 0)
      ;
  }
  /* 2. Let in-flight requests finish. mg_stop cannot be the way: once its
   * flag is set, CivetWeb's writes give up, so a response being sent would
   * be cut. Meanwhile every response says Connection: close, so keep-alive
   * clients take their next request elsewhere; a request that still
   * arrives is served. */
  atomic_store(&srv->closing, 1);
  long limit_ms = srv->cfg->drain_timeout * 1000L, waited_ms = 0;
  long busy = atomic_load(&srv->in_flight);
  if (busy)
    log_info("draining: waiting for %ld requests in flight", busy);
  while (atomic_load(&srv->in_flight) > 0 && waited_ms < limit_ms) {
    usleep(10 * 1000);
    waited_ms += 10;
  }
  if (atomic_load(&srv->in_flight) > 0) {
    /* Stopping CivetWeb would wait for the workers still answering. */
    log_warn("drain timeout: %ld requests still in flight after %lds; "
             "exiting without them",
             atomic_load(&srv->in_flight), srv->cfg->drain_timeout);
    return -1;
  }
  /* 3. Stop accepting and close idle connections. CivetWeb's master only
   * looks at its stop flag between polls of the listening socket (2 s
   * apart), so connecting to that socket wakes it. */
  log_info("draining: no request in flight; closing the listener");
  /* Heap, not stack: if a worker hangs, the stopper outlives us. */
  struct stopper *st = calloc(1, sizeof *st);
  pthread_t th;
  if (st)
    st->ctx = srv->ctx;
  if (!st || pthread_create(&th, NULL, stop_thread, st) != 0) {
    free(st);
    mg_stop(srv->ctx);
  } else {
    /* A request that slipped in just now may still be answering: give it
     * what is left of drain_timeout, and at least 5 s. */
    long left = limit_ms - waited_ms;
    long polls = (left > 5000 ? left : 5000) / 20;
    for (long i = 0; i < polls && !atomic_load(&st->done); i++) {
      if (i < 250)
        poke(srv->cfg->listen);
      usleep(20 * 1000);
    }
    if (!atomic_load(&st->done)) {
      log_warn("drain timeout: CivetWeb did not stop; exiting without it");
      return -1;
    }
    pthread_join(th, NULL);
    free(st);
  }
  srv->ctx = NULL;
  connguard_stop(srv->guard); /* after the workers have unregistered */
  srv->guard = NULL;
  return 0;
}
