/* Direct fetches of private modules with the real go command. Every call
 * gets its own scratch GOPATH and HOME and an environment built from
 * nothing, runs in its own session (so a timeout can kill go and every git
 * or ssh it started), and leaves nothing behind. Error text is scrubbed of
 * credentials before it becomes a reason. */
#include "vcs.h"

#include "core/ascii.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "mod/private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define OUT_MAX (1024 * 1024) /* go's JSON for one module is a few KiB */
#define ERR_MAX (64 * 1024)
#define FILE_MAX (1024 * 1024) /* netrc, ssh key */
#define ENV_MAX 40

struct vcs {
  char *go; /* resolved path of the go command */
  char *patterns, *netrc, *gitconfig, *ssh_key, *insecure, *scratch, *proxy;
  char *path; /* PATH as the server started with it */
  char *deny; /* vcs_deny_hosts as given; checked by vcs_new */
  char go_version[128];
  long timeout_s, queue_timeout_s, queue_max;
  int workers, running, waiting, direct;
  pthread_mutex_t mu;
  pthread_cond_t cv; /* on CLOCK_MONOTONIC: waits are bounded */
};

/* One go command's scratch space, environment and output. */
struct call {
  struct vcs *v;
  char dir[4096];
  char *env[ENV_MAX + 1];
  size_t nenv;
  struct vcs_secrets secrets; /* from the netrc and git config */
  struct buf out, err;
  int status; /* exit code, or -signal */
  int timed_out, overflow;
};

static const char *errtext(int e, char *b, size_t n) {
  return strerror_r(e, b, n); /* GNU: may return a static string */
}

static char *dup_or_empty(const char *s) {
  return strdup(s ? s : "");
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads a whole small file; ERR_IO (errno kept) or ERR_TOO_LARGE. */
static int read_file(const char *path, struct buf *b, size_t max) {
  buf_init(b, max);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return ERR_IO;
  char tmp[8192];
  int rc = 0;
  for (;;) {
    ssize_t n = read(fd, tmp, sizeof tmp);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = ERR_IO;
      break;
    }
    if (n == 0)
      break;
    rc = buf_append(b, tmp, (size_t)n);
    if (rc)
      break;
  }
  int e = errno;
  close(fd);
  if (rc)
    buf_free(b);
  errno = e;
  return rc;
}

/* Creates path (which must not exist) with mode and the given bytes. */
static int write_file(const char *path, const void *data, size_t len,
                      mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0)
    return ERR_IO;
  const char *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      close(fd);
      return ERR_IO;
    }
    p += n;
    len -= (size_t)n;
  }
  return close(fd) ? ERR_IO : 0;
}

/* ------------------------------------------------------------ scrubbing */

/* Length of a match of secret at p (each character literal or %XX in
 * either case), or 0. */
static size_t match_secret(const char *p, const char *secret) {
  const char *s = p;
  for (const char *k = secret; *k; k++) {
    if (*s == *k) {
      s++;
      continue;
    }
    int hi = s[0] == '%' ? ascii_hexval(s[1]) : -1;
    int lo = hi >= 0 ? ascii_hexval(s[2]) : -1;
    if (lo < 0 || hi * 16 + lo != (unsigned char)*k)
      return 0;
    s += 3;
  }
  return (size_t)(s - p);
}

static int is_scheme_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
}

static int ends_authority(char c) {
  return c == '\0' || c == '/' || c == '?' || c == '#' || c == ' ' ||
         c == '\t' || c == '\n' || c == '\r' || c == '\'' || c == '"' ||
         c == '<' || c == '>' || c == '`';
}

/* Appends the authority [a, end) with its userinfo hidden: the password
 * of "user:password@", or a lone "token@" user name, except for ssh, whose
 * user name ("ssh://git@host") names an account, not a credential. */
static int put_authority(struct buf *o, int keep_user, const char *a,
                         const char *end) {
  const char *at = NULL;
  for (const char *q = a; q < end; q++)
    if (*q == '@')
      at = q;
  if (!at || (keep_user && !memchr(a, ':', (size_t)(at - a))))
    return buf_append(o, a, (size_t)(end - a));
  const char *colon = memchr(a, ':', (size_t)(at - a));
  const char *keep_to = colon ? colon + 1 : a;
  if (buf_append(o, a, (size_t)(keep_to - a)) || buf_append(o, "***", 3) ||
      buf_append(o, at, (size_t)(end - at)))
    return ERR_NOMEM;
  return 0;
}

/* The scrub itself, into a buffer: secrets first (they may sit anywhere),
 * then the userinfo of every URL. */
static int scrub_buf(const char *in, const char *const *secrets, size_t n,
                     struct buf *o) {
  struct buf t;
  buf_init(&t, (size_t)-1 / 2);
  int rc = 0;
  for (const char *p = in; !rc && *p;) {
    size_t best = 0;
    for (size_t i = 0; i < n; i++) {
      if (!secrets[i] || !secrets[i][0])
        continue;
      size_t m = match_secret(p, secrets[i]);
      if (m > best)
        best = m;
    }
    if (best) {
      rc = buf_append(&t, "***", 3);
      p += best;
    } else {
      rc = buf_append(&t, p, 1);
      p++;
    }
  }
  const char *s = buf_cstr(&t);
  for (const char *p = s; !rc && *p;) {
    const char *sep = strstr(p, "://");
    if (!sep) {
      rc = buf_append(o, p, strlen(p));
      break;
    }
    const char *scheme = sep;
    while (scheme > p && is_scheme_char(scheme[-1]))
      scheme--;
    const char *a = sep + 3, *end = a;
    while (!ends_authority(*end))
      end++;
    size_t sl = (size_t)(sep - scheme);
    int ssh = (sl == 3 && strncasecmp(scheme, "ssh", 3) == 0) ||
              (sl == 7 && strncasecmp(scheme, "git+ssh", 7) == 0);
    rc = buf_append(o, p, (size_t)(a - p));
    if (!rc)
      rc = put_authority(o, ssh, a, end);
    p = end;
  }
  buf_free(&t);
  return rc;
}

