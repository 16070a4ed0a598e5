/* `gomirror policy check`, `gomirror gc` and `gomirror catalog`: the
 * command-line side of governance, over the same configuration, storage
 * and metadata as serve (server/policy.h, gc.h, catalog.h). */
#include "catalog.h"
#include "cmd.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "gc.h"
#include "lastuse.h"
#include "mod/policy.h"
#include "mod/private.h"
#include "pipeline.h"
#include "policy.h"
#include "server.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- gomirror policy check ------------------------------------------------ */

static const char POLICY_USAGE[] =
    "usage: gomirror policy check MODULE@VERSION... [flags]\n"
    "\n"
    "Prints what the version policy (the `policy` file) decides for each "
    "version\nand the rule behind it (its line in the file): denied, "
    "allowed, or held back\nby a cooldown until a date (the publication time "
    "comes from storage or the\nupstream's .info), and whether `only` or a "
    "`keep` rule concerns it.\n"
    "Exit status: 0 when every version would be served, 1 when one would "
    "be\nrefused, 2 for a usage or configuration error.\n";

int cmd_policy(int argc, char **argv) {
  struct config cfg;
  char **args = NULL;
  int nargs = 0, status = 2;
  if (cmd_config(argc, argv, POLICY_USAGE, NULL, &args, &nargs, &cfg, &status))
    return status;
  struct reason why = {{0}};
  if (nargs < 2 || strcmp(args[0], "check") != 0) {
    fprintf(stderr, "gomirror policy: expected `check MODULE@VERSION...` "
                    "(see gomirror policy --help)\n");
    goto out;
  }
  struct server srv;
  int rc = cmd_open(&srv, &cfg, &why);
  if (rc) {
    status = cmd_fail(&cfg, &why, rc);
    goto out;
  }
  struct worker w;
  memset(&w, 0, sizeof w);
  struct pipe p;
  pipe_init(&p, &srv, &w);
  status = 0;
  struct buf text;
  buf_init(&text, 1u << 20);
  for (int i = 1; i < nargs; i++) {
    char *at = strrchr(args[i], '@');
    if (!at || at == args[i] || !at[1]) {
      fprintf(stderr, "gomirror policy check: %s is not MODULE@VERSION\n",
              args[i]);
      status = 2;
      continue;
    }
    *at = '\0';
    buf_reset(&text);
    rc = policy_explain(&p, args[i], at + 1, &text, &why);
    if (rc < 0) {
      fprintf(stderr, "gomirror policy check: %s@%s: %s\n", args[i], at + 1,
              reason_text(&why, rc));
      status = 2;
    } else {
      fwrite(text.data ? text.data : "", 1, text.len, stdout);
      if (rc == 1 && status == 0)
        status = 1;
    }
  }
  buf_free(&text);
  if (w.curl)
    curl_easy_cleanup(w.curl);
  cmd_close(&srv);
out:
  free(args);
  config_free(&cfg);
  return status;
}

/* --- gomirror gc
 * --------------------------------------------------------------- */

static const char GC_USAGE[] =
    "usage: gomirror gc --unused-for DURATION [--dry-run] [--keep PATTERNS] "
    "[--newest]\n"
    "                   [--grace DURATION] [flags]\n"
    "\n"
    "Removes the stored versions nobody downloaded for DURATION (30s, 12h, "
    "180d):\nthe last download as the hit counters record it (meta=redis) or "
    "as recorded\nin storage (meta=memory), and never earlier than the "
    "version's commit. Kept\nalways: versions matching --keep (GOPRIVATE "
    "patterns) or a `keep` rule of\nthe policy, and the newest version of "
    "each module (unless --newest).\n"
    "--dry-run prints what would go and removes nothing. Otherwise, after "
    "choosing,\ngc waits --grace (default 2s) for downloads in flight to be "
    "recorded, looks\nat each version's last download again, and keeps those "
    "used meanwhile; a\nremoved version is uncommitted (.info) before its .mod "
    "and .zip go, so\nreplicas serving meanwhile fetch it again rather than "
    "fail.\n"
    "Prints the versions and bytes removed per module and in total.\n"
    "Exit status: 0 done, 1 when some deletes failed, 2 for a usage or\n"
    "configuration error.\n";

