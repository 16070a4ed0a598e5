/* Guarding the worker threads from clients that hold connections without
 * using them. CivetWeb gives each open connection a thread, has one timeout
 * for reading a request's headers and for each write of its body, and no
 * hook that can refuse a connection; so gomirror watches its own sockets. A
 * thread looks at them a few times a second and shuts down (1) those that
 * have not completed a request's headers within header_timeout of
 * connecting or of their previous response, and (2) connections of one
 * client address that have waited half a second without completing any
 * request, beyond max_client_conns of them, longest-waiting first.
 * Connections from trusted proxies are not capped (the proxy is many
 * clients), nor are connections that have been answered before. A socket is
 * recognised by its peer address and port, and acted on through a dup()
 * checked again, so a descriptor number reused meanwhile is never touched.
 * The worker threads tell the guard which connection they are serving
 * (two stores per request, no lock). */
#ifndef GOMIRROR_SERVER_CONNGUARD_H
#define GOMIRROR_SERVER_CONNGUARD_H

#include <stdatomic.h>

struct mg_connection;
struct cidr_list;
struct reason;
struct connguard;

struct connguard_config {
  int listen_port;                 /* our sockets: local port == this */
  long header_timeout_ms;          /* 0: no deadline */
  long max_client_conns;           /* 0: no cap */
  const struct cidr_list *trusted; /* exempt from the cap; may be NULL */
  long interval_ms;                /* how often the sockets are looked at */
};

/* One per worker thread, registered with the guard. */
struct connguard_slot {
  atomic_ullong peer;   /* IPv4 address << 16 | port; 0: none yet */
  atomic_int busy;      /* a request is being answered */
  atomic_llong done_ms; /* monotonic ms when the last answer ended */
  struct connguard_slot *next;
};

/* Starts the guard thread. 0, or ERR_* with a reason. */
int connguard_start(const struct connguard_config *c, struct connguard **out,
                    struct reason *why);
/* Stops the thread and frees the guard (slots must be freed first or
 * after: they are unregistered by connguard_slot_free). NULL-safe. */
void connguard_stop(struct connguard *g);

/* A slot for the calling worker thread (NULL g: returns NULL). */
struct connguard_slot *connguard_slot_new(struct connguard *g);
void connguard_slot_free(struct connguard *g, struct connguard_slot *s);

/* Around each request a worker answers. remote_addr is CivetWeb's text
 * form of the peer (IPv4; CivetWeb is built without IPv6). NULL s: no-op. */
void connguard_request_begin(struct connguard_slot *s, const char *remote_addr,
                             int remote_port);
void connguard_request_end(struct connguard_slot *s);

/* Connections the guard shut down: for waiting too long for headers, and
 * for the per-address cap. */
void connguard_counts(struct connguard *g, long long *slow,
                      long long *over_cap);

/* Shuts the socket of conn down (both directions): the client sees the
 * connection end, and CivetWeb's next read or write on it fails, so the
 * worker thread is free at once and the connection is never reused. For a
 * response that cannot be completed (a short stream). 0, or -1 when the
 * socket was not found. */
int connguard_abort(const struct mg_connection *conn);

#endif
