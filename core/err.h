/* Error codes shared by every module, and the one place that maps them to
 * HTTP statuses. Functions return 0 on success or a negative ERR_* value;
 * a `struct reason` carries the one-line text a client or log will see. */
#ifndef GOMIRROR_CORE_ERR_H
#define GOMIRROR_CORE_ERR_H

#include <stddef.h>

/* X(name, http status, default one-line message) */
#define ERR_MAP(X)                                                             \
  X(NOMEM, 500, "out of memory")                                               \
  X(INVALID, 400, "malformed request")                                         \
  X(NOT_FOUND, 404, "not found")                                               \
  X(GONE, 410, "gone")                                                         \
  X(FORBIDDEN, 403, "forbidden")                                               \
  X(UPSTREAM, 502, "upstream error")                                           \
  X(UPSTREAM_TIMEOUT, 504, "upstream timed out")                               \
  X(BAD_UPSTREAM_DATA, 502, "upstream sent invalid data")                      \
  X(TOO_LARGE, 502, "too large")                                               \
  X(IO, 500, "input/output error")                                             \
  X(STORAGE, 503, "storage unavailable")                                       \
  X(UNAVAILABLE, 503, "service unavailable")                                   \
  X(UNSUPPORTED, 501, "not supported")                                         \
  X(CONFIG, 500, "configuration error")                                        \
  X(EXISTS, 409, "already exists")                                             \
  X(UNAUTHORIZED, 401, "authentication required")                              \
  X(RATE_LIMITED, 429, "too many requests")                                    \
  X(LOOP, 508, "loop detected")

enum err_index {
#define ERR_IDX(name, status, msg) ERR_I_##name,
  ERR_MAP(ERR_IDX)
#undef ERR_IDX
      ERR__COUNT
};

enum err_code {
  ERR_OK = 0,
#define ERR_ENUM(name, status, msg) ERR_##name = -(ERR_I_##name + 1),
  ERR_MAP(ERR_ENUM)
#undef ERR_ENUM
};

/* Static text for a code; never NULL, never to be freed. */
const char *err_str(int code);
/* The HTTP status a code maps to (200 for 0, 500 for unknown codes). */
int err_http_status(int code);

#define REASON_MAX 240

/* The one-line, client-safe explanation of a failure. Empty means "use
 * err_str()". Never holds secrets: callers format only public facts. */
struct reason {
  char text[REASON_MAX];
};

/* Formats into r (truncating, newlines replaced by spaces) and returns code,
 * so `return reason_set(r, ERR_X, "...")` reads as one statement. r may be
 * NULL. */
int reason_set(struct reason *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* r's text, or err_str(code) when r is NULL or empty. */
const char *reason_text(const struct reason *r, int code);

#endif
