/* Access control on the request path, between CivetWeb and the handlers:
 * who asks (auth/), whether they may read a module, whether they are over
 * their rate limit, and the audit line each request leaves. Every refusal
 * here is sent before any storage, metadata, upstream or git access. */
#ifndef GOMIRROR_SERVER_ACCESS_H
#define GOMIRROR_SERVER_ACCESS_H

struct req;

/* Fills r->request_id (a trusted proxy's X-Request-Id, or a new one) and
 * r->client (see clientaddr.h). Cheap; runs for every request. */
void access_begin(struct req *r);

/* Identifies the client (access control on) and takes a rate-limit token
 * (limits on). 1: go on; 0: a refusal was sent (401 with WWW-Authenticate,
 * 429 with Retry-After, or 503 when the identity provider is down). */
int access_admit(struct req *r);

/* Whether r's identity may read module. Records module, version and the
 * audit action ("download", "list", ...) in r. 1: go on; 0: 401 (anonymous)
 * or 403 (one line naming the user and the rule) was sent. */
int access_module(struct req *r, const char *module, const char *version,
                  const char *action);

/* For endpoints about no one module (checksum-database tiles and latest,
 * /stats, /metrics with metrics_auth): 1 when some rule allows r's
 * identity anything; else 401/403 was sent. */
int access_any(struct req *r);

/* 1 when r's identity is not anonymous; else a 401 was sent. */
int access_identified(struct req *r);

/* Whether the request carries the admin_token as a Bearer token; if so r's
 * identity becomes the admin token's. Admin requests skip access_admit. */
int access_admin_token(struct req *r);
/* For /admin/...: 1 when r presented admin_token or its identity is in
 * auth_admins; else 404 (admin endpoints off), 401 or 403 was sent. */
int access_admin(struct req *r);

/* 1 when module is private (config key `private`). */
int access_is_private(const struct req *r, const char *module);

/* Writes r's audit line, if r should leave one. */
void access_finish(struct req *r, double duration_ms);

#endif
