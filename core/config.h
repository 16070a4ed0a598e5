/* gomirror's configuration: one table of keys, three sources. Defaults, then
 * a `key = value` file, then GOMIRROR_<KEY> environment variables, then
 * `--key=value` flags; each later source overrides the earlier ones. */
#ifndef GOMIRROR_CORE_CONFIG_H
#define GOMIRROR_CORE_CONFIG_H

#include <stdio.h>

struct reason;

struct config {
  char *listen;           /* "host:port" */
  char *upstream;         /* GOPROXY syntax */
  char *private_patterns; /* key "private", GOPRIVATE syntax */
  char *go_binary;        /* for private modules and 'direct' */
  long vcs_timeout;       /* seconds */
  long vcs_workers;
  long vcs_queue_timeout; /* seconds a fetch waits for a vcs_workers slot */
  long vcs_queue_max;     /* fetches that may wait for a slot */
  int offline;            /* storage only: nothing is fetched */
  char *vcs_deny_hosts;   /* hosts `direct` never fetches from */
  char *vcs_netrc;        /* "" none */
  char *vcs_gitconfig;    /* "" none */
  char *vcs_ssh_key;      /* "" none */
  char *vcs_insecure;     /* GOINSECURE, "" none */
  char *vcs_http_proxy;   /* "" none */
  char *storage;          /* fs:///abs, fs://./rel, s3://bucket/prefix */
  char *s3_endpoint;      /* "" for AWS */
  char *s3_region;
  char *s3_path_style;   /* true | false | auto */
  char *s3_access_key;   /* "" -> AWS_ACCESS_KEY_ID */
  char *s3_secret_key;   /* "" -> AWS_SECRET_ACCESS_KEY */
  char *s3_ca_file;      /* "" -> system CAs */
  long s3_part_mb;       /* multipart part size and threshold */
  int zip_redirect;      /* 302 .zip to a pre-signed URL */
  long zip_redirect_ttl; /* seconds */
  char *meta;            /* memory | redis://... | redis-sentinel://... */
  char *meta_prefix;     /* Redis key prefix */
  long redis_timeout_ms; /* connect and command timeout */
  long lock_ttl;         /* seconds */
  char *admin_token;     /* "" disables /admin */
  char *sumdb;           /* name=url,name=url */
  char *sumdb_verify;    /* strict | warn | off (true: strict, false: off) */
  char *org_sumdb_name;  /* the organisation checksum database; "" off */
  char *org_sumdb_key;   /* file holding its note signer key */
  int org_sumdb_public;  /* log public versions too */
  long hot_cache_mb;     /* per-replica memory cache, MiB */
  long list_ttl;         /* seconds */
  long negative_ttl;     /* seconds */
  char *log_format;      /* text | json */
  char *log_level;       /* debug | info | warn | error */
  long threads;          /* CivetWeb worker threads */
  long header_timeout;   /* seconds a client may take to send its headers */
  long max_client_conns; /* connections one address may hold waiting */
  char *upstream_redirect_hosts; /* hosts an upstream may redirect to */
  long connect_timeout;          /* seconds, upstream connect */
  long fetch_timeout;            /* seconds, one whole upstream request */
  char *region;           /* this region's id for Gomirror-Via; "" host name */
  char *private_upstream; /* gomirror chain for private paths; "" VCS */
  long upstream_circuit_failures; /* failures that open a circuit; 0 never */
  long upstream_circuit_cooldown; /* seconds, first cool-down */
  long drain_timeout;   /* seconds SIGTERM waits for in-flight requests */
  long drain_delay;     /* seconds /readyz says draining before that */
  long startup_wait;    /* seconds to wait for storage and Redis; 0: ever */
  char *redis_password; /* for meta=redis... without one in the URL */
  /* Files that hold a secret, as Kubernetes mounts Secrets: each sets the
   * key its name starts with. */
  char *s3_access_key_file;
  char *s3_secret_key_file;
  char *admin_token_file;
  char *auth_ldap_bind_password_file;
  char *redis_password_file;
  /* Access control (auth/). */
  char *auth_htpasswd; /* "" none */
  char *auth_tokens;   /* "" none */
  char *auth_groups;   /* "" none */
  char *auth_rules;    /* "" none: the default rules */
  char *auth_admins;   /* users and group:NAME, comma-separated */
  long auth_cache_ttl; /* seconds a verified credential is trusted */
  char *auth_ldap_url; /* "" none */
  char *auth_ldap_bind_dn;
  char *auth_ldap_bind_password;
  char *auth_ldap_user_base;
  char *auth_ldap_user_filter;
  char *auth_ldap_group_base;
  char *auth_ldap_group_filter;
  char *auth_ldap_ca_file;
  int auth_ldap_starttls;
  long auth_ldap_timeout;       /* seconds */
  int metrics_auth;             /* /metrics needs an authenticated identity */
  char *audit_log;              /* auto | stdout | off | path */
  int audit_public;             /* audit public-module requests too */
  char *trusted_proxies;        /* CIDRs whose X-Forwarded-For is believed */
  long rate_limit;              /* requests per second per identity; 0 off */
  long rate_burst;              /* 0: twice rate_limit */
  char *rate_limit_groups;      /* group:rate/burst,... */
  char *rate_limit_mbps_groups; /* group:Mbit/s,... */
  /* The version policy (server/policy.h, mod/policy.h). */
  char *policy;              /* rules file; "" none */
  char *policy_hook;         /* URL POSTed before a first commit; "" none */
  char *policy_hook_failure; /* closed | open */
  long policy_hook_timeout;  /* seconds */
  char *cooldown_exempt;     /* users, token:NAME and group:NAME entries */
  char *config_file; /* key "config": the file that was read, or NULL */
};

