/* placeholder: being written */
#include "meta.h"

#include "core/err.h"

static int redis_open(const struct config *c, struct meta **out,
                      struct reason *why) {
  (void)c;
  (void)out;
  return reason_set(why, ERR_CONFIG, "meta=redis is being written");
}

const struct meta_ops meta_redis_ops = {.name = "redis", .open = redis_open};
