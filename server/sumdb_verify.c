/* Checksum-database verification; see sumdb_verify.h. */
#include "sumdb_verify.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "dlock.h"
#include "mod/modpath.h"
#include "mod/note.h"
#include "mod/sumdb.h"
#include "mod/tlog.h"
#include "mod/tlogproof.h"
#include "server.h"
#include "storage/storage.h"
#include "sumdb.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TILE_MAX (1u << 20)
#define NOTE_MAX (64u << 10)

int sumdb_verifies(const struct server *srv, const struct sumdb_entry *db) {
  return db->has_key && sumdb_mode(srv->cfg) != SUMDB_OFF;
}

/* A refusal: counted, logged as a security event, returned. */
static int refuse(struct server *srv, const struct sumdb_entry *db, int fork,
                  struct reason *why) {
  atomic_fetch_add(&srv->metrics.sumdb_refused, 1);
  if (fork)
    atomic_fetch_add(&srv->metrics.sumdb_forks, 1);
  log_error("SECURITY: checksum database %s: %s (not cached, not relayed)",
            db->name, why->text);
  return ERR_BAD_UPSTREAM_DATA;
}

/* ---- tiles, from storage or the database ------------------------------ */

struct fetched {
  char path[TLOG_TILE_PATH_MAX];
  unsigned char *data;
  size_t len;
};

struct reader {
  struct server *srv;
  struct worker *w;
  const struct sumdb_entry *db;
  int no_cache; /* read every tile from the database */
  /* The tile under test and its bytes (a relayed tile). */
  const struct tlog_tile *candidate;
  const unsigned char *cand_data;
  size_t cand_len;
  /* Full tiles fetched from the database, stored once all checked out. */
  struct fetched got[64];
  size_t ngot;
};

static int read_tile(void *arg, const struct tlog_tile *t, unsigned char **data,
                     size_t *len, struct reason *why) {
  struct reader *rd = arg;
  *data = NULL;
  *len = 0;
  if (rd->candidate && rd->candidate->l == t->l && rd->candidate->n == t->n &&
      rd->candidate->w == t->w) {
    *data = malloc(rd->cand_len ? rd->cand_len : 1);
    if (!*data)
      return ERR_NOMEM;
    memcpy(*data, rd->cand_data, rd->cand_len);
    *len = rd->cand_len;
    return 0;
  }
  char path[TLOG_TILE_PATH_MAX];
  if (tlog_tile_path(t, path, sizeof path))
    return reason_set(why, ERR_INVALID, "bad tile");
  int full = t->w == 1 << t->h;
  char key[512];
  snprintf(key, sizeof key, "sumdb/%s/%s", rd->db->name, path);
  struct buf b;
  buf_init(&b, TILE_MAX);
  int rc = ERR_NOT_FOUND;
  /* A tile never changes once written (a partial one included: a wider one
   * has another path), so a stored one is as good as a fetched one; each
   * is proven against the signed tree all the same. Full tiles are stored
   * after a proof; partial ones only by a bundle import. */
  if (!rd->no_cache)
    rc = storage_get_buf(rd->srv->store, key, &b);
  if (rc) {
    buf_reset(&b);
    rc = sumdb_get(rd->srv, rd->w, rd->db, path, &b, why);
    if (!rc && full && rd->ngot < sizeof rd->got / sizeof *rd->got) {
      struct fetched *f = &rd->got[rd->ngot];
      f->data = malloc(b.len ? b.len : 1);
      if (f->data) {
        memcpy(f->data, b.data, b.len);
        f->len = b.len;
        snprintf(f->path, sizeof f->path, "%s", path);
        rd->ngot++;
      }
    }
  }
  if (rc) {
    buf_free(&b);
    return rc;
  }
  *data = malloc(b.len ? b.len : 1);
  if (!*data) {
    buf_free(&b);
    return ERR_NOMEM;
  }
  memcpy(*data, b.data, b.len);
  *len = b.len;
  buf_free(&b);
  return 0;
}

/* Keeps the full tiles a successful proof fetched (they are proven now). */
static void reader_done(struct reader *rd, int ok) {
  for (size_t i = 0; i < rd->ngot; i++) {
    if (ok) {
      char key[512];
      snprintf(key, sizeof key, "sumdb/%s/%s", rd->db->name, rd->got[i].path);
      storage_put_buf(rd->srv->store, key, rd->got[i].data, rd->got[i].len);
    }
    free(rd->got[i].data);
  }
  rd->ngot = 0;
}

