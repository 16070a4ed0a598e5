/* Garbage collection: removes the stored versions nobody downloaded for a
 * while (`gomirror gc`, POST /admin/gc, the chart's CronJob). Never a
 * version that --keep or the policy's keep rules cover, never the newest
 * version of a module unless asked. Safe while replicas serve: it chooses,
 * waits `grace` seconds for accesses in flight to be recorded, then checks
 * each version's last access again right before it uncommits the version
 * (.info first, under the version's fetch lock) and deletes its .mod and
 * .zip. docs/governance.md says why this order is safe. */
#ifndef GOMIRROR_SERVER_GC_H
#define GOMIRROR_SERVER_GC_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct reason;
struct req;
struct server;

#define GC_GRACE_DEFAULT 2 /* seconds: above the counters' flush interval */

struct gc_options {
  long unused_for;  /* seconds without a download */
  int dry_run;      /* report what would go, remove nothing */
  const char *keep; /* GOPRIVATE patterns never removed; NULL or "" none */
  int newest;       /* remove the newest version of a module too */
  long grace;       /* seconds between choosing and removing */
  /* Told (when set) once the candidates are chosen, before the wait. */
  void (*chosen)(void *arg, size_t n, long grace);
  void *arg;
};

/* One version removed (or, in a dry run, that would be), or kept because
 * it was downloaded during the run. */
struct gc_item {
  char *module, *version;
  uint64_t bytes; /* .info, .mod and .zip together */
  time_t last;    /* its last use as seen when chosen */
  int removed;    /* 0: it was used during the run (or was busy) */
};

struct gc_report {
  time_t now, cutoff; /* versions last used before cutoff go */
  int dry_run;
  size_t modules, versions; /* committed ones looked at */
  struct gc_item *items;    /* candidates, by module and version */
  size_t nitems;
  size_t removed;      /* versions removed (or, dry, to remove) */
  uint64_t bytes;      /* their bytes */
  size_t kept_recent;  /* used within unused_for */
  size_t kept_newest;  /* the newest version of their module */
  size_t kept_keep;    /* --keep or a keep rule */
  size_t kept_during;  /* downloaded during the run */
  size_t kept_busy;    /* being fetched (their fetch lock was held) */
  size_t kept_unknown; /* last use unknown (metadata or storage down) */
  size_t errors;       /* deletes that failed */
  char error[240];     /* the first of them */
  double seconds;
};

/* Runs garbage collection over srv's storage and metadata. 0 with *rep
 * (free with gc_report_free) even when single deletes failed (counted in
 * rep->errors), or an error with why when storage could not be listed. */
int gc_run(struct server *srv, const struct gc_options *o,
           struct gc_report *rep, struct reason *why);
void gc_report_free(struct gc_report *rep); /* NULL-safe */

/* POST /admin/gc?unused_for=180d[&dry_run=1][&keep=PATTERNS][&newest=1]
 * [&grace=2s] (h_governance.c): admin only, like /admin/purge; answers the
 * report as JSON. */
int h_admin_gc(struct req *r);

#endif
