/* libFuzzer target for request-path parsing (server/modpath.c) and the
 * semver helpers: whatever the bytes, the parser must answer 0, 400 or 404
 * with a clean reason, and anything it accepts must round-trip through the
 * escape functions and parse again to the same request. */
#include "core/buf.h"
#include "core/err.h"
#include "mod/modpath.h"
#include "mod/semver.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      abort();                                                                 \
  } while (0)

static void check_reason(const struct reason *why) {
  size_t n = strnlen(why->text, sizeof why->text);
  CHECK(n > 0 && n < sizeof why->text);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)why->text[i];
    CHECK(c >= 0x20 && c < 0x7f);
  }
}

static int no_upper(const char *s) {
  for (; *s; s++)
    if (*s >= 'A' && *s <= 'Z')
      return 0;
  return 1;
}

/* Percent-encodes s the way a strict client might, keeping '/' literal. */
static size_t encode(const char *s, char *out, size_t k, size_t cap) {
  static const char hex[] = "0123456789ABCDEF";
  for (; *s && k + 4 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
        strchr("/-._~", c)) {
      out[k++] = (char)c;
    } else {
      out[k++] = '%';
      out[k++] = hex[c >> 4];
      out[k++] = hex[c & 15];
    }
  }
  out[k] = '\0';
  return k;
}

static void check_accepted(const struct modreq *r) {
  char tmp[4 * (MODPATH_ESC_MAX + VERSION_ESC_MAX) + 64];
  CHECK(strlen(r->module) <= MODPATH_MAX);
  CHECK(strlen(r->version) <= VERSION_MAX);
  CHECK(modpath_check_path(r->module, NULL) == 0);
  CHECK(no_upper(r->module_esc) && no_upper(r->version_esc));
  CHECK(modpath_escape(r->module, tmp, sizeof tmp) == 0);
  CHECK(strcmp(tmp, r->module_esc) == 0);
  CHECK(modpath_unescape(r->module_esc, tmp, sizeof tmp) == 0);
  CHECK(strcmp(tmp, r->module) == 0);

  const char *suffix = NULL;
  switch (r->kind) {
  case MODREQ_LIST:
    suffix = "/@v/list";
    break;
  case MODREQ_LATEST:
    suffix = "/@latest";
    break;
  case MODREQ_INFO:
    suffix = ".info";
    break;
  case MODREQ_MOD:
    suffix = ".mod";
    break;
  case MODREQ_ZIP:
    suffix = ".zip";
    break;
  default:
    abort();
  }
  int versioned = r->kind != MODREQ_LIST && r->kind != MODREQ_LATEST;
  if (versioned) {
    CHECK(r->version[0] != '\0');
    CHECK(strchr(r->version, '/') == NULL && strchr(r->version, '!') == NULL);
    CHECK(modpath_escape_version(r->version, tmp, sizeof tmp) == 0);
    CHECK(strcmp(tmp, r->version_esc) == 0);
    CHECK(modpath_unescape(r->version_esc, tmp, sizeof tmp) == 0);
    CHECK(strcmp(tmp, r->version) == 0);
    CHECK(modpath_check_version(r->module, r->version, 0, NULL) == 0);
    if (r->kind != MODREQ_INFO)
      CHECK(r->canonical);
    if (r->canonical) {
      CHECK(semver_is_canonical(r->version));
      CHECK(modpath_check_version(r->module, r->version, 1, NULL) == 0);
    }
  } else {
    CHECK(r->version[0] == '\0' && r->version_esc[0] == '\0');
    CHECK(r->canonical == 0);
  }

  /* Rebuild the request from the escaped forms, encoded differently, and
   * parse it again: it must name the very same thing. */
  size_t k = encode("/", tmp, 0, sizeof tmp);
  k = encode(r->module_esc, tmp, k, sizeof tmp);
  if (versioned) {
    k = encode("/@v/", tmp, k, sizeof tmp);
    k = encode(r->version_esc, tmp, k, sizeof tmp);
  }
  CHECK(k + strlen(suffix) < sizeof tmp);
  memcpy(tmp + k, suffix, strlen(suffix) + 1);
  struct modreq *again = malloc(sizeof *again);
  CHECK(again);
  struct reason why = {{0}};
  CHECK(modpath_parse(tmp, again, &why) == 0);
  CHECK(again->kind == r->kind && again->canonical == r->canonical);
  CHECK(strcmp(again->module, r->module) == 0);
  CHECK(strcmp(again->module_esc, r->module_esc) == 0);
  CHECK(strcmp(again->version, r->version) == 0);
  CHECK(strcmp(again->version_esc, r->version_esc) == 0);
  free(again);
}