/* ---- signed heads ----------------------------------------------------- */

/* A signed tree note by db: its tree. */
static int open_tree(const struct sumdb_entry *db, const char *note,
                     size_t len, struct tlog_tree *tree, struct reason *why) {
  size_t tl;
  int rc = note_open(note, len, &db->key, &tl, why);
  if (rc)
    return rc;
  if (tlog_parse_tree(note, tl, tree))
    return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "the signed note is not a tree head");
  return 0;
}

static void head_key(const struct sumdb_entry *db, char *out, size_t cap) {
  snprintf(out, cap, "sumdb/%s/verified-head", db->name);
}

int sumdb_verified_head(struct server *srv, const struct sumdb_entry *db,
                        struct buf *out) {
  char key[300];
  head_key(db, key, sizeof key);
  buf_reset(out);
  return storage_get_buf(srv->store, key, out) ? ERR_NOT_FOUND : 0;
}

/* The newest verified head (n == 0 when there is none yet). A stored head
 * that does not verify (tampered storage) is an error, not a reset. */
static int load_head(struct server *srv, const struct sumdb_entry *db,
                     struct tlog_tree *head, struct reason *why) {
  memset(head, 0, sizeof *head);
  struct buf b;
  buf_init(&b, NOTE_MAX);
  int rc = sumdb_verified_head(srv, db, &b);
  if (rc) {
    buf_free(&b);
    return 0;
  }
  struct reason bad = {{0}};
  rc = open_tree(db, b.data, b.len, head, &bad);
  buf_free(&b);
  if (rc)
    return reason_set(why, ERR_STORAGE,
                      "the stored verified head of %s does not verify: %s",
                      db->name, bad.text);
  return 0;
}

struct advance {
  struct server *srv;
  const struct sumdb_entry *db;
  const struct tlog_tree *seen; /* the head the caller checked against */
  const struct tlog_tree *tree;
  const char *note;
  size_t len;
};

/* Under the head lock: write the new head if the stored one is still the
 * one the caller proved it against. ERR_EXISTS: it moved; check again. */
static int advance_locked(void *arg, struct reason *why) {
  struct advance *a = arg;
  struct tlog_tree now;
  int rc = load_head(a->srv, a->db, &now, why);
  if (rc)
    return rc;
  if (now.n >= a->tree->n)
    return ERR_EXISTS;
  if (now.n != a->seen->n ||
      memcmp(now.hash, a->seen->hash, TLOG_HASH_SIZE) != 0)
    return ERR_EXISTS;
  char key[300];
  head_key(a->db, key, sizeof key);
  rc = storage_replace_buf(a->srv->store, key, a->note, a->len);
  if (rc)
    return reason_set(why, ERR_STORAGE, "storing the verified head of %s: %s",
                      a->db->name, err_str(rc));
  return 0;
}

/* tree (signed by note) against the newest verified head: consistent, and
 * stored as the new head when newer. */
static int check_head(struct server *srv, struct worker *w,
                      const struct sumdb_entry *db, const struct tlog_tree *tree,
                      const char *note, size_t len, struct reason *why) {
  for (int round = 0; round < 16; round++) {
    struct tlog_tree head;
    int rc = load_head(srv, db, &head, why);
    if (rc)
      return rc;
    /* The bigger tree must extend the smaller (an older tree, or the same
     * one, must be a prefix of the head). */
    int older = tree->n <= head.n;
    struct reader rd = {.srv = srv, .w = w, .db = db};
    struct reason bad = {{0}};
    rc = older ? tlog_check_tree(&head, SUMDB_TILE_HEIGHT, tree, read_tile,
                                 &rd, &bad)
               : tlog_check_tree(tree, SUMDB_TILE_HEIGHT, &head, read_tile,
                                 &rd, &bad);
    reader_done(&rd, rc == 0);
    if (rc == ERR_BAD_UPSTREAM_DATA) {
      reason_set(why, rc, "%s", bad.text);
      return refuse(srv, db, 1, why);
    }
    if (rc)
      return reason_set(why, rc, "%s", reason_text(&bad, rc));
    if (older)
      return 0;
    struct advance a = {srv, db, &head, tree, note, len};
    char lk[300];
    snprintf(lk, sizeof lk, "sumdb-head:%s", db->name);
    rc = dlock_run(srv, lk, advance_locked, &a, why);
    if (rc && rc != ERR_EXISTS)
      return rc;
    /* Written, or another thread or replica moved the head (a waiter on the
     * lock gets the holder's result, not its own write): look again; the
     * next round finds the head at least this new and proves the prefix. */
  }
  return reason_set(why, ERR_UNAVAILABLE,
                    "the verified head of %s keeps moving", db->name);
}

