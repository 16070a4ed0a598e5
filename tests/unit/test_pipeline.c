/* The module pipeline without any HTTP server (server/pipeline.h): a
 * struct server opened from a configuration, a file:// upstream laid out in
 * a temporary directory, fs storage and in-memory metadata. Each test calls
 * pipe_ensure / pipe_resolve / pipe_read / pipe_info_only as the handlers
 * and the command-line tools do, and checks what was committed and how many
 * upstream requests it took. */
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "mod/modpath.h"
#include "server/pipeline.h"
#include "server/server.h"
#include "server/setup.h"
#include "test.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

static char root[256];
static char up[300];
static char store[300];

static void mkdirs(const char *path) {
  char p[1024];
  snprintf(p, sizeof p, "%s", path);
  for (char *s = p + 1; *s; s++)
    if (*s == '/') {
      *s = '\0';
      mkdir(p, 0755);
      *s = '/';
    }
  mkdir(p, 0755);
}

static void put(const char *rel, const char *text) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", up, rel);
  char dir[1024];
  snprintf(dir, sizeof dir, "%s", path);
  *strrchr(dir, '/') = '\0';
  mkdirs(dir);
  FILE *f = fopen(path, "w");
  if (!f) {
    perror(path);
    exit(2);
  }
  fputs(text, f);
  fclose(f);
}

/* A module zip as the go command lays it out: <module>@<version>/files. */
static void put_zip(const char *module, const char *version) {
  char path[1024], name[512], gomod[256];
  snprintf(path, sizeof path, "%s/%s/@v/%s.zip", up, module, version);
  int err;
  zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
  if (!z) {
    fprintf(stderr, "zip_open %s: %d\n", path, err);
    exit(2);
  }
  snprintf(gomod, sizeof gomod, "module %s\n", module);
  static const char src[] = "package m\n\nconst V = 1\n";
  zip_source_t *s1 = zip_source_buffer(z, strdup(gomod), strlen(gomod), 1);
  zip_source_t *s2 = zip_source_buffer(z, src, sizeof src - 1, 0);
  snprintf(name, sizeof name, "%s@%s/go.mod", module, version);
  zip_file_add(z, name, s1, 0);
  snprintf(name, sizeof name, "%s@%s/m.go", module, version);
  zip_file_add(z, name, s2, 0);
  if (zip_close(z) != 0) {
    fprintf(stderr, "zip_close %s\n", path);
    exit(2);
  }
}

static void put_version(const char *module, const char *version, int mod,
                        int zip) {
  char rel[512], text[512];
  snprintf(rel, sizeof rel, "%s/@v/%s.info", module, version);
  snprintf(text, sizeof text,
           "{\"Version\":\"%s\",\"Time\":\"2024-01-02T03:04:05Z\"}", version);
  put(rel, text);
  if (mod) {
    snprintf(rel, sizeof rel, "%s/@v/%s.mod", module, version);
    snprintf(text, sizeof text, "module %s\n", module);
    put(rel, text);
  }
  if (zip)
    put_zip(module, version);
}

static struct config cfg;
static struct server srv;

static void open_server(int offline) {
  struct reason why = {{0}};
  char url[400];
  config_init(&cfg);
  snprintf(url, sizeof url, "fs://%s", store);
  int rc = config_set(&cfg, "storage", url, "test", &why);
  snprintf(url, sizeof url, "file://%s", up);
  rc = rc ? rc : config_set(&cfg, "upstream", url, "test", &why);
  rc = rc ? rc : config_set(&cfg, "sumdb", "", "test", &why);
  rc = rc ? rc : config_set(&cfg, "list_ttl", "0", "test", &why);
  rc = rc ? rc : config_set(&cfg, "offline", offline ? "true" : "false",
                            "test", &why);
  rc = rc ? rc : config_check(&cfg, &why);
  rc = rc ? rc : server_open(&srv, &cfg, 0, &why);
  if (rc) {
    fprintf(stderr, "server_open: %s\n", reason_text(&why, rc));
    exit(2);
  }
}

static void close_server(void) {
  server_close(&srv);
  config_free(&cfg);
}

