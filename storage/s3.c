/* The S3 backend: any S3-compatible store (AWS S3, MinIO, Ceph RGW) over
 * libcurl, signed with SigV4 (s3_sign.c), XML read with libxml2 (s3_xml.c).
 * Each thread keeps its own curl handle (a thread-specific key), so
 * connections are reused without locks. Idempotent requests are retried
 * with exponential backoff and jitter on 5xx and connection errors, but never
 * once bytes have been handed to the caller's sink. A ranged GET hands on
 * only an answer that carries exactly the bytes asked for, and all of them
 * or an error: the caller has promised them to a client already. */
#include "storage.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "s3_sign.h"
#include "s3_xml.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define S3_ERRBODY_MAX (64u * 1024)
#define S3_SMALL_MAX (1u << 20) /* XML answers: list pages, upload ids */
#define S3_ATTEMPTS 4
#define S3_KEY_MAX 2048

struct s3_storage {
  struct storage base;
  char bucket[64];
  char prefix[512];   /* "" or "some/prefix/" */
  char base_url[600]; /* scheme://host[:port], the bucket's host if virtual */
  char host[520];     /* Host header value */
  int path_style;
  char region[64];
  char access_key[256];
  char secret_key[S3_SIGN_SECRET_MAX + 1];
  char token[S3_SIGN_TOKEN_MAX + 1];
  char ca_file[512];
  uint64_t part_size;
  long connect_timeout;
  pthread_key_t tls;  /* this thread's CURL * */
  atomic_int use_inm; /* send If-None-Match: * until a 501 says no */
};

static struct s3_storage *s3_of(struct storage *s) {
  return (struct s3_storage *)s;
}

static void free_handle(void *h) {
  curl_easy_cleanup(h);
}

static CURL *handle(struct s3_storage *s3) {
  CURL *h = pthread_getspecific(s3->tls);
  if (!h) {
    h = curl_easy_init();
    if (h)
      pthread_setspecific(s3->tls, h);
  }
  return h;
}

/* --- one request ---------------------------------------------------------- */

struct call {
  const char *method;
  const char *key;        /* object key under the prefix; NULL: the bucket */
  const char *query;      /* canonical-encoded query, or NULL */
  const char *headers[4]; /* extra signed "Name: value" lines, NULL-ended */
  blob_source_fn src;     /* request body, when has_body */
  void *src_arg;
  uint64_t src_off, src_len, sent;
  int has_body;
  char payload[65];  /* hex SHA-256 of the body */
  blob_sink_fn sink; /* 2xx body goes here ... */
  void *sink_arg;
  struct buf *out; /* ... or here */
  int head;
  const struct range *want; /* a ranged GET: exactly these bytes, or none */
  /* results */
  long status;
  int checked; /* the answer was found to carry what want asks */
  int refused; /* ... or not: the transfer was stopped before any byte */
  int sink_rc;
  uint64_t delivered;
  char etag[128];
  int has_length, has_crange;
  uint64_t length;       /* Content-Length */
  uint64_t crange_first; /* Content-Range: bytes first-last/... */
  uint64_t crange_last;
  struct buf err;
};

/* Whether the answer to a ranged GET carries exactly the bytes asked for:
 * a 206 whose Content-Range names the same first and last byte (and whose
 * Content-Length, if any, agrees), or a 200 for a range that starts at 0
 * whose Content-Length is the range's length, which is then the whole
 * blob. Anything else (a store that ignores Range and sends the whole
 * blob, another range) would put bytes the client was not promised on its
 * connection. */
static int range_answered(const struct call *c) {
  const struct range *w = c->want;
  uint64_t last = w->start + w->len - 1;
  if (c->status == 206)
    return c->has_crange && c->crange_first == w->start &&
           c->crange_last == last && (!c->has_length || c->length == w->len);
  return c->status == 200 && w->start == 0 && c->has_length &&
         c->length == w->len;
}

