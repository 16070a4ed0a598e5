/* Unit tests for server/vcs.c with the real go command and real local git
 * repositories, reached through the go-get trick of TESTING.md
 * (tests/tools/gogetproxy.py as HTTP_PROXY, GOINSECURE, an insteadOf git
 * config), plus shell scripts standing in for go where a test needs a hang,
 * a clock or a peek at the environment. */
#include "core/buf.h"
#include "core/err.h"
#include "server/vcs.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define PRIVATE "git.corp.example,git.auth.example"
#define PASSWORD "NetrcS3cret-Pw"

static char tmp[PATH_MAX];     /* everything this test makes */
static char scratch[PATH_MAX]; /* vcs scratch_dir: must end up empty */
static char gitconfig[PATH_MAX], netrc[PATH_MAX], proxy_url[64];
static char alpha_head[41];
static pid_t proxy_pid = -1, auth_pid = -1;
static char auth_url[64];

/* ------------------------------------------------------------ helpers */

/* snprintf whose truncation of these test paths is never an issue. */
static void fmt(char *out, size_t cap, const char *f, ...)
    __attribute__((format(printf, 3, 4)));
static void fmt(char *out, size_t cap, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  vsnprintf(out, cap, f, ap);
  va_end(ap);
}

static void path_join(char *out, const char *a, const char *b) {
  fmt(out, PATH_MAX, "%s/%s", a, b);
}

static int write_text(const char *path, const char *text, mode_t mode) {
  FILE *f = fopen(path, "w");
  if (!f)
    return -1;
  fputs(text, f);
  fclose(f);
  return chmod(path, mode);
}

static int read_text(const char *path, char *out, size_t cap) {
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  size_t n = fread(out, 1, cap - 1, f);
  out[n] = '\0';
  fclose(f);
  return 0;
}

/* Runs argv (PATH lookup) in cwd; stdout into out (NUL-terminated) when
 * given. Returns the exit status, or -1. */