void vcs_scrub(const char *in, const char *const *secrets, size_t nsecrets,
               char *out, size_t cap) {
  if (!cap)
    return;
  struct buf o;
  buf_init(&o, (size_t)-1 / 2);
  if (scrub_buf(in ? in : "", secrets, nsecrets, &o)) {
    /* Never fall back to the unscrubbed text. */
    snprintf(out, cap, "(error text withheld: out of memory)");
  } else {
    snprintf(out, cap, "%s", buf_cstr(&o));
  }
  buf_free(&o);
}

/* ------------------------------------------------------------ netrc */

/* Next netrc token (whitespace separated, or "quoted" with \ escapes as
 * curl reads them), unescaped in place; NULL at the end. */
static char *next_token(char **pp) {
  char *p = *pp;
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
    p++;
  if (!*p) {
    *pp = p;
    return NULL;
  }
  char *tok = p, *w = p;
  if (*p == '"') {
    p++;
    while (*p && *p != '"') {
      if (*p == '\\' && p[1])
        p++;
      *w++ = *p++;
    }
    if (*p == '"')
      p++;
  } else {
    while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
      *w++ = *p++;
  }
  if (*p)
    p++;
  *w = '\0';
  *pp = p;
  return tok;
}

static int add_secret(struct vcs_secrets *s, const char *p, size_t n) {
  if (n == 0)
    return 0;
  for (size_t i = 0; i < s->n; i++)
    if (strlen(s->v[i]) == n && memcmp(s->v[i], p, n) == 0)
      return 0;
  if (s->n == s->cap) {
    size_t nc = s->cap ? s->cap * 2 : 4;
    char **nv = realloc(s->v, nc * sizeof *nv);
    if (!nv)
      return ERR_NOMEM;
    s->v = nv;
    s->cap = nc;
  }
  char *d = strndup(p, n);
  if (!d)
    return ERR_NOMEM;
  s->v[s->n++] = d;
  return 0;
}

int vcs_secrets_netrc(struct vcs_secrets *s, const char *text) {
  char *copy = strdup(text ? text : "");
  if (!copy)
    return ERR_NOMEM;
  char *p = copy;
  int rc = 0;
  for (char *tok; !rc && (tok = next_token(&p));) {
    if (strcmp(tok, "macdef") == 0) {
      /* A macro body runs to the next blank line: skip it. */
      char *e = strstr(p, "\n\n");
      p = e ? e + 2 : p + strlen(p);
      continue;
    }
    if (strcmp(tok, "password") != 0 && strcmp(tok, "account") != 0)
      continue;
    char *val = next_token(&p);
    if (!val)
      break;
    rc = add_secret(s, val, strlen(val));
  }
  free(copy);
  return rc;
}

int vcs_secrets_urls(struct vcs_secrets *s, const char *text) {
  int rc = 0;
  const char *base = text ? text : "";
  for (const char *p = base; !rc && (p = strstr(p, "://"));) {
    const char *scheme = p;
    while (scheme > base && is_scheme_char(scheme[-1]))
      scheme--;
    size_t sl = (size_t)(p - scheme);
    int ssh = (sl == 3 && strncasecmp(scheme, "ssh", 3) == 0) ||
              (sl == 7 && strncasecmp(scheme, "git+ssh", 7) == 0);
    const char *a = p + 3, *end = a;
    while (!ends_authority(*end) && *end != ']')
      end++;
    p = end;
    const char *at = NULL;
    for (const char *q = a; q < end; q++)
      if (*q == '@')
        at = q;
    if (!at)
      continue;
    const char *colon = memchr(a, ':', (size_t)(at - a));
    if (colon)
      rc = add_secret(s, colon + 1, (size_t)(at - colon - 1));
    else if (!ssh)
      rc = add_secret(s, a, (size_t)(at - a)); /* "https://TOKEN@host" */
  }
  return rc;
}

void vcs_secrets_free(struct vcs_secrets *s) {
  if (!s)
    return;
  for (size_t i = 0; i < s->n; i++)
    free(s->v[i]);
  free(s->v);
  s->v = NULL;
  s->n = s->cap = 0;
}

/* ------------------------------------------------------------ temp dirs */

static int make_writable(const char *path, const struct stat *st, int type,
                         struct FTW *f) {
  (void)f;
  /* The module cache is read-only; unlinking needs write on the parent. */
  if (type == FTW_D || type == FTW_DNR)
    chmod(path, (st->st_mode & 07777) | S_IRWXU);
  return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type,
                        struct FTW *f) {
  (void)st;
  (void)f;
  if (type == FTW_DP)
    rmdir(path);
  else
    unlink(path);
  return 0;
}

static void remove_tree(const char *dir) {
  if (!dir[0])
    return;
  nftw(dir, make_writable, 16, FTW_PHYS);
  nftw(dir, remove_entry, 16, FTW_PHYS | FTW_DEPTH);
  struct stat st;
  if (lstat(dir, &st) == 0)
    log_warn("vcs: could not remove scratch directory %s", dir);
}

/* ------------------------------------------------------------ processes */

/* A worker slot for one go command. A slow git host must not pile up
 * request threads without end: a call waits at most queue_timeout_s, and
 * when queue_max calls already wait it is turned away at once. */
static int take_slot(struct vcs *v, const char *what, struct reason *why) {
  int rc = 0;
  pthread_mutex_lock(&v->mu);
  if (v->running >= v->workers) {
    if (v->queue_max >= 0 && v->waiting >= v->queue_max) {
      rc = reason_set(why, ERR_UNAVAILABLE,
                      "%s: every version control worker is busy and the "
                      "queue is full (vcs_workers=%d, vcs_queue_max=%ld); "
                      "try again later",
                      what, v->workers, v->queue_max);
      goto out;
    }
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)v->queue_timeout_s;
    v->waiting++;
    int e = 0;
    /* After a timeout, a slot freed at that very moment is still taken. */
    while (v->running >= v->workers && e != ETIMEDOUT)
      e = pthread_cond_timedwait(&v->cv, &v->mu, &until);
    v->waiting--;
    if (v->running >= v->workers) {
      rc = reason_set(why, ERR_UNAVAILABLE,
                      "%s: no version control worker became free within "
                      "%lds (vcs_workers=%d); try again later",
                      what, v->queue_timeout_s, v->workers);
      goto out;
    }
  }
  v->running++;
out:
  pthread_mutex_unlock(&v->mu);
  return rc;
}

