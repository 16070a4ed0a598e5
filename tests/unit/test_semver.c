/* Unit tests for server/semver.c: the tables come from golang.org/x/mod
 * semver/semver_test.go and module/pseudo_test.go, plus the proxy's list
 * merging. */
#include "core/buf.h"
#include "core/err.h"
#include "mod/semver.h"
#include "test.h"

#include <stdlib.h>

/* x/mod semver_test.go `tests`: in ascending order; out is
 * semver.Canonical(in), "" when invalid. */
static const struct {
  const char *in, *out;
} semver_table[] = {
    {"bad", ""},
    {"v1-alpha.beta.gamma", ""},
    {"v1-pre", ""},
    {"v1+meta", ""},
    {"v1-pre+meta", ""},
    {"v1.2-pre", ""},
    {"v1.2+meta", ""},
    {"v1.2-pre+meta", ""},
    {"v1.0.0-alpha", "v1.0.0-alpha"},
    {"v1.0.0-alpha.1", "v1.0.0-alpha.1"},
    {"v1.0.0-alpha.beta", "v1.0.0-alpha.beta"},
    {"v1.0.0-beta", "v1.0.0-beta"},
    {"v1.0.0-beta.2", "v1.0.0-beta.2"},
    {"v1.0.0-beta.11", "v1.0.0-beta.11"},
    {"v1.0.0-rc.1", "v1.0.0-rc.1"},
    {"v1", "v1.0.0"},
    {"v1.0", "v1.0.0"},
    {"v1.0.0", "v1.0.0"},
    {"v1.2", "v1.2.0"},
    {"v1.2.0", "v1.2.0"},
    {"v1.2.3-456", "v1.2.3-456"},
    {"v1.2.3-456.789", "v1.2.3-456.789"},
    {"v1.2.3-456-789", "v1.2.3-456-789"},
    {"v1.2.3-456a", "v1.2.3-456a"},
    {"v1.2.3-pre", "v1.2.3-pre"},
    {"v1.2.3-pre+meta", "v1.2.3-pre"},
    {"v1.2.3-pre.1", "v1.2.3-pre.1"},
    {"v1.2.3-zzz", "v1.2.3-zzz"},
    {"v1.2.3", "v1.2.3"},
    {"v1.2.3+meta", "v1.2.3"},
    {"v1.2.3+meta-pre", "v1.2.3"},
    {"v1.2.3+meta-pre.sha.256a", "v1.2.3"},
};
#define NTABLE (sizeof semver_table / sizeof *semver_table)

static void test_is_valid_table(void) {
  for (size_t i = 0; i < NTABLE; i++) {
    int want = semver_table[i].out[0] != '\0';
    if (semver_is_valid(semver_table[i].in) != want)
      TEST_FAIL_("semver_is_valid(\"%s\") != %d", semver_table[i].in, want);
  }
}

static void test_is_valid_more(void) {
  ASSERT_FALSE(semver_is_valid(NULL));
  ASSERT_FALSE(semver_is_valid(""));
  ASSERT_FALSE(semver_is_valid("v"));
  ASSERT_FALSE(semver_is_valid("1.2.3"));
  ASSERT_FALSE(semver_is_valid("V1.2.3"));
  ASSERT_FALSE(semver_is_valid("v01.2.3"));
  ASSERT_FALSE(semver_is_valid("v1.02.3"));
  ASSERT_FALSE(semver_is_valid("v1.2.03"));
  ASSERT_FALSE(semver_is_valid("v1.2.3.4"));
  ASSERT_FALSE(semver_is_valid("v1.2.3-"));
  ASSERT_FALSE(semver_is_valid("v1.2.3-01"));
  ASSERT_FALSE(semver_is_valid("v1.2.3-a..b"));
  ASSERT_FALSE(semver_is_valid("v1.2.3-a."));
  ASSERT_FALSE(semver_is_valid("v1.2.3+"));
  ASSERT_FALSE(semver_is_valid("v1.2.3+a..b"));
  ASSERT_FALSE(semver_is_valid("v1.2.3+a+b"));
  ASSERT_FALSE(semver_is_valid("v1.2.3-a_b"));
  ASSERT_FALSE(semver_is_valid("v1.2.3 "));
  ASSERT_TRUE(semver_is_valid("v0.0.0"));
  ASSERT_TRUE(semver_is_valid("v1.2.3-0"));
  ASSERT_TRUE(semver_is_valid("v1.2.3-0a"));
  ASSERT_TRUE(semver_is_valid("v1.2.3+01"));
  ASSERT_TRUE(semver_is_valid("v1.2.3--"));
  ASSERT_TRUE(semver_is_valid("v100000000000000000000.0.0"));
}

