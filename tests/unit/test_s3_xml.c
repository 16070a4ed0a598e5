/* Unit tests for storage/s3_xml.c: documents shaped like the S3 API
 * reference's examples and like Ceph RGW's replies, escaped and UTF-8 keys,
 * truncated pages, hostile XML (entity bombs, external entities, oversized
 * bodies), and the CompleteMultipartUpload body read back with libxml2. */
#include "storage/s3_xml.h"

#include "core/buf.h"
#include "core/err.h"

#include "test.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"
#define LIST_OPEN "<ListBucketResult xmlns=\"" S3_NS "\">"
#define LIST_CLOSE "</ListBucketResult>"

/* --- a callback that records what it is given --------------------------- */

#define SEEN_MAX 16

struct seen {
  size_t n;
  char keys[SEEN_MAX][512];
  uint64_t sizes[SEEN_MAX];
  size_t stop_after; /* return 7 once this many are seen; 0 never */
};

static int record(void *arg, const char *key, uint64_t size) {
  struct seen *s = arg;
  if (s->n < SEEN_MAX) {
    snprintf(s->keys[s->n], sizeof s->keys[0], "%s", key);
    s->sizes[s->n] = size;
  }
  s->n++;
  return s->stop_after && s->n >= s->stop_after ? 7 : 0;
}

/* Runs s3_xml_list on a C string with a fresh recorder and a 256-byte
 * token buffer. */
static int list(const char *doc, struct seen *s, char *token,
                struct reason *why) {
  memset(s, 0, sizeof *s);
  memset(why, 0, sizeof *why);
  memcpy(token, "junk", 5);
  return s3_xml_list(doc, strlen(doc), record, s, token, 256, why);
}

/* --- ListObjectsV2 ------------------------------------------------------- */

/* Shaped like the ListObjectsV2 example in the S3 API reference: an XML
 * declaration, the S3 namespace, pretty-printed, fields we do not read. */
