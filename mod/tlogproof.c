/* The transparency log's hashing and proofs (tlogproof.h), ported from
 * golang.org/x/mod/sumdb/tlog (tlog.go: RecordHash, NodeHash,
 * StoredHashesForRecordHash, TreeHash; tile.go: HashFromTile, tileHash and
 * tileHashReader.ReadHashes). tests/unit/test_tlogproof.c checks it against
 * hashes the Go package computed. */
#include "tlogproof.h"

#include "core/err.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void sha256_parts(const void *a, size_t an, const void *b, size_t bn,
                         const void *c, size_t cn, tlog_hash out) {
  EVP_MD_CTX *x = EVP_MD_CTX_new();
  unsigned int len = 0;
  if (!x || !EVP_DigestInit_ex(x, EVP_sha256(), NULL) ||
      !EVP_DigestUpdate(x, a, an) || (bn && !EVP_DigestUpdate(x, b, bn)) ||
      (cn && !EVP_DigestUpdate(x, c, cn)) || !EVP_DigestFinal_ex(x, out, &len))
    memset(out, 0, TLOG_HASH_SIZE); /* only when out of memory */
  EVP_MD_CTX_free(x);
}

void tlog_record_hash(const void *data, size_t len, tlog_hash out) {
  static const unsigned char zero = 0x00;
  sha256_parts(&zero, 1, data, len, NULL, 0, out);
}

void tlog_node_hash(const tlog_hash left, const tlog_hash right,
                    tlog_hash out) {
  static const unsigned char one = 0x01;
  tlog_hash l, r; /* out may alias either */
  memcpy(l, left, sizeof l);
  memcpy(r, right, sizeof r);
  sha256_parts(&one, 1, l, sizeof l, r, sizeof r, out);
}

/* tileHash: the hash of the complete subtree whose level-0-in-tile hashes
 * are data (a power of two of them). */
static void tile_hash(const unsigned char *data, size_t len, tlog_hash out) {
  if (len == TLOG_HASH_SIZE) {
    memcpy(out, data, TLOG_HASH_SIZE);
    return;
  }
  tlog_hash l, r;
  tile_hash(data, len / 2, l);
  tile_hash(data + len / 2, len / 2, r);
  tlog_node_hash(l, r, out);
}

int tlog_hash_from_tile(const struct tlog_tile *t, const unsigned char *data,
                        size_t len, int64_t index, tlog_hash out) {
  if (t->h < 1 || t->h > 30 || t->l < 0 || t->l >= 64 || t->w < 1 ||
      t->w > (1 << t->h) || len < (size_t)t->w * TLOG_HASH_SIZE)
    return ERR_INVALID;
  struct tlog_tile t1 = tlog_tile_for_index(t->h, index);
  if (t->l != t1.l || t->n != t1.n || t->w < t1.w)
    return ERR_INVALID;
  int level;
  int64_t n;
  tlog_split_stored_hash_index(index, &level, &n);
  int in_tile = level - t1.l * t1.h;
  size_t end = (size_t)t1.w * TLOG_HASH_SIZE;
  size_t start = end - ((size_t)1 << in_tile) * TLOG_HASH_SIZE;
  tile_hash(data + start, end - start, out);
  return 0;
}

/* ---- reading hashes through authenticated tiles ---------------------- */

struct tileset {
  struct tlog_tile *v;
  unsigned char **data;
  size_t *len;
  size_t n, cap;
};

static long ts_find(const struct tileset *s, const struct tlog_tile *t) {
  for (size_t i = 0; i < s->n; i++)
    if (s->v[i].h == t->h && s->v[i].l == t->l && s->v[i].n == t->n &&
        s->v[i].w == t->w)
      return (long)i;
  return -1;
}

static long ts_add(struct tileset *s, const struct tlog_tile *t) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 16;
    struct tlog_tile *v = realloc(s->v, cap * sizeof *v);
    if (!v)
      return -1;
    s->v = v;
    unsigned char **d = realloc(s->data, cap * sizeof *d);
    if (!d)
      return -1;
    s->data = d;
    size_t *l = realloc(s->len, cap * sizeof *l);
    if (!l)
      return -1;
    s->len = l;
    s->cap = cap;
  }
  s->v[s->n] = *t;
  s->data[s->n] = NULL;
  s->len[s->n] = 0;
  return (long)s->n++;
}

static void ts_free(struct tileset *s) {
  for (size_t i = 0; i < s->n; i++)
    free(s->data[i]);
  free(s->v);
  free(s->data);
  free(s->len);
}

static int inconsistent(struct reason *why, const struct tlog_tile *t) {
  char path[TLOG_TILE_PATH_MAX];
  if (tlog_tile_path(t, path, sizeof path))
    snprintf(path, sizeof path, "?");
  return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                    "inconsistent tile %s: it does not hash to the signed "
                    "tree",
                    path);
}

