/* libFuzzer target for signed notes (mod/note.c): whatever the bytes, the
 * key parsers and note_open answer with a clean one-line reason and never
 * accept what x/mod would refuse: a note opened as Peter's must carry his
 * valid signature, so after signing any text with his key, opening gives
 * back exactly that text (or refuses text that is not a valid note body). */
#include "core/buf.h"
#include "core/err.h"
#include "mod/note.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      abort();                                                                 \
  } while (0)

static const char peter_vkey[] =
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
static const char peter_skey[] =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+"
    "Y7hfZx09iUvxdXHKDFz";

static void check_reason(const struct reason *why) {
  size_t n = strnlen(why->text, sizeof why->text);
  CHECK(n > 0 && n < sizeof why->text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct reason why = {{0}};
  struct note_verifier v, peter;
  struct note_signer s;
  CHECK(note_verifier_parse(peter_vkey, &peter, &why) == 0);
  CHECK(note_signer_parse(peter_skey, &s, &why) == 0);

  /* The input as a key (up to the first newline). */
  char key[NOTE_KEY_MAX];
  size_t kl = 0;
  while (kl < size && kl + 1 < sizeof key && data[kl] != '\n' && data[kl])
    kl++;
  memcpy(key, data, kl);
  key[kl] = '\0';
  memset(&why, 0, sizeof why);
  if (note_verifier_parse(key, &v, &why) != 0)
    check_reason(&why);
  memset(&why, 0, sizeof why);
  if (note_signer_parse(key, &s, &why) != 0) {
    check_reason(&why);
    CHECK(note_signer_parse(peter_skey, &s, &why) == 0);
  }

  /* The input as a note. */
  size_t tl = 0;
  memset(&why, 0, sizeof why);
  int rc = note_open((const char *)data, size, &peter, &tl, &why);
  if (rc)
    check_reason(&why);
  else
    CHECK(tl > 0 && tl < size && data[tl - 1] == '\n');

  /* The input as text to sign and open again. */
  struct buf out;
  buf_init(&out, 1u << 20);
  memset(&why, 0, sizeof why);
  if (note_sign((const char *)data, size, &s, &out, &why) == 0) {
    struct note_verifier sv;
    char vkey[NOTE_KEY_MAX];
    note_signer_vkey(&s, vkey);
    CHECK(note_verifier_parse(vkey, &sv, &why) == 0);
    memset(&why, 0, sizeof why);
    rc = note_open(out.data, out.len, &sv, &tl, &why);
    if (rc == 0)
      CHECK(tl == size);
    else
      check_reason(&why);
  }
  buf_free(&out);
  return 0;
}