static void give_slot(struct vcs *v) {
  pthread_mutex_lock(&v->mu);
  v->running--;
  pthread_cond_signal(&v->cv);
  pthread_mutex_unlock(&v->mu);
}

/* Reads what fd has now into b, keeping at most b->max bytes. Returns 1 at
 * EOF (or on a read error), else 0. */
static int drain(int fd, struct buf *b, int *overflow) {
  char tmp[16384];
  for (;;) {
    ssize_t n = read(fd, tmp, sizeof tmp);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : 1;
    if (n == 0)
      return 1;
    size_t room = b->max - b->len, take = (size_t)n;
    if (take > room) {
      take = room;
      *overflow = 1;
    }
    if (take && buf_append(b, tmp, take))
      *overflow = 1;
  }
}

/* Runs argv in c's scratch dir and environment, in a new session, until it
 * exits or the deadline passes; then kills whatever is left of its process
 * group and reaps it. */
static int run(struct call *c, char *const argv[], struct reason *why) {
  int po[2] = {-1, -1}, pe[2] = {-1, -1}, rc = 0;
  char eb[128];
  if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC)) {
    rc = reason_set(why, ERR_IO, "cannot create pipes for the go command: %s",
                    errtext(errno, eb, sizeof eb));
    goto out_pipes;
  }
  fcntl(po[0], F_SETFL, O_NONBLOCK);
  fcntl(pe[0], F_SETFL, O_NONBLOCK);

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&at);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, po[1], 1);
  posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
  posix_spawn_file_actions_addchdir_np(&fa, c->dir);
  /* Nothing of the server (client and upstream sockets, other fetches'
   * spool files) reaches go, git or ssh, whatever forgot O_CLOEXEC. */
  int fe = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  /* Its own session: one kill reaches go and every git and ssh under it,
   * and ssh cannot open our terminal to ask for a passphrase. The server's
   * blocked and ignored signals must not leak into git and ssh. */
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  int sigs[] = {SIGPIPE, SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGCHLD, SIGXFSZ};
  for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
    sigaddset(&defaults, sigs[i]);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &defaults);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                    POSIX_SPAWN_SETSIGDEF);
  pid_t pid;
  int e = fe ? fe : posix_spawn(&pid, c->v->go, &fa, &at, argv, c->env);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  close(po[1]);
  close(pe[1]);
  po[1] = pe[1] = -1;
  if (e) {
    rc = reason_set(why, ERR_UPSTREAM, "cannot start the go command %s: %s",
                    c->v->go, errtext(e, eb, sizeof eb));
    goto out_pipes;
  }

  long long deadline = now_ms() + c->v->timeout_s * 1000;
  int open_out = 1, open_err = 1;
  for (;;) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    /* WNOWAIT leaves the leader a zombie, so its process group id cannot
     * be reused before the kill below. */
    int w = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT);
    int cut = 0; /* stderr past its cap is just cut short */
    if ((w == 0 && si.si_pid == pid) || (w < 0 && errno == ECHILD)) {
      if (open_out)
        drain(po[0], &c->out, &c->overflow);
      if (open_err)
        drain(pe[0], &c->err, &cut);
      break;
    }
    long long left = deadline - now_ms();
    if (left <= 0) {
      c->timed_out = 1;
      break;
    }
    struct pollfd pf[2];
    nfds_t nf = 0;
    if (open_out)
      pf[nf++] = (struct pollfd){.fd = po[0], .events = POLLIN};
    if (open_err)
      pf[nf++] = (struct pollfd){.fd = pe[0], .events = POLLIN};
    int slice = nf ? 100 : 5; /* with both pipes closed, just wait */
    poll(pf, nf, (int)(left < slice ? left : slice));
    if (open_out && drain(po[0], &c->out, &c->overflow))
      open_out = 0;
    if (open_err && drain(pe[0], &c->err, &cut))
      open_err = 0;
  }
  /* Stragglers after a normal exit, or everything after a timeout. */
  kill(-pid, SIGKILL);
  int st = 0;
  pid_t r;
  do
    r = waitpid(pid, &st, 0);
  while (r < 0 && errno == EINTR);
  if (r == pid && WIFEXITED(st))
    c->status = WEXITSTATUS(st);
  else if (r == pid && WIFSIGNALED(st))
    c->status = -WTERMSIG(st);
  else
    c->status = 0; /* reaped elsewhere (SIGCHLD ignored): trust the output */
out_pipes:
  for (int i = 0; i < 2; i++) {
    if (po[i] >= 0)
      close(po[i]);
    if (pe[i] >= 0)
      close(pe[i]);
  }
  return rc;
}

/* ------------------------------------------------------------ calls */

static int env_add(struct call *c, const char *name, const char *value) {
  if (c->nenv >= ENV_MAX)
    return ERR_NOMEM;
  struct buf b;
  buf_init(&b, 64 * 1024);
  int rc = buf_appendf(&b, "%s=%s", name, value);
  if (rc)
    return rc;
  c->env[c->nenv++] = buf_steal(&b, NULL);
  c->env[c->nenv] = NULL;
  return 0;
}

/* A POSIX-shell single-quoted word: git runs GIT_SSH_COMMAND with sh. */
static int shell_quote(struct buf *b, const char *s) {
  int rc = buf_append(b, "'", 1);
  for (; !rc && *s; s++)
    rc = *s == '\'' ? buf_append(b, "'\\''", 4) : buf_append(b, s, 1);
  return rc ? rc : buf_append(b, "'", 1);
}

static void call_free(struct call *c, int keep_dir) {
  for (size_t i = 0; i < c->nenv; i++)
    free(c->env[i]);
  c->nenv = 0;
  vcs_secrets_free(&c->secrets);
  buf_free(&c->out);
  buf_free(&c->err);
  if (!keep_dir)
    remove_tree(c->dir);
}

/* Makes the scratch dir with HOME, netrc, ssh key and git config in it, and
 * the whole environment of the go command. */
