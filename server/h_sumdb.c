/* Checksum-database pass-through (PROTOCOL.md E). Bodies are relayed byte for
 * byte: the client checks signatures and proofs itself. Successful lookups
 * and full tiles never change, so they are kept in storage under
 * sumdb/<name>/...; /latest and partial tiles are relayed each time, with
 * the last good /latest kept to serve when the database is unreachable. */
#include "sumdb.h"

#include "access.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "hash1.h"
#include "http.h"
#include "mod/private.h"
#include "modpath.h"
#include "server.h"
#include "storage/meta.h"
#include "storage/storage.h"
#include "upstream.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SUMDB_BODY_MAX (1u << 20)

void sumdb_list_free(struct sumdb_list *l) {
  if (!l)
    return;
  for (size_t i = 0; i < l->n; i++) {
    free(l->v[i].name);
    free(l->v[i].url);
    free(l->v[i].shown);
  }
  free(l->v);
  free(l);
}

int sumdb_list_parse(const char *spec, struct sumdb_list **out,
                     struct reason *why) {
  *out = NULL;
  struct sumdb_list *l = calloc(1, sizeof *l);
  if (!l)
    return ERR_NOMEM;
  const char *p = spec;
  while (*p) {
    size_t n = strcspn(p, ",");
    const char *eq = memchr(p, '=', n);
    if (!eq || eq == p || eq + 1 == p + n) {
      sumdb_list_free(l);
      return reason_set(why, ERR_CONFIG,
                        "sumdb: entries are name=url, got '%.*s'",
                        (int)(n > 80 ? 80 : n), p);
    }
    struct sumdb_entry *v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v) {
      sumdb_list_free(l);
      return ERR_NOMEM;
    }
    l->v = v;
    struct sumdb_entry *e = &v[l->n++];
    size_t ul = (size_t)(p + n - eq - 1);
    while (ul && eq[ul] == '/')
      ul--;
    e->name = strndup(p, (size_t)(eq - p));
    e->url = strndup(eq + 1, ul);
    e->shown = malloc(ul + 1);
    if (!e->name || !e->url || !e->shown) {
      sumdb_list_free(l);
      return ERR_NOMEM;
    }
    upstream_redact(e->url, e->shown, ul + 1);
    p += n;
    if (*p == ',')
      p++;
  }
  *out = l;
  return 0;
}

static int all_digits(const char *s, size_t n) {
  if (!n)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9')
      return 0;
  return 1;
}

/* tile/<H>/<L|data>/<K>[.p/<W>], K as tlog writes it: x001/x234/567. */
static int tile_ok(const char *t, int *partial) {
  const char *p = t;
  size_t n = strcspn(p, "/");
  if (n > 2 || !all_digits(p, n) || p[n] != '/')
    return 0;
  long h = strtol(p, NULL, 10); /* tlog.ParseTilePath: 1 <= H <= 30 */
  if (h < 1 || h > 30 || p[0] == '0')
    return 0;
  p += n + 1;
  n = strcspn(p, "/");
  if (!((n == 4 && !memcmp(p, "data", 4)) || (n <= 2 && all_digits(p, n))) ||
      p[n] != '/')
    return 0;
  p += n + 1;
  for (int groups = 0;; groups++) {
    if (groups > 8)
      return 0;
    if (p[0] == 'x') {
      if (!all_digits(p + 1, 3) || p[4] != '/')
        return 0;
      p += 5;
      continue;
    }
    if (!all_digits(p, 3))
      return 0;
    p += 3;
    break;
  }
  *partial = 0;
  if (!*p)
    return 1;
  if (strncmp(p, ".p/", 3) != 0)
    return 0;
  p += 3;
  n = strlen(p);
  if (n > 3 || !all_digits(p, n) || p[0] == '0')
    return 0;
  long w = strtol(p, NULL, 10);
  if (w < 1 || w >= 1L << h)
    return 0;
  *partial = 1;
  return 1;
}

