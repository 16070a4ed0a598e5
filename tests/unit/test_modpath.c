/* Unit tests for server/modpath.c: request-path parsing (PROTOCOL.md C and
 * I.1-I.4, I.9, I.10) and the x/mod path, escape and version rules, with
 * tables from golang.org/x/mod module/module_test.go. */
#include "core/err.h"
#include "mod/modpath.h"
#include "test.h"

#include <stdlib.h>

struct pcase {
  const char *raw;
  int rc;
};

/* Printable copy of a test input for failure messages. */
static const char *printable(const char *s, char *buf, size_t cap) {
  size_t k = 0;
  for (; *s && k + 5 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if (c >= 0x20 && c < 0x7f)
      buf[k++] = (char)c;
    else
      k += (size_t)snprintf(buf + k, cap - k, "\\x%02x", c);
  }
  buf[k] = '\0';
  return buf;
}

/* Every failure must explain itself in one short, clean line, and leave
 * nothing behind in out. */
static int reason_ok(const struct reason *why) {
  size_t n = strnlen(why->text, sizeof why->text);
  if (n == 0 || n >= sizeof why->text)
    return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)why->text[i];
    if (c < 0x20 || c >= 0x7f)
      return 0;
  }
  return 1;
}

static int out_is_empty(const struct modreq *r) {
  return r->module[0] == '\0' && r->module_esc[0] == '\0' &&
         r->version[0] == '\0' && r->version_esc[0] == '\0' &&
         r->canonical == 0;
}

#define EXPECT_PARSE(raw_, want_, r_)                                          \
  do {                                                                         \
    struct reason why_ = {{0}};                                                \
    char pb_[2048];                                                            \
    int rc_ = modpath_parse((raw_), (r_), &why_);                              \
    if (rc_ != (want_))                                                        \
      TEST_FAIL_("modpath_parse(\"%s\") = %d (%s), want %d",                   \
                 printable((raw_), pb_, sizeof pb_), rc_, why_.text, (want_)); \
    if (rc_ && !reason_ok(&why_))                                              \
      TEST_FAIL_("bad reason for \"%s\": \"%s\"",                              \
                 printable((raw_), pb_, sizeof pb_), why_.text);               \
    if (rc_ && !out_is_empty(r_))                                              \
      TEST_FAIL_("out not cleared for \"%s\"",                                 \
                 printable((raw_), pb_, sizeof pb_));                          \
  } while (0)

static void run_cases(const struct pcase *c, size_t n) {
  struct modreq *r = malloc(sizeof *r);
  if (!r) {
    TEST_FAIL_("out of memory");
    return;
  }
  for (size_t i = 0; i < n; i++)
    EXPECT_PARSE(c[i].raw, c[i].rc, r);
  free(r);
}

#define RUN_CASES(arr) run_cases(arr, sizeof arr / sizeof *arr)

static void test_parse_kinds(void) {
  struct modreq r;
  EXPECT_PARSE("/github.com/gin-gonic/gin/@v/list", 0, &r);
  ASSERT_EQ_INT(r.kind, MODREQ_LIST);
  ASSERT_EQ_STR(r.module, "github.com/gin-gonic/gin");
  ASSERT_EQ_STR(r.module_esc, "github.com/gin-gonic/gin");
  ASSERT_EQ_STR(r.version, "");
  ASSERT_EQ_STR(r.version_esc, "");
  ASSERT_EQ_INT(r.canonical, 0);

  EXPECT_PARSE("/github.com/gin-gonic/gin/@latest", 0, &r);
  ASSERT_EQ_INT(r.kind, MODREQ_LATEST);
  ASSERT_EQ_STR(r.module, "github.com/gin-gonic/gin");
  ASSERT_EQ_STR(r.version, "");

  EXPECT_PARSE("/github.com/gin-gonic/gin/@v/v1.9.1.info", 0, &r);
  ASSERT_EQ_INT(r.kind, MODREQ_INFO);
  ASSERT_EQ_STR(r.version, "v1.9.1");
  ASSERT_EQ_STR(r.version_esc, "v1.9.1");
  ASSERT_EQ_INT(r.canonical, 1);

  EXPECT_PARSE("/github.com/gin-gonic/gin/@v/v1.9.1.mod", 0, &r);
  ASSERT_EQ_INT(r.kind, MODREQ_MOD);
  ASSERT_EQ_INT(r.canonical, 1);

  EXPECT_PARSE("/github.com/gin-gonic/gin/@v/v1.9.1.zip", 0, &r);
  ASSERT_EQ_INT(r.kind, MODREQ_ZIP);
  ASSERT_EQ_STR(r.version, "v1.9.1");
  ASSERT_EQ_INT(r.canonical, 1);

  /* Prefix probes are ordinary, valid module paths. */
  EXPECT_PARSE("/github.com/@v/list", 0, &r);
  ASSERT_EQ_STR(r.module, "github.com");
  EXPECT_PARSE("/github.com/user/@v/list", 0, &r);
  ASSERT_EQ_STR(r.module, "github.com/user");

  /* A version may itself end in what looks like a suffix. */
  EXPECT_PARSE("/example.com/a/@v/list.info", 0, &r);
  ASSERT_EQ_STR(r.version, "list");
  ASSERT_EQ_INT(r.canonical, 0);
  EXPECT_PARSE("/example.com/a/@v/v1.0.0.zip.info", 0, &r);
  ASSERT_EQ_INT(r.kind, MODREQ_INFO);
  ASSERT_EQ_STR(r.version, "v1.0.0.zip");
  ASSERT_EQ_INT(r.canonical, 0);
}

static int same_req(const struct modreq *a, const struct modreq *b) {
  return a->kind == b->kind && a->canonical == b->canonical &&
         strcmp(a->module, b->module) == 0 &&
         strcmp(a->module_esc, b->module_esc) == 0 &&
         strcmp(a->version, b->version) == 0 &&
         strcmp(a->version_esc, b->version_esc) == 0;
}

