/* Unit tests for server/private.c, with the tables of Go 1.19's
 * path/match_test.go (TestMatch) and x/mod module_test.go
 * (TestMatchPrefixPatterns), plus the GOPRIVATE shapes operators write. */
#include "core/err.h"
#include "mod/private.h"
#include "test.h"

struct mcase {
  const char *pattern, *s;
  int want; /* 1, 0 or ERR_INVALID (Go's ErrBadPattern) */
};

/* path/match_test.go matchTests, in order. */
static const struct mcase go_match[] = {
    {"abc", "abc", 1},
    {"*", "abc", 1},
    {"*c", "abc", 1},
    {"a*", "a", 1},
    {"a*", "abc", 1},
    {"a*", "ab/c", 0},
    {"a*/b", "abc/b", 1},
    {"a*/b", "a/c/b", 0},
    {"a*b*c*d*e*/f", "axbxcxdxe/f", 1},
    {"a*b*c*d*e*/f", "axbxcxdxexxx/f", 1},
    {"a*b*c*d*e*/f", "axbxcxdxe/xxx/f", 0},
    {"a*b*c*d*e*/f", "axbxcxdxexxx/fff", 0},
    {"a*b?c*x", "abxbbxdbxebxczzx", 1},
    {"a*b?c*x", "abxbbxdbxebxczzy", 0},
    {"ab[c]", "abc", 1},
    {"ab[b-d]", "abc", 1},
    {"ab[e-g]", "abc", 0},
    {"ab[^c]", "abc", 0},
    {"ab[^b-d]", "abc", 0},
    {"ab[^e-g]", "abc", 1},
    {"a\\*b", "a*b", 1},
    {"a\\*b", "ab", 0},
    {"a?b", "a\u263Ab", 1},
    {"a[^a]b", "a\u263Ab", 1},
    {"a???b", "a\u263Ab", 0},
    {"a[^a][^a][^a]b", "a\u263Ab", 0},
    {"[a-\u03B6]*", "\u03B1", 1},
    {"*[a-\u03B6]", "A", 0},
    {"a?b", "a/b", 0},
    {"a*b", "a/b", 0},
    {"[\\]a]", "]", 1},
    {"[\\-]", "-", 1},
    {"[x\\-]", "x", 1},
    {"[x\\-]", "-", 1},
    {"[x\\-]", "z", 0},
    {"[\\-x]", "x", 1},
    {"[\\-x]", "-", 1},
    {"[\\-x]", "a", 0},
    {"[]a]", "]", ERR_INVALID},
    {"[-]", "-", ERR_INVALID},
    {"[x-]", "x", ERR_INVALID},
    {"[x-]", "-", ERR_INVALID},
    {"[x-]", "z", ERR_INVALID},
    {"[-x]", "x", ERR_INVALID},
    {"[-x]", "-", ERR_INVALID},
    {"[-x]", "a", ERR_INVALID},
    {"\\", "a", ERR_INVALID},
    {"[a-b-c]", "a", ERR_INVALID},
    {"[", "a", ERR_INVALID},
    {"[^", "a", ERR_INVALID},
    {"[^bc", "a", ERR_INVALID},
    {"a[", "a", ERR_INVALID},
    {"a[", "ab", ERR_INVALID},
    {"a[", "x", ERR_INVALID},
    {"a/b[", "x", ERR_INVALID},
    {"*x", "xxx", 1},
};

/* Corners where fnmatch(3) or a naive port would differ, checked against
 * Go 1.19's path.Match by hand. */
static const struct mcase extra_match[] = {
    {"", "", 1},
    {"", "a", 0},
    {"*", "", 1},
    {"**", "ab", 1},
    {"?", "", 0},
    {"?", "\u263A", 1},   /* one rune, three bytes */
    {"???", "\u263A", 0}, /* ? is a rune, not a byte */
    {"?", "\xff", 1},     /* an invalid byte is one (error) rune */
    {"[\u263A]", "\u263A", 1},
    {"[\xff]", "x", ERR_INVALID}, /* invalid UTF-8 in a class */
    {"[!a]", "b", 0},             /* '!' is not negation in Go */
    {"[!a]", "!", 1},
    {"[^a]", "/", 1}, /* a class may match '/' (only ? and * may not) */
    {"a\\", "a", ERR_INVALID},
    {"\\a", "a", 1},
    {"[a-c]x", "bx", 1},
    {"[c-a]", "b", 0}, /* an empty range is not an error */
    {"a*", "a/", 0},
    {"*/b", "a/b", 1},
    {"x*[", "xyz", ERR_INVALID},
    {"b*[", "a", ERR_INVALID}, /* mismatch first, then the syntax check */
    {"*[", "", ERR_INVALID},
    {"a*c", "abcbc", 1},
    {"a*c", "abcbd", 0},
    {"[[]", "[", 1},
    {"]", "]", 1},
    {"a]", "a]", 1},
};

struct pcase {
  const char *globs, *target;
  int want;
};

