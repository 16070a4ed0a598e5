/* Unit tests for core/buf.c: appends, the hard cap (which frees the buffer so
 * half a body cannot be used), stealing the data and the C-string view. */
#include "core/buf.h"
#include "core/err.h"

#include "test.h"

#include <stdlib.h>

static void test_empty(void) {
  struct buf b;
  buf_init(&b, 100);
  ASSERT_TRUE(b.data == NULL); /* nothing allocated until the first append */
  ASSERT_EQ_INT(b.len, 0);
  ASSERT_EQ_STR(buf_cstr(&b), "");
  ASSERT_EQ_INT(buf_append(&b, "", 0), 0);
  ASSERT_EQ_STR(buf_cstr(&b), "");
  buf_free(&b);
  buf_free(&b);
  buf_free(NULL);
}

static void test_append(void) {
  struct buf b;
  buf_init(&b, 1 << 20);
  ASSERT_EQ_INT(buf_append(&b, "hello", 5), 0);
  ASSERT_EQ_INT(buf_append(&b, ", ", 2), 0);
  ASSERT_EQ_INT(buf_append(&b, "world!!", 5), 0); /* only n bytes */
  ASSERT_EQ_INT(b.len, 12);
  ASSERT_EQ_STR(buf_cstr(&b), "hello, world");
  ASSERT_TRUE(b.cap > b.len); /* room for the NUL */
  /* Binary data with NULs keeps its length. */
  ASSERT_EQ_INT(buf_append(&b, "a\0b", 3), 0);
  ASSERT_EQ_INT(b.len, 15);
  ASSERT_TRUE(memcmp(b.data + 12, "a\0b", 4) == 0);
  buf_free(&b);
  ASSERT_TRUE(b.data == NULL);
  ASSERT_EQ_INT(b.len, 0);
}

static void test_grow(void) {
  struct buf b;
  buf_init(&b, 1 << 20);
  char chunk[100];
  for (int i = 0; i < 100; i++)
    chunk[i] = (char)('a' + i % 26);
  for (int i = 0; i < 1000; i++)
    ASSERT_EQ_INT(buf_append(&b, chunk, sizeof chunk), 0);
  ASSERT_EQ_INT(b.len, 100000);
  ASSERT_TRUE(b.cap >= 100001);
  ASSERT_EQ_INT(b.data[99999], chunk[99]);
  ASSERT_EQ_INT(b.data[100000], '\0');
  ASSERT_EQ_INT(strlen(buf_cstr(&b)), 100000);
  buf_free(&b);
}

static void test_appendf(void) {
  struct buf b;
  buf_init(&b, 64);
  ASSERT_EQ_INT(buf_appendf(&b, "%s=%d", "n", 42), 0);
  ASSERT_EQ_INT(buf_appendf(&b, ";%05.1f", 2.25), 0);
  ASSERT_EQ_STR(buf_cstr(&b), "n=42;002.2");
  ASSERT_EQ_INT(b.len, strlen("n=42;002.2"));
  ASSERT_EQ_INT(buf_appendf(&b, "%s", ""), 0);
  ASSERT_EQ_INT(b.len, 10);
  buf_free(&b);

  /* A long formatted string forces a reallocation mid-way. */
  buf_init(&b, 10000);
  ASSERT_EQ_INT(buf_appendf(&b, "%s", "x"), 0);
  ASSERT_EQ_INT(buf_appendf(&b, "%0999d", 7), 0);
  ASSERT_EQ_INT(b.len, 1000);
  ASSERT_EQ_INT(b.data[999], '7');
  ASSERT_EQ_INT(b.data[1], '0');
  buf_free(&b);
}

static void test_cap_exact(void) {
  struct buf b;
  buf_init(&b, 8);
  ASSERT_EQ_INT(buf_append(&b, "12345678", 8), 0); /* exactly max fits */
  ASSERT_EQ_STR(buf_cstr(&b), "12345678");
  ASSERT_EQ_INT(buf_append(&b, "", 0), 0);
  buf_free(&b);
}

