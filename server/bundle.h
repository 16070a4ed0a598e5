/* Bundles for air-gapped sites (docs/bundles.md): `gomirror export` writes
 * committed versions, the checksum-database answers that let the go command
 * verify them offline and a manifest into one tar + zstd file in a single
 * streaming pass; `gomirror import` checks all of a bundle, then commits it
 * into any storage. cmd_bundle.c is the command-line adapter. */
#ifndef GOMIRROR_SERVER_BUNDLE_H
#define GOMIRROR_SERVER_BUNDLE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct reason;
struct server;

/* The manifest's name inside a bundle (written last). */
#define BUNDLE_MANIFEST "gomirror-bundle.json"
#define BUNDLE_FORMAT "gomirror-bundle"
#define BUNDLE_FORMAT_VERSION 1

struct bundle_export_opts {
  const char *out;     /* the bundle file (written beside it, then renamed) */
  const char *modules; /* GOPRIVATE-style patterns; NULL or "": every module */
  time_t since;        /* 0: all; else versions committed (their .info
                          stored) at or after this time */
  const char *since_text; /* as given, for the manifest; may be NULL */
};

struct bundle_export_stats {
  size_t versions;         /* versions written */
  size_t private_versions; /* of them, private (no checksum-database lookup) */
  size_t lookups, tiles;   /* checksum-database answers */
  size_t files;            /* entries, the manifest excepted */
  uint64_t bytes;          /* their sizes, summed (before compression) */
  /* The organisation checksum database (org_sumdb_name): records of the
   * exported versions, its head's size and that head's hash tiles. */
  size_t org_records, org_tiles;
  int64_t org_head;
  size_t org_unlogged; /* versions it covers that are not in its log */
};

/* Writes srv's committed versions chosen by o into o->out: per version its
 * checksum-database lookup (stored, else fetched from the first configured
 * database unless offline), .mod, .zip (when stored) and .info; then the
 * database's /latest and the hash tiles the go command reads to verify those
 * lookups; with an organisation log (org_sumdb_name), each version's index
 * entry and record, then every hash tile of its head's tree and the head;
 * then the manifest. Memory does not depend on blob sizes. 0, or an
 * error with a one-line reason; on failure no file is left at o->out. */
int bundle_export(struct server *srv, const struct bundle_export_opts *o,
                  struct bundle_export_stats *st, struct reason *why);

/* What became of the organisation log a bundle carries. */
enum bundle_org {
  BUNDLE_ORG_NONE,    /* the bundle carries none */
  BUNDLE_ORG_WRITTEN, /* its head, records, tiles and index were stored */
  BUNDLE_ORG_CURRENT, /* this site's log had that head (or extends it) */
  BUNDLE_ORG_CHECKED, /* --check: verified, and this site's log would take it */
  BUNDLE_ORG_SKIPPED, /* this site has no log of that name and key */
  BUNDLE_ORG_REFUSED, /* this site's log has diverged from it */
};

struct bundle_import_stats {
  size_t versions;     /* versions in the bundle */
  size_t versions_new; /* of them, committed by this import */
  size_t files;        /* entries, the manifest excepted */
  size_t written;      /* objects stored */
  size_t unchanged;    /* already stored with the same bytes */
  size_t kept;         /* stored with other bytes and kept (committed) */
  enum bundle_org org; /* the organisation log's part (written/unchanged
                          count its objects too) */
  char org_name[256];
  int64_t org_head;   /* its head's tree size */
  size_t org_records; /* records it carries */
};

/* Checks every file of the bundle at path (sizes and SHA-256 against the
 * manifest, .info/.mod/.zip as the pipeline checks fetched ones, .mod and
 * .zip h1: hashes against the bundled lookups and organisation-log records)
 * and only then, unless check_only, commits it into srv's storage: the
 * organisation log's part first (orgsumdb_import: only when srv runs a log
 * of the same name and key, and it is empty or a prefix of the bundle's;
 * otherwise skipped or refused with one warning line, the rest imported),
 * then per version .mod and .zip, then .info; checksum-database answers
 * under sumdb/<name>/. Objects already
 * stored with the same bytes are not written again, so a rerun finishes an
 * interrupted import and a repeated one writes nothing. Large files are
 * spooled to srv->spool_dir, never held in memory. 0, or an error with a
 * one-line reason naming the offending file; a refused bundle writes
 * nothing. */
int bundle_import(struct server *srv, const char *path, int check_only,
                  struct bundle_import_stats *st, struct reason *why);

/* --since: an RFC 3339 time ("2024-05-01T00:00:00Z", an offset, optional
 * fraction) or a duration before now ("90s", "30m", "12h", "7d", "2w").
 * 0 and *out, or ERR_INVALID with why. */
int bundle_parse_since(const char *s, time_t now, time_t *out,
                       struct reason *why);

#endif