/* module_test.go TestMatchPrefixPatterns, in order. */
static const struct pcase go_prefix[] = {
    {"", "rsc.io/quote", 0},
    {"/", "rsc.io/quote", 0},
    {"*/quote", "rsc.io/quote", 1},
    {"*/quo", "rsc.io/quote", 0},
    {"*/quo??", "rsc.io/quote", 1},
    {"*/quo*", "rsc.io/quote", 1},
    {"*quo*", "rsc.io/quote", 0},
    {"rsc.io", "rsc.io/quote", 1},
    {"*.io", "rsc.io/quote", 1},
    {"rsc.io/", "rsc.io/quote", 1},
    {"rsc", "rsc.io/quote", 0},
    {"rsc*", "rsc.io/quote", 1},

    {"rsc.io", "rsc.io/quote/v3", 1},
    {"*/quote", "rsc.io/quote/v3", 1},
    {"*/quote/", "rsc.io/quote/v3", 1},
    {"*/quote/*", "rsc.io/quote/v3", 1},
    {"*/quote/*/", "rsc.io/quote/v3", 1},
    {"*/v3", "rsc.io/quote/v3", 0},
    {"*/*/v3", "rsc.io/quote/v3", 1},
    {"*/*/*", "rsc.io/quote/v3", 1},
    {"*/*/*/", "rsc.io/quote/v3", 1},
    {"*/*/*", "rsc.io/quote", 0},
    {"*/*/*/", "rsc.io/quote", 0},

    {"*/*/*,,", "rsc.io/quote", 0},
    {"*/*/*,,*/quote", "rsc.io/quote", 1},
    {",,*/quote", "rsc.io/quote", 1},
};

/* GOPRIVATE as operators write it. */
static const struct pcase corp_prefix[] = {
    {"git.corp.example", "git.corp.example/team/alpha", 1},
    {"git.corp.example", "git.corp.example", 1},
    {"git.corp.example", "git.corp.example.evil.com/x", 0},
    {"git.corp.example", "evil.com/git.corp.example", 0},
    {"git.corp.example/team", "git.corp.example/team/beta/v2", 1},
    {"git.corp.example/team", "git.corp.example/teams/beta", 0},
    {"git.corp.example/team", "git.corp.example", 0},
    {"*.corp.example", "git.corp.example/a", 1},
    {"*.corp.example", "corp.example/a", 0},
    {"github.com/acme/*", "github.com/acme/secret/v2", 1},
    {"github.com/acme/*", "github.com/acmeco/secret", 0},
    {"github.com/acme/*", "github.com/acme", 0},
    {"a.example,github.com/acme", "github.com/acme/x", 1},
    {"a.example, github.com/acme", "github.com/acme/x", 0}, /* no trimming */
    {"a.example//", "a.example/x", 0}, /* only one '/' is stripped */
    {"[", "x/y", 0},                   /* malformed: never matches */
    {"[,x", "x/y", 1},                 /* ...but the next entry still can */
    {"*", "anything.example/at/all", 1},
    {"Git.Corp.Example", "git.corp.example/a", 0}, /* case-sensitive */
    {"git.corp.example/\\*", "git.corp.example/*", 1},
};

static void run_match(const struct mcase *c, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int got = private_glob_match(c[i].pattern, strlen(c[i].pattern), c[i].s,
                                 strlen(c[i].s));
    if (got != c[i].want)
      TEST_FAIL_("Match(`%s`, `%s`) = %d, want %d", c[i].pattern, c[i].s, got,
                 c[i].want);
  }
}

static void run_prefix(const struct pcase *c, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int got = private_match(c[i].globs, c[i].target);
    if (got != c[i].want)
      TEST_FAIL_("MatchPrefixPatterns(\"%s\", \"%s\") = %d, want %d",
                 c[i].globs, c[i].target, got, c[i].want);
  }
}

#define N(a) (sizeof a / sizeof *a)

static void test_go_path_match(void) {
  run_match(go_match, N(go_match));
}

static void test_extra_path_match(void) {
  run_match(extra_match, N(extra_match));
}

static void test_go_match_prefix_patterns(void) {
  run_prefix(go_prefix, N(go_prefix));
}

static void test_corp_patterns(void) {
  run_prefix(corp_prefix, N(corp_prefix));
}

static void test_null_and_lengths(void) {
  ASSERT_EQ_INT(private_match(NULL, "a/b"), 0);
  ASSERT_EQ_INT(private_match("a", NULL), 0);
  /* Lengths are honoured: no NUL terminator is read. */
  ASSERT_EQ_INT(private_glob_match("abX", 2, "abY", 2), 1);
  ASSERT_EQ_INT(private_glob_match("a*", 2, "abc/d", 3), 1);
  ASSERT_EQ_INT(private_glob_match("[a]", 2, "a", 1), ERR_INVALID);
}

static void test_check(void) {
  struct reason why = {{0}};
  ASSERT_EQ_INT(private_check("", &why), 0);
  ASSERT_EQ_INT(private_check(NULL, &why), 0);
  ASSERT_EQ_INT(private_check("git.corp.example,*.internal,,a/[b-c]/", &why),
                0);
  ASSERT_EQ_INT(private_check("git.corp.example,a[", &why), ERR_CONFIG);
  ASSERT_TRUE(strstr(why.text, "\"a[\"") != NULL);
  ASSERT_EQ_INT(private_check("x\\", NULL), ERR_CONFIG);
  ASSERT_EQ_INT(private_check("[-x]", NULL), ERR_CONFIG);
  /* Every malformed Go table pattern is caught by the check. */
  for (size_t i = 0; i < N(go_match); i++)
    if (go_match[i].want == ERR_INVALID &&
        private_check(go_match[i].pattern, NULL) != ERR_CONFIG)
      TEST_FAIL_("private_check(`%s`) accepted it", go_match[i].pattern);
}

int main(void) {
  RUN_TEST(test_go_path_match);
  RUN_TEST(test_extra_path_match);
  RUN_TEST(test_go_match_prefix_patterns);
  RUN_TEST(test_corp_patterns);
  RUN_TEST(test_null_and_lengths);
  RUN_TEST(test_check);
  return test_summary();
}
