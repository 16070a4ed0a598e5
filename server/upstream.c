/* GOPROXY-syntax upstream chains over libcurl. Each worker thread owns one
 * easy handle and passes it in, so keep-alive connections are reused without
 * locking. */
#include "upstream.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "metrics.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

void upstream_redact(const char *url, char *out, size_t cap) {
  const char *scheme = strstr(url, "://");
  const char *host = scheme ? scheme + 3 : url;
  const char *at = strchr(host, '@');
  const char *slash = strchr(host, '/');
  if (at && (!slash || at < slash))
    snprintf(out, cap, "%.*s%s", (int)(host - url), url, at + 1);
  else
    snprintf(out, cap, "%s", url);
}

void upstream_free(struct upstream *u) {
  if (!u)
    return;
  for (size_t i = 0; i < u->n; i++) {
    free(u->v[i].base);
    free(u->v[i].shown);
    free(u->v[i].health);
    free(u->v[i].circuit);
  }
  free(u->v);
  free(u->redirect_hosts);
  free(u);
}

static int add_entry(struct upstream *u, const char *s, size_t len, int bar,
                     struct reason *why) {
  while (len && (*s == ' ' || *s == '\t'))
    s++, len--;
  while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
    len--;
  if (len == 0)
    return reason_set(why, ERR_CONFIG, "upstream: empty entry");
  struct up_entry *v = realloc(u->v, (u->n + 1) * sizeof *v);
  if (!v)
    return ERR_NOMEM;
  u->v = v;
  struct up_entry *e = &v[u->n];
  memset(e, 0, sizeof *e);
  e->on_any_error = bar;
  if (len == 3 && !memcmp(s, "off", 3)) {
    e->kind = UP_OFF;
  } else if (len == 6 && !memcmp(s, "direct", 6)) {
    e->kind = UP_DIRECT;
  } else {
    e->kind = UP_PROXY;
    int has_scheme = memmem(s, len, "://", 3) != NULL;
    if (has_scheme && strncmp(s, "http://", 7) && strncmp(s, "https://", 8) &&
        strncmp(s, "file://", 7))
      return reason_set(why, ERR_CONFIG,
                        "upstream: %.*s: only http, https and file URLs",
                        (int)(len > 80 ? 80 : len), s);
    while (len && s[len - 1] == '/')
      len--;
    struct buf b;
    buf_init(&b, 4096);
    int rc =
        buf_appendf(&b, "%s%.*s", has_scheme ? "" : "https://", (int)len, s);
    if (rc)
      return rc == ERR_TOO_LARGE
                 ? reason_set(why, ERR_CONFIG, "upstream: entry too long")
                 : rc;
    e->base = buf_steal(&b, NULL);
    e->shown = malloc(strlen(e->base) + 1);
    e->health = calloc(1, sizeof *e->health);
    e->circuit = calloc(1, sizeof *e->circuit);
    if (!e->shown || !e->health || !e->circuit) {
      free(e->base);
      free(e->shown);
      free(e->health);
      free(e->circuit);
      return ERR_NOMEM;
    }
    upstream_redact(e->base, e->shown, strlen(e->base) + 1);
  }
  u->n++;
  return 0;
}

int upstream_parse(const char *spec, const char *redirect_hosts,
                   long connect_timeout, long fetch_timeout,
                   struct upstream **out, struct reason *why) {
  *out = NULL;
  struct upstream *u = calloc(1, sizeof *u);
  if (!u)
    return ERR_NOMEM;
  u->redirect_hosts = strdup(redirect_hosts ? redirect_hosts : "");
  if (!u->redirect_hosts) {
    free(u);
    return ERR_NOMEM;
  }
  u->connect_timeout = connect_timeout;
  u->fetch_timeout = fetch_timeout;
  u->circuit_failures = 3;
  u->circuit_cooldown = 10;
  const char *p = spec;
  int rc = 0;
  for (;;) {
    size_t n = strcspn(p, ",|");
    int bar = p[n] == '|';
    rc = add_entry(u, p, n, bar, why);
    if (rc)
      break;
    if (!p[n])
      break;
    p += n + 1;
  }
  if (rc) {
    upstream_free(u);
    return rc;
  }
  *out = u;
  return 0;
}

/* ---- Hostile peers: where an upstream may lead us (issue 10) ---- */

