/* AWS Signature Version 4 for S3. The canonical request is streamed straight
 * into SHA-256 (and, for s3_canonical_request, into a copy), so its size is
 * bounded only by the inputs; everything else lives in fixed buffers. */
#include "storage/s3_sign.h"

#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define ALGORITHM "AWS4-HMAC-SHA256"
#define NAME_MAX_LEN 64     /* region and service */
#define ACCESS_KEY_MAX 128  /* AWS documents at most 128 characters */
#define HEADER_NAME_MAX 128 /* lower-cased in a stack buffer */
#define EXPIRES_MAX 604800L /* seven days, S3's limit for pre-signed URLs */
/* day/region/service/aws4_request, and the string to sign around it. */
#define SCOPE_MAX (8 + 1 + NAME_MAX_LEN + 1 + NAME_MAX_LEN + 13 + 1)
#define STS_MAX (sizeof ALGORITHM + 17 + SCOPE_MAX + 65)
_Static_assert(sizeof(((struct s3_signed *)0)->string_to_sign) >= STS_MAX,
               "string_to_sign too small for the longest scope");

static const char hex_upper[] = "0123456789ABCDEF"; /* URI escapes */
static const char hex_lower[] = "0123456789abcdef"; /* hashes */

/* --- small helpers ------------------------------------------------------ */

static int is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
}

static int is_hex(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
         (c >= 'A' && c <= 'F');
}

static unsigned char lower(unsigned char c) {
  return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* RFC 7230 tchar. */
static int is_token_char(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || (c != 0 && strchr("!#$%&'*+-.^_`|~", c));
}

static void to_hex(const unsigned char *p, size_t n, char *out) {
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hex_lower[p[i] >> 4];
    out[2 * i + 1] = hex_lower[p[i] & 15];
  }
  out[2 * n] = '\0';
}

/* Appends n bytes to a NUL-terminated string of *len bytes in out[cap]. */
static int append(char *out, size_t cap, size_t *len, const char *p, size_t n) {
  if (n >= cap - *len)
    return ERR_TOO_LARGE;
  memcpy(out + *len, p, n);
  *len += n;
  out[*len] = '\0';
  return 0;
}

static int append_str(char *out, size_t cap, size_t *len, const char *s) {
  return append(out, cap, len, s, strlen(s));
}

/* Percent-encodes n bytes of in onto out (see s3_uri_encode). */
static int append_encoded(char *out, size_t cap, size_t *len, const char *in,
                          size_t n, int encode_slash) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)in[i];
    if (is_unreserved(c) || (c == '/' && !encode_slash)) {
      if (cap - *len < 2)
        return ERR_TOO_LARGE;
      out[(*len)++] = (char)c;
    } else {
      if (cap - *len < 4)
        return ERR_TOO_LARGE;
      out[(*len)++] = '%';
      out[(*len)++] = hex_upper[c >> 4];
      out[(*len)++] = hex_upper[c & 15];
    }
  }
  out[*len] = '\0';
  return 0;
}

/* 1 when s is a non-empty string of at most max bytes matching ok(). */
static int valid_str(const char *s, size_t max, int (*ok)(unsigned char)) {
  if (!s || !*s)
    return 0;
  size_t n = 0;
  for (; s[n]; n++)
    if (n >= max || !ok((unsigned char)s[n]))
      return 0;
  return 1;
}