/* The input as one string: escape and unescape must invert each other. */
static void check_escapes(const char *s) {
  static const size_t cap = 2 * 4096 + 1;
  char *a = malloc(cap), *b = malloc(cap);
  CHECK(a && b);
  if (modpath_unescape(s, a, cap) == 0) {
    CHECK(no_upper(s) && strchr(a, '!') == NULL);
    if (modpath_escape(a, b, cap) == 0)
      CHECK(strcmp(b, s) == 0);
    if (modpath_escape_version(a, b, cap) == 0)
      CHECK(strcmp(b, s) == 0);
  }
  if (modpath_escape(s, a, cap) == 0) {
    CHECK(modpath_check_path(s, NULL) == 0);
    CHECK(modpath_unescape(a, b, cap) == 0 && strcmp(b, s) == 0);
  }
  if (modpath_escape_version(s, a, cap) == 0) {
    CHECK(modpath_check_version("x.y", s, 0, NULL) == 0);
    CHECK(modpath_unescape(a, b, cap) == 0 && strcmp(b, s) == 0);
  }
  free(a);
  free(b);
}

static void check_semver(const char *s, size_t n) {
  CHECK(!semver_is_pseudo(s) || semver_is_valid(s));
  CHECK(!semver_is_canonical(s) || semver_is_valid(s));
  CHECK(!semver_is_prerelease(s) || semver_is_valid(s));
  CHECK(semver_compare(s, s) == 0);
  char m[16];
  semver_major(s, m, sizeof m);
  CHECK(m[0] == '\0' || m[0] == 'v');
  /* Split the input into two versions to compare. */
  char *a = malloc(n / 2 + 1), *b = malloc(n - n / 2 + 1);
  CHECK(a && b);
  memcpy(a, s, n / 2);
  a[n / 2] = '\0';
  memcpy(b, s + n / 2, n - n / 2);
  b[n - n / 2] = '\0';
  CHECK(semver_compare(a, b) == -semver_compare(b, a));
  free(a);
  free(b);
}

/* The input as a list body: the merge must be sorted, canonical, unique. */
static void check_lists(const uint8_t *data, size_t size) {
  struct buf out;
  buf_init(&out, 1 << 20);
  CHECK(versions_merge((const char *)data, size, (const char *)data, size,
                       &out) == 0);
  /* No output line is longer than the input. */
  char *prev = malloc(size + 1), *v = malloc(size + 1);
  CHECK(prev && v);
  prev[0] = '\0';
  const char *p = buf_cstr(&out);
  while (*p) {
    const char *nl = strchr(p, '\n');
    CHECK(nl);
    size_t len = (size_t)(nl - p);
    const char *sp = memchr(p, ' ', len);
    size_t vn = sp ? (size_t)(sp - p) : len;
    CHECK(vn <= size);
    memcpy(v, p, vn);
    v[vn] = '\0';
    CHECK(semver_is_canonical(v) && !semver_is_pseudo(v));
    if (prev[0])
      CHECK(semver_compare(prev, v) <= 0 && strcmp(prev, v) != 0);
    memcpy(prev, v, vn + 1);
    p = nl + 1;
  }
  int rc = versions_latest(buf_cstr(&out), out.len, v, size + 1);
  CHECK(rc == 0 || rc == ERR_NOT_FOUND);
  CHECK((rc == 0) == (out.len > 0));
  if (rc == 0)
    CHECK(semver_is_canonical(v));
  free(prev);
  free(v);
  buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 8192)
    return 0;
  char *s = malloc(size + 1);
  CHECK(s);
  memcpy(s, data, size);
  s[size] = '\0';

  struct modreq *r = malloc(sizeof *r);
  CHECK(r);
  struct reason why = {{0}};
  int rc = modpath_parse(s, r, &why);
  CHECK(rc == 0 || rc == ERR_INVALID || rc == ERR_NOT_FOUND);
  if (rc) {
    check_reason(&why);
    CHECK(r->module[0] == '\0' && r->version[0] == '\0');
  } else {
    check_accepted(r);
  }
  free(r);

  size_t n = strlen(s);
  if (n <= 4096)
    check_escapes(s);
  check_semver(s, n);
  check_lists(data, size);
  free(s);
  return 0;
}
