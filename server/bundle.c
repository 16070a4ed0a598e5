/* Bundles (bundle.h, docs/bundles.md): a pax tar compressed with zstd by
 * libarchive, whose entries are storage keys ("<module>/@v/<version>.zip",
 * "sumdb/<name>/tile/8/0/000.p/5", ...) and whose last entry is a JSON
 * manifest with the size and SHA-256 of every other entry. Export streams
 * blobs from storage into the archive; import reads the archive twice (check
 * everything, then commit), spooling large entries to unlinked temp files. */
#include "bundle.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "mod/hash1.h"
#include "mod/modpath.h"
#include "mod/note.h"
#include "mod/private.h"
#include "mod/sumdb.h"
#include "mod/tlog.h"
#include "mod/tlogproof.h"
#include "mod/validate.h"
#include "orgsumdb.h"
#include "pipeline.h"
#include "server.h"
#include "storage/storage.h"
#include "sumdb.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef GOMIRROR_VERSION
#define GOMIRROR_VERSION "0"
#endif

#define CHUNK (64 * 1024)
/* A checksum-database answer: what h_sumdb.c relays at most. */
#define SUMDB_ANSWER_MAX (1u << 20)
#define MANIFEST_MAX (256u << 20)
/* Import keeps entries up to this size in memory between its checks and
 * the store; larger ones go to a spool file. */
#define SMALL_MAX (1u << 20)
/* An organisation-log lookup answer (record and head), a hash tile. */
#define ORG_ANSWER_MAX 8192
#define ORG_TILE_BYTES ((size_t)TLOG_HASH_SIZE << TLOG_CLIENT_HEIGHT)

/* --- small helpers ------------------------------------------------------ */

static void hex32(const unsigned char d[32], char out[65]) {
  static const char digits[] = "0123456789abcdef";
  for (int i = 0; i < 32; i++) {
    out[2 * i] = digits[d[i] >> 4];
    out[2 * i + 1] = digits[d[i] & 15];
  }
  out[64] = '\0';
}

static int unhex32(const char *s, unsigned char out[32]) {
  if (!s || strlen(s) != 64)
    return -1;
  for (int i = 0; i < 32; i++) {
    int v = 0;
    for (int k = 0; k < 2; k++) {
      char c = s[2 * i + k];
      int d = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                     : -1;
      if (d < 0)
        return -1;
      v = v * 16 + d;
    }
    out[i] = (unsigned char)v;
  }
  return 0;
}

/* An unlinked temp file in dir: nothing is left behind by a crash. */
static int spool_open(const char *dir) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/gomirror-bundle-XXXXXX", dir);
  int fd = mkostemp(path, O_CLOEXEC);
  if (fd >= 0)
    unlink(path);
  return fd;
}

static int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return ERR_IO;
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

