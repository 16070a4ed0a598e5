/* gomirror's configuration: one static table describes every key (type,
 * field, default, how secret it is, help text, semantic check), and the
 * loaders for defaults, file, environment and flags all go through it. */
#include "config.h"

#include "err.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

enum key_type { KEY_STRING, KEY_LONG, KEY_BOOL };

/* How much of a value may be shown in config_print and in reasons. */
enum key_secret {
  SHOW_ALL,      /* plain value */
  MASK_URL,      /* one URL: mask its ":password@" part */
  MASK_URL_LIST, /* URLs split on ',' or '|': mask each password */
  MASK_ALL       /* show only whether it is set */
};

#define KEY_NOT_IN_FILE 1u   /* "config" cannot name itself */
#define KEY_EMPTY_IS_NULL 2u /* "" means unset: --config= reads no file */

typedef int (*check_fn)(const char *value, struct reason *why);

struct key {
  const char *name;
  enum key_type type;
  size_t offset;   /* into struct config: char *, long or int */
  const char *def; /* default as text; NULL leaves a string unset */
  long min, max;   /* KEY_LONG bounds */
  enum key_secret secret;
  unsigned flags;
  check_fn check; /* config_check for string keys, may be NULL */
  const char *help;
  const char *file_for; /* a *_file key: the key its file's content sets */
};

static int check_listen(const char *v, struct reason *why);
static int check_upstream(const char *v, struct reason *why);
static int check_private_upstream(const char *v, struct reason *why);
static int check_region(const char *v, struct reason *why);
static int check_storage(const char *v, struct reason *why);
static int check_meta(const char *v, struct reason *why);
static int check_path_style(const char *v, struct reason *why);
static int check_sumdb(const char *v, struct reason *why);
static int check_org_sumdb_name(const char *v, struct reason *why);
static int check_sumdb_verify(const char *v, struct reason *why);
static int check_log_format(const char *v, struct reason *why);
static int check_log_level(const char *v, struct reason *why);
static int check_ldap_url(const char *v, struct reason *why);
static int check_policy_hook(const char *v, struct reason *why);
static int check_policy_hook_failure(const char *v, struct reason *why);

#define F(field) offsetof(struct config, field)
#define STR(name, field, def, secret, check, help)                             \
  { name, KEY_STRING, F(field), def, 0, 0, secret, 0, check, help, NULL }
#define LNG(name, field, def, min, max, help)                                  \
  { name, KEY_LONG, F(field), def, min, max, SHOW_ALL, 0, NULL, help, NULL }
#define BOOLK(name, field, def, help)                                          \
  { name, KEY_BOOL, F(field), def, 0, 0, SHOW_ALL, 0, NULL, help, NULL }
/* name_file: a file whose content (one trailing newline dropped) sets key. */
#define FILEKEY(name, field, key)                                              \
  {                                                                            \
    name, KEY_STRING, F(field), "", 0, 0, SHOW_ALL, 0, NULL,                   \
        "file holding " key " (e.g. a mounted Kubernetes Secret)", key         \
  }

/* Upper bounds keep later arithmetic (seconds to milliseconds) in range. */
#define ONE_YEAR 31536000L

/* sum.golang.org and the verifier key the go command has built in. */
#define SUMDB_DEFAULT                                                          \
  "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8" \
  "=https://sum.golang.org"