static void test_is_canonical(void) {
  ASSERT_TRUE(semver_is_canonical("v1.2.3"));
  ASSERT_TRUE(semver_is_canonical("v0.0.0"));
  ASSERT_TRUE(semver_is_canonical("v1.2.3-pre.1"));
  ASSERT_TRUE(semver_is_canonical("v2.0.0+incompatible"));
  ASSERT_TRUE(semver_is_canonical("v2.3.0-pre+incompatible"));
  ASSERT_TRUE(semver_is_canonical("v0.0.0-20060102150405-abcdefabcdef"));
  ASSERT_FALSE(semver_is_canonical(NULL));
  ASSERT_FALSE(semver_is_canonical("v1"));
  ASSERT_FALSE(semver_is_canonical("v1.2"));
  ASSERT_FALSE(semver_is_canonical("v1.2.3+meta"));
  ASSERT_FALSE(semver_is_canonical("v1.2.3+incompatible.x"));
  ASSERT_FALSE(semver_is_canonical("v1.2.3+incompatiblex"));
  ASSERT_FALSE(semver_is_canonical("master"));
  for (size_t i = 0; i < NTABLE; i++) {
    const char *in = semver_table[i].in, *out = semver_table[i].out;
    /* Go's canonical form equals the input only for canonical inputs
     * (the table has no +incompatible entries). */
    int want = out[0] && strcmp(in, out) == 0;
    if (semver_is_canonical(in) != want)
      TEST_FAIL_("semver_is_canonical(\"%s\") != %d", in, want);
  }
}

static int sign(int x) {
  return x < 0 ? -1 : x > 0;
}

static void test_compare_table(void) {
  for (size_t i = 0; i < NTABLE; i++)
    for (size_t j = 0; j < NTABLE; j++) {
      int want;
      if (strcmp(semver_table[i].out, semver_table[j].out) == 0)
        want = 0;
      else
        want = i < j ? -1 : 1;
      int got = semver_compare(semver_table[i].in, semver_table[j].in);
      if (got != want)
        TEST_FAIL_("semver_compare(\"%s\", \"%s\") = %d, want %d",
                   semver_table[i].in, semver_table[j].in, got, want);
    }
}