static void rfc3339(time_t t, char out[32]) {
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A JSON string literal for s (json-c escapes it). Owned by the caller. */
static char *json_quote(const char *s) {
  struct json_object *o = json_object_new_string(s);
  if (!o)
    return NULL;
  char *q = strdup(json_object_to_json_string_ext(
      o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
  json_object_put(o);
  return q;
}

static int is_private(const struct server *srv, const char *module) {
  const char *p = srv->cfg->private_patterns;
  return p && p[0] && private_match(p, module) == 1;
}

static const struct sumdb_entry *sumdb_named(const struct server *srv,
                                             const char *name, size_t n) {
  for (size_t i = 0; i < srv->sumdbs->n; i++)
    if (strlen(srv->sumdbs->v[i].name) == n &&
        !memcmp(srv->sumdbs->v[i].name, name, n))
      return &srv->sumdbs->v[i];
  return NULL;
}

static int i64_push(int64_t **v, size_t *n, size_t *cap, int64_t x) {
  int64_t *g = array_grow(*v, cap, *n, sizeof **v);
  if (!g)
    return ERR_NOMEM;
  *v = g;
  g[(*n)++] = x;
  return 0;
}

struct tile_list {
  struct tlog_tile *v;
  size_t n, cap;
};

static int collect_tile(void *arg, const struct tlog_tile *t) {
  struct tile_list *l = arg;
  struct tlog_tile *g = array_grow(l->v, &l->cap, l->n, sizeof *g);
  if (!g)
    return ERR_NOMEM;
  l->v = g;
  g[l->n++] = *t;
  return 0;
}

/* --- export -------------------------------------------------------------- */

struct xport {
  struct server *srv;
  const struct bundle_export_opts *o;
  struct bundle_export_stats *st;
  struct worker w;
  const struct sumdb_entry *db; /* NULL: no checksum database */
  struct archive *a;
  int files_fd, vers_fd; /* manifest parts, spooled */
  size_t nvers_json;
  struct buf notes; /* JSON strings, comma separated */
  int64_t *trees, *ids;
  size_t ntrees, trees_cap, nids, ids_cap;
  struct orgsumdb *org; /* NULL: no organisation log */
  int64_t *org_ids;     /* the records exported */
  size_t norg_ids, org_ids_cap;
  struct buf org_tile;    /* scratch for x_org_tile */
  struct reason *org_why; /* x_org_tile's */
  /* The entry being written. */
  EVP_MD_CTX *md;
  uint64_t want, got;
  char *chunk;
};

static int x_fail(struct xport *x, struct reason *why, const char *what) {
  return reason_set(why, ERR_IO, "writing the bundle (%s): %s", what,
                    archive_error_string(x->a) ? archive_error_string(x->a)
                                               : "unknown error");
}

static int x_begin(struct xport *x, const char *path, uint64_t size,
                   time_t mtime, struct reason *why) {
  struct archive_entry *e = archive_entry_new();
  if (!e)
    return ERR_NOMEM;
  archive_entry_set_pathname(e, path);
  archive_entry_set_size(e, (la_int64_t)size);
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_mtime(e, mtime, 0);
  int r = archive_write_header(x->a, e);
  archive_entry_free(e);
  if (r != ARCHIVE_OK)
    return x_fail(x, why, path);
  EVP_DigestInit_ex(x->md, EVP_sha256(), NULL);
  x->want = size;
  x->got = 0;
  return 0;
}

/* A blob_sink_fn: the entry's next bytes. */
static int x_data(void *arg, const void *p, size_t n) {
  struct xport *x = arg;
  if (x->got + n > x->want)
    return ERR_STORAGE; /* the blob grew under us */
  EVP_DigestUpdate(x->md, p, n);
  const char *c = p;
  while (n) {
    la_ssize_t w = archive_write_data(x->a, c, n);
    if (w <= 0)
      return ERR_IO;
    c += w;
    n -= (size_t)w;
    x->got += (uint64_t)w;
  }
  return 0;
}

/* Ends the entry and lists it in the manifest. */
static int x_end(struct xport *x, const char *path, struct reason *why) {
  if (x->got != x->want)
    return reason_set(why, ERR_STORAGE,
                      "%s changed while being exported (%llu of %llu bytes)",
                      path, (unsigned long long)x->got,
                      (unsigned long long)x->want);
  unsigned char d[32];
  char hex[65];
  EVP_DigestFinal_ex(x->md, d, NULL);
  hex32(d, hex);
  char *q = json_quote(path);
  if (!q)
    return ERR_NOMEM;
  char line[PIPE_KEY_MAX * 2 + 200];
  int n =
      snprintf(line, sizeof line,
               "%s{\"path\":%s,\"size\":%llu,"
               "\"sha256\":\"%s\"}",
               x->st->files ? ",\n" : "", q, (unsigned long long)x->want, hex);
  free(q);
  if (n < 0 || (size_t)n >= sizeof line)
    return reason_set(why, ERR_INVALID, "path too long: %.80s", path);
  x->st->files++;
  x->st->bytes += x->want;
  if (write_all(x->files_fd, line, (size_t)n))
    return reason_set(why, ERR_IO, "cannot write a spool file in %s",
                      x->srv->spool_dir);
  return 0;
}

static int x_put_buf(struct xport *x, const char *path, const void *data,
                     size_t len, time_t mtime, struct reason *why) {
  int rc = x_begin(x, path, len, mtime, why);
  if (!rc && len && x_data(x, data, len))
    rc = x_fail(x, why, path);
  if (!rc)
    rc = x_end(x, path, why);
  return rc;
}

/* Streams a stored blob into the bundle under its key. */
static int x_put_key(struct xport *x, const char *key,
                     const struct blob_stat *bs, struct reason *why) {
  int rc = x_begin(x, key, bs->size, bs->mtime, why);
  if (rc)
    return rc;
  rc = storage_get(x->srv->store, key, NULL, x_data, x);
  if (rc == ERR_IO)
    return x_fail(x, why, key);
  if (rc)
    return reason_set(why, ERR_STORAGE, "reading %s from storage: %s", key,
                      err_str(rc));
  return x_end(x, key, why);
}

static int x_note(struct xport *x, const char *text) {
  char *q = json_quote(text);
  if (!q)
    return ERR_NOMEM;
  int rc = buf_appendf(&x->notes, "%s%s", x->notes.len ? ",\n" : "", q);
  free(q);
  log_warn("export: %s", text);
  return rc;
}

/* One committed version's keys (without extension), sorted. */
struct keylist {
  char **v;
  size_t n, cap;
  int rc;
};

static int collect_info(void *arg, const char *key, uint64_t size) {
  (void)size;
  struct keylist *l = arg;
  size_t kl = strlen(key);
  if (strncmp(key, "sumdb/", 6) == 0 || kl < 6 ||
      strcmp(key + kl - 5, ".info") != 0 || !strstr(key, "/@v/"))
    return 0;
  char **g = array_grow(l->v, &l->cap, l->n, sizeof *l->v);
  char *k = strndup(key, kl - 5);
  if (!g || !k) {
    free(k);
    if (g)
      l->v = g;
    l->rc = ERR_NOMEM;
    return 1;
  }
  l->v = g;
  l->v[l->n++] = k;
  return 0;
}

static int str_order(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The organisation log's index entry and record of m, when it is in the
 * log (0 and nothing written when it is not). */
static int x_org_version(struct xport *x, const struct modreq *m,
                         struct reason *why) {
  struct buf ans;
  buf_init(&ans, ORG_ANSWER_MAX);
  struct reason lwhy = {{0}};
  const char *name = orgsumdb_name(x->org);
  int rc =
      orgsumdb_lookup(x->org, m->module, m->version, &ans, NULL, NULL, &lwhy);
  int64_t id;
  size_t toff, tlen, roff;
  if (rc == ERR_NOT_FOUND) {
    if (orgsumdb_covers(x->srv, m->module))
      x->st->org_unlogged++;
    rc = 0;
    goto out;
  }
  if (rc) {
    rc = reason_set(why, rc, "%s@%s: organisation checksum database %s: %s",
                    m->module, m->version, name, reason_text(&lwhy, rc));
    goto out;
  }
  if (tlog_parse_record(ans.data, ans.len, &id, &toff, &tlen, &roff) ||
      id < 0) {
    rc = reason_set(why, ERR_BAD_UPSTREAM_DATA,
                    "%s@%s: organisation checksum database %s answered no "
                    "record",
                    m->module, m->version, name);
    goto out;
  }
  char key[PIPE_KEY_MAX + NOTE_NAME_MAX + 32], idtext[32];
  snprintf(key, sizeof key, "sumdb/%s/index/%s@%s", name, m->module_esc,
           m->version_esc);
  snprintf(idtext, sizeof idtext, "%" PRId64 "\n", id);
  time_t now = time(NULL);
  rc = x_put_buf(x, key, idtext, strlen(idtext), now, why);
  if (!rc) {
    snprintf(key, sizeof key, "sumdb/%s/record/%" PRId64, name, id);
    rc = x_put_buf(x, key, ans.data + toff, tlen, now, why);
  }
  if (!rc)
    rc = i64_push(&x->org_ids, &x->norg_ids, &x->org_ids_cap, id);
  if (!rc)
    x->st->org_records++;
out:
  buf_free(&ans);
  return rc;
}

/* Writes one version: its lookup (public modules), its organisation-log
 * index entry and record (when logged), .mod, .zip, .info. 0 also when the
 * version is not chosen. */
static int x_version(struct xport *x, const char *base, struct modreq *m,
                     struct reason *why) {
  struct server *srv = x->srv;
  char raw[PIPE_KEY_MAX + 8], key[PIPE_KEY_MAX];
  snprintf(raw, sizeof raw, "/%s.info", base);
  struct reason bad = {{0}};
  if (modpath_parse(raw, m, &bad) || m->kind != MODREQ_INFO || !m->canonical) {
    log_warn("export: skipping %s.info: not a version's key", base);
    return 0;
  }
  if (x->o->modules && x->o->modules[0] &&
      private_match(x->o->modules, m->module) != 1)
    return 0;
  struct blob_stat info, mod, zip;
  pipe_key(m, "info", key, sizeof key);
  int rc = storage_stat(srv->store, key, &info);
  if (rc == ERR_NOT_FOUND)
    return 0; /* gone since the listing */
  if (rc)
    return reason_set(why, ERR_STORAGE, "stat %s: %s", key, err_str(rc));
  if (x->o->since && info.mtime < x->o->since)
    return 0;
  pipe_key(m, "mod", key, sizeof key);
  rc = storage_stat(srv->store, key, &mod);
  if (rc == ERR_NOT_FOUND) {
    char note[MODPATH_MAX + VERSION_MAX + 200];
    snprintf(note, sizeof note,
             "skipped %s@%s: its .info is stored without "
             "its .mod",
             m->module, m->version);
    return x_note(x, note);
  }
  if (rc)
    return reason_set(why, ERR_STORAGE, "stat %s: %s", key, err_str(rc));
  pipe_key(m, "zip", key, sizeof key);
  rc = storage_stat(srv->store, key, &zip);
  int has_zip = rc == 0;
  if (rc && rc != ERR_NOT_FOUND)
    return reason_set(why, ERR_STORAGE, "stat %s: %s", key, err_str(rc));

  int priv = is_private(srv, m->module);
  char lookup_key[PIPE_KEY_MAX + 300] = "";
  if (!priv && x->db) {
    char rest[PIPE_KEY_MAX + 16];
    snprintf(rest, sizeof rest, "lookup/%s@%s", m->module_esc, m->version_esc);
    struct buf body;
    buf_init(&body, SUMDB_ANSWER_MAX);
    int hit;
    struct reason lwhy = {{0}};
    rc = sumdb_fetch(srv, &x->w, x->db, rest, 1, &body, &hit, &lwhy);
    int64_t id;
    size_t toff, tlen, roff;
    struct tlog_tree tree;
    if (rc) {
      buf_free(&body);
      return reason_set(why, rc,
                        "%s@%s: no checksum-database lookup: %s (mark it "
                        "private, or leave it out with --modules)",
                        m->module, m->version, reason_text(&lwhy, rc));
    }
    if (tlog_parse_record(body.data, body.len, &id, &toff, &tlen, &roff) ||
        tlog_parse_tree(body.data + roff, body.len - roff, &tree) || id < 0) {
      buf_free(&body);
      return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                        "%s@%s: the stored lookup is not a record and tree",
                        m->module, m->version);
    }
    snprintf(lookup_key, sizeof lookup_key, "sumdb/%s/%s", x->db->name, rest);
    rc = x_put_buf(x, lookup_key, body.data, body.len, time(NULL), why);
    buf_free(&body);
    if (!rc)
      rc = i64_push(&x->trees, &x->ntrees, &x->trees_cap, tree.n);
    if (!rc)
      rc = i64_push(&x->ids, &x->nids, &x->ids_cap, id);
    if (rc)
      return rc;
    x->st->lookups++;
  }
  if (x->org && (rc = x_org_version(x, m, why)))
    return rc;
  pipe_key(m, "mod", key, sizeof key);
  rc = x_put_key(x, key, &mod, why);
  if (!rc && has_zip) {
    pipe_key(m, "zip", key, sizeof key);
    rc = x_put_key(x, key, &zip, why);
  }
  if (!rc) {
    pipe_key(m, "info", key, sizeof key);
    rc = x_put_key(x, key, &info, why);
  }
  if (rc)
    return rc;
  /* The manifest's version entry. */
  char *qm = json_quote(m->module), *qv = json_quote(m->version);
  char *ql = lookup_key[0] ? json_quote(lookup_key) : NULL;
  if (!qm || !qv || (lookup_key[0] && !ql)) {
    free(qm);
    free(qv);
    free(ql);
    return ERR_NOMEM;
  }
  struct buf line;
  buf_init(&line, 8192);
  rc = buf_appendf(&line,
                   "%s{\"module\":%s,\"version\":%s,\"private\":%s,"
                   "\"zip\":%s,\"lookup\":%s}",
                   x->nvers_json ? ",\n" : "", qm, qv, priv ? "true" : "false",
                   has_zip ? "true" : "false", ql ? ql : "null");
  free(qm);
  free(qv);
  free(ql);
  if (!rc && write_all(x->vers_fd, line.data, line.len))
    rc = reason_set(why, ERR_IO, "cannot write a spool file in %s",
                    srv->spool_dir);
  buf_free(&line);
  if (rc)
    return rc;
  x->nvers_json++;
  x->st->versions++;
  if (priv)
    x->st->private_versions++;
  if (!has_zip) {
    char note[MODPATH_MAX + VERSION_MAX + 200];
    snprintf(note, sizeof note,
             "%s@%s has no stored zip: only its .info and "
             ".mod are in the bundle",
             m->module, m->version);
    rc = x_note(x, note);
  }
  return rc;
}

/* The database's /latest, and every tile needed to verify the lookups. */
static int x_sumdb(struct xport *x, struct reason *why) {
  struct server *srv = x->srv;
  struct buf body;
  buf_init(&body, SUMDB_ANSWER_MAX);
  int hit, rc;
  struct reason lwhy = {{0}};
  char key[512];
  rc = sumdb_fetch(srv, &x->w, x->db, "latest", 0, &body, &hit, &lwhy);
  struct tlog_tree tree;
  if (!rc && !tlog_parse_tree(body.data, body.len, &tree)) {
    snprintf(key, sizeof key, "sumdb/%s/latest", x->db->name);
    rc = x_put_buf(x, key, body.data, body.len, time(NULL), why);
    if (!rc)
      rc = i64_push(&x->trees, &x->ntrees, &x->trees_cap, tree.n);
    if (rc) {
      buf_free(&body);
      return rc;
    }
  } else {
    char note[MODPATH_MAX + VERSION_MAX + 200];
    snprintf(note, sizeof note, "no /latest from %s: %s", x->db->name,
             reason_text(&lwhy, rc ? rc : ERR_BAD_UPSTREAM_DATA));
    rc = x_note(x, note);
    if (rc) {
      buf_free(&body);
      return rc;
    }
  }
  /* Sorted by level and number: a tile's partial widths, then its full
   * width, come one after the other. */
  struct tile_list tiles = {0};
  rc = tlog_client_tiles(TLOG_CLIENT_HEIGHT, x->trees, x->ntrees, x->ids,
                         x->nids, collect_tile, &tiles);
  struct tlog_tile full_done = {0, 0, 0, 0}; /* the last full tile written */
  for (size_t i = 0; i < tiles.n && !rc; i++) {
    struct tlog_tile t = tiles.v[i];
    char path[TLOG_TILE_PATH_MAX];
    int full = t.w == 1 << t.h;
    if (full_done.w && full_done.l == t.l && full_done.n == t.n)
      continue; /* the full tile already stood in for a partial one */
    tlog_tile_path(&t, path, sizeof path);
    buf_reset(&body);
    lwhy.text[0] = '\0';
    rc = sumdb_fetch(srv, &x->w, x->db, path, full, &body, &hit, &lwhy);
    if (rc && !full) {
      /* The database may serve a completed tile only in full; the go
       * command falls back to it too (sumdb.Client.readTile). */
      struct reason partial_why = lwhy;
      t.w = 1 << t.h;
      tlog_tile_path(&t, path, sizeof path);
      buf_reset(&body);
      rc = sumdb_fetch(srv, &x->w, x->db, path, 1, &body, &hit, &lwhy);
      if (rc)
        lwhy = partial_why;
    }
    if (rc) {
      rc = reason_set(why, rc, "%s/%s is needed to verify the lookups: %s",
                      x->db->name, path, reason_text(&lwhy, rc));
      break;
    }
    if (t.w == 1 << t.h)
      full_done = t;
    snprintf(key, sizeof key, "sumdb/%s/%s", x->db->name, path);
    rc = x_put_buf(x, key, body.data, body.len, time(NULL), why);
    x->st->tiles++;
  }
  free(tiles.v);
  buf_free(&body);
  return rc;
}

/* The width tile t's position has in a tree of n records (0: none). */
static int width_in(const struct tlog_tile *t, int64_t n) {
  struct tlog_tile p = *t;
  p.w = 1;
  return tlog_tile_parent(p, 0, n).w;
}

/* tlog_new_tiles' callback: one hash tile of the organisation log's head
 * (the narrower widths it lists, of earlier trees, are left out: clients
 * read the head's tree, and the importing site cuts them from it). */
static int x_org_tile(void *arg, const struct tlog_tile *t) {
  struct xport *x = arg;
  if (t->w != width_in(t, x->st->org_head))
    return 0;
  char path[TLOG_TILE_PATH_MAX], key[NOTE_NAME_MAX + TLOG_TILE_PATH_MAX + 16];
  struct reason twhy = {{0}};
  buf_reset(&x->org_tile);
  int rc = orgsumdb_tile(x->org, t, &x->org_tile, &twhy);
  if (rc || tlog_tile_path(t, path, sizeof path))
    return reason_set(x->org_why, rc ? rc : ERR_INVALID,
                      "organisation checksum database %s: a tile of its "
                      "head: %s",
                      orgsumdb_name(x->org), reason_text(&twhy, rc));
  snprintf(key, sizeof key, "sumdb/%s/%s", orgsumdb_name(x->org), path);
  rc = x_put_buf(x, key, x->org_tile.data, x->org_tile.len, time(NULL),
                 x->org_why);
  if (!rc)
    x->st->org_tiles++;
  return rc;
}

/* The organisation log's head and every hash tile of its tree: a client
 * whose cached head is any earlier one checks that it is a prefix through
 * these tiles, and every exported record is proven through them. Read after
 * the records, so the head covers all of them (a log only grows). */
static int x_org(struct xport *x, struct reason *why) {
  const char *name = orgsumdb_name(x->org);
  char note[MODPATH_MAX + 300];
  int rc = 0;
  if (x->st->org_unlogged) {
    snprintf(note, sizeof note,
             "%zu version%s organisation checksum database %s covers %s not "
             "in its log (committed before it ran): a site importing them "
             "logs them itself on their first lookup",
             x->st->org_unlogged, x->st->org_unlogged == 1 ? "" : "s", name,
             x->st->org_unlogged == 1 ? "is" : "are");
    rc = x_note(x, note);
  }
  if (rc || !x->norg_ids)
    return rc;
  struct buf head;
  buf_init(&head, ORG_ANSWER_MAX);
  struct tlog_tree tree;
  rc = orgsumdb_head(x->org, 1, &head, &tree, why);
  int64_t max = -1;
  for (size_t i = 0; i < x->norg_ids; i++)
    if (x->org_ids[i] > max)
      max = x->org_ids[i];
  if (!rc && max >= tree.n)
    rc = reason_set(why, ERR_STORAGE,
                    "organisation checksum database %s: its head (%" PRId64
                    " records) does not cover record %" PRId64,
                    name, tree.n, max);
  if (!rc) {
    x->st->org_head = tree.n;
    buf_init(&x->org_tile, ORG_TILE_BYTES);
    x->org_why = why;
    rc = tlog_new_tiles(TLOG_CLIENT_HEIGHT, 0, tree.n, x_org_tile, x);
    buf_free(&x->org_tile);
  }
  if (!rc) {
    char key[NOTE_NAME_MAX + 32];
    snprintf(key, sizeof key, "sumdb/%s/latest", name);
    rc = x_put_buf(x, key, head.data, head.len, time(NULL), why);
  }
  buf_free(&head);
  return rc;
}

/* Copies what fd holds (from offset 0) into the open entry. */
static int x_copy_fd(struct xport *x, int fd, struct reason *why) {
  off_t off = 0;
  for (;;) {
    ssize_t n = pread(fd, x->chunk, CHUNK, off);
    if (n < 0)
      return reason_set(why, ERR_IO, "reading a spool file: %s",
                        strerror(errno));
    if (n == 0)
      return 0;
    if (x_data(x, x->chunk, (size_t)n))
      return x_fail(x, why, BUNDLE_MANIFEST);
    off += n;
  }
}

static int x_manifest(struct xport *x, struct reason *why) {
  const struct bundle_export_opts *o = x->o;
  char created[32];
  rfc3339(time(NULL), created);
  char *qdb = x->db ? json_quote(x->db->name) : NULL;
  char *qmods = o->modules && o->modules[0] ? json_quote(o->modules) : NULL;
  char *qsince = o->since_text ? json_quote(o->since_text) : NULL;
  char *qorg = x->st->org_records ? json_quote(orgsumdb_name(x->org)) : NULL;
  char *qvkey = x->st->org_records ? json_quote(orgsumdb_vkey(x->org)) : NULL;
  char org[2 * NOTE_KEY_MAX + 128] = "null";
  if (qorg && qvkey)
    snprintf(org, sizeof org, "{\"name\":%s,\"vkey\":%s,\"tree\":%" PRId64 "}",
             qorg, qvkey, x->st->org_head);
  free(qorg);
  free(qvkey);
  struct buf head, mid, tail;
  buf_init(&head, 1 << 16);
  buf_init(&mid, 64);
  buf_init(&tail, 1 << 20);
  int rc =
      buf_appendf(&head,
                  "{\"format\":\"%s\",\"format_version\":%d,\"created\":\"%s\","
                  "\"gomirror\":\"%s\",\"sumdb\":%s,\"org_sumdb\":%s,"
                  "\"selection\":{\"modules\":%s,\"since\":%s},\n\"files\":[\n",
                  BUNDLE_FORMAT, BUNDLE_FORMAT_VERSION, created,
                  GOMIRROR_VERSION, qdb ? qdb : "null", org,
                  qmods ? qmods : "null", qsince ? qsince : "null");
  if (!rc)
    rc = buf_appendf(&mid, "],\n\"versions\":[\n");
  if (!rc)
    rc = buf_appendf(&tail, "],\n\"notes\":[%s]}\n", buf_cstr(&x->notes));
  free(qdb);
  free(qmods);
  free(qsince);
  off_t files_len = lseek(x->files_fd, 0, SEEK_END),
        vers_len = lseek(x->vers_fd, 0, SEEK_END);
  if (!rc && (files_len < 0 || vers_len < 0))
    rc = reason_set(why, ERR_IO, "spool files lost");
  if (!rc) {
    uint64_t size = head.len + (uint64_t)files_len + mid.len +
                    (uint64_t)vers_len + tail.len;
    rc = x_begin(x, BUNDLE_MANIFEST, size, time(NULL), why);
    if (!rc && x_data(x, head.data, head.len))
      rc = x_fail(x, why, BUNDLE_MANIFEST);
    if (!rc)
      rc = x_copy_fd(x, x->files_fd, why);
    if (!rc && x_data(x, mid.data, mid.len))
      rc = x_fail(x, why, BUNDLE_MANIFEST);
    if (!rc)
      rc = x_copy_fd(x, x->vers_fd, why);
    if (!rc && x_data(x, tail.data, tail.len))
      rc = x_fail(x, why, BUNDLE_MANIFEST);
    if (!rc && x->got != size)
      rc = reason_set(why, ERR_IO, "the manifest came out at the wrong size");
  }
  buf_free(&head);
  buf_free(&mid);
  buf_free(&tail);
  return rc;
}

int bundle_export(struct server *srv, const struct bundle_export_opts *o,
                  struct bundle_export_stats *st, struct reason *why) {
  memset(st, 0, sizeof *st);
  struct xport x = {
      .srv = srv, .o = o, .st = st, .files_fd = -1, .vers_fd = -1};
  x.db = srv->sumdbs->n ? &srv->sumdbs->v[0] : NULL;
  x.org = srv->orgsumdb;
  buf_init(&x.notes, 1 << 20);
  struct keylist keys = {0};
  struct modreq *m = malloc(sizeof *m);
  char tmp[PATH_MAX];
  int fd = -1, rc = 0;
  x.md = EVP_MD_CTX_new();
  x.chunk = malloc(CHUNK);
  if (!m || !x.md || !x.chunk) {
    rc = ERR_NOMEM;
    goto out;
  }
  if (snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", o->out) >= (int)sizeof tmp) {
    rc = reason_set(why, ERR_INVALID, "--out path too long");
    goto out;
  }
  fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0) {
    rc = reason_set(why, ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    goto out;
  }
  fchmod(fd, 0640);
  x.files_fd = spool_open(srv->spool_dir);
  x.vers_fd = spool_open(srv->spool_dir);
  if (x.files_fd < 0 || x.vers_fd < 0) {
    rc = reason_set(why, ERR_IO, "cannot create a spool file in %s: %s",
                    srv->spool_dir, strerror(errno));
    goto unlink_out;
  }
  x.a = archive_write_new();
  if (!x.a || archive_write_add_filter_zstd(x.a) != ARCHIVE_OK ||
      archive_write_set_format_pax_restricted(x.a) != ARCHIVE_OK ||
      archive_write_open_fd(x.a, fd) != ARCHIVE_OK) {
    rc = reason_set(why, ERR_IO, "libarchive cannot write tar+zstd: %s",
                    x.a && archive_error_string(x.a) ? archive_error_string(x.a)
                                                     : "out of memory");
    goto unlink_out;
  }
  rc = storage_list(srv->store, "", collect_info, &keys);
  if (!rc && keys.rc)
    rc = keys.rc;
  if (rc) {
    rc = reason_set(why, rc == ERR_NOMEM ? rc : ERR_STORAGE,
                    "listing storage: %s", err_str(rc));
    goto unlink_out;
  }
  qsort(keys.v, keys.n, sizeof *keys.v, str_order);
  for (size_t i = 0; i < keys.n && !rc; i++)
    rc = x_version(&x, keys.v[i], m, why);
  if (!rc && x.db && st->lookups)
    rc = x_sumdb(&x, why);
  if (!rc && x.org)
    rc = x_org(&x, why);
  if (!rc && st->private_versions) {
    char note[MODPATH_MAX + VERSION_MAX + 200];
    snprintf(note, sizeof note,
             "%zu private version%s (config private) "
             "exported without checksum-database lookups: the public "
             "database has no records of private modules",
             st->private_versions, st->private_versions == 1 ? "" : "s");
    rc = x_note(&x, note);
  }
  if (!rc && !x.db && st->versions)
    rc = x_note(&x, "no checksum database is configured (sumdb): no version "
                    "carries a lookup, and import checks no h1: hash");
  if (!rc)
    rc = x_manifest(&x, why);
  if (!rc && archive_write_close(x.a) != ARCHIVE_OK)
    rc = x_fail(&x, why, "closing");
  if (!rc && fsync(fd))
    rc = reason_set(why, ERR_IO, "fsync %s: %s", tmp, strerror(errno));
  if (!rc && rename(tmp, o->out))
    rc = reason_set(why, ERR_IO, "rename to %s: %s", o->out, strerror(errno));
unlink_out:
  if (rc)
    unlink(tmp);
out:
  if (x.a)
    archive_write_free(x.a);
  if (fd >= 0)
    close(fd);
  if (x.files_fd >= 0)
    close(x.files_fd);
  if (x.vers_fd >= 0)
    close(x.vers_fd);
  if (x.w.curl)
    curl_easy_cleanup(x.w.curl);
  for (size_t i = 0; i < keys.n; i++)
    free(keys.v[i]);
  free(keys.v);
  free(x.trees);
  free(x.ids);
  free(x.org_ids);
  buf_free(&x.notes);
  EVP_MD_CTX_free(x.md);
  free(x.chunk);
  free(m);
  return rc;
}

/* --- import -------------------------------------------------------------- */

enum ikind {
  K_INFO,
  K_MOD,
  K_ZIP,
  K_LOOKUP,
  K_TILE,
  K_LATEST,
  /* The organisation log's: sumdb/<name>/latest, tile/..., record/<id>,
   * index/<module>@<version>, spooled in pass 1 and written from there. */
  K_OLATEST,
  K_OTILE,
  K_ORECORD,
  K_OINDEX,
};

struct ifile {
  char *path;
  uint64_t size;
  unsigned char sha[32];
  enum ikind kind;
  long ver;   /* index into vers, or -1 */
  int listed; /* in the manifest */
  /* Organisation-log entries: where pass 1 spooled them, the tile, and the
   * record id (K_ORECORD, K_OINDEX). */
  int64_t off;
  struct tlog_tile tile;
  int64_t id;
};

/* The organisation log's tiles and records, sorted for lookups. */
struct otile {
  struct tlog_tile t;
  size_t fi;
};

struct orec {
  int64_t id;
  size_t fi;
};

struct iver {
  char *base; /* "<module_esc>/@v/<version_esc>" */
  char *module, *version;
  int has[3]; /* info, mod, zip */
  uint64_t size[3];
  int has_lookup, priv, listed;
  char got_mod[HASH1_LEN], got_zip[HASH1_LEN];
  char want_mod[HASH1_LEN], want_zip[HASH1_LEN];
  /* pass 2 */
  int stored_state; /* 0 unknown, 1 committed before, 2 not */
  int done;         /* .mod/.zip stored or found stored */
  char *info;       /* the .info, held until they are */
  size_t info_len;
  int info_done;
};

/* Open addressing from a string to an index; keys belong to the caller. */
struct smap {
  const char **k;
  size_t *v;
  size_t cap, n;
};

static size_t str_hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return (size_t)h;
}

static long smap_get(const struct smap *m, const char *key) {
  if (!m->cap)
    return -1;
  for (size_t i = str_hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    if (!m->k[i])
      return -1;
    if (!strcmp(m->k[i], key))
      return (long)m->v[i];
  }
}

static int smap_put(struct smap *m, const char *key, size_t val) {
  if (2 * (m->n + 1) > m->cap) {
    size_t cap = m->cap ? 2 * m->cap : 256;
    struct smap b = {calloc(cap, sizeof *b.k), calloc(cap, sizeof *b.v), cap,
                     0};
    if (!b.k || !b.v) {
      free(b.k);
      free(b.v);
      return ERR_NOMEM;
    }
    for (size_t i = 0; i < m->cap; i++)
      if (m->k[i]) {
        size_t j = str_hash(m->k[i]) & (cap - 1);
        while (b.k[j])
          j = (j + 1) & (cap - 1);
        b.k[j] = m->k[i];
        b.v[j] = m->v[i];
        b.n++;
      }
    free(m->k);
    free(m->v);
    *m = b;
  }
  size_t i = str_hash(key) & (m->cap - 1);
  while (m->k[i])
    i = (i + 1) & (m->cap - 1);
  m->k[i] = key;
  m->v[i] = val;
  m->n++;
  return 0;
}

static void smap_free(struct smap *m) {
  free(m->k);
  free(m->v);
}

struct imp {
  struct server *srv;
  const char *file;
  struct bundle_import_stats *st;
  struct ifile *files;
  size_t nfiles, files_cap;
  struct smap fmap;
  struct iver *vers;
  size_t nvers, vers_cap;
  struct smap vmap;
  struct buf manifest;
  int have_manifest;
  struct reason problem; /* the first content check that failed */
  int manifest_sumdb_null;
  char *chunk;
  EVP_MD_CTX *md;
  struct modreq *m;
  /* The organisation log's part. */
  int org_fd; /* spool of its entries, or -1 */
  int64_t org_len;
  char org_name[NOTE_NAME_MAX + 1]; /* the name its entries carry */
  char org_first[PIPE_KEY_MAX];     /* its first entry, for messages */
  char man_org_name[NOTE_NAME_MAX + 1], man_org_vkey[NOTE_KEY_MAX];
  struct tlog_tile cur_tile; /* what i_classify / i_check found */
  int64_t cur_id, cur_off;
  struct otile *otiles;
  size_t notiles, otiles_cap;
  struct orec *orecs;
  size_t norecs, orecs_cap;
  size_t *oidx; /* index entries (file indexes) */
  size_t noidx, oidx_cap;
  long olatest; /* file index of its head, or -1 */
  int64_t *org_ids;
  struct tlog_tree org_tree;
};

static void i_free(struct imp *im) {
  for (size_t i = 0; i < im->nfiles; i++)
    free(im->files[i].path);
  free(im->files);
  for (size_t i = 0; i < im->nvers; i++) {
    free(im->vers[i].base);
    free(im->vers[i].module);
    free(im->vers[i].version);
    free(im->vers[i].info);
  }
  free(im->vers);
  smap_free(&im->fmap);
  smap_free(&im->vmap);
  if (im->org_fd >= 0)
    close(im->org_fd);
  free(im->otiles);
  free(im->orecs);
  free(im->oidx);
  free(im->org_ids);
  buf_free(&im->manifest);
  free(im->chunk);
  EVP_MD_CTX_free(im->md);
  free(im->m);
}

static int i_open(struct imp *im, struct archive **out, struct reason *why) {
  struct archive *a = archive_read_new();
  *out = NULL;
  if (!a)
    return ERR_NOMEM;
  archive_read_support_filter_zstd(a);
  archive_read_support_format_tar(a);
  if (archive_read_open_filename(a, im->file, CHUNK) != ARCHIVE_OK) {
    int rc = reason_set(
        why, ERR_IO, "bundle refused: cannot read %s: %s", im->file,
        archive_error_string(a) ? archive_error_string(a) : strerror(errno));
    archive_read_free(a);
    return rc;
  }
  *out = a;
  return 0;
}

/* The version index for base (m parsed from it), created when new. */
static long i_version(struct imp *im, const char *base,
                      const struct modreq *m) {
  long v = smap_get(&im->vmap, base);
  if (v >= 0)
    return v;
  struct iver *g = array_grow(im->vers, &im->vers_cap, im->nvers, sizeof *g);
  if (!g)
    return ERR_NOMEM;
  im->vers = g;
  struct iver *nv = &g[im->nvers];
  memset(nv, 0, sizeof *nv);
  nv->base = strdup(base);
  nv->module = strdup(m->module);
  nv->version = strdup(m->version);
  if (!nv->base || !nv->module || !nv->version ||
      smap_put(&im->vmap, nv->base, im->nvers)) {
    free(nv->base);
    free(nv->module);
    free(nv->version);
    return ERR_NOMEM;
  }
  return (long)im->nvers++;
}

/* The version module@version of "<escaped module>@<escaped version>" (an
 * index entry's name), into m; canonical spellings only. 0 or ERR_INVALID. */
static int parse_index_name(const char *s, struct modreq *m) {
  const char *at = strrchr(s, '@');
  char raw[PIPE_KEY_MAX + 16], key[PIPE_KEY_MAX];
  struct reason ignored;
  if (!at || at == s || strlen(s) >= PIPE_KEY_MAX)
    return ERR_INVALID;
  snprintf(raw, sizeof raw, "/%.*s/@v/%s.info", (int)(at - s), s, at + 1);
  if (modpath_parse(raw, m, &ignored) || !m->canonical ||
      m->kind != MODREQ_INFO)
    return ERR_INVALID;
  snprintf(key, sizeof key, "%s@%s", m->module_esc, m->version_esc);
  return strcmp(key, s) == 0 ? 0 : ERR_INVALID;
}

/* A sumdb/<name>/ entry of no database configured here: the exporting
 * site's organisation log (latest, hash tiles of height 8, record/<id>,
 * index/<module>@<version>), all under one name, which the manifest must
 * confirm (i_org); anything else is refused as before. */
static int i_classify_org(struct imp *im, const char *path, const char *name,
                          size_t nl, enum ikind *kind, struct reason *why) {
  const char *rest = name + nl + 1;
  struct tlog_tile t;
  int ok = nl <= NOTE_NAME_MAX;
  if (ok && strcmp(rest, "latest") == 0) {
    *kind = K_OLATEST;
  } else if (ok && strncmp(rest, "tile/", 5) == 0 &&
             !tlog_tile_parse(rest, &t) && t.l >= 0 &&
             t.h == TLOG_CLIENT_HEIGHT) {
    *kind = K_OTILE;
    im->cur_tile = t;
  } else if (ok && strncmp(rest, "record/", 7) == 0) {
    const char *d = rest + 7;
    size_t n = strspn(d, "0123456789");
    ok = n > 0 && n < 19 && !d[n] && (d[0] != '0' || n == 1);
    im->cur_id = ok ? strtoll(d, NULL, 10) : -1;
    *kind = K_ORECORD;
  } else if (ok && strncmp(rest, "index/", 6) == 0) {
    ok = parse_index_name(rest + 6, im->m) == 0;
    *kind = K_OINDEX;
  } else {
    ok = 0;
  }
  if (ok && im->org_name[0] &&
      (strlen(im->org_name) != nl || memcmp(im->org_name, name, nl)))
    ok = 0; /* one organisation log per bundle */
  if (!ok)
    return reason_set(why, ERR_INVALID,
                      "checksum database %.*s is not configured here "
                      "(sumdb=%.*s=URL)",
                      (int)nl, name, (int)nl, name);
  if (!im->org_name[0]) {
    memcpy(im->org_name, name, nl);
    im->org_name[nl] = '\0';
    snprintf(im->org_first, sizeof im->org_first, "%s", path);
  }
  return 0;
}

/* What a bundle path is: a version's file or a checksum-database answer.
 * Fills kind, *ver (version files and lookups; -1 otherwise) and *db and
 * *rest for database answers. ERR_INVALID with why for anything else. */
static int i_classify(struct imp *im, const char *path, enum ikind *kind,
                      long *ver, const struct sumdb_entry **db,
                      const char **rest, struct reason *why) {
  *ver = -1;
  *db = NULL;
  *rest = NULL;
  struct modreq *m = im->m;
  if (strncmp(path, "sumdb/", 6) == 0) {
    const char *name = path + 6, *slash = strchr(name, '/');
    if (!slash || slash == name)
      return reason_set(why, ERR_INVALID, "not a file a bundle holds");
    *db = sumdb_named(im->srv, name, (size_t)(slash - name));
    if (!*db)
      return i_classify_org(im, path, name, (size_t)(slash - name), kind, why);
    *rest = slash + 1;
    enum sumdb_kind sk;
    int partial;
    char mod[MODPATH_ESC_MAX + 1], v[VERSION_ESC_MAX + 1];
    int rc = sumdb_parse_rest(*rest, &sk, &partial, mod, sizeof mod, v,
                              sizeof v, why);
    if (rc || sk == SUMDB_SUPPORTED)
      return reason_set(why, ERR_INVALID, "not a checksum-database answer");
    if (sk == SUMDB_TILE) {
      struct tlog_tile t;
      if (tlog_tile_parse(*rest, &t))
        return reason_set(why, ERR_INVALID, "not a tile path");
      *kind = K_TILE;
      return 0;
    }
    if (sk == SUMDB_LATEST) {
      *kind = K_LATEST;
      return 0;
    }
    char raw[PIPE_KEY_MAX + 16], base[PIPE_KEY_MAX];
    snprintf(raw, sizeof raw, "/%s/@v/%s.info", mod, v);
    if (modpath_parse(raw, m, why) || !m->canonical)
      return reason_set(why, ERR_INVALID, "not a lookup of a valid version");
    snprintf(base, sizeof base, "%s/@v/%s", mod, v);
    *ver = i_version(im, base, m);
    *kind = K_LOOKUP;
    return *ver < 0 ? (int)*ver : 0;
  }
  char raw[PIPE_KEY_MAX + 8];
  if (strlen(path) >= PIPE_KEY_MAX)
    return reason_set(why, ERR_INVALID, "path too long");
  snprintf(raw, sizeof raw, "/%s", path);
  if (modpath_parse(raw, m, why) || !m->canonical ||
      (m->kind != MODREQ_INFO && m->kind != MODREQ_MOD &&
       m->kind != MODREQ_ZIP))
    return reason_set(why, ERR_INVALID, "not a file a bundle holds");
  /* Only the canonical spelling: the path must be the storage key. */
  char key[PIPE_KEY_MAX], base[PIPE_KEY_MAX];
  const char *ext = m->kind == MODREQ_INFO  ? "info"
                    : m->kind == MODREQ_MOD ? "mod"
                                            : "zip";
  pipe_key(m, ext, key, sizeof key);
  if (strcmp(key, path) != 0)
    return reason_set(why, ERR_INVALID, "not a storage key");
  snprintf(base, sizeof base, "%s/@v/%s", m->module_esc, m->version_esc);
  *kind = m->kind == MODREQ_INFO  ? K_INFO
          : m->kind == MODREQ_MOD ? K_MOD
                                  : K_ZIP;
  *ver = i_version(im, base, m);
  return *ver < 0 ? (int)*ver : 0;
}

/* Where an entry's bytes go while they are read: a capped buffer, a spool
 * file, or nowhere (only hashed). */
struct isink {
  struct buf *b;
  int fd;
  int failed; /* the buffer overflowed or the spool could not be written */
};

/* Reads the current entry to its end, hashing all of it into sha and
 * handing it to the sink until the sink fails. 0, or ERR_IO with why when
 * the archive is damaged. */
static int i_read(struct imp *im, struct archive *a, const char *path,
                  struct isink *s, uint64_t *got, unsigned char sha[32],
                  struct reason *why) {
  EVP_DigestInit_ex(im->md, EVP_sha256(), NULL);
  *got = 0;
  for (;;) {
    la_ssize_t n = archive_read_data(a, im->chunk, CHUNK);
    if (n < 0)
      return reason_set(why, ERR_IO, "bundle refused: damaged at %s: %s", path,
                        archive_error_string(a) ? archive_error_string(a)
                                                : "read error");
    if (n == 0)
      break;
    EVP_DigestUpdate(im->md, im->chunk, (size_t)n);
    *got += (uint64_t)n;
    if (s->failed)
      continue;
    if (s->b && buf_append(s->b, im->chunk, (size_t)n))
      s->failed = ERR_TOO_LARGE;
    else if (s->fd >= 0 && write_all(s->fd, im->chunk, (size_t)n))
      s->failed = ERR_IO;
  }
  EVP_DigestFinal_ex(im->md, sha, NULL);
  return 0;
}

/* Notes the first content check that failed (reported once the whole
 * bundle was read, unless the manifest explains it first). */
static void i_problem(struct imp *im, const char *path, int rc,
                      const struct reason *r) {
  if (im->problem.text[0])
    return;
  reason_set(&im->problem, rc, "%s: %s", path, reason_text(r, rc));
}

/* 1 when text is a record's two go.sum lines (of whichever version its
 * first line names). */
static int record_shape(const char *text, size_t len) {
  char mv[2048];
  const char *sp1 = memchr(text, ' ', len);
  const char *sp2 =
      sp1 ? memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - text)) : NULL;
  if (!sp2 || (size_t)(sp2 - text) >= sizeof mv)
    return 0;
  memcpy(mv, text, (size_t)(sp2 - text));
  mv[sp2 - text] = '\0';
  mv[sp1 - text] = '\0';
  return orgsumdb_record_parse(text, len, mv, mv + (sp1 - text) + 1, NULL,
                               NULL);
}