/* I.1: %21 and a literal '!' name one resource; raw upper case is 404. */
static void test_case_encoding(void) {
  struct modreq a, b, c;
  EXPECT_PARSE("/github.com/%21burnt%21sushi/toml/@v/v1.5.3-%21p%21r%21e.info",
               0, &a);
  EXPECT_PARSE("/github.com/!burnt!sushi/toml/@v/v1.5.3-!p!r!e.info", 0, &b);
  EXPECT_PARSE("/github.com/%21burnt!sushi/toml/@v/v1.5.3-!p%21r!e.info", 0,
               &c);
  ASSERT_EQ_STR(a.module, "github.com/BurntSushi/toml");
  ASSERT_EQ_STR(a.module_esc, "github.com/!burnt!sushi/toml");
  ASSERT_EQ_STR(a.version, "v1.5.3-PRE");
  ASSERT_EQ_STR(a.version_esc, "v1.5.3-!p!r!e");
  ASSERT_EQ_INT(a.canonical, 1);
  ASSERT_TRUE(same_req(&a, &b));
  ASSERT_TRUE(same_req(&a, &c));

  EXPECT_PARSE("/github.com/%21burnt%21sushi/toml/@v/list", 0, &a);
  EXPECT_PARSE("/github.com/!burnt!sushi/toml/@v/list", 0, &b);
  ASSERT_TRUE(same_req(&a, &b));
  EXPECT_PARSE("/github.com/%21burnt%21sushi/toml/@v/v1.5.3.zip", 0, &a);
  EXPECT_PARSE("/github.com/!burnt!sushi/toml/@v/v1.5.3.zip", 0, &b);
  ASSERT_TRUE(same_req(&a, &b));

  /* Any other byte may be percent-encoded too, hex in either case. */
  EXPECT_PARSE("/github.com/%21burnt%21sushi/%74oml/%40v/%6c%69st", 0, &c);
  EXPECT_PARSE("/github.com/!burnt!sushi/toml/@v/list", 0, &b);
  ASSERT_TRUE(same_req(&b, &c));

  static const struct pcase cases[] = {
      {"/example.com/M/@v/list", ERR_NOT_FOUND},
      {"/github.com/BurntSushi/toml/@v/list", ERR_NOT_FOUND},
      {"/github.com/BurntSushi/toml/@v/v1.0.0.zip", ERR_NOT_FOUND},
      {"/github.com/BurntSushi/toml/@latest", ERR_NOT_FOUND},
      {"/Example.com/a/@v/list", ERR_NOT_FOUND},
      {"/example.com/%4D/@v/list", ERR_NOT_FOUND}, /* %4D is 'M' */
      /* Escaped upper case in the domain is still not a valid path. */
      {"/!example.com/a/@v/list", ERR_INVALID},
  };
  RUN_CASES(cases);
}

/* I.2: invalid escapes never get past the parser. */
static void test_bad_escapes(void) {
  static const struct pcase cases[] = {
      {"/github.com/!0google/omega/@v/list", ERR_INVALID},
      {"/github.com/!_google/omega/@v/list", ERR_INVALID},
      {"/github.com/!!google/omega/@v/list", ERR_INVALID},
      {"/github.com/google!/omega/@v/list", ERR_INVALID},
      {"/github.com/google%21/omega/@v/list", ERR_INVALID},
      {"/github.com/google/omega!/@v/list", ERR_INVALID},
      {"/github.com/google/omega!/@latest", ERR_INVALID},
      {"/github.com/!-x/omega/@v/list", ERR_INVALID},
      /* Versions. */
      {"/example.com/a/@v/v1.0.0-!1.info", ERR_INVALID},
      {"/example.com/a/@v/v1.0.0-a!.info", ERR_INVALID},
      {"/example.com/a/@v/v1.0.0-!!a.info", ERR_INVALID},
      {"/example.com/a/@v/!.info", ERR_INVALID},
      {"/example.com/a/@v/v1.0.0-RC1.info", ERR_INVALID},
      {"/example.com/a/@v/v1.0.0-RC1.zip", ERR_INVALID},
      /* Non-ASCII, raw or encoded. */
      {"/example.com/%C3%A9/@v/list", ERR_INVALID},
      {"/example.com/\xc3\xa9/@v/list", ERR_INVALID},
      {"/example.com/a/@v/v1.0.0-\xff.info", ERR_INVALID},
      {"/example.com/a/@v/v1.0.0-%ff.info", ERR_INVALID},
      {"/example.com/a/@v/%E2%98%BA.info", ERR_INVALID},
  };
  RUN_CASES(cases);
}

/* I.3: '+' arrives literally or as %2B/%2b and is never a space. */
static void test_plus(void) {
  struct modreq a, b, c;
  EXPECT_PARSE("/example.com/a/@v/v2.0.0+incompatible.zip", 0, &a);
  EXPECT_PARSE("/example.com/a/@v/v2.0.0%2Bincompatible.zip", 0, &b);
  EXPECT_PARSE("/example.com/a/@v/v2.0.0%2bincompatible.zip", 0, &c);
  ASSERT_EQ_STR(a.version, "v2.0.0+incompatible");
  ASSERT_EQ_STR(a.version_esc, "v2.0.0+incompatible");
  ASSERT_EQ_INT(a.canonical, 1);
  ASSERT_TRUE(same_req(&a, &b));
  ASSERT_TRUE(same_req(&a, &c));
  EXPECT_PARSE("/example.com/a/@v/v2.0.1-0.20190510104115-cbcb75029529+"
               "incompatible.mod",
               0, &a);
  ASSERT_EQ_INT(a.canonical, 1);

  /* A space is a different version, and not one gomirror passes on. */
  EXPECT_PARSE("/example.com/a/@v/v2.0.0%20incompatible.zip", ERR_INVALID, &a);
  EXPECT_PARSE("/example.com/a/@v/v2.0.0%20incompatible.info", ERR_INVALID, &a);

  static const struct pcase cases[] = {
      /* +incompatible is only for v2+ without a /vN suffix. */
      {"/example.com/a/@v/v1.0.0+incompatible.zip", ERR_NOT_FOUND},
      {"/example.com/a/@v/v0.1.0+incompatible.mod", ERR_NOT_FOUND},
      {"/example.com/a/v2/@v/v2.0.0+incompatible.zip", ERR_NOT_FOUND},
      {"/gopkg.in/yaml.v2/@v/v2.0.0+incompatible.zip", ERR_NOT_FOUND},
      {"/example.com/a/@v/v3.1.0-pre+incompatible.zip", 0},
      /* Other build metadata is never canonical. */
      {"/example.com/a/@v/v1.0.0+meta.zip", ERR_INVALID},
      {"/example.com/a/@v/v2.0.0+incompatible+x.zip", ERR_INVALID},
      /* '+' is not allowed in module paths. */
      {"/example.com/a+b/@v/list", ERR_INVALID},
      {"/example.com/a%2Bb/@v/list", ERR_INVALID},
  };
  RUN_CASES(cases);
}

