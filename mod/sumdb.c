/* The checksum-database protocol's text (PROTOCOL.md E): which paths a
 * database serves under "/sumdb/<name>/", and whether an answer has the
 * shape of a record, a signed tree note or a tile. No I/O. */
#include "sumdb.h"

#include "core/err.h"
#include "hash1.h"
#include "modpath.h"
#include "tlog.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* tile/<H>/<L|data>/<K>[.p/<W>], exactly as tlog writes it
 * (tlog_tile_parse: 1 <= H <= 30, K as x001/x234/567). */
static int tile_ok(const char *t, int *partial) {
  struct tlog_tile tile;
  char path[TLOG_TILE_PATH_MAX + 8];
  if (snprintf(path, sizeof path, "tile/%s", t) >= (int)sizeof path ||
      tlog_tile_parse(path, &tile))
    return 0;
  *partial = tile.w != 1 << tile.h;
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

int sumdb_unescape_rest(char *s) {
  char *w = s;
  for (const char *p = s; *p; p++) {
    if ((unsigned char)*p < 0x21 || (unsigned char)*p >= 0x7f)
      return ERR_INVALID;
    if (*p == '%') {
      if (p[1] == '2' && p[2] == '1')
        *w++ = '!';
      else if (p[1] == '2' && (p[2] == 'B' || p[2] == 'b'))
        *w++ = '+';
      else
        return ERR_INVALID;
      p += 2;
      continue;
    }
    *w++ = *p;
  }
  *w = '\0';
  return 0;
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
