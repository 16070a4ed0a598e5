/* What storage holds, version by version: the inventory that `gomirror gc`
 * and `gomirror catalog` walk (sizes included), and the paged listing of
 * GET /catalog (Athens' format: {"modules":[{"module","version"}],"next"}).
 * Both come from one storage listing; only committed versions (with a
 * .info) are catalogued, and only keys of the module layout count. */
#ifndef GOMIRROR_SERVER_CATALOG_H
#define GOMIRROR_SERVER_CATALOG_H

#include <stddef.h>
#include <stdint.h>

struct buf;
struct reason;
struct req;
struct storage;

#define CATALOG_PAGE_DEFAULT 1000
#define CATALOG_PAGE_MAX 10000

enum { CATALOG_INFO, CATALOG_MOD, CATALOG_ZIP, CATALOG__KINDS };

struct catalog_entry {
  char *module, *version;         /* decoded */
  char *module_esc, *version_esc; /* as in the storage keys */
  uint64_t size[CATALOG__KINDS];  /* bytes of each artifact held */
  unsigned has;                   /* bit (1 << CATALOG_INFO) ...: held */
};

struct catalog {
  struct catalog_entry *v; /* by module, then semver ascending */
  size_t n;
};

/* Lists store once and gathers every module version it holds, committed
 * or not (a .mod or .zip without .info is an unfinished fetch). 0 with
 * *out (free with catalog_free), or the storage error with why. */
int catalog_load(struct storage *store, struct catalog *out,
                 struct reason *why);
void catalog_free(struct catalog *c); /* NULL-safe */

/* Whether a caller may see module (1) or not (0). */
typedef int (*catalog_filter_fn)(void *arg, const char *module);

/* One page of committed versions as JSON appended to out: those whose
 * storage key ("<module>/@v/<version>", escaped) sorts after token ("" or
 * NULL: from the start), in that order, at most pagesize (1 to
 * CATALOG_PAGE_MAX), through filter (NULL: everything). "next" is the token
 * of the following page, absent on the last. Memory stays bounded by
 * pagesize however much is stored. 0, or the storage error with why. */
int catalog_page(struct storage *store, const char *token, size_t pagesize,
                 catalog_filter_fn filter, void *arg, struct buf *out,
                 struct reason *why);

/* GET /catalog?token=&pagesize= (h_governance.c): one page, of the modules
 * the caller may read when access control is on. */
int h_catalog(struct req *r);

#endif
