/* The organisation checksum database (orgsumdb.h, docs/sumdb.md). Storage
 * under sumdb/<name>/: "latest" (the signed head, written last: the commit
 * marker), "tile/8/<L>/<N>[.p/<W>]" (hash tiles, every tile of every
 * committed head), "record/<id>" (each record's go.sum lines) and
 * "index/<escaped module>@<escaped version>" (the record id of a version,
 * trusted only below the head's size). Data tiles are made from records. */
#include "orgsumdb.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "mod/hash1.h"
#include "mod/modpath.h"
#include "mod/private.h"
#include "mod/tlogproof.h"
#include "mod/validate.h"
#include "pipeline.h"
#include "server.h"
#include "storage/meta.h"
#include "storage/storage.h"
#include "seen.h"
#include "sumdb.h"
#include "verify.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 4096   /* a signed tree note */
#define RECORD_MAX 2048 /* one record's text (two go.sum lines) */
#define TILE_BYTES ((size_t)TLOG_HASH_SIZE << ORGSUMDB_HEIGHT)
#define KEY_MAX (NOTE_NAME_MAX + PIPE_KEY_MAX + 64)
#define HEAD_CACHE_S 1.0    /* how long a head read from storage is served */
#define SEEN_SLOTS 4096     /* versions whose served bytes were checked */
#define ABSENT_RECHECK_S 30 /* a version not in the log is looked up again */
#define TILE_CACHE 32       /* tiles one append keeps in memory */

enum seen_state { SEEN_EMPTY, SEEN_GOOD, SEEN_ABSENT };

struct orgsumdb {
  struct note_signer signer;
  struct note_verifier verifier;
  char vkey[NOTE_KEY_MAX];
  char prefix[NOTE_NAME_MAX + 16]; /* "sumdb/<name>/" */
  char lock_key[NOTE_NAME_MAX + 16];
  char meta_key[NOTE_NAME_MAX + 16];
  struct storage *store;
  struct meta *meta;
  int shared; /* the metadata store is shared by replicas: lock through it */
  long lock_ttl_ms;
  long pause_ms;
  pthread_mutex_t append_mu; /* one append at a time in this process */
  pthread_mutex_t mu;        /* everything below */
  char *head;                /* the newest head note read, or NULL */
  size_t head_len;
  struct tlog_tree head_tree;
  double head_at;
  int64_t max_n; /* the largest head this process saw: a log never shrinks */
  struct seen *checked; /* "<ext> <module>@<version>": enum seen_state */
  atomic_llong refused; /* SECURITY refusals, for /metrics */
};

int orgsumdb_name_ok(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > NOTE_NAME_MAX || !strcmp(name, ".") || !strcmp(name, ".."))
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'))
      return 0;
  }
  return 1;
}

int orgsumdb_new(const struct orgsumdb_params *p, struct orgsumdb **out,
                 struct reason *why) {
  *out = NULL;
  struct orgsumdb *db = calloc(1, sizeof *db);
  if (!db)
    return ERR_NOMEM;
  struct reason ignored;
  if (note_signer_parse(p->skey, &db->signer, &ignored) ||
      !orgsumdb_name_ok(db->signer.name)) {
    orgsumdb_free(db);
    return reason_set(why, ERR_CONFIG,
                      "the organisation checksum database's key is not a "
                      "note signer key for a valid name");
  }
  note_signer_vkey(&db->signer, db->vkey);
  if (note_verifier_parse(db->vkey, &db->verifier, &ignored)) {
    orgsumdb_free(db);
    return reason_set(why, ERR_CONFIG, "cannot derive the verifier key");
  }
  const char *name = db->signer.name;
  snprintf(db->prefix, sizeof db->prefix, "sumdb/%s/", name);
  snprintf(db->lock_key, sizeof db->lock_key, "orgsumdb:%s", name);
  snprintf(db->meta_key, sizeof db->meta_key, "orgsumdb-head:%s", name);
  db->store = p->store;
  db->meta = p->meta;
  db->shared = p->meta && strcmp(p->meta->ops->name, "memory") != 0;
  db->lock_ttl_ms = p->lock_ttl_ms > 0 ? p->lock_ttl_ms : 15000;
  db->pause_ms = p->pause_ms;
  pthread_mutex_init(&db->append_mu, NULL);
  pthread_mutex_init(&db->mu, NULL);
  if (seen_new(SEEN_SLOTS, &db->checked)) {
    orgsumdb_free(db);
    return ERR_NOMEM;
  }
  *out = db;
  return 0;
}

void orgsumdb_free(struct orgsumdb *db) {
  if (!db)
    return;
  pthread_mutex_destroy(&db->append_mu);
  pthread_mutex_destroy(&db->mu);
  seen_free(db->checked);
  free(db->head);
  OPENSSL_cleanse(db, sizeof *db);
  free(db);
}

const char *orgsumdb_name(const struct orgsumdb *db) {
  return db->signer.name;
}

const char *orgsumdb_vkey(const struct orgsumdb *db) {
  return db->vkey;
}

/* 1 when name is an entry of the `sumdb` list. */
static int in_sumdb_list(const char *list, const char *name) {
  size_t nl = strlen(name);
  for (const char *p = list ? list : ""; *p;) {
    size_t n = strcspn(p, ",");
    const char *e = p;
    while (n && (*e == ' ' || *e == '\t'))
      e++, n--;
    /* "name=url" or, with its verifier key, "name+hash+key=url". */
    size_t end = strcspn(e, "+=,");
    if (end < n && end == nl && !memcmp(e, name, nl))
      return 1;
    p += strcspn(p, ",");
    if (*p == ',')
      p++;
  }
  return 0;
}