static const struct key keys[] = {
    STR("listen", listen, "0.0.0.0:3000", SHOW_ALL, check_listen,
        "address:port to serve on (IPv4 or a name: Debian's CivetWeb is "
        "built without IPv6, so [::]:3000 is refused)"),
    STR("upstream", upstream, "https://proxy.golang.org", MASK_URL_LIST,
        check_upstream,
        "GOPROXY-syntax chain of upstreams (',' and '|', direct, off)"),
    BOOLK("offline", offline, "false",
          "serve only what storage holds: no upstream, version-control or "
          "checksum-database fetch (as every request with the header "
          "Disable-Module-Fetch: true)"),
    STR("private", private_patterns, "", SHOW_ALL, NULL,
        "GOPRIVATE-syntax patterns fetched from VCS, never sent upstream"),
    STR("go_binary", go_binary, "go", SHOW_ALL, NULL,
        "the go command used to fetch private modules (and 'direct')"),
    LNG("vcs_timeout", vcs_timeout, "300", 1, 86400,
        "seconds one fetch from version control may take"),
    LNG("vcs_workers", vcs_workers, "4", 1, 256,
        "fetches from version control running at once"),
    LNG("vcs_queue_timeout", vcs_queue_timeout, "30", 1, 3600,
        "seconds a fetch from version control waits for a free worker "
        "before 503"),
    LNG("vcs_queue_max", vcs_queue_max, "64", 0, 100000,
        "fetches from version control that may wait for a worker (more: 503 "
        "at once)"),
    STR("vcs_deny_hosts", vcs_deny_hosts, "", SHOW_ALL, NULL,
        "hosts (and their subdomains) that `direct` never fetches from, "
        "comma-separated; IP literals and localhost always are"),
    STR("vcs_netrc", vcs_netrc, "", SHOW_ALL, NULL,
        ".netrc file with credentials for git over https"),
    STR("vcs_gitconfig", vcs_gitconfig, "", SHOW_ALL, NULL,
        "git config file (url.<base>.insteadOf rewrites that carry tokens)"),
    STR("vcs_ssh_key", vcs_ssh_key, "", SHOW_ALL, NULL,
        "SSH private key for git over ssh (GIT_SSH_COMMAND)"),
    STR("vcs_insecure", vcs_insecure, "", SHOW_ALL, NULL,
        "GOINSECURE patterns for version control (only when needed)"),
    STR("vcs_http_proxy", vcs_http_proxy, "", MASK_URL, NULL,
        "HTTP proxy for go-get discovery and git over http(s)"),
    STR("storage", storage, "fs://./data", SHOW_ALL, check_storage,
        "blob store: fs:///abs/path, fs://./rel or s3://bucket/prefix"),
    STR("s3_endpoint", s3_endpoint, "", SHOW_ALL, NULL,
        "S3 endpoint URL (empty: AWS, https://s3.<region>.amazonaws.com)"),
    STR("s3_region", s3_region, "us-east-1", SHOW_ALL, NULL,
        "S3 region used for signing"),
    STR("s3_path_style", s3_path_style, "auto", SHOW_ALL, check_path_style,
        "path-style addressing: true, false, or auto (true when an "
        "endpoint is set)"),
    STR("s3_access_key", s3_access_key, "", SHOW_ALL, NULL,
        "S3 access key (else AWS_ACCESS_KEY_ID)"),
    FILEKEY("s3_access_key_file", s3_access_key_file, "s3_access_key"),
    STR("s3_secret_key", s3_secret_key, "", MASK_ALL, NULL,
        "S3 secret key (else AWS_SECRET_ACCESS_KEY)"),
    FILEKEY("s3_secret_key_file", s3_secret_key_file, "s3_secret_key"),
    STR("s3_ca_file", s3_ca_file, "", SHOW_ALL, NULL,
        "CA bundle for an https S3 endpoint (empty: the system CAs)"),
    LNG("s3_part_mb", s3_part_mb, "16", 5, 5120,
        "objects larger than this many MiB are uploaded in parts this big"),
    BOOLK("zip_redirect", zip_redirect, "false",
          "answer .zip with a 302 to a pre-signed S3 URL (s3 storage only)"),
    LNG("zip_redirect_ttl", zip_redirect_ttl, "300", 10, 604800,
        "seconds a pre-signed zip URL stays valid"),
    STR("meta", meta, "memory", MASK_URL, check_meta,
        "metadata: memory, redis://[:password@]host:port[/db], or "
        "redis-sentinel://host:port,host:port/mastername"),
    STR("meta_prefix", meta_prefix, "gomirror:", SHOW_ALL, NULL,
        "prefix of every Redis key gomirror writes"),
    LNG("redis_timeout_ms", redis_timeout_ms, "500", 10, 60000,
        "milliseconds to connect to or wait for Redis"),
    STR("redis_password", redis_password, "", MASK_ALL, NULL,
        "Redis (and Sentinel) password when meta's URL holds none"),
    FILEKEY("redis_password_file", redis_password_file, "redis_password"),
    LNG("lock_ttl", lock_ttl, "15", 2, 3600,
        "seconds a fetch lock lives without renewal (a dead holder's lock "
        "expires after this)"),
    STR("admin_token", admin_token, "", MASK_ALL, NULL,
        "bearer token for /admin/... (empty: admin endpoints are off)"),
    FILEKEY("admin_token_file", admin_token_file, "admin_token"),
    STR("sumdb", sumdb, SUMDB_DEFAULT, MASK_URL_LIST, check_sumdb,
        "checksum databases to proxy and verify, comma-separated KEY=URL "
        "where KEY is the verifier key GOSUMDB names (name+hash+key) or, "
        "unverifiable, just the name"),
    STR("sumdb_verify", sumdb_verify, "strict", SHOW_ALL, check_sumdb_verify,
        "strict: commit a public version only once its go.sum lines are "
        "proven in the first sumdb's signed log (unreachable: 502/504); warn: "
        "an unreachable database only warns; off: no check"),
    STR("org_sumdb_name", org_sumdb_name, "", SHOW_ALL, check_org_sumdb_name,
        "the organisation checksum database's name (e.g. sum.corp.example): "
        "logs every private version gomirror commits and serves the log at "
        "/sumdb/<name>/; empty: off"),
    STR("org_sumdb_key", org_sumdb_key, "", SHOW_ALL, NULL,
        "file holding its note signer key, PRIVATE+KEY+<name>+<hash>+<key> "
        "(gomirror sumdb keygen NAME --out FILE; a secret: mode 0600)"),
    BOOLK("org_sumdb_public", org_sumdb_public, "false",
          "log public versions too, once proven against the first sumdb "
          "(needs sumdb_verify=strict), so GOSUMDB=<org key> verifies every "
          "module"),
    LNG("hot_cache_mb", hot_cache_mb, "64", 0, 65536,
        "MiB of memory for immutable artifacts served without storage"),
    LNG("list_ttl", list_ttl, "60", 0, ONE_YEAR,
        "seconds a version list is trusted"),
    LNG("negative_ttl", negative_ttl, "60", 0, ONE_YEAR,
        "seconds a 404 from upstream is trusted"),
    STR("log_format", log_format, "text", SHOW_ALL, check_log_format,
        "log format: text or json"),
    STR("log_level", log_level, "info", SHOW_ALL, check_log_level,
        "lowest level logged: debug, info, warn or error"),
    LNG("threads", threads, "256", 1, 4096,
        "worker threads: each serves one open connection at a time"),
    LNG("header_timeout", header_timeout, "10", 1, 600,
        "seconds a client may take to send a request's headers (a download "
        "itself may take longer)"),
    LNG("max_client_conns", max_client_conns, "32", 0, 100000,
        "connections one client address may hold open between requests or "
        "while sending headers (0: no cap; trusted_proxies are exempt)"),
    STR("upstream_redirect_hosts", upstream_redirect_hosts, "", SHOW_ALL, NULL,
        "hosts an upstream may redirect to besides its own (CDNs), "
        "comma-separated"),
    LNG("connect_timeout", connect_timeout, "10", 1, 3600,
        "seconds to connect to an upstream"),
    LNG("fetch_timeout", fetch_timeout, "300", 1, 86400,
        "seconds for one whole upstream request"),
    STR("region", region, "", SHOW_ALL, check_region,
        "this region's id (letters, digits, '.', '-', '_'): sent in the "
        "Gomirror-Via header of upstream and sumdb requests; a request "
        "that already carries it answers 508 (empty: the host name)"),
    STR("private_upstream", private_upstream, "", MASK_URL_LIST,
        check_private_upstream,
        "another gomirror (GOPROXY syntax) asked for private paths instead "
        "of version control, for a region without git credentials; never a "
        "public proxy (empty: version control)"),
    LNG("upstream_circuit_failures", upstream_circuit_failures, "3", 0, 1000,
        "consecutive connection failures or timeouts after which an "
        "upstream entry is skipped for a cool-down (0: never)"),
    LNG("upstream_circuit_cooldown", upstream_circuit_cooldown, "10", 1,
        3600,
        "seconds an upstream entry is skipped after its circuit opens; "
        "doubled after each failed probe, up to 8 times this"),
    LNG("drain_timeout", drain_timeout, "30", 0, 3600,
        "seconds SIGTERM waits for in-flight requests"),
    LNG("drain_delay", drain_delay, "5", 0, 3600,
        "seconds after SIGTERM during which /readyz says draining while "
        "requests are still served (the load balancer's time to notice)"),
    LNG("startup_wait", startup_wait, "0", 0, 86400,
        "seconds to wait at start for storage and Redis to answer (503 "
        "'waiting for storage' meanwhile); 0: as long as it takes"),
    STR("auth_htpasswd", auth_htpasswd, "", SHOW_ALL, NULL,
        "htpasswd file of users (bcrypt or SHA-crypt; re-read on change)"),
    STR("auth_tokens", auth_tokens, "", SHOW_ALL, NULL,
        "API token file: '<name> <sha256-hex> <group,group>' lines "
        "(gomirror token new)"),
    STR("auth_groups", auth_groups, "", SHOW_ALL, NULL,
        "group file: 'group: user user' lines (Apache AuthGroupFile)"),
    STR("auth_rules", auth_rules, "", SHOW_ALL, NULL,
        "access rules: '<allow|deny> <who> <modules>' lines, first match "
        "wins (empty: authenticated users read all)"),
    STR("auth_admins", auth_admins, "", SHOW_ALL, NULL,
        "users and group:NAME entries allowed /admin/... and per-user "
        "/stats"),
    LNG("auth_cache_ttl", auth_cache_ttl, "300", 0, 86400,
        "seconds a verified credential is trusted without checking again"),
    STR("auth_ldap_url", auth_ldap_url, "", SHOW_ALL, check_ldap_url,
        "LDAP server: ldap://host:port or ldaps://host:port (empty: none)"),
    STR("auth_ldap_bind_dn", auth_ldap_bind_dn, "", SHOW_ALL, NULL,
        "DN of the service account that searches users and groups"),
    STR("auth_ldap_bind_password", auth_ldap_bind_password, "", MASK_ALL, NULL,
        "password of the service account"),
    FILEKEY("auth_ldap_bind_password_file", auth_ldap_bind_password_file,
            "auth_ldap_bind_password"),
    STR("auth_ldap_user_base", auth_ldap_user_base, "", SHOW_ALL, NULL,
        "base DN of the user search"),
    STR("auth_ldap_user_filter", auth_ldap_user_filter, "(uid={user})",
        SHOW_ALL, NULL, "user search filter; {user} is the escaped user name"),
    STR("auth_ldap_group_base", auth_ldap_group_base, "", SHOW_ALL, NULL,
        "base DN of the group search (empty: no LDAP groups)"),
    STR("auth_ldap_group_filter", auth_ldap_group_filter,
        "(|(member={dn})(uniqueMember={dn})(memberUid={user}))", SHOW_ALL, NULL,
        "group search filter; {dn} and {user} are replaced; groups are "
        "named by cn"),
    STR("auth_ldap_ca_file", auth_ldap_ca_file, "", SHOW_ALL, NULL,
        "CA bundle for ldaps:// and StartTLS (empty: the system CAs)"),
    BOOLK("auth_ldap_starttls", auth_ldap_starttls, "false",
          "upgrade ldap:// connections with StartTLS"),
    LNG("auth_ldap_timeout", auth_ldap_timeout, "5", 1, 120,
        "seconds any one LDAP operation may take"),
    BOOLK("metrics_auth", metrics_auth, "false",
          "/metrics needs credentials (an allowed identity)"),
    STR("audit_log", audit_log, "auto", SHOW_ALL, NULL,
        "audit log: stdout, off, or a file (append-only); auto: stdout when "
        "access control is on, else off"),
    BOOLK("audit_public", audit_public, "true",
          "audit public-module requests too (refusals always are)"),
    STR("trusted_proxies", trusted_proxies, "", SHOW_ALL, NULL,
        "CIDRs of proxies whose X-Forwarded-For names the client, "
        "comma-separated"),
    LNG("rate_limit", rate_limit, "0", 0, 1000000,
        "requests per second per user, token or anonymous address (0: no "
        "limit)"),
    LNG("rate_burst", rate_burst, "0", 0, 10000000,
        "requests a client may send at once (0: twice rate_limit)"),
    STR("rate_limit_groups", rate_limit_groups, "", SHOW_ALL, NULL,
        "per-group limits, group:rate/burst,... (the most generous applies)"),
    STR("rate_limit_mbps_groups", rate_limit_mbps_groups, "", SHOW_ALL, NULL,
        "download bandwidth cap per group and replica, group:Mbit/s,..."),
    STR("policy", policy, "", SHOW_ALL, NULL,
        "version policy file: deny/allow/cooldown/only/keep rules, first "
        "match wins (re-read on change; empty: none)"),
    STR("policy_hook", policy_hook, "", MASK_URL, check_policy_hook,
        "URL POSTed {module, version, h1} before a version is first "
        "committed; committed only on 200 (empty: none)"),
    STR("policy_hook_failure", policy_hook_failure, "closed", SHOW_ALL,
        check_policy_hook_failure,
        "when the policy hook does not answer: closed (refuse the version, "
        "503) or open (commit it)"),
    LNG("policy_hook_timeout", policy_hook_timeout, "10", 1, 600,
        "seconds the policy hook may take to answer"),
    STR("cooldown_exempt", cooldown_exempt, "", SHOW_ALL, NULL,
        "users, token:NAME and group:NAME entries that get versions inside "
        "the policy's cooldown (audited)"),
    {"config", KEY_STRING, F(config_file), NULL, 0, 0, SHOW_ALL,
     KEY_NOT_IN_FILE | KEY_EMPTY_IS_NULL, NULL,
     "config file of key = value lines", NULL},
};

