/* Liveness and readiness. /healthz says the process answers; /readyz says
 * it can serve. With storage down a replica that still holds artifacts in
 * its hot cache stays ready (degraded), as DESIGN.md's failure table asks:
 * readiness fails only when nothing can be served. */
#include "core/err.h"
#include "hot.h"
#include "http.h"
#include "region.h"
#include "server.h"
#include "storage/meta.h"
#include "storage/storage.h"

#include <stdio.h>

int h_healthz(struct req *r) {
  return http_send(r, 200, CT_TEXT, CACHE_NONE, NULL, "ok\n", 3);
}

/* 200 with "degraded: <what><reason>": still serving, and saying why. */
static int degraded(struct req *r, const char *what, const struct reason *why,
                    int code) {
  char line[REASON_MAX + 64];
  int n = snprintf(line, sizeof line, "degraded: %s%s\n", what,
                   reason_text(why, code));
  if (n < 0 || (size_t)n >= sizeof line)
    n = (int)sizeof line - 1;
  return http_send(r, 200, CT_TEXT, CACHE_NONE, NULL, line, (size_t)n);
}

int h_readyz(struct req *r) {
  if (atomic_load(&r->srv->draining))
    return http_error(r, 503, "draining: shutting down");
  struct reason why = {{0}};
  int rc = storage_ready(r->srv->store, &why);
  if (atomic_load(&r->srv->starting)) {
    char line[REASON_MAX + 32];
    snprintf(line, sizeof line, "waiting for storage: %s",
             rc ? reason_text(&why, rc) : "it answers now");
    return http_error(r, 503, line);
  }
  if (!rc) {
    /* Metadata down costs coordination, not service: still ready, and
     * saying so in the body keeps the load balancer from flapping. */
    struct meta *meta = r->srv->meta;
    if (meta->ops->ready(meta, &why) == 0)
      return region_ready(r);
    return degraded(r, "", &why, ERR_UNAVAILABLE);
  }
  if (hot_bytes(r->srv->hot) == 0)
    return http_fail(r, rc, &why);
  return degraded(r, "serving cached artifacts only: ", &why, rc);
}
