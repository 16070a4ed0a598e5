/* The Redis metadata backend against real redis-server processes that this
 * test starts on free loopback ports (never skipped): every operation, the
 * key layout, locks between two replicas, expiry, counters, purges, Redis
 * hung, stopped and restarted, Sentinel, AUTH and SELECT. */
#include "test.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "storage/meta.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REDIS_BIN "/usr/bin/redis-server"
#define TIMEOUT_MS 200
#define MAX_PROCS 8

static pid_t procs[MAX_PROCS];
static char tmpdir[64];
static int main_port;

/* --- processes -------------------------------------------------------------
 */

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sa;
  int port = -1;
  if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
      getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
    port = ntohs(sa.sin_port);
  if (fd >= 0)
    close(fd);
  return port;
}

static void forget_pid(pid_t pid) {
  for (int i = 0; i < MAX_PROCS; i++)
    if (procs[i] == pid)
      procs[i] = 0;
}

/* Stops a server and reaps it; SIGKILL if SIGTERM takes over 3 s. */
static void stop_server(pid_t pid) {
  if (pid <= 0)
    return;
  kill(pid, SIGCONT);
  kill(pid, SIGTERM);
  for (int i = 0; i < 300; i++) {
    if (waitpid(pid, NULL, WNOHANG) == pid) {
      forget_pid(pid);
      return;
    }
    sleep_ms(10);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  forget_pid(pid);
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

static void cleanup_all(void) {
  for (int i = 0; i < MAX_PROCS; i++)
    if (procs[i] > 0) {
      kill(procs[i], SIGKILL);
      waitpid(procs[i], NULL, 0);
      procs[i] = 0;
    }
  if (tmpdir[0])
    nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
  tmpdir[0] = '\0';
}

/* A raw connection for checking what landed in Redis. */
static redisContext *raw_connect(int port, const char *pass) {
  struct timeval tv = {1, 0};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
  if (!c || c->err) {
    if (c)
      redisFree(c);
    return NULL;
  }
  redisSetTimeout(c, tv);
  if (pass) {
    redisReply *r = redisCommand(c, "AUTH %s", pass);
    int ok = r && r->type == REDIS_REPLY_STATUS;
    if (r)
      freeReplyObject(r);
    if (!ok) {
      redisFree(c);
      return NULL;
    }
  }
  return c;
}

static int wait_ping(int port, const char *pass) {
  for (int i = 0; i < 250; i++) {
    redisContext *c = raw_connect(port, pass);
    if (c) {
      redisReply *r = redisCommand(c, "PING");
      int ok = r && r->type == REDIS_REPLY_STATUS && !strcmp(r->str, "PONG");
      if (r)
        freeReplyObject(r);
      redisFree(c);
      if (ok)
        return 0;
    }
    sleep_ms(20);
  }
  return -1;
}

/* Starts redis-server with argv (argv[0] unused) and waits for PING. */
static pid_t spawn(char *const argv[], int port, const char *pass) {
  char log[128];
  snprintf(log, sizeof log, "%s/redis-%d.log", tmpdir, port);
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a crashed test */
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execv(REDIS_BIN, argv);
    _exit(127);
  }
  if (pid < 0)
    return -1;
  for (int i = 0; i < MAX_PROCS; i++)
    if (!procs[i]) {
      procs[i] = pid;
      break;
    }
  if (wait_ping(port, pass) != 0) {
    fprintf(stderr, "FAIL: redis-server on port %d did not answer (see %s)\n",
            port, log);
    stop_server(pid);
    return -1;
  }
  return pid;
}

static pid_t start_redis(int port, const char *requirepass) {
  char ps[16];
  snprintf(ps, sizeof ps, "%d", port);
  char *argv[20] = {"redis-server", "--port", ps,     "--bind",
                    "127.0.0.1",    "--save", "",     "--appendonly",
                    "no",           "--dir",  tmpdir, NULL};
  if (requirepass) {
    argv[11] = "--requirepass";
    argv[12] = (char *)requirepass;
  }
  return spawn(argv, port, requirepass);
}

/* --- helpers ------------------------------------------------------------- */

static long long raw_int(redisContext *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = redisvCommand(c, fmt, ap);
  va_end(ap);
  long long v = -1000;
  if (r && r->type == REDIS_REPLY_INTEGER)
    v = r->integer;
  if (r)
    freeReplyObject(r);
  return v;
}

/* A string or status reply copied into out ("" for anything else). */
static const char *raw_str(redisContext *c, char *out, size_t size,
                           const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = redisvCommand(c, fmt, ap);
  va_end(ap);
  out[0] = '\0';
  if (r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
            r->type == REDIS_REPLY_ERROR))
    snprintf(out, size, "%s", r->str);
  if (r)
    freeReplyObject(r);
  return out;
}

static int open_meta(const char *url, struct meta **m, struct reason *why) {
  struct config c;
  struct reason w = {{0}};
  *m = NULL;
  if (config_init(&c) || config_set(&c, "meta", url, "test", &w) ||
      config_set(&c, "meta_prefix", "gmt:", "test", &w) ||
      config_set(&c, "redis_timeout_ms", "200", "test", &w)) {
    fprintf(stderr, "  config: %s\n", w.text);
    config_free(&c);
    return ERR_CONFIG;
  }
  int rc = meta_open(&c, m, why);
  config_free(&c);
  return rc;
}

static char *url_for(int port, char *out, size_t size) {
  snprintf(out, size, "redis://127.0.0.1:%d", port);
  return out;
}

struct collector {
  pthread_mutex_t mu;
  int n;
  char got[16][128];
};

static void on_purge(void *arg, const char *prefix) {
  struct collector *col = arg;
  pthread_mutex_lock(&col->mu);
  if (col->n < 16)
    snprintf(col->got[col->n++], sizeof col->got[0], "%s", prefix);
  pthread_mutex_unlock(&col->mu);
}