int tlog_read_hashes(const struct tlog_tree *tree, int h,
                     const int64_t *indexes, size_t n, tlog_hash *out,
                     tlog_tile_reader rd, void *arg, struct reason *why) {
  if (tree->n <= 0)
    return reason_set(why, ERR_INVALID, "no hashes in an empty tree");
  struct tileset s = {0};
  int64_t stx[64];
  size_t nstx = tlog_sub_tree_index(0, tree->n, stx);
  long stx_order[64];
  long *idx_order = calloc(n ? n : 1, sizeof *idx_order);
  int rc = idx_order ? 0 : ERR_NOMEM;
  /* The tiles that make up the tree hash, then for each index its tile and
   * the parents up to one already in the set. */
  for (size_t i = 0; !rc && i < nstx; i++) {
    struct tlog_tile t = tlog_tile_parent(tlog_tile_for_index(h, stx[i]), 0,
                                          tree->n);
    long j = ts_find(&s, &t);
    if (j < 0)
      j = ts_add(&s, &t);
    if (j < 0)
      rc = ERR_NOMEM;
    stx_order[i] = j;
  }
  size_t nbase = s.n;
  int64_t limit = tlog_stored_hash_index(0, tree->n);
  for (size_t i = 0; !rc && i < n; i++) {
    if (indexes[i] < 0 || indexes[i] >= limit) {
      rc = reason_set(why, ERR_INVALID, "hash index %lld is not in a tree of %lld",
                      (long long)indexes[i], (long long)tree->n);
      break;
    }
    struct tlog_tile t = tlog_tile_for_index(h, indexes[i]);
    int k = 0;
    for (;; k++) {
      struct tlog_tile p = tlog_tile_parent(t, k, tree->n);
      long j = ts_find(&s, &p);
      if (j >= 0) {
        if (k == 0)
          idx_order[i] = j;
        break;
      }
      if (p.w == 0) { /* cannot happen for an index in the tree */
        rc = reason_set(why, ERR_INVALID, "lost tile for index %lld",
                        (long long)indexes[i]);
        break;
      }
    }
    for (k--; !rc && k >= 0; k--) {
      struct tlog_tile p = tlog_tile_parent(t, k, tree->n);
      if (p.w != 1 << p.h) {
        rc = reason_set(why, ERR_INVALID, "bad tile math at index %lld",
                        (long long)indexes[i]);
        break;
      }
      long j = ts_add(&s, &p);
      if (j < 0)
        rc = ERR_NOMEM;
      else if (k == 0)
        idx_order[i] = j;
    }
  }
  for (size_t i = 0; !rc && i < s.n; i++) {
    rc = rd(arg, &s.v[i], &s.data[i], &s.len[i], why);
    if (!rc && s.len[i] != (size_t)s.v[i].w * TLOG_HASH_SIZE) {
      char path[TLOG_TILE_PATH_MAX];
      if (tlog_tile_path(&s.v[i], path, sizeof path))
        snprintf(path, sizeof path, "?");
      rc = reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "tile %s is %zu bytes, want %zu", path, s.len[i],
                      (size_t)s.v[i].w * TLOG_HASH_SIZE);
    }
  }
  /* The tree hash from the first tiles must be the signed one. */
  if (!rc) {
    tlog_hash th, x;
    long j = stx_order[nstx - 1];
    rc = tlog_hash_from_tile(&s.v[j], s.data[j], s.len[j], stx[nstx - 1], th);
    for (size_t i = nstx - 1; !rc && i-- > 0;) {
      j = stx_order[i];
      rc = tlog_hash_from_tile(&s.v[j], s.data[j], s.len[j], stx[i], x);
      if (!rc)
        tlog_node_hash(x, th, th);
    }
    if (rc)
      rc = reason_set(why, ERR_INVALID, "bad tile math for a tree of %lld",
                      (long long)tree->n);
    else if (memcmp(th, tree->hash, TLOG_HASH_SIZE) != 0)
      rc = inconsistent(why, &s.v[stx_order[0]]);
  }
  /* Every other tile must hash to its entry in its parent. */
  for (size_t i = nbase; !rc && i < s.n; i++) {
    struct tlog_tile p = tlog_tile_parent(s.v[i], 1, tree->n);
    long j = ts_find(&s, &p);
    tlog_hash want, got;
    if (j < 0 || tlog_hash_from_tile(&p, s.data[j], s.len[j],
                                     tlog_stored_hash_index(p.l * p.h, s.v[i].n),
                                     want)) {
      rc = reason_set(why, ERR_INVALID, "bad tile math: lost a parent tile");
      break;
    }
    tile_hash(s.data[i], s.len[i], got);
    if (memcmp(want, got, TLOG_HASH_SIZE) != 0)
      rc = inconsistent(why, &s.v[i]);
  }
  for (size_t i = 0; !rc && i < n; i++) {
    long j = idx_order[i];
    if (tlog_hash_from_tile(&s.v[j], s.data[j], s.len[j], indexes[i], out[i]))
      rc = reason_set(why, ERR_INVALID, "bad tile math: lost hash %lld",
                      (long long)indexes[i]);
  }
  free(idx_order);
  ts_free(&s);
  return rc;
}

