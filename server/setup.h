/* A struct server built from the configuration and taken apart again. */
#ifndef GOMIRROR_SERVER_SETUP_H
#define GOMIRROR_SERVER_SETUP_H

struct server;
struct config;
struct reason;

/* Opens storage (without waiting for it), metadata, the upstream chain, the
 * checksum databases, the version-control fetchers, the hot cache, the
 * counters and access control into *srv, which refers to cfg from then
 * on. With check set, it does what can be done without the network and
 * without lasting effects (the metadata URL is parsed, not dialled; no
 * counters, audit file or purge subscription), for --check-config. On
 * failure everything opened is closed again and why says what failed. */
int server_open(struct server *srv, const struct config *cfg, int check,
                struct reason *why);
/* Closes everything server_open opened. */
void server_close(struct server *srv);

#endif
