/* Hash1 against golang.org/x/mod's own test vector, and lookup parsing. */
#include "server/hash1.h"

#include "core/err.h"
#include "test.h"

#include <stdlib.h>
#include <unistd.h>
#include <zip.h>

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
  char h[HASH1_LEN];
  struct reason why = {{0}};
  ASSERT_EQ_INT(hash1_zip("/dev/null", h, &why), ERR_BAD_UPSTREAM_DATA);
  ASSERT_TRUE(why.text[0] != '\0');
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
  RUN_TEST(test_mod_hash_changes_with_content);
  RUN_TEST(test_lookup_parsing);
  return test_summary();
}
