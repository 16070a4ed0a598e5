/* The version policy's grammar and decisions (mod/policy.h). */
#include "core/err.h"
#include "mod/policy.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static struct policy_rules *parse(const char *text, struct reason *why) {
  struct policy_rules *r = NULL;
  memset(why, 0, sizeof *why);
  int rc = policy_rules_parse(text, strlen(text), "policy.txt", &r, why);
  if (rc)
    ASSERT_TRUE(r == NULL);
  return r;
}

/* The example of issue 14, as an operator would write it. */
static const char example[] =
    "# security review\n"
    "deny      golang.org/x/net          <v0.17.0          \"CVE-2023-44487: "
    "use v0.17.0 or later\"\n"
    "deny      github.com/evil/*         *                 \"blocked by "
    "security review SR-112\"\n"
    "cooldown  *                         7d                # fresh releases "
    "wait\n"
    "allow     git.corp.example/*        *                 # private: no "
    "cooldown\n"
    "only      github.com/* golang.org/x/* gopkg.in/* git.corp.example\n"
    "keep      golang.org/x/*            >=v0.20.0\n";

static void test_example(void) {
  struct reason why;
  struct policy_rules *r = parse(example, &why);
  ASSERT_TRUE(r != NULL);
  if (!r) {
    fprintf(stderr, "  %s\n", why.text);
    return;
  }
  ASSERT_EQ_INT(policy_rules_count(r), 6);
  struct policy_match m;
  ASSERT_EQ_INT(policy_rules_decide(r, "golang.org/x/net", "v0.16.0", &m),
                POLICY_DENY);
  ASSERT_EQ_INT(m.line, 2);
  ASSERT_EQ_STR(m.reason, "CVE-2023-44487: use v0.17.0 or later");
  ASSERT_EQ_STR(m.rule, "deny golang.org/x/net <v0.17.0");
  /* A pre-release of the fixed version sorts below it. */
  ASSERT_EQ_INT(policy_rules_decide(r, "golang.org/x/net", "v0.17.0-rc.1", &m),
                POLICY_DENY);
  ASSERT_EQ_INT(policy_rules_decide(r, "golang.org/x/net", "v0.17.0", &m),
                POLICY_COOLDOWN);
  ASSERT_EQ_INT(m.line, 4);
  ASSERT_EQ_INT(m.cooldown_s, 7 * 86400);
  ASSERT_EQ_INT(policy_rules_decide(r, "github.com/evil/pkg", "v1.0.0", &m),
                POLICY_DENY);
  ASSERT_EQ_STR(m.reason, "blocked by security review SR-112");
  /* The allow rule after the cooldown still exempts. */
  ASSERT_EQ_INT(policy_rules_decide(r, "git.corp.example/team/x", "v1.0.0", &m),
                POLICY_ALLOW);
  ASSERT_EQ_INT(m.line, 5);
  /* A nested module path matches its prefix pattern (GOPRIVATE rules). */
  ASSERT_EQ_INT(policy_rules_decide(r, "golang.org/x/net/v2", "v2.0.0", &m),
                POLICY_COOLDOWN);
  long line = -1;
  ASSERT_EQ_INT(policy_rules_only(r, "github.com/a/b", &line), 1);
  ASSERT_EQ_INT(policy_rules_only(r, "golang.org/x/mod", &line), 1);
  ASSERT_EQ_INT(policy_rules_only(r, "example.com/hello", &line), 0);
  ASSERT_EQ_INT(line, 6);
  ASSERT_EQ_INT(policy_rules_keep(r, "golang.org/x/mod", "v0.20.0", &line), 1);
  ASSERT_EQ_INT(line, 7);
  ASSERT_EQ_INT(policy_rules_keep(r, "golang.org/x/mod", "v0.19.9", NULL), 0);
  ASSERT_EQ_INT(policy_rules_keep(r, "example.com/x", "v9.0.0", NULL), 0);
  policy_rules_free(r);
}

