/* The inventory and the paged catalog (catalog.h), both from one listing
 * of storage. */
#include "catalog.h"

#include "core/buf.h"
#include "core/err.h"
#include "mod/modpath.h"
#include "mod/semver.h"
#include "storage/storage.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

/* Splits a storage key "<module_esc>/@v/<version_esc>.<ext>" of a valid
 * module version. 0 with the parts (base_len: the length of
 * "<module_esc>/@v/<version_esc>"), or -1 for any other key. */
static int split_key(const char *key, size_t *base_len, int *kind, char *module,
                     char *version, char *mesc, char *vesc) {
  const char *at = strstr(key, "/@v/");
  if (!at || at == key)
    return -1;
  size_t ml = (size_t)(at - key);
  const char *rest = at + 4;
  const char *dot = strrchr(rest, '.');
  if (!dot || dot == rest || strchr(rest, '/'))
    return -1;
  static const char *const exts[] = {"info", "mod", "zip"};
  int k = -1;
  for (int i = 0; i < CATALOG__KINDS; i++)
    if (strcmp(dot + 1, exts[i]) == 0)
      k = i;
  size_t vl = (size_t)(dot - rest);
  if (k < 0 || ml > MODPATH_ESC_MAX || vl > VERSION_ESC_MAX)
    return -1;
  memcpy(mesc, key, ml);
  mesc[ml] = '\0';
  memcpy(vesc, rest, vl);
  vesc[vl] = '\0';
  if (modpath_unescape(mesc, module, MODPATH_MAX + 1) ||
      modpath_unescape(vesc, version, VERSION_MAX + 1) ||
      modpath_check_path(module, NULL) ||
      modpath_check_version(module, version, 1, NULL))
    return -1;
  *base_len = (size_t)(dot - key);
  *kind = k;
  return 0;
}

/* --- the whole inventory ----------------------------------------------------
 */

struct piece {
  char *base; /* "<module_esc>/@v/<version_esc>" */
  int kind;
  uint64_t size;
};

struct gather {
  struct piece *v;
  size_t n, cap;
  int rc;
};

static int gather_one(void *arg, const char *key, uint64_t size) {
  struct gather *g = arg;
  char module[MODPATH_MAX + 1], version[VERSION_MAX + 1];
  char mesc[MODPATH_ESC_MAX + 1], vesc[VERSION_ESC_MAX + 1];
  size_t bl;
  int kind;
  if (split_key(key, &bl, &kind, module, version, mesc, vesc))
    return 0;
  struct piece *v = array_grow(g->v, &g->cap, g->n, sizeof *v);
  if (!v)
    return g->rc = ERR_NOMEM;
  g->v = v;
  char *base = strndup(key, bl);
  if (!base)
    return g->rc = ERR_NOMEM;
  g->v[g->n++] = (struct piece){base, kind, size};
  return 0;
}

static int by_base(const void *a, const void *b) {
  return strcmp(((const struct piece *)a)->base,
                ((const struct piece *)b)->base);
}

static int by_module_version(const void *a, const void *b) {
  const struct catalog_entry *x = a, *y = b;
  int c = strcmp(x->module, y->module);
  return c ? c : semver_compare(x->version, y->version);
}

void catalog_free(struct catalog *c) {
  if (!c)
    return;
  for (size_t i = 0; i < c->n; i++) {
    free(c->v[i].module);
    free(c->v[i].version);
    free(c->v[i].module_esc);
    free(c->v[i].version_esc);
  }
  free(c->v);
  c->v = NULL;
  c->n = 0;
}

int catalog_load(struct storage *store, struct catalog *out,
                 struct reason *why) {
  out->v = NULL;
  out->n = 0;
  struct gather g = {0};
  int rc = storage_list(store, "", gather_one, &g);
  if (!rc && g.rc)
    rc = g.rc;
  if (rc) {
    reason_set(why, rc, "listing storage failed: %s", err_str(rc));
    goto out;
  }
  qsort(g.v, g.n, sizeof *g.v, by_base);
  size_t distinct = 0;
  for (size_t i = 0; i < g.n; i++)
    distinct += i == 0 || strcmp(g.v[i].base, g.v[i - 1].base) != 0;
  out->v = calloc(distinct ? distinct : 1, sizeof *out->v);
  if (!out->v) {
    rc = reason_set(why, ERR_NOMEM, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < g.n && !rc; i++) {
    if (i == 0 || strcmp(g.v[i].base, g.v[i - 1].base) != 0) {
      struct catalog_entry *e = &out->v[out->n++];
      const char *base = g.v[i].base;
      const char *at = strstr(base, "/@v/");
      char module[MODPATH_MAX + 1], version[VERSION_MAX + 1];
      e->module_esc = strndup(base, (size_t)(at - base));
      e->version_esc = strdup(at + 4);
      if (!e->module_esc || !e->version_esc ||
          modpath_unescape(e->module_esc, module, sizeof module) ||
          modpath_unescape(e->version_esc, version, sizeof version) ||
          !(e->module = strdup(module)) || !(e->version = strdup(version)))
        rc = reason_set(why, ERR_NOMEM, "out of memory");
    }
    struct catalog_entry *e = &out->v[out->n - 1];
    e->has |= 1u << g.v[i].kind;
    e->size[g.v[i].kind] = g.v[i].size;
  }
  if (rc)
    catalog_free(out);
  else
    qsort(out->v, out->n, sizeof *out->v, by_module_version);
out:
  for (size_t i = 0; i < g.n; i++)
    free(g.v[i].base);
  free(g.v);
  return rc;
}

/* --- one page
 * ------------------------------------------------------------------ */

/* The smallest keys after the token, in a max-heap of at most cap + 1: the
 * extra one says whether another page follows. */
struct page {
  const char *token;
  catalog_filter_fn filter;
  void *arg;
  char **heap;
  size_t n, cap;
  char last_module[MODPATH_MAX + 1]; /* the filter's last answer */
  int last_ok;
  int rc;
};

static void sift_up(char **h, size_t i) {
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (strcmp(h[p], h[i]) >= 0)
      break;
    char *t = h[p];
    h[p] = h[i];
    h[i] = t;
    i = p;
  }
}