static struct modreq req(const char *path) {
  struct modreq m;
  struct reason why = {{0}};
  int rc = modpath_parse(path, &m, &why);
  if (rc) {
    fprintf(stderr, "modpath_parse %s: %s\n", path, reason_text(&why, rc));
    exit(2);
  }
  return m;
}

static int stored(const char *rel) {
  char path[1024];
  struct stat st;
  snprintf(path, sizeof path, "%s/%s", store, rel);
  return stat(path, &st) == 0;
}

static void ensure_commits_then_costs_nothing(void) {
  struct worker w = {0};
  struct pipe p;
  struct reason why = {{0}};
  struct modreq m = req("/example.com/m/@v/v1.0.0.zip");
  pipe_init(&p, &srv, &w);
  ASSERT_EQ_INT(pipe_ensure(&p, &m, 1, &why), 0);
  ASSERT_EQ_STR(p.cache, "miss");
  ASSERT_EQ_INT(p.upstream, 3); /* .info, .mod, .zip */
  ASSERT_TRUE(stored("example.com/m/@v/v1.0.0.info"));
  ASSERT_TRUE(stored("example.com/m/@v/v1.0.0.mod"));
  ASSERT_TRUE(stored("example.com/m/@v/v1.0.0.zip"));

  pipe_init(&p, &srv, &w);
  ASSERT_EQ_INT(pipe_ensure(&p, &m, 1, &why), 0);
  ASSERT_EQ_STR(p.cache, "hit");
  ASSERT_EQ_INT(p.upstream, 0);

  struct buf b;
  buf_init(&b, 1 << 20);
  ASSERT_EQ_INT(pipe_read(&p, &m, "mod", &b), 0);
  ASSERT_EQ_INT(b.len, strlen("module example.com/m\n"));
  ASSERT_TRUE(b.len && memcmp(b.data, "module example.com/m\n", b.len) == 0);
  buf_free(&b);
  curl_easy_cleanup(w.curl);
  buf_free(&w.scratch);
}

static void ensure_without_zip_then_zip(void) {
  struct worker w = {0};
  struct pipe p;
  struct reason why = {{0}};
  struct modreq m = req("/example.com/m/@v/v1.1.0.mod");
  pipe_init(&p, &srv, &w);
  ASSERT_EQ_INT(pipe_ensure(&p, &m, 0, &why), 0);
  ASSERT_EQ_INT(p.upstream, 2);
  ASSERT_TRUE(stored("example.com/m/@v/v1.1.0.info"));
  ASSERT_FALSE(stored("example.com/m/@v/v1.1.0.zip"));
  /* The zip later costs one request, not three. */
  pipe_init(&p, &srv, &w);
  ASSERT_EQ_INT(pipe_ensure(&p, &m, 1, &why), 0);
  ASSERT_EQ_INT(p.upstream, 1);
  ASSERT_TRUE(stored("example.com/m/@v/v1.1.0.zip"));
  curl_easy_cleanup(w.curl);
  buf_free(&w.scratch);
}

static void not_found_is_cached(void) {
  struct worker w = {0};
  struct pipe p;
  struct reason why = {{0}};
  struct modreq m = req("/example.com/m/@v/v1.9.0.info");
  pipe_init(&p, &srv, &w);
  ASSERT_EQ_INT(pipe_ensure(&p, &m, 0, &why), ERR_NOT_FOUND);
  ASSERT_TRUE(p.upstream >= 1);
  /* Within negative_ttl the answer comes from metadata. */
  pipe_init(&p, &srv, &w);
  ASSERT_EQ_INT(pipe_ensure(&p, &m, 0, &why), ERR_NOT_FOUND);
  ASSERT_EQ_INT(p.upstream, 0);
  ASSERT_FALSE(stored("example.com/m/@v/v1.9.0.info"));
  curl_easy_cleanup(w.curl);
  buf_free(&w.scratch);
}

