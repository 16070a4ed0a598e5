/* When each stored module version was last downloaded, for garbage
 * collection (gc.h) and the catalog. With meta=redis the hit counters
 * already record it (hash <prefix>{<module>}:last, written by the counters'
 * flusher off the request path). With meta=memory the counts die with the
 * process and another process (gomirror gc) could not read them, so this
 * records it in storage: one small object per version under
 * "_gomirror/lastuse/" (no module path starts with '_'), written by one
 * thread, at most once per version per second. docs/governance.md. */
#ifndef GOMIRROR_SERVER_LASTUSE_H
#define GOMIRROR_SERVER_LASTUSE_H

#include <time.h>

struct lastuse;
struct modreq;
struct server;

#define LASTUSE_PREFIX "_gomirror/lastuse/"

/* Starts the recorder when srv's metadata keeps no access record other
 * processes can read (meta=memory); else *out is NULL (nothing to do).
 * 0 or ERR_NOMEM. */
int lastuse_start(struct server *srv, struct lastuse **out);
/* Writes what is pending and stops the thread. NULL-safe. */
void lastuse_stop(struct lastuse *lu);
/* Notes that m's version was downloaded at `at`. Never blocks on storage;
 * drops the note (and counts it) when more than 16384 versions wait.
 * NULL-safe. */
void lastuse_note(struct lastuse *lu, const struct modreq *m, time_t at);
/* Writes what is pending now (in-process garbage collection). NULL-safe. */
void lastuse_flush(struct lastuse *lu);

/* When the version (escaped forms as in storage keys) was last used: the
 * later of its access record and its commit (the .info's modification
 * time), in *at. 0; ERR_NOT_FOUND when the version is no longer committed;
 * ERR_UNAVAILABLE / ERR_STORAGE when that cannot be told now (garbage
 * collection must then keep the version). */
int lastuse_get(struct server *srv, const char *module, const char *version,
                const char *module_esc, const char *version_esc, time_t *at);
/* Removes the version's access record from storage (garbage collection). */
void lastuse_forget(struct server *srv, const char *module_esc,
                    const char *version_esc);

#endif
