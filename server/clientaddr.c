/* Trusted proxies and X-Forwarded-For; see clientaddr.h. Addresses are
 * parsed with inet_pton, so only canonical IPv4 and IPv6 text counts. */
#include "clientaddr.h"

#include "core/err.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cidr {
  int family; /* AF_INET or AF_INET6 */
  unsigned char addr[16];
  int bits;
};

struct cidr_list {
  struct cidr *v;
  size_t n;
};

/* Parses text[0..n) as an address: family and 4 or 16 bytes, or 0. */
static int parse_addr(const char *text, size_t n, unsigned char out[16]) {
  char buf[CLIENTADDR_MAX];
  if (n == 0 || n >= sizeof buf)
    return 0;
  memcpy(buf, text, n);
  buf[n] = '\0';
  if (inet_pton(AF_INET, buf, out) == 1)
    return AF_INET;
  if (inet_pton(AF_INET6, buf, out) != 1)
    return 0;
  /* An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d: it is
   * the IPv4 address, for trusted_proxies too. */
  static const unsigned char mapped[12] = {0, 0, 0, 0, 0,    0,
                                           0, 0, 0, 0, 0xff, 0xff};
  if (memcmp(out, mapped, sizeof mapped) == 0) {
    memmove(out, out + 12, 4);
    return AF_INET;
  }
  return AF_INET6;
}

int cidr_list_parse(const char *spec, struct cidr_list **out,
                    struct reason *why) {
  *out = NULL;
  if (!spec || !*spec)
    return 0;
  struct cidr_list *l = calloc(1, sizeof *l);
  if (!l)
    return ERR_NOMEM;
  for (const char *p = spec; *p;) {
    size_t n = strcspn(p, ",");
    const char *e = p;
    size_t len = n;
    while (len && (*e == ' ' || *e == '\t'))
      e++, len--;
    while (len && (e[len - 1] == ' ' || e[len - 1] == '\t'))
      len--;
    const char *slash = memchr(e, '/', len);
    size_t al = slash ? (size_t)(slash - e) : len;
    struct cidr c = {0};
    c.family = parse_addr(e, al, c.addr);
    int max = c.family == AF_INET ? 32 : 128;
    c.bits = max;
    int ok = c.family != 0;
    if (ok && slash) {
      char *end;
      const char *b = slash + 1;
      long bits = strtol(b, &end, 10);
      ok = end > b && end == e + len && bits >= 0 && bits <= max &&
           (b[0] >= '0' && b[0] <= '9');
      c.bits = (int)bits;
    }
    struct cidr *v = ok ? realloc(l->v, (l->n + 1) * sizeof *v) : NULL;
    if (!v) {
      cidr_list_free(l);
      if (ok)
        return ERR_NOMEM;
      return reason_set(why, ERR_CONFIG,
                        "trusted_proxies: '%.*s' is not an address or CIDR "
                        "(e.g. 10.0.0.0/8)",
                        (int)(len > 60 ? 60 : len), e);
    }
    l->v = v;
    l->v[l->n++] = c;
    p += n;
    if (*p == ',')
      p++;
  }
  *out = l;
  return 0;
}

void cidr_list_free(struct cidr_list *l) {
  if (!l)
    return;
  free(l->v);
  free(l);
}

static int in_cidr(const struct cidr *c, int family, const unsigned char *a) {
  if (c->family != family)
    return 0;
  int full = c->bits / 8, rest = c->bits % 8;
  if (memcmp(c->addr, a, (size_t)full) != 0)
    return 0;
  if (!rest)
    return 1;
  unsigned char mask = (unsigned char)(0xff << (8 - rest));
  return (c->addr[full] & mask) == (a[full] & mask);
}

int cidr_list_contains(const struct cidr_list *l, const char *addr) {
  if (!l || !addr)
    return 0;
  unsigned char a[16];
  int family = parse_addr(addr, strlen(addr), a);
  for (size_t i = 0; family && i < l->n; i++)
    if (in_cidr(&l->v[i], family, a))
      return 1;
  return 0;
}

static void copy(const char *s, size_t n, char *out, size_t cap) {
  if (n >= cap)
    n = cap - 1;
  memcpy(out, s, n);
  out[n] = '\0';
}

void client_address(const struct cidr_list *trusted, const char *remote,
                    const char *xff, char *out, size_t cap) {
  if (!cap)
    return;
  const char *client = remote ? remote : "-";
  copy(client, strlen(client), out, cap);
  if (!xff || !cidr_list_contains(trusted, remote))
    return;
  size_t end = strlen(xff);
  while (end > 0) {
    size_t start = end;
    while (start > 0 && xff[start - 1] != ',')
      start--;
    const char *e = xff + start;
    size_t len = end - start;
    while (len && (*e == ' ' || *e == '\t'))
      e++, len--;
    while (len && (e[len - 1] == ' ' || e[len - 1] == '\t'))
      len--;
    unsigned char a[16];
    char text[CLIENTADDR_MAX];
    if (!parse_addr(e, len, a))
      return; /* not an address: believe nothing further left */
    copy(e, len, text, sizeof text);
    copy(e, len, out, cap);
    if (!cidr_list_contains(trusted, text))
      return;
    end = start ? start - 1 : 0;
  }
}