/* I.4: major-version suffixes, gopkg.in included. */
static void test_major_suffix(void) {
  struct modreq r;
  EXPECT_PARSE("/example.com/a/v2/@v/v2.0.0.mod", 0, &r);
  ASSERT_EQ_STR(r.module, "example.com/a/v2");
  EXPECT_PARSE("/gopkg.in/yaml.v2/@v/list", 0, &r);
  ASSERT_EQ_STR(r.module, "gopkg.in/yaml.v2");
  /* A canonical version for the wrong major is a query for .info (the go
   * command accepts a different answer there), elsewhere "not found" (404,
   * as proxy.golang.org answers; 400 would be a hard error for the go
   * command). */
  EXPECT_PARSE("/example.com/a/@v/v2.0.0.info", 0, &r);
  ASSERT_EQ_INT(r.canonical, 0);
  EXPECT_PARSE("/example.com/a/@v/v2.0.0+incompatible.info", 0, &r);
  ASSERT_EQ_INT(r.canonical, 1);

  static const struct pcase cases[] = {
      {"/example.com/a/v1/@v/list", ERR_INVALID},
      {"/example.com/a/v02/@v/list", ERR_INVALID},
      {"/example.com/a/v02/@v/v2.0.0.zip", ERR_INVALID},
      {"/example.com/a/v0/@v/list", ERR_INVALID},
      {"/example.com/a/v2.0/@v/list", ERR_INVALID},
      {"/example.com/a/v1/@latest", ERR_INVALID},
      {"/example.com/a/v10/@v/v10.1.0.zip", 0},
      {"/example.com/a/v2/@v/v1.0.0.zip", ERR_NOT_FOUND},
      {"/example.com/a/v2/@v/v3.0.0.zip", ERR_NOT_FOUND},
      {"/example.com/a/@v/v2.0.0.zip", ERR_NOT_FOUND},
      {"/example.com/a/@v/v2.0.0.mod", ERR_NOT_FOUND},
      {"/example.com/a/@v/v0.0.0-20191109021931-daa7c04131f5.zip", 0},
      {"/example.com/a/v2/@v/v2.0.0-20191109021931-daa7c04131f5.zip", 0},
      {"/example.com/a/v2/@v/v0.0.0-20191109021931-daa7c04131f5.zip",
       ERR_NOT_FOUND},
      {"/example.com/v2/@v/v2.0.0.zip", 0},
      {"/example.com/av2/@v/v1.0.0.zip", 0},
      {"/gopkg.in/yaml.v2/@v/v2.4.0.zip", 0},
      {"/gopkg.in/yaml.v2/@v/v3.0.0.zip", ERR_NOT_FOUND},
      {"/gopkg.in/yaml.v2/@v/v1.0.0.zip", ERR_NOT_FOUND},
      {"/gopkg.in/yaml.v0/@v/v0.1.0.zip", 0},
      {"/gopkg.in/yaml.v1/@v/v1.0.0.zip", 0},
      {"/gopkg.in/yaml.v1-unstable/@v/v1.0.0.zip", 0},
      {"/gopkg.in/yaml.v2-unstable/@v/v1.0.0.zip", ERR_NOT_FOUND},
      /* x/mod keeps old v0.0.0 pseudo-versions working for .v1. */
      {"/gopkg.in/check.v1/@v/v0.0.0-20161208181325-20d25e280405.mod", 0},
      {"/gopkg.in/check.v2/@v/v0.0.0-20161208181325-20d25e280405.mod",
       ERR_NOT_FOUND},
      {"/gopkg.in/yaml/@v/list", ERR_INVALID},
      {"/gopkg.in/yaml.v/@v/list", ERR_INVALID},
      {"/gopkg.in/yaml.v02/@v/list", ERR_INVALID},
      {"/gopkg.in/yaml/v2/@v/list", ERR_INVALID},
      {"/gopkg.in/user/yaml.v3/@v/v3.0.1.zip", 0},
  };
  RUN_CASES(cases);
}

/* I.9 and B: anything that is not one of the five endpoints is 404. */
static void test_not_endpoints(void) {
  static const struct pcase cases[] = {
      {"", ERR_NOT_FOUND},
      {"/", ERR_NOT_FOUND},
      {"//", ERR_NOT_FOUND},
      {"example.com/a/@v/list", ERR_NOT_FOUND},
      {"/example.com/a", ERR_NOT_FOUND},
      {"/example.com/a/", ERR_NOT_FOUND},
      {"/example.com/a/@v", ERR_NOT_FOUND},
      {"/example.com/a/@v/", ERR_NOT_FOUND},
      {"/example.com/a/@v/list/", ERR_NOT_FOUND},
      {"/example.com/a/@v/list/x", ERR_NOT_FOUND},
      {"/example.com/a/@latest/", ERR_NOT_FOUND},
      {"/example.com/a/@v/v1.0.0.zip/", ERR_NOT_FOUND},
      {"/example.com/a/@v/v1.0.0", ERR_NOT_FOUND},
      {"/example.com/a/@v/v1.0.0.tar", ERR_NOT_FOUND},
      {"/example.com/a/@v/v1.0.0.ZIP", ERR_NOT_FOUND},
      {"/example.com/a/@v/v1.0.0.zip?x=1", ERR_NOT_FOUND},
      {"/example.com/a/@v/LIST", ERR_NOT_FOUND},
      {"/example.com/a/@V/list", ERR_NOT_FOUND},
      {"/example.com/a/@latest.info", ERR_NOT_FOUND},
      {"/example.com/a/@latestx", ERR_NOT_FOUND},
      {"/example.com/a/latest", ERR_NOT_FOUND},
      {"/example.com/a/v/list", ERR_NOT_FOUND},
      {"/@v/list", ERR_NOT_FOUND},
      {"/@latest", ERR_NOT_FOUND},
      {"/@v/v1.0.0.zip", ERR_NOT_FOUND},
      {"/sumdb/sum.golang.org/supported", ERR_NOT_FOUND},
      {"/sumdb/sum.golang.org/lookup/example.com/a@v1.0.0", ERR_NOT_FOUND},
      {"/healthz", ERR_NOT_FOUND},
      /* An empty version in the shape of a version request is invalid. */
      {"/example.com/a/@v/.info", ERR_INVALID},
      {"/example.com/a/@v/.zip", ERR_INVALID},
  };
  RUN_CASES(cases);
}