int orgsumdb_open(const struct config *cfg, struct storage *store,
                  struct meta *meta, struct orgsumdb **out,
                  struct reason *why) {
  *out = NULL;
  const char *name = cfg->org_sumdb_name;
  const char *path = cfg->org_sumdb_key;
  if (!name || !*name)
    return 0;
  if (!orgsumdb_name_ok(name))
    return reason_set(why, ERR_CONFIG,
                      "org_sumdb_name must be a host-like name (letters, "
                      "digits, '.', '-', '_'), got '%.64s'",
                      name);
  if (!path || !*path)
    return reason_set(why, ERR_CONFIG,
                      "org_sumdb_name is set: org_sumdb_key must name the file "
                      "holding its signer key (gomirror sumdb keygen %s)",
                      name);
  if (in_sumdb_list(cfg->sumdb, name))
    return reason_set(why, ERR_CONFIG,
                      "org_sumdb_name %s is also a `sumdb` entry: the "
                      "organisation database needs a name of its own",
                      name);
  /* A public version is logged only once the pipeline has proven it. */
  if (cfg->org_sumdb_public &&
      (sumdb_mode(cfg) != SUMDB_STRICT || !cfg->sumdb || !*cfg->sumdb))
    return reason_set(why, ERR_CONFIG,
                      "org_sumdb_public needs sumdb_verify=strict and a "
                      "`sumdb` to prove public versions against before they "
                      "are logged");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return reason_set(why, ERR_CONFIG,
                      "org_sumdb_key: cannot read '%.200s': %s", path,
                      strerror(errno));
  char text[NOTE_KEY_MAX + 2];
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n < 0 || (size_t)n >= sizeof text - 1) {
    OPENSSL_cleanse(text, sizeof text);
    return reason_set(why, ERR_CONFIG, "org_sumdb_key: '%.200s' is %s", path,
                      n < 0 ? "unreadable" : "too long for a signer key");
  }
  while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' ||
                   text[n - 1] == ' ' || text[n - 1] == '\t'))
    n--;
  text[n] = '\0';
  struct note_signer s;
  struct reason ignored;
  int rc = note_signer_parse(text, &s, &ignored);
  if (rc)
    rc = reason_set(why, ERR_CONFIG,
                    "org_sumdb_key: '%.200s' does not hold a note signer key "
                    "(PRIVATE+KEY+<name>+<hash>+<key>, as gomirror sumdb "
                    "keygen writes)",
                    path);
  else if (strcmp(s.name, name) != 0)
    rc = reason_set(why, ERR_CONFIG,
                    "org_sumdb_key: the key in '%.200s' is for '%.64s', not "
                    "org_sumdb_name '%.64s'",
                    path, s.name, name);
  OPENSSL_cleanse(&s, sizeof s);
  if (!rc) {
    const char *pause = getenv(ORGSUMDB_TEST_PAUSE_ENV);
    struct orgsumdb_params p = {
        .skey = text,
        .store = store,
        .meta = meta,
        .lock_ttl_ms = cfg->lock_ttl * 1000,
        .pause_ms = pause ? strtol(pause, NULL, 10) : 0,
    };
    rc = orgsumdb_new(&p, out, why);
  }
  OPENSSL_cleanse(text, sizeof text);
  if (!rc && meta) {
    log_info("organisation checksum database %s: logs %s versions; "
             "developers set GOSUMDB=%s",
             name, cfg->org_sumdb_public ? "private and public" : "private",
             (*out)->vkey);
    if (!(*out)->shared && cfg->storage && !strncmp(cfg->storage, "s3://", 5))
      log_warn("organisation checksum database %s with meta=memory: run one "
               "replica only; replicas sharing the bucket need meta=redis "
               "to serialise their appends",
               name);
    if ((*out)->pause_ms > 0)
      log_warn("%s=%ld: appends pause before writing the head (a test "
               "hook; never in production)",
               ORGSUMDB_TEST_PAUSE_ENV, (*out)->pause_ms);
  }
  return rc;
}

/* --- records ------------------------------------------------------------ */

static int field_ok(const char *s) {
  return *s && !strpbrk(s, " \t\r\n");
}

int orgsumdb_record_text(const char *module, const char *version,
                         const char *zip_h1, const char *mod_h1, char *out,
                         size_t cap) {
  if (!field_ok(module) || !field_ok(version) || !field_ok(zip_h1) ||
      !field_ok(mod_h1))
    return ERR_INVALID;
  int n = snprintf(out, cap, "%s %s %s\n%s %s/go.mod %s\n", module, version,
                   zip_h1, module, version, mod_h1);
  return n < 0 || (size_t)n >= cap ? ERR_INVALID : 0;
}

/* If line (of len bytes) starts with "<module> <version><suffix> ", the
 * length of that prefix; else 0. */
static size_t line_prefix(const char *line, size_t len, const char *module,
                          const char *version, const char *suffix) {
  size_t ml = strlen(module), vl = strlen(version), sl = strlen(suffix);
  size_t n = ml + 1 + vl + sl + 1;
  if (len < n || memcmp(line, module, ml) != 0 || line[ml] != ' ' ||
      memcmp(line + ml + 1, version, vl) != 0 ||
      memcmp(line + ml + 1 + vl, suffix, sl) != 0 || line[n - 1] != ' ')
    return 0;
  return n;
}

/* Whether text is exactly the record of module@version; its hashes then go
 * to zip_h1 and mod_h1 (either may be NULL). */
static int record_parse(const char *text, size_t len, const char *module,
                        const char *version, char *zip_h1, char *mod_h1) {
  const char *nl = text ? memchr(text, '\n', len) : NULL;
  if (!nl)
    return 0;
  size_t na = line_prefix(text, (size_t)(nl - text), module, version, "");
  if (!na)
    return 0;
  size_t zl = (size_t)(nl - text) - na;
  const char *second = nl + 1;
  size_t rest = len - (size_t)(second - text);
  size_t nb = rest ? line_prefix(second, rest, module, version, "/go.mod") : 0;
  if (!nb || rest < nb + 1 || second[rest - 1] != '\n')
    return 0;
  size_t ml = rest - nb - 1;
  if (zl == 0 || zl >= HASH1_LEN || ml == 0 || ml >= HASH1_LEN ||
      memchr(second, '\n', rest - 1))
    return 0;
  if (zip_h1) {
    memcpy(zip_h1, text + na, zl);
    zip_h1[zl] = '\0';
  }
  if (mod_h1) {
    memcpy(mod_h1, second + nb, ml);
    mod_h1[ml] = '\0';
  }
  return 1;
}

static void record_key(const struct orgsumdb *db, int64_t id, char *out,
                       size_t cap) {
  snprintf(out, cap, "%srecord/%" PRId64, db->prefix, id);
}

static int index_key(const struct orgsumdb *db, const char *module,
                     const char *version, char *out, size_t cap) {
  char me[MODPATH_ESC_MAX + 1], ve[VERSION_ESC_MAX + 1];
  if (modpath_escape(module, me, sizeof me) ||
      modpath_escape_version(version, ve, sizeof ve))
    return ERR_INVALID;
  int n = snprintf(out, cap, "%sindex/%s@%s", db->prefix, me, ve);
  return n < 0 || (size_t)n >= cap ? ERR_INVALID : 0;
}

static int tile_key(const struct orgsumdb *db, const struct tlog_tile *t,
                    char *out, size_t cap) {
  char path[TLOG_TILE_PATH_MAX];
  if (tlog_tile_path(t, path, sizeof path))
    return ERR_INVALID;
  int n = snprintf(out, cap, "%s%s", db->prefix, path);
  return n < 0 || (size_t)n >= cap ? ERR_INVALID : 0;
}

/* The record id an index entry holds: "<id>\n". */
static int parse_id(const struct buf *b, int64_t *id) {
  const char *s = buf_cstr(b);
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (end == s || errno || v < 0 || (*end && strcmp(end, "\n") != 0))
    return ERR_INVALID;
  *id = v;
  return 0;
}

