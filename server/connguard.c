/* Connection guard; see connguard.h. */
#include "connguard.h"

#include "clientaddr.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WORKERS_MAX 4096 /* the `threads` key's maximum */

/* A worker's request, as the guard read it. */
struct wstate {
  uint64_t peer;
  int busy;
  long long done;
};

/* A socket of ours seen in a scan. */
struct sock {
  int fd;
  uint64_t peer;
  long long since_ms; /* waiting since; -1: answering a request */
  int answered;       /* a request on it has been answered */
};

/* A connection counts against max_client_conns only once it has waited
 * this long without completing its first request: under load, fresh
 * connections queue for a worker for a moment, and a load balancer opens
 * many at once; a connection that has been answered is a real client's
 * (idle keep-alive ones go after CivetWeb's keep_alive_timeout, and any
 * that stalls in its next request's headers after header_timeout). */
#define CAP_GRACE_MS 500

/* When a socket with no request yet was first seen. */
struct first {
  uint64_t peer;
  long long at_ms;
  int seen; /* in the latest scan */
};

struct connguard {
  struct connguard_config cfg;
  pthread_mutex_t mu; /* slots list; stop flag */
  pthread_cond_t cv;
  struct connguard_slot *slots;
  int stop;
  pthread_t thread;
  atomic_llong slow, over_cap;
  /* The guard thread's own tables, reused between scans. */
  struct sock *socks;
  size_t nsocks, capsocks;
  struct first *firsts;
  size_t nfirsts, capfirsts;
  struct wstate *workers; /* WORKERS_MAX */
};

static long long now_ms(void) {
  return (long long)(clock_now_s() * 1000.0);
}

static uint64_t pack(uint32_t addr_be, int port) {
  return ((uint64_t)ntohl(addr_be) << 16) | (uint64_t)(port & 0xffff);
}

void connguard_request_begin(struct connguard_slot *s, const char *remote_addr,
                             int remote_port) {
  if (!s)
    return;
  struct in_addr a;
  uint64_t peer = inet_pton(AF_INET, remote_addr, &a) == 1
                      ? pack(a.s_addr, remote_port)
                      : 0;
  atomic_store_explicit(&s->peer, peer, memory_order_relaxed);
  atomic_store_explicit(&s->busy, 1, memory_order_release);
}

void connguard_request_end(struct connguard_slot *s) {
  if (!s)
    return;
  atomic_store_explicit(&s->done_ms, now_ms(), memory_order_relaxed);
  atomic_store_explicit(&s->busy, 0, memory_order_release);
}

struct connguard_slot *connguard_slot_new(struct connguard *g) {
  if (!g)
    return NULL;
  struct connguard_slot *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  pthread_mutex_lock(&g->mu);
  s->next = g->slots;
  g->slots = s;
  pthread_mutex_unlock(&g->mu);
  return s;
}

void connguard_slot_free(struct connguard *g, struct connguard_slot *s) {
  if (!g || !s)
    return;
  pthread_mutex_lock(&g->mu);
  for (struct connguard_slot **pp = &g->slots; *pp; pp = &(*pp)->next)
    if (*pp == s) {
      *pp = s->next;
      break;
    }
  pthread_mutex_unlock(&g->mu);
  free(s);
}

void connguard_counts(struct connguard *g, long long *slow,
                      long long *over_cap) {
  *slow = g ? atomic_load(&g->slow) : 0;
  *over_cap = g ? atomic_load(&g->over_cap) : 0;
}

/* The peer of fd when fd is a connected IPv4 TCP socket whose local port is
 * port (one of our server connections); 0 otherwise. */
static uint64_t our_peer(int fd, int port) {
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0 ||
      sa.sin_family != AF_INET || ntohs(sa.sin_port) != port)
    return 0;
  len = sizeof sa;
  if (getpeername(fd, (struct sockaddr *)&sa, &len) != 0 ||
      sa.sin_family != AF_INET)
    return 0;
  return pack(sa.sin_addr.s_addr, ntohs(sa.sin_port));
}

/* Shuts fd down if it still is the connection with peer. 1 when it did. */
static int shut(int fd, uint64_t peer, int port) {
  int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0)
    return 0;
  int same = our_peer(dup, port) == peer;
  if (same)
    shutdown(dup, SHUT_RDWR);
  close(dup);
  return same;
}

static void peer_text(uint64_t peer, char *out, size_t cap) {
  struct in_addr a;
  a.s_addr = htonl((uint32_t)(peer >> 16));
  inet_ntop(AF_INET, &a, out, (socklen_t)cap);
}

