/* The checksum databases gomirror proxies (config key `sumdb`). */
#ifndef GOMIRROR_SERVER_SUMDB_H
#define GOMIRROR_SERVER_SUMDB_H

#include "mod/sumdb.h"

#include <stddef.h>

struct reason;

struct sumdb_list {
  struct sumdb_entry *v;
  size_t n;
};

/* The config key sumdb_verify: strict (the default; also "true"), warn, or
 * off (also "false"). */
enum sumdb_mode { SUMDB_OFF, SUMDB_WARN, SUMDB_STRICT };
struct config;
enum sumdb_mode sumdb_mode(const struct config *cfg);

/* Parses "name=url,name=url" (an empty spec gives an empty list). */
int sumdb_list_parse(const char *spec, struct sumdb_list **out,
                     struct reason *why);
void sumdb_list_free(struct sumdb_list *l); /* NULL-safe */

struct server;
struct worker;
struct buf;

struct req;
/* A lookup of mod_esc@ver_esc is authorized like the module itself: 0 to
 * go on, or the status of the refusal (400, 401, 403) already answered. */
int sumdb_lookup_refused(struct req *r, const char *mod_esc,
                         const char *ver_esc);

/* The body of "<db>/<rest>" from the database itself, if it has the shape
 * of an answer (sumdb_check_answer); nothing is stored or proven. */
int sumdb_get(struct server *srv, struct worker *w,
              const struct sumdb_entry *db, const char *rest, struct buf *out,
              struct reason *why);

/* The body of "<db>/<rest>" (rest as after "/sumdb/<name>/", e.g.
 * "lookup/<escaped path>@<escaped version>"), fetched with the upstreams'
 * redirect and address rules (upstream.h), and only if it passes
 * sumdb_check_answer and, when db names a verifier key, its proof
 * (sumdb_verify.h): nothing unproven is stored or returned. When immutable,
 * it is served from storage if there (and still proven) and stored after a
 * successful fetch; *hit says which. When the database is out of reach,
 * /latest is the newest verified head. Returns 0, ERR_NOT_FOUND/ERR_GONE,
 * ERR_UPSTREAM(_TIMEOUT), ERR_BAD_UPSTREAM_DATA. */
int sumdb_fetch(struct server *srv, struct worker *w,
                const struct sumdb_entry *db, const char *rest, int immutable,
                struct buf *out, int *hit, struct reason *why);

#endif