static int collected(struct collector *col, const char *want) {
  int found = 0;
  pthread_mutex_lock(&col->mu);
  for (int i = 0; i < col->n; i++)
    found |= strcmp(col->got[i], want) == 0;
  pthread_mutex_unlock(&col->mu);
  return found;
}

static int wait_collected(struct collector *col, const char *want, long ms) {
  for (long long end = now_ms() + ms; now_ms() < end; sleep_ms(10))
    if (collected(col, want))
      return 1;
  return collected(col, want);
}

static int wait_subscribers(redisContext *raw, long want, long ms) {
  for (long long end = now_ms() + ms; now_ms() < end; sleep_ms(20)) {
    redisReply *r = redisCommand(raw, "PUBSUB NUMSUB gmt:purge");
    long long n = -1;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_INTEGER)
      n = r->element[1]->integer;
    if (r)
      freeReplyObject(r);
    if (n >= want)
      return 1;
  }
  return 0;
}

static int has_line(const char *text, const char *line) {
  size_t n = strlen(line);
  for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
    if ((p == text || p[-1] == '\n') && p[n] == '\n')
      return 1;
  return 0;
}

/* --- tests ------------------------------------------------------------- */

static void test_open_errors(void) {
  static const char *bad[] = {
      "redis://127.0.0.1:notaport", "redis://127.0.0.1:0",
      "redis://127.0.0.1:6379/x",   "redis-sentinel://127.0.0.1:26379",
      "redis://:%zz@127.0.0.1:1",   "redis://[::1:6379",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct meta *m = NULL;
    struct reason why = {{0}};
    int rc = open_meta(bad[i], &m, &why);
    if (rc != ERR_CONFIG)
      fprintf(stderr, "  url %s\n", bad[i]);
    ASSERT_EQ_INT(rc, ERR_CONFIG);
    ASSERT_TRUE(m == NULL);
    ASSERT_TRUE(why.text[0] != '\0');
    meta_close(m);
  }
  /* Nothing listening: open succeeds (degraded), calls fail fast. */
  char url[64];
  int port = free_port();
  struct meta *m = NULL;
  struct reason why = {{0}};
  ASSERT_EQ_INT(open_meta(url_for(port, url, sizeof url), &m, &why), 0);
  if (!m)
    return;
  struct buf b;
  buf_init(&b, 1024);
  long long t0 = now_ms();
  ASSERT_EQ_INT(m->ops->cache_get(m, "list:example.com/x", &b, NULL),
                ERR_UNAVAILABLE);
  ASSERT_EQ_INT(m->ops->ready(m, &why), ERR_UNAVAILABLE);
  char hp[32];
  snprintf(hp, sizeof hp, "127.0.0.1:%d", port);
  ASSERT_TRUE(strstr(why.text, hp) != NULL);
  ASSERT_TRUE(now_ms() - t0 < 2 * TIMEOUT_MS);
  buf_free(&b);
  meta_close(m);
}

static void test_cache(struct meta *m, redisContext *raw) {
  char s[256];
  const char *body = "v1.0.0\nv1.1.0\n";
  time_t t0 = time(NULL);
  ASSERT_EQ_INT(m->ops->cache_put(m, "list:example.com/x", body, strlen(body)),
                0);
  struct buf b;
  buf_init(&b, 1 << 20);
  time_t at = 0;
  ASSERT_EQ_INT(m->ops->cache_get(m, "list:example.com/x", &b, &at), 0);
  ASSERT_EQ_STR(buf_cstr(&b), body);
  ASSERT_TRUE(at >= t0 && at <= time(NULL));

  /* Hash-tagged name and a long TTL, so the entry outlives list_ttl. */
  ASSERT_EQ_INT(raw_int(raw, "EXISTS gmt:{example.com/x}:list"), 1);
  long long ttl = raw_int(raw, "TTL gmt:{example.com/x}:list");
  ASSERT_TRUE(ttl > 6 * 24 * 3600 && ttl <= 7 * 24 * 3600);
  raw_str(raw, s, sizeof s, "GET gmt:{example.com/x}:list");
  ASSERT_EQ_STR(s + strcspn(s, "\n"), "\nv1.0.0\nv1.1.0\n");

  /* Stale: stored long ago, still returned with its age. */
  ASSERT_EQ_STR(raw_str(raw, s, sizeof s,
                        "SET gmt:{example.com/x}:latest %s EX 600",
                        "1000\n{\"Version\":\"v1.1.0\"}"),
                "OK");
  buf_reset(&b);
  ASSERT_EQ_INT(m->ops->cache_get(m, "latest:example.com/x", &b, &at), 0);
  ASSERT_EQ_INT(at, 1000);
  ASSERT_EQ_STR(buf_cstr(&b), "{\"Version\":\"v1.1.0\"}");

  /* Binary bodies survive; versions go after the last '@'. */
  ASSERT_EQ_INT(m->ops->cache_put(m, "query:example.com/x@a@b", "a\0b\nc", 5),
                0);
  buf_reset(&b);
  ASSERT_EQ_INT(m->ops->cache_get(m, "query:example.com/x@a@b", &b, NULL), 0);
  ASSERT_EQ_INT(b.len, 5);
  ASSERT_TRUE(b.len == 5 && memcmp(b.data, "a\0b\nc", 5) == 0);
  ASSERT_EQ_INT(raw_int(raw, "EXISTS gmt:{example.com/x@a}:query:b"), 1);
  ASSERT_EQ_INT(m->ops->cache_put(m, "sumdb-latest:sum.golang.org", "x", 1), 0);
  ASSERT_EQ_INT(raw_int(raw, "EXISTS gmt:{sum.golang.org}:sumdb-latest"), 1);

  /* Empty body, absent keys, a body over the caller's cap. */
  ASSERT_EQ_INT(m->ops->cache_put(m, "list:example.com/empty", "", 0), 0);
  buf_reset(&b);
  ASSERT_EQ_INT(m->ops->cache_get(m, "list:example.com/empty", &b, NULL), 0);
  ASSERT_EQ_INT(b.len, 0);
  ASSERT_EQ_INT(m->ops->cache_get(m, "list:example.com/none", &b, NULL),
                ERR_NOT_FOUND);
  struct buf small;
  buf_init(&small, 3);
  ASSERT_EQ_INT(m->ops->cache_get(m, "list:example.com/x", &small, NULL),
                ERR_TOO_LARGE);
  buf_free(&small);

  /* A value that is not ours reads as absent. */
  raw_str(raw, s, sizeof s, "SET gmt:{example.com/junk}:list garbage");
  ASSERT_EQ_INT(m->ops->cache_get(m, "list:example.com/junk", &b, NULL),
                ERR_NOT_FOUND);
  raw_str(raw, s, sizeof s, "HSET gmt:{example.com/junk}:latest a b");
  ASSERT_EQ_INT(m->ops->cache_get(m, "latest:example.com/junk", &b, NULL),
                ERR_UNAVAILABLE);

  /* Malformed keys and kinds the backend keeps for itself. */
  ASSERT_EQ_INT(m->ops->cache_put(m, "nocolon", "x", 1), ERR_INVALID);
  ASSERT_EQ_INT(m->ops->cache_put(m, "list:", "x", 1), ERR_INVALID);
  ASSERT_EQ_INT(m->ops->cache_put(m, "list:ex{a}mple", "x", 1), ERR_INVALID);
  ASSERT_EQ_INT(m->ops->cache_put(m, "lock:example.com/x", "x", 1),
                ERR_INVALID);
  ASSERT_EQ_INT(m->ops->cache_put(m, "hits:example.com/x", "x", 1),
                ERR_INVALID);
  ASSERT_EQ_INT(m->ops->cache_put(m, "v:example.com/x@", "x", 1), ERR_INVALID);

  /* Every key of the module shares the tag. */
  redisReply *r = redisCommand(raw, "KEYS *example.com/x*");
  ASSERT_TRUE(r && r->type == REDIS_REPLY_ARRAY && r->elements >= 2);
  for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
    ASSERT_TRUE(strncmp(r->element[i]->str, "gmt:{example.com/x", 18) == 0);
  if (r)
    freeReplyObject(r);
  buf_free(&b);
}

