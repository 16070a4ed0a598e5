/* libFuzzer target for mod/gosum.c: whatever the bytes, gosum_parse answers
 * 0, ERR_INVALID or ERR_TOO_LARGE with a clean one-line reason; every
 * version it lists is valid, canonical and listed once; parsing the same
 * text again adds nothing; and the list written back as go.sum lines parses
 * to the same list. Seeds: corpus/gosum/, words: gosum.dict. */
#include "core/buf.h"
#include "core/err.h"
#include "mod/gosum.h"
#include "mod/modpath.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      abort();                                                                 \
  } while (0)

/* Small, so the cap is met too. */
#define FUZZ_MAX 64

static void check_reason(const struct reason *why) {
  size_t n = strnlen(why->text, sizeof why->text);
  CHECK(n > 0 && n < sizeof why->text);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)why->text[i];
    CHECK(c >= 0x20 && c < 0x7f);
  }
  CHECK(strncmp(why->text, "fuzz:", 5) == 0);
}

static void check_list(const struct gosum_list *l) {
  CHECK(l->n <= FUZZ_MAX);
  for (size_t i = 0; i < l->n; i++) {
    const struct gosum_entry *e = &l->v[i];
    CHECK(e->want_zip == 0 || e->want_zip == 1);
    CHECK(strlen(e->module) <= MODPATH_MAX &&
          strlen(e->version) <= VERSION_MAX);
    CHECK(modpath_check_version(e->module, e->version, 1, NULL) == 0);
    char esc[MODPATH_ESC_MAX + 1], vesc[VERSION_ESC_MAX + 1];
    CHECK(modpath_escape(e->module, esc, sizeof esc) == 0);
    CHECK(modpath_escape_version(e->version, vesc, sizeof vesc) == 0);
    for (size_t j = 0; j < i; j++)
      CHECK(strcmp(l->v[j].module, e->module) != 0 ||
            strcmp(l->v[j].version, e->version) != 0);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  struct gosum_list l;
  gosum_init(&l, FUZZ_MAX);
  struct reason why = {{0}};
  int rc = gosum_parse(&l, "fuzz", text, size, &why);
  CHECK(rc == 0 || rc == ERR_INVALID || rc == ERR_TOO_LARGE || rc == ERR_NOMEM);
  if (rc)
    check_reason(&why);
  check_list(&l);
  if (rc == 0) {
    /* Idempotent: the same text again lists nothing new. */
    size_t n = l.n;
    CHECK(gosum_parse(&l, "fuzz", text, size, &why) == 0 && l.n == n);
    /* Written back as go.sum lines, the list parses to itself. */
    struct buf out;
    buf_init(&out, 1u << 20);
    for (size_t i = 0; i < l.n; i++)
      CHECK(buf_appendf(&out, "%s %s%s h1:AAAA=\n", l.v[i].module,
                        l.v[i].version, l.v[i].want_zip ? "" : "/go.mod") == 0);
    struct gosum_list back;
    gosum_init(&back, FUZZ_MAX);
    CHECK(gosum_parse(&back, "fuzz", buf_cstr(&out), out.len, &why) == 0);
    CHECK(back.n == l.n);
    for (size_t i = 0; i < l.n; i++)
      CHECK(strcmp(back.v[i].module, l.v[i].module) == 0 &&
            strcmp(back.v[i].version, l.v[i].version) == 0 &&
            back.v[i].want_zip == l.v[i].want_zip);
    gosum_free(&back);
    buf_free(&out);
  }
  gosum_free(&l);
  return 0;
}