#define NKEYS (sizeof keys / sizeof keys[0])
#define ENV_PREFIX "GOMIRROR_"
/* Longest value echoed back in a reason, so the reason keeps its context. */
#define ECHO_MAX 64
/* A config file line longer than this is a mistake, not a setting. */
#define LINE_MAX_LEN 65536

static char **str_field(struct config *c, const struct key *k) {
  return (char **)(void *)((char *)c + k->offset);
}
static long *long_field(struct config *c, const struct key *k) {
  return (long *)(void *)((char *)c + k->offset);
}
static int *bool_field(struct config *c, const struct key *k) {
  return (int *)(void *)((char *)c + k->offset);
}
static const char *str_value(const struct config *c, const struct key *k) {
  return *(char *const *)(const void *)((const char *)c + k->offset);
}
static long long_value(const struct config *c, const struct key *k) {
  return *(const long *)(const void *)((const char *)c + k->offset);
}
static int bool_value(const struct config *c, const struct key *k) {
  return *(const int *)(const void *)((const char *)c + k->offset);
}

static const struct key *key_find(const char *name, size_t len) {
  for (size_t i = 0; i < NKEYS; i++)
    if (strlen(keys[i].name) == len && memcmp(keys[i].name, name, len) == 0)
      return &keys[i];
  return NULL;
}

/* Flags accept '-' for '_' (--list-ttl) since --check-config uses dashes. */
static const struct key *flag_find(const char *name, size_t len) {
  for (size_t i = 0; i < NKEYS; i++) {
    const char *k = keys[i].name;
    if (strlen(k) != len)
      continue;
    size_t j = 0;
    while (j < len && (name[j] == k[j] || (name[j] == '-' && k[j] == '_')))
      j++;
    if (j == len)
      return &keys[i];
  }
  return NULL;
}

static int is_space(char ch) {
  return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\v' ||
         ch == '\f';
}
static int is_ctl(char ch) {
  return (unsigned char)ch < 0x20 || (unsigned char)ch == 0x7f;
}
static int is_digit(char ch) {
  return ch >= '0' && ch <= '9';
}
static int is_alnum(char ch) {
  return is_digit(ch) || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}
static char to_lower(char ch) {
  return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}
static char to_upper(char ch) {
  return ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch;
}

/* Masks the password of every "scheme://user:password@host" in v; seps are
 * the characters that end one URL of a list ("" for a single URL). Returns a
 * malloc'd copy (caller frees) or NULL when out of memory. When unsure where
 * the user part ends it masks too much rather than too little. */
static char *mask_url_passwords(const char *v, const char *seps) {
  size_t n = strlen(v), ats = 0;
  for (size_t i = 0; i < n; i++)
    ats += v[i] == '@';
  char *out = malloc(n + 3 * ats + 1);
  if (!out)
    return NULL;
  size_t o = 0, i = 0;
  while (i < n) {
    const char *sep = strstr(v + i, "://");
    if (!sep) {
      memcpy(out + o, v + i, n - i);
      o += n - i;
      break;
    }
    size_t auth = (size_t)(sep - v) + 3;
    memcpy(out + o, v + i, auth - i);
    o += auth - i;
    size_t end = auth + strcspn(v + auth, seps);
    /* The user part ends at the last '@' before the path; a password with
     * an unencoded '/' has no '@' there, so then take the last '@' of all. */
    size_t slash = auth + strcspn(v + auth, "/");
    const char *at = NULL, *at_host = NULL;
    for (size_t j = auth; j < end; j++) {
      if (v[j] != '@')
        continue;
      at = v + j;
      if (j < slash)
        at_host = at;
    }
    if (at_host)
      at = at_host;
    const char *colon =
        at ? memchr(v + auth, ':', (size_t)(at - v) - auth) : NULL;
    if (colon) {
      size_t keep = (size_t)(colon - v) + 1 - auth;
      memcpy(out + o, v + auth, keep);
      o += keep;
      memcpy(out + o, "***", 3);
      o += 3;
      i = (size_t)(at - v);
    } else {
      i = auth;
    }
    size_t rest = end - i;
    memcpy(out + o, v + i, rest);
    o += rest;
    i = end;
  }
  out[o] = '\0';
  return out;
}

/* Copies v into out for a reason or a usage line: control characters become
 * \xNN and long values are cut, so a reason stays one readable line. */
static void echo(const char *v, char *out, size_t outsz) {
  size_t o = 0;
  for (size_t i = 0; v[i] && o + 5 < outsz; i++) {
    if (i >= ECHO_MAX) {
      if (o + 4 < outsz) {
        memcpy(out + o, "...", 3);
        o += 3;
      }
      break;
    }
    if (is_ctl(v[i])) {
      static const char hex[] = "0123456789abcdef";
      unsigned char ch = (unsigned char)v[i];
      out[o++] = '\\';
      out[o++] = 'x';
      out[o++] = hex[ch >> 4];
      out[o++] = hex[ch & 15];
    } else {
      out[o++] = v[i];
    }
  }
  out[o] = '\0';
}

/* v as it may be shown under a masking rule; malloc'd, NULL if out of
 * memory. */
static char *mask_value(enum key_secret secret, const char *v) {
  switch (secret) {
  case MASK_ALL:
    return strdup(*v ? "***" : "");
  case MASK_URL:
    return mask_url_passwords(v, "");
  case MASK_URL_LIST:
    return mask_url_passwords(v, ",|");
  case SHOW_ALL:
    break;
  }
  return strdup(v);
}

/* echo() of v[0..n) after a masking rule, so reasons never carry secrets.
 * Masking comes before the cut, so a cut cannot hide the '@' it needs. */
static void echo_masked(enum key_secret secret, const char *v, size_t n,
                        char *out, size_t outsz) {
  char *copy = strndup(v, n);
  char *m = copy ? mask_value(secret, copy) : NULL;
  echo(m ? m : "(hidden)", out, outsz);
  free(m);
  free(copy);
}

