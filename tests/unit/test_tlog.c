/* mod/tlog.c against golang.org/x/mod/sumdb/tlog (v0.7.0, Debian's
 * golang-golang-x-mod-dev): every expected value below was printed by the Go
 * package itself, from a small program calling StoredHashIndex,
 * TileForIndex, Tile.Path, ParseTilePath, NewTiles, TreeHash and
 * TileHashReader(...).ReadHashes with a TileReader that records the tiles it
 * is asked for (the plan tlog_read_tiles must reproduce, in order, and whose
 * unions tlog_client_tiles must reproduce). */
#include "mod/tlog.h"

#include "core/err.h"
#include "test.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_OF(a) (sizeof(a) / sizeof *(a))
/* len(tlog.NewTiles(8, 250, 70000)) */
#define NEW_TILES_250_70000 404

static const struct {
  int level;
  int64_t n, index;
} shi_cases[] = {
    {0, 0, 0},
    {0, 1, 1},
    {0, 2, 3},
    {0, 3, 4},
    {1, 0, 2},
    {1, 1, 5},
    {2, 1, 13},
    {0, 1000, 1994},
    {3, 77, 1242},
    {0, 40000000, 79999992},
    {8, 123456, 63209976},
    {16, 3, 524284},
};

static const struct {
  int h;
  int64_t index;
  const char *path;
} tfi_cases[] = {
    {2, 0, "tile/2/0/000.p/1"},
    {2, 1, "tile/2/0/000.p/2"},
    {2, 2, "tile/2/0/000.p/2"},
    {2, 3, "tile/2/0/000.p/3"},
    {2, 4, "tile/2/0/000"},
    {2, 7, "tile/2/0/001.p/1"},
    {2, 100, "tile/2/1/003.p/1"},
    {2, 511, "tile/2/0/064.p/1"},
    {2, 1023, "tile/2/0/128.p/1"},
    {2, 4096, "tile/2/0/512.p/2"},
    {2, 65535, "tile/2/0/x008/192.p/1"},
    {2, 80000000, "tile/2/0/x010/x000/001.p/2"},
    {8, 0, "tile/8/0/000.p/1"},
    {8, 1, "tile/8/0/000.p/2"},
    {8, 2, "tile/8/0/000.p/2"},
    {8, 3, "tile/8/0/000.p/3"},
    {8, 4, "tile/8/0/000.p/4"},
    {8, 7, "tile/8/0/000.p/5"},
    {8, 100, "tile/8/0/000.p/52"},
    {8, 511, "tile/8/0/001.p/1"},
    {8, 1023, "tile/8/0/002.p/1"},
    {8, 4096, "tile/8/0/008.p/2"},
    {8, 65535, "tile/8/0/128.p/1"},
    {8, 80000000, "tile/8/0/x156/250.p/6"},
};

static const struct {
  int h;
  int64_t old_n, new_n;
  const char *paths;
} new_tiles_cases[] = {
    {2, 0, 1, "tile/2/0/000.p/1"},
    {2, 0, 7,
     "tile/2/0/000 tile/2/0/001.p/1 tile/2/0/001.p/2 tile/2/0/001.p/3 "
     "tile/2/1/000.p/1"},
    {2, 5, 21,
     "tile/2/0/001 tile/2/0/002 tile/2/0/003 tile/2/0/004 tile/2/0/005.p/1 "
     "tile/2/1/000 tile/2/1/001.p/1 tile/2/2/000.p/1"},
    {8, 0, 300,
     "tile/8/0/000 tile/8/0/001.p/1 tile/8/0/001.p/2 tile/8/0/001.p/3 "
     "tile/8/0/001.p/4 tile/8/0/001.p/5 tile/8/0/001.p/6 tile/8/0/001.p/7 "
     "tile/8/0/001.p/8 tile/8/0/001.p/9 tile/8/0/001.p/10 tile/8/0/001.p/11 "
     "tile/8/0/001.p/12 tile/8/0/001.p/13 tile/8/0/001.p/14 tile/8/0/001.p/15 "
     "tile/8/0/001.p/16 tile/8/0/001.p/17 tile/8/0/001.p/18 tile/8/0/001.p/19 "
     "tile/8/0/001.p/20 tile/8/0/001.p/21 tile/8/0/001.p/22 tile/8/0/001.p/23 "
     "tile/8/0/001.p/24 tile/8/0/001.p/25 tile/8/0/001.p/26 tile/8/0/001.p/27 "
     "tile/8/0/001.p/28 tile/8/0/001.p/29 tile/8/0/001.p/30 tile/8/0/001.p/31 "
     "tile/8/0/001.p/32 tile/8/0/001.p/33 tile/8/0/001.p/34 tile/8/0/001.p/35 "
     "tile/8/0/001.p/36 tile/8/0/001.p/37 tile/8/0/001.p/38 tile/8/0/001.p/39 "
     "tile/8/0/001.p/40 tile/8/0/001.p/41 tile/8/0/001.p/42 tile/8/0/001.p/43 "
     "tile/8/0/001.p/44 tile/8/1/000.p/1"},
};

