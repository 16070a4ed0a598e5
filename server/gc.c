/* Garbage collection (gc.h): one listing of storage, the choice per module,
 * a grace period, then per version a second look and the removal. */
#include "gc.h"

#include "catalog.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "counters.h"
#include "hot.h"
#include "lastuse.h"
#include "mod/modpath.h"
#include "mod/private.h"
#include "mod/semver.h"
#include "policy.h"
#include "server.h"
#include "storage/meta.h"
#include "storage/storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A .mod or .zip without .info younger than this may be a fetch still
 * writing: it is left alone whatever unused_for says. */
#define ORPHAN_MIN_AGE 3600

static const char *const exts[CATALOG__KINDS] = {"info", "mod", "zip"};

void gc_report_free(struct gc_report *rep) {
  if (!rep)
    return;
  for (size_t i = 0; i < rep->nitems; i++) {
    free(rep->items[i].module);
    free(rep->items[i].version);
  }
  free(rep->items);
  rep->items = NULL;
  rep->nitems = 0;
}

static void note_error(struct gc_report *rep, const char *what,
                       const struct catalog_entry *e, int rc) {
  if (!rep->errors++)
    snprintf(rep->error, sizeof rep->error, "%s %s@%s: %s", what, e->module,
             e->version, err_str(rc));
  log_warn("gc: %s %s@%s: %s", what, e->module, e->version, err_str(rc));
}

static void key_of(const struct catalog_entry *e, int kind, char *out,
                   size_t cap) {
  snprintf(out, cap, "%s/@v/%s.%s", e->module_esc, e->version_esc, exts[kind]);
}

static uint64_t bytes_of(const struct catalog_entry *e) {
  uint64_t b = 0;
  for (int k = 0; k < CATALOG__KINDS; k++)
    b += e->size[k];
  return b;
}

/* The newest committed version of the module whose entries are v[0..n). */
static void newest_of(const struct catalog_entry *v, size_t n, char *out,
                      size_t cap) {
  struct buf list;
  buf_init(&list, 1u << 24);
  for (size_t i = 0; i < n; i++)
    if (v[i].has & (1u << CATALOG_INFO))
      buf_appendf(&list, "%s\n", v[i].version);
  if (versions_latest(list.data, list.len, out, cap))
    out[0] = '\0';
  buf_free(&list);
}

static int add_item(struct gc_report *rep, const struct catalog_entry *e,
                    time_t last) {
  struct gc_item *v = realloc(rep->items, (rep->nitems + 1) * sizeof *v);
  if (!v)
    return ERR_NOMEM;
  rep->items = v;
  struct gc_item *it = &v[rep->nitems];
  memset(it, 0, sizeof *it);
  it->module = strdup(e->module);
  it->version = strdup(e->version);
  it->bytes = bytes_of(e);
  it->last = last;
  if (!it->module || !it->version) {
    free(it->module);
    free(it->version);
    return ERR_NOMEM;
  }
  rep->nitems++;
  return 0;
}

/* The fetch locks of a version (dlock.c's names): while gc holds them, no
 * replica is between the writes of a fetch of it. 0 when both are taken. */
static int lock_version(struct server *srv, const struct catalog_entry *e,
                        char keys[2][MODPATH_MAX + VERSION_MAX + 16],
                        char tokens[2][META_TOKEN_LEN], int *held) {
  struct meta *meta = srv->meta;
  long ttl_ms = srv->cfg->lock_ttl * 1000;
  *held = 0;
  for (int i = 0; i < 2; i++) {
    snprintf(keys[i], sizeof keys[i], "fetch:%s@%s%s", e->module, e->version,
             i ? "+zip" : "");
    int rc = meta->ops->lock_take(meta, keys[i], ttl_ms, tokens[i]);
    if (rc) {
      for (int j = 0; j < *held; j++)
        meta->ops->lock_release(meta, keys[j], tokens[j]);
      *held = 0;
      return rc;
    }
    (*held)++;
  }
  return 0;
}