static int scope_char(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

static int access_key_char(unsigned char c) {
  return c > ' ' && c < 0x7f && c != '/' && c != ',';
}

static int token_char(unsigned char c) {
  return c > ' ' && c < 0x7f;
}

static int host_char(unsigned char c) {
  return c > ' ' && c < 0x7f && c != '/' && c != '?' && c != '#';
}

static int method_char(unsigned char c) {
  return c >= 'A' && c <= 'Z';
}

static int has_token(const struct s3_sign_cred *c) {
  return c->session_token && *c->session_token;
}

static int check_cred(const struct s3_sign_cred *c) {
  if (!c || !valid_str(c->access_key, ACCESS_KEY_MAX, access_key_char) ||
      !c->secret_key || !*c->secret_key ||
      !valid_str(c->region, NAME_MAX_LEN, scope_char) ||
      !valid_str(c->service, NAME_MAX_LEN, scope_char))
    return ERR_INVALID;
  if (strlen(c->secret_key) > S3_SIGN_SECRET_MAX)
    return ERR_TOO_LARGE;
  if (has_token(c)) {
    if (strlen(c->session_token) > S3_SIGN_TOKEN_MAX)
      return ERR_TOO_LARGE;
    if (!valid_str(c->session_token, S3_SIGN_TOKEN_MAX, token_char))
      return ERR_INVALID;
  }
  return 0;
}

static int check_payload(const char *p) {
  if (!p)
    return ERR_INVALID;
  if (strcmp(p, "UNSIGNED-PAYLOAD") == 0)
    return 0;
  for (size_t i = 0; i < 64; i++)
    if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
      return ERR_INVALID;
  return p[64] == '\0' ? 0 : ERR_INVALID;
}

/* "20130524T000000Z" and "20130524". */
static int format_date(time_t now, char amz[17], char day[9]) {
  struct tm tm;
  if (!gmtime_r(&now, &tm))
    return ERR_INVALID;
  if (strftime(amz, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
    return ERR_INVALID; /* years before 1000 or after 9999 */
  memcpy(day, amz, 8);
  day[8] = '\0';
  return 0;
}

/* Encodes a raw path for the canonical URI and the URL. */
static int encode_path(const char *path, char *out, size_t cap, size_t *len) {
  if (!path || path[0] != '/')
    return ERR_INVALID;
  for (const char *seg = path + 1;;) {
    size_t n = strcspn(seg, "/");
    if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
      return ERR_INVALID;
    if (!seg[n])
      break;
    seg += n + 1;
  }
  *len = 0;
  return append_encoded(out, cap, len, path, strlen(path), 0);
}

/* --- the canonical request sink ---------------------------------------- */

struct sink {
  EVP_MD_CTX *md;
  char *copy; /* optional NUL-terminated copy of everything hashed */
  size_t cap, len;
  int rc;
};

static void put(struct sink *s, const void *p, size_t n) {
  if (s->rc || n == 0)
    return;
  if (EVP_DigestUpdate(s->md, p, n) != 1) {
    s->rc = ERR_NOMEM;
    return;
  }
  if (s->copy) {
    if (n >= s->cap - s->len) {
      s->rc = ERR_TOO_LARGE;
      return;
    }
    memcpy(s->copy + s->len, p, n);
    s->len += n;
    s->copy[s->len] = '\0';
  }
}

static void put_str(struct sink *s, const char *str) {
  put(s, str, strlen(str));
}

/* --- headers ------------------------------------------------------------ */

struct hdr {
  const char *name; /* any case; compared and written lower-cased */
  size_t nlen;
  const char *val; /* untrimmed */
  size_t vlen;
};

struct hdrs {
  struct hdr h[S3_SIGN_HEADERS_MAX + 4];
  size_t n;
};

static int name_cmp(const struct hdr *a, const struct hdr *b) {
  size_t n = a->nlen < b->nlen ? a->nlen : b->nlen;
  for (size_t i = 0; i < n; i++) {
    unsigned char x = lower((unsigned char)a->name[i]);
    unsigned char y = lower((unsigned char)b->name[i]);
    if (x != y)
      return x < y ? -1 : 1;
  }
  return a->nlen < b->nlen ? -1 : a->nlen > b->nlen;
}

static int name_is(const struct hdr *h, const char *lname) {
  struct hdr l = {lname, strlen(lname), NULL, 0};
  return name_cmp(h, &l) == 0;
}

static void add_hdr(struct hdrs *hs, const char *lname, const char *val) {
  hs->h[hs->n++] = (struct hdr){lname, strlen(lname), val, strlen(val)};
}

/* Splits "Name: value", checking what AWS and HTTP require of each part. */
static int parse_header(const char *line, struct hdr *h) {
  size_t n = 0;
  while (is_token_char((unsigned char)line[n]))
    n++;
  if (n == 0 || line[n] != ':')
    return ERR_INVALID;
  if (n > HEADER_NAME_MAX)
    return ERR_TOO_LARGE;
  const char *v = line + n + 1;
  for (const char *p = v; *p; p++)
    if (((unsigned char)*p < ' ' && *p != '\t') || *p == 0x7f)
      return ERR_INVALID;
  *h = (struct hdr){line, n, v, strlen(v)};
  static const char *const reserved[] = {
      "host", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token",
      "authorization"};
  for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
    if (name_is(h, reserved[i]))
      return ERR_INVALID;
  return 0;
}

/* Stable insertion sort: repeated names keep their order for joining. */
static void sort_hdrs(struct hdrs *hs) {
  for (size_t i = 1; i < hs->n; i++) {
    struct hdr t = hs->h[i];
    size_t j = i;
    for (; j > 0 && name_cmp(&hs->h[j - 1], &t) > 0; j--)
      hs->h[j] = hs->h[j - 1];
    hs->h[j] = t;
  }
}

static void put_lower(struct sink *s, const char *p, size_t n) {
  char tmp[HEADER_NAME_MAX];
  for (size_t i = 0; i < n; i++)
    tmp[i] = (char)lower((unsigned char)p[i]);
  put(s, tmp, n);
}

/* AWS "Trimall": no leading or trailing blanks, inner runs become one ' '. */
static void put_trimmed(struct sink *s, const char *v, size_t n) {
  int first = 1;
  size_t i = 0;
  while (i < n) {
    while (i < n && (v[i] == ' ' || v[i] == '\t'))
      i++;
    size_t start = i;
    while (i < n && v[i] != ' ' && v[i] != '\t')
      i++;
    if (i > start) {
      if (!first)
        put(s, " ", 1);
      put(s, v + start, i - start);
      first = 0;
    }
  }
}

/* Writes the canonical headers, the blank line and the signed-headers line,
 * and keeps a copy of that list for the Authorization header. */
static int put_headers(struct sink *s, struct hdrs *hs, char *signed_list,
                       size_t cap) {
  size_t slen = 0;
  signed_list[0] = '\0';
  sort_hdrs(hs);
  for (size_t i = 0; i < hs->n;) {
    const struct hdr *h = &hs->h[i];
    put_lower(s, h->name, h->nlen);
    put(s, ":", 1);
    size_t j = i;
    for (; j < hs->n && name_cmp(&hs->h[j], h) == 0; j++) {
      if (j > i)
        put(s, ",", 1);
      put_trimmed(s, hs->h[j].val, hs->h[j].vlen);
    }
    put(s, "\n", 1);
    if (slen && append(signed_list, cap, &slen, ";", 1))
      return ERR_TOO_LARGE;
    if (slen + h->nlen >= cap)
      return ERR_TOO_LARGE;
    for (size_t k = 0; k < h->nlen; k++)
      signed_list[slen++] = (char)lower((unsigned char)h->name[k]);
    signed_list[slen] = '\0';
    i = j;
  }
  put(s, "\n", 1);
  put(s, signed_list, slen);
  put(s, "\n", 1);
  return 0;
}

/* --- query -------------------------------------------------------------- */

struct param {
  const char *k, *v; /* into the normalised copy */
  size_t klen, vlen;
};

static int slice_cmp(const char *a, size_t an, const char *b, size_t bn) {
  int c = memcmp(a, b, an < bn ? an : bn);
  if (c)
    return c;
  return an < bn ? -1 : an > bn;
}

static int param_cmp(const struct param *a, const struct param *b) {
  int c = slice_cmp(a->k, a->klen, b->k, b->klen);
  return c ? c : slice_cmp(a->v, a->vlen, b->v, b->vlen);
}

/* 1 when p[0..n) holds only unreserved bytes and %XX escapes. */
static int encoded_ok(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '%') {
      if (i + 2 >= n)
        return 0;
      if (!is_hex((unsigned char)p[i + 1]) || !is_hex((unsigned char)p[i + 2]))
        return 0;
      i += 2;
    } else if (!is_unreserved((unsigned char)p[i])) {
      return 0;
    }
  }
  return 1;
}

/* Sorts the parameters of q and appends "k=v&k2=v2" to out. */
static int canonical_query(const char *q, char *out, size_t cap, size_t *len) {
  if (!q || !*q)
    return 0;
  size_t qn = strlen(q);
  if (qn >= S3_SIGN_URI_MAX)
    return ERR_TOO_LARGE;
  /* AWS signs escapes with upper-case hex; a server decodes and re-encodes
   * before comparing, so "%2f" must be signed (and sent) as "%2F". */
  char norm[S3_SIGN_URI_MAX];
  memcpy(norm, q, qn + 1);
  for (size_t i = 0; i < qn; i++)
    if (norm[i] == '%')
      for (size_t k = i + 1; k <= i + 2 && k < qn; k++)
        if (norm[k] >= 'a' && norm[k] <= 'f')
          norm[k] = (char)(norm[k] - 'a' + 'A');
  struct param ps[S3_SIGN_PARAMS_MAX];
  size_t np = 0;
  for (const char *p = norm;;) {
    size_t n = strcspn(p, "&");
    if (n == 0)
      return ERR_INVALID;
    if (np == S3_SIGN_PARAMS_MAX)
      return ERR_TOO_LARGE;
    const char *eq = memchr(p, '=', n);
    struct param *pp = &ps[np++];
    pp->k = p;
    pp->klen = eq ? (size_t)(eq - p) : n;
    pp->v = eq ? eq + 1 : p + n;
    pp->vlen = eq ? n - pp->klen - 1 : 0;
    if (pp->klen == 0 || !encoded_ok(pp->k, pp->klen) ||
        !encoded_ok(pp->v, pp->vlen))
      return ERR_INVALID;
    if (!p[n])
      break;
    p += n + 1;
  }
  for (size_t i = 1; i < np; i++) {
    struct param t = ps[i];
    size_t j = i;
    for (; j > 0 && param_cmp(&ps[j - 1], &t) > 0; j--)
      ps[j] = ps[j - 1];
    ps[j] = t;
  }
  for (size_t i = 0; i < np; i++) {
    if ((i && append(out, cap, len, "&", 1)) ||
        append(out, cap, len, ps[i].k, ps[i].klen) ||
        append(out, cap, len, "=", 1) ||
        append(out, cap, len, ps[i].v, ps[i].vlen))
      return ERR_TOO_LARGE;
  }
  return 0;
}

/* --- signing ------------------------------------------------------------ */

static int hmac(const void *key, size_t klen, const char *msg,
                unsigned char out[32]) {
  unsigned int n = 0;
  if (!HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg,
            strlen(msg), out, &n) ||
      n != 32)
    return ERR_NOMEM;
  return 0;
}