/* Parses a non-negative decimal: digits only, so "+1", " 1", "1x" and "-1"
 * are all rejected. Returns 0, or -1 (not a number) / -2 (out of range). */
static int parse_ulong(const char *s, long *out) {
  if (!is_digit(s[0]))
    return -1;
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (*end)
    return -1;
  if (errno == ERANGE)
    return -2;
  *out = v;
  return 0;
}

static int parse_bool(const char *s, int *out) {
  static const char *const yes[] = {"true", "1", "yes", "on"};
  static const char *const no[] = {"false", "0", "no", "off"};
  for (size_t i = 0; i < 4; i++) {
    if (strcmp(s, yes[i]) == 0)
      return *out = 1, 0;
    if (strcmp(s, no[i]) == 0)
      return *out = 0, 0;
  }
  return -1;
}

static int set_key(struct config *c, const struct key *k, const char *value,
                   const char *source, struct reason *why) {
  const char *src = source ? source : "config";
  char shown[ECHO_MAX + 8];
  echo_masked(k->secret, value, strlen(value), shown, sizeof shown);
  for (const char *p = value; *p; p++)
    if (is_ctl(*p))
      return reason_set(why, ERR_CONFIG,
                        "%s: %s contains a control character, got '%s'", src,
                        k->name, shown);
  switch (k->type) {
  case KEY_LONG: {
    long v = 0;
    int rc = parse_ulong(value, &v);
    if (rc == -1)
      return reason_set(why, ERR_CONFIG,
                        "%s: %s must be a non-negative integer, got '%s'", src,
                        k->name, shown);
    if (rc == -2 || v < k->min || v > k->max)
      return reason_set(why, ERR_CONFIG,
                        "%s: %s must be between %ld and %ld, got '%s'", src,
                        k->name, k->min, k->max, shown);
    *long_field(c, k) = v;
    return 0;
  }
  case KEY_BOOL: {
    int v;
    if (parse_bool(value, &v))
      return reason_set(why, ERR_CONFIG,
                        "%s: %s must be true or false, got '%s'", src, k->name,
                        shown);
    *bool_field(c, k) = v;
    return 0;
  }
  case KEY_STRING: {
    char *copy = NULL;
    if (*value || !(k->flags & KEY_EMPTY_IS_NULL)) {
      copy = strdup(value);
      if (!copy)
        return reason_set(why, ERR_NOMEM, "out of memory");
    }
    char **field = str_field(c, k);
    free(*field);
    *field = copy;
    return 0;
  }
  }
  return reason_set(why, ERR_CONFIG, "%s: %s has an unknown type", src,
                    k->name);
}

int config_set(struct config *c, const char *key, const char *value,
               const char *source, struct reason *why) {
  const struct key *k = key_find(key, strlen(key));
  if (!k) {
    char shown[ECHO_MAX + 8];
    echo(key, shown, sizeof shown);
    return reason_set(why, ERR_CONFIG, "%s: unknown key '%s'",
                      source ? source : "config", shown);
  }
  return set_key(c, k, value, source, why);
}

void config_free(struct config *c) {
  if (!c)
    return;
  for (size_t i = 0; i < NKEYS; i++) {
    if (keys[i].type != KEY_STRING)
      continue;
    char **field = str_field(c, &keys[i]);
    free(*field);
    *field = NULL;
  }
}

int config_init(struct config *c) {
  memset(c, 0, sizeof *c);
  for (size_t i = 0; i < NKEYS; i++) {
    if (!keys[i].def)
      continue;
    /* Defaults go through the same parser as user input, so a bad default
     * fails the first unit test instead of a production start. */
    int rc = set_key(c, &keys[i], keys[i].def, "default", NULL);
    if (rc) {
      config_free(c);
      return rc;
    }
  }
  return 0;
}

/* ---- config file ---- */

/* Trims s[0..*len) in place; returns the new start. */
static char *trim(char *s, size_t *len) {
  size_t n = *len;
  while (n && is_space(*s))
    s++, n--;
  while (n && is_space(s[n - 1]))
    n--;
  s[n] = '\0';
  *len = n;
  return s;
}

static int parse_line(struct config *c, char *line, size_t len,
                      const char *source, struct reason *why) {
  char *s = trim(line, &len);
  if (len == 0 || s[0] == '#')
    return 0;
  char *eq = strchr(s, '=');
  if (!eq)
    return reason_set(why, ERR_CONFIG, "%s: expected 'key = value'", source);
  size_t klen = (size_t)(eq - s);
  char *key = trim(s, &klen);
  size_t vlen = len - (size_t)(eq - s) - 1;
  char *value = trim(eq + 1, &vlen);
  if (klen == 0)
    return reason_set(why, ERR_CONFIG, "%s: missing key before '='", source);
  const struct key *k = key_find(key, klen);
  char shown[ECHO_MAX + 8];
  if (!k) {
    echo(key, shown, sizeof shown);
    return reason_set(why, ERR_CONFIG, "%s: unknown key '%s'", source, shown);
  }
  if (k->flags & KEY_NOT_IN_FILE)
    return reason_set(why, ERR_CONFIG,
                      "%s: %s can only be set by flag or environment", source,
                      k->name);
  if (vlen && value[0] == '"') {
    if (vlen < 2 || value[vlen - 1] != '"')
      return reason_set(why, ERR_CONFIG, "%s: %s has an unterminated quote",
                        source, k->name);
    value[vlen - 1] = '\0';
    value++;
  }
  return set_key(c, k, value, source, why);
}

static int load_file(struct config *c, const char *path, struct reason *why) {
  char shown[ECHO_MAX + 8];
  echo(path, shown, sizeof shown);
  FILE *f = fopen(path, "r");
  if (!f)
    return reason_set(why, ERR_CONFIG, "config file '%s': %s", shown,
                      strerror(errno));
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  long lineno = 0;
  int rc = 0;
  char source[ECHO_MAX + 32];
  while ((n = getline(&line, &cap, f)) >= 0) {
    lineno++;
    snprintf(source, sizeof source, "%s:%ld", shown, lineno);
    if (memchr(line, '\0', (size_t)n)) {
      rc = reason_set(why, ERR_CONFIG, "%s: line contains a NUL byte", source);
      goto out;
    }
    if (n > LINE_MAX_LEN) {
      rc = reason_set(why, ERR_CONFIG, "%s: line longer than %d bytes", source,
                      LINE_MAX_LEN);
      goto out;
    }
    rc = parse_line(c, line, (size_t)n, source, why);
    if (rc)
      goto out;
  }
  if (ferror(f))
    rc = reason_set(why, ERR_CONFIG, "config file '%s': %s", shown,
                    strerror(errno));
out:
  free(line);
  fclose(f);
  return rc;
}

/* ---- environment and flags ---- */

/* The value of GOMIRROR_<KEY> in envp, first match like getenv(); the
 * variable's name goes to name (for reasons). */
static const char *env_find(char **envp, const struct key *k, char *name,
                            size_t namesz) {
  size_t plen = strlen(ENV_PREFIX), klen = strlen(k->name);
  if (plen + klen + 1 > namesz)
    return NULL;
  memcpy(name, ENV_PREFIX, plen);
  for (size_t i = 0; i < klen; i++)
    name[plen + i] = to_upper(k->name[i]);
  name[plen + klen] = '\0';
  for (char **e = envp; e && *e; e++)
    if (strncmp(*e, name, plen + klen) == 0 && (*e)[plen + klen] == '=')
      return *e + plen + klen + 1;
  return NULL;
}

/* A *_file key's file: its content without one trailing newline (and
 * carriage return), at most 64 KiB, no other control character. */
