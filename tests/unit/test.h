/* A tiny unit-test runner: typed assertions that report file:line and keep
 * going to the next test (after libuv's test/task.h). Each test file is one
 * executable registered with ctest. */
#ifndef GOMIRROR_TESTS_UNIT_TEST_H
#define GOMIRROR_TESTS_UNIT_TEST_H

#include <stdio.h>
#include <string.h>

static int test_failures_ __attribute__((unused));
static int test_current_failed_ __attribute__((unused));
static int test_passed_;
static int test_failed_;

#define TEST_FAIL_(...)                                                        \
  do {                                                                         \
    fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);                          \
    fprintf(stderr, __VA_ARGS__);                                              \
    fputc('\n', stderr);                                                       \
    test_failures_++;                                                          \
    test_current_failed_ = 1;                                                  \
  } while (0)

#define ASSERT_TRUE(x)                                                         \
  do {                                                                         \
    if (!(x))                                                                  \
      TEST_FAIL_("expected true: %s", #x);                                     \
  } while (0)
#define ASSERT_FALSE(x) ASSERT_TRUE(!(x))
#define ASSERT_EQ_INT(a, b)                                                    \
  do {                                                                         \
    long long a_ = (long long)(a), b_ = (long long)(b);                        \
    if (a_ != b_)                                                              \
      TEST_FAIL_("%s == %s: %lld != %lld", #a, #b, a_, b_);                    \
  } while (0)
#define ASSERT_EQ_STR(a, b)                                                    \
  do {                                                                         \
    const char *a_ = (a), *b_ = (b);                                           \
    if (!a_ || !b_ || strcmp(a_, b_) != 0)                                     \
      TEST_FAIL_("%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)",     \
                 b_ ? b_ : "(null)");                                          \
  } while (0)

#define RUN_TEST(fn)                                                           \
  do {                                                                         \
    test_current_failed_ = 0;                                                  \
    fn();                                                                      \
    if (test_current_failed_) {                                                \
      fprintf(stderr, "FAIL %s\n", #fn);                                       \
      test_failed_++;                                                          \
    } else {                                                                   \
      test_passed_++;                                                          \
    }                                                                          \
  } while (0)

/* Prints the plain "N passed, N failed" line and returns main's exit code. */
static inline int test_summary(void) {
  printf("%d passed, %d failed\n", test_passed_, test_failed_);
  return test_failed_ ? 1 : 0;
}

#endif
