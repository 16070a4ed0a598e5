/* The few S3 XML documents gomirror reads and writes, parsed with libxml2:
 * <Error>, ListObjectsV2's <ListBucketResult>, multipart uploads'
 * <InitiateMultipartUploadResult>, and the <CompleteMultipartUpload> body. */
#ifndef GOMIRROR_STORAGE_S3_XML_H
#define GOMIRROR_STORAGE_S3_XML_H

#include <stddef.h>
#include <stdint.h>

struct buf;
struct reason;

struct s3_error {
  char code[64];     /* "SignatureDoesNotMatch", "NoSuchBucket", ... */
  char message[200]; /* S3's own message, control bytes replaced */
};

/* Parses an S3 <Error> document. 0 with out->code non-empty, or
 * ERR_INVALID when body is not one (out left empty). */
int s3_xml_error(const char *body, size_t len, struct s3_error *out);

/* Parses one ListObjectsV2 page: calls fn(arg, key, size) for every
 * <Contents> (a non-zero return stops and is returned), then, when
 * <IsTruncated> is true, copies <NextContinuationToken> to token (cap bytes;
 * ERR_INVALID if it does not fit or is missing), else sets token to "".
 * ERR_INVALID with why for a body that is not a ListBucketResult. */
int s3_xml_list(const char *body, size_t len,
                int (*fn)(void *arg, const char *key, uint64_t size), void *arg,
                char *token, size_t cap, struct reason *why);

/* <InitiateMultipartUploadResult><UploadId>: 0 or ERR_INVALID. */
int s3_xml_upload_id(const char *body, size_t len, char *out, size_t cap);

/* Appends <CompleteMultipartUpload> with parts 1..n and their ETags (as S3
 * returned them, quotes included) to out, XML-escaped. */
int s3_xml_complete(const char *const *etags, size_t n, struct buf *out);

#endif