static size_t on_write(char *p, size_t size, size_t n, void *arg) {
  struct call *c = arg;
  size_t len = size * n;
  if (c->status < 200 || c->status > 299) {
    if (c->err.len < S3_ERRBODY_MAX)
      buf_append(&c->err, p, len < S3_ERRBODY_MAX ? len : S3_ERRBODY_MAX);
    return len;
  }
  if (c->want && !c->checked) {
    if (!range_answered(c)) {
      c->refused = 1;
      return 0; /* stops the transfer: nothing reaches the sink */
    }
    c->checked = 1;
  }
  if (c->want && len > c->want->len - c->delivered) {
    c->refused = 1; /* longer than its own headers said */
    return 0;
  }
  if (c->sink) {
    c->sink_rc = c->sink(c->sink_arg, p, len);
    if (c->sink_rc)
      return 0;
    c->delivered += len;
  } else if (c->out) {
    c->sink_rc = buf_append(c->out, p, len);
    if (c->sink_rc)
      return 0;
  }
  return len;
}

/* Digits at *p, after optional blanks, as a uint64: 0 with *p moved past
 * them, or -1 (none, or too many). */
static int header_u64(const char **p, const char *end, uint64_t *out) {
  const char *s = *p;
  while (s < end && (*s == ' ' || *s == '\t'))
    s++;
  uint64_t v = 0;
  const char *d = s;
  for (; s < end && *s >= '0' && *s <= '9'; s++) {
    if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
      return -1;
    v = v * 10 + (uint64_t)(*s - '0');
  }
  if (s == d)
    return -1;
  *p = s;
  *out = v;
  return 0;
}

/* The value of a Content-Range header, "bytes first-last/total" where total
 * may be a star: 1 with the two positions, 0 for anything else. */
static int content_range(const char *v, const char *end, uint64_t *first,
                         uint64_t *last) {
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  if (end - v < 6 || strncasecmp(v, "bytes ", 6) != 0)
    return 0;
  v += 6;
  if (header_u64(&v, end, first) || v >= end || *v++ != '-' ||
      header_u64(&v, end, last) || v >= end || *v != '/')
    return 0;
  return 1;
}

/* Parses the status line, ETag, Content-Length and Content-Range as they
 * arrive, so on_write knows where a body belongs, and whether it is the one
 * asked for, before the first byte of it. */
static size_t on_header(char *p, size_t size, size_t n, void *arg) {
  struct call *c = arg;
  size_t len = size * n;
  const char *end = p + len;
  if (len > 9 && !memcmp(p, "HTTP/", 5)) {
    const char *sp = memchr(p, ' ', len);
    if (sp)
      c->status = strtol(sp + 1, NULL, 10);
    c->etag[0] = '\0';
    c->has_length = c->has_crange = 0;
  } else if (len > 15 && !strncasecmp(p, "Content-Length:", 15)) {
    const char *v = p + 15;
    c->has_length = header_u64(&v, end, &c->length) == 0;
  } else if (len > 14 && !strncasecmp(p, "Content-Range:", 14)) {
    c->has_crange =
        content_range(p + 14, end, &c->crange_first, &c->crange_last);
  } else if (len > 5 && !strncasecmp(p, "ETag:", 5)) {
    const char *v = p + 5;
    size_t vl = len - 5;
    while (vl && (*v == ' ' || *v == '\t'))
      v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
      vl--;
    if (vl < sizeof c->etag) {
      memcpy(c->etag, v, vl);
      c->etag[vl] = '\0';
    }
  }
  return len;
}

static size_t on_read(char *p, size_t size, size_t n, void *arg) {
  struct call *c = arg;
  uint64_t left = c->src_len - c->sent;
  size_t want = size * n;
  if (want > left)
    want = (size_t)left;
  if (!want)
    return 0;
  long long got = c->src(c->src_arg, c->src_off + c->sent, p, want);
  if (got <= 0)
    return CURL_READFUNC_ABORT;
  c->sent += (uint64_t)got;
  return (size_t)got;
}