/* An organisation-log entry's shape (what it proves comes in i_org), then
 * its bytes to the spool, at im->cur_off. */
static int i_check_org(struct imp *im, enum ikind kind, const struct buf *b,
                       struct reason *r) {
  const char *d = b->data ? b->data : "";
  struct tlog_tree tree;
  switch (kind) {
  case K_OLATEST:
    if (tlog_parse_tree(d, b->len, &tree))
      return reason_set(r, ERR_BAD_UPSTREAM_DATA, "not a signed tree head");
    break;
  case K_OTILE:
    if (b->len != (size_t)im->cur_tile.w * TLOG_HASH_SIZE)
      return reason_set(r, ERR_BAD_UPSTREAM_DATA,
                        "%zu bytes, not a tile of %d hashes", b->len,
                        im->cur_tile.w);
    break;
  case K_ORECORD:
    if (!record_shape(d, b->len))
      return reason_set(r, ERR_BAD_UPSTREAM_DATA,
                        "not a record (two go.sum lines of one version)");
    break;
  default: {
    char *end;
    errno = 0;
    long long id = strtoll(d, &end, 10);
    if (!b->len || end == d || errno || id < 0 || strcmp(end, "\n") != 0 ||
        memchr(d, '\0', b->len))
      return reason_set(r, ERR_BAD_UPSTREAM_DATA, "not a record id");
    im->cur_id = id;
  }
  }
  if (im->org_fd < 0 && (im->org_fd = spool_open(im->srv->spool_dir)) < 0)
    return reason_set(r, ERR_IO, "cannot create a spool file in %s",
                      im->srv->spool_dir);
  if (write_all(im->org_fd, d, b->len))
    return reason_set(r, ERR_IO, "cannot write a spool file in %s",
                      im->srv->spool_dir);
  im->cur_off = im->org_len;
  im->org_len += (int64_t)b->len;
  return 0;
}