static void test_first_match_and_no_rules(void) {
  struct reason why;
  struct policy_rules *r = parse("allow example.com/a >=v1.2.0\n"
                                 "deny example.com/a * \"old\"\n"
                                 "deny example.com/b =v1.0.0\n"
                                 "cooldown example.com/* 2d\n"
                                 "cooldown * 7d\n",
                                 &why);
  ASSERT_TRUE(r != NULL);
  struct policy_match m;
  ASSERT_EQ_INT(policy_rules_decide(r, "example.com/a", "v1.2.0", &m),
                POLICY_ALLOW);
  ASSERT_EQ_INT(policy_rules_decide(r, "example.com/a", "v1.1.9", &m),
                POLICY_DENY);
  ASSERT_EQ_STR(m.reason, "old");
  ASSERT_EQ_INT(policy_rules_decide(r, "example.com/b", "v1.0.0", &m),
                POLICY_DENY);
  ASSERT_EQ_STR(m.reason, "denied by policy");
  ASSERT_EQ_INT(policy_rules_decide(r, "example.com/b", "v1.0.1", &m),
                POLICY_COOLDOWN);
  ASSERT_EQ_INT(m.cooldown_s, 2 * 86400);
  ASSERT_EQ_INT(policy_rules_decide(r, "other.org/b", "v1.0.1", &m),
                POLICY_COOLDOWN);
  ASSERT_EQ_INT(m.cooldown_s, 7 * 86400);
  ASSERT_EQ_INT(policy_rules_only(r, "anything.org/x", NULL), 1);
  policy_rules_free(r);
  /* No rules at all, and no policy. */
  r = parse("# nothing here\n\n   \n", &why);
  ASSERT_TRUE(r != NULL);
  ASSERT_EQ_INT(policy_rules_decide(r, "a.b/c", "v1.0.0", &m), POLICY_ALLOW);
  ASSERT_EQ_INT(m.line, 0);
  policy_rules_free(r);
  ASSERT_EQ_INT(policy_rules_decide(NULL, "a.b/c", "v1.0.0", NULL),
                POLICY_ALLOW);
  ASSERT_EQ_INT(policy_rules_only(NULL, "a.b/c", NULL), 1);
}

