/* Checks on what an upstream sends before anything is stored, so the proxy
 * never caches what the go command would refuse (PROTOCOL.md B, G). */
#ifndef GOMIRROR_MOD_VALIDATE_H
#define GOMIRROR_MOD_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

struct reason;

#define VALIDATE_MOD_MAX (16u << 20)     /* go.mod: 16 MiB */
#define VALIDATE_INFO_MAX (64u << 10)    /* .info: 64 KiB is plenty */
#define VALIDATE_ZIP_MAX (500u << 20)    /* zip file: 500 MiB */
#define VALIDATE_UNZIP_MAX (500u << 20)  /* total uncompressed: 500 MiB */
#define VALIDATE_LICENSE_MAX (16u << 20) /* LICENSE: 16 MiB */
/* Entries in a module zip. Go sets no count limit, but every entry costs
 * memory while a zip is checked (libzip's directory, the collision trie):
 * about 450 bytes each, so 100,000 entries cost about 45 MB. The largest
 * public modules (the pre-split azure-sdk-for-go, near the 500 MiB limit)
 * hold tens of thousands of files; 100,000 leaves room above them. */
#define VALIDATE_ZIP_ENTRIES_MAX 100000u
/* Central directory: the entry names libzip holds in memory. 100,000
 * entries with names of 600 bytes fit; real names are far shorter. */
#define VALIDATE_ZIP_CDIR_MAX (64u << 20)

/* An upstream .info body: a JSON object (json-c) whose "Version" is a string;
 * when want_exact, it must equal want exactly; "Time", if present, is a
 * string. On success the reported version is copied to version_out (cap
 * bytes). Failure: ERR_BAD_UPSTREAM_DATA with a one-line reason. */
int validate_info(const char *body, size_t len, const char *want,
                  int want_exact, char *version_out, size_t cap,
                  struct reason *why);

/* An upstream .mod body for the (decoded) module path: at most
 * VALIDATE_MOD_MAX bytes (else ERR_TOO_LARGE), no NUL byte, go.mod syntax
 * as x/mod modfile.ParseLax reads it (comments, blank lines, `module (`
 * blocks, quoted paths), and exactly one module directive whose path is
 * module, or has module's major-version suffix (a fork kept its original
 * path, to be used in a replace directive: what cmd/go accepts from
 * version control). Else ERR_BAD_UPSTREAM_DATA with a one-line reason.
 * The go command's own `module <path>` for a module without go.mod passes. */
int validate_mod(const char *body, size_t len, const char *module,
                 struct reason *why);

/* A module zip spooled to a file, read with libzip without loading it whole:
 * size <= VALIDATE_ZIP_MAX, every entry named "<module>@<version>/..." (the
 * decoded path and version), clean file paths (x/mod CheckFilePath), no two
 * names equal under case folding, go.mod only at the root, declared
 * uncompressed sizes within limits, only Store and Deflate, and then every
 * entry read through validate_zip_read (true sizes, CRC-32). Failure:
 * ERR_BAD_UPSTREAM_DATA or ERR_TOO_LARGE with a one-line reason naming the
 * first offending entry. */
int validate_zip(const char *zip_path, const char *module, const char *version,
                 struct reason *why);

struct zip; /* libzip's zip_t */

/* Opens the spooled zip at zip_path with libzip (consistency checks on),
 * after checking from its end-of-central-directory records alone, before
 * libzip allocates per entry, that it is at most VALIDATE_ZIP_MAX bytes,
 * holds at most VALIDATE_ZIP_ENTRIES_MAX entries and a central directory of
 * at most VALIDATE_ZIP_CDIR_MAX bytes. On success the caller owns *out and
 * frees it with zip_discard. Failure: *out is NULL; ERR_TOO_LARGE,
 * ERR_BAD_UPSTREAM_DATA, ERR_IO (our spool) or ERR_NOMEM, with why. */
int validate_zip_open(const char *zip_path, struct zip **out,
                      struct reason *why);

/* Gets each piece of an entry's content; a non-zero return stops the read
 * and is returned by validate_zip_read. */
typedef int (*validate_sink_fn)(void *arg, const void *data, size_t len);

/* Reads entry index of za, handing its inflated bytes to sink (may be
 * NULL), as archive/zip reads it for the go command: it stops as soon as
 * the entry inflates past its declared size, refuses an entry shorter than
 * declared and one whose CRC-32 does not match (libzip checks it at the end
 * of the data), and never reads more than *budget bytes, which it lowers by
 * what it read. At most the declared size plus one byte is ever inflated.
 * Failure: ERR_BAD_UPSTREAM_DATA, ERR_TOO_LARGE (budget), ERR_IO, ERR_NOMEM
 * or the sink's code, with why naming the entry. */
int validate_zip_read(struct zip *za, uint64_t index, uint64_t *budget,
                      validate_sink_fn sink, void *arg, struct reason *why);

#endif