static int read_secret_file(const struct key *k, const char *path, char **out,
                            struct reason *why) {
  char shown[ECHO_MAX + 8];
  echo(path, shown, sizeof shown);
  FILE *f = fopen(path, "re");
  if (!f)
    return reason_set(why, ERR_CONFIG, "%s: cannot read '%s': %s", k->name,
                      shown, strerror(errno));
  char *b = malloc(65537);
  size_t n = b ? fread(b, 1, 65537, f) : 0;
  int err = ferror(f);
  fclose(f);
  if (!b)
    return reason_set(why, ERR_NOMEM, "out of memory");
  if (err || n > 65536) {
    free(b);
    return reason_set(why, ERR_CONFIG, "%s: '%s' is %s", k->name, shown,
                      err ? "unreadable" : "larger than 64 KiB");
  }
  if (n && b[n - 1] == '\n')
    n--;
  if (n && b[n - 1] == '\r')
    n--;
  b[n] = '\0';
  for (size_t i = 0; i < n; i++)
    if (is_ctl(b[i])) {
      free(b);
      return reason_set(why, ERR_CONFIG,
                        "%s: '%s' holds a control character (one line "
                        "expected)",
                        k->name, shown);
    }
  *out = b;
  return 0;
}

/* Sets each key whose *_file key names a file from that file. Setting a key
 * both ways is an error: which one wins would be a guess. */
static int read_secret_files(struct config *c, struct reason *why) {
  for (size_t i = 0; i < NKEYS; i++) {
    const struct key *fk = &keys[i];
    const char *path = fk->file_for ? str_value(c, fk) : NULL;
    if (!path || !*path)
      continue;
    const struct key *target = key_find(fk->file_for, strlen(fk->file_for));
    const char *cur = target ? str_value(c, target) : NULL;
    if (!target)
      return reason_set(why, ERR_CONFIG, "%s: no key %s", fk->name,
                        fk->file_for);
    if (cur && *cur)
      return reason_set(why, ERR_CONFIG, "set %s or %s, not both", target->name,
                        fk->name);
    char *v = NULL;
    int rc = read_secret_file(fk, path, &v, why);
    if (!rc)
      rc = set_key(c, target, v, fk->name, why);
    if (v) {
      memset(v, 0, strlen(v));
      free(v);
    }
    if (rc)
      return rc;
  }
  return 0;
}

/* Edit distance between a[0..n) and b, capped at 3 (for suggestions). */
static size_t distance(const char *a, size_t n, const char *b) {
  size_t m = strlen(b);
  if (n > 64 || m > 64)
    return 3;
  size_t prev[65], cur[65];
  for (size_t j = 0; j <= m; j++)
    prev[j] = j;
  for (size_t i = 1; i <= n; i++) {
    cur[0] = i;
    for (size_t j = 1; j <= m; j++) {
      size_t sub = prev[j - 1] + (to_lower(a[i - 1]) != b[j - 1]);
      size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
      cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
    }
    memcpy(prev, cur, (m + 1) * sizeof *prev);
  }
  return prev[m] < 3 ? prev[m] : 3;
}

/* Refuses a GOMIRROR_* variable that names no key: in Kubernetes the
 * environment is the main way to configure, and a typo there would be
 * ignored without a word. */
static int check_env_names(char **envp, struct reason *why) {
  size_t pl = strlen(ENV_PREFIX);
  for (char **e = envp; e && *e; e++) {
    if (strncmp(*e, ENV_PREFIX, pl) != 0)
      continue;
    const char *k = *e + pl;
    size_t kl = strcspn(k, "=");
    int known = 0;
    const struct key *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; i < NKEYS && !known; i++) {
      const char *name = keys[i].name;
      known = strlen(name) == kl;
      for (size_t j = 0; known && j < kl; j++)
        known = to_upper(name[j]) == k[j];
      size_t d = distance(k, kl, name);
      if (d < best_d) {
        best_d = d;
        best = &keys[i];
      }
    }
    if (known)
      continue;
    char shown[ECHO_MAX + 8], hint[ECHO_MAX + 32] = "";
    char nm[ECHO_MAX + 1];
    size_t cl = kl < ECHO_MAX ? kl : ECHO_MAX;
    memcpy(nm, k, cl);
    nm[cl] = '\0';
    echo(nm, shown, sizeof shown);
    if (best) {
      char up[ECHO_MAX + 1];
      size_t bl = strlen(best->name);
      for (size_t j = 0; j < bl && j < ECHO_MAX; j++)
        up[j] = to_upper(best->name[j]);
      up[bl < ECHO_MAX ? bl : ECHO_MAX] = '\0';
      snprintf(hint, sizeof hint, "; did you mean %s%s?", ENV_PREFIX, up);
    }
    return reason_set(why, ERR_CONFIG,
                      "unknown environment variable %s%s%s (see --help)",
                      ENV_PREFIX, shown, hint);
  }
  return 0;
}

struct flag_setting {
  const struct key *k;
  const char *value;
};

int config_flag_span(int argc, char **argv, int i) {
  const char *a = argv[i];
  if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 ||
      strcmp(a, "--check-config") == 0 || strcmp(a, "--version") == 0 ||
      strcmp(a, "-V") == 0)
    return 1;
  if (strncmp(a, "--", 2) != 0 || a[2] == '\0')
    return 0;
  const char *fname = a + 2;
  const char *eq = strchr(fname, '=');
  size_t flen = eq ? (size_t)(eq - fname) : strlen(fname);
  const struct key *k = flag_find(fname, flen);
  if (!k)
    return 0;
  return eq || k->type == KEY_BOOL || i + 1 >= argc ? 1 : 2;
}

int config_load(struct config *c, int argc, char **argv, char **envp,
                enum config_action *action, struct reason *why) {
  enum config_action act = CONFIG_SERVE;
  char name[96];
  int rc = 0;
  struct flag_setting *flags =
      calloc(argc > 0 ? (size_t)argc : 1, sizeof *flags);
  if (!flags) {
    rc = reason_set(why, ERR_NOMEM, "out of memory");
    goto out;
  }
  size_t nflags = 0;

  /* Parse every flag before reading anything, so --config is known before
   * the file and a typo fails before any side effect. */
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      act = CONFIG_HELP;
      goto out;
    }
    if (strcmp(a, "--check-config") == 0) {
      act = CONFIG_CHECK;
      continue;
    }
    if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
      act = CONFIG_VERSION;
      goto out;
    }
    char shown[ECHO_MAX + 8];
    if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
      echo(a, shown, sizeof shown);
      rc = reason_set(why, ERR_CONFIG, "unexpected argument '%s' (see --help)",
                      shown);
      goto out;
    }
    const char *fname = a + 2;
    const char *eq = strchr(fname, '=');
    size_t flen = eq ? (size_t)(eq - fname) : strlen(fname);
    const struct key *k = flag_find(fname, flen);
    if (!k) {
      /* Only the name is echoed: what follows '=' may be a secret. */
      char fl[ECHO_MAX + 8];
      memcpy(fl, fname, flen < ECHO_MAX ? flen : ECHO_MAX);
      fl[flen < ECHO_MAX ? flen : ECHO_MAX] = '\0';
      echo(fl, shown, sizeof shown);
      rc = reason_set(why, ERR_CONFIG, "unknown flag --%s (see --help)", shown);
      goto out;
    }
    const char *value;
    if (eq)
      value = eq + 1;
    else if (k->type == KEY_BOOL)
      value = "true";
    else if (i + 1 < argc)
      value = argv[++i];
    else {
      rc = reason_set(why, ERR_CONFIG, "flag --%s needs a value", k->name);
      goto out;
    }
    flags[nflags].k = k;
    flags[nflags].value = value;
    nflags++;
  }

  const struct key *kconf = key_find("config", 6);
  const char *path = env_find(envp, kconf, name, sizeof name);
  for (size_t i = 0; i < nflags; i++)
    if (flags[i].k == kconf)
      path = flags[i].value;
  if (path && *path) {
    rc = load_file(c, path, why);
    if (rc)
      goto out;
  }

  rc = check_env_names(envp, why);
  if (rc)
    goto out;
  for (size_t i = 0; i < NKEYS; i++) {
    const char *v = env_find(envp, &keys[i], name, sizeof name);
    if (v) {
      rc = set_key(c, &keys[i], v, name, why);
      if (rc)
        goto out;
    }
  }

  for (size_t i = 0; i < nflags; i++) {
    snprintf(name, sizeof name, "--%s", flags[i].k->name);
    rc = set_key(c, flags[i].k, flags[i].value, name, why);
    if (rc)
      goto out;
  }
  rc = read_secret_files(c, why);

