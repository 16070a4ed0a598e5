/* Access rules (`auth_rules`): lines `<allow|deny> <who> <modules>`, the
 * first line whose who and modules both match decides; no match denies.
 * who is user:NAME, group:NAME, token:NAME, authenticated, anonymous or *;
 * modules is a GOPRIVATE-syntax pattern list, matched exactly as the go
 * command matches GOPRIVATE (mod/private.h). Pure: no I/O; fuzzed. */
#ifndef GOMIRROR_AUTH_RULES_H
#define GOMIRROR_AUTH_RULES_H

#include <stddef.h>

struct reason;
struct rules;
struct identity;

#define RULE_TEXT_MAX 256

struct rule_match {
  int allow;                    /* 1 allow, 0 deny */
  long line;                    /* line in the file; 0: no rule matched */
  char who[RULE_TEXT_MAX];      /* as written, e.g. "group:payments" */
  char patterns[RULE_TEXT_MAX]; /* as written, e.g. "git.corp/pay/..." */
};

/* Parses the file's text (name for messages). 0 with *out (free with
 * rules_free), or ERR_CONFIG with "FILE:LINE: ...". A '#' starts a comment
 * anywhere on a line. */
int rules_parse(const char *text, size_t len, const char *name,
                struct rules **out, struct reason *why);
/* The rules when no file is given: authenticated users read everything,
 * anonymous users nothing. */
int rules_default(struct rules **out);
void rules_free(struct rules *r); /* NULL-safe */
size_t rules_count(const struct rules *r);

/* Decides whether id may read module. Returns 1 (allow) or 0 (deny) and
 * fills *m (which may be NULL) with the deciding rule. */
int rules_decide(const struct rules *r, const struct identity *id,
                 const char *module, struct rule_match *m);
/* 1 when some allow rule applies to id for some module and is not shadowed
 * by an earlier deny rule for id over every module ("*"): whether id may
 * use the endpoints that are not about one module (checksum-database
 * tiles, /stats). */
int rules_allow_any(const struct rules *r, const struct identity *id);

#endif
