/* The upstream chain in GOPROXY syntax, fetched with libcurl. Entries are
 * tried in order: after ',' only a 404/410 moves on to the next entry; after
 * '|' any failure does (PROTOCOL.md A.3, D).
 *
 * Upstreams and checksum databases are peers that may be hostile or
 * compromised, so where an answer may lead is limited (issue 10):
 * - Redirects are followed by hand, at most UPSTREAM_MAX_REDIRECTS, never
 *   from https to http, and only to the entry's own host (the same name
 *   and port; an http entry on port 80 may move to https on 443) or to a
 *   host named in upstream_redirect_hosts. A name there covers exactly that
 *   host, on any port; "*.example.com" covers every name below example.com
 *   (not example.com itself). Names are compared without case and without
 *   a trailing dot; an IPv6 literal is written in brackets.
 * - Every connection is checked against the address actually connected to
 *   (new connections before connect(), reused ones before the request):
 *   loopback, private, link-local, shared (100.64/10), unspecified,
 *   multicast and reserved addresses, IPv4 and IPv6, IPv4-mapped, NAT64 and
 *   6to4 forms included, are refused for every host but the entry's own,
 *   which the operator chose and may well be internal. A listed redirect
 *   host must therefore be on a public address, whatever its name says.
 * - With an HTTP proxy in the environment (http_proxy, https_proxy) curl
 *   connects to the proxy, so the address check sees the proxy's address. */
#ifndef GOMIRROR_SERVER_UPSTREAM_H
#define GOMIRROR_SERVER_UPSTREAM_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdatomic.h>

struct reason;
struct metrics_peer;

enum up_kind { UP_PROXY, UP_DIRECT, UP_OFF };

/* A circuit breaker per entry (issue 15): after `failures` consecutive
 * connection failures, timeouts or 503s the entry is skipped for a
 * cool-down, then one request at a time probes it; a failed probe doubles
 * the cool-down (up to 8 times the first), an answer closes the circuit. */
struct up_circuit {
  atomic_int failures;          /* in a row */
  atomic_llong open_until_ms;   /* monotonic; 0: closed */
  atomic_int level;             /* cool-down is cooldown << level */
  atomic_int probing;           /* a probe is in flight */
};

struct up_entry {
  enum up_kind kind;
  char *base;       /* UP_PROXY: URL without trailing '/'; else NULL */
  char *shown;      /* base with any user:password@ removed, for messages */
  int on_any_error; /* the separator after this entry is '|' */
  struct metrics_peer *health; /* UP_PROXY: its outcomes (owned); else NULL */
  struct up_circuit *circuit;  /* UP_PROXY: owned; else NULL */
};

struct upstream {
  struct up_entry *v;
  size_t n;
  char *redirect_hosts; /* upstream_redirect_hosts: "" none */
  long connect_timeout; /* seconds */
  long fetch_timeout;   /* seconds */
  long circuit_failures; /* 0: no circuit breaker */
  long circuit_cooldown; /* seconds */
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

/* Sets the circuit breaker of every entry (upstream_parse's default: 3
 * failures, 10 s; failures 0 turns it off). */
void upstream_set_circuit(struct upstream *u, long failures, long cooldown);

/* 1 while e's circuit is open (its cool-down runs or a probe is due). */
int upstream_circuit_is_open(const struct up_entry *e);

/* The breaker's two steps, now in monotonic milliseconds (upstream_get
 * passes clock_now_s(); unit tests a made-up clock). admit: 1 when e may be
 * tried at now, with *probe = 1 when this try is the one probe of an open
 * circuit whose cool-down is over (a probe must be followed by a note).
 * note: the try's outcome (failed: no answer, a timeout or a 503) opens,
 * re-opens with a doubled cool-down, or closes e's circuit. */
int upstream_circuit_admit(const struct up_entry *e, long long now,
                           int *probe);
void upstream_circuit_note(const struct upstream *u, const struct up_entry *e,
                           int failed, int probe, long long now);

/* The request header that carries the chain of gomirrors a request has
 * passed through (issue 15: loop detection between regions). */
#define UPSTREAM_VIA_HEADER "Gomirror-Via"
/* Hops a request may take between gomirrors before 508. */
#define UPSTREAM_VIA_MAX_HOPS 8
#define UPSTREAM_VIA_MAX 600

/* Writes "Gomirror-Via: <incoming>, <self>" into line (the caller's
 * storage, UPSTREAM_VIA_MAX bytes, which must outlive the handle's
 * requests: a worker keeps it beside its handle) and makes every later
 * upstream and checksum-database request on handle h (NULL: none yet; set
 * CURLOPT_PRIVATE to line when it is made) carry it. incoming may be NULL. */
void upstream_via_set(CURL *h, char *line, const char *incoming,
                      const char *self);

/* 1 when the comma-separated via list names self or holds at least
 * UPSTREAM_VIA_MAX_HOPS ids: the request must be refused with 508. */
int upstream_via_loops(const char *via, const char *self);

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
 * databases), following redirects as described above with url's host as
 * the entry's own and redirect_hosts as the listed ones (NULL: none), all
 * hops within fetch_timeout together. *status gets the last HTTP status (0
 * if none). Same returns as upstream_get, with 404 -> ERR_NOT_FOUND and
 * 410 -> ERR_GONE; a refused redirect or address is ERR_UPSTREAM with a
 * reason saying what was refused. The outcome (timeout, refused, a 5xx,
 * ...) is noted in peer (metrics.h; NULL: nowhere); upstream_get notes
 * each entry's in its own record. */
int upstream_get_url(CURL *h, const char *url, const char *shown,
                     const char *redirect_hosts, long connect_timeout,
                     long fetch_timeout, const struct up_sink *sink,
                     struct metrics_peer *peer, long *status,
                     struct reason *why);

#define UPSTREAM_MAX_REDIRECTS 10

/* Whether a redirect from URL `from` to URL `to` may be followed for the
 * entry whose URL is origin (see above). 0 with *own = 1 when `to` is the
 * entry's own host, 0 with *own = 0 when it is listed in redirect_hosts;
 * else ERR_UPSTREAM with a one-line reason. */
int upstream_redirect_check(const char *origin, const char *from,
                            const char *to, const char *redirect_hosts,
                            int *own, struct reason *why);

struct sockaddr;
/* NULL when any host may be reached at sa; else what kind of address it is
 * ("loopback", "private", "link-local", ...), a static string. */
const char *upstream_addr_kind(const struct sockaddr *sa);

/* 1 when the chain has a `direct` entry. */
int upstream_has_direct(const struct upstream *u);

/* Copies url into out with any "user:password@" removed. */
void upstream_redact(const char *url, char *out, size_t cap);

#endif
