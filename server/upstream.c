/* GOPROXY-syntax upstream chains over libcurl. Each worker thread owns one
 * easy handle and passes it in, so keep-alive connections are reused without
 * locking. */
#include "upstream.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"

#include <stdlib.h>
#include <string.h>

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
    if (!e->shown) {
      free(e->base);
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

struct xfer {
  const struct up_sink *sink;
  CURL *h;
  int checked; /* status looked at */
  long status;
  int sink_rc;
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

int upstream_get_url(CURL *h, const char *url, const char *shown,
                     long connect_timeout, long fetch_timeout,
                     const struct up_sink *sink, long *status,
                     struct reason *why) {
  struct xfer x = {.sink = sink, .h = h};
  buf_init(&x.errbody, 1024);
  *status = 0;
  if (sink->reset) {
    int rc = sink->reset(sink->arg);
    if (rc)
      return rc;
  }
  int is_file = strncmp(url, "file://", 7) == 0;
  curl_easy_reset(h);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, is_file ? "file" : "http,https");
  /* Never follow a redirect from https down to http. */
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR,
                   strncmp(url, "https://", 8) == 0 ? "https" : "http,https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, connect_timeout);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, fetch_timeout);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "gomirror/0.1");
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  CURLcode cc = curl_easy_perform(h);
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  *status = code;
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
    if (!why || !why->text[0])
      reason_set(why, x.sink_rc, "upstream %s: %s", shown, err_str(x.sink_rc));
    return x.sink_rc;
  }
  if (is_file) {
    if (cc == CURLE_FILE_COULDNT_READ_FILE) {
      *status = 404;
      return reason_set(why, ERR_NOT_FOUND, "not found");
    }
    if (cc == CURLE_OK) {
      *status = 200;
      return 0;
    }
  }
  if (cc == CURLE_OPERATION_TIMEDOUT)
    return reason_set(why, ERR_UPSTREAM_TIMEOUT,
                      "upstream %s timed out after %lds", shown, fetch_timeout);
  if (cc != CURLE_OK)
    return reason_set(why, ERR_UPSTREAM, "upstream %s unreachable: %s", shown,
                      curl_easy_strerror(cc));
  if (code == 200)
    return 0;
  if (code == 404 || code == 410)
    return line[0] ? reason_set(why, code == 404 ? ERR_NOT_FOUND : ERR_GONE,
                                "%s", line)
                   : reason_set(why, code == 404 ? ERR_NOT_FOUND : ERR_GONE,
                                "not found: %s answered %ld", where, code);
  return reason_set(why, ERR_UPSTREAM, "upstream %s answered %ld%s%s", shown,
                    code, line[0] ? ": " : "", line);
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
    rc = upstream_get_url(h, buf_cstr(&url), e->shown, u->connect_timeout,
                          u->fetch_timeout, sink, &status, why);
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