/* The checks of one entry's content (pass 1). */
static int i_check(struct imp *im, struct archive *a, const char *path,
                   uint64_t size, enum ikind kind, long ver,
                   const struct sumdb_entry *db, const char *rest,
                   unsigned char sha[32], struct reason *why) {
  struct iver *v = ver >= 0 ? &im->vers[ver] : NULL;
  struct buf body;
  size_t cap = kind == K_INFO      ? VALIDATE_INFO_MAX
               : kind == K_MOD     ? VALIDATE_MOD_MAX
               : kind >= K_OLATEST ? ORG_ANSWER_MAX
                                   : SUMDB_ANSWER_MAX;
  buf_init(&body, cap);
  struct isink s = {kind == K_ZIP ? NULL : &body, -1, 0};
  struct reason r = {{0}};
  int bad = 0;
  if (kind == K_ZIP) {
    if (size > VALIDATE_ZIP_MAX)
      bad = reason_set(&r, ERR_TOO_LARGE, "zip larger than 500 MiB");
    else if ((s.fd = spool_open(im->srv->spool_dir)) < 0)
      return reason_set(why, ERR_IO, "cannot create a spool file in %s: %s",
                        im->srv->spool_dir, strerror(errno));
  }
  if (bad)
    s.failed = bad;
  uint64_t got;
  int rc = i_read(im, a, path, &s, &got, sha, why);
  if (rc)
    goto out;
  if (got != size) {
    rc = reason_set(why, ERR_IO,
                    "bundle refused: damaged at %s: %llu "
                    "bytes, its header says %llu",
                    path, (unsigned long long)got, (unsigned long long)size);
    goto out;
  }
  if (s.failed && !bad)
    bad = s.failed == ERR_TOO_LARGE
              ? reason_set(&r, ERR_TOO_LARGE, "larger than %zu bytes", cap)
              : reason_set(&r, ERR_IO, "cannot write a spool file in %s",
                           im->srv->spool_dir);
  if (!bad) {
    char fdpath[64], got_vers[VERSION_MAX + 1];
    switch (kind) {
    case K_INFO:
      bad = validate_info(body.data, body.len, v->version, 1, got_vers,
                          sizeof got_vers, &r);
      break;
    case K_MOD:
      bad = validate_mod(body.data, body.len, v->module, &r);
      if (!bad)
        hash1_mod(body.data, body.len, v->got_mod);
      break;
    case K_ZIP:
      snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", s.fd);
      bad = validate_zip(fdpath, v->module, v->version, &r);
      if (!bad)
        bad = hash1_zip(fdpath, v->got_zip, &r);
      break;
    case K_LOOKUP:
      bad = sumdb_check_answer(db, rest, body.data, body.len, &r);
      if (!bad) {
        hash1_from_lookup(body.data, body.len, v->module, v->version,
                          v->want_zip, v->want_mod);
        v->has_lookup = 1;
      }
      break;
    case K_TILE:
    case K_LATEST:
      bad = sumdb_check_answer(db, rest, body.data, body.len, &r);
      break;
    case K_OLATEST:
    case K_OTILE:
    case K_ORECORD:
    case K_OINDEX:
      bad = i_check_org(im, kind, &body, &r);
      break;
    }
  }
  if (bad)
    i_problem(im, path, bad, &r);
  if (v && kind <= K_ZIP) {
    v->has[kind] = 1;
    v->size[kind] = size;
  }
out:
  if (s.fd >= 0)
    close(s.fd);
  buf_free(&body);
  return rc;
}

