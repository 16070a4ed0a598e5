/* The transparency log's hashing and proofs (mod/tlogproof.h). A log of
 * 1000 records "record <i>\n" is built with tlog_stored_hashes; its tree
 * hashes at several sizes are those golang.org/x/mod/sumdb/tlog computed
 * for the same records (StoredHashes + TreeHash). Tiles of height 2 and 8
 * are cut from the stored hashes (tlog.ReadTileData), and records and older
 * trees are proven through them; a flipped byte in any tile read, a record
 * that is not the logged one and a forked tree are each refused. */
#include "core/err.h"
#include "mod/tlog.h"
#include "mod/tlogproof.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECORDS 1000
static tlog_hash *stored; /* every stored hash, in storage order */
static size_t nstored;

static int read_stored(void *arg, const int64_t *idx, size_t n, tlog_hash *out,
                       struct reason *why) {
  (void)arg;
  (void)why;
  for (size_t i = 0; i < n; i++) {
    if (idx[i] < 0 || (size_t)idx[i] >= nstored)
      return ERR_INVALID;
    memcpy(out[i], stored[idx[i]], TLOG_HASH_SIZE);
  }
  return 0;
}

static void text_of(int64_t i, char *out, size_t cap) {
  snprintf(out, cap, "record %lld\n", (long long)i);
}

static void hex(const tlog_hash h, char out[65]) {
  for (int i = 0; i < 32; i++)
    snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static void build_log(void) {
  stored = calloc(2 * RECORDS + 64, sizeof *stored);
  for (int64_t n = 0; n < RECORDS; n++) {
    char text[64];
    text_of(n, text, sizeof text);
    tlog_hash rh, add[64];
    size_t k;
    struct reason why;
    tlog_record_hash(text, strlen(text), rh);
    if (tlog_stored_hashes(n, rh, read_stored, NULL, add, &k, &why)) {
      fprintf(stderr, "tlog_stored_hashes(%lld) failed\n", (long long)n);
      exit(2);
    }
    memcpy(stored + nstored, add, k * sizeof *add);
    nstored += k;
  }
}

static void tree_hashes_match_xmod(void) {
  static const struct {
    int64_t n;
    const char *hash;
  } want[] = {
      {1, "847dbf3ba5aa33c4976d1acfd38c2445c7710675e34840f77eba8f1b54a59aaa"},
      {2, "88363295b1d6d137dcf133eff59b26ded9c649e1b8e665cc43e12aca6e56fdac"},
      {3, "34dd65ba0281a02e5de38f39154448ed2b66d5fa8840e80ac2d094e1217a003a"},
      {7, "55538fb5aea6b8bb6be138dec492f20cdda7e64f6df7ee08628e11ead664fab4"},
      {8, "c996e1ce02c79d7832e3764fd61fed10941c9ac71471a3c016972e89011f5495"},
      {100, "3165d5436899677c61f341149101c0d909f109791c996e69b67f7cbea6be6f8b"},
      {257, "41d27957e4277f889682f11547dc71a4f0e054c915ce011b6172350d5264d8a8"},
      {1000, "fce334c21e10541647db2188240c655481f422a7a18ca2df43e2545d6dc1d223"},
  };
  ASSERT_EQ_INT(nstored, 1994); /* tlog.StoredHashCount(1000) */
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    tlog_hash th;
    char got[65];
    struct reason why;
    ASSERT_EQ_INT(tlog_tree_hash(want[i].n, read_stored, NULL, th, &why), 0);
    hex(th, got);
    ASSERT_EQ_STR(got, want[i].hash);
  }
  struct tlog_tree t = {.n = 1000};
  tlog_tree_hash(1000, read_stored, NULL, t.hash, NULL);
  char note[200];
  ASSERT_TRUE(tlog_format_tree(&t, note, sizeof note) > 0);
  ASSERT_EQ_STR(note, "go.sum database tree\n1000\n"
                      "/OM0wh4QVBZH2yGIJAxlVIH0IqehjKLfQ+JUXW3B0iM=\n");
}

/* Tiles cut from the stored hashes of a tree of `size` records; flip, when
 * set, corrupts one byte of the flip-th tile read. */
struct tiles {
  int64_t size;
  int flip;
  int reads;
};

static int read_tile(void *arg, const struct tlog_tile *t, unsigned char **data,
                     size_t *len, struct reason *why) {
  (void)why;
  struct tiles *ts = arg;
  /* The tile must exist in a tree of ts->size (as a server would say). */
  struct tlog_tile top = tlog_tile_parent(*t, 0, ts->size);
  if (top.w < t->w)
    return ERR_NOT_FOUND;
  unsigned char *d = malloc((size_t)t->w * TLOG_HASH_SIZE);
  int64_t start = t->n << t->h;
  for (int i = 0; i < t->w; i++) {
    int64_t x = tlog_stored_hash_index(t->h * t->l, start + i);
    memcpy(d + (size_t)i * TLOG_HASH_SIZE, stored[x], TLOG_HASH_SIZE);
  }
  if (++ts->reads == ts->flip)
    d[5] ^= 0x40;
  *data = d;
  *len = (size_t)t->w * TLOG_HASH_SIZE;
  return 0;
}

