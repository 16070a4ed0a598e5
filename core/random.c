/* Kernel randomness; see random.h. */
#include "random.h"

#include "err.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

int random_fill(void *buf, size_t n) {
  unsigned char *p = buf;
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(p + got, n - got, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return ERR_IO;
    got += (size_t)r;
  }
  return 0;
}

int random_hex(char *out, size_t n) {
  static const char hex[] = "0123456789abcdef";
  unsigned char raw[64];
  if (n > sizeof raw)
    return ERR_INVALID;
  int rc = random_fill(raw, n);
  if (rc)
    return rc;
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hex[raw[i] >> 4];
    out[2 * i + 1] = hex[raw[i] & 15];
  }
  out[2 * n] = '\0';
  memset(raw, 0, sizeof raw);
  return 0;
}
