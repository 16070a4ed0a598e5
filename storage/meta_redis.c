/* The Redis metadata backend (standalone, or the master a Sentinel names) on
 * hiredis 0.14: one blocking connection per thread, made lazily and dropped
 * after any error, with a 1 s back-off so a dead Redis costs nothing per
 * request. The purge subscriber runs on a thread and connection of its own.
 * Like every socket user here, it needs SIGPIPE ignored (main() does). */
#include "meta.h"

#include "core/ascii.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/random.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SENTINELS 16
#define HOST_MAX 256
#define SECRET_MAX 256
#define MASTER_MAX 128
#define WHERE_MAX (HOST_MAX + 64)
#define KEY_MAX 2048
#define CACHE_TTL_S (7L * 24 * 3600) /* cached answers are served stale */
#define TOP_TTL_S (8L * 24 * 3600)   /* a day's top list, plus slack */
#define RETRY_MS 1000                /* per thread, after a failure */
#define WARN_EVERY_MS 10000
#define SUB_POLL_MS 200  /* how soon close() stops the subscriber */
#define SUB_PING_MS 5000 /* idle subscriber probes a silent peer */
#define PURGE_MAX 4096
#define DAYS_MAX 4 /* distinct days whose top list one batch touches */

struct endpoint {
  char host[HOST_MAX];
  int port;
};

struct conn;

struct rmeta {
  struct meta base;
  int sentinel;                       /* eps are sentinels, not Redis */
  struct endpoint eps[MAX_SENTINELS]; /* standalone: eps[0] */
  size_t neps;
  char master[MASTER_MAX];                 /* Sentinel's name of the master */
  char user[SECRET_MAX], pass[SECRET_MAX]; /* AUTH; never in a reason */
  int db;
  char *prefix;
  long timeout_ms;
  pthread_key_t tls;  /* this thread's struct conn */
  pthread_mutex_t mu; /* guards conns and the purge callback */
  struct conn *conns; /* every thread's, so close() can free them */
  atomic_llong last_warn_ms;
  meta_purge_fn purge_fn;
  void *purge_arg;
  pthread_t sub_thread;
  int sub_started;
  atomic_int sub_stop;
  /* Round trips by enum meta_op, for op_stats: relaxed adds, no lock. */
  atomic_llong op_count[META_OP__COUNT];
  atomic_llong op_micros[META_OP__COUNT];
  atomic_llong op_errors[META_OP__COUNT];
};

/* One thread's connection and what it knows about its last failure. */
struct conn {
  struct rmeta *rm;
  struct conn *prev, *next;
  redisContext *ctx;
  long long failed_ms;   /* monotonic time of the last failure; 0: none */
  int short_timeout;     /* ctx's timeout is what a fresh dial left over */
  char where[WHERE_MAX]; /* host:port of ctx */
  char why[REASON_MAX];  /* the last failure, for ready() */
};

static struct rmeta *rm_of(struct meta *m) {
  return (struct rmeta *)m;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Counts one round trip begun at t0 (now_us) and whether it failed. */
static void op_note(struct rmeta *rm, enum meta_op op, long long t0,
                    int failed) {
  atomic_fetch_add_explicit(&rm->op_count[op], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&rm->op_micros[op], now_us() - t0,
                            memory_order_relaxed);
  if (failed)
    atomic_fetch_add_explicit(&rm->op_errors[op], 1, memory_order_relaxed);
}

static struct timeval tv_ms(long long ms) {
  if (ms < 1)
    ms = 1;
  struct timeval tv = {.tv_sec = (time_t)(ms / 1000),
                       .tv_usec = (suseconds_t)(ms % 1000) * 1000};
  return tv;
}

static void sleep_ms(long ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

/* --- configuration ------------------------------------------------------ */

/* Percent-decodes n bytes of a URL's user-info into out. */
static int unescape(const char *s, size_t n, char *out, size_t size) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    int ch = (unsigned char)s[i];
    if (ch == '%') {
      int hi = i + 2 < n ? ascii_hexval(s[i + 1]) : -1;
      int lo = i + 2 < n ? ascii_hexval(s[i + 2]) : -1;
      if (hi < 0 || lo < 0)
        return ERR_CONFIG;
      ch = hi * 16 + lo;
      i += 2;
    }
    if (ch == 0 || o + 1 >= size)
      return ERR_CONFIG;
    out[o++] = (char)ch;
  }
  out[o] = '\0';
  return 0;
}

static int parse_port(const char *s, size_t n, int *port) {
  if (n == 0 || n > 5)
    return ERR_CONFIG;
  long v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return ERR_CONFIG;
    v = v * 10 + (s[i] - '0');
  }
  if (v < 1 || v > 65535)
    return ERR_CONFIG;
  *port = (int)v;
  return 0;
}

/* "host:port", "[v6]:port" or "host" (default port). */
static int parse_endpoint(const char *s, size_t n, int def_port,
                          struct endpoint *ep, struct reason *why) {
  const char *host = s, *port = NULL;
  size_t hl = n;
  if (n && s[0] == '[') {
    const char *end = memchr(s, ']', n);
    if (!end)
      goto bad;
    host = s + 1;
    hl = (size_t)(end - host);
    if (end + 1 < s + n) {
      if (end[1] != ':')
        goto bad;
      port = end + 2;
    }
  } else {
    const char *colon = memchr(s, ':', n);
    if (colon) {
      hl = (size_t)(colon - s);
      port = colon + 1;
    }
  }
  if (hl == 0 || hl >= sizeof ep->host || memchr(host, '@', hl) ||
      memchr(host, ' ', hl))
    goto bad;
  memcpy(ep->host, host, hl);
  ep->host[hl] = '\0';
  ep->port = def_port;
  if (port && parse_port(port, (size_t)(s + n - port), &ep->port))
    goto bad;
  return 0;
bad:
  return reason_set(why, ERR_CONFIG,
                    "meta: bad Redis address '%.*s' (want host:port)",
                    (int)(n > 80 ? 80 : n), s);
}

/* redis://[[user]:password@]host:port[/db] and
 * redis-sentinel://[[user]:password@]host:port,host:port/mastername. */
static int parse_url(struct rmeta *rm, const char *url, struct reason *why) {
  const char *rest;
  if (strncmp(url, "redis://", 8) == 0) {
    rest = url + 8;
  } else if (strncmp(url, "redis-sentinel://", 17) == 0) {
    rest = url + 17;
    rm->sentinel = 1;
  } else {
    return reason_set(why, ERR_CONFIG,
                      "meta must start with redis:// or redis-sentinel://");
  }
  /* The last '@' ends the user-info, so a password may contain '@'. */
  const char *at = strrchr(rest, '@');
  if (at) {
    const char *colon = memchr(rest, ':', (size_t)(at - rest));
    const char *pw = colon ? colon + 1 : rest;
    if ((colon &&
         unescape(rest, (size_t)(colon - rest), rm->user, sizeof rm->user)) ||
        unescape(pw, (size_t)(at - pw), rm->pass, sizeof rm->pass))
      return reason_set(why, ERR_CONFIG,
                        "meta: the Redis user or password in the URL is "
                        "malformed or too long");
    rest = at + 1;
  }
  const char *slash = strchr(rest, '/');
  size_t hosts_len = slash ? (size_t)(slash - rest) : strlen(rest);
  const char *path = slash ? slash + 1 : "";
  if (!rm->sentinel) {
    int rc = parse_endpoint(rest, hosts_len, 6379, &rm->eps[0], why);
    if (rc)
      return rc;
    rm->neps = 1;
    if (*path) {
      char *end;
      errno = 0;
      long db = strtol(path, &end, 10);
      if (errno || *end || end == path || db < 0 || db > INT_MAX)
        return reason_set(why, ERR_CONFIG,
                          "meta: Redis database must be a number, got '%.32s'",
                          path);
      rm->db = (int)db;
    }
    return 0;
  }
  const char *p = rest, *end = rest + hosts_len;
  while (p < end) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *stop = comma ? comma : end;
    if (rm->neps == MAX_SENTINELS)
      return reason_set(why, ERR_CONFIG, "meta: more than %d sentinels",
                        MAX_SENTINELS);
    int rc =
        parse_endpoint(p, (size_t)(stop - p), 26379, &rm->eps[rm->neps], why);
    if (rc)
      return rc;
    rm->neps++;
    p = comma ? comma + 1 : end;
  }
  size_t ml = strlen(path);
  if (rm->neps == 0 || ml == 0 || ml >= sizeof rm->master ||
      strpbrk(path, "/ \t"))
    return reason_set(why, ERR_CONFIG,
                      "meta: redis-sentinel:// needs host:port[,host:port...]"
                      "/mastername");
  memcpy(rm->master, path, ml + 1);
  return 0;
}

