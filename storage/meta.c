/* Picks the metadata backend from configuration. */
#include "meta.h"

#include "core/config.h"
#include "core/err.h"

#include <string.h>

int meta_open(const struct config *c, struct meta **out, struct reason *why) {
  *out = NULL;
  if (strcmp(c->meta, "memory") == 0)
    return meta_mem_ops.open(c, out, why);
  if (strncmp(c->meta, "redis://", 8) == 0 ||
      strncmp(c->meta, "redis-sentinel://", 17) == 0)
    return meta_redis_ops.open(c, out, why);
  char shown[256];
  config_shown(c, "meta", shown, sizeof shown);
  return reason_set(why, ERR_CONFIG, "meta=%s: unsupported backend", shown);
}

int meta_check(const struct config *c, struct reason *why) {
  if (strcmp(c->meta, "memory") == 0)
    return 0;
  if (strncmp(c->meta, "redis://", 8) == 0 ||
      strncmp(c->meta, "redis-sentinel://", 17) == 0)
    return meta_redis_check(c, why);
  char shown[256];
  config_shown(c, "meta", shown, sizeof shown);
  return reason_set(why, ERR_CONFIG, "meta=%s: unsupported backend", shown);
}

void meta_close(struct meta *m) {
  if (m)
    m->ops->close(m);
}
