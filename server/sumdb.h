/* The checksum databases gomirror proxies (config key `sumdb`). */
#ifndef GOMIRROR_SERVER_SUMDB_H
#define GOMIRROR_SERVER_SUMDB_H

#include <stddef.h>

struct reason;

struct sumdb_entry {
  char *name;  /* "sum.golang.org" */
  char *url;   /* base URL without trailing '/' */
  char *shown; /* url without credentials */
};

struct sumdb_list {
  struct sumdb_entry *v;
  size_t n;
};

/* Parses "name=url,name=url" (an empty spec gives an empty list). */
int sumdb_list_parse(const char *spec, struct sumdb_list **out,
                     struct reason *why);
void sumdb_list_free(struct sumdb_list *l); /* NULL-safe */

/* Checks the part after "/sumdb/<name>/": "supported", "latest",
 * "lookup/<escaped path>@<escaped version>", or a tile path
 * "tile/<H>/<L|data>/<xNNN/...>NNN[.p/<W>]". Returns 0 and sets *kind
 * (see enum), or ERR_NOT_FOUND / ERR_INVALID with why. For lookups the
 * escaped module path and version are written to mod/ver. */
enum sumdb_kind { SUMDB_SUPPORTED, SUMDB_LATEST, SUMDB_LOOKUP, SUMDB_TILE };
int sumdb_parse_rest(const char *rest, enum sumdb_kind *kind, int *partial,
                     char *mod, size_t mod_cap, char *ver, size_t ver_cap,
                     struct reason *why);

struct server;
struct worker;
struct buf;

/* The body of "<db>/<rest>" (rest as after "/sumdb/<name>/", e.g.
 * "lookup/<escaped path>@<escaped version>"). When immutable, it is served
 * from storage if there and stored after a successful fetch; *hit says
 * which. Returns 0, ERR_NOT_FOUND/ERR_GONE, ERR_UPSTREAM(_TIMEOUT). */
int sumdb_fetch(struct server *srv, struct worker *w,
                const struct sumdb_entry *db, const char *rest, int immutable,
                struct buf *out, int *hit, struct reason *why);

#endif
