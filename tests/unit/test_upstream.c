/* Unit tests for the rules that keep a hostile upstream or checksum
 * database in its place (issue 10): which redirects are followed
 * (upstream_redirect_check), which addresses are refused
 * (upstream_addr_kind), and which checksum-database answers count as
 * answers (sumdb_check_answer). The integration side is
 * tests/integration/test_hostile_upstream.py. */
#include "core/err.h"
#include "server/sumdb.h"
#include "server/upstream.h"
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* ---- redirects ---- */

static int redirect(const char *origin, const char *from, const char *to,
                    const char *hosts, int *own, struct reason *why) {
  memset(why, 0, sizeof *why);
  *own = -1;
  return upstream_redirect_check(origin, from, to, hosts, own, why);
}

static void redirect_own_host(void) {
  struct reason why;
  int own;
  const char *o = "http://proxy.corp:8080/example.com/m/@v/v1.0.0.zip";
  ASSERT_EQ_INT(
      redirect(o, o, "http://proxy.corp:8080/blobs/x", "", &own, &why), 0);
  ASSERT_EQ_INT(own, 1);
  /* Names are compared without case and without a trailing dot. */
  ASSERT_EQ_INT(redirect(o, o, "http://PROXY.corp.:8080/x", "", &own, &why), 0);
  ASSERT_EQ_INT(own, 1);
  /* Another port of the same machine is another service. */
  ASSERT_EQ_INT(redirect(o, o, "http://proxy.corp:6379/x", "", &own, &why),
                ERR_UPSTREAM);
  ASSERT_TRUE(strstr(why.text, "proxy.corp:6379 refused") != NULL);
  /* http on 80 may move to https on 443, not the other way. */
  const char *plain = "http://proxy.corp/x";
  ASSERT_EQ_INT(redirect(plain, plain, "https://proxy.corp/x", "", &own, &why),
                0);
  ASSERT_EQ_INT(own, 1);
  ASSERT_EQ_INT(
      redirect(plain, plain, "https://proxy.corp:8443/x", "", &own, &why),
      ERR_UPSTREAM);
  /* Default ports written out are the same port. */
  ASSERT_EQ_INT(redirect("https://p.example/a", "https://p.example/a",
                         "https://p.example:443/b", "", &own, &why),
                0);
  ASSERT_EQ_INT(own, 1);
}

static void redirect_listed_hosts(void) {
  struct reason why;
  int own;
  const char *o = "https://proxy.example/m/@v/v1.0.0.zip";
  const char *hosts = " cdn.example.com , *.blobs.example ,[2001:db8::1]";
  ASSERT_EQ_INT(
      redirect(o, o, "https://cdn.example.com/z?sig=1", hosts, &own, &why), 0);
  ASSERT_EQ_INT(own, 0);
  ASSERT_EQ_INT(
      redirect(o, o, "https://CDN.Example.Com:8443/z", hosts, &own, &why), 0);
  /* A name covers only itself... */
  ASSERT_EQ_INT(
      redirect(o, o, "https://eu.cdn.example.com/z", hosts, &own, &why),
      ERR_UPSTREAM);
  ASSERT_EQ_INT(
      redirect(o, o, "https://cdn.example.com.evil.io/z", hosts, &own, &why),
      ERR_UPSTREAM);
  /* ...and "*.name" every name below it, not the name itself. */
  ASSERT_EQ_INT(
      redirect(o, o, "https://a.b.blobs.example/z", hosts, &own, &why), 0);
  ASSERT_EQ_INT(redirect(o, o, "https://blobs.example/z", hosts, &own, &why),
                ERR_UPSTREAM);
  ASSERT_EQ_INT(redirect(o, o, "https://xblobs.example/z", hosts, &own, &why),
                ERR_UPSTREAM);
  ASSERT_EQ_INT(
      redirect(o, o, "https://[2001:db8::1]:9000/z", hosts, &own, &why), 0);
  ASSERT_EQ_INT(redirect(o, o, "https://169.254.169.254/latest/meta-data/",
                         hosts, &own, &why),
                ERR_UPSTREAM);
  ASSERT_TRUE(strstr(why.text, "upstream_redirect_hosts") != NULL);
  ASSERT_EQ_INT(redirect(o, o, "https://cdn.example.com/z", NULL, &own, &why),
                ERR_UPSTREAM);
}