/* I.10 and C: dot elements, encoded separators, NUL and control bytes,
 * malformed percent-escapes. */
static void test_traversal_and_bytes(void) {
  static const struct pcase cases[] = {
      {"/ex.com/a/../b/@v/list", ERR_INVALID},
      {"/ex.com/./a/@v/list", ERR_INVALID},
      {"/../ex.com/a/@v/list", ERR_INVALID},
      {"/./ex.com/a/@v/list", ERR_INVALID},
      {"/ex.com/a/..", ERR_INVALID},
      {"/ex.com/a/@v/..", ERR_INVALID},
      {"/ex.com/a/@v/.", ERR_INVALID},
      {"/ex.com/a/@v/../../../etc/passwd", ERR_INVALID},
      {"/ex.com/a/%2e%2e/b/@v/list", ERR_INVALID},
      {"/ex.com/a/.%2E/b/@v/list", ERR_INVALID},
      {"/ex.com/a/%2e/@v/list", ERR_INVALID},
      {"/ex.com/a/.../@v/list", ERR_INVALID},
      {"/ex.com/a/.b/@v/list", ERR_INVALID},
      {"/ex.com/a./@v/list", ERR_INVALID},
      /* Encoded separators. */
      {"/ex.com%2Fa/@v/list", ERR_INVALID},
      {"/ex.com%2fa/@v/list", ERR_INVALID},
      {"/ex.com/a/@v/v1.0.0%2F..%2F..%2Fx.zip", ERR_INVALID},
      {"/ex.com/a/@v%2Flist", ERR_INVALID},
      {"/ex.com%5Ca/@v/list", ERR_INVALID},
      {"/ex.com%5ca/@v/list", ERR_INVALID},
      {"/ex.com\\a/@v/list", ERR_INVALID},
      {"/ex.com/a/@v/..\\..\\x.zip", ERR_INVALID},
      /* NUL and control bytes. */
      {"/ex.com/a%00/@v/list", ERR_INVALID},
      {"/ex.com/a/@v/v1.0.0%00.zip", ERR_INVALID},
      {"/ex.com/a/@v/list%00", ERR_INVALID},
      {"/ex.com/a%0A/@v/list", ERR_INVALID},
      {"/ex.com/a%0d%0aX-Injected:%201/@v/list", ERR_INVALID},
      {"/ex.com/a\x01/@v/list", ERR_INVALID},
      {"/ex.com/a\t/@v/list", ERR_INVALID},
      {"/ex.com/a\n/@v/list", ERR_INVALID},
      {"/ex.com/a\x7f/@v/list", ERR_INVALID},
      {"/ex.com/a%7F/@v/list", ERR_INVALID},
      {"/ex.com/a%1b[31m/@v/list", ERR_INVALID},
      /* Malformed percent-escapes. */
      {"/ex.com/a%G1/@v/list", ERR_INVALID},
      {"/ex.com/a%1G/@v/list", ERR_INVALID},
      {"/ex.com/a/@v/list%", ERR_INVALID},
      {"/ex.com/a/@v/list%2", ERR_INVALID},
      {"/ex.com/a%/@v/list", ERR_INVALID},
      {"/ex.com/a%%21/@v/list", ERR_INVALID},
      {"/ex.com/a/@v/v1.0.0.zip%", ERR_INVALID},
      /* Bad bytes win over everything else, wherever they are. */
      {"/nothing-here%00", ERR_INVALID},
      {"/EXAMPLE.COM/%zz/@v/list", ERR_INVALID},
  };
  RUN_CASES(cases);
}

/* C: x/mod CheckPath rules as they surface through the parser. */
static void test_path_rules(void) {
  static const struct pcase cases[] = {
      {"/example/@v/list", ERR_INVALID},        /* no dot in first element */
      {"/-example.com/a/@v/list", ERR_INVALID}, /* leading dash */
      {"/example.com//a/@v/list", ERR_INVALID}, /* double slash */
      {"/example.com/a//@v/list", ERR_INVALID}, /* trailing slash */
      {"/_x.y/z/@v/list", ERR_INVALID},
      {"/x_y.com/z/@v/list", ERR_INVALID},
      {"/x.y/z@/@v/list", ERR_INVALID},
      {"/x.y/a@v1/@v/list", ERR_INVALID},
      {"/x.y/a:b/@v/list", ERR_INVALID},
      {"/x.y/a%20b/@v/list", ERR_INVALID},
      {"/x.y/a*/@v/list", ERR_INVALID},
      {"/x.y/z-/@v/list", 0},
      {"/x.y/z_/@v/list", 0},
      {"/x.y/z~/@v/list", 0},
      {"/x..y/z/@v/list", 0},
      {"/x.y/-z/@v/list", 0},
      {"/1.2.3.4/z/@v/list", 0},
      /* Windows reserved names, any case, before the first dot. */
      {"/example.com/con/@v/list", ERR_INVALID},
      {"/example.com/prn/@v/list", ERR_INVALID},
      {"/example.com/aux.txt/@v/list", ERR_INVALID},
      {"/example.com/nul.tar.gz/@v/list", ERR_INVALID},
      {"/example.com/com1/@v/list", ERR_INVALID},
      {"/example.com/lpt9/@v/list", ERR_INVALID},
      {"/example.com/!c!o!n/@v/list", ERR_INVALID},
      {"/example.com/!aux/@v/list", ERR_INVALID},
      {"/example.com/com10/@v/list", 0},
      {"/example.com/com/@v/list", 0},
      {"/example.com/console/@v/list", 0},
      {"/example.com/x.con/@v/list", 0},
      {"/con.example.com/@v/list", ERR_INVALID},
      /* Names that look like Windows short names. */
      {"/example.com/foo~1/@v/list", ERR_INVALID},
      {"/example.com/foo~09/@v/list", ERR_INVALID},
      {"/example.com/foo~1.x/@v/list", ERR_INVALID},
      {"/example.com/z09~09z~09/@v/list", ERR_INVALID},
      {"/example.com/foo~/@v/list", 0},
      {"/example.com/foo~a1/@v/list", 0},
      {"/example.com/z09~09z/@v/list", 0},
      {"/example.com/x.y~1/@v/list", 0}, /* x/mod only checks before the dot */
  };
  RUN_CASES(cases);
}