static void test_neg(struct meta *m, redisContext *raw) {
  int status = 0;
  struct reason why = {{0}};
  const char *k = "neg:list:example.com/y";
  ASSERT_EQ_INT(m->ops->neg_get(m, k, &status, &why), ERR_NOT_FOUND);
  ASSERT_EQ_INT(m->ops->neg_put(m, k, 404, "not found: example.com/y", 1), 0);
  ASSERT_EQ_INT(m->ops->neg_get(m, k, &status, &why), 0);
  ASSERT_EQ_INT(status, 404);
  ASSERT_EQ_STR(why.text, "not found: example.com/y");
  ASSERT_EQ_INT(raw_int(raw, "EXISTS gmt:{example.com/y}:neg:neg:list"), 1);
  long long pttl = raw_int(raw, "PTTL gmt:{example.com/y}:neg:neg:list");
  ASSERT_TRUE(pttl > 0 && pttl <= 1000);

  /* A version's 410, then a good answer replaces it. */
  const char *vk = "v:example.com/y@v9.9.9";
  ASSERT_EQ_INT(m->ops->neg_put(m, vk, 410, "gone", 60), 0);
  ASSERT_EQ_INT(raw_int(raw, "EXISTS gmt:{example.com/y}:neg:v:v9.9.9"), 1);
  ASSERT_EQ_INT(m->ops->neg_get(m, vk, &status, NULL), 0);
  ASSERT_EQ_INT(status, 410);
  ASSERT_EQ_INT(m->ops->cache_put(m, vk, "{}", 2), 0);
  ASSERT_EQ_INT(m->ops->neg_get(m, vk, &status, &why), ERR_NOT_FOUND);

  /* forget drops both the entry and its negative twin. */
  const char *lk = "list:example.com/y";
  ASSERT_EQ_INT(m->ops->cache_put(m, lk, "v1\n", 3), 0);
  ASSERT_EQ_INT(m->ops->neg_put(m, lk, 404, "nope", 60), 0);
  ASSERT_EQ_INT(m->ops->forget(m, lk), 0);
  struct buf b;
  buf_init(&b, 1024);
  ASSERT_EQ_INT(m->ops->cache_get(m, lk, &b, NULL), ERR_NOT_FOUND);
  ASSERT_EQ_INT(m->ops->neg_get(m, lk, &status, &why), ERR_NOT_FOUND);
  ASSERT_EQ_INT(raw_int(raw, "EXISTS gmt:{example.com/y}:list "
                             "gmt:{example.com/y}:neg:list"),
                0);
  buf_free(&b);

  /* A zero TTL stores nothing. */
  ASSERT_EQ_INT(m->ops->neg_put(m, "list:example.com/z0", 404, "x", 0), 0);
  ASSERT_EQ_INT(m->ops->neg_get(m, "list:example.com/z0", &status, &why),
                ERR_NOT_FOUND);

  /* The 1 s entry expires. */
  sleep_ms(1100);
  ASSERT_EQ_INT(m->ops->neg_get(m, k, &status, &why), ERR_NOT_FOUND);
}

static int all_hex(const char *t) {
  if (strlen(t) != 32)
    return 0;
  for (; *t; t++)
    if (!strchr("0123456789abcdef", *t))
      return 0;
  return 1;
}