/* SHA-256 of the body, read through the positional source. */
static int hash_body(struct call *c) {
  unsigned char *chunk = malloc(64 * 1024);
  if (!chunk)
    return ERR_NOMEM;
  /* s3_sha256_hex hashes one buffer; a body is hashed piecewise here. */
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int rc = ctx ? 0 : ERR_NOMEM;
  if (!rc)
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
  for (uint64_t off = 0; !rc && off < c->src_len;) {
    size_t want = c->src_len - off < 65536 ? (size_t)(c->src_len - off) : 65536;
    long long got = c->src(c->src_arg, c->src_off + off, chunk, want);
    if (got <= 0) {
      rc = ERR_IO;
      break;
    }
    EVP_DigestUpdate(ctx, chunk, (size_t)got);
    off += (uint64_t)got;
  }
  if (!rc) {
    unsigned char sum[32];
    EVP_DigestFinal_ex(ctx, sum, NULL);
    for (int i = 0; i < 32; i++)
      snprintf(c->payload + 2 * i, 3, "%02x", sum[i]);
  }
  EVP_MD_CTX_free(ctx);
  free(chunk);
  return rc;
}

static void object_path(struct s3_storage *s3, const char *key, char *out,
                        size_t cap) {
  if (s3->path_style)
    snprintf(out, cap, "/%s%s%s%s", s3->bucket, key ? "/" : "",
             key ? s3->prefix : "", key ? key : "");
  else
    snprintf(out, cap, "/%s%s", key ? s3->prefix : "", key ? key : "");
}

static int perform_once(struct s3_storage *s3, struct call *c, int *transport,
                        struct reason *why) {
  CURL *h = handle(s3);
  if (!h)
    return ERR_NOMEM;
  char path[S3_KEY_MAX + 600];
  object_path(s3, c->key, path, sizeof path);
  struct s3_sign_cred cred = {s3->access_key, s3->secret_key,
                              s3->token[0] ? s3->token : NULL, s3->region,
                              "s3"};
  struct s3_sign_req req = {
      .method = c->method,
      .host = s3->host,
      .path = path,
      .query = c->query,
      .headers = c->headers[0] ? c->headers : NULL,
      .payload_sha256_hex = c->has_body ? c->payload
                                        : "e3b0c44298fc1c149afbf4c8996fb924"
                                          "27ae41e4649b934ca495991b7852b855",
      .now = time(NULL),
  };
  struct s3_signed *sig = malloc(sizeof *sig);
  if (!sig)
    return ERR_NOMEM;
  int rc = s3_sign(&cred, &req, sig);
  if (rc) {
    free(sig);
    return reason_set(why, ERR_STORAGE, "s3: cannot sign %s %.200s: %s",
                      c->method, path, err_str(rc));
  }
  struct buf url;
  buf_init(&url, 16384);
  rc = buf_appendf(&url, "%s%s", s3->base_url, sig->uri);
  struct curl_slist *hl = NULL;
  const char *lines[] = {sig->authorization, sig->amz_date, sig->content_sha256,
                         sig->security_token, "Expect:"};
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
    if (lines[i][0])
      hl = curl_slist_append(hl, lines[i]);
  for (int i = 0; c->headers[i]; i++)
    hl = curl_slist_append(hl, c->headers[i]);
  free(sig);
  if (rc) {
    curl_slist_free_all(hl);
    return rc;
  }

  c->status = 0;
  c->sent = 0;
  c->sink_rc = 0;
  c->checked = c->refused = 0;
  c->has_length = c->has_crange = 0;
  c->etag[0] = '\0';
  buf_reset(&c->err);
  if (c->out)
    buf_reset(c->out);
  curl_easy_reset(h);
  curl_easy_setopt(h, CURLOPT_URL, url.data);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, s3->connect_timeout);
  /* No total timeout (a 500 MiB zip may take long); a stalled transfer is
   * one that moves under 1 KiB/s for 30 s. */
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 30L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
  if (s3->ca_file[0])
    curl_easy_setopt(h, CURLOPT_CAINFO, s3->ca_file);
  if (c->head) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(h, CURLOPT_FILETIME, 1L); /* Last-Modified: stat's mtime */
  } else if (c->has_body) {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, c);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)c->src_len);
  } else if (strcmp(c->method, "GET") != 0) {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
  }
  CURLcode cc = curl_easy_perform(h);
  curl_slist_free_all(hl);
  buf_free(&url);
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  if (code)
    c->status = code;
  *transport = 0;
  if (c->sink_rc)
    return c->sink_rc;
  if (c->refused)
    return reason_set(why, ERR_STORAGE,
                      "s3 GET %.200s: answered %ld, not exactly the bytes "
                      "%llu-%llu asked for (does the store ignore Range?)",
                      c->key, c->status, (unsigned long long)c->want->start,
                      (unsigned long long)(c->want->start + c->want->len - 1));
  if (cc != CURLE_OK) {
    *transport = 1;
    return reason_set(why, ERR_STORAGE, "s3 %s unreachable: %s", s3->base_url,
                      curl_easy_strerror(cc));
  }
  return 0;
}