static void bad_mod_is_refused(void) {
  struct worker w = {0};
  struct pipe p;
  struct reason why = {{0}};
  struct modreq m = req("/example.com/bad/@v/v1.0.0.info");
  pipe_init(&p, &srv, &w);
  ASSERT_EQ_INT(pipe_ensure(&p, &m, 0, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_TRUE(strstr(why.text, "example.com/bad") != NULL);
  ASSERT_FALSE(stored("example.com/bad/@v/v1.0.0.info"));
  ASSERT_FALSE(stored("example.com/bad/@v/v1.0.0.mod"));
  curl_easy_cleanup(w.curl);
  buf_free(&w.scratch);
}

static void info_without_mod(void) {
  struct worker w = {0};
  struct pipe p;
  struct reason why = {{0}};
  struct modreq m = req("/example.com/half/@v/v1.0.0.info");
  pipe_init(&p, &srv, &w);
  ASSERT_EQ_INT(pipe_ensure(&p, &m, 0, &why), ERR_NOT_FOUND);
  ASSERT_TRUE(strstr(why.text, "no .mod") != NULL);
  ASSERT_FALSE(stored("example.com/half/@v/v1.0.0.info"));
  struct buf b;
  buf_init(&b, 1 << 16);
  ASSERT_EQ_INT(pipe_info_only(&p, &m, &b), 0);
  ASSERT_TRUE(b.len > 0 && memmem(b.data, b.len, "v1.0.0", 6) != NULL);
  struct modreq other = req("/example.com/m/@v/v1.0.0.info");
  ASSERT_EQ_INT(pipe_info_only(&p, &other, &b), ERR_NOT_FOUND);
  buf_free(&b);
  curl_easy_cleanup(w.curl);
  buf_free(&w.scratch);
}

static void resolve_list_and_latest(void) {
  struct worker w = {0};
  struct pipe p;
  struct reason why = {{0}};
  struct buf b;
  buf_init(&b, 1 << 20);
  struct modreq m = req("/example.com/m/@v/list");
  pipe_init(&p, &srv, &w);
  ASSERT_EQ_INT(pipe_resolve(&p, &m, &b, &why), 0);
  ASSERT_EQ_INT(b.len, strlen("v1.0.0\nv1.1.0\n"));
  ASSERT_TRUE(b.len && memcmp(b.data, "v1.0.0\nv1.1.0\n", b.len) == 0);
  ASSERT_EQ_STR(p.cache, "miss");

  m = req("/example.com/m/@latest");
  pipe_init(&p, &srv, &w);
  ASSERT_EQ_INT(pipe_resolve(&p, &m, &b, &why), 0);
  ASSERT_TRUE(b.len && memmem(b.data, b.len, "\"v1.1.0\"", 8) != NULL);

  m = req("/example.com/nothing/@v/list");
  pipe_init(&p, &srv, &w);
  ASSERT_EQ_INT(pipe_resolve(&p, &m, &b, &why), ERR_NOT_FOUND);
  buf_free(&b);
  curl_easy_cleanup(w.curl);
  buf_free(&w.scratch);
}

/* The upstream gone: lists come from what is stored, stale; a version never
 * fetched is not found. */
static void upstream_gone(void) {
  char moved[400];
  snprintf(moved, sizeof moved, "%s.gone", up);
  ASSERT_EQ_INT(rename(up, moved), 0);
  struct worker w = {0};
  struct pipe p;
  struct reason why = {{0}};
  struct buf b;
  buf_init(&b, 1 << 20);
  struct modreq m = req("/example.com/m/@v/list");
  pipe_init(&p, &srv, &w);
  ASSERT_EQ_INT(pipe_resolve(&p, &m, &b, &why), 0);
  ASSERT_EQ_STR(p.cache, "stale");
  ASSERT_TRUE(b.len && memmem(b.data, b.len, "v1.1.0", 6) != NULL);
  m = req("/example.com/m/@v/v1.0.0.zip");
  pipe_init(&p, &srv, &w);
  ASSERT_EQ_INT(pipe_ensure(&p, &m, 1, &why), 0);
  ASSERT_EQ_INT(p.upstream, 0);
  ASSERT_EQ_INT(rename(moved, up), 0);
  buf_free(&b);
  curl_easy_cleanup(w.curl);
  buf_free(&w.scratch);
}

/* offline: storage only, nothing asked of the upstream. */
static void offline(void) {
  close_server();
  open_server(1);
  struct worker w = {0};
  struct pipe p;
  struct reason why = {{0}};
  struct buf b;
  buf_init(&b, 1 << 20);
  struct modreq m = req("/example.com/m/@v/v1.0.0.zip");
  pipe_init(&p, &srv, &w);
  ASSERT_EQ_INT(p.offline, 1);
  ASSERT_EQ_INT(pipe_ensure(&p, &m, 1, &why), 0);
  put_version("example.com/m", "v1.2.0", 1, 1);
  m = req("/example.com/m/@v/v1.2.0.info");
  ASSERT_EQ_INT(pipe_ensure(&p, &m, 0, &why), ERR_NOT_FOUND);
  ASSERT_TRUE(strstr(why.text, "(offline)") != NULL);
  m = req("/example.com/m/@v/list");
  ASSERT_EQ_INT(pipe_resolve(&p, &m, &b, &why), 0);
  ASSERT_TRUE(b.len && memmem(b.data, b.len, "v1.2.0", 6) == NULL);
  m = req("/example.com/m/@latest");
  ASSERT_EQ_INT(pipe_resolve(&p, &m, &b, &why), 0);
  ASSERT_TRUE(b.len && memmem(b.data, b.len, "\"v1.1.0\"", 8) != NULL);
  ASSERT_EQ_INT(p.upstream, 0);
  buf_free(&b);
  curl_easy_cleanup(w.curl);
  buf_free(&w.scratch);
  close_server();
  open_server(0);
}

/* Eight threads asking for one version at once: one fetch. */
struct racer {
  const struct modreq *m;
  int rc;
  int upstream;
};

static void *race(void *arg) {
  struct racer *r = arg;
  struct worker w = {0};
  struct pipe p;
  struct reason why = {{0}};
  pipe_init(&p, &srv, &w);
  r->rc = pipe_ensure(&p, r->m, 1, &why);
  r->upstream = p.upstream;
  curl_easy_cleanup(w.curl);
  buf_free(&w.scratch);
  return NULL;
}

static void coalesced(void) {
  put_version("example.com/race", "v1.0.0", 1, 1);
  struct modreq m = req("/example.com/race/@v/v1.0.0.zip");
  pthread_t t[8];
  struct racer r[8];
  for (int i = 0; i < 8; i++) {
    r[i] = (struct racer){&m, -1, 0};
    pthread_create(&t[i], NULL, race, &r[i]);
  }
  int total = 0;
  for (int i = 0; i < 8; i++) {
    pthread_join(t[i], NULL);
    ASSERT_EQ_INT(r[i].rc, 0);
    total += r[i].upstream;
  }
  ASSERT_EQ_INT(total, 3);
}

int main(void) {
  log_setup("text", "error");
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const char *tmp = getenv("TMPDIR");
  snprintf(root, sizeof root, "%s/gomirror-pipeline-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(root)) {
    perror("mkdtemp");
    return 2;
  }
  snprintf(up, sizeof up, "%s/up", root);
  snprintf(store, sizeof store, "%s/store", root);
  mkdirs(store);
  put_version("example.com/m", "v1.0.0", 1, 1);
  put_version("example.com/m", "v1.1.0", 1, 1);
  put("example.com/m/@v/list", "v1.0.0\nv1.1.0\n");
  put("example.com/m/@latest",
      "{\"Version\":\"v1.1.0\",\"Time\":\"2024-01-02T03:04:05Z\"}");
  put_version("example.com/half", "v1.0.0", 0, 0);
  put_version("example.com/bad", "v1.0.0", 0, 0);
  put("example.com/bad/@v/v1.0.0.mod", "<html>captive portal</html>\n");
  open_server(0);

  RUN_TEST(ensure_commits_then_costs_nothing);
  RUN_TEST(ensure_without_zip_then_zip);
  RUN_TEST(not_found_is_cached);
  RUN_TEST(bad_mod_is_refused);
  RUN_TEST(info_without_mod);
  RUN_TEST(resolve_list_and_latest);
  RUN_TEST(upstream_gone);
  RUN_TEST(offline);
  RUN_TEST(coalesced);

  close_server();
  curl_global_cleanup();
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", root);
  return test_summary();
}