static void test_compare_more(void) {
  ASSERT_EQ_INT(semver_compare("v1.10.0", "v1.9.0"), 1);
  ASSERT_EQ_INT(semver_compare("v1.9.0", "v1.10.0"), -1);
  ASSERT_EQ_INT(semver_compare("v10.0.0", "v9.99.99"), 1);
  ASSERT_EQ_INT(semver_compare("v1.0.0-rc.10", "v1.0.0-rc.9"), 1);
  ASSERT_EQ_INT(semver_compare("v1.0.0-rc.1", "v1.0.0-rc.a"), -1);
  ASSERT_EQ_INT(semver_compare("v1.0.0-rc", "v1.0.0-rc.1"), -1);
  ASSERT_EQ_INT(semver_compare("v1.0.0-alpha", "v1.0.0"), -1);
  ASSERT_EQ_INT(semver_compare("v1.0.0-a", "v1.0.0-aa"), -1);
  ASSERT_EQ_INT(semver_compare("v1.0.0-B", "v1.0.0-a"), -1);
  ASSERT_EQ_INT(semver_compare("v2.0.0+incompatible", "v2.0.0"), 0);
  ASSERT_EQ_INT(semver_compare("v2.0.0+incompatible", "v1.99.0"), 1);
  ASSERT_EQ_INT(semver_compare("v1.2.3", "v1.2.3+meta"), 0);
  /* Invalid versions sort below everything valid, and equal each other. */
  ASSERT_EQ_INT(semver_compare("master", "v0.0.0"), -1);
  ASSERT_EQ_INT(semver_compare("v0.0.0", "master"), 1);
  ASSERT_EQ_INT(semver_compare("master", "dev"), 0);
  ASSERT_EQ_INT(semver_compare(NULL, "v1.0.0"), -1);
  ASSERT_EQ_INT(semver_compare(NULL, NULL), 0);
  /* Pseudo-versions sort before the release they precede. */
  ASSERT_EQ_INT(semver_compare("v1.2.4-0.20060102150405-abcdef", "v1.2.4"), -1);
  ASSERT_EQ_INT(semver_compare("v1.2.4-0.20060102150405-abcdef", "v1.2.3"), 1);
  ASSERT_EQ_INT(sign(semver_compare("v1.0.0-beta.11", "v1.0.0-beta.2")), 1);
}

static void test_prerelease(void) {
  for (size_t i = 0; i < NTABLE; i++) {
    int want = strchr(semver_table[i].out, '-') != NULL;
    if (semver_is_prerelease(semver_table[i].in) != want)
      TEST_FAIL_("semver_is_prerelease(\"%s\") != %d", semver_table[i].in,
                 want);
  }
  ASSERT_TRUE(semver_is_prerelease("v0.0.0-20060102150405-abcdefabcdef"));
  ASSERT_TRUE(semver_is_prerelease("v2.3.0-pre+incompatible"));
  ASSERT_FALSE(semver_is_prerelease("v2.0.0+incompatible"));
  ASSERT_FALSE(semver_is_prerelease("v1.2.3+meta-pre"));
  ASSERT_FALSE(semver_is_prerelease(NULL));
}

/* module/pseudo_test.go pseudoTests: (older, version). */
static const char *const pseudo_table[][2] = {
    {"", "v0.0.0-20060102150405-hash"},
    {"", "v1.0.0-20060102150405-hash"},
    {"", "v2.0.0-20060102150405-hash"},
    {"v0.0.0", "v0.0.1-0.20060102150405-hash"},
    {"v1.2.3", "v1.2.4-0.20060102150405-hash"},
    {"v1.2.99999999999999999", "v1.2.100000000000000000-0.20060102150405-hash"},
    {"v1.2.3-pre", "v1.2.3-pre.0.20060102150405-hash"},
    {"v1.3.0-pre", "v1.3.0-pre.0.20060102150405-hash"},
    {"v0.0.0--", "v0.0.0--.0.20060102150405-hash"},
    {"v1.0.0+metadata", "v1.0.1-0.20060102150405-hash+metadata"},
    {"v2.0.0+incompatible", "v2.0.1-0.20060102150405-hash+incompatible"},
    {"v2.3.0-pre+incompatible",
     "v2.3.0-pre.0.20060102150405-hash+incompatible"},
};

static void test_pseudo_table(void) {
  for (size_t i = 0; i < sizeof pseudo_table / sizeof *pseudo_table; i++) {
    if (!semver_is_pseudo(pseudo_table[i][1]))
      TEST_FAIL_("semver_is_pseudo(\"%s\") != 1", pseudo_table[i][1]);
    if (semver_is_pseudo(pseudo_table[i][0]))
      TEST_FAIL_("semver_is_pseudo(\"%s\") != 0", pseudo_table[i][0]);
  }
}

