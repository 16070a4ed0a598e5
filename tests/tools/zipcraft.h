/* Writes hostile zips for the unit tests, byte by byte: headers that declare
 * whatever the test asks (a lying size or CRC-32), deflated zero runs of any
 * length without holding them in memory, and directories of hundreds of
 * thousands of entries (zip64 end records past 65,535) in well under a
 * second, which libzip's writer cannot do. Header-only: static functions. */
#ifndef GOMIRROR_TESTS_TOOLS_ZIPCRAFT_H
#define GOMIRROR_TESTS_TOOLS_ZIPCRAFT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct zc_rec {
  char *name;
  uint16_t method;
  uint32_t crc, csize, usize;
  uint64_t offset;
};

struct zc {
  FILE *f;
  uint64_t off;
  struct zc_rec *recs;
  size_t n, cap;
  int failed;
};

/* CRC-32 (IEEE) of data, bit by bit: only for small test data. */
static uint32_t zc_crc32(const void *data, size_t len) {
  const unsigned char *p = data;
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < len; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++)
      c = c & 1 ? (c >> 1) ^ 0xedb88320u : c >> 1;
  }
  return ~c;
}

static uint32_t zc_gf2_times(const uint32_t *mat, uint32_t vec) {
  uint32_t sum = 0;
  for (; vec; vec >>= 1, mat++)
    if (vec & 1)
      sum ^= *mat;
  return sum;
}

static void zc_gf2_square(uint32_t *sq, const uint32_t *mat) {
  for (int i = 0; i < 32; i++)
    sq[i] = zc_gf2_times(mat, mat[i]);
}

/* CRC-32 of len zero bytes in O(log len), the way zlib's crc32_combine
 * shifts a CRC over a run of zeros. */
static uint32_t zc_crc32_zeros(uint64_t len) {
  uint32_t even[32], odd[32], crc = 0xffffffffu, row = 1;
  odd[0] = 0xedb88320u;
  for (int i = 1; i < 32; i++, row <<= 1)
    odd[i] = row;
  zc_gf2_square(even, odd); /* two zero bits */
  zc_gf2_square(odd, even); /* four */
  while (len) {
    zc_gf2_square(even, odd); /* one zero byte, then 4, 16, ... */
    if (len & 1)
      crc = zc_gf2_times(even, crc);
    len >>= 1;
    if (!len)
      break;
    zc_gf2_square(odd, even);
    if (len & 1)
      crc = zc_gf2_times(odd, crc);
    len >>= 1;
  }
  return ~crc;
}

static void zc_put(struct zc *z, const void *p, size_t n) {
  if (n && fwrite(p, 1, n, z->f) != n)
    z->failed = 1;
  z->off += n;
}

static void zc_le(struct zc *z, uint64_t v, int bytes) {
  unsigned char b[8];
  for (int i = 0; i < bytes; i++)
    b[i] = (unsigned char)(v >> (8 * i));
  zc_put(z, b, (size_t)bytes);
}

static int zc_open(struct zc *z, const char *path) {
  memset(z, 0, sizeof *z);
  z->f = fopen(path, "wb");
  return z->f ? 0 : -1;
}

static struct zc_rec *zc_rec_new(struct zc *z, const char *name,
                                 uint16_t method, uint32_t crc, uint32_t csize,
                                 uint32_t usize) {
  if (z->n == z->cap) {
    size_t cap = z->cap ? 2 * z->cap : 64;
    struct zc_rec *r = realloc(z->recs, cap * sizeof *r);
    if (!r) {
      z->failed = 1;
      return NULL;
    }
    z->recs = r;
    z->cap = cap;
  }
  struct zc_rec *r = &z->recs[z->n];
  r->name = strdup(name);
  if (!r->name) {
    z->failed = 1;
    return NULL;
  }
  z->n++;
  r->method = method;
  r->crc = crc;
  r->csize = csize;
  r->usize = usize;
  r->offset = z->off;
  return r;
}

static void zc_local_header(struct zc *z, const struct zc_rec *r) {
  zc_le(z, 0x04034b50, 4);
  zc_le(z, 20, 2); /* version needed */
  zc_le(z, 0, 2);  /* flags */
  zc_le(z, r->method, 2);
  zc_le(z, 0, 2);    /* time */
  zc_le(z, 0x21, 2); /* date: 1980-01-01 */
  zc_le(z, r->crc, 4);
  zc_le(z, r->csize, 4);
  zc_le(z, r->usize, 4);
  zc_le(z, strlen(r->name), 2);
  zc_le(z, 0, 2); /* extra */
  zc_put(z, r->name, strlen(r->name));
}

/* An entry whose headers declare crc and usize and whose data is the len
 * bytes at data, written as they are (compressed already if method is 8). */
static void zc_add(struct zc *z, const char *name, uint16_t method,
                   uint32_t crc, uint32_t usize, const void *data, size_t len) {
  struct zc_rec *r = zc_rec_new(z, name, method, crc, (uint32_t)len, usize);
  if (!r)
    return;
  zc_local_header(z, r);
  zc_put(z, data, len);
}

struct zc_bits {
  struct zc *z;
  uint64_t acc;
  int n;
  uint64_t written;
};

