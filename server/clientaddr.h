/* Who the client is, by network address: the peer, or, when the peer is a
 * trusted proxy (`trusted_proxies` CIDRs), the address X-Forwarded-For
 * gives for it. Used for the audit log and for the rate limits of anonymous
 * clients. Pure: no I/O; fuzzed. */
#ifndef GOMIRROR_SERVER_CLIENTADDR_H
#define GOMIRROR_SERVER_CLIENTADDR_H

#include <stddef.h>

struct reason;
struct cidr_list;

#define CLIENTADDR_MAX 64 /* an IPv6 address in text, with its NUL */

/* Parses "10.0.0.0/8, 192.168.1.7, ::1/128" (a bare address is one host).
 * 0 with *out (NULL for an empty spec), or ERR_CONFIG naming the entry. */
int cidr_list_parse(const char *spec, struct cidr_list **out,
                    struct reason *why);
void cidr_list_free(struct cidr_list *l); /* NULL-safe */
/* 1 when the textual address addr (IPv4 or IPv6) is in l. */
int cidr_list_contains(const struct cidr_list *l, const char *addr);

/* The client's address into out: remote itself unless remote is trusted;
 * then X-Forwarded-For is read from the right, skipping trusted addresses,
 * and the first untrusted one is the client (a value that is not an
 * address stops the walk at the proxy that added it). */
void client_address(const struct cidr_list *trusted, const char *remote,
                    const char *xff, char *out, size_t cap);

#endif