static void test_pseudo_more(void) {
  ASSERT_TRUE(semver_is_pseudo("v0.0.0-20191109021931-daa7c04131f5"));
  ASSERT_TRUE(semver_is_pseudo("v1.5.3-pre.1.0.20191109021931-daa7c04131f5"));
  ASSERT_FALSE(semver_is_pseudo(NULL));
  ASSERT_FALSE(semver_is_pseudo("v1.2.3"));
  ASSERT_FALSE(semver_is_pseudo("v1.2.3-pre"));
  ASSERT_FALSE(semver_is_pseudo("master"));
  /* vX.Y.Z-<14 digits>-rev is only pseudo when Y.Z is 0.0. */
  ASSERT_FALSE(semver_is_pseudo("v1.2.0-20191109021931-daa7c04131f5"));
  /* Thirteen or fifteen timestamp digits. */
  ASSERT_FALSE(semver_is_pseudo("v0.0.0-2019110902193-daa7c04131f5"));
  ASSERT_FALSE(semver_is_pseudo("v0.0.0-201911090219311-daa7c04131f5"));
  ASSERT_FALSE(semver_is_pseudo("v1.2.4-0.201911090219311-daa7c04131f5"));
  /* The "0." must start the pre-release or follow a '.'. */
  ASSERT_FALSE(semver_is_pseudo("v1.2.4-10.20191109021931-daa7c04131f5"));
  ASSERT_FALSE(semver_is_pseudo("v1.2.4-x0.20191109021931-daa7c04131f5"));
  ASSERT_FALSE(semver_is_pseudo("v1.2.4-1.20191109021931-daa7c04131f5"));
  ASSERT_TRUE(semver_is_pseudo("v1.2.4-a.b.0.20191109021931-daa7c04131f5"));
  /* Missing or empty revision. */
  ASSERT_FALSE(semver_is_pseudo("v0.0.0-20191109021931"));
  ASSERT_FALSE(semver_is_pseudo("v0.0.0-20191109021931-"));
  /* Not semver at all. */
  ASSERT_FALSE(semver_is_pseudo("v0.0.0-20191109021931-daa7c04131f5.."));
}

static void test_major(void) {
  char m[16];
  semver_major("v1.2.3", m, sizeof m);
  ASSERT_EQ_STR(m, "v1");
  semver_major("v2.0.0+incompatible", m, sizeof m);
  ASSERT_EQ_STR(m, "v2");
  semver_major("v12", m, sizeof m);
  ASSERT_EQ_STR(m, "v12");
  semver_major("v0.0.0-20060102150405-hash", m, sizeof m);
  ASSERT_EQ_STR(m, "v0");
  semver_major("bad", m, sizeof m);
  ASSERT_EQ_STR(m, "");
  semver_major(NULL, m, sizeof m);
  ASSERT_EQ_STR(m, "");
  /* Too small for the answer: empty, never truncated. */
  char small[3];
  semver_major("v12.0.0", small, sizeof small);
  ASSERT_EQ_STR(small, "");
  for (size_t i = 0; i < NTABLE; i++) {
    const char *out = semver_table[i].out;
    const char *dot = strchr(out, '.');
    char want[16] = "";
    if (dot)
      memcpy(want, out, (size_t)(dot - out));
    semver_major(semver_table[i].in, m, sizeof m);
    if (strcmp(m, want) != 0)
      TEST_FAIL_("semver_major(\"%s\") = \"%s\", want \"%s\"",
                 semver_table[i].in, m, want);
  }
}

static int merge(const char *a, const char *b, struct buf *out) {
  buf_init(out, 1 << 20);
  return versions_merge(a, a ? strlen(a) : 0, b, b ? strlen(b) : 0, out);
}

static void test_merge_basic(void) {
  struct buf out;
  ASSERT_EQ_INT(merge("v1.10.0\nv1.2.0\nv1.9.0\n", "v1.2.0\nv0.1.0", &out), 0);
  ASSERT_EQ_STR(buf_cstr(&out), "v0.1.0\nv1.2.0\nv1.9.0\nv1.10.0\n");
  buf_free(&out);
}