/* C: version rules for each endpoint. */
static void test_version_rules(void) {
  struct modreq r;
  EXPECT_PARSE("/example.com/a/@v/master.info", 0, &r);
  ASSERT_EQ_STR(r.version, "master");
  ASSERT_EQ_INT(r.canonical, 0);
  EXPECT_PARSE("/example.com/a/@v/daa7c04131f5.info", 0, &r);
  ASSERT_EQ_INT(r.canonical, 0);
  EXPECT_PARSE("/example.com/a/@v/v1.2.info", 0, &r);
  ASSERT_EQ_INT(r.canonical, 0);
  EXPECT_PARSE("/example.com/a/@v/!my!branch.info", 0, &r);
  ASSERT_EQ_STR(r.version, "MyBranch");
  ASSERT_EQ_STR(r.version_esc, "!my!branch");
  ASSERT_EQ_INT(r.canonical, 0);
  EXPECT_PARSE("/example.com/a/@v/v0.0.0-20191109021931-daa7c04131f5.info", 0,
               &r);
  ASSERT_EQ_INT(r.canonical, 1);
  /* x/mod allows '@' in a query; gomirror keeps queries to ._~+- */
  EXPECT_PARSE("/example.com/a/@v/release@2024.info", ERR_INVALID, &r);
  EXPECT_PARSE("/example.com/a/@v/release-2024.info", 0, &r);
  ASSERT_EQ_STR(r.version, "release-2024");
  EXPECT_PARSE("/example.com/a/@v/.hidden.info", 0, &r);
  ASSERT_EQ_INT(r.canonical, 0);
  EXPECT_PARSE("/example.com/a/@v/v1~1.info", 0, &r);

  static const struct pcase cases[] = {
      {"/example.com/a/@v/master.zip", ERR_INVALID},
      {"/example.com/a/@v/master.mod", ERR_INVALID},
      {"/example.com/a/@v/daa7c04131f5.zip", ERR_INVALID},
      {"/example.com/a/@v/v1.zip", ERR_INVALID},
      {"/example.com/a/@v/v1.2.zip", ERR_INVALID},
      {"/example.com/a/@v/v1.2.3-.zip", ERR_INVALID},
      {"/example.com/a/@v/v01.2.3.zip", ERR_INVALID},
      {"/example.com/a/@v/V1.2.3.zip", ERR_INVALID},
      {"/example.com/a/@v/1.2.3.zip", ERR_INVALID},
      /* Not a file-name element. */
      {"/example.com/a/@v/con.info", ERR_INVALID},
      {"/example.com/a/@v/!n!u!l.info", ERR_INVALID},
      {"/example.com/a/@v/lpt1.x.info", ERR_INVALID},
      {"/example.com/a/@v/x..info", ERR_INVALID},
      {"/example.com/a/@v/a*b.info", ERR_INVALID},
      {"/example.com/a/@v/a%3Fb.info", ERR_INVALID},
      {"/example.com/a/@v/a%22b.info", ERR_INVALID},
      {"/example.com/a/@v/a:b.info", ERR_INVALID},
      {"/example.com/a/@v/a%7Cb.info", ERR_INVALID},
      {"/example.com/a/@v/a%3Cb%3E.info", ERR_INVALID},
      {"/example.com/a/@v/a'b.info", ERR_INVALID},
      {"/example.com/a/@v/a%60b.info", ERR_INVALID},
      {"/example.com/a/@v/....info", ERR_INVALID},
      /* File-name punctuation that x/mod allows in versions, but that
       * gomirror does not pass on in a query. */
      {"/example.com/a/@v/a%23b%24c%25d%26e(f)g%2Ch=i[j]k%5El_m%7Bn%7D.info",
       ERR_INVALID},
      {"/example.com/a/@v/a_b~c+d.info", 0},
  };
  RUN_CASES(cases);
}

static char *repeat(char c, size_t n, const char *prefix, const char *suffix) {
  size_t pn = strlen(prefix), sn = strlen(suffix);
  char *s = malloc(pn + n + sn + 1);
  if (!s)
    abort();
  memcpy(s, prefix, pn);
  memset(s + pn, c, n);
  memcpy(s + pn + n, suffix, sn + 1);
  return s;
}

