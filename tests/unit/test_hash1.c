/* Hash1 against golang.org/x/mod's own test vector, hostile zips (bombs,
 * lying sizes, CRC-32 mismatches, too many entries), and lookup parsing. */
#include "mod/hash1.h"

#include "core/err.h"
#include "mod/validate.h"
#include "test.h"
#include "tests/tools/zipcraft.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <zip.h>

#define PFX "example.com/m@v1.0.0/"

#define ASSERT_HAS(why, s)                                                     \
  do {                                                                         \
    if (!strstr((why).text, (s)))                                              \
      TEST_FAIL_("reason \"%s\" lacks \"%s\"", (why).text, (s));               \
  } while (0)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int tmp_zip(char path[32]) {
  snprintf(path, 32, "/tmp/test_hash1_XXXXXX");
  int fd = mkstemp(path);
  if (fd < 0)
    return -1;
  close(fd);
  return 0;
}

static int add(zip_t *z, const char *name, const char *text) {
  zip_source_t *src = zip_source_buffer(z, text, strlen(text), 0);
  return src && zip_file_add(z, name, src, ZIP_FL_ENC_UTF_8) >= 0;
}

/* x/mod zip/testdata/create/exclude_vendor.txt: the zip holds go.mod and
 * vendor/modules.txt (other vendor files are excluded when it is made), and
 * the file states hash=h1:5u93LDLN0Me+NGfZtRpA5mHxY8svfykHpq4CMSaBZyc= */
static void test_x_mod_vector(void) {
  char path[] = "/tmp/test_hash1_XXXXXX";
  int fd = mkstemp(path);
  ASSERT_TRUE(fd >= 0);
  close(fd);
  int err = 0;
  zip_t *z = zip_open(path, ZIP_TRUNCATE, &err);
  ASSERT_TRUE(z != NULL);
  ASSERT_TRUE(add(z, "example.com/m@v1.0.0/go.mod",
                  "module example.com/m\n\ngo 1.13\n"));
  ASSERT_TRUE(add(z, "example.com/m@v1.0.0/vendor/modules.txt",
                  "included\nsee comment in isVendoredPackage and "
                  "golang.org/issue/31562.\n"));
  ASSERT_EQ_INT(zip_close(z), 0);
  char h[HASH1_LEN];
  struct reason why = {{0}};
  ASSERT_EQ_INT(hash1_zip(path, h, &why), 0);
  ASSERT_EQ_STR(h, "h1:5u93LDLN0Me+NGfZtRpA5mHxY8svfykHpq4CMSaBZyc=");
  unlink(path);
}