static const struct {
  int h;
  int64_t n;
  int64_t idx[9];
  size_t nidx;
  const char *paths;
} plan_cases[] = {
    {8, 1, {0}, 1, "tile/8/0/000.p/1"},
    {8, 5, {0}, 1, "tile/8/0/000.p/5"},
    {8, 5, {6, 7}, 2, "tile/8/0/000.p/5"},
    {8, 5, {3}, 1, "tile/8/0/000.p/5"},
    {8, 5, {7}, 1, "tile/8/0/000.p/5"},
    {8, 17, {0}, 1, "tile/8/0/000.p/17"},
    {8, 17, {6, 7}, 2, "tile/8/0/000.p/17"},
    {8, 17, {30, 31}, 2, "tile/8/0/000.p/17"},
    {8, 17, {15}, 1, "tile/8/0/000.p/17"},
    {8, 17, {31}, 1, "tile/8/0/000.p/17"},
    {8, 300, {0}, 1, "tile/8/1/000.p/1 tile/8/0/001.p/44 tile/8/0/000"},
    {8,
     300,
     {126, 189, 196},
     3,
     "tile/8/1/000.p/1 tile/8/0/001.p/44 tile/8/0/000"},
    {8, 300, {510, 573, 588, 595}, 4, "tile/8/1/000.p/1 tile/8/0/001.p/44"},
    {8, 300, {296}, 1, "tile/8/1/000.p/1 tile/8/0/001.p/44 tile/8/0/000"},
    {8, 300, {593}, 1, "tile/8/1/000.p/1 tile/8/0/001.p/44"},
    {8,
     70000,
     {0},
     1,
     "tile/8/2/000.p/1 tile/8/1/001.p/17 tile/8/0/273.p/112 tile/8/1/000 "
     "tile/8/0/000"},
    {8,
     70000,
     {32766, 40957, 45052, 46075, 46586, 46649, 46656, 46657},
     8,
     "tile/8/2/000.p/1 tile/8/1/001.p/17 tile/8/0/273.p/112 tile/8/1/000 "
     "tile/8/0/091"},
    {8,
     70000,
     {131070, 139261, 139772, 139899, 139962, 139993},
     6,
     "tile/8/2/000.p/1 tile/8/1/001.p/17 tile/8/0/273.p/112"},
    {8,
     70000,
     {69994},
     1,
     "tile/8/2/000.p/1 tile/8/1/001.p/17 tile/8/0/273.p/112 tile/8/1/000 "
     "tile/8/0/136"},
    {8,
     70000,
     {139989},
     1,
     "tile/8/2/000.p/1 tile/8/1/001.p/17 tile/8/0/273.p/112"},
    {8,
     40123456,
     {0},
     1,
     "tile/8/3/000.p/2 tile/8/2/002.p/100 tile/8/1/612.p/60 "
     "tile/8/0/x156/732.p/64 tile/8/2/000 tile/8/1/000 tile/8/0/000"},
    {8,
     40123456,
     {16777214, 25165821, 26214396, 26738683, 26746874, 26748921, 26748952,
      26748959, 26748960},
     9,
     "tile/8/3/000.p/2 tile/8/2/002.p/100 tile/8/1/612.p/60 "
     "tile/8/0/x156/732.p/64 tile/8/2/000 tile/8/1/204 tile/8/0/x052/244"},
    {8,
     40123456,
     {67108862, 75497469, 79691772, 80216059, 80232442, 80240633, 80244728,
      80246775, 80246902},
     9,
     "tile/8/3/000.p/2 tile/8/2/002.p/100 tile/8/1/612.p/60 "
     "tile/8/0/x156/732.p/64"},
    {8,
     40123456,
     {40123447},
     1,
     "tile/8/3/000.p/2 tile/8/2/002.p/100 tile/8/1/612.p/60 "
     "tile/8/0/x156/732.p/64 tile/8/2/001 tile/8/1/306 tile/8/0/x078/366"},
    {8,
     40123456,
     {80246896},
     1,
     "tile/8/3/000.p/2 tile/8/2/002.p/100 tile/8/1/612.p/60 "
     "tile/8/0/x156/732.p/64"},
    {2,
     21,
     {4, 32, 38},
     3,
     "tile/2/2/000.p/1 tile/2/1/001.p/1 tile/2/0/005.p/1 tile/2/1/000 "
     "tile/2/0/000 tile/2/0/004"},
    {8,
     70000,
     {8, 139989, 596},
     3,
     "tile/8/2/000.p/1 tile/8/1/001.p/17 tile/8/0/273.p/112 tile/8/1/000 "
     "tile/8/0/000 tile/8/0/001"},
};

