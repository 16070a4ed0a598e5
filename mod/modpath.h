/* Request-path parsing for the GOPROXY protocol, with no I/O so it can be
 * fuzzed: percent-decoding, case-encoding (x/mod module.EscapePath and
 * UnescapePath), and module path and version validation (x/mod CheckPath,
 * CheckPathMajor, semver). Nothing reaches storage or an upstream before
 * modpath_parse has accepted it. */
#ifndef GOMIRROR_MOD_MODPATH_H
#define GOMIRROR_MOD_MODPATH_H

#include <stddef.h>

struct reason;

/* Go sets no limit; we do, generously. Longer requests answer 404/400. */
#define MODPATH_MAX 512
#define VERSION_MAX 256
/* Escaped forms can be up to twice as long (every letter upper case). */
#define MODPATH_ESC_MAX (2 * MODPATH_MAX)
#define VERSION_ESC_MAX (2 * VERSION_MAX)

enum modreq_kind {
  MODREQ_LIST,   /* <module>/@v/list */
  MODREQ_INFO,   /* <module>/@v/<version>.info */
  MODREQ_MOD,    /* <module>/@v/<version>.mod */
  MODREQ_ZIP,    /* <module>/@v/<version>.zip */
  MODREQ_LATEST, /* <module>/@latest */
};

struct modreq {
  enum modreq_kind kind;
  char module[MODPATH_MAX + 1]; /* decoded: github.com/BurntSushi/toml */
  char module_esc[MODPATH_ESC_MAX + 1]; /* github.com/!burnt!sushi/toml */
  char version[VERSION_MAX + 1];        /* decoded; "" for list and latest */
  char version_esc[VERSION_ESC_MAX + 1];
  int canonical; /* version is canonical semver (incl. pseudo-versions and
                    +incompatible): its .info/.mod/.zip are immutable */
};

/* Parses a raw, still percent-encoded request path that starts with '/',
 * e.g. "/github.com/%21burnt%21sushi/toml/@v/v1.2.0.zip". `%21` and a literal
 * `!` are the same; `+` stays `+` (never a space); `%2B` is `+`.
 * Returns 0 with out filled, or:
 *  ERR_INVALID (400): bad percent-escape, NUL or control bytes, `%2F` or `%5C`
 *    encoded separators, bytes >= 0x80, invalid case-escape (`!` not followed
 *    by a-z, trailing `!`), `.`/`..` elements, a path or version that fails the
 *    x/mod checks, a non-canonical version for .mod or .zip;
 *  ERR_NOT_FOUND (404): not a module endpoint (no /@v/ or /@latest, unknown
 *    suffix, trailing slash, `@v/` or `@v/list/`), raw upper-case letters,
 *    over-long path.
 * why gets a one-line reason in every failure case. */
int modpath_parse(const char *raw, struct modreq *out, struct reason *why);

/* x/mod module.EscapePath: upper-case letters become '!' + lower case.
 * Returns 0, or ERR_INVALID if path is invalid or out (cap bytes incl. NUL)
 * is too small. */
int modpath_escape(const char *path, char *out, size_t cap);
/* x/mod EscapeVersion (same encoding, version rules). */
int modpath_escape_version(const char *version, char *out, size_t cap);
/* x/mod unescapeString: rejects upper case, '!' not followed by a-z, a
 * trailing '!', bytes >= 0x80. Returns 0 or ERR_INVALID. */
int modpath_unescape(const char *esc, char *out, size_t cap);

/* x/mod module.CheckPath (including the major-version suffix rules, gopkg.in
 * included). 0 or ERR_INVALID with why. */
int modpath_check_path(const char *path, struct reason *why);
/* Whether version is usable in a request for path: a valid file-name
 * element without '!'; when require_canonical, canonical semver whose major
 * version matches path's /vN suffix (or +incompatible for v2+ without one).
 * 0 or ERR_INVALID with why. */
int modpath_check_version(const char *path, const char *version,
                          int require_canonical, struct reason *why);

#endif