out:
  free(flags);
  if (action)
    *action = act;
  return rc;
}

/* ---- semantic checks ---- */

static int has_space_or_ctl(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (is_space(s[i]) || is_ctl(s[i]))
      return 1;
  return 0;
}

/* "host:port" with a port of 1..65535; the host is a name, an IPv4 address
 * or a bracketed IPv6 address. */
static int check_listen(const char *v, struct reason *why) {
  char shown[ECHO_MAX + 8];
  echo(v, shown, sizeof shown);
  const char *colon = strrchr(v, ':');
  if (!colon || colon == v)
    return reason_set(why, ERR_CONFIG,
                      "listen must be host:port (e.g. 0.0.0.0:3000), got '%s'",
                      shown);
  size_t hlen = (size_t)(colon - v);
  if (v[0] == '[') {
    /* Start-up would fail: say so here, where --check-config sees it. */
    return reason_set(why, ERR_CONFIG,
                      "listen: '%s' is IPv6, which Debian's CivetWeb is built "
                      "without; use an IPv4 address or a name "
                      "(0.0.0.0:3000)",
                      shown);
  } else {
    for (size_t i = 0; i < hlen; i++)
      if (!is_alnum(v[i]) && v[i] != '.' && v[i] != '-')
        return reason_set(why, ERR_CONFIG, "listen has a bad host in '%s'",
                          shown);
  }
  long port = 0;
  if (strlen(colon + 1) > 5 || parse_ulong(colon + 1, &port) || port < 1 ||
      port > 65535)
    return reason_set(why, ERR_CONFIG, "listen port must be 1..65535, got '%s'",
                      shown);
  return 0;
}

/* Whether u[0..n) starts with prefix, ignoring ASCII case. */
static int prefix_ci(const char *u, size_t n, const char *prefix) {
  size_t i = 0;
  for (; prefix[i]; i++)
    if (i >= n || to_lower(u[i]) != prefix[i])
      return 0;
  return 1;
}

/* An http(s) URL with a non-empty host; used by upstream and sumdb. The
 * scheme is case-insensitive, as in Go's url.Parse. */
static int http_url_ok(const char *u, size_t n) {
  size_t skip;
  if (prefix_ci(u, n, "http://"))
    skip = 7;
  else if (prefix_ci(u, n, "https://"))
    skip = 8;
  else
    return 0;
  size_t host = strcspn(u + skip, "/?#");
  if (host > n - skip)
    host = n - skip;
  const char *at = memchr(u + skip, '@', host);
  if (at)
    host -= (size_t)(at - (u + skip)) + 1;
  return host > 0 && !has_space_or_ctl(u, n);
}

/* One GOPROXY entry (PROTOCOL.md D): off, direct, an http/https/file URL, or
 * a host that gets "https://" prepended. Single words are reserved. */
static int check_upstream_entry(const char *e, size_t n, struct reason *why) {
  char shown[ECHO_MAX + 8];
  echo_masked(MASK_URL, e, n, shown, sizeof shown);
  if ((n == 3 && memcmp(e, "off", 3) == 0) ||
      (n == 6 && memcmp(e, "direct", 6) == 0))
    return 0;
  if (has_space_or_ctl(e, n))
    return reason_set(why, ERR_CONFIG,
                      "upstream entry '%s' contains whitespace", shown);
  const char *sep = NULL;
  for (size_t i = 0; i + 1 < n; i++)
    if (e[i] == ':' && e[i + 1] == '/') {
      sep = e + i;
      break;
    }
  if (sep) {
    size_t slen = (size_t)(sep - e);
    char scheme[8];
    if (slen >= sizeof scheme)
      slen = sizeof scheme - 1;
    for (size_t i = 0; i < slen; i++)
      scheme[i] = to_lower(e[i]);
    scheme[slen] = '\0';
    if (strcmp(scheme, "file") == 0) {
      /* Like the go command: a file URL is a path and nothing else. */
      if (n <= 8 || strncmp(sep, ":///", 4) != 0 || memchr(e, '?', n) ||
          memchr(e, '#', n))
        return reason_set(why, ERR_CONFIG,
                          "upstream entry '%s' must be file:///absolute/path",
                          shown);
      return 0;
    }
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
      return reason_set(why, ERR_CONFIG,
                        "upstream entry '%s' has an unsupported scheme "
                        "(use https, http or file)",
                        shown);
    if (!http_url_ok(e, n))
      return reason_set(why, ERR_CONFIG,
                        "upstream entry '%s' must be a URL with a host", shown);
    return 0;
  }
  if (e[0] == '/')
    return reason_set(why, ERR_CONFIG,
                      "upstream entry '%s' is a path; write file://%s", shown,
                      shown);
  if (!memchr(e, '.', n) && !memchr(e, ':', n) && !memchr(e, '/', n))
    return reason_set(why, ERR_CONFIG,
                      "upstream entry '%s' is not off, direct, a URL or a host",
                      shown);
  if (e[0] == ':' || e[0] == '@')
    return reason_set(why, ERR_CONFIG, "upstream entry '%s' has no host",
                      shown);
  return 0;
}

/* Hosts of public proxies: private paths must never be sent there. */
static const char *const public_proxies[] = {
    "proxy.golang.org", "goproxy.io", "goproxy.cn", "proxy.golang.com.cn",
    "goproxy.dev", "gocenter.io", NULL};

/* private_upstream: URLs of other gomirrors only (no off, direct, file or
 * known public proxy): it receives private module paths. */
static int check_private_upstream(const char *v, struct reason *why) {
  if (!v[0])
    return 0;
  int rc = check_upstream(v, why);
  if (rc)
    return reason_set(why, ERR_CONFIG, "private_upstream: %s", why->text);
  const char *p = v;
  for (;;) {
    size_t n = strcspn(p, ",|");
    const char *e = p;
    size_t len = n;
    while (len && is_space(*e))
      e++, len--;
    while (len && is_space(e[len - 1]))
      len--;
    char shown[ECHO_MAX + 8];
    echo_masked(MASK_URL, e, len, shown, sizeof shown);
    if (!http_url_ok(e, len))
      return reason_set(why, ERR_CONFIG,
                        "private_upstream entry '%s' must be an http(s) URL "
                        "of another gomirror",
                        shown);
    size_t skip = prefix_ci(e, len, "https://") ? 8 : 7;
    const char *host = e + skip;
    size_t hl = strcspn(host, "/?#");
    if (hl > len - skip)
      hl = len - skip;
    const char *at = memchr(host, '@', hl);
    if (at) {
      hl -= (size_t)(at - host) + 1;
      host = at + 1;
    }
    const char *colon = memchr(host, ':', hl);
    if (colon)
      hl = (size_t)(colon - host);
    for (size_t i = 0; public_proxies[i]; i++) {
      size_t pl = strlen(public_proxies[i]);
      if (hl == pl && prefix_ci(host, hl, public_proxies[i]))
        return reason_set(why, ERR_CONFIG,
                          "private_upstream entry '%s' is a public proxy: "
                          "private module paths must never leave the "
                          "organisation",
                          shown);
    }
    if (!p[n])
      return 0;
    p += n + 1;
  }
}

/* At most max letters, digits, '.', '-' or '_' (not "." or ".."): a name
 * that is also one path element or header item. */
static int host_like(const char *v, size_t max) {
  size_t n = strlen(v);
  int ok = n <= max && strcmp(v, ".") != 0 && strcmp(v, "..") != 0;
  for (size_t i = 0; ok && i < n; i++)
    ok = is_alnum(v[i]) || v[i] == '.' || v[i] == '-' || v[i] == '_';
  return ok;
}

static int check_region(const char *v, struct reason *why) {
  if (host_like(v, 63))
    return 0;
  char shown[ECHO_MAX + 8];
  echo(v, shown, sizeof shown);
  return reason_set(why, ERR_CONFIG,
                    "region must be at most 63 letters, digits, '.', '-' or "
                    "'_', got '%s'",
                    shown);
}