static const struct {
  int64_t m;
  size_t count;
  int64_t idx[9];
} sub_cases[] = {
    {1, 1, {0}},
    {2, 1, {2}},
    {3, 2, {2, 3}},
    {5, 2, {6, 7}},
    {300, 4, {510, 573, 588, 595}},
    {40123456,
     9,
     {67108862, 75497469, 79691772, 80216059, 80232442, 80240633, 80244728,
      80246775, 80246902}},
};

static const struct {
  const char *path;
  int ok, h, l;
  int64_t n;
  int w;
} parse_cases[] = {
    {"tile/8/0/000", 1, 8, 0, 0, 256},
    {"tile/8/0/x001/234", 1, 8, 0, 1234, 256},
    {"tile/8/1/000.p/5", 1, 8, 1, 0, 5},
    {"tile/8/data/x012/345.p/255", 1, 8, -1, 12345, 255},
    {"tile/8/0/001.p/256", 0, 0, 0, 0, 0},
    {"tile/8/0/1", 0, 0, 0, 0, 0},
    {"tile/8/0/x001", 0, 0, 0, 0, 0},
    {"tile/31/0/000", 0, 0, 0, 0, 0},
    {"tile/8/0/000.p/0", 0, 0, 0, 0, 0},
    {"tile/2/0/x000/001", 0, 0, 0, 0, 0},
    {"tile/8/0/x001/x002/x003/x004/x005/006", 1, 8, 0, 1002003004005006, 256},
    {"tile/8/0/x001/x002/x003/x004/x005/x006/007", 1, 8, 0, 1002003004005006007,
     256},
};

/* The union of the tiles TileHashReader(tree N).ReadHashes reads, over
 * every tree N of trees, for each record id < N and for TreeHash(m) of each
 * m <= N of trees (each index asked alone), sorted by path. */