/* One URL's scheme, host (lower case, IPv6 in brackets, no trailing dot)
 * and port (the scheme's default when absent). */
struct hostport {
  char scheme[8];
  char host[256];
  long port;
};

static int url_hostport(const char *url, struct hostport *out) {
  memset(out, 0, sizeof *out);
  CURLU *u = curl_url();
  if (!u)
    return ERR_NOMEM;
  char *scheme = NULL, *host = NULL, *port = NULL;
  int rc = ERR_INVALID;
  if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
      strlen(scheme) < sizeof out->scheme && strlen(host) < sizeof out->host) {
    size_t i = 0;
    for (; scheme[i]; i++)
      out->scheme[i] = (char)tolower((unsigned char)scheme[i]);
    out->scheme[i] = '\0';
    for (i = 0; host[i]; i++)
      out->host[i] = (char)tolower((unsigned char)host[i]);
    if (i > 1 && out->host[i - 1] == '.')
      i--;
    out->host[i] = '\0';
    char *end = NULL;
    out->port = strtol(port, &end, 10);
    if (end && !*end && out->port > 0 && out->port < 65536)
      rc = 0;
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return rc;
}

/* The same host as the entry: same name and port, or the entry's http
 * default port upgraded to https on its default port. */
static int same_host(const struct hostport *o, const struct hostport *t) {
  if (strcmp(o->host, t->host) != 0)
    return 0;
  if (o->port == t->port)
    return 1;
  return !strcmp(o->scheme, "http") && o->port == 80 &&
         !strcmp(t->scheme, "https") && t->port == 443;
}

/* host (already lower case) is named by the comma-separated list: an
 * exact name, or "*.suffix" for every name below suffix. */
static int listed(const char *hosts, const char *host) {
  size_t hl = strlen(host);
  for (const char *p = hosts; p && *p;) {
    size_t n = strcspn(p, ",");
    const char *e = p;
    size_t en = n;
    while (en && (*e == ' ' || *e == '\t'))
      e++, en--;
    while (en && (e[en - 1] == ' ' || e[en - 1] == '\t' || e[en - 1] == '.'))
      en--;
    if (en > 2 && e[0] == '*' && e[1] == '.') {
      /* "*.example.com": at least one label before ".example.com". */
      size_t sl = en - 1;
      if (hl > sl && !strncasecmp(host + hl - sl, e + 1, sl))
        return 1;
    } else if (en && en == hl && !strncasecmp(host, e, en)) {
      return 1;
    }
    p += n;
    if (*p == ',')
      p++;
  }
  return 0;
}

int upstream_redirect_check(const char *origin, const char *from,
                            const char *to, const char *redirect_hosts,
                            int *own, struct reason *why) {
  struct hostport o, f, t;
  *own = 0;
  if (url_hostport(origin, &o) || url_hostport(from, &f))
    return reason_set(why, ERR_UPSTREAM, "upstream URL %.80s is not valid",
                      origin);
  if (url_hostport(to, &t) ||
      (strcmp(t.scheme, "http") != 0 && strcmp(t.scheme, "https") != 0))
    return reason_set(why, ERR_UPSTREAM,
                      "redirect to a URL that is not http(s): refused");
  if (!strcmp(f.scheme, "https") && strcmp(t.scheme, "https") != 0)
    return reason_set(why, ERR_UPSTREAM,
                      "redirect from https to http://%s:%ld refused", t.host,
                      t.port);
  if (same_host(&o, &t)) {
    *own = 1;
    return 0;
  }
  if (listed(redirect_hosts, t.host))
    return 0;
  return reason_set(why, ERR_UPSTREAM,
                    "redirect to %s://%s:%ld refused: not the upstream's "
                    "host, nor in upstream_redirect_hosts",
                    t.scheme, t.host, t.port);
}

struct v4_range {
  uint32_t net;
  int bits;
  const char *kind;
};

/* IANA special-purpose IPv4 blocks that are not globally reachable, plus
 * multicast and the reserved 240/4. */
