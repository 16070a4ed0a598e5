/* libFuzzer target for storage/s3_xml.c: the same bytes go to the list,
 * error and upload-id parsers, which must answer only their documented codes
 * with clean, terminated outputs; the bytes split into lines are also used as
 * ETags, and whatever s3_xml_complete accepts must read back the same. */
#include "core/buf.h"
#include "core/err.h"
#include "storage/s3_xml.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      abort();                                                                 \
  } while (0)

#define STOP_CODE 7
#define ETAGS_MAX 16

static int printable(const char *s, size_t cap) {
  size_t n = strnlen(s, cap);
  if (n == cap)
    return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
      return 0;
  return 1;
}

struct walk {
  size_t n;
  size_t stop_after; /* 0: never stop */
};

static int on_key(void *arg, const char *key, uint64_t size) {
  struct walk *w = arg;
  (void)size;
  CHECK(key[0] != '\0');
  w->n++;
  return w->stop_after && w->n >= w->stop_after ? STOP_CODE : 0;
}

static void check_list(const char *body, size_t len, size_t stop_after,
                       size_t cap) {
  struct walk w = {0, stop_after};
  struct reason why = {{0}};
  char token[64];
  memset(token, 'x', sizeof token);
  int rc = s3_xml_list(body, len, on_key, &w, token, cap, &why);
  CHECK(rc == 0 || rc == ERR_INVALID || rc == ERR_NOMEM ||
        (rc == STOP_CODE && stop_after && w.n == stop_after));
  CHECK(strnlen(token, cap) < cap);
  if (rc) {
    CHECK(token[0] == '\0');
    if (rc != STOP_CODE)
      CHECK(w.n == 0 && why.text[0] && printable(why.text, sizeof why.text));
  }
}

static void check_error(const char *body, size_t len) {
  struct s3_error e;
  memset(&e, 'x', sizeof e);
  int rc = s3_xml_error(body, len, &e);
  CHECK(rc == 0 || rc == ERR_INVALID || rc == ERR_NOMEM);
  if (rc == 0) {
    CHECK(e.code[0] != '\0' && printable(e.code, sizeof e.code));
    CHECK(printable(e.message, sizeof e.message));
  } else {
    CHECK(e.code[0] == '\0' && e.message[0] == '\0');
  }
}

static void check_upload_id(const char *body, size_t len) {
  char id[32];
  memset(id, 'x', sizeof id);
  int rc = s3_xml_upload_id(body, len, id, sizeof id);
  CHECK(rc == 0 || rc == ERR_INVALID || rc == ERR_NOMEM);
  CHECK(strnlen(id, sizeof id) < sizeof id);
  CHECK(rc == 0 ? id[0] != '\0' && printable(id, sizeof id) : id[0] == '\0');
}

/* The text of el's children, joined as libxml2 decodes it. */
static int text_is(const xmlNode *el, const char *want) {
  xmlChar *t = xmlNodeGetContent(el);
  int same = t && strcmp((const char *)t, want) == 0;
  xmlFree(t);
  return same;
}

/* Lines of the input as ETags; an accepted set must parse back to parts
 * 1..n carrying the same ETags. */
static void check_complete(const char *body, size_t len) {
  char *copy = malloc(len + 1);
  CHECK(copy);
  memcpy(copy, body, len);
  copy[len] = '\0';
  const char *etags[ETAGS_MAX];
  size_t n = 0;
  char *p = copy;
  while (n < ETAGS_MAX) {
    etags[n++] = p;
    char *nl = memchr(p, '\n', (size_t)(copy + len - p));
    if (!nl)
      break;
    *nl = '\0';
    p = nl + 1;
  }
  struct buf out;
  buf_init(&out, 1 << 20);
  int rc = s3_xml_complete(etags, n, &out);
  CHECK(rc == 0 || rc == ERR_INVALID || rc == ERR_NOMEM);
  if (rc == 0) {
    xmlDoc *doc = xmlReadMemory(out.data, (int)out.len, NULL, NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR |
                                    XML_PARSE_NOWARNING);
    CHECK(doc);
    const xmlNode *root = xmlDocGetRootElement(doc);
    CHECK(root &&
          strcmp((const char *)root->name, "CompleteMultipartUpload") == 0);
    size_t i = 0;
    for (const xmlNode *part = root->children; part; part = part->next, i++) {
      CHECK(i < n && strcmp((const char *)part->name, "Part") == 0);
      const xmlNode *num = part->children;
      CHECK(num && num->next && !num->next->next);
      char want[24];
      snprintf(want, sizeof want, "%zu", i + 1);
      CHECK(text_is(num, want));
      CHECK(strcmp((const char *)num->next->name, "ETag") == 0);
      CHECK(text_is(num->next, etags[i]));
    }
    CHECK(i == n);
    xmlFreeDoc(doc);
  } else {
    CHECK(out.len == 0);
  }
  buf_free(&out);
  free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *body = (const char *)data;
  /* The first byte picks where the callback stops and the token's room, so
   * both paths are reached without changing the document much. */
  size_t stop_after = size ? data[0] % 4 : 0;
  size_t cap = size ? 1 + data[size - 1] % 64 : 64;
  check_list(body, size, stop_after, cap);
  check_list(body, size, 0, 64);
  check_error(body, size);
  check_upload_id(body, size);
  check_complete(body, size);
  return 0;
}
