/* Prometheus metrics: fixed tables of atomic counters, so recording costs
 * a few atomic adds and no allocation or lock; /metrics renders them in the
 * text exposition format. The same records feed the status page (h_status.c):
 * per-second snapshots of the totals for the last minute and hour, the last
 * 5xx answers, and the health of each upstream and checksum database. */
#ifndef GOMIRROR_SERVER_METRICS_H
#define GOMIRROR_SERVER_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

struct req;
struct sumdb_list;
struct sumdb_entry;

enum metrics_endpoint {
  EP_LIST,
  EP_INFO,
  EP_MOD,
  EP_ZIP,
  EP_LATEST,
  EP_SUMDB,
  EP_HEALTH,
  EP_STATS,
  EP_METRICS,
  EP_ADMIN,
  EP_STATUS,
  EP_OTHER,
  EP__COUNT
};

#define METRICS_STATUSES 18 /* the codes gomirror answers, plus "other" */
#define METRICS_BUCKETS 14  /* upstream duration histogram */
#define METRICS_LATENCY_BUCKETS 16 /* request duration histogram */
#define METRICS_CLASSES 4          /* 2xx, 3xx, 4xx, 5xx */
/* An hour of one-second slots, and slack so the oldest slot a reader uses
 * is never the one being rewritten. */
#define METRICS_WINDOW_S 3664
#define METRICS_ERRORS 16     /* 5xx lines kept for the status page */
#define METRICS_TEXT_WORDS 64 /* 512 bytes of text per line */
#define METRICS_SUMDBS 8      /* checksum databases with health records */

/* What became of one request to an upstream or a checksum database. OK and
 * NOT_FOUND are answers; LOCAL is a failure on this side (a spool file, out
 * of memory); the rest are the peer's errors. */
enum metrics_outcome {
  OUTCOME_OK,
  OUTCOME_NOT_FOUND,
  OUTCOME_TIMEOUT,
  OUTCOME_REFUSED,
  OUTCOME_DNS,
  OUTCOME_BLOCKED,
  OUTCOME_REDIRECT,
  OUTCOME_STATUS_4XX,
  OUTCOME_STATUS_5XX,
  OUTCOME_STATUS_OTHER,
  OUTCOME_INVALID,
  OUTCOME_TOO_LARGE,
  OUTCOME_NETWORK,
  OUTCOME_LOCAL,
  OUTCOME__COUNT
};

/* A line of text several threads may write and any may read without a
 * lock: a sequence number that is odd while a writer fills the words (a
 * seqlock over atomics, so readers never see half a line). */
struct metrics_text {
  atomic_ullong seq;
  atomic_llong at; /* unix seconds */
  atomic_int status;
  atomic_ullong words[METRICS_TEXT_WORDS];
};

/* One upstream entry's or checksum database's record. */
struct metrics_peer {
  atomic_llong ok_at;   /* unix seconds of the last answer; 0: never */
  atomic_llong fail_at; /* of the last error; 0: never */
  atomic_llong outcomes[OUTCOME__COUNT];
  struct metrics_text error; /* the last error's reason */
};

struct metrics_hist {
  atomic_llong bucket[METRICS_LATENCY_BUCKETS + 1]; /* not cumulative; the
                                                       last is +Inf */
  atomic_llong micros;                              /* sum */
};

/* The totals the status page shows per minute and per hour. */
enum metrics_total {
  MT_REQUESTS,
  MT_BYTES,
  MT_HITS,
  MT_MISSES,
  MT_5XX,
  MT__COUNT
};

/* The totals as they were at the first request of one second. */
struct metrics_slot {
  atomic_llong stamp; /* that second (monotonic, +1); -1 while written */
  atomic_llong snap[MT__COUNT];
};