static const struct v4_range v4_blocked[] = {
    {0x00000000u, 8, "unspecified"},     {0x0a000000u, 8, "private"},
    {0x64400000u, 10, "shared (CGNAT)"}, {0x7f000000u, 8, "loopback"},
    {0xa9fe0000u, 16, "link-local"},     {0xac100000u, 12, "private"},
    {0xc0000000u, 24, "reserved"},       {0xc0000200u, 24, "reserved"},
    {0xc0a80000u, 16, "private"},        {0xc6120000u, 15, "reserved"},
    {0xc6336400u, 24, "reserved"},       {0xcb007100u, 24, "reserved"},
    {0xe0000000u, 4, "multicast"},       {0xf0000000u, 4, "reserved"},
};

static const char *v4_kind(const unsigned char b[4]) {
  uint32_t a =
      (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
  for (size_t i = 0; i < sizeof v4_blocked / sizeof *v4_blocked; i++) {
    uint32_t mask = 0xffffffffu << (32 - v4_blocked[i].bits);
    if ((a & mask) == v4_blocked[i].net)
      return v4_blocked[i].kind;
  }
  return NULL;
}

static const char *v6_kind(const unsigned char *b) {
  static const unsigned char zero[16];
  static const unsigned char mapped[12] = {0, 0, 0, 0, 0,    0,
                                           0, 0, 0, 0, 0xff, 0xff};
  static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b};
  if (!memcmp(b, zero, 15))
    return b[15] == 1 ? "loopback" : b[15] == 0 ? "unspecified" : "reserved";
  /* ::ffff:a.b.c.d and 64:ff9b::a.b.c.d reach the IPv4 address inside. */
  if (!memcmp(b, mapped, 12) || !memcmp(b, nat64, 12))
    return v4_kind(b + 12);
  if (b[0] == 0x20 && b[1] == 0x02) /* 6to4: 2002:AABB:CCDD::/48 */
    return v4_kind(b + 2);
  if (b[0] == 0 && b[1] == 0) /* the rest of ::/16 */
    return "reserved";
  if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b)
    return "private"; /* 64:ff9b:1::/48, local-use NAT64 */
  if ((b[0] & 0xfe) == 0xfc)
    return "unique-local";
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
    return "link-local";
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
    return "site-local";
  if (b[0] == 0xff)
    return "multicast";
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
    return "reserved"; /* 2001:db8::/32, documentation */
  if (b[0] == 0x01 && !b[1] && !b[2] && !b[3] && !b[4] && !b[5] && !b[6] &&
      !b[7])
    return "reserved"; /* 100::/64, discard */
  return NULL;
}

const char *upstream_addr_kind(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    return v4_kind((const unsigned char *)&in->sin_addr);
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    return v6_kind(in6->sin6_addr.s6_addr);
  }
  return "non-IP";
}

struct xfer {
  const struct up_sink *sink;
  CURL *h;
  int checked; /* status looked at */
  long status;
  int sink_rc;
  int own_host;                   /* this hop is the entry's own host */
  char refused[INET6_ADDRSTRLEN]; /* an address refused for this hop */
  const char *refused_kind;
  struct buf errbody; /* first bytes of a non-200 body, for the reason */
};

static size_t on_data(char *p, size_t size, size_t nmemb, void *arg) {
  struct xfer *x = arg;
  size_t n = size * nmemb;
  if (!x->checked) {
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);
    x->checked = 1;
  }
  if (x->status != 200 && x->status != 0) {
    if (x->errbody.len < 512)
      buf_append(&x->errbody, p, n < 512 ? n : 512);
    return n;
  }
  x->sink_rc = x->sink->write(x->sink->arg, p, n);
  return x->sink_rc ? 0 : n;
}

/* Notes why an address is refused for this hop; NULL when it is not. */
static const char *refuse_addr(struct xfer *x, const struct sockaddr *sa) {
  if (x->own_host)
    return NULL;
  const char *kind = upstream_addr_kind(sa);
  if (kind && !x->refused_kind) {
    x->refused_kind = kind;
    const void *a =
        sa->sa_family == AF_INET6
            ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
            : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
    if ((sa->sa_family != AF_INET && sa->sa_family != AF_INET6) ||
        !inet_ntop(sa->sa_family, a, x->refused, sizeof x->refused))
      snprintf(x->refused, sizeof x->refused, "?");
  }
  return kind;
}

