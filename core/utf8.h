/* UTF-8 as Go's unicode/utf8 reads and writes it: no overlong forms, no
 * surrogates, nothing above U+10FFFF. Shared by the log's escaping, the
 * go.mod lexer and the signed-note parser. */
#ifndef GOMIRROR_CORE_UTF8_H
#define GOMIRROR_CORE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes one rune from s[0..n): its length, or 0 if invalid (n == 0
 * included); *r is set only on success. */
size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *r);
/* Encodes r (a valid rune) into out (room for 4 bytes); returns the
 * length. */
size_t utf8_encode(uint32_t r, char *out);

#endif
