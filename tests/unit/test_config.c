/* Unit tests for core/config.c: defaults, the file format, precedence of
 * flags over environment over file, error reasons naming their source, the
 * semantic checks and secret masking. */
#include "core/config.h"
#include "core/err.h"

#include "test.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

/* Writes text to a fresh temp file; its path goes to path (unlink it). */
static void write_temp(const char *text, char *path, size_t n) {
  const char *dir = getenv("TMPDIR");
  snprintf(path, n, "%s/gomirror-test-config-XXXXXX", dir ? dir : "/tmp");
  int fd = mkstemp(path);
  ASSERT_TRUE(fd >= 0);
  if (fd < 0)
    return;
  size_t len = strlen(text);
  ASSERT_EQ_INT(write(fd, text, len), (long long)len);
  close(fd);
}

/* Initialises c and loads argv (NULL-terminated, program name added) and
 * envp into it, as main() does. */
static int load(struct config *c, char **argv, char **envp,
                enum config_action *action, struct reason *why) {
  char *args[32] = {"gomirror"};
  int argc = 1;
  for (; argv && argv[argc - 1] && argc < 31; argc++)
    args[argc] = argv[argc - 1];
  args[argc] = NULL;
  memset(why, 0, sizeof *why);
  ASSERT_EQ_INT(config_init(c), 0);
  return config_load(c, argc, args, envp, action, why);
}

/* Loads a config file with the given text and no env or flags. */
static int load_text(struct config *c, const char *text, struct reason *why) {
  char path[256];
  write_temp(text, path, sizeof path);
  char *argv[] = {"--config", path, NULL};
  enum config_action action;
  int rc = load(c, argv, NULL, &action, why);
  unlink(path);
  return rc;
}

static int contains(const char *hay, const char *needle) {
  return hay && strstr(hay, needle) != NULL;
}

static void test_defaults(void) {
  struct config c;
  ASSERT_EQ_INT(config_init(&c), 0);
  ASSERT_EQ_STR(c.listen, "0.0.0.0:3000");
  ASSERT_EQ_STR(c.upstream, "https://proxy.golang.org");
  ASSERT_EQ_STR(c.private_patterns, "");
  ASSERT_EQ_STR(c.storage, "fs://./data");
  ASSERT_EQ_STR(c.meta, "memory");
  ASSERT_EQ_STR(c.sumdb, "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8=https://sum.golang.org");
  ASSERT_EQ_STR(c.sumdb_verify, "strict");
  ASSERT_EQ_INT(c.list_ttl, 60);
  ASSERT_EQ_INT(c.negative_ttl, 60);
  ASSERT_EQ_STR(c.log_format, "text");
  ASSERT_EQ_STR(c.log_level, "info");
  ASSERT_EQ_INT(c.threads, 256);
  ASSERT_EQ_INT(c.connect_timeout, 10);
  ASSERT_EQ_INT(c.fetch_timeout, 300);
  ASSERT_EQ_INT(c.drain_timeout, 30);
  ASSERT_TRUE(c.config_file == NULL);
  struct reason why = {{0}};
  ASSERT_EQ_INT(config_check(&c, &why), 0);
  config_free(&c);
  ASSERT_TRUE(c.listen == NULL);
  config_free(&c); /* twice is harmless */
  config_free(NULL);
}

static void test_load_no_sources(void) {
  struct config c;
  struct reason why;
  enum config_action action = CONFIG_HELP;
  ASSERT_EQ_INT(load(&c, NULL, NULL, &action, &why), 0);
  ASSERT_EQ_INT(action, CONFIG_SERVE);
  ASSERT_EQ_STR(c.listen, "0.0.0.0:3000");
  ASSERT_EQ_INT(c.threads, 256);
  config_free(&c);
}

