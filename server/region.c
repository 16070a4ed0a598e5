/* Regions chained through their upstreams (region.h). The Gomirror-Via
 * header lists every gomirror a request passed through, so a chain that
 * leads back to one of them is answered 508 at once instead of bouncing
 * between regions until the fetch times out. */
#include "region.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "http.h"
#include "server.h"
#include "upstream.h"

#include <civetweb.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int region_setup(const struct config *cfg, struct server *srv,
                 struct reason *why) {
  if (cfg->region && cfg->region[0]) {
    snprintf(srv->region, sizeof srv->region, "%s", cfg->region);
  } else {
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
      snprintf(host, sizeof host, "gomirror");
    snprintf(srv->region, sizeof srv->region, "%.*s",
             (int)sizeof srv->region - 1, host);
  }
  if (srv->up)
    upstream_set_circuit(srv->up, cfg->upstream_circuit_failures,
                         cfg->upstream_circuit_cooldown);
  if (!cfg->private_upstream || !cfg->private_upstream[0])
    return 0;
  int rc = upstream_parse(cfg->private_upstream, cfg->upstream_redirect_hosts,
                          cfg->connect_timeout, cfg->fetch_timeout,
                          &srv->up_private, why);
  if (rc)
    return reason_set(why, ERR_CONFIG, "private_upstream: %s",
                      reason_text(why, rc));
  upstream_set_circuit(srv->up_private, cfg->upstream_circuit_failures,
                       cfg->upstream_circuit_cooldown);
  log_info("region %s: private modules come from %s", srv->region,
           srv->up_private->n ? srv->up_private->v[0].shown : "?");
  return 0;
}

int region_request_begin(struct req *r) {
  const char *via = mg_get_header(r->conn, UPSTREAM_VIA_HEADER);
  if (via && upstream_via_loops(via, r->srv->region)) {
    char line[UPSTREAM_VIA_MAX + 128];
    snprintf(line, sizeof line,
             "loop detected: this request already passed through region %s "
             "or too many gomirrors (Gomirror-Via: %.300s)",
             r->srv->region, via);
    for (char *c = line; *c; c++)
      if ((unsigned char)*c < 0x20 || (unsigned char)*c == 0x7f)
        *c = ' ';
    log_warn("%s", line);
    http_error(r, 508, line);
    return 1;
  }
  upstream_via_set(r->w->curl, r->w->via, via, r->srv->region);
  return 0;
}

static void render_chain(struct buf *b, const struct upstream *u) {
  for (size_t i = 0; u && i < u->n; i++)
    if (u->v[i].kind == UP_PROXY)
      buf_appendf(b, "gomirror_upstream_circuit_open{upstream=\"%s\"} %d\n",
                  u->v[i].shown, upstream_circuit_is_open(&u->v[i]));
}

void region_render_metrics(struct buf *b, struct server *srv) {
  buf_appendf(b, "# HELP gomirror_upstream_circuit_open 1 while the upstream "
                 "entry is skipped after repeated connection failures.\n"
                 "# TYPE gomirror_upstream_circuit_open gauge\n");
  render_chain(b, srv->up);
  render_chain(b, srv->up_private);
}

static void ready_chain(struct buf *b, const struct upstream *u) {
  for (size_t i = 0; u && i < u->n; i++)
    if (u->v[i].kind == UP_PROXY && upstream_circuit_is_open(&u->v[i]))
      buf_appendf(b, "upstream %s circuit open\n", u->v[i].shown);
}

int region_ready(struct req *r) {
  struct buf b;
  buf_init(&b, 64 * 1024);
  buf_appendf(&b, "ready\n");
  ready_chain(&b, r->srv->up);
  ready_chain(&b, r->srv->up_private);
  int rc = http_send(r, 200, CT_TEXT, CACHE_NONE, NULL, b.data, b.len);
  buf_free(&b);
  return rc;
}
