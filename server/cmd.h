/* gomirror's subcommands besides serving: each is a thin adapter over the
 * libraries (the module pipeline, storage), run from main() with its own
 * arguments, over the same configuration as serve (file, environment and
 * flags). */
#ifndef GOMIRROR_SERVER_CMD_H
#define GOMIRROR_SERVER_CMD_H

struct config;
struct reason;
struct server;

/* `gomirror token new --name NAME --groups G,G`; argv[0] is "token".
 * Returns the exit status. */
int cmd_token(int argc, char **argv);
/* `gomirror warm [--jobs N] [FILE|MODULE@VERSION]...` (cmd_warm.c). */
int cmd_warm(int argc, char **argv);
/* `gomirror export --out FILE ...` and `gomirror import FILE` (bundle). */
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
/* `gomirror sumdb keygen NAME [--out FILE]` (cmd_sumdb.c). */
int cmd_sumdb(int argc, char **argv);
/* `gomirror policy check MODULE@VERSION...`, `gomirror gc --unused-for D
 * ...` and `gomirror catalog` (cmd_governance.c). */
int cmd_policy(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_catalog(int argc, char **argv);

/* A fatal error, in the log's format once it is known to be JSON (so a log
 * pipeline sees it), else as one plain line on stderr. Returns 2. */
int cmd_fail(const struct config *cfg, const struct reason *why, int code);

/* One of a subcommand's own options. */
struct cmd_opt {
  const char *name;  /* "jobs" matches --jobs N and --jobs=N */
  int has_value;     /* 0: a switch (*value becomes "true" when given) */
  const char **value; /* where the value goes; untouched when absent */
};

/* Parses a subcommand's argv (argv[0] is its name): its options (opts,
 * ended by a {NULL} entry), its positional arguments (into *args, *nargs,
 * allocated; free with free()), and configuration flags, which are loaded
 * with the file and the environment as for serve, then checked. --help
 * prints usage and returns 1 with *status 0; an error prints one line and
 * returns 1 with *status 2; 0 means go on (cfg loaded: config_free it). */
int cmd_config(int argc, char **argv, const char *usage,
               const struct cmd_opt *opts, char ***args, int *nargs,
               struct config *cfg, int *status);

/* Opens the server's parts for a tool (no listening): storage must answer
 * now (a tool does not wait for it), metadata is used when it answers.
 * Sets up logging (to stderr) and libcurl. 0 or ERR_* with why. */
int cmd_open(struct server *srv, const struct config *cfg, struct reason *why);
void cmd_close(struct server *srv);

#endif
