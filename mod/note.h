/* Signed notes, as golang.org/x/mod/sumdb/note writes and reads them: the
 * checksum database signs its tree heads this way, and gomirror's own
 * organisation database signs its heads with the same format, so the go
 * command verifies both with one verifier key in GOSUMDB.
 *
 * A verifier key is "<name>+<hash>+<base64(0x01 || 32-byte Ed25519 public
 * key)>", a signer key "PRIVATE+KEY+<name>+<hash>+<base64(0x01 || 32-byte
 * seed)>"; hash is the first four bytes of SHA-256(name "\n" key), in hex.
 * A note is UTF-8 text ending in '\n', a blank line, and signature lines
 * "\u2014 <name> <base64(4-byte key hash || 64-byte signature)>\n".
 * Ed25519 and SHA-256 come from OpenSSL; no I/O. */
#ifndef GOMIRROR_MOD_NOTE_H
#define GOMIRROR_MOD_NOTE_H

#include <stddef.h>
#include <stdint.h>

struct buf;
struct reason;

#define NOTE_NAME_MAX 255
#define NOTE_KEY_MAX 512 /* room for either key's text form */

struct note_verifier {
  char name[NOTE_NAME_MAX + 1];
  uint32_t hash;
  unsigned char key[32];
};

struct note_signer {
  char name[NOTE_NAME_MAX + 1];
  uint32_t hash;
  unsigned char seed[32];
  unsigned char pub[32];
};

/* Parse a verifier or signer key (the x/mod rules: a valid name, eight hex
 * digits that match the key, algorithm 1 = Ed25519, 32 bytes). 0, or
 * ERR_INVALID with why. */
int note_verifier_parse(const char *vkey, struct note_verifier *out,
                        struct reason *why);
int note_signer_parse(const char *skey, struct note_signer *out,
                      struct reason *why);

/* A new key pair for name: both text forms, NUL-terminated. 0 or ERR_*. */
int note_keygen(const char *name, char skey[NOTE_KEY_MAX],
                char vkey[NOTE_KEY_MAX], struct reason *why);
/* The verifier key of a signer, in text form. */
void note_signer_vkey(const struct note_signer *s, char vkey[NOTE_KEY_MAX]);

/* Checks that msg is a well-formed note carrying a valid signature by v
 * (signatures by other keys are allowed and ignored, as x/mod's Open does
 * with unknown keys). 0 with *text_len = the length of the signed text
 * (ending in '\n'); ERR_BAD_UPSTREAM_DATA with why: malformed, not signed by
 * v, or a signature by v that does not verify. */
int note_open(const char *msg, size_t len, const struct note_verifier *v,
              size_t *text_len, struct reason *why);

/* Appends text (which must end in '\n'), a blank line and s's signature
 * line to out. 0 or ERR_*. */
int note_sign(const char *text, size_t len, const struct note_signer *s,
              struct buf *out, struct reason *why);

#endif
