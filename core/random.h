/* Random bytes from the kernel (getrandom(2)), for tokens, request ids and
 * keys. */
#ifndef GOMIRROR_CORE_RANDOM_H
#define GOMIRROR_CORE_RANDOM_H

#include <stddef.h>

/* Fills buf with n random bytes. 0, or ERR_IO when the kernel gives none. */
int random_fill(void *buf, size_t n);
/* Writes 2*n lower-case hex digits of n random bytes and a NUL into out
 * (at least 2*n+1 bytes). 0 or ERR_IO. */
int random_hex(char *out, size_t n);

#endif