static void on_chosen(void *arg, size_t n, long grace) {
  (void)arg;
  if (grace > 0 && n > 0)
    printf("gc: %zu versions chosen; waiting %lds for downloads in flight "
           "before removing them\n",
           n, grace);
  fflush(stdout);
}

static void print_report(const struct gc_report *rep, long unused_for) {
  char since[40], hold[32], t[40];
  policy_time_format(rep->cutoff, since, sizeof since);
  policy_duration_format(unused_for, hold, sizeof hold);
  printf("gc%s: versions not downloaded since %s (%s); %zu versions of %zu "
         "modules looked at\n",
         rep->dry_run ? " (dry run)" : "", since, hold, rep->versions,
         rep->modules);
  for (size_t i = 0; i < rep->nitems; i++) {
    const struct gc_item *it = &rep->items[i];
    policy_time_format(it->last, t, sizeof t);
    if (it->removed)
      printf("%s %s@%s %llu bytes, last used %s\n",
             rep->dry_run ? "would remove" : "removed", it->module, it->version,
             (unsigned long long)it->bytes, t);
    else
      printf("kept %s@%s: downloaded during the run (or being fetched)\n",
             it->module, it->version);
  }
  printf("per module:\n");
  size_t mods = 0;
  for (size_t i = 0; i < rep->nitems;) {
    size_t j = i, n = 0;
    unsigned long long bytes = 0;
    for (;
         j < rep->nitems && !strcmp(rep->items[j].module, rep->items[i].module);
         j++)
      if (rep->items[j].removed) {
        n++;
        bytes += rep->items[j].bytes;
      }
    if (n) {
      printf("  %s: %zu versions, %llu bytes\n", rep->items[i].module, n,
             bytes);
      mods++;
    }
    i = j;
  }
  if (!mods)
    printf("  (none)\n");
  printf("total: %zu versions, %llu bytes %s; kept %zu used recently, %zu "
         "newest, %zu by keep rules, %zu used during the run, %zu being "
         "fetched, %zu unknown\n",
         rep->removed, (unsigned long long)rep->bytes,
         rep->dry_run ? "would be freed" : "freed", rep->kept_recent,
         rep->kept_newest, rep->kept_keep, rep->kept_during, rep->kept_busy,
         rep->kept_unknown);
  if (rep->errors)
    printf("errors: %zu (first: %s)\n", rep->errors, rep->error);
}

int cmd_gc(int argc, char **argv) {
  const char *unused = NULL, *dry = NULL, *keep = NULL, *newest = NULL,
             *grace = NULL;
  const struct cmd_opt opts[] = {
      {"unused-for", 1, &unused}, {"dry-run", 0, &dry}, {"keep", 1, &keep},
      {"newest", 0, &newest},     {"grace", 1, &grace}, {NULL, 0, NULL}};
  struct config cfg;
  char **args = NULL;
  int nargs = 0, status = 2;
  if (cmd_config(argc, argv, GC_USAGE, opts, &args, &nargs, &cfg, &status))
    return status;
  struct gc_options o = {.grace = GC_GRACE_DEFAULT, .chosen = on_chosen};
  struct reason why = {{0}};
  if (nargs) {
    fprintf(stderr,
            "gomirror gc: unexpected argument %s (see gomirror gc "
            "--help)\n",
            args[0]);
    goto out;
  }
  if (!unused || policy_duration_parse(unused, strlen(unused), &o.unused_for)) {
    fprintf(stderr, "gomirror gc: --unused-for needs a duration: a number "
                    "and s, m, h, d or w (e.g. 180d)\n");
    goto out;
  }
  if (grace && policy_duration_parse(grace, strlen(grace), &o.grace)) {
    fprintf(stderr, "gomirror gc: --grace needs a duration (e.g. 2s)\n");
    goto out;
  }
  if (keep && keep[0] && private_check(keep, &why)) {
    fprintf(stderr, "gomirror gc: --keep: %s\n", reason_text(&why, ERR_CONFIG));
    goto out;
  }
  o.dry_run = dry != NULL;
  o.newest = newest != NULL;
  o.keep = keep;
  struct server srv;
  int rc = cmd_open(&srv, &cfg, &why);
  if (rc) {
    status = cmd_fail(&cfg, &why, rc);
    goto out;
  }
  struct gc_report rep;
  rc = gc_run(&srv, &o, &rep, &why);
  if (rc) {
    status = cmd_fail(&cfg, &why, rc);
  } else {
    print_report(&rep, o.unused_for);
    status = rep.errors ? 1 : 0;
    gc_report_free(&rep);
  }
  cmd_close(&srv);
out:
  free(args);
  config_free(&cfg);
  return status;
}