/* Turns a non-2xx answer into an error code and a reason naming S3's error
 * code, e.g. "s3 PUT x: 403 SignatureDoesNotMatch: ...". */
static int map_status(struct s3_storage *s3, struct call *c,
                      struct reason *why) {
  struct s3_error e;
  memset(&e, 0, sizeof e);
  if (c->err.len)
    s3_xml_error(c->err.data, c->err.len, &e);
  const char *what = c->key ? c->key : s3->bucket;
  if (c->status == 404 && strcmp(e.code, "NoSuchBucket") == 0)
    return reason_set(why, ERR_STORAGE,
                      "s3 bucket %s does not exist (NoSuchBucket)", s3->bucket);
  if (c->status == 404)
    return reason_set(why, ERR_NOT_FOUND, "s3: %.200s: not found", what);
  if (c->status == 412)
    return reason_set(why, ERR_EXISTS, "s3: %.200s already exists", what);
  if (c->status == 501)
    return reason_set(why, ERR_UNSUPPORTED, "s3 %s %.200s: 501 %s", c->method,
                      what, e.code[0] ? e.code : "NotImplemented");
  if (c->status == 403 && !e.code[0] && c->head)
    return reason_set(why, ERR_STORAGE,
                      "s3 %s %.200s: 403 (access denied or bad credentials)",
                      c->method, what);
  return reason_set(why, ERR_STORAGE, "s3 %s %.200s: %ld %s%s%s", c->method,
                    what, c->status, e.code[0] ? e.code : "error",
                    e.message[0] ? ": " : "", e.message);
}

static int perform(struct s3_storage *s3, struct call *c, int idempotent,
                   struct reason *why) {
  int rc = 0;
  buf_init(&c->err, S3_ERRBODY_MAX + 1);
  if (c->has_body && !c->payload[0]) {
    rc = hash_body(c);
    if (rc) {
      buf_free(&c->err);
      return reason_set(why, rc, "s3: cannot read the body to send");
    }
  }
  for (int attempt = 0;; attempt++) {
    int transport = 0;
    rc = perform_once(s3, c, &transport, why);
    int server_error =
        !rc && (c->status >= 500 || c->status == 429) && c->status != 501;
    if (!rc && !server_error)
      break;
    int retryable = (transport || server_error) && idempotent &&
                    c->delivered == 0 && attempt + 1 < S3_ATTEMPTS;
    if (!retryable)
      break;
    /* Exponential backoff, 100 ms doubling, with full jitter. */
    unsigned base = 100000u << attempt;
    usleep(base / 2 + arc4random_uniform(base / 2 + 1));
    log_debug("s3 %s %s: retry %d after %s", c->method,
              c->key ? c->key : s3->bucket, attempt + 1,
              transport ? "a connection error" : "a server error");
  }
  if (!rc && (c->status < 200 || c->status > 299))
    rc = map_status(s3, c, why);
  buf_free(&c->err);
  return rc;
}

/* --- storage_ops -----------------------------------------------------------
 */