struct metrics {
  atomic_llong requests[EP__COUNT][METRICS_STATUSES];
  atomic_llong hot_hits, hot_misses;         /* hot cache */
  atomic_llong storage_hits, storage_misses; /* storage, after a hot miss */
  atomic_llong upstream_fetches; /* fetches that left for upstream */
  atomic_llong upstream_seconds[METRICS_BUCKETS]; /* cumulative buckets */
  atomic_llong upstream_micros;                   /* sum, microseconds */
  atomic_llong upstream_requests;                 /* count */
  atomic_llong storage_errors, redis_errors;
  atomic_llong auth_failed;      /* 401 for wrong or unknown credentials */
  atomic_llong denied;           /* refused by the access rules */
  atomic_llong rate_limited;     /* 429 */
  atomic_llong upstream_invalid; /* answers refused as invalid data */
  /* Checksum-database answers: proven, refused as unproven (bad signature,
   * inconsistent tile, record not in the tree), and forked or rolled-back
   * logs (a head inconsistent with one verified before). */
  atomic_llong sumdb_verified, sumdb_refused, sumdb_forks;
  /* Versions found in storage without this region committing them
   * (replication, a copy): checked against the checksum database, and
   * refused because their bytes did not match (verify.h). */
  atomic_llong stored_checked, stored_mismatch;
  struct metrics_hist latency[EP__COUNT][METRICS_CLASSES];
  atomic_llong totals[MT__COUNT];
  struct metrics_slot window[METRICS_WINDOW_S];
  atomic_ullong errors_next;
  struct metrics_text errors[METRICS_ERRORS];
  struct metrics_peer sumdb[METRICS_SUMDBS]; /* by index in srv->sumdbs */
};

/* Counts one answered request: its endpoint, status, body bytes, cache
 * ("hit", "stale", "miss" or "-") and duration. A few relaxed atomic adds,
 * and once a second a snapshot of the totals. */
void metrics_request(struct metrics *m, enum metrics_endpoint ep, int status,
                     long long bytes, const char *cache, double seconds);
/* One request to an upstream, a checksum database or version control. */
void metrics_upstream(struct metrics *m, double seconds);
/* Keeps a 5xx answer (with its one-line reason) for the status page; other
 * statuses and health probes are ignored. NULL-safe for r->srv. */
void metrics_error(const struct req *r, int status, const char *reason);
/* Notes the outcome of one request to the peer p (NULL: nothing) with the
 * reason it failed (NULL or "" for none). */
void metrics_peer_note(struct metrics_peer *p, enum metrics_outcome o,
                       const char *why);
/* The record of checksum database db of list l; NULL past METRICS_SUMDBS. */
struct metrics_peer *metrics_sumdb_peer(struct metrics *m,
                                        const struct sumdb_list *l,
                                        const struct sumdb_entry *db);
/* "timeout", "status_5xx", ...: a static string. */
const char *metrics_outcome_name(enum metrics_outcome o);

/* --- readers, for the status page ---------------------------------------- */

/* The totals of the last `seconds` seconds (at most an hour). */
void metrics_window(struct metrics *m, long seconds, long long out[MT__COUNT]);

struct metrics_error_line {
  time_t at;
  int status;
  char module[160];  /* "" none; "\x01" when too long to keep */
  char request[160]; /* method and path, maybe cut short */
  char reason[192];
};
/* Copies up to cap kept error lines into out, newest first; returns how
 * many. */
size_t metrics_errors(struct metrics *m, struct metrics_error_line *out,
                      size_t cap);
/* The peer's last answer and last error times (0: never) and the last
 * error's reason into why (cap bytes). */
void metrics_peer_read(struct metrics_peer *p, time_t *ok_at, time_t *fail_at,
                       char *why, size_t cap);

struct metrics_process {
  double cpu_seconds;  /* user and system */
  long long rss_bytes; /* resident memory */
  long open_fds;
  long threads;
  double start_time; /* unix seconds */
};
/* This process, from /proc/self; fields it cannot read are 0 or -1. */
void metrics_process(struct metrics_process *out);

int h_metrics(struct req *r);

#endif
