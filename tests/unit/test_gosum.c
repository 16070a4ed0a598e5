/* Unit tests for mod/gosum.c: the versions read from go.sum, go.mod and
 * module@version text, each once, and one-line errors naming the line. */
#include "core/err.h"
#include "mod/gosum.h"
#include "test.h"

#include <stdlib.h>

static int parse(struct gosum_list *l, const char *text, struct reason *why) {
  return gosum_parse(l, "go.sum", text, strlen(text), why);
}

/* 1 when l holds module@version with that want_zip. */
static int has(const struct gosum_list *l, const char *m, const char *v,
               int want_zip) {
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->v[i].module, m) == 0 && strcmp(l->v[i].version, v) == 0)
      return l->v[i].want_zip == want_zip;
  return 0;
}

static void test_gosum_lines(void) {
  struct gosum_list l;
  gosum_init(&l, 0);
  struct reason why = {{0}};
  const char *text =
      "example.com/a v1.0.0 h1:2A7hQQHjXcS4dpLyXb9N8l+3rX5dg5q1tm8GXUpW4Ss=\n"
      "example.com/a v1.0.0/go.mod h1:bXH8Wm9AiT4dKvjJuZyPVvV8Z3YxAKLXgkkc=\n"
      "example.com/b v1.2.0/go.mod h1:qqqq=\n"
      "example.com/Upper/Lib v1.0.1/go.mod h1:abc/+=\n"
      "example.com/Upper/Lib v1.0.1 h1:abc//def=\n"
      "example.com/legacy v2.0.0+incompatible h1:x=\n"
      "gopkg.in/yaml.v3 v3.0.1/go.mod "
      "h1:K4uyk7z7BCEPqu6E+C64Yfv1cQ7kz7rIZviUmN+EgEM=\n"
      "example.com/hello/v2 v2.0.0-20221130100000-0123456789ab h1:y=\n";
  ASSERT_EQ_INT(parse(&l, text, &why), 0);
  ASSERT_EQ_INT(l.n, 6);
  ASSERT_TRUE(has(&l, "example.com/a", "v1.0.0", 1));
  ASSERT_TRUE(has(&l, "example.com/b", "v1.2.0", 0));
  ASSERT_TRUE(has(&l, "example.com/Upper/Lib", "v1.0.1", 1));
  ASSERT_TRUE(has(&l, "example.com/legacy", "v2.0.0+incompatible", 1));
  ASSERT_TRUE(has(&l, "gopkg.in/yaml.v3", "v3.0.1", 0));
  ASSERT_TRUE(
      has(&l, "example.com/hello/v2", "v2.0.0-20221130100000-0123456789ab", 1));
  /* First seen, first listed. */
  ASSERT_EQ_STR(l.v[0].module, "example.com/a");
  ASSERT_EQ_STR(l.v[1].module, "example.com/b");
  gosum_free(&l);
  ASSERT_EQ_INT(l.n, 0);
}

static void test_zip_wins_in_any_order(void) {
  struct gosum_list l;
  gosum_init(&l, 0);
  struct reason why = {{0}};
  ASSERT_EQ_INT(parse(&l, "example.com/a v1.0.0 h1:x=\n", &why), 0);
  ASSERT_EQ_INT(parse(&l, "example.com/a v1.0.0/go.mod h1:y=\n", &why), 0);
  ASSERT_EQ_INT(l.n, 1);
  ASSERT_TRUE(has(&l, "example.com/a", "v1.0.0", 1));
  /* Across inputs and forms: a go.mod require and a list line. */
  ASSERT_EQ_INT(parse(&l, "example.com/b v1.0.0/go.mod h1:y=\n", &why), 0);
  ASSERT_TRUE(has(&l, "example.com/b", "v1.0.0", 0));
  ASSERT_EQ_INT(parse(&l, "example.com/b@v1.0.0\n", &why), 0);
  ASSERT_TRUE(has(&l, "example.com/b", "v1.0.0", 1));
  ASSERT_EQ_INT(gosum_add(&l, "example.com/b", "v1.0.0", 0, &why), 0);
  ASSERT_TRUE(has(&l, "example.com/b", "v1.0.0", 1));
  ASSERT_EQ_INT(l.n, 2);
  gosum_free(&l);
}

