/* Liveness and readiness. /healthz says the process answers; /readyz says
 * it can serve: not draining, and storage usable. */
#include "core/err.h"
#include "http.h"
#include "server.h"
#include "storage/storage.h"

int h_healthz(struct req *r) {
  return http_send(r, 200, CT_TEXT, CACHE_NONE, NULL, "ok\n", 3);
}

int h_readyz(struct req *r) {
  if (atomic_load(&r->srv->draining))
    return http_error(r, 503, "draining: shutting down");
  struct reason why = {{0}};
  int rc = storage_ready(r->srv->store, &why);
  if (rc)
    return http_fail(r, rc, &why);
  return http_send(r, 200, CT_TEXT, CACHE_NONE, NULL, "ready\n", 6);
}
