/* Writing responses: every response goes through these so the status and
 * byte counts reach the access log, and small bodies leave in one write. */
#ifndef GOMIRROR_SERVER_HTTP_H
#define GOMIRROR_SERVER_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct req;
struct blob_stat;
struct range;
struct reason;

#define CACHE_IMMUTABLE "public, max-age=31536000, immutable"
#define CACHE_SHORT "public, max-age=60"
#define CACHE_NONE "no-store"

#define CT_TEXT "text/plain; charset=utf-8"
#define CT_JSON "application/json"
#define CT_ZIP "application/zip"

/* Sends a complete small response: headers and body in one write (no body
 * for HEAD). extra_headers is NULL or "Name: value\r\n" lines. Returns
 * status. */
int http_send(struct req *r, int status, const char *ctype,
              const char *cache_control, const char *extra_headers,
              const void *body, size_t len);
/* A one-line text/plain error: the text plus "\n". */
int http_error(struct req *r, int status, const char *text);
/* Error for an ERR_* code with its reason (reason may be NULL). */
int http_fail(struct req *r, int code, const struct reason *why);

/* Parses a Range header (NULL: none) against size. 0: serve the whole body
 * (no Range, another unit, several ranges, an empty blob); 1: *out is one
 * satisfiable range, inside the blob and never empty; -1: answer 416
 * (malformed, or no range overlaps the blob). *out is written only on 1. */
int http_parse_range(const char *header, uint64_t size, struct range *out);

/* 1 when an If-None-Match value (NULL: absent) matches a representation
 * whose strong validator is etag: "*", or etag in its list of entity tags
 * under the weak comparison. 0 otherwise. */
int http_none_match(const char *list, const char *etag);

/* Case-insensitive header lookup; NULL if absent. */
const char *http_header(struct req *r, const char *name);

/* Starts a streamed response: writes the status line and headers with the
 * given Content-Length. Then http_write for the body. */
int http_begin(struct req *r, int status, const char *ctype,
               const char *cache_control, const char *extra_headers,
               uint64_t content_length);
/* Writes body bytes; 0 or ERR_IO when the client went away. */
int http_write(struct req *r, const void *data, size_t len);

#endif
