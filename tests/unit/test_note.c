/* Signed notes (mod/note.h) against golang.org/x/mod/sumdb/note's own test
 * vectors (note_test.go): the PeterNeumann and EnochRoot keys, the signed
 * Peter Neumann quote, and the key-corruption loops. */
#include "core/buf.h"
#include "core/err.h"
#include "mod/note.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static const char peter_vkey[] =
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
static const char peter_skey[] =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+"
    "Y7hfZx09iUvxdXHKDFz";
static const char enoch_vkey[] =
    "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
static const char text[] =
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n";
static const char peter_sig[] =
    "\xe2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIu"
    "GUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
static const char enoch_sig[] =
    "\xe2\x80\x94 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOH"
    "p+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

static void verifier_keys(void) {
  struct note_verifier v;
  struct reason why;
  ASSERT_EQ_INT(note_verifier_parse(peter_vkey, &v, &why), 0);
  ASSERT_EQ_STR(v.name, "PeterNeumann");
  ASSERT_EQ_INT(v.hash, 0xc74f20a3u);
  /* Every strict substring and every one-byte change is refused. */
  char b[sizeof peter_vkey];
  size_t n = strlen(peter_vkey);
  int accepted = 0;
  for (size_t i = 0; i <= n; i++)
    for (size_t j = i + 1; j <= n; j++) {
      if (i == 0 && j == n)
        continue;
      memcpy(b, peter_vkey + i, j - i);
      b[j - i] = '\0';
      accepted += note_verifier_parse(b, &v, &why) == 0;
    }
  for (size_t i = 0; i < n; i++) {
    memcpy(b, peter_vkey, n + 1);
    b[i]++;
    accepted += note_verifier_parse(b, &v, &why) == 0;
  }
  ASSERT_EQ_INT(accepted, 0);
  /* Wrong key length and unknown algorithm, each with a matching hash. */
  ASSERT_EQ_INT(note_verifier_parse("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbz"
                                    "hKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
                                    &v, &why),
                ERR_INVALID);
  ASSERT_EQ_INT(note_verifier_parse("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbz"
                                    "hKqiBfsVkmqq/LDE4izWy10TW",
                                    &v, &why),
                ERR_INVALID);
  ASSERT_TRUE(strstr(why.text, "unknown algorithm") != NULL);
}

static void signer_keys(void) {
  struct note_signer s;
  struct reason why;
  ASSERT_EQ_INT(note_signer_parse(peter_skey, &s, &why), 0);
  ASSERT_EQ_INT(s.hash, 0xc74f20a3u);
  char vkey[NOTE_KEY_MAX];
  note_signer_vkey(&s, vkey);
  ASSERT_EQ_STR(vkey, peter_vkey);
  char b[sizeof peter_skey];
  size_t n = strlen(peter_skey);
  int accepted = 0;
  for (size_t i = 0; i <= n; i++)
    for (size_t j = i + 1; j <= n; j++) {
      if (i == 0 && j == n)
        continue;
      memcpy(b, peter_skey + i, j - i);
      b[j - i] = '\0';
      accepted += note_signer_parse(b, &s, &why) == 0;
    }
  for (size_t i = 0; i < n; i++) {
    memcpy(b, peter_skey, n + 1);
    b[i]++;
    accepted += note_signer_parse(b, &s, &why) == 0;
  }
  ASSERT_EQ_INT(accepted, 0);
}

static void sign_matches_xmod(void) {
  struct note_signer s;
  struct reason why;
  ASSERT_EQ_INT(note_signer_parse(peter_skey, &s, &why), 0);
  struct buf out;
  buf_init(&out, 4096);
  ASSERT_EQ_INT(note_sign(text, strlen(text), &s, &out, &why), 0);
  char want[1024];
  snprintf(want, sizeof want, "%s\n%s", text, peter_sig);
  ASSERT_EQ_INT(out.len, strlen(want));
  ASSERT_TRUE(out.len == strlen(want) && memcmp(out.data, want, out.len) == 0);
  buf_reset(&out);
  ASSERT_EQ_INT(note_sign("abc", 3, &s, &out, &why), ERR_INVALID);
  buf_free(&out);
}