static int call_setup(struct vcs *v, struct call *c, struct reason *why) {
  char eb[128], p[4200];
  memset(c, 0, sizeof *c);
  c->v = v;
  buf_init(&c->out, OUT_MAX);
  buf_init(&c->err, ERR_MAX);
  int n = snprintf(c->dir, sizeof c->dir, "%s/gomirror-vcs-XXXXXX", v->scratch);
  if (n < 0 || (size_t)n >= sizeof c->dir - 64)
    return reason_set(why, ERR_CONFIG, "scratch directory path is too long");
  if (!mkdtemp(c->dir)) {
    int e = errno;
    c->dir[0] = '\0';
    return reason_set(why, ERR_IO,
                      "cannot create a scratch directory in %s: %s", v->scratch,
                      errtext(e, eb, sizeof eb));
  }
  const char *d = c->dir;
  int rc = 0;
  snprintf(p, sizeof p, "%s/tmp", d);
  if (mkdir(p, 0700))
    goto io;

  snprintf(p, sizeof p, "%s/.netrc", d);
  if (v->netrc[0]) {
    struct buf nb;
    if (read_file(v->netrc, &nb, FILE_MAX)) {
      log_warn("vcs: cannot read vcs_netrc %s: %s", v->netrc,
               errtext(errno, eb, sizeof eb));
      return reason_set(why, ERR_UPSTREAM, "cannot read the vcs_netrc file");
    }
    rc = write_file(p, nb.data ? nb.data : "", nb.len, 0600);
    int rs = rc ? 0 : vcs_secrets_netrc(&c->secrets, buf_cstr(&nb));
    buf_free(&nb);
    if (rc)
      goto io;
    if (rs)
      return reason_set(why, ERR_NOMEM, "out of memory");
  }
  const char *gitconfig = v->gitconfig;
  char gc[4200];
  if (gitconfig[0]) {
    /* insteadOf rewrites may carry "https://user:token@host/". */
    struct buf gb;
    if (read_file(gitconfig, &gb, FILE_MAX)) {
      log_warn("vcs: cannot read vcs_gitconfig %s: %s", gitconfig,
               errtext(errno, eb, sizeof eb));
      return reason_set(why, ERR_UPSTREAM, "cannot read the vcs_gitconfig file");
    }
    int rs = vcs_secrets_urls(&c->secrets, buf_cstr(&gb));
    buf_free(&gb);
    if (rs)
      return reason_set(why, ERR_NOMEM, "out of memory");
  } else {
    snprintf(gc, sizeof gc, "%s/gitconfig", d);
    if (write_file(gc, "", 0, 0600))
      goto io;
    gitconfig = gc;
  }
  char key[4200] = "";
  if (v->ssh_key[0]) {
    /* A copy with mode 0600: ssh ignores keys others can read, and keys
     * mounted from Kubernetes secrets are 0644 by default. */
    struct buf kb;
    if (read_file(v->ssh_key, &kb, FILE_MAX)) {
      log_warn("vcs: cannot read vcs_ssh_key %s: %s", v->ssh_key,
               errtext(errno, eb, sizeof eb));
      return reason_set(why, ERR_UPSTREAM, "cannot read the vcs_ssh_key file");
    }
    snprintf(key, sizeof key, "%s/ssh_key", d);
    rc = write_file(key, kb.data ? kb.data : "", kb.len, 0600);
    buf_free(&kb);
    if (rc)
      goto io;
  }

  char gopath[4200], modcache[4200], gocache[4200], tmp[4200], netrc[4200];
  snprintf(gopath, sizeof gopath, "%s/gopath", d);
  snprintf(modcache, sizeof modcache, "%s/gopath/pkg/mod", d);
  snprintf(gocache, sizeof gocache, "%s/gocache", d);
  snprintf(tmp, sizeof tmp, "%s/tmp", d);
  snprintf(netrc, sizeof netrc, "%s/.netrc", d);
  /* Private modules go straight to version control and nowhere else:
   * GOPROXY=off makes any other module fail instead of leaking. */
  rc = env_add(c, "PATH", v->path) || env_add(c, "HOME", d) ||
       env_add(c, "TMPDIR", tmp) || env_add(c, "GOPATH", gopath) ||
       env_add(c, "GOMODCACHE", modcache) || env_add(c, "GOCACHE", gocache) ||
       env_add(c, "GOPROXY", "off") || env_add(c, "GOPRIVATE", v->patterns) ||
       env_add(c, "GONOPROXY", v->patterns) ||
       env_add(c, "GONOSUMDB", v->patterns) ||
       env_add(c, "GOFLAGS", "-mod=mod") || env_add(c, "GO111MODULE", "on") ||
       env_add(c, "GOENV", "off") || env_add(c, "GOWORK", "off") ||
       env_add(c, "GOTOOLCHAIN", "local") || env_add(c, "CGO_ENABLED", "0") ||
       env_add(c, "LC_ALL", "C") || env_add(c, "GIT_TERMINAL_PROMPT", "0") ||
       env_add(c, "GCM_INTERACTIVE", "never") ||
       env_add(c, "GIT_CONFIG_GLOBAL", gitconfig) ||
       env_add(c, "GIT_CONFIG_NOSYSTEM", "1");
  if (!rc && v->netrc[0])
    rc = env_add(c, "NETRC", netrc);
  if (!rc && v->insecure[0])
    rc = env_add(c, "GOINSECURE", v->insecure);
  if (!rc && v->proxy[0])
    rc = env_add(c, "HTTP_PROXY", v->proxy) ||
         env_add(c, "HTTPS_PROXY", v->proxy);
  if (!rc && key[0]) {
    struct buf s;
    buf_init(&s, 64 * 1024);
    snprintf(p, sizeof p, "%s/known_hosts", d);
    rc = buf_appendf(&s, "ssh -i ") || shell_quote(&s, key) ||
         buf_appendf(&s, " -o IdentitiesOnly=yes -o BatchMode=yes"
                         " -o StrictHostKeyChecking=accept-new"
                         " -o UserKnownHostsFile=") ||
         shell_quote(&s, p);
    if (!rc)
      rc = env_add(c, "GIT_SSH_COMMAND", buf_cstr(&s));
    buf_free(&s);
  }
  if (rc)
    return reason_set(why, ERR_NOMEM, "out of memory");
  return 0;
io:
  return reason_set(why, ERR_IO, "cannot prepare scratch directory %s: %s", d,
                    errtext(errno, eb, sizeof eb));
}

/* ------------------------------------------------------------ errors */

static int has(const char *hay, const char *needle) {
  return strcasestr(hay, needle) != NULL;
}

/* Whether go's error means "this module or version does not exist" (a 404
 * for the client) rather than "the server could not find out" (a 502).
 * Credential and network trouble wins, because a host that hides private
 * repositories answers "not found" to a bad token as well. */
