/* AWS Signature Version 4 for S3 (header and pre-signed URL forms), as a pure
 * library: no I/O, no curl, no globals, so every step can be unit-tested
 * against AWS's published examples. Hashing and HMAC come from libcrypto. */
#ifndef GOMIRROR_STORAGE_S3_SIGN_H
#define GOMIRROR_STORAGE_S3_SIGN_H

#include <stddef.h>
#include <time.h>

/* Limits on inputs; longer ones fail with ERR_TOO_LARGE. */
#define S3_SIGN_SECRET_MAX 512 /* bytes of secret_key */
#define S3_SIGN_TOKEN_MAX 4096 /* bytes of session_token */
#define S3_SIGN_HEADERS_MAX 32 /* entries in s3_sign_req.headers */
#define S3_SIGN_PARAMS_MAX 64  /* parameters in s3_sign_req.query */

/* Sizes of the fields of struct s3_signed, NUL included. */
#define S3_SIGN_URI_MAX 8192
#define S3_SIGN_AUTH_MAX 2048

/* Borrowed strings; nothing here is copied or freed by the signer. */
struct s3_sign_cred {
  const char *access_key; /* printable ASCII without '/', ',' or spaces */
  const char *secret_key;
  const char *session_token; /* NULL (or "") if none */
  const char *region;        /* "us-east-1"; [A-Za-z0-9._-], at most 64 */
  const char *service;       /* "s3"; same rule as region */
};

struct s3_sign_req {
  const char *method; /* "GET", "PUT", ...: upper-case letters */
  const char *host;   /* Host header value, incl. ":port" if non-default */
  /* The object path as raw bytes, starting with '/': "/bucket/example.com/
   * !upper/@v/v1.0.0+incompatible.zip". Every byte outside A-Za-z0-9-._~ and
   * '/' is percent-encoded once (S3 does not double-encode). "." and ".."
   * segments are refused: HTTP clients rewrite them before sending. */
  const char *path;
  /* NULL, "", or "k=v&k2" already URI-encoded: each name and value holds only
   * A-Za-z0-9-._~ and %XX (either hex case; signed and sent upper-case). A
   * parameter without '=' gets an empty value ("lifecycle" is signed as
   * "lifecycle="). Empty parameters ("a&&b", a trailing '&') are refused. */
  const char *query;
  /* Extra "Name: value" lines to sign and send unchanged, NULL-terminated,
   * or NULL. Names are RFC 7230 tokens; values hold no CR, LF or other control
   * byte but tab. Repeated names are signed as one comma-joined header, as
   * AWS specifies. host, x-amz-date, x-amz-content-sha256,
   * x-amz-security-token and authorization are refused: the signer adds the
   * first four itself. */
  const char *const *headers;
  /* 64 lower-case hex digits of the body's SHA-256, or "UNSIGNED-PAYLOAD". */
  const char *payload_sha256_hex;
  time_t now; /* signing time; S3 refuses it once 15 minutes off its clock */
};

/* What to send. Each header field is one complete "Name: value" line without
 * CRLF, ready for curl_slist_append(); an empty string means "do not send". */
struct s3_signed {
  char authorization[S3_SIGN_AUTH_MAX]; /* "Authorization: AWS4-HMAC-..." */
  char amz_date[48];                    /* "x-amz-date: 20130524T000000Z" */
  /* "x-amz-content-sha256: <payload_sha256_hex>", sent and signed on every
   * request when service is "s3" (RGW insists on it); empty for other
   * services, which do not know the header. */
  char content_sha256[96];
  char security_token[S3_SIGN_TOKEN_MAX + 32]; /* empty without a token */
  /* The request target to append to the endpoint: the percent-encoded path,
   * then '?' and the canonical (sorted) query when there is one. It is the
   * exact text that was signed. */
  char uri[S3_SIGN_URI_MAX];
  char signature[65]; /* hex; not secret, for logs and tests */
  /* For comparing with the StringToSign of a SignatureDoesNotMatch error. */
  char string_to_sign[256];
};

/* Signs req for the Authorization header form. Fills *out (caller-owned) and
 * returns 0; ERR_INVALID for a missing or malformed input, ERR_TOO_LARGE past
 * a limit above, ERR_NOMEM when libcrypto fails. On failure *out is zeroed,
 * so no half-signed request can be sent. Inputs are never modified. */
int s3_sign(const struct s3_sign_cred *cred, const struct s3_sign_req *req,
            struct s3_signed *out);

/* The canonical request s3_sign would hash for the same inputs, into out
 * (cap bytes, NUL-terminated), for debug logs and tests. Same errors as
 * s3_sign, plus ERR_TOO_LARGE when it does not fit; on failure out is "". */
int s3_canonical_request(const struct s3_sign_cred *cred,
                         const struct s3_sign_req *req, char *out, size_t cap);

/* Query-string ("pre-signed URL") form, for a GET of the raw path (same rules
 * as s3_sign_req.path) valid for expires seconds (1 to 604800, S3's limit)
 * from now, signing only the host header and an UNSIGNED-PAYLOAD. Writes
 * "<encoded path>?X-Amz-Algorithm=...&X-Amz-Signature=<hex>" into out (cap
 * bytes, NUL-terminated) to append to the endpoint. Errors as s3_sign; on
 * failure out is "". */
int s3_presign(const struct s3_sign_cred *cred, const char *host,
               const char *path, long expires, time_t now, char *out,
               size_t cap);

/* Lower-case hex SHA-256 of len bytes, for payload_sha256_hex. If libcrypto
 * fails (it cannot here short of memory) out is "". */
void s3_sha256_hex(const void *data, size_t len, char out[65]);

/* AWS UriEncode: A-Za-z0-9-._~ are kept, every other byte becomes %XX with
 * upper-case hex; '/' is kept unless encode_slash. Writes a NUL-terminated
 * string into out (cap bytes). ERR_INVALID for NULL in or out, ERR_TOO_LARGE
 * when it does not fit (out is then ""). */
int s3_uri_encode(const char *in, int encode_slash, char *out, size_t cap);

#endif