static const struct {
  int64_t trees[4];
  size_t ntrees;
  int64_t ids[6];
  size_t nids;
  const char *paths;
} client_cases[] = {
    {{1, 2, 3, 4},
     4,
     {0, 1, 2, 3},
     4,
     "tile/8/0/000.p/1 tile/8/0/000.p/2 tile/8/0/000.p/3 tile/8/0/000.p/4"},
    {{300, 70000},
     2,
     {5, 299, 69999},
     3,
     "tile/8/0/000 tile/8/0/001 tile/8/0/001.p/44 tile/8/0/273.p/112 "
     "tile/8/1/000 tile/8/1/000.p/1 tile/8/1/001.p/17 tile/8/2/000.p/1"},
    {{257, 513, 1000, 65537},
     4,
     {0, 255, 256, 512, 999, 65536},
     6,
     "tile/8/0/000 tile/8/0/001 tile/8/0/001.p/1 tile/8/0/002 "
     "tile/8/0/002.p/1 tile/8/0/003 tile/8/0/003.p/232 tile/8/0/256.p/1 "
     "tile/8/1/000 tile/8/1/000.p/1 tile/8/1/000.p/2 tile/8/1/000.p/3 "
     "tile/8/2/000.p/1"},
    {{41000000, 40123456, 40123999, 40123456},
     4,
     {0, 123456, 40123455, 40999999},
     4,
     "tile/8/0/000 tile/8/0/482 tile/8/0/x156/732 tile/8/0/x156/732.p/64 "
     "tile/8/0/x156/734 tile/8/0/x156/734.p/95 tile/8/0/x160/156.p/64 "
     "tile/8/1/000 tile/8/1/001 tile/8/1/612 tile/8/1/612.p/60 "
     "tile/8/1/612.p/62 tile/8/1/625.p/156 tile/8/2/000 tile/8/2/002.p/100 "
     "tile/8/2/002.p/113 tile/8/3/000.p/2"},
};

/* Appends each tile's path, space separated, to a fixed buffer. */
struct paths {
  char s[8192];
  size_t len;
  int count;
};

static int add_path(void *arg, const struct tlog_tile *t) {
  struct paths *p = arg;
  char one[TLOG_TILE_PATH_MAX];
  if (tlog_tile_path(t, one, sizeof one))
    return -1;
  int n = snprintf(p->s + p->len, sizeof p->s - p->len, "%s%s",
                   p->len ? " " : "", one);
  if (n < 0 || (size_t)n >= sizeof p->s - p->len)
    return -1;
  p->len += (size_t)n;
  p->count++;
  return 0;
}

static void test_stored_hash_index(void) {
  for (size_t i = 0; i < N_OF(shi_cases); i++) {
    ASSERT_EQ_INT(tlog_stored_hash_index(shi_cases[i].level, shi_cases[i].n),
                  shi_cases[i].index);
    int level;
    int64_t n;
    tlog_split_stored_hash_index(shi_cases[i].index, &level, &n);
    ASSERT_EQ_INT(level, shi_cases[i].level);
    ASSERT_EQ_INT(n, shi_cases[i].n);
  }
  /* Every index splits and maps back to itself. */
  for (int64_t x = 0; x < 5000; x++) {
    int level;
    int64_t n;
    tlog_split_stored_hash_index(x, &level, &n);
    ASSERT_EQ_INT(tlog_stored_hash_index(level, n), x);
  }
}

static void test_tile_for_index(void) {
  for (size_t i = 0; i < N_OF(tfi_cases); i++) {
    struct tlog_tile t =
        tlog_tile_for_index(tfi_cases[i].h, tfi_cases[i].index);
    char path[TLOG_TILE_PATH_MAX];
    ASSERT_EQ_INT(tlog_tile_path(&t, path, sizeof path), 0);
    ASSERT_EQ_STR(path, tfi_cases[i].path);
  }
}

static void test_tile_path_parse(void) {
  for (size_t i = 0; i < N_OF(parse_cases); i++) {
    struct tlog_tile t = {0, 0, 0, 0};
    int rc = tlog_tile_parse(parse_cases[i].path, &t);
    if (!parse_cases[i].ok) {
      if (rc == 0)
        TEST_FAIL_("%s parsed, Go refuses it", parse_cases[i].path);
      continue;
    }
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(t.h, parse_cases[i].h);
    ASSERT_EQ_INT(t.l, parse_cases[i].l);
    ASSERT_EQ_INT(t.n, parse_cases[i].n);
    ASSERT_EQ_INT(t.w, parse_cases[i].w);
    char back[TLOG_TILE_PATH_MAX];
    ASSERT_EQ_INT(tlog_tile_path(&t, back, sizeof back), 0);
    ASSERT_EQ_STR(back, parse_cases[i].path);
  }
  const char *bad[] = {"",
                       "tile/",
                       "tile/8",
                       "tile/8/0/",
                       "tile/8/0/000/",
                       "tile/8/0/000.p/",
                       "tile/8/0/000.p/5/",
                       "tile/0/0/000",
                       "tile/8/64/000",
                       "tile/8/-1/000",
                       "tile/8/0/abc",
                       "tile/8/0/x1000/000",
                       "tile/8/0/000.p/01",
                       "tile/8/0/x999/x999/x999/x999/x999/x999/x999/999"};
  for (size_t i = 0; i < N_OF(bad); i++) {
    struct tlog_tile t;
    if (tlog_tile_parse(bad[i], &t) == 0)
      TEST_FAIL_("\"%s\" parsed as a tile path", bad[i]);
  }
  /* A buffer too small is refused, not truncated. */
  struct tlog_tile t = {8, 0, 1234, 5};
  char small[12];
  ASSERT_EQ_INT(tlog_tile_path(&t, small, sizeof small), -1);
}

