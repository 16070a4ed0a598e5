/* Unit tests for what chains regions (issue 15, server/region.h): the
 * Gomirror-Via header a gomirror adds and the loops it detects, and each
 * upstream entry's circuit breaker, driven with a made-up clock. The
 * integration side is tests/integration/test_multiregion.py. */
#include "core/err.h"
#include "core/log.h"
#include "server/upstream.h"
#include "test.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- Gomirror-Via ---- */

static void via_built(void) {
  char line[UPSTREAM_VIA_MAX];
  upstream_via_set(NULL, line, NULL, "eu");
  ASSERT_EQ_STR(line, "Gomirror-Via: eu");
  upstream_via_set(NULL, line, "", "eu");
  ASSERT_EQ_STR(line, "Gomirror-Via: eu");
  upstream_via_set(NULL, line, "  us, ap", "eu");
  ASSERT_EQ_STR(line, "Gomirror-Via: us, ap, eu");
  /* A header can never be split by what a client sent. */
  upstream_via_set(NULL, line, "us\r\nX-Evil: 1", "eu");
  ASSERT_EQ_STR(line, "Gomirror-Via: us  X-Evil: 1, eu");
  ASSERT_TRUE(strpbrk(line, "\r\n") == NULL);
  /* An overlong incoming list is cut, never the region's own id. */
  char big[1000];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  upstream_via_set(NULL, line, big, "eu");
  ASSERT_TRUE(strlen(line) < UPSTREAM_VIA_MAX);
  size_t n = strlen(line);
  ASSERT_TRUE(n > 4 && strcmp(line + n - 4, ", eu") == 0);
}

static void via_loops(void) {
  ASSERT_EQ_INT(upstream_via_loops(NULL, "eu"), 0);
  ASSERT_EQ_INT(upstream_via_loops("", "eu"), 0);
  ASSERT_EQ_INT(upstream_via_loops("us", "eu"), 0);
  ASSERT_EQ_INT(upstream_via_loops("eu", "eu"), 1);
  /* Ids are compared whole, without case, spaces and tabs trimmed. */
  ASSERT_EQ_INT(upstream_via_loops("us, EU", "eu"), 1);
  ASSERT_EQ_INT(upstream_via_loops(" us ,\teu\t", "eu"), 1);
  ASSERT_EQ_INT(upstream_via_loops("eu2, xeu, e", "eu"), 0);
  ASSERT_EQ_INT(upstream_via_loops("e,u", "eu"), 0);
  /* Empty items are not hops. */
  ASSERT_EQ_INT(upstream_via_loops(", ,,r1, ,", "eu"), 0);
}

static void via_hop_limit(void) {
  char via[256] = "";
  size_t n = 0;
  for (int i = 0; i < UPSTREAM_VIA_MAX_HOPS; i++) {
    ASSERT_EQ_INT(upstream_via_loops(i ? via : NULL, "eu"), 0);
    n += (size_t)snprintf(via + n, sizeof via - n, "%sr%d", i ? ", " : "", i);
  }
  /* UPSTREAM_VIA_MAX_HOPS ids: one more hop would exceed the limit. */
  ASSERT_EQ_INT(upstream_via_loops(via, "eu"), 1);
  char with_empty[300];
  snprintf(with_empty, sizeof with_empty, "%s,,", via);
  ASSERT_EQ_INT(upstream_via_loops(with_empty, "eu"), 1);
}

/* What one gomirror sends, the next one reads: the chain grows by one id per
 * hop and a return to any gomirror on it is seen. */
static void via_round_trip(void) {
  char at_us[UPSTREAM_VIA_MAX], at_eu[UPSTREAM_VIA_MAX];
  upstream_via_set(NULL, at_us, NULL, "us");
  const char *value = at_us + strlen(UPSTREAM_VIA_HEADER ": ");
  ASSERT_EQ_INT(upstream_via_loops(value, "eu"), 0);
  upstream_via_set(NULL, at_eu, value, "eu");
  ASSERT_EQ_STR(at_eu, "Gomirror-Via: us, eu");
  value = at_eu + strlen(UPSTREAM_VIA_HEADER ": ");
  ASSERT_EQ_INT(upstream_via_loops(value, "us"), 1);
  ASSERT_EQ_INT(upstream_via_loops(value, "eu"), 1);
  ASSERT_EQ_INT(upstream_via_loops(value, "ap"), 0);
}

/* ---- circuit breaker ---- */

static struct upstream *chain(const char *spec, long failures, long cooldown) {
  struct upstream *u = NULL;
  struct reason why = {{0}};
  ASSERT_EQ_INT(upstream_parse(spec, NULL, 2, 10, &u, &why), 0);
  if (u)
    upstream_set_circuit(u, failures, cooldown);
  return u;
}