/* --- key layout ----------------------------------------------------------- */

/* Key layout (<p> is meta_prefix, <m> the module, <v> the version):
 *   <p>{<m>}:<kind>[:<v>]       cache entry "<stored_at>\n<body>", 7 days
 *   <p>{<m>}:neg:<kind>[:<v>]   negative entry "<status> <why>", its TTL
 *   <p>{<m>}:lock:<kind>[:<v>]  fetch lock holding a random token
 *   <p>{<m>}:done:<kind>[:<v>]  completion record "<code> <why>"
 *   <p>{<m>}:idx                hash "<version>.<kind>" -> size
 *   <p>{<m>}:hits, :last        hashes <v> or "-" -> requests, unix time
 *   <p>top:<YYYYMMDD>           zset module -> requests that UTC day
 *   <p>stats                    hash hits, misses, upstream, errors
 *   <p>purge                    the purge channel */

/* Kinds a cache entry may not have: the backend's own keys live there. */
static int reserved_kind(const char *kind, size_t n) {
  static const char *const words[] = {"neg", "lock", "done",
                                      "idx", "hits", "last"};
  const char *colon = memchr(kind, ':', n);
  size_t first = colon ? (size_t)(colon - kind) : n;
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    if (strlen(words[i]) == first && memcmp(kind, words[i], first) == 0)
      return 1;
  return 0;
}

static int valid_module(const char *m, size_t n) {
  return n > 0 && !memchr(m, '{', n) && !memchr(m, '}', n) &&
         !memchr(m, '\n', n);
}

/* "<kind>:<module>[@<version>]" -> "<prefix>{<module>}:[<type>:]<kind>[:<v>]".
 * Go module paths hold no ':', so the kind runs to the last ':' before the
 * version ("neg:list:example.com/x" is kind "neg:list"), keeping every key of
 * a module in the module's hash slot. */
static int make_key(const struct rmeta *rm, const char *key, const char *type,
                    char *out, size_t size) {
  const char *at = strrchr(key, '@');
  size_t head = at ? (size_t)(at - key) : strlen(key);
  const char *colon = NULL;
  for (size_t i = head; i > 0; i--)
    if (key[i - 1] == ':') {
      colon = key + i - 1;
      break;
    }
  if (!colon || colon == key || (at && !at[1]))
    return ERR_INVALID;
  size_t kl = (size_t)(colon - key);
  const char *mod = colon + 1;
  size_t ml = (size_t)(key + head - mod);
  if (!valid_module(mod, ml) || (!type && reserved_kind(key, kl)))
    return ERR_INVALID;
  int n = snprintf(out, size, "%s{%.*s}:%s%s%.*s%s%s", rm->prefix, (int)ml, mod,
                   type ? type : "", type ? ":" : "", (int)kl, key,
                   at ? ":" : "", at ? at + 1 : "");
  return n < 0 || (size_t)n >= size ? ERR_INVALID : 0;
}

/* "<prefix>{<module>}:<what>" for the per-module hashes. */
static int module_key(const struct rmeta *rm, const char *module,
                      const char *what, char *out, size_t size) {
  if (!valid_module(module, strlen(module)))
    return ERR_INVALID;
  int n = snprintf(out, size, "%s{%s}:%s", rm->prefix, module, what);
  return n < 0 || (size_t)n >= size ? ERR_INVALID : 0;
}

static void day_of(time_t t, char out[9]) {
  struct tm tm;
  if (!gmtime_r(&t, &tm) || strftime(out, 9, "%Y%m%d", &tm) != 8)
    snprintf(out, 9, "00000000");
}

/* --- connections ---------------------------------------------------------- */

/* Copies text with any occurrence of the password masked: Redis error
 * messages are not ours to trust with secrets. */
static void scrub(const struct rmeta *rm, const char *text, size_t n, char *out,
                  size_t size) {
  size_t pl = strlen(rm->pass), o = 0;
  for (size_t i = 0; i < n && o + 1 < size;) {
    if (pl && i + pl <= n && memcmp(text + i, rm->pass, pl) == 0) {
      size_t k = size - 1 - o < 3 ? size - 1 - o : 3;
      memcpy(out + o, "***", k);
      o += k;
      i += pl;
    } else {
      char ch = text[i++];
      out[o++] = ch == '\r' || ch == '\n' ? ' ' : ch;
    }
  }
  out[o] = '\0';
}

static void warn_limited(struct rmeta *rm, const char *text) {
  long long now = now_ms(), last = atomic_load(&rm->last_warn_ms);
  if ((last == 0 || now - last >= WARN_EVERY_MS) &&
      atomic_compare_exchange_strong(&rm->last_warn_ms, &last, now))
    log_warn("meta: %s (metadata degraded; retrying every second)", text);
}

/* Connects to one endpoint within the deadline; the socket's timeouts are
 * what is left of it. */
static int dial_one(const struct endpoint *ep, long long deadline,
                    const char *role, redisContext **out, struct reason *why) {
  *out = NULL;
  long long left = deadline - now_ms();
  if (left <= 0)
    return reason_set(why, ERR_UNAVAILABLE, "%s %s:%d: timed out", role,
                      ep->host, ep->port);
  redisContext *c = redisConnectWithTimeout(ep->host, ep->port, tv_ms(left));
  if (!c)
    return reason_set(why, ERR_UNAVAILABLE, "%s %s:%d: out of memory", role,
                      ep->host, ep->port);
  if (c->err) {
    reason_set(why, ERR_UNAVAILABLE, "%s %s:%d: %s", role, ep->host, ep->port,
               c->errstr);
    redisFree(c);
    return ERR_UNAVAILABLE;
  }
  left = deadline - now_ms();
  if (left <= 0 || redisSetTimeout(c, tv_ms(left)) != REDIS_OK) {
    redisFree(c);
    return reason_set(why, ERR_UNAVAILABLE, "%s %s:%d: timed out", role,
                      ep->host, ep->port);
  }
  redisEnableKeepAlive(c);
  *out = c;
  return 0;
}

/* Asks each sentinel in turn where the master is. ERR_CONFIG when every
 * sentinel answered and none knows the name. */
/* Sentinels may require the same password as Redis (Bitnami's chart does by
 * default). One that has none answers AUTH with an error we ignore; any
 * other refusal is this sentinel's failure. */
static int sentinel_auth(const struct rmeta *rm, const struct endpoint *s,
                         redisContext *c, struct reason *why) {
  redisReply *r = rm->user[0]
                      ? redisCommand(c, "AUTH %s %s", rm->user, rm->pass)
                      : redisCommand(c, "AUTH %s", rm->pass);
  if (!r)
    return reason_set(why, ERR_UNAVAILABLE, "redis sentinel %s:%d: %s",
                      s->host, s->port, c->errstr);
  int rc = 0;
  if (r->type == REDIS_REPLY_ERROR &&
      !(r->str && (strstr(r->str, "without any password configured") ||
                   strstr(r->str, "no password is set")))) {
    char text[120];
    scrub(rm, r->str, r->len, text, sizeof text);
    rc = reason_set(why, ERR_UNAVAILABLE, "redis sentinel %s:%d: AUTH: %s",
                    s->host, s->port, text);
  }
  freeReplyObject(r);
  return rc;
}

