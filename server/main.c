/* gomirror: the command line, start-up (waiting for storage when it is not
 * there yet), signals (SIGHUP re-reads what may change, SIGTERM drains) and
 * shutdown. Building the server's parts is server/setup.c's. */
#include "auth/audit.h"
#include "auth/auth.h"
#include "cmd.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "counters.h"
#include "lastuse.h"
#include "policy.h"
#include "server.h"
#include "setup.h"
#include "storage/storage.h"

#include <civetweb.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef GOMIRROR_VERSION
#define GOMIRROR_VERSION "0"
#endif

extern char **environ;

/* Everything start-up checks except the network, then the configuration. */
static int check_config(const struct config *cfg, struct reason *why) {
  /* Nothing here may log at info level: the output is the configuration. */
  log_setup(cfg->log_format, "error");
  struct server srv;
  int rc = server_open(&srv, cfg, 1, why);
  if (rc)
    return rc;
  server_close(&srv);
  config_print(cfg, stdout);
  return 0;
}

/* SIGHUP: what may have changed on disk without a restart. */
static void reload(struct server *srv) {
  struct reason why = {{0}};
  if (audit_reopen(srv->audit, &why))
    log_error("%s", reason_text(&why, ERR_IO));
  if (srv->auth)
    auth_reload(srv->auth);
  policy_reload(srv->policy);
  log_info("received SIGHUP: audit log reopened%s%s; version-control "
           "credentials are read by every fetch; S3 and Redis credentials "
           "need a restart",
           srv->auth ? ", access-control files re-read" : "",
           srv->policy ? ", policy re-read" : "");
}

/* Waits for the storage to answer (readiness says "waiting for storage"
 * meanwhile), up to startup_wait seconds (0: as long as it takes), handling
 * signals. 0 when ready; 1 when a SIGTERM/SIGINT came first; ERR_* with
 * why when the store refused (a wrong secret, no bucket) or time ran out. */