/* --- gomirror catalog -------------------------------------------------------
 */

static const char CATALOG_USAGE[] =
    "usage: gomirror catalog [--modules PATTERNS] [--json] [flags]\n"
    "\n"
    "Lists every committed module version in storage with its size (.info, "
    ".mod\nand .zip together) and its last download (as gomirror gc sees "
    "it), one per\nline, by module and version; --modules keeps the modules "
    "matching GOPRIVATE\npatterns; --json prints a JSON array instead.\n";

int cmd_catalog(int argc, char **argv) {
  const char *mods = NULL, *json = NULL;
  const struct cmd_opt opts[] = {
      {"modules", 1, &mods}, {"json", 0, &json}, {NULL, 0, NULL}};
  struct config cfg;
  char **args = NULL;
  int nargs = 0, status = 2;
  if (cmd_config(argc, argv, CATALOG_USAGE, opts, &args, &nargs, &cfg, &status))
    return status;
  struct reason why = {{0}};
  if (nargs) {
    fprintf(stderr, "gomirror catalog: unexpected argument %s\n", args[0]);
    goto out;
  }
  if (mods && mods[0] && private_check(mods, &why)) {
    fprintf(stderr, "gomirror catalog: --modules: %s\n",
            reason_text(&why, ERR_CONFIG));
    goto out;
  }
  struct server srv;
  int rc = cmd_open(&srv, &cfg, &why);
  if (rc) {
    status = cmd_fail(&cfg, &why, rc);
    goto out;
  }
  struct catalog cat;
  rc = catalog_load(srv.store, &cat, &why);
  if (rc) {
    status = cmd_fail(&cfg, &why, rc);
    cmd_close(&srv);
    goto out;
  }
  struct json_object *arr = json ? json_object_new_array() : NULL;
  size_t n = 0;
  unsigned long long total = 0;
  for (size_t i = 0; i < cat.n; i++) {
    const struct catalog_entry *e = &cat.v[i];
    if (!(e->has & (1u << CATALOG_INFO)) ||
        (mods && mods[0] && private_match(mods, e->module) != 1))
      continue;
    unsigned long long bytes =
        e->size[CATALOG_INFO] + e->size[CATALOG_MOD] + e->size[CATALOG_ZIP];
    time_t last = 0;
    char t[40] = "unknown";
    if (lastuse_get(&srv, e->module, e->version, e->module_esc, e->version_esc,
                    &last) == 0 &&
        last > 0)
      policy_time_format(last, t, sizeof t);
    n++;
    total += bytes;
    if (arr) {
      struct json_object *o = json_object_new_object();
      json_object_object_add(o, "module", json_object_new_string(e->module));
      json_object_object_add(o, "version", json_object_new_string(e->version));
      json_object_object_add(o, "bytes", json_object_new_int64((int64_t)bytes));
      json_object_object_add(
          o, "zip", json_object_new_boolean(e->has & (1u << CATALOG_ZIP)));
      json_object_object_add(o, "last_used", json_object_new_string(t));
      json_object_array_add(arr, o);
    } else {
      printf("%s %s %llu %s\n", e->module, e->version, bytes, t);
    }
  }
  if (arr) {
    puts(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY));
    json_object_put(arr);
  } else {
    printf("# %zu versions, %llu bytes\n", n, total);
  }
  status = 0;
  catalog_free(&cat);
  cmd_close(&srv);
out:
  free(args);
  config_free(&cfg);
  return status;
}
