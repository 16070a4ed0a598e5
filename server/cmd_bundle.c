/* `gomirror export` and `gomirror import`: the command-line adapters of
 * bundle.c, over serve's configuration (storage, metadata, checksum
 * databases, private patterns, spool directory). */
#include "bundle.h"
#include "cmd.h"

#include "core/config.h"
#include "core/err.h"
#include "mod/private.h"
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char export_usage[] =
    "usage: gomirror export --out FILE [--since TIME] [--modules PATTERNS] "
    "[configuration flags]\n"
    "\n"
    "Writes a bundle (tar + zstd) of the committed versions in storage, the\n"
    "checksum-database lookups and tiles that let the go command verify\n"
    "them offline, and a manifest of SHA-256 sums, for `gomirror import` at\n"
    "an air-gapped site.\n"
    "\n"
    "  --out FILE          the bundle to write (replaced atomically)\n"
    "  --since TIME        only versions committed here since TIME: RFC 3339\n"
    "                      (2024-05-01T00:00:00Z) or a duration (12h, 7d, 2w)\n"
    "  --modules PATTERNS  only modules matching these comma-separated globs\n"
    "                      (GOPRIVATE syntax, e.g. github.com/org/*)\n"
    "\n"
    "Public versions need their lookup from the first checksum database\n"
    "(sumdb): stored, or fetched now unless offline=true. Private modules\n"
    "(private) are exported without one. With org_sumdb_name, the versions'\n"
    "records in the organisation checksum database, its signed head and the\n"
    "hash tiles of its tree go too.\n";

static const char import_usage[] =
    "usage: gomirror import [--check] FILE [configuration flags]\n"
    "\n"
    "Loads a bundle written by `gomirror export` into the configured storage.\n"
    "Every file is checked first (SHA-256 and size against the manifest;\n"
    ".info, .mod and .zip as fetched ones are; .mod and .zip h1: hashes\n"
    "against the bundled checksum-database lookups); nothing is written\n"
    "unless all of it passes. Objects already stored with the same bytes are\n"
    "skipped: rerun an interrupted import to finish it.\n"
    "\n"
    "An organisation checksum database in the bundle is proven against this\n"
    "site's org_sumdb_key and becomes this site's log when that log is empty\n"
    "or a prefix of the bundle's; another name or key, or a log that has\n"
    "diverged, leaves it out with a warning (the versions are imported).\n"
    "\n"
    "  --check   check the bundle, write nothing\n";

int cmd_export(int argc, char **argv) {
  const char *out = NULL, *since = NULL, *modules = NULL;
  const struct cmd_opt opts[] = {{"out", 1, &out},
                                 {"since", 1, &since},
                                 {"modules", 1, &modules},
                                 {NULL, 0, NULL}};
  struct config cfg;
  char **args;
  int nargs, status;
  if (cmd_config(argc, argv, export_usage, opts, &args, &nargs, &cfg, &status))
    return status;
  struct reason why = {{0}};
  int rc = 0;
  struct bundle_export_opts o = {out, modules, 0, since};
  if (nargs > 0)
    rc = reason_set(&why, ERR_INVALID,
                    "export takes no arguments (got '%.80s'): see gomirror "
                    "export --help",
                    args[0]);
  else if (!out || !out[0])
    rc = reason_set(&why, ERR_INVALID, "export needs --out FILE");
  else if (modules && private_check(modules, &why))
    rc = reason_set(&why, ERR_INVALID, "--modules: %s",
                    reason_text(&why, ERR_INVALID));
  else if (since)
    rc = bundle_parse_since(since, time(NULL), &o.since, &why);
  free(args);
  if (rc) {
    status = cmd_fail(&cfg, &why, rc);
    config_free(&cfg);
    return status;
  }
  struct server srv;
  rc = cmd_open(&srv, &cfg, &why);
  if (rc) {
    status = cmd_fail(&cfg, &why, rc);
    config_free(&cfg);
    return status;
  }
  struct bundle_export_stats st;
  rc = bundle_export(&srv, &o, &st, &why);
  cmd_close(&srv);
  if (rc) {
    status = cmd_fail(&cfg, &why, rc);
    config_free(&cfg);
    return status;
  }
  printf("exported %zu version%s (%zu private) with %zu lookup%s and %zu "
         "tile%s: %zu files, %llu bytes before compression, to %s\n",
         st.versions, st.versions == 1 ? "" : "s", st.private_versions,
         st.lookups, st.lookups == 1 ? "" : "s", st.tiles,
         st.tiles == 1 ? "" : "s", st.files, (unsigned long long)st.bytes, out);
  if (st.org_records)
    printf("organisation checksum database %s: %zu record%s, its head of "
           "%lld records and its %zu hash tile%s\n",
           cfg.org_sumdb_name, st.org_records, st.org_records == 1 ? "" : "s",
           (long long)st.org_head, st.org_tiles, st.org_tiles == 1 ? "" : "s");
  config_free(&cfg);
  return 0;
}

int cmd_import(int argc, char **argv) {
  const char *check = NULL;
  const struct cmd_opt opts[] = {{"check", 0, &check}, {NULL, 0, NULL}};
  struct config cfg;
  char **args;
  int nargs, status;
  if (cmd_config(argc, argv, import_usage, opts, &args, &nargs, &cfg, &status))
    return status;
  struct reason why = {{0}};
  int rc = 0;
  const char *file = nargs == 1 ? args[0] : NULL;
  if (nargs != 1)
    rc = reason_set(&why, ERR_INVALID,
                    "import takes one bundle file (got %d arguments): see "
                    "gomirror import --help",
                    nargs);
  struct server srv;
  if (!rc)
    rc = cmd_open(&srv, &cfg, &why);
  if (rc) {
    free(args);
    status = cmd_fail(&cfg, &why, rc);
    config_free(&cfg);
    return status;
  }
  struct bundle_import_stats st;
  rc = bundle_import(&srv, file, check != NULL, &st, &why);
  cmd_close(&srv);
  if (rc) {
    free(args);
    status = cmd_fail(&cfg, &why, rc);
    config_free(&cfg);
    return status;
  }
  if (check)
    printf("checked %s: %zu versions, %zu files: all verified, nothing "
           "written\n",
           file, st.versions, st.files);
  else
    printf("imported %s: %zu versions (%zu newly committed), %zu files: %zu "
           "written, %zu unchanged, %zu kept as stored\n",
           file, st.versions, st.versions_new, st.files, st.written,
           st.unchanged, st.kept);
  static const char *const org[] = {
      [BUNDLE_ORG_WRITTEN] = "imported",
      [BUNDLE_ORG_CURRENT] = "already here",
      [BUNDLE_ORG_CHECKED] = "verified, would be imported",
      [BUNDLE_ORG_SKIPPED] = "not imported (another name or key here)",
      [BUNDLE_ORG_REFUSED] = "not imported (this site's log has diverged)",
  };
  if (st.org == BUNDLE_ORG_SKIPPED)
    printf("organisation checksum database %s: %zu record%s: %s\n", st.org_name,
           st.org_records, st.org_records == 1 ? "" : "s", org[st.org]);
  else if (st.org != BUNDLE_ORG_NONE)
    printf("organisation checksum database %s: %zu record%s, head of %lld "
           "records: %s\n",
           st.org_name, st.org_records, st.org_records == 1 ? "" : "s",
           (long long)st.org_head, org[st.org]);
  free(args);
  config_free(&cfg);
  return 0;
}
