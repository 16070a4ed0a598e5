/* The version policy (config key `policy`): which module versions may be
 * served, a cooldown that holds back fresh releases, an allow-list of the
 * modules fetched from upstream, and the versions garbage collection keeps.
 * Pure: it parses the file's text and decides; no I/O (fuzzed).
 *
 *   deny      PATTERN  RANGE     ["reason"]
 *   allow     PATTERN  RANGE
 *   cooldown  PATTERN  DURATION
 *   only      PATTERN...
 *   keep      PATTERN  RANGE
 *
 * PATTERN is GOPRIVATE syntax (mod/private.h), RANGE `*` or comparisons
 * joined by ',' (`<v0.17.0`, `>=v1.2.0,<v1.3.0`, `v1.4.2`), DURATION a
 * number and a unit (`30s`, `90m`, `12h`, `7d`, `2w`). '#' outside quotes
 * starts a comment. */
#ifndef GOMIRROR_MOD_POLICY_H
#define GOMIRROR_MOD_POLICY_H

#include <stddef.h>
#include <time.h>

struct reason;
struct policy_rules;

#define POLICY_TEXT_MAX 256 /* a rule as written, a reason; with the NUL */
#define POLICY_RULES_MAX 100000
/* Durations up to 100 years: seconds stay far from LONG_MAX and time_t
 * sums cannot overflow. */
#define POLICY_DURATION_MAX (100L * 366 * 86400)

enum policy_verdict {
  POLICY_ALLOW = 0, /* no rule, or an allow rule: served */
  POLICY_DENY,      /* a deny rule: never served, listed or resolved */
  POLICY_COOLDOWN   /* served once published cooldown_s ago */
};

struct policy_match {
  enum policy_verdict verdict;
  long line;                    /* the deciding rule; 0: no rule matched */
  long cooldown_s;              /* POLICY_COOLDOWN: how long it holds */
  char reason[POLICY_TEXT_MAX]; /* POLICY_DENY: the rule's reason, or a
                                   default one */
  char rule[POLICY_TEXT_MAX];   /* the rule as written (kind, pattern,
                                   range or duration; no reason) */
};

/* Parses a policy file's text (name is used in messages). 0 with *out
 * (free with policy_rules_free), or ERR_CONFIG with "NAME:LINE: ..." and
 * *out NULL; ERR_NOMEM. */
int policy_rules_parse(const char *text, size_t len, const char *name,
                       struct policy_rules **out, struct reason *why);
void policy_rules_free(struct policy_rules *r); /* NULL-safe */
size_t policy_rules_count(const struct policy_rules *r);

/* What the rules say about module@version. The deny and allow rules are
 * read first, top to bottom, and the first that matches decides; a version
 * none of them matches gets the first matching cooldown rule; a version no
 * rule matches is allowed. So an allow rule exempts from a cooldown
 * wherever it stands, and a cooldown never lets a denied version through.
 * Fills *m (may be NULL) and returns the verdict. NULL r: POLICY_ALLOW. */
enum policy_verdict policy_rules_decide(const struct policy_rules *r,
                                        const char *module, const char *version,
                                        struct policy_match *m);

/* 1 when module may be fetched from upstream: there is no `only` rule, or
 * one of their patterns matches. 0 otherwise, with *line (may be NULL) the
 * first only rule's line. */
int policy_rules_only(const struct policy_rules *r, const char *module,
                      long *line);

/* 1 when a keep rule covers module@version (*line gets the first), else 0. */
int policy_rules_keep(const struct policy_rules *r, const char *module,
                      const char *version, long *line);

/* A duration: digits and one unit of s, m, h, d, w ("180d"), at most
 * POLICY_DURATION_MAX. 0 with *seconds, or ERR_INVALID. */
int policy_duration_parse(const char *s, size_t n, long *seconds);
/* seconds as the largest unit that divides it ("7d", "36h", "90s"). */
void policy_duration_format(long seconds, char *out, size_t cap);

/* A version range (see above): 0, or ERR_INVALID with a reason. */
int policy_range_check(const char *s, size_t n, struct reason *why);
/* 1 when version is in the range, 0 when not or when the range is
 * malformed. */
int policy_range_match(const char *range, size_t n, const char *version);

/* An RFC 3339 date-time as Go writes time.Time in JSON
 * ("2024-05-01T10:00:00Z", fractions and offsets allowed) to Unix seconds.
 * 0, or ERR_INVALID. */
int policy_time_parse(const char *s, size_t n, time_t *out);
/* The "Time" of a .info body (JSON). 0 with *out; ERR_NOT_FOUND when the
 * body has no Time; ERR_INVALID when the body or the Time is malformed. */
int policy_info_time(const char *body, size_t len, time_t *out);
/* t as "2024-05-01T10:00:00Z" into out (cap >= 21). */
void policy_time_format(time_t t, char *out, size_t cap);

#endif