/* Every new connection: refused before connect() when the address is not
 * one this hop may reach. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose,
                                 struct curl_sockaddr *a) {
  struct xfer *x = arg;
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  memcpy(&ss, &a->addr,
         a->addrlen < sizeof ss ? (size_t)a->addrlen : sizeof ss);
  if (purpose != CURLSOCKTYPE_IPCXN ||
      refuse_addr(x, (const struct sockaddr *)&ss))
    return CURL_SOCKET_BAD;
  return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* Every request, on a new or a reused connection: a connection kept alive
 * from an earlier transfer never went through open_socket for this hop. */
static int before_request(void *arg, char *ip, char *local_ip, int port,
                          int local_port) {
  (void)local_ip, (void)port, (void)local_port;
  struct xfer *x = arg;
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in *in = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, ip, &in->sin_addr) == 1)
    ss.ss_family = AF_INET;
  else if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1)
    ss.ss_family = AF_INET6;
  return refuse_addr(x, (const struct sockaddr *)&ss) ? CURL_PREREQFUNC_ABORT
                                                      : CURL_PREREQFUNC_OK;
}

/* The first line of an upstream error body, made safe to show. */
static void first_line(const struct buf *b, char *out, size_t cap) {
  size_t i = 0;
  for (const char *p = buf_cstr(b); *p && *p != '\n' && i + 1 < cap; p++)
    out[i++] =
        ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f) ? '?' : *p;
  out[i] = '\0';
  while (i && out[i - 1] == ' ')
    out[--i] = '\0';
}

/* Sets the options every hop shares; the URL and credentials are per hop.
 * The handle's private pointer (upstream_via_set) survives the reset; the
 * returned header list (NULL: none) is freed by the caller after the
 * transfer. */
static struct curl_slist *setup(CURL *h, struct xfer *x, int is_file,
                                long connect_timeout) {
  char *via = NULL;
  curl_easy_getinfo(h, CURLINFO_PRIVATE, &via);
  curl_easy_reset(h);
  curl_easy_setopt(h, CURLOPT_PRIVATE, via);
  struct curl_slist *hdrs = NULL;
  if (via && via[0] && !is_file) {
    hdrs = curl_slist_append(NULL, via);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  }
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, is_file ? "file" : "http,https");
  /* Redirects are followed by hand, one checked hop at a time. */
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, connect_timeout);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "gomirror/0.1");
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  if (!is_file) {
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, x);
    curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, before_request);
    curl_easy_setopt(h, CURLOPT_PREREQDATA, x);
  }
  return hdrs;
}

static int is_redirect(long code) {
  return code == 301 || code == 302 || code == 303 || code == 307 ||
         code == 308;
}

/* The entry's own user:password, decoded, for a redirect back to its own
 * host (curl sends URL credentials to the URL's host only). */
static void own_credentials(CURL *h, const char *origin) {
  CURLU *u = curl_url();
  char *user = NULL, *pass = NULL;
  if (u && curl_url_set(u, CURLUPART_URL, origin, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_USER, &user, CURLU_URLDECODE) == CURLUE_OK) {
    curl_url_get(u, CURLUPART_PASSWORD, &pass, CURLU_URLDECODE);
    curl_easy_setopt(h, CURLOPT_USERNAME, user);
    curl_easy_setopt(h, CURLOPT_PASSWORD, pass ? pass : "");
  }
  curl_free(user);
  curl_free(pass);
  curl_url_cleanup(u);
}

/* What a transport failure says about the peer. */
static enum metrics_outcome curl_outcome(CURLcode cc) {
  switch (cc) {
  case CURLE_OPERATION_TIMEDOUT:
    return OUTCOME_TIMEOUT;
  case CURLE_COULDNT_CONNECT:
    return OUTCOME_REFUSED;
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
    return OUTCOME_DNS;
  default:
    return OUTCOME_NETWORK;
  }
}

/* What an answer's status says about the peer. */
static enum metrics_outcome status_outcome(long code) {
  if (code == 200)
    return OUTCOME_OK;
  if (code == 404 || code == 410)
    return OUTCOME_NOT_FOUND;
  if (code >= 400 && code < 500)
    return OUTCOME_STATUS_4XX;
  if (code >= 500 && code < 600)
    return OUTCOME_STATUS_5XX;
  return OUTCOME_STATUS_OTHER;
}