static void redirect_schemes(void) {
  struct reason why;
  int own;
  const char *o = "https://proxy.example/m";
  /* Never from https down to http, even to the upstream's own host. */
  ASSERT_EQ_INT(
      redirect(o, o, "http://proxy.example/m", "proxy.example", &own, &why),
      ERR_UPSTREAM);
  ASSERT_TRUE(strstr(why.text, "from https to http") != NULL);
  /* The rule is per hop: an http hop after https is refused too. */
  ASSERT_EQ_INT(redirect("http://proxy.example/m", "https://proxy.example/b",
                         "http://proxy.example/c", "", &own, &why),
                ERR_UPSTREAM);
  ASSERT_EQ_INT(redirect(o, o, "file:///etc/passwd", "", &own, &why),
                ERR_UPSTREAM);
  ASSERT_EQ_INT(redirect(o, o, "gopher://proxy.example/", "", &own, &why),
                ERR_UPSTREAM);
  ASSERT_EQ_INT(redirect(o, o, "not a url", "", &own, &why), ERR_UPSTREAM);
}

/* ---- addresses ---- */

static const char *kind_of(const char *ip) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in *in = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, ip, &in->sin_addr) == 1)
    ss.ss_family = AF_INET;
  else if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1)
    ss.ss_family = AF_INET6;
  const char *k = upstream_addr_kind((const struct sockaddr *)&ss);
  return k ? k : "public";
}