static int ask_sentinels(const struct rmeta *rm, long long deadline,
                         struct endpoint *master, struct reason *why) {
  size_t unknown = 0;
  for (size_t i = 0; i < rm->neps; i++) {
    const struct endpoint *s = &rm->eps[i];
    /* Leave time for the next sentinel and for the master itself. */
    long long left = deadline - now_ms();
    long long mine = now_ms() + (i + 1 < rm->neps ? left / 2 : left * 2 / 3);
    redisContext *c;
    if (dial_one(s, mine, "redis sentinel", &c, why))
      continue;
    if (rm->pass[0] && sentinel_auth(rm, s, c, why)) {
      redisFree(c);
      continue;
    }
    redisReply *r =
        redisCommand(c, "SENTINEL get-master-addr-by-name %s", rm->master);
    if (!r) {
      reason_set(why, ERR_UNAVAILABLE, "redis sentinel %s:%d: %s", s->host,
                 s->port, c->errstr);
    } else if (r->type == REDIS_REPLY_NIL) {
      unknown++;
      reason_set(why, ERR_CONFIG,
                 "redis sentinel %s:%d does not know master '%s'", s->host,
                 s->port, rm->master);
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
               r->element[0]->type == REDIS_REPLY_STRING &&
               r->element[1]->type == REDIS_REPLY_STRING &&
               r->element[0]->len > 0 &&
               r->element[0]->len < sizeof master->host &&
               !memchr(r->element[0]->str, '\0', r->element[0]->len) &&
               parse_port(r->element[1]->str, r->element[1]->len,
                          &master->port) == 0) {
      memcpy(master->host, r->element[0]->str, r->element[0]->len);
      master->host[r->element[0]->len] = '\0';
      freeReplyObject(r);
      redisFree(c);
      return 0;
    } else {
      char text[120];
      scrub(rm, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply",
            r->type == REDIS_REPLY_ERROR ? r->len : 16, text, sizeof text);
      reason_set(why, ERR_UNAVAILABLE, "redis sentinel %s:%d: %s", s->host,
                 s->port, text);
    }
    if (r)
      freeReplyObject(r);
    redisFree(c);
  }
  return unknown == rm->neps ? ERR_CONFIG : ERR_UNAVAILABLE;
}

/* One command during set-up: 0, ERR_UNAVAILABLE on I/O, or `bad` with the
 * server's complaint when it answers with an error. */
static int setup_cmd(const struct rmeta *rm, redisContext *c, const char *where,
                     const char *what, int bad, struct reason *why,
                     redisReply **out, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = redisvCommand(c, fmt, ap);
  va_end(ap);
  if (!r)
    return reason_set(why, ERR_UNAVAILABLE, "redis %s: %s: %s", where, what,
                      c->errstr);
  if (r->type == REDIS_REPLY_ERROR) {
    char text[160];
    scrub(rm, r->str, r->len, text, sizeof text);
    freeReplyObject(r);
    return reason_set(why, bad, "redis %s: %s failed: %s", where, what, text);
  }
  if (out)
    *out = r;
  else
    freeReplyObject(r);
  return 0;
}

/* A ready connection to the master within the deadline: Sentinel asked
 * (afresh every time, so a failover is followed), AUTH, SELECT. */
static int dial(const struct rmeta *rm, long long deadline, redisContext **out,
                char *where, size_t wsize, struct reason *why) {
  *out = NULL;
  struct endpoint ep = rm->eps[0];
  if (rm->sentinel) {
    int rc = ask_sentinels(rm, deadline, &ep, why);
    if (rc)
      return rc;
  }
  snprintf(where, wsize, "%s:%d%s", ep.host, ep.port,
           rm->sentinel ? " (from sentinel)" : "");
  redisContext *c;
  int rc = dial_one(&ep, deadline, "redis", &c, why);
  if (rc)
    return rc;
  if (rm->pass[0] && rm->user[0])
    rc = setup_cmd(rm, c, where, "AUTH", ERR_CONFIG, why, NULL, "AUTH %s %s",
                   rm->user, rm->pass);
  else if (rm->pass[0])
    rc = setup_cmd(rm, c, where, "AUTH", ERR_CONFIG, why, NULL, "AUTH %s",
                   rm->pass);
  if (!rc && rm->db)
    rc = setup_cmd(rm, c, where, "SELECT", ERR_CONFIG, why, NULL, "SELECT %d",
                   rm->db);
  if (!rc && rm->sentinel) {
    /* Mid-failover a sentinel may still name a demoted master. */
    redisReply *r = NULL;
    rc = setup_cmd(rm, c, where, "ROLE", ERR_UNAVAILABLE, why, &r, "ROLE");
    if (!rc && !(r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                 r->element[0]->type == REDIS_REPLY_STRING &&
                 strcmp(r->element[0]->str, "master") == 0))
      rc = reason_set(why, ERR_UNAVAILABLE, "redis %s is not a master", where);
    if (r)
      freeReplyObject(r);
  }
  if (rc) {
    redisFree(c);
    return rc;
  }
  *out = c;
  return 0;
}

static void conn_free(void *p) {
  struct conn *cn = p;
  struct rmeta *rm = cn->rm;
  pthread_mutex_lock(&rm->mu);
  if (cn->prev)
    cn->prev->next = cn->next;
  else
    rm->conns = cn->next;
  if (cn->next)
    cn->next->prev = cn->prev;
  pthread_mutex_unlock(&rm->mu);
  if (cn->ctx)
    redisFree(cn->ctx);
  free(cn);
}

static struct conn *conn_of(struct rmeta *rm) {
  struct conn *cn = pthread_getspecific(rm->tls);
  if (cn)
    return cn;
  cn = calloc(1, sizeof *cn);
  if (!cn)
    return NULL;
  cn->rm = rm;
  pthread_mutex_lock(&rm->mu);
  cn->next = rm->conns;
  if (rm->conns)
    rm->conns->prev = cn;
  rm->conns = cn;
  pthread_mutex_unlock(&rm->mu);
  if (pthread_setspecific(rm->tls, cn) != 0) {
    conn_free(cn);
    return NULL;
  }
  return cn;
}

/* Frees the connection and remembers why; with backoff, this thread does
 * not dial again for RETRY_MS. */
static void conn_drop(struct conn *cn, const char *what, int backoff) {
  if (cn->ctx) {
    redisFree(cn->ctx);
    cn->ctx = NULL;
  }
  cn->short_timeout = 0;
  if (backoff) {
    long long now = now_ms();
    cn->failed_ms = now ? now : 1;
  }
  snprintf(cn->why, sizeof cn->why, "%s", what);
  warn_limited(cn->rm, what);
}

/* This thread's connection, dialled if need be; NULL when Redis is
 * unavailable (cn->why says why) or inside the back-off window. */
static redisContext *conn_get(struct rmeta *rm, struct conn **out) {
  struct conn *cn = conn_of(rm);
  *out = cn;
  if (!cn)
    return NULL;
  if (cn->ctx)
    return cn->ctx;
  long long now = now_ms();
  if (cn->failed_ms && now - cn->failed_ms < RETRY_MS)
    return NULL;
  struct reason why = {{0}};
  if (dial(rm, now + rm->timeout_ms, &cn->ctx, cn->where, sizeof cn->where,
           &why)) {
    conn_drop(cn, why.text, 1);
    return NULL;
  }
  cn->failed_ms = 0;
  cn->short_timeout = 1;
  return cn->ctx;
}

/* A fresh dial leaves the socket with what was left of the deadline; later
 * commands get the whole timeout again. */
static void conn_put(struct conn *cn) {
  if (cn && cn->ctx && cn->short_timeout) {
    redisSetTimeout(cn->ctx, tv_ms(cn->rm->timeout_ms));
    cn->short_timeout = 0;
  }
}

/* 0 for a usable reply; else ERR_UNAVAILABLE, the connection dropped when
 * it is broken or points at the wrong server. */
