/* Unit tests for server/http.c's header parsers: Range against a blob's
 * size (ends at and past the size, suffixes, one byte, empty, several
 * ranges, garbage, huge numbers), as Go's http.ServeContent answers them,
 * and If-None-Match lists. */
#include "server/http.h"
#include "storage/storage.h"

#include "test.h"

#include <stdint.h>

/* Runs one Range header against size; *out is preset to a sentinel so a
 * parse that must not write it can be checked. */
static int parse(const char *h, uint64_t size, struct range *out) {
  out->start = 777;
  out->len = 777;
  return http_parse_range(h, size, out);
}

#define ASSERT_RANGE(h, size, want_start, want_len)                            \
  do {                                                                         \
    struct range r_;                                                           \
    ASSERT_EQ_INT(parse(h, size, &r_), 1);                                     \
    ASSERT_EQ_INT(r_.start, want_start);                                       \
    ASSERT_EQ_INT(r_.len, want_len);                                           \
  } while (0)

/* 0 (whole body) or -1 (416), with *out untouched. */
#define ASSERT_NO_RANGE(h, size, want)                                         \
  do {                                                                         \
    struct range r_;                                                           \
    ASSERT_EQ_INT(parse(h, size, &r_), want);                                  \
    ASSERT_EQ_INT(r_.start, 777);                                              \
    ASSERT_EQ_INT(r_.len, 777);                                                \
  } while (0)

static void test_absent_or_other_unit(void) {
  ASSERT_NO_RANGE(NULL, 10, 0);
  ASSERT_NO_RANGE("", 10, 0);
  ASSERT_NO_RANGE("items=0-5", 10, 0); /* RFC 9110 14.2: ignored */
  ASSERT_NO_RANGE("Bytes=0-5", 10, 0);
  ASSERT_NO_RANGE("bytes", 10, 0);
  ASSERT_NO_RANGE(" bytes=0-5", 10, 0);
}

static void test_first_last(void) {
  ASSERT_RANGE("bytes=0-0", 10, 0, 1);
  ASSERT_RANGE("bytes=0-9", 10, 0, 10);
  ASSERT_RANGE("bytes=3-5", 10, 3, 3);
  ASSERT_RANGE("bytes=9-9", 10, 9, 1);
  ASSERT_RANGE("bytes=0-", 10, 0, 10);
  ASSERT_RANGE("bytes=9-", 10, 9, 1);
  ASSERT_RANGE("bytes=0-0", 1, 0, 1);
}

/* The bug of issue 10: an end at or past the size once gave a length one
 * too long, and one heap byte past the blob went to the client. */
static void test_end_at_or_past_size(void) {
  ASSERT_RANGE("bytes=0-10", 10, 0, 10);
  ASSERT_RANGE("bytes=0-11", 10, 0, 10);
  ASSERT_RANGE("bytes=5-10", 10, 5, 5);
  ASSERT_RANGE("bytes=9-10", 10, 9, 1);
  ASSERT_RANGE("bytes=9-1000", 10, 9, 1);
  ASSERT_RANGE("bytes=0-1", 1, 0, 1);
  ASSERT_RANGE("bytes=0-18446744073709551615", 10, 0, 10);
  /* Past 64 bits: still "to the end". */
  ASSERT_RANGE("bytes=2-99999999999999999999999", 10, 2, 8);
}

static void test_start_at_or_past_size(void) {
  ASSERT_NO_RANGE("bytes=10-", 10, -1);
  ASSERT_NO_RANGE("bytes=10-10", 10, -1);
  ASSERT_NO_RANGE("bytes=11-20", 10, -1);
  ASSERT_NO_RANGE("bytes=99999999999999999999999-", 10, -1);
}