static void test_new_tiles(void) {
  for (size_t i = 0; i < N_OF(new_tiles_cases); i++) {
    struct paths p = {{0}, 0, 0};
    ASSERT_EQ_INT(tlog_new_tiles(new_tiles_cases[i].h, new_tiles_cases[i].old_n,
                                 new_tiles_cases[i].new_n, add_path, &p),
                  0);
    ASSERT_EQ_STR(p.s, new_tiles_cases[i].paths);
  }
  /* Go publishes 404 tiles growing from 250 to 70000 records at height 8. */
  struct paths p = {{0}, 0, 0};
  ASSERT_EQ_INT(tlog_new_tiles(8, 250, 70000, add_path, &p), 0);
  ASSERT_EQ_INT(p.count, NEW_TILES_250_70000);
}

static void test_sub_tree_index(void) {
  for (size_t i = 0; i < N_OF(sub_cases); i++) {
    int64_t got[64];
    size_t n = tlog_sub_tree_index(0, sub_cases[i].m, got);
    ASSERT_EQ_INT(n, sub_cases[i].count);
    for (size_t k = 0; k < n && k < sub_cases[i].count; k++)
      ASSERT_EQ_INT(got[k], sub_cases[i].idx[k]);
  }
  int64_t none[64];
  ASSERT_EQ_INT(tlog_sub_tree_index(5, 5, none), 0);
}

static int stop_at_first(void *arg, const struct tlog_tile *t) {
  (void)arg;
  (void)t;
  return 42;
}

static void test_read_tiles_plan(void) {
  for (size_t i = 0; i < N_OF(plan_cases); i++) {
    struct paths p = {{0}, 0, 0};
    ASSERT_EQ_INT(tlog_read_tiles(plan_cases[i].h, plan_cases[i].n,
                                  plan_cases[i].idx, plan_cases[i].nidx,
                                  add_path, &p),
                  0);
    ASSERT_EQ_STR(p.s, plan_cases[i].paths);
  }
  /* An index past the tree is an error, as tlog's "indexes not in tree". */
  int64_t past = tlog_stored_hash_index(0, 17);
  struct paths p = {{0}, 0, 0};
  ASSERT_EQ_INT(tlog_read_tiles(8, 17, &past, 1, add_path, &p), ERR_INVALID);
  /* The callback's code stops the walk. */
  int64_t zero = 0;
  ASSERT_EQ_INT(tlog_read_tiles(8, 300, &zero, 1, stop_at_first, NULL), 42);
}

static int path_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The paths in p, sorted, space separated, back into p. */
static void sort_paths(struct paths *p) {
  char copy[sizeof p->s], *v[512];
  size_t n = 0;
  memcpy(copy, p->s, sizeof copy);
  for (char *tok = copy, *end; tok && *tok && n < 512; tok = end) {
    end = strchr(tok, ' ');
    if (end)
      *end++ = '\0';
    v[n++] = tok;
  }
  qsort(v, n, sizeof *v, path_cmp);
  p->len = 0;
  p->s[0] = '\0';
  for (size_t i = 0; i < n; i++)
    p->len += (size_t)snprintf(p->s + p->len, sizeof p->s - p->len, "%s%s",
                               i ? " " : "", v[i]);
}