static int parse_target(struct s3_storage *s3, const struct config *cfg,
                        struct reason *why) {
  const char *p = cfg->storage + strlen("s3://");
  size_t bl = strcspn(p, "/");
  if (bl == 0 || bl >= sizeof s3->bucket)
    return reason_set(why, ERR_CONFIG, "storage=%s: bad bucket name",
                      cfg->storage);
  memcpy(s3->bucket, p, bl);
  s3->bucket[bl] = '\0';
  const char *pre = p + bl;
  while (*pre == '/')
    pre++;
  size_t pl = strlen(pre);
  while (pl && pre[pl - 1] == '/')
    pl--;
  if (pl + 2 > sizeof s3->prefix)
    return reason_set(why, ERR_CONFIG, "storage=%s: prefix too long",
                      cfg->storage);
  if (pl)
    snprintf(s3->prefix, sizeof s3->prefix, "%.*s/", (int)pl, pre);

  const char *ep = cfg->s3_endpoint;
  char def[200];
  if (!ep || !ep[0]) {
    snprintf(def, sizeof def, "https://s3.%s.amazonaws.com", cfg->s3_region);
    ep = def;
  }
  s3->path_style = strcmp(cfg->s3_path_style, "true") == 0 ||
                   (strcmp(cfg->s3_path_style, "auto") == 0 &&
                    cfg->s3_endpoint && cfg->s3_endpoint[0]);
  const char *sep = strstr(ep, "://");
  if (!sep || (strncmp(ep, "http://", 7) && strncmp(ep, "https://", 8)))
    return reason_set(why, ERR_CONFIG,
                      "s3_endpoint=%s: must be an http or https URL", ep);
  const char *hp = sep + 3;
  size_t hl = strcspn(hp, "/");
  if (hl == 0 || hl + 80 > sizeof s3->host)
    return reason_set(why, ERR_CONFIG, "s3_endpoint=%s: bad host", ep);
  if (hp[hl] && strcmp(hp + hl, "/") != 0)
    return reason_set(why, ERR_CONFIG, "s3_endpoint=%s: must not have a path",
                      ep);
  if (s3->path_style)
    snprintf(s3->host, sizeof s3->host, "%.*s", (int)hl, hp);
  else
    snprintf(s3->host, sizeof s3->host, "%s.%.*s", s3->bucket, (int)hl, hp);
  snprintf(s3->base_url, sizeof s3->base_url, "%.*s%s", (int)(hp - ep), ep,
           s3->host);
  return 0;
}

static void copy_cred(char *dst, size_t cap, const char *cfg_value,
                      const char *env) {
  const char *v = cfg_value && cfg_value[0] ? cfg_value : getenv(env);
  snprintf(dst, cap, "%s", v ? v : "");
}

static int s3_ready(struct storage *s, struct reason *why);

static int s3_open(const struct config *cfg, struct storage **out,
                   struct reason *why) {
  struct s3_storage *s3 = calloc(1, sizeof *s3);
  if (!s3)
    return ERR_NOMEM;
  s3->base.ops = &storage_s3_ops;
  int rc = parse_target(s3, cfg, why);
  if (rc) {
    free(s3);
    return rc;
  }
  snprintf(s3->region, sizeof s3->region, "%s", cfg->s3_region);
  copy_cred(s3->access_key, sizeof s3->access_key, cfg->s3_access_key,
            "AWS_ACCESS_KEY_ID");
  copy_cred(s3->secret_key, sizeof s3->secret_key, cfg->s3_secret_key,
            "AWS_SECRET_ACCESS_KEY");
  copy_cred(s3->token, sizeof s3->token, NULL, "AWS_SESSION_TOKEN");
  snprintf(s3->ca_file, sizeof s3->ca_file, "%s",
           cfg->s3_ca_file ? cfg->s3_ca_file : "");
  if (s3->ca_file[0] && access(s3->ca_file, R_OK) != 0) {
    int e = errno;
    free(s3);
    return reason_set(why, ERR_CONFIG, "s3_ca_file: cannot read '%.200s': %s",
                      cfg->s3_ca_file, strerror(e));
  }
  if (!s3->access_key[0] || !s3->secret_key[0]) {
    free(s3);
    return reason_set(why, ERR_CONFIG,
                      "storage=%s: no S3 credentials (set s3_access_key and "
                      "s3_secret_key, or AWS_ACCESS_KEY_ID and "
                      "AWS_SECRET_ACCESS_KEY)",
                      cfg->storage);
  }
  s3->part_size = (uint64_t)cfg->s3_part_mb << 20;
  s3->connect_timeout = cfg->connect_timeout;
  atomic_store(&s3->use_inm, 1);
  if (pthread_key_create(&s3->tls, free_handle)) {
    free(s3);
    return ERR_NOMEM;
  }
  *out = &s3->base;
  return 0;
}