int sumdb_parse_rest(const char *rest, enum sumdb_kind *kind, int *partial,
                     char *mod, size_t mod_cap, char *ver, size_t ver_cap,
                     struct reason *why) {
  *partial = 0;
  if (strcmp(rest, "supported") == 0) {
    *kind = SUMDB_SUPPORTED;
    return 0;
  }
  if (strcmp(rest, "latest") == 0) {
    *kind = SUMDB_LATEST;
    return 0;
  }
  if (strncmp(rest, "tile/", 5) == 0) {
    if (!tile_ok(rest + 5, partial))
      return reason_set(why, ERR_NOT_FOUND, "not a checksum database tile");
    *kind = SUMDB_TILE;
    return 0;
  }
  if (strncmp(rest, "lookup/", 7) == 0) {
    const char *q = rest + 7;
    const char *at = strrchr(q, '@');
    if (!at || at == q || !at[1])
      return reason_set(why, ERR_INVALID, "lookup needs <module>@<version>");
    size_t ml = (size_t)(at - q), vl = strlen(at + 1);
    if (ml >= mod_cap || vl >= ver_cap)
      return reason_set(why, ERR_INVALID, "lookup path too long");
    memcpy(mod, q, ml);
    mod[ml] = '\0';
    memcpy(ver, at + 1, vl + 1);
    char path[MODPATH_MAX + 1], v[VERSION_MAX + 1];
    if (modpath_unescape(mod, path, sizeof path) ||
        modpath_unescape(ver, v, sizeof v))
      return reason_set(why, ERR_INVALID, "invalid escaped lookup path");
    int rc = modpath_check_path(path, why);
    if (!rc)
      rc = modpath_check_version(path, v, 1, why);
    if (rc)
      return rc;
    *kind = SUMDB_LOOKUP;
    return 0;
  }
  return reason_set(why, ERR_NOT_FOUND, "unknown checksum database endpoint");
}

/* ---- What a checksum database may answer (x/mod sumdb, tlog, note) ----
 * Nothing is verified cryptographically here (the client does that); the
 * shape is, so that an error page, a captive portal or a cut-off body is
 * never stored as immutable nor relayed as if it were an answer. */

/* Valid UTF-8 (Go's rules) with no ASCII control byte but '\n'. */
static int text_ok(const char *s, size_t n) {
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x80) {
      if (c < 0x20 && c != '\n')
        return 0;
      i++;
      continue;
    }
    size_t len = c >= 0xc2 && c <= 0xdf   ? 2
                 : c >= 0xe0 && c <= 0xef ? 3
                 : c >= 0xf0 && c <= 0xf4 ? 4
                                          : 0;
    if (!len || n - i < len)
      return 0;
    uint32_t v = c & (0x7f >> len);
    for (size_t k = 1; k < len; k++) {
      if (((unsigned char)s[i + k] & 0xc0) != 0x80)
        return 0;
      v = v << 6 | ((unsigned char)s[i + k] & 0x3f);
    }
    if ((len == 3 && (v < 0x800 || (v >= 0xd800 && v <= 0xdfff))) ||
        (len == 4 && (v < 0x10000 || v > 0x10ffff)))
      return 0;
    i += len;
  }
  return 1;
}

/* The length of what strict standard base64 s[0..n) decodes to, or -1. */
static long b64_len(const char *s, size_t n) {
  if (n == 0 || n % 4)
    return -1;
  size_t pad = s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
  for (size_t i = 0; i < n - pad; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '+' && s[i] != '/')
      return -1;
  return (long)(n / 4 * 3 - pad);
}

/* A decimal int64 as strconv.FormatInt writes it; -1 if not. */
static long long dec_value(const char *s, size_t n) {
  if (n == 0 || n > 18 || (n > 1 && s[0] == '0'))
    return -1;
  long long v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

/* note.Open's shape plus tlog.ParseTree: a tree note signed (at least) by
 * the database itself. *size gets the tree size. NULL or what is wrong. */
static const char *tree_note_problem(const char *name, const char *s, size_t n,
                                     long long *size) {
  static const char head[] = "go.sum database tree\n";
  if (!text_ok(s, n))
    return "control bytes or invalid UTF-8";
  const char *split = NULL;
  for (const char *p = s; (p = memmem(p, (size_t)(s + n - p), "\n\n", 2)); p++)
    split = p;
  if (!split)
    return "no signature block";
  const char *sigs = split + 2, *end = s + n;
  if (sigs == end || end[-1] != '\n')
    return "no signature block";
  size_t tn = (size_t)(split + 1 - s);
  if (tn < sizeof head - 1 || memcmp(s, head, sizeof head - 1))
    return "not a go.sum database tree";
  const char *l1 = s + sizeof head - 1,
             *e1 = memchr(l1, '\n', tn - (sizeof head - 1));
  const char *l2 = e1 ? e1 + 1 : NULL;
  const char *e2 = l2 ? memchr(l2, '\n', (size_t)(split + 1 - l2)) : NULL;
  if (!e1 || !e2 || (*size = dec_value(l1, (size_t)(e1 - l1))) < 0 ||
      b64_len(l2, (size_t)(e2 - l2)) != 32)
    return "malformed tree";
  int signed_by_db = 0, count = 0;
  size_t nl = strlen(name);
  for (const char *p = sigs; p < end;) {
    const char *e = memchr(p, '\n', (size_t)(end - p));
    /* "— <name> <base64>", U+2014 then a space */
    if (++count > 100 || (size_t)(e - p) < 4 || memcmp(p, "\xe2\x80\x94 ", 4))
      return "malformed signature line";
    const char *nm = p + 4, *sp = memchr(nm, ' ', (size_t)(e - nm));
    if (!sp || sp == nm || memchr(nm, '+', (size_t)(sp - nm)) ||
        b64_len(sp + 1, (size_t)(e - sp - 1)) < 5)
      return "malformed signature line";
    for (const char *q = nm; q < sp; q++)
      if (isspace((unsigned char)*q))
        return "malformed signature line";
    if ((size_t)(sp - nm) == nl && !memcmp(nm, name, nl))
      signed_by_db = 1;
    p = e + 1;
  }
  return signed_by_db ? NULL : "no signature by this database";
}

/* tlog isValidRecordText over s[0..n), which ends just before the blank
 * line that terminates it. */
static int record_text_ok(const char *s, size_t n) {
  return n > 0 && s[n - 1] == '\n' && s[0] != '\n' && text_ok(s, n) &&
         !memmem(s, n, "\n\n", 2);
}

static int bad_answer(struct reason *why, const struct sumdb_entry *db,
                      const char *what, const char *problem) {
  return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                    "checksum database %s: bad answer for %s: %s", db->name,
                    what, problem);
}