static void test_gomod(void) {
  struct gosum_list l;
  gosum_init(&l, 0);
  struct reason why = {{0}};
  const char *text = "// a comment\n"
                     "module example.com/app\n"
                     "\n"
                     "go 1.21\n"
                     "toolchain go1.21.5\n"
                     "\n"
                     "require example.com/single v1.0.0\n"
                     "require example.com/indirect v1.1.0 // indirect\n"
                     "require (\n"
                     "\texample.com/hello v1.1.0\n"
                     "\texample.com/hello/v2 v2.0.0 // indirect\n"
                     "\texample.com/glued v1.0.0//indirect\n"
                     "\t\"example.com/quoted\" v1.0.0\n"
                     "\t// a comment line in a block\n"
                     "\n"
                     "\texample.com/legacy v2.0.0+incompatible\n"
                     ") // end\n"
                     "require ()\n"
                     "replace example.com/hello v1.1.0 => ../hello\n"
                     "replace (\n"
                     "\texample.com/x v1.0.0 => example.com/y v1.0.1\n"
                     "\texample.com/z => ./z\n"
                     ")\n"
                     "exclude example.com/bad v1.0.0\n"
                     "exclude (\n\texample.com/bad v1.0.1\n)\n"
                     "retract [v1.0.0, v1.0.5] // broken\n"
                     "retract (\n\tv1.9.0\n\t[v1.0.0, v1.0.5]\n)\n"
                     "godebug (\n\tdefault=go1.21\n)\n";
  ASSERT_EQ_INT(gosum_parse(&l, "go.mod", text, strlen(text), &why), 0);
  if (why.text[0])
    fprintf(stderr, "  reason: %s\n", why.text);
  ASSERT_EQ_INT(l.n, 7);
  ASSERT_TRUE(has(&l, "example.com/single", "v1.0.0", 1));
  ASSERT_TRUE(has(&l, "example.com/indirect", "v1.1.0", 1));
  ASSERT_TRUE(has(&l, "example.com/hello", "v1.1.0", 1));
  ASSERT_TRUE(has(&l, "example.com/hello/v2", "v2.0.0", 1));
  ASSERT_TRUE(has(&l, "example.com/glued", "v1.0.0", 1));
  ASSERT_TRUE(has(&l, "example.com/quoted", "v1.0.0", 1));
  ASSERT_TRUE(has(&l, "example.com/legacy", "v2.0.0+incompatible", 1));
  ASSERT_FALSE(has(&l, "example.com/app", "v1.0.0", 1));
  ASSERT_FALSE(has(&l, "example.com/x", "v1.0.0", 1));
  ASSERT_FALSE(has(&l, "example.com/bad", "v1.0.0", 1));
  gosum_free(&l);
}

static void test_list_lines(void) {
  struct gosum_list l;
  gosum_init(&l, 0);
  struct reason why = {{0}};
  /* A byte-order mark, CRLF, comments, blank lines, no final newline. */
  const char *text = "\xef\xbb\xbf# modules for the CI image\r\n"
                     "example.com/a@v1.0.0\r\n"
                     "  \t\r\n"
                     "example.com/b@v1.0.0 # pinned\n"
                     "// also a comment\n"
                     "example.com/a@v1.0.0";
  ASSERT_EQ_INT(gosum_parse(&l, "list", text, strlen(text), &why), 0);
  ASSERT_EQ_INT(l.n, 2);
  ASSERT_TRUE(has(&l, "example.com/a", "v1.0.0", 1));
  ASSERT_TRUE(has(&l, "example.com/b", "v1.0.0", 1));
  ASSERT_EQ_INT(gosum_parse(&l, "empty", "", 0, &why), 0);
  ASSERT_EQ_INT(l.n, 2);
  gosum_free(&l);
}

/* Each bad input fails with ERR_INVALID and a reason starting with want. */
static void expect_error(const char *text, const char *want) {
  struct gosum_list l;
  gosum_init(&l, 0);
  struct reason why = {{0}};
  int rc = gosum_parse(&l, "go.sum", text, strlen(text), &why);
  if (rc != ERR_INVALID)
    TEST_FAIL_("%s: rc %d, want ERR_INVALID", text, rc);
  if (strncmp(why.text, want, strlen(want)) != 0)
    TEST_FAIL_("reason \"%s\", want it to start with \"%s\"", why.text, want);
  if (strchr(why.text, '\n'))
    TEST_FAIL_("reason \"%s\" is not one line", why.text);
  gosum_free(&l);
}

