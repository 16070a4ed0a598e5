/* Capped growable buffer; see buf.h. */
#include "buf.h"

#include "err.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t max) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->max = max;
}

void buf_free(struct buf *b) {
  if (!b)
    return;
  free(b->data);
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}

void buf_reset(struct buf *b) {
  b->len = 0;
  if (b->data)
    b->data[0] = '\0';
}

static int grow(struct buf *b, size_t need) {
  if (need > b->max) {
    buf_free(b);
    return ERR_TOO_LARGE;
  }
  if (need + 1 <= b->cap)
    return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need + 1)
    cap = cap > (size_t)-1 / 2 ? need + 1 : cap * 2;
  char *p = realloc(b->data, cap);
  if (!p) {
    buf_free(b);
    return ERR_NOMEM;
  }
  b->data = p;
  b->cap = cap;
  return 0;
}

int buf_append(struct buf *b, const void *p, size_t n) {
  if (n > b->max - b->len || b->len > b->max) {
    buf_free(b);
    return ERR_TOO_LARGE;
  }
  int rc = grow(b, b->len + n);
  if (rc)
    return rc;
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int buf_appendf(struct buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    return ERR_INVALID;
  if ((size_t)n > b->max - b->len || b->len > b->max) {
    buf_free(b);
    return ERR_TOO_LARGE;
  }
  int rc = grow(b, b->len + (size_t)n);
  if (rc)
    return rc;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

const char *buf_cstr(const struct buf *b) {
  return b->data ? b->data : "";
}

char *buf_steal(struct buf *b, size_t *len) {
  char *p = b->data;
  if (len)
    *len = b->len;
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  return p;
}

void *array_grow(void *v, size_t *cap, size_t n, size_t elem) {
  if (n < *cap)
    return v;
  size_t ncap = *cap ? *cap * 2 : 8;
  if (ncap < *cap || ncap > SIZE_MAX / elem)
    return NULL;
  void *nv = realloc(v, ncap * elem);
  if (nv)
    *cap = ncap;
  return nv;
}