static const char aws_list[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" LIST_OPEN "\n"
    "    <Name>bucket</Name>\n"
    "    <Prefix/>\n"
    "    <KeyCount>205</KeyCount>\n"
    "    <MaxKeys>1000</MaxKeys>\n"
    "    <IsTruncated>false</IsTruncated>\n"
    "    <Contents>\n"
    "        <Key>my-image.jpg</Key>\n"
    "        <LastModified>2009-10-12T17:50:30.000Z</LastModified>\n"
    "        <ETag>\"fba9dede5f27731c9771645a39863328\"</ETag>\n"
    "        <Size>434234</Size>\n"
    "        <StorageClass>STANDARD</StorageClass>\n"
    "    </Contents>\n"
    "    <Contents>\n"
    "        <Key>my-third-image.jpg</Key>\n"
    "        <LastModified>2009-10-12T17:50:30.000Z</LastModified>\n"
    "        <ETag>\"1b2cf535f27731c974343645a3985328\"</ETag>\n"
    "        <Size>64994</Size>\n"
    "        <StorageClass>STANDARD_IA</StorageClass>\n"
    "    </Contents>\n" LIST_CLOSE "\n";

static void test_list_aws_example(void) {
  struct seen s;
  struct reason why;
  char token[256];
  ASSERT_EQ_INT(list(aws_list, &s, token, &why), 0);
  ASSERT_EQ_INT(s.n, 2);
  ASSERT_EQ_STR(s.keys[0], "my-image.jpg");
  ASSERT_EQ_INT(s.sizes[0], 434234);
  ASSERT_EQ_STR(s.keys[1], "my-third-image.jpg");
  ASSERT_EQ_INT(s.sizes[1], 64994);
  ASSERT_EQ_STR(token, "");
}

/* The continuation example from the same reference page. */
static const char aws_truncated[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" LIST_OPEN "\n"
    "  <Name>bucket</Name>\n"
    "  <Prefix></Prefix>\n"
    "  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="
    "</NextContinuationToken>\n"
    "  <KeyCount>1000</KeyCount>\n"
    "  <MaxKeys>1000</MaxKeys>\n"
    "  <IsTruncated>true</IsTruncated>\n"
    "  <Contents>\n"
    "    <Key>happyface.jpg</Key>\n"
    "    <LastModified>2014-11-21T19:40:05.000Z</LastModified>\n"
    "    <ETag>\"70ee1738b6b21e2c8a43f3a5ab0eee71\"</ETag>\n"
    "    <Size>11</Size>\n"
    "    <StorageClass>STANDARD</StorageClass>\n"
    "  </Contents>\n" LIST_CLOSE;

static void test_list_truncated(void) {
  struct seen s;
  struct reason why;
  char token[256];
  const char *want = "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=";
  ASSERT_EQ_INT(list(aws_truncated, &s, token, &why), 0);
  ASSERT_EQ_INT(s.n, 1);
  ASSERT_EQ_STR(s.keys[0], "happyface.jpg");
  ASSERT_EQ_INT(s.sizes[0], 11);
  ASSERT_EQ_STR(token, want);

  /* Exactly fitting, then one byte short: nothing is delivered. */
  size_t need = strlen(want) + 1;
  memset(&s, 0, sizeof s);
  ASSERT_EQ_INT(s3_xml_list(aws_truncated, strlen(aws_truncated), record, &s,
                            token, need, &why),
                0);
  ASSERT_EQ_STR(token, want);
  memset(&s, 0, sizeof s);
  ASSERT_EQ_INT(s3_xml_list(aws_truncated, strlen(aws_truncated), record, &s,
                            token, need - 1, &why),
                ERR_INVALID);
  ASSERT_EQ_STR(token, "");
  ASSERT_EQ_INT(s.n, 0);
  ASSERT_TRUE(strstr(why.text, "token") != NULL);

  /* Truncated without a token, or with an empty one. */
  const char *no_token =
      LIST_OPEN "<IsTruncated>true</IsTruncated>"
                "<Contents><Key>a</Key><Size>1</Size></Contents>" LIST_CLOSE;
  ASSERT_EQ_INT(list(no_token, &s, token, &why), ERR_INVALID);
  ASSERT_EQ_INT(s.n, 0);
  ASSERT_EQ_STR(token, "");
  ASSERT_TRUE(strstr(why.text, "NextContinuationToken") != NULL);
  const char *empty_token =
      LIST_OPEN "<IsTruncated>true</IsTruncated>"
                "<NextContinuationToken></NextContinuationToken>" LIST_CLOSE;
  ASSERT_EQ_INT(list(empty_token, &s, token, &why), ERR_INVALID);

  /* A token on the last page is ignored. */
  const char *last =
      LIST_OPEN "<IsTruncated>false</IsTruncated>"
                "<NextContinuationToken>abc</NextContinuationToken>" LIST_CLOSE;
  ASSERT_EQ_INT(list(last, &s, token, &why), 0);
  ASSERT_EQ_STR(token, "");
}

/* Shaped like Ceph RGW's reply (rgw_rest_s3.cc): one line, the same S3
 * namespace, Owner and Type in every Contents, a CommonPrefixes. */
static const char rgw_list[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>" LIST_OPEN
    "<Name>gomirror</Name><Prefix>cache/download/</Prefix>"
    "<NextContinuationToken>1~cache/download/golang.org/x/mod/@v/v0.17.0.zip"
    "</NextContinuationToken>"
    "<KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><Delimiter></Delimiter>"
    "<IsTruncated>true</IsTruncated>"
    "<Contents><Key>cache/download/golang.org/x/mod/@v/list</Key>"
    "<LastModified>2024-03-01T10:00:00.123Z</LastModified>"
    "<ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag>"
    "<Size>0</Size><StorageClass>STANDARD</StorageClass>"
    "<Owner><ID>gomirror</ID><DisplayName>gomirror</DisplayName></Owner>"
    "<Type>Normal</Type></Contents>"
    "<Contents><Key>cache/download/golang.org/x/mod/@v/v0.17.0.zip</Key>"
    "<LastModified>2024-03-01T10:00:01.456Z</LastModified>"
    "<ETag>&quot;9b2cf535f27731c974343645a3985328-3&quot;</ETag>"
    "<Size>18446744073709551615</Size><StorageClass>STANDARD</StorageClass>"
    "<Owner><ID>gomirror</ID><DisplayName>gomirror</DisplayName></Owner>"
    "<Type>Normal</Type></Contents>"
    "<CommonPrefixes><Prefix>cache/download/x/</Prefix></CommonPrefixes>"
    "<EncodingType>url</EncodingType>" LIST_CLOSE;

static void test_list_rgw(void) {
  struct seen s;
  struct reason why;
  char token[256];
  ASSERT_EQ_INT(list(rgw_list, &s, token, &why), 0);
  ASSERT_EQ_INT(s.n, 2);
  ASSERT_EQ_STR(s.keys[0], "cache/download/golang.org/x/mod/@v/list");
  ASSERT_EQ_INT(s.sizes[0], 0);
  ASSERT_EQ_STR(s.keys[1], "cache/download/golang.org/x/mod/@v/v0.17.0.zip");
  ASSERT_TRUE(s.sizes[1] == UINT64_MAX);
  ASSERT_EQ_STR(token, "1~cache/download/golang.org/x/mod/@v/v0.17.0.zip");
}

/* Elements are matched by local name: a prefixed namespace, another one or
 * none at all read the same. */
static void test_list_namespaces(void) {
  static const char *const docs[] = {
      "<s3:ListBucketResult xmlns:s3=\"" S3_NS "\"><s3:Contents>"
      "<s3:Key>k</s3:Key><s3:Size>5</s3:Size></s3:Contents>"
      "<s3:IsTruncated>false</s3:IsTruncated></s3:ListBucketResult>",
      "<ListBucketResult><Contents><Key>k</Key><Size>5</Size></Contents>"
      "</ListBucketResult>",
      "<ListBucketResult xmlns=\"urn:other\"><Contents><Key>k</Key>"
      "<Size>5</Size></Contents></ListBucketResult>",
  };
  for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
    struct seen s;
    struct reason why;
    char token[256];
    ASSERT_EQ_INT(list(docs[i], &s, token, &why), 0);
    ASSERT_EQ_INT(s.n, 1);
    ASSERT_EQ_STR(s.keys[0], "k");
    ASSERT_EQ_INT(s.sizes[0], 5);
  }
}

static void test_list_escaped_keys(void) {
  const char *doc =
      LIST_OPEN "<IsTruncated>false</IsTruncated>"
                "<Contents><Key>a&amp;b&lt;c&gt;d&apos;e&quot;f!g+h@i~j</Key>"
                "<Size>1</Size></Contents>"
                "<Contents><Key>'\"!+@~ literal</Key><Size>2</Size></Contents>"
                "<Contents><Key>caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac/"
                "&#x1F600;&#233;</Key><Size>3</Size></Contents>"
                "<Contents><Key><![CDATA[<not>&amp;markup]]></Key>"
                "<Size>4</Size></Contents>"
                "<Contents><Key> spaced  key </Key><Size>5</Size></Contents>"
                "<Contents><Key>x<!-- comment -->y</Key><Size>6</Size>"
                "</Contents>"
                "<Contents><Key>%2F%20/v1.0.0+incompatible.zip</Key>"
                "<Size>7</Size></Contents>" LIST_CLOSE;
  struct seen s;
  struct reason why;
  char token[256];
  ASSERT_EQ_INT(list(doc, &s, token, &why), 0);
  ASSERT_EQ_INT(s.n, 7);
  ASSERT_EQ_STR(s.keys[0], "a&b<c>d'e\"f!g+h@i~j");
  ASSERT_EQ_STR(s.keys[1], "'\"!+@~ literal");
  ASSERT_EQ_STR(s.keys[2], "caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac/"
                           "\xf0\x9f\x98\x80\xc3\xa9");
  ASSERT_EQ_STR(s.keys[3], "<not>&amp;markup"); /* CDATA is not decoded */
  ASSERT_EQ_STR(s.keys[4], " spaced  key ");
  ASSERT_EQ_STR(s.keys[5], "xy");
  ASSERT_EQ_STR(s.keys[6], "%2F%20/v1.0.0+incompatible.zip"); /* as is */
  for (size_t i = 0; i < 7; i++)
    ASSERT_EQ_INT(s.sizes[i], i + 1);
}

/* S3 only sends UTF-8: a body is read as UTF-8 whatever it declares, a UTF-8
 * byte-order mark is skipped, and anything else is not valid UTF-8. */
static void test_list_encoding(void) {
  struct seen s;
  struct reason why;
  char token[256];
  const char *declared =
      "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>" LIST_OPEN
      "<Contents><Key>caf\xc3\xa9</Key><Size>1</Size>"
      "</Contents>" LIST_CLOSE;
  ASSERT_EQ_INT(list(declared, &s, token, &why), 0);
  ASSERT_EQ_INT(s.n, 1);
  ASSERT_EQ_STR(s.keys[0], "caf\xc3\xa9");
  const char *unknown = "<?xml version=\"1.0\" encoding=\"no-such-charset\"?>"
                        "<ListBucketResult/>";
  ASSERT_EQ_INT(list(unknown, &s, token, &why), 0);
  const char *bom =
      "\xef\xbb\xbf" LIST_OPEN
      "<Contents><Key>k</Key><Size>1</Size></Contents>" LIST_CLOSE;
  ASSERT_EQ_INT(list(bom, &s, token, &why), 0);
  ASSERT_EQ_INT(s.n, 1);
  const char *latin1 =
      "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>" LIST_OPEN
      "<Contents><Key>caf\xe9</Key><Size>1</Size></Contents>" LIST_CLOSE;
  ASSERT_EQ_INT(list(latin1, &s, token, &why), ERR_INVALID);
  ASSERT_EQ_INT(s.n, 0);
  static const char utf16[] = "\xff\xfe<\0L\0i\0s\0t\0B\0u\0c\0k\0e\0t\0R\0"
                              "e\0s\0u\0l\0t\0/\0>\0";
  memset(&s, 0, sizeof s);
  ASSERT_EQ_INT(s3_xml_list(utf16, sizeof utf16 - 1, record, &s, token,
                            sizeof token, &why),
                ERR_INVALID);
}

static void test_list_empty(void) {
  static const char *const docs[] = {
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" LIST_OPEN
      "<Name>bucket</Name><Prefix>nothing/</Prefix><KeyCount>0</KeyCount>"
      "<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>" LIST_CLOSE,
      "<ListBucketResult/>",
      "<ListBucketResult xmlns=\"" S3_NS "\"></ListBucketResult>",
  };
  for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
    struct seen s;
    struct reason why;
    char token[256];
    ASSERT_EQ_INT(list(docs[i], &s, token, &why), 0);
    ASSERT_EQ_INT(s.n, 0);
    ASSERT_EQ_STR(token, "");
  }
}

/* The header's rule: only an IsTruncated of "true" asks for a token. */
static void test_list_is_truncated(void) {
  struct seen s;
  struct reason why;
  char token[256];
  const char *missing =
      LIST_OPEN "<NextContinuationToken>abc</NextContinuationToken>"
                "<Contents><Key>a</Key><Size>1</Size></Contents>" LIST_CLOSE;
  ASSERT_EQ_INT(list(missing, &s, token, &why), 0);
  ASSERT_EQ_INT(s.n, 1);
  ASSERT_EQ_STR(token, "");

  static const char *const bad[] = {
      LIST_OPEN "<IsTruncated>True</IsTruncated>" LIST_CLOSE,
      LIST_OPEN "<IsTruncated>yes</IsTruncated>" LIST_CLOSE,
      LIST_OPEN "<IsTruncated>1</IsTruncated>" LIST_CLOSE,
      LIST_OPEN "<IsTruncated></IsTruncated>" LIST_CLOSE,
      LIST_OPEN "<IsTruncated> true</IsTruncated>" LIST_CLOSE,
      LIST_OPEN "<IsTruncated><b>true</b></IsTruncated>" LIST_CLOSE,
      LIST_OPEN "<IsTruncated>false</IsTruncated>"
                "<IsTruncated>true</IsTruncated>" LIST_CLOSE,
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ASSERT_EQ_INT(list(bad[i], &s, token, &why), ERR_INVALID);
    ASSERT_TRUE(strstr(why.text, "IsTruncated") != NULL);
    ASSERT_EQ_STR(token, "");
  }
}

/* A bad Size or Key anywhere fails the page before any key is delivered. */
static void test_list_bad_contents(void) {
  static const char *const sizes[] = {
      "",
      "-1",
      "+5",
      " 5",
      "5 ",
      "5x",
      "0x10",
      "1e3",
      "18446744073709551616",
      "99999999999999999999999",
  };
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char doc[512];
    snprintf(doc, sizeof doc,
             LIST_OPEN "<Contents><Key>good</Key><Size>1</Size></Contents>"
                       "<Contents><Key>bad</Key><Size>%s</Size></Contents>"
                       "<IsTruncated>false</IsTruncated>" LIST_CLOSE,
             sizes[i]);
    struct seen s;
    struct reason why;
    char token[256];
    ASSERT_EQ_INT(list(doc, &s, token, &why), ERR_INVALID);
    ASSERT_EQ_INT(s.n, 0);
    ASSERT_TRUE(strstr(why.text, "Contents #2") != NULL);
    ASSERT_TRUE(strstr(why.text, "Size") != NULL);
  }
  static const char *const contents[] = {
      "<Contents><Key>no-size</Key></Contents>",
      "<Contents><Size>1</Size></Contents>",
      "<Contents><Key></Key><Size>1</Size></Contents>",
      "<Contents><Key/><Size>1</Size></Contents>",
      "<Contents><Key>a<b/>c</Key><Size>1</Size></Contents>",
      "<Contents><Key>a</Key><Key>b</Key><Size>1</Size></Contents>",
      "<Contents><Key>a</Key><Size>1</Size><Size>2</Size></Contents>",
      "<Contents><Key>a</Key><Size><n>1</n></Size></Contents>",
  };
  for (size_t i = 0; i < sizeof contents / sizeof contents[0]; i++) {
    char doc[512];
    snprintf(doc, sizeof doc,
             LIST_OPEN "<Contents><Key>good</Key><Size>1</Size></Contents>"
                       "%s" LIST_CLOSE,
             contents[i]);
    struct seen s;
    struct reason why;
    char token[256];
    ASSERT_EQ_INT(list(doc, &s, token, &why), ERR_INVALID);
    ASSERT_EQ_INT(s.n, 0);
    ASSERT_TRUE(strstr(why.text, "Contents #2") != NULL);
  }
}