static int run_cmd(const char *cwd, char *const argv[], char *out, size_t cap) {
  int p[2];
  if (pipe2(p, O_CLOEXEC))
    return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  if (cwd)
    posix_spawn_file_actions_addchdir_np(&fa, cwd);
  pid_t pid;
  int e = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(p[1]);
  if (e) {
    close(p[0]);
    return -1;
  }
  size_t len = 0;
  char sink[4096];
  for (;;) {
    char *dst = out && len + 1 < cap ? out + len : sink;
    size_t room = out && len + 1 < cap ? cap - 1 - len : sizeof sink;
    ssize_t n = read(p[0], dst, room);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    if (dst != sink)
      len += (size_t)n;
  }
  close(p[0]);
  if (out)
    out[len] = '\0';
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
    ;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define RUN(cwd, ...)                                                          \
  do {                                                                         \
    char *argv_[] = {__VA_ARGS__, NULL};                                       \
    if (run_cmd((cwd), argv_, NULL, 0) != 0)                                   \
      TEST_FAIL_("command failed: %s %s", argv_[0], argv_[1]);                 \
  } while (0)

static void commit(const char *work, const char *date, const char *msg) {
  setenv("GIT_AUTHOR_DATE", date, 1);
  setenv("GIT_COMMITTER_DATE", date, 1);
  RUN(work, "git", "add", "-A");
  RUN(work, "git", "commit", "-q", "-m", (char *)msg);
}

/* A work tree at <tmp>/work/<name> published as the bare repository
 * <tmp>/git/git.corp.example/team/<name>. */
static void make_repos(void) {
  char work[PATH_MAX], f[PATH_MAX], bare[PATH_MAX], git[PATH_MAX];
  path_join(git, tmp, "git/git.corp.example/team");
  RUN(NULL, "mkdir", "-p", git);

  fmt(work, sizeof work, "%s/work/alpha", tmp);
  RUN(NULL, "mkdir", "-p", work);
  RUN(work, "git", "init", "-q", "-b", "master");
  path_join(f, work, "go.mod");
  write_text(f, "module git.corp.example/team/alpha\n\ngo 1.19\n", 0644);
  path_join(f, work, "alpha.go");
  write_text(f, "// Package alpha is private.\npackage alpha\n\nconst V = 1\n",
             0644);
  commit(work, "2023-01-02T10:00:00Z", "v1.0.0");
  RUN(work, "git", "tag", "v1.0.0");
  write_text(f, "// Package alpha is private.\npackage alpha\n\nconst V = 2\n",
             0644);
  commit(work, "2023-01-03T10:00:00Z", "untagged");
  char *rev[] = {"git", "rev-parse", "HEAD", NULL};
  char out[128];
  if (run_cmd(work, rev, out, sizeof out) != 0 || strlen(out) < 40)
    TEST_FAIL_("git rev-parse failed");
  fmt(alpha_head, sizeof alpha_head, "%.40s", out);
  path_join(bare, git, "alpha");
  RUN(NULL, "git", "clone", "-q", "--bare", work, bare);

  fmt(work, sizeof work, "%s/work/notags", tmp);
  RUN(NULL, "mkdir", "-p", work);
  RUN(work, "git", "init", "-q", "-b", "master");
  path_join(f, work, "go.mod");
  write_text(f, "module git.corp.example/team/notags\n\ngo 1.19\n", 0644);
  commit(work, "2023-02-01T10:00:00Z", "first");
  path_join(bare, git, "notags");
  RUN(NULL, "git", "clone", "-q", "--bare", work, bare);
}

/* Where tests/tools/gogetproxy.py is, from the source file's own path or
 * from ctest's working directory (tests/unit). */
static int find_tool(char *out) {
  char here[PATH_MAX];
  fmt(here, sizeof here, "%s", __FILE__);
  char *slash = strrchr(here, '/');
  const char *cands[3] = {NULL, "../tools/gogetproxy.py",
                          "tests/tools/gogetproxy.py"};
  char c0[PATH_MAX];
  if (slash) {
    *slash = '\0';
    fmt(c0, sizeof c0, "%s/../tools/gogetproxy.py", here);
    cands[0] = c0;
  }
  for (int i = 0; i < 3; i++) {
    if (cands[i] && access(cands[i], R_OK) == 0) {
      fmt(out, PATH_MAX, "%s", cands[i]);
      return 0;
    }
  }
  return -1;
}

/* Starts a python server that prints its http://127.0.0.1:PORT URL on its
 * first line of output, and reads that URL. */
static int start_server(char *const argv[], pid_t *pid, char *url, size_t cap) {
  int p[2];
  if (pipe2(p, O_CLOEXEC))
    return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  int e = posix_spawnp(pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(p[1]);
  if (e) {
    close(p[0]);
    *pid = -1;
    return -1;
  }
  char line[256];
  size_t n = 0;
  struct pollfd pf = {.fd = p[0], .events = POLLIN};
  while (n + 1 < sizeof line && poll(&pf, 1, 10000) > 0) {
    ssize_t k = read(p[0], line + n, 1);
    if (k <= 0 || line[n] == '\n')
      break;
    n++;
  }
  line[n] = '\0';
  close(p[0]);
  const char *u = strstr(line, "http://127.0.0.1:");
  if (!u)
    return -1;
  fmt(url, cap, "%s", u);
  return 0;
}

/* A git server that turns every credential down. */
static const char auth_server[] =
    "import http.server\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(401)\n"
    "        self.send_header('WWW-Authenticate', 'Basic realm=\"git\"')\n"
    "        self.send_header('Content-Length', '0')\n"
    "        self.end_headers()\n"
    "    do_POST = do_GET\n"
    "    def log_message(self, *a):\n"
    "        pass\n"
    "s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)\n"
    "print('on http://127.0.0.1:%d' % s.server_address[1], flush=True)\n"
    "s.serve_forever()\n";

static int start_servers(void) {
  char tool[PATH_MAX], log[PATH_MAX];
  if (find_tool(tool))
    return -1;
  path_join(log, tmp, "gogetproxy.log");
  char *argv[] = {"python3", tool,    "--port", "0", "--hosts",
                  PRIVATE,   "--log", log,      NULL};
  if (start_server(argv, &proxy_pid, proxy_url, sizeof proxy_url))
    return -1;
  char *argv2[] = {"python3", "-c", (char *)auth_server, NULL};
  return start_server(argv2, &auth_pid, auth_url, sizeof auth_url);
}

static size_t count_entries(const char *dir) {
  char *argv[] = {"ls", "-A", (char *)dir, NULL};
  char out[4096];
  if (run_cmd(NULL, argv, out, sizeof out) != 0)
    return (size_t)-1;
  size_t n = 0;
  for (char *p = out; *p; p++)
    n += *p == '\n';
  return n;
}

static int rm_entry(const char *p, const struct stat *st, int type,
                    struct FTW *f) {
  (void)st;
  (void)f;
  if (type == FTW_DP)
    return rmdir(p), 0;
  return unlink(p), 0;
}

static int chmod_entry(const char *p, const struct stat *st, int type,
                       struct FTW *f) {
  (void)f;
  if (type == FTW_D)
    chmod(p, (st->st_mode & 07777) | S_IRWXU);
  return 0;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A one-line reason of printable ASCII. */
static int one_line(const char *s) {
  if (!*s)
    return 0;
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
      return 0;
  return 1;
}

static struct vcs_config base_config(void) {
  struct vcs_config c = {
      .go_binary = "go",
      .private_patterns = PRIVATE,
      .timeout_s = 60,
      .workers = 2,
      .queue_timeout_s = 60,
      .queue_max = 64,
      .netrc_file = netrc,
      .gitconfig_file = gitconfig,
      .ssh_key_file = "",
      .insecure = PRIVATE,
      .scratch_dir = scratch,
      .http_proxy = proxy_url,
  };
  return c;
}

/* A stand-in go command: answers `go version`, runs body otherwise. */
static void make_stub(const char *name, const char *body, char *path) {
  char dir[PATH_MAX];
  path_join(dir, tmp, "bin");
  mkdir(dir, 0755);
  path_join(path, dir, name);
  char text[8192];
  fmt(text, sizeof text,
      "#!/bin/sh\nif [ \"$1\" = version ]; then echo 'go version "
      "go1.19.8 linux/amd64'; exit 0; fi\n%s\n",
      body);
  write_text(path, text, 0755);
}

static struct vcs *new_vcs(const struct vcs_config *c) {
  struct vcs *v = NULL;
  struct reason why = {{0}};
  int rc = vcs_new(c, &v, &why);
  if (rc)
    TEST_FAIL_("vcs_new: %d %s", rc, why.text);
  return v;
}

/* ------------------------------------------------------------ real go */

static void test_download_tag(void) {
  struct vcs_config c = base_config();
  struct vcs *v = new_vcs(&c);
  if (!v)
    return;
  ASSERT_TRUE(strncmp(vcs_go_version(v), "go version go", 13) == 0);
  struct vcs_download d;
  struct reason why = {{0}};
  int rc = vcs_download(v, "git.corp.example/team/alpha", "v1.0.0", &d, &why);
  ASSERT_EQ_INT(rc, 0);
  if (rc) {
    fprintf(stderr, "  reason: %s\n", why.text);
    vcs_free(v);
    return;
  }
  ASSERT_EQ_STR(d.version, "v1.0.0");
  ASSERT_TRUE(strncmp(d.dir, scratch, strlen(scratch)) == 0);
  ASSERT_TRUE(strncmp(d.zip_path, d.dir, strlen(d.dir)) == 0);
  ASSERT_TRUE(strstr(d.info_path,
                     "/cache/download/git.corp.example/team/alpha/@v/"
                     "v1.0.0.info") != NULL);
  char text[4096];
  ASSERT_EQ_INT(read_text(d.mod_path, text, sizeof text), 0);
  ASSERT_EQ_STR(text, "module git.corp.example/team/alpha\n\ngo 1.19\n");
  ASSERT_EQ_INT(read_text(d.info_path, text, sizeof text), 0);
  ASSERT_TRUE(strstr(text, "\"Version\":\"v1.0.0\"") != NULL);
  struct stat st;
  ASSERT_TRUE(stat(d.zip_path, &st) == 0 && st.st_size > 100);
  char dir[sizeof d.dir];
  fmt(dir, sizeof dir, "%s", d.dir);
  vcs_download_done(&d);
  ASSERT_TRUE(access(dir, F_OK) != 0); /* read-only module cache included */
  ASSERT_EQ_STR(d.dir, "");
  vcs_download_done(&d); /* twice is fine */
  vcs_free(v);
}

static void test_download_branch_and_commit(void) {
  struct vcs_config c = base_config();
  struct vcs *v = new_vcs(&c);
  if (!v)
    return;
  char want[128];
  fmt(want, sizeof want, "v1.0.1-0.20230103100000-%.12s", alpha_head);
  char short_hash[13];
  fmt(short_hash, sizeof short_hash, "%.12s", alpha_head);
  const char *queries[] = {"master", alpha_head, short_hash};
  for (size_t i = 0; i < 3; i++) {
    struct vcs_download d;
    struct reason why = {{0}};
    int rc =
        vcs_download(v, "git.corp.example/team/alpha", queries[i], &d, &why);
    if (rc)
      TEST_FAIL_("%s: %d %s", queries[i], rc, why.text);
    else
      ASSERT_EQ_STR(d.version, want);
    ASSERT_TRUE(rc || strstr(d.zip_path, want) != NULL);
    vcs_download_done(&d);
  }
  vcs_free(v);
}

static void test_list(void) {
  struct vcs_config c = base_config();
  struct vcs *v = new_vcs(&c);
  if (!v)
    return;
  struct buf out;
  buf_init(&out, 1 << 20);
  struct reason why = {{0}};
  ASSERT_EQ_INT(vcs_list(v, "git.corp.example/team/alpha", &out, &why), 0);
  ASSERT_EQ_STR(buf_cstr(&out), "v1.0.0\n"); /* not the untagged commit */
  ASSERT_EQ_INT(vcs_list(v, "git.corp.example/team/notags", &out, &why), 0);
  ASSERT_EQ_STR(buf_cstr(&out), "");
  buf_free(&out);
  vcs_free(v);
}

static void test_not_found(void) {
  struct vcs_config c = base_config();
  struct vcs *v = new_vcs(&c);
  if (!v)
    return;
  struct vcs_download d;
  struct reason why = {{0}};
  int rc = vcs_download(v, "git.corp.example/team/missing", "v1.0.0", &d, &why);
  ASSERT_EQ_INT(rc, ERR_NOT_FOUND);
  ASSERT_TRUE(one_line(why.text));
  ASSERT_TRUE(strstr(why.text, "git.corp.example/team/missing") != NULL);
  ASSERT_TRUE(strstr(why.text, scratch) == NULL); /* no scratch paths */
  ASSERT_EQ_STR(d.dir, "");

  memset(&why, 0, sizeof why);
  rc = vcs_download(v, "git.corp.example/team/alpha", "v9.9.9", &d, &why);
  ASSERT_EQ_INT(rc, ERR_NOT_FOUND);
  ASSERT_EQ_STR(why.text, "git.corp.example/team/alpha@v9.9.9: invalid "
                          "version: unknown revision v9.9.9");

  struct buf out;
  buf_init(&out, 1 << 20);
  rc = vcs_list(v, "git.corp.example/team/missing", &out, &why);
  ASSERT_EQ_INT(rc, ERR_NOT_FOUND);
  ASSERT_TRUE(one_line(why.text));
  ASSERT_EQ_INT(out.len, 0);
  buf_free(&out);
  vcs_free(v);
}

static void test_refuses_public_and_unsafe(void) {
  struct vcs_config c = base_config();
  struct vcs *v = new_vcs(&c);
  if (!v)
    return;
  struct vcs_download d;
  struct reason why = {{0}};
  size_t before = count_entries(scratch);
  ASSERT_EQ_INT(vcs_download(v, "github.com/public/mod", "v1.0.0", &d, &why),
                ERR_FORBIDDEN);
  ASSERT_EQ_INT(
      vcs_download(v, "git.corp.example.evil.com/x", "v1.0.0", &d, &why),
      ERR_FORBIDDEN);
  ASSERT_EQ_INT(
      vcs_download(v, "git.corp.example/team/alpha", "-modfile=x", &d, &why),
      ERR_INVALID);
  ASSERT_EQ_INT(
      vcs_download(v, "git.corp.example/team/alpha", "v1 v2", &d, &why),
      ERR_INVALID);
  ASSERT_EQ_INT(vcs_download(v, "-x", "v1.0.0", &d, &why), ERR_INVALID);
  struct buf out;
  buf_init(&out, 1024);
  ASSERT_EQ_INT(vcs_list(v, "rsc.io/quote", &out, &why), ERR_FORBIDDEN);
  buf_free(&out);
  ASSERT_EQ_INT(count_entries(scratch), before); /* nothing ran */
  vcs_free(v);
}

/* A git server that refuses the credentials in the rewritten URL (and in
 * the netrc): a 502-class failure whose reason never shows the password. */
static void test_bad_credentials(void) {
  struct vcs_config c = base_config();
  struct vcs *v = new_vcs(&c);
  if (!v)
    return;
  struct vcs_download d;
  struct reason why = {{0}};
  int rc = vcs_download(v, "git.auth.example/team/x", "v1.0.0", &d, &why);
  ASSERT_EQ_INT(rc, ERR_UPSTREAM);
  ASSERT_TRUE(one_line(why.text));
  ASSERT_TRUE(strstr(why.text, PASSWORD) == NULL);
  ASSERT_TRUE(strstr(why.text, "NetrcS3") == NULL);
  ASSERT_TRUE(strstr(why.text, "git.auth.example/team/x") != NULL);
  ASSERT_TRUE(strstr(why.text, "Authentication failed") != NULL);
  if (rc != ERR_UPSTREAM || strstr(why.text, PASSWORD))
    fprintf(stderr, "  reason: %s\n", why.text);
  vcs_free(v);
}

/* ------------------------------------------------------------ stubs */

static void test_missing_go(void) {
  struct vcs_config c = base_config();
  struct vcs *v = (struct vcs *)1;
  struct reason why = {{0}};
  c.go_binary = "/nonexistent/bin/go";
  ASSERT_EQ_INT(vcs_new(&c, &v, &why), ERR_CONFIG);
  ASSERT_TRUE(v == NULL);
  ASSERT_EQ_STR(why.text, "go_binary: no executable at /nonexistent/bin/go "
                          "(private modules and `direct` fetch with the go "
                          "command)");
  char *path = strdup(getenv("PATH"));
  setenv("PATH", "/nonexistent", 1);
  c.go_binary = "go";
  ASSERT_EQ_INT(vcs_new(&c, &v, &why), ERR_CONFIG);
  ASSERT_EQ_STR(why.text, "go_binary: no \"go\" on PATH (private modules "
                          "and `direct` fetch with the go command)");
  setenv("PATH", path, 1);
  free(path);

  char stub[PATH_MAX];
  make_stub("go-notgo", "exit 0", stub);
  write_text(stub, "#!/bin/sh\necho hello\n", 0755);
  c.go_binary = stub;
  ASSERT_EQ_INT(vcs_new(&c, &v, &why), ERR_CONFIG);
  ASSERT_TRUE(strstr(why.text, "version` failed") != NULL);
  vcs_free(NULL);
}

static void test_bad_config(void) {
  struct vcs_config c = base_config();
  struct vcs *v = NULL;
  struct reason why = {{0}};
  c.private_patterns = "";
  ASSERT_EQ_INT(vcs_new(&c, &v, &why), ERR_CONFIG);
  c.private_patterns = "git.corp.example,[";
  ASSERT_EQ_INT(vcs_new(&c, &v, &why), ERR_CONFIG);
  ASSERT_TRUE(strstr(why.text, "malformed") != NULL);
  c = base_config();
  c.netrc_file = "/nonexistent/netrc";
  ASSERT_EQ_INT(vcs_new(&c, &v, &why), ERR_CONFIG);
  ASSERT_TRUE(strstr(why.text, "vcs_netrc") != NULL);
  c = base_config();
  c.scratch_dir = "/nonexistent/scratch";
  ASSERT_EQ_INT(vcs_new(&c, &v, &why), ERR_CONFIG);
  ASSERT_TRUE(v == NULL);
}

/* The go command sees only the environment vcs builds. */
static void test_clean_environment(void) {
  char stub[PATH_MAX], body[2048], key[PATH_MAX];
  fmt(body, sizeof body,
      "env > %s/env.txt; pwd > %s/pwd.txt\n"
      "stat -c %%a \"$HOME/.netrc\" > %s/netrc.mode\n"
      "cat \"$HOME/.netrc\" > %s/netrc.copy\n"
      "echo '{\"Path\":\"git.corp.example/team/alpha\"}'",
      tmp, tmp, tmp, tmp);
  make_stub("go-env", body, stub);
  path_join(key, tmp, "key with 'quote");
  write_text(key, "not really a key\n", 0644);
  struct vcs_config c = base_config();
  c.go_binary = stub;
  c.ssh_key_file = key;
  struct vcs *v = new_vcs(&c);
  if (!v)
    return;
  struct buf out;
  buf_init(&out, 1024);
  struct reason why = {{0}};
  ASSERT_EQ_INT(vcs_list(v, "git.corp.example/team/alpha", &out, &why), 0);
  ASSERT_EQ_STR(buf_cstr(&out), "");
  buf_free(&out);
  vcs_free(v);

  char env[16384], f[PATH_MAX], pwd[PATH_MAX], line[PATH_MAX + 64];
  path_join(f, tmp, "env.txt");
  ASSERT_EQ_INT(read_text(f, env, sizeof env), 0);
  path_join(f, tmp, "pwd.txt");
  ASSERT_EQ_INT(read_text(f, pwd, sizeof pwd), 0);
  pwd[strcspn(pwd, "\n")] = '\0';
  ASSERT_TRUE(strncmp(pwd, scratch, strlen(scratch)) == 0);
  const char *want[] = {"\nGOPROXY=off\n",
                        "\nGOPRIVATE=" PRIVATE "\n",
                        "\nGONOSUMDB=" PRIVATE "\n",
                        "\nGONOPROXY=" PRIVATE "\n",
                        "\nGOFLAGS=-mod=mod\n",
                        "\nGOINSECURE=" PRIVATE "\n",
                        "\nGIT_TERMINAL_PROMPT=0\n",
                        "\nGIT_CONFIG_NOSYSTEM=1\n",
                        "\nHTTP_PROXY=http://127.0.0.1:",
                        "\nHTTPS_PROXY=http://127.0.0.1:",
                        "-o IdentitiesOnly=yes",
                        "-o StrictHostKeyChecking=accept-new"};
  char full[16400];
  fmt(full, sizeof full, "\n%s", env);
  for (size_t i = 0; i < sizeof want / sizeof *want; i++)
    if (!strstr(full, want[i]))
      TEST_FAIL_("environment lacks %s", want[i]);
  const char *banned[] = {"LEAKME", "bogus-flag", "leak.invalid",
                          "\nGOSUMDB=off"};
  for (size_t i = 0; i < sizeof banned / sizeof *banned; i++)
    if (strstr(full, banned[i]))
      TEST_FAIL_("environment has %s", banned[i]);
  fmt(line, sizeof line, "\nHOME=%s", pwd);
  ASSERT_TRUE(strstr(full, line) != NULL);
  fmt(line, sizeof line, "\nGIT_CONFIG_GLOBAL=%s\n", gitconfig);
  ASSERT_TRUE(strstr(full, line) != NULL);
  fmt(line, sizeof line, "\nNETRC=%s/.netrc\n", pwd);
  ASSERT_TRUE(strstr(full, line) != NULL);
  /* The key is a private 0600 copy, quoted for git's sh. */
  fmt(line, sizeof line, "GIT_SSH_COMMAND=ssh -i '%s/ssh_key'", pwd);
  ASSERT_TRUE(strstr(full, line) != NULL);
  char mode[16], copy[1024], orig[1024];
  path_join(f, tmp, "netrc.mode");
  read_text(f, mode, sizeof mode);
  ASSERT_EQ_STR(mode, "600\n");
  path_join(f, tmp, "netrc.copy");
  read_text(f, copy, sizeof copy);
  read_text(netrc, orig, sizeof orig);
  ASSERT_EQ_STR(copy, orig);
}

/* go's stderr with credentials and scratch paths becomes one clean line. */
static void test_error_scrubbed(void) {
  char stub[PATH_MAX];
  make_stub("go-leak",
            "printf '%s\\n' 'go: downloading x' \"go: "
            "git.corp.example/team/alpha@v1.0.0: git ls-remote -q origin in "
            "$HOME/gopath/pkg/mod/cache/vcs/abc: exit status 128:\" \"\tfatal: "
            "unable to access 'https://robot:" PASSWORD
            "@git.corp.example/team/alpha/': The requested URL returned "
            "error: 403\" >&2\nexit 1",
            stub);
  struct vcs_config c = base_config();
  c.go_binary = stub;
  struct vcs *v = new_vcs(&c);
  if (!v)
    return;
  struct vcs_download d;
  struct reason why = {{0}};
  int rc = vcs_download(v, "git.corp.example/team/alpha", "v1.0.0", &d, &why);
  ASSERT_EQ_INT(rc, ERR_UPSTREAM); /* a 403 is not "not found" */
  ASSERT_EQ_STR(why.text,
                "git.corp.example/team/alpha@v1.0.0: git ls-remote -q origin "
                "in <cache>: exit status 128: fatal: unable to access "
                "'https://robot:***@git.corp.example/team/alpha/': The "
                "requested URL returned error: 403");
  vcs_free(v);
}

static void test_bad_output(void) {
  char stub[PATH_MAX];
  struct vcs_download d;
  struct reason why = {{0}};
  make_stub("go-garbage", "echo 'not json'", stub);
  struct vcs_config c = base_config();
  c.go_binary = stub;
  struct vcs *v = new_vcs(&c);
  if (!v)
    return;
  ASSERT_EQ_INT(
      vcs_download(v, "git.corp.example/team/alpha", "v1.0.0", &d, &why),
      ERR_BAD_UPSTREAM_DATA);
  vcs_free(v);
  /* Files outside the scratch dir are never handed out. */
  make_stub("go-outside",
            "echo '{\"Path\":\"git.corp.example/team/alpha\",\"Version\":"
            "\"v1.0.0\",\"Info\":\"/etc/passwd\",\"GoMod\":\"/etc/passwd\","
            "\"Zip\":\"/etc/passwd\"}'",
            stub);
  v = new_vcs(&c);
  if (!v)
    return;
  ASSERT_EQ_INT(
      vcs_download(v, "git.corp.example/team/alpha", "v1.0.0", &d, &why),
      ERR_BAD_UPSTREAM_DATA);
  ASSERT_EQ_STR(d.dir, "");
  vcs_free(v);
}

/* A process that is gone, or a zombie nobody reaps (PID 1 in containers). */
static int dead(pid_t pid) {
  char p[64], stat[512];
  fmt(p, sizeof p, "/proc/%d/stat", (int)pid);
  for (int i = 0; i < 200; i++) {
    if (read_text(p, stat, sizeof stat) != 0)
      return 1;
    char *rp = strrchr(stat, ')');
    if (rp && rp[1] == ' ' && rp[2] == 'Z')
      return 1;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return 0;
}

static void test_timeout(void) {
  char stub[PATH_MAX], body[1024], pids[PATH_MAX];
  path_join(pids, tmp, "pids");
  fmt(body, sizeof body, "sleep 30 &\necho \"$$ $!\" > %s\nwait", pids);
  make_stub("go-sleep", body, stub);
  struct vcs_config c = base_config();
  c.go_binary = stub;
  c.timeout_s = 1;
  struct vcs *v = new_vcs(&c);
  if (!v)
    return;
  struct vcs_download d;
  struct reason why = {{0}};
  double t0 = now_s();
  int rc = vcs_download(v, "git.corp.example/team/alpha", "v1.0.0", &d, &why);
  double took = now_s() - t0;
  ASSERT_EQ_INT(rc, ERR_UPSTREAM_TIMEOUT);
  ASSERT_EQ_STR(why.text, "fetching git.corp.example/team/alpha@v1.0.0 from "
                          "version control timed out after 1s");
  ASSERT_TRUE(took >= 0.9 && took < 2.0);
  char text[128];
  int leader = 0, child = 0;
  ASSERT_EQ_INT(read_text(pids, text, sizeof text), 0);
  ASSERT_EQ_INT(sscanf(text, "%d %d", &leader, &child), 2);
  ASSERT_TRUE(leader > 0 && dead(leader));
  ASSERT_TRUE(child > 0 && dead(child)); /* the whole group, not just go */
  vcs_free(v);
}

struct worker_arg {
  struct vcs *v;
  int rc;
};

static void *list_worker(void *p) {
  struct worker_arg *a = p;
  struct buf out;
  buf_init(&out, 1024);
  struct reason why = {{0}};
  a->rc = vcs_list(a->v, "git.corp.example/team/alpha", &out, &why);
  if (!a->rc && strcmp(buf_cstr(&out), "v1.0.0\nv1.1.0\n") != 0)
    a->rc = -1000;
  buf_free(&out);
  return NULL;
}

struct event {
  long long t;
  int d;
};

static int by_time(const void *a, const void *b) {
  const struct event *x = a, *y = b;
  if (x->t != y->t)
    return x->t < y->t ? -1 : 1;
  return x->d - y->d; /* an end before a start at the same instant */
}

static void test_concurrency_cap(void) {
  char stub[PATH_MAX], body[1024], log[PATH_MAX];
  path_join(log, tmp, "overlap.log");
  fmt(body, sizeof body,
      "echo \"1 $(date +%%s%%N)\" >> %s\nsleep 0.5\n"
      "echo \"-1 $(date +%%s%%N)\" >> %s\n"
      "echo '{\"Path\":\"git.corp.example/team/alpha\",\"Versions\":"
      "[\"v1.0.0\",\"v1.1.0\"]}'",
      log, log);
  make_stub("go-count", body, stub);
  struct vcs_config c = base_config();
  c.go_binary = stub;
  c.workers = 2;
  struct vcs *v = new_vcs(&c);
  if (!v)
    return;
  pthread_t th[8];
  struct worker_arg args[8];
  double t0 = now_s();
  for (int i = 0; i < 8; i++) {
    args[i] = (struct worker_arg){v, -1};
    pthread_create(&th[i], NULL, list_worker, &args[i]);
  }
  for (int i = 0; i < 8; i++) {
    pthread_join(th[i], NULL);
    ASSERT_EQ_INT(args[i].rc, 0);
  }
  double took = now_s() - t0;
  vcs_free(v);
  struct event ev[32];
  int n = 0;
  FILE *f = fopen(log, "r");
  ASSERT_TRUE(f != NULL);
  while (f && n < 32 && fscanf(f, "%d %lld", &ev[n].d, &ev[n].t) == 2)
    n++;
  if (f)
    fclose(f);
  ASSERT_EQ_INT(n, 16);
  qsort(ev, (size_t)n, sizeof *ev, by_time);
  int cur = 0, max = 0;
  for (int i = 0; i < n; i++) {
    cur += ev[i].d;
    if (cur > max)
      max = cur;
  }
  ASSERT_TRUE(max <= 2);
  ASSERT_TRUE(max >= 1);
  ASSERT_TRUE(took >= 1.9); /* 8 x 0.5 s, two at a time */
}

/* ------------------------------------------------------------ helpers */

static void test_scrub(void) {
  char out[512];
  const char *sec[] = {"hunter2", "p@ss/word", ""};
  vcs_scrub("fatal: https://bob:hunter2@git.example/x: 403", sec, 3, out,
            sizeof out);
  ASSERT_EQ_STR(out, "fatal: https://bob:***@git.example/x: 403");
  /* Literal anywhere, and %-encoded in either case. */
  vcs_scrub("pw is hunter2; enc p%40ss%2Fword p%40ss%2fword", sec, 3, out,
            sizeof out);
  ASSERT_EQ_STR(out, "pw is ***; enc *** ***");
  /* URL passwords go even when not known as secrets. */
  vcs_scrub("'http://u:unknown@h:8080/p' and HTTPS://x:y@h", NULL, 0, out,
            sizeof out);
  ASSERT_EQ_STR(out, "'http://u:***@h:8080/p' and HTTPS://x:***@h");
  /* A lone https user may be a token; an ssh user is an account. */
  vcs_scrub("https://ghp_TOKEN@github.com/a ssh://git@host/b "
            "git+ssh://git:pw@host/c",
            NULL, 0, out, sizeof out);
  ASSERT_EQ_STR(out, "https://***@github.com/a ssh://git@host/b "
                     "git+ssh://git:***@host/c");
  vcs_scrub("no urls here: a@b c:d", NULL, 0, out, sizeof out);
  ASSERT_EQ_STR(out, "no urls here: a@b c:d");
  /* Truncation happens after scrubbing, so no secret prefix survives. */
  char small[12];
  vcs_scrub("xx hunter2", sec, 3, small, 8);
  ASSERT_EQ_STR(small, "xx ***");
  vcs_scrub("hunter2hunter2", sec, 3, small, sizeof small);
  ASSERT_EQ_STR(small, "******");
  vcs_scrub(NULL, NULL, 0, out, sizeof out);
  ASSERT_EQ_STR(out, "");
}

static void test_secrets(void) {
  struct vcs_secrets s = {0};
  ASSERT_EQ_INT(vcs_secrets_netrc(&s, "machine a.example login bob password "
                                      "pw1\n\nmachine b login x\n  password "
                                      "\"quoted \\\"pw\\\"\" account acct9\n"
                                      "macdef init\npassword notapw\n\n"
                                      "default login anon password pw1\n"),
                0);
  ASSERT_EQ_INT(s.n, 3); /* duplicates kept once; macdef skipped */
  if (s.n == 3) {
    ASSERT_EQ_STR(s.v[0], "pw1");
    ASSERT_EQ_STR(s.v[1], "quoted \"pw\"");
    ASSERT_EQ_STR(s.v[2], "acct9");
  }
  ASSERT_EQ_INT(vcs_secrets_urls(&s, "[url \"https://robot:t0k@git.corp/\"]\n"
                                     "\tinsteadOf = https://git.corp/\n"
                                     "[url \"https://ghp_abc@github.com/\"]\n"
                                     "[url \"ssh://git@host/\"]\n"),
                0);
  ASSERT_EQ_INT(s.n, 5);
  if (s.n == 5) {
    ASSERT_EQ_STR(s.v[3], "t0k");
    ASSERT_EQ_STR(s.v[4], "ghp_abc");
  }
  vcs_secrets_free(&s);
  ASSERT_EQ_INT(s.n, 0);
  vcs_secrets_free(NULL);
}

/* ------------------------------------------------------------ hardening */

static void test_check_host(void) {
  struct reason why = {{0}};
  const char *refused[] = {"127.0.0.1/x",
                           "10.1.2.3/x/y",
                           "192.168.1.1",
                           "127.1/x",
                           "0177.0.0.1/x",
                           "0x7f.0.0.1/x",
                           "2130706433/x",
                           "0x7f000001/x",
                           "1.2.3.4.5/x",
                           "example.123/x",
                           "example.0x1f/x",
                           "::1/x",
                           "[::1]/x",
                           "127.0.0.1./x",
                           "localhost/x",
                           "LOCALHOST/x",
                           "foo.localhost/x",
                           "localhost./x",
                           "localhost.localdomain/x",
                           "a.b.local/x",
                           "git.internal/x",
                           "nas.home.arpa/x",
                           "deny.example/x",
                           "a.deny.example/x",
                           "Git.Other.Test/x",
                           "other.test/x"};
  const char *deny = " deny.example, *.other.test ,,";
  for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
    memset(&why, 0, sizeof why);
    int rc = vcs_check_host(refused[i], deny, &why);
    if (rc != ERR_FORBIDDEN)
      TEST_FAIL_("%s: %d, want ERR_FORBIDDEN", refused[i], rc);
    else if (!one_line(why.text) || !strstr(why.text, "direct)") ||
             strncmp(why.text, refused[i], strlen(refused[i])) != 0)
      TEST_FAIL_("%s: reason \"%s\"", refused[i], why.text);
  }
  const char *allowed[] = {"example.com/hello",       "github.com/a/b",
                           "123.example.com/x",       "1e100.net/x",
                           "localhost.example.com/x", "notdeny.example/x",
                           "deny.example.org/x",      "golang.org/x/mod",
                           "gopkg.in/yaml.v3",        "x.0x7fz/x"};
  for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++) {
    int rc = vcs_check_host(allowed[i], deny, &why);
    if (rc)
      TEST_FAIL_("%s: %d %s, want 0", allowed[i], rc, why.text);
  }
  ASSERT_EQ_INT(vcs_check_host("example.com/x", NULL, &why), 0);
  ASSERT_EQ_INT(vcs_check_host("", NULL, &why), ERR_INVALID);
  ASSERT_EQ_INT(vcs_check_host("/x", NULL, &why), ERR_INVALID);
  ASSERT_EQ_INT(vcs_check_host("...", NULL, &why), ERR_INVALID);
  ASSERT_EQ_INT(vcs_check_host(NULL, NULL, &why), ERR_INVALID);
  vcs_check_host("127.0.0.1/x", NULL, &why);
  ASSERT_EQ_STR(why.text, "127.0.0.1/x: gomirror does not fetch from IP "
                          "addresses or localhost (direct)");
  vcs_check_host("a.deny.example/x", deny, &why);
  ASSERT_EQ_STR(why.text, "a.deny.example/x: gomirror does not fetch from "
                          "deny.example (vcs_deny_hosts, direct)");
}

/* The direct fetcher refuses before anything runs; the private one, whose
 * hosts the operator chose, does not check hosts. */
static void test_direct_refuses_before_running(void) {
  char stub[PATH_MAX], body[1024], ran[PATH_MAX];
  path_join(ran, tmp, "direct-ran");
  fmt(body, sizeof body,
      "echo \"$@\" >> %s\n"
      "for a; do m=$a; done\n"
      "echo \"{\\\"Path\\\":\\\"$m\\\",\\\"Versions\\\":[\\\"v1.0.0\\\"]}\"",
      ran);
  make_stub("go-direct", body, stub);
  struct vcs_config c = base_config();
  c.go_binary = stub;
  c.private_patterns = "*";
  c.direct = 1;
  c.deny_hosts = "git.deny.example";
  c.netrc_file = c.gitconfig_file = "";
  struct vcs *v = new_vcs(&c);
  if (!v)
    return;
  struct buf out;
  buf_init(&out, 1024);
  struct vcs_download d;
  struct reason why = {{0}};
  size_t before = count_entries(scratch);
  ASSERT_EQ_INT(vcs_list(v, "127.0.0.1/x", &out, &why), ERR_FORBIDDEN);
  ASSERT_EQ_INT(vcs_download(v, "10.1.2.3/x", "v1.0.0", &d, &why),
                ERR_FORBIDDEN);
  ASSERT_EQ_STR(d.dir, "");
  ASSERT_EQ_INT(vcs_download(v, "foo.localhost/x", "latest", &d, &why),
                ERR_FORBIDDEN);
  ASSERT_EQ_INT(vcs_list(v, "a.git.deny.example/x", &out, &why), ERR_FORBIDDEN);
  ASSERT_TRUE(strstr(why.text, "vcs_deny_hosts") != NULL);
  ASSERT_EQ_INT(count_entries(scratch), before);
  ASSERT_TRUE(access(ran, F_OK) != 0); /* the go command never ran */
  ASSERT_EQ_INT(vcs_list(v, "example.com/x", &out, &why), 0);
  ASSERT_EQ_STR(buf_cstr(&out), "v1.0.0\n");
  ASSERT_TRUE(access(ran, F_OK) == 0);
  vcs_free(v);
  unlink(ran);

  c.direct = 0;
  c.private_patterns = "127.0.0.1,git.deny.example";
  v = new_vcs(&c);
  if (!v)
    return;
  ASSERT_EQ_INT(vcs_list(v, "127.0.0.1/x", &out, &why), 0);
  ASSERT_EQ_INT(vcs_list(v, "git.deny.example/x", &out, &why), 0);
  buf_free(&out);
  vcs_free(v);
  unlink(ran);

  c.direct = 1;
  c.private_patterns = "*";
  c.deny_hosts = "ok.example, https://evil.example";
  ASSERT_EQ_INT(vcs_new(&c, &v, &why), ERR_CONFIG);
  ASSERT_EQ_STR(why.text,
                "vcs_deny_hosts: \"https://evil.example\" is not a host name");
}

struct timed_arg {
  struct vcs *v;
  int rc;
  double took;
  struct reason why;
};

static void *timed_list(void *p) {
  struct timed_arg *a = p;
  struct buf out;
  buf_init(&out, 1024);
  double t0 = now_s();
  a->rc = vcs_list(a->v, "git.corp.example/team/alpha", &out, &a->why);
  a->took = now_s() - t0;
  buf_free(&out);
  return NULL;
}

static void sleep_s(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) && errno == EINTR)
    ;
}

