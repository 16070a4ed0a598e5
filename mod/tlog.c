/* A port of golang.org/x/mod/sumdb/tlog's index and tile arithmetic
 * (tlog.go, tile.go, note.go), kept line for line close to the Go so the two
 * can be compared; tests/unit/test_tlog.c checks it against values the Go
 * package computed. Go defines shifts by 64 or more as 0; C does not, so
 * every shift by a computed amount goes through shr/shl. */
#include "tlog.h"

#include "core/err.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t shr(int64_t v, int s) {
  return s >= 63 ? 0 : v >> s;
}

static int64_t shl(int64_t v, int s) {
  return s >= 63 ? 0 : (int64_t)((uint64_t)v << s);
}

int64_t tlog_stored_hash_index(int level, int64_t n) {
  /* Level L's n'th hash is written right after level L+1's 2n+1'th hash. */
  for (int l = level; l > 0; l--)
    n = 2 * n + 1;
  /* Level 0's n'th hash is written at n+n/2+n/4+... */
  int64_t i = 0;
  for (; n > 0; n >>= 1)
    i += n;
  return i + level;
}

void tlog_split_stored_hash_index(int64_t index, int *level, int64_t *n) {
  /* StoredHashIndex(0, n) < 2*n, so the n we want is in
   * [index/2, index/2+log2(index)]. */
  int64_t m = index / 2;
  int64_t index_n = tlog_stored_hash_index(0, m);
  for (;;) {
    /* Each new record m adds 1 + trailingZeros(m+1) hashes. */
    int64_t x = index_n + 1 + __builtin_ctzll((unsigned long long)(m + 1));
    if (x > index)
      break;
    m++;
    index_n = x;
  }
  *level = (int)(index - index_n);
  *n = shr(m, *level);
}

struct tlog_tile tlog_tile_for_index(int h, int64_t index) {
  int level;
  int64_t n;
  tlog_split_stored_hash_index(index, &level, &n);
  struct tlog_tile t;
  t.h = h;
  t.l = level / h;
  level -= t.l * h; /* now level within tile */
  t.n = shr(shl(n, level), h);
  n -= shr(shl(t.n, h), level); /* now n within tile at level */
  t.w = (int)shl(n + 1, level);
  return t;
}

struct tlog_tile tlog_tile_parent(struct tlog_tile t, int k, int64_t n) {
  t.l += k;
  t.n = shr(t.n, k * t.h);
  t.w = 1 << t.h;
  int64_t max = shr(n, t.l * t.h);
  if (shl(t.n, t.h) + t.w >= max) {
    if (shl(t.n, t.h) >= max) {
      struct tlog_tile none = {0, 0, 0, 0};
      return none;
    }
    t.w = (int)(max - shl(t.n, t.h));
  }
  return t;
}

static int tile_valid(const struct tlog_tile *t) {
  return t->h >= 1 && t->h <= 30 && t->l >= -1 && t->l < 64 && t->n >= 0 &&
         t->w >= 1 && t->w <= 1 << t->h;
}

int tlog_tile_path(const struct tlog_tile *t, char *out, size_t cap) {
  if (!tile_valid(t))
    return -1;
  /* N in groups of three digits, all but the last prefixed with 'x'. */
  char digits[64];
  int nd = 0;
  int64_t n = t->n;
  char groups[8][4];
  int ng = 0;
  do {
    int v = (int)(n % 1000);
    groups[ng][0] = (char)('0' + v / 100);
    groups[ng][1] = (char)('0' + v / 10 % 10);
    groups[ng][2] = (char)('0' + v % 10);
    groups[ng++][3] = '\0';
    n /= 1000;
  } while (n > 0);
  for (int g = ng - 1; g >= 0; g--)
    nd += snprintf(digits + nd, sizeof digits - (size_t)nd, "%s%s%s",
                   g > 0 ? "x" : "", groups[g], g > 0 ? "/" : "");
  char level[8];
  if (t->l == -1)
    snprintf(level, sizeof level, "data");
  else
    snprintf(level, sizeof level, "%d", t->l);
  int r;
  if (t->w != 1 << t->h)
    r = snprintf(out, cap, "tile/%d/%s/%s.p/%d", t->h, level, digits, t->w);
  else
    r = snprintf(out, cap, "tile/%d/%s/%s", t->h, level, digits);
  return r < 0 || (size_t)r >= cap ? -1 : 0;
}