static void test_set(void) {
  struct config c;
  struct reason why = {{0}};
  config_init(&c);
  ASSERT_EQ_INT(config_set(&c, "list_ttl", "0", "test", &why), 0);
  ASSERT_EQ_INT(c.list_ttl, 0);
  ASSERT_EQ_INT(config_set(&c, "private", "*.corp.example", "test", &why), 0);
  ASSERT_EQ_STR(c.private_patterns, "*.corp.example");
  ASSERT_EQ_INT(config_set(&c, "nope", "1", "test", &why), ERR_CONFIG);
  ASSERT_TRUE(contains(why.text, "test: unknown key 'nope'"));
  /* strtol alone would accept all of these. */
  const char *bad[] = {"", " 5", "5 ", "+5", "-5", "5x", "0x10", "1e3"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ASSERT_EQ_INT(config_set(&c, "list_ttl", bad[i], "test", &why), ERR_CONFIG);
    ASSERT_TRUE(contains(why.text, "non-negative integer"));
  }
  ASSERT_EQ_INT(c.list_ttl, 0);
  ASSERT_EQ_INT(config_set(&c, "threads", "0", "t", &why), ERR_CONFIG);
  ASSERT_TRUE(contains(why.text, "t: threads must be between 1 and 4096"));
  ASSERT_EQ_INT(config_set(&c, "threads", "4097", "t", &why), ERR_CONFIG);
  ASSERT_EQ_INT(
      config_set(&c, "list_ttl", "99999999999999999999999", "t", &why),
      ERR_CONFIG);
  ASSERT_TRUE(contains(why.text, "between"));
  ASSERT_EQ_INT(config_set(&c, "threads", "1024", "t", &why), 0);
  ASSERT_EQ_INT(c.threads, 1024);
  ASSERT_EQ_INT(config_set(&c, "listen", "a\nb", "t", &why), ERR_CONFIG);
  ASSERT_TRUE(contains(why.text, "control character"));
  ASSERT_TRUE(!contains(why.text, "\n"));
  ASSERT_EQ_STR(c.listen, "0.0.0.0:3000");
  config_free(&c);
}

static void test_file_parsing(void) {
  struct config c;
  struct reason why;
  const char *text = "# gomirror test config\n"
                     "\n"
                     "   \t\n"
                     "listen = 127.0.0.1:8080\n"
                     "  upstream=https://a.example|direct  \n"
                     "private = \"*.corp.example,example.com/team\"\n"
                     "storage=\"fs:///var/cache/gomirror\"\r\n"
                     "\t# indented comment\n"
                     "list_ttl = 5\n"
                     "list_ttl = 7\n"
                     "log_level = \"\"\n"
                     "log_format = \" json \"\n"
                     "sumdb = a=b=c\n";
  ASSERT_EQ_INT(load_text(&c, text, &why), 0);
  ASSERT_EQ_STR(why.text, "");
  ASSERT_EQ_STR(c.listen, "127.0.0.1:8080");
  ASSERT_EQ_STR(c.upstream, "https://a.example|direct");
  ASSERT_EQ_STR(c.private_patterns, "*.corp.example,example.com/team");
  ASSERT_EQ_STR(c.storage, "fs:///var/cache/gomirror");
  ASSERT_EQ_INT(c.list_ttl, 7); /* the later line wins */
  ASSERT_EQ_STR(c.log_level, "");
  ASSERT_EQ_STR(c.log_format, " json "); /* quotes keep the spaces */
  ASSERT_EQ_STR(c.sumdb, "a=b=c");       /* only the first '=' splits */
  ASSERT_EQ_INT(c.threads, 256);         /* untouched keys keep defaults */
  ASSERT_TRUE(c.config_file != NULL);
  config_free(&c);

  ASSERT_EQ_INT(load_text(&c, "", &why), 0);
  ASSERT_EQ_STR(c.listen, "0.0.0.0:3000");
  config_free(&c);
  ASSERT_EQ_INT(load_text(&c, "listen = 1.2.3.4:5", &why), 0); /* no \n */
  ASSERT_EQ_STR(c.listen, "1.2.3.4:5");
  config_free(&c);
}