/* With the one worker busy, a waiting call gives up after queue_timeout_s
 * and one past queue_max at once, both with ERR_UNAVAILABLE; the worker's
 * own call is unaffected and the queue is usable afterwards. */
static void test_queue_bound(void) {
  char stub[PATH_MAX];
  make_stub("go-slow",
            "sleep 2.5\necho '{\"Path\":\"git.corp.example/team/alpha\"}'",
            stub);
  struct vcs_config c = base_config();
  c.go_binary = stub;
  c.workers = 1;
  c.queue_timeout_s = 1;
  c.queue_max = 1;
  struct vcs *v = new_vcs(&c);
  if (!v)
    return;
  struct timed_arg a = {v, -1, 0, {{0}}}, b = {v, -1, 0, {{0}}};
  struct timed_arg x = {v, -1, 0, {{0}}};
  pthread_t ta, tb;
  pthread_create(&ta, NULL, timed_list, &a);
  sleep_s(0.3);
  pthread_create(&tb, NULL, timed_list, &b);
  sleep_s(0.3); /* b waits now */
  timed_list(&x);
  ASSERT_EQ_INT(x.rc, ERR_UNAVAILABLE);
  ASSERT_TRUE(x.took < 0.3);
  ASSERT_EQ_STR(x.why.text,
                "listing versions of git.corp.example/team/alpha: every "
                "version control worker is busy and the queue is full "
                "(vcs_workers=1, vcs_queue_max=1); try again later");
  pthread_join(tb, NULL);
  ASSERT_EQ_INT(b.rc, ERR_UNAVAILABLE);
  ASSERT_TRUE(b.took >= 0.9 && b.took < 1.6);
  ASSERT_EQ_STR(b.why.text,
                "listing versions of git.corp.example/team/alpha: no version "
                "control worker became free within 1s (vcs_workers=1); try "
                "again later");
  pthread_join(ta, NULL);
  ASSERT_EQ_INT(a.rc, 0);
  timed_list(&x); /* the slot and the queue are free again */
  ASSERT_EQ_INT(x.rc, 0);
  vcs_free(v);

  /* queue_max 0: nobody waits. */
  c.queue_max = 0;
  v = new_vcs(&c);
  if (!v)
    return;
  a.v = x.v = v;
  pthread_create(&ta, NULL, timed_list, &a);
  sleep_s(0.3);
  timed_list(&x);
  ASSERT_EQ_INT(x.rc, ERR_UNAVAILABLE);
  ASSERT_TRUE(x.took < 0.3);
  pthread_join(ta, NULL);
  ASSERT_EQ_INT(a.rc, 0);
  vcs_free(v);
}

