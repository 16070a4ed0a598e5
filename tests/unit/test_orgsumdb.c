/* The organisation checksum database's engine (server/orgsumdb.h) over a
 * temp fs storage and in-memory metadata: 300 appends (crossing a full tile)
 * whose signed heads match the tree hashes computed independently with
 * tlog_stored_hashes, records proven through the served tiles, every head
 * consistent with the earlier ones, data tiles, idempotent and conflicting
 * appends, an index entry of an append that never committed, a tampered
 * tile and a rolled-back head refused. */
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "mod/note.h"
#include "mod/tlog.h"
#include "mod/tlogproof.h"
#include "server/orgsumdb.h"
#include "storage/meta.h"
#include "storage/storage.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RECORDS 300

static char dir[256];
static struct config cfg;
static struct storage *store;
static struct meta *meta;
static struct orgsumdb *db;
static struct note_verifier verifier;
static tlog_hash ref[2 * RECORDS + 64]; /* stored hashes, computed here */
static size_t nref;
static char texts[RECORDS][256];

static int read_ref(void *arg, const int64_t *idx, size_t n, tlog_hash *out,
                    struct reason *why) {
  (void)arg;
  (void)why;
  for (size_t i = 0; i < n; i++) {
    if (idx[i] < 0 || (size_t)idx[i] >= nref)
      return ERR_INVALID;
    memcpy(out[i], ref[idx[i]], TLOG_HASH_SIZE);
  }
  return 0;
}

/* Tiles as a client gets them: through orgsumdb_tile. */
static int read_served(void *arg, const struct tlog_tile *t,
                       unsigned char **data, size_t *len, struct reason *why) {
  (void)arg;
  struct buf b;
  buf_init(&b, 1 << 20);
  int rc = orgsumdb_tile(db, t, &b, why);
  if (rc) {
    buf_free(&b);
    return rc;
  }
  *data = (unsigned char *)buf_steal(&b, len);
  return *data ? 0 : ERR_NOMEM;
}

static void version_of(int i, char *module, char *version) {
  snprintf(module, 128, "git.corp.example/team/m%d", i % 97);
  snprintf(version, 64, "v1.%d.0", i);
}

static void hashes_of(int i, const char *salt, char *zip, char *mod) {
  snprintf(zip, HASH1_LEN, "h1:zip%s%036d=", salt, i);
  snprintf(mod, HASH1_LEN, "h1:mod%s%036d=", salt, i);
}

/* The head as served: signed by the log's key, its tree. */
static struct tlog_tree head(void) {
  struct buf note;
  buf_init(&note, 4096);
  struct tlog_tree t = {-1, {0}};
  struct reason why = {{0}};
  ASSERT_EQ_INT(orgsumdb_head(db, 1, &note, &t, &why), 0);
  size_t text_len = 0;
  ASSERT_EQ_INT(note_open(note.data, note.len, &verifier, &text_len, &why), 0);
  struct tlog_tree parsed;
  ASSERT_EQ_INT(tlog_parse_tree(note.data, text_len, &parsed), 0);
  ASSERT_EQ_INT(parsed.n, t.n);
  ASSERT_TRUE(!memcmp(parsed.hash, t.hash, TLOG_HASH_SIZE));
  buf_free(&note);
  return t;
}

static void setup(void) {
  snprintf(dir, sizeof dir, "/tmp/test_orgsumdb-XXXXXX");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    exit(2);
  }
  struct reason why = {{0}};
  char url[300], skey[NOTE_KEY_MAX], vkey[NOTE_KEY_MAX];
  snprintf(url, sizeof url, "fs://%s/store", dir);
  if (config_init(&cfg) || config_set(&cfg, "storage", url, NULL, &why) ||
      storage_open(&cfg, &store, &why) || meta_open(&cfg, &meta, &why) ||
      note_keygen("sum.corp.example", skey, vkey, &why) ||
      note_verifier_parse(vkey, &verifier, &why)) {
    fprintf(stderr, "setup: %s\n", why.text);
    exit(2);
  }
  struct orgsumdb_params p = {skey, store, meta, 15000, 0};
  if (orgsumdb_new(&p, &db, &why)) {
    fprintf(stderr, "orgsumdb_new: %s\n", why.text);
    exit(2);
  }
  ASSERT_EQ_STR(orgsumdb_vkey(db), vkey);
  ASSERT_EQ_STR(orgsumdb_name(db), "sum.corp.example");
}

