/* gomirror: configuration, start-up in dependency order, and shutdown on
 * SIGTERM/SIGINT after in-flight requests have drained. */
#include "auth/audit.h"
#include "auth/auth.h"
#include "auth/ratelimit.h"
#include "clientaddr.h"
#include "cmd.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/random.h"
#include "counters.h"
#include "fetch.h"
#include "hot.h"
#include "server.h"
#include "storage/meta.h"
#include "storage/storage.h"
#include "sumdb.h"
#include "upstream.h"
#include "vcs.h"

#include <civetweb.h>
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

/* The go-command fetchers: one for `private` patterns, one for `direct` in
 * the upstream chain (any module). Start-up fails if either is needed and
 * the go command is missing. */
static int open_vcs(const struct config *cfg, struct server *srv,
                    struct reason *why) {
  /* Both get GOINSECURE and the HTTP proxy: the first names hosts the
   * operator allows over plain http and holds no secret (what `direct`
   * fetches is still checked against the checksum database), and the
   * second is often the only way out of the network, where an egress
   * policy can be enforced. */
  struct vcs_config vc = {
      .go_binary = cfg->go_binary,
      .timeout_s = cfg->vcs_timeout,
      .workers = (int)cfg->vcs_workers,
      .queue_timeout_s = cfg->vcs_queue_timeout,
      .queue_max = cfg->vcs_queue_max,
      .insecure = cfg->vcs_insecure,
      .scratch_dir = srv->spool_dir,
      .http_proxy = cfg->vcs_http_proxy,
  };
  int rc = 0;
  if (cfg->private_patterns && cfg->private_patterns[0]) {
    struct vcs_config pc = vc;
    pc.private_patterns = cfg->private_patterns;
    pc.netrc_file = cfg->vcs_netrc;
    pc.gitconfig_file = cfg->vcs_gitconfig;
    pc.ssh_key_file = cfg->vcs_ssh_key;
    rc = vcs_new(&pc, &srv->vcs_private, why);
    if (!rc)
      log_info("private modules (%s) come from version control with %s",
               cfg->private_patterns, vcs_go_version(srv->vcs_private));
  }
  /* `direct` fetches whatever module a client names: never with the
   * private credentials, and never from addresses inside the network. */
  if (!rc && upstream_has_direct(srv->up)) {
    struct vcs_config dc = vc;
    dc.private_patterns = "*";
    dc.direct = 1;
    dc.deny_hosts = cfg->vcs_deny_hosts;
    rc = vcs_new(&dc, &srv->vcs_direct, why);
  }
  return rc;
}

static int fail(const struct reason *why, int code) {
  fprintf(stderr, "gomirror: %s\n", reason_text(why, code));
  return 2;
}

/* 1 when listen names a loopback address only. */
static int loopback_only(const char *listen) {
  return strncmp(listen, "127.", 4) == 0 ||
         strncmp(listen, "localhost:", 10) == 0 ||
         strncmp(listen, "[::1]:", 6) == 0;
}