/* A lookup: tlog.ParseRecord (id, go.sum lines, blank line), then the tree
 * note it was checked against, signed by this database, and the two go.sum
 * lines of module@version among the record's. */
static int check_lookup(const struct sumdb_entry *db, const char *mod_esc,
                        const char *ver_esc, const char *s, size_t n,
                        struct reason *why) {
  char module[MODPATH_MAX + 1], version[VERSION_MAX + 1];
  char what[MODPATH_MAX + VERSION_MAX + 2];
  if (modpath_unescape(mod_esc, module, sizeof module) ||
      modpath_unescape(ver_esc, version, sizeof version))
    return reason_set(why, ERR_INVALID, "invalid escaped lookup path");
  snprintf(what, sizeof what, "%s@%s", module, version);
  const char *nl = memchr(s, '\n', n);
  long long id = nl ? dec_value(s, (size_t)(nl - s)) : -1;
  if (id < 0)
    return bad_answer(why, db, what, "not a record (no record id)");
  const char *text = nl + 1,
             *blank = memmem(text, n - (size_t)(text - s), "\n\n", 2);
  if (!blank || !record_text_ok(text, (size_t)(blank + 1 - text)))
    return bad_answer(why, db, what, "not a record");
  long long size = 0;
  const char *problem = tree_note_problem(db->name, blank + 2,
                                          n - (size_t)(blank + 2 - s), &size);
  if (problem)
    return bad_answer(why, db, what, problem);
  if (id >= size)
    return bad_answer(why, db, what, "record id beyond the tree");
  char zip_h1[HASH1_LEN], mod_h1[HASH1_LEN];
  hash1_from_lookup(s, n, module, version, zip_h1, mod_h1);
  if (!zip_h1[0] || !mod_h1[0])
    return bad_answer(why, db, what, "no go.sum lines for it");
  return 0;
}

/* tile/H/L/N[.p/W]: a hash tile is W hashes of 32 bytes (W = 2^H when
 * full); a data tile (L = "data") holds W records, each ending in a blank
 * line (tlog.FormatRecord), checked as record text. */
static int check_tile(const struct sumdb_entry *db, const char *rest,
                      const char *s, size_t n, struct reason *why) {
  const char *t = rest + strlen("tile/");
  long h = strtol(t, NULL, 10);
  int data = !strncmp(strchr(t, '/') + 1, "data/", 5);
  const char *dotp = strstr(t, ".p/");
  if (h < 1 || h > 30)
    return reason_set(why, ERR_NOT_FOUND, "not a checksum database tile");
  long w = dotp ? strtol(dotp + 3, NULL, 10) : 1L << h;
  if (w < 1 || w > 1L << h || (dotp && w == 1L << h))
    return reason_set(why, ERR_NOT_FOUND, "not a checksum database tile");
  char problem[120];
  if (!data) {
    if (n == (size_t)w * 32)
      return 0;
    snprintf(problem, sizeof problem, "%zu bytes, want %ld", n, w * 32);
    return bad_answer(why, db, rest, problem);
  }
  long records = 0;
  for (const char *p = s, *end = s + n; p < end; records++) {
    const char *blank = memmem(p, (size_t)(end - p), "\n\n", 2);
    if (!blank || !record_text_ok(p, (size_t)(blank + 1 - p)))
      return bad_answer(why, db, rest, "not a data tile");
    p = blank + 2;
  }
  if (records == w)
    return 0;
  snprintf(problem, sizeof problem, "%ld records, want %ld", records, w);
  return bad_answer(why, db, rest, problem);
}