static void test_list_malformed(void) {
  static const char *const docs[] = {
      "",
      " ",
      "not xml at all",
      "<ListBucketResult>",
      LIST_OPEN "<Contents><Key>a</Key><Size>1</Size></Contents>",
      LIST_OPEN "<Contents><Key>a</Size></Contents>" LIST_CLOSE,
      LIST_OPEN "<Contents><Key>a&b</Key><Size>1</Size></Contents>" LIST_CLOSE,
      LIST_OPEN
      "<Contents><Key>&undefined;</Key><Size>1</Size></Contents>" LIST_CLOSE,
      LIST_OPEN "<Contents><Key>&#0;</Key><Size>1</Size></Contents>" LIST_CLOSE,
      LIST_OPEN LIST_CLOSE "<ListBucketResult/>",
      "<ListBucketResult xmlns:a=\"x\" a:b=\"1\" a:b=\"2\"/>",
      "<ListBucketResult><Key>\xff\xfe</Key></ListBucketResult>",
  };
  for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
    struct seen s;
    struct reason why;
    char token[256];
    ASSERT_EQ_INT(list(docs[i], &s, token, &why), ERR_INVALID);
    ASSERT_EQ_INT(s.n, 0);
    ASSERT_EQ_STR(token, "");
    ASSERT_TRUE(why.text[0] != '\0');
  }
  /* A body cut short by the network: every prefix of a good page fails. */
  for (size_t n = 0; n < strlen(aws_list) - 2; n++) {
    struct seen s = {0};
    struct reason why;
    char token[256];
    ASSERT_EQ_INT(
        s3_xml_list(aws_list, n, record, &s, token, sizeof token, &why),
        ERR_INVALID);
    if (s.n)
      break;
  }
}