static void test_locks(struct meta *m1, struct meta *m2, redisContext *raw) {
  const char *k = "fetch:example.com/z@v1.0.0";
  const char *rk = "gmt:{example.com/z}:lock:fetch:v1.0.0";
  char t1[META_TOKEN_LEN], t2[META_TOKEN_LEN], s[128];
  ASSERT_EQ_INT(m1->ops->lock_held(m1, k), 0);
  ASSERT_EQ_INT(m1->ops->lock_take(m1, k, 5000, t1), 0);
  ASSERT_TRUE(all_hex(t1));
  ASSERT_EQ_STR(raw_str(raw, s, sizeof s, "GET %s", rk), t1);
  ASSERT_EQ_INT(m2->ops->lock_take(m2, k, 5000, t2), ERR_EXISTS);
  ASSERT_EQ_INT(m1->ops->lock_held(m1, k), 1);
  ASSERT_EQ_INT(m2->ops->lock_held(m2, k), 1);

  /* Renewal only by the holder. */
  ASSERT_EQ_INT(
      m2->ops->lock_renew(m2, k, "00000000000000000000000000000000", 60000),
      ERR_NOT_FOUND);
  ASSERT_TRUE(raw_int(raw, "PTTL %s", rk) <= 5000);
  ASSERT_EQ_INT(m1->ops->lock_renew(m1, k, t1, 60000), 0);
  ASSERT_TRUE(raw_int(raw, "PTTL %s", rk) > 30000);

  /* Release with the wrong token leaves it; the right one frees it. */
  ASSERT_EQ_INT(m2->ops->lock_release(m2, k, "not-the-token"), ERR_NOT_FOUND);
  ASSERT_EQ_INT(m2->ops->lock_held(m2, k), 1);
  ASSERT_EQ_STR(raw_str(raw, s, sizeof s, "GET %s", rk), t1);
  ASSERT_EQ_INT(m1->ops->lock_release(m1, k, t1), 0);
  ASSERT_EQ_INT(m2->ops->lock_held(m2, k), 0);

  /* A dead holder's lock expires and another replica takes it. */
  ASSERT_EQ_INT(m1->ops->lock_take(m1, k, 150, t1), 0);
  ASSERT_EQ_INT(m2->ops->lock_take(m2, k, 5000, t2), ERR_EXISTS);
  sleep_ms(250);
  ASSERT_EQ_INT(m2->ops->lock_held(m2, k), 0);
  ASSERT_EQ_INT(m2->ops->lock_take(m2, k, 5000, t2), 0);
  ASSERT_TRUE(strcmp(t1, t2) != 0);
  ASSERT_EQ_INT(m1->ops->lock_renew(m1, k, t1, 5000), ERR_NOT_FOUND);
  ASSERT_EQ_INT(m1->ops->lock_release(m1, k, t1), ERR_NOT_FOUND);
  ASSERT_EQ_STR(raw_str(raw, s, sizeof s, "GET %s", rk), t2);
  ASSERT_EQ_INT(m2->ops->lock_release(m2, k, t2), 0);
  ASSERT_EQ_INT(m1->ops->lock_take(m1, k, 0, t1), ERR_INVALID);
}

static void test_done(struct meta *m1, struct meta *m2, redisContext *raw) {
  const char *k = "fetch:example.com/z@v1.0.0";
  int code = 0;
  struct reason why = {{0}};
  ASSERT_EQ_INT(m2->ops->done_get(m2, k, &code, &why), ERR_NOT_FOUND);
  ASSERT_EQ_INT(m1->ops->done_put(m1, k, 1, "", 5000), 0);
  ASSERT_EQ_INT(m2->ops->done_get(m2, k, &code, &why), 0);
  ASSERT_EQ_INT(code, 1);
  ASSERT_EQ_STR(why.text, "");
  ASSERT_EQ_INT(m1->ops->done_put(m1, k, ERR_UPSTREAM,
                                  "upstream answered 500 for v1.0.0", 5000),
                0);
  ASSERT_EQ_INT(m2->ops->done_get(m2, k, &code, &why), 0);
  ASSERT_EQ_INT(code, ERR_UPSTREAM);
  ASSERT_EQ_STR(why.text, "upstream answered 500 for v1.0.0");
  ASSERT_EQ_INT(raw_int(raw, "EXISTS gmt:{example.com/z}:done:fetch:v1.0.0"),
                1);
  ASSERT_EQ_INT(m1->ops->done_put(m1, k, 0, "", 100), 0);
  ASSERT_EQ_INT(m2->ops->done_get(m2, k, &code, NULL), 0);
  ASSERT_EQ_INT(code, 0);
  sleep_ms(200);
  ASSERT_EQ_INT(m2->ops->done_get(m2, k, &code, &why), ERR_NOT_FOUND);
}

static void test_index(struct meta *m, redisContext *raw) {
  const char *mod = "example.com/i";
  char s[64];
  ASSERT_EQ_INT(m->ops->index_has(m, mod, "v1.0.0", "info"), 0);
  ASSERT_EQ_INT(m->ops->index_put(m, mod, "v1.0.0", "zip", 123456789012ull), 0);
  ASSERT_EQ_INT(m->ops->index_put(m, mod, "v1.0.0", "mod", 40), 0);
  ASSERT_EQ_INT(m->ops->index_put(m, mod, "v1.0.0", "info", 50), 0);
  ASSERT_EQ_INT(m->ops->index_put(m, mod, "v1.1.0", "mod", 41), 0);
  ASSERT_EQ_INT(m->ops->index_put(m, mod, "v2.0.0+incompatible", "info", 9), 0);
  ASSERT_EQ_INT(m->ops->index_put(m, mod, "v1.2.3-pre.1", "info", 9), 0);
  ASSERT_EQ_INT(m->ops->index_has(m, mod, "v1.0.0", "zip"), 1);
  ASSERT_EQ_INT(m->ops->index_has(m, mod, "v1.1.0", "mod"), 1);
  ASSERT_EQ_INT(m->ops->index_has(m, mod, "v1.1.0", "info"), 0);
  ASSERT_EQ_STR(
      raw_str(raw, s, sizeof s, "HGET gmt:{example.com/i}:idx v1.0.0.zip"),
      "123456789012");
  struct buf b;
  buf_init(&b, 4096);
  ASSERT_EQ_INT(m->ops->index_versions(m, mod, &b), 0);
  const char *t = buf_cstr(&b);
  ASSERT_TRUE(has_line(t, "v1.0.0"));
  ASSERT_TRUE(has_line(t, "v2.0.0+incompatible"));
  ASSERT_TRUE(has_line(t, "v1.2.3-pre.1"));
  ASSERT_FALSE(has_line(t, "v1.1.0"));
  ASSERT_EQ_INT(b.len, strlen("v1.0.0\nv2.0.0+incompatible\nv1.2.3-pre.1\n"));
  buf_reset(&b);
  ASSERT_EQ_INT(m->ops->index_versions(m, "example.com/none", &b), 0);
  ASSERT_EQ_INT(b.len, 0);
  struct buf tiny;
  buf_init(&tiny, 8);
  ASSERT_EQ_INT(m->ops->index_versions(m, mod, &tiny), ERR_TOO_LARGE);
  buf_free(&tiny);
  ASSERT_EQ_INT(m->ops->index_put(m, mod, "v1.0.0", "in.fo", 1), ERR_INVALID);
  ASSERT_EQ_INT(m->ops->index_put(m, "bad{mod}", "v1.0.0", "info", 1),
                ERR_INVALID);
  buf_free(&b);
}