static void s3_close(struct storage *s) {
  if (!s)
    return;
  struct s3_storage *s3 = s3_of(s);
  CURL *h = pthread_getspecific(s3->tls);
  if (h) {
    pthread_setspecific(s3->tls, NULL);
    curl_easy_cleanup(h);
  }
  pthread_key_delete(s3->tls);
  OPENSSL_cleanse(s3->secret_key, sizeof s3->secret_key);
  free(s3);
}

static int s3_stat(struct storage *s, const char *key, struct blob_stat *out) {
  struct s3_storage *s3 = s3_of(s);
  struct call c = {.method = "HEAD", .key = key, .head = 1};
  struct reason why = {{0}};
  int rc = perform(s3, &c, 1, &why);
  if (rc) {
    if (rc != ERR_NOT_FOUND)
      log_warn("%s", reason_text(&why, rc));
    return rc == ERR_NOT_FOUND ? rc : ERR_STORAGE;
  }
  CURL *h = handle(s3);
  curl_off_t len = 0;
  curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
  out->size = len > 0 ? (uint64_t)len : 0;
  curl_off_t ft = -1;
  curl_easy_getinfo(h, CURLINFO_FILETIME_T, &ft);
  out->mtime = ft > 0 ? (time_t)ft : 0;
  /* S3's ETag (quoted MD5, or MD5-parts) is strong; one too long for the
   * field is replaced rather than cut, so it can never match wrongly. */
  if (c.etag[0] && strlen(c.etag) < sizeof out->etag)
    memcpy(out->etag, c.etag, strlen(c.etag) + 1);
  else
    snprintf(out->etag, sizeof out->etag, "\"%llx\"",
             (unsigned long long)out->size);
  return 0;
}

static int s3_get(struct storage *s, const char *key, const struct range *r,
                  blob_sink_fn sink, void *arg) {
  struct s3_storage *s3 = s3_of(s);
  char range[80];
  struct call c = {
      .method = "GET", .key = key, .sink = sink, .sink_arg = arg, .want = r};
  if (r) {
    if (r->len == 0)
      return 0;
    snprintf(range, sizeof range, "Range: bytes=%llu-%llu",
             (unsigned long long)r->start,
             (unsigned long long)(r->start + r->len - 1));
    c.headers[0] = range;
  }
  struct reason why = {{0}};
  int rc = perform(s3, &c, 1, &why);
  /* Every byte asked for, or an error: a body that ended early (a chunked
   * one curl cannot check) must not pass for a whole one. */
  if (!rc && r && c.delivered != r->len)
    rc =
        reason_set(&why, ERR_STORAGE,
                   "s3 GET %s: %llu of %llu bytes, then the answer ended", key,
                   (unsigned long long)c.delivered, (unsigned long long)r->len);
  if (rc && rc != ERR_NOT_FOUND && rc != c.sink_rc)
    log_warn("%s", reason_text(&why, rc));
  if (rc && rc == c.sink_rc)
    return rc;
  return rc == 0 || rc == ERR_NOT_FOUND ? rc : ERR_STORAGE;
}

static int put_single(struct s3_storage *s3, const char *key,
                      blob_source_fn src, void *arg, uint64_t size,
                      int replace, struct reason *why) {
  for (;;) {
    int inm = !replace && atomic_load(&s3->use_inm);
    struct call c = {.method = "PUT",
                     .key = key,
                     .src = src,
                     .src_arg = arg,
                     .src_len = size,
                     .has_body = 1};
    if (inm)
      c.headers[0] = "If-None-Match: *";
    int rc = perform(s3, &c, 1, why);
    if (rc == ERR_EXISTS)
      return 0; /* first writer won: the content is the same, immutable */
    if (rc == ERR_UNSUPPORTED && inm) {
      atomic_store(&s3->use_inm, 0);
      log_info("s3: the store does not support If-None-Match on PUT; "
               "writing without it");
      continue;
    }
    return rc;
  }
}

struct mem_body {
  const char *p;
  size_t n;
};

static long long mem_body_read(void *arg, uint64_t off, void *data,
                               size_t cap) {
  struct mem_body *m = arg;
  if (off >= m->n)
    return 0;
  size_t k = m->n - (size_t)off < cap ? m->n - (size_t)off : cap;
  memcpy(data, m->p + off, k);
  return (long long)k;
}