/* A descriptor the server opened without O_CLOEXEC (a library's socket,
 * say) never reaches the go command. */
static void test_no_inherited_fds(void) {
  char stub[PATH_MAX], body[1024], fds[PATH_MAX], marker[PATH_MAX];
  path_join(fds, tmp, "child-fds");
  path_join(marker, tmp, "leak-marker");
  fmt(body, sizeof body,
      "ls -l /proc/$$/fd > %s\n"
      "echo '{\"Path\":\"git.corp.example/team/alpha\"}'",
      fds);
  make_stub("go-fds", body, stub);
  int fd = open(marker, O_RDWR | O_CREAT, 0600); /* no O_CLOEXEC */
  int high = fd >= 0 ? fcntl(fd, F_DUPFD, 200) : -1;
  ASSERT_TRUE(fd >= 0 && high >= 200);
  struct vcs_config c = base_config();
  c.go_binary = stub;
  struct vcs *v = new_vcs(&c);
  if (v) {
    struct buf out;
    buf_init(&out, 1024);
    struct reason why = {{0}};
    ASSERT_EQ_INT(vcs_list(v, "git.corp.example/team/alpha", &out, &why), 0);
    buf_free(&out);
    vcs_free(v);
    char text[8192];
    ASSERT_EQ_INT(read_text(fds, text, sizeof text), 0);
    ASSERT_TRUE(strstr(text, " 0 -> /dev/null") != NULL); /* it did list */
    if (strstr(text, "leak-marker"))
      TEST_FAIL_("the go command inherited a descriptor:\n%s", text);
  }
  if (high >= 0)
    close(high);
  if (fd >= 0)
    close(fd);
  unlink(marker);
}