static int cmp_peer(uint64_t a, uint64_t b) {
  return a < b ? -1 : a > b;
}
static int by_peer_w(const void *a, const void *b) {
  return cmp_peer(((const struct wstate *)a)->peer,
                  ((const struct wstate *)b)->peer);
}
static int by_peer_s(const void *a, const void *b) {
  return cmp_peer(((const struct sock *)a)->peer,
                  ((const struct sock *)b)->peer);
}
static int by_peer_f(const void *a, const void *b) {
  return cmp_peer(((const struct first *)a)->peer,
                  ((const struct first *)b)->peer);
}

static int push_first(struct connguard *g, uint64_t peer, long long at) {
  if (g->nfirsts == g->capfirsts) {
    size_t nc = g->capfirsts ? g->capfirsts * 2 : 256;
    struct first *nf = realloc(g->firsts, nc * sizeof *nf);
    if (!nf)
      return -1;
    g->firsts = nf;
    g->capfirsts = nc;
  }
  g->firsts[g->nfirsts++] = (struct first){peer, at, 1};
  return 0;
}

/* Lists our sockets into g->socks (sorted by peer) with the time each has
 * waited since: the end of its last answer (a worker's record), or when
 * the guard first saw it (no request yet). */
static void collect(struct connguard *g, long long now) {
  g->nsocks = 0;
  DIR *d = opendir("/proc/self/fd");
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    char *end;
    long fd = strtol(e->d_name, &end, 10);
    if (*end || fd < 3 || fd == dirfd(d))
      continue;
    uint64_t peer = our_peer((int)fd, g->cfg.listen_port);
    if (!peer)
      continue;
    if (g->nsocks == g->capsocks) {
      size_t nc = g->capsocks ? g->capsocks * 2 : 256;
      struct sock *ns = realloc(g->socks, nc * sizeof *ns);
      if (!ns)
        break;
      g->socks = ns;
      g->capsocks = nc;
    }
    g->socks[g->nsocks++] = (struct sock){(int)fd, peer, now, 0};
  }
  closedir(d);
  /* What the workers are doing now, read once. */
  struct wstate *w = g->workers;
  size_t nw = 0;
  pthread_mutex_lock(&g->mu);
  for (struct connguard_slot *s = g->slots; s && nw < WORKERS_MAX;
       s = s->next) {
    w[nw].busy = atomic_load_explicit(&s->busy, memory_order_acquire);
    w[nw].peer = atomic_load_explicit(&s->peer, memory_order_relaxed);
    w[nw].done = atomic_load_explicit(&s->done_ms, memory_order_relaxed);
    nw++;
  }
  pthread_mutex_unlock(&g->mu);
  /* qsort's arrays must not be NULL, even when empty. */
  if (nw)
    qsort(w, nw, sizeof *w, by_peer_w);
  if (g->nsocks)
    qsort(g->socks, g->nsocks, sizeof *g->socks, by_peer_s);
  /* g->firsts is sorted from the last scan; walk the three together. */
  size_t old = g->nfirsts, fi = 0, wi = 0;
  for (size_t i = 0; i < old; i++)
    g->firsts[i].seen = 0;
  for (size_t i = 0; i < g->nsocks; i++) {
    struct sock *s = &g->socks[i];
    while (wi < nw && w[wi].peer < s->peer)
      wi++;
    if (wi < nw && w[wi].peer == s->peer) {
      s->since_ms = w[wi].busy ? -1 : w[wi].done;
      s->answered = 1;
      continue;
    }
    while (fi < old && g->firsts[fi].peer < s->peer)
      fi++;
    if (fi < old && g->firsts[fi].peer == s->peer) {
      g->firsts[fi].seen = 1;
      s->since_ms = g->firsts[fi].at_ms;
    } else if (push_first(g, s->peer, now) == 0) {
      s->since_ms = now;
    }
  }
  /* Forget sockets that are gone; keep the table sorted. */
  size_t k = 0;
  for (size_t i = 0; i < g->nfirsts; i++)
    if (g->firsts[i].seen)
      g->firsts[k++] = g->firsts[i];
  g->nfirsts = k;
  if (g->nfirsts)
    qsort(g->firsts, g->nfirsts, sizeof *g->firsts, by_peer_f);
}

static int by_address_then_age(const void *a, const void *b) {
  const struct sock *x = a, *y = b;
  uint64_t xa = x->peer >> 16, ya = y->peer >> 16;
  if (xa != ya)
    return xa < ya ? -1 : 1;
  return x->since_ms < y->since_ms ? -1 : x->since_ms > y->since_ms;
}

