/* S3's XML documents (see s3_xml.h), read with libxml2 into a tree and matched
 * by local element name, so the S3 namespace that AWS and Ceph RGW both send,
 * another prefix, or none at all make no difference. */
#include "storage/s3_xml.h"

#include "core/buf.h"
#include "core/err.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

/* A ListObjectsV2 page of 1000 keys of at most 1 KiB is well under 2 MiB. */
#define BODY_MAX (16u * 1024 * 1024)
#define PARTS_MAX 10000 /* S3's limit on parts in one upload */
#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"

/* No entity substitution (XML_PARSE_NOENT) and no DTD loading: an S3 reply
 * has no business naming other documents or defining entities. The body is
 * read as UTF-8 whatever it declares (XML_PARSE_IGNORE_ENC, and "UTF-8"
 * passed to the parser, which also skips UTF-16/UCS-4 sniffing): S3 and RGW
 * only send UTF-8, and libxml2 2.9 reports a failed iconv conversion with no
 * parser context, straight to the thread's generic handler on stderr. */
#define PARSE_OPTIONS                                                          \
  (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |                 \
   XML_PARSE_IGNORE_ENC)

/* libxml2 2.9 asks for xmlInitParser to be called once before threads parse
 * concurrently; this is the only global state the file keeps. */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_libxml2(void) {
  xmlInitParser();
}

/* Errors are silenced per parse, through the parser context's own structured
 * error callback (libxml2 consults ctxt->sax->serror before the thread's
 * handlers), rather than with xmlSetGenericErrorFunc or
 * xmlSetStructuredErrorFunc once under pthread_once: libxml2 2.9 keeps those
 * handlers per thread, so setting them once would only quiet the CivetWeb
 * worker that happened to run it, and it would change them for any other
 * libxml2 user in the process. The errors 2.9 raises with no context at all
 * come from encoding converters, which PARSE_OPTIONS keeps from running. */
static void drop_error(void *ctx, xmlErrorPtr e) {
  (void)ctx;
  (void)e;
}

/* S3 never sends a DOCTYPE. Stopping at the first sight of one means no
 * entity declaration is ever parsed, let alone a billion laughs or a SYSTEM
 * entity; the tree check in parse() is the second line. */
static void refuse_doctype(void *ctx, const xmlChar *name,
                           const xmlChar *external_id,
                           const xmlChar *system_id) {
  xmlParserCtxt *ctxt = ctx;
  (void)name;
  (void)external_id;
  (void)system_id;
  ctxt->wellFormed = 0;
  xmlStopParser(ctxt);
}

/* Parses body into *doc (xmlFreeDoc it) and checks that the root element's
 * local name is root_name. On failure *doc is NULL. */
static int parse(const char *body, size_t len, const char *root_name,
                 xmlDoc **doc, xmlNode **root, struct reason *why) {
  *doc = NULL;
  *root = NULL;
  if (!body)
    return reason_set(why, ERR_INVALID, "S3 sent no body");
  if (len > BODY_MAX)
    return reason_set(why, ERR_TOO_LARGE, "S3 XML body over %u bytes",
                      BODY_MAX);
  pthread_once(&init_once, init_libxml2);
  xmlParserCtxt *ctxt = xmlNewParserCtxt();
  if (!ctxt)
    return reason_set(why, ERR_NOMEM, "out of memory parsing S3 XML");
  ctxt->sax->serror = drop_error;
  ctxt->sax->internalSubset = refuse_doctype;
  xmlDoc *d =
      xmlCtxtReadMemory(ctxt, body, (int)len, NULL, "UTF-8", PARSE_OPTIONS);
  int nomem = ctxt->errNo == XML_ERR_NO_MEMORY;
  /* libxml2 keeps a document with namespace errors (an undeclared prefix, a
   * repeated prefixed attribute); S3 never sends one. */
  int ns_ok = ctxt->nsWellFormed;
  xmlFreeParserCtxt(ctxt);
  if (d && !ns_ok) {
    xmlFreeDoc(d);
    d = NULL;
  }
  if (!d)
    return nomem ? reason_set(why, ERR_NOMEM, "out of memory parsing S3 XML")
                 : reason_set(why, ERR_INVALID, "S3 sent malformed XML");
  xmlNode *r = xmlDocGetRootElement(d);
  if (d->intSubset || d->extSubset || !r) {
    xmlFreeDoc(d);
    return reason_set(why, ERR_INVALID, "S3 XML has a DOCTYPE or no root");
  }
  if (strcmp((const char *)r->name, root_name) != 0) {
    xmlFreeDoc(d);
    return reason_set(why, ERR_INVALID, "S3 XML is not a %s", root_name);
  }
  *doc = d;
  *root = r;
  return 0;
}

static int is_element(const xmlNode *n, const char *name) {
  return n->type == XML_ELEMENT_NODE &&
         strcmp((const char *)n->name, name) == 0;
}

/* el's one child element called name in *out (NULL when there is none);
 * ERR_INVALID when there are two, since then either could be meant. */