/* ------------------------------------------------------------ main */

static int setup(void) {
  const char *t = getenv("TMPDIR");
  fmt(tmp, sizeof tmp, "%s/gm-test-vcs-XXXXXX", t && *t ? t : "/tmp");
  if (!mkdtemp(tmp))
    return -1;
  path_join(scratch, tmp, "scratch");
  mkdir(scratch, 0700);
  /* Git identity and isolation for building the repositories. */
  char home[PATH_MAX];
  path_join(home, tmp, "home");
  mkdir(home, 0700);
  setenv("HOME", home, 1);
  setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
  setenv("GIT_AUTHOR_NAME", "Fixture", 1);
  setenv("GIT_AUTHOR_EMAIL", "fixture@example.com", 1);
  setenv("GIT_COMMITTER_NAME", "Fixture", 1);
  setenv("GIT_COMMITTER_EMAIL", "fixture@example.com", 1);
  /* What the server's own environment might hold; vcs must not pass it on. */
  setenv("GOFLAGS", "-bogus-flag", 1);
  setenv("GOPROXY", "https://leak.invalid", 1);
  setenv("LEAKME", "1", 1);

  if (start_servers()) {
    fprintf(stderr, "cannot start tests/tools/gogetproxy.py or python3\n");
    return -1;
  }
  path_join(gitconfig, tmp, "gitconfig");
  char text[2 * PATH_MAX];
  fmt(text, sizeof text,
      "[url \"file://%s/git/git.corp.example/\"]\n"
      "\tinsteadOf = https://git.corp.example/\n"
      "[url \"http://robot:" PASSWORD "@%s/\"]\n"
      "\tinsteadOf = https://git.auth.example/\n"
      "[init]\n\tdefaultBranch = master\n"
      "[protocol \"file\"]\n\tallow = always\n",
      tmp, auth_url + strlen("http://"));
  write_text(gitconfig, text, 0644);
  setenv("GIT_CONFIG_GLOBAL", gitconfig, 1);
  path_join(netrc, tmp, "netrc");
  write_text(netrc,
             "machine 127.0.0.1 login robot password " PASSWORD "\n"
             "machine git.auth.example login robot password " PASSWORD "\n",
             0600);
  make_repos();
  return 0;
}