static int i_add_file(struct imp *im, const char *path, uint64_t size,
                      const unsigned char sha[32], enum ikind kind, long ver) {
  struct ifile *g =
      array_grow(im->files, &im->files_cap, im->nfiles, sizeof *g);
  if (!g)
    return ERR_NOMEM;
  im->files = g;
  struct ifile *f = &g[im->nfiles];
  f->path = strdup(path);
  if (!f->path || smap_put(&im->fmap, f->path, im->nfiles)) {
    free(f->path);
    return ERR_NOMEM;
  }
  f->size = size;
  memcpy(f->sha, sha, 32);
  f->kind = kind;
  f->ver = ver;
  f->listed = 0;
  im->nfiles++;
  return 0;
}

/* Files an organisation-log entry where i_org finds it. */
static int i_org_add(struct imp *im, size_t fi) {
  struct ifile *f = &im->files[fi];
  f->off = im->cur_off;
  f->tile = im->cur_tile;
  f->id = im->cur_id;
  if (f->kind == K_OLATEST) {
    im->olatest = (long)fi;
  } else if (f->kind == K_OTILE) {
    struct otile *g =
        array_grow(im->otiles, &im->otiles_cap, im->notiles, sizeof *g);
    if (!g)
      return ERR_NOMEM;
    im->otiles = g;
    g[im->notiles++] = (struct otile){f->tile, fi};
  } else if (f->kind == K_ORECORD) {
    struct orec *g =
        array_grow(im->orecs, &im->orecs_cap, im->norecs, sizeof *g);
    if (!g)
      return ERR_NOMEM;
    im->orecs = g;
    g[im->norecs++] = (struct orec){f->id, fi};
  } else {
    size_t *g = array_grow(im->oidx, &im->oidx_cap, im->noidx, sizeof *g);
    if (!g)
      return ERR_NOMEM;
    im->oidx = g;
    g[im->noidx++] = fi;
  }
  return 0;
}

