/* RFC 3339 date-times as Go's time.Time writes them in JSON (the .info
 * file's Time): YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM), real calendar
 * days, no leap second (Go rejects second 60). Used by the .info check
 * (validate.c) and the version policy's cooldown (policy.c). */
#ifndef GOMIRROR_MOD_RFC3339_H
#define GOMIRROR_MOD_RFC3339_H

#include <stddef.h>
#include <time.h>

/* Accept a lower-case 't' and 'z' as well (time.Parse does; what the go
 * command writes is upper-case). */
#define RFC3339_ANY_CASE 1

/* Parses the n bytes at s; *out (may be NULL) gets the instant in seconds
 * since the epoch, the fraction dropped. 0, or ERR_INVALID. */
int rfc3339_parse(const char *s, size_t n, int flags, time_t *out);

#endif