static void test_errors(void) {
  static const struct {
    const char *text, *want;
  } bad[] = {
      {"forbid x *\n", "policy.txt:1: unknown rule 'forbid'"},
      {"\ndeny x\n", "policy.txt:2: deny needs PATTERN RANGE"},
      {"deny x * reason\n", "policy.txt:1: deny needs PATTERN RANGE"},
      {"deny x * \"open\n", "policy.txt:1: unterminated quote"},
      {"deny x <1.0 \"r\"\n", "policy.txt:1: bad version range '<1.0'"},
      {"deny x <=>v1 \"r\"\n", "policy.txt:1: bad version range"},
      {"allow x v1.0.0,\n", "policy.txt:1: bad version range"},
      {"cooldown * 7\n", "policy.txt:1: bad duration '7'"},
      {"cooldown * 7y\n", "policy.txt:1: bad duration"},
      {"cooldown * -1d\n", "policy.txt:1: bad duration"},
      {"cooldown *\n", "policy.txt:1: cooldown needs PATTERN DURATION"},
      {"only\n", "policy.txt:1: only needs one or more PATTERNs"},
      {"keep a[ *\n", "policy.txt:1: "},
      {"deny x * \"a\"b\n", "policy.txt:1: text right after a closing quote"},
      {"deny x\"y * \n", "policy.txt:1: unexpected quote"},
      {"deny \"x\" *\n", "policy.txt:1: bad module pattern"},
      {"deny x * \"\"\n", "policy.txt:1: the reason must be"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    struct reason why;
    struct policy_rules *r = parse(bad[i].text, &why);
    ASSERT_TRUE(r == NULL);
    if (strncmp(why.text, bad[i].want, strlen(bad[i].want)) != 0)
      TEST_FAIL_("%s: got \"%s\", want \"%s...\"", bad[i].text, why.text,
                 bad[i].want);
    ASSERT_TRUE(strchr(why.text, '\n') == NULL);
    policy_rules_free(r);
  }
  /* A NUL byte is refused, not read as the end of the file. */
  struct policy_rules *r = NULL;
  struct reason why = {{0}};
  ASSERT_EQ_INT(policy_rules_parse("deny x *\0\n", 10, "p", &r, &why),
                ERR_CONFIG);
}

static void test_quotes_and_comments(void) {
  struct reason why;
  struct policy_rules *r =
      parse("deny a.b/c * \"say \\\"no\\\" # not a comment\" # a comment\n"
            "\tdeny\ta.b/d\t*\t\"x\\\\y\"\r\n",
            &why);
  ASSERT_TRUE(r != NULL);
  struct policy_match m;
  ASSERT_EQ_INT(policy_rules_decide(r, "a.b/c", "v1.0.0", &m), POLICY_DENY);
  ASSERT_EQ_STR(m.reason, "say \"no\" # not a comment");
  ASSERT_EQ_INT(policy_rules_decide(r, "a.b/d", "v1.0.0", &m), POLICY_DENY);
  ASSERT_EQ_STR(m.reason, "x\\y");
  ASSERT_EQ_INT(m.line, 2);
  policy_rules_free(r);
}

static void test_ranges(void) {
  static const struct {
    const char *range, *version;
    int want;
  } cases[] = {
      {"*", "v0.0.0-20200101000000-abcdefabcdef", 1},
      {"<v1.0.0", "v0.9.9", 1},
      {"<v1.0.0", "v1.0.0", 0},
      {"<=v1.0.0", "v1.0.0", 1},
      {">v1", "v1.0.1", 1},
      {">v1", "v1.0.0", 0},
      {">=v1.2.0,<v1.3.0", "v1.2.7", 1},
      {">=v1.2.0,<v1.3.0", "v1.3.0", 0},
      {"v1.4.2", "v1.4.2", 1},
      {"=v1.4.2", "v1.4.3", 0},
      {"!=v1.4.2", "v1.4.3", 1},
      {">=v2.0.0+incompatible", "v2.0.0+incompatible", 1},
      {"<v1.0.0", "v1.0.0-rc.1", 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    int got = policy_range_match(cases[i].range, strlen(cases[i].range),
                                 cases[i].version);
    if (got != cases[i].want)
      TEST_FAIL_("%s against %s: %d, want %d", cases[i].version, cases[i].range,
                 got, cases[i].want);
  }
  ASSERT_EQ_INT(policy_range_match("<x", 2, "v1.0.0"), 0);
  ASSERT_EQ_INT(policy_range_check("", 0, NULL), ERR_INVALID);
  ASSERT_EQ_INT(policy_range_check(">=v1,", 5, NULL), ERR_INVALID);
}

static void test_durations(void) {
  long s = -1;
  ASSERT_EQ_INT(policy_duration_parse("30s", 3, &s), 0);
  ASSERT_EQ_INT(s, 30);
  ASSERT_EQ_INT(policy_duration_parse("12h", 3, &s), 0);
  ASSERT_EQ_INT(s, 12 * 3600);
  ASSERT_EQ_INT(policy_duration_parse("180d", 4, &s), 0);
  ASSERT_EQ_INT(s, 180L * 86400);
  ASSERT_EQ_INT(policy_duration_parse("2w", 2, &s), 0);
  ASSERT_EQ_INT(s, 14L * 86400);
  ASSERT_EQ_INT(policy_duration_parse("0s", 2, &s), 0);
  ASSERT_EQ_INT(s, 0);
  ASSERT_EQ_INT(policy_duration_parse("s", 1, &s), ERR_INVALID);
  ASSERT_EQ_INT(policy_duration_parse("1.5h", 4, &s), ERR_INVALID);
  ASSERT_EQ_INT(policy_duration_parse("99999999999d", 12, &s), ERR_INVALID);
  ASSERT_EQ_INT(policy_duration_parse("36600d", 6, &s), 0);
  ASSERT_EQ_INT(policy_duration_parse("36601d", 6, &s), ERR_INVALID);
  char out[32];
  policy_duration_format(7 * 86400, out, sizeof out);
  ASSERT_EQ_STR(out, "1w");
  policy_duration_format(3 * 86400, out, sizeof out);
  ASSERT_EQ_STR(out, "3d");
  policy_duration_format(36 * 3600, out, sizeof out);
  ASSERT_EQ_STR(out, "36h");
  policy_duration_format(90, out, sizeof out);
  ASSERT_EQ_STR(out, "90s");
}

static void test_times(void) {
  time_t t = 0;
  ASSERT_EQ_INT(policy_time_parse("1970-01-01T00:00:00Z", 20, &t), 0);
  ASSERT_EQ_INT(t, 0);
  ASSERT_EQ_INT(policy_time_parse("2024-02-29T12:30:05Z", 20, &t), 0);
  ASSERT_EQ_INT(t, 1709209805);
  const char *frac = "2024-02-29T14:30:05.123456789+02:00";
  ASSERT_EQ_INT(policy_time_parse(frac, strlen(frac), &t), 0);
  ASSERT_EQ_INT(t, 1709209805);
  ASSERT_EQ_INT(policy_time_parse("2023-02-29T12:30:05Z", 20, &t), ERR_INVALID);
  ASSERT_EQ_INT(policy_time_parse("2024-02-29 12:30:05Z", 20, &t), ERR_INVALID);
  ASSERT_EQ_INT(policy_time_parse("2024-02-29T12:30:05", 19, &t), ERR_INVALID);
  char out[32];
  policy_time_format(1709209805, out, sizeof out);
  ASSERT_EQ_STR(out, "2024-02-29T12:30:05Z");
  const char *info =
      "{\"Version\":\"v1.0.0\",\"Time\":\"2024-02-29T12:30:05Z\"}";
  ASSERT_EQ_INT(policy_info_time(info, strlen(info), &t), 0);
  ASSERT_EQ_INT(t, 1709209805);
  const char *none = "{\"Version\":\"v1.0.0\"}";
  ASSERT_EQ_INT(policy_info_time(none, strlen(none), &t), ERR_NOT_FOUND);
  ASSERT_EQ_INT(policy_info_time("{\"Time\":5}", 10, &t), ERR_INVALID);
  ASSERT_EQ_INT(policy_info_time("not json", 8, &t), ERR_INVALID);
  /* Only the given bytes are read. */
  ASSERT_EQ_INT(policy_info_time(info, 10, &t), ERR_INVALID);
}

int main(void) {
  RUN_TEST(test_example);
  RUN_TEST(test_first_match_and_no_rules);
  RUN_TEST(test_errors);
  RUN_TEST(test_quotes_and_comments);
  RUN_TEST(test_ranges);
  RUN_TEST(test_durations);
  RUN_TEST(test_times);
  return test_summary();
}