static void test_list_not_a_list(void) {
  static const char *const docs[] = {
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchBucket"
      "</Code><Message>The specified bucket does not exist</Message></Error>",
      "<ListAllMyBucketsResult xmlns=\"" S3_NS "\"><Buckets/>"
      "</ListAllMyBucketsResult>",
      "<ListVersionsResult xmlns=\"" S3_NS "\"><IsTruncated>false"
      "</IsTruncated></ListVersionsResult>",
      "<Wrapper>" LIST_OPEN
      "<Contents><Key>a</Key><Size>1</Size></Contents>" LIST_CLOSE "</Wrapper>",
      "<listbucketresult/>",
  };
  for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
    struct seen s;
    struct reason why;
    char token[256];
    ASSERT_EQ_INT(list(docs[i], &s, token, &why), ERR_INVALID);
    ASSERT_EQ_INT(s.n, 0);
    ASSERT_TRUE(strstr(why.text, "ListBucketResult") != NULL);
  }
}

static void test_list_callback_stops(void) {
  struct seen s;
  struct reason why;
  char token[256];
  memset(&s, 0, sizeof s);
  s.stop_after = 1;
  ASSERT_EQ_INT(s3_xml_list(aws_truncated, strlen(aws_truncated), record, &s,
                            token, sizeof token, &why),
                7);
  ASSERT_EQ_INT(s.n, 1);
  ASSERT_EQ_STR(token, ""); /* a stopped listing has no next page */
  memset(&s, 0, sizeof s);
  s.stop_after = 1;
  ASSERT_EQ_INT(
      s3_xml_list(aws_list, strlen(aws_list), record, &s, token, 64, &why), 7);
  ASSERT_EQ_INT(s.n, 1); /* no call after the stop */
}

static void test_list_arguments(void) {
  struct seen s = {0};
  struct reason why;
  char token[8] = "junk";
  ASSERT_EQ_INT(s3_xml_list(NULL, 0, record, &s, token, sizeof token, &why),
                ERR_INVALID);
  ASSERT_EQ_STR(token, "");
  ASSERT_EQ_INT(
      s3_xml_list(aws_list, strlen(aws_list), NULL, &s, token, 8, &why),
      ERR_INVALID);
  ASSERT_EQ_INT(
      s3_xml_list(aws_list, strlen(aws_list), record, &s, NULL, 8, &why),
      ERR_INVALID);
  ASSERT_EQ_INT(
      s3_xml_list(aws_list, strlen(aws_list), record, &s, token, 0, &why),
      ERR_INVALID);
  ASSERT_EQ_INT(s.n, 0);
  /* why may be NULL. */
  ASSERT_EQ_INT(s3_xml_list("<x/>", 4, record, &s, token, 8, NULL),
                ERR_INVALID);
  ASSERT_EQ_INT(
      s3_xml_list(aws_list, strlen(aws_list), record, &s, token, 8, NULL), 0);
  ASSERT_EQ_INT(s.n, 2);
}

/* --- hostile documents ---------------------------------------------------- */