/* One try of e at now with the given outcome; returns whether it was
 * admitted (and, admitted, notes the outcome). */
static int try_at(struct upstream *u, struct up_entry *e, long long now,
                  int failed, int *probe) {
  if (!upstream_circuit_admit(e, now, probe))
    return 0;
  upstream_circuit_note(u, e, failed, *probe, now);
  return 1;
}

static void circuit_opens_after_failures(void) {
  struct upstream *u = chain("http://eu.corp|http://public", 3, 10);
  if (!u)
    return;
  struct up_entry *e = &u->v[0];
  int probe;
  ASSERT_EQ_INT(upstream_circuit_is_open(e), 0);
  /* An answer between failures resets the count. */
  ASSERT_TRUE(try_at(u, e, 0, 1, &probe));
  ASSERT_TRUE(try_at(u, e, 1, 1, &probe));
  ASSERT_TRUE(try_at(u, e, 2, 0, &probe));
  ASSERT_TRUE(try_at(u, e, 3, 1, &probe));
  ASSERT_TRUE(try_at(u, e, 4, 1, &probe));
  ASSERT_EQ_INT(probe, 0);
  ASSERT_EQ_INT(upstream_circuit_is_open(e), 0);
  ASSERT_TRUE(try_at(u, e, 5, 1, &probe));
  ASSERT_EQ_INT(upstream_circuit_is_open(e), 1);
  /* The other entries have their own circuits. */
  ASSERT_EQ_INT(upstream_circuit_is_open(&u->v[1]), 0);
  /* Skipped for the whole cool-down (10 s from the opening failure). */
  ASSERT_EQ_INT(upstream_circuit_admit(e, 6, &probe), 0);
  ASSERT_EQ_INT(upstream_circuit_admit(e, 10004, &probe), 0);
  ASSERT_EQ_INT(probe, 0);
  upstream_free(u);
}

static void circuit_half_open_probe(void) {
  struct upstream *u = chain("http://eu.corp", 3, 10);
  if (!u)
    return;
  struct up_entry *e = &u->v[0];
  int probe;
  for (int i = 0; i < 3; i++)
    try_at(u, e, 0, 1, &probe);
  ASSERT_EQ_INT(upstream_circuit_is_open(e), 1);
  /* Cool-down over: one request probes, the others are still skipped. */
  ASSERT_EQ_INT(upstream_circuit_admit(e, 10000, &probe), 1);
  ASSERT_EQ_INT(probe, 1);
  int other;
  ASSERT_EQ_INT(upstream_circuit_admit(e, 10001, &other), 0);
  ASSERT_EQ_INT(other, 0);
  ASSERT_EQ_INT(upstream_circuit_is_open(e), 1);
  /* The probe is answered: closed, and everything is admitted again. */
  upstream_circuit_note(u, e, 0, probe, 10002);
  ASSERT_EQ_INT(upstream_circuit_is_open(e), 0);
  ASSERT_EQ_INT(upstream_circuit_admit(e, 10003, &probe), 1);
  ASSERT_EQ_INT(probe, 0);
  ASSERT_EQ_INT(upstream_circuit_admit(e, 10003, &probe), 1);
  upstream_free(u);
}

static void circuit_backoff_doubles_and_resets(void) {
  struct upstream *u = chain("http://eu.corp", 3, 10);
  if (!u)
    return;
  struct up_entry *e = &u->v[0];
  int probe;
  long long t = 0;
  for (int i = 0; i < 3; i++)
    try_at(u, e, t, 1, &probe);
  /* Each failed probe doubles the cool-down: 20, 40, 80 s, then 80 s (8
   * times the first at most). */
  long long want[] = {10000, 20000, 40000, 80000, 80000, 80000};
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    ASSERT_EQ_INT(upstream_circuit_admit(e, t + want[i] - 1, &probe), 0);
    t += want[i];
    ASSERT_EQ_INT(try_at(u, e, t, 1, &probe), 1);
    ASSERT_EQ_INT(probe, 1);
    ASSERT_EQ_INT(upstream_circuit_is_open(e), 1);
  }
  /* A successful probe closes it and forgets the back-off. */
  t += 80000;
  ASSERT_EQ_INT(try_at(u, e, t, 0, &probe), 1);
  ASSERT_EQ_INT(probe, 1);
  ASSERT_EQ_INT(upstream_circuit_is_open(e), 0);
  for (int i = 0; i < 3; i++)
    try_at(u, e, t, 1, &probe);
  ASSERT_EQ_INT(upstream_circuit_is_open(e), 1);
  ASSERT_EQ_INT(upstream_circuit_admit(e, t + 9999, &probe), 0);
  ASSERT_EQ_INT(upstream_circuit_admit(e, t + 10000, &probe), 1);
  ASSERT_EQ_INT(probe, 1);
  upstream_free(u);
}