static void test_suffix(void) {
  ASSERT_RANGE("bytes=-1", 10, 9, 1);
  ASSERT_RANGE("bytes=-3", 10, 7, 3);
  ASSERT_RANGE("bytes=-10", 10, 0, 10);
  ASSERT_RANGE("bytes=-11", 10, 0, 10);
  ASSERT_RANGE("bytes=-99999999999999999999999", 10, 0, 10);
  ASSERT_NO_RANGE("bytes=-0", 10, -1); /* RFC 9110 14.1.1: unsatisfiable */
  ASSERT_NO_RANGE("bytes=-", 10, -1);
  /* Issue 10: strtoull read "-5" as 2^64-5, clamped to the size: 206. */
  ASSERT_NO_RANGE("bytes=--5", 10, -1);
  ASSERT_NO_RANGE("bytes=--0", 10, -1);
  /* Go's ParseInt takes a sign here; RFC 9110 has digits only. */
  ASSERT_NO_RANGE("bytes=-+5", 10, -1);
}

static void test_garbage(void) {
  static const char *const bad[] = {
      "bytes=5",    "bytes=abc",   "bytes=a-b",    "bytes=5-a",   "bytes=5-2",
      "bytes=+1-2", "bytes=1-2x",  "bytes=0x1-2",  "bytes=1--2",  "bytes=1-+2",
      "bytes=-5-",  "bytes=1 2-3", "bytes=\x01-2", "bytes=1-2-3", "bytes=-1-2",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    struct range r;
    if (parse(bad[i], 10, &r) != -1)
      TEST_FAIL_("\"%s\": not refused", bad[i]);
    if (r.start != 777 || r.len != 777)
      TEST_FAIL_("\"%s\": range written", bad[i]);
  }
}

static void test_whitespace(void) {
  ASSERT_RANGE("bytes= 1 - 2 ", 10, 1, 2);
  ASSERT_RANGE("bytes=\t1-2\t", 10, 1, 2);
  ASSERT_RANGE("bytes=- 4", 10, 6, 4);
}

static void test_several(void) {
  /* Several satisfiable ranges: the whole body (no multipart). */
  ASSERT_NO_RANGE("bytes=0-1,4-5", 10, 0);
  ASSERT_NO_RANGE("bytes=0-1, -2", 10, 0);
  ASSERT_NO_RANGE("bytes=0-9,0-9", 10, 0);
  /* Only one of them overlaps: that one, as Go does. */
  ASSERT_RANGE("bytes=0-1, 20-", 10, 0, 2);
  ASSERT_RANGE("bytes=20-, 3-4", 10, 3, 2);
  ASSERT_RANGE("bytes=0-1,", 10, 0, 2);
  ASSERT_RANGE("bytes=,,0-1,,", 10, 0, 2);
  /* None overlaps: 416; one malformed: 416 whatever the others. */
  ASSERT_NO_RANGE("bytes=20-,30-", 10, -1);
  ASSERT_NO_RANGE("bytes=0-1,x", 10, -1);
  ASSERT_NO_RANGE("bytes=x,0-1", 10, -1);
  ASSERT_NO_RANGE("bytes=0-1,--5", 10, -1);
  /* Empty lists: no range at all. */
  ASSERT_NO_RANGE("bytes=", 10, 0);
  ASSERT_NO_RANGE("bytes=,", 10, 0);
  ASSERT_NO_RANGE("bytes= , ", 10, 0);
}

static void test_empty_blob(void) {
  /* Nothing can overlap an empty blob: the (empty) whole body, as Go. */
  ASSERT_NO_RANGE("bytes=0-", 0, 0);
  ASSERT_NO_RANGE("bytes=0-0", 0, 0);
  ASSERT_NO_RANGE("bytes=-5", 0, 0);
  ASSERT_NO_RANGE("bytes=--5", 0, -1);
}

static void test_huge_blob(void) {
  ASSERT_RANGE("bytes=0-", UINT64_MAX, 0, UINT64_MAX);
  ASSERT_RANGE("bytes=18446744073709551614-", UINT64_MAX, UINT64_MAX - 1, 1);
  ASSERT_NO_RANGE("bytes=18446744073709551615-", UINT64_MAX, -1);
  ASSERT_RANGE("bytes=-1", UINT64_MAX, UINT64_MAX - 1, 1);
}