static double seconds_since(const struct timespec *t0) {
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (double)(t1.tv_sec - t0->tv_sec) +
         (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Ten levels of ten: 10^9 "lol"s if anything expanded them. */
static const char billion_laughs[] =
    "<?xml version=\"1.0\"?>\n"
    "<!DOCTYPE ListBucketResult [\n"
    " <!ENTITY lol \"lol\">\n"
    " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
    " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;"
    "&lol1;\">\n"
    " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"
    "&lol2;\">\n"
    " <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;"
    "&lol3;\">\n"
    " <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;"
    "&lol4;\">\n"
    " <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;"
    "&lol5;\">\n"
    " <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;"
    "&lol6;\">\n"
    " <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;"
    "&lol7;\">\n"
    " <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;"
    "&lol8;\">\n"
    "]>\n" LIST_OPEN "<Contents><Key>&lol9;</Key><Size>1</Size></Contents>"
    "<IsTruncated>true</IsTruncated>"
    "<NextContinuationToken>&lol9;</NextContinuationToken>" LIST_CLOSE;

static void test_billion_laughs(void) {
  struct seen s;
  struct reason why;
  char token[256];
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int rc = list(billion_laughs, &s, token, &why);
  ASSERT_TRUE(seconds_since(&t0) < 2.0);
  ASSERT_EQ_INT(rc, ERR_INVALID);
  ASSERT_EQ_INT(s.n, 0);
  ASSERT_EQ_STR(token, "");

  struct s3_error e;
  const char *err = strstr(billion_laughs, LIST_OPEN);
  char doc[sizeof billion_laughs + 64];
  snprintf(doc, sizeof doc, "%.*s<Error><Code>&lol9;</Code></Error>",
           (int)(err - billion_laughs), billion_laughs);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  ASSERT_EQ_INT(s3_xml_error(doc, strlen(doc), &e), ERR_INVALID);
  ASSERT_TRUE(seconds_since(&t0) < 2.0);
  ASSERT_EQ_STR(e.code, "");
}

/* A quadratic blow-up: one big entity referred to many times. */
static void test_quadratic_blowup(void) {
  struct buf b;
  buf_init(&b, 1 << 22);
  ASSERT_EQ_INT(buf_appendf(&b, "<!DOCTYPE r [<!ENTITY a \""), 0);
  for (int i = 0; i < 50000; i++)
    ASSERT_EQ_INT(buf_append(&b, "a", 1), 0);
  ASSERT_EQ_INT(buf_appendf(&b, "\">]>" LIST_OPEN "<Contents><Key>"), 0);
  for (int i = 0; i < 50000; i++)
    ASSERT_EQ_INT(buf_append(&b, "&a;", 3), 0);
  ASSERT_EQ_INT(buf_appendf(&b, "</Key><Size>1</Size></Contents>" LIST_CLOSE),
                0);
  struct seen s = {0};
  struct reason why;
  char token[64];
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  ASSERT_EQ_INT(
      s3_xml_list(b.data, b.len, record, &s, token, sizeof token, &why),
      ERR_INVALID);
  ASSERT_TRUE(seconds_since(&t0) < 2.0);
  ASSERT_EQ_INT(s.n, 0);
  buf_free(&b);
}

/* Nothing may be read from the file system: whatever the outcome, no key,
 * token, code or upload id may carry /etc/passwd's contents. */
static void test_external_entities(void) {
  static const char *const docs[] = {
      "<?xml version=\"1.0\"?>\n<!DOCTYPE ListBucketResult [\n"
      " <!ENTITY x SYSTEM \"file:///etc/passwd\">\n]>\n" LIST_OPEN
      "<Contents><Key>k&x;</Key><Size>1</Size></Contents>"
      "<IsTruncated>true</IsTruncated>"
      "<NextContinuationToken>t&x;</NextContinuationToken>" LIST_CLOSE,
      "<?xml version=\"1.0\"?>\n<!DOCTYPE ListBucketResult SYSTEM "
      "\"file:///etc/passwd\">\n" LIST_OPEN
      "<Contents><Key>k</Key><Size>1</Size></Contents>" LIST_CLOSE,
      "<?xml version=\"1.0\"?>\n<!DOCTYPE ListBucketResult [\n"
      " <!ENTITY % p SYSTEM \"file:///etc/passwd\"> %p;\n]>\n" LIST_OPEN
      "<Contents><Key>k</Key><Size>1</Size></Contents>" LIST_CLOSE,
      "<?xml version=\"1.0\"?>\n<!DOCTYPE ListBucketResult [\n"
      " <!ENTITY x SYSTEM \"http://127.0.0.1:1/x\">\n]>\n" LIST_OPEN
      "<Contents><Key>&x;</Key><Size>1</Size></Contents>" LIST_CLOSE,
      LIST_OPEN "<Contents><Key xmlns:xi=\"http://www.w3.org/2001/XInclude\">"
                "<xi:include href=\"file:///etc/passwd\" parse=\"text\"/>"
                "</Key><Size>1</Size></Contents>" LIST_CLOSE,
  };
  for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
    struct seen s;
    struct reason why;
    char token[256];
    int rc = list(docs[i], &s, token, &why);
    ASSERT_EQ_INT(rc, ERR_INVALID);
    ASSERT_EQ_INT(s.n, 0);
    for (size_t k = 0; k < s.n && k < SEEN_MAX; k++)
      ASSERT_TRUE(strstr(s.keys[k], "root:") == NULL);
    ASSERT_TRUE(strstr(token, "root:") == NULL);
  }

  const char *err = "<!DOCTYPE Error [<!ENTITY x SYSTEM \"file:///etc/passwd\">"
                    "]><Error><Code>C</Code><Message>&x;</Message></Error>";
  struct s3_error e;
  ASSERT_EQ_INT(s3_xml_error(err, strlen(err), &e), ERR_INVALID);
  ASSERT_TRUE(strstr(e.message, "root:") == NULL);
  const char *up = "<!DOCTYPE I [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
                   "<InitiateMultipartUploadResult><UploadId>&x;</UploadId>"
                   "</InitiateMultipartUploadResult>";
  char id[4096];
  ASSERT_EQ_INT(s3_xml_upload_id(up, strlen(up), id, sizeof id), ERR_INVALID);
  ASSERT_TRUE(strstr(id, "root:") == NULL);
}

static void test_size_limit(void) {
  size_t max = 16u * 1024 * 1024;
  char *doc = malloc(max + 1);
  ASSERT_TRUE(doc != NULL);
  if (!doc)
    return;
  /* Exactly 16 MiB: a page padded with comments parses (each under
   * libxml2's own 10 MB limit on one text or comment). */
  const char *head = LIST_OPEN "<Contents><Key>big</Key><Size>9</Size>"
                               "</Contents><!--";
  const char *tail = "-->" LIST_CLOSE;
  memset(doc, 'x', max + 1);
  memcpy(doc, head, strlen(head));
  for (size_t at = 1000000; at < max - 1000; at += 1000000)
    memcpy(doc + at, "--><!--", 7);
  memcpy(doc + max - strlen(tail), tail, strlen(tail));
  struct seen s = {0};
  struct reason why = {{0}};
  char token[64];
  ASSERT_EQ_INT(s3_xml_list(doc, max, record, &s, token, sizeof token, &why),
                0);
  ASSERT_EQ_INT(s.n, 1);
  /* One byte more is refused before parsing. */
  memcpy(doc + max + 1 - strlen(tail), tail, strlen(tail));
  memset(&s, 0, sizeof s);
  ASSERT_EQ_INT(
      s3_xml_list(doc, max + 1, record, &s, token, sizeof token, &why),
      ERR_TOO_LARGE);
  ASSERT_EQ_INT(s.n, 0);
  ASSERT_TRUE(strstr(why.text, "16777216") != NULL);
  struct s3_error e;
  ASSERT_EQ_INT(s3_xml_error(doc, max + 1, &e), ERR_INVALID);
  char id[64];
  ASSERT_EQ_INT(s3_xml_upload_id(doc, max + 1, id, sizeof id), ERR_INVALID);
  free(doc);
}

/* libxml2 must not print anything for the documents it refuses: the
 * process's stderr is the access and error log. */
static void test_errors_are_silent(void) {
  FILE *tmp = tmpfile();
  ASSERT_TRUE(tmp != NULL);
  if (!tmp)
    return;
  fflush(stderr);
  int saved = dup(2);
  dup2(fileno(tmp), 2);
  struct seen s;
  struct reason why;
  char token[256];
  struct s3_error e;
  char id[64];
#define DOC(lit)                                                               \
  { lit, sizeof lit - 1 }
  static const struct {
    const char *p;
    size_t n;
  } docs[] = {
      DOC("<a>"),
      DOC("<a></b>"),
      DOC("<?xml version=\"1.0\" encoding=\"bogus\"?><a/>"),
      DOC("<a>&nope;</a>"),
      DOC("<a x=\"1\" x=\"2\"/>"),
      DOC("\xff\xfe<\0a\0/\0>\0"),
      DOC("\xff\xfe<\0a\0>\0\0\xd8"),
      DOC("\0\0\0<\0\0\0a\0\0\0/\0\0\0>"),
      DOC("<a>\xc3</a>"),
      DOC("<!DOCTYPE a SYSTEM \"file:///nonexistent\"><a/>"),
      DOC("<a xmlns:p=\"\"><p:b/></a>"),
      DOC("<?xml version=\"2.0\"?><a/>"),
      DOC("<a><p:b/></a>"),
      /* Converters libxml2 2.9 would report failures of with no context. */
      DOC("<?xml version=\"1.0\" encoding=\"EUC-JP\"?><a>\xff\xff\xff</a>"),
      DOC("<?xml version=\"1.0\" encoding=\"ISO-2022-JP\"?><a>\x1b$B\xff</a>"),
      DOC("<?xml version=\"1.0\" encoding=\"UTF-7\"?><a>+~caf</a>"),
      DOC("<?xml version=\"1.0\" encoding=\"UTF-16\"?><a/>"),
  };
#undef DOC
  for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
    memset(&s, 0, sizeof s);
    s3_xml_list(docs[i].p, docs[i].n, record, &s, token, sizeof token, &why);
    s3_xml_error(docs[i].p, docs[i].n, &e);
    s3_xml_upload_id(docs[i].p, docs[i].n, id, sizeof id);
  }
  list(billion_laughs, &s, token, &why);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  struct stat st;
  ASSERT_EQ_INT(fstat(fileno(tmp), &st), 0);
  ASSERT_EQ_INT(st.st_size, 0);
  fclose(tmp);
}

