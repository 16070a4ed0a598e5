/* The version policy at work (config keys `policy`, `policy_hook`,
 * `cooldown_exempt`; the rules themselves are mod/policy.h): the file read
 * again when it changes, the decisions where versions are served, listed,
 * resolved and committed, the policy hook, and the decision counts for
 * /metrics. docs/governance.md says why it works this way.
 *
 * Where it applies:
 * - h_module.c, before a version is served (the hot cache included) and,
 *   when its publication time was not known yet, again after pipe_ensure:
 *   policy_request;
 * - pipe_ensure (tools and requests alike): policy_check; the pipeline then
 *   checks the upstream's .info before fetching more (policy_on_info) and
 *   runs the hook before the first commit (policy_on_commit);
 * - every upstream fetch: policy_may_fetch (`only`);
 * - list, @latest and query answers after pipe_resolve: policy_answer. */
#ifndef GOMIRROR_SERVER_POLICY_H
#define GOMIRROR_SERVER_POLICY_H

#include "core/err.h"

#include <stddef.h>
#include <time.h>

struct buf;
struct config;
struct modreq;
struct pipe;
struct policy;
struct req;
struct server;

/* The values of struct pipe's `policy` field. */
enum {
  POLICY_UNCHECKED = 0, /* policy_check has not run for the version */
  POLICY_CHECKED,       /* it has, and let the version through */
  POLICY_PENDING        /* it has, but a cooldown waits for the .info */
};

/* What policy_check found. */
struct policy_outcome {
  int refused; /* ERR_FORBIDDEN was returned */
  int exempt;  /* a cooldown held the version back, and the identity is in
                  cooldown_exempt */
  int pending; /* a cooldown applies, but the version's publication time is
                  not known before its .info is fetched */
  const char *action;      /* for the audit log: "policy_denied",
                              "policy_cooldown", "cooldown_exempt", or NULL */
  char detail[REASON_MAX]; /* the rule, e.g. "policy line 3: deny ..." */
};

/* Reads cfg's policy file (ERR_CONFIG with "FILE:LINE: ..." when it does
 * not parse: start-up stops) and checks the hook keys. *out is NULL when
 * neither `policy` nor `policy_hook` is set. Free with policy_close. */
int policy_open(const struct config *cfg, struct policy **out,
                struct reason *why);
void policy_close(struct policy *pol); /* NULL-safe */
/* Checks the file now instead of within a second (SIGHUP). A file that no
 * longer parses keeps the last good rules and logs one error line. */
void policy_reload(struct policy *pol);

/* May p's caller (p->id; NULL: a tool) get m's version? 0 (v says whether a
 * cooldown was waived or is pending), or ERR_FORBIDDEN with a one-line
 * reason: the deny rule's, or the date the version leaves its cooldown.
 * Reads the publication time from the hot cache, the metadata cache or
 * storage; never from upstream. Sets p->policy. */
int policy_check(struct pipe *p, const struct modreq *m,
                 struct policy_outcome *v, struct reason *why);

/* h_module.c's adapter around policy_check. after = 0: before anything is
 * served; after = 1: after pipe_ensure, only when the first check was
 * pending. 0 to go on (the audit action may be set to cooldown_exempt);
 * else the 403 sent, with the refusal recorded for the audit log. */
int policy_request(struct req *r, struct pipe *p, const struct modreq *m,
                   int after);

/* `only`: 0 when module may be fetched from upstream (private modules
 * always may); ERR_FORBIDDEN with a reason when not. NULL-safe. */
int policy_may_fetch(struct server *srv, const char *module,
                     struct reason *why);

/* The pipeline, with a version's .info in hand (fetched, not yet
 * committed): the cooldown against its Time (and any deny rule). 0 or
 * ERR_FORBIDDEN with why. Records the publication time for list filters. */
int policy_on_info(struct pipe *p, const struct modreq *m, const char *info,
                   size_t len, struct reason *why);
/* Just before a version is committed: policy_on_info for info (NULL when
 * the .info is already committed), then, for a first commit, the policy
 * hook with the zip's h1 (zip_path: the spooled zip, or NULL). 0, or
 * ERR_FORBIDDEN (refused) / ERR_UNAVAILABLE (hook down, failure closed)
 * with why: nothing may be committed then. */
int policy_on_commit(struct pipe *p, const struct modreq *m, const char *info,
                     size_t info_len, const char *zip_path, struct reason *why);
/* 1 when a version's first commit must include its zip (a hook is set: it
 * is asked with the zip's h1). NULL-safe. */
int policy_wants_zip(const struct server *srv);

/* Filters a list, @latest or query answer (body, as pipe_resolve gave it)
 * for r's caller: denied versions and, unless exempt, versions inside their
 * cooldown leave a list; @latest becomes the newest version left (its
 * .info); a query that resolves to such a version is refused. 0 with body
 * rewritten, or ERR_FORBIDDEN with why. Records the audit action. */
int policy_answer(struct req *r, struct pipe *p, const struct modreq *m,
                  struct buf *body, struct reason *why);
/* The same for a tool (no request): body filtered for p->id. */
int policy_filter(struct pipe *p, const struct modreq *m, struct buf *body,
                  struct policy_outcome *v, struct reason *why);

/* 1 when a keep rule covers module@version (garbage collection never
 * removes it), with *line the rule's line. NULL-safe. */
int policy_keeps(struct server *srv, const char *module, const char *version,
                 long *line);

/* `gomirror policy check`: the decision for module@version and the rule
 * behind it, as lines of text appended to out (the publication time is
 * looked up upstream when needed). 0 when the version would be served, 1
 * when it would be refused, or an ERR_* with why. */
int policy_explain(struct pipe *p, const char *module, const char *version,
                   struct buf *out, struct reason *why);

/* The policy's Prometheus lines (decisions by kind, reloads). NULL-safe. */
void policy_metrics(struct policy *pol, struct buf *out);

#endif
