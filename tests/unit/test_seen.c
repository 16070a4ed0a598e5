/* Unit tests for server/seen.c: what is put is found with its state and
 * time, a name never put is not found, a full table forgets (never
 * confuses) names, and a one-slot table keeps the newest. */
#include "server/seen.h"

#include "test.h"

#include <stdio.h>

static void test_put_get(void) {
  struct seen *s = NULL;
  ASSERT_EQ_INT(seen_new(64, &s), 0);
  time_t at = 0;
  ASSERT_EQ_INT(seen_get(s, "zip example.com/a@v1.0.0", &at), 0);
  seen_put(s, "zip example.com/a@v1.0.0", 2, 1234);
  ASSERT_EQ_INT(seen_get(s, "zip example.com/a@v1.0.0", &at), 2);
  ASSERT_EQ_INT((long)at, 1234);
  ASSERT_EQ_INT(seen_get(s, "mod example.com/a@v1.0.0", NULL), 0);
  seen_put(s, "zip example.com/a@v1.0.0", 1, 99); /* replaced */
  ASSERT_EQ_INT(seen_get(s, "zip example.com/a@v1.0.0", &at), 1);
  ASSERT_EQ_INT((long)at, 99);
  seen_free(s);
  seen_free(NULL);
}

/* 1000 names in 16 slots: at most 16 remembered, each with its own state. */
static void test_full_table_forgets(void) {
  struct seen *s = NULL;
  ASSERT_EQ_INT(seen_new(16, &s), 0);
  char name[64];
  for (int i = 0; i < 1000; i++) {
    snprintf(name, sizeof name, "example.com/m@v1.0.%d", i);
    seen_put(s, name, 1 + i % 7, i);
  }
  int found = 0;
  for (int i = 0; i < 1000; i++) {
    snprintf(name, sizeof name, "example.com/m@v1.0.%d", i);
    time_t at = 0;
    int st = seen_get(s, name, &at);
    if (st) {
      found++;
      ASSERT_EQ_INT(st, 1 + i % 7);
      ASSERT_EQ_INT((long)at, i);
    }
  }
  ASSERT_TRUE(found > 0 && found <= 16);
  seen_free(s);
}

static void test_one_slot(void) {
  struct seen *s = NULL;
  ASSERT_EQ_INT(seen_new(0, &s), 0); /* at least one slot */
  seen_put(s, "a", 1, 1);
  seen_put(s, "b", 1, 2);
  ASSERT_EQ_INT(seen_get(s, "a", NULL), 0);
  ASSERT_EQ_INT(seen_get(s, "b", NULL), 1);
  seen_free(s);
}

int main(void) {
  RUN_TEST(test_put_get);
  RUN_TEST(test_full_table_forgets);
  RUN_TEST(test_one_slot);
  return test_summary();
}