static void count_error(void *ctx, xmlErrorPtr e) {
  (void)e;
  (*(int *)ctx)++;
}

/* The parser context's own handler comes before the thread's handlers, so
 * a handler some other libxml2 user installed never sees S3's documents. */
static void test_global_handler_untouched(void) {
  int calls = 0;
  xmlSetStructuredErrorFunc(&calls, count_error);
  struct seen s;
  struct reason why;
  char token[256];
  ASSERT_EQ_INT(list("<ListBucketResult>", &s, token, &why), ERR_INVALID);
  struct s3_error e;
  ASSERT_EQ_INT(s3_xml_error("<Error><Code>", 13, &e), ERR_INVALID);
  ASSERT_EQ_INT(calls, 0);
  /* ... and it is still installed. */
  xmlDoc *doc = xmlReadMemory("<a>", 3, NULL, NULL, XML_PARSE_NONET);
  ASSERT_TRUE(doc == NULL);
  ASSERT_TRUE(calls > 0);
  xmlSetStructuredErrorFunc(NULL, NULL);
}

/* --- <Error> -------------------------------------------------------------- */

static void test_error_docs(void) {
  struct s3_error e;
  /* The S3 API reference's Error example, AWS-shaped. */
  const char *sig =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature "
      "we calculated does not match the signature you provided. Check your key "
      "and signing method.</Message><AWSAccessKeyId>AKIAIOSFODNN7EXAMPLE"
      "</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256\n20130524T000000Z\n"
      "20130524/us-east-1/s3/aws4_request\n7344ae5b7ee6c3e7e6b0fe0640412a37625d"
      "1fbfff95c48bbb2dc43964946972</StringToSign><SignatureProvided>f0e8bdb87"
      "c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
      "</SignatureProvided><StringToSignBytes>41 57 53</StringToSignBytes>"
      "<RequestId>4442587FB7D0A2F9</RequestId><HostId>Uuag1LuByRx9e6j5Onimru9"
      "pO4ZVKnJ2Qz7/C1NPcfTWAtRPfTaOFg==</HostId></Error>";
  ASSERT_EQ_INT(s3_xml_error(sig, strlen(sig), &e), 0);
  ASSERT_EQ_STR(e.code, "SignatureDoesNotMatch");
  ASSERT_EQ_STR(e.message, "The request signature we calculated does not "
                           "match the signature you provided. Check your key "
                           "and signing method.");

  /* Ceph RGW: BucketName, RequestId and HostId, often an empty Message. */
  const char *rgw = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error>"
                    "<Code>NoSuchBucket</Code><Message></Message>"
                    "<BucketName>gomirror</BucketName>"
                    "<RequestId>tx00000a1b2c3d4e5f60718-0065e1c0a0-1234-default"
                    "</RequestId><HostId>1234-default-default</HostId>"
                    "</Error>";
  ASSERT_EQ_INT(s3_xml_error(rgw, strlen(rgw), &e), 0);
  ASSERT_EQ_STR(e.code, "NoSuchBucket");
  ASSERT_EQ_STR(e.message, "");

  const char *denied =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n"
      "  <Code>AccessDenied</Code>\n"
      "  <Message>Access Denied</Message>\n"
      "  <RequestId>656c76696e6727732072657175657374</RequestId>\n"
      "  <HostId>Uuag1LuByRx9e6j5Onimru9pO4ZVKnJ2Qz7/C1NPcfTWAtR"
      "PfTaOFg==</HostId>\n</Error>\n";
  ASSERT_EQ_INT(s3_xml_error(denied, strlen(denied), &e), 0);
  ASSERT_EQ_STR(e.code, "AccessDenied");
  ASSERT_EQ_STR(e.message, "Access Denied");

  /* With the S3 namespace, and with no Message at all. */
  const char *ns = "<Error xmlns=\"" S3_NS "\"><Code>NoSuchKey</Code>"
                   "<Key>a&amp;b</Key></Error>";
  ASSERT_EQ_INT(s3_xml_error(ns, strlen(ns), &e), 0);
  ASSERT_EQ_STR(e.code, "NoSuchKey");
  ASSERT_EQ_STR(e.message, "");
}

static void test_error_sanitised(void) {
  struct s3_error e;
  /* Control bytes (tab, newline, carriage return are the ones XML allows). */
  const char *ctl = "<Error><Code>Bad&#9;Code</Code>"
                    "<Message>line one\nline two&#13;\tend &lt;&amp;&gt;"
                    "</Message></Error>";
  ASSERT_EQ_INT(s3_xml_error(ctl, strlen(ctl), &e), 0);
  ASSERT_EQ_STR(e.code, "Bad?Code");
  ASSERT_EQ_STR(e.message, "line one?line two??end <&>");

  /* Long texts are cut to fit, never in the middle of a UTF-8 character. */
  char doc[2048];
  char code[200], msg[600];
  memset(code, 'C', sizeof code - 1);
  code[sizeof code - 1] = '\0';
  for (size_t k = 0; k + 2 < sizeof msg; k += 2) /* two-byte characters */
    memcpy(msg + k, "\xc3\xa9", 3);
  snprintf(doc, sizeof doc,
           "<Error><Code>%s</Code><Message>%s</Message></Error>", code, msg);
  ASSERT_EQ_INT(s3_xml_error(doc, strlen(doc), &e), 0);
  ASSERT_EQ_INT(strlen(e.code), sizeof e.code - 1);
  ASSERT_TRUE(strncmp(e.code, code, sizeof e.code - 1) == 0);
  /* 199 bytes would end half-way through a character: 198 are kept. */
  ASSERT_EQ_INT(strlen(e.message), sizeof e.message - 2);
  ASSERT_TRUE(strncmp(e.message, msg, sizeof e.message - 2) == 0);
  /* Shifted by one ASCII byte, 199 bytes end on a boundary. */
  snprintf(doc, sizeof doc,
           "<Error><Code>C</Code><Message>x%s</Message></Error>", msg);
  ASSERT_EQ_INT(s3_xml_error(doc, strlen(doc), &e), 0);
  ASSERT_EQ_INT(strlen(e.message), sizeof e.message - 1);
  ASSERT_TRUE(e.message[0] == 'x' &&
              strncmp(e.message + 1, msg, sizeof e.message - 2) == 0);
}