/* Fills every key with its default. Free with config_free. */
int config_init(struct config *c);
/* Frees every string; c may then be re-initialised. NULL-safe. */
void config_free(struct config *c);

/* Sets one key from text ("list_ttl", "30"). Unknown key or bad value:
 * ERR_CONFIG with a one-line reason naming the key and source. */
int config_set(struct config *c, const char *key, const char *value,
               const char *source, struct reason *why);

/* Loads everything in precedence order: defaults, the file named by
 * --config/GOMIRROR_CONFIG (if any), environment (envp, NULL-terminated
 * "K=V" strings), then argv flags. Flags that are not keys ("--help",
 * "--check-config", "--version") are reported through *action (see below)
 * and not treated as errors. A GOMIRROR_* environment variable that names no
 * key is an error (a misspelt one would otherwise be ignored silently). Returns 0 or ERR_CONFIG with a reason. c must come
 * from config_init (the defaults); the sources are layered over it, and
 * after a failure it still holds valid values for config_free. */
enum config_action {
  CONFIG_SERVE = 0,
  CONFIG_HELP,
  CONFIG_CHECK,
  CONFIG_VERSION
};
int config_load(struct config *c, int argc, char **argv, char **envp,
                enum config_action *action, struct reason *why);

/* For subcommands that mix their own arguments with configuration flags:
 * how many entries of argv, from argv[i], one configuration flag takes (1
 * for --key=value, a boolean flag, --help, --check-config, --version; 2 for
 * --key value), or 0 when argv[i] is not a configuration flag. */
int config_flag_span(int argc, char **argv, int i);

/* Semantic checks across keys (storage scheme, listen syntax, ttls >= 0,
 * upstream and sumdb syntax). */
int config_check(const struct config *c, struct reason *why);

/* key's value as config_print shows it (passwords in URLs masked, secrets
 * hidden), into out (truncated to cap). For every log line and reason that
 * names a configured value. Unknown key: "". */
void config_shown(const struct config *c, const char *key, char *out,
                  size_t cap);

/* Prints "key = value" for every key, so that the output read back as a
 * config file gives the same configuration: secrets are printed as
 * comments (set, and hidden), and so is `config` (a file cannot name
 * itself). */
void config_print(const struct config *c, FILE *out);
/* Prints usage: every key with its env var, flag, default and meaning. */
void config_usage(FILE *out);

#endif