/* Everything after the canonical request: the string to sign, the key
 * derived from the secret and the scope, and the hex signature. */
static int finish(const struct s3_sign_cred *c, const char *amz,
                  const char *day, const char *scope,
                  const unsigned char creq_hash[32], char sts[STS_MAX],
                  char sig[65]) {
  char hash_hex[65];
  to_hex(creq_hash, 32, hash_hex);
  snprintf(sts, STS_MAX, "%s\n%s\n%s\n%s", ALGORITHM, amz, scope, hash_hex);

  char key[4 + S3_SIGN_SECRET_MAX];
  size_t slen = strlen(c->secret_key);
  memcpy(key, "AWS4", 4);
  memcpy(key + 4, c->secret_key, slen);
  const char *const steps[] = {c->region, c->service, "aws4_request"};
  unsigned char k[32], next[32], mac[32];
  int rc = hmac(key, 4 + slen, day, k);
  for (size_t i = 0; !rc && i < 3; i++) {
    rc = hmac(k, sizeof k, steps[i], next);
    memcpy(k, next, sizeof k);
  }
  if (!rc)
    rc = hmac(k, sizeof k, sts, mac);
  if (!rc)
    to_hex(mac, 32, sig);
  OPENSSL_cleanse(key, sizeof key);
  OPENSSL_cleanse(k, sizeof k);
  OPENSSL_cleanse(next, sizeof next);
  return rc;
}

