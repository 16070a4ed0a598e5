/* Unit tests for server/validate.c. Test zips are built at run time with
 * libzip in a temporary directory (no binary fixtures); a few cases patch
 * the built bytes to declare sizes or names libzip would not write. */
#include "mod/validate.h"

#include "core/err.h"
#include "test.h"
#include "tests/tools/zipcraft.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zip.h>

#define MOD "example.com/Mod"
#define VER "v1.2.3"
#define PFX MOD "@" VER "/"

struct ent {
  const char *name; /* ends in '/' for a directory entry */
  const char *data; /* NULL means empty */
  int method;       /* ZIP_CM_STORE (0) unless set */
};

struct tmp {
  char dir[64];
  char path[128];
};

static int tmp_init(struct tmp *t) {
  snprintf(t->dir, sizeof t->dir, "/tmp/test_validate.XXXXXX");
  if (!mkdtemp(t->dir))
    return -1;
  snprintf(t->path, sizeof t->path, "%s/m.zip", t->dir);
  return 0;
}

static void tmp_cleanup(struct tmp *t) {
  unlink(t->path);
  rmdir(t->dir);
}

/* Writes a zip holding ents to path; names are stored as given (raw). */
static int make_zip(const char *path, const struct ent *ents, size_t n) {
  int err = 0;
  unlink(path);
  zip_t *za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
  if (!za)
    return -1;
  for (size_t i = 0; i < n; i++) {
    const char *d = ents[i].data ? ents[i].data : "";
    zip_source_t *src = zip_source_buffer(za, d, strlen(d), 0);
    if (!src)
      goto fail;
    zip_int64_t idx = zip_file_add(za, ents[i].name, src, ZIP_FL_ENC_RAW);
    if (idx < 0) {
      zip_source_free(src);
      goto fail;
    }
    if (zip_set_file_compression(za, (zip_uint64_t)idx, ents[i].method, 0))
      goto fail;
  }
  return zip_close(za) == 0 ? 0 : -1;
fail:
  zip_discard(za);
  return -1;
}

static int write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f)
    return -1;
  size_t w = len ? fwrite(data, 1, len, f) : 0;
  return fclose(f) == 0 && w == len ? 0 : -1;
}

static unsigned char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  unsigned char *b = NULL;
  size_t cap = 0, n = 0, got;
  do {
    if (n == cap) {
      unsigned char *nb = realloc(b, cap = cap ? 2 * cap : 1 << 16);
      if (!nb) {
        free(b);
        fclose(f);
        return NULL;
      }
      b = nb;
    }
    got = fread(b + n, 1, cap - n, f);
    n += got;
  } while (got > 0);
  fclose(f);
  *len = n;
  return b;
}

static void put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}

static unsigned get16(const unsigned char *p) {
  return (unsigned)p[0] | (unsigned)p[1] << 8;
}

/* Offsets of 32-bit fields in the local and the central header. */
#define FIELD_CRC 14, 16
#define FIELD_SIZE 22, 24

/* In both the local and the central header of the entry called name, sets
 * the 32-bit field at local_off / central_off (if set_field) and/or renames
 * it to new_name (same length). Returns how many headers were patched. */
static int patch_headers(const char *path, const char *name, int set_field,
                         size_t local_off, size_t central_off, uint32_t v,
                         const char *new_name) {
  size_t len, nlen = strlen(name);
  unsigned char *b = read_file(path, &len);
  int patched = 0;
  if (!b)
    return 0;
  for (size_t i = 0; i + 46 <= len; i++) {
    int local = memcmp(b + i, "PK\3\4", 4) == 0;
    int central = memcmp(b + i, "PK\1\2", 4) == 0;
    if (!local && !central)
      continue;
    size_t name_off = i + (local ? 30 : 46);
    unsigned hn = get16(b + i + (local ? 26 : 28));
    if (hn != nlen || name_off + nlen > len ||
        memcmp(b + name_off, name, nlen) != 0)
      continue;
    if (set_field)
      put32(b + i + (local ? local_off : central_off), v);
    if (new_name)
      memcpy(b + name_off, new_name, nlen);
    patched++;
  }
  if (write_file(path, b, len) != 0)
    patched = 0;
  free(b);
  return patched;
}