static void test_errors_name_the_line(void) {
  const char *ok = "example.com/a v1.0.0 h1:x=\n";
  char text[256];
  snprintf(text, sizeof text, "%s%sexample.com/b v1.0.0\n", ok, ok);
  expect_error(text, "go.sum:3: not a go.sum line");
  expect_error("example.com/a v1.0.0 notahash\n", "go.sum:1: not a go.sum");
  expect_error("example.com/a v1.0.0 h1:x= extra\n", "go.sum:1: not a go.sum");
  expect_error("example.com/a\n", "go.sum:1: not a go.sum");
  expect_error("\n\nexample.com/a v1.0 h1:x=\n",
               "go.sum:3: invalid version \"v1.0\": not canonical");
  expect_error("example.com/a@latest\n", "go.sum:1: invalid version");
  expect_error("example.com/a v2.0.0 h1:x=\n", "go.sum:1: ");
  expect_error("nodot/a v1.0.0 h1:x=\n", "go.sum:1: invalid module path");
  expect_error("example.com/../a v1.0.0 h1:x=\n", "go.sum:1: invalid module");
  expect_error("example.com/a@\n", "go.sum:1: invalid version");
  expect_error("@v1.0.0\n", "go.sum:1: invalid module path");
  expect_error("ok.com/a v1.0.0 h1:x=\nexample.com/a v1\x01.0 h1:x=\n",
               "go.sum:2: control byte 0x01");
  /* A NUL cannot cut a path short. */
  const char nul[] = "example.com/a@v1.0.0\0junk\n";
  struct gosum_list l;
  gosum_init(&l, 0);
  struct reason why = {{0}};
  ASSERT_EQ_INT(gosum_parse(&l, "go.sum", nul, sizeof nul - 1, &why),
                ERR_INVALID);
  ASSERT_EQ_STR(why.text, "go.sum:1: control byte 0x00");
  gosum_free(&l);
  expect_error("require (\n\texample.com/a v1.0.0\n", "go.sum:1: block not");
  expect_error("require (\n\texample.com/a\n)\n",
               "go.sum:2: want \"<module> <version>\" in a require block");
  expect_error("require example.com/a\n", "go.sum:1: want \"require");
  expect_error("require ( example.com/a v1.0.0\n", "go.sum:1: unexpected");
  expect_error("require (\n) x\n", "go.sum:2: unexpected text after ')'");
  expect_error("require \"example.com/a v1.0.0\n", "go.sum:1: unterminated");
  /* A quoted "(" opens no block. */
  expect_error("require \"(\"\n", "go.sum:1: want \"require");
  char elem[601], longp[700];
  memset(elem, 'a', 600);
  elem[600] = '\0';
  snprintf(longp, sizeof longp, "example.com/%s@v1.0.0\n", elem);
  expect_error(longp, "go.sum:1: invalid module path: too long");
}

static void test_cap(void) {
  struct gosum_list l;
  gosum_init(&l, 3);
  struct reason why = {{0}};
  const char *text = "example.com/a@v1.0.0\nexample.com/a@v1.0.1\n"
                     "example.com/a@v1.0.0\nexample.com/a@v1.0.2\n"
                     "example.com/a@v1.0.3\n";
  ASSERT_EQ_INT(gosum_parse(&l, "big", text, strlen(text), &why),
                ERR_TOO_LARGE);
  ASSERT_EQ_STR(why.text, "big:5: more than 3 module versions");
  ASSERT_EQ_INT(l.n, 3);
  gosum_free(&l);
  gosum_init(&l, 0);
  ASSERT_EQ_INT(l.max, GOSUM_MAX);
  gosum_free(NULL);
}

/* Many versions: the index grows and still finds every one. */
static void test_many(void) {
  struct gosum_list l;
  gosum_init(&l, 0);
  struct reason why = {{0}};
  char v[32];
  for (int round = 0; round < 2; round++)
    for (int i = 0; i < 5000; i++) {
      snprintf(v, sizeof v, "v1.%d.0", i);
      if (gosum_add(&l, "example.com/many", v, round, &why))
        TEST_FAIL_("add %s: %s", v, why.text);
    }
  ASSERT_EQ_INT(l.n, 5000);
  ASSERT_TRUE(has(&l, "example.com/many", "v1.4999.0", 1));
  ASSERT_EQ_STR(l.v[4999].version, "v1.4999.0");
  gosum_free(&l);
}

int main(void) {
  RUN_TEST(test_gosum_lines);
  RUN_TEST(test_zip_wins_in_any_order);
  RUN_TEST(test_gomod);
  RUN_TEST(test_list_lines);
  RUN_TEST(test_errors_name_the_line);
  RUN_TEST(test_cap);
  RUN_TEST(test_many);
  return test_summary();
}
