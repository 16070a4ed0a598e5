/* Unit tests for server/hot.c: the byte budget is never exceeded however
 * the cache is filled (many small entries, big ones, a mix, replacements),
 * entries held by a reader stay valid after eviction, recently used entries
 * outlive old ones, oversized entries are refused, and prefix drops. */
#include "server/hot.h"

#include "test.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_BYTES ((size_t)1 << 20)

/* xorshift: the same sequence every run. */
static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
  rnd_state ^= rnd_state << 13;
  rnd_state ^= rnd_state >> 7;
  rnd_state ^= rnd_state << 17;
  return rnd_state;
}

static char *payload(size_t len, char fill) {
  char *p = malloc(len ? len : 1);
  if (p)
    memset(p, fill, len);
  return p;
}

/* Puts len bytes under key; the budget must hold after every put. */
static void put_checked(struct hot_cache *c, const char *key, size_t len,
                        char fill) {
  char *p = payload(len, fill);
  ASSERT_TRUE(p != NULL);
  if (!p)
    return;
  ASSERT_EQ_INT(hot_put(c, key, p, len, "\"e\""), 0);
  free(p);
  size_t b = hot_bytes(c);
  if (b > MAX_BYTES && !test_current_failed_) /* once per test is enough */
    TEST_FAIL_("after putting %zu bytes under %s: %zu bytes held, budget %zu",
               len, key, b, MAX_BYTES);
}

static void test_item_max(void) {
  struct hot_cache *c;
  ASSERT_EQ_INT(hot_new(MAX_BYTES, &c), 0);
  size_t m = hot_item_max(c);
  ASSERT_TRUE(m > 0);
  ASSERT_TRUE(m <= MAX_BYTES / 16);
  ASSERT_TRUE(m <= (size_t)4 << 20);
  /* One byte too many: refused without error, never stored. */
  char *p = payload(m + 1, 'x');
  ASSERT_EQ_INT(hot_put(c, "big", p, m + 1, "\"e\""), 0);
  ASSERT_TRUE(hot_get(c, "big") == NULL);
  ASSERT_EQ_INT(hot_bytes(c), 0);
  /* Exactly the limit is taken. */
  ASSERT_EQ_INT(hot_put(c, "fits", p, m, "\"e\""), 0);
  const struct hot_entry *e = hot_get(c, "fits");
  ASSERT_TRUE(e != NULL);
  if (e) {
    ASSERT_EQ_INT(e->len, m);
    ASSERT_EQ_STR(e->etag, "\"e\"");
    hot_release(c, e);
  }
  ASSERT_EQ_INT(hot_bytes(c), m);
  free(p);
  hot_free(c);
}

static void test_zero_budget(void) {
  struct hot_cache *c;
  ASSERT_EQ_INT(hot_new(0, &c), 0);
  ASSERT_EQ_INT(hot_item_max(c), 0);
  ASSERT_EQ_INT(hot_put(c, "k", "abc", 3, "\"e\""), 0);
  ASSERT_TRUE(hot_get(c, "k") == NULL);
  ASSERT_EQ_INT(hot_bytes(c), 0);
  hot_free(c);
}

/* Many entries over many times the budget, of random sizes up to the item
 * limit: the budget holds after each put. Eviction against the wrong
 * budget (the whole cache's instead of a shard's) fails here. */
static void test_budget_random_fill(void) {
  struct hot_cache *c;
  ASSERT_EQ_INT(hot_new(MAX_BYTES, &c), 0);
  size_t m = hot_item_max(c);
  char key[32];
  for (int i = 0; i < 4000 && !test_current_failed_; i++) {
    snprintf(key, sizeof key, "k%d", i);
    put_checked(c, key, (size_t)(rnd() % (m + 1)), (char)i);
  }
  ASSERT_TRUE(hot_bytes(c) > MAX_BYTES / 4); /* and it is used, too */
  hot_free(c);
}

/* Small entries first, then entries as big as the limit, which must each
 * evict very many small ones. */
static void test_budget_small_then_big(void) {
  struct hot_cache *c;
  ASSERT_EQ_INT(hot_new(MAX_BYTES, &c), 0);
  size_t m = hot_item_max(c);
  char key[32];
  for (int i = 0; i < 20000 && !test_current_failed_; i++) {
    snprintf(key, sizeof key, "small%d", i);
    put_checked(c, key, 16, 's');
  }
  for (int i = 0; i < 64 && !test_current_failed_; i++) {
    snprintf(key, sizeof key, "big%d", i);
    put_checked(c, key, m, 'b');
  }
  hot_free(c);
}

/* Replacing a key many times with growing values never counts the old
 * value twice. */
static void test_budget_replace(void) {
  struct hot_cache *c;
  ASSERT_EQ_INT(hot_new(MAX_BYTES, &c), 0);
  size_t m = hot_item_max(c);
  for (size_t len = 0; len <= m && !test_current_failed_; len += m / 7 + 1)
    put_checked(c, "same", len, 'r');
  const struct hot_entry *e = hot_get(c, "same");
  ASSERT_TRUE(e != NULL);
  if (e) {
    ASSERT_EQ_INT(hot_bytes(c), e->len);
    hot_release(c, e);
  }
  hot_free(c);
}

/* An entry a reader holds stays readable after it was evicted or
 * replaced (AddressSanitizer would see a use after free), and is gone
 * from the cache for later readers. */