/* Each bad file fails with its line number and a recognisable reason. */
static void test_file_errors(void) {
  static const struct {
    const char *text, *want;
  } cases[] = {
      {"listen = :1\nbogus = 1\n", ":2: unknown key 'bogus'"},
      {"# c\n\nlisten 127.0.0.1:80\n", ":3: expected 'key = value'"},
      {"= value\n", ":1: missing key before '='"},
      {"a\n", ":1: expected"},
      {"list_ttl = 5\nlist_ttl = soon\n",
       ":2: list_ttl must be a non-negative integer, got 'soon'"},
      {"threads = -3\n", ":1: threads must be a non-negative integer"},
      {"threads = 0\n", ":1: threads must be between 1 and 4096"},
      {"listen = \"127.0.0.1:80\n", ":1: listen has an unterminated quote"},
      {"listen = \"\n", ":1: listen has an unterminated quote"},
      {"config = other.conf\n", ":1: config can only be set by flag"},
      {"listen = a\nx\0y = 1\n", ":2: line contains a NUL byte"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct config c;
    struct reason why;
    char path[256];
    /* write_temp stops at NUL, so the NUL case is written by hand. */
    size_t len = strlen(cases[i].text);
    if (i == sizeof cases / sizeof cases[0] - 1)
      len = 19;
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/gomirror-test-config-XXXXXX",
             dir ? dir : "/tmp");
    int fd = mkstemp(path);
    ASSERT_TRUE(fd >= 0);
    ASSERT_EQ_INT(write(fd, cases[i].text, len), (long long)len);
    close(fd);
    char *argv[] = {"--config", path, NULL};
    enum config_action action;
    ASSERT_EQ_INT(load(&c, argv, NULL, &action, &why), ERR_CONFIG);
    if (!contains(why.text, cases[i].want))
      TEST_FAIL_("case %zu: reason \"%s\" lacks \"%s\"", i, why.text,
                 cases[i].want);
    ASSERT_TRUE(contains(why.text, path)); /* names the file */
    unlink(path);
    config_free(&c);
  }

  struct config c;
  struct reason why;
  char *argv[] = {"--config", "/nonexistent/gomirror.conf", NULL};
  enum config_action action;
  ASSERT_EQ_INT(load(&c, argv, NULL, &action, &why), ERR_CONFIG);
  ASSERT_TRUE(contains(why.text, "/nonexistent/gomirror.conf"));
  config_free(&c);
}

static void test_precedence(void) {
  char path[256];
  write_temp("listen = 10.0.0.1:1\n"
             "upstream = https://file.example\n"
             "list_ttl = 1\n"
             "negative_ttl = 1\n"
             "threads = 1\n",
             path, sizeof path);
  char *envp[] = {"HOME=/root",
                  "GOMIRROR_UPSTREAM=https://env.example",
                  "GOMIRROR_LIST_TTL=2",
                  "GOMIRROR_NEGATIVE_TTL=2",
                  "GOMIRROR_LIST_TTL=77", /* first one wins, like getenv */
                  "GOMIRROR",             /* not ours: no '_' */
                  NULL};
  char *argv[] = {"--list_ttl=3", "--config", path, "--threads", "4", NULL};
  struct config c;
  struct reason why;
  enum config_action action;
  ASSERT_EQ_INT(load(&c, argv, envp, &action, &why), 0);
  ASSERT_EQ_STR(why.text, "");
  ASSERT_EQ_STR(c.listen, "10.0.0.1:1");            /* file only */
  ASSERT_EQ_STR(c.upstream, "https://env.example"); /* env > file */
  ASSERT_EQ_INT(c.negative_ttl, 2);                 /* env > file */
  ASSERT_EQ_INT(c.list_ttl, 3);                     /* flag > env > file */
  ASSERT_EQ_INT(c.threads, 4);                      /* flag > file */
  ASSERT_EQ_STR(c.config_file, path);
  ASSERT_EQ_STR(c.storage, "fs://./data"); /* default */
  config_free(&c);

  /* The file can come from the environment; the flag still overrides it. */
  char envconf[300];
  snprintf(envconf, sizeof envconf, "GOMIRROR_CONFIG=%s", path);
  char *envp2[] = {envconf, "GOMIRROR_THREADS=8", NULL};
  ASSERT_EQ_INT(load(&c, NULL, envp2, &action, &why), 0);
  ASSERT_EQ_STR(c.listen, "10.0.0.1:1");
  ASSERT_EQ_INT(c.threads, 8);
  ASSERT_EQ_STR(c.config_file, path);
  config_free(&c);

  char *argv2[] = {"--config=/nonexistent/flag.conf", NULL};
  ASSERT_EQ_INT(load(&c, argv2, envp2, &action, &why), ERR_CONFIG);
  ASSERT_TRUE(contains(why.text, "/nonexistent/flag.conf"));
  config_free(&c);

  /* An empty --config means "no file", even when the environment names one. */
  char *argv3[] = {"--config=", NULL};
  ASSERT_EQ_INT(load(&c, argv3, envp2, &action, &why), 0);
  ASSERT_EQ_STR(c.listen, "0.0.0.0:3000");
  ASSERT_TRUE(c.config_file == NULL);
  config_free(&c);
  unlink(path);
}