/* The manifest against what pass 1 read. */
static int i_manifest(struct imp *im, struct reason *why) {
  if (!im->have_manifest)
    return reason_set(why, ERR_INVALID,
                      "bundle refused: it has no %s (not a gomirror bundle, "
                      "or cut short)",
                      BUNDLE_MANIFEST);
  struct json_tokener *tok = json_tokener_new_ex(64);
  if (!tok)
    return ERR_NOMEM;
  struct json_object *root = json_tokener_parse_ex(
      tok, im->manifest.data ? im->manifest.data : "", (int)im->manifest.len);
  json_tokener_free(tok);
  int rc = 0;
  struct json_object *o, *files, *vers;
  if (!root || !json_object_is_type(root, json_type_object) ||
      !json_object_object_get_ex(root, "format", &o) ||
      strcmp(json_object_get_string(o), BUNDLE_FORMAT) != 0 ||
      !json_object_object_get_ex(root, "format_version", &o) ||
      !json_object_is_type(o, json_type_int) ||
      !json_object_object_get_ex(root, "files", &files) ||
      !json_object_is_type(files, json_type_array) ||
      !json_object_object_get_ex(root, "versions", &vers) ||
      !json_object_is_type(vers, json_type_array)) {
    rc = reason_set(why, ERR_INVALID,
                    "bundle refused: %s is not a gomirror bundle manifest",
                    BUNDLE_MANIFEST);
    goto out;
  }
  if (json_object_get_int(o) != BUNDLE_FORMAT_VERSION) {
    rc = reason_set(why, ERR_INVALID,
                    "bundle refused: format version %d, this gomirror reads "
                    "%d",
                    json_object_get_int(o), BUNDLE_FORMAT_VERSION);
    goto out;
  }
  im->manifest_sumdb_null = !json_object_object_get_ex(root, "sumdb", &o) ||
                            !o || json_object_is_type(o, json_type_null);
  struct json_object *on, *ok;
  if (json_object_object_get_ex(root, "org_sumdb", &o) &&
      json_object_is_type(o, json_type_object) &&
      json_object_object_get_ex(o, "name", &on) &&
      json_object_is_type(on, json_type_string) &&
      json_object_object_get_ex(o, "vkey", &ok) &&
      json_object_is_type(ok, json_type_string)) {
    snprintf(im->man_org_name, sizeof im->man_org_name, "%s",
             json_object_get_string(on));
    snprintf(im->man_org_vkey, sizeof im->man_org_vkey, "%s",
             json_object_get_string(ok));
  }
  size_t n = json_object_array_length(files);
  for (size_t i = 0; i < n && !rc; i++) {
    struct json_object *e = json_object_array_get_idx(files, i), *p, *sz, *sh;
    unsigned char sha[32];
    if (!json_object_object_get_ex(e, "path", &p) ||
        !json_object_object_get_ex(e, "size", &sz) ||
        !json_object_object_get_ex(e, "sha256", &sh) ||
        !json_object_is_type(p, json_type_string) ||
        !json_object_is_type(sz, json_type_int) ||
        unhex32(json_object_get_string(sh), sha)) {
      rc = reason_set(why, ERR_INVALID,
                      "bundle refused: manifest entry %zu is malformed", i);
      break;
    }
    const char *path = json_object_get_string(p);
    long fi = smap_get(&im->fmap, path);
    if (fi < 0) {
      rc = reason_set(why, ERR_INVALID,
                      "bundle refused: %s: in the manifest, not in the "
                      "bundle",
                      path);
      break;
    }
    struct ifile *f = &im->files[fi];
    if (f->listed)
      rc = reason_set(why, ERR_INVALID,
                      "bundle refused: %s: listed twice in the manifest", path);
    else if ((uint64_t)json_object_get_int64(sz) != f->size)
      rc = reason_set(why, ERR_INVALID,
                      "bundle refused: %s: %llu bytes, the manifest says %lld",
                      path, (unsigned long long)f->size,
                      (long long)json_object_get_int64(sz));
    else if (memcmp(sha, f->sha, 32) != 0)
      rc = reason_set(why, ERR_INVALID,
                      "bundle refused: %s: its SHA-256 differs from the "
                      "manifest's (corrupted)",
                      path);
    f->listed = 1;
  }
  for (size_t i = 0; i < im->nfiles && !rc; i++)
    if (!im->files[i].listed)
      rc = reason_set(why, ERR_INVALID,
                      "bundle refused: %s: in the bundle, not in the manifest",
                      im->files[i].path);
  n = json_object_array_length(vers);
  for (size_t i = 0; i < n && !rc; i++) {
    struct json_object *e = json_object_array_get_idx(vers, i), *mo, *ve, *pr;
    char esc[MODPATH_ESC_MAX + 1], vesc[VERSION_ESC_MAX + 1];
    char base[PIPE_KEY_MAX];
    if (!json_object_object_get_ex(e, "module", &mo) ||
        !json_object_object_get_ex(e, "version", &ve) ||
        modpath_escape(json_object_get_string(mo), esc, sizeof esc) ||
        modpath_escape_version(json_object_get_string(ve), vesc, sizeof vesc)) {
      rc = reason_set(why, ERR_INVALID,
                      "bundle refused: manifest version %zu is malformed", i);
      break;
    }
    snprintf(base, sizeof base, "%s/@v/%s", esc, vesc);
    long vi = smap_get(&im->vmap, base);
    if (vi < 0) {
      rc = reason_set(why, ERR_INVALID,
                      "bundle refused: %s@%s: in the manifest, not in the "
                      "bundle",
                      json_object_get_string(mo), json_object_get_string(ve));
      break;
    }
    im->vers[vi].listed = 1;
    im->vers[vi].priv = json_object_object_get_ex(e, "private", &pr) &&
                        json_object_get_boolean(pr);
  }
out:
  json_object_put(root);
  return rc;
}

/* What pass 1 learnt about each version: complete, and its hashes are the
 * ones its lookup records. */
static int i_versions(struct imp *im, struct reason *why) {
  for (size_t i = 0; i < im->nvers; i++) {
    struct iver *v = &im->vers[i];
    if (!v->has[K_INFO] && !v->has[K_MOD] && !v->has[K_ZIP])
      continue; /* a lookup alone: kept for clients, no version */
    if (!v->has[K_INFO] || !v->has[K_MOD])
      return reason_set(
          why, ERR_INVALID, "bundle refused: %s@%s: the bundle lacks its %s",
          v->module, v->version, v->has[K_INFO] ? ".mod" : ".info");
    if (v->has_lookup) {
      if (strcmp(v->got_mod, v->want_mod) != 0)
        return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                          "bundle refused: %s.mod: h1 %s, its "
                          "checksum-database lookup says %s",
                          v->base, v->got_mod, v->want_mod);
      if (v->has[K_ZIP] && strcmp(v->got_zip, v->want_zip) != 0)
        return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                          "bundle refused: %s.zip: h1 %s, its "
                          "checksum-database lookup says %s",
                          v->base, v->got_zip, v->want_zip);
    } else if (!v->priv && !im->manifest_sumdb_null) {
      return reason_set(why, ERR_INVALID,
                        "bundle refused: %s@%s: no checksum-database lookup "
                        "in the bundle, and the manifest does not mark it "
                        "private",
                        v->module, v->version);
    }
    im->st->versions++;
  }
  return 0;
}

/* --- the organisation log's part ----------------------------------------- */

static int otile_order(const void *a, const void *b) {
  const struct tlog_tile *x = &((const struct otile *)a)->t;
  const struct tlog_tile *y = &((const struct otile *)b)->t;
  if (x->l != y->l)
    return x->l < y->l ? -1 : 1;
  if (x->n != y->n)
    return x->n < y->n ? -1 : 1;
  return (x->w > y->w) - (x->w < y->w);
}

static int orec_order(const void *a, const void *b) {
  int64_t x = ((const struct orec *)a)->id, y = ((const struct orec *)b)->id;
  return (x > y) - (x < y);
}

static const struct otile *otile_find(const struct imp *im,
                                      const struct tlog_tile *t) {
  struct otile key = {*t, 0};
  key.t.h = TLOG_CLIENT_HEIGHT;
  return bsearch(&key, im->otiles, im->notiles, sizeof key, otile_order);
}

/* An organisation-log entry's bytes, from the pass-1 spool, appended to
 * out. */
static int i_org_bytes(struct imp *im, const struct ifile *f, struct buf *out,
                       struct reason *why) {
  char tmp[ORG_ANSWER_MAX];
  if (f->size > sizeof tmp || f->off < 0)
    return reason_set(why, ERR_INVALID, "%s: not spooled", f->path);
  ssize_t n = pread(im->org_fd, tmp, (size_t)f->size, (off_t)f->off);
  if (n != (ssize_t)f->size)
    return reason_set(why, ERR_IO, "reading a spool file: %s",
                      n < 0 ? strerror(errno) : "short read");
  return buf_append(out, tmp, (size_t)f->size);
}

/* tlog_tile_reader over the bundle's tiles. */
static int i_tile_reader(void *arg, const struct tlog_tile *t,
                         unsigned char **data, size_t *len,
                         struct reason *why) {
  struct imp *im = arg;
  const struct otile *o = otile_find(im, t);
  if (!o) {
    char path[TLOG_TILE_PATH_MAX];
    if (tlog_tile_path(t, path, sizeof path))
      snprintf(path, sizeof path, "?");
    return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "the bundle lacks the log's %s", path);
  }
  struct buf b;
  buf_init(&b, ORG_ANSWER_MAX);
  int rc = i_org_bytes(im, &im->files[o->fi], &b, why);
  size_t n = b.len;
  unsigned char *d = rc ? NULL : (unsigned char *)buf_steal(&b, &n);
  buf_free(&b);
  if (!rc && !d)
    rc = reason_set(why, ERR_BAD_UPSTREAM_DATA, "an empty tile");
  if (rc)
    return rc;
  *data = d;
  *len = n;
  return 0;
}

struct org_need {
  struct imp *im;
  struct reason *why;
};

/* tlog_new_tiles' callback: a tile of the head's tree must be bundled. */
static int i_tile_needed(void *arg, const struct tlog_tile *t) {
  struct org_need *nd = arg;
  if (t->w != width_in(t, nd->im->org_tree.n) || otile_find(nd->im, t))
    return 0;
  char path[TLOG_TILE_PATH_MAX];
  tlog_tile_path(t, path, sizeof path);
  return reason_set(nd->why, ERR_BAD_UPSTREAM_DATA,
                    "bundle refused: sumdb/%s/%s: a tile of the "
                    "organisation log's head, missing",
                    nd->im->org_name, path);
}

/* Proves the bundle's organisation log against this site's key: the head's
 * signature, every tile against the head (each one of the head's tree, and
 * all of them there), every record's inclusion. */
static int i_org_prove(struct imp *im, struct orgsumdb *db,
                       struct reason *why) {
  struct buf b;
  buf_init(&b, ORG_ANSWER_MAX);
  const struct ifile *lf = &im->files[im->olatest];
  struct reason r = {{0}};
  struct tlog_tree *h = &im->org_tree;
  int rc = i_org_bytes(im, lf, &b, why);
  if (!rc && orgsumdb_open_head(db, b.data, b.len, h, &r))
    rc = reason_set(why, ERR_BAD_UPSTREAM_DATA,
                    "bundle refused: %s: %s (the manifest names this site's "
                    "key)",
                    lf->path, reason_text(&r, ERR_BAD_UPSTREAM_DATA));
  for (size_t i = 0; !rc && i < im->notiles; i++) {
    struct tlog_tile t = im->otiles[i].t;
    const char *path = im->files[im->otiles[i].fi].path;
    if (width_in(&t, h->n) != t.w) {
      rc = reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "bundle refused: %s: not a tile of the organisation "
                      "log's head (%" PRId64 " records)",
                      path, h->n);
      break;
    }
    int64_t idx = tlog_stored_hash_index(t.l * t.h, t.n << t.h);
    tlog_hash got;
    r.text[0] = '\0';
    int pr = tlog_read_hashes(h, TLOG_CLIENT_HEIGHT, &idx, 1, &got,
                              i_tile_reader, im, &r);
    if (pr)
      rc = reason_set(
          why, pr == ERR_NOMEM || pr == ERR_IO ? pr : ERR_BAD_UPSTREAM_DATA,
          "bundle refused: %s: %s", path, reason_text(&r, pr));
  }
  struct org_need nd = {im, why};
  if (!rc && h->n > 0)
    rc = tlog_new_tiles(TLOG_CLIENT_HEIGHT, 0, h->n, i_tile_needed, &nd);
  for (size_t i = 0; !rc && i < im->norecs; i++) {
    const struct ifile *f = &im->files[im->orecs[i].fi];
    buf_reset(&b);
    rc = i_org_bytes(im, f, &b, why);
    if (rc)
      break;
    r.text[0] = '\0';
    int pr = f->id < h->n
                 ? tlog_check_record(h, TLOG_CLIENT_HEIGHT, f->id, b.data,
                                     b.len, i_tile_reader, im, &r)
                 : reason_set(&r, ERR_BAD_UPSTREAM_DATA,
                              "past the head's %" PRId64 " records", h->n);
    if (pr)
      rc = reason_set(
          why, pr == ERR_NOMEM || pr == ERR_IO ? pr : ERR_BAD_UPSTREAM_DATA,
          "bundle refused: %s: not in the organisation log's "
          "signed tree (%s)",
          f->path, reason_text(&r, pr));
  }
  buf_free(&b);
  return rc;
}