static void teardown(void) {
  pid_t pids[] = {proxy_pid, auth_pid};
  for (int i = 0; i < 2; i++) {
    if (pids[i] > 0) {
      kill(pids[i], SIGTERM);
      waitpid(pids[i], NULL, 0);
    }
  }
  nftw(tmp, chmod_entry, 16, FTW_PHYS);
  nftw(tmp, rm_entry, 16, FTW_PHYS | FTW_DEPTH);
}

static void test_scratch_empty(void) {
  ASSERT_EQ_INT(count_entries(scratch), 0);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN); /* as the server does: children must not care */
  if (setup()) {
    teardown();
    fprintf(stderr, "setup failed\n");
    return 1;
  }
  RUN_TEST(test_scrub);
  RUN_TEST(test_secrets);
  RUN_TEST(test_missing_go);
  RUN_TEST(test_bad_config);
  RUN_TEST(test_download_tag);
  RUN_TEST(test_download_branch_and_commit);
  RUN_TEST(test_list);
  RUN_TEST(test_not_found);
  RUN_TEST(test_refuses_public_and_unsafe);
  RUN_TEST(test_bad_credentials);
  RUN_TEST(test_clean_environment);
  RUN_TEST(test_error_scrubbed);
  RUN_TEST(test_bad_output);
  RUN_TEST(test_timeout);
  RUN_TEST(test_concurrency_cap);
  RUN_TEST(test_check_host);
  RUN_TEST(test_direct_refuses_before_running);
  RUN_TEST(test_queue_bound);
  RUN_TEST(test_no_inherited_fds);
  RUN_TEST(test_scratch_empty);
  teardown();
  return test_summary();
}