static int wait_for_storage(struct server *srv, const sigset_t *sigs,
                            struct reason *why) {
  long limit = srv->cfg->startup_wait;
  time_t start = time(NULL);
  long backoff_ms = 500;
  log_warn("waiting for storage: %s", reason_text(why, ERR_STORAGE));
  for (;;) {
    struct timespec ts = {backoff_ms / 1000, (backoff_ms % 1000) * 1000000L};
    int sig = sigtimedwait(sigs, NULL, &ts);
    if (sig == SIGHUP)
      reload(srv);
    else if (sig > 0)
      return 1;
    struct reason now = {{0}};
    int rc = storage_ready(srv->store, &now);
    if (!rc) {
      log_info("storage is ready after %lds", (long)(time(NULL) - start));
      return 0;
    }
    if (rc == ERR_CONFIG)
      return reason_set(why, ERR_CONFIG, "%s", reason_text(&now, rc));
    if (limit > 0 && time(NULL) - start >= limit)
      return reason_set(why, ERR_STORAGE,
                        "storage did not answer within startup_wait (%lds): "
                        "%s",
                        limit, reason_text(&now, rc));
    if (backoff_ms < 5000)
      backoff_ms *= 2;
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && argv[1][0] != '-') {
    const char *c = argv[1];
    if (strcmp(c, "token") == 0)
      return cmd_token(argc - 1, argv + 1);
    if (strcmp(c, "warm") == 0)
      return cmd_warm(argc - 1, argv + 1);
    if (strcmp(c, "export") == 0)
      return cmd_export(argc - 1, argv + 1);
    if (strcmp(c, "import") == 0)
      return cmd_import(argc - 1, argv + 1);
    if (strcmp(c, "sumdb") == 0)
      return cmd_sumdb(argc - 1, argv + 1);
    if (strcmp(c, "policy") == 0)
      return cmd_policy(argc - 1, argv + 1);
    if (strcmp(c, "gc") == 0)
      return cmd_gc(argc - 1, argv + 1);
    if (strcmp(c, "catalog") == 0)
      return cmd_catalog(argc - 1, argv + 1);
    if (strcmp(c, "serve") != 0) {
      fprintf(stderr,
              "gomirror: unknown command '%.80s' (serve, warm, export, "
              "import, token, sumdb, policy, gc, catalog; see gomirror "
              "--help)\n",
              c);
      return 2;
    }
    argv[1] = argv[0]; /* serve: the rest are its flags */
    argc--;
    argv++;
  }
  struct config cfg;
  struct reason why = {{0}};
  enum config_action action = CONFIG_SERVE;
  int rc = config_init(&cfg);
  if (rc)
    return cmd_fail(NULL, &why, rc);
  rc = config_load(&cfg, argc, argv, environ, &action, &why);
  if (!rc && action != CONFIG_HELP && action != CONFIG_VERSION)
    rc = config_check(&cfg, &why);
  if (!rc && action == CONFIG_HELP)
    config_usage(stdout);
  if (!rc && action == CONFIG_VERSION)
    printf("gomirror %s\n", GOMIRROR_VERSION);
  if (!rc && action == CONFIG_CHECK) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = check_config(&cfg, &why);
    curl_global_cleanup();
  }
  if (rc || action != CONFIG_SERVE) {
    int status = rc ? cmd_fail(&cfg, &why, rc) : 0;
    config_free(&cfg);
    return status;
  }
  rc = log_setup(cfg.log_format, cfg.log_level);
  if (rc) {
    int status = cmd_fail(&cfg, &why, rc);
    config_free(&cfg);
    return status;
  }

  /* Block the signals in every thread; main waits for them below. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);

  if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
    reason_set(&why, ERR_CONFIG, "libcurl failed to initialise");
    int status = cmd_fail(&cfg, &why, ERR_CONFIG);
    config_free(&cfg);
    return status;
  }
  mg_init_library(0);
  struct server srv;
  int status = 0;
  rc = server_open(&srv, &cfg, 0, &why);
  if (rc)
    goto out;
  /* A store that refuses (wrong secret, no bucket) stops start-up; one
   * that does not answer yet (MinIO still starting) is waited for, with
   * the server up so probes see "waiting for storage". */
  rc = storage_ready(srv.store, &why);
  if (rc == ERR_CONFIG)
    goto out_close;
  if (rc)
    atomic_store(&srv.starting, 1);
  int waiting = rc != 0;
  rc = server_start(&srv, &why);
  if (rc)
    goto out_close;
  /* The forms --check-config shows: no password of a URL in the log. */
  char meta_shown[512], up_shown[1024];
  config_shown(&cfg, "meta", meta_shown, sizeof meta_shown);
  config_shown(&cfg, "upstream", up_shown, sizeof up_shown);
  log_info("gomirror %s listening on %s (storage %s, meta %s, upstream %s)",
           GOMIRROR_VERSION, cfg.listen, cfg.storage, meta_shown, up_shown);
  int sig = 0;
  if (waiting) {
    rc = wait_for_storage(&srv, &sigs, &why);
    atomic_store(&srv.starting, 0);
    if (rc == 1) {
      rc = 0;
      sig = SIGTERM;
    } else if (rc) {
      server_stop(&srv);
      goto out_close;
    }
  }
  while (!sig) {
    sigwait(&sigs, &sig);
    if (sig == SIGHUP) {
      reload(&srv);
      sig = 0;
    }
  }
  log_info("received %s: draining", sig == SIGINT ? "SIGINT" : "SIGTERM");
  if (server_stop(&srv)) {
    /* Requests still hold CivetWeb's threads: flush the counts and leave
     * without freeing what they use. */
    counters_stop(srv.counters);
    lastuse_flush(srv.lastuse);
    log_info("stopped");
    _exit(0);
  }
  log_info("stopped");

out_close:
  server_close(&srv);
out:
  mg_exit_library();
  curl_global_cleanup();
  if (rc)
    status = cmd_fail(&cfg, &why, rc);
  config_free(&cfg);
  return status;
}