int tlog_check_record(const struct tlog_tree *tree, int h, int64_t id,
                      const void *text, size_t len, tlog_tile_reader rd,
                      void *arg, struct reason *why) {
  if (id < 0 || id >= tree->n)
    return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "record %lld is not in the signed tree of %lld records",
                      (long long)id, (long long)tree->n);
  int64_t x = tlog_stored_hash_index(0, id);
  tlog_hash got, want;
  int rc = tlog_read_hashes(tree, h, &x, 1, &got, rd, arg, why);
  if (rc)
    return rc == ERR_INVALID ? ERR_BAD_UPSTREAM_DATA : rc;
  tlog_record_hash(text, len, want);
  if (memcmp(got, want, TLOG_HASH_SIZE) != 0)
    return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "record %lld is not the one in the signed tree of %lld "
                      "records",
                      (long long)id, (long long)tree->n);
  return 0;
}

/* subTreeHash over hashes read for subTreeIndex(lo, hi). */
static void sub_tree_hash(const tlog_hash *hashes, size_t n, tlog_hash out) {
  memcpy(out, hashes[n - 1], TLOG_HASH_SIZE);
  for (size_t i = n - 1; i-- > 0;)
    tlog_node_hash(hashes[i], out, out);
}

int tlog_check_tree(const struct tlog_tree *tree, int h,
                    const struct tlog_tree *old, tlog_tile_reader rd,
                    void *arg, struct reason *why) {
  if (old->n > tree->n)
    return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "tree of %lld records is older than one of %lld "
                      "verified before",
                      (long long)tree->n, (long long)old->n);
  if (old->n == 0)
    return 0;
  if (old->n == tree->n) {
    if (memcmp(old->hash, tree->hash, TLOG_HASH_SIZE) == 0)
      return 0;
    return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "forked log: two different trees of %lld records",
                      (long long)tree->n);
  }
  int64_t idx[64];
  tlog_hash hashes[64], th;
  size_t k = tlog_sub_tree_index(0, old->n, idx);
  int rc = tlog_read_hashes(tree, h, idx, k, hashes, rd, arg, why);
  if (rc)
    return rc == ERR_INVALID ? ERR_BAD_UPSTREAM_DATA : rc;
  sub_tree_hash(hashes, k, th);
  if (memcmp(th, old->hash, TLOG_HASH_SIZE) != 0)
    return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "forked log: the tree of %lld records does not extend "
                      "the one of %lld verified before",
                      (long long)tree->n, (long long)old->n);
  return 0;
}

int tlog_stored_hashes(int64_t n, const tlog_hash record_hash,
                       tlog_hash_reader rd, void *arg, tlog_hash *out,
                       size_t *count, struct reason *why) {
  memcpy(out[0], record_hash, TLOG_HASH_SIZE);
  int m = __builtin_ctzll((unsigned long long)(n + 1));
  int64_t idx[64];
  tlog_hash old[64];
  for (int i = 0; i < m; i++)
    idx[m - 1 - i] = tlog_stored_hash_index(i, (n >> i) - 1);
  if (m > 0) {
    int rc = rd(arg, idx, (size_t)m, old, why);
    if (rc)
      return rc;
  }
  for (int i = 0; i < m; i++)
    tlog_node_hash(old[m - 1 - i], out[i], out[i + 1]);
  *count = (size_t)m + 1;
  return 0;
}

int tlog_tree_hash(int64_t n, tlog_hash_reader rd, void *arg, tlog_hash out,
                   struct reason *why) {
  if (n == 0) {
    memset(out, 0, TLOG_HASH_SIZE);
    return 0;
  }
  int64_t idx[64];
  tlog_hash hashes[64];
  size_t k = tlog_sub_tree_index(0, n, idx);
  int rc = rd(arg, idx, k, hashes, why);
  if (rc)
    return rc;
  sub_tree_hash(hashes, k, out);
  return 0;
}

int tlog_format_tree(const struct tlog_tree *t, char *out, size_t cap) {
  char b64[48];
  EVP_EncodeBlock((unsigned char *)b64, t->hash, TLOG_HASH_SIZE);
  int n = snprintf(out, cap, "go.sum database tree\n%lld\n%s\n",
                   (long long)t->n, b64);
  return n < 0 || (size_t)n >= cap ? -1 : n;
}