static int check_reply(struct conn *cn, const redisReply *r) {
  struct reason what;
  if (!r) {
    const char *e =
        cn->ctx && cn->ctx->errstr[0] ? cn->ctx->errstr : "connection lost";
    /* hiredis reports a socket timeout as EAGAIN's text. */
    if (strstr(e, "temporarily unavailable"))
      reason_set(&what, 0, "redis %s: no answer within %ld ms", cn->where,
                 cn->rm->timeout_ms);
    else
      reason_set(&what, 0, "redis %s: %s", cn->where, e);
    conn_drop(cn, what.text, 1);
    return ERR_UNAVAILABLE;
  }
  if (r->type != REDIS_REPLY_ERROR)
    return 0;
  char text[160];
  scrub(cn->rm, r->str, r->len, text, sizeof text);
  reason_set(&what, 0, "redis %s: %s", cn->where, text);
  if (strncmp(r->str, "READONLY", 8) == 0)
    conn_drop(cn, what.text, 0); /* a failover demoted it: ask Sentinel now */
  else if (strncmp(r->str, "NOAUTH", 6) == 0 ||
           strncmp(r->str, "LOADING", 7) == 0 ||
           strncmp(r->str, "MASTERDOWN", 10) == 0)
    conn_drop(cn, what.text, 1);
  else
    snprintf(cn->why, sizeof cn->why, "%s", what.text);
  return ERR_UNAVAILABLE;
}

/* Runs one command on this thread's connection: 0 with *out (free with
 * freeReplyObject) for any reply but an error, else ERR_UNAVAILABLE. */
static int cmd(struct rmeta *rm, redisReply **out, const char *fmt, ...) {
  *out = NULL;
  long long t0 = now_us();
  struct conn *cn;
  redisContext *c = conn_get(rm, &cn);
  if (!c) {
    /* Refused at once (Redis known down): an error, not a round trip. */
    atomic_fetch_add_explicit(&rm->op_errors[META_OP_COMMAND], 1,
                              memory_order_relaxed);
    return cn ? ERR_UNAVAILABLE : ERR_NOMEM;
  }
  int fresh = cn->short_timeout; /* dialled just now by conn_get */
  va_list ap, again;
  va_start(ap, fmt);
  va_copy(again, ap);
  redisReply *r = redisvCommand(c, fmt, ap);
  va_end(ap);
  /* A connection that worked before and now hits EOF or a reset most
   * likely outlived a Redis restart: dial once more at once instead of
   * failing and backing off (a timeout is not retried: that would double
   * the wait on a hung server). */
  if (!r && !fresh && !strstr(c->errstr, "temporarily unavailable")) {
    conn_drop(cn, "connection lost; redialling", 0);
    c = conn_get(rm, &cn);
    if (c)
      r = redisvCommand(c, fmt, again);
  }
  va_end(again);
  if (!c) {
    op_note(rm, META_OP_COMMAND, t0, 1);
    return ERR_UNAVAILABLE;
  }
  int rc = check_reply(cn, r);
  conn_put(cn);
  op_note(rm, META_OP_COMMAND, t0, rc != 0);
  if (rc) {
    if (r)
      freeReplyObject(r);
    return rc;
  }
  *out = r;
  return 0;
}

/* Reads n pipelined replies (kept in out[], which starts zeroed, when out
 * is not NULL). Error replies make the result ERR_UNAVAILABLE but the rest
 * are still read, so the connection stays in step. */
static int pipe_collect(struct conn *cn, size_t n, redisReply **out) {
  long long t0 = now_us(); /* appends only buffered: the trip starts here */
  struct rmeta *rm = cn->rm;
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    if (!cn->ctx) { /* an earlier reply (READONLY) dropped it */
      rc = ERR_UNAVAILABLE;
      break;
    }
    void *p = NULL;
    if (redisGetReply(cn->ctx, &p) != REDIS_OK)
      p = NULL;
    int bad = check_reply(cn, p);
    if (!p) {
      rc = ERR_UNAVAILABLE;
      break;
    }
    if (bad)
      rc = bad;
    if (out && !bad)
      out[i] = p;
    else
      freeReplyObject(p);
  }
  conn_put(cn);
  op_note(rm, META_OP_PIPELINE, t0, rc != 0);
  for (size_t j = 0; rc && out && j < n; j++)
    if (out[j]) {
      freeReplyObject(out[j]);
      out[j] = NULL;
    }
  return rc;
}

/* An append failed (out of memory): the output buffer is in an unknown
 * state, so the connection goes. */
static int append_failed(struct conn *cn) {
  conn_drop(cn, "redis: out of memory while queueing commands", 0);
  return ERR_NOMEM;
}

/* --- open and close ------------------------------------------------------- */

static void *sub_main(void *arg);

static void redis_close(struct meta *m) {
  if (!m)
    return;
  struct rmeta *rm = rm_of(m);
  if (rm->sub_started) {
    atomic_store(&rm->sub_stop, 1);
    pthread_join(rm->sub_thread, NULL);
  }
  /* Other threads' connections: their exit would free them, but the key
   * goes now. Callers close only once no thread uses the meta. */
  pthread_key_delete(rm->tls);
  pthread_mutex_lock(&rm->mu);
  struct conn *cn = rm->conns;
  while (cn) {
    struct conn *next = cn->next;
    if (cn->ctx)
      redisFree(cn->ctx);
    free(cn);
    cn = next;
  }
  rm->conns = NULL;
  pthread_mutex_unlock(&rm->mu);
  pthread_mutex_destroy(&rm->mu);
  free(rm->prefix);
  explicit_bzero(rm->pass, sizeof rm->pass);
  free(rm);
}

static int redis_open(const struct config *c, struct meta **out,
                      struct reason *why) {
  *out = NULL;
  struct rmeta *rm = calloc(1, sizeof *rm);
  if (!rm)
    return ERR_NOMEM;
  rm->base.ops = &meta_redis_ops;
  rm->timeout_ms = c->redis_timeout_ms > 0 ? c->redis_timeout_ms : 500;
  int rc = parse_url(rm, c->meta, why);
  if (rc)
    goto out_free;
  /* A password from redis_password (or its file) when the URL has none, so
   * the URL itself can live in a ConfigMap. */
  if (!rm->pass[0] && c->redis_password && c->redis_password[0]) {
    if (strlen(c->redis_password) >= sizeof rm->pass) {
      rc = reason_set(why, ERR_CONFIG, "redis_password is too long");
      goto out_free;
    }
    snprintf(rm->pass, sizeof rm->pass, "%s", c->redis_password);
  }
  rm->prefix = strdup(c->meta_prefix ? c->meta_prefix : "");
  if (!rm->prefix) {
    rc = ERR_NOMEM;
    goto out_free;
  }
  if (strlen(rm->prefix) > 256 || strpbrk(rm->prefix, "{}")) {
    /* A brace in the prefix would become the hash tag. */
    rc = reason_set(why, ERR_CONFIG,
                    "meta_prefix must be at most 256 bytes without { or }");
    goto out_prefix;
  }
  if (pthread_mutex_init(&rm->mu, NULL) != 0) {
    rc = ERR_NOMEM;
    goto out_prefix;
  }
  if (pthread_key_create(&rm->tls, conn_free) != 0) {
    rc = ERR_NOMEM;
    goto out_mutex;
  }
  /* Try once now: a wrong password, database or master name is a
   * configuration error worth refusing to start over; an unreachable Redis
   * is not (we run degraded and keep trying). */
  char where[WHERE_MAX];
  struct reason tw = {{0}};
  redisContext *ctx;
  rc = dial(rm, now_ms() + rm->timeout_ms, &ctx, where, sizeof where, &tw);
  if (rc == 0) {
    rc = setup_cmd(rm, ctx, where, "PING", ERR_UNAVAILABLE, &tw, NULL, "PING");
    if (rc && strstr(tw.text, "NOAUTH"))
      rc = ERR_CONFIG;
    redisFree(ctx);
  }
  if (rc == ERR_CONFIG) {
    reason_set(why, rc, "%s", tw.text);
    goto out_key;
  }
  if (rc)
    log_warn("meta: %s; starting without Redis until it answers", tw.text);
  *out = &rm->base;
  return 0;
out_key:
  pthread_key_delete(rm->tls);
out_mutex:
  pthread_mutex_destroy(&rm->mu);
out_prefix:
  free(rm->prefix);
out_free:
  explicit_bzero(rm->pass, sizeof rm->pass);
  free(rm);
  return rc;
}