static struct meta_hit mk_hit(const char *mod, const char *ver, int hit, int up,
                              int err) {
  struct meta_hit h;
  memset(&h, 0, sizeof h);
  snprintf(h.module, sizeof h.module, "%s", mod);
  snprintf(h.version, sizeof h.version, "%s", ver);
  h.hits = hit != 0;
  h.misses = hit == 0;
  h.upstream = up;
  h.errors = err != 0;
  h.at = time(NULL);
  return h;
}

static void test_counters(struct meta *m1, struct meta *m2, redisContext *raw) {
  struct meta_stats st;
  ASSERT_EQ_INT(m1->ops->stats_get(m1, &st), 0);
  ASSERT_EQ_INT(st.hits + st.misses + st.upstream_fetches + st.errors, 0);
  ASSERT_EQ_INT(st.ntop, 0);
  struct meta_hit h[9];
  h[0] = mk_hit("example.com/a", "v1.0.0", 1, 0, 0);
  h[1] = mk_hit("example.com/a", "v1.0.0", 1, 0, 0);
  h[2] = mk_hit("example.com/a", "", 1, 0, 0);
  for (int i = 3; i < 8; i++)
    h[i] = mk_hit("example.com/b", "v0.1.0", 0, 1, i == 7);
  h[8] = mk_hit("example.com/c", "v3.0.0", 1, 0, 0);
  ASSERT_EQ_INT(m1->ops->hits_add(m1, h, 9), 0);
  ASSERT_EQ_INT(m1->ops->hits_add(m1, h, 0), 0);
  ASSERT_EQ_INT(m2->ops->stats_get(m2, &st), 0);
  ASSERT_EQ_INT(st.hits, 4);
  ASSERT_EQ_INT(st.misses, 5);
  ASSERT_EQ_INT(st.upstream_fetches, 5);
  ASSERT_EQ_INT(st.errors, 1);
  ASSERT_EQ_INT(st.ntop, 3);
  ASSERT_EQ_STR(st.top[0].module, "example.com/b");
  ASSERT_EQ_INT(st.top[0].hits, 5);
  ASSERT_EQ_STR(st.top[1].module, "example.com/a");
  ASSERT_EQ_INT(st.top[1].hits, 3);
  ASSERT_EQ_STR(st.top[2].module, "example.com/c");
  ASSERT_EQ_INT(st.top[2].hits, 1);

  char s[64], day[9];
  ASSERT_EQ_STR(
      raw_str(raw, s, sizeof s, "HGET gmt:{example.com/a}:hits %s", "v1.0.0"),
      "2");
  ASSERT_EQ_STR(raw_str(raw, s, sizeof s, "HGET gmt:{example.com/a}:hits -"),
                "1");
  ASSERT_EQ_INT(raw_int(raw, "HEXISTS gmt:{example.com/a}:last v1.0.0"), 1);
  ASSERT_EQ_INT(raw_int(raw, "HEXISTS gmt:{example.com/a}:last -"), 1);
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(day, sizeof day, "%Y%m%d", &tm);
  long long ttl = raw_int(raw, "TTL gmt:top:%s", day);
  ASSERT_TRUE(ttl > 7 * 24 * 3600 && ttl <= 8 * 24 * 3600);

  /* Another replica's batch adds to the same totals and ranking. */
  struct meta_hit more[6];
  for (int i = 0; i < 6; i++)
    more[i] = mk_hit("example.com/c", "v3.0.0", 1, 0, 0);
  ASSERT_EQ_INT(m2->ops->hits_add(m2, more, 6), 0);
  ASSERT_EQ_INT(m1->ops->stats_get(m1, &st), 0);
  ASSERT_EQ_INT(st.hits, 10);
  ASSERT_EQ_STR(st.top[0].module, "example.com/c");
  ASSERT_EQ_INT(st.top[0].hits, 7);

  /* More than META_TOP_N modules: only the top ones come back. */
  struct meta_hit many[14];
  for (int i = 0; i < 14; i++) {
    char mod[32];
    snprintf(mod, sizeof mod, "example.com/m%02d", i);
    many[i] = mk_hit(mod, "v1.0.0", 1, 0, 0);
  }
  ASSERT_EQ_INT(m1->ops->hits_add(m1, many, 14), 0);
  ASSERT_EQ_INT(m1->ops->stats_get(m1, &st), 0);
  ASSERT_EQ_INT(st.ntop, META_TOP_N);
  ASSERT_EQ_STR(st.top[0].module, "example.com/c");
  ASSERT_EQ_STR(st.top[1].module, "example.com/b");
}