/* Each index entry names a bundled record of its version, and a bundled
 * version's .mod and .zip hash to what that record says. */
static int i_org_index(struct imp *im, struct reason *why) {
  struct buf b;
  buf_init(&b, ORG_ANSWER_MAX);
  int rc = 0;
  size_t skip = 6 + strlen(im->org_name) + 1 + 6; /* sumdb/<name>/index/ */
  for (size_t i = 0; !rc && i < im->noidx; i++) {
    const struct ifile *f = &im->files[im->oidx[i]];
    struct orec key = {f->id, 0};
    const struct orec *o =
        bsearch(&key, im->orecs, im->norecs, sizeof key, orec_order);
    if (!o) {
      rc = reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "bundle refused: %s: its record %" PRId64
                      " is not in the bundle",
                      f->path, f->id);
      break;
    }
    char zh[HASH1_LEN], mh[HASH1_LEN], base[PIPE_KEY_MAX];
    buf_reset(&b);
    rc = i_org_bytes(im, &im->files[o->fi], &b, why);
    if (rc)
      break;
    if (parse_index_name(f->path + skip, im->m) ||
        !orgsumdb_record_parse(b.data, b.len, im->m->module, im->m->version, zh,
                               mh)) {
      rc = reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "bundle refused: %s: record %" PRId64
                      " is another version's",
                      f->path, f->id);
      break;
    }
    snprintf(base, sizeof base, "%s/@v/%s", im->m->module_esc,
             im->m->version_esc);
    long vi = smap_get(&im->vmap, base);
    const struct iver *v = vi >= 0 ? &im->vers[vi] : NULL;
    if (v && v->has[K_MOD] && strcmp(v->got_mod, mh) != 0)
      rc = reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "bundle refused: %s.mod: h1 %s, its organisation "
                      "checksum database record says %s",
                      v->base, v->got_mod, mh);
    else if (v && v->has[K_ZIP] && strcmp(v->got_zip, zh) != 0)
      rc = reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "bundle refused: %s.zip: h1 %s, its organisation "
                      "checksum database record says %s",
                      v->base, v->got_zip, zh);
  }
  buf_free(&b);
  return rc;
}

/* After pass 1's other checks: the organisation log's part must be one the
 * manifest names, consistent in itself, and, when this site runs the same
 * log (name and key), proven against its key; for another log it is
 * skipped with one warning line. */
static int i_org(struct imp *im, struct reason *why) {
  if (!im->org_name[0])
    return 0;
  const char *name = im->org_name;
  if (strcmp(im->man_org_name, name) != 0)
    return reason_set(why, ERR_INVALID,
                      "bundle refused: %.160s: checksum database %s is not "
                      "configured here (sumdb=%s=URL)",
                      im->org_first, name, name);
  if (im->olatest < 0)
    return reason_set(why, ERR_INVALID,
                      "bundle refused: sumdb/%s/latest: the organisation "
                      "log's head is not in the bundle",
                      name);
  snprintf(im->st->org_name, sizeof im->st->org_name, "%s", name);
  im->st->org_records = im->norecs;
  qsort(im->otiles, im->notiles, sizeof *im->otiles, otile_order);
  qsort(im->orecs, im->norecs, sizeof *im->orecs, orec_order);
  struct orgsumdb *db = im->srv->orgsumdb;
  int same = db && strcmp(orgsumdb_name(db), name) == 0 &&
             strcmp(orgsumdb_vkey(db), im->man_org_vkey) == 0;
  int rc = same ? i_org_prove(im, db, why) : 0;
  if (!rc)
    rc = i_org_index(im, why);
  if (rc)
    return rc;
  if (!same) {
    log_warn("import: the bundle carries organisation checksum database %s "
             "(key %s), %s: importing its versions without its log",
             name, im->man_org_vkey,
             !db ? "and this site runs none (org_sumdb_name)"
             : strcmp(orgsumdb_name(db), name)
                 ? "and this site runs another one"
                 : "and this site's key for that name is another");
    im->st->org = BUNDLE_ORG_SKIPPED;
    return 0;
  }
  im->st->org_head = im->org_tree.n;
  im->st->org = BUNDLE_ORG_CHECKED;
  im->org_ids = malloc((im->norecs ? im->norecs : 1) * sizeof *im->org_ids);
  if (!im->org_ids)
    return ERR_NOMEM;
  for (size_t i = 0; i < im->norecs; i++)
    im->org_ids[i] = im->orecs[i].id;
  return 0;
}

/* orgsumdb_import's objects: records, then tiles, then index entries. */
static int i_org_obj(void *arg, size_t i, char *rest, size_t cap,
                     struct buf *out, struct reason *why) {
  struct imp *im = arg;
  size_t fi = i < im->norecs ? im->orecs[i].fi
              : i < im->norecs + im->notiles
                  ? im->otiles[i - im->norecs].fi
                  : im->oidx[i - im->norecs - im->notiles];
  const struct ifile *f = &im->files[fi];
  snprintf(rest, cap, "%s", f->path + 6 + strlen(im->org_name) + 1);
  return i_org_bytes(im, f, out, why);
}

/* Before pass 2 commits the versions: the organisation log's part into
 * this site's log (dry_run: only whether it would be taken). A diverged log
 * is one warning line, and the rest is imported. */
static int i_org_commit(struct imp *im, int dry_run, struct reason *why) {
  if (im->st->org != BUNDLE_ORG_CHECKED)
    return 0;
  struct buf head;
  buf_init(&head, ORG_ANSWER_MAX);
  int rc = i_org_bytes(im, &im->files[im->olatest], &head, why);
  struct orgsumdb_import src = {
      .head = head.data,
      .head_len = head.len,
      .read_tile = i_tile_reader,
      .tile_arg = im,
      .ids = im->org_ids,
      .nids = im->norecs,
      .nobj = im->norecs + im->notiles + im->noidx,
      .obj = i_org_obj,
      .obj_arg = im,
  };
  struct orgsumdb_import_result res;
  struct reason r = {{0}};
  if (!rc)
    rc = orgsumdb_import(im->srv->orgsumdb, &src, dry_run, &res, &r);
  if (rc == ERR_EXISTS) {
    log_warn("import: organisation checksum database %s: its log is not "
             "imported: %s; the versions are",
             im->org_name, r.text);
    im->st->org = BUNDLE_ORG_REFUSED;
    rc = 0;
  } else if (rc) {
    rc = reason_set(why, rc, "organisation checksum database %s: %s",
                    im->org_name, reason_text(&r, rc));
  } else {
    im->st->org = res.state == ORGSUMDB_IMPORT_WRITTEN   ? BUNDLE_ORG_WRITTEN
                  : res.state == ORGSUMDB_IMPORT_CURRENT ? BUNDLE_ORG_CURRENT
                                                         : BUNDLE_ORG_CHECKED;
    im->st->written += res.written;
    im->st->unchanged += res.unchanged;
  }
  buf_free(&head);
  return rc;
}

static int pass1(struct imp *im, struct reason *why) {
  struct archive *a;
  int rc = i_open(im, &a, why);
  if (rc)
    return rc;
  struct archive_entry *e;
  int r = ARCHIVE_OK;
  while (!rc && ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK ||
                 r == ARCHIVE_WARN)) {
    const char *path = archive_entry_pathname(e);
    if (!path)
      path = "";
    if (archive_entry_filetype(e) != AE_IFREG ||
        !archive_entry_size_is_set(e) || archive_entry_size(e) < 0) {
      rc = reason_set(why, ERR_INVALID,
                      "bundle refused: %.160s: not a regular file", path);
      break;
    }
    uint64_t size = (uint64_t)archive_entry_size(e);
    if (strcmp(path, BUNDLE_MANIFEST) == 0) {
      if (im->have_manifest) {
        rc = reason_set(why, ERR_INVALID, "bundle refused: two manifests");
        break;
      }
      struct isink s = {&im->manifest, -1, 0};
      uint64_t got;
      unsigned char sha[32];
      rc = i_read(im, a, path, &s, &got, sha, why);
      if (!rc && s.failed)
        rc = reason_set(why, ERR_TOO_LARGE,
                        "bundle refused: its manifest is larger than %u MiB",
                        MANIFEST_MAX >> 20);
      im->have_manifest = 1;
      continue;
    }
    if (smap_get(&im->fmap, path) >= 0) {
      rc = reason_set(why, ERR_INVALID,
                      "bundle refused: %.160s: in the bundle twice", path);
      break;
    }
    enum ikind kind = K_INFO;
    long ver;
    const struct sumdb_entry *db;
    const char *rest;
    struct reason cr = {{0}};
    int crc = i_classify(im, path, &kind, &ver, &db, &rest, &cr);
    if (crc) {
      rc =
          reason_set(why, crc == ERR_NOMEM ? crc : ERR_INVALID,
                     "bundle refused: %.160s: %s", path, reason_text(&cr, crc));
      break;
    }
    unsigned char sha[32];
    im->cur_off = -1;
    rc = i_check(im, a, path, size, kind, ver, db, rest, sha, why);
    if (!rc)
      rc = i_add_file(im, path, size, sha, kind, ver);
    if (!rc && kind >= K_OLATEST)
      rc = i_org_add(im, im->nfiles - 1);
  }
  if (!rc && r != ARCHIVE_EOF)
    rc = reason_set(why, ERR_IO, "bundle refused: damaged: %s",
                    archive_error_string(a) ? archive_error_string(a)
                                            : "read error");
  archive_read_free(a);
  if (!rc)
    rc = i_manifest(im, why);
  if (!rc && im->problem.text[0])
    rc = reason_set(why, ERR_BAD_UPSTREAM_DATA, "bundle refused: %s",
                    im->problem.text);
  if (!rc)
    rc = i_versions(im, why);
  if (!rc)
    rc = i_org(im, why);
  return rc;
}

/* --- pass 2: commit ------------------------------------------------------ */

struct sha_sink {
  EVP_MD_CTX *md;
};

static int sha_sink(void *arg, const void *p, size_t n) {
  EVP_DigestUpdate(((struct sha_sink *)arg)->md, p, n);
  return 0;
}

/* 1 when key holds exactly size bytes hashing to sha, 0 when it holds other
 * bytes, ERR_NOT_FOUND when absent, ERR_STORAGE. */
static int stored_same(struct imp *im, const char *key, uint64_t size,
                       const unsigned char sha[32]) {
  struct blob_stat bs;
  int rc = storage_stat(im->srv->store, key, &bs);
  if (rc)
    return rc;
  if (bs.size != size)
    return 0;
  struct sha_sink s = {EVP_MD_CTX_new()};
  if (!s.md)
    return ERR_NOMEM;
  unsigned char d[32];
  EVP_DigestInit_ex(s.md, EVP_sha256(), NULL);
  rc = storage_get(im->srv->store, key, NULL, sha_sink, &s);
  EVP_DigestFinal_ex(s.md, d, NULL);
  EVP_MD_CTX_free(s.md);
  if (rc)
    return rc == ERR_NOT_FOUND ? rc : ERR_STORAGE;
  return memcmp(d, sha, 32) == 0;
}

/* An entry's verified bytes, in memory or in a spool file. */
struct ibody {
  struct buf b;
  int fd;
  uint64_t size;
};