/* Access control, rate limits, the audit log and trusted proxies. */
static int open_access(const struct config *cfg, struct server *srv,
                       struct reason *why) {
  int rc = cidr_list_parse(cfg->trusted_proxies, &srv->trusted, why);
  if (!rc)
    rc = auth_new(cfg, &srv->auth, why);
  if (!rc)
    rc = ratelimit_new(cfg->rate_limit, cfg->rate_burst, cfg->rate_limit_groups,
                       cfg->rate_limit_mbps_groups, srv->meta, &srv->limits,
                       why);
  if (!rc && !ratelimit_active(srv->limits)) {
    ratelimit_free(srv->limits);
    srv->limits = NULL;
  }
  const char *audit = cfg->audit_log;
  if (!strcmp(audit, "auto"))
    audit = srv->auth ? "stdout" : "off";
  if (!rc)
    rc = audit_open(audit, &srv->audit, why);
  if (!rc && random_hex(srv->boot_id, 4))
    rc = reason_set(why, ERR_IO, "the system gave no random bytes");
  if (rc)
    return rc;
  char line[512];
  auth_describe(srv->auth, line, sizeof line);
  log_info("%s", line);
  if (srv->auth && !loopback_only(cfg->listen))
    log_warn("access control is on and gomirror listens on %s: Basic "
             "credentials cross the network in clear unless a TLS proxy "
             "(deploy/haproxy.cfg, an ingress) sits in front",
             cfg->listen);
  if (srv->audit)
    log_info("audit log: %s%s", audit,
             cfg->audit_public ? "" : " (private modules and refusals only)");
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "token") == 0)
    return cmd_token(argc - 1, argv + 1);
  struct config cfg;
  struct reason why = {{0}};
  enum config_action action = CONFIG_SERVE;
  int rc = config_init(&cfg);
  if (rc)
    return fail(&why, rc);
  rc = config_load(&cfg, argc, argv, environ, &action, &why);
  if (!rc && action != CONFIG_HELP)
    rc = config_check(&cfg, &why);
  if (rc) {
    config_free(&cfg);
    return fail(&why, rc);
  }
  if (action == CONFIG_HELP) {
    config_usage(stdout);
    config_free(&cfg);
    return 0;
  }
  if (action == CONFIG_CHECK) {
    config_print(&cfg, stdout);
    config_free(&cfg);
    return 0;
  }
  rc = log_setup(cfg.log_format, cfg.log_level);
  if (rc) {
    config_free(&cfg);
    return fail(&why, rc);
  }

  /* Block the signals in every thread; main waits for them below. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);

  int status = 2;
  struct server srv;
  memset(&srv, 0, sizeof srv);
  srv.cfg = &cfg;
  const char *tmp = getenv("TMPDIR");
  snprintf(srv.spool_dir, sizeof srv.spool_dir, "%s",
           tmp && *tmp ? tmp : "/tmp");

  if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
    reason_set(&why, ERR_CONFIG, "libcurl failed to initialise");
    goto out_config;
  }
  mg_init_library(0);
  rc = storage_open(&cfg, &srv.store, &why);
  if (rc)
    goto out_curl;
  rc = storage_ready(srv.store, &why);
  if (rc)
    goto out_store;
  rc = meta_open(&cfg, &srv.meta, &why);
  if (rc)
    goto out_store;
  rc = upstream_parse(cfg.upstream, cfg.upstream_redirect_hosts,
                      cfg.connect_timeout, cfg.fetch_timeout, &srv.up, &why);
  if (rc)
    goto out_meta;
  rc = sumdb_list_parse(cfg.sumdb, &srv.sumdbs, &why);
  if (rc)
    goto out_up;
  rc = flight_group_new(&srv.flights);
  if (rc)
    goto out_sumdb;
  rc = open_vcs(&cfg, &srv, &why);
  if (rc)
    goto out_vcs;
  rc = hot_new((size_t)cfg.hot_cache_mb << 20, &srv.hot);
  if (rc)
    goto out_flights;
  rc = counters_start(srv.meta, 500, 16384, &srv.counters);
  if (rc)
    goto out_hot;
  rc = open_access(&cfg, &srv, &why);
  if (rc)
    goto out_counters;
  rc = srv.meta->ops->purge_subscribe(srv.meta, h_admin_on_purge, &srv);
  if (rc)
    goto out_counters;
  rc = server_start(&srv, &why);
  if (rc)
    goto out_counters;
  /* The forms --check-config shows: no password of a URL in the log. */
  char meta_shown[512], up_shown[1024];
  config_shown(&cfg, "meta", meta_shown, sizeof meta_shown);
  config_shown(&cfg, "upstream", up_shown, sizeof up_shown);
  log_info("gomirror listening on %s (storage %s, meta %s, upstream %s)",
           cfg.listen, cfg.storage, meta_shown, up_shown);

  int sig = 0;
  for (;;) {
    sigwait(&sigs, &sig);
    if (sig != SIGHUP)
      break;
    /* SIGHUP reopens the audit file, after logrotate has moved it. */
    struct reason hup = {{0}};
    if (audit_reopen(srv.audit, &hup))
      log_error("%s", reason_text(&hup, ERR_IO));
    else
      log_info("received SIGHUP: audit log reopened");
  }
  log_info("received %s: draining in-flight requests",
           sig == SIGTERM ? "SIGTERM" : "SIGINT");
  server_stop(&srv);
  /* Flush the counters while the metadata store is open, then close it
   * before the hot cache goes: its purge subscriber calls into the cache. */
  counters_stop(srv.counters);
  srv.counters = NULL;
  meta_close(srv.meta);
  srv.meta = NULL;
  log_info("stopped");
  status = 0;

out_counters:
  counters_stop(srv.counters);
  auth_free(srv.auth);
  ratelimit_free(srv.limits);
  audit_close(srv.audit);
  cidr_list_free(srv.trusted);
out_hot:
  hot_free(srv.hot);
out_flights:
out_vcs:
  vcs_free(srv.vcs_private);
  vcs_free(srv.vcs_direct);
  flight_group_free(srv.flights);
out_sumdb:
  sumdb_list_free(srv.sumdbs);
out_up:
  upstream_free(srv.up);
out_meta:
  meta_close(srv.meta);
out_store:
  storage_close(srv.store);
out_curl:
  mg_exit_library();
  curl_global_cleanup();
out_config:
  config_free(&cfg);
  if (status)
    return fail(&why, rc ? rc : ERR_CONFIG);
  return 0;
}
