/* A growable byte buffer with a hard cap, for anything whose size comes from
 * the network, storage or Redis (after curl's dynbuf). The contents are always
 * NUL-terminated so text can be used as a C string. */
#ifndef GOMIRROR_CORE_BUF_H
#define GOMIRROR_CORE_BUF_H

#include <stddef.h>

struct buf {
  char *data; /* NULL until the first append; owned by the buf */
  size_t len;
  size_t cap;
  size_t max; /* appends past this many bytes fail */
};

/* Starts empty; allocates nothing. */
void buf_init(struct buf *b, size_t max);
/* Appends n bytes. On failure (ERR_TOO_LARGE past max, ERR_NOMEM) the buffer
 * is freed and reset to empty, so a caller cannot use half a body. */
int buf_append(struct buf *b, const void *p, size_t n);
/* printf-style append with the same failure rule. */
int buf_appendf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Empties without freeing. */
void buf_reset(struct buf *b);
/* Frees the data; b is left empty with its cap unchanged. NULL-safe. */
void buf_free(struct buf *b);
/* The contents as a C string ("" when empty); owned by b. */
const char *buf_cstr(const struct buf *b);
/* Hands the data to the caller (free() it) and leaves b empty. */
char *buf_steal(struct buf *b, size_t *len);

/* Makes room for element n of an array of elem-byte elements at v with *cap
 * allocated: doubles the allocation (from 8) when n == *cap. Returns the
 * array (moved or not), or NULL when out of memory, leaving v allocated and
 * *cap unchanged. */
void *array_grow(void *v, size_t *cap, size_t n, size_t elem);

#endif
