/* The audit log (`audit_log`): one JSON object per line for every access
 * that matters (private modules, denials, failed logins, rate limits, admin
 * actions, and public downloads unless audit_public=false), to stdout or a
 * file opened append-only. Never holds a password, token or Authorization
 * value: its fields are names, paths and numbers. */
#ifndef GOMIRROR_AUTH_AUDIT_H
#define GOMIRROR_AUTH_AUDIT_H

struct reason;
struct audit;

struct audit_event {
  const char *request_id;
  const char *user;   /* "anonymous" when none */
  const char *source; /* identity_source_name() */
  const char *client; /* the client's address */
  const char *action; /* download, list, latest, sumdb, denied, ... */
  const char *path;   /* the request path, as sent */
  const char *module; /* "" when the request is about no module */
  const char *version;
  int status;
  long long bytes;
  double duration_ms;
  const char *cache;  /* hit, miss, stale or - */
  const char *detail; /* e.g. the rule that denied; may be NULL */
};

/* spec: "stdout", "off" (*out = NULL, no error) or a file path, opened
 * O_APPEND|O_CREAT (mode 0640). 0, or ERR_CONFIG naming the file. */
int audit_open(const char *spec, struct audit **out, struct reason *why);
void audit_close(struct audit *a); /* NULL-safe */
/* Writes one line; NULL a does nothing. Thread-safe (one write(2)). */
void audit_write(struct audit *a, const struct audit_event *e);
/* Reopens a file target (after logrotate moved it); stdout is left as is. */
int audit_reopen(struct audit *a, struct reason *why);

#endif