static void empty_log_has_a_signed_head(void) {
  struct tlog_tree t = head();
  ASSERT_EQ_INT(t.n, 0);
  struct tlog_tile tile = {8, 0, 0, 1};
  struct buf b;
  buf_init(&b, 1 << 20);
  struct reason why = {{0}};
  ASSERT_EQ_INT(orgsumdb_tile(db, &tile, &b, &why), ERR_NOT_FOUND);
  ASSERT_EQ_INT(
      orgsumdb_lookup(db, "git.corp.example/x", "v1.0.0", &b, NULL, NULL, &why),
      ERR_NOT_FOUND);
  buf_free(&b);
}

static void appends_match_independent_hashes(void) {
  struct tlog_tree prev = {0, {0}};
  for (int i = 0; i < RECORDS; i++) {
    char module[128], version[64], zip[HASH1_LEN], mod[HASH1_LEN];
    version_of(i, module, version);
    hashes_of(i, "", zip, mod);
    ASSERT_EQ_INT(orgsumdb_record_text(module, version, zip, mod, texts[i],
                                       sizeof texts[i]),
                  0);
    struct reason why = {{0}};
    int64_t id = -1;
    int rc = orgsumdb_append(db, module, version, zip, mod, &id, &why);
    if (rc) {
      fprintf(stderr, "append %d: %s\n", i, reason_text(&why, rc));
      ASSERT_EQ_INT(rc, 0);
      return;
    }
    ASSERT_EQ_INT(id, i);
    tlog_hash rh, add[64];
    size_t k;
    tlog_record_hash(texts[i], strlen(texts[i]), rh);
    ASSERT_EQ_INT(tlog_stored_hashes(i, rh, read_ref, NULL, add, &k, &why), 0);
    memcpy(ref + nref, add, k * sizeof *add);
    nref += k;
    struct tlog_tree want = {i + 1, {0}};
    ASSERT_EQ_INT(tlog_tree_hash(i + 1, read_ref, NULL, want.hash, &why), 0);
    struct tlog_tree t = head();
    ASSERT_EQ_INT(t.n, i + 1);
    ASSERT_TRUE(!memcmp(t.hash, want.hash, TLOG_HASH_SIZE));
    /* The new record and an old one are in the tree, and the previous head
     * is a prefix of it, all read through the served tiles. */
    ASSERT_EQ_INT(tlog_check_record(&t, 8, i, texts[i], strlen(texts[i]),
                                    read_served, NULL, &why),
                  0);
    ASSERT_EQ_INT(tlog_check_record(&t, 8, i / 2, texts[i / 2],
                                    strlen(texts[i / 2]), read_served, NULL,
                                    &why),
                  0);
    if (prev.n)
      ASSERT_EQ_INT(tlog_check_tree(&t, 8, &prev, read_served, NULL, &why), 0);
    prev = t;
  }
  /* Every record of the final tree, and an early head against it. */
  struct tlog_tree t = head();
  struct reason why = {{0}};
  for (int i = 0; i < RECORDS; i++)
    ASSERT_EQ_INT(tlog_check_record(&t, 8, i, texts[i], strlen(texts[i]),
                                    read_served, NULL, &why),
                  0);
  struct tlog_tree early = {7, {0}};
  ASSERT_EQ_INT(tlog_tree_hash(7, read_ref, NULL, early.hash, &why), 0);
  ASSERT_EQ_INT(tlog_check_tree(&t, 8, &early, read_served, NULL, &why), 0);
}