static int put_multipart(struct s3_storage *s3, const char *key,
                         blob_source_fn src, void *arg, uint64_t size,
                         struct reason *why) {
  struct buf body;
  buf_init(&body, S3_SMALL_MAX);
  struct call c = {
      .method = "POST", .key = key, .query = "uploads", .out = &body};
  int rc = perform(s3, &c, 0, why);
  char id[1024], id_enc[3200], query[3300];
  if (!rc && s3_xml_upload_id(body.data, body.len, id, sizeof id))
    rc = reason_set(why, ERR_STORAGE, "s3: no UploadId for %s", key);
  buf_free(&body);
  if (rc)
    return rc;
  if (s3_uri_encode(id, 1, id_enc, sizeof id_enc))
    return reason_set(why, ERR_STORAGE, "s3: UploadId too long");
  size_t parts = (size_t)((size + s3->part_size - 1) / s3->part_size);
  char **etags = calloc(parts, sizeof *etags);
  if (!etags)
    return ERR_NOMEM;
  for (size_t i = 0; i < parts && !rc; i++) {
    uint64_t off = (uint64_t)i * s3->part_size;
    uint64_t len = size - off < s3->part_size ? size - off : s3->part_size;
    snprintf(query, sizeof query, "partNumber=%zu&uploadId=%s", i + 1, id_enc);
    struct call pc = {.method = "PUT",
                      .key = key,
                      .query = query,
                      .src = src,
                      .src_arg = arg,
                      .src_off = off,
                      .src_len = len,
                      .has_body = 1};
    rc = perform(s3, &pc, 1, why);
    if (!rc && !pc.etag[0])
      rc = reason_set(why, ERR_STORAGE, "s3: no ETag for part %zu of %s", i + 1,
                      key);
    if (!rc && !(etags[i] = strdup(pc.etag)))
      rc = ERR_NOMEM;
  }
  if (!rc) {
    struct buf xml, resp;
    buf_init(&xml, 1u << 24);
    buf_init(&resp, S3_SMALL_MAX);
    rc = s3_xml_complete((const char *const *)etags, parts, &xml);
    snprintf(query, sizeof query, "uploadId=%s", id_enc);
    if (!rc) {
      struct mem_body mb = {xml.data, xml.len};
      struct call cc = {.method = "POST",
                        .key = key,
                        .query = query,
                        .out = &resp,
                        .has_body = 1,
                        .src = mem_body_read,
                        .src_arg = &mb,
                        .src_len = xml.len};
      rc = perform(s3, &cc, 1, why);
      /* S3 may answer 200 and still put an <Error> in the body. */
      struct s3_error e;
      if (!rc && s3_xml_error(resp.data, resp.len, &e) == 0)
        rc = reason_set(why, ERR_STORAGE, "s3 complete %s: %s: %s", key, e.code,
                        e.message);
    }
    buf_free(&xml);
    buf_free(&resp);
  }
  if (rc) {
    snprintf(query, sizeof query, "uploadId=%s", id_enc);
    struct call ac = {.method = "DELETE", .key = key, .query = query};
    struct reason ignore = {{0}};
    perform(s3, &ac, 1, &ignore);
  }
  for (size_t i = 0; i < parts; i++)
    free(etags[i]);
  free(etags);
  return rc;
}

static int s3_put(struct storage *s, const char *key, blob_source_fn src,
                  void *arg, uint64_t size) {
  struct s3_storage *s3 = s3_of(s);
  struct reason why = {{0}};
  int rc = size > s3->part_size ? put_multipart(s3, key, src, arg, size, &why)
                                : put_single(s3, key, src, arg, size, 0, &why);
  if (rc)
    log_warn("%s", reason_text(&why, rc));
  return rc ? ERR_STORAGE : 0;
}

/* A small mutable object (a signed head): PUT replaces it atomically. */
static int s3_replace(struct storage *s, const char *key, blob_source_fn src,
                      void *arg, uint64_t size) {
  struct reason why = {{0}};
  int rc = put_single(s3_of(s), key, src, arg, size, 1, &why);
  if (rc)
    log_warn("%s", reason_text(&why, rc));
  return rc ? ERR_STORAGE : 0;
}