/* C: Go sets no maximum; we do. Paths answer 404, versions 400. */
static void test_lengths(void) {
  struct modreq *r = malloc(sizeof *r);
  if (!r)
    abort();
  /* "example.com/" is 12 bytes. */
  char *s = repeat('a', MODPATH_MAX - 12, "/example.com/", "/@v/list");
  EXPECT_PARSE(s, 0, r);
  ASSERT_EQ_INT(strlen(r->module), MODPATH_MAX);
  free(s);
  s = repeat('a', MODPATH_MAX - 11, "/example.com/", "/@v/list");
  EXPECT_PARSE(s, ERR_NOT_FOUND, r);
  free(s);
  s = repeat('a', MODPATH_MAX - 11, "/example.com/", "/@latest");
  EXPECT_PARSE(s, ERR_NOT_FOUND, r);
  free(s);
  /* Percent-encoding does not count against the limit... */
  s = repeat('a', 0, "/example.com/", "");
  {
    size_t n = MODPATH_MAX - 12;
    char *t = malloc(strlen(s) + 3 * n + 16);
    if (!t)
      abort();
    size_t k = strlen(s);
    memcpy(t, s, k);
    for (size_t i = 0; i < n; i++) {
      memcpy(t + k, "%61", 3);
      k += 3;
    }
    memcpy(t + k, "/@v/list", 9);
    EXPECT_PARSE(t, 0, r);
    ASSERT_EQ_INT(strlen(r->module), MODPATH_MAX);
    free(t);
  }
  free(s);
  /* ...and neither does case-encoding: 500 upper-case letters. */
  {
    size_t n = MODPATH_MAX - 12;
    char *t = malloc(13 + 2 * n + 16);
    if (!t)
      abort();
    memcpy(t, "/example.com/", 13);
    size_t k = 13;
    for (size_t i = 0; i < n; i++) {
      t[k++] = '!';
      t[k++] = 'q';
    }
    memcpy(t + k, "/@v/list", 9);
    EXPECT_PARSE(t, 0, r);
    ASSERT_EQ_INT(strlen(r->module), MODPATH_MAX);
    ASSERT_EQ_INT(strlen(r->module_esc), 12 + 2 * n);
    ASSERT_EQ_INT(r->module[12], 'Q');
    memcpy(t + k, "!q/@v/list", 11); /* one more escaped letter */
    EXPECT_PARSE(t, ERR_NOT_FOUND, r);
    free(t);
  }
  /* A very long request of any shape. */
  s = repeat('a', 100000, "/example.com/", "/@v/list");
  EXPECT_PARSE(s, ERR_NOT_FOUND, r);
  free(s);
  s = repeat('a', 100000, "/", "");
  EXPECT_PARSE(s, ERR_NOT_FOUND, r);
  free(s);

  /* Versions. */
  s = repeat('a', VERSION_MAX, "/example.com/a/@v/", ".info");
  EXPECT_PARSE(s, 0, r);
  ASSERT_EQ_INT(strlen(r->version), VERSION_MAX);
  free(s);
  s = repeat('a', VERSION_MAX + 1, "/example.com/a/@v/", ".info");
  EXPECT_PARSE(s, ERR_INVALID, r);
  free(s);
  s = repeat('1', VERSION_MAX - 5, "/example.com/a/@v/v1.0.", ".zip");
  EXPECT_PARSE(s, 0, r);
  free(s);
  s = repeat('1', VERSION_MAX - 4, "/example.com/a/@v/v1.0.", ".zip");
  EXPECT_PARSE(s, ERR_INVALID, r);
  free(s);
  s = repeat('a', 100000, "/example.com/a/@v/", ".zip");
  EXPECT_PARSE(s, ERR_INVALID, r);
  free(s);
  /* Escaped up to twice the length, but not more once unescaped. */
  {
    char *t = malloc(32 + 2 * VERSION_MAX + 16);
    if (!t)
      abort();
    size_t k = (size_t)snprintf(t, 32, "/example.com/a/@v/");
    for (size_t i = 0; i < VERSION_MAX; i++) {
      t[k++] = '!';
      t[k++] = 'b';
    }
    memcpy(t + k, ".info", 6);
    EXPECT_PARSE(t, 0, r);
    ASSERT_EQ_INT(strlen(r->version_esc), VERSION_ESC_MAX);
    memcpy(t + k, "b.info", 7);
    EXPECT_PARSE(t, ERR_INVALID, r);
    free(t);
  }
  /* Over-long junk that is not a version request stays 404. */
  s = repeat('a', 100000, "/example.com/a/@v/", ".tar");
  EXPECT_PARSE(s, ERR_NOT_FOUND, r);
  free(s);
  s = repeat('a', 100000, "/example.com/a/@x/", ".zip");
  EXPECT_PARSE(s, ERR_NOT_FOUND, r);
  free(s);
  free(r);
}

static void test_reasons(void) {
  struct modreq r;
  struct reason why = {{0}};
  /* Reasons say what is wrong, briefly. */
  ASSERT_EQ_INT(modpath_parse("/github.com/!0x/y/@v/list", &r, &why),
                ERR_INVALID);
  ASSERT_TRUE(strstr(why.text, "invalid escaped module path") != NULL);
  ASSERT_EQ_INT(modpath_parse("/example.com/a/v1/@v/list", &r, &why),
                ERR_INVALID);
  ASSERT_TRUE(strstr(why.text, "example.com/a/v1") != NULL);
  ASSERT_EQ_INT(modpath_parse("/example.com/a/@v/master.zip", &r, &why),
                ERR_INVALID);
  ASSERT_TRUE(strstr(why.text, "master") != NULL);
  ASSERT_EQ_INT(modpath_parse("/example.com/a/@v/v2.0.0.zip", &r, &why),
                ERR_NOT_FOUND);
  ASSERT_TRUE(strstr(why.text, "should be v0 or v1, not v2") != NULL);
  ASSERT_EQ_INT(modpath_parse("/example.com/A/@v/list", &r, &why),
                ERR_NOT_FOUND);
  ASSERT_TRUE(strstr(why.text, "upper-case") != NULL);
  ASSERT_EQ_INT(modpath_parse("/x%0d%0aSet-Cookie:%20a/@v/list", &r, &why),
                ERR_INVALID);
  ASSERT_TRUE(strstr(why.text, "control byte 0x0d") != NULL);
  ASSERT_TRUE(strstr(why.text, "Set-Cookie") == NULL);

  /* Long inputs are echoed only in part. */
  char *s = repeat('!', 500, "/example.com/", "x/@v/list");
  ASSERT_EQ_INT(modpath_parse(s, &r, &why), ERR_INVALID);
  ASSERT_TRUE(strstr(why.text, "...") != NULL);
  ASSERT_TRUE(strlen(why.text) < 80 + 80);
  free(s);
  s = repeat('z', 300, "/example.com/a/@v/", ".zip");
  ASSERT_EQ_INT(modpath_parse(s, &r, &why), ERR_INVALID);
  ASSERT_TRUE(strlen(why.text) < 80 + 80);
  free(s);
  s = repeat('z', 200, "/example.com/a/@v/", "*.zip");
  ASSERT_EQ_INT(modpath_parse(s, &r, &why), ERR_INVALID);
  ASSERT_TRUE(strstr(why.text, "...") != NULL);
  ASSERT_TRUE(strlen(why.text) < 80 + 80);
  free(s);

  /* why may be NULL. */
  ASSERT_EQ_INT(modpath_parse("/example.com/a/../@v/list", &r, NULL),
                ERR_INVALID);
  ASSERT_EQ_INT(modpath_parse(NULL, &r, NULL), ERR_NOT_FOUND);
}