/* ---- answers ---------------------------------------------------------- */

static int verify_lookup(struct server *srv, struct worker *w,
                         const struct sumdb_entry *db, const char *body,
                         size_t len, struct reason *why) {
  int64_t id;
  size_t text_off, text_len, note_off;
  if (tlog_parse_record(body, len, &id, &text_off, &text_len, &note_off)) {
    reason_set(why, ERR_BAD_UPSTREAM_DATA, "lookup is not a record");
    return refuse(srv, db, 0, why);
  }
  struct tlog_tree tree;
  struct reason bad = {{0}};
  if (open_tree(db, body + note_off, len - note_off, &tree, &bad)) {
    reason_set(why, ERR_BAD_UPSTREAM_DATA, "lookup: %s", bad.text);
    return refuse(srv, db, 0, why);
  }
  struct reader rd = {.srv = srv, .w = w, .db = db};
  int rc = tlog_check_record(&tree, SUMDB_TILE_HEIGHT, id, body + text_off,
                             text_len, read_tile, &rd, &bad);
  if (rc == ERR_BAD_UPSTREAM_DATA) {
    /* A stale cached tile must not make a good answer fail: once more, all
     * from the database. */
    reader_done(&rd, 0);
    rd.no_cache = 1;
    memset(&bad, 0, sizeof bad);
    rc = tlog_check_record(&tree, SUMDB_TILE_HEIGHT, id, body + text_off,
                           text_len, read_tile, &rd, &bad);
  }
  reader_done(&rd, rc == 0);
  if (rc == ERR_BAD_UPSTREAM_DATA) {
    reason_set(why, rc, "lookup: %s", bad.text);
    return refuse(srv, db, 0, why);
  }
  if (rc)
    return reason_set(why, rc, "%s", reason_text(&bad, rc));
  return check_head(srv, w, db, &tree, body + note_off, len - note_off, why);
}

static int verify_latest(struct server *srv, struct worker *w,
                         const struct sumdb_entry *db, const char *body,
                         size_t len, struct reason *why) {
  struct tlog_tree tree;
  struct reason bad = {{0}};
  if (open_tree(db, body, len, &tree, &bad)) {
    reason_set(why, ERR_BAD_UPSTREAM_DATA, "latest: %s", bad.text);
    return refuse(srv, db, 0, why);
  }
  return check_head(srv, w, db, &tree, body, len, why);
}

/* The newest verified head, fetching /latest when none covers n records. */
static int head_covering(struct server *srv, struct worker *w,
                         const struct sumdb_entry *db, int64_t n,
                         struct tlog_tree *head, struct reason *why) {
  int rc = load_head(srv, db, head, why);
  if (rc || head->n >= n)
    return rc;
  struct buf b;
  buf_init(&b, NOTE_MAX);
  rc = sumdb_get(srv, w, db, "latest", &b, why);
  if (rc && rc != ERR_BAD_UPSTREAM_DATA) {
    /* Out of reach (an air-gapped site): the /latest a bundle import
     * stored, proven like a fetched one. */
    char key[300];
    snprintf(key, sizeof key, "sumdb/%s/latest", db->name);
    if (storage_get_buf(srv->store, key, &b) == 0)
      rc = 0;
  }
  if (!rc)
    rc = verify_latest(srv, w, db, b.data, b.len, why);
  buf_free(&b);
  if (!rc)
    rc = load_head(srv, db, head, why);
  if (!rc && head->n < n)
    rc = reason_set(why, ERR_BAD_UPSTREAM_DATA,
                    "a tile for %lld records, but the signed tree has %lld",
                    (long long)n, (long long)head->n);
  return rc;
}

/* Records of a data tile: "<id>\n<text>\n" each, text ending in a newline
 * and holding no blank line. */
static int next_record(const char *s, size_t len, size_t *off, int64_t want,
                       size_t *text_off, size_t *text_len) {
  int64_t id;
  size_t to, tl, rest;
  if (tlog_parse_record(s + *off, len - *off, &id, &to, &tl, &rest) ||
      id != want)
    return -1;
  *text_off = *off + to;
  *text_len = tl;
  *off += rest;
  return 0;
}