static void test_client_tiles(void) {
  for (size_t i = 0; i < N_OF(client_cases); i++) {
    struct paths p = {{0}, 0, 0};
    ASSERT_EQ_INT(tlog_client_tiles(8, client_cases[i].trees,
                                    client_cases[i].ntrees, client_cases[i].ids,
                                    client_cases[i].nids, add_path, &p),
                  0);
    int count = p.count;
    sort_paths(&p);
    ASSERT_EQ_STR(p.s, client_cases[i].paths);
    /* Each tile once. */
    int words = 1;
    for (const char *c = client_cases[i].paths; *c; c++)
      words += *c == ' ';
    ASSERT_EQ_INT(count, words);
  }
  /* No trees: nothing to read. */
  struct paths p = {{0}, 0, 0};
  int64_t id = 3;
  ASSERT_EQ_INT(tlog_client_tiles(8, NULL, 0, &id, 1, add_path, &p), 0);
  ASSERT_EQ_INT(p.count, 0);
}

static void test_tree_and_record(void) {
  static const char note[] = "go.sum database tree\n"
                             "12\n"
                             "K3Vj0G0Bhk6HHsyvSCqQYVBIWo3bzJ+9yEOxQzLEgd8=\n"
                             "\n"
                             "\xe2\x80\x94 sumdb.test AbCdEfGh\n";
  struct tlog_tree tree;
  ASSERT_EQ_INT(tlog_parse_tree(note, sizeof note - 1, &tree), 0);
  ASSERT_EQ_INT(tree.n, 12);
  ASSERT_EQ_INT(tree.hash[0], 0x2b);
  ASSERT_EQ_INT(tree.hash[31], 0xdf);
  const char *bad[] = {
      "go.sum database "
      "tree\n012\nK3Vj0G0Bhk6HHsyvSCqQYVBIWo3bzJ+9yEOxQzLEgd8=\n",
      "go.sum database "
      "tree\n-1\nK3Vj0G0Bhk6HHsyvSCqQYVBIWo3bzJ+9yEOxQzLEgd8=\n",
      "go.sum database tree\n12\nK3Vj0G0Bhk6HHsyvSCqQYVBIWo3bzJ+9yEOxQzLEg=\n",
      "go.sum database tree\n12\n",
      "go.sum database tree "
      "v2\n12\nK3Vj0G0Bhk6HHsyvSCqQYVBIWo3bzJ+9yEOxQzLEgd8=\n",
  };
  for (size_t i = 0; i < N_OF(bad); i++)
    if (tlog_parse_tree(bad[i], strlen(bad[i]), &tree) == 0)
      TEST_FAIL_("tree note %zu parsed", i);

  char lookup[512];
  int n = snprintf(lookup, sizeof lookup,
                   "7\nexample.com/m v1.0.0 h1:abc=\n"
                   "example.com/m v1.0.0/go.mod h1:def=\n\n%s",
                   note);
  int64_t id;
  size_t text_off, text_len, rest_off;
  ASSERT_EQ_INT(tlog_parse_record(lookup, (size_t)n, &id, &text_off, &text_len,
                                  &rest_off),
                0);
  ASSERT_EQ_INT(id, 7);
  ASSERT_EQ_INT(text_off, 2);
  ASSERT_EQ_INT(lookup[text_off + text_len - 1], '\n');
  ASSERT_EQ_INT(tlog_parse_tree(lookup + rest_off, (size_t)n - rest_off, &tree),
                0);
  ASSERT_EQ_INT(tree.n, 12);
  const char *bad_records[] = {"x\nline\n\n", "7\nno blank line\n",
                               "7\n\nempty\n\n", "7\nctl\x01\n\n"};
  for (size_t i = 0; i < N_OF(bad_records); i++)
    if (tlog_parse_record(bad_records[i], strlen(bad_records[i]), &id,
                          &text_off, &text_len, &rest_off) == 0)
      TEST_FAIL_("record %zu parsed", i);
}

int main(void) {
  RUN_TEST(test_stored_hash_index);
  RUN_TEST(test_tile_for_index);
  RUN_TEST(test_tile_path_parse);
  RUN_TEST(test_new_tiles);
  RUN_TEST(test_sub_tree_index);
  RUN_TEST(test_read_tiles_plan);
  RUN_TEST(test_client_tiles);
  RUN_TEST(test_tree_and_record);
  return test_summary();
}