/* x/mod module_test.go checkPathTests: (path, CheckPath ok). */
static const struct {
  const char *path;
  int ok;
} check_path_table[] = {
    {"x.y/z", 1},
    {"x.y", 1},
    {"", 0},
    {"x.y/\xFFz", 0},
    {"/x.y/z", 0},
    {"x./z", 0},
    {".x/z", 0},
    {"-x/z", 0},
    {"x..y/z", 1},
    {"x.y/z/../../w", 0},
    {"x.y//z", 0},
    {"x.y/z//w", 0},
    {"x.y/z/", 0},
    {"x.y/z/v0", 0},
    {"x.y/z/v1", 0},
    {"x.y/z/v2", 1},
    {"x.y/z/v2.0", 0},
    {"X.y/z", 0},
    {"!x.y/z", 0},
    {"_x.y/z", 0},
    {"x.y!/z", 0},
    {"x.y\"/z", 0},
    {"x.y#/z", 0},
    {"x.y$/z", 0},
    {"x.y%/z", 0},
    {"x.y&/z", 0},
    {"x.y'/z", 0},
    {"x.y(/z", 0},
    {"x.y)/z", 0},
    {"x.y*/z", 0},
    {"x.y+/z", 0},
    {"x.y,/z", 0},
    {"x.y-/z", 1},
    {"x.y./zt", 0},
    {"x.y:/z", 0},
    {"x.y;/z", 0},
    {"x.y</z", 0},
    {"x.y=/z", 0},
    {"x.y>/z", 0},
    {"x.y?/z", 0},
    {"x.y@/z", 0},
    {"x.y[/z", 0},
    {"x.y\\/z", 0},
    {"x.y]/z", 0},
    {"x.y^/z", 0},
    {"x.y_/z", 0},
    {"x.y`/z", 0},
    {"x.y{/z", 0},
    {"x.y}/z", 0},
    {"x.y~/z", 0},
    {"x.y/z!", 0},
    {"x.y/z\"", 0},
    {"x.y/z#", 0},
    {"x.y/z$", 0},
    {"x.y/z%", 0},
    {"x.y/z&", 0},
    {"x.y/z'", 0},
    {"x.y/z(", 0},
    {"x.y/z)", 0},
    {"x.y/z*", 0},
    {"x.y/z++", 0},
    {"x.y/z,", 0},
    {"x.y/z-", 1},
    {"x.y/z.t", 1},
    {"x.y/z/t", 1},
    {"x.y/z:", 0},
    {"x.y/z;", 0},
    {"x.y/z<", 0},
    {"x.y/z=", 0},
    {"x.y/z>", 0},
    {"x.y/z?", 0},
    {"x.y/z@", 0},
    {"x.y/z[", 0},
    {"x.y/z\\", 0},
    {"x.y/z]", 0},
    {"x.y/z^", 0},
    {"x.y/z_", 1},
    {"x.y/z`", 0},
    {"x.y/z{", 0},
    {"x.y/z}", 0},
    {"x.y/z~", 1},
    {"x.y/x.foo", 1},
    {"x.y/aux.foo", 0},
    {"x.y/prn", 0},
    {"x.y/prn2", 1},
    {"x.y/com", 1},
    {"x.y/com1", 0},
    {"x.y/com1.txt", 0},
    {"x.y/calm1", 1},
    {"x.y/z~", 1},
    {"x.y/z~0", 0},
    {"x.y/z~09", 0},
    {"x.y/z09", 1},
    {"x.y/z09~", 1},
    {"x.y/z09~09z", 1},
    {"x.y/z09~09z~09", 0},
    {"github.com/!123/logrus", 0},
    {"github.com/user/unicode/\xd0\xb8\xd1\x81\xd0\xbf", 0},
    {"../x", 0},
    {"./y", 0},
    {"x:y", 0},
    {"\\temp\\foo", 0},
    {".gitignore", 0},
    {".github/ISSUE_TEMPLATE", 0},
    {"x\xe2\x98\xbay", 0},
    /* splitPathVersionTests */
    {"x.y/v", 1},
    {"gopkg.in/yaml.v0", 1},
    {"gopkg.in/yaml.v1", 1},
    {"gopkg.in/yaml.v3", 1},
    {"x.y/z/v3", 1},
};

static void test_check_path_table(void) {
  struct reason why;
  for (size_t i = 0; i < sizeof check_path_table / sizeof *check_path_table;
       i++) {
    char pb[256];
    why.text[0] = '\0';
    int rc = modpath_check_path(check_path_table[i].path, &why);
    int want = check_path_table[i].ok ? 0 : ERR_INVALID;
    if (rc != want)
      TEST_FAIL_("modpath_check_path(\"%s\") = %d, want %d",
                 printable(check_path_table[i].path, pb, sizeof pb), rc, want);
    if (rc && !reason_ok(&why))
      TEST_FAIL_("bad reason for \"%s\": \"%s\"",
                 printable(check_path_table[i].path, pb, sizeof pb), why.text);
    /* x/mod EscapePath fails exactly when CheckPath does. */
    char esc[256];
    if ((modpath_escape(check_path_table[i].path, esc, sizeof esc) == 0) !=
        check_path_table[i].ok)
      TEST_FAIL_("modpath_escape(\"%s\") disagrees with check_path",
                 printable(check_path_table[i].path, pb, sizeof pb));
  }
  ASSERT_EQ_INT(modpath_check_path(NULL, NULL), ERR_INVALID);
}