static int check_upstream(const char *v, struct reason *why) {
  const char *p = v;
  for (;;) {
    size_t n = strcspn(p, ",|");
    size_t len = n;
    const char *e = p;
    while (len && is_space(*e))
      e++, len--;
    while (len && is_space(e[len - 1]))
      len--;
    if (len == 0)
      return reason_set(why, ERR_CONFIG,
                        "upstream has an empty entry (check for ',,' or a "
                        "leading or trailing separator)");
    int rc = check_upstream_entry(e, len, why);
    if (rc)
      return rc;
    if (!p[n])
      return 0;
    p += n + 1;
  }
}

/* An S3 bucket name: 3..63 of [a-z0-9.-], starting and ending alphanumeric. */
static int bucket_ok(const char *b, size_t n) {
  if (n < 3 || n > 63 || !is_alnum(b[0]) || !is_alnum(b[n - 1]))
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!(is_digit(b[i]) || (b[i] >= 'a' && b[i] <= 'z') || b[i] == '.' ||
          b[i] == '-'))
      return 0;
  return 1;
}

static int check_storage(const char *v, struct reason *why) {
  char shown[ECHO_MAX + 8];
  echo(v, shown, sizeof shown);
  if (strncmp(v, "fs://", 5) == 0) {
    if (v[5] == '\0')
      return reason_set(why, ERR_CONFIG,
                        "storage fs:// needs a path (fs:///abs/path or "
                        "fs://./rel)");
    return 0;
  }
  if (strncmp(v, "s3://", 5) == 0) {
    const char *b = v + 5;
    size_t n = strcspn(b, "/");
    if (n == 0)
      return reason_set(
          why, ERR_CONFIG,
          "storage s3:// needs a bucket name (s3://bucket/prefix)");
    if (!bucket_ok(b, n))
      return reason_set(why, ERR_CONFIG,
                        "storage '%s' has an invalid S3 bucket name", shown);
    return 0;
  }
  return reason_set(why, ERR_CONFIG,
                    "storage must be fs://PATH or s3://BUCKET[/PREFIX], got "
                    "'%s'",
                    shown);
}

static int check_path_style(const char *v, struct reason *why) {
  if (strcmp(v, "auto") && strcmp(v, "true") && strcmp(v, "false"))
    return reason_set(why, ERR_CONFIG,
                      "s3_path_style must be true, false or auto, got '%.64s'",
                      v);
  return 0;
}

static int check_meta(const char *v, struct reason *why) {
  if (strcmp(v, "memory") == 0)
    return 0;
  const char *rest = NULL;
  if (strncmp(v, "redis://", 8) == 0)
    rest = v + 8;
  else if (strncmp(v, "redis-sentinel://", 17) == 0)
    rest = v + 17;
  char shown[ECHO_MAX + 8];
  echo_masked(MASK_URL, v, strlen(v), shown, sizeof shown);
  if (rest && *rest && !strpbrk(rest, " \t"))
    return 0;
  return reason_set(why, ERR_CONFIG,
                    "meta must be memory, redis://[:password@]host:port[/db] "
                    "or redis-sentinel://host:port,host:port/master, got '%s'",
                    shown);
}

/* name=url pairs; the name becomes a path element (/sumdb/<name>/...), so it
 * is limited to host-name characters, and each name appears once. */
static int check_sumdb(const char *v, struct reason *why) {
  const char *p = v;
  if (!*v)
    return 0; /* no checksum database proxied: clients go to it directly */
  char shown[ECHO_MAX + 8];
  for (;;) {
    size_t n = strcspn(p, ",");
    const char *e = p;
    size_t len = n;
    while (len && is_space(*e))
      e++, len--;
    while (len && is_space(e[len - 1]))
      len--;
    if (len == 0)
      return reason_set(why, ERR_CONFIG,
                        "sumdb has an empty entry (want name=url,name=url)");
    const char *eq = memchr(e, '=', len);
    echo_masked(MASK_URL, e, len, shown, sizeof shown);
    if (!eq || eq == e)
      return reason_set(why, ERR_CONFIG, "sumdb entry '%s' is not name=url",
                        shown);
    size_t nlen = (size_t)(eq - e);
    const char *plus = memchr(e, '+', nlen);
    size_t name_len = plus ? (size_t)(plus - e) : nlen;
    for (size_t i = 0; i < name_len; i++)
      if (!is_alnum(e[i]) && e[i] != '.' && e[i] != '-' && e[i] != '_')
        return reason_set(why, ERR_CONFIG, "sumdb entry '%s' has a bad name",
                          shown);
    if (plus) {
      /* name+<8 hex>+<base64>: the key itself is checked at start-up. */
      const char *k = plus + 1, *ke = e + nlen;
      int ok = ke - k > 10 && k[8] == '+';
      for (int i = 0; ok && i < 8; i++)
        ok = is_alnum(k[i]);
      for (const char *c = k + 9; ok && c < ke; c++)
        ok = is_alnum(*c) || *c == '+' || *c == '/';
      if (!ok || name_len == 0)
        return reason_set(why, ERR_CONFIG,
                          "sumdb entry '%s' has a malformed verifier key "
                          "(want name+hash+key=url)",
                          shown);
    }
    nlen = name_len;
    if ((nlen == 1 && e[0] == '.') || (nlen == 2 && memcmp(e, "..", 2) == 0))
      return reason_set(why, ERR_CONFIG, "sumdb entry '%s' has a bad name",
                        shown);
    if (!http_url_ok(eq + 1, len - (size_t)(eq - e) - 1))
      return reason_set(why, ERR_CONFIG,
                        "sumdb entry '%s' needs an http(s) URL with a host",
                        shown);
    /* Names seen earlier sit in v before p; compare against each. */
    for (const char *q = v; q < p;) {
      size_t qn = strcspn(q, ",");
      const char *qe = q;
      while (qn && is_space(*qe))
        qe++, qn--;
      const char *qeq = memchr(qe, '=', qn);
      const char *qplus = qeq ? memchr(qe, '+', (size_t)(qeq - qe)) : NULL;
      const char *qend = qplus ? qplus : qeq;
      if (qend && (size_t)(qend - qe) == nlen && memcmp(qe, e, nlen) == 0)
        return reason_set(why, ERR_CONFIG, "sumdb entry '%s' repeats a name",
                          shown);
      q += strcspn(q, ",") + 1;
    }
    if (!p[n])
      return 0;
    p += n + 1;
  }
}

static int check_sumdb_verify(const char *v, struct reason *why) {
  if (!strcmp(v, "strict") || !strcmp(v, "warn") || !strcmp(v, "off") ||
      !strcmp(v, "true") || !strcmp(v, "false"))
    return 0;
  char shown[ECHO_MAX + 8];
  echo(v, shown, sizeof shown);
  return reason_set(why, ERR_CONFIG,
                    "sumdb_verify must be strict, warn or off, got '%s'",
                    shown);
}

/* A note key name that is also one path element (/sumdb/<name>/...). */
static int check_org_sumdb_name(const char *v, struct reason *why) {
  if (host_like(v, 255))
    return 0;
  char shown[ECHO_MAX + 8];
  echo(v, shown, sizeof shown);
  return reason_set(why, ERR_CONFIG,
                    "org_sumdb_name must be a host-like name (letters, "
                    "digits, '.', '-', '_'), got '%s'",
                    shown);
}

static int check_one_of(const char *key, const char *v,
                        const char *const *allowed, const char *list,
                        struct reason *why) {
  for (; *allowed; allowed++)
    if (strcmp(v, *allowed) == 0)
      return 0;
  char shown[ECHO_MAX + 8];
  echo(v, shown, sizeof shown);
  return reason_set(why, ERR_CONFIG, "%s must be %s, got '%s'", key, list,
                    shown);
}

static int check_log_format(const char *v, struct reason *why) {
  static const char *const ok[] = {"text", "json", NULL};
  return check_one_of("log_format", v, ok, "text or json", why);
}