static void test_flag_forms(void) {
  struct config c;
  struct reason why;
  enum config_action action;
  char *argv[] = {"--listen",
                  "127.0.0.1:9",
                  "--upstream=a.example,direct",
                  "--private",
                  "",
                  "--log-level=debug", /* dashes for underscores */
                  "--fetch_timeout",
                  "60",
                  "--sumdb=x=https://y", /* only the first '=' splits */
                  NULL};
  ASSERT_EQ_INT(load(&c, argv, NULL, &action, &why), 0);
  ASSERT_EQ_STR(why.text, "");
  ASSERT_EQ_INT(action, CONFIG_SERVE);
  ASSERT_EQ_STR(c.listen, "127.0.0.1:9");
  ASSERT_EQ_STR(c.upstream, "a.example,direct");
  ASSERT_EQ_STR(c.private_patterns, "");
  ASSERT_EQ_STR(c.log_level, "debug");
  ASSERT_EQ_INT(c.fetch_timeout, 60);
  ASSERT_EQ_STR(c.sumdb, "x=https://y");
  config_free(&c);
}

static void test_actions(void) {
  struct config c;
  struct reason why;
  enum config_action action;
  char *help[] = {"--help", NULL};
  ASSERT_EQ_INT(load(&c, help, NULL, &action, &why), 0);
  ASSERT_EQ_INT(action, CONFIG_HELP);
  config_free(&c);
  char *h[] = {"--threads=2", "-h", "--bogus", NULL};
  ASSERT_EQ_INT(load(&c, h, NULL, &action, &why), 0);
  ASSERT_EQ_INT(action, CONFIG_HELP);
  config_free(&c);
  char *check[] = {"--check-config", "--threads=2", NULL};
  ASSERT_EQ_INT(load(&c, check, NULL, &action, &why), 0);
  ASSERT_EQ_INT(action, CONFIG_CHECK);
  ASSERT_EQ_INT(c.threads, 2);
  config_free(&c);
}

