/* Guarding the worker threads from clients that hold connections without
 * using them. CivetWeb gives each open connection a thread and has one
 * timeout for reading a request's headers and for writing its body, and no
 * hook that can refuse a connection; so gomirror watches its own sockets:
 * a thread looks at them a few times a second, closes those that have sent
 * no complete request for header_timeout seconds, and those of a client
 * address beyond max_client_conns. A socket is recognised by its peer
 * address and port, and acted on through a dup() checked again, so a
 * descriptor number reused meanwhile is never touched. */
#ifndef GOMIRROR_SERVER_CONNGUARD_H
#define GOMIRROR_SERVER_CONNGUARD_H

struct mg_connection;

/* Shuts the socket of conn down (both directions): the client sees the
 * connection end, and CivetWeb's next read or write on it fails, so the
 * worker thread is free at once and the connection is never reused. For a
 * response that cannot be completed (a short stream). 0, or -1 when the
 * socket was not found. */
int connguard_abort(const struct mg_connection *conn);

#endif