/* A decimal int without sign or leading '+', as strconv.Atoi reads it
 * (leading zeros allowed); -1 when it is not one or exceeds max. */
static long long atoi_max(const char *s, size_t n, long long max) {
  if (n == 0 || n > 18)
    return -1;
  long long v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v > max ? -1 : v;
}

int tlog_tile_parse(const char *path, struct tlog_tile *t) {
  if (strncmp(path, "tile/", 5) != 0)
    return -1;
  const char *p = path + 5;
  size_t n = strcspn(p, "/");
  long long h = atoi_max(p, n, 30);
  if (h < 1 || p[n] != '/')
    return -1;
  p += n + 1;
  n = strcspn(p, "/");
  long long l;
  if (n == 4 && !memcmp(p, "data", 4))
    l = -1;
  else if ((l = atoi_max(p, n, 63)) < 0)
    return -1;
  if (p[n] != '/')
    return -1;
  p += n + 1;
  struct tlog_tile r = {(int)h, (int)l, 0, 1 << h};
  const char *dotp = strstr(p, ".p/");
  size_t nlen = dotp ? (size_t)(dotp - p) : strlen(p);
  if (dotp) {
    long long w = atoi_max(dotp + 3, strlen(dotp + 3), (1LL << h) - 1);
    if (w <= 0)
      return -1;
    r.w = (int)w;
  }
  int groups = 0;
  for (const char *q = p, *end = p + nlen; q < end; groups++) {
    size_t g = (size_t)(end - q);
    const char *slash = memchr(q, '/', g);
    if (slash)
      g = (size_t)(slash - q);
    const char *d = q;
    size_t dn = g;
    if (dn && d[0] == 'x') {
      d++;
      dn--;
    }
    long long v = atoi_max(d, dn, 999);
    if (v < 0 || r.n > (INT64_MAX - 999) / 1000)
      return -1;
    r.n = r.n * 1000 + v;
    q += g + (slash ? 1 : 0);
    if (slash && q == end)
      return -1;
  }
  if (!groups)
    return -1;
  /* Only the canonical spelling is a tile path (ParseTilePath compares
   * with Path()). */
  char again[TLOG_TILE_PATH_MAX];
  if (tlog_tile_path(&r, again, sizeof again) || strcmp(again, path) != 0)
    return -1;
  *t = r;
  return 0;
}

size_t tlog_sub_tree_index(int64_t lo, int64_t hi, int64_t out[64]) {
  size_t k = 0;
  while (lo < hi && k < 64) {
    /* maxpow2(hi-lo+1): the largest power of two below hi-lo+1. */
    int64_t span = hi - lo + 1;
    int level = 0;
    while (shl(1, level + 1) < span)
      level++;
    out[k++] = tlog_stored_hash_index(level, shr(lo, level));
    lo += shl(1, level);
  }
  return k;
}

int tlog_new_tiles(int h, int64_t old_n, int64_t new_n, tlog_tile_fn fn,
                   void *arg) {
  for (int level = 0; shr(new_n, h * level) > 0; level++) {
    int64_t oldl = shr(old_n, h * level), newl = shr(new_n, h * level);
    for (int64_t n = shr(oldl, h); n < shr(newl, h); n++) {
      struct tlog_tile t = {h, level, n, 1 << h};
      int rc = fn(arg, &t);
      if (rc)
        return rc;
    }
    int64_t n = shr(newl, h);
    int max_w = (int)(newl - shl(n, h)), min_w = 1;
    if (oldl > shl(n, h))
      min_w = (int)(oldl - shl(n, h));
    for (int w = min_w; w <= max_w; w++) {
      struct tlog_tile t = {h, level, n, w};
      int rc = fn(arg, &t);
      if (rc)
        return rc;
    }
  }
  return 0;
}

/* --- a growable set of tiles ------------------------------------------- */

