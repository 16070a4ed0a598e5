/* Direct fetches of private modules from version control, by running the
 * real go command (`go mod download -json`, `go list -m -versions -json`) in
 * a fresh scratch GOPATH with a clean environment built here, so private
 * paths never reach a public proxy or checksum database and the results are
 * exactly what a developer's go command would compute. */
#ifndef GOMIRROR_SERVER_VCS_H
#define GOMIRROR_SERVER_VCS_H

#include <stddef.h>

struct buf;
struct reason;

struct vcs_config {
  const char *go_binary;        /* "go" (looked up on PATH) or a path */
  const char *private_patterns; /* GOPRIVATE syntax; only these are fetched */
  long timeout_s;               /* per go command; <= 0 means 300 */
  int workers;                  /* go commands at once; <= 0 means 1 */
  long queue_timeout_s;         /* wait for a free worker; <= 0 means 30 */
  long queue_max;               /* calls that may wait: 0 none, < 0 no bound */
  int direct;                   /* 1: `direct`, fetching for any client: refuses
                                   IP literals, local names and deny_hosts */
  const char *deny_hosts;       /* with direct: comma-separated host names
                                   refused with their subdomains; "" or NULL */
  const char *netrc_file;       /* "" or NULL: none */
  const char *gitconfig_file;   /* "" or NULL: an empty one per call */
  const char *ssh_key_file;     /* "" or NULL: none */
  const char *insecure;         /* GOINSECURE value, "" or NULL: unset */
  const char *scratch_dir;      /* parent of temp dirs; "" -> $TMPDIR, /tmp */
  const char *http_proxy;       /* "" or NULL: none (tests' go-get trick) */
};

struct vcs;

/* Copies c (the caller's strings may go away), finds the go command and
 * runs `go version`. ERR_CONFIG with a reason when go is missing or broken,
 * when the netrc, gitconfig or ssh key cannot be read, when a private
 * pattern or a deny_hosts entry is malformed; *out is then NULL. Free with
 * vcs_free. */
int vcs_new(const struct vcs_config *c, struct vcs **out, struct reason *why);
/* NULL-safe. No call may be in flight. */
void vcs_free(struct vcs *v);
/* The first line of `go version`, owned by v. */
const char *vcs_go_version(const struct vcs *v);

struct vcs_download {
  char version[257]; /* canonical: a tag or the pseudo-version it resolved */
  char info_path[4096], mod_path[4096], zip_path[4096]; /* inside dir */
  char dir[4096]; /* scratch dir to remove; "" when nothing to remove */
};

/* `go mod download -json module@query` (query: a version, branch, commit,
 * "latest", ...). On success the three files exist until
 * vcs_download_done(out). On failure out->dir is "" (everything is already
 * removed) and the return is ERR_FORBIDDEN (module is not private: nothing
 * ran), ERR_INVALID (module or query unsafe to pass), ERR_NOT_FOUND (unknown
 * repository or revision, no matching versions), ERR_UPSTREAM_TIMEOUT,
 * ERR_UPSTREAM (anything else, e.g. bad credentials), ERR_BAD_UPSTREAM_DATA
 * or ERR_IO; why gets one line with credentials scrubbed. With direct, a
 * module on a host vcs_check_host refuses is ERR_FORBIDDEN and nothing runs.
 * While `workers` go commands run, waits up to queue_timeout_s for one to
 * finish, then fails with ERR_UNAVAILABLE; so does a call that finds
 * queue_max calls already waiting, at once. */
int vcs_download(struct vcs *v, const char *module, const char *query,
                 struct vcs_download *out, struct reason *why);
/* Removes d->dir and clears it; safe to call twice or on a failed d. */
void vcs_download_done(struct vcs_download *d);

/* `go list -m -versions -json module`: out (reset first) gets the tagged
 * versions, one per line with a '\n' after each, "" for a module without
 * tags. Same errors as vcs_download; out is empty on failure. */
int vcs_list(struct vcs *v, const char *module, struct buf *out,
             struct reason *why);

/* Whether the `direct` fetcher may fetch module (its host is the first
 * path element): 0, or ERR_FORBIDDEN with one line in why for an IP
 * literal or a numeric-looking host (anything inet_aton or inet_pton
 * accepts, or a last label of digits or 0x-hex, as URL parsers read them),
 * localhost and the other names that only resolve inside a network
 * (*.localhost, *.localdomain, *.local, *.internal, *.home.arpa), or a host
 * equal to or under an entry of deny_hosts (comma-separated, spaces and a
 * leading "*." or "." ignored, case-insensitive; NULL or "" for none).
 * ERR_INVALID for an empty host. */
int vcs_check_host(const char *module, const char *deny_hosts,
                   struct reason *why);

/* Copies in to out (always NUL-terminated, truncated to cap) with every
 * literal occurrence of each non-empty secret replaced by "***" (also in
 * %-encoded form) and the password of every "scheme://user:password@" URL
 * replaced by "***". Newlines and tabs are kept: callers join lines. */
void vcs_scrub(const char *in, const char *const *secrets, size_t nsecrets,
               char *out, size_t cap);

/* Credentials to scrub, each its own malloc'd string. Start from {0}. */
struct vcs_secrets {
  char **v;
  size_t n, cap;
};
/* Adds the "password" and "account" values of a netrc text (tokens may be
 * "quoted"; macdef bodies are skipped). 0 or ERR_NOMEM (s keeps what it
 * had). */
int vcs_secrets_netrc(struct vcs_secrets *s, const char *netrc_text);
/* Adds the password of every "scheme://user:password@" URL in text, and a
 * lone user name that is not ssh's ("https://TOKEN@host"), e.g. from a git
 * config's insteadOf rewrites. 0 or ERR_NOMEM. */
int vcs_secrets_urls(struct vcs_secrets *s, const char *text);
/* Frees the strings and the array; s is left empty. NULL-safe. */
void vcs_secrets_free(struct vcs_secrets *s);

#endif
