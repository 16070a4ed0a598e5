/* Semantic versions as Go uses them (golang.org/x/mod/semver and
 * module/pseudo.go), plus the version-list operations the proxy needs. Pure
 * functions; no I/O. */
#ifndef GOMIRROR_MOD_SEMVER_H
#define GOMIRROR_MOD_SEMVER_H

#include <stddef.h>

struct buf;

/* x/mod semver.IsValid ("v1", "v1.2" are valid but not canonical). */
int semver_is_valid(const char *v);
/* Canonical: vMAJOR.MINOR.PATCH[-pre][+incompatible]; no other build suffix. */
int semver_is_canonical(const char *v);
/* x/mod semver.Compare: -1, 0, 1; invalid versions sort below valid ones. */
int semver_compare(const char *a, const char *b);
/* Has a pre-release part (pseudo-versions do). */
int semver_is_prerelease(const char *v);
/* module.IsPseudoVersion. */
int semver_is_pseudo(const char *v);
/* The major version as "v2", written to out (cap >= 8). */
void semver_major(const char *v, char *out, size_t cap);

/* Merges two version-list bodies (lines "<version>[ <time>]", as from
 * `@v/list`), dropping blank lines, invalid versions and pseudo-versions,
 * keeping one line per version (a line with a time wins over one without),
 * sorted by semver ascending, each line ending in '\n'. Either input may be
 * NULL. Result is appended to out. */
int versions_merge(const char *a, size_t alen, const char *b, size_t blen,
                   struct buf *out);

/* Picks what @latest should name from a list body: the highest release,
 * else the highest pre-release. Writes it to out; ERR_NOT_FOUND if none. */
int versions_latest(const char *list, size_t len, char *out, size_t cap);

#endif