/* Uncommits e (.info first, then the index entries, the hot caches of
 * every replica and the cached lists), then deletes its .mod and .zip and
 * its access record. 0, or the first failure (the version may then be
 * uncommitted with pieces left: a later run or fetch finishes it). */
static int remove_version(struct server *srv, const struct catalog_entry *e) {
  struct meta *meta = srv->meta;
  char key[MODPATH_ESC_MAX + VERSION_ESC_MAX + 16];
  int first = 0;
  if (e->has & (1u << CATALOG_INFO)) {
    key_of(e, CATALOG_INFO, key, sizeof key);
    int rc = storage_del(srv->store, key);
    if (rc && rc != ERR_NOT_FOUND)
      return rc; /* still committed: nothing else is touched */
  }
  meta->ops->version_forget(meta, e->module, e->version);
  char prefix[MODPATH_ESC_MAX + VERSION_ESC_MAX + 8];
  snprintf(prefix, sizeof prefix, "%s/@v/%s.", e->module_esc, e->version_esc);
  hot_drop_prefix(srv->hot, prefix);
  meta->ops->purge_publish(meta, prefix);
  static const char *const kinds[] = {"list", "latest"};
  for (size_t i = 0; i < 2; i++) {
    char ck[MODPATH_MAX + 16];
    snprintf(ck, sizeof ck, "%s:%s", kinds[i], e->module);
    meta->ops->forget(meta, ck);
  }
  for (int k = CATALOG_MOD; k <= CATALOG_ZIP; k++) {
    if (!(e->has & (1u << k)))
      continue;
    key_of(e, k, key, sizeof key);
    int rc = storage_del(srv->store, key);
    if (rc && rc != ERR_NOT_FOUND && !first)
      first = rc;
  }
  lastuse_forget(srv, e->module_esc, e->version_esc);
  return first;
}

/* An unfinished fetch's pieces (no .info), removed when even the newest of
 * them is older than cutoff and than ORPHAN_MIN_AGE. 1 when removable. */
static int orphan_old(struct server *srv, const struct catalog_entry *e,
                      time_t cutoff, time_t now) {
  time_t limit = now - ORPHAN_MIN_AGE < cutoff ? now - ORPHAN_MIN_AGE : cutoff;
  for (int k = CATALOG_MOD; k <= CATALOG_ZIP; k++) {
    if (!(e->has & (1u << k)))
      continue;
    char key[MODPATH_ESC_MAX + VERSION_ESC_MAX + 16];
    key_of(e, k, key, sizeof key);
    struct blob_stat st;
    if (storage_stat(srv->store, key, &st) || st.mtime == 0 ||
        st.mtime >= limit)
      return 0;
  }
  return 1;
}

static void wait_s(long s) {
  struct timespec ts = {s, 0};
  while (s > 0 && nanosleep(&ts, &ts) != 0)
    ;
}

