/* Which module paths are private (config key `private`, GOPRIVATE syntax):
 * exactly Go's module.MatchPrefixPatterns over path.Match globs, so an
 * operator's pattern means here what it means to their go command. Pure
 * functions, no I/O (fuzzable). */
#ifndef GOMIRROR_MOD_PRIVATE_H
#define GOMIRROR_MOD_PRIVATE_H

#include <stddef.h>

struct reason;

/* 1 if module matches one of the comma-separated glob patterns, else 0.
 * Empty entries are ignored, a trailing '/' on a pattern is dropped, and a
 * pattern of N elements is matched against the first N elements of module.
 * A malformed pattern matches nothing (Go ignores the error too). NULL
 * patterns or module: 0. */
int private_match(const char *patterns, const char *module);

/* Go's path.Match over two byte ranges (no NUL needed): 1 for a match, 0 for
 * none, ERR_INVALID when the pattern is malformed (Go's ErrBadPattern; as in
 * Go, a mismatch found early can still report the error). */
int private_glob_match(const char *pattern, size_t plen, const char *name,
                       size_t nlen);

/* 0 when every entry of patterns is well-formed; else ERR_CONFIG with a
 * reason naming the first malformed entry, so start-up can reject a pattern
 * that would otherwise silently match nothing. */
int private_check(const char *patterns, struct reason *why);

#endif
