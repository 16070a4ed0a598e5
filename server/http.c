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
  case 508:
    return "Loop Detected";
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
  /* Shutting down: the client's next request goes to another replica. */
  if (r->srv && atomic_load(&r->srv->closing))
    rc = rc ? rc : put(b, "Connection: close\r\n");
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
  metrics_error(r, status, text); /* 5xx lines for the status page */
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
  if (code == ERR_BAD_UPSTREAM_DATA && r->srv)
    atomic_fetch_add(&r->srv->metrics.upstream_invalid, 1);
  return http_error(r, err_http_status(code), reason_text(why, code));
}

const char *http_header(struct req *r, const char *name) {
  return mg_get_header(r->conn, name);
}

/* Optional whitespace around list elements and around the '-' of a range
 * (RFC 9110 5.6.3), as Go's net/http trims it. */
static int ows(char c) {
  return c == ' ' || c == '\t';
}

static void trim(const char **p, const char **e) {
  while (*p < *e && ows(**p))
    (*p)++;
  while (*e > *p && ows((*e)[-1]))
    (*e)--;
}

/* Digits only (no sign, no space): 0 and *out, or -1. A number too large
 * for 64 bits saturates: as a first position it lies past any blob, as a
 * last position or a suffix length it means "to the end". */
static int digits(const char *p, const char *e, uint64_t *out) {
  if (p == e)
    return -1;
  uint64_t v = 0;
  for (; p < e; p++) {
    if (*p < '0' || *p > '9')
      return -1;
    unsigned d = (unsigned)(*p - '0');
    v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
  }
  *out = v;
  return 0;
}

/* One byte-range-spec [p, e) against size. 1: *out is satisfiable; 0: it
 * does not overlap the blob; -1: malformed. */
static int range_spec(const char *p, const char *e, uint64_t size,
                      struct range *out) {
  const char *dash = memchr(p, '-', (size_t)(e - p));
  if (!dash)
    return -1;
  const char *a = p, *ae = dash, *b = dash + 1, *be = e;
  trim(&a, &ae);
  trim(&b, &be);
  uint64_t first, last;
  if (a == ae) {
    /* A suffix: the last n bytes. "bytes=--5" lands here and is refused. */
    if (digits(b, be, &last))
      return -1;
    if (last == 0 || size == 0)
      return 0;
    if (last > size)
      last = size;
    out->start = size - last;
    out->len = last;
    return 1;
  }
  if (digits(a, ae, &first))
    return -1;
  if (b == be) {
    last = UINT64_MAX;
  } else if (digits(b, be, &last) || last < first) {
    return -1;
  }
  if (first >= size)
    return 0;
  if (last >= size)
    last = size - 1;
  out->start = first;
  out->len = last - first + 1;
  return 1;
}

/* Follows what Go's http.ServeContent does (net/http/fs.go parseRange),
 * since Go clients are who resume downloads: a malformed range-spec
 * anywhere makes the whole header unsatisfiable (416), so does a set none
 * of whose ranges overlap the blob, except for an empty blob (200). Two
 * departures, both RFC 9110 14.2: another unit than "bytes" is ignored (Go
 * answers 416), and several satisfiable ranges get the whole body instead
 * of multipart/byteranges. */
int http_parse_range(const char *h, uint64_t size, struct range *out) {
  if (!h || strncmp(h, "bytes=", 6) != 0)
    return 0;
  const char *p = h + 6;
  int satisfiable = 0, disjoint = 0;
  struct range one = {0, 0};
  for (;;) {
    const char *e = strchr(p, ',');
    const char *end = e ? e : p + strlen(p);
    const char *s = p, *se = end;
    trim(&s, &se);
    if (s < se) {
      struct range r;
      int rc = range_spec(s, se, size, &r);
      if (rc < 0)
        return -1;
      if (rc == 0)
        disjoint = 1;
      else if (satisfiable++ == 0)
        one = r;
    }
    if (!e)
      break;
    p = e + 1;
  }
  if (satisfiable == 1) {
    *out = one;
    return 1;
  }
  if (satisfiable == 0 && disjoint && size > 0)
    return -1;
  return 0; /* no range, several ranges, or an empty blob: the whole body */
}

/* Entity tags compared weakly (RFC 9110 8.8.3.2): "W/" does not count. */
static int etag_weak_eq(const char *a, size_t al, const char *b, size_t bl) {
  if (al > 2 && !memcmp(a, "W/", 2))
    a += 2, al -= 2;
  if (bl > 2 && !memcmp(b, "W/", 2))
    b += 2, bl -= 2;
  return al == bl && al > 0 && !memcmp(a, b, al);
}

/* As Go's checkIfNoneMatch: "*" matches any representation; otherwise each
 * listed tag is compared weakly, and the first thing that is not an entity
 * tag ends the list (scanETag). */
int http_none_match(const char *list, const char *etag) {
  if (!list || !etag || !etag[0])
    return 0;
  size_t el = strlen(etag);
  const char *p = list;
  for (;;) {
    while (ows(*p) || *p == ',')
      p++;
    if (!*p)
      return 0;
    if (*p == '*')
      return 1;
    const char *t = p;
    if (!strncmp(p, "W/", 2))
      p += 2;
    if (*p != '"')
      return 0;
    const char *q = strchr(p + 1, '"');
    if (!q)
      return 0;
    if (etag_weak_eq(t, (size_t)(q + 1 - t), etag, el))
      return 1;
    p = q + 1;
  }
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