/* "20130524/us-east-1/s3/aws4_request"; fits: check_cred bounds the parts. */
static void make_scope(const struct s3_sign_cred *c, const char *day,
                       char scope[SCOPE_MAX]) {
  snprintf(scope, SCOPE_MAX, "%s/%s/%s/aws4_request", day, c->region,
           c->service);
}

static int sink_open(struct sink *s, char *copy, size_t cap) {
  *s = (struct sink){EVP_MD_CTX_new(), copy, cap, 0, 0};
  if (copy)
    copy[0] = '\0';
  if (!s->md || EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1) {
    EVP_MD_CTX_free(s->md);
    s->md = NULL;
    return ERR_NOMEM;
  }
  return 0;
}

static int sink_close(struct sink *s, unsigned char hash[32]) {
  unsigned int n = 0;
  int rc = s->rc;
  if (!rc && (EVP_DigestFinal_ex(s->md, hash, &n) != 1 || n != 32))
    rc = ERR_NOMEM;
  EVP_MD_CTX_free(s->md);
  s->md = NULL;
  return rc;
}

static int header_line(char *out, size_t cap, const char *name,
                       const char *val) {
  int n = snprintf(out, cap, "%s: %s", name, val);
  return n < 0 || (size_t)n >= cap ? ERR_TOO_LARGE : 0;
}