static void test_purge(struct meta *m1, struct meta *m2, redisContext *raw) {
  struct collector c1 = {.mu = PTHREAD_MUTEX_INITIALIZER};
  struct collector c2 = {.mu = PTHREAD_MUTEX_INITIALIZER};
  ASSERT_EQ_INT(m1->ops->purge_subscribe(m1, on_purge, &c1), 0);
  ASSERT_TRUE(wait_subscribers(raw, 1, 2000));
  ASSERT_EQ_INT(m2->ops->purge_publish(m2, "example.com/x/@v/"), 0);
  ASSERT_TRUE(wait_collected(&c1, "example.com/x/@v/", 2000));
  ASSERT_EQ_INT(m2->ops->purge_subscribe(m2, on_purge, &c2), 0);
  ASSERT_TRUE(wait_subscribers(raw, 2, 2000));
  /* The publisher hears its own purge too. */
  ASSERT_EQ_INT(m1->ops->purge_publish(m1, "example.com/y/"), 0);
  ASSERT_TRUE(wait_collected(&c1, "example.com/y/", 2000));
  ASSERT_TRUE(wait_collected(&c2, "example.com/y/", 2000));
  ASSERT_FALSE(collected(&c2, "example.com/x/@v/"));
  /* Stop both before the collectors leave scope. */
  meta_close(m1);
  meta_close(m2);
  ASSERT_TRUE(wait_subscribers(raw, 0, 2000));
  pthread_mutex_destroy(&c1.mu);
  pthread_mutex_destroy(&c2.mu);
}

static long connected_clients(redisContext *raw) {
  char info[4096];
  raw_str(raw, info, sizeof info, "INFO clients");
  const char *p = strstr(info, "connected_clients:");
  return p ? strtol(p + 18, NULL, 10) : -1;
}

struct worker {
  struct meta *m;
  int id, failures;
};

static void *worker_main(void *arg) {
  struct worker *w = arg;
  char key[64], token[META_TOKEN_LEN], val[32];
  struct buf b;
  buf_init(&b, 256);
  for (int i = 0; i < 50; i++) {
    snprintf(key, sizeof key, "list:example.com/w%d", w->id);
    int n = snprintf(val, sizeof val, "%d-%d", w->id, i);
    buf_reset(&b);
    if (w->m->ops->cache_put(w->m, key, val, (size_t)n) ||
        w->m->ops->cache_get(w->m, key, &b, NULL) ||
        strcmp(buf_cstr(&b), val) != 0)
      w->failures++;
    snprintf(key, sizeof key, "fetch:example.com/w%d@v1", w->id);
    if (w->m->ops->lock_take(w->m, key, 5000, token) ||
        w->m->ops->lock_release(w->m, key, token))
      w->failures++;
  }
  buf_free(&b);
  return NULL;
}