static void zc_bits_put(struct zc_bits *b, uint32_t v, int n) {
  b->acc |= (uint64_t)v << b->n;
  b->n += n;
  while (b->n >= 8) {
    unsigned char c = (unsigned char)b->acc;
    zc_put(b->z, &c, 1);
    b->written++;
    b->acc >>= 8;
    b->n -= 8;
  }
}

/* Huffman codes go most significant bit first. */
static void zc_bits_code(struct zc_bits *b, uint32_t code, int n) {
  uint32_t r = 0;
  for (int i = 0; i < n; i++)
    r |= ((code >> i) & 1) << (n - 1 - i);
  zc_bits_put(b, r, n);
}

/* An entry of zeros (zeros >= 1) deflated as one fixed-Huffman block (a
 * literal 0, then copies of 258 bytes at distance 1: 13 bits each, so
 * 200 MiB take 1.3 MB), with its true CRC-32 and the declared size
 * usize. */
static void zc_add_deflated_zeros(struct zc *z, const char *name,
                                  uint64_t zeros, uint32_t usize) {
  struct zc_rec *r =
      zc_rec_new(z, name, 8, zc_crc32_zeros(zeros), 0 /* below */, usize);
  if (!r)
    return;
  size_t idx = z->n - 1;
  zc_local_header(z, r);
  struct zc_bits b = {z, 0, 0, 0};
  zc_bits_put(&b, 1, 1);         /* BFINAL */
  zc_bits_put(&b, 1, 2);         /* BTYPE 01: fixed Huffman */
  zc_bits_code(&b, 0x30 + 0, 8); /* literal 0 */
  uint64_t left = zeros - 1;
  for (; left >= 258; left -= 258) {
    zc_bits_code(&b, 0xc0 + 5, 8); /* length 258: symbol 285 */
    zc_bits_code(&b, 0, 5);        /* distance 1 */
  }
  for (; left; left--)
    zc_bits_code(&b, 0x30 + 0, 8);
  zc_bits_code(&b, 0, 7); /* end of block */
  if (b.n)
    zc_bits_put(&b, 0, 8 - b.n);
  /* The compressed size is known only now: patch the local header. */
  struct zc_rec *rec = &z->recs[idx];
  rec->csize = (uint32_t)b.written;
  long here = ftell(z->f);
  unsigned char cs[4] = {
      (unsigned char)b.written, (unsigned char)(b.written >> 8),
      (unsigned char)(b.written >> 16), (unsigned char)(b.written >> 24)};
  if (fseek(z->f, (long)rec->offset + 18, SEEK_SET) != 0 ||
      fwrite(cs, 1, 4, z->f) != 4 || fseek(z->f, here, SEEK_SET) != 0)
    z->failed = 1;
}

/* Writes the central directory (zip64 end records past 65,535 entries, as
 * Python's zipfile does), closes the file and frees z. 0 or -1. */
static int zc_close(struct zc *z) {
  uint64_t cd_off = z->off;
  for (size_t i = 0; i < z->n; i++) {
    const struct zc_rec *r = &z->recs[i];
    zc_le(z, 0x02014b50, 4);
    zc_le(z, 20, 2); /* version made by */
    zc_le(z, 20, 2); /* version needed */
    zc_le(z, 0, 2);
    zc_le(z, r->method, 2);
    zc_le(z, 0, 2);
    zc_le(z, 0x21, 2);
    zc_le(z, r->crc, 4);
    zc_le(z, r->csize, 4);
    zc_le(z, r->usize, 4);
    zc_le(z, strlen(r->name), 2);
    zc_le(z, 0, 2); /* extra */
    zc_le(z, 0, 2); /* comment */
    zc_le(z, 0, 2); /* disk */
    zc_le(z, 0, 2); /* internal attributes */
    zc_le(z, 0, 4); /* external attributes */
    zc_le(z, r->offset, 4);
    zc_put(z, r->name, strlen(r->name));
  }
  uint64_t cd_size = z->off - cd_off;
  if (z->n > 0xffff) {
    uint64_t eocd64 = z->off;
    zc_le(z, 0x06064b50, 4);
    zc_le(z, 44, 8); /* size of the rest of the record */
    zc_le(z, 45, 2);
    zc_le(z, 45, 2);
    zc_le(z, 0, 4);
    zc_le(z, 0, 4);
    zc_le(z, z->n, 8);
    zc_le(z, z->n, 8);
    zc_le(z, cd_size, 8);
    zc_le(z, cd_off, 8);
    zc_le(z, 0x07064b50, 4); /* locator */
    zc_le(z, 0, 4);
    zc_le(z, eocd64, 8);
    zc_le(z, 1, 4);
  }
  uint64_t n16 = z->n > 0xffff ? 0xffff : z->n;
  zc_le(z, 0x06054b50, 4);
  zc_le(z, 0, 2);
  zc_le(z, 0, 2);
  zc_le(z, n16, 2);
  zc_le(z, n16, 2);
  zc_le(z, cd_size, 4);
  zc_le(z, cd_off, 4);
  zc_le(z, 0, 2); /* comment */
  int rc = fclose(z->f) == 0 && !z->failed ? 0 : -1;
  for (size_t i = 0; i < z->n; i++)
    free(z->recs[i].name);
  free(z->recs);
  memset(z, 0, sizeof *z);
  return rc;
}

#endif