static int verify_tile(struct server *srv, struct worker *w,
                       const struct sumdb_entry *db, const char *rest,
                       const char *body, size_t len, struct reason *why) {
  struct tlog_tile t;
  if (tlog_tile_parse(rest, &t) || t.h != SUMDB_TILE_HEIGHT) {
    reason_set(why, ERR_BAD_UPSTREAM_DATA, "unsupported tile %s", rest);
    return refuse(srv, db, 0, why);
  }
  int data = t.l == -1;
  struct tlog_tile ht = t;
  if (data)
    ht.l = 0;
  /* The tree must hold every hash of the tile. */
  int64_t need = ((ht.n << ht.h) + ht.w) << (ht.l * ht.h);
  struct tlog_tree head;
  int rc = head_covering(srv, w, db, need, &head, why);
  if (rc)
    return rc == ERR_BAD_UPSTREAM_DATA ? refuse(srv, db, 0, why) : rc;
  int64_t idx[1 << SUMDB_TILE_HEIGHT];
  tlog_hash got[1 << SUMDB_TILE_HEIGHT];
  for (int i = 0; i < ht.w; i++)
    idx[i] = tlog_stored_hash_index(ht.l * ht.h, (ht.n << ht.h) + i);
  struct reader rd = {.srv = srv, .w = w, .db = db};
  if (!data) {
    rd.candidate = &t;
    rd.cand_data = (const unsigned char *)body;
    rd.cand_len = len;
  }
  struct reason bad = {{0}};
  rc = tlog_read_hashes(&head, SUMDB_TILE_HEIGHT, idx, (size_t)ht.w, got,
                        read_tile, &rd, &bad);
  reader_done(&rd, rc == 0);
  if (rc && rc != ERR_BAD_UPSTREAM_DATA && rc != ERR_INVALID)
    return reason_set(why, rc, "%s", reason_text(&bad, rc));
  if (rc) {
    reason_set(why, ERR_BAD_UPSTREAM_DATA, "tile %s: %s", rest, bad.text);
    return refuse(srv, db, 0, why);
  }
  if (!data) {
    if (len != (size_t)ht.w * TLOG_HASH_SIZE ||
        memcmp(body, got, len) != 0) {
      reason_set(why, ERR_BAD_UPSTREAM_DATA,
                 "tile %s is not the signed tree's", rest);
      return refuse(srv, db, 0, why);
    }
    return 0;
  }
  size_t off = 0;
  for (int i = 0; i < ht.w; i++) {
    size_t to, tl;
    tlog_hash h;
    if (next_record(body, len, &off, (ht.n << ht.h) + i, &to, &tl)) {
      reason_set(why, ERR_BAD_UPSTREAM_DATA, "data tile %s: record %d", rest,
                 i);
      return refuse(srv, db, 0, why);
    }
    tlog_record_hash(body + to, tl, h);
    if (memcmp(h, got[i], TLOG_HASH_SIZE) != 0) {
      reason_set(why, ERR_BAD_UPSTREAM_DATA,
                 "data tile %s: record %d is not the signed tree's", rest, i);
      return refuse(srv, db, 0, why);
    }
  }
  if (off != len) {
    reason_set(why, ERR_BAD_UPSTREAM_DATA, "data tile %s: trailing bytes",
               rest);
    return refuse(srv, db, 0, why);
  }
  return 0;
}

int sumdb_verify_answer(struct server *srv, struct worker *w,
                        const struct sumdb_entry *db, const char *rest,
                        const char *body, size_t len, struct reason *why) {
  enum sumdb_kind kind;
  int partial;
  char mod[MODPATH_ESC_MAX + 1], ver[VERSION_ESC_MAX + 1];
  int rc = sumdb_parse_rest(rest, &kind, &partial, mod, sizeof mod, ver,
                            sizeof ver, why);
  if (rc)
    return rc;
  switch (kind) {
  case SUMDB_LOOKUP:
    rc = verify_lookup(srv, w, db, body, len, why);
    break;
  case SUMDB_LATEST:
    rc = verify_latest(srv, w, db, body, len, why);
    break;
  case SUMDB_TILE:
    rc = verify_tile(srv, w, db, rest, body, len, why);
    break;
  case SUMDB_SUPPORTED:
    return 0;
  }
  if (!rc)
    atomic_fetch_add(&srv->metrics.sumdb_verified, 1);
  return rc;
}