int sumdb_check_answer(const struct sumdb_entry *db, const char *rest,
                       const char *body, size_t len, struct reason *why) {
  enum sumdb_kind kind;
  int partial;
  char mod[MODPATH_ESC_MAX + 1], ver[VERSION_ESC_MAX + 1];
  int rc = sumdb_parse_rest(rest, &kind, &partial, mod, sizeof mod, ver,
                            sizeof ver, why);
  if (rc)
    return rc;
  const char *s = body ? body : "";
  switch (kind) {
  case SUMDB_LOOKUP:
    return check_lookup(db, mod, ver, s, len, why);
  case SUMDB_TILE:
    return check_tile(db, rest, s, len, why);
  case SUMDB_LATEST: {
    long long size;
    const char *problem = tree_note_problem(db->name, s, len, &size);
    return problem ? bad_answer(why, db, "latest", problem) : 0;
  }
  case SUMDB_SUPPORTED:
    break;
  }
  return 0;
}

static int sink_buf(void *arg, const void *p, size_t n) {
  return buf_append(arg, p, n);
}
static int sink_reset(void *arg) {
  buf_reset(arg);
  return 0;
}

/* Percent-decodes `%21` (the only escape a lookup path carries) in place
 * and refuses any other escape or control byte. */
static int decode_rest(char *s) {
  char *w = s;
  for (const char *p = s; *p; p++) {
    if ((unsigned char)*p < 0x21 || (unsigned char)*p >= 0x7f)
      return ERR_INVALID;
    if (*p == '%') {
      if (p[1] == '2' && p[2] == '1') {
        *w++ = '!';
        p += 2;
        continue;
      }
      if (p[1] == '2' && (p[2] == 'B' || p[2] == 'b')) {
        *w++ = '+';
        p += 2;
        continue;
      }
      return ERR_INVALID;
    }
    *w++ = *p;
  }
  *w = '\0';
  return 0;
}

int sumdb_fetch(struct server *srv, struct worker *w,
                const struct sumdb_entry *db, const char *rest, int immutable,
                struct buf *out, int *hit, struct reason *why) {
  struct buf key;
  buf_init(&key, 4096);
  int rc = buf_appendf(&key, "sumdb/%s/%s", db->name, rest);
  if (rc)
    return rc;
  *hit = 0;
  if (immutable && storage_get_buf(srv->store, key.data, out) == 0) {
    struct reason bad = {{0}};
    int bad_rc = sumdb_check_answer(db, rest, out->data, out->len, &bad);
    if (!bad_rc) {
      *hit = 1;
      buf_free(&key);
      return 0;
    }
    /* Stored before answers were checked: fetch a good one instead. */
    log_warn("dropping the stored %s: %s", key.data, reason_text(&bad, bad_rc));
    storage_del(srv->store, key.data);
  }
  buf_reset(out);
  struct buf url;
  buf_init(&url, 4096);
  rc = buf_appendf(&url, "%s/%s", db->url, rest);
  if (!rc) {
    struct up_sink sink = {sink_buf, sink_reset, out};
    long status;
    double t0 = clock_now_s();
    rc = upstream_get_url(worker_curl(w), url.data, db->shown,
                          srv->up ? srv->up->redirect_hosts : NULL,
                          srv->cfg->connect_timeout, srv->cfg->fetch_timeout,
                          &sink,
                          metrics_sumdb_peer(&srv->metrics, srv->sumdbs, db),
                          &status, why);
    metrics_upstream(&srv->metrics, clock_now_s() - t0);
    atomic_fetch_add(&srv->metrics.upstream_fetches, 1);
  }
  if (!rc)
    rc = sumdb_check_answer(db, rest, out->data, out->len, why);
  if (!rc && immutable)
    storage_put_buf(srv->store, key.data, out->data, out->len);
  buf_free(&url);
  buf_free(&key);
  return rc;
}

/* A lookup for a private module is answered here and never forwarded: the
 * public database cannot know the module, and asking it would leak the
 * path. The one-line body tells the developer what to set. Returns 0 when
 * the module is not private (the caller goes on). */
