/* Checks on what an upstream sends before anything is stored, so the proxy
 * never caches what the go command would refuse (PROTOCOL.md B, G). */
#ifndef GOMIRROR_SERVER_VALIDATE_H
#define GOMIRROR_SERVER_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

struct reason;

#define VALIDATE_MOD_MAX (16u << 20)     /* go.mod: 16 MiB */
#define VALIDATE_INFO_MAX (64u << 10)    /* .info: 64 KiB is plenty */
#define VALIDATE_ZIP_MAX (500u << 20)    /* zip file: 500 MiB */
#define VALIDATE_UNZIP_MAX (500u << 20)  /* total uncompressed: 500 MiB */
#define VALIDATE_LICENSE_MAX (16u << 20) /* LICENSE: 16 MiB */

/* An upstream .info body: a JSON object (json-c) whose "Version" is a string;
 * when want_exact, it must equal want exactly; "Time", if present, is a
 * string. On success the reported version is copied to version_out (cap
 * bytes). Failure: ERR_BAD_UPSTREAM_DATA with a one-line reason. */
int validate_info(const char *body, size_t len, const char *want,
                  int want_exact, char *version_out, size_t cap,
                  struct reason *why);

/* An upstream .mod body: at most VALIDATE_MOD_MAX bytes (else ERR_TOO_LARGE)
 * and no NUL bytes (else ERR_BAD_UPSTREAM_DATA). */
int validate_mod(const char *body, size_t len, struct reason *why);

/* A module zip spooled to a file, read with libzip without loading it whole:
 * size <= VALIDATE_ZIP_MAX, every entry named "<module>@<version>/..." (the
 * decoded path and version), clean file paths (x/mod CheckFilePath), no two
 * names equal under case folding, go.mod only at the root, declared
 * uncompressed sizes within limits, only Store and Deflate. Failure:
 * ERR_BAD_UPSTREAM_DATA or ERR_TOO_LARGE with a one-line reason naming the
 * first offending entry. */
int validate_zip(const char *zip_path, const char *module, const char *version,
                 struct reason *why);

#endif