struct tile_set {
  struct tlog_tile *v; /* w == 0: empty slot */
  size_t cap, n;       /* cap: 0 or a power of two */
};

static size_t tile_hash(const struct tlog_tile *t) {
  uint64_t x = (uint64_t)t->n * 0x9e3779b97f4a7c15ull;
  x ^= ((uint64_t)(t->l + 1) << 40) ^ ((uint64_t)t->w << 8) ^ (uint64_t)t->h;
  x ^= x >> 29;
  return (size_t)(x * 0xbf58476d1ce4e5b9ull);
}

static int tile_eq(const struct tlog_tile *a, const struct tlog_tile *b) {
  return a->h == b->h && a->l == b->l && a->n == b->n && a->w == b->w;
}

static size_t set_slot(const struct tile_set *s, const struct tlog_tile *t) {
  size_t i = tile_hash(t) & (s->cap - 1);
  while (s->v[i].w && !tile_eq(&s->v[i], t))
    i = (i + 1) & (s->cap - 1);
  return i;
}

static int set_has(const struct tile_set *s, const struct tlog_tile *t) {
  return s->cap && s->v[set_slot(s, t)].w != 0;
}

/* 1 when added, 0 when already there, ERR_NOMEM. */
static int set_add(struct tile_set *s, const struct tlog_tile *t) {
  if (2 * (s->n + 1) > s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 64;
    struct tile_set b = {calloc(cap, sizeof *b.v), cap, 0};
    if (!b.v)
      return ERR_NOMEM;
    for (size_t i = 0; i < s->cap; i++)
      if (s->v[i].w) {
        b.v[set_slot(&b, &s->v[i])] = s->v[i];
        b.n++;
      }
    free(s->v);
    *s = b;
  }
  size_t i = set_slot(s, t);
  if (s->v[i].w)
    return 0;
  s->v[i] = *t;
  s->n++;
  return 1;
}

static void set_clear(struct tile_set *s) {
  if (s->cap)
    memset(s->v, 0, s->cap * sizeof *s->v);
  s->n = 0;
}

int tlog_read_tiles(int h, int64_t n, const int64_t *indexes, size_t nidx,
                    tlog_tile_fn fn, void *arg) {
  if (h < 1 || h > 30)
    return ERR_INVALID;
  struct tile_set set = {NULL, 0, 0};
  int rc = 0;
  /* The tiles that recompute the tree hash: if it matches, they are
   * authenticated. */
  int64_t stx[64];
  size_t nstx = tlog_sub_tree_index(0, n, stx);
  for (size_t i = 0; i < nstx && !rc; i++) {
    struct tlog_tile t = tlog_tile_parent(tlog_tile_for_index(h, stx[i]), 0, n);
    rc = set_add(&set, &t);
    rc = rc == 1 ? fn(arg, &t) : rc;
  }
  /* Each index's tile and the parents that authenticate it, parents
   * first, up to one already planned. */
  int64_t limit = tlog_stored_hash_index(0, n);
  for (size_t i = 0; i < nidx && !rc; i++) {
    if (indexes[i] < 0 || indexes[i] >= limit) {
      rc = ERR_INVALID;
      break;
    }
    struct tlog_tile t = tlog_tile_for_index(h, indexes[i]);
    int k = 0;
    for (;; k++) {
      struct tlog_tile p = tlog_tile_parent(t, k, n);
      if (p.w && set_has(&set, &p))
        break;
      if (k > 64) {
        rc = ERR_INVALID; /* cannot happen for an index in the tree */
        break;
      }
    }
    for (k--; k >= 0 && !rc; k--) {
      struct tlog_tile p = tlog_tile_parent(t, k, n);
      if (p.w != 1 << p.h) {
        rc = ERR_INVALID; /* only full tiles have parents */
        break;
      }
      rc = set_add(&set, &p);
      rc = rc >= 0 ? fn(arg, &p) : rc;
    }
  }
  free(set.v);
  return rc;
}

/* A tile to start from (level l, number n within the level), wanted by
 * every tree of at least need records. */
struct start {
  int l;
  int64_t n;
  int64_t need;
};

