/* Several regions (issue 15): this gomirror's region id, loop detection
 * between chained gomirrors (the Gomirror-Via header), and the chain that
 * private paths go to when this region fetches them from another gomirror
 * (private_upstream) instead of version control. */
#ifndef GOMIRROR_SERVER_REGION_H
#define GOMIRROR_SERVER_REGION_H

struct config;
struct reason;
struct req;
struct server;

/* Sets srv->region (cfg->region, else the host name) and parses
 * private_upstream into srv->up_private (NULL when empty). ERR_CONFIG with
 * a reason on a bad chain; srv->up_private is freed by server_close. */
int region_setup(const struct config *cfg, struct server *srv,
                 struct reason *why);

/* At the start of every request: answers 508 (and returns 1) when the
 * request's Gomirror-Via names this region or holds too many hops; else
 * makes the worker's upstream and checksum-database requests carry the
 * chain plus this region, and returns 0. */
int region_request_begin(struct req *r);

struct buf;
/* gomirror_upstream_circuit_open{upstream="<shown url>"} 0 or 1 for every
 * entry of upstream and private_upstream, into b. */
void region_render_metrics(struct buf *b, struct server *srv);

/* Answers a ready /readyz: 200 "ready", plus one line "upstream <shown
 * url> circuit open" per entry whose circuit is open (still ready: what is
 * stored is served, and misses go down the rest of the chain). */
int region_ready(struct req *r);

#endif