static void test_merge_null_and_empty(void) {
  struct buf out;
  ASSERT_EQ_INT(merge(NULL, NULL, &out), 0);
  ASSERT_EQ_STR(buf_cstr(&out), "");
  ASSERT_EQ_INT((int)out.len, 0);
  buf_free(&out);
  ASSERT_EQ_INT(merge("", "\n\n  \n", &out), 0);
  ASSERT_EQ_STR(buf_cstr(&out), "");
  buf_free(&out);
  ASSERT_EQ_INT(merge(NULL, "v1.0.0", &out), 0);
  ASSERT_EQ_STR(buf_cstr(&out), "v1.0.0\n");
  buf_free(&out);
}

static void test_merge_drops(void) {
  struct buf out;
  const char *a = "v1.0.0\n"
                  "v0.0.0-20191109021931-daa7c04131f5\n"   /* pseudo */
                  "v1.0.1-0.20191109021931-daa7c04131f5\n" /* pseudo */
                  "master\n"                               /* not semver */
                  "v1.2\n"                                 /* not canonical */
                  "v1.3.0+meta\n"                          /* not canonical */
                  "V1.4.0\n"
                  "\n"
                  "   \t \n"
                  "v2.0.0+incompatible\n";
  ASSERT_EQ_INT(merge(a, NULL, &out), 0);
  ASSERT_EQ_STR(buf_cstr(&out), "v1.0.0\nv2.0.0+incompatible\n");
  buf_free(&out);
}

static void test_merge_dedupe_and_time(void) {
  struct buf out;
  /* A line with a time beats one without, wherever it comes from. */
  ASSERT_EQ_INT(merge("v1.0.0\nv1.1.0 2020-01-02T03:04:05Z\nv1.0.0\n",
                      "v1.0.0 2019-01-01T00:00:00Z\nv1.1.0\n", &out),
                0);
  ASSERT_EQ_STR(buf_cstr(&out), "v1.0.0 2019-01-01T00:00:00Z\n"
                                "v1.1.0 2020-01-02T03:04:05Z\n");
  buf_free(&out);
  /* Both with times: the first input wins. */
  ASSERT_EQ_INT(merge("v1.0.0 2020-01-01T00:00:00Z\n",
                      "v1.0.0 2021-01-01T00:00:00Z\n", &out),
                0);
  ASSERT_EQ_STR(buf_cstr(&out), "v1.0.0 2020-01-01T00:00:00Z\n");
  buf_free(&out);
}

static void test_merge_whitespace(void) {
  struct buf out;
  /* CRLF, tabs, leading blanks and extra fields, as strings.Fields sees
   * them. */
  ASSERT_EQ_INT(
      merge("  v1.0.0\t2020-01-01T00:00:00Z extra\r\nv1.1.0\r\n", NULL, &out),
      0);
  ASSERT_EQ_STR(buf_cstr(&out), "v1.0.0 2020-01-01T00:00:00Z\nv1.1.0\n");
  buf_free(&out);
}

static void test_merge_prerelease_order(void) {
  struct buf out;
  ASSERT_EQ_INT(merge("v1.0.0\nv1.0.0-rc.10\nv1.0.0-rc.9\nv1.0.0-beta\n",
                      "v2.0.0+incompatible\nv2.0.0-rc.1+incompatible\n", &out),
                0);
  ASSERT_EQ_STR(buf_cstr(&out), "v1.0.0-beta\nv1.0.0-rc.9\nv1.0.0-rc.10\n"
                                "v1.0.0\nv2.0.0-rc.1+incompatible\n"
                                "v2.0.0+incompatible\n");
  buf_free(&out);
}