static int get_url(CURL *h, const char *url, const char *shown,
                   const char *redirect_hosts, long connect_timeout,
                   long fetch_timeout, const struct up_sink *sink, long *status,
                   struct reason *why, enum metrics_outcome *oc) {
  *status = 0;
  *oc = OUTCOME_LOCAL;
  if (!h)
    return reason_set(why, ERR_NOMEM, "out of memory: no HTTP client");
  struct xfer x = {.sink = sink, .h = h, .own_host = 1};
  buf_init(&x.errbody, 1024);
  if (sink->reset) {
    int rc = sink->reset(sink->arg);
    if (rc)
      return rc;
  }
  int is_file = strncmp(url, "file://", 7) == 0;
  struct curl_slist *hdrs = setup(h, &x, is_file, connect_timeout);
  /* One deadline for the whole chain of redirects. */
  double deadline = clock_now_s() + (double)fetch_timeout;
  char *hop = strdup(url);
  if (!hop) {
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    return ERR_NOMEM;
  }
  CURLcode cc = CURLE_OK;
  long code = 0;
  int rc = 0;
  for (int hops = 0;; hops++) {
    double left = deadline - clock_now_s();
    if (left <= 0) {
      cc = CURLE_OPERATION_TIMEDOUT;
      break;
    }
    curl_easy_setopt(h, CURLOPT_URL, hop);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(left * 1000) + 1);
    x.checked = 0;
    x.status = 0;
    buf_reset(&x.errbody);
    cc = curl_easy_perform(h);
    code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    char *next = NULL;
    if (cc != CURLE_OK || is_file || !is_redirect(code) ||
        curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &next) != CURLE_OK || !next)
      break;
    if (hops == UPSTREAM_MAX_REDIRECTS) {
      *oc = OUTCOME_REDIRECT;
      rc = reason_set(why, ERR_UPSTREAM, "upstream %s: more than %d redirects",
                      shown, UPSTREAM_MAX_REDIRECTS);
      break;
    }
    int own = 0;
    struct reason rwhy = {{0}};
    if (upstream_redirect_check(url, hop, next, redirect_hosts, &own, &rwhy)) {
      *oc = OUTCOME_BLOCKED;
      rc = reason_set(why, ERR_UPSTREAM, "upstream %s: %s", shown, rwhy.text);
      break;
    }
    char *copy = strdup(next);
    if (!copy) {
      rc = ERR_NOMEM;
      break;
    }
    log_debug("upstream %s: redirect %d to %s host", shown, hops + 1,
              own ? "its own" : "a listed");
    free(hop);
    hop = copy;
    x.own_host = own;
    x.refused_kind = NULL;
    curl_easy_setopt(h, CURLOPT_USERNAME, NULL);
    curl_easy_setopt(h, CURLOPT_PASSWORD, NULL);
    if (own)
      own_credentials(h, url);
  }
  free(hop);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
  curl_slist_free_all(hdrs);
  *status = code;
  if (rc) {
    buf_free(&x.errbody);
    return rc;
  }
  /* Only a plain-text error body is meant for people (PROTOCOL.md A.4). */
  char line[200] = "";
  char *ctype = NULL;
  curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ctype);
  if (ctype && strncmp(ctype, "text/plain", 10) == 0)
    first_line(&x.errbody, line, sizeof line);
  char where[600];
  upstream_redact(url, where, sizeof where);
  buf_free(&x.errbody);
  if (x.sink_rc) {
    *oc = x.sink_rc == ERR_TOO_LARGE           ? OUTCOME_TOO_LARGE
          : x.sink_rc == ERR_BAD_UPSTREAM_DATA ? OUTCOME_INVALID
                                               : OUTCOME_LOCAL;
    if (!why || !why->text[0])
      reason_set(why, x.sink_rc, "upstream %s: %s", shown, err_str(x.sink_rc));
    return x.sink_rc;
  }
  if (is_file) {
    if (cc == CURLE_FILE_COULDNT_READ_FILE) {
      *status = 404;
      *oc = OUTCOME_NOT_FOUND;
      return reason_set(why, ERR_NOT_FOUND, "not found");
    }
    if (cc == CURLE_OK) {
      *status = 200;
      *oc = OUTCOME_OK;
      return 0;
    }
  }
  *oc = x.refused_kind   ? OUTCOME_BLOCKED
        : cc != CURLE_OK ? curl_outcome(cc)
                         : status_outcome(code);
  if (x.refused_kind)
    return reason_set(why, ERR_UPSTREAM,
                      "upstream %s: connecting to %s (%s address) refused: "
                      "only the upstream's own host may be there",
                      shown, x.refused, x.refused_kind);
  if (cc == CURLE_OPERATION_TIMEDOUT)
    return reason_set(why, ERR_UPSTREAM_TIMEOUT,
                      "upstream %s timed out after %lds", shown, fetch_timeout);
  if (cc != CURLE_OK)
    return reason_set(why, ERR_UPSTREAM, "upstream %s unreachable: %s", shown,
                      curl_easy_strerror(cc));
  if (code == 200)
    return 0;
  if (code == 508) /* a gomirror further on saw this request before */
    return reason_set(why, ERR_LOOP, "%s",
                      line[0] ? line
                              : "loop detected: the upstream chain leads "
                                "back to a gomirror this request passed");
  if (code == 404 || code == 410)
    return line[0] ? reason_set(why, code == 404 ? ERR_NOT_FOUND : ERR_GONE,
                                "%s", line)
                   : reason_set(why, code == 404 ? ERR_NOT_FOUND : ERR_GONE,
                                "not found: %s answered %ld", where, code);
  return reason_set(why, ERR_UPSTREAM, "upstream %s answered %ld%s%s", shown,
                    code, line[0] ? ": " : "", line);
}