/* Each thread gets its own connection; it goes when the thread exits. */
static void test_threads(struct meta *m, redisContext *raw) {
  long before = connected_clients(raw);
  pthread_t th[4];
  struct worker w[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (struct worker){.m = m, .id = i};
    ASSERT_EQ_INT(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    ASSERT_EQ_INT(w[i].failures, 0);
  }
  long after = connected_clients(raw);
  for (long long end = now_ms() + 2000; after > before && now_ms() < end;
       sleep_ms(20))
    after = connected_clients(raw);
  ASSERT_TRUE(before > 0);
  ASSERT_EQ_INT(after, before);
}

/* Redis hung, then stopped: calls fail within the timeout and at once
 * during the back-off; restarted on the same port: everything resumes,
 * the purge subscriber included. */
static void test_down_and_back(void) {
  int port = free_port();
  pid_t pid = start_redis(port, NULL);
  ASSERT_TRUE(pid > 0);
  if (pid <= 0)
    return;
  char url[64], hp[32];
  url_for(port, url, sizeof url);
  snprintf(hp, sizeof hp, "127.0.0.1:%d", port);
  struct meta *m = NULL, *sub = NULL;
  struct reason why = {{0}};
  ASSERT_EQ_INT(open_meta(url, &m, &why), 0);
  ASSERT_EQ_INT(open_meta(url, &sub, &why), 0);
  redisContext *raw = raw_connect(port, NULL);
  ASSERT_TRUE(m && sub && raw);
  if (!m || !sub || !raw)
    goto out;
  struct collector col = {.mu = PTHREAD_MUTEX_INITIALIZER};
  ASSERT_EQ_INT(sub->ops->purge_subscribe(sub, on_purge, &col), 0);
  ASSERT_TRUE(wait_subscribers(raw, 1, 2000));
  redisFree(raw);
  raw = NULL;
  ASSERT_EQ_INT(m->ops->cache_put(m, "list:example.com/d", "v1\n", 3), 0);

  struct buf b;
  buf_init(&b, 1024);
  /* Hung (SIGSTOP): the command times out. */
  kill(pid, SIGSTOP);
  long long t0 = now_ms();
  ASSERT_EQ_INT(m->ops->cache_get(m, "list:example.com/d", &b, NULL),
                ERR_UNAVAILABLE);
  long long took = now_ms() - t0;
  ASSERT_TRUE(took >= TIMEOUT_MS / 2 && took < 2 * TIMEOUT_MS);
  t0 = now_ms();
  ASSERT_EQ_INT(m->ops->ready(m, &why), ERR_UNAVAILABLE);
  ASSERT_TRUE(now_ms() - t0 < 20); /* inside the back-off: no I/O */
  ASSERT_TRUE(strstr(why.text, hp) != NULL);
  kill(pid, SIGCONT);

  /* Stopped. */
  stop_server(pid);
  pid = 0;
  sleep_ms(1000); /* past the back-off, so the next call dials */
  t0 = now_ms();
  ASSERT_EQ_INT(m->ops->cache_get(m, "list:example.com/d", &b, NULL),
                ERR_UNAVAILABLE);
  ASSERT_TRUE(now_ms() - t0 < 2 * TIMEOUT_MS);
  t0 = now_ms();
  char token[META_TOKEN_LEN];
  struct meta_stats st;
  struct meta_hit h = mk_hit("example.com/d", "v1", 1, 0, 0);
  int status;
  for (int i = 0; i < 100; i++) {
    ASSERT_EQ_INT(m->ops->cache_put(m, "list:example.com/d", "x", 1),
                  ERR_UNAVAILABLE);
    ASSERT_EQ_INT(m->ops->lock_take(m, "fetch:example.com/d@v1", 1000, token),
                  ERR_UNAVAILABLE);
    ASSERT_EQ_INT(m->ops->lock_held(m, "fetch:example.com/d@v1"),
                  ERR_UNAVAILABLE);
    ASSERT_EQ_INT(m->ops->neg_get(m, "list:example.com/d", &status, NULL),
                  ERR_UNAVAILABLE);
    ASSERT_EQ_INT(m->ops->hits_add(m, &h, 1), ERR_UNAVAILABLE);
    ASSERT_EQ_INT(m->ops->stats_get(m, &st), ERR_UNAVAILABLE);
    ASSERT_EQ_INT(m->ops->purge_publish(m, "x"), ERR_UNAVAILABLE);
    ASSERT_EQ_INT(m->ops->index_has(m, "example.com/d", "v1", "info"),
                  ERR_UNAVAILABLE);
  }
  ASSERT_TRUE(now_ms() - t0 < 2 * TIMEOUT_MS); /* 800 calls cost nothing */
  ASSERT_EQ_INT(m->ops->ready(m, &why), ERR_UNAVAILABLE);
  ASSERT_TRUE(strstr(why.text, hp) != NULL);

  /* Back on the same port. */
  pid = start_redis(port, NULL);
  ASSERT_TRUE(pid > 0);
  int rc = -1;
  for (long long end = now_ms() + 3000; rc != 0 && now_ms() < end; sleep_ms(50))
    rc = m->ops->cache_put(m, "list:example.com/d", "v2\n", 3);
  ASSERT_EQ_INT(rc, 0);
  buf_reset(&b);
  ASSERT_EQ_INT(m->ops->cache_get(m, "list:example.com/d", &b, NULL), 0);
  ASSERT_EQ_STR(buf_cstr(&b), "v2\n");
  ASSERT_EQ_INT(m->ops->ready(m, &why), 0);
  int got = 0;
  for (long long end = now_ms() + 4000; !got && now_ms() < end;) {
    m->ops->purge_publish(m, "after-restart/");
    got = wait_collected(&col, "after-restart/", 200);
  }
  ASSERT_TRUE(got);
  buf_free(&b);
  meta_close(sub);
  sub = NULL;
  pthread_mutex_destroy(&col.mu);
out:
  if (raw)
    redisFree(raw);
  meta_close(sub);
  meta_close(m);
  stop_server(pid);
}

static void test_sentinel(void) {
  int p1 = free_port(), p2 = free_port(), ps = free_port(), dead = free_port();
  pid_t m1 = start_redis(p1, NULL), m2 = start_redis(p2, NULL), sp = 0;
  char conf[128], url[160], text[256];
  snprintf(conf, sizeof conf, "%s/sentinel-%d.conf", tmpdir, ps);
  FILE *f = fopen(conf, "w");
  ASSERT_TRUE(f != NULL);
  if (f) {
    fprintf(f,
            "port %d\nbind 127.0.0.1\ndir %s\n"
            "sentinel monitor gmmaster 127.0.0.1 %d 1\n"
            "sentinel down-after-milliseconds gmmaster 60000\n"
            "sentinel failover-timeout gmmaster 60000\n",
            ps, tmpdir, p1);
    fclose(f);
    char *argv[] = {"redis-server", conf, "--sentinel", NULL};
    sp = spawn(argv, ps, NULL);
  }
  ASSERT_TRUE(m1 > 0 && m2 > 0 && sp > 0);
  redisContext *r1 = raw_connect(p1, NULL), *r2 = raw_connect(p2, NULL),
               *rs = raw_connect(ps, NULL);
  struct meta *m = NULL;
  struct reason why = {{0}};
  if (!r1 || !r2 || !rs)
    goto out;

  /* The first sentinel is down: the next one answers. */
  snprintf(url, sizeof url,
           "redis-sentinel://127.0.0.1:%d,127.0.0.1:%d/gmmaster", dead, ps);
  ASSERT_EQ_INT(open_meta(url, &m, &why), 0);
  if (!m)
    goto out;
  ASSERT_EQ_INT(m->ops->cache_put(m, "list:example.com/s", "v1\n", 3), 0);
  ASSERT_EQ_INT(raw_int(r1, "EXISTS gmt:{example.com/s}:list"), 1);
  ASSERT_EQ_INT(m->ops->ready(m, &why), 0);

  /* A master no sentinel knows is a configuration error. */
  struct meta *bad = NULL;
  struct reason bw = {{0}};
  snprintf(url, sizeof url, "redis-sentinel://127.0.0.1:%d/nosuchmaster", ps);
  ASSERT_EQ_INT(open_meta(url, &bad, &bw), ERR_CONFIG);
  ASSERT_TRUE(strstr(bw.text, "nosuchmaster") != NULL);
  meta_close(bad);

  /* A failover: Sentinel now names p2 and the old master is demoted. The
   * next write meets READONLY, and the one after asks Sentinel again. */
  raw_str(rs, text, sizeof text, "SENTINEL REMOVE gmmaster");
  ASSERT_EQ_STR(raw_str(rs, text, sizeof text,
                        "SENTINEL MONITOR gmmaster 127.0.0.1 %d 1", p2),
                "OK");
  ASSERT_EQ_STR(raw_str(r1, text, sizeof text, "REPLICAOF 127.0.0.1 %d", p2),
                "OK");
  ASSERT_EQ_INT(m->ops->cache_put(m, "list:example.com/s2", "v1\n", 3),
                ERR_UNAVAILABLE);
  int rc = -1;
  for (long long end = now_ms() + 3000; rc != 0 && now_ms() < end; sleep_ms(50))
    rc = m->ops->cache_put(m, "list:example.com/s2", "v2\n", 3);
  ASSERT_EQ_INT(rc, 0);
  ASSERT_EQ_INT(raw_int(r2, "EXISTS gmt:{example.com/s2}:list"), 1);
out:
  meta_close(m);
  if (r1)
    redisFree(r1);
  if (r2)
    redisFree(r2);
  if (rs)
    redisFree(rs);
  stop_server(sp);
  stop_server(m1);
  stop_server(m2);
}

static void test_password(void) {
  int port = free_port();
  pid_t pid = start_redis(port, "s3cret-PW");
  ASSERT_TRUE(pid > 0);
  if (pid <= 0)
    return;
  char url[128], hp[32], s[64];
  snprintf(hp, sizeof hp, "127.0.0.1:%d", port);
  struct meta *m = NULL, *bad = NULL;
  struct reason why = {{0}};

  /* Right password (percent-encoded '-'), database 3. */
  snprintf(url, sizeof url, "redis://:s3cret%%2DPW@127.0.0.1:%d/3", port);
  ASSERT_EQ_INT(open_meta(url, &m, &why), 0);
  redisContext *raw = raw_connect(port, "s3cret-PW");
  ASSERT_TRUE(m && raw);
  if (!m || !raw)
    goto out;
  ASSERT_EQ_INT(m->ops->cache_put(m, "list:example.com/p", "v1\n", 3), 0);
  ASSERT_EQ_INT(raw_int(raw, "EXISTS gmt:{example.com/p}:list"), 0);
  raw_str(raw, s, sizeof s, "SELECT 3");
  ASSERT_EQ_INT(raw_int(raw, "EXISTS gmt:{example.com/p}:list"), 1);

  /* Wrong password, and none: clear errors without the secret. */
  snprintf(url, sizeof url, "redis://:wrong-PW-9@127.0.0.1:%d", port);
  ASSERT_EQ_INT(open_meta(url, &bad, &why), ERR_CONFIG);
  ASSERT_TRUE(bad == NULL);
  ASSERT_TRUE(strstr(why.text, hp) != NULL);
  ASSERT_TRUE(strstr(why.text, "AUTH") != NULL);
  ASSERT_TRUE(strstr(why.text, "wrong-PW-9") == NULL);
  fprintf(stderr, "  (wrong password says: %s)\n", why.text);
  snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
  ASSERT_EQ_INT(open_meta(url, &bad, &why), ERR_CONFIG);
  ASSERT_TRUE(strstr(why.text, "NOAUTH") != NULL);
  ASSERT_TRUE(strstr(why.text, hp) != NULL);

  /* The password changes under a running replica: ready says why. */
  raw_str(raw, s, sizeof s, "CONFIG SET requirepass new-PW-2");
  raw_int(raw, "CLIENT KILL TYPE normal SKIPME yes");
  struct buf b;
  buf_init(&b, 64);
  ASSERT_EQ_INT(m->ops->cache_get(m, "list:example.com/p", &b, NULL),
                ERR_UNAVAILABLE);
  buf_free(&b);
  sleep_ms(1050);
  ASSERT_EQ_INT(m->ops->ready(m, &why), ERR_UNAVAILABLE);
  ASSERT_TRUE(strstr(why.text, hp) != NULL);
  ASSERT_TRUE(strstr(why.text, "AUTH") != NULL);
  ASSERT_TRUE(strstr(why.text, "s3cret") == NULL);
out:
  if (raw)
    redisFree(raw);
  meta_close(m);
  stop_server(pid);
}

/* The shared server's tests, in order, on two replicas' metas. */
static struct meta *m1, *m2;
static redisContext *raw;

static void test_ops(void) {
  struct reason why = {{0}};
  ASSERT_EQ_INT(m1->ops->ready(m1, &why), 0);
  ASSERT_EQ_STR(m1->ops->name, "redis");
  test_cache(m1, raw);
}
static void test_negative(void) {
  test_neg(m1, raw);
}
static void test_lock(void) {
  test_locks(m1, m2, raw);
}
static void test_done_records(void) {
  test_done(m1, m2, raw);
}
static void test_committed_index(void) {
  test_index(m1, raw);
}
static void test_hits(void) {
  test_counters(m1, m2, raw);
}
static void test_per_thread(void) {
  test_threads(m1, raw);
}
static void test_purges(void) {
  test_purge(m1, m2, raw); /* closes both */
  m1 = m2 = NULL;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN); /* as gomirror's main() does */
  if (access(REDIS_BIN, X_OK) != 0) {
    fprintf(stderr,
            "FAIL: %s not found: install Debian's redis-server package; "
            "these tests need a real Redis\n",
            REDIS_BIN);
    return 1;
  }
  snprintf(tmpdir, sizeof tmpdir, "/tmp/gm-meta-redis-XXXXXX");
  if (!mkdtemp(tmpdir)) {
    fprintf(stderr, "FAIL: mkdtemp: %s\n", strerror(errno));
    return 1;
  }
  atexit(cleanup_all);
  main_port = free_port();
  pid_t pid = start_redis(main_port, NULL);
  if (pid <= 0) {
    fprintf(stderr, "FAIL: could not start %s\n", REDIS_BIN);
    return 1;
  }
  char url[64];
  struct reason why = {{0}};
  url_for(main_port, url, sizeof url);
  raw = raw_connect(main_port, NULL);
  if (open_meta(url, &m1, &why) || open_meta(url, &m2, &why) || !raw) {
    fprintf(stderr, "FAIL: open: %s\n", why.text);
    return 1;
  }

  RUN_TEST(test_ops);
  RUN_TEST(test_negative);
  RUN_TEST(test_lock);
  RUN_TEST(test_done_records);
  RUN_TEST(test_committed_index);
  RUN_TEST(test_hits);
  RUN_TEST(test_per_thread);
  RUN_TEST(test_purges);
  RUN_TEST(test_open_errors);
  RUN_TEST(test_down_and_back);
  RUN_TEST(test_sentinel);
  RUN_TEST(test_password);

  meta_close(m1);
  meta_close(m2);
  redisFree(raw);
  stop_server(pid);
  return test_summary();
}