static int put_body(struct imp *im, const char *key, const struct ibody *b) {
  if (b->fd >= 0)
    return storage_put_fd(im->srv->store, key, b->fd, b->size);
  return storage_put_buf(im->srv->store, key, b->b.data ? b->b.data : "",
                         b->b.len);
}

enum put_policy {
  PUT_REPLACE, /* a stored object with other bytes is replaced */
  PUT_KEEP,    /* ... is kept (immutable, or part of a committed version) */
};

/* Stores b under key unless the same bytes are there. */
static int i_put(struct imp *im, const struct ifile *f, const struct ibody *b,
                 enum put_policy policy, struct reason *why) {
  int same = stored_same(im, f->path, f->size, f->sha);
  if (same == 1) {
    im->st->unchanged++;
    return 0;
  }
  if (same < 0 && same != ERR_NOT_FOUND)
    return reason_set(why, ERR_STORAGE, "storage: reading %s: %s", f->path,
                      err_str(same));
  if (same == 0 && policy == PUT_KEEP) {
    log_warn("import: %s is stored with other bytes than the bundle's; "
             "keeping what is stored",
             f->path);
    im->st->kept++;
    return 0;
  }
  /* A store may keep the first copy of a key (S3 with If-None-Match): to
   * replace other bytes, delete them first. Only objects no reader serves
   * are replaced (a version's files before its .info, a /latest), and the
   * result is read back. */
  int rc = same == 0 ? storage_del(im->srv->store, f->path) : 0;
  if (rc == ERR_NOT_FOUND)
    rc = 0;
  if (!rc)
    rc = put_body(im, f->path, b);
  if (!rc && same == 0 && stored_same(im, f->path, f->size, f->sha) != 1)
    rc = ERR_STORAGE;
  if (rc)
    return reason_set(why, ERR_STORAGE, "storage: writing %s: %s", f->path,
                      err_str(rc));
  im->st->written++;
  return 0;
}

/* 1 when v was committed in storage before this import wrote to it. */
static int i_was_committed(struct imp *im, struct iver *v, struct reason *why) {
  if (!v->stored_state) {
    char key[PIPE_KEY_MAX + 8];
    snprintf(key, sizeof key, "%s.info", v->base);
    struct blob_stat bs;
    int rc = storage_stat(im->srv->store, key, &bs);
    if (rc && rc != ERR_NOT_FOUND)
      return reason_set(why, ERR_STORAGE, "storage: stat %s: %s", key,
                        err_str(rc));
    v->stored_state = rc == 0 ? 1 : 2;
  }
  return v->stored_state == 1;
}

/* Stores v's .info once its .mod and .zip are stored: the version is then
 * committed, and recorded in metadata as the pipeline records it. */
static int i_commit_info(struct imp *im, struct iver *v, const struct ifile *f,
                         struct reason *why) {
  int want = v->has[K_MOD] + v->has[K_ZIP];
  if (!v->info || v->info_done || v->done < want)
    return 0;
  struct ibody b = {
      {v->info, v->info_len, v->info_len, v->info_len}, -1, v->info_len};
  size_t written = im->st->written;
  int rc = i_put(im, f, &b, v->stored_state == 1 ? PUT_KEEP : PUT_REPLACE, why);
  if (rc)
    return rc;
  v->info_done = 1;
  if (im->st->written == written || v->stored_state == 1)
    return 0; /* committed before: recorded then */
  im->st->versions_new++;
  log_info("import: committed %s@%s", v->module, v->version);
  char raw[PIPE_KEY_MAX + 8];
  snprintf(raw, sizeof raw, "/%s.info", v->base);
  struct reason ignored;
  if (modpath_parse(raw, im->m, &ignored) == 0)
    pipe_note_committed(im->srv, im->m, v->size[K_INFO], v->size[K_MOD],
                        v->has[K_ZIP] ? (long long)v->size[K_ZIP] : -1);
  return 0;
}

/* The stored /latest is replaced only by a larger tree. */
static int i_put_latest(struct imp *im, const struct ifile *f,
                        const struct ibody *b, struct reason *why) {
  struct buf cur;
  buf_init(&cur, SUMDB_ANSWER_MAX);
  int rc = storage_get_buf(im->srv->store, f->path, &cur);
  struct tlog_tree have, mine;
  int newer =
      rc != 0 || tlog_parse_tree(cur.data, cur.len, &have) ||
      (tlog_parse_tree(b->b.data, b->b.len, &mine) == 0 && mine.n > have.n);
  buf_free(&cur);
  if (rc && rc != ERR_NOT_FOUND)
    return reason_set(why, ERR_STORAGE, "storage: reading %s: %s", f->path,
                      err_str(rc));
  if (!newer) {
    im->st->unchanged++;
    return 0;
  }
  return i_put(im, f, b, PUT_REPLACE, why);
}

static int pass2(struct imp *im, struct reason *why) {
  struct archive *a;
  int rc = i_open(im, &a, why);
  if (rc)
    return rc;
  struct archive_entry *e;
  int r = ARCHIVE_OK;
  while (!rc && ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK ||
                 r == ARCHIVE_WARN)) {
    const char *path = archive_entry_pathname(e);
    if (path && strcmp(path, BUNDLE_MANIFEST) == 0)
      continue;
    long fi = path ? smap_get(&im->fmap, path) : -1;
    if (fi < 0) {
      rc = reason_set(why, ERR_IO, "bundle %s changed while being imported",
                      im->file);
      break;
    }
    const struct ifile *f = &im->files[fi];
    struct ibody b = {{0}, -1, f->size};
    buf_init(&b.b, SMALL_MAX);
    if (f->size > SMALL_MAX) {
      b.fd = spool_open(im->srv->spool_dir);
      if (b.fd < 0) {
        rc = reason_set(why, ERR_IO, "cannot create a spool file in %s: %s",
                        im->srv->spool_dir, strerror(errno));
        break;
      }
    }
    struct isink s = {b.fd >= 0 ? NULL : &b.b, b.fd, 0};
    uint64_t got;
    unsigned char sha[32];
    rc = i_read(im, a, path, &s, &got, sha, why);
    if (!rc && (s.failed || got != f->size || memcmp(sha, f->sha, 32)))
      rc = reason_set(why, ERR_IO,
                      "%s: changed between checking and committing (the "
                      "bundle file was modified?)",
                      path);
    struct iver *v = f->ver >= 0 ? &im->vers[f->ver] : NULL;
    if (!rc && v && f->kind <= K_ZIP)
      rc = i_was_committed(im, v, why) < 0 ? ERR_STORAGE : 0;
    if (!rc) {
      switch (f->kind) {
      case K_INFO:
        /* Held until the version's other files are stored. */
        v->info = buf_steal(&b.b, &v->info_len);
        if (!v->info) {
          v->info = strdup("");
          v->info_len = 0;
        }
        rc = v->info ? i_commit_info(im, v, f, why) : ERR_NOMEM;
        break;
      case K_MOD:
      case K_ZIP:
        rc = i_put(im, f, &b, v->stored_state == 1 ? PUT_KEEP : PUT_REPLACE,
                   why);
        if (!rc) {
          v->done++;
          char info_path[PIPE_KEY_MAX + 8];
          snprintf(info_path, sizeof info_path, "%s.info", v->base);
          long ii = smap_get(&im->fmap, info_path);
          if (ii >= 0)
            rc = i_commit_info(im, v, &im->files[ii], why);
        }
        break;
      case K_LOOKUP:
      case K_TILE:
        rc = i_put(im, f, &b, PUT_KEEP, why);
        break;
      case K_LATEST:
        rc = i_put_latest(im, f, &b, why);
        break;
      case K_OLATEST:
      case K_OTILE:
      case K_ORECORD:
      case K_OINDEX:
        break; /* written before, from what pass 1 proved (i_org_commit) */
      }
    }
    if (b.fd >= 0)
      close(b.fd);
    buf_free(&b.b);
  }
  if (!rc && r != ARCHIVE_EOF)
    rc = reason_set(why, ERR_IO, "bundle refused: damaged: %s",
                    archive_error_string(a) ? archive_error_string(a)
                                            : "read error");
  archive_read_free(a);
  for (size_t i = 0; !rc && i < im->nvers; i++)
    if (im->vers[i].has[K_INFO] && !im->vers[i].info_done)
      rc = reason_set(why, ERR_IO,
                      "%s@%s: not committed (its files did not "
                      "all come through)",
                      im->vers[i].module, im->vers[i].version);
  return rc;
}

int bundle_import(struct server *srv, const char *path, int check_only,
                  struct bundle_import_stats *st, struct reason *why) {
  memset(st, 0, sizeof *st);
  struct imp im = {
      .srv = srv, .file = path, .st = st, .org_fd = -1, .olatest = -1};
  buf_init(&im.manifest, MANIFEST_MAX);
  im.chunk = malloc(CHUNK);
  im.md = EVP_MD_CTX_new();
  im.m = malloc(sizeof *im.m);
  int rc = !im.chunk || !im.md || !im.m ? ERR_NOMEM : 0;
  if (!rc)
    rc = pass1(&im, why);
  st->files = im.nfiles;
  if (!rc && check_only)
    rc = i_org_commit(&im, 1, why);
  if (!rc && !check_only) {
    rc = i_org_commit(&im, 0, why);
    if (!rc)
      rc = pass2(&im, why);
    if (rc) {
      /* Part may be committed: every version whole or without .info. */
      struct reason inner = *why;
      reason_set(why, rc, "import stopped (rerun it to finish): %s",
                 reason_text(&inner, rc));
    }
  }
  i_free(&im);
  return rc;
}

/* --- --since ------------------------------------------------------------- */

int bundle_parse_since(const char *s, time_t now, time_t *out,
                       struct reason *why) {
  size_t n = strlen(s);
  if (n >= 2 && n < 16 && isdigit((unsigned char)s[0]) &&
      strchr("smhdw", s[n - 1])) {
    long long v = 0;
    for (size_t i = 0; i + 1 < n; i++) {
      if (!isdigit((unsigned char)s[i]) || v > 1000000000LL)
        return reason_set(why, ERR_INVALID,
                          "--since %s: not a duration like 7d", s);
      v = v * 10 + (s[i] - '0');
    }
    long long unit = s[n - 1] == 's'   ? 1
                     : s[n - 1] == 'm' ? 60
                     : s[n - 1] == 'h' ? 3600
                     : s[n - 1] == 'd' ? 86400
                                       : 7 * 86400;
    *out = now - (time_t)(v * unit);
    return 0;
  }
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
  if (!p)
    p = strptime(s, "%Y-%m-%dt%H:%M:%S", &tm);
  if (p && *p == '.') {
    p++;
    if (!isdigit((unsigned char)*p))
      p = NULL;
    while (p && isdigit((unsigned char)*p))
      p++;
  }
  long off = 0;
  if (p && (*p == 'Z' || *p == 'z') && !p[1]) {
    off = 0;
  } else if (p && (*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
             isdigit((unsigned char)p[2]) && p[3] == ':' &&
             isdigit((unsigned char)p[4]) && isdigit((unsigned char)p[5]) &&
             !p[6]) {
    off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600L +
          ((p[4] - '0') * 10 + (p[5] - '0')) * 60L;
    if (*p == '-')
      off = -off;
  } else {
    return reason_set(why, ERR_INVALID,
                      "--since %.80s: not an RFC 3339 time "
                      "(2024-05-01T00:00:00Z) or a duration (7d, 12h)",
                      s);
  }
  *out = timegm(&tm) - off;
  return 0;
}