static int child(const xmlNode *el, const char *name, const xmlNode **out) {
  *out = NULL;
  for (const xmlNode *c = el->children; c; c = c->next) {
    if (!is_element(c, name))
      continue;
    if (*out)
      return ERR_INVALID;
    *out = c;
  }
  return 0;
}

/* The character data directly inside el (text and CDATA children, joined)
 * into b, replacing what b held. Child elements and entity references make it
 * ERR_INVALID: S3 sends neither, and expanding references (as
 * xmlNodeGetContent would) is how an entity bomb goes off. */
static int text_of(const xmlNode *el, struct buf *b) {
  buf_reset(b);
  for (const xmlNode *c = el->children; c; c = c->next) {
    switch (c->type) {
    case XML_TEXT_NODE:
    case XML_CDATA_SECTION_NODE:
      if (c->content) {
        int rc = buf_append(b, c->content, strlen((const char *)c->content));
        if (rc)
          return rc;
      }
      break;
    case XML_COMMENT_NODE:
    case XML_PI_NODE:
      break;
    default:
      return ERR_INVALID;
    }
  }
  return 0;
}

/* The text of el's one child called name into b; ERR_INVALID when it is
 * missing, repeated or not plain text. */
static int child_text(const xmlNode *el, const char *name, struct buf *b) {
  const xmlNode *c;
  int rc = child(el, name, &c);
  if (rc)
    return rc;
  if (!c)
    return ERR_INVALID;
  return text_of(c, b);
}

/* Copies s into out (cap > 0 bytes) with control bytes as '?', cut at a UTF-8
 * character boundary when it does not fit. */
static void copy_clean(char *out, size_t cap, const char *s) {
  size_t n = strlen(s);
  if (n >= cap) {
    n = cap - 1;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
      n--;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    out[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
  }
  out[n] = '\0';
}

/* --- <Error> ------------------------------------------------------------ */

int s3_xml_error(const char *body, size_t len, struct s3_error *out) {
  if (!out)
    return ERR_INVALID;
  out->code[0] = '\0';
  out->message[0] = '\0';
  xmlDoc *doc;
  xmlNode *root;
  int rc = parse(body, len, "Error", &doc, &root, NULL);
  if (rc)
    return rc == ERR_NOMEM ? rc : ERR_INVALID;
  struct buf text;
  buf_init(&text, BODY_MAX);
  rc = child_text(root, "Code", &text);
  if (rc || text.len == 0) {
    rc = rc == ERR_NOMEM ? rc : ERR_INVALID;
    goto out;
  }
  copy_clean(out->code, sizeof out->code, buf_cstr(&text));
  /* The message is only for people: a missing or odd one is left empty. */
  if (child_text(root, "Message", &text) == 0)
    copy_clean(out->message, sizeof out->message, buf_cstr(&text));
out:
  buf_free(&text);
  xmlFreeDoc(doc);
  return rc;
}

/* --- <ListBucketResult> -------------------------------------------------- */

/* Size as S3 writes it: decimal digits only, no sign, space or overflow. */
static int parse_size(const char *s, uint64_t *out) {
  if (*s < '0' || *s > '9')
    return ERR_INVALID;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end)
    return ERR_INVALID;
  *out = (uint64_t)v;
  return 0;
}

/* One <Contents>: its key into key, its size into *size. */
static int read_contents(const xmlNode *el, size_t i, struct buf *key,
                         uint64_t *size, struct reason *why) {
  int rc = child_text(el, "Size", key);
  if (rc == ERR_NOMEM)
    return reason_set(why, rc, "out of memory parsing S3 XML");
  if (rc || parse_size(buf_cstr(key), size))
    return reason_set(why, ERR_INVALID,
                      "S3 list: Contents #%zu has a missing or bad Size", i);
  rc = child_text(el, "Key", key);
  if (rc == ERR_NOMEM)
    return reason_set(why, rc, "out of memory parsing S3 XML");
  if (rc || key->len == 0)
    return reason_set(why, ERR_INVALID,
                      "S3 list: Contents #%zu has a missing or bad Key", i);
  return 0;
}

/* Checks IsTruncated and NextContinuationToken, leaving the token (or "" for
 * a last page) in tok. */
static int read_truncation(const xmlNode *root, size_t cap, struct buf *tok,
                           struct reason *why) {
  const xmlNode *el;
  buf_reset(tok);
  if (child(root, "IsTruncated", &el))
    return reason_set(why, ERR_INVALID, "S3 list: IsTruncated repeated");
  if (!el)
    return 0;
  int rc = text_of(el, tok);
  if (rc == ERR_NOMEM)
    return reason_set(why, rc, "out of memory parsing S3 XML");
  if (rc == 0 && strcmp(buf_cstr(tok), "false") == 0) {
    buf_reset(tok);
    return 0;
  }
  if (rc || strcmp(buf_cstr(tok), "true") != 0)
    return reason_set(why, ERR_INVALID, "S3 list: IsTruncated not true/false");
  rc = child_text(root, "NextContinuationToken", tok);
  if (rc == ERR_NOMEM)
    return reason_set(why, rc, "out of memory parsing S3 XML");
  if (rc || tok->len == 0)
    return reason_set(why, ERR_INVALID,
                      "S3 list: truncated without a NextContinuationToken");
  if (tok->len >= cap)
    return reason_set(why, ERR_INVALID,
                      "S3 list: continuation token over %zu bytes", cap - 1);
  return 0;
}