static void test_error_invalid(void) {
  static const char *const docs[] = {
      "",
      "<Error>",
      "<Error></Error>",
      "<Error><Code></Code><Message>m</Message></Error>",
      "<Error><Message>no code</Message></Error>",
      "<Error><Code>A</Code><Code>B</Code></Error>",
      "<Error><Code><x/></Code></Error>",
      "<ErrorResponse><Error><Code>A</Code></Error></ErrorResponse>",
      LIST_OPEN LIST_CLOSE,
      "<error><code>lower</code></error>",
  };
  for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
    struct s3_error e;
    memcpy(e.code, "junk", 5);
    memcpy(e.message, "junk", 5);
    ASSERT_EQ_INT(s3_xml_error(docs[i], strlen(docs[i]), &e), ERR_INVALID);
    ASSERT_EQ_STR(e.code, "");
    ASSERT_EQ_STR(e.message, "");
  }
  struct s3_error e;
  ASSERT_EQ_INT(s3_xml_error(NULL, 0, &e), ERR_INVALID);
  ASSERT_EQ_INT(s3_xml_error("<Error/>", 8, NULL), ERR_INVALID);
}

/* --- multipart uploads ---------------------------------------------------- */

static void test_upload_id(void) {
  char id[128];
  /* The CreateMultipartUpload example in the S3 API reference. */
  const char *aws =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<InitiateMultipartUploadResult xmlns=\"" S3_NS "\">\n"
      "  <Bucket>example-bucket</Bucket>\n"
      "  <Key>example-object</Key>\n"
      "  <UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA"
      "</UploadId>\n</InitiateMultipartUploadResult>";
  const char *want =
      "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA";
  ASSERT_EQ_INT(s3_xml_upload_id(aws, strlen(aws), id, sizeof id), 0);
  ASSERT_EQ_STR(id, want);
  ASSERT_EQ_INT(s3_xml_upload_id(aws, strlen(aws), id, strlen(want) + 1), 0);
  ASSERT_EQ_STR(id, want);
  ASSERT_EQ_INT(s3_xml_upload_id(aws, strlen(aws), id, strlen(want)),
                ERR_INVALID);
  ASSERT_EQ_STR(id, "");

  /* Ceph RGW's shape. */
  const char *rgw =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?><InitiateMultipartUploadResult"
      " xmlns=\"" S3_NS "\"><Tenant></Tenant><Bucket>gomirror</Bucket>"
      "<Key>cache/download/a/@v/v1.0.0.zip</Key>"
      "<UploadId>2~iCw_lDY8VoDHdlAqXr_FhNCXjYjKuvR</UploadId>"
      "</InitiateMultipartUploadResult>";
  ASSERT_EQ_INT(s3_xml_upload_id(rgw, strlen(rgw), id, sizeof id), 0);
  ASSERT_EQ_STR(id, "2~iCw_lDY8VoDHdlAqXr_FhNCXjYjKuvR");

  static const char *const bad[] = {
      "<InitiateMultipartUploadResult/>",
      "<InitiateMultipartUploadResult><UploadId></UploadId>"
      "</InitiateMultipartUploadResult>",
      "<InitiateMultipartUploadResult><UploadId>a b</UploadId>"
      "</InitiateMultipartUploadResult>",
      "<InitiateMultipartUploadResult><UploadId>a\nb</UploadId>"
      "</InitiateMultipartUploadResult>",
      "<InitiateMultipartUploadResult><UploadId>caf\xc3\xa9</UploadId>"
      "</InitiateMultipartUploadResult>",
      "<InitiateMultipartUploadResult><UploadId>a</UploadId><UploadId>b"
      "</UploadId></InitiateMultipartUploadResult>",
      "<Error><Code>AccessDenied</Code><UploadId>x</UploadId></Error>",
      "<InitiateMultipartUploadResult><UploadId>x</UploadId>",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    memcpy(id, "junk", 5);
    ASSERT_EQ_INT(s3_xml_upload_id(bad[i], strlen(bad[i]), id, sizeof id),
                  ERR_INVALID);
    ASSERT_EQ_STR(id, "");
  }
  ASSERT_EQ_INT(s3_xml_upload_id(aws, strlen(aws), NULL, 8), ERR_INVALID);
  ASSERT_EQ_INT(s3_xml_upload_id(aws, strlen(aws), id, 0), ERR_INVALID);
  ASSERT_EQ_INT(s3_xml_upload_id(NULL, 0, id, sizeof id), ERR_INVALID);
}

/* Reads a CompleteMultipartUpload body back with libxml2 and checks it lists
 * parts 1..n with exactly these ETags. */
