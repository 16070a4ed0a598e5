/* The hashing side of the checksum database's transparency log
 * (golang.org/x/mod/sumdb/tlog, tlog.go and tile.go's TileHashReader): RFC
 * 6962 record and node hashes, the hashes a new record adds, tree hashes,
 * and reading stored hashes through tiles that are each authenticated up to
 * a signed tree hash, which is how a record's inclusion and a newer tree's
 * consistency with an older one are proven. The index and tile arithmetic
 * is tlog.h's. No I/O: tiles and stored hashes come through callbacks. */
#ifndef GOMIRROR_MOD_TLOGPROOF_H
#define GOMIRROR_MOD_TLOGPROOF_H

#include "tlog.h"

#include <stddef.h>
#include <stdint.h>

struct reason;

typedef unsigned char tlog_hash[TLOG_HASH_SIZE];

/* One tile's bytes: 0 with *data (malloc'd; the caller frees it) and
 * *len, or an ERR_* code (with why) that the caller returns. */
typedef int (*tlog_tile_reader)(void *arg, const struct tlog_tile *t,
                                unsigned char **data, size_t *len,
                                struct reason *why);
/* Stored hashes by index, from a store the caller trusts (its own log). */
typedef int (*tlog_hash_reader)(void *arg, const int64_t *indexes, size_t n,
                                tlog_hash *out, struct reason *why);

/* tlog.RecordHash: SHA-256(0x00 || data). */
void tlog_record_hash(const void *data, size_t len, tlog_hash out);
/* tlog.NodeHash: SHA-256(0x01 || left || right). */
void tlog_node_hash(const tlog_hash left, const tlog_hash right,
                    tlog_hash out);

/* tlog.HashFromTile: the stored hash at index from tile t's data (which
 * must hold t.w hashes). 0 or ERR_INVALID. */
int tlog_hash_from_tile(const struct tlog_tile *t, const unsigned char *data,
                        size_t len, int64_t index, tlog_hash out);

/* tlog.TileHashReader(tree, tiles).ReadHashes: the stored hashes at
 * indexes (each < tlog_stored_hash_index(0, tree->n)), read from tiles of
 * height h; every tile read is checked against its parent up to tree's
 * hash, so each hash returned is proven part of that signed tree. 0;
 * ERR_BAD_UPSTREAM_DATA ("inconsistent tile", a tile of the wrong size);
 * ERR_INVALID (an index not in the tree); or the reader's code. */
int tlog_read_hashes(const struct tlog_tree *tree, int h,
                     const int64_t *indexes, size_t n, tlog_hash *out,
                     tlog_tile_reader rd, void *arg, struct reason *why);

/* Record id with text is in tree: its leaf hash read through tree's tiles
 * equals tlog_record_hash(text) (x/mod's ProveRecord + CheckRecord). 0 or
 * ERR_BAD_UPSTREAM_DATA with why. */
int tlog_check_record(const struct tlog_tree *tree, int h, int64_t id,
                      const void *text, size_t len, tlog_tile_reader rd,
                      void *arg, struct reason *why);

/* old is a prefix of tree (old->n <= tree->n): the hash of tree's first
 * old->n records, read through tree's tiles, equals old's hash (what
 * ProveTree + CheckTree establish). 0 or ERR_BAD_UPSTREAM_DATA ("forked"). */
int tlog_check_tree(const struct tlog_tree *tree, int h,
                    const struct tlog_tree *old, tlog_tile_reader rd,
                    void *arg, struct reason *why);

/* Writer side. tlog.StoredHashesForRecordHash: the 1 + ctz(n+1) hashes
 * record n adds (its own, then the subtrees it completes), reading the
 * older ones through rd. *count is set; out must hold 64. */
int tlog_stored_hashes(int64_t n, const tlog_hash record_hash,
                       tlog_hash_reader rd, void *arg, tlog_hash *out,
                       size_t *count, struct reason *why);
/* tlog.TreeHash over stored hashes read through rd (0 records: zeros). */
int tlog_tree_hash(int64_t n, tlog_hash_reader rd, void *arg, tlog_hash out,
                   struct reason *why);

/* tlog.FormatTree: "go.sum database tree\n<n>\n<base64 hash>\n". */
int tlog_format_tree(const struct tlog_tree *t, char *out, size_t cap);

#endif