static void test_flag_errors(void) {
  static const struct {
    const char *args[3];
    const char *want;
  } cases[] = {
      {{"--bogus=secret"}, "unknown flag --bogus (see --help)"},
      {{"--x"}, "unknown flag --x (see --help)"},
      {{"--listen"}, "flag --listen needs a value"},
      {{"serve"}, "unexpected argument 'serve'"},
      {{"--"}, "unexpected argument '--'"},
      {{"-v"}, "unexpected argument '-v'"},
      {{"--list_ttl=x"},
       "--list_ttl: list_ttl must be a non-negative integer, got 'x'"},
      {{"--threads", "-1"}, "--threads: threads must be a non-negative"},
      {{"--drain-timeout=9999"},
       "--drain_timeout: drain_timeout must be between 0 and 3600"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct config c;
    struct reason why;
    enum config_action action;
    char *argv[4] = {(char *)cases[i].args[0], (char *)cases[i].args[1],
                     (char *)cases[i].args[2], NULL};
    ASSERT_EQ_INT(load(&c, argv, NULL, &action, &why), ERR_CONFIG);
    if (!contains(why.text, cases[i].want))
      TEST_FAIL_("case %zu: reason \"%s\" lacks \"%s\"", i, why.text,
                 cases[i].want);
    ASSERT_TRUE(!contains(why.text, "secret"));
    config_free(&c);
  }
}

static void test_env_errors(void) {
  struct config c;
  struct reason why;
  enum config_action action;
  char *envp[] = {"GOMIRROR_LIST_TTL=x", NULL};
  ASSERT_EQ_INT(load(&c, NULL, envp, &action, &why), ERR_CONFIG);
  ASSERT_EQ_STR(why.text, "GOMIRROR_LIST_TTL: list_ttl must be a "
                          "non-negative integer, got 'x'");
  config_free(&c);
  char *envp2[] = {"GOMIRROR_THREADS=5000", NULL};
  ASSERT_EQ_INT(load(&c, NULL, envp2, &action, &why), ERR_CONFIG);
  ASSERT_TRUE(contains(why.text, "GOMIRROR_THREADS: threads must be between"));
  config_free(&c);
  /* A bad environment value is still an error when a flag overrides it:
   * every source is read in full. */
  char *argv[] = {"--list_ttl=1", NULL};
  ASSERT_EQ_INT(load(&c, argv, envp, &action, &why), ERR_CONFIG);
  config_free(&c);
  /* A GOMIRROR_* name that is no key is refused, with the key it likely
   * meant: in Kubernetes the environment is the configuration. */
  char *typo[] = {"GOMIRROR_THREDS=5", NULL};
  ASSERT_EQ_INT(load(&c, NULL, typo, &action, &why), ERR_CONFIG);
  ASSERT_EQ_STR(why.text, "unknown environment variable GOMIRROR_THREDS; did "
                          "you mean GOMIRROR_THREADS? (see --help)");
  config_free(&c);
  char *lower[] = {"GOMIRROR_list_ttl=5", NULL};
  ASSERT_EQ_INT(load(&c, NULL, lower, &action, &why), ERR_CONFIG);
  ASSERT_TRUE(contains(why.text, "did you mean GOMIRROR_LIST_TTL?"));
  config_free(&c);
  char *far[] = {"GOMIRROR_FIXTURES=/x", NULL};
  ASSERT_EQ_INT(load(&c, NULL, far, &action, &why), ERR_CONFIG);
  ASSERT_EQ_STR(why.text, "unknown environment variable GOMIRROR_FIXTURES (see "
                          "--help)");
  config_free(&c);
  char *other[] = {"GOMIRRORS=1", "HOME=/x", NULL};
  ASSERT_EQ_INT(load(&c, NULL, other, &action, &why), 0);
  config_free(&c);
}

/* A *_file key sets its key from the file; both at once is an error. */
static void test_secret_files(void) {
  char path[] = "/tmp/gomirror-test-secret-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_TRUE(fd >= 0);
  ASSERT_TRUE(write(fd, "s3cr3t\n", 7) == 7);
  close(fd);
  struct config c;
  struct reason why = {{0}};
  enum config_action action;
  char flag[400];
  snprintf(flag, sizeof flag, "--admin_token_file=%s", path);
  char *argv[] = {flag, NULL};
  ASSERT_EQ_INT(load(&c, argv, NULL, &action, &why), 0);
  ASSERT_EQ_STR(c.admin_token, "s3cr3t"); /* the newline dropped */
  config_free(&c);
  char *both[] = {flag, "--admin_token=x", NULL};
  ASSERT_EQ_INT(load(&c, both, NULL, &action, &why), ERR_CONFIG);
  ASSERT_EQ_STR(why.text, "set admin_token or admin_token_file, not both");
  config_free(&c);
  char *missing[] = {"--redis_password_file=/nonexistent/pw", NULL};
  ASSERT_EQ_INT(load(&c, missing, NULL, &action, &why), ERR_CONFIG);
  ASSERT_TRUE(contains(why.text, "redis_password_file: cannot read"));
  config_free(&c);
  fd = open(path, O_WRONLY | O_TRUNC);
  ASSERT_TRUE(write(fd, "a\nb\n", 4) == 4);
  close(fd);
  ASSERT_EQ_INT(load(&c, argv, NULL, &action, &why), ERR_CONFIG);
  ASSERT_TRUE(contains(why.text, "control character"));
  ASSERT_TRUE(!contains(why.text, "a\nb"));
  config_free(&c);
  unlink(path);
}

/* Runs config_check on c with key set to value. */
static int check_with(const char *key, const char *value, struct reason *why) {
  struct config c;
  config_init(&c);
  memset(why, 0, sizeof *why);
  int rc = config_set(&c, key, value, "test", why);
  if (rc == 0)
    rc = config_check(&c, why);
  config_free(&c);
  return rc;
}

static void expect_check(const char *key, const char *value, int want_ok) {
  struct reason why;
  int rc = check_with(key, value, &why);
  if (want_ok && rc != 0)
    TEST_FAIL_("%s=%s rejected: %s", key, value, why.text);
  if (!want_ok && rc != ERR_CONFIG)
    TEST_FAIL_("%s=%s accepted", key, value);
  if (!want_ok && !why.text[0])
    TEST_FAIL_("%s=%s: no reason", key, value);
}

static void test_check_storage(void) {
  expect_check("storage", "fs:///var/lib/gomirror", 1);
  expect_check("storage", "fs://./data", 1);
  expect_check("storage", "fs://data", 1);
  expect_check("storage", "s3://my-bucket", 1);
  expect_check("storage", "s3://my-bucket/some/prefix", 1);
  expect_check("storage", "fs://", 0);
  expect_check("storage", "s3://", 0);
  expect_check("storage", "s3:///prefix", 0);
  expect_check("storage", "s3://Bad_Bucket/x", 0);
  expect_check("storage", "s3://ab", 0);
  expect_check("storage", "/var/lib/gomirror", 0);
  expect_check("storage", "gs://bucket", 0);
  expect_check("storage", "", 0);
}

static void test_check_meta(void) {
  struct reason why;
  expect_check("meta", "memory", 1);
  expect_check("meta", "redis://localhost:6379/0", 1);
  expect_check("meta", "redis://:pw@localhost:6379", 1);
  expect_check("meta", "redis-sentinel://a:1,b:2/m", 1);
  expect_check("meta", "redis://", 0);
  ASSERT_EQ_INT(check_with("meta", "mysql://u:hunter2@h/db", &why), ERR_CONFIG);
  ASSERT_TRUE(!contains(why.text, "hunter2"));
  expect_check("meta", "", 0);
}

static void test_check_listen(void) {
  expect_check("listen", "0.0.0.0:3000", 1);
  expect_check("listen", "127.0.0.1:1", 1);
  expect_check("listen", "localhost:65535", 1);
  expect_check("listen", "[::1]:8080", 0); /* CivetWeb without IPv6 */
  expect_check("listen", "3000", 0);
  expect_check("listen", ":3000", 0);
  expect_check("listen", "0.0.0.0:0", 0);
  expect_check("listen", "0.0.0.0:65536", 0);
  expect_check("listen", "0.0.0.0:", 0);
  expect_check("listen", "0.0.0.0:80x", 0);
  expect_check("listen", "0.0.0.0:+80", 0);
  expect_check("listen", "0.0.0.0:0000080", 0);
  expect_check("listen", "a b:80", 0);
  expect_check("listen", "[::1:80", 0);
}

static void test_check_upstream(void) {
  expect_check("upstream", "https://a,https://b|https://c", 1);
  expect_check("upstream", "off", 1);
  expect_check("upstream", "direct", 1);
  expect_check("upstream", "proxy.example.com", 1);
  expect_check("upstream", "proxy.example.com:8443/sub,direct", 1);
  expect_check("upstream", "https://proxy.golang.org,direct", 1);
  expect_check("upstream", "http://127.0.0.1:8081|off", 1);
  expect_check("upstream", "HTTPS://Proxy.Example", 1);
  expect_check("upstream", "file:///srv/goproxy", 1);
  expect_check("upstream", "https://user:pw@proxy.corp", 1);
  expect_check("upstream", " https://a , direct ", 1);
  expect_check("upstream", "ftp://x", 0);
  expect_check("upstream", "https://a,,https://b", 0);
  expect_check("upstream", "https://a|", 0);
  expect_check("upstream", ",direct", 0);
  expect_check("upstream", "", 0);
  expect_check("upstream", "https://", 0);
  expect_check("upstream", "https:/a", 0);
  expect_check("upstream", "http://user@/x", 0);
  expect_check("upstream", "proxy", 0); /* single words are reserved */
  expect_check("upstream", "/srv/goproxy", 0);
  expect_check("upstream", "file://host/x", 0);
  expect_check("upstream", "file:///x?y", 0);
  expect_check("upstream", "https://a b", 0);

  struct reason why;
  ASSERT_EQ_INT(check_with("upstream", "ftp://u:hunter2@x", &why), ERR_CONFIG);
  ASSERT_TRUE(contains(why.text, "ftp://u:***@x"));
  ASSERT_TRUE(!contains(why.text, "hunter2"));
}

static void test_check_sumdb(void) {
  expect_check("sumdb", "sum.golang.org=https://sum.golang.org", 1);
  expect_check("sumdb",
               "sum.golang.org=https://sum.golang.org,sum.corp=http://"
               "127.0.0.1:9000/sumdb",
               1);
  expect_check("sumdb", "sum.golang.org", 0);
  expect_check("sumdb", "=https://x", 0);
  expect_check("sumdb", "a=ftp://x", 0);
  expect_check("sumdb", "a=https://", 0);
  expect_check("sumdb", "a=https://x,,b=https://y", 0);
  expect_check("sumdb", "a/b=https://x", 0);
  expect_check("sumdb", "..=https://x", 0);
  expect_check("sumdb", "a=https://x,a=https://y", 0);
  expect_check("sumdb", "", 1);
  /* Verifier keys as GOSUMDB writes them. */
  expect_check("sumdb",
               "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8"
               "OuAn8=https://sum.golang.org",
               1);
  expect_check("sumdb", "a+1234abcd+AAAA=https://x,b=https://y", 1);
  expect_check("sumdb", "a+12+AAAA=https://x", 0);       /* short hash */
  expect_check("sumdb", "a+1234abcd+AA AA=https://x", 0); /* not base64 */
  expect_check("sumdb", "+1234abcd+AAAA=https://x", 0);   /* no name */
  /* The same name twice, once with a key. */
  expect_check("sumdb", "a+1234abcd+AAAA=https://x,a=https://y", 0);
  expect_check("sumdb_verify", "strict", 1);
  expect_check("sumdb_verify", "warn", 1);
  expect_check("sumdb_verify", "off", 1);
  expect_check("sumdb_verify", "maybe", 0);
}

static void test_check_others(void) {
  expect_check("log_format", "json", 1);
  expect_check("log_format", "text", 1);
  expect_check("log_format", "xml", 0);
  expect_check("log_level", "debug", 1);
  expect_check("log_level", "error", 1);
  expect_check("log_level", "trace", 0);
  expect_check("log_level", "", 0);

  /* Fields set directly, not through config_set, are checked too. */
  struct config c;
  struct reason why = {{0}};
  config_init(&c);
  c.threads = 0;
  ASSERT_EQ_INT(config_check(&c, &why), ERR_CONFIG);
  ASSERT_TRUE(contains(why.text, "threads"));
  c.threads = 4;
  c.list_ttl = -1;
  ASSERT_EQ_INT(config_check(&c, &why), ERR_CONFIG);
  ASSERT_TRUE(contains(why.text, "list_ttl"));
  c.list_ttl = 1;
  free(c.listen);
  c.listen = NULL;
  ASSERT_EQ_INT(config_check(&c, &why), ERR_CONFIG);
  ASSERT_TRUE(contains(why.text, "listen is not set"));
  config_free(&c);
}

/* Prints c to a string (caller frees). */
static char *print_to_string(const struct config *c) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  ASSERT_TRUE(f != NULL);
  if (!f)
    return NULL;
  config_print(c, f);
  fclose(f);
  return text;
}