static int private_lookup(struct req *r, const char *mod_esc,
                          const struct sumdb_entry *db) {
  const char *patterns = r->srv->cfg->private_patterns;
  char module[MODPATH_MAX + 1];
  if (!patterns || !patterns[0] ||
      modpath_unescape(mod_esc, module, sizeof module) ||
      private_match(patterns, module) != 1)
    return 0;
  /* Name the pattern that matched, so the advice is copy-and-paste. */
  char pattern[256] = "";
  for (const char *p = patterns; *p;) {
    size_t n = strcspn(p, ",");
    if (n < sizeof pattern) {
      memcpy(pattern, p, n);
      pattern[n] = '\0';
      if (private_match(pattern, module) == 1)
        break;
    }
    pattern[0] = '\0';
    p += n;
    if (*p == ',')
      p++;
  }
  struct reason line;
  reason_set(&line, ERR_FORBIDDEN,
             "%s is a private module: %s cannot verify it; add %s to "
             "GONOSUMDB (or GOPRIVATE)",
             module, db->name, pattern[0] ? pattern : module);
  return http_error(r, 403, line.text);
}

int h_sumdb(struct req *r) {
  struct server *srv = r->srv;
  const char *p = r->path + strlen("/sumdb/");
  size_t nl = strcspn(p, "/");
  const struct sumdb_entry *db = NULL;
  for (size_t i = 0; i < srv->sumdbs->n; i++)
    if (strlen(srv->sumdbs->v[i].name) == nl &&
        !memcmp(srv->sumdbs->v[i].name, p, nl))
      db = &srv->sumdbs->v[i];
  if (!db || p[nl] != '/')
    return http_error(r, 404, "unknown checksum database");
  char rest[2048];
  if (strlen(p + nl + 1) >= sizeof rest)
    return http_error(r, 400, "checksum database path too long");
  snprintf(rest, sizeof rest, "%s", p + nl + 1);
  if (decode_rest(rest))
    return http_error(r, 400, "invalid escape in checksum database path");

  struct reason why = {{0}};
  enum sumdb_kind kind;
  int partial;
  char mod[MODPATH_ESC_MAX + 1], ver[VERSION_ESC_MAX + 1];
  int rc = sumdb_parse_rest(rest, &kind, &partial, mod, sizeof mod, ver,
                            sizeof ver, &why);
  r->action = "sumdb";
  if (rc)
    return http_fail(r, rc, &why);
  if (kind == SUMDB_LOOKUP) {
    /* Authorized like the module itself: nobody learns from the checksum
     * database that a module they may not read exists. */
    char module[MODPATH_MAX + 1], version[VERSION_MAX + 1];
    if (modpath_unescape(mod, module, sizeof module) ||
        modpath_unescape(ver, version, sizeof version))
      return http_error(r, 400, "invalid escaped lookup path");
    if (!access_module(r, module, version, "sumdb"))
      return r->status;
    int st = private_lookup(r, mod, db);
    if (st)
      return st;
  } else if (!access_any(r)) {
    return r->status;
  }
  if (kind == SUMDB_SUPPORTED)
    return http_send(r, 200, CT_TEXT, CACHE_SHORT, NULL, "", 0);

  const char *ctype = kind == SUMDB_TILE ? "application/octet-stream" : CT_TEXT;
  int immutable = kind == SUMDB_LOOKUP || (kind == SUMDB_TILE && !partial);
  struct buf body;
  buf_init(&body, SUMDB_BODY_MAX);
  int hit = 0;
  rc = sumdb_fetch(srv, r->w, db, rest, immutable, &body, &hit, &why);
  r->cache = hit ? "hit" : "miss";
  char lkey[300];
  snprintf(lkey, sizeof lkey, "sumdb-latest:%s", db->name);
  if (rc == 0) {
    if (kind == SUMDB_LATEST)
      srv->meta->ops->cache_put(srv->meta, lkey, body.data, body.len);
    int st = http_send(r, 200, ctype, immutable ? CACHE_IMMUTABLE : CACHE_NONE,
                       NULL, body.data, body.len);
    buf_free(&body);
    return st;
  }
  buf_reset(&body);
  if (kind == SUMDB_LATEST && rc != ERR_NOT_FOUND &&
      srv->meta->ops->cache_get(srv->meta, lkey, &body, NULL) == 0) {
    r->cache = "stale";
    log_warn("checksum database %s: %s; serving the last /latest", db->name,
             reason_text(&why, rc));
    int st = http_send(r, 200, ctype, CACHE_NONE, NULL, body.data, body.len);
    buf_free(&body);
    return st;
  }
  buf_free(&body);
  return http_fail(r, rc, &why);
}
