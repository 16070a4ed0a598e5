/* What a project needs, read from the text of its go.sum or go.mod, or from
 * plain module@version lines: the list of module versions `gomirror warm`
 * and POST /admin/warm make sure are committed. No I/O: callers hand in the
 * text, so it can be fuzzed. */
#ifndef GOMIRROR_MOD_GOSUM_H
#define GOMIRROR_MOD_GOSUM_H

#include <stddef.h>

struct reason;

/* The most versions one list holds unless the caller asks for fewer. */
#define GOSUM_MAX 100000

struct gosum_entry {
  char *module;  /* decoded module path; owns the allocation */
  char *version; /* canonical version; points into module's allocation */
  int want_zip;  /* 0: only the .mod is needed (a go.sum "/go.mod" line) */
};

/* Versions in the order first seen, each once. */
struct gosum_list {
  struct gosum_entry *v;
  size_t n, cap;
  size_t max;    /* gosum_add past this many versions fails */
  size_t *slots; /* open-addressing index of v (index + 1; 0 = empty) */
  size_t nslots;
};

/* Starts empty with room for at most max versions (0 or more than
 * GOSUM_MAX means GOSUM_MAX); allocates nothing. */
void gosum_init(struct gosum_list *l, size_t max);
/* Frees every entry; l is left empty and usable. NULL-safe. */
void gosum_free(struct gosum_list *l);

/* Adds module@version (checked with modpath_check_path and a canonical
 * modpath_check_version). A version already listed is not added again, but
 * want_zip is merged: a zip wanted by either wins. 0, or ERR_INVALID /
 * ERR_TOO_LARGE (more than max versions) / ERR_NOMEM with why; l is
 * unchanged on failure. */
int gosum_add(struct gosum_list *l, const char *module, const char *version,
              int want_zip, struct reason *why);

/* Parses text[0..len) line by line and adds what it names to l:
 *  - go.sum lines "<module> <version>[/go.mod] <alg>:<hash>": the "/go.mod"
 *    form wants only the .mod, the other the zip too;
 *  - go.mod files: require directives (single and block form; comments such
 *    as "// indirect" dropped); module, go, toolchain, replace, exclude,
 *    retract and any other directive or block ignored;
 *  - plain "module@version" lines;
 *  - blank lines and "#" or "//" comments.
 * A NUL byte in text is an error, a UTF-8 byte-order mark and CRLF line
 * ends are accepted. name (a file name, "stdin", ...) starts each error:
 * "go.sum:12: invalid version ...", one line. 0, or ERR_INVALID /
 * ERR_TOO_LARGE / ERR_NOMEM with why; l keeps the versions added before the
 * failing line (the caller frees l either way). */
int gosum_parse(struct gosum_list *l, const char *name, const char *text,
                size_t len, struct reason *why);

#endif