static void tiles_are_where_xmod_puts_them(void) {
  char path[600];
  const char *want[] = {"tile/8/0/000",     "tile/8/0/001.p/44",
                        "tile/8/0/000.p/5", "tile/8/1/000.p/1",
                        "record/299",       "latest"};
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    snprintf(path, sizeof path, "%s/store/sumdb/sum.corp.example/%s", dir,
             want[i]);
    if (access(path, F_OK))
      TEST_FAIL_("%s missing", path);
  }
  /* A narrower tile than stored is cut from the head's own; one past the
   * head does not exist. */
  struct buf b, c;
  buf_init(&b, 1 << 20);
  buf_init(&c, 1 << 20);
  struct reason why = {{0}};
  struct tlog_tile full = {8, 0, 0, 256}, part = {8, 0, 1, 44},
                   cut = {8, 0, 1, 3}, past = {8, 0, 1, 45};
  ASSERT_EQ_INT(orgsumdb_tile(db, &full, &b, &why), 0);
  ASSERT_EQ_INT(b.len, 256 * 32);
  buf_reset(&b);
  ASSERT_EQ_INT(orgsumdb_tile(db, &part, &b, &why), 0);
  ASSERT_EQ_INT(orgsumdb_tile(db, &cut, &c, &why), 0);
  ASSERT_EQ_INT(c.len, 3 * 32);
  ASSERT_TRUE(b.len == 44 * 32 && !memcmp(b.data, c.data, c.len));
  ASSERT_EQ_INT(orgsumdb_tile(db, &past, &b, &why), ERR_NOT_FOUND);
  /* A data tile is x/mod's FormatRecord of each record. */
  struct tlog_tile data = {8, -1, 1, 44};
  buf_reset(&b);
  buf_reset(&c);
  ASSERT_EQ_INT(orgsumdb_tile(db, &data, &b, &why), 0);
  for (int i = 256; i < 300; i++)
    buf_appendf(&c, "%d\n%s\n", i, texts[i]);
  ASSERT_TRUE(b.len == c.len && !memcmp(b.data, c.data, c.len));
  buf_free(&b);
  buf_free(&c);
}

static void lookups_and_repeated_appends(void) {
  char module[128], version[64], zip[HASH1_LEN], mod[HASH1_LEN];
  char gz[HASH1_LEN], gm[HASH1_LEN];
  version_of(123, module, version);
  hashes_of(123, "", zip, mod);
  struct buf b;
  buf_init(&b, 1 << 20);
  struct reason why = {{0}};
  ASSERT_EQ_INT(orgsumdb_lookup(db, module, version, &b, gz, gm, &why), 0);
  ASSERT_EQ_STR(gz, zip);
  ASSERT_EQ_STR(gm, mod);
  int64_t id;
  size_t off, len, rest;
  ASSERT_EQ_INT(tlog_parse_record(b.data, b.len, &id, &off, &len, &rest), 0);
  ASSERT_EQ_INT(id, 123);
  ASSERT_TRUE(len == strlen(texts[123]) &&
              !memcmp(b.data + off, texts[123], len));
  size_t tl;
  ASSERT_EQ_INT(note_open(b.data + rest, b.len - rest, &verifier, &tl, &why),
                0);
  /* The same hashes again: nothing appended. Other hashes: refused. */
  int64_t got = -1;
  ASSERT_EQ_INT(orgsumdb_append(db, module, version, zip, mod, &got, &why), 0);
  ASSERT_EQ_INT(got, 123);
  ASSERT_EQ_INT(head().n, RECORDS);
  hashes_of(123, "x", zip, mod);
  ASSERT_EQ_INT(orgsumdb_append(db, module, version, zip, mod, NULL, &why),
                ERR_BAD_UPSTREAM_DATA);
  ASSERT_TRUE(strstr(why.text, "other hashes") != NULL);
  ASSERT_EQ_INT(head().n, RECORDS);
  buf_free(&b);
}

static void put_file(const char *rel, const char *text, size_t len) {
  char path[600];
  snprintf(path, sizeof path, "%s/store/sumdb/sum.corp.example/%s", dir, rel);
  FILE *f = fopen(path, "w");
  if (!f || fwrite(text, 1, len, f) != len) {
    perror(path);
    exit(2);
  }
  fclose(f);
}