/* --- caches --------------------------------------------------------------- */

static int redis_cache_get(struct meta *m, const char *key, struct buf *out,
                           time_t *stored_at) {
  struct rmeta *rm = rm_of(m);
  char k[KEY_MAX];
  if (make_key(rm, key, NULL, k, sizeof k))
    return ERR_INVALID;
  redisReply *r;
  int rc = cmd(rm, &r, "GET %s", k);
  if (rc)
    return rc;
  if (r->type == REDIS_REPLY_NIL) {
    rc = ERR_NOT_FOUND;
  } else if (r->type != REDIS_REPLY_STRING) {
    rc = ERR_UNAVAILABLE;
  } else {
    /* "<stored_at>\n<body>"; anything else is treated as absent so the
     * next cache_put repairs it. */
    const char *nl = memchr(r->str, '\n', r->len < 24 ? r->len : 24);
    long long at = 0;
    char num[24];
    if (nl && nl > r->str) {
      size_t nn = (size_t)(nl - r->str);
      memcpy(num, r->str, nn);
      num[nn] = '\0';
      char *end;
      errno = 0;
      at = strtoll(num, &end, 10);
      if (errno || *end || at < 0)
        nl = NULL;
    }
    if (!nl || nl == r->str) {
      rc = ERR_NOT_FOUND;
    } else {
      size_t off = (size_t)(nl - r->str) + 1;
      rc = buf_append(out, r->str + off, r->len - off);
      if (!rc && stored_at)
        *stored_at = (time_t)at;
    }
  }
  freeReplyObject(r);
  return rc;
}

static int redis_cache_put(struct meta *m, const char *key, const void *data,
                           size_t len) {
  struct rmeta *rm = rm_of(m);
  char k[KEY_MAX], nk[KEY_MAX];
  if (make_key(rm, key, NULL, k, sizeof k) ||
      make_key(rm, key, "neg", nk, sizeof nk))
    return ERR_INVALID;
  char head[24];
  int hl = snprintf(head, sizeof head, "%lld\n", (long long)time(NULL));
  char *val = malloc((size_t)hl + len);
  if (!val)
    return ERR_NOMEM;
  memcpy(val, head, (size_t)hl);
  if (len)
    memcpy(val + hl, data, len);
  struct conn *cn;
  redisContext *c = conn_get(rm, &cn);
  int rc;
  if (!c) {
    rc = cn ? ERR_UNAVAILABLE : ERR_NOMEM;
  } else if (redisAppendCommand(c, "SET %s %b EX %ld", k, val, (size_t)hl + len,
                                CACHE_TTL_S) != REDIS_OK ||
             /* A good answer replaces a remembered 404. */
             redisAppendCommand(c, "DEL %s", nk) != REDIS_OK) {
    rc = append_failed(cn);
  } else {
    rc = pipe_collect(cn, 2, NULL);
  }
  free(val);
  return rc;
}

static int redis_neg_put(struct meta *m, const char *key, int status,
                         const char *why, long ttl) {
  struct rmeta *rm = rm_of(m);
  if (ttl <= 0)
    return 0;
  if (ttl > LONG_MAX / 1000)
    ttl = LONG_MAX / 1000;
  char k[KEY_MAX];
  if (make_key(rm, key, "neg", k, sizeof k))
    return ERR_INVALID;
  char val[REASON_MAX + 16];
  snprintf(val, sizeof val, "%d %s", status, why ? why : "");
  redisReply *r;
  int rc = cmd(rm, &r, "SET %s %s PX %ld", k, val, ttl * 1000);
  if (rc)
    return rc;
  freeReplyObject(r);
  return 0;
}

/* Parses "<int> <text>" from a string reply into code and why. */
static int parse_coded(const redisReply *r, long lo, long hi, int *code,
                       struct reason *why) {
  if (r->type != REDIS_REPLY_STRING)
    return ERR_UNAVAILABLE;
  char num[24];
  const char *sp = memchr(r->str, ' ', r->len);
  size_t nn = sp ? (size_t)(sp - r->str) : r->len;
  if (nn == 0 || nn >= sizeof num)
    return ERR_NOT_FOUND;
  memcpy(num, r->str, nn);
  num[nn] = '\0';
  char *end;
  errno = 0;
  long v = strtol(num, &end, 10);
  if (errno || *end || v < lo || v > hi)
    return ERR_NOT_FOUND;
  *code = (int)v;
  if (why) {
    size_t tl = sp ? r->len - nn - 1 : 0;
    reason_set(why, 0, "%.*s", (int)(tl < REASON_MAX ? tl : REASON_MAX - 1),
               sp ? sp + 1 : "");
  }
  return 0;
}

/* GETs a "<code> <why>" record of the given type: 0, ERR_NOT_FOUND, or
 * ERR_UNAVAILABLE. */
static int get_coded(struct meta *m, const char *key, const char *type, long lo,
                     long hi, int *code, struct reason *why) {
  struct rmeta *rm = rm_of(m);
  char k[KEY_MAX];
  if (make_key(rm, key, type, k, sizeof k))
    return ERR_INVALID;
  redisReply *r;
  int rc = cmd(rm, &r, "GET %s", k);
  if (rc)
    return rc;
  rc = r->type == REDIS_REPLY_NIL ? ERR_NOT_FOUND
                                  : parse_coded(r, lo, hi, code, why);
  freeReplyObject(r);
  return rc;
}

static int redis_neg_get(struct meta *m, const char *key, int *status,
                         struct reason *why) {
  return get_coded(m, key, "neg", 100, 599, status, why);
}

static int redis_forget(struct meta *m, const char *key) {
  struct rmeta *rm = rm_of(m);
  char k[KEY_MAX], nk[KEY_MAX];
  if (make_key(rm, key, NULL, k, sizeof k) ||
      make_key(rm, key, "neg", nk, sizeof nk))
    return ERR_INVALID;
  redisReply *r;
  int rc = cmd(rm, &r, "DEL %s %s", k, nk); /* one slot: one command */
  if (rc)
    return rc;
  freeReplyObject(r);
  return 0;
}

/* --- locks ---------------------------------------------------------------- */

static const char renew_lua[] =
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
static const char release_lua[] =
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('del', KEYS[1]) else return 0 end";

static int new_token(char token[META_TOKEN_LEN]) {
  return random_hex(token, (META_TOKEN_LEN - 1) / 2);
}

static int redis_lock_take(struct meta *m, const char *key, long ttl_ms,
                           char token[META_TOKEN_LEN]) {
  struct rmeta *rm = rm_of(m);
  char k[KEY_MAX];
  if (ttl_ms <= 0 || make_key(rm, key, "lock", k, sizeof k))
    return ERR_INVALID;
  int rc = new_token(token);
  if (rc)
    return rc;
  redisReply *r;
  rc = cmd(rm, &r, "SET %s %s NX PX %ld", k, token, ttl_ms);
  if (rc)
    return rc;
  if (r->type == REDIS_REPLY_NIL)
    rc = ERR_EXISTS;
  else if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "OK") != 0)
    rc = ERR_UNAVAILABLE;
  freeReplyObject(r);
  return rc;
}

/* Runs a compare-token script: 0 when it acted, ERR_NOT_FOUND when the
 * token no longer holds the lock. */