int s3_xml_list(const char *body, size_t len,
                int (*fn)(void *arg, const char *key, uint64_t size), void *arg,
                char *token, size_t cap, struct reason *why) {
  if (token && cap)
    token[0] = '\0';
  if (!fn || !token || !cap)
    return reason_set(why, ERR_INVALID, "s3_xml_list: bad arguments");
  xmlDoc *doc;
  xmlNode *root;
  int rc = parse(body, len, "ListBucketResult", &doc, &root, why);
  if (rc)
    return rc;
  struct buf key, tok;
  buf_init(&key, BODY_MAX);
  buf_init(&tok, BODY_MAX);
  uint64_t size;
  size_t i = 0;

  /* The whole page is checked before the first call, so a bad page is never
   * half delivered. */
  rc = read_truncation(root, cap, &tok, why);
  for (const xmlNode *c = root->children; c && !rc; c = c->next)
    if (is_element(c, "Contents"))
      rc = read_contents(c, ++i, &key, &size, why);
  if (rc)
    goto out;

  i = 0;
  for (const xmlNode *c = root->children; c; c = c->next) {
    if (!is_element(c, "Contents"))
      continue;
    rc = read_contents(c, ++i, &key, &size, why);
    if (!rc)
      rc = fn(arg, buf_cstr(&key), size);
    if (rc)
      goto out;
  }
  memcpy(token, buf_cstr(&tok), tok.len + 1);
out:
  buf_free(&key);
  buf_free(&tok);
  xmlFreeDoc(doc);
  return rc;
}

/* --- multipart uploads --------------------------------------------------- */

int s3_xml_upload_id(const char *body, size_t len, char *out, size_t cap) {
  if (!out || !cap)
    return ERR_INVALID;
  out[0] = '\0';
  xmlDoc *doc;
  xmlNode *root;
  int rc = parse(body, len, "InitiateMultipartUploadResult", &doc, &root, NULL);
  if (rc)
    return rc == ERR_NOMEM ? rc : ERR_INVALID;
  struct buf id;
  buf_init(&id, BODY_MAX);
  rc = child_text(root, "UploadId", &id);
  if (rc == ERR_NOMEM)
    goto out;
  if (rc || id.len == 0 || id.len >= cap) {
    rc = ERR_INVALID;
    goto out;
  }
  /* The id goes into a query string and a signature: printable ASCII only. */
  for (size_t i = 0; i < id.len; i++) {
    unsigned char c = (unsigned char)id.data[i];
    if (c <= 0x20 || c >= 0x7f) {
      rc = ERR_INVALID;
      goto out;
    }
  }
  memcpy(out, id.data, id.len + 1);
out:
  buf_free(&id);
  xmlFreeDoc(doc);
  return rc;
}

/* Appends s with the three characters that matter in element text escaped.
 * Quotes are legal as they are, and S3's own examples keep them. */
static int append_escaped(struct buf *out, const char *s) {
  const char *run = s;
  int rc = 0;
  for (; *s && !rc; s++) {
    const char *esc = *s == '&'   ? "&amp;"
                      : *s == '<' ? "&lt;"
                      : *s == '>' ? "&gt;"
                                  : NULL;
    if (!esc)
      continue;
    rc = buf_append(out, run, (size_t)(s - run));
    if (!rc)
      rc = buf_append(out, esc, strlen(esc));
    run = s + 1;
  }
  if (!rc)
    rc = buf_append(out, run, (size_t)(s - run));
  return rc;
}

int s3_xml_complete(const char *const *etags, size_t n, struct buf *out) {
  if (!out || !etags || n == 0 || n > PARTS_MAX)
    return ERR_INVALID;
  /* Checked up front so that a bad ETag appends nothing. ETags are quoted
   * hex (or hex-dash-count); anything outside printable ASCII is not one, and
   * control bytes could not be written in XML 1.0 at all. */
  for (size_t i = 0; i < n; i++) {
    const char *e = etags[i];
    if (!e || !*e)
      return ERR_INVALID;
    for (; *e; e++)
      if ((unsigned char)*e < 0x20 || (unsigned char)*e >= 0x7f)
        return ERR_INVALID;
  }
  static const char head[] = "<CompleteMultipartUpload xmlns=\"" S3_NS "\">";
  static const char tail[] = "</CompleteMultipartUpload>";
  int rc = buf_append(out, head, sizeof head - 1);
  for (size_t i = 0; i < n && !rc; i++) {
    rc = buf_appendf(out, "<Part><PartNumber>%zu</PartNumber><ETag>", i + 1);
    if (!rc)
      rc = append_escaped(out, etags[i]);
    if (!rc)
      rc = buf_append(out, "</ETag></Part>", 14);
  }
  if (!rc)
    rc = buf_append(out, tail, sizeof tail - 1);
  return rc;
}
