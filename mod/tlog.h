/* The checksum database's tiled transparency log (golang.org/x/mod/sumdb/
 * tlog) as pure functions: stored-hash indexes, tile coordinates and paths,
 * and which tiles the go command reads to check a record or a tree hash, so
 * a bundle can carry exactly the tiles an offline client will ask for. No
 * I/O, no allocation beyond what tlog_read_tiles says. */
#ifndef GOMIRROR_MOD_TLOG_H
#define GOMIRROR_MOD_TLOG_H

#include <stddef.h>
#include <stdint.h>

#define TLOG_HASH_SIZE 32
/* The tile height the go command uses (x/mod sumdb.Client: tileHeight). */
#define TLOG_CLIENT_HEIGHT 8
/* Longest tile path: "tile/30/63/" + 7 groups of "x123/" + "123.p/1073741823".
 */
#define TLOG_TILE_PATH_MAX 96

/* A tile of height h at level l, number n within the level, holding w
 * hashes (w == 1 << h: complete; fewer: partial). l == -1 is a data tile.
 * w == 0 means "no tile" (tlog_tile_parent past the top). */
struct tlog_tile {
  int h;
  int l;
  int64_t n;
  int w;
};

struct tlog_tree {
  int64_t n; /* records in the tree */
  unsigned char hash[TLOG_HASH_SIZE];
};

/* tlog.StoredHashIndex: the position of the hash at (level, n) in the
 * dense storage order of the log's hashes. */
int64_t tlog_stored_hash_index(int level, int64_t n);
/* tlog.SplitStoredHashIndex, its inverse. */
void tlog_split_stored_hash_index(int64_t index, int *level, int64_t *n);

/* tlog.TileForIndex: the narrowest tile of height h storing the hash at
 * stored index (h >= 1). */
struct tlog_tile tlog_tile_for_index(int h, int64_t index);
/* tlog's tileParent: t's k-th parent (k == 0: t itself) in the tiles of a
 * tree of size n, as wide as that tree makes it; w == 0 when there is none. */
struct tlog_tile tlog_tile_parent(struct tlog_tile t, int k, int64_t n);

/* tlog.Tile.Path, "tile/H/L/NNN[.p/W]" (L "data" for l == -1), into out.
 * 0, or -1 when cap is too small or t is not a valid tile. */
int tlog_tile_path(const struct tlog_tile *t, char *out, size_t cap);
/* tlog.ParseTilePath: 0 and *t, or -1 unless path is exactly what
 * tlog_tile_path writes for some valid tile. */
int tlog_tile_parse(const char *path, struct tlog_tile *t);

/* tlog's subTreeIndex(lo, hi): the stored indexes of the complete subtrees
 * whose hashes make up the hash of records [lo, hi) (at most 64), written
 * to out. Returns how many (0 when lo >= hi). */
size_t tlog_sub_tree_index(int64_t lo, int64_t hi, int64_t out[64]);

/* Called per tile; a non-zero return stops the walk and is returned. */
typedef int (*tlog_tile_fn)(void *arg, const struct tlog_tile *t);

/* tlog.NewTiles: the tiles of height h a log publishes growing from
 * old_n to new_n records, in tlog's order. */
int tlog_new_tiles(int h, int64_t old_n, int64_t new_n, tlog_tile_fn fn,
                   void *arg);

/* The tiles tlog.TileHashReader for a tree of n records loads, each once
 * and in tlog's order, to read the hashes at the given stored indexes: the
 * tiles that recompute the tree hash, then each index's tile and the parent
 * tiles that authenticate it. tlog.TreeHash(m) reads
 * tlog_sub_tree_index(0, m); checking record id reads
 * tlog_stored_hash_index(0, id). 0, ERR_INVALID when an index is not in the
 * tree, ERR_NOMEM, or fn's code. Allocates a set of about 48 bytes per
 * tile, freed before it returns. */
int tlog_read_tiles(int h, int64_t n, const int64_t *indexes, size_t nidx,
                    tlog_tile_fn fn, void *arg);

/* Every hash tile of height h a go command may read to verify, offline,
 * lookups whose records are ids[] and whose signed trees are trees[] (any
 * order, repeats allowed): the client keeps one "latest" tree, the largest
 * it has seen, and reads tiles of that tree (tlog.TileHashReader) to check
 * a record and to check that an older tree it was shown is a prefix of it
 * (tlog.TreeHash). Lookups arrive in any order, so for every tree N among
 * trees[] this is the union of tlog_read_tiles(h, N, ...) for each record
 * id < N and for tlog_sub_tree_index(0, m) of each m <= N among trees[]:
 * what a bundle must carry. Each tile once, sorted by level, number and
 * width. About trees x (ids + 64 x trees) steps; memory grows with the
 * tiles found. 0, ERR_NOMEM or fn's code. */
int tlog_client_tiles(int h, const int64_t *trees, size_t ntrees,
                      const int64_t *ids, size_t nids, tlog_tile_fn fn,
                      void *arg);

/* tlog.ParseTree over a note's text ("go.sum database tree\nN\nHASH\n...").
 * 0 and *out, or ERR_INVALID. */
int tlog_parse_tree(const char *text, size_t len, struct tlog_tree *out);
/* tlog.ParseRecord: a lookup answer starts with "<id>\n<text>\n" (text
 * ends in a newline and holds no blank line). 0 with *id, the text's length
 * (from *text_off) and where the rest (the signed tree note) starts, or
 * ERR_INVALID. */
int tlog_parse_record(const char *msg, size_t len, int64_t *id,
                      size_t *text_off, size_t *text_len, size_t *rest_off);

#endif