/* A try admitted before the circuit opened and failing after does not
 * push the re-opening back. */
static void circuit_late_failure_keeps_deadline(void) {
  struct upstream *u = chain("http://eu.corp", 2, 10);
  if (!u)
    return;
  struct up_entry *e = &u->v[0];
  int probe;
  try_at(u, e, 0, 1, &probe);
  try_at(u, e, 0, 1, &probe);
  ASSERT_EQ_INT(upstream_circuit_is_open(e), 1);
  upstream_circuit_note(u, e, 1, 0, 9000);
  ASSERT_EQ_INT(upstream_circuit_admit(e, 10000, &probe), 1);
  ASSERT_EQ_INT(probe, 1);
  upstream_free(u);
}

static void circuit_off(void) {
  struct upstream *u = chain("http://eu.corp", 0, 10);
  if (!u)
    return;
  struct up_entry *e = &u->v[0];
  int probe;
  for (int i = 0; i < 20; i++)
    ASSERT_EQ_INT(try_at(u, e, i, 1, &probe), 1);
  ASSERT_EQ_INT(upstream_circuit_is_open(e), 0);
  upstream_free(u);
}

/* A loopback port nothing listens on. */
static int closed_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sa;
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
    if (fd >= 0)
      close(fd);
    return 1;
  }
  close(fd);
  return ntohs(sa.sin_port);
}

static int discard(void *arg, const void *p, size_t n) {
  (void)arg, (void)p, (void)n;
  return 0;
}
static int no_reset(void *arg) {
  (void)arg;
  return 0;
}

/* Through upstream_get: refused connections open the circuit, and an open
 * entry is skipped without a request; '|' moves on to the next entry. */
static void circuit_in_the_chain(void) {
  char spec[128];
  snprintf(spec, sizeof spec, "http://127.0.0.1:%d|off", closed_port());
  struct upstream *u = chain(spec, 3, 10);
  CURL *h = curl_easy_init();
  ASSERT_TRUE(h != NULL);
  if (!u || !h)
    goto out;
  struct up_sink sink = {discard, no_reset, NULL};
  struct reason why;
  for (int i = 0; i < 3; i++) {
    long attempts = 0;
    memset(&why, 0, sizeof why);
    ASSERT_EQ_INT(upstream_get(u, h, "m/@v/list", &sink, &attempts, &why),
                  ERR_NOT_FOUND);
    ASSERT_EQ_INT(attempts, 1);
  }
  ASSERT_EQ_INT(upstream_circuit_is_open(&u->v[0]), 1);
  long attempts = 0;
  memset(&why, 0, sizeof why);
  ASSERT_EQ_INT(upstream_get(u, h, "m/@v/list", &sink, &attempts, &why),
                ERR_NOT_FOUND);
  ASSERT_EQ_INT(attempts, 0);
  ASSERT_TRUE(strstr(why.text, "upstream is off") != NULL);

  /* With ',' the skipped entry's error is the answer. */
  struct upstream *strict = NULL;
  snprintf(spec, sizeof spec, "http://127.0.0.1:%d,off", closed_port());
  strict = chain(spec, 1, 10);
  if (strict) {
    memset(&why, 0, sizeof why);
    ASSERT_EQ_INT(upstream_get(strict, h, "m/@v/list", &sink, NULL, &why),
                  ERR_UPSTREAM);
    memset(&why, 0, sizeof why);
    ASSERT_EQ_INT(upstream_get(strict, h, "m/@v/list", &sink, NULL, &why),
                  ERR_UPSTREAM);
    ASSERT_TRUE(strstr(why.text, "circuit open") != NULL);
  }
  upstream_free(strict);
out:
  if (h)
    curl_easy_cleanup(h);
  upstream_free(u);
}

int main(void) {
  log_setup("text", "error");
  RUN_TEST(via_built);
  RUN_TEST(via_loops);
  RUN_TEST(via_hop_limit);
  RUN_TEST(via_round_trip);
  RUN_TEST(circuit_opens_after_failures);
  RUN_TEST(circuit_half_open_probe);
  RUN_TEST(circuit_backoff_doubles_and_resets);
  RUN_TEST(circuit_late_failure_keeps_deadline);
  RUN_TEST(circuit_off);
  RUN_TEST(circuit_in_the_chain);
  return test_summary();
}