static int token_script(struct rmeta *rm, const char *script, const char *key,
                        const char *token, long ttl_ms) {
  char k[KEY_MAX];
  if (!token || make_key(rm, key, "lock", k, sizeof k))
    return ERR_INVALID;
  redisReply *r;
  int rc = cmd(rm, &r, "EVAL %s 1 %s %s %ld", script, k, token, ttl_ms);
  if (rc)
    return rc;
  if (r->type != REDIS_REPLY_INTEGER)
    rc = ERR_UNAVAILABLE;
  else if (r->integer != 1)
    rc = ERR_NOT_FOUND;
  freeReplyObject(r);
  return rc;
}

static int redis_lock_renew(struct meta *m, const char *key, const char *token,
                            long ttl_ms) {
  if (ttl_ms <= 0)
    return ERR_INVALID;
  return token_script(rm_of(m), renew_lua, key, token, ttl_ms);
}

static int redis_lock_release(struct meta *m, const char *key,
                              const char *token) {
  return token_script(rm_of(m), release_lua, key, token, 0);
}

static int redis_lock_held(struct meta *m, const char *key) {
  struct rmeta *rm = rm_of(m);
  char k[KEY_MAX];
  if (make_key(rm, key, "lock", k, sizeof k))
    return ERR_INVALID;
  redisReply *r;
  int rc = cmd(rm, &r, "EXISTS %s", k);
  if (rc)
    return rc;
  rc = r->type == REDIS_REPLY_INTEGER ? r->integer > 0 : ERR_UNAVAILABLE;
  freeReplyObject(r);
  return rc;
}

static int redis_done_put(struct meta *m, const char *key, int code,
                          const char *why, long ttl_ms) {
  struct rmeta *rm = rm_of(m);
  char k[KEY_MAX];
  if (ttl_ms <= 0 || make_key(rm, key, "done", k, sizeof k))
    return ERR_INVALID;
  char val[REASON_MAX + 16];
  snprintf(val, sizeof val, "%d %s", code, why ? why : "");
  redisReply *r;
  int rc = cmd(rm, &r, "SET %s %s PX %ld", k, val, ttl_ms);
  if (rc)
    return rc;
  freeReplyObject(r);
  return 0;
}

static int redis_done_get(struct meta *m, const char *key, int *code,
                          struct reason *why) {
  return get_coded(m, key, "done", INT_MIN, INT_MAX, code, why);
}

/* --- committed index ------------------------------------------------------ */

static int index_field(const char *version, const char *kind, char *out,
                       size_t size) {
  if (!*version || !*kind || strchr(kind, '.'))
    return ERR_INVALID;
  int n = snprintf(out, size, "%s.%s", version, kind);
  return n < 0 || (size_t)n >= size ? ERR_INVALID : 0;
}

static int redis_index_put(struct meta *m, const char *module,
                           const char *version, const char *kind,
                           uint64_t size) {
  struct rmeta *rm = rm_of(m);
  char k[KEY_MAX], f[400];
  if (module_key(rm, module, "idx", k, sizeof k) ||
      index_field(version, kind, f, sizeof f))
    return ERR_INVALID;
  redisReply *r;
  int rc = cmd(rm, &r, "HSET %s %s %llu", k, f, (unsigned long long)size);
  if (rc)
    return rc;
  freeReplyObject(r);
  return 0;
}

static int redis_index_has(struct meta *m, const char *module,
                           const char *version, const char *kind) {
  struct rmeta *rm = rm_of(m);
  char k[KEY_MAX], f[400];
  if (module_key(rm, module, "idx", k, sizeof k) ||
      index_field(version, kind, f, sizeof f))
    return ERR_INVALID;
  redisReply *r;
  int rc = cmd(rm, &r, "HEXISTS %s %s", k, f);
  if (rc)
    return rc;
  rc = r->type == REDIS_REPLY_INTEGER ? r->integer == 1 : ERR_UNAVAILABLE;
  freeReplyObject(r);
  return rc;
}

static int redis_index_versions(struct meta *m, const char *module,
                                struct buf *out) {
  struct rmeta *rm = rm_of(m);
  char k[KEY_MAX];
  if (module_key(rm, module, "idx", k, sizeof k))
    return ERR_INVALID;
  redisReply *r;
  int rc = cmd(rm, &r, "HKEYS %s", k);
  if (rc)
    return rc;
  if (r->type != REDIS_REPLY_ARRAY)
    rc = ERR_UNAVAILABLE;
  for (size_t i = 0; !rc && i < r->elements; i++) {
    const redisReply *e = r->element[i];
    if (e->type != REDIS_REPLY_STRING || e->len <= 5 ||
        memcmp(e->str + e->len - 5, ".info", 5) != 0 ||
        memchr(e->str, '\n', e->len))
      continue;
    rc = buf_append(out, e->str, e->len - 5);
    if (!rc)
      rc = buf_append(out, "\n", 1);
  }
  freeReplyObject(r);
  return rc;
}

static int redis_version_forget(struct meta *m, const char *module,
                                const char *version) {
  struct rmeta *rm = rm_of(m);
  char k[KEY_MAX], hk[KEY_MAX], lk[KEY_MAX], fi[400], fm[400], fz[400];
  if (module_key(rm, module, "idx", k, sizeof k) ||
      module_key(rm, module, "hits", hk, sizeof hk) ||
      module_key(rm, module, "last", lk, sizeof lk) ||
      index_field(version, "info", fi, sizeof fi) ||
      index_field(version, "mod", fm, sizeof fm) ||
      index_field(version, "zip", fz, sizeof fz))
    return ERR_INVALID;
  redisReply *r;
  /* The .info entry first: the version stops being committed before its
   * other entries go. */
  int rc = cmd(rm, &r, "HDEL %s %s", k, fi);
  if (!rc) {
    freeReplyObject(r);
    rc = cmd(rm, &r, "HDEL %s %s %s", k, fm, fz);
  }
  if (!rc) {
    freeReplyObject(r);
    rc = cmd(rm, &r, "HDEL %s %s", hk, version);
  }
  if (!rc) {
    freeReplyObject(r);
    rc = cmd(rm, &r, "HDEL %s %s", lk, version);
  }
  if (!rc)
    freeReplyObject(r);
  return rc;
}

static int redis_last_access(struct meta *m, const char *module,
                             const char *version, time_t *at) {
  struct rmeta *rm = rm_of(m);
  char k[KEY_MAX];
  if (!*version || module_key(rm, module, "last", k, sizeof k))
    return ERR_INVALID;
  redisReply *r;
  int rc = cmd(rm, &r, "HGET %s %s", k, version);
  if (rc)
    return rc;
  rc = ERR_NOT_FOUND;
  if (r->type == REDIS_REPLY_STRING && r->len > 0 && r->len < 24) {
    char num[24];
    memcpy(num, r->str, r->len);
    num[r->len] = '\0';
    char *end;
    long long v = strtoll(num, &end, 10);
    if (!*end && v > 0) {
      *at = (time_t)v;
      rc = 0;
    }
  }
  freeReplyObject(r);
  return rc;
}

/* --- counters ------------------------------------------------------------- */

