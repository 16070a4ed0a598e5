/* What every subcommand shares: argument splitting, configuration, fatal
 * errors, and opening the server's parts without serving. */
#include "cmd.h"

#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "server.h"
#include "setup.h"
#include "storage/storage.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

int cmd_fail(const struct config *cfg, const struct reason *why, int code) {
  if (cfg && cfg->log_format && strcmp(cfg->log_format, "json") == 0 &&
      log_setup("json", "error") == 0)
    log_error("gomirror: %s", reason_text(why, code));
  else
    fprintf(stderr, "gomirror: %s\n", reason_text(why, code));
  return 2;
}

/* The option argv[i] names, or NULL; *inline_value is what follows '='. */
static const struct cmd_opt *opt_find(const struct cmd_opt *opts,
                                      const char *a,
                                      const char **inline_value) {
  *inline_value = NULL;
  if (strncmp(a, "--", 2) != 0)
    return NULL;
  a += 2;
  const char *eq = strchr(a, '=');
  size_t n = eq ? (size_t)(eq - a) : strlen(a);
  for (const struct cmd_opt *o = opts; o && o->name; o++)
    if (strlen(o->name) == n && strncmp(o->name, a, n) == 0) {
      *inline_value = eq ? eq + 1 : NULL;
      return o;
    }
  return NULL;
}

int cmd_config(int argc, char **argv, const char *usage,
               const struct cmd_opt *opts, char ***args, int *nargs,
               struct config *cfg, int *status) {
  struct reason why = {{0}};
  *args = NULL;
  *nargs = 0;
  *status = 2;
  char **cargv = calloc((size_t)argc + 1, sizeof *cargv);
  char **pos = calloc((size_t)argc + 1, sizeof *pos);
  if (!cargv || !pos || config_init(cfg)) {
    free(cargv);
    free(pos);
    fprintf(stderr, "gomirror: out of memory\n");
    return 1;
  }
  int nc = 0, np = 0, help = 0;
  cargv[nc++] = argv[0];
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *iv;
    const struct cmd_opt *o = opt_find(opts, a, &iv);
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      help = 1;
    } else if (o) {
      if (!o->has_value) {
        *o->value = "true";
      } else if (iv) {
        *o->value = iv;
      } else if (i + 1 < argc) {
        *o->value = argv[++i];
      } else {
        fprintf(stderr, "gomirror %s: --%s needs a value\n", argv[0], o->name);
        goto fail;
      }
    } else if (strcmp(a, "--check-config") == 0 ||
               strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
      fprintf(stderr, "gomirror %s: %s is for serve\n", argv[0], a);
      goto fail;
    } else {
      int span = config_flag_span(argc, argv, i);
      if (span == 0 && strncmp(a, "--", 2) == 0 && a[2]) {
        fprintf(stderr, "gomirror %s: unknown flag %.80s (see gomirror %s --help)\n",
                argv[0], a, argv[0]);
        goto fail;
      }
      if (span == 0) {
        pos[np++] = argv[i];
      } else {
        for (int k = 0; k < span; k++)
          cargv[nc++] = argv[i + k];
        i += span - 1;
      }
    }
  }
  if (help) {
    fputs(usage, stdout);
    printf("\nThe configuration keys are serve's: gomirror --help lists them.\n");
    *status = 0;
    goto fail;
  }
  enum config_action action;
  int rc = config_load(cfg, nc, cargv, environ, &action, &why);
  if (!rc)
    rc = config_check(cfg, &why);
  if (!rc)
    rc = log_setup(cfg->log_format, cfg->log_level);
  if (rc) {
    *status = cmd_fail(cfg, &why, rc);
    goto fail;
  }
  free(cargv);
  *args = pos;
  *nargs = np;
  return 0;
fail:
  free(cargv);
  free(pos);
  config_free(cfg);
  return 1;
}

int cmd_open(struct server *srv, const struct config *cfg,
             struct reason *why) {
  if (curl_global_init(CURL_GLOBAL_DEFAULT))
    return reason_set(why, ERR_CONFIG, "libcurl failed to initialise");
  int rc = server_open(srv, cfg, 0, why);
  if (rc) {
    curl_global_cleanup();
    return rc;
  }
  rc = storage_ready(srv->store, why);
  if (rc) {
    server_close(srv);
    curl_global_cleanup();
  }
  return rc;
}

void cmd_close(struct server *srv) {
  server_close(srv);
  curl_global_cleanup();
}