static int s3_del(struct storage *s, const char *key) {
  struct call c = {.method = "DELETE", .key = key};
  struct reason why = {{0}};
  int rc = perform(s3_of(s), &c, 1, &why);
  if (rc && rc != ERR_NOT_FOUND)
    log_warn("%s", reason_text(&why, rc));
  return rc == 0 || rc == ERR_NOT_FOUND ? rc : ERR_STORAGE;
}

struct list_ctx {
  const char *prefix; /* the store's prefix, stripped from keys */
  blob_list_fn fn;
  void *arg;
};

static int list_one(void *arg, const char *key, uint64_t size) {
  struct list_ctx *l = arg;
  size_t pl = strlen(l->prefix);
  if (strncmp(key, l->prefix, pl) != 0)
    return 0;
  return l->fn(l->arg, key + pl, size);
}

static int s3_list(struct storage *s, const char *prefix, blob_list_fn fn,
                   void *arg) {
  struct s3_storage *s3 = s3_of(s);
  char full[S3_KEY_MAX], enc[3 * S3_KEY_MAX], token[2048] = "", tok_enc[6200];
  struct buf query, body;
  snprintf(full, sizeof full, "%s%s", s3->prefix, prefix);
  if (s3_uri_encode(full, 1, enc, sizeof enc))
    return ERR_INVALID;
  struct list_ctx l = {s3->prefix, fn, arg};
  buf_init(&query, 16384);
  buf_init(&body, 16u << 20);
  int rc = 0;
  for (int page = 0; page < 100000; page++) {
    buf_reset(&query);
    rc = buf_appendf(&query, "list-type=2&prefix=%s", enc);
    if (!rc && token[0]) {
      if (s3_uri_encode(token, 1, tok_enc, sizeof tok_enc))
        rc = ERR_INVALID;
      else
        rc = buf_appendf(&query, "&continuation-token=%s", tok_enc);
    }
    if (rc)
      break;
    struct call c = {.method = "GET", .query = query.data, .out = &body};
    struct reason why = {{0}};
    rc = perform(s3, &c, 1, &why);
    if (!rc)
      rc = s3_xml_list(body.data, body.len, list_one, &l, token, sizeof token,
                       &why);
    if (rc) {
      log_warn("s3 list %s: %s", full, reason_text(&why, rc));
      rc = rc == ERR_NOT_FOUND ? rc : ERR_STORAGE;
      break;
    }
    if (!token[0])
      break;
  }
  buf_free(&query);
  buf_free(&body);
  return rc;
}

static int s3_ready(struct storage *s, struct reason *why) {
  struct s3_storage *s3 = s3_of(s);
  struct buf body;
  buf_init(&body, S3_SMALL_MAX);
  struct call c = {
      .method = "GET", .query = "list-type=2&max-keys=1", .out = &body};
  int rc = perform(s3, &c, 1, why);
  buf_free(&body);
  if (!rc)
    return 0;
  /* The store answered and refused (a wrong secret, no such bucket, no
   * access): waiting will not change that. Anything else (no answer, 5xx)
   * may pass. */
  return c.status >= 400 && c.status < 500 ? ERR_CONFIG : ERR_STORAGE;
}

static int s3_presign_key(struct storage *s, const char *key, long ttl,
                          char *url, size_t cap) {
  struct s3_storage *s3 = s3_of(s);
  char path[S3_KEY_MAX + 600], signed_path[16384];
  object_path(s3, key, path, sizeof path);
  struct s3_sign_cred cred = {s3->access_key, s3->secret_key,
                              s3->token[0] ? s3->token : NULL, s3->region,
                              "s3"};
  int rc = s3_presign(&cred, s3->host, path, ttl, time(NULL), signed_path,
                      sizeof signed_path);
  if (rc)
    return rc;
  int n = snprintf(url, cap, "%s%s", s3->base_url, signed_path);
  return n < 0 || (size_t)n >= cap ? ERR_TOO_LARGE : 0;
}

const struct storage_ops storage_s3_ops = {
    .name = "s3",
    .open = s3_open,
    .close = s3_close,
    .stat = s3_stat,
    .get = s3_get,
    .put = s3_put,
    .replace = s3_replace,
    .del = s3_del,
    .list = s3_list,
    .ready = s3_ready,
    .presign = s3_presign_key,
};