static void test_not_a_zip(void) {
  char h[HASH1_LEN], path[32];
  struct reason why = {{0}};
  ASSERT_EQ_INT(tmp_zip(path), 0);
  FILE *f = fopen(path, "wb");
  ASSERT_TRUE(f != NULL);
  if (f) {
    fputs("<html>502 Bad Gateway</html>\n", f);
    fclose(f);
  }
  ASSERT_EQ_INT(hash1_zip(path, h, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "not a valid zip");
  memset(&why, 0, sizeof why);
  ASSERT_EQ_INT(truncate(path, 0), 0);
  ASSERT_EQ_INT(hash1_zip(path, h, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "empty");
  unlink(path);
  /* Not a regular file: our spool is broken, not the upstream's data. */
  ASSERT_EQ_INT(hash1_zip("/dev/null", h, &why), ERR_IO);
}

/* The hash is over contents: the same bytes deflated or stored hash the
 * same, whatever the compression. */
static void test_deflated_and_stored_agree(void) {
  char path[32], a[HASH1_LEN], b[HASH1_LEN];
  struct reason why = {{0}};
  static char zeros[100000];
  ASSERT_EQ_INT(tmp_zip(path), 0);
  struct zc z;
  ASSERT_EQ_INT(zc_open(&z, path), 0);
  zc_add_deflated_zeros(&z, PFX "zeros", sizeof zeros, sizeof zeros);
  ASSERT_EQ_INT(zc_close(&z), 0);
  ASSERT_EQ_INT(hash1_zip(path, a, &why), 0);
  ASSERT_EQ_INT(zc_open(&z, path), 0);
  zc_add(&z, PFX "zeros", 0, zc_crc32(zeros, sizeof zeros), sizeof zeros, zeros,
         sizeof zeros);
  ASSERT_EQ_INT(zc_close(&z), 0);
  ASSERT_EQ_INT(hash1_zip(path, b, &why), 0);
  ASSERT_EQ_STR(a, b);
  unlink(path);
}

/* 200 MiB of zeros deflated into 1.3 MB, true CRC-32, both headers
 * declaring 100 bytes: refused after 101 inflated bytes instead of being
 * inflated and hashed whole. */
static void test_bomb_refused_quickly(void) {
  char path[32], h[HASH1_LEN];
  struct reason why = {{0}};
  ASSERT_EQ_INT(tmp_zip(path), 0);
  struct zc z;
  ASSERT_EQ_INT(zc_open(&z, path), 0);
  zc_add(&z, PFX "go.mod", 0, zc_crc32("module m\n", 9), 9, "module m\n", 9);
  zc_add_deflated_zeros(&z, PFX "zeros", 200u << 20, 100);
  ASSERT_EQ_INT(zc_close(&z), 0);
  double t0 = now_s();
  ASSERT_EQ_INT(hash1_zip(path, h, &why), ERR_BAD_UPSTREAM_DATA);
  double took = now_s() - t0;
  ASSERT_HAS(why, "zip entry \"zeros\" inflates past its declared size of "
                  "100 bytes");
  if (took > 0.25)
    TEST_FAIL_("refusing the bomb took %.3f s", took);
  unlink(path);
}

/* A Stored entry with 1000 bytes of data declaring 100, and a CRC-32 that
 * does not match its content. */
static void test_lying_stored_entry_and_crc(void) {
  char path[32], h[HASH1_LEN], data[1000];
  struct reason why = {{0}};
  memset(data, 'x', sizeof data);
  ASSERT_EQ_INT(tmp_zip(path), 0);
  struct zc z;
  ASSERT_EQ_INT(zc_open(&z, path), 0);
  zc_add(&z, PFX "a.txt", 0, zc_crc32(data, sizeof data), 100, data,
         sizeof data);
  ASSERT_EQ_INT(zc_close(&z), 0);
  ASSERT_EQ_INT(hash1_zip(path, h, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "zip entry \"a.txt\" inflates past its declared size");

  ASSERT_EQ_INT(zc_open(&z, path), 0);
  zc_add(&z, PFX "a.txt", 0, zc_crc32(data, sizeof data) ^ 1, sizeof data, data,
         sizeof data);
  ASSERT_EQ_INT(zc_close(&z), 0);
  ASSERT_EQ_INT(hash1_zip(path, h, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_HAS(why, "zip entry \"a.txt\": CRC-32 mismatch");
  unlink(path);
}

/* 200,000 empty entries: refused before any per-entry allocation. */
static void test_too_many_entries(void) {
  char path[32], h[HASH1_LEN];
  struct reason why = {{0}};
  ASSERT_EQ_INT(tmp_zip(path), 0);
  struct zc z;
  ASSERT_EQ_INT(zc_open(&z, path), 0);
  for (int i = 0; i < 200000; i++) {
    char name[64];
    snprintf(name, sizeof name, PFX "d%03d/f%06d", i % 1000, i);
    zc_add(&z, name, 0, 0, 0, "", 0);
  }
  ASSERT_EQ_INT(zc_close(&z), 0);
  double t0 = now_s();
  ASSERT_EQ_INT(hash1_zip(path, h, &why), ERR_TOO_LARGE);
  double took = now_s() - t0;
  ASSERT_HAS(why, "upstream zip has 200000 entries (limit 100000)");
  if (took > 0.1)
    TEST_FAIL_("refusing 200,000 entries took %.3f s", took);
  unlink(path);
}

static void test_mod_hash_changes_with_content(void) {
  char a[HASH1_LEN], b[HASH1_LEN];
  hash1_mod("module a\n", 9, a);
  hash1_mod("module b\n", 9, b);
  ASSERT_EQ_INT(strncmp(a, "h1:", 3), 0);
  ASSERT_EQ_INT(strlen(a), HASH1_LEN - 1);
  ASSERT_TRUE(strcmp(a, b) != 0);
}

static void test_lookup_parsing(void) {
  const char *body = "1234\n"
                     "example.com/m v1.0.0 h1:zipzipzip=\n"
                     "example.com/m v1.0.0/go.mod h1:modmodmod=\n"
                     "\n"
                     "\xe2\x80\x94 sum.golang.org Az3grk...\n";
  char z[HASH1_LEN], m[HASH1_LEN];
  hash1_from_lookup(body, strlen(body), "example.com/m", "v1.0.0", z, m);
  ASSERT_EQ_STR(z, "h1:zipzipzip=");
  ASSERT_EQ_STR(m, "h1:modmodmod=");
  /* Another version or a prefix of the path must not match. */
  hash1_from_lookup(body, strlen(body), "example.com/m", "v1.0", z, m);
  ASSERT_EQ_STR(z, "");
  hash1_from_lookup(body, strlen(body), "example.com", "v1.0.0", z, m);
  ASSERT_EQ_STR(m, "");
}

int main(void) {
  RUN_TEST(test_x_mod_vector);
  RUN_TEST(test_not_a_zip);
  RUN_TEST(test_deflated_and_stored_agree);
  RUN_TEST(test_bomb_refused_quickly);
  RUN_TEST(test_lying_stored_entry_and_crc);
  RUN_TEST(test_too_many_entries);
  RUN_TEST(test_mod_hash_changes_with_content);
  RUN_TEST(test_lookup_parsing);
  return test_summary();
}
