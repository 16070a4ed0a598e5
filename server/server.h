/* The state every handler shares (one struct server, no globals), the
 * per-worker-thread resources, and the per-request record the access log and
 * counters are written from. */
#ifndef GOMIRROR_SERVER_SERVER_H
#define GOMIRROR_SERVER_SERVER_H

#include "auth/identity.h"
#include "clientaddr.h"
#include "core/buf.h"
#include "core/err.h"
#include "metrics.h"

#include <curl/curl.h>
#include <stdatomic.h>
#include <stdint.h>

struct config;
struct storage;
struct meta;
struct upstream;
struct flight_group;
struct sumdb_list;
struct orgsumdb;
struct seen;
struct hot_cache;
struct counters;
struct vcs;
struct mg_context;
struct mg_connection;
struct auth;
struct auth_thread;
struct audit;
struct ratelimit;
struct bwbucket;
struct cidr_list;
struct connguard;
struct connguard_slot;
struct policy;
struct lastuse;

struct server {
  const struct config *cfg;
  struct storage *store;
  struct meta *meta;
  struct upstream *up;
  struct upstream *up_private; /* private_upstream's chain, or NULL */
  char region[64];             /* this region's id (Gomirror-Via) */
  struct sumdb_list *sumdbs;
  struct orgsumdb *orgsumdb; /* the organisation checksum database, or NULL */
  struct flight_group *flights;
  struct hot_cache *hot;
  struct seen *verified;     /* stored artifacts verify_stored passed, for
                                when the committed index cannot record them */
  struct counters *counters;
  struct vcs *vcs_private;   /* fetches `private` modules; NULL if none */
  struct vcs *vcs_direct;    /* `direct` in the upstream chain; NULL if not */
  struct auth *auth;         /* NULL: access control is off */
  struct ratelimit *limits;  /* NULL: no rate or bandwidth limits */
  struct audit *audit;       /* NULL: no audit log */
  struct cidr_list *trusted; /* proxies whose X-Forwarded-For counts */
  struct connguard *guard;   /* slow and surplus connections (connguard.h) */
  struct policy *policy;     /* the version policy (policy.h), or NULL */
  struct lastuse *lastuse;   /* access records for gc (lastuse.h), or NULL */
  char boot_id[9];           /* random; request ids start with it */
  atomic_ullong request_seq;
  struct mg_context *ctx;
  char spool_dir[256]; /* where zips are spooled while being validated */
  atomic_int draining;
  atomic_int closing;  /* draining, past drain_delay: Connection: close */
  atomic_int starting; /* waiting for storage at start-up */
  atomic_long in_flight;
  struct metrics metrics;
};

/* One per CivetWeb worker thread, made in init_thread. The curl handle is
 * made on the first upstream request (worker_curl): a worker that only
 * serves cached artifacts never needs one (5 KiB each, thousands of
 * threads), and then keeps its connection cache. */
struct worker {
  CURL *curl; /* NULL until worker_curl */
  struct buf scratch; /* response assembly, reused: no malloc per request */
  struct auth_thread *auth; /* NULL when access control is off */
  struct connguard_slot *guard;
  char via[600]; /* UPSTREAM_VIA_MAX: this request's Gomirror-Via line */
};

#define REQUEST_ID_MAX 48
#define REQ_MODULE_MAX 513  /* MODPATH_MAX + 1 */
#define REQ_VERSION_MAX 257 /* VERSION_MAX + 1 */

struct req {
  struct server *srv;
  struct worker *w;
  struct mg_connection *conn;
  const char *method;
  const char *path; /* raw, still percent-encoded */
  int head;         /* HEAD: headers only */
  int status;
  long long bytes;   /* body bytes written */
  const char *cache; /* "hit", "miss" or "-" for the access log */
  int upstream;      /* upstream requests this request caused */
  enum metrics_endpoint endpoint;
  /* Who asks (access control; anonymous when it is off), for rules, rate
   * limits, the audit log and the access log. */
  struct identity id;
  char request_id[REQUEST_ID_MAX];
  char client[CLIENTADDR_MAX];
  struct bwbucket *bw; /* the identity's download cap, or NULL */
  /* What the audit log records; set by the handlers. */
  const char *action; /* NULL: this request is not audited */
  int refused;        /* a refusal: audited whatever audit_public says */
  char module[REQ_MODULE_MAX];
  char version[REQ_VERSION_MAX];
  char detail[REASON_MAX];
};

/* The worker's curl handle, made on first use; NULL when out of memory. */
CURL *worker_curl(struct worker *w);

/* Starts CivetWeb on cfg->listen with the handlers. 0 or ERR_CONFIG with a
 * reason (e.g. the port is taken). */
int server_start(struct server *srv, struct reason *why);
/* Drains and stops: /readyz answers 503 "draining" at once while requests
 * are still served for drain_delay seconds; then every response says
 * Connection: close while in-flight requests finish (within drain_timeout),
 * and only then does CivetWeb stop accepting and close idle connections.
 * 0 when CivetWeb stopped; -1 when requests were still running at the
 * deadline (CivetWeb still holds them: the caller must exit without
 * freeing). */
int server_stop(struct server *srv);

/* Handlers, one file each family. Each returns the HTTP status it sent. */
int h_module(struct req *r);
int h_sumdb(struct req *r);
int h_healthz(struct req *r);
int h_readyz(struct req *r);
int h_stats(struct req *r);
/* GET /: the status page (h_status.c), HTML for people. */
int h_status(struct req *r);
int h_admin_purge(struct req *r);
/* The purge subscriber: drops hot-cache entries under prefix. */
void h_admin_on_purge(void *arg, const char *prefix);

#endif
