/* The upstream chain in GOPROXY syntax, fetched with libcurl. Entries are
 * tried in order: after ',' only a 404/410 moves on to the next entry; after
 * '|' any failure does (PROTOCOL.md A.3, D). */
#ifndef GOMIRROR_SERVER_UPSTREAM_H
#define GOMIRROR_SERVER_UPSTREAM_H

#include <curl/curl.h>
#include <stddef.h>

struct reason;

enum up_kind { UP_PROXY, UP_DIRECT, UP_OFF };

struct up_entry {
  enum up_kind kind;
  char *base;       /* UP_PROXY: URL without trailing '/'; else NULL */
  char *shown;      /* base with any user:password@ removed, for messages */
  int on_any_error; /* the separator after this entry is '|' */
};

struct upstream {
  struct up_entry *v;
  size_t n;
  char *redirect_hosts; /* upstream_redirect_hosts: "" none */
  long connect_timeout; /* seconds */
  long fetch_timeout;   /* seconds */
};

/* Where a successful body goes. reset is called before each attempt so a
 * failed attempt's bytes never mix with the next one's. write returns 0 or a
 * negative ERR_* (e.g. ERR_TOO_LARGE), which aborts the transfer. */
struct up_sink {
  int (*write)(void *arg, const void *data, size_t len);
  int (*reset)(void *arg);
  void *arg;
};

/* Parses spec ("https://a,https://b|direct", "off"); redirect_hosts is the
 * comma-separated list of hosts an upstream may redirect to besides its own
 * (NULL or "" for none). *out is freed with upstream_free. ERR_CONFIG with a
 * reason on bad syntax. */
int upstream_parse(const char *spec, const char *redirect_hosts,
                   long connect_timeout, long fetch_timeout,
                   struct upstream **out, struct reason *why);
void upstream_free(struct upstream *u); /* NULL-safe */

/* Returned (positive) by upstream_get when the chain reaches `direct`: the
 * caller fetches from version control instead. */
#define UPSTREAM_DIRECT 1

/* GETs "<entry base>/<rel>" down the chain into sink. rel is already
 * escaped. Returns 0 on a 200, UPSTREAM_DIRECT when the chain reaches
 * `direct`, ERR_NOT_FOUND/ERR_GONE when it ends on "does not exist",
 * ERR_UPSTREAM (502), ERR_UPSTREAM_TIMEOUT (504), or the sink's error. why
 * gets one line. */
int upstream_get(const struct upstream *u, CURL *h, const char *rel,
                 const struct up_sink *sink, long *attempts,
                 struct reason *why);

/* One GET of an absolute URL (used for the chain and for checksum
 * databases): *status gets the HTTP status (0 if none). Same returns as
 * upstream_get, with 404 -> ERR_NOT_FOUND and 410 -> ERR_GONE. */
int upstream_get_url(CURL *h, const char *url, const char *shown,
                     long connect_timeout, long fetch_timeout,
                     const struct up_sink *sink, long *status,
                     struct reason *why);

/* 1 when the chain has a `direct` entry. */
int upstream_has_direct(const struct upstream *u);

/* Copies url into out with any "user:password@" removed. */
void upstream_redact(const char *url, char *out, size_t cap);

#endif