int upstream_get_url(CURL *h, const char *url, const char *shown,
                     const char *redirect_hosts, long connect_timeout,
                     long fetch_timeout, const struct up_sink *sink,
                     struct metrics_peer *peer, long *status,
                     struct reason *why) {
  enum metrics_outcome oc;
  int rc = get_url(h, url, shown, redirect_hosts, connect_timeout,
                   fetch_timeout, sink, status, why, &oc);
  metrics_peer_note(peer, oc, rc ? reason_text(why, rc) : NULL);
  return rc;
}

/* --- circuit breaker ----------------------------------------------------- */

void upstream_set_circuit(struct upstream *u, long failures, long cooldown) {
  u->circuit_failures = failures;
  u->circuit_cooldown = cooldown > 0 ? cooldown : 1;
}

static long long now_ms(void) { return (long long)(clock_now_s() * 1000.0); }

int upstream_circuit_is_open(const struct up_entry *e) {
  return e->circuit && atomic_load(&e->circuit->open_until_ms) != 0;
}

/* The breaker takes the time from its caller so unit tests can drive it
 * with a made-up clock (upstream.h). */
int upstream_circuit_admit(const struct up_entry *e, long long now,
                           int *probe) {
  struct up_circuit *c = e->circuit;
  *probe = 0;
  if (!c)
    return 1;
  long long until = atomic_load(&c->open_until_ms);
  if (until == 0)
    return 1;
  if (now < until)
    return 0;
  int idle = 0;
  if (!atomic_compare_exchange_strong(&c->probing, &idle, 1))
    return 0;
  *probe = 1;
  return 1;
}

/* The entry did not answer at all, or answered that it cannot serve. */
static int is_conn_failure(enum metrics_outcome oc, long status) {
  return oc == OUTCOME_TIMEOUT || oc == OUTCOME_REFUSED || oc == OUTCOME_DNS ||
         oc == OUTCOME_NETWORK || status == 503;
}

void upstream_circuit_note(const struct upstream *u, const struct up_entry *e,
                           int failed, int probe, long long now) {
  struct up_circuit *c = e->circuit;
  if (!c || u->circuit_failures <= 0)
    return;
  if (!failed) {
    atomic_store(&c->failures, 0);
    if (atomic_exchange(&c->open_until_ms, 0) != 0) {
      atomic_store(&c->level, 0);
      log_info("upstream %s answers again: circuit closed", e->shown);
    }
  } else {
    int n = atomic_fetch_add(&c->failures, 1) + 1;
    if (probe || (n >= u->circuit_failures &&
                  atomic_load(&c->open_until_ms) == 0)) {
      int level = probe ? atomic_load(&c->level) + 1 : 0;
      if (level > 3)
        level = 3;
      atomic_store(&c->level, level);
      long long ms = (long long)u->circuit_cooldown * 1000 << level;
      atomic_store(&c->open_until_ms, now + ms);
      log_warn("upstream %s: %d failures in a row: circuit open for %llds",
               e->shown, n, ms / 1000);
    }
  }
  if (probe)
    atomic_store(&c->probing, 0);
}

