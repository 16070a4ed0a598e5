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

/* Whether body has the shape of the database's answer to rest (as after
 * "/sumdb/<name>/"), so that nothing else is stored or relayed: a lookup is
 * a record (id line, go.sum lines with both lines of the module@version
 * asked for, a blank line) followed by a tree note (x/mod tlog.ParseTree)
 * with a signature line ("\u2014 <name> <base64>") by db->name; /latest is
 * such a note; a hash tile is 32 bytes per hash (2^H hashes when full, W
 * for .p/W); a data tile holds that many records, each ending in a blank
 * line. Signatures and proofs are not verified (the client does). 0, or
 * ERR_BAD_UPSTREAM_DATA with a one-line reason naming the database. */
int sumdb_check_answer(const struct sumdb_entry *db, const char *rest,
                       const char *body, size_t len, struct reason *why);

struct server;
struct worker;
struct buf;

/* The body of "<db>/<rest>" (rest as after "/sumdb/<name>/", e.g.
 * "lookup/<escaped path>@<escaped version>"), fetched with the upstreams'
 * redirect and address rules (upstream.h), and only if it passes
 * sumdb_check_answer. When immutable, it is served from storage if there
 * (and still passes) and stored after a successful fetch; *hit says which.
 * Returns 0, ERR_NOT_FOUND/ERR_GONE, ERR_UPSTREAM(_TIMEOUT),
 * ERR_BAD_UPSTREAM_DATA. */
int sumdb_fetch(struct server *srv, struct worker *w,
                const struct sumdb_entry *db, const char *rest, int immutable,
                struct buf *out, int *hit, struct reason *why);

#endif