static void test_cap_overflow_append(void) {
  struct buf b;
  buf_init(&b, 8);
  ASSERT_EQ_INT(buf_append(&b, "12345", 5), 0);
  ASSERT_EQ_INT(buf_append(&b, "6789", 4), ERR_TOO_LARGE);
  /* The failure freed the buffer: nothing half-written survives. */
  ASSERT_TRUE(b.data == NULL);
  ASSERT_EQ_INT(b.len, 0);
  ASSERT_EQ_STR(buf_cstr(&b), "");
  /* The cap still holds and the buffer is usable again. */
  ASSERT_EQ_INT(b.max, 8);
  ASSERT_EQ_INT(buf_append(&b, "abc", 3), 0);
  ASSERT_EQ_STR(buf_cstr(&b), "abc");
  ASSERT_EQ_INT(buf_append(&b, "x", (size_t)-1), ERR_TOO_LARGE);
  ASSERT_TRUE(b.data == NULL);
  buf_free(&b);

  buf_init(&b, 0);
  ASSERT_EQ_INT(buf_append(&b, "a", 1), ERR_TOO_LARGE);
  ASSERT_EQ_INT(buf_append(&b, "", 0), 0);
  buf_free(&b);
}

static void test_cap_overflow_appendf(void) {
  struct buf b;
  buf_init(&b, 10);
  ASSERT_EQ_INT(buf_appendf(&b, "%d", 12345), 0);
  ASSERT_EQ_INT(buf_appendf(&b, "%d", 123456), ERR_TOO_LARGE);
  ASSERT_TRUE(b.data == NULL);
  ASSERT_EQ_INT(b.len, 0);
  ASSERT_EQ_INT(buf_appendf(&b, "%s", "0123456789"), 0);
  ASSERT_EQ_INT(b.len, 10);
  buf_free(&b);
}

static void test_reset(void) {
  struct buf b;
  buf_init(&b, 100);
  buf_reset(&b); /* before any append */
  ASSERT_EQ_STR(buf_cstr(&b), "");
  ASSERT_EQ_INT(buf_append(&b, "abc", 3), 0);
  size_t cap = b.cap;
  buf_reset(&b);
  ASSERT_EQ_INT(b.len, 0);
  ASSERT_EQ_INT(b.cap, cap); /* keeps its memory */
  ASSERT_EQ_STR(buf_cstr(&b), "");
  ASSERT_EQ_INT(buf_append(&b, "de", 2), 0);
  ASSERT_EQ_STR(buf_cstr(&b), "de");
  buf_free(&b);
}

static void test_steal(void) {
  struct buf b;
  buf_init(&b, 100);
  ASSERT_EQ_INT(buf_append(&b, "payload", 7), 0);
  size_t len = 0;
  char *p = buf_steal(&b, &len);
  ASSERT_EQ_INT(len, 7);
  ASSERT_EQ_STR(p, "payload");
  ASSERT_TRUE(b.data == NULL);
  ASSERT_EQ_INT(b.len, 0);
  ASSERT_EQ_STR(buf_cstr(&b), "");
  /* The buffer is reusable after a steal and does not share memory. */
  ASSERT_EQ_INT(buf_append(&b, "next", 4), 0);
  ASSERT_EQ_STR(p, "payload");
  ASSERT_EQ_STR(buf_cstr(&b), "next");
  free(p);
  p = buf_steal(&b, NULL); /* len is optional */
  ASSERT_EQ_STR(p, "next");
  free(p);
  /* Stealing an empty buffer gives NULL, which free() accepts. */
  p = buf_steal(&b, &len);
  ASSERT_TRUE(p == NULL);
  ASSERT_EQ_INT(len, 0);
  buf_free(&b);
}

int main(void) {
  RUN_TEST(test_empty);
  RUN_TEST(test_append);
  RUN_TEST(test_grow);
  RUN_TEST(test_appendf);
  RUN_TEST(test_cap_exact);
  RUN_TEST(test_cap_overflow_append);
  RUN_TEST(test_cap_overflow_appendf);
  RUN_TEST(test_reset);
  RUN_TEST(test_steal);
  return test_summary();
}
