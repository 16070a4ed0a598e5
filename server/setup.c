/* Building a struct server from the configuration, in dependency order, and
 * taking it apart again; and the same checks without side effects on the
 * network, for --check-config. */
#include "setup.h"

#include "auth/audit.h"
#include "auth/auth.h"
#include "auth/ratelimit.h"
#include "clientaddr.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/random.h"
#include "counters.h"
#include "fetch.h"
#include "hot.h"
#include "lastuse.h"
#include "orgsumdb.h"
#include "seen.h"
#include "policy.h"
#include "region.h"
#include "server.h"
#include "storage/meta.h"
#include "storage/storage.h"
#include "sumdb.h"
#include "upstream.h"
#include "vcs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The go-command fetchers: one for `private` patterns, one for `direct` in
 * the upstream chain (any module). Fails if either is needed and the go
 * command or a credentials file is missing. */
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
  /* With private_upstream another gomirror fetches private paths: this
   * region needs no go command and no credentials for them (region.h). */
  if (cfg->private_patterns && cfg->private_patterns[0] &&
      !(cfg->private_upstream && cfg->private_upstream[0])) {
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

/* 1 when listen names a loopback address only. */
static int loopback_only(const char *listen) {
  return strncmp(listen, "127.", 4) == 0 ||
         strncmp(listen, "localhost:", 10) == 0 ||
         strncmp(listen, "[::1]:", 6) == 0;
}

/* Access control, rate limits, the audit log and trusted proxies. */
static int open_access(const struct config *cfg, struct server *srv,
                       int check, struct reason *why) {
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
  /* The check does not create the audit file. */
  if (!rc && !check)
    rc = audit_open(audit, &srv->audit, why);
  if (!rc && random_hex(srv->boot_id, 4))
    rc = reason_set(why, ERR_IO, "the system gave no random bytes");
  if (rc || check)
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

int server_open(struct server *srv, const struct config *cfg, int check,
                struct reason *why) {
  memset(srv, 0, sizeof *srv);
  srv->cfg = cfg;
  const char *tmp = getenv("TMPDIR");
  snprintf(srv->spool_dir, sizeof srv->spool_dir, "%s",
           tmp && *tmp ? tmp : "/tmp");
  int rc = storage_open(cfg, &srv->store, why);
  if (!rc)
    rc = check ? meta_check(cfg, why) : meta_open(cfg, &srv->meta, why);
  if (!rc)
    rc = upstream_parse(cfg->upstream, cfg->upstream_redirect_hosts,
                        cfg->connect_timeout, cfg->fetch_timeout, &srv->up,
                        why);
  if (!rc)
    rc = region_setup(cfg, srv, why);
  if (!rc)
    rc = sumdb_list_parse(cfg->sumdb, &srv->sumdbs, why);
  if (!rc)
    rc = orgsumdb_open(cfg, srv->store, check ? NULL : srv->meta,
                       &srv->orgsumdb, why);
  if (!rc && sumdb_mode(cfg) == SUMDB_STRICT)
    for (size_t i = 0; i < srv->sumdbs->n && !rc; i++)
      if (!srv->sumdbs->v[i].has_key)
        rc = reason_set(why, ERR_CONFIG,
                        "sumdb entry '%s' has no verifier key, so nothing it "
                        "answers can be proven: write it as name+hash+key=url "
                        "(the key GOSUMDB names), or set sumdb_verify=warn",
                        srv->sumdbs->v[i].name);
  if (!rc)
    rc = flight_group_new(&srv->flights);
  if (!rc)
    rc = open_vcs(cfg, srv, why);
  if (!rc)
    rc = hot_new((size_t)cfg->hot_cache_mb << 20, &srv->hot);
  if (!rc)
    rc = seen_new(4096, &srv->verified);
  if (!rc && !check)
    rc = counters_start(srv->meta, 500, 16384, &srv->counters);
  if (!rc)
    rc = policy_open(cfg, &srv->policy, why);
  if (!rc && !check && lastuse_start(srv, &srv->lastuse))
    rc = reason_set(why, ERR_NOMEM, "out of memory");
  if (!rc)
    rc = open_access(cfg, srv, check, why);
  if (!rc && !check)
    rc = srv->meta->ops->purge_subscribe(srv->meta, h_admin_on_purge, srv);
  if (rc)
    server_close(srv);
  return rc;
}

void server_close(struct server *srv) {
  /* Flush the counters while the metadata store is open, then close it
   * before the hot cache goes: its purge subscriber calls into the cache. */
  counters_stop(srv->counters);
  srv->counters = NULL;
  lastuse_stop(srv->lastuse); /* its last records go to storage */
  srv->lastuse = NULL;
  policy_close(srv->policy);
  meta_close(srv->meta);
  srv->meta = NULL;
  auth_free(srv->auth);
  ratelimit_free(srv->limits);
  audit_close(srv->audit);
  cidr_list_free(srv->trusted);
  hot_free(srv->hot);
  seen_free(srv->verified);
  vcs_free(srv->vcs_private);
  vcs_free(srv->vcs_direct);
  flight_group_free(srv->flights);
  sumdb_list_free(srv->sumdbs);
  orgsumdb_free(srv->orgsumdb);
  upstream_free(srv->up);
  upstream_free(srv->up_private);
  storage_close(srv->store);
  memset(srv, 0, sizeof *srv);
}