static void sift_down(char **h, size_t n, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, big = i;
    if (l < n && strcmp(h[l], h[big]) > 0)
      big = l;
    if (r < n && strcmp(h[r], h[big]) > 0)
      big = r;
    if (big == i)
      return;
    char *t = h[big];
    h[big] = h[i];
    h[i] = t;
    i = big;
  }
}

static int page_one(void *arg, const char *key, uint64_t size) {
  (void)size;
  struct page *pg = arg;
  char module[MODPATH_MAX + 1], version[VERSION_MAX + 1];
  char mesc[MODPATH_ESC_MAX + 1], vesc[VERSION_ESC_MAX + 1];
  size_t bl;
  int kind;
  if (split_key(key, &bl, &kind, module, version, mesc, vesc) ||
      kind != CATALOG_INFO)
    return 0;
  char base[MODPATH_ESC_MAX + VERSION_ESC_MAX + 8];
  memcpy(base, key, bl);
  base[bl] = '\0';
  if (pg->token && pg->token[0] && strcmp(base, pg->token) <= 0)
    return 0;
  size_t limit = pg->cap + 1;
  if (pg->n == limit && strcmp(base, pg->heap[0]) >= 0)
    return 0; /* after every key held */
  if (pg->filter) {
    if (strcmp(module, pg->last_module) != 0) {
      memcpy(pg->last_module, module, strlen(module) + 1);
      pg->last_ok = pg->filter(pg->arg, module);
    }
    if (!pg->last_ok)
      return 0;
  }
  char *copy = strdup(base);
  if (!copy)
    return pg->rc = ERR_NOMEM;
  if (pg->n < limit) {
    pg->heap[pg->n] = copy;
    sift_up(pg->heap, pg->n++);
  } else {
    free(pg->heap[0]);
    pg->heap[0] = copy;
    sift_down(pg->heap, pg->n, 0);
  }
  return 0;
}

static int by_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int catalog_page(struct storage *store, const char *token, size_t pagesize,
                 catalog_filter_fn filter, void *arg, struct buf *out,
                 struct reason *why) {
  if (pagesize < 1)
    pagesize = 1;
  if (pagesize > CATALOG_PAGE_MAX)
    pagesize = CATALOG_PAGE_MAX;
  struct page pg = {
      .token = token, .filter = filter, .arg = arg, .cap = pagesize};
  pg.heap = calloc(pagesize + 1, sizeof *pg.heap);
  if (!pg.heap)
    return reason_set(why, ERR_NOMEM, "out of memory");
  int rc = storage_list(store, "", page_one, &pg);
  if (!rc && pg.rc)
    rc = pg.rc;
  if (rc) {
    reason_set(why, rc == ERR_NOMEM ? rc : ERR_STORAGE,
               "listing storage failed: %s", err_str(rc));
    rc = rc == ERR_NOMEM ? rc : ERR_STORAGE;
  } else {
    qsort(pg.heap, pg.n, sizeof *pg.heap, by_str);
    size_t shown = pg.n < pagesize ? pg.n : pagesize;
    struct json_object *o = json_object_new_object();
    struct json_object *mods = json_object_new_array();
    for (size_t i = 0; i < shown; i++) {
      const char *at = strstr(pg.heap[i], "/@v/");
      char mesc[MODPATH_ESC_MAX + 1], module[MODPATH_MAX + 1];
      char version[VERSION_MAX + 1];
      size_t ml = (size_t)(at - pg.heap[i]);
      memcpy(mesc, pg.heap[i], ml);
      mesc[ml] = '\0';
      modpath_unescape(mesc, module, sizeof module);
      modpath_unescape(at + 4, version, sizeof version);
      struct json_object *e = json_object_new_object();
      json_object_object_add(e, "module", json_object_new_string(module));
      json_object_object_add(e, "version", json_object_new_string(version));
      json_object_array_add(mods, e);
    }
    json_object_object_add(o, "modules", mods);
    if (pg.n > pagesize)
      json_object_object_add(o, "next",
                             json_object_new_string(pg.heap[pagesize - 1]));
    const char *text =
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    rc = buf_append(out, text, strlen(text));
    json_object_put(o);
    if (rc)
      reason_set(why, rc, "the page is too large");
  }
  for (size_t i = 0; i < pg.n; i++)
    free(pg.heap[i]);
  free(pg.heap);
  return rc;
}