static void test_print(void) {
  struct config c;
  struct reason why = {{0}};
  config_init(&c);
  char *text = print_to_string(&c);
  ASSERT_TRUE(contains(text, "listen = 0.0.0.0:3000\n"));
  ASSERT_TRUE(contains(text, "private = \"\"\n"));
  ASSERT_TRUE(contains(text, "list_ttl = 60\n"));
  ASSERT_TRUE(contains(text, "threads = 256\n"));
  ASSERT_TRUE(contains(text, "sumdb_verify = strict\n"));
  /* A file cannot name itself: the line is a comment. */
  ASSERT_TRUE(contains(text, "# config = (none)"));
  ASSERT_TRUE(contains(text, "s3_secret_key = \"\"\n") ||
              contains(text, "s3_secret_key = (unset)\n") ||
              contains(text, "s3_secret_key = \n"));
  /* One line per key, each "key = value": as many lines as " = ". */
  int lines = 0, pairs = 0;
  for (char *p = text; p && *p; p++) {
    lines += *p == '\n';
    pairs += strncmp(p, " = ", 3) == 0;
  }
  ASSERT_EQ_INT(lines, pairs);
  ASSERT_TRUE(lines >= 26);
  free(text);

  ASSERT_EQ_INT(
      config_set(&c, "meta", "redis://:hunter2@redis.local:6379/0", "t", &why),
      0);
  ASSERT_EQ_INT(config_set(&c, "upstream",
                           "https://alice:s3cret@a.example/x,https://"
                           "tok@b.example|direct",
                           "t", &why),
                0);
  ASSERT_EQ_INT(
      config_set(&c, "sumdb", "s=https://u:pw1@sum.example", "t", &why), 0);
  text = print_to_string(&c);
  /* Read back, "***" would become the password: hidden values are
   * comments. */
  ASSERT_TRUE(contains(text, "# meta = redis://:***@redis.local:6379/0 "
                             "(secret, hidden)\n"));
  ASSERT_TRUE(contains(text, "# upstream = https://alice:***@a.example/x,"
                             "https://tok@b.example|direct (secret, hidden)\n"));
  ASSERT_TRUE(contains(text, "# sumdb = s=https://u:***@sum.example (secret, "
                             "hidden)\n"));
  ASSERT_TRUE(!contains(text, "hunter2"));
  ASSERT_TRUE(!contains(text, "s3cret"));
  ASSERT_TRUE(!contains(text, "pw1"));
  free(text);

  /* Unencoded '/' or '@' in a password still masks it; '@' in a path
   * after the host does not confuse the mask. */
  static const struct {
    const char *key, *value, *want;
  } masks[] = {
      {"meta", "redis://:pa/ss@h:6379",
       "# meta = redis://:***@h:6379 (secret, hidden)\n"},
      {"meta", "redis://u:p@ss@h", "# meta = redis://u:***@h (secret, "
                                   "hidden)\n"},
      {"meta", "redis-sentinel://:pw@a:1,b:2/m",
       "# meta = redis-sentinel://:***@a:1,b:2/m (secret, hidden)\n"},
      {"upstream", "https://u:pw@h/mod@v1|direct",
       "# upstream = https://u:***@h/mod@v1|direct (secret, hidden)\n"},
      /* Nothing to hide: a plain line, read back as it is. */
      {"upstream", "https://h/mod@v1", "\nupstream = https://h/mod@v1\n"},
  };
  for (size_t i = 0; i < sizeof masks / sizeof masks[0]; i++) {
    ASSERT_EQ_INT(config_set(&c, masks[i].key, masks[i].value, "t", &why), 0);
    text = print_to_string(&c);
    if (!contains(text, masks[i].want))
      TEST_FAIL_("mask %zu: want \"%s\" in:\n%s", i, masks[i].want, text);
    free(text);
  }

  /* Reasons mask the same way, even when the value is cut for length. */
  char long_pw[200];
  snprintf(long_pw, sizeof long_pw, "ftp://u:%0120d@h", 7);
  struct reason why2;
  ASSERT_EQ_INT(config_set(&c, "upstream", long_pw, "t", &why), 0);
  ASSERT_EQ_INT(config_check(&c, &why2), ERR_CONFIG);
  ASSERT_TRUE(contains(why2.text, "ftp://u:***@h"));
  ASSERT_TRUE(!contains(why2.text, "0000"));
  snprintf(long_pw, sizeof long_pw, "s=ftp://u:%0120d@h", 7);
  ASSERT_EQ_INT(config_set(&c, "upstream", "direct", "t", &why), 0);
  ASSERT_EQ_INT(config_set(&c, "meta", "memory", "t", &why), 0);
  ASSERT_EQ_INT(config_set(&c, "sumdb", long_pw, "t", &why), 0);
  ASSERT_EQ_INT(config_check(&c, &why2), ERR_CONFIG);
  ASSERT_TRUE(contains(why2.text, "sumdb"));
  ASSERT_TRUE(!contains(why2.text, "0000"));
  /* Reasons mask the same way. */
  ASSERT_EQ_INT(config_set(&c, "meta", "redis://:hunter2@h\x01", "t", &why),
                ERR_CONFIG);
  ASSERT_TRUE(!contains(why.text, "hunter2"));
  config_free(&c);
}