int upstream_get(const struct upstream *u, CURL *h, const char *rel,
                 const struct up_sink *sink, long *attempts,
                 struct reason *why) {
  int rc = reason_set(why, ERR_NOT_FOUND, "not found: no upstream");
  for (size_t i = 0; i < u->n; i++) {
    const struct up_entry *e = &u->v[i];
    if (e->kind == UP_OFF)
      return reason_set(why, ERR_NOT_FOUND,
                        "not found: not cached, and upstream is off");
    if (e->kind == UP_DIRECT)
      return UPSTREAM_DIRECT;
    int probe = 0;
    if (u->circuit_failures > 0 &&
        !upstream_circuit_admit(e, now_ms(), &probe)) {
      /* Skipped at once: no connect_timeout spent on a dead entry. */
      rc = reason_set(why, ERR_UPSTREAM,
                      "upstream %s is skipped: circuit open after repeated "
                      "connection failures",
                      e->shown);
      if (!e->on_any_error)
        return rc;
      continue;
    }
    struct buf url;
    buf_init(&url, 8192);
    rc = buf_appendf(&url, "%s/%s", e->base, rel);
    if (rc)
      return rc;
    long status;
    if (attempts)
      (*attempts)++;
    if (why)
      why->text[0] = '\0';
    enum metrics_outcome oc;
    rc = get_url(h, buf_cstr(&url), e->shown, u->redirect_hosts,
                 u->connect_timeout, u->fetch_timeout, sink, &status, why, &oc);
    metrics_peer_note(e->health, oc, rc ? reason_text(why, rc) : NULL);
    upstream_circuit_note(u, e, is_conn_failure(oc, status), probe, now_ms());
    log_debug("upstream GET %s/%s -> %ld (%s)", e->shown, rel, status,
              err_str(rc));
    buf_free(&url);
    if (rc == 0)
      return 0;
    int not_found = rc == ERR_NOT_FOUND || rc == ERR_GONE;
    if (!not_found && !e->on_any_error)
      return rc;
  }
  return rc;
}

int upstream_has_direct(const struct upstream *u) {
  for (size_t i = 0; i < u->n; i++)
    if (u->v[i].kind == UP_DIRECT)
      return 1;
  return 0;
}

void upstream_via_set(CURL *h, char *line, const char *incoming,
                      const char *self) {
  while (incoming && (*incoming == ' ' || *incoming == '\t'))
    incoming++;
  int n;
  if (incoming && incoming[0])
    n = snprintf(line, UPSTREAM_VIA_MAX, "%s: %.400s, %s", UPSTREAM_VIA_HEADER,
                 incoming, self);
  else
    n = snprintf(line, UPSTREAM_VIA_MAX, "%s: %s", UPSTREAM_VIA_HEADER, self);
  /* Never send a header cut short or holding control characters. */
  for (char *c = line; *c; c++)
    if ((unsigned char)*c < 0x20 || (unsigned char)*c == 0x7f)
      *c = ' ';
  if (n < 0 || n >= UPSTREAM_VIA_MAX)
    snprintf(line, UPSTREAM_VIA_MAX, "%s: %s", UPSTREAM_VIA_HEADER, self);
  if (h)
    curl_easy_setopt(h, CURLOPT_PRIVATE, line);
}

int upstream_via_loops(const char *via, const char *self) {
  if (!via)
    return 0;
  size_t sl = strlen(self);
  int hops = 0;
  for (const char *p = via; *p;) {
    size_t n = strcspn(p, ",");
    const char *e = p;
    size_t len = n;
    while (len && (*e == ' ' || *e == '\t'))
      e++, len--;
    while (len && (e[len - 1] == ' ' || e[len - 1] == '\t'))
      len--;
    if (len) {
      hops++;
      if (len == sl && !strncasecmp(e, self, sl))
        return 1;
    }
    p += n;
    if (*p == ',')
      p++;
  }
  return hops >= UPSTREAM_VIA_MAX_HOPS;
}