/* --- heads -------------------------------------------------------------- */

static int security(struct orgsumdb *db, struct reason *why, int code,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A refusal that may mean tampering: one SECURITY log line, and the reason
 * (the same text) for the caller. */
static int security(struct orgsumdb *db, struct reason *why, int code,
                    const char *fmt, ...) {
  atomic_fetch_add_explicit(&db->refused, 1, memory_order_relaxed);
  char text[REASON_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  log_error("SECURITY: organisation checksum database %s: %s", db->signer.name,
            text);
  return reason_set(why, code, "%s", text);
}

/* The signed note of tree t, appended to out. */
static int sign_tree(const struct orgsumdb *db, const struct tlog_tree *t,
                     struct buf *out, struct reason *why) {
  char text[256];
  int n = tlog_format_tree(t, text, sizeof text);
  if (n < 0)
    return reason_set(why, ERR_INVALID, "cannot format a tree head");
  return note_sign(text, (size_t)n, &db->signer, out, why);
}

/* Parses a stored head note: signed by the log's key and a tree. */
static int open_head(const struct orgsumdb *db, const char *note, size_t len,
                     struct tlog_tree *tree, struct reason *why) {
  size_t text_len;
  struct reason bad = {{0}};
  if (note_open(note, len, &db->verifier, &text_len, &bad) ||
      tlog_parse_tree(note, text_len, tree))
    return reason_set(why, ERR_BAD_UPSTREAM_DATA, "%s",
                      reason_text(&bad, ERR_BAD_UPSTREAM_DATA));
  return 0;
}

/* The head in storage (an absent one is the empty log, signed now). */
static int read_head(struct orgsumdb *db, struct buf *note,
                     struct tlog_tree *tree, struct reason *why) {
  char key[KEY_MAX];
  snprintf(key, sizeof key, "%slatest", db->prefix);
  buf_reset(note);
  int rc = storage_get_buf(db->store, key, note);
  if (rc == ERR_NOT_FOUND) {
    memset(tree, 0, sizeof *tree);
    buf_reset(note);
    return sign_tree(db, tree, note, why);
  }
  if (rc)
    return reason_set(why, ERR_STORAGE,
                      "organisation checksum database %s: reading its head "
                      "failed: %s",
                      db->signer.name, err_str(rc));
  struct reason bad = {{0}};
  if (open_head(db, note->data, note->len, tree, &bad))
    return security(db, why, ERR_BAD_UPSTREAM_DATA,
                    "the stored head is not a tree signed by this log's key "
                    "(%s); not served, nothing appended",
                    reason_text(&bad, ERR_BAD_UPSTREAM_DATA));
  return 0;
}

/* Remembers a head read from storage or written here. */
static void head_remember(struct orgsumdb *db, const char *note, size_t len,
                          const struct tlog_tree *tree) {
  char *copy = malloc(len ? len : 1);
  pthread_mutex_lock(&db->mu);
  if (tree->n < db->max_n)
    log_error("SECURITY: organisation checksum database %s: the stored head "
              "has %" PRId64 " records, fewer than the %" PRId64
              " seen before (storage rolled back?); appends are refused",
              db->signer.name, tree->n, db->max_n);
  else
    db->max_n = tree->n;
  if (copy) {
    memcpy(copy, note, len);
    free(db->head);
    db->head = copy;
    db->head_len = len;
    db->head_tree = *tree;
    db->head_at = clock_now_s();
  }
  pthread_mutex_unlock(&db->mu);
}

int orgsumdb_head(struct orgsumdb *db, int refresh, struct buf *note,
                  struct tlog_tree *tree, struct reason *why) {
  pthread_mutex_lock(&db->mu);
  if (!refresh && db->head && clock_now_s() - db->head_at < HEAD_CACHE_S) {
    int rc = note ? buf_append(note, db->head, db->head_len) : 0;
    if (tree)
      *tree = db->head_tree;
    pthread_mutex_unlock(&db->mu);
    return rc;
  }
  pthread_mutex_unlock(&db->mu);
  struct buf b;
  buf_init(&b, HEAD_MAX);
  struct tlog_tree t;
  int rc = read_head(db, &b, &t, why);
  if (!rc) {
    head_remember(db, b.data, b.len, &t);
    if (note)
      rc = buf_append(note, b.data, b.len);
    if (tree)
      *tree = t;
  }
  buf_free(&b);
  return rc;
}

/* --- appending ---------------------------------------------------------- */

/* One append's view: the head it extends, the hashes the new record adds,
 * and the tiles it has read (each proven against that head). */
struct actx {
  struct orgsumdb *db;
  struct tlog_tree old;
  int64_t base; /* tlog_stored_hash_index(0, old.n): the first new index */
  tlog_hash add[64];
  size_t nadd;
  struct {
    struct tlog_tile t;
    unsigned char *data;
    size_t len;
  } tiles[TILE_CACHE];
  size_t ntiles;
  struct reason *why; /* for the tile writer */
};

static void actx_free(struct actx *a) {
  for (size_t i = 0; i < a->ntiles; i++)
    free(a->tiles[i].data);
  a->ntiles = 0;
}

static int same_tile(const struct tlog_tile *a, const struct tlog_tile *b) {
  return a->h == b->h && a->l == b->l && a->n == b->n && a->w == b->w;
}

/* tlog_tile_reader over the stored tiles of the head being extended. */
static int read_tile(void *arg, const struct tlog_tile *t, unsigned char **data,
                     size_t *len, struct reason *why) {
  struct actx *a = arg;
  for (size_t i = 0; i < a->ntiles; i++)
    if (same_tile(&a->tiles[i].t, t)) {
      *data = malloc(a->tiles[i].len);
      if (!*data)
        return ERR_NOMEM;
      memcpy(*data, a->tiles[i].data, a->tiles[i].len);
      *len = a->tiles[i].len;
      return 0;
    }
  char key[KEY_MAX];
  if (tile_key(a->db, t, key, sizeof key))
    return ERR_INVALID;
  struct buf b;
  buf_init(&b, TILE_BYTES);
  int rc = storage_get_buf(a->db->store, key, &b);
  if (rc) {
    buf_free(&b);
    return reason_set(why, ERR_STORAGE, "reading %s failed: %s", key,
                      rc == ERR_NOT_FOUND ? "missing" : err_str(rc));
  }
  size_t n = b.len;
  unsigned char *d = (unsigned char *)buf_steal(&b, &n);
  if (!d)
    return reason_set(why, ERR_STORAGE, "%s is empty", key);
  if (a->ntiles < TILE_CACHE) {
    unsigned char *copy = malloc(n);
    if (copy) {
      memcpy(copy, d, n);
      a->tiles[a->ntiles].t = *t;
      a->tiles[a->ntiles].data = copy;
      a->tiles[a->ntiles].len = n;
      a->ntiles++;
    }
  }
  *data = d;
  *len = n;
  return 0;
}

/* tlog_hash_reader: new hashes from a->add, older ones through the tiles of
 * the head being extended, each proven against its signed hash. */
static int read_hashes(void *arg, const int64_t *idx, size_t n, tlog_hash *out,
                       struct reason *why) {
  struct actx *a = arg;
  int64_t *old = malloc((n ? n : 1) * sizeof *old);
  size_t *pos = malloc((n ? n : 1) * sizeof *pos);
  tlog_hash *got = malloc((n ? n : 1) * sizeof *got);
  int rc = old && pos && got ? 0 : ERR_NOMEM;
  size_t k = 0;
  for (size_t i = 0; i < n && !rc; i++) {
    if (idx[i] >= a->base) {
      int64_t j = idx[i] - a->base;
      if ((size_t)j >= a->nadd)
        rc = ERR_INVALID;
      else
        memcpy(out[i], a->add[j], TLOG_HASH_SIZE);
    } else {
      old[k] = idx[i];
      pos[k++] = i;
    }
  }
  if (!rc && k)
    rc = tlog_read_hashes(&a->old, ORGSUMDB_HEIGHT, old, k, got, read_tile, a,
                          why);
  for (size_t i = 0; i < k && !rc; i++)
    memcpy(out[pos[i]], got[i], TLOG_HASH_SIZE);
  free(old);
  free(pos);
  free(got);
  return rc;
}

/* tlog_new_tiles' callback: stores one tile of the new tree, unless the old
 * tree has the very same one (upper levels are re-listed unchanged). */
static int write_tile(void *arg, const struct tlog_tile *t) {
  struct actx *a = arg;
  struct tlog_tile had = *t;
  had.w = 1;
  had = tlog_tile_parent(had, 0, a->old.n);
  if (had.w == t->w)
    return 0;
  /* On the heap: CivetWeb's workers have small stacks. */
  int64_t *idx = malloc((size_t)t->w * sizeof *idx);
  tlog_hash *h = malloc((size_t)t->w * sizeof *h);
  int rc = idx && h ? 0 : ERR_NOMEM;
  for (int i = 0; !rc && i < t->w; i++)
    idx[i] = tlog_stored_hash_index(t->l * t->h, (t->n << t->h) + i);
  if (!rc)
    rc = read_hashes(a, idx, (size_t)t->w, h, a->why);
  char key[KEY_MAX];
  if (!rc && tile_key(a->db, t, key, sizeof key))
    rc = ERR_INVALID;
  if (!rc) {
    rc = storage_replace_buf(a->db->store, key, h,
                             (size_t)t->w * TLOG_HASH_SIZE);
    if (rc)
      rc = reason_set(a->why, ERR_STORAGE, "storing %s failed: %s", key,
                      err_str(rc));
  }
  free(idx);
  free(h);
  return rc;
}

/* While the lock is ours, extends it by its whole time to live, so the
 * next storage write finishes before any other replica can take it. */
static int still_held(struct orgsumdb *db, const char *token,
                      struct reason *why) {
  if (!db->shared)
    return 0;
  int rc =
      db->meta->ops->lock_renew(db->meta, db->lock_key, token, db->lock_ttl_ms);
  if (rc)
    return reason_set(why, ERR_UNAVAILABLE,
                      "organisation checksum database %s: the log's lock was "
                      "lost mid-append (%s); nothing was logged",
                      db->signer.name, err_str(rc));
  return 0;
}

/* Refuses to extend a head older than one signed before: storage rolled
 * back, and a new record at an old size would fork the log clients saw. */
static int check_not_rolled_back(struct orgsumdb *db,
                                 const struct tlog_tree *old,
                                 struct reason *why) {
  pthread_mutex_lock(&db->mu);
  int64_t seen = db->max_n;
  pthread_mutex_unlock(&db->mu);
  struct buf b;
  buf_init(&b, HEAD_MAX);
  struct tlog_tree t;
  if (db->meta &&
      db->meta->ops->cache_get(db->meta, db->meta_key, &b, NULL) == 0 &&
      open_head(db, b.data, b.len, &t, NULL) == 0 && t.n > seen)
    seen = t.n;
  buf_free(&b);
  if (old->n < seen)
    return security(db, why, ERR_UNAVAILABLE,
                    "the stored head has %" PRId64
                    " records but one of %" PRId64
                    " was signed before (storage rolled back?); appends "
                    "refused until it is restored",
                    old->n, seen);
  return 0;
}

static int append_locked(struct orgsumdb *db, const char *token,
                         const char *module, const char *version,
                         const char *text, int64_t *id_out,
                         struct reason *why) {
  struct actx *a = calloc(1, sizeof *a);
  struct buf note, b;
  buf_init(&note, HEAD_MAX);
  buf_init(&b, RECORD_MAX);
  if (!a)
    return ERR_NOMEM;
  a->db = db;
  a->why = why;
  char key[KEY_MAX], ikey[KEY_MAX];
  /* The head is read again here, under the lock: never a cached one. */
  int rc = read_head(db, &note, &a->old, why);
  if (!rc)
    rc = check_not_rolled_back(db, &a->old, why);
  if (!rc && index_key(db, module, version, ikey, sizeof ikey))
    rc = reason_set(why, ERR_INVALID, "cannot log %s@%s", module, version);
  if (rc)
    goto out;

  /* Already logged? Only an index entry below the head counts, and only if
   * the record there is this version's (a crashed append's entry may point
   * at an id that was given to another version since). */
  int64_t id;
  int ir = storage_get_buf(db->store, ikey, &b);
  if (ir == 0 && parse_id(&b, &id) == 0 && id < a->old.n) {
    record_key(db, id, key, sizeof key);
    buf_reset(&b);
    rc = storage_get_buf(db->store, key, &b);
    if (rc) {
      rc = reason_set(why, ERR_STORAGE, "reading %s failed: %s", key,
                      err_str(rc));
      goto out;
    }
    if (record_parse(b.data, b.len, module, version, NULL, NULL)) {
      if (b.len == strlen(text) && memcmp(b.data, text, b.len) == 0) {
        if (id_out)
          *id_out = id;
        goto out; /* logged before with the same hashes */
      }
      rc = security(db, why, ERR_BAD_UPSTREAM_DATA,
                    "%s@%s is logged (record %" PRId64
                    ") with other hashes than it has now; refused",
                    module, version, id);
      goto out;
    }
  } else if (ir && ir != ERR_NOT_FOUND) {
    rc = reason_set(why, ERR_STORAGE, "reading %s failed: %s", ikey,
                    err_str(ir));
    goto out;
  }

  /* The hashes the record adds and the new tree, from the old head's tiles
   * (each proven against its signed hash: a tampered tile stops here). */
  int64_t n = a->old.n;
  tlog_hash rh;
  tlog_record_hash(text, strlen(text), rh);
  a->base = tlog_stored_hash_index(0, n);
  struct tlog_tree next = {n + 1, {0}};
  rc = tlog_stored_hashes(n, rh, read_hashes, a, a->add, &a->nadd, why);
  if (!rc)
    rc = tlog_tree_hash(n + 1, read_hashes, a, next.hash, why);
  if (rc == ERR_BAD_UPSTREAM_DATA) {
    rc = security(db, why, rc,
                  "its stored tiles do not match its signed head (%s); "
                  "nothing appended",
                  why ? why->text : "inconsistent tile");
    goto out;
  }
  if (rc)
    goto out;

  /* Record, tiles and index first; the signed head last. */
  rc = still_held(db, token, why);
  if (rc)
    goto out;
  record_key(db, n, key, sizeof key);
  rc = storage_replace_buf(db->store, key, text, strlen(text));
  if (rc) {
    rc =
        reason_set(why, ERR_STORAGE, "storing %s failed: %s", key, err_str(rc));
    goto out;
  }
  rc = still_held(db, token, why);
  if (!rc)
    rc = tlog_new_tiles(ORGSUMDB_HEIGHT, n, n + 1, write_tile, a);
  if (!rc)
    rc = still_held(db, token, why);
  if (rc)
    goto out;
  char idtext[32];
  snprintf(idtext, sizeof idtext, "%" PRId64 "\n", n);
  rc = storage_replace_buf(db->store, ikey, idtext, strlen(idtext));
  if (rc) {
    rc = reason_set(why, ERR_STORAGE, "storing %s failed: %s", ikey,
                    err_str(rc));
    goto out;
  }
  if (db->pause_ms > 0) {
    log_warn("%s: pausing %ld ms before writing head %" PRId64 " (test hook)",
             ORGSUMDB_TEST_PAUSE_ENV, db->pause_ms, n + 1);
    struct timespec ts = {db->pause_ms / 1000,
                          (db->pause_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR)
      ;
  }
  buf_reset(&note);
  rc = sign_tree(db, &next, &note, why);
  if (!rc)
    rc = still_held(db, token, why);
  if (rc)
    goto out;
  snprintf(key, sizeof key, "%slatest", db->prefix);
  rc = storage_replace_buf(db->store, key, note.data, note.len);
  if (rc) {
    rc =
        reason_set(why, ERR_STORAGE, "storing %s failed: %s", key, err_str(rc));
    goto out;
  }
  head_remember(db, note.data, note.len, &next);
  if (db->meta)
    db->meta->ops->cache_put(db->meta, db->meta_key, note.data, note.len);
  if (id_out)
    *id_out = n;
  log_info("organisation checksum database %s: logged %s@%s as record %" PRId64,
           db->signer.name, module, version, n);
out:
  actx_free(a);
  free(a);
  buf_free(&note);
  buf_free(&b);
  return rc;
}

/* Takes the log's lock across replicas, waiting for another holder. Fails
 * closed: a metadata store that cannot answer means no append at all. */
static int lock_take(struct orgsumdb *db, char token[META_TOKEN_LEN],
                     struct reason *why) {
  if (!db->shared)
    return 0;
  double give_up = clock_now_s() + 2.0 * (double)db->lock_ttl_ms / 1000 + 10;
  for (;;) {
    int rc = db->meta->ops->lock_take(db->meta, db->lock_key, db->lock_ttl_ms,
                                      token);
    if (rc == 0)
      return 0;
    if (rc != ERR_EXISTS)
      return reason_set(why, ERR_UNAVAILABLE,
                        "organisation checksum database %s: the metadata "
                        "store cannot grant the log's lock (%s); nothing is "
                        "logged or committed",
                        db->signer.name, err_str(rc));
    if (clock_now_s() > give_up)
      return reason_set(why, ERR_UNAVAILABLE,
                        "organisation checksum database %s: another replica "
                        "holds the log's lock; try again",
                        db->signer.name);
    usleep(10000 + arc4random_uniform(20000));
  }
}

int orgsumdb_append(struct orgsumdb *db, const char *module,
                    const char *version, const char *zip_h1, const char *mod_h1,
                    int64_t *id, struct reason *why) {
  char text[RECORD_MAX];
  if (orgsumdb_record_text(module, version, zip_h1, mod_h1, text, sizeof text))
    return reason_set(why, ERR_INVALID, "cannot log %s@%s", module, version);
  pthread_mutex_lock(&db->append_mu);
  char token[META_TOKEN_LEN] = "";
  int rc = lock_take(db, token, why);
  if (!rc) {
    rc = append_locked(db, token, module, version, text, id, why);
    if (db->shared)
      db->meta->ops->lock_release(db->meta, db->lock_key, token);
  }
  pthread_mutex_unlock(&db->append_mu);
  return rc;
}

/* --- serving ------------------------------------------------------------ */

int orgsumdb_lookup(struct orgsumdb *db, const char *module,
                    const char *version, struct buf *out,
                    char zip_h1[HASH1_LEN], char mod_h1[HASH1_LEN],
                    struct reason *why) {
  char key[KEY_MAX];
  if (index_key(db, module, version, key, sizeof key))
    return reason_set(why, ERR_NOT_FOUND, "%s@%s is not in %s", module, version,
                      db->signer.name);
  struct buf b, note;
  buf_init(&b, RECORD_MAX);
  buf_init(&note, HEAD_MAX);
  int64_t id = -1;
  struct tlog_tree tree;
  int rc = storage_get_buf(db->store, key, &b);
  if (!rc && parse_id(&b, &id))
    rc = ERR_NOT_FOUND;
  if (!rc)
    rc = orgsumdb_head(db, 0, &note, &tree, why);
  if (!rc && id >= tree.n) {
    /* Maybe logged by another replica within the last second. */
    buf_reset(&note);
    rc = orgsumdb_head(db, 1, &note, &tree, why);
    if (!rc && id >= tree.n)
      rc = ERR_NOT_FOUND; /* an append that never committed */
  }
  if (!rc) {
    record_key(db, id, key, sizeof key);
    buf_reset(&b);
    rc = storage_get_buf(db->store, key, &b);
    if (!rc && !record_parse(b.data, b.len, module, version, zip_h1, mod_h1))
      rc = ERR_NOT_FOUND; /* a stale index entry: the id went to another */
  }
  if (!rc && out)
    rc = buf_appendf(out, "%" PRId64 "\n%s\n%s", id, buf_cstr(&b),
                     buf_cstr(&note));
  if (rc == ERR_NOT_FOUND)
    reason_set(why, rc, "%s@%s is not in %s", module, version, db->signer.name);
  else if (rc && rc != ERR_BAD_UPSTREAM_DATA && rc != ERR_NOMEM)
    rc = reason_set(why, ERR_STORAGE,
                    "organisation checksum database %s: storage failed (%s)",
                    db->signer.name, err_str(rc));
  buf_free(&b);
  buf_free(&note);
  return rc;
}

/* The width tile position t has in a tree of n records (0: none). */
static int width_at(const struct tlog_tile *t, int64_t n) {
  struct tlog_tile p = *t;
  if (p.l < 0)
    p.l = 0;
  p.w = 1;
  p = tlog_tile_parent(p, 0, n);
  return p.w;
}

int orgsumdb_tile(struct orgsumdb *db, const struct tlog_tile *t,
                  struct buf *out, struct reason *why) {
  if (t->h != ORGSUMDB_HEIGHT)
    return reason_set(why, ERR_NOT_FOUND, "%s has tiles of height %d only",
                      db->signer.name, ORGSUMDB_HEIGHT);
  struct tlog_tree tree;
  int rc = orgsumdb_head(db, 0, NULL, &tree, why);
  int have = rc ? 0 : width_at(t, tree.n);
  if (!rc && t->w > have) {
    rc = orgsumdb_head(db, 1, NULL, &tree, why);
    have = rc ? 0 : width_at(t, tree.n);
  }
  if (rc)
    return rc;
  if (t->w > have)
    return reason_set(why, ERR_NOT_FOUND,
                      "%s: no such tile in its tree of %" PRId64 " records",
                      db->signer.name, tree.n);
  char key[KEY_MAX];
  if (t->l >= 0) {
    struct buf b;
    buf_init(&b, TILE_BYTES);
    size_t want = (size_t)t->w * TLOG_HASH_SIZE;
    rc = tile_key(db, t, key, sizeof key) ? ERR_INVALID
                                          : storage_get_buf(db->store, key, &b);
    if (rc == 0 && b.len != want)
      rc = ERR_NOT_FOUND;
    if (rc == ERR_NOT_FOUND && t->w < have) {
      /* Not stored at this width (an import, a batch): the head's own tile
       * at this position begins with it. */
      struct tlog_tile wide = *t;
      wide.w = have;
      buf_reset(&b);
      rc = tile_key(db, &wide, key, sizeof key)
               ? ERR_INVALID
               : storage_get_buf(db->store, key, &b);
      if (rc == 0 && b.len != (size_t)have * TLOG_HASH_SIZE)
        rc = ERR_STORAGE;
    }
    if (!rc)
      rc = buf_append(out, b.data, want);
    buf_free(&b);
  } else {
    struct buf b;
    buf_init(&b, RECORD_MAX);
    int64_t start = t->n << t->h;
    for (int i = 0; i < t->w && !rc; i++) {
      record_key(db, start + i, key, sizeof key);
      buf_reset(&b);
      rc = storage_get_buf(db->store, key, &b);
      if (!rc)
        rc = buf_appendf(out, "%" PRId64 "\n%s\n", start + i, buf_cstr(&b));
    }
    buf_free(&b);
  }
  if (rc && rc != ERR_NOMEM)
    rc = reason_set(why, ERR_STORAGE,
                    "organisation checksum database %s: a tile of its head "
                    "cannot be read (%s)",
                    db->signer.name, err_str(rc));
  return rc;
}

/* --- imports ------------------------------------------------------------ */

int orgsumdb_record_parse(const char *text, size_t len, const char *module,
                          const char *version, char zip_h1[HASH1_LEN],
                          char mod_h1[HASH1_LEN]) {
  return record_parse(text, len, module, version, zip_h1, mod_h1);
}

int orgsumdb_open_head(const struct orgsumdb *db, const char *note, size_t len,
                       struct tlog_tree *tree, struct reason *why) {
  return open_head(db, note, len, tree, why);
}

static int id_order(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* What a killed append left between the stored head and the imported one:
 * records no import object replaces, and tiles of no committed tree. */
struct stale {
  const struct orgsumdb *db;
  int64_t lo, hi; /* the stored head's size, the imported head's */
  const int64_t *keep;
  size_t nkeep;
  int64_t *ids;
  size_t nids, ids_cap;
  char **tiles;
  size_t ntiles, tiles_cap;
  int rc;
};

static int stale_record(void *arg, const char *key, uint64_t size) {
  (void)size;
  struct stale *st = arg;
  const char *p = key + strlen(st->db->prefix) + strlen("record/");
  char *end;
  errno = 0;
  long long id = strtoll(p, &end, 10);
  if (end == p || *end || errno || id < st->lo || id >= st->hi ||
      bsearch(&(int64_t){id}, st->keep, st->nkeep, sizeof *st->keep, id_order))
    return 0;
  int64_t *g = array_grow(st->ids, &st->ids_cap, st->nids, sizeof *g);
  if (!g)
    return st->rc = ERR_NOMEM;
  st->ids = g;
  g[st->nids++] = id;
  return 0;
}

static int stale_tile(void *arg, const char *key, uint64_t size) {
  (void)size;
  struct stale *st = arg;
  struct tlog_tile t;
  if (tlog_tile_parse(key + strlen(st->db->prefix), &t) || t.l < 0 ||
      t.h != ORGSUMDB_HEIGHT)
    return 0;
  /* Widths only grow: one past the stored head's is of no committed tree,
   * and unless it is the imported head's, nothing replaces it. */
  if (t.w <= width_at(&t, st->lo) || t.w == width_at(&t, st->hi))
    return 0;
  char **g = array_grow(st->tiles, &st->tiles_cap, st->ntiles, sizeof *g);
  char *k = strdup(key);
  if (!g || !k) {
    free(k);
    if (g)
      st->tiles = g;
    return st->rc = ERR_NOMEM;
  }
  st->tiles = g;
  g[st->ntiles++] = k;
  return 0;
}

/* Removes the leftovers (index entries before their records, so a rerun
 * still finds the record to name them). */
static int import_clean(struct orgsumdb *db, const char *token,
                        struct stale *st, struct orgsumdb_import_result *res,
                        struct reason *why) {
  char prefix[KEY_MAX], key[KEY_MAX], ikey[KEY_MAX];
  snprintf(prefix, sizeof prefix, "%srecord/", db->prefix);
  int rc = storage_list(db->store, prefix, stale_record, st);
  if (!rc) {
    snprintf(prefix, sizeof prefix, "%stile/", db->prefix);
    rc = storage_list(db->store, prefix, stale_tile, st);
  }
  if (!rc)
    rc = st->rc;
  if (rc)
    return reason_set(why, rc == ERR_NOMEM ? rc : ERR_STORAGE,
                      "listing %s failed: %s", db->prefix, err_str(rc));
  struct buf b;
  buf_init(&b, RECORD_MAX);
  for (size_t i = 0; i < st->nids && !rc; i++) {
    record_key(db, st->ids[i], key, sizeof key);
    buf_reset(&b);
    rc = storage_get_buf(db->store, key, &b);
    if (rc == ERR_NOT_FOUND) {
      rc = 0;
      continue;
    }
    if (rc) {
      rc = reason_set(why, ERR_STORAGE, "reading %s failed: %s", key,
                      err_str(rc));
      break;
    }
    /* "<module> <version> <h1>\n...": whose index entry may name it. */
    const char *t = buf_cstr(&b), *sp1 = strchr(t, ' ');
    const char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    int64_t id;
    if (sp2 && (size_t)(sp2 - t) < RECORD_MAX) {
      char mv[RECORD_MAX];
      snprintf(mv, sizeof mv, "%.*s", (int)(sp2 - t), t);
      mv[sp1 - t] = '\0';
      if (index_key(db, mv, mv + (sp1 - t) + 1, ikey, sizeof ikey) == 0) {
        buf_reset(&b);
        int ir = storage_get_buf(db->store, ikey, &b);
        if (ir == 0 && parse_id(&b, &id) == 0 && id == st->ids[i]) {
          rc = still_held(db, token, why);
          if (!rc && (ir = storage_del(db->store, ikey)) && ir != ERR_NOT_FOUND)
            rc = reason_set(why, ERR_STORAGE, "removing %s failed: %s", ikey,
                            err_str(ir));
          if (!rc)
            res->removed++;
        }
      }
    }
    if (!rc)
      rc = still_held(db, token, why);
    if (!rc) {
      int dr = storage_del(db->store, key);
      if (dr && dr != ERR_NOT_FOUND)
        rc = reason_set(why, ERR_STORAGE, "removing %s failed: %s", key,
                        err_str(dr));
      else
        res->removed++;
    }
    if (!rc)
      log_warn("organisation checksum database %s: import removed %s, left "
               "by an append that never committed",
               db->signer.name, key);
  }
  for (size_t i = 0; i < st->ntiles && !rc; i++) {
    rc = still_held(db, token, why);
    int dr = rc ? 0 : storage_del(db->store, st->tiles[i]);
    if (dr && dr != ERR_NOT_FOUND)
      rc = reason_set(why, ERR_STORAGE, "removing %s failed: %s", st->tiles[i],
                      err_str(dr));
    else if (!rc)
      res->removed++;
  }
  buf_free(&b);
  return rc;
}

/* 1 when a path element of rest is "..". */
static int has_dotdot(const char *rest) {
  for (const char *p = rest; p;) {
    if (p[0] == '.' && p[1] == '.' && (p[2] == '/' || !p[2]))
      return 1;
    p = strchr(p, '/');
    if (p)
      p++;
  }
  return 0;
}

/* Stores key unless it holds these bytes already. */
static int import_put(struct orgsumdb *db, const char *token, const char *key,
                      const struct buf *want, struct buf *scratch,
                      struct orgsumdb_import_result *res, struct reason *why) {
  buf_reset(scratch);
  int rc = storage_get_buf(db->store, key, scratch);
  if (rc == 0 && scratch->len == want->len &&
      (want->len == 0 || memcmp(scratch->data, want->data, want->len) == 0)) {
    res->unchanged++;
    return 0;
  }
  if (rc && rc != ERR_NOT_FOUND && rc != ERR_TOO_LARGE)
    return reason_set(why, ERR_STORAGE, "reading %s failed: %s", key,
                      err_str(rc));
  rc = still_held(db, token, why);
  if (rc)
    return rc;
  rc = storage_replace_buf(db->store, key, want->data ? want->data : "",
                           want->len);
  if (rc)
    return reason_set(why, ERR_STORAGE, "storing %s failed: %s", key,
                      err_str(rc));
  res->written++;
  return 0;
}

static int import_locked(struct orgsumdb *db, const char *token,
                         const struct orgsumdb_import *src,
                         const struct tlog_tree *to, int dry_run,
                         struct orgsumdb_import_result *res,
                         struct reason *why) {
  struct actx *a = calloc(1, sizeof *a);
  struct buf note, obj, scratch;
  buf_init(&note, HEAD_MAX);
  buf_init(&obj, TILE_BYTES);
  buf_init(&scratch, TILE_BYTES);
  struct stale st = {.db = db, .keep = src->ids, .nkeep = src->nids};
  if (!a)
    return ERR_NOMEM;
  a->db = db;
  a->why = why;
  /* Read again under the lock, never a cached head. */
  int rc = read_head(db, &note, &a->old, why);
  if (!rc && !dry_run)
    rc = check_not_rolled_back(db, &a->old, why);
  if (rc)
    goto out;
  res->had = a->old.n;
  struct reason bad = {{0}};
  if (a->old.n > to->n) {
    /* A newer log here: it must extend the imported one (its own tiles). */
    rc = tlog_check_tree(&a->old, ORGSUMDB_HEIGHT, to, read_tile, a, &bad);
  } else {
    rc = tlog_check_tree(to, ORGSUMDB_HEIGHT, &a->old, src->read_tile,
                         src->tile_arg, &bad);
  }
  if (rc == ERR_BAD_UPSTREAM_DATA) {
    rc = reason_set(why, ERR_EXISTS,
                    "this site's log (%" PRId64 " records) and the bundle's "
                    "(%" PRId64 ") have diverged (%s)",
                    a->old.n, to->n, bad.text);
    goto out;
  }
  if (rc) {
    reason_set(why, rc, "%s", reason_text(&bad, rc));
    goto out;
  }
  /* A stored head at least as large already covers the imported one:
   * only records and index entries it may lack are written (a bundle of
   * other versions under the same head), never tiles or the head. */
  int current = a->old.n >= to->n;
  res->state = current ? ORGSUMDB_IMPORT_CURRENT : ORGSUMDB_IMPORT_WOULD;
  if (dry_run)
    goto out;
  if (!current) {
    st.lo = a->old.n;
    st.hi = to->n;
    rc = import_clean(db, token, &st, res, why);
  }
  char key[KEY_MAX], rest[KEY_MAX];
  for (size_t i = 0; i < src->nobj && !rc; i++) {
    buf_reset(&obj);
    rest[0] = '\0';
    rc = src->obj(src->obj_arg, i, rest, sizeof rest, &obj, why);
    if (!rc && (!rest[0] || has_dotdot(rest) ||
                snprintf(key, sizeof key, "%s%s", db->prefix, rest) >=
                    (int)sizeof key))
      rc = reason_set(why, ERR_INVALID, "not a key of the log: %.80s", rest);
    if (!rc && !(current && strncmp(rest, "tile/", 5) == 0))
      rc = import_put(db, token, key, &obj, &scratch, res, why);
  }
  if (rc || current)
    goto out;
  /* The head last: only now do the records count. */
  snprintf(key, sizeof key, "%slatest", db->prefix);
  rc = still_held(db, token, why);
  if (!rc) {
    rc = storage_replace_buf(db->store, key, src->head, src->head_len);
    if (rc)
      rc = reason_set(why, ERR_STORAGE, "storing %s failed: %s", key,
                      err_str(rc));
  }
  if (rc)
    goto out;
  res->written++;
  res->state = ORGSUMDB_IMPORT_WRITTEN;
  head_remember(db, src->head, src->head_len, to);
  if (db->meta)
    db->meta->ops->cache_put(db->meta, db->meta_key, src->head, src->head_len);
  log_info("organisation checksum database %s: imported head %" PRId64
           " over %" PRId64 " (%zu objects written, %zu unchanged, %zu "
           "leftovers removed)",
           db->signer.name, to->n, a->old.n, res->written, res->unchanged,
           res->removed);
out:
  for (size_t i = 0; i < st.ntiles; i++)
    free(st.tiles[i]);
  free(st.tiles);
  free(st.ids);
  actx_free(a);
  free(a);
  buf_free(&note);
  buf_free(&obj);
  buf_free(&scratch);
  return rc;
}

int orgsumdb_import(struct orgsumdb *db, const struct orgsumdb_import *src,
                    int dry_run, struct orgsumdb_import_result *res,
                    struct reason *why) {
  memset(res, 0, sizeof *res);
  struct tlog_tree to;
  int rc = open_head(db, src->head, src->head_len, &to, why);
  if (rc)
    return rc;
  if (dry_run)
    return import_locked(db, NULL, src, &to, 1, res, why);
  pthread_mutex_lock(&db->append_mu);
  char token[META_TOKEN_LEN] = "";
  rc = lock_take(db, token, why);
  if (!rc) {
    rc = import_locked(db, token, src, &to, 0, res, why);
    if (db->shared)
      db->meta->ops->lock_release(db->meta, db->lock_key, token);
  }
  pthread_mutex_unlock(&db->append_mu);
  return rc;
}

void orgsumdb_metrics(const struct orgsumdb *db, struct buf *out) {
  if (!db)
    return;
  buf_appendf(out,
              "# HELP gomirror_orgsumdb_refused_total Refusals by the "
              "organisation checksum database: a stored artifact, head or "
              "tile that disagrees with the log, an append refused.\n"
              "# TYPE gomirror_orgsumdb_refused_total counter\n"
              "gomirror_orgsumdb_refused_total %lld\n",
              (long long)atomic_load_explicit((atomic_llong *)&db->refused,
                                              memory_order_relaxed));
}

/* --- the server's side -------------------------------------------------- */

int orgsumdb_covers(const struct server *srv, const char *module) {
  if (!srv->orgsumdb)
    return 0;
  const char *p = srv->cfg->private_patterns;
  if (p && *p && private_match(p, module) == 1)
    return 1;
  return srv->cfg->org_sumdb_public;
}

int orgsumdb_on_commit(struct server *srv, const struct modreq *m,
                       const void *mod, size_t modlen, const char *zip_path,
                       struct reason *why) {
  if (!zip_path || !orgsumdb_covers(srv, m->module))
    return 0;
  char zh[HASH1_LEN], mh[HASH1_LEN];
  int rc = mod ? hash1_mod(mod, modlen, mh) : stored_hash_mod(srv, m, mh, why);
  if (!rc)
    rc = hash1_zip(zip_path, zh, why);
  if (!rc)
    rc = orgsumdb_append(srv->orgsumdb, m->module, m->version, zh, mh, NULL,
                         why);
  return rc;
}

int orgsumdb_append_committed(struct server *srv, const struct modreq *m,
                              struct reason *why) {
  char zh[HASH1_LEN], mh[HASH1_LEN], key[PIPE_KEY_MAX];
  pipe_key(m, "zip", key, sizeof key);
  int rc = stored_hash_mod(srv, m, mh, why);
  if (!rc)
    rc = stored_hash_zip(srv, key, zh, why);
  if (rc == ERR_BAD_UPSTREAM_DATA)
    return security(srv->orgsumdb, why, rc,
                    "the committed zip of %s@%s cannot be hashed (%s); not "
                    "logged",
                    m->module, m->version, why ? why->text : "bad zip");
  if (!rc)
    rc = orgsumdb_append(srv->orgsumdb, m->module, m->version, zh, mh, NULL,
                         why);
  return rc;
}

int orgsumdb_check_served(struct server *srv, const struct modreq *m,
                          const char *ext, struct reason *why) {
  struct orgsumdb *db = srv->orgsumdb;
  if (!db || !orgsumdb_covers(srv, m->module))
    return 0;
  char name[MODPATH_MAX + VERSION_MAX + 16];
  snprintf(name, sizeof name, "%s %s@%s", ext, m->module, m->version);
  time_t now = time(NULL), at = 0;
  int known = seen_get(db->checked, name, &at);
  if (known == SEEN_GOOD ||
      (known == SEEN_ABSENT && now - at < ABSENT_RECHECK_S))
    return 0;
  char want_zip[HASH1_LEN], want_mod[HASH1_LEN], got[HASH1_LEN];
  struct reason lwhy = {{0}};
  int rc = orgsumdb_lookup(db, m->module, m->version, NULL, want_zip, want_mod,
                           &lwhy);
  enum seen_state state = SEEN_GOOD;
  if (rc == ERR_NOT_FOUND) {
    rc = 0;
    state = SEEN_ABSENT; /* committed before the log: nothing to check */
  } else if (rc) {
    return reason_set(why, rc, "%s", reason_text(&lwhy, rc));
  } else {
    int zip = strcmp(ext, "zip") == 0;
    char key[PIPE_KEY_MAX];
    pipe_key(m, ext, key, sizeof key);
    struct reason hwhy = {{0}};
    rc = zip ? stored_hash_zip(srv, key, got, &hwhy)
             : stored_hash_mod(srv, m, got, &hwhy);
    if (rc == ERR_STORAGE)
      return reason_set(why, rc, "%s", reason_text(&hwhy, rc));
    if (rc)
      return security(db, why, ERR_BAD_UPSTREAM_DATA,
                      "the stored %s of %s@%s is damaged (%s): refusing to "
                      "serve it",
                      zip ? "zip" : ".mod", m->module, m->version,
                      reason_text(&hwhy, rc));
    const char *want = zip ? want_zip : want_mod;
    if (strcmp(got, want) != 0)
      return security(db, why, ERR_BAD_UPSTREAM_DATA,
                      "the stored %s of %s@%s has %s but the log says %s: "
                      "refusing to serve it",
                      zip ? "zip" : ".mod", m->module, m->version, got, want);
  }
  seen_put(db->checked, name, state, now);
  return 0;
}