static int check_log_level(const char *v, struct reason *why) {
  static const char *const ok[] = {"debug", "info", "warn", "error", NULL};
  return check_one_of("log_level", v, ok, "debug, info, warn or error", why);
}

static int check_ldap_url(const char *v, struct reason *why) {
  if (!*v ||
      ((strncmp(v, "ldap://", 7) == 0 || strncmp(v, "ldaps://", 8) == 0) &&
       !has_space_or_ctl(v, strlen(v))))
    return 0;
  char shown[ECHO_MAX + 8];
  echo_masked(MASK_URL, v, strlen(v), shown, sizeof shown);
  return reason_set(why, ERR_CONFIG,
                    "auth_ldap_url must be ldap://host:port or "
                    "ldaps://host:port, got '%s'",
                    shown);
}

static int check_policy_hook(const char *v, struct reason *why) {
  if (!*v ||
      ((strncmp(v, "http://", 7) == 0 || strncmp(v, "https://", 8) == 0) &&
       !has_space_or_ctl(v, strlen(v))))
    return 0;
  char shown[ECHO_MAX + 8];
  echo_masked(MASK_URL, v, strlen(v), shown, sizeof shown);
  return reason_set(why, ERR_CONFIG,
                    "policy_hook must be an http:// or https:// URL, got '%s'",
                    shown);
}

static int check_policy_hook_failure(const char *v, struct reason *why) {
  static const char *const ok[] = {"closed", "open", NULL};
  return check_one_of("policy_hook_failure", v, ok, "closed or open", why);
}

int config_check(const struct config *c, struct reason *why) {
  for (size_t i = 0; i < NKEYS; i++) {
    const struct key *k = &keys[i];
    if (k->type == KEY_LONG) {
      /* Fields may have been set without config_set; check bounds again. */
      long v = long_value(c, k);
      if (v < k->min || v > k->max)
        return reason_set(why, ERR_CONFIG,
                          "%s must be between %ld and %ld, got %ld", k->name,
                          k->min, k->max, v);
      continue;
    }
    if (k->type != KEY_STRING || !k->check)
      continue;
    const char *v = str_value(c, k);
    if (!v)
      return reason_set(why, ERR_CONFIG, "%s is not set", k->name);
    int rc = k->check(v, why);
    if (rc)
      return rc;
  }
  if ((c->org_sumdb_name && *c->org_sumdb_name) !=
      (c->org_sumdb_key && *c->org_sumdb_key))
    return reason_set(why, ERR_CONFIG,
                      "set org_sumdb_name and org_sumdb_key together "
                      "(gomirror sumdb keygen NAME --out FILE makes the key)");
  return 0;
}

/* ---- printing ---- */

/* Writes v so that reading it back as a file value gives v again. */
static void print_value(FILE *out, const char *v) {
  size_t n = strlen(v);
  if (n == 0 || is_space(v[0]) || is_space(v[n - 1]) || v[0] == '"')
    fprintf(out, "\"%s\"", v);
  else
    fputs(v, out);
}

void config_shown(const struct config *c, const char *key, char *out,
                  size_t cap) {
  if (!cap)
    return;
  out[0] = '\0';
  const struct key *k = key_find(key, strlen(key));
  if (!k)
    return;
  char num[32];
  const char *v = num;
  if (k->type == KEY_LONG)
    snprintf(num, sizeof num, "%ld", long_value(c, k));
  else if (k->type == KEY_BOOL)
    v = bool_value(c, k) ? "true" : "false";
  else
    v = str_value(c, k) ? str_value(c, k) : "";
  char *m = mask_value(k->secret, v);
  snprintf(out, cap, "%s", m ? m : "***");
  free(m);
}

void config_print(const struct config *c, FILE *out) {
  for (size_t i = 0; i < NKEYS; i++) {
    const struct key *k = &keys[i];
    switch (k->type) {
    case KEY_LONG:
      fprintf(out, "%s = %ld\n", k->name, long_value(c, k));
      break;
    case KEY_BOOL:
      fprintf(out, "%s = %s\n", k->name, bool_value(c, k) ? "true" : "false");
      break;
    case KEY_STRING: {
      const char *v = str_value(c, k);
      if (!v)
        v = "";
      if (k->flags & KEY_NOT_IN_FILE) {
        fprintf(out, "# %s = %s (read from here; a file cannot name one)\n",
                k->name, *v ? v : "(none)");
        break;
      }
      char *m = mask_value(k->secret, v);
      if (!m || strcmp(m, v) != 0) {
        /* A hidden secret read back would become "***": a comment. */
        fprintf(out, "# %s = %s (secret, hidden)\n", k->name,
                m ? m : "***");
      } else {
        fprintf(out, "%s = ", k->name);
        print_value(out, v);
        fputc('\n', out);
      }
      free(m);
      break;
    }
    }
  }
}

void config_usage(FILE *out) {
  fputs("usage: gomirror [serve] [--config FILE] [--KEY=VALUE | --KEY VALUE]... "
        "[--check-config]\n"
        "       gomirror warm [--jobs N] [FILE | MODULE@VERSION]... [--KEY=VALUE]...\n"
        "       gomirror export --out FILE [--since TIME] [--modules PATTERNS] "
        "[--KEY=VALUE]...\n"
        "       gomirror import FILE [--KEY=VALUE]...\n"
        "       gomirror token new --name NAME [--groups G,G]\n"
        "       gomirror sumdb keygen NAME [--out FILE]\n"
        "       gomirror policy check MODULE@VERSION... [--KEY=VALUE]...\n"
        "       gomirror gc --unused-for DURATION [--dry-run] [--keep PATTERNS] "
        "[--newest]\n"
        "       gomirror catalog [--modules PATTERNS] [--json] "
        "[--KEY=VALUE]...\n"
        "       gomirror --help | --version\n"
        "\n"
        "Commands (each reads the same configuration as serve; COMMAND --help\n"
        "says more):\n"
        "  serve    the proxy (the default)\n"
        "  warm     make sure the versions of go.sum, go.mod or MODULE@VERSION\n"
        "           lists are committed (fetching what is missing)\n"
        "  export   write committed versions and their checksum-database proofs\n"
        "           to a bundle, for an air-gapped site\n"
        "  import   load a bundle into the storage, checking every file\n"
        "  token    make an API token for auth_tokens\n"
        "  sumdb    keygen: make the organisation checksum database's key pair\n"
        "  policy   check: what the version policy decides for a version, "
        "and why\n"
        "  gc       remove stored versions nobody downloaded for a while\n"
        "  catalog  list the stored versions with sizes and last download\n"
        "\n"
        "  --help, -h        print this help and exit\n"
        "  --version, -V     print the version and exit\n"
        "  --check-config    check everything start-up checks except the "
        "network,\n"
        "                    print the configuration (secrets hidden) and "
        "exit\n"
        "\n"
        "Every key can be set in the config file ('key = value' lines, "
        "'#' starts a\n"
        "comment line, values may be double-quoted), by its environment "
        "variable, or\n"
        "by its flag (dashes work for underscores: --list-ttl). Flags "
        "override the\n"
        "environment, which overrides the file.\n"
        "\n",
        out);
  fprintf(out, "  %-20s %-26s %s\n", "FLAG", "ENVIRONMENT", "DEFAULT");
  for (size_t i = 0; i < NKEYS; i++) {
    const struct key *k = &keys[i];
    char flag[64], env[64];
    snprintf(flag, sizeof flag, "--%s", k->name);
    size_t o = 0;
    for (const char *p = ENV_PREFIX; *p && o + 1 < sizeof env; p++)
      env[o++] = *p;
    for (const char *p = k->name; *p && o + 1 < sizeof env; p++)
      env[o++] = to_upper(*p);
    env[o] = '\0';
    const char *def = k->def ? k->def : "(none)";
    fprintf(out, "  %-20s %-26s %s\n", flag, env, *def ? def : "(empty)");
    fprintf(out, "      %s\n", k->help);
  }
}
