/* The module pipeline: make sure a module version is committed (resolve,
 * fetch once across replicas, validate, verify against the checksum
 * database, commit .mod and .zip before .info), answer list, @latest and
 * queries, and read committed artifacts back. It takes no HTTP request: the
 * handlers (h_module.c) and the command-line tools (cmd_warm.c, ...) are
 * adapters that build a struct pipe and call these functions. */
#ifndef GOMIRROR_SERVER_PIPELINE_H
#define GOMIRROR_SERVER_PIPELINE_H

#include "mod/modpath.h"

#include <stddef.h>
#include <stdint.h>

struct buf;
struct identity;
struct reason;
struct server;
struct upstream;
struct worker;

/* Longest storage key of a valid module version. */
#define PIPE_KEY_MAX (MODPATH_ESC_MAX + VERSION_ESC_MAX + 32)

/* One caller's context: the process's resources, a curl handle of its own
 * (the worker's; each thread needs its own), and what the calls did, for
 * the access log and the counters. */
struct pipe {
  struct server *srv;
  struct worker *w;
  const char *cache; /* "hit"; "miss" once something was fetched; "stale" */
  int upstream;      /* requests sent to upstreams or version control */
  const struct upstream *chain; /* private_upstream while a private path is
                                   fetched from it; NULL: upstream */
  int offline;       /* answer from storage only (config offline, or the
                        request's Disable-Module-Fetch: true) */
  const struct identity *id; /* who asks, for the version policy's
                                cooldown_exempt; NULL: a tool */
  int policy;        /* whether the version policy was checked
                        (server/policy.h: POLICY_UNCHECKED, ...) */
};

/* A context for srv and the worker's curl handle; offline when the
 * configuration says so. */
void pipe_init(struct pipe *p, struct server *srv, struct worker *w);

/* "<module_esc>/@v/<version_esc>.<ext>", the storage key of an artifact. */
void pipe_key(const struct modreq *m, const char *ext, char *out, size_t cap);

/* Makes sure m's version (and, with want_zip, its zip) is committed,
 * fetching it at most once however many callers ask at the same time, on
 * this replica or any. 0, or the error with a one-line reason: ERR_NOT_FOUND
 * / ERR_GONE (cached for negative_ttl), ERR_UPSTREAM(_TIMEOUT),
 * ERR_BAD_UPSTREAM_DATA, ERR_STORAGE, ERR_UNAVAILABLE, ... */
int pipe_ensure(struct pipe *p, const struct modreq *m, int want_zip,
                struct reason *why);

/* After pipe_ensure answered ERR_NOT_FOUND/ERR_GONE for an .info: the
 * .info the upstream served for a version it has no .mod for (nothing was
 * committed), for negative_ttl seconds. Serving it keeps the go command's
 * @latest and query resolution working, as the upstream itself does; the
 * .mod and .zip answer 404. 0 with the body in out, or ERR_NOT_FOUND. */
int pipe_info_only(struct pipe *p, const struct modreq *m, struct buf *out);

/* The answer to a list, @latest or non-canonical .info query (m->kind):
 * cached for list_ttl, refreshed once across replicas, and when the
 * upstream fails served stale or from what storage holds rather than
 * denying a module gomirror has versions of. 0 with the body in out. */
int pipe_resolve(struct pipe *p, const struct modreq *m, struct buf *out,
                 struct reason *why);

/* A committed artifact's bytes (ext "info" or "mod"; a zip is streamed by
 * the storage layer instead). */
int pipe_read(struct pipe *p, const struct modreq *m, const char *ext,
              struct buf *out);

/* Records in metadata that m's version was committed by another writer
 * than pipe_ensure (gomirror import): the committed index, as a fetch
 * records it (zip_len < 0: no zip), and drops the version's remembered
 * 404s and refusals and the module's cached list and @latest, so every
 * replica serves it at once. Metadata failures are ignored (storage is
 * the truth). */
void pipe_note_committed(struct server *srv, const struct modreq *m,
                         uint64_t info_len, uint64_t mod_len,
                         long long zip_len);

#endif