static void uncommitted_append_is_invisible(void) {
  /* What an append killed before its head leaves: a record and an index
   * entry at the head's size. */
  char ghost[] = "git.corp.example/ghost v1.0.0 h1:a=\n"
                 "git.corp.example/ghost v1.0.0/go.mod h1:b=\n";
  put_file("record/300", ghost, strlen(ghost));
  char idx[600];
  snprintf(idx, sizeof idx,
           "%s/store/sumdb/sum.corp.example/index/git.corp."
           "example",
           dir);
  char cmd[800];
  snprintf(cmd, sizeof cmd, "mkdir -p %s", idx);
  ASSERT_EQ_INT(system(cmd), 0);
  put_file("index/git.corp.example/ghost@v1.0.0", "300\n", 4);
  struct buf b;
  buf_init(&b, 1 << 20);
  struct reason why = {{0}};
  ASSERT_EQ_INT(orgsumdb_lookup(db, "git.corp.example/ghost", "v1.0.0", &b,
                                NULL, NULL, &why),
                ERR_NOT_FOUND);
  /* The next append takes id 300; the ghost's entry then names a record
   * of another version and still does not count. */
  int64_t id = -1;
  ASSERT_EQ_INT(orgsumdb_append(db, "git.corp.example/next", "v1.0.0",
                                "h1:c=", "h1:d=", &id, &why),
                0);
  ASSERT_EQ_INT(id, 300);
  ASSERT_EQ_INT(orgsumdb_lookup(db, "git.corp.example/ghost", "v1.0.0", &b,
                                NULL, NULL, &why),
                ERR_NOT_FOUND);
  ASSERT_EQ_INT(orgsumdb_append(db, "git.corp.example/ghost", "v1.0.0",
                                "h1:a=", "h1:b=", &id, &why),
                0);
  ASSERT_EQ_INT(id, 301);
  ASSERT_EQ_INT(orgsumdb_lookup(db, "git.corp.example/ghost", "v1.0.0", &b,
                                NULL, NULL, &why),
                0);
  buf_free(&b);
}

static void tampered_tile_and_rollback_refused(void) {
  struct reason why = {{0}};
  char path[600];
  snprintf(path, sizeof path,
           "%s/store/sumdb/sum.corp.example/tile/8/0/"
           "001.p/46",
           dir);
  struct buf keep;
  buf_init(&keep, 1 << 20);
  ASSERT_EQ_INT(
      storage_get_buf(store, "sumdb/sum.corp.example/tile/8/0/001.p/46", &keep),
      0);
  char *bad = malloc(keep.len);
  memcpy(bad, keep.data, keep.len);
  bad[keep.len - 1] ^= 1;
  put_file("tile/8/0/001.p/46", bad, keep.len);
  ASSERT_EQ_INT(orgsumdb_append(db, "git.corp.example/t", "v1.0.0",
                                "h1:e=", "h1:f=", NULL, &why),
                ERR_BAD_UPSTREAM_DATA);
  ASSERT_EQ_INT(head().n, 302);
  put_file("tile/8/0/001.p/46", keep.data, keep.len);
  free(bad);
  /* Storage put back to an older head: never extended (it would fork). */
  struct buf old;
  buf_init(&old, 4096);
  ASSERT_EQ_INT(storage_get_buf(store, "sumdb/sum.corp.example/latest", &old),
                0);
  ASSERT_EQ_INT(orgsumdb_append(db, "git.corp.example/t", "v1.0.0",
                                "h1:e=", "h1:f=", NULL, &why),
                0);
  ASSERT_EQ_INT(head().n, 303);
  put_file("latest", old.data, old.len);
  ASSERT_EQ_INT(orgsumdb_append(db, "git.corp.example/u", "v1.0.0",
                                "h1:g=", "h1:h=", NULL, &why),
                ERR_UNAVAILABLE);
  ASSERT_TRUE(strstr(why.text, "rolled back") != NULL);
  buf_free(&keep);
  buf_free(&old);
}

int main(void) {
  log_setup("text", "error");
  setup();
  RUN_TEST(empty_log_has_a_signed_head);
  RUN_TEST(appends_match_independent_hashes);
  RUN_TEST(tiles_are_where_xmod_puts_them);
  RUN_TEST(lookups_and_repeated_appends);
  RUN_TEST(uncommitted_append_is_invisible);
  RUN_TEST(tampered_tile_and_rollback_refused);
  orgsumdb_free(db);
  meta_close(meta);
  storage_close(store);
  config_free(&cfg);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd))
    fprintf(stderr, "could not remove %s\n", dir);
  return test_summary();
}