/* By tile, then by need: the first of each tile wants it earliest. */
static int start_by_tile(const void *a, const void *b) {
  const struct start *x = a, *y = b;
  if (x->l != y->l)
    return x->l < y->l ? -1 : 1;
  if (x->n != y->n)
    return x->n < y->n ? -1 : 1;
  return x->need < y->need ? -1 : x->need > y->need;
}

static int start_by_need(const void *a, const void *b) {
  const struct start *x = a, *y = b;
  if (x->need != y->need)
    return x->need < y->need ? -1 : 1;
  return start_by_tile(a, b);
}

static int tile_order(const void *a, const void *b) {
  const struct tlog_tile *x = a, *y = b;
  if (x->l != y->l)
    return x->l < y->l ? -1 : 1;
  if (x->n != y->n)
    return x->n < y->n ? -1 : 1;
  return x->w < y->w ? -1 : x->w > y->w;
}

static int i64_order(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

int tlog_client_tiles(int h, const int64_t *trees, size_t ntrees,
                      const int64_t *ids, size_t nids, tlog_tile_fn fn,
                      void *arg) {
  if (h < 1 || h > 30)
    return ERR_INVALID;
  int64_t *sorted = malloc((ntrees ? ntrees : 1) * sizeof *sorted);
  struct start *starts = NULL;
  size_t nstarts = 0, cap = 0;
  struct tile_set have = {NULL, 0, 0}, all = {NULL, 0, 0};
  struct tlog_tile *list = NULL;
  int rc = sorted ? 0 : ERR_NOMEM;
  size_t nt = 0;
  if (!rc && ntrees) {
    memcpy(sorted, trees, ntrees * sizeof *sorted);
    qsort(sorted, ntrees, sizeof *sorted, i64_order);
    nt = 1;
    for (size_t i = 1; i < ntrees; i++)
      if (sorted[i] != sorted[nt - 1])
        sorted[nt++] = sorted[i];
  }
  /* The starting tiles: each record's, and the tiles of each tree's
   * subtree hashes (what tlog.TreeHash reads), with the smallest tree
   * size that wants each. */
  int64_t sub[64];
  for (size_t i = 0; i < nt + nids && !rc; i++) {
    size_t k = 0;
    int64_t need;
    if (i < nt) {
      k = tlog_sub_tree_index(0, sorted[i], sub);
      need = sorted[i];
    } else {
      if (ids[i - nt] < 0)
        continue;
      sub[k++] = tlog_stored_hash_index(0, ids[i - nt]);
      need = ids[i - nt] + 1;
    }
    for (size_t j = 0; j < k; j++) {
      struct tlog_tile t = tlog_tile_for_index(h, sub[j]);
      if (nstarts == cap) {
        size_t c = cap ? 2 * cap : 64;
        struct start *g = realloc(starts, c * sizeof *g);
        if (!g) {
          rc = ERR_NOMEM;
          break;
        }
        starts = g;
        cap = c;
      }
      starts[nstarts++] = (struct start){t.l, t.n, need};
    }
  }
  if (!rc && nstarts) {
    qsort(starts, nstarts, sizeof *starts, start_by_tile);
    size_t u = 1;
    for (size_t i = 1; i < nstarts; i++)
      if (starts[i].l != starts[u - 1].l || starts[i].n != starts[u - 1].n)
        starts[u++] = starts[i];
    nstarts = u;
    qsort(starts, nstarts, sizeof *starts, start_by_need);
  }
  /* Per tree: what tlog_read_tiles plans for all those indexes at once
   * (the union of its plans for each alone), walking up from each start
   * until a tile already planned for this tree. */
  for (size_t i = 0; i < nt && !rc; i++) {
    int64_t n = sorted[i];
    if (n <= 0)
      continue;
    set_clear(&have);
    size_t k = tlog_sub_tree_index(0, n, sub);
    for (size_t j = 0; j < k && !rc; j++) {
      struct tlog_tile t =
          tlog_tile_parent(tlog_tile_for_index(h, sub[j]), 0, n);
      if (set_add(&have, &t) < 0 || set_add(&all, &t) < 0)
        rc = ERR_NOMEM;
    }
    for (size_t s = 0; s < nstarts && starts[s].need <= n && !rc; s++) {
      struct tlog_tile t = {h, starts[s].l, starts[s].n, 1 << h};
      for (int up = 0; up <= 64 / h + 1; up++) {
        struct tlog_tile p = tlog_tile_parent(t, up, n);
        if (!p.w || set_has(&have, &p))
          break;
        if (set_add(&have, &p) < 0 || set_add(&all, &p) < 0) {
          rc = ERR_NOMEM;
          break;
        }
      }
    }
  }
  if (!rc && all.n) {
    list = malloc(all.n * sizeof *list);
    if (!list)
      rc = ERR_NOMEM;
  }
  size_t nl = 0;
  for (size_t i = 0; list && i < all.cap; i++)
    if (all.v[i].w)
      list[nl++] = all.v[i];
  if (list)
    qsort(list, nl, sizeof *list, tile_order);
  for (size_t i = 0; i < nl && !rc; i++)
    rc = fn(arg, &list[i]);
  free(list);
  free(sorted);
  free(starts);
  free(have.v);
  free(all.v);
  return rc;
}

/* --- notes and records ------------------------------------------------- */

/* A decimal int64 exactly as strconv.FormatInt writes it; -1 if not. */
static long long dec_exact(const char *s, size_t n) {
  if (n == 0 || n > 18 || (n > 1 && s[0] == '0'))
    return -1;
  return atoi_max(s, n, (long long)9e17);
}

int tlog_parse_tree(const char *text, size_t len, struct tlog_tree *out) {
  static const char head[] = "go.sum database tree\n";
  size_t hl = sizeof head - 1;
  if (len < hl || len > 1000000 || memcmp(text, head, hl))
    return ERR_INVALID;
  const char *l1 = text + hl, *end = text + len;
  const char *e1 = memchr(l1, '\n', (size_t)(end - l1));
  if (!e1)
    return ERR_INVALID;
  const char *l2 = e1 + 1;
  const char *e2 = memchr(l2, '\n', (size_t)(end - l2));
  if (!e2)
    return ERR_INVALID;
  long long n = dec_exact(l1, (size_t)(e1 - l1));
  size_t bl = (size_t)(e2 - l2);
  /* 32 bytes are 44 base64 characters ending in one '='. */
  if (n < 0 || bl != 44 || l2[43] != '=' || l2[42] == '=')
    return ERR_INVALID;
  unsigned char raw[36];
  char b64[45];
  memcpy(b64, l2, 44);
  b64[44] = '\0';
  if (EVP_DecodeBlock(raw, (const unsigned char *)b64, 44) != 33)
    return ERR_INVALID;
  out->n = n;
  memcpy(out->hash, raw, TLOG_HASH_SIZE);
  return 0;
}

int tlog_parse_record(const char *msg, size_t len, int64_t *id,
                      size_t *text_off, size_t *text_len, size_t *rest_off) {
  const char *nl = memchr(msg, '\n', len);
  if (!nl)
    return ERR_INVALID;
  /* strconv.ParseInt accepts a sign and leading zeros. */
  const char *d = msg;
  size_t dn = (size_t)(nl - msg);
  int neg = 0;
  if (dn && (d[0] == '+' || d[0] == '-')) {
    neg = d[0] == '-';
    d++;
    dn--;
  }
  long long v = atoi_max(d, dn, (long long)9e17);
  if (v < 0)
    return ERR_INVALID;
  const char *text = nl + 1, *end = msg + len;
  const char *blank = memmem(text, (size_t)(end - text), "\n\n", 2);
  if (!blank)
    return ERR_INVALID;
  /* isValidRecordText: no control byte but '\n', ends in '\n', no blank
   * line (the first "\n\n" ends it, so only a leading '\n' is left). */
  size_t tl = (size_t)(blank + 1 - text);
  if (text[0] == '\n')
    return ERR_INVALID;
  for (size_t i = 0; i < tl; i++)
    if ((unsigned char)text[i] < 0x20 && text[i] != '\n')
      return ERR_INVALID;
  *id = neg ? -v : v;
  *text_off = (size_t)(text - msg);
  *text_len = tl;
  *rest_off = (size_t)(blank + 2 - msg);
  return 0;
}