/* s3_sign, optionally keeping a copy of the canonical request. */
static int sign(const struct s3_sign_cred *c, const struct s3_sign_req *r,
                struct s3_signed *out, char *copy, size_t copy_cap) {
  int rc = check_cred(c);
  if (rc)
    return rc;
  if (!r || !valid_str(r->method, 16, method_char) ||
      !valid_str(r->host, 255, host_char) ||
      check_payload(r->payload_sha256_hex))
    return ERR_INVALID;

  char amz[17], day[9];
  if ((rc = format_date(r->now, amz, day)))
    return rc;
  size_t plen = 0, ulen;
  if ((rc = encode_path(r->path, out->uri, sizeof out->uri, &plen)))
    return rc;
  ulen = plen;
  if (r->query && *r->query) {
    if (append(out->uri, sizeof out->uri, &ulen, "?", 1))
      return ERR_TOO_LARGE;
    if ((rc = canonical_query(r->query, out->uri, sizeof out->uri, &ulen)))
      return rc;
  }

  int s3 = strcmp(c->service, "s3") == 0;
  struct hdrs hs = {.n = 0};
  for (size_t i = 0; r->headers && r->headers[i]; i++) {
    if (i == S3_SIGN_HEADERS_MAX)
      return ERR_TOO_LARGE;
    if ((rc = parse_header(r->headers[i], &hs.h[hs.n])))
      return rc;
    hs.n++;
  }
  add_hdr(&hs, "host", r->host);
  add_hdr(&hs, "x-amz-date", amz);
  if (s3)
    add_hdr(&hs, "x-amz-content-sha256", r->payload_sha256_hex);
  if (has_token(c))
    add_hdr(&hs, "x-amz-security-token", c->session_token);

  struct sink s;
  char signed_list[S3_SIGN_AUTH_MAX];
  unsigned char hash[32];
  if ((rc = sink_open(&s, copy, copy_cap)))
    return rc;
  put_str(&s, r->method);
  put(&s, "\n", 1);
  put(&s, out->uri, plen);
  put(&s, "\n", 1);
  if (ulen > plen)
    put(&s, out->uri + plen + 1, ulen - plen - 1);
  put(&s, "\n", 1);
  rc = put_headers(&s, &hs, signed_list, sizeof signed_list);
  put_str(&s, r->payload_sha256_hex);
  int rc2 = sink_close(&s, hash);
  if (rc || (rc = rc2))
    return rc;

  char scope[SCOPE_MAX];
  make_scope(c, day, scope);
  if ((rc = finish(c, amz, day, scope, hash, out->string_to_sign,
                   out->signature)))
    return rc;

  int n = snprintf(out->authorization, sizeof out->authorization,
                   "Authorization: " ALGORITHM
                   " Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                   c->access_key, scope, signed_list, out->signature);
  if (n < 0 || (size_t)n >= sizeof out->authorization)
    return ERR_TOO_LARGE;
  if ((rc =
           header_line(out->amz_date, sizeof out->amz_date, "x-amz-date", amz)))
    return rc;
  if (s3 && (rc = header_line(out->content_sha256, sizeof out->content_sha256,
                              "x-amz-content-sha256", r->payload_sha256_hex)))
    return rc;
  if (has_token(c) &&
      (rc = header_line(out->security_token, sizeof out->security_token,
                        "x-amz-security-token", c->session_token)))
    return rc;
  return 0;
}

int s3_sign(const struct s3_sign_cred *cred, const struct s3_sign_req *req,
            struct s3_signed *out) {
  if (!out)
    return ERR_INVALID;
  memset(out, 0, sizeof *out);
  int rc = sign(cred, req, out, NULL, 0);
  if (rc)
    memset(out, 0, sizeof *out);
  return rc;
}

int s3_canonical_request(const struct s3_sign_cred *cred,
                         const struct s3_sign_req *req, char *out, size_t cap) {
  if (!out || cap == 0)
    return ERR_INVALID;
  out[0] = '\0';
  struct s3_signed *tmp = calloc(1, sizeof *tmp);
  if (!tmp)
    return ERR_NOMEM;
  int rc = sign(cred, req, tmp, out, cap);
  free(tmp);
  if (rc)
    out[0] = '\0';
  return rc;
}

static int presign(const struct s3_sign_cred *c, const char *host,
                   const char *path, long expires, time_t now, char *out,
                   size_t cap) {
  int rc = check_cred(c);
  if (rc)
    return rc;
  if (!valid_str(host, 255, host_char) || expires < 1 || expires > EXPIRES_MAX)
    return ERR_INVALID;
  char amz[17], day[9];
  if ((rc = format_date(now, amz, day)))
    return rc;
  char scope[SCOPE_MAX], cred[ACCESS_KEY_MAX + 1 + SCOPE_MAX], num[24];
  make_scope(c, day, scope);
  snprintf(cred, sizeof cred, "%s/%s", c->access_key, scope);
  snprintf(num, sizeof num, "%ld", expires);

  /* The parameters are written in their canonical (sorted) order, so the
   * text after '?' is also the canonical query string. */
  size_t plen = 0, len;
  if ((rc = encode_path(path, out, cap, &plen)))
    return rc;
  len = plen;
  if (append_str(out, cap, &len, "?X-Amz-Algorithm=" ALGORITHM) ||
      append_str(out, cap, &len, "&X-Amz-Credential=") ||
      append_encoded(out, cap, &len, cred, strlen(cred), 1) ||
      append_str(out, cap, &len, "&X-Amz-Date=") ||
      append_str(out, cap, &len, amz) ||
      append_str(out, cap, &len, "&X-Amz-Expires=") ||
      append_str(out, cap, &len, num))
    return ERR_TOO_LARGE;
  if (has_token(c) && (append_str(out, cap, &len, "&X-Amz-Security-Token=") ||
                       append_encoded(out, cap, &len, c->session_token,
                                      strlen(c->session_token), 1)))
    return ERR_TOO_LARGE;
  if (append_str(out, cap, &len, "&X-Amz-SignedHeaders=host"))
    return ERR_TOO_LARGE;

  struct hdrs hs = {.n = 0};
  add_hdr(&hs, "host", host);
  struct sink s;
  char signed_list[16];
  unsigned char hash[32];
  if ((rc = sink_open(&s, NULL, 0)))
    return rc;
  put_str(&s, "GET\n");
  put(&s, out, plen);
  put(&s, "\n", 1);
  put(&s, out + plen + 1, len - plen - 1);
  put(&s, "\n", 1);
  rc = put_headers(&s, &hs, signed_list, sizeof signed_list);
  put_str(&s, "UNSIGNED-PAYLOAD");
  int rc2 = sink_close(&s, hash);
  if (rc || (rc = rc2))
    return rc;

  char sts[STS_MAX], sig[65];
  if ((rc = finish(c, amz, day, scope, hash, sts, sig)))
    return rc;
  if (append_str(out, cap, &len, "&X-Amz-Signature=") ||
      append_str(out, cap, &len, sig))
    return ERR_TOO_LARGE;
  return 0;
}

int s3_presign(const struct s3_sign_cred *cred, const char *host,
               const char *path, long expires, time_t now, char *out,
               size_t cap) {
  if (!out || cap == 0)
    return ERR_INVALID;
  out[0] = '\0';
  int rc = presign(cred, host, path, expires, now, out, cap);
  if (rc)
    out[0] = '\0';
  return rc;
}

void s3_sha256_hex(const void *data, size_t len, char out[65]) {
  unsigned char md[32];
  unsigned int n = 0;
  out[0] = '\0';
  if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) == 1 && n == 32)
    to_hex(md, 32, out);
}

int s3_uri_encode(const char *in, int encode_slash, char *out, size_t cap) {
  if (!in || !out || cap == 0)
    return ERR_INVALID;
  size_t len = 0;
  out[0] = '\0';
  int rc = append_encoded(out, cap, &len, in, strlen(in), encode_slash);
  if (rc)
    out[0] = '\0';
  return rc;
}