static void test_escape(void) {
  char out[128];
  ASSERT_EQ_INT(
      modpath_escape("github.com/GoogleCloudPlatform/omega", out, sizeof out),
      0);
  ASSERT_EQ_STR(out, "github.com/!google!cloud!platform/omega");
  ASSERT_EQ_INT(modpath_escape("ascii.com/abcdefghijklmnopqrstuvwxyz.-/~_"
                               "0123456789",
                               out, sizeof out),
                0);
  ASSERT_EQ_STR(out, "ascii.com/abcdefghijklmnopqrstuvwxyz.-/~_0123456789");
  /* Too small, counting the NUL. */
  ASSERT_EQ_INT(modpath_escape("x.y/A", out, 6), ERR_INVALID);
  ASSERT_EQ_INT(modpath_escape("x.y/A", out, 7), 0);
  ASSERT_EQ_STR(out, "x.y/!a");
  ASSERT_EQ_INT(modpath_escape("x.y/A", out, 0), ERR_INVALID);
  ASSERT_EQ_INT(modpath_escape("x.y/z/", out, sizeof out), ERR_INVALID);
  ASSERT_EQ_INT(modpath_escape(NULL, out, sizeof out), ERR_INVALID);

  ASSERT_EQ_INT(modpath_escape_version("v1.5.3-PRE", out, sizeof out), 0);
  ASSERT_EQ_STR(out, "v1.5.3-!p!r!e");
  ASSERT_EQ_INT(modpath_escape_version("v2.0.0+incompatible", out, sizeof out),
                0);
  ASSERT_EQ_STR(out, "v2.0.0+incompatible");
  ASSERT_EQ_INT(modpath_escape_version("my branch", out, sizeof out), 0);
  ASSERT_EQ_STR(out, "my branch");
  ASSERT_EQ_INT(modpath_escape_version("v1!", out, sizeof out), ERR_INVALID);
  ASSERT_EQ_INT(modpath_escape_version("", out, sizeof out), ERR_INVALID);
  ASSERT_EQ_INT(modpath_escape_version("a/b", out, sizeof out), ERR_INVALID);
  ASSERT_EQ_INT(modpath_escape_version("CON", out, sizeof out), ERR_INVALID);
  ASSERT_EQ_INT(modpath_escape_version("x.", out, sizeof out), ERR_INVALID);
  ASSERT_EQ_INT(modpath_escape_version("..", out, sizeof out), ERR_INVALID);
  ASSERT_EQ_INT(modpath_escape_version("a\x01", out, sizeof out), ERR_INVALID);
  ASSERT_EQ_INT(modpath_escape_version("\xc3\xa9", out, sizeof out),
                ERR_INVALID);
  ASSERT_EQ_INT(modpath_escape_version(NULL, out, sizeof out), ERR_INVALID);
  ASSERT_EQ_INT(modpath_escape_version("AB", out, 4), ERR_INVALID);
  ASSERT_EQ_INT(modpath_escape_version("AB", out, 5), 0);
  ASSERT_EQ_STR(out, "!a!b");
}

static void test_unescape(void) {
  char out[128];
  ASSERT_EQ_INT(modpath_unescape("github.com/!google!cloud!platform/omega", out,
                                 sizeof out),
                0);
  ASSERT_EQ_STR(out, "github.com/GoogleCloudPlatform/omega");
  ASSERT_EQ_INT(modpath_unescape("", out, sizeof out), 0);
  ASSERT_EQ_STR(out, "");
  /* x/mod badUnescape, plus non-ASCII. */
  static const char *const bad[] = {
      "github.com/GoogleCloudPlatform/omega",
      "github.com/!google!cloud!platform!/omega",
      "github.com/!0google!cloud!platform/omega",
      "github.com/!_google!cloud!platform/omega",
      "github.com/!!google!cloud!platform/omega",
      "x!",
      "!",
      "\xc3\xa9",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (modpath_unescape(bad[i], out, sizeof out) != ERR_INVALID)
      TEST_FAIL_("modpath_unescape(\"%s\") accepted", bad[i]);
  ASSERT_EQ_INT(modpath_unescape("!a!b", out, 2), ERR_INVALID);
  ASSERT_EQ_INT(modpath_unescape("!a!b", out, 3), 0);
  ASSERT_EQ_STR(out, "AB");
  ASSERT_EQ_INT(modpath_unescape(NULL, out, sizeof out), ERR_INVALID);
  ASSERT_EQ_INT(modpath_unescape("a", out, 0), ERR_INVALID);
}

/* x/mod TestMatchPathMajor, as (path, version) pairs. */
static void test_check_version_major(void) {
  static const struct {
    const char *path, *v;
    int ok;
  } t[] = {
      {"x.y/z", "v0.0.0", 1},
      {"x.y/z/v2", "v0.0.0", 0},
      {"gopkg.in/z.v0", "v0.0.0", 1},
      {"gopkg.in/z.v1", "v0.0.0-20190510104115-cbcb75029529", 1},
      {"x.y/z/v2", "v1.0.0", 0},
      {"gopkg.in/z.v1", "v1.0.0", 1},
      {"gopkg.in/z.v1-unstable", "v1.0.0", 1},
      {"x.y/z", "v2.0.0+incompatible", 1},
      {"x.y/z", "v2.0.0", 0},
      {"x.y/z/v2", "v2.0.0", 1},
      {"gopkg.in/z.v2", "v2.0.0", 1},
      /* The go command's +incompatible rules on top. */
      {"x.y/z", "v1.0.0+incompatible", 0},
      {"x.y/z/v2", "v2.0.0+incompatible", 0},
      {"x.y/z", "v0.0.0-20190510104115-cbcb75029529", 1},
      /* Non-canonical and invalid inputs. */
      {"x.y/z", "v1.0", 0},
      {"x.y/z", "master", 0},
      {"x.y/z/v1", "v1.0.0", 0},
  };
  for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
    struct reason why = {{0}};
    int rc = modpath_check_version(t[i].path, t[i].v, 1, &why);
    if ((rc == 0) != t[i].ok)
      TEST_FAIL_("modpath_check_version(\"%s\", \"%s\", 1) = %d", t[i].path,
                 t[i].v, rc);
    if (rc && !reason_ok(&why))
      TEST_FAIL_("bad reason: \"%s\"", why.text);
  }
  /* Without require_canonical only the file-name rules apply. */
  ASSERT_EQ_INT(modpath_check_version("x.y/z", "master", 0, NULL), 0);
  ASSERT_EQ_INT(modpath_check_version("x.y/z", "v2.0.0", 0, NULL), 0);
  ASSERT_EQ_INT(modpath_check_version("x.y/z", "a!b", 0, NULL), ERR_INVALID);
  ASSERT_EQ_INT(modpath_check_version("x.y/z", "aux", 0, NULL), ERR_INVALID);
  ASSERT_EQ_INT(modpath_check_version("x.y/z", NULL, 0, NULL), ERR_INVALID);
}

int main(void) {
  RUN_TEST(test_parse_kinds);
  RUN_TEST(test_case_encoding);
  RUN_TEST(test_bad_escapes);
  RUN_TEST(test_plus);
  RUN_TEST(test_major_suffix);
  RUN_TEST(test_not_endpoints);
  RUN_TEST(test_traversal_and_bytes);
  RUN_TEST(test_path_rules);
  RUN_TEST(test_version_rules);
  RUN_TEST(test_lengths);
  RUN_TEST(test_reasons);
  RUN_TEST(test_check_path_table);
  RUN_TEST(test_escape);
  RUN_TEST(test_unescape);
  RUN_TEST(test_check_version_major);
  return test_summary();
}