static void test_merge_binary(void) {
  struct buf out;
  /* Embedded NULs and high bytes are dropped, never passed on. */
  static const char a[] = "v1.0.0\0junk\nv1.1.0 \x01time\nv1.2.0 t\xff\n";
  buf_init(&out, 1 << 20);
  ASSERT_EQ_INT(versions_merge(a, sizeof a - 1, NULL, 0, &out), 0);
  ASSERT_EQ_STR(buf_cstr(&out), "v1.1.0\nv1.2.0\n");
  buf_free(&out);
}

static void test_merge_cap(void) {
  struct buf out;
  buf_init(&out, 4);
  ASSERT_EQ_INT(versions_merge("v1.0.0\n", 7, NULL, 0, &out), ERR_TOO_LARGE);
  buf_free(&out);
}

static void test_merge_appends(void) {
  struct buf out;
  buf_init(&out, 1 << 20);
  ASSERT_EQ_INT(buf_append(&out, "x\n", 2), 0);
  ASSERT_EQ_INT(versions_merge("v1.0.0", 6, NULL, 0, &out), 0);
  ASSERT_EQ_STR(buf_cstr(&out), "x\nv1.0.0\n");
  buf_free(&out);
}

static int latest(const char *list, char *out, size_t cap) {
  return versions_latest(list, list ? strlen(list) : 0, out, cap);
}

static void test_latest(void) {
  char v[64];
  ASSERT_EQ_INT(latest("v1.0.0\nv1.10.0\nv1.9.0\nv1.11.0-rc.1\n", v, sizeof v),
                0);
  ASSERT_EQ_STR(v, "v1.10.0");
  /* No release: the highest pre-release. */
  ASSERT_EQ_INT(
      latest("v1.0.0-rc.1\nv1.0.0-rc.2 2020-01-01T00:00:00Z\n", v, sizeof v),
      0);
  ASSERT_EQ_STR(v, "v1.0.0-rc.2");
  /* Pseudo-versions and junk never count. */
  ASSERT_EQ_INT(
      latest("v0.0.0-20191109021931-daa7c04131f5\nmaster\n", v, sizeof v),
      ERR_NOT_FOUND);
  ASSERT_EQ_INT(
      latest("v0.0.0-20191109021931-daa7c04131f5\nv0.1.0\n", v, sizeof v), 0);
  ASSERT_EQ_STR(v, "v0.1.0");
  ASSERT_EQ_INT(latest("", v, sizeof v), ERR_NOT_FOUND);
  ASSERT_EQ_INT(latest(NULL, v, sizeof v), ERR_NOT_FOUND);
  ASSERT_EQ_INT(latest("v2.0.0+incompatible\nv1.5.0\n", v, sizeof v), 0);
  ASSERT_EQ_STR(v, "v2.0.0+incompatible");
  /* The answer does not fit. */
  ASSERT_EQ_INT(latest("v1.10.0\n", v, 7), ERR_INVALID);
  ASSERT_EQ_INT(latest("v1.10.0\n", v, 8), 0);
  ASSERT_EQ_STR(v, "v1.10.0");
}

int main(void) {
  RUN_TEST(test_is_valid_table);
  RUN_TEST(test_is_valid_more);
  RUN_TEST(test_is_canonical);
  RUN_TEST(test_compare_table);
  RUN_TEST(test_compare_more);
  RUN_TEST(test_prerelease);
  RUN_TEST(test_pseudo_table);
  RUN_TEST(test_pseudo_more);
  RUN_TEST(test_major);
  RUN_TEST(test_merge_basic);
  RUN_TEST(test_merge_null_and_empty);
  RUN_TEST(test_merge_drops);
  RUN_TEST(test_merge_dedupe_and_time);
  RUN_TEST(test_merge_whitespace);
  RUN_TEST(test_merge_prerelease_order);
  RUN_TEST(test_merge_binary);
  RUN_TEST(test_merge_cap);
  RUN_TEST(test_merge_appends);
  RUN_TEST(test_latest);
  return test_summary();
}
