/* libFuzzer target for the version policy (mod/policy.h): the bytes are
 * parsed as a policy file; a file that parses decides for a few module
 * versions (and the file's own second line as module@version) with answers
 * that agree with the rule they name. The first line is also read as a
 * duration, a version range and an RFC 3339 time, and the whole input as a
 * .info body. Nothing may read or write out of bounds, and every error is
 * one line. */
#include "core/err.h"
#include "mod/policy.h"
#include "mod/private.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      abort();                                                                 \
  } while (0)

static void nth_line(const char *text, size_t size, int n, char *out,
                     size_t cap) {
  const char *p = text, *end = text + size;
  for (; n > 0 && p < end; n--) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    p = nl ? nl + 1 : end;
  }
  const char *nl = memchr(p, '\n', (size_t)(end - p));
  size_t l = (size_t)((nl ? nl : end) - p);
  if (l >= cap)
    l = cap - 1;
  memcpy(out, p, l);
  out[l] = '\0';
}

static void check_decisions(const struct policy_rules *r, long lines,
                            const char *own) {
  char mod[300] = "", ver[300] = "";
  const char *at = strchr(own, '@');
  if (at && (size_t)(at - own) < sizeof mod) {
    memcpy(mod, own, (size_t)(at - own));
    mod[at - own] = '\0';
    snprintf(ver, sizeof ver, "%s", at + 1);
  }
  const char *mods[] = {"golang.org/x/net", "github.com/evil/pkg",
                        "git.corp.example/team/x", "example.com/hello", mod};
  const char *vers[] = {"v0.16.0", "v0.17.0", "v1.0.0-rc.1",
                        "v0.0.0-20200101000000-abcdefabcdef", ver};
  for (size_t i = 0; i < sizeof mods / sizeof *mods; i++) {
    if (!mods[i][0])
      continue;
    for (size_t j = 0; j < sizeof vers / sizeof *vers; j++) {
      if (!vers[j][0])
        continue;
      struct policy_match m;
      memset(&m, 0xa5, sizeof m);
      enum policy_verdict v = policy_rules_decide(r, mods[i], vers[j], &m);
      CHECK(v == POLICY_ALLOW || v == POLICY_DENY || v == POLICY_COOLDOWN);
      CHECK(m.verdict == v);
      CHECK(policy_rules_decide(r, mods[i], vers[j], NULL) == v);
      CHECK(m.line >= 0 && m.line <= lines);
      CHECK(strnlen(m.rule, sizeof m.rule) < sizeof m.rule);
      CHECK(strnlen(m.reason, sizeof m.reason) < sizeof m.reason);
      if (v == POLICY_DENY)
        CHECK(m.line > 0 && m.reason[0] && strncmp(m.rule, "deny ", 5) == 0);
      if (v == POLICY_COOLDOWN)
        CHECK(m.line > 0 && m.cooldown_s > 0 &&
              m.cooldown_s <= POLICY_DURATION_MAX &&
              strncmp(m.rule, "cooldown ", 9) == 0);
      if (v == POLICY_ALLOW && m.line)
        CHECK(strncmp(m.rule, "allow ", 6) == 0 ||
              strncmp(m.rule, "cooldown ", 9) == 0);
      long kl = -1;
      int keep = policy_rules_keep(r, mods[i], vers[j], &kl);
      CHECK(keep == 0 || keep == 1);
      if (keep)
        CHECK(kl > 0 && kl <= lines);
    }
    long ol = -1;
    int only = policy_rules_only(r, mods[i], &ol);
    CHECK(only == 0 || only == 1);
    if (!only)
      CHECK(ol > 0 && ol <= lines);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 16384)
    return 0;
  char *s = malloc(size + 1);
  if (!s)
    return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  long lines = 1;
  for (size_t i = 0; i < size; i++)
    lines += s[i] == '\n';

  struct policy_rules *r = (struct policy_rules *)(void *)&s;
  struct reason why = {{0}};
  int rc = policy_rules_parse(s, size, "fuzz", &r, &why);
  CHECK(rc == 0 || rc == ERR_CONFIG || rc == ERR_NOMEM);
  if (rc) {
    CHECK(r == NULL);
    size_t n = strnlen(why.text, sizeof why.text);
    CHECK(n > 0 && n < sizeof why.text && !memchr(why.text, '\n', n));
    CHECK(strncmp(why.text, "fuzz:", 5) == 0);
  } else {
    CHECK(policy_rules_count(r) <= (size_t)lines);
    char own[300];
    nth_line(s, size, 1, own, sizeof own);
    check_decisions(r, lines, own);
    policy_rules_free(r);
  }

  char l0[300];
  nth_line(s, size, 0, l0, sizeof l0);
  size_t n0 = strlen(l0);
  long secs = -1;
  if (policy_duration_parse(l0, n0, &secs) == 0) {
    CHECK(secs >= 0 && secs <= POLICY_DURATION_MAX);
    char out[32];
    policy_duration_format(secs, out, sizeof out);
    long back = -1;
    CHECK(policy_duration_parse(out, strlen(out), &back) == 0 && back == secs);
  }
  if (policy_range_check(l0, n0, NULL) == 0) {
    int m = policy_range_match(l0, n0, "v1.2.3");
    CHECK(m == 0 || m == 1);
  } else {
    CHECK(policy_range_match(l0, n0, "v1.2.3") == 0);
  }
  time_t t;
  if (policy_time_parse(l0, n0, &t) == 0) {
    char out[40];
    policy_time_format(t, out, sizeof out);
    CHECK(strnlen(out, sizeof out) < sizeof out);
  }
  int irc = policy_info_time(s, size, &t);
  CHECK(irc == 0 || irc == ERR_NOT_FOUND || irc == ERR_INVALID ||
        irc == ERR_NOMEM);
  free(s);
  return 0;
}
