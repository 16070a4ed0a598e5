/* The checksum-database protocol's paths and answers, without I/O
 * (PROTOCOL.md E). */
#ifndef GOMIRROR_MOD_SUMDB_H
#define GOMIRROR_MOD_SUMDB_H

#include "note.h"

#include <stddef.h>

struct reason;

struct sumdb_entry {
  char *name;  /* "sum.golang.org" */
  char *url;   /* base URL without trailing '/' */
  char *shown; /* url without credentials */
  int has_key; /* the entry named a verifier key: answers can be proven */
  struct note_verifier key;
};

/* Decodes, in place, the percent escapes a client's checksum-database path
 * may carry (`%21` for '!', `%2B` for '+'); 0, or ERR_INVALID for any
 * other escape or a control or non-ASCII byte. */
int sumdb_unescape_rest(char *s);

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

#endif