static int redis_hits_add(struct meta *m, const struct meta_hit *hits,
                          size_t n) {
  struct rmeta *rm = rm_of(m);
  if (n == 0)
    return 0;
  struct conn *cn;
  redisContext *c = conn_get(rm, &cn);
  if (!c)
    return cn ? ERR_UNAVAILABLE : ERR_NOMEM;
  long long hit = 0, miss = 0, up = 0, errs = 0;
  char days[DAYS_MAX][9];
  size_t ndays = 0, queued = 0;
  char hk[KEY_MAX], lk[KEY_MAX], tk[KEY_MAX];
  for (size_t i = 0; i < n; i++) {
    const struct meta_hit *h = &hits[i];
    long long reqs = h->hits + h->misses;
    hit += h->hits;
    miss += h->misses;
    up += h->upstream > 0 ? h->upstream : 0;
    errs += h->errors;
    if (module_key(rm, h->module, "hits", hk, sizeof hk) ||
        module_key(rm, h->module, "last", lk, sizeof lk))
      continue; /* a malformed module still counts in the totals */
    time_t at = h->at ? h->at : time(NULL);
    char day[9];
    day_of(at, day);
    snprintf(tk, sizeof tk, "%stop:%s", rm->prefix, day);
    size_t d = 0;
    while (d < ndays && strcmp(days[d], day) != 0)
      d++;
    if (d == ndays && ndays < DAYS_MAX)
      memcpy(days[ndays++], day, sizeof day);
    const char *v = h->version[0] ? h->version : "-";
    if (redisAppendCommand(c, "HINCRBY %s %s %lld", hk, v, reqs) != REDIS_OK ||
        redisAppendCommand(c, "HSET %s %s %lld", lk, v, (long long)at) !=
            REDIS_OK ||
        redisAppendCommand(c, "ZINCRBY %s %lld %s", tk, reqs, h->module) !=
            REDIS_OK)
      return append_failed(cn);
    queued += 3;
    if (h->user[0]) {
      snprintf(tk, sizeof tk, "%susers:%s", rm->prefix, day);
      if (redisAppendCommand(c, "ZINCRBY %s %lld %s", tk, reqs, h->user) !=
          REDIS_OK)
        return append_failed(cn);
      queued++;
    }
  }
  for (size_t d = 0; d < ndays; d++) {
    static const char *const lists[] = {"top", "users"};
    for (size_t l = 0; l < 2; l++) {
      snprintf(tk, sizeof tk, "%s%s:%s", rm->prefix, lists[l], days[d]);
      if (redisAppendCommand(c, "EXPIRE %s %ld", tk, TOP_TTL_S) != REDIS_OK)
        return append_failed(cn);
      queued++;
    }
  }
  /* The totals go as one increment per field for the whole batch. */
  static const char *const names[] = {"hits", "misses", "upstream", "errors"};
  const long long vals[] = {hit, miss, up, errs};
  snprintf(hk, sizeof hk, "%sstats", rm->prefix);
  for (size_t i = 0; i < 4; i++) {
    if (!vals[i])
      continue;
    if (redisAppendCommand(c, "HINCRBY %s %s %lld", hk, names[i], vals[i]) !=
        REDIS_OK)
      return append_failed(cn);
    queued++;
  }
  return pipe_collect(cn, queued, NULL);
}

static long long reply_number(const redisReply *r) {
  if (r->type == REDIS_REPLY_INTEGER)
    return r->integer;
  if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 30)
    return 0;
  char num[32];
  memcpy(num, r->str, r->len);
  num[r->len] = '\0';
  char *end;
  errno = 0;
  double d = strtod(num, &end); /* ZSET scores come as "3" or "3.5" */
  if (errno || *end || d != d || d < -9e18 || d > 9e18)
    return 0;
  return (long long)d;
}

static int redis_stats_get(struct meta *m, struct meta_stats *out) {
  struct rmeta *rm = rm_of(m);
  memset(out, 0, sizeof *out);
  struct conn *cn;
  redisContext *c = conn_get(rm, &cn);
  if (!c)
    return cn ? ERR_UNAVAILABLE : ERR_NOMEM;
  char sk[KEY_MAX], tk[KEY_MAX], uk[KEY_MAX], day[9];
  day_of(time(NULL), day);
  snprintf(sk, sizeof sk, "%sstats", rm->prefix);
  snprintf(tk, sizeof tk, "%stop:%s", rm->prefix, day);
  snprintf(uk, sizeof uk, "%susers:%s", rm->prefix, day);
  if (redisAppendCommand(c, "HGETALL %s", sk) != REDIS_OK ||
      redisAppendCommand(c, "ZREVRANGE %s 0 %d WITHSCORES", tk,
                         META_TOP_N - 1) != REDIS_OK ||
      redisAppendCommand(c, "ZREVRANGE %s 0 %d WITHSCORES", uk,
                         META_TOP_N - 1) != REDIS_OK)
    return append_failed(cn);
  redisReply *r[3] = {NULL, NULL, NULL};
  int rc = pipe_collect(cn, 3, r);
  if (rc)
    return rc;
  if (r[0]->type != REDIS_REPLY_ARRAY || r[0]->elements % 2 ||
      r[1]->type != REDIS_REPLY_ARRAY || r[1]->elements % 2 ||
      r[2]->type != REDIS_REPLY_ARRAY || r[2]->elements % 2) {
    rc = ERR_UNAVAILABLE;
    goto out;
  }
  for (size_t i = 0; i < r[0]->elements; i += 2) {
    const redisReply *f = r[0]->element[i];
    long long v = reply_number(r[0]->element[i + 1]);
    if (f->type != REDIS_REPLY_STRING)
      continue;
    if (strcmp(f->str, "hits") == 0)
      out->hits = v;
    else if (strcmp(f->str, "misses") == 0)
      out->misses = v;
    else if (strcmp(f->str, "upstream") == 0)
      out->upstream_fetches = v;
    else if (strcmp(f->str, "errors") == 0)
      out->errors = v;
  }
  for (size_t i = 0; i < r[1]->elements && out->ntop < META_TOP_N; i += 2) {
    const redisReply *e = r[1]->element[i];
    if (e->type != REDIS_REPLY_STRING || e->len >= sizeof out->top[0].module)
      continue;
    memcpy(out->top[out->ntop].module, e->str, e->len);
    out->top[out->ntop].module[e->len] = '\0';
    out->top[out->ntop].hits = reply_number(r[1]->element[i + 1]);
    out->ntop++;
  }
  for (size_t i = 0; i < r[2]->elements && out->nusers < META_TOP_N; i += 2) {
    const redisReply *e = r[2]->element[i];
    if (e->type != REDIS_REPLY_STRING ||
        e->len >= sizeof out->top_users[0].user)
      continue;
    memcpy(out->top_users[out->nusers].user, e->str, e->len);
    out->top_users[out->nusers].user[e->len] = '\0';
    out->top_users[out->nusers].requests = reply_number(r[2]->element[i + 1]);
    out->nusers++;
  }
out:
  for (size_t i = 0; i < 3; i++)
    freeReplyObject(r[i]);
  return rc;
}

/* --- rate limits ---------------------------------------------------------- */

/* A token bucket on Redis's own clock (TIME), so replicas with skewed
 * clocks share one refill rate. Effects replication (Redis 5+) lets a script
 * write after reading TIME. Returns {taken, milliseconds to wait}. */
static const char rate_lua[] =
    "local rate = tonumber(ARGV[1]) local burst = tonumber(ARGV[2]) "
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "local v = redis.call('HMGET', KEYS[1], 't', 'ts') "
    "local tokens = tonumber(v[1]) local ts = tonumber(v[2]) "
    "if tokens == nil or ts == nil then tokens = burst ts = now end "
    "tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000) "
    "local ok = 0 local wait = 0 "
    "if tokens >= 1 then tokens = tokens - 1 ok = 1 "
    "else wait = math.ceil((1 - tokens) * 1000 / rate) end "
    "redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(now)) "
    "redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000) "
    "return {ok, wait}";

static int redis_rate_take(struct meta *m, const char *key, double rate,
                           double burst, double *retry_s) {
  struct rmeta *rm = rm_of(m);
  if (rate <= 0 || burst < 1 || strlen(key) > 512)
    return ERR_INVALID;
  char k[KEY_MAX], num[2][32];
  snprintf(k, sizeof k, "%srate:%s", rm->prefix, key);
  snprintf(num[0], sizeof num[0], "%.6f", rate);
  snprintf(num[1], sizeof num[1], "%.6f", burst);
  redisReply *r;
  int rc = cmd(rm, &r, "EVAL %s 1 %s %s %s", rate_lua, k, num[0], num[1]);
  if (rc)
    return rc;
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
      r->element[0]->type != REDIS_REPLY_INTEGER ||
      r->element[1]->type != REDIS_REPLY_INTEGER)
    rc = ERR_UNAVAILABLE;
  else if (r->element[0]->integer != 1) {
    rc = ERR_RATE_LIMITED;
    *retry_s = (double)r->element[1]->integer / 1000.0;
  }
  freeReplyObject(r);
  return rc;
}

