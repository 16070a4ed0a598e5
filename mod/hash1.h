/* Go's "h1:" module hashes (golang.org/x/mod/sumdb/dirhash Hash1), so a
 * fetched zip and go.mod can be checked against the checksum database before
 * they are stored. */
#ifndef GOMIRROR_MOD_HASH1_H
#define GOMIRROR_MOD_HASH1_H

#include <stddef.h>

struct reason;

/* "h1:" + base64(sha256) is 47 bytes; with the NUL, 48. */
#define HASH1_LEN 48

/* Hash1 over every entry of the zip at path (read entry by entry, never
 * whole), opened and read with validate_zip_open and validate_zip_read's
 * limits (entry count, true sizes, CRC-32, 500 MiB in all). 0, or
 * ERR_BAD_UPSTREAM_DATA / ERR_TOO_LARGE / ERR_IO / ERR_NOMEM with why. */
int hash1_zip(const char *path, char out[HASH1_LEN], struct reason *why);
/* Hash1 over one file named "go.mod" holding data (the go.sum "/go.mod"
 * line). */
int hash1_mod(const void *data, size_t len, char out[HASH1_LEN]);

/* Finds, among the go.sum lines of a checksum-database lookup body (the
 * record text: after the record id line, up to the first blank line), the
 * h1 hashes recorded for module@version: zip_h1 from "<module> <version>
 * h1:..." and mod_h1 from "<module> <version>/go.mod h1:...". Either may
 * come back empty. */
void hash1_from_lookup(const char *body, size_t len, const char *module,
                       const char *version, char zip_h1[HASH1_LEN],
                       char mod_h1[HASH1_LEN]);

#endif
