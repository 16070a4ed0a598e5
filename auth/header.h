/* The Authorization request header: Basic (RFC 7617, what the go command
 * sends from .netrc) and Bearer (RFC 6750, for CI tools and curl). Pure: no
 * I/O, no allocation; fuzzed. */
#ifndef GOMIRROR_AUTH_HEADER_H
#define GOMIRROR_AUTH_HEADER_H

#include <stddef.h>

struct reason;

enum auth_scheme {
  AUTH_SCHEME_NONE = 0, /* no header */
  AUTH_SCHEME_BASIC,
  AUTH_SCHEME_BEARER
};

#define AUTH_USER_MAX 256   /* Basic user-id, with its NUL */
#define AUTH_SECRET_MAX 512 /* password or token, with its NUL */

struct auth_credential {
  enum auth_scheme scheme;
  char user[AUTH_USER_MAX];     /* Basic only; "" for Bearer */
  char secret[AUTH_SECRET_MAX]; /* the password or the bearer token */
  size_t secret_len;
};

/* Parses an Authorization header value (NULL: scheme NONE). 0, or
 * ERR_INVALID with a reason that never quotes the value (it may hold a
 * secret): unknown scheme, bad base64, no ':' in Basic, NUL or control
 * bytes, or a user or secret too long. *out is wiped on failure. */
int auth_parse_header(const char *header, struct auth_credential *out,
                      struct reason *why);

/* Overwrites the secret so it does not linger on a stack. */
void auth_credential_wipe(struct auth_credential *c);

#endif