static void scan(struct connguard *g) {
  long long now = now_ms();
  collect(g, now);
  int port = g->cfg.listen_port;
  /* Headers too slow (or an idle connection kept too long). */
  size_t k = 0;
  for (size_t i = 0; i < g->nsocks; i++) {
    struct sock *s = &g->socks[i];
    if (s->since_ms < 0)
      continue; /* answering a request */
    if (g->cfg.header_timeout_ms > 0 &&
        now - s->since_ms > g->cfg.header_timeout_ms &&
        shut(s->fd, s->peer, port)) {
      atomic_fetch_add(&g->slow, 1);
      continue;
    }
    if (!s->answered && now - s->since_ms >= CAP_GRACE_MS)
      g->socks[k++] = *s;
  }
  if (g->cfg.max_client_conns <= 0)
    return;
  /* Waiting connections per address beyond the cap, oldest first. */
  if (k)
    qsort(g->socks, k, sizeof *g->socks, by_address_then_age);
  for (size_t i = 0; i < k;) {
    size_t j = i;
    while (j < k && g->socks[j].peer >> 16 == g->socks[i].peer >> 16)
      j++;
    size_t n = j - i;
    if ((long)n > g->cfg.max_client_conns) {
      char text[INET_ADDRSTRLEN];
      peer_text(g->socks[i].peer, text, sizeof text);
      if (!cidr_list_contains(g->cfg.trusted, text)) {
        size_t over = n - (size_t)g->cfg.max_client_conns, shut_n = 0;
        for (size_t m = i; m < j && shut_n < over; m++)
          shut_n += (size_t)shut(g->socks[m].fd, g->socks[m].peer, port);
        atomic_fetch_add(&g->over_cap, (long long)shut_n);
        if (shut_n)
          log_warn("%s holds %zu connections without a request; closed %zu "
                   "(max_client_conns %ld)",
                   text, n, shut_n, g->cfg.max_client_conns);
      }
    }
    i = j;
  }
}

static void *guard_main(void *arg) {
  struct connguard *g = arg;
  pthread_mutex_lock(&g->mu);
  while (!g->stop) {
    struct timespec ts;
    clock_deadline_in(&ts, g->cfg.interval_ms);
    pthread_cond_timedwait(&g->cv, &g->mu, &ts);
    if (g->stop)
      break;
    pthread_mutex_unlock(&g->mu);
    scan(g);
    pthread_mutex_lock(&g->mu);
  }
  pthread_mutex_unlock(&g->mu);
  return NULL;
}

int connguard_start(const struct connguard_config *c, struct connguard **out,
                    struct reason *why) {
  *out = NULL;
  struct connguard *g = calloc(1, sizeof *g);
  if (!g)
    return ERR_NOMEM;
  g->cfg = *c;
  g->workers = calloc(WORKERS_MAX, sizeof *g->workers);
  if (!g->workers) {
    free(g);
    return ERR_NOMEM;
  }
  if (g->cfg.interval_ms <= 0)
    g->cfg.interval_ms = 250;
  pthread_mutex_init(&g->mu, NULL);
  pthread_cond_init(&g->cv, NULL);
  if (pthread_create(&g->thread, NULL, guard_main, g) != 0) {
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g->workers);
    free(g);
    return reason_set(why, ERR_NOMEM, "cannot start the connection guard");
  }
  *out = g;
  return 0;
}

void connguard_stop(struct connguard *g) {
  if (!g)
    return;
  pthread_mutex_lock(&g->mu);
  g->stop = 1;
  pthread_cond_signal(&g->cv);
  pthread_mutex_unlock(&g->mu);
  pthread_join(g->thread, NULL);
  while (g->slots) {
    struct connguard_slot *s = g->slots;
    g->slots = s->next;
    free(s);
  }
  free(g->socks);
  free(g->firsts);
  free(g->workers);
  pthread_mutex_destroy(&g->mu);
  pthread_cond_destroy(&g->cv);
  free(g);
}

int connguard_abort(const struct mg_connection *conn) {
  const struct mg_request_info *ri =
      mg_get_request_info((struct mg_connection *)conn);
  struct in_addr a;
  if (!ri || inet_pton(AF_INET, ri->remote_addr, &a) != 1)
    return -1;
  uint64_t peer = pack(a.s_addr, ri->remote_port);
  DIR *d = opendir("/proc/self/fd");
  if (!d)
    return -1;
  int done = -1;
  struct dirent *e;
  while (done && (e = readdir(d)) != NULL) {
    char *end;
    long fd = strtol(e->d_name, &end, 10);
    if (*end || fd < 3 || fd == dirfd(d) ||
        our_peer((int)fd, ri->server_port) != peer)
      continue;
    if (shut((int)fd, peer, ri->server_port))
      done = 0;
  }
  closedir(d);
  return done;
}