static void addresses(void) {
  static const struct {
    const char *ip, *kind;
  } cases[] = {
      {"127.0.0.1", "loopback"},
      {"127.255.255.254", "loopback"},
      {"10.1.2.3", "private"},
      {"172.16.0.1", "private"},
      {"172.31.255.255", "private"},
      {"172.32.0.1", "public"},
      {"192.168.1.1", "private"},
      {"169.254.169.254", "link-local"},
      {"100.64.0.1", "shared (CGNAT)"},
      {"100.127.255.255", "shared (CGNAT)"},
      {"100.128.0.1", "public"},
      {"0.0.0.0", "unspecified"},
      {"224.0.0.1", "multicast"},
      {"255.255.255.255", "reserved"},
      {"8.8.8.8", "public"},
      {"151.101.1.1", "public"},
      {"::1", "loopback"},
      {"::", "unspecified"},
      {"::ffff:127.0.0.1", "loopback"},
      {"::ffff:10.0.0.1", "private"},
      {"::ffff:169.254.169.254", "link-local"},
      {"::ffff:8.8.8.8", "public"},
      {"::127.0.0.1", "reserved"},
      {"64:ff9b::a9fe:a9fe", "link-local"},
      {"64:ff9b::808:808", "public"},
      {"2002:7f00:1::", "loopback"},
      {"fc00::1", "unique-local"},
      {"fd12:3456::1", "unique-local"},
      {"fe80::1", "link-local"},
      {"febf::1", "link-local"},
      {"fec0::1", "site-local"},
      {"ff02::1", "multicast"},
      {"2001:db8::1", "reserved"},
      {"2a00:1450:4001::200e", "public"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    const char *got = kind_of(cases[i].ip);
    if (strcmp(got, cases[i].kind) != 0)
      TEST_FAIL_("%s: got %s, want %s", cases[i].ip, got, cases[i].kind);
  }
  struct sockaddr sa = {.sa_family = AF_UNIX};
  ASSERT_TRUE(upstream_addr_kind(&sa) != NULL);
}

/* ---- checksum-database answers ---- */

static const struct sumdb_entry db = {"sumdb.test", "http://db", "http://db", 0,
                                      {{0}, 0, {0}}};

#define NOTE                                                                   \
  "go.sum database tree\n"                                                     \
  "7\n"                                                                        \
  "nND/nri/U0xuHUrYSy0HtMeal2vzD9V4k/BO79C+QeI=\n"                             \
  "\n"                                                                         \
  "\xe2\x80\x94 sumdb.test Az3grnmrhKpp9bGWMiHlCuOCF5jU3K/Pll7bdNQ42ZGCRVzY\n"
#define RECORD                                                                 \
  "5\n"                                                                        \
  "example.com/m v1.0.0 h1:zipzipzipzip=\n"                                    \
  "example.com/m v1.0.0/go.mod h1:modmodmodmod=\n"                             \
  "\n"

static int answer(const char *rest, const char *body, struct reason *why) {
  memset(why, 0, sizeof *why);
  return sumdb_check_answer(&db, rest, body, strlen(body), why);
}

static void sumdb_lookups(void) {
  struct reason why;
  const char *rest = "lookup/example.com/m@v1.0.0";
  ASSERT_EQ_INT(answer(rest, RECORD NOTE, &why), 0);
  /* Escaped paths are decoded before the lines are looked for. */
  ASSERT_EQ_INT(answer("lookup/example.com/!m@v1.0.0",
                       "5\nexample.com/M v1.0.0 h1:a=\n"
                       "example.com/M v1.0.0/go.mod h1:b=\n\n" NOTE,
                       &why),
                0);
  static const struct {
    const char *body, *want;
  } bad[] = {
      {"", "no record id"},
      {"<html><body>Sign in</body></html>\n", "no record id"},
      {"5\nexample.com/other v1.0.0 h1:x=\n\n" NOTE, "no go.sum lines"},
      {"5\nexample.com/m v1.0.0 h1:zip=\n\n" NOTE, "no go.sum lines"},
      {"5\nexample.com/m v1.0.0/go.mod h1:mod=\n\n" NOTE, "no go.sum lines"},
      {"5\nexample.com/m v1.0.0 h1:a=\nexample.com/m v1.0.0/go.mod h1:b=\n",
       "not a record"},
      {"05\n" RECORD NOTE, "no record id"},
      {"-5\n" RECORD NOTE, "no record id"},
      {RECORD, "no signature block"},
      {RECORD "go.sum database tree\n7\n", "no signature block"},
      {RECORD "go.sum database tree\n7\nshort\n\n"
              "\xe2\x80\x94 sumdb.test Az3grnmrhKpp9bGWMiHlCuOCF5jU3K/P\n",
       "malformed tree"},
      {RECORD "not a tree\n\n\xe2\x80\x94 sumdb.test Az3grnmr\n",
       "not a go.sum database tree"},
      {RECORD "go.sum database tree\n7\n"
              "nND/nri/U0xuHUrYSy0HtMeal2vzD9V4k/BO79C+QeI=\n\n"
              "\xe2\x80\x94 evil.example Az3grnmrhKpp9bGWMiHlCuOCF5jU3K/P\n",
       "no signature by this database"},
      {RECORD "go.sum database tree\n7\n"
              "nND/nri/U0xuHUrYSy0HtMeal2vzD9V4k/BO79C+QeI=\n\n"
              "- sumdb.test Az3grnmrhKpp9bGWMiHlCuOCF5jU3K/P\n",
       "malformed signature line"},
      {RECORD "go.sum database tree\n7\n"
              "nND/nri/U0xuHUrYSy0HtMeal2vzD9V4k/BO79C+QeI=\n\n"
              "\xe2\x80\x94 sumdb.test !!!!\n",
       "malformed signature line"},
      {RECORD "go.sum database tree\n7\n"
              "nND/nri/U0xuHUrYSy0HtMeal2vzD9V4k/BO79C+QeI=\n\n"
              "\xe2\x80\x94 sumdb.test Az3grnmrhKpp9bGWMiHlCuOCF5jU3K/P",
       "no signature block"},
      {"9\nexample.com/m v1.0.0 h1:a=\nexample.com/m v1.0.0/go.mod "
       "h1:b=\n\n" NOTE,
       "record id beyond the tree"},
      {"5\nexample.com/m v1.0.0 h1:a=\x01\nexample.com/m v1.0.0/go.mod "
       "h1:b=\n\n" NOTE,
       "not a record"},
      {"5\nexample.com/m v1.0.0 h1:\xff=\nexample.com/m v1.0.0/go.mod "
       "h1:b=\n\n" NOTE,
       "not a record"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int rc = answer(rest, bad[i].body, &why);
    if (rc != ERR_BAD_UPSTREAM_DATA)
      TEST_FAIL_("bad[%zu] gave %d, want ERR_BAD_UPSTREAM_DATA", i, rc);
    else if (!strstr(why.text, bad[i].want) ||
             !strstr(why.text, "sumdb.test") ||
             !strstr(why.text, "example.com/m@v1.0.0"))
      TEST_FAIL_("bad[%zu]: reason \"%s\" lacks \"%s\" or the names", i,
                 why.text, bad[i].want);
  }
}

static void sumdb_latest(void) {
  struct reason why;
  ASSERT_EQ_INT(answer("latest", NOTE, &why), 0);
  ASSERT_EQ_INT(answer("latest", "<html>portal</html>\n", &why),
                ERR_BAD_UPSTREAM_DATA);
  ASSERT_TRUE(strstr(why.text, "latest") != NULL);
  ASSERT_EQ_INT(answer("supported", "", &why), 0);
}

/* A client's checksum-database path: %21 and %2B decode, nothing else. */
static void sumdb_unescape(void) {
  char a[] = "lookup/github.com/%21burnt%21sushi/toml@v1.0.0%2Bincompatible";
  ASSERT_EQ_INT(sumdb_unescape_rest(a), 0);
  ASSERT_EQ_STR(a, "lookup/github.com/!burnt!sushi/toml@v1.0.0+incompatible");
  char b[] = "lookup/x@v1%2b";
  ASSERT_EQ_INT(sumdb_unescape_rest(b), 0);
  ASSERT_EQ_STR(b, "lookup/x@v1+");
  const char *bad[] = {"lookup/%2F..", "lookup/a b", "lookup/%", "lookup/%2",
                       "lookup/\x7f", "lookup/\xc3\xa9"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char c[64];
    snprintf(c, sizeof c, "%s", bad[i]);
    ASSERT_EQ_INT(sumdb_unescape_rest(c), ERR_INVALID);
  }
}

static void sumdb_tiles(void) {
  struct reason why;
  static char buf[8193];
  memset(buf, 'h', sizeof buf - 1);
  buf[8192] = '\0';
  ASSERT_EQ_INT(answer("tile/8/0/000", buf, &why), 0);
  ASSERT_EQ_INT(answer("tile/8/1/x001/234", buf, &why), 0);
  buf[8191] = '\0';
  ASSERT_EQ_INT(answer("tile/8/0/000", buf, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_TRUE(strstr(why.text, "8191 bytes, want 8192") != NULL);
  buf[96] = '\0';
  ASSERT_EQ_INT(answer("tile/8/0/000.p/3", buf, &why), 0);
  ASSERT_EQ_INT(answer("tile/8/0/000.p/4", buf, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_EQ_INT(answer("tile/8/0/000.p/2", buf, &why), ERR_BAD_UPSTREAM_DATA);
  /* Data tiles: W records, each ending in a blank line. */
  const char *two = "0\nexample.com/a v1.0.0 h1:a=\n"
                    "example.com/a v1.0.0/go.mod h1:b=\n\n"
                    "1\nexample.com/b v1.0.0 h1:c=\n"
                    "example.com/b v1.0.0/go.mod h1:d=\n\n";
  ASSERT_EQ_INT(answer("tile/8/data/000.p/2", two, &why), 0);
  ASSERT_EQ_INT(answer("tile/8/data/000.p/3", two, &why),
                ERR_BAD_UPSTREAM_DATA);
  ASSERT_TRUE(strstr(why.text, "2 records, want 3") != NULL);
  ASSERT_EQ_INT(
      answer("tile/8/data/000.p/2", "0\nexample.com/a v1.0.0 h1:", &why),
      ERR_BAD_UPSTREAM_DATA);
  ASSERT_TRUE(strstr(why.text, "not a data tile") != NULL);
  ASSERT_EQ_INT(answer("tile/8/data/000", two, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_TRUE(strstr(why.text, "2 records, want 256") != NULL);
  /* Tile paths tlog.ParseTilePath refuses never get this far. */
  ASSERT_EQ_INT(answer("tile/0/0/000", "", &why), ERR_NOT_FOUND);
  ASSERT_EQ_INT(answer("tile/31/0/000", "", &why), ERR_NOT_FOUND);
  ASSERT_EQ_INT(answer("tile/2/0/000.p/4", "", &why), ERR_NOT_FOUND);
}

int main(void) {
  RUN_TEST(redirect_own_host);
  RUN_TEST(redirect_listed_hosts);
  RUN_TEST(redirect_schemes);
  RUN_TEST(addresses);
  RUN_TEST(sumdb_lookups);
  RUN_TEST(sumdb_latest);
  RUN_TEST(sumdb_tiles);
  RUN_TEST(sumdb_unescape);
  return test_summary();
}