static int classify(const char *text) {
  static const char *const upstream[] = {"terminal prompts disabled",
                                         "authentication failed",
                                         "permission denied",
                                         "could not read username",
                                         "could not read password",
                                         "401 unauthorized",
                                         "403 forbidden",
                                         "executable file not found",
                                         "connection refused",
                                         "no such host",
                                         "i/o timeout",
                                         "timed out",
                                         "tls handshake",
                                         "certificate",
                                         "host key verification",
                                         "could not resolve",
                                         "failed to connect",
                                         "no space left"};
  static const char *const missing[] = {
      "unknown revision",          "not found",
      "no matching versions",      "does not appear to be a git repository",
      "repository does not exist", "410 gone",
      "invalid version",           "disallowed version string"};
  for (size_t i = 0; i < sizeof upstream / sizeof *upstream; i++)
    if (has(text, upstream[i]))
      return ERR_UPSTREAM;
  for (size_t i = 0; i < sizeof missing / sizeof *missing; i++)
    if (has(text, missing[i]))
      return ERR_NOT_FOUND;
  return ERR_UPSTREAM;
}

/* Turns go's multi-line error text into the one-line reason: secrets
 * scrubbed, our scratch paths shortened, progress lines dropped. */
static int fail_with(struct call *c, int code, const char *text,
                     struct reason *why) {
  struct buf s, line;
  buf_init(&s, (size_t)-1 / 2);
  buf_init(&line, (size_t)-1 / 2);
  if (scrub_buf(text, (const char *const *)c->secrets.v, c->secrets.n, &s)) {
    buf_free(&s);
    return reason_set(why, code ? code : ERR_UPSTREAM, "the go command failed");
  }
  if (code == 0)
    code = classify(buf_cstr(&s));
  const char *t = buf_cstr(&s);
  size_t dlen = strlen(c->dir);
  int rc = 0;
  while (!rc && *t) {
    const char *nl = strchr(t, '\n');
    size_t n = nl ? (size_t)(nl - t) : strlen(t);
    const char *l = t;
    t += n + (nl ? 1 : 0);
    while (n && (*l == ' ' || *l == '\t' || *l == '\r')) {
      l++;
      n--;
    }
    while (n && (l[n - 1] == ' ' || l[n - 1] == '\t' || l[n - 1] == '\r'))
      n--;
    if (!n || (n >= 16 && strncmp(l, "go: downloading ", 16) == 0) ||
        (n >= 13 && strncmp(l, "go: finding ", 12) == 0))
      continue;
    if (n >= 4 && strncmp(l, "go: ", 4) == 0) {
      l += 4;
      n -= 4;
    }
    if (line.len)
      rc = buf_append(&line, " ", 1);
    for (size_t i = 0; !rc && i < n;) {
      /* "<scratch>/gopath/pkg/mod/cache/vcs/<hash>" tells a client nothing
       * and would crowd out the message. */
      if (dlen && n - i >= dlen && memcmp(l + i, c->dir, dlen) == 0) {
        rc = buf_append(&line, "<cache>", 7);
        i += dlen;
        while (i < n && l[i] != ':' && l[i] != ' ' && l[i] != '\'' &&
               l[i] != '"')
          i++;
        continue;
      }
      char ch = (unsigned char)l[i] < 0x20 || l[i] == 0x7f ? ' ' : l[i];
      rc = buf_append(&line, &ch, 1);
      i++;
    }
  }
  const char *msg = line.len ? buf_cstr(&line) : "the go command failed";
  if (rc)
    msg = "the go command failed";
  if (strlen(msg) >= REASON_MAX)
    reason_set(why, code, "%.*s...", REASON_MAX - 4, msg);
  else
    reason_set(why, code, "%s", msg);
  buf_free(&s);
  buf_free(&line);
  return code;
}

/* Failure after the command ran: timeout, an "Error" in its JSON, or a
 * non-zero exit with stderr. */
static int run_failure(struct call *c, const char *what, json_object *obj,
                       struct reason *why) {
  if (c->timed_out)
    return reason_set(why, ERR_UPSTREAM_TIMEOUT,
                      "%s from version control timed out after %lds", what,
                      c->v->timeout_s);
  json_object *e = NULL, *inner = NULL;
  if (obj && json_object_object_get_ex(obj, "Error", &e)) {
    /* go mod download: a string; go list -e: {"Err": "..."} */
    if (json_object_is_type(e, json_type_object) &&
        json_object_object_get_ex(e, "Err", &inner))
      e = inner;
    if (json_object_is_type(e, json_type_string) &&
        json_object_get_string_len(e) > 0)
      return fail_with(c, 0, json_object_get_string(e), why);
  }
  if (c->status != 0) {
    if (c->status < 0)
      return reason_set(why, ERR_UPSTREAM,
                        "%s: the go command was killed by signal %d", what,
                        -c->status);
    if (c->err.len)
      return fail_with(c, 0, buf_cstr(&c->err), why);
    return reason_set(why, ERR_UPSTREAM, "%s: the go command exited with %d",
                      what, c->status);
  }
  return 0;
}

/* ------------------------------------------------------------ hosts */

#define HOST_MAX 253 /* the longest DNS name */