int gc_run(struct server *srv, const struct gc_options *o,
           struct gc_report *rep, struct reason *why) {
  memset(rep, 0, sizeof *rep);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  rep->now = time(NULL);
  rep->cutoff = rep->now - o->unused_for;
  rep->dry_run = o->dry_run;
  struct catalog cat;
  int rc = catalog_load(srv->store, &cat, why);
  if (rc)
    return rc;
  /* Candidates, as indexes into cat, with their last use. */
  size_t *cand = calloc(cat.n ? cat.n : 1, sizeof *cand);
  size_t ncand = 0;
  if (!cand) {
    catalog_free(&cat);
    return reason_set(why, ERR_NOMEM, "out of memory");
  }
  size_t orphans = 0;
  for (size_t i = 0; i < cat.n;) {
    size_t j = i;
    while (j < cat.n && strcmp(cat.v[j].module, cat.v[i].module) == 0)
      j++;
    char newest[VERSION_MAX + 1];
    newest_of(&cat.v[i], j - i, newest, sizeof newest);
    int any = 0;
    for (size_t k = i; k < j; k++) {
      const struct catalog_entry *e = &cat.v[k];
      if (!(e->has & (1u << CATALOG_INFO))) {
        if (orphan_old(srv, e, rep->cutoff, rep->now)) {
          if (!o->dry_run && remove_version(srv, e) == 0)
            orphans++;
          else if (o->dry_run)
            orphans++;
        }
        continue;
      }
      any = 1;
      rep->versions++;
      long line;
      if (!o->newest && strcmp(e->version, newest) == 0) {
        rep->kept_newest++;
      } else if ((o->keep && o->keep[0] &&
                  private_match(o->keep, e->module) == 1) ||
                 policy_keeps(srv, e->module, e->version, &line)) {
        rep->kept_keep++;
      } else {
        time_t last;
        int lr = lastuse_get(srv, e->module, e->version, e->module_esc,
                             e->version_esc, &last);
        if (lr == ERR_NOT_FOUND)
          continue; /* gone meanwhile */
        if (lr) {
          rep->kept_unknown++;
        } else if (last >= rep->cutoff) {
          rep->kept_recent++;
        } else if (add_item(rep, e, last) == 0) {
          cand[ncand++] = k;
        } else {
          rc = reason_set(why, ERR_NOMEM, "out of memory");
          break;
        }
      }
    }
    rep->modules += any;
    if (rc)
      break;
    i = j;
  }
  if (orphans)
    log_info("gc: %s %zu unfinished fetches (a .mod or .zip without .info)",
             o->dry_run ? "would remove" : "removed", orphans);
  if (!rc && o->chosen)
    o->chosen(o->arg, ncand, o->dry_run ? 0 : o->grace);
  if (!rc && o->dry_run) {
    rep->removed = ncand;
    for (size_t c = 0; c < ncand; c++) {
      rep->items[c].removed = 1;
      rep->bytes += rep->items[c].bytes;
    }
  } else if (!rc && ncand) {
    /* Accesses that happened before the choice but were not recorded yet
     * (the counters flush every 500 ms) get this long to show. */
    wait_s(o->grace);
    if (srv->counters)
      counters_sync(srv->counters, 1000);
    lastuse_flush(srv->lastuse);
    for (size_t c = 0; c < ncand; c++) {
      const struct catalog_entry *e = &cat.v[cand[c]];
      struct gc_item *it = &rep->items[c];
      char keys[2][MODPATH_MAX + VERSION_MAX + 16];
      char tokens[2][META_TOKEN_LEN];
      int held = 0;
      int lr = lock_version(srv, e, keys, tokens, &held);
      if (lr == ERR_EXISTS) {
        rep->kept_busy++;
        continue;
      }
      /* The second look, right before the removal. */
      time_t last;
      int ur = lastuse_get(srv, e->module, e->version, e->module_esc,
                           e->version_esc, &last);
      if (ur == 0 && last >= rep->cutoff) {
        rep->kept_during++;
        log_info("gc: keeping %s@%s: downloaded during the run", e->module,
                 e->version);
      } else if (ur && ur != ERR_NOT_FOUND) {
        rep->kept_unknown++;
      } else {
        int dr = remove_version(srv, e);
        if (dr) {
          note_error(rep, "removing", e, dr);
        } else {
          it->removed = 1;
          rep->removed++;
          rep->bytes += it->bytes;
          log_info("gc: removed %s@%s (%llu bytes, last used %lds ago)",
                   e->module, e->version, (unsigned long long)it->bytes,
                   (long)(rep->now - it->last));
        }
      }
      for (int h = 0; h < held; h++)
        srv->meta->ops->lock_release(srv->meta, keys[h], tokens[h]);
    }
    /* A replica that found the .info just before it went may have written
     * its index entry back after the first forget: forget once more. */
    for (size_t c = 0; c < ncand; c++)
      if (rep->items[c].removed)
        srv->meta->ops->version_forget(srv->meta, cat.v[cand[c]].module,
                                       cat.v[cand[c]].version);
  }
  free(cand);
  catalog_free(&cat);
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  rep->seconds =
      (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  if (rc)
    gc_report_free(rep);
  return rc;
}