/* What config_print writes reads back as the same configuration. */
static void test_print_round_trip(void) {
  struct config c, d;
  struct reason why = {{0}};
  config_init(&c);
  config_set(&c, "private", " spaced ", "t", &why);
  config_set(&c, "listen", "\"quoted\"", "t", &why);
  config_set(&c, "threads", "7", "t", &why);
  char *text = print_to_string(&c);
  /* Read back as it is ("config" is a comment). */
  ASSERT_EQ_INT(load_text(&d, text ? text : "", &why), 0);
  ASSERT_EQ_STR(why.text, "");
  ASSERT_EQ_STR(d.private_patterns, " spaced ");
  ASSERT_EQ_STR(d.listen, "\"quoted\"");
  ASSERT_EQ_INT(d.threads, 7);
  free(text);
  config_free(&c);
  config_free(&d);
}

static void test_usage(void) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  ASSERT_TRUE(f != NULL);
  if (!f)
    return;
  config_usage(f);
  fclose(f);
  ASSERT_TRUE(contains(text, "usage: gomirror"));
  ASSERT_TRUE(contains(text, "--help"));
  ASSERT_TRUE(contains(text, "--check-config"));
  ASSERT_TRUE(contains(text, "--negative_ttl"));
  ASSERT_TRUE(contains(text, "GOMIRROR_NEGATIVE_TTL"));
  ASSERT_TRUE(contains(text, "GOMIRROR_CONFIG"));
  ASSERT_TRUE(contains(text, "sum.golang.org+033de0ae+"));
  free(text);
}

int main(void) {
  RUN_TEST(test_defaults);
  RUN_TEST(test_load_no_sources);
  RUN_TEST(test_set);
  RUN_TEST(test_file_parsing);
  RUN_TEST(test_file_errors);
  RUN_TEST(test_precedence);
  RUN_TEST(test_flag_forms);
  RUN_TEST(test_actions);
  RUN_TEST(test_flag_errors);
  RUN_TEST(test_env_errors);
  RUN_TEST(test_secret_files);
  RUN_TEST(test_check_storage);
  RUN_TEST(test_check_meta);
  RUN_TEST(test_check_listen);
  RUN_TEST(test_check_upstream);
  RUN_TEST(test_check_sumdb);
  RUN_TEST(test_check_others);
  RUN_TEST(test_print);
  RUN_TEST(test_print_round_trip);
  RUN_TEST(test_usage);
  return test_summary();
}