/* --- purges --------------------------------------------------------------- */

static int redis_purge_publish(struct meta *m, const char *prefix) {
  struct rmeta *rm = rm_of(m);
  if (strlen(prefix) > PURGE_MAX)
    return ERR_INVALID;
  redisReply *r;
  int rc = cmd(rm, &r, "PUBLISH %spurge %s", rm->prefix, prefix);
  if (rc)
    return rc;
  freeReplyObject(r);
  return 0;
}

static void sub_deliver(struct rmeta *rm, const redisReply *r) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
      r->element[0]->type != REDIS_REPLY_STRING ||
      strcmp(r->element[0]->str, "message") != 0 ||
      r->element[2]->type != REDIS_REPLY_STRING)
    return; /* subscribe confirmations and PING answers */
  const redisReply *p = r->element[2];
  if (p->len > PURGE_MAX || memchr(p->str, '\0', p->len))
    return;
  pthread_mutex_lock(&rm->mu);
  meta_purge_fn fn = rm->purge_fn;
  void *arg = rm->purge_arg;
  pthread_mutex_unlock(&rm->mu);
  if (fn)
    fn(arg, p->str); /* hiredis NUL-terminates string replies */
}

/* Writes a PING into a subscribed connection (allowed there), to learn
 * whether a silent peer is still alive. */
static int sub_ping(redisContext *c) {
  if (redisAppendCommand(c, "PING") != REDIS_OK)
    return -1;
  int done = 0;
  while (!done)
    if (redisBufferWrite(c, &done) != REDIS_OK)
      return -1;
  return 0;
}

/* The subscriber: connects (every RETRY_MS while Redis is down),
 * subscribes, and hands each message to the callback. It polls in
 * SUB_POLL_MS slices so close() stops it promptly. */
static void *sub_main(void *arg) {
  struct rmeta *rm = arg;
  redisContext *c = NULL;
  char where[WHERE_MAX], chan[KEY_MAX], what[REASON_MAX];
  snprintf(chan, sizeof chan, "%spurge", rm->prefix);
  long long next_try = 0, last_rx = 0, ping_at = 0;
  int down = 0;
  while (!atomic_load(&rm->sub_stop)) {
    long long now = now_ms();
    if (!c) {
      if (now < next_try) {
        long long wait = next_try - now;
        sleep_ms(wait < SUB_POLL_MS ? (long)wait : SUB_POLL_MS);
        continue;
      }
      next_try = now + RETRY_MS;
      struct reason why = {{0}};
      if (dial(rm, now + rm->timeout_ms, &c, where, sizeof where, &why)) {
        c = NULL;
        if (!down)
          log_warn("meta: purge subscriber: %s; retrying every second",
                   why.text);
        down = 1;
        continue;
      }
      redisSetTimeout(c, tv_ms(rm->timeout_ms));
      redisReply *r = redisCommand(c, "SUBSCRIBE %s", chan);
      int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
               r->element[0]->type == REDIS_REPLY_STRING &&
               strcmp(r->element[0]->str, "subscribe") == 0;
      if (r)
        freeReplyObject(r);
      if (!ok) {
        if (!down)
          log_warn("meta: purge subscriber: redis %s: SUBSCRIBE failed", where);
        down = 1;
        redisFree(c);
        c = NULL;
        continue;
      }
      if (down)
        log_info("meta: purge subscriber: subscribed on %s", where);
      down = 0;
      last_rx = now_ms();
      ping_at = 0;
      continue;
    }
    void *reply = NULL;
    const char *fail = NULL;
    if (redisGetReplyFromReader(c, &reply) != REDIS_OK) {
      fail = c->errstr;
    } else if (reply) {
      last_rx = now_ms();
      ping_at = 0;
      sub_deliver(rm, reply);
      freeReplyObject(reply);
      continue;
    } else if (!ping_at && now - last_rx >= SUB_PING_MS) {
      if (sub_ping(c))
        fail = c->errstr;
      ping_at = now;
    } else if (ping_at && now - ping_at >= rm->timeout_ms + SUB_POLL_MS) {
      fail = "no answer to PING";
    }
    if (!fail) {
      struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
      int pn = poll(&pfd, 1, SUB_POLL_MS);
      if (pn < 0 && errno != EINTR)
        fail = "poll failed";
      else if (pn > 0 && redisBufferRead(c) != REDIS_OK)
        fail = c->errstr[0] ? c->errstr : "connection lost";
    }
    if (fail) {
      snprintf(what, sizeof what, "%s", fail);
      log_warn("meta: purge subscriber: redis %s: %s; reconnecting", where,
               what);
      down = 1;
      redisFree(c);
      c = NULL;
      next_try = now_ms(); /* once at once, then every RETRY_MS */
    }
  }
  if (c)
    redisFree(c);
  return NULL;
}

static int redis_purge_subscribe(struct meta *m, meta_purge_fn fn, void *arg) {
  struct rmeta *rm = rm_of(m);
  pthread_mutex_lock(&rm->mu);
  rm->purge_fn = fn;
  rm->purge_arg = arg;
  pthread_mutex_unlock(&rm->mu);
  if (rm->sub_started)
    return 0; /* one subscriber; a second call only swaps the callback */
  if (pthread_create(&rm->sub_thread, NULL, sub_main, rm) != 0)
    return ERR_NOMEM;
  rm->sub_started = 1;
  return 0;
}

static int redis_ready(struct meta *m, struct reason *why) {
  struct rmeta *rm = rm_of(m);
  redisReply *r;
  int rc = cmd(rm, &r, "PING");
  if (rc) {
    struct conn *cn = pthread_getspecific(rm->tls);
    return reason_set(why, rc, "%s",
                      cn && cn->why[0] ? cn->why : "redis unavailable");
  }
  if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "PONG") != 0) {
    struct conn *cn = pthread_getspecific(rm->tls);
    rc = reason_set(why, ERR_UNAVAILABLE, "redis %s: unexpected answer to PING",
                    cn ? cn->where : "?");
  }
  freeReplyObject(r);
  return rc;
}

int meta_redis_check(const struct config *c, struct reason *why) {
  struct rmeta *rm = calloc(1, sizeof *rm);
  if (!rm)
    return ERR_NOMEM;
  int rc = parse_url(rm, c->meta, why);
  explicit_bzero(rm->pass, sizeof rm->pass);
  free(rm);
  return rc;
}

static void redis_op_stats(struct meta *m, struct meta_op_stats *out) {
  struct rmeta *rm = rm_of(m);
  for (int i = 0; i < META_OP__COUNT; i++) {
    out->count[i] =
        atomic_load_explicit(&rm->op_count[i], memory_order_relaxed);
    out->micros[i] =
        atomic_load_explicit(&rm->op_micros[i], memory_order_relaxed);
    out->errors[i] =
        atomic_load_explicit(&rm->op_errors[i], memory_order_relaxed);
  }
}

const struct meta_ops meta_redis_ops = {
    .name = "redis",
    .open = redis_open,
    .close = redis_close,
    .cache_get = redis_cache_get,
    .cache_put = redis_cache_put,
    .neg_put = redis_neg_put,
    .neg_get = redis_neg_get,
    .forget = redis_forget,
    .lock_take = redis_lock_take,
    .lock_renew = redis_lock_renew,
    .lock_release = redis_lock_release,
    .lock_held = redis_lock_held,
    .done_put = redis_done_put,
    .done_get = redis_done_get,
    .index_put = redis_index_put,
    .index_has = redis_index_has,
    .index_versions = redis_index_versions,
    .version_forget = redis_version_forget,
    .last_access = redis_last_access,
    .hits_add = redis_hits_add,
    .stats_get = redis_stats_get,
    .rate_take = redis_rate_take,
    .purge_publish = redis_purge_publish,
    .purge_subscribe = redis_purge_subscribe,
    .ready = redis_ready,
    .op_stats = redis_op_stats,
};
