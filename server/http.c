/* Response helpers over CivetWeb's mg_write. */
#include "http.h"

#include "auth/ratelimit.h"
#include "core/buf.h"
#include "core/err.h"
#include "server.h"
#include "storage/storage.h"

#include <civetweb.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *status_text(int status) {
  switch (status) {
  case 200:
    return "OK";
  case 206:
    return "Partial Content";
  case 302:
    return "Found";
  case 304:
    return "Not Modified";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 410:
    return "Gone";
  case 416:
    return "Range Not Satisfiable";
  case 429:
    return "Too Many Requests";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  default:
    return "Status";
  }
}

static int put(struct buf *b, const char *s) {
  return buf_append(b, s, strlen(s));
}

/* Decimal digits of v, without printf: this runs on every response. */
static int put_u64(struct buf *b, uint64_t v) {
  char d[24];
  size_t i = sizeof d;
  do {
    d[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  return buf_append(b, d + i, sizeof d - i);
}

static int head_into(struct buf *b, const struct req *r, int status,
                     const char *ctype, const char *cache_control,
                     const char *extra, uint64_t len) {
  int rc = put(b, "HTTP/1.1 ");
  rc = rc ? rc : put_u64(b, (uint64_t)status);
  rc = rc ? rc : put(b, " ");
  rc = rc ? rc : put(b, status_text(status));
  rc = rc ? rc : put(b, "\r\nContent-Type: ");
  rc = rc ? rc : put(b, ctype);
  rc = rc ? rc : put(b, "\r\nContent-Length: ");
  rc = rc ? rc : put_u64(b, len);
  rc = rc ? rc : put(b, "\r\nCache-Control: ");
  rc = rc ? rc : put(b, cache_control);
  if (r->request_id[0]) {
    rc = rc ? rc : put(b, "\r\nX-Request-Id: ");
    rc = rc ? rc : put(b, r->request_id);
  }
  rc = rc ? rc : put(b, "\r\n");
  rc = rc ? rc : put(b, extra ? extra : "");
  return rc ? rc : put(b, "\r\n");
}

/* The worker's scratch buffer, emptied; large ones are let go so a big
 * response does not pin memory in every thread. */
static struct buf *scratch(struct req *r, struct buf *local) {
  if (!r->w) {
    buf_init(local, (size_t)1 << 30);
    return local;
  }
  if (r->w->scratch.cap > (1u << 20))
    buf_free(&r->w->scratch);
  buf_reset(&r->w->scratch);
  return &r->w->scratch;
}

static void scratch_done(struct buf *b, struct buf *local) {
  if (b == local)
    buf_free(local);
}

int http_send(struct req *r, int status, const char *ctype,
              const char *cache_control, const char *extra_headers,
              const void *body, size_t len) {
  struct buf local;
  struct buf *b = scratch(r, &local);
  int rc = head_into(b, r, status, ctype, cache_control, extra_headers, len);
  if (!rc && !r->head && len)
    rc = buf_append(b, body, len);
  r->status = status;
  /* Headers and body leave in one write (one segment with TCP_NODELAY). */
  if (!rc && mg_write(r->conn, b->data, b->len) > 0 && !r->head)
    r->bytes += (long long)len;
  scratch_done(b, &local);
  return status;
}

int http_error(struct req *r, int status, const char *text) {
  char line[REASON_MAX + 2];
  int n = snprintf(line, sizeof line, "%s\n", text);
  if (n < 0)
    n = 0;
  if ((size_t)n >= sizeof line)
    n = sizeof line - 1;
  /* Errors may change (an upstream recovers), so they are never cached by
   * intermediaries for long. */
  return http_send(r, status, CT_TEXT, CACHE_NONE, NULL, line, (size_t)n);
}

int http_fail(struct req *r, int code, const struct reason *why) {
  return http_error(r, err_http_status(code), reason_text(why, code));
}

const char *http_header(struct req *r, const char *name) {
  return mg_get_header(r->conn, name);
}

int http_parse_range(const char *h, uint64_t size, struct range *out) {
  if (!h || strncmp(h, "bytes=", 6) != 0)
    return 0;
  h += 6;
  if (strchr(h, ','))
    return 0; /* multiple ranges: answer with the whole body */
  char *end;
  if (*h == '-') {
    unsigned long long n = strtoull(h + 1, &end, 10);
    if (end == h + 1 || *end)
      return 0;
    if (n == 0 || size == 0)
      return -1;
    if (n > size)
      n = size;
    out->start = size - n;
    out->len = n;
    return 1;
  }
  if (*h < '0' || *h > '9')
    return 0;
  unsigned long long a = strtoull(h, &end, 10);
  if (*end != '-')
    return 0;
  const char *b = end + 1;
  unsigned long long z = size ? size - 1 : 0;
  if (*b) {
    if (*b < '0' || *b > '9')
      return 0;
    z = strtoull(b, &end, 10);
    if (*end || z < a)
      return 0;
    if (z >= size)
      z = size - 1;
  }
  if (a >= size)
    return -1;
  out->start = a;
  out->len = z - a + 1;
  return 1;
}

int http_begin(struct req *r, int status, const char *ctype,
               const char *cache_control, const char *extra_headers,
               uint64_t content_length) {
  struct buf local;
  struct buf *b = scratch(r, &local);
  int rc = head_into(b, r, status, ctype, cache_control, extra_headers,
                     content_length);
  r->status = status;
  if (!rc && mg_write(r->conn, b->data, b->len) <= 0)
    rc = ERR_IO;
  scratch_done(b, &local);
  return rc;
}

/* What one write may send while a bandwidth cap applies: small enough that
 * the group's other downloads interleave. */
#define CAPPED_CHUNK (64u << 10)

int http_write(struct req *r, const void *data, size_t len) {
  const char *p = data;
  while (len) {
    size_t n = r->bw && len > CAPPED_CHUNK ? CAPPED_CHUNK : len;
    if (r->bw)
      bwbucket_take(r->bw, n);
    if (mg_write(r->conn, p, n) <= 0)
      return ERR_IO;
    r->bytes += (long long)n;
    p += n;
    len -= n;
  }
  return 0;
}