static void test_pinned_survives(void) {
  struct hot_cache *c;
  ASSERT_EQ_INT(hot_new(MAX_BYTES, &c), 0);
  size_t m = hot_item_max(c);
  char *v = payload(m, 'p');
  ASSERT_EQ_INT(hot_put(c, "pinned", v, m, "\"p\""), 0);
  const struct hot_entry *held = hot_get(c, "pinned");
  ASSERT_TRUE(held != NULL);
  char key[32];
  for (int i = 0; i < 200; i++) {
    snprintf(key, sizeof key, "fill%d", i);
    put_checked(c, key, m, 'f');
  }
  ASSERT_TRUE(hot_get(c, "pinned") == NULL); /* evicted */
  if (held) {
    ASSERT_EQ_INT(held->len, m);
    ASSERT_TRUE(memcmp(held->data, v, m) == 0);
    ASSERT_EQ_STR(held->etag, "\"p\"");
    hot_release(c, held);
  }

  /* Replaced while held: the holder keeps the old bytes. */
  ASSERT_EQ_INT(hot_put(c, "r", "old", 3, "\"1\""), 0);
  const struct hot_entry *old = hot_get(c, "r");
  ASSERT_EQ_INT(hot_put(c, "r", "newer", 5, "\"2\""), 0);
  const struct hot_entry *now = hot_get(c, "r");
  ASSERT_TRUE(old && now);
  if (old && now) {
    ASSERT_TRUE(old->len == 3 && memcmp(old->data, "old", 3) == 0);
    ASSERT_TRUE(now->len == 5 && memcmp(now->data, "newer", 5) == 0);
    ASSERT_EQ_STR(old->etag, "\"1\"");
    ASSERT_EQ_STR(now->etag, "\"2\"");
  }
  hot_release(c, old);
  hot_release(c, now);

  /* Dropped while held. */
  const struct hot_entry *d = hot_get(c, "r");
  ASSERT_EQ_INT(hot_drop_prefix(c, "r"), 1);
  ASSERT_TRUE(hot_get(c, "r") == NULL);
  if (d)
    ASSERT_TRUE(memcmp(d->data, "newer", 5) == 0);
  hot_release(c, d);
  hot_release(c, NULL);
  free(v);
  hot_free(c);
}

/* Entries pinned while the cache fills do not count against the budget
 * once evicted, and the cache keeps working. */
static void test_budget_with_pins(void) {
  struct hot_cache *c;
  ASSERT_EQ_INT(hot_new(MAX_BYTES, &c), 0);
  size_t m = hot_item_max(c);
  const struct hot_entry *pins[100];
  char key[32];
  for (int i = 0; i < 100; i++) {
    snprintf(key, sizeof key, "pin%d", i);
    put_checked(c, key, m / 2, 'q');
    pins[i] = hot_get(c, key);
  }
  for (int i = 0; i < 500; i++) {
    snprintf(key, sizeof key, "more%d", i);
    put_checked(c, key, m / 3, 'm');
  }
  for (int i = 0; i < 100; i++) {
    if (pins[i])
      ASSERT_TRUE(pins[i]->len == m / 2 && pins[i]->data[0] == 'q' &&
                  pins[i]->data[m / 2 - 1] == 'q');
    hot_release(c, pins[i]);
  }
  hot_free(c);
}

/* A key read after every put stays: eviction takes the least recently
 * used. Entries are small, so its shard always has older ones to drop. */
static void test_lru(void) {
  struct hot_cache *c;
  ASSERT_EQ_INT(hot_new(MAX_BYTES, &c), 0);
  size_t m = hot_item_max(c);
  ASSERT_EQ_INT(hot_put(c, "keep", "kept", 4, "\"k\""), 0);
  ASSERT_EQ_INT(hot_put(c, "old", "gone", 4, "\"o\""), 0);
  char key[32];
  for (int i = 0; i < 2000; i++) {
    snprintf(key, sizeof key, "x%d", i);
    put_checked(c, key, m / 8, 'x');
    const struct hot_entry *e = hot_get(c, "keep");
    if (!e) {
      TEST_FAIL_("the most recently used entry was evicted after %d puts", i);
      break;
    }
    hot_release(c, e);
  }
  ASSERT_TRUE(hot_get(c, "old") == NULL);
  hot_free(c);
}

static void test_drop_prefix(void) {
  struct hot_cache *c;
  ASSERT_EQ_INT(hot_new(MAX_BYTES, &c), 0);
  ASSERT_EQ_INT(hot_put(c, "a/1", "11", 2, NULL), 0);
  ASSERT_EQ_INT(hot_put(c, "a/2", "222", 3, NULL), 0);
  ASSERT_EQ_INT(hot_put(c, "b/1", "4444", 4, NULL), 0);
  ASSERT_EQ_INT(hot_bytes(c), 9);
  ASSERT_EQ_INT(hot_drop_prefix(c, "a/"), 2);
  ASSERT_EQ_INT(hot_bytes(c), 4);
  ASSERT_TRUE(hot_get(c, "a/1") == NULL);
  const struct hot_entry *e = hot_get(c, "b/1");
  ASSERT_TRUE(e != NULL);
  if (e)
    ASSERT_EQ_STR(e->etag, ""); /* NULL etag: empty */
  hot_release(c, e);
  ASSERT_EQ_INT(hot_drop_prefix(c, "zzz"), 0);
  ASSERT_EQ_INT(hot_drop_prefix(c, ""), 1);
  ASSERT_EQ_INT(hot_bytes(c), 0);
  hot_free(c);
  hot_free(NULL);
}

int main(void) {
  RUN_TEST(test_item_max);
  RUN_TEST(test_zero_budget);
  RUN_TEST(test_budget_random_fill);
  RUN_TEST(test_budget_small_then_big);
  RUN_TEST(test_budget_replace);
  RUN_TEST(test_pinned_survives);
  RUN_TEST(test_budget_with_pins);
  RUN_TEST(test_lru);
  RUN_TEST(test_drop_prefix);
  return test_summary();
}