static struct tlog_tree tree_of(int64_t n) {
  struct tlog_tree t = {.n = n};
  tlog_tree_hash(n, read_stored, NULL, t.hash, NULL);
  return t;
}

static void records_proven_through_tiles(void) {
  static const int64_t sizes[] = {1, 2, 3, 7, 8, 9, 100, 256, 257, 1000};
  static const int heights[] = {2, 8};
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
    for (size_t hh = 0; hh < 2; hh++) {
      struct tlog_tree t = tree_of(sizes[s]);
      for (int64_t id = 0; id < t.n; id += 1 + t.n / 17) {
        char text[64];
        text_of(id, text, sizeof text);
        struct tiles ts = {t.n, 0, 0};
        struct reason why = {{0}};
        int rc = tlog_check_record(&t, heights[hh], id, text, strlen(text),
                                   read_tile, &ts, &why);
        if (rc)
          TEST_FAIL_("record %lld in tree %lld (h=%d): %s", (long long)id,
                     (long long)t.n, heights[hh], why.text);
        /* Another record's text is refused. */
        text_of(id + 1, text, sizeof text);
        ts.reads = 0;
        ASSERT_EQ_INT(tlog_check_record(&t, heights[hh], id, text,
                                        strlen(text), read_tile, &ts, &why),
                      ERR_BAD_UPSTREAM_DATA);
      }
    }
}

static void flipped_byte_in_any_tile_refused(void) {
  struct tlog_tree t = tree_of(1000);
  char text[64];
  text_of(321, text, sizeof text);
  struct tiles ts = {t.n, 0, 0};
  struct reason why;
  ASSERT_EQ_INT(tlog_check_record(&t, 2, 321, text, strlen(text), read_tile,
                                  &ts, &why),
                0);
  int total = ts.reads;
  ASSERT_TRUE(total > 3);
  for (int f = 1; f <= total; f++) {
    struct tiles bad = {t.n, f, 0};
    memset(&why, 0, sizeof why);
    int rc = tlog_check_record(&t, 2, 321, text, strlen(text), read_tile, &bad,
                               &why);
    if (rc != ERR_BAD_UPSTREAM_DATA)
      TEST_FAIL_("flipped byte in tile read %d of %d: rc %d", f, total, rc);
  }
  /* A tree hash that is not the log's. */
  t.hash[0] ^= 1;
  struct tiles ok = {t.n, 0, 0};
  ASSERT_EQ_INT(tlog_check_record(&t, 8, 321, text, strlen(text), read_tile,
                                  &ok, &why),
                ERR_BAD_UPSTREAM_DATA);
  ASSERT_TRUE(strstr(why.text, "inconsistent tile") != NULL);
}

static void older_trees_consistent_forks_refused(void) {
  static const int64_t olds[] = {1, 2, 5, 8, 100, 255, 256, 257, 999, 1000};
  struct tlog_tree big = tree_of(1000);
  for (size_t i = 0; i < sizeof olds / sizeof *olds; i++) {
    struct tlog_tree old = tree_of(olds[i]);
    struct tiles ts = {big.n, 0, 0};
    struct reason why = {{0}};
    int rc = tlog_check_tree(&big, 8, &old, read_tile, &ts, &why);
    if (rc)
      TEST_FAIL_("tree %lld in 1000: %s", (long long)olds[i], why.text);
    old.hash[31] ^= 1; /* a different history of the same size */
    ts.reads = 0;
    ASSERT_EQ_INT(tlog_check_tree(&big, 8, &old, read_tile, &ts, &why),
                  ERR_BAD_UPSTREAM_DATA);
    ASSERT_TRUE(strstr(why.text, "forked") != NULL);
  }
  /* A tree smaller than one verified before: rolled back. */
  struct tlog_tree small = tree_of(10);
  struct tiles ts = {small.n, 0, 0};
  struct reason why;
  ASSERT_EQ_INT(tlog_check_tree(&small, 8, &big, read_tile, &ts, &why),
                ERR_BAD_UPSTREAM_DATA);
}

int main(void) {
  build_log();
  RUN_TEST(tree_hashes_match_xmod);
  RUN_TEST(records_proven_through_tiles);
  RUN_TEST(flipped_byte_in_any_tile_refused);
  RUN_TEST(older_trees_consistent_forks_refused);
  free(stored);
  return test_summary();
}