static char lower(char ch) {
  return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

static int host_char(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
         ch == '.' || ch == '_';
}

/* Copies [p, p + n) lower-cased into out (HOST_MAX + 1 bytes) without a
 * leading "*." or "." and trailing dots: its length, or -1 when it is
 * empty, too long or holds a character no host name has. */
static int norm_host(const char *p, size_t n, char *out) {
  if (n >= 2 && p[0] == '*' && p[1] == '.') {
    p += 2;
    n -= 2;
  }
  while (n && *p == '.') {
    p++;
    n--;
  }
  while (n && p[n - 1] == '.')
    n--;
  if (!n || n > HOST_MAX)
    return -1;
  for (size_t i = 0; i < n; i++) {
    out[i] = lower(p[i]);
    if (!host_char(out[i]))
      return -1;
  }
  out[n] = '\0';
  return (int)n;
}

/* The next entry of a comma-separated host list into out, as norm_host
 * makes it: its length, 0 for a blank entry, -1 for a malformed one. */
static int next_host(const char **pp, char *out, const char **raw,
                     size_t *rawlen) {
  const char *p = *pp, *comma = strchr(p, ',');
  size_t n = comma ? (size_t)(comma - p) : strlen(p);
  *pp = p + n + (comma ? 1 : 0);
  while (n && (*p == ' ' || *p == '\t')) {
    p++;
    n--;
  }
  while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
    n--;
  *raw = p;
  *rawlen = n;
  return n ? norm_host(p, n, out) : 0;
}

/* 1 when host (length n) is name or a name under it. */
static int under(const char *host, size_t n, const char *name) {
  size_t k = strlen(name);
  if (n == k)
    return memcmp(host, name, n) == 0;
  return n > k && host[n - k - 1] == '.' && memcmp(host + n - k, name, k) == 0;
}

/* What resolvers and URL parsers take for an IPv4 address: inet_aton's
 * forms ("127.1", "0x7f000001", "0177.0.0.1"), and any host whose last
 * label is a number (WHATWG URL's "ends in a number"), as no public name's
 * top-level domain is. */
static int numeric_host(const char *h, size_t n) {
  struct in_addr a4;
  if (inet_aton(h, &a4))
    return 1;
  const char *dot = memrchr(h, '.', n), *l = dot ? dot + 1 : h;
  size_t k = n - (size_t)(l - h), i = 0;
  if (k >= 2 && l[0] == '0' && l[1] == 'x') {
    for (i = 2; i < k && ascii_hexval(l[i]) >= 0; i++)
      ;
    return i == k;
  }
  while (i < k && l[i] >= '0' && l[i] <= '9')
    i++;
  return k && i == k;
}

static int refuse_address(const char *module, struct reason *why) {
  return reason_set(why, ERR_FORBIDDEN,
                    "%.160s: gomirror does not fetch from IP addresses or "
                    "localhost (direct)",
                    module);
}

int vcs_check_host(const char *module, const char *deny_hosts,
                   struct reason *why) {
  /* Names that only resolve inside a network (RFC 6761, RFC 6762, RFC 8375,
   * ICANN's private-use .internal, the localhost.localdomain alias): no
   * public module lives there, and fetching them is a way in. */
  static const char *const local[] = {"localhost", "localdomain", "local",
                                      "internal", "home.arpa"};
  const char *m = module ? module : "";
  const char *slash = strchr(m, '/');
  size_t n = slash ? (size_t)(slash - m) : strlen(m);
  char host[HOST_MAX + 1];
  /* "::1" or "[::1]": no module path has these, but callers may pass any. */
  size_t br = n >= 2 && m[0] == '[' && m[n - 1] == ']', hn = n - 2 * br;
  struct in6_addr a6;
  if (hn <= HOST_MAX) {
    memcpy(host, m + br, hn);
    host[hn] = '\0';
    if (inet_pton(AF_INET6, host, &a6) == 1)
      return refuse_address(m, why);
  }
  int hl = n && m[0] != '.' && m[0] != '*' ? norm_host(m, n, host) : -1;
  if (hl < 0)
    return reason_set(why, ERR_INVALID, "%.160s: malformed host in module path",
                      m);
  if (numeric_host(host, (size_t)hl))
    return refuse_address(m, why);
  for (size_t i = 0; i < sizeof local / sizeof *local; i++)
    if (under(host, (size_t)hl, local[i]))
      return reason_set(why, ERR_FORBIDDEN,
                        "%.160s: gomirror does not fetch from localhost or "
                        "other local names (direct)",
                        m);
  char e[HOST_MAX + 1];
  const char *raw;
  size_t rawlen;
  for (const char *p = deny_hosts ? deny_hosts : ""; *p;) {
    int el = next_host(&p, e, &raw, &rawlen);
    if (el > 0 && under(host, (size_t)hl, e))
      return reason_set(why, ERR_FORBIDDEN,
                        "%.160s: gomirror does not fetch from %s "
                        "(vcs_deny_hosts, direct)",
                        m, e);
  }
  return 0;
}

/* ------------------------------------------------------------ public */

/* Module paths and queries become one argv word each; refuse anything a
 * go command could read as a flag or that no module path or version has. */
static int safe_word(const char *s, int allow_slash) {
  if (!s || !*s || *s == '-' || strlen(s) > 1024)
    return 0;
  for (; *s; s++) {
    char ch = *s;
    int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
             (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
             ch == '~' || ch == '+' || (allow_slash && ch == '/');
    if (!ok)
      return 0;
  }
  return 1;
}

static int check_module(struct vcs *v, const char *module, struct reason *why) {
  if (!safe_word(module, 1))
    return reason_set(why, ERR_INVALID, "malformed module path");
  if (!private_match(v->patterns, module))
    return reason_set(why, ERR_FORBIDDEN,
                      "%s is not a private module: refusing to fetch it "
                      "from version control",
                      module);
  /* `private` hosts are the operator's choice; `direct` ones a client's. */
  if (v->direct)
    return vcs_check_host(module, v->deny, why);
  return 0;
}

static json_object *parse_json(const struct buf *b) {
  if (!b->len)
    return NULL;
  json_object *o = json_tokener_parse(buf_cstr(b));
  if (o && !json_object_is_type(o, json_type_object)) {
    json_object_put(o);
    o = NULL;
  }
  return o;
}

static const char *jstr(json_object *o, const char *key) {
  json_object *s;
  if (!o || !json_object_object_get_ex(o, key, &s) ||
      !json_object_is_type(s, json_type_string))
    return NULL;
  return json_object_get_string(s);
}

/* Runs argv (a go command) in a fresh scratch call, within a worker slot,
 * and parses its JSON output: 0 with *obj (json_object_put it), or an error
 * with why and *obj possibly NULL. The caller frees c with call_free. */
static int run_go(struct vcs *v, struct call *c, char *argv[], const char *what,
                  json_object **obj, struct reason *why) {
  *obj = NULL;
  int rc = take_slot(v, what, why);
  if (rc) {
    memset(c, 0, sizeof *c); /* call_free has nothing to do */
    return rc;
  }
  rc = call_setup(v, c, why);
  if (!rc)
    rc = run(c, argv, why);
  give_slot(v);
  if (rc)
    return rc;
  *obj = parse_json(&c->out);
  return run_failure(c, what, *obj, why);
}

/* A file the go command named must be a regular file inside our dir. */
static int inside(const struct call *c, const char *path, char *out,
                  size_t cap) {
  size_t dl = strlen(c->dir);
  struct stat st;
  if (!path || strncmp(path, c->dir, dl) != 0 || path[dl] != '/' ||
      strstr(path, "/../") || strlen(path) >= cap || lstat(path, &st) ||
      !S_ISREG(st.st_mode))
    return 0;
  snprintf(out, cap, "%s", path);
  return 1;
}

static int valid_version(const char *s) {
  return s && s[0] == 'v' && strlen(s) <= 256 && safe_word(s, 0);
}

static int download_impl(struct vcs *v, const char *module, const char *query,
                         struct vcs_download *out, struct reason *why) {
  memset(out, 0, sizeof *out);
  int rc = check_module(v, module, why);
  if (rc)
    return rc;
  if (!safe_word(query, 1))
    return reason_set(why, ERR_INVALID, "malformed version query");
  char arg[2100], what[2200];
  snprintf(arg, sizeof arg, "%s@%s", module, query);
  snprintf(what, sizeof what, "fetching %s", arg);
  char *argv[] = {v->go, "mod", "download", "-json", arg, NULL};

  struct call c;
  json_object *obj;
  rc = run_go(v, &c, argv, what, &obj, why);
  if (!rc) {
    const char *path = jstr(obj, "Path"), *ver = jstr(obj, "Version");
    if (c.overflow || !path || strcmp(path, module) != 0 ||
        !valid_version(ver) ||
        !inside(&c, jstr(obj, "Info"), out->info_path, sizeof out->info_path) ||
        !inside(&c, jstr(obj, "GoMod"), out->mod_path, sizeof out->mod_path) ||
        !inside(&c, jstr(obj, "Zip"), out->zip_path, sizeof out->zip_path)) {
      rc = reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "%s: the go command's output was not understood", what);
    } else {
      snprintf(out->version, sizeof out->version, "%s", ver);
      snprintf(out->dir, sizeof out->dir, "%s", c.dir);
    }
  }
  json_object_put(obj);
  if (rc)
    memset(out, 0, sizeof *out);
  call_free(&c, rc == 0);
  return rc;
}

void vcs_download_done(struct vcs_download *d) {
  if (!d)
    return;
  remove_tree(d->dir);
  d->dir[0] = '\0';
}

static int list_impl(struct vcs *v, const char *module, struct buf *out,
                     struct reason *why) {
  buf_reset(out);
  int rc = check_module(v, module, why);
  if (rc)
    return rc;
  char what[2200];
  snprintf(what, sizeof what, "listing versions of %s", module);
  char *argv[] = {v->go,   "list",         "-m", "-versions",
                  "-json", (char *)module, NULL};
  struct call c;
  json_object *obj;
  rc = run_go(v, &c, argv, what, &obj, why);
  if (!rc) {
    const char *path = jstr(obj, "Path");
    json_object *vs = NULL;
    if (c.overflow || !path || strcmp(path, module) != 0)
      rc = ERR_BAD_UPSTREAM_DATA;
    else if (json_object_object_get_ex(obj, "Versions", &vs) &&
             !json_object_is_type(vs, json_type_array))
      rc = ERR_BAD_UPSTREAM_DATA;
    size_t n = !rc && vs ? json_object_array_length(vs) : 0;
    for (size_t i = 0; !rc && i < n; i++) {
      json_object *e = json_object_array_get_idx(vs, i);
      const char *s = json_object_is_type(e, json_type_string)
                          ? json_object_get_string(e)
                          : NULL;
      if (!valid_version(s))
        rc = ERR_BAD_UPSTREAM_DATA;
      else if (buf_appendf(out, "%s\n", s))
        rc = ERR_TOO_LARGE;
    }
    if (rc == ERR_BAD_UPSTREAM_DATA)
      reason_set(why, rc, "%s: the go command's output was not understood",
                 what);
    else if (rc)
      reason_set(why, rc, "%s: too many versions", what);
  }
  json_object_put(obj);
  if (rc)
    buf_free(out);
  call_free(&c, 0);
  return rc;
}

/* The go command as configured: a path with a '/' is used as is, a bare
 * name is looked up on PATH as a shell would. */
static char *find_go(const char *name, const char *path) {
  if (strchr(name, '/'))
    return access(name, X_OK) == 0 ? strdup(name) : NULL;
  for (const char *p = path; p && *p;) {
    const char *colon = strchr(p, ':');
    size_t n = colon ? (size_t)(colon - p) : strlen(p);
    char cand[PATH_MAX];
    int k = snprintf(cand, sizeof cand, "%.*s/%s", (int)n, n ? p : ".", name);
    struct stat st;
    if (k > 0 && (size_t)k < sizeof cand && stat(cand, &st) == 0 &&
        S_ISREG(st.st_mode) && access(cand, X_OK) == 0)
      return strdup(cand);
    p += n + (colon ? 1 : 0);
  }
  return NULL;
}

static int readable(const char *what, const char *path, struct reason *why) {
  char eb[128];
  if (path[0] && access(path, R_OK) != 0)
    return reason_set(why, ERR_CONFIG, "%s %s cannot be read: %s", what, path,
                      errtext(errno, eb, sizeof eb));
  return 0;
}

int vcs_new(const struct vcs_config *cfg, struct vcs **out,
            struct reason *why) {
  *out = NULL;
  const char *name = cfg->go_binary && *cfg->go_binary ? cfg->go_binary : "go";
  const char *pathv = getenv("PATH");
  if (!pathv || !*pathv)
    pathv = "/usr/local/bin:/usr/bin:/bin";
  if (!cfg->private_patterns || !*cfg->private_patterns)
    return reason_set(why, ERR_CONFIG, "private patterns are empty");
  int rc = private_check(cfg->private_patterns, why);
  if (rc)
    return rc;
  struct vcs *v = calloc(1, sizeof *v);
  if (!v)
    return reason_set(why, ERR_NOMEM, "out of memory");
  const char *tmpdir = getenv("TMPDIR");
  const char *scratch = cfg->scratch_dir && *cfg->scratch_dir ? cfg->scratch_dir
                        : tmpdir && *tmpdir                   ? tmpdir
                                                              : "/tmp";
  v->go = find_go(name, pathv);
  v->patterns = strdup(cfg->private_patterns);
  v->netrc = dup_or_empty(cfg->netrc_file);
  v->gitconfig = dup_or_empty(cfg->gitconfig_file);
  v->ssh_key = dup_or_empty(cfg->ssh_key_file);
  v->insecure = dup_or_empty(cfg->insecure);
  v->scratch = strdup(scratch);
  v->proxy = dup_or_empty(cfg->http_proxy);
  v->path = strdup(pathv);
  v->deny = dup_or_empty(cfg->deny_hosts);
  v->timeout_s = cfg->timeout_s > 0 ? cfg->timeout_s : 300;
  v->queue_timeout_s = cfg->queue_timeout_s > 0 ? cfg->queue_timeout_s : 30;
  v->queue_max = cfg->queue_max < 0 ? -1 : cfg->queue_max;
  v->workers = cfg->workers > 0 ? cfg->workers : 1;
  v->direct = cfg->direct != 0;
  pthread_mutex_init(&v->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&v->cv, &ca);
  pthread_condattr_destroy(&ca);
  if (!v->patterns || !v->netrc || !v->gitconfig || !v->ssh_key ||
      !v->insecure || !v->scratch || !v->proxy || !v->path || !v->deny) {
    rc = reason_set(why, ERR_NOMEM, "out of memory");
    goto fail;
  }
  if (!v->go) {
    /* Said for `private` and for `direct` alike: both run the go command. */
    if (strchr(name, '/'))
      rc = reason_set(why, ERR_CONFIG,
                      "go_binary: no executable at %s (private modules and "
                      "`direct` fetch with the go command)",
                      name);
    else
      rc = reason_set(why, ERR_CONFIG,
                      "go_binary: no \"%s\" on PATH (private modules and "
                      "`direct` fetch with the go command)",
                      name);
    goto fail;
  }
  struct stat st;
  if (stat(v->scratch, &st) || !S_ISDIR(st.st_mode) ||
      access(v->scratch, W_OK | X_OK)) {
    rc = reason_set(why, ERR_CONFIG, "scratch directory %s is not writable",
                    v->scratch);
    goto fail;
  }
  char e[HOST_MAX + 1];
  const char *raw;
  size_t rawlen;
  for (const char *p = v->deny; *p;) {
    if (next_host(&p, e, &raw, &rawlen) < 0) {
      rc = reason_set(why, ERR_CONFIG,
                      "vcs_deny_hosts: \"%.*s\" is not a host name",
                      (int)(rawlen > 100 ? 100 : rawlen), raw);
      goto fail;
    }
  }
  rc = readable("vcs_netrc", v->netrc, why);
  if (!rc)
    rc = readable("vcs_gitconfig", v->gitconfig, why);
  if (!rc)
    rc = readable("vcs_ssh_key", v->ssh_key, why);
  if (rc)
    goto fail;

  /* `go version` proves the binary runs here, under the very environment
   * the fetches will use. */
  struct call c;
  char *argv[] = {v->go, "version", NULL};
  struct reason r = {{0}};
  rc = call_setup(v, &c, &r);
  if (!rc)
    rc = run(&c, argv, &r);
  const char *o = buf_cstr(&c.out);
  if (!rc && c.timed_out)
    rc = reason_set(&r, ERR_CONFIG, "no answer within %lds", v->timeout_s);
  else if (!rc && c.status != 0)
    rc = reason_set(&r, ERR_CONFIG, "exit status %d: %.100s", c.status,
                    buf_cstr(&c.err));
  else if (!rc && strncmp(o, "go version ", 11) != 0)
    rc = reason_set(&r, ERR_CONFIG, "unexpected output \"%.60s\"", o);
  if (!rc) {
    size_t n = strcspn(o, "\r\n");
    snprintf(v->go_version, sizeof v->go_version, "%.*s", (int)n, o);
  }
  call_free(&c, 0);
  if (rc) {
    rc =
        reason_set(why, ERR_CONFIG,
                   "private is set but `%s version` failed: %s", v->go, r.text);
    goto fail;
  }
  *out = v;
  return 0;
fail:
  vcs_free(v);
  return rc;
}

void vcs_free(struct vcs *v) {
  if (!v)
    return;
  free(v->go);
  free(v->patterns);
  free(v->netrc);
  free(v->gitconfig);
  free(v->ssh_key);
  free(v->insecure);
  free(v->scratch);
  free(v->proxy);
  free(v->path);
  free(v->deny);
  pthread_mutex_destroy(&v->mu);
  pthread_cond_destroy(&v->cv);
  free(v);
}

const char *vcs_go_version(const struct vcs *v) {
  return v->go_version;
}

/* The work above keeps several path-sized buffers per frame; callers may be
 * on threads with small stacks (CivetWeb's workers have ~100 KiB). Each call
 * therefore runs on a short-lived thread of its own with a 1 MiB stack,
 * which costs microseconds next to running the go command. */
struct big_call {
  struct vcs *v;
  const char *module, *query;
  struct vcs_download *dl;
  struct buf *list;
  struct reason *why;
  int rc;
};

static void *big_main(void *arg) {
  struct big_call *bc = arg;
  bc->rc = bc->dl ? download_impl(bc->v, bc->module, bc->query, bc->dl, bc->why)
                  : list_impl(bc->v, bc->module, bc->list, bc->why);
  return NULL;
}

static int on_big_stack(struct big_call *bc) {
  pthread_attr_t attr;
  pthread_t th;
  if (pthread_attr_init(&attr))
    return ERR_NOMEM;
  pthread_attr_setstacksize(&attr, 1u << 20);
  int err = pthread_create(&th, &attr, big_main, bc);
  pthread_attr_destroy(&attr);
  if (err)
    return reason_set(bc->why, ERR_NOMEM, "cannot start a fetch thread");
  pthread_join(th, NULL);
  return bc->rc;
}

int vcs_download(struct vcs *v, const char *module, const char *query,
                 struct vcs_download *out, struct reason *why) {
  struct big_call bc = {v, module, query, out, NULL, why, 0};
  return on_big_stack(&bc);
}

int vcs_list(struct vcs *v, const char *module, struct buf *out,
             struct reason *why) {
  struct big_call bc = {v, module, NULL, NULL, out, why, 0};
  return on_big_stack(&bc);
}