/* Every accepted range lies inside the blob and is not empty. */
static void test_always_inside(void) {
  static const char *const hs[] = {"bytes=0-0",
                                   "bytes=0-",
                                   "bytes=-1",
                                   "bytes=-5",
                                   "bytes=3-",
                                   "bytes=3-3",
                                   "bytes=3-4",
                                   "bytes=4-3",
                                   "bytes=0-18446744073709551615",
                                   "bytes=-18446744073709551615",
                                   "bytes=18446744073709551615-"};
  static const uint64_t sizes[] = {0, 1, 2, 3, 4, 5, 10, UINT64_MAX};
  for (size_t i = 0; i < sizeof hs / sizeof *hs; i++)
    for (size_t j = 0; j < sizeof sizes / sizeof *sizes; j++) {
      struct range r;
      int rc = parse(hs[i], sizes[j], &r);
      if (rc == 1 &&
          (r.len == 0 || r.start >= sizes[j] || r.len > sizes[j] - r.start))
        TEST_FAIL_("\"%s\" size %llu: %llu+%llu", hs[i],
                   (unsigned long long)sizes[j], (unsigned long long)r.start,
                   (unsigned long long)r.len);
    }
}

static void test_none_match(void) {
  const char *etag = "\"5-abc\"";
  ASSERT_EQ_INT(http_none_match(NULL, etag), 0);
  ASSERT_EQ_INT(http_none_match("", etag), 0);
  ASSERT_EQ_INT(http_none_match("*", etag), 1);
  ASSERT_EQ_INT(http_none_match("  *", etag), 1);
  ASSERT_EQ_INT(http_none_match("\"5-abc\"", etag), 1);
  ASSERT_EQ_INT(http_none_match("W/\"5-abc\"", etag), 1); /* weak compare */
  ASSERT_EQ_INT(http_none_match("\"x\", \"5-abc\"", etag), 1);
  ASSERT_EQ_INT(http_none_match("\"x\",W/\"5-abc\"", etag), 1);
  ASSERT_EQ_INT(http_none_match(",,\"x\" ,\t\"5-abc\",", etag), 1);
  ASSERT_EQ_INT(http_none_match("\"x\", *", etag), 1);
  ASSERT_EQ_INT(http_none_match("\"x\"", etag), 0);
  ASSERT_EQ_INT(http_none_match("\"5-ab\"", etag), 0);
  ASSERT_EQ_INT(http_none_match("\"5-abcd\"", etag), 0);
  ASSERT_EQ_INT(http_none_match("5-abc", etag), 0); /* not quoted */
  ASSERT_EQ_INT(http_none_match("\"5-abc", etag), 0);
  ASSERT_EQ_INT(http_none_match("w/\"5-abc\"", etag), 0);
  /* What is not an entity tag ends the list (Go's scanETag). */
  ASSERT_EQ_INT(http_none_match("junk, \"5-abc\"", etag), 0);
  ASSERT_EQ_INT(http_none_match("\"5-abc\"", ""), 0);
  ASSERT_EQ_INT(http_none_match("\"5-abc\"", NULL), 0);
  ASSERT_EQ_INT(http_none_match("*", ""), 0);
}

int main(void) {
  RUN_TEST(test_absent_or_other_unit);
  RUN_TEST(test_first_last);
  RUN_TEST(test_end_at_or_past_size);
  RUN_TEST(test_start_at_or_past_size);
  RUN_TEST(test_suffix);
  RUN_TEST(test_garbage);
  RUN_TEST(test_whitespace);
  RUN_TEST(test_several);
  RUN_TEST(test_empty_blob);
  RUN_TEST(test_huge_blob);
  RUN_TEST(test_always_inside);
  RUN_TEST(test_none_match);
  return test_summary();
}