/* Sets the declared uncompressed size (if size_or_0) and/or renames. */
static int patch_zip(const char *path, const char *name, uint32_t size_or_0,
                     const char *new_name) {
  return patch_headers(path, name, size_or_0 != 0, FIELD_SIZE, size_or_0,
                       new_name);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Builds ents into a fresh zip and validates it against MOD@VER. */
static int check_ents(const struct ent *ents, size_t n, struct reason *why) {
  struct tmp t;
  if (tmp_init(&t) != 0)
    return 1;
  memset(why, 0, sizeof *why);
  int rc = make_zip(t.path, ents, n) == 0
               ? validate_zip(t.path, MOD, VER, why)
               : 1; /* not an ERR_*: the test fails visibly */
  tmp_cleanup(&t);
  return rc;
}

#define CHECK(ents, why) check_ents((ents), sizeof(ents) / sizeof(ents)[0], why)
#define ASSERT_HAS(why, s)                                                     \
  do {                                                                         \
    if (!strstr((why).text, (s)))                                              \
      TEST_FAIL_("reason \"%s\" lacks \"%s\"", (why).text, (s));               \
  } while (0)

/* ---- zip ---- */

static void zip_good(void) {
  struct reason why;
  const struct ent ents[] = {
      {PFX "go.mod", "module example.com/Mod\n", ZIP_CM_DEFLATE},
      {PFX "LICENSE", "MIT", 0},
      {PFX "mod.go", "package mod\n", ZIP_CM_DEFLATE},
      {PFX "internal/x/x.go", "package x\n", 0},
      {PFX "testdata/weird name (1)+[x]{y}~!#$%&,=@^_.txt", "ok", 0},
      {PFX ".github/workflows/ci.yml", "on: push", 0},
      {PFX "-dash/file", "ok", 0},
      {PFX "données/\xc3\xa9t\xc3\xa9.go", "package donnees", 0},
      {PFX "vendor/modules.txt", "", 0},
      {PFX "sub/go.mod.txt", "not a go.mod", 0},
  };
  ASSERT_EQ_INT(CHECK(ents, &why), 0);
  ASSERT_EQ_STR(why.text, "");
}

static void zip_directory_entries(void) {
  struct reason why;
  const struct ent ents[] = {
      {PFX, NULL, 0},        /* the root entry itself: skipped, like Go */
      {PFX "sub/", NULL, 0}, /* directories, before and after their files */
      {PFX "sub/a.go", "package sub", 0},
      {PFX "sub/b/", NULL, 0},
      {PFX "empty/", NULL, 0},
      {PFX "go.mod/", NULL, 0}, /* a directory called go.mod is no go.mod */
  };
  ASSERT_EQ_INT(CHECK(ents, &why), 0);
  ASSERT_EQ_STR(why.text, "");

  /* Go allows the same directory (and the root entry) twice; libzip will
   * not write that, so rename entries afterwards. */
  struct tmp t;
  ASSERT_EQ_INT(tmp_init(&t), 0);
  const struct ent twice[] = {
      {PFX "sub/", NULL, 0},
      {PFX "sub/a.go", "a", 0},
      {PFX "sud/", NULL, 0},
      {PFX, NULL, 0},
      {"Xxample.com/Mod@v1.2.3/", NULL, 0},
  };
  ASSERT_EQ_INT(make_zip(t.path, twice, 5), 0);
  ASSERT_EQ_INT(patch_zip(t.path, PFX "sud/", 0, PFX "sub/"), 2);
  ASSERT_EQ_INT(patch_zip(t.path, "Xxample.com/Mod@v1.2.3/", 0, PFX), 2);
  ASSERT_EQ_INT(validate_zip(t.path, MOD, VER, &why), 0);
  ASSERT_EQ_STR(why.text, "");
  tmp_cleanup(&t);

  const struct ent both[] = {
      {PFX "sub", "a file", 0},
      {PFX "sub/", NULL, 0},
  };
  ASSERT_EQ_INT(CHECK(both, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "both a file and a directory");

  /* A file whose name is a parent of a later file. */
  const struct ent parent[] = {
      {PFX "a", "a file", 0},
      {PFX "a/b.go", "package a", 0},
  };
  ASSERT_EQ_INT(CHECK(parent, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "zip entry \"a/b.go\": entry \"a\" is both");

  const struct ent dotdir[] = {{PFX "./", NULL, 0}};
  ASSERT_EQ_INT(CHECK(dotdir, &why), ERR_BAD_UPSTREAM_DATA);
}

static void zip_wrong_prefix(void) {
  struct reason why;
  const struct ent ents[] = {
      {PFX "go.mod", "module example.com/Mod\n", 0},
      {"example.com/other@" VER "/x.go", "package x", 0},
  };
  ASSERT_EQ_INT(CHECK(ents, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "example.com/other@v1.2.3/x.go");
  ASSERT_HAS(why, "is not under \"example.com/Mod@v1.2.3/\"");

  /* The prefix uses the decoded path, never the case-encoded one. */
  const struct ent escaped[] = {{"example.com/!mod@" VER "/x.go", "x", 0}};
  ASSERT_EQ_INT(CHECK(escaped, &why), ERR_BAD_UPSTREAM_DATA);

  const struct ent noslash[] = {{MOD "@" VER, "x", 0}};
  ASSERT_EQ_INT(CHECK(noslash, &why), ERR_BAD_UPSTREAM_DATA);

  const struct ent bare[] = {{"go.mod", "module example.com/Mod\n", 0}};
  ASSERT_EQ_INT(CHECK(bare, &why), ERR_BAD_UPSTREAM_DATA);
}

static void zip_wrong_version(void) {
  struct reason why;
  const struct ent ents[] = {
      {MOD "@v1.2.4/go.mod", "module example.com/Mod\n", 0},
  };
  ASSERT_EQ_INT(CHECK(ents, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "v1.2.4");
}

static void zip_case_fold_collision(void) {
  struct reason why;
  const struct ent ents[] = {
      {PFX "README", "a", 0},
      {PFX "readme", "b", 0},
  };
  ASSERT_EQ_INT(CHECK(ents, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "zip entry \"readme\": case-insensitive file name "
                  "collision: \"README\" and \"readme\"");

  /* Colliding parent directories, one of them implied by a file. */
  const struct ent dirs[] = {
      {PFX "src/a.go", "a", 0},
      {PFX "SRC/b.go", "b", 0},
  };
  ASSERT_EQ_INT(CHECK(dirs, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "\"src\" and \"SRC\"");

  /* Unicode folding as Go does it: U+017F LONG S folds to s, the Kelvin
   * sign (U+212A) to k, and accented capitals to their small letters. */
  const struct ent longs[] = {
      {PFX "src/a.go", "a", 0},
      {PFX "\xc5\xbfrc/b.go", "b", 0},
  };
  ASSERT_EQ_INT(CHECK(longs, &why), ERR_BAD_UPSTREAM_DATA);
  const struct ent kelvin[] = {
      {PFX "\xe2\x84\xaa.txt", "a", 0},
      {PFX "k.txt", "b", 0},
  };
  ASSERT_EQ_INT(CHECK(kelvin, &why), ERR_BAD_UPSTREAM_DATA);
  const struct ent accents[] = {
      {PFX "\xc3\xa9t\xc3\xa9.go", "a", 0}, /* été */
      {PFX "\xc3\x89T\xc3\x89.go", "b", 0}, /* ÉTÉ */
  };
  ASSERT_EQ_INT(CHECK(accents, &why), ERR_BAD_UPSTREAM_DATA);
  const struct ent sigma[] = {
      {PFX "\xcf\x83.txt", "a", 0}, /* σ */
      {PFX "\xcf\x82.txt", "b", 0}, /* ς */
  };
  ASSERT_EQ_INT(CHECK(sigma, &why), ERR_BAD_UPSTREAM_DATA);

  /* Different letters stay different. */
  const struct ent distinct[] = {
      {PFX "\xc3\xa9.go", "a", 0}, /* é */
      {PFX "e.go", "b", 0},
      {PFX "\xc3\xa8.go", "c", 0}, /* è */
  };
  ASSERT_EQ_INT(CHECK(distinct, &why), 0);
}

static void zip_duplicate_file(void) {
  struct tmp t;
  struct reason why = {{0}};
  ASSERT_EQ_INT(tmp_init(&t), 0);
  const struct ent ents[] = {{PFX "a.go", "a", 0}, {PFX "b.go", "b", 0}};
  ASSERT_EQ_INT(make_zip(t.path, ents, 2), 0);
  /* libzip refuses to write two equal names, so rename b.go afterwards. */
  ASSERT_EQ_INT(patch_zip(t.path, PFX "b.go", 0, PFX "a.go"), 2);
  ASSERT_EQ_INT(validate_zip(t.path, MOD, VER, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "multiple entries for file \"a.go\"");
  tmp_cleanup(&t);
}

static void zip_unclean_paths(void) {
  struct reason why;
  const struct ent up[] = {{PFX "../evil.go", "x", 0}};
  ASSERT_EQ_INT(CHECK(up, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "zip entry \"../evil.go\"");
  const struct ent mid[] = {{PFX "a/../../evil.go", "x", 0}};
  ASSERT_EQ_INT(CHECK(mid, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "not clean");
  const struct ent dot[] = {{PFX "./a.go", "x", 0}};
  ASSERT_EQ_INT(CHECK(dot, &why), ERR_BAD_UPSTREAM_DATA);
  const struct ent dbl[] = {{PFX "a//b.go", "x", 0}};
  ASSERT_EQ_INT(CHECK(dbl, &why), ERR_BAD_UPSTREAM_DATA);
  const struct ent abs[] = {{PFX "/etc/passwd", "x", 0}};
  ASSERT_EQ_INT(CHECK(abs, &why), ERR_BAD_UPSTREAM_DATA);
  const struct ent dots[] = {{PFX "...", "x", 0}};
  ASSERT_EQ_INT(CHECK(dots, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "invalid path element");
  const struct ent trail[] = {{PFX "a./b.go", "x", 0}};
  ASSERT_EQ_INT(CHECK(trail, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "trailing dot");
}

static void zip_bad_chars(void) {
  static const char *const bad[] = {
      PFX "a\\b.go",
      PFX "a:b.go",
      PFX "a*b.go",
      PFX "a\"b",
      PFX "a'b",
      PFX "a<b",
      PFX "a|b",
      PFX "a?b",
      PFX "a`b",
      PFX "a\x01z",
      PFX "a\nb",
      PFX "a\x7f",
      PFX "CON",
      PFX "sub/con.txt",
      PFX "Lpt9.tar.gz",
      PFX "aux",
      PFX "\xe2\x98\x83.go", /* U+2603 snowman: no letter */
      PFX "\xff.go",         /* invalid UTF-8 */
      PFX "\xc0\xaf.go",     /* overlong '/' */
      PFX "\xed\xa0\x80",    /* surrogate */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct reason why;
    const struct ent e[] = {{bad[i], "x", 0}};
    int rc = CHECK(e, &why);
    if (rc != ERR_BAD_UPSTREAM_DATA)
      TEST_FAIL_("entry %zu (%s) gave %d", i, bad[i], rc);
    ASSERT_HAS(why, "malformed file path");
  }
  /* Reasons escape what they quote and stay one line. */
  struct reason why;
  const struct ent e[] = {{PFX "a\nb", "x", 0}};
  CHECK(e, &why);
  ASSERT_HAS(why, "a\\x0ab");
  /* Allowed: COM0 is no Windows name, CONSOLE is longer than CON. */
  const struct ent ok[] = {{PFX "COM0", "x", 0},
                           {PFX "CONSOLE.txt", "x", 0},
                           {PFX "con_file", "x", 0}};
  ASSERT_EQ_INT(CHECK(ok, &why), 0);
}

static void zip_long_name_truncated(void) {
  char name[600];
  struct reason why;
  snprintf(name, sizeof name, PFX "%0500d\\", 7);
  const struct ent e[] = {{name, "x", 0}};
  ASSERT_EQ_INT(CHECK(e, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "...");
  ASSERT_TRUE(strlen(why.text) < sizeof why.text);
  ASSERT_TRUE(strchr(why.text, '\n') == NULL);
}

/* Deep names: a collision found far down, and no quadratic blow-up on a
 * 64 KiB name of 20000 elements. */
static void zip_deep_paths(void) {
  enum { LEVELS = 20000 };
  size_t cap = sizeof PFX + 2 * LEVELS + 16;
  char *a = malloc(cap), *b = malloc(cap);
  ASSERT_TRUE(a && b);
  if (!a || !b) {
    free(a);
    free(b);
    return;
  }
  size_t n = strlen(PFX);
  memcpy(a, PFX, n);
  for (int i = 0; i < LEVELS; i++)
    memcpy(a + n + 2 * (size_t)i, "d/", 2);
  n += 2 * LEVELS;
  memcpy(a + n, "x.go", 5);
  memcpy(b, a, n + 5);
  b[n + 0] = 'X'; /* same folded name, other spelling */

  struct reason why;
  const struct ent one[] = {{a, "x", 0}};
  ASSERT_EQ_INT(CHECK(one, &why), 0);
  const struct ent two[] = {{a, "x", 0}, {b, "y", 0}};
  ASSERT_EQ_INT(CHECK(two, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "case-insensitive file name collision");
  ASSERT_HAS(why, "...");
  free(a);
  free(b);
}

static void zip_nested_go_mod(void) {
  struct reason why;
  const struct ent ents[] = {
      {PFX "go.mod", "module example.com/Mod\n", 0},
      {PFX "sub/go.mod", "module example.com/Mod/sub\n", 0},
  };
  ASSERT_EQ_INT(CHECK(ents, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "zip entry \"sub/go.mod\": go.mod file not in module root");
  const struct ent upper[] = {{PFX "sub/GO.MOD", "module x\n", 0}};
  ASSERT_EQ_INT(CHECK(upper, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "not in module root");
  const struct ent rootcase[] = {{PFX "Go.Mod", "module x\n", 0}};
  ASSERT_EQ_INT(CHECK(rootcase, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "lowercase");
}

static void zip_compression(void) {
  struct reason why;
  const struct ent deflate[] = {{PFX "a.go", "package a", ZIP_CM_DEFLATE}};
  ASSERT_EQ_INT(CHECK(deflate, &why), 0);
  if (!zip_compression_method_supported(ZIP_CM_BZIP2, 1)) {
    fprintf(stderr, "  (libzip cannot write bzip2 here; case skipped)\n");
    return;
  }
  const struct ent bz[] = {
      {PFX "go.mod", "module example.com/Mod\n", 0},
      {PFX "a.go", "package a", ZIP_CM_BZIP2},
  };
  ASSERT_EQ_INT(CHECK(bz, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "zip entry \"a.go\": unsupported compression method 12");
  /* Even a directory entry is opened (and so decompressed) by HashZip. */
  const struct ent bzdir[] = {{PFX "d/", NULL, ZIP_CM_BZIP2}};
  ASSERT_EQ_INT(CHECK(bzdir, &why), ERR_BAD_UPSTREAM_DATA);
}

static void zip_declared_sizes(void) {
  struct tmp t;
  struct reason why = {{0}};
  ASSERT_EQ_INT(tmp_init(&t), 0);
  const struct ent ents[] = {
      {PFX "go.mod", "module example.com/Mod\n", 0},
      {PFX "LICENSE", "MIT", 0},
      {PFX "a.bin", "a", 0},
      {PFX "b.bin", "b", 0},
  };

  /* A declared size within the limits passes the declared checks, and the
   * read then finds the content shorter than declared; one byte over the
   * limit is refused from the headers, before anything is inflated. */
  ASSERT_EQ_INT(make_zip(t.path, ents, 4), 0);
  ASSERT_EQ_INT(patch_zip(t.path, PFX "go.mod", VALIDATE_MOD_MAX, NULL), 2);
  ASSERT_EQ_INT(validate_zip(t.path, MOD, VER, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "zip entry \"go.mod\" holds 23 bytes, fewer than its "
                  "declared 16777216");
  ASSERT_EQ_INT(patch_zip(t.path, PFX "go.mod", VALIDATE_MOD_MAX + 1, NULL), 2);
  ASSERT_EQ_INT(validate_zip(t.path, MOD, VER, &why), ERR_TOO_LARGE);
  ASSERT_HAS(why, "go.mod");

  ASSERT_EQ_INT(make_zip(t.path, ents, 4), 0);
  ASSERT_EQ_INT(
      patch_zip(t.path, PFX "LICENSE", VALIDATE_LICENSE_MAX + 1, NULL), 2);
  ASSERT_EQ_INT(validate_zip(t.path, MOD, VER, &why), ERR_TOO_LARGE);
  ASSERT_HAS(why, "LICENSE");

  /* Each file alone fits; together they pass the 500 MiB total. */
  ASSERT_EQ_INT(make_zip(t.path, ents, 4), 0);
  ASSERT_EQ_INT(patch_zip(t.path, PFX "a.bin", 300u << 20, NULL), 2);
  ASSERT_EQ_INT(validate_zip(t.path, MOD, VER, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "zip entry \"a.bin\" holds 1 bytes, fewer than");
  ASSERT_EQ_INT(patch_zip(t.path, PFX "b.bin", 300u << 20, NULL), 2);
  ASSERT_EQ_INT(validate_zip(t.path, MOD, VER, &why), ERR_TOO_LARGE);
  ASSERT_HAS(why, "zip entry \"b.bin\": total uncompressed size");
  tmp_cleanup(&t);
}

static void zip_not_a_zip(void) {
  struct tmp t;
  struct reason why = {{0}};
  ASSERT_EQ_INT(tmp_init(&t), 0);
  const char junk[] = "<html>502 Bad Gateway</html>\n";
  ASSERT_EQ_INT(write_file(t.path, junk, sizeof junk - 1), 0);
  ASSERT_EQ_INT(validate_zip(t.path, MOD, VER, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "not a valid zip");

  /* A truncated zip: the central directory is gone. */
  const struct ent ents[] = {{PFX "a.go", "package a", 0}};
  ASSERT_EQ_INT(make_zip(t.path, ents, 1), 0);
  ASSERT_EQ_INT(truncate(t.path, 40), 0);
  ASSERT_EQ_INT(validate_zip(t.path, MOD, VER, &why), ERR_BAD_UPSTREAM_DATA);

  /* A bare end-of-central-directory record: a valid zip with no entries,
   * which Go accepts too. */
  unsigned char eocd[22] = {'P', 'K', 5, 6};
  ASSERT_EQ_INT(write_file(t.path, eocd, sizeof eocd), 0);
  ASSERT_EQ_INT(validate_zip(t.path, MOD, VER, &why), 0);
  tmp_cleanup(&t);
}

static void zip_empty_and_missing(void) {
  struct tmp t;
  struct reason why = {{0}};
  ASSERT_EQ_INT(tmp_init(&t), 0);
  ASSERT_EQ_INT(write_file(t.path, "", 0), 0);
  ASSERT_EQ_INT(validate_zip(t.path, MOD, VER, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "empty");
  /* Our own spool going wrong is an I/O error, not the upstream's fault. */
  ASSERT_EQ_INT(validate_zip(t.dir, MOD, VER, &why), ERR_IO);
  tmp_cleanup(&t);
  ASSERT_EQ_INT(validate_zip(t.path, MOD, VER, &why), ERR_IO);
  ASSERT_EQ_INT(validate_zip(NULL, MOD, VER, &why), ERR_INVALID);
}

static void zip_many_entries(void) {
  /* Enough entries to notice quadratic work. */
  enum { N = 20000 };
  struct tmp t;
  struct reason why = {{0}};
  ASSERT_EQ_INT(tmp_init(&t), 0);
  int err = 0;
  zip_t *za = zip_open(t.path, ZIP_CREATE | ZIP_TRUNCATE, &err);
  ASSERT_TRUE(za != NULL);
  if (!za)
    return;
  for (int i = 0; i < N; i++) {
    char name[96];
    snprintf(name, sizeof name, PFX "d%03d/f%05d.go", i % 100, i);
    zip_source_t *src = zip_source_buffer(za, "", 0, 0);
    if (!src || zip_file_add(za, name, src, 0) < 0) {
      TEST_FAIL_("zip_file_add %d", i);
      break;
    }
  }
  ASSERT_EQ_INT(zip_close(za), 0);
  ASSERT_EQ_INT(validate_zip(t.path, MOD, VER, &why), 0);
  ASSERT_EQ_STR(why.text, "");
  tmp_cleanup(&t);
}

/* ---- zip: hostile contents (issue 10) ---- */

/* A deflated entry of 200 MiB of zeros (1.3 MB on disk, true CRC-32) whose
 * local and central headers both declare 100 bytes: refused after 101
 * inflated bytes, not 200 MiB. */
static void zip_bomb_lying_size(void) {
  struct tmp t;
  struct reason why = {{0}};
  ASSERT_EQ_INT(tmp_init(&t), 0);
  struct zc z;
  ASSERT_EQ_INT(zc_open(&z, t.path), 0);
  zc_add(&z, PFX "go.mod", 0, zc_crc32("module m\n", 9), 9, "module m\n", 9);
  zc_add_deflated_zeros(&z, PFX "zeros", 200u << 20, 100);
  ASSERT_EQ_INT(zc_close(&z), 0);
  double t0 = now_s();
  ASSERT_EQ_INT(validate_zip(t.path, MOD, VER, &why), ERR_BAD_UPSTREAM_DATA);
  double took = now_s() - t0;
  ASSERT_HAS(why, "zip entry \"zeros\" inflates past its declared size of "
                  "100 bytes");
  if (took > 0.25)
    TEST_FAIL_("refusing the bomb took %.3f s", took);
  /* The same entry declared honestly is read whole and passes. */
  ASSERT_EQ_INT(zc_open(&z, t.path), 0);
  zc_add_deflated_zeros(&z, PFX "zeros", 1u << 20, 1u << 20);
  ASSERT_EQ_INT(zc_close(&z), 0);
  ASSERT_EQ_INT(validate_zip(t.path, MOD, VER, &why), 0);
  tmp_cleanup(&t);
}

/* A Stored entry whose data (1000 bytes, and its compressed size) is longer
 * than its declared uncompressed size. */
static void zip_stored_longer_than_declared(void) {
  struct tmp t;
  struct reason why = {{0}};
  ASSERT_EQ_INT(tmp_init(&t), 0);
  char data[1000];
  memset(data, 'x', sizeof data);
  struct zc z;
  ASSERT_EQ_INT(zc_open(&z, t.path), 0);
  zc_add(&z, PFX "a.txt", 0, zc_crc32(data, sizeof data), 100, data,
         sizeof data);
  ASSERT_EQ_INT(zc_close(&z), 0);
  ASSERT_EQ_INT(validate_zip(t.path, MOD, VER, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "zip entry \"a.txt\" inflates past its declared size of "
                  "100 bytes");
  tmp_cleanup(&t);
}

/* libzip 1.7 accepts a deflated entry that ends before its declared size;
 * archive/zip does not (io.ErrUnexpectedEOF). */
static void zip_shorter_than_declared(void) {
  struct tmp t;
  struct reason why = {{0}};
  ASSERT_EQ_INT(tmp_init(&t), 0);
  struct zc z;
  ASSERT_EQ_INT(zc_open(&z, t.path), 0);
  zc_add_deflated_zeros(&z, PFX "a.bin", 10, 1000);
  ASSERT_EQ_INT(zc_close(&z), 0);
  ASSERT_EQ_INT(validate_zip(t.path, MOD, VER, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "zip entry \"a.bin\" holds 10 bytes, fewer than its "
                  "declared 1000");
  tmp_cleanup(&t);
}

static void zip_crc_mismatch(void) {
  struct tmp t;
  struct reason why = {{0}};
  ASSERT_EQ_INT(tmp_init(&t), 0);
  const struct ent ents[] = {
      {PFX "go.mod", "module example.com/Mod\n", ZIP_CM_DEFLATE},
      {PFX "a.go", "package a\n", ZIP_CM_STORE},
  };
  for (int i = 0; i < 2; i++) {
    memset(&why, 0, sizeof why);
    ASSERT_EQ_INT(make_zip(t.path, ents, 2), 0);
    ASSERT_EQ_INT(validate_zip(t.path, MOD, VER, &why), 0);
    ASSERT_EQ_INT(
        patch_headers(t.path, ents[i].name, 1, FIELD_CRC, 0x12345678u, NULL),
        2);
    ASSERT_EQ_INT(validate_zip(t.path, MOD, VER, &why), ERR_BAD_UPSTREAM_DATA);
    ASSERT_HAS(why, i == 0 ? "zip entry \"go.mod\": CRC-32 mismatch"
                           : "zip entry \"a.go\": CRC-32 mismatch");
  }
  tmp_cleanup(&t);
}

/* go.mod of exactly 16 MiB of real content passes; one byte more is
 * refused from the headers. */
static void zip_go_mod_limit_true_content(void) {
  struct tmp t;
  struct reason why = {{0}};
  ASSERT_EQ_INT(tmp_init(&t), 0);
  struct zc z;
  ASSERT_EQ_INT(zc_open(&z, t.path), 0);
  zc_add_deflated_zeros(&z, PFX "go.mod", VALIDATE_MOD_MAX, VALIDATE_MOD_MAX);
  ASSERT_EQ_INT(zc_close(&z), 0);
  ASSERT_EQ_INT(validate_zip(t.path, MOD, VER, &why), 0);
  ASSERT_EQ_INT(zc_open(&z, t.path), 0);
  zc_add_deflated_zeros(&z, PFX "go.mod", VALIDATE_MOD_MAX + 1,
                        VALIDATE_MOD_MAX + 1);
  ASSERT_EQ_INT(zc_close(&z), 0);
  ASSERT_EQ_INT(validate_zip(t.path, MOD, VER, &why), ERR_TOO_LARGE);
  tmp_cleanup(&t);
}

struct collected {
  char data[64];
  size_t len;
};

static int collect(void *arg, const void *data, size_t len) {
  struct collected *c = arg;
  if (c->len + len > sizeof c->data)
    return ERR_TOO_LARGE;
  memcpy(c->data + c->len, data, len);
  c->len += len;
  return 0;
}

/* validate_zip_read hands over exactly the content and never goes past the
 * budget, the bytes left of VALIDATE_UNZIP_MAX across a zip. */
static void zip_read_budget(void) {
  struct tmp t;
  struct reason why = {{0}};
  ASSERT_EQ_INT(tmp_init(&t), 0);
  const struct ent ents[] = {{PFX "a.go", "package a\n", ZIP_CM_DEFLATE}};
  ASSERT_EQ_INT(make_zip(t.path, ents, 1), 0);
  struct zip *za = NULL;
  ASSERT_EQ_INT(validate_zip_open(t.path, &za, &why), 0);
  if (!za)
    return;
  struct collected c = {{0}, 0};
  uint64_t budget = 9;
  ASSERT_EQ_INT(validate_zip_read(za, 0, &budget, collect, &c, &why),
                ERR_TOO_LARGE);
  ASSERT_HAS(why, "zip entry \"a.go\": total uncompressed size");
  ASSERT_EQ_INT(c.len, 0);
  ASSERT_EQ_INT(budget, 9);
  budget = 10;
  ASSERT_EQ_INT(validate_zip_read(za, 0, &budget, collect, &c, &why), 0);
  ASSERT_EQ_INT(budget, 0);
  ASSERT_EQ_INT(c.len, 10);
  ASSERT_TRUE(memcmp(c.data, "package a\n", 10) == 0);
  zip_discard(za);
  tmp_cleanup(&t);
}

/* 200,000 empty entries (28 MB) are refused from the end record, before
 * libzip or the collision check allocate anything per entry. */
static void zip_too_many_entries(void) {
  struct tmp t;
  struct reason why = {{0}};
  ASSERT_EQ_INT(tmp_init(&t), 0);
  struct zc z;
  ASSERT_EQ_INT(zc_open(&z, t.path), 0);
  for (int i = 0; i < 200000; i++) {
    char name[96];
    snprintf(name, sizeof name, PFX "d%03d/f%06d", i % 1000, i);
    zc_add(&z, name, 0, 0, 0, "", 0);
  }
  ASSERT_EQ_INT(zc_close(&z), 0);
  double t0 = now_s();
  ASSERT_EQ_INT(validate_zip(t.path, MOD, VER, &why), ERR_TOO_LARGE);
  double took = now_s() - t0;
  ASSERT_HAS(why, "upstream zip has 200000 entries (limit 100000)");
  if (took > 0.1)
    TEST_FAIL_("refusing 200,000 entries took %.3f s", took);
  tmp_cleanup(&t);
}

/* Writes only end records (zip64 ones too) claiming entries and a central
 * directory of cd_size bytes at offset 0, after a hole of cd_size bytes. */
static int forge_end(const char *path, uint64_t entries, uint64_t cd_size) {
  struct zc z;
  if (zc_open(&z, path) != 0)
    return -1;
  if (cd_size && fseek(z.f, (long)cd_size, SEEK_SET) != 0)
    z.failed = 1;
  z.off = cd_size;
  uint64_t at64 = z.off;
  zc_le(&z, 0x06064b50, 4);
  zc_le(&z, 44, 8);
  zc_le(&z, 45, 2);
  zc_le(&z, 45, 2);
  zc_le(&z, 0, 4);
  zc_le(&z, 0, 4);
  zc_le(&z, entries, 8);
  zc_le(&z, entries, 8);
  zc_le(&z, cd_size, 8);
  zc_le(&z, 0, 8);
  zc_le(&z, 0x07064b50, 4);
  zc_le(&z, 0, 4);
  zc_le(&z, at64, 8);
  zc_le(&z, 1, 4);
  zc_le(&z, 0x06054b50, 4);
  zc_le(&z, 0, 4);
  zc_le(&z, 0xffff, 2);
  zc_le(&z, 0xffff, 2);
  zc_le(&z, 0xffffffff, 4);
  zc_le(&z, 0xffffffff, 4);
  zc_le(&z, 0, 2);
  /* Not zc_close: it would add a directory and end record of its own. */
  return fclose(z.f) == 0 && !z.failed ? 0 : -1;
}

/* The limits apply to what the end records claim, at their boundaries: a
 * claim at the limit passes them (libzip then finds no such directory). */
static void zip_end_record_claims(void) {
  struct tmp t;
  struct reason why = {{0}};
  ASSERT_EQ_INT(tmp_init(&t), 0);
  ASSERT_EQ_INT(forge_end(t.path, VALIDATE_ZIP_ENTRIES_MAX + 1, 0), 0);
  ASSERT_EQ_INT(validate_zip(t.path, MOD, VER, &why), ERR_TOO_LARGE);
  ASSERT_HAS(why, "upstream zip has 100001 entries (limit 100000)");
  memset(&why, 0, sizeof why);
  ASSERT_EQ_INT(forge_end(t.path, VALIDATE_ZIP_ENTRIES_MAX, 0), 0);
  ASSERT_EQ_INT(validate_zip(t.path, MOD, VER, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "not a valid zip");
  /* A central directory over 64 MiB (a sparse file: no disk used). */
  ASSERT_EQ_INT(forge_end(t.path, 1, VALIDATE_ZIP_CDIR_MAX + 1), 0);
  ASSERT_EQ_INT(validate_zip(t.path, MOD, VER, &why), ERR_TOO_LARGE);
  ASSERT_HAS(why, "central directory is 67108865 bytes (limit 67108864)");
  memset(&why, 0, sizeof why);
  ASSERT_EQ_INT(forge_end(t.path, 1, VALIDATE_ZIP_CDIR_MAX), 0);
  ASSERT_EQ_INT(validate_zip(t.path, MOD, VER, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "not a valid zip");
  tmp_cleanup(&t);
}

/* ---- info ---- */

static int info(const char *body, const char *want, int exact, char *out,
                size_t cap, struct reason *why) {
  memset(why, 0, sizeof *why);
  return validate_info(body, strlen(body), want, exact, out, cap, why);
}

static void info_good(void) {
  char v[64];
  struct reason why;
  ASSERT_EQ_INT(
      info("{\"Version\":\"v1.0.0\",\"Time\":\"2019-06-11T20:05:19Z\"}",
           "v1.0.0", 1, v, sizeof v, &why),
      0);
  ASSERT_EQ_STR(v, "v1.0.0");
  ASSERT_EQ_INT(info(" {\"Version\": \"v1.0.0\", \"Time\": "
                     "\"2019-06-11T20:05:19.123456789+02:00\"}\r\n\t ",
                     "v1.0.0", 1, v, sizeof v, &why),
                0);
  ASSERT_EQ_INT(info("{\"Time\":\"2020-02-29T23:59:59-00:30\","
                     "\"Version\":\"v0.0.0-20200229235959-abcdefabcdef\"}",
                     NULL, 0, v, sizeof v, &why),
                0);
  ASSERT_EQ_STR(v, "v0.0.0-20200229235959-abcdefabcdef");
  /* version_out is optional. */
  ASSERT_EQ_INT(info("{\"Version\":\"v1.0.0\"}", "v1.0.0", 1, NULL, 0, &why),
                0);
}

static void info_no_time(void) {
  char v[16];
  struct reason why;
  ASSERT_EQ_INT(
      info("{\"Version\":\"v1.0.0\"}", "v1.0.0", 1, v, sizeof v, &why), 0);
  ASSERT_EQ_STR(v, "v1.0.0");
}

static void info_extra_fields(void) {
  char v[16];
  struct reason why;
  ASSERT_EQ_INT(
      info("{\"Version\":\"v1.0.0\",\"Time\":\"2019-06-11T20:05:19Z\","
           "\"Origin\":{\"VCS\":\"git\",\"URL\":\"https://x\",\"Hash\":"
           "\"abc\",\"Ref\":\"refs/tags/v1.0.0\"},\"Name\":\"abc\","
           "\"Short\":\"abc\",\"Extra\":[1,2.5,null,true]}",
           "v1.0.0", 1, v, sizeof v, &why),
      0);
  ASSERT_EQ_STR(v, "v1.0.0");
}

static void info_garbage(void) {
  static const char *const bad[] = {
      "",
      "<html>502</html>",
      "{",
      "{\"Version\":\"v1.0.0\"",
      "{\"Version\":\"v1.0.0\",}",
      "{'Version':'v1.0.0'}",
      "{Version:\"v1.0.0\"}",
      "{\"Version\":\"v1.0.0\" /* c */}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct reason why;
    int rc = info(bad[i], "v1.0.0", 1, NULL, 0, &why);
    if (rc != ERR_BAD_UPSTREAM_DATA)
      TEST_FAIL_("body %zu (%s) gave %d", i, bad[i], rc);
    ASSERT_TRUE(why.text[0] != '\0');
  }
  /* NUL bytes, invalid UTF-8. */
  struct reason why;
  const char nul[] = "{\"Version\":\"v1.0.0\"}\0";
  ASSERT_EQ_INT(validate_info(nul, sizeof nul - 1, "v1.0.0", 1, NULL, 0, &why),
                ERR_BAD_UPSTREAM_DATA);
  ASSERT_EQ_INT(info("{\"Version\":\"v1.0.0\",\"X\":\"\xff\"}", "v1.0.0", 1,
                     NULL, 0, &why),
                ERR_BAD_UPSTREAM_DATA);
}

static void info_other_version(void) {
  struct reason why;
  ASSERT_EQ_INT(info("{\"Version\":\"v1.0.1\"}", "v1.0.0", 1, NULL, 0, &why),
                ERR_BAD_UPSTREAM_DATA);
  ASSERT_EQ_STR(why.text, "upstream .info names version v1.0.1, not v1.0.0");
  /* Byte for byte: no prefix match, no case folding. */
  ASSERT_EQ_INT(
      info("{\"Version\":\"v1.0.0\"}", "v1.0.0-pre", 1, NULL, 0, &why),
      ERR_BAD_UPSTREAM_DATA);
  ASSERT_EQ_INT(
      info("{\"Version\":\"v1.0.0+incompatible\"}", "v1.0.0", 1, NULL, 0, &why),
      ERR_BAD_UPSTREAM_DATA);
  /* A query (branch name) accepts whatever version it resolved to. */
  char v[32];
  ASSERT_EQ_INT(
      info("{\"Version\":\"v1.0.1\"}", "master", 0, v, sizeof v, &why), 0);
  ASSERT_EQ_STR(v, "v1.0.1");
  /* ...but it must fit the caller's buffer. */
  ASSERT_EQ_INT(info("{\"Version\":\"v1.0.1\"}", NULL, 0, v, 6, &why),
                ERR_BAD_UPSTREAM_DATA);
}

static void info_trailing_garbage(void) {
  struct reason why;
  ASSERT_EQ_INT(info("{\"Version\":\"v1.0.0\"}x", "v1.0.0", 1, NULL, 0, &why),
                ERR_BAD_UPSTREAM_DATA);
  ASSERT_EQ_INT(info("{\"Version\":\"v1.0.0\"}{\"Version\":\"v1.0.0\"}",
                     "v1.0.0", 1, NULL, 0, &why),
                ERR_BAD_UPSTREAM_DATA);
  ASSERT_EQ_INT(
      info("{\"Version\":\"v1.0.0\"}\n\n", "v1.0.0", 1, NULL, 0, &why), 0);
}

static void info_not_object(void) {
  static const char *const bad[] = {
      "[{\"Version\":\"v1.0.0\"}]", "\"v1.0.0\"", "null", "true", "1", "{}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct reason why;
    int rc = info(bad[i], "v1.0.0", 1, NULL, 0, &why);
    if (rc != ERR_BAD_UPSTREAM_DATA)
      TEST_FAIL_("body %zu (%s) gave %d", i, bad[i], rc);
  }
}

static void info_version_not_string(void) {
  static const char *const bad[] = {
      "{\"Version\":1}",
      "{\"Version\":null}",
      "{\"Version\":[\"v1.0.0\"]}",
      "{\"Version\":\"\"}",
      "{\"Version\":\"v1.0.0\\u0000\"}",
      "{\"Version\":\"v1.0.0\\n\"}",
      /* Go's decoder would read these keys as Version: refuse look-alikes. */
      "{\"version\":\"v1.0.0\"}",
      "{\"Version\":\"v1.0.0\",\"VERSION\":\"v9.9.9\"}",
      "{\"Ver\xc5\xbfion\":\"v1.0.0\"}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct reason why;
    int rc = info(bad[i], "v1.0.0", 1, NULL, 0, &why);
    if (rc != ERR_BAD_UPSTREAM_DATA)
      TEST_FAIL_("body %zu (%s) gave %d", i, bad[i], rc);
  }
}

static void info_bad_time(void) {
  static const char *const bad[] = {
      "yesterday",
      "2019-06-11",
      "2019-06-11 20:05:19Z",
      "2019-06-11t20:05:19z",
      "2019-06-11T20:05:19",
      "2019-13-11T20:05:19Z",
      "2019-02-29T20:05:19Z",
      "1900-02-29T20:05:19Z",
      "2019-06-31T20:05:19Z",
      "2019-06-11T24:00:00Z",
      "2016-12-31T23:59:60Z",
      "2019-06-11T20:05:19.Z",
      "2019-06-11T20:05:19+0200",
      "2019-06-11T20:05:19+24:00",
      "2019-06-11T20:05:19Zjunk",
      "19-06-11T20:05:19Z",
  };
  char body[128];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct reason why;
    snprintf(body, sizeof body, "{\"Version\":\"v1.0.0\",\"Time\":\"%s\"}",
             bad[i]);
    int rc = info(body, "v1.0.0", 1, NULL, 0, &why);
    if (rc != ERR_BAD_UPSTREAM_DATA)
      TEST_FAIL_("time %zu (%s) gave %d", i, bad[i], rc);
  }
  struct reason why;
  ASSERT_EQ_INT(info("{\"Version\":\"v1.0.0\",\"Time\":null}", "v1.0.0", 1,
                     NULL, 0, &why),
                ERR_BAD_UPSTREAM_DATA);
  ASSERT_EQ_INT(info("{\"Version\":\"v1.0.0\",\"Time\":1560283519}", "v1.0.0",
                     1, NULL, 0, &why),
                ERR_BAD_UPSTREAM_DATA);
  ASSERT_EQ_INT(info("{\"Version\":\"v1.0.0\",\"time\":\"x\"}", "v1.0.0", 1,
                     NULL, 0, &why),
                ERR_BAD_UPSTREAM_DATA);
  ASSERT_EQ_INT(
      info("{\"Version\":\"v1.0.0\",\"Time\":\"2000-02-29T00:00:00Z\"}",
           "v1.0.0", 1, NULL, 0, &why),
      0);
}

static void info_too_large(void) {
  size_t n = VALIDATE_INFO_MAX + 1;
  char *body = malloc(n);
  ASSERT_TRUE(body != NULL);
  if (!body)
    return;
  /* A valid object padded with spaces past the cap. */
  memset(body, ' ', n);
  memcpy(body, "{\"Version\":\"v1.0.0\"}", 20);
  struct reason why = {{0}};
  ASSERT_EQ_INT(validate_info(body, n, "v1.0.0", 1, NULL, 0, &why),
                ERR_TOO_LARGE);
  ASSERT_EQ_INT(validate_info(body, n - 1, "v1.0.0", 1, NULL, 0, &why), 0);
  free(body);
}

/* ---- mod ---- */

/* validate_mod(body, module) as a one-liner for the tables below. */
static int mod_check(const char *body, const char *module, struct reason *why) {
  return validate_mod(body, strlen(body), module, why);
}

static void mod_good(void) {
  struct reason why = {{0}};
  /* What the go command accepts: the directive anywhere, after comments
   * and blank lines, quoted, in a block, with CRLF, without a final
   * newline; and its own go.mod for a module without one. */
  static const char *const ok[] = {
      "module example.com/m\n\ngo 1.19\n",
      "module example.com/m\n", /* cmd/go LegacyGoMod */
      "module example.com/m",
      "// Package m.\n\n// Deprecated: use n.\nmodule example.com/m\n",
      "go 1.19\n\nrequire example.com/x v1.0.0\n\nmodule example.com/m\n",
      "module \"example.com/m\"\n",
      "module \"example.com/\\x6d\"\n",
      "module \"example.com/\\u006d\"\n",
      "module (\n\texample.com/m\n)\n",
      "module ( // why not\n\n\t// the path\n\texample.com/m // it\n)\n",
      "module example.com/m\r\n\r\ngo 1.19\r\n",
      "  module\texample.com/m   // trailing comment\n",
      "module example.com/m\nfrobnicate (\n\tanything goes [ ] { } ,\n)\n",
      "module example.com/m\nretract ()\n",
      "module example.com/m\n// caf\xc3\xa9 \xff\n",
  };
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
    int rc = mod_check(ok[i], "example.com/m", &why);
    if (rc)
      TEST_FAIL_("ok[%zu] refused: %s", i, why.text);
  }
  ASSERT_EQ_INT(
      mod_check("module example.com/m/v2\n", "example.com/m/v2", &why), 0);
  ASSERT_EQ_INT(
      mod_check("module gopkg.in/yaml.v3\n", "gopkg.in/yaml.v3", &why), 0);
  ASSERT_EQ_INT(mod_check("module example.com/Upper/Lib\n",
                          "example.com/Upper/Lib", &why),
                0);
}

/* A fork that kept its original module path is served (the go command
 * accepts it in a replace directive) when the major versions agree. */
static void mod_fork(void) {
  struct reason why = {{0}};
  ASSERT_EQ_INT(
      mod_check("module example.com/orig\n", "example.com/fork", &why), 0);
  ASSERT_EQ_INT(
      mod_check("module example.com/orig/v2\n", "example.com/fork/v2", &why),
      0);
  ASSERT_EQ_INT(
      mod_check("module gopkg.in/orig.v1\n", "example.com/fork", &why), 0);
  ASSERT_EQ_INT(
      mod_check("module gopkg.in/orig.v2\n", "example.com/fork", &why),
      0); /* golang.org/issue/34254, kept by cmd/go */
  ASSERT_EQ_INT(
      mod_check("module example.com/orig/v2\n", "example.com/fork", &why),
      ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "declares module \"example.com/orig/v2\"");
  ASSERT_EQ_INT(
      mod_check("module example.com/orig\n", "example.com/fork/v2", &why),
      ERR_BAD_UPSTREAM_DATA);
  ASSERT_EQ_INT(
      mod_check("module example.com/orig/v3\n", "example.com/fork/v2", &why),
      ERR_BAD_UPSTREAM_DATA);
  ASSERT_EQ_INT(mod_check("module example.com/m/v1\n", "example.com/m", &why),
                ERR_BAD_UPSTREAM_DATA);
}

static void mod_refused(void) {
  struct reason why = {{0}};
  static const struct {
    const char *body, *want;
  } bad[] = {
      {"", "no module line"},
      {"go 1.19\n", "no module line"},
      {"// module example.com/m\n", "no module line"},
      {"<!DOCTYPE html>\n<html><body>Log in to the Wi-Fi</body></html>\n",
       "no module line"},
      {"{\"Version\":\"v1.0.0\"}\n", "no module line"},
      {"require (\n\tmodule example.com/m\n)\n", "no module line"},
      {"module ()\n", "no module line"},
      {"module example.com/m (\n\texample.com/m\n)\n", "no module line"},
      {"modules example.com/m\n", "no module line"},
      {"module\n", "usage: module module/path"},
      {"module example.com/m v1.0.0\n", "usage: module module/path"},
      {"module example.com/m\nmodule example.com/m\n", "repeated module"},
      {"module (\n\texample.com/m\n\texample.com/m\n)\n", "repeated module"},
      {"module \"\"\n", "missing module path"},
      {"module 'example.com/m'\n", "cannot contain a quote"},
      {"module `example.com/m`\n", "cannot contain a quote"},
      {"module example.com/\"m\n", "cannot contain a quote"},
      {"module \"example.com/\\q\"\n", "invalid quoted"},
      {"module \"example.com/\\'m\"\n", "invalid quoted"},
      {"module \"example.com/\\ud800\"\n", "invalid quoted"},
      {"module \"example.com/m\n\"\n", "line 1: unexpected newline"},
      {"module \"example.com/m", "line 1: unexpected EOF in string"},
      {"module example.com/m\n/* c */\n", "line 2: mod files must use //"},
      {"module example.com/m/*c*/\n", "mod files must use //"},
      {"module example.com/m\n\v\n", "line 2: unexpected input character"},
      {"\xef\xbb\xbfmodule example.com/m\n", "unexpected input character"},
      {"module example.com/m\xc2\xa0\n", "unexpected input character"},
      {"module (\n\texample.com/m\n", "unterminated block"},
      {"module (\n\texample.com/m\n) x\n", "expected newline after"},
      {"module example.com/other/v2\n", "declares module"},
      {"module \"example.com/m\" x\n", "usage: module module/path"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    memset(&why, 0, sizeof why);
    int rc = mod_check(bad[i].body, "example.com/m", &why);
    if (rc != ERR_BAD_UPSTREAM_DATA)
      TEST_FAIL_("bad[%zu] gave %d, want ERR_BAD_UPSTREAM_DATA", i, rc);
    else if (!strstr(why.text, bad[i].want))
      TEST_FAIL_("bad[%zu]: reason \"%s\" lacks \"%s\"", i, why.text,
                 bad[i].want);
    else if (!strstr(why.text, "example.com/m"))
      TEST_FAIL_("bad[%zu]: reason \"%s\" does not name the module", i,
                 why.text);
  }
}

static void mod_nul(void) {
  struct reason why = {{0}};
  const char m[] = "module example.com/Mod\n\0go 1.19\n";
  ASSERT_EQ_INT(validate_mod(m, sizeof m - 1, "example.com/Mod", &why),
                ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "offset 23");
}

static void mod_oversize(void) {
  size_t n = VALIDATE_MOD_MAX + 1;
  char *m = malloc(n);
  ASSERT_TRUE(m != NULL);
  if (!m)
    return;
  memset(m, '\n', n);
  memcpy(m, "module example.com/m", 20);
  struct reason why = {{0}};
  ASSERT_EQ_INT(validate_mod(m, n, "example.com/m", &why), ERR_TOO_LARGE);
  ASSERT_EQ_INT(validate_mod(m, n - 1, "example.com/m", &why), 0);
  free(m);
}

int main(void) {
  RUN_TEST(zip_good);
  RUN_TEST(zip_directory_entries);
  RUN_TEST(zip_wrong_prefix);
  RUN_TEST(zip_wrong_version);
  RUN_TEST(zip_case_fold_collision);
  RUN_TEST(zip_duplicate_file);
  RUN_TEST(zip_unclean_paths);
  RUN_TEST(zip_bad_chars);
  RUN_TEST(zip_long_name_truncated);
  RUN_TEST(zip_deep_paths);
  RUN_TEST(zip_nested_go_mod);
  RUN_TEST(zip_compression);
  RUN_TEST(zip_declared_sizes);
  RUN_TEST(zip_not_a_zip);
  RUN_TEST(zip_empty_and_missing);
  RUN_TEST(zip_many_entries);
  RUN_TEST(zip_bomb_lying_size);
  RUN_TEST(zip_stored_longer_than_declared);
  RUN_TEST(zip_shorter_than_declared);
  RUN_TEST(zip_crc_mismatch);
  RUN_TEST(zip_go_mod_limit_true_content);
  RUN_TEST(zip_read_budget);
  RUN_TEST(zip_too_many_entries);
  RUN_TEST(zip_end_record_claims);
  RUN_TEST(info_good);
  RUN_TEST(info_no_time);
  RUN_TEST(info_extra_fields);
  RUN_TEST(info_garbage);
  RUN_TEST(info_other_version);
  RUN_TEST(info_trailing_garbage);
  RUN_TEST(info_not_object);
  RUN_TEST(info_version_not_string);
  RUN_TEST(info_bad_time);
  RUN_TEST(info_too_large);
  RUN_TEST(mod_good);
  RUN_TEST(mod_fork);
  RUN_TEST(mod_refused);
  RUN_TEST(mod_nul);
  RUN_TEST(mod_oversize);
  return test_summary();
}
