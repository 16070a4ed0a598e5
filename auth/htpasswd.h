/* Apache htpasswd files as `htpasswd` (apache2-utils) writes them, limited
 * to the hashes that are still safe: bcrypt ($2y$, $2b$) and SHA-crypt ($5$,
 * $6$), verified with libxcrypt's crypt_rn. MD5-apr1, DES crypt, {SHA},
 * MD5-crypt and plaintext entries are refused when the file is read. */
#ifndef GOMIRROR_AUTH_HTPASSWD_H
#define GOMIRROR_AUTH_HTPASSWD_H

#include <stddef.h>

struct reason;
struct htpasswd;

/* Parses the file's text; name is the file name for messages. 0 with *out
 * (free with htpasswd_free), or ERR_CONFIG with one line naming the file,
 * line and user ("FILE:3: user bob: MD5-apr1 ($apr1$) is refused; ..."). */
int htpasswd_parse(const char *text, size_t len, const char *name,
                   struct htpasswd **out, struct reason *why);
void htpasswd_free(struct htpasswd *h); /* NULL-safe */
size_t htpasswd_count(const struct htpasswd *h);

/* 1 when user is listed and password matches its hash; 0 when it does not
 * match; ERR_NOT_FOUND when user is not listed; ERR_NOMEM. Slow by design
 * (bcrypt): callers cache the outcome. */
int htpasswd_verify(const struct htpasswd *h, const char *user,
                    const char *password);
/* Spends the time one verification takes and returns 0, so that an unknown
 * user cannot be told from a wrong password by timing. */
int htpasswd_dummy(const struct htpasswd *h, const char *password);

/* The name of a hash's scheme ("bcrypt", "MD5-apr1", ...), for messages. */
const char *htpasswd_scheme_name(const char *hash);

#endif