static void open_notes(void) {
  struct note_verifier peter, enoch;
  struct reason why;
  ASSERT_EQ_INT(note_verifier_parse(peter_vkey, &peter, &why), 0);
  ASSERT_EQ_INT(note_verifier_parse(enoch_vkey, &enoch, &why), 0);
  char msg[2048];
  snprintf(msg, sizeof msg, "%s\n%s%s", text, peter_sig, enoch_sig);
  size_t tl = 0;
  ASSERT_EQ_INT(note_open(msg, strlen(msg), &peter, &tl, &why), 0);
  ASSERT_EQ_INT(tl, strlen(text));
  ASSERT_EQ_INT(note_open(msg, strlen(msg), &enoch, &tl, &why), 0);

  /* Only Enoch signed: not a note by Peter. */
  snprintf(msg, sizeof msg, "%s\n%s", text, enoch_sig);
  ASSERT_EQ_INT(note_open(msg, strlen(msg), &peter, &tl, &why),
                ERR_BAD_UPSTREAM_DATA);
  ASSERT_TRUE(strstr(why.text, "no signature by PeterNeumann") != NULL);

  /* One changed byte of text breaks Peter's signature. */
  snprintf(msg, sizeof msg, "%s\n%s", text, peter_sig);
  msg[3] ^= 1;
  ASSERT_EQ_INT(note_open(msg, strlen(msg), &peter, &tl, &why),
                ERR_BAD_UPSTREAM_DATA);
  ASSERT_TRUE(strstr(why.text, "invalid signature") != NULL);

  /* Malformed notes (x/mod TestOpen's list). */
  static const char *bad[] = {
      "",
      "\n",
      "text\n",
      "text\n\n",
      "text\n\nsig",
      "text\n\n\xe2\x80\x94 PeterNeumann\n",
      "text\n\n\xe2\x80\x94 PeterNeumann \n",
      "text\n\n\xe2\x80\x94 PeterNeumann !!!\n",
      "text\n\n- PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUg"
      "YN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
      "te\x01xt\n\n\xe2\x80\x94 PeterNeumann AAAA\n",
      "te\xffxt\n\n\xe2\x80\x94 PeterNeumann AAAA\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int rc = note_open(bad[i], strlen(bad[i]), &peter, &tl, &why);
    if (rc != ERR_BAD_UPSTREAM_DATA)
      TEST_FAIL_("note_open(bad[%zu]) = %d", i, rc);
  }
}

static void keygen_round_trip(void) {
  char skey[NOTE_KEY_MAX], vkey[NOTE_KEY_MAX];
  struct reason why;
  ASSERT_EQ_INT(note_keygen("sum.corp.example", skey, vkey, &why), 0);
  ASSERT_TRUE(strncmp(skey, "PRIVATE+KEY+sum.corp.example+", 29) == 0);
  struct note_signer s;
  struct note_verifier v;
  ASSERT_EQ_INT(note_signer_parse(skey, &s, &why), 0);
  ASSERT_EQ_INT(note_verifier_parse(vkey, &v, &why), 0);
  ASSERT_EQ_INT(s.hash, v.hash);
  struct buf out;
  buf_init(&out, 4096);
  ASSERT_EQ_INT(note_sign("hi\n", 3, &s, &out, &why), 0);
  size_t tl;
  ASSERT_EQ_INT(note_open(out.data, out.len, &v, &tl, &why), 0);
  ASSERT_EQ_INT(tl, 3);
  buf_free(&out);
  ASSERT_EQ_INT(note_keygen("a b", skey, vkey, &why), ERR_INVALID);
  ASSERT_EQ_INT(note_keygen("a+b", skey, vkey, &why), ERR_INVALID);
}

int main(void) {
  RUN_TEST(verifier_keys);
  RUN_TEST(signer_keys);
  RUN_TEST(sign_matches_xmod);
  RUN_TEST(open_notes);
  RUN_TEST(keygen_round_trip);
  return test_summary();
}
