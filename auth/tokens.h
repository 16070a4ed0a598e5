/* API tokens for CI: the auth_tokens file holds lines
 * `<name> <sha256-hex of the token> [<group,group>]`, never the tokens
 * themselves. A presented token is hashed and compared with every entry in
 * constant time. New tokens are 32 random bytes from the OS behind a fixed
 * prefix, so secret scanners can recognise a leaked one. */
#ifndef GOMIRROR_AUTH_TOKENS_H
#define GOMIRROR_AUTH_TOKENS_H

#include <stddef.h>

struct reason;
struct tokens;

#define TOKEN_PREFIX "gomirror_"
/* The prefix and 43 characters of unpadded base64url (32 bytes). */
#define TOKEN_LEN (sizeof TOKEN_PREFIX - 1 + 43)

struct token_entry {
  char name[128];
  unsigned char digest[32]; /* SHA-256 of the token */
  char groups[1024];        /* comma-separated, may be "" */
};

/* Parses the file's text (name for messages). 0 with *out (free with
 * tokens_free), or ERR_CONFIG with "FILE:LINE: ..." (never a digest). */
int tokens_parse(const char *text, size_t len, const char *name,
                 struct tokens **out, struct reason *why);
void tokens_free(struct tokens *t); /* NULL-safe */
size_t tokens_count(const struct tokens *t);

/* The entry whose digest is SHA-256(secret[0..len)), or NULL. Every entry
 * is compared, with CRYPTO_memcmp, whatever matches first. */
const struct token_entry *tokens_find(const struct tokens *t,
                                      const char *secret, size_t len);

/* Lower-case hex SHA-256 of secret: what a tokens line holds. */
void tokens_hash_hex(const char *secret, size_t len, char hex[65]);

/* A new token, TOKEN_LEN characters and a NUL, into out (cap >= TOKEN_LEN +
 * 1). 0, or ERR_IO when the OS has no randomness to give. */
int tokens_generate(char *out, size_t cap);

#endif