static void check_complete(const struct buf *b, const char *const *etags,
                           size_t n) {
  xmlDoc *doc =
      xmlReadMemory(b->data, (int)b->len, NULL, NULL,
                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  ASSERT_TRUE(doc != NULL);
  if (!doc)
    return;
  xmlNode *root = xmlDocGetRootElement(doc);
  ASSERT_EQ_STR((const char *)root->name, "CompleteMultipartUpload");
  ASSERT_TRUE(root->ns != NULL);
  if (root->ns)
    ASSERT_EQ_STR((const char *)root->ns->href, S3_NS);
  size_t i = 0;
  for (xmlNode *part = root->children; part; part = part->next) {
    ASSERT_TRUE(part->type == XML_ELEMENT_NODE);
    ASSERT_EQ_STR((const char *)part->name, "Part");
    xmlNode *num = part->children;
    xmlNode *etag = num ? num->next : NULL;
    ASSERT_TRUE(num && etag && !etag->next);
    if (!num || !etag || i >= n)
      break;
    ASSERT_EQ_STR((const char *)num->name, "PartNumber");
    ASSERT_EQ_STR((const char *)etag->name, "ETag");
    xmlChar *t = xmlNodeGetContent(num);
    char want[32];
    snprintf(want, sizeof want, "%zu", i + 1);
    ASSERT_EQ_STR((const char *)t, want);
    xmlFree(t);
    t = xmlNodeGetContent(etag);
    ASSERT_EQ_STR((const char *)t, etags[i]);
    xmlFree(t);
    i++;
  }
  ASSERT_EQ_INT(i, n);
  xmlFreeDoc(doc);
}

static void test_complete(void) {
  struct buf b;
  buf_init(&b, 1 << 20);
  const char *one[] = {"\"a54357aff0632cce46d942af68356b38\""};
  ASSERT_EQ_INT(s3_xml_complete(one, 1, &b), 0);
  ASSERT_EQ_STR(buf_cstr(&b),
                "<CompleteMultipartUpload xmlns=\"" S3_NS "\"><Part>"
                "<PartNumber>1</PartNumber>"
                "<ETag>\"a54357aff0632cce46d942af68356b38\"</ETag>"
                "</Part></CompleteMultipartUpload>");
  check_complete(&b, one, 1);

  /* The CompleteMultipartUpload example's three parts, RGW's multipart-style
   * ETag, and characters that must be escaped. */
  const char *etags[] = {
      "\"0c78aef83f66abc1fa1e8477f296d394\"",
      "\"acbd18db4cc2f85cedef654fccc4a4d8\"",
      "\"9b2cf535f27731c974343645a3985328-3\"",
      "\"a&b<c>d'e\"",
      "&amp;",
      "]]>",
  };
  size_t n = sizeof etags / sizeof etags[0];
  buf_reset(&b);
  ASSERT_EQ_INT(s3_xml_complete(etags, n, &b), 0);
  ASSERT_TRUE(strstr(buf_cstr(&b), "a&amp;b&lt;c&gt;d'e") != NULL);
  ASSERT_TRUE(strstr(buf_cstr(&b), "<ETag>&amp;amp;</ETag>") != NULL);
  ASSERT_TRUE(strstr(buf_cstr(&b), "]]&gt;") != NULL);
  check_complete(&b, etags, n);

  /* S3's maximum of 10000 parts, appended after what the buffer held. */
  static const char *many[10001];
  for (size_t i = 0; i < 10001; i++)
    many[i] = "\"d41d8cd98f00b204e9800998ecf8427e\"";
  buf_reset(&b);
  ASSERT_EQ_INT(buf_append(&b, "prefix:", 7), 0);
  ASSERT_EQ_INT(s3_xml_complete(many, 10000, &b), 0);
  ASSERT_TRUE(strncmp(buf_cstr(&b), "prefix:", 7) == 0);
  struct buf rest;
  buf_init(&rest, 1 << 20);
  ASSERT_EQ_INT(buf_append(&rest, b.data + 7, b.len - 7), 0);
  check_complete(&rest, many, 10000);
  ASSERT_TRUE(strstr(buf_cstr(&b), "<PartNumber>10000</PartNumber>") != NULL);
  buf_free(&rest);
  buf_free(&b);
}

static void test_complete_invalid(void) {
  struct buf b;
  buf_init(&b, 1 << 20);
  ASSERT_EQ_INT(buf_append(&b, "kept", 4), 0);
  const char *good = "\"d41d8cd98f00b204e9800998ecf8427e\"";
  const char *with_null[] = {good, NULL};
  const char *empty[] = {good, ""};
  const char *ctl[] = {"\"abc\x01\""};
  const char *nl[] = {"\"abc\n\""};
  const char *utf8[] = {"\"caf\xc3\xa9\""};
  static const char *many[10001];
  for (size_t i = 0; i < 10001; i++)
    many[i] = good;
  ASSERT_EQ_INT(s3_xml_complete(with_null, 2, &b), ERR_INVALID);
  ASSERT_EQ_INT(s3_xml_complete(empty, 2, &b), ERR_INVALID);
  ASSERT_EQ_INT(s3_xml_complete(ctl, 1, &b), ERR_INVALID);
  ASSERT_EQ_INT(s3_xml_complete(nl, 1, &b), ERR_INVALID);
  ASSERT_EQ_INT(s3_xml_complete(utf8, 1, &b), ERR_INVALID);
  ASSERT_EQ_INT(s3_xml_complete(many, 0, &b), ERR_INVALID);
  ASSERT_EQ_INT(s3_xml_complete(many, 10001, &b), ERR_INVALID);
  ASSERT_EQ_INT(s3_xml_complete(NULL, 1, &b), ERR_INVALID);
  ASSERT_EQ_INT(s3_xml_complete(many, 1, NULL), ERR_INVALID);
  ASSERT_EQ_STR(buf_cstr(&b), "kept"); /* a refused part appends nothing */
  buf_free(&b);

  /* Over the buffer's cap: the buffer empties itself, as buf.h says. */
  buf_init(&b, 100);
  ASSERT_EQ_INT(s3_xml_complete(many, 3, &b), ERR_TOO_LARGE);
  ASSERT_EQ_INT(b.len, 0);
  ASSERT_TRUE(b.data == NULL);
  buf_free(&b);
}

/* --- threads ----------------------------------------------------------------
 */

static void *parse_many(void *arg) {
  int *failures = arg;
  for (int i = 0; i < 200; i++) {
    struct seen s = {0};
    struct reason why;
    char token[256];
    struct s3_error e;
    if (s3_xml_list(aws_truncated, strlen(aws_truncated), record, &s, token,
                    sizeof token, &why) != 0 ||
        s.n != 1 ||
        strcmp(token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vb"
                      "OwM=") != 0)
      (*failures)++;
    if (s3_xml_list("<a", 2, record, &s, token, sizeof token, &why) !=
        ERR_INVALID)
      (*failures)++;
    if (s3_xml_error("<Error><Code>X</Code></Error>", 29, &e) != 0)
      (*failures)++;
  }
  return NULL;
}

/* Each parse has its own context; nothing is shared between threads. */
static void test_threads(void) {
  pthread_t t[4];
  int failures[4] = {0};
  for (int i = 0; i < 4; i++)
    ASSERT_EQ_INT(pthread_create(&t[i], NULL, parse_many, &failures[i]), 0);
  for (int i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    ASSERT_EQ_INT(failures[i], 0);
  }
}

int main(void) {
  RUN_TEST(test_threads); /* first, so libxml2 is initialised in a thread */
  RUN_TEST(test_list_aws_example);
  RUN_TEST(test_list_truncated);
  RUN_TEST(test_list_rgw);
  RUN_TEST(test_list_namespaces);
  RUN_TEST(test_list_escaped_keys);
  RUN_TEST(test_list_encoding);
  RUN_TEST(test_list_empty);
  RUN_TEST(test_list_is_truncated);
  RUN_TEST(test_list_bad_contents);
  RUN_TEST(test_list_malformed);
  RUN_TEST(test_list_not_a_list);
  RUN_TEST(test_list_callback_stops);
  RUN_TEST(test_list_arguments);
  RUN_TEST(test_billion_laughs);
  RUN_TEST(test_quadratic_blowup);
  RUN_TEST(test_external_entities);
  RUN_TEST(test_size_limit);
  RUN_TEST(test_errors_are_silent);
  RUN_TEST(test_global_handler_untouched);
  RUN_TEST(test_error_docs);
  RUN_TEST(test_error_sanitised);
  RUN_TEST(test_error_invalid);
  RUN_TEST(test_upload_id);
  RUN_TEST(test_complete);
  RUN_TEST(test_complete_invalid);
  return test_summary();
}
