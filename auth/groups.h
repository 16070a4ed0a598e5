/* Group membership from an Apache AuthGroupFile (`auth_groups`): lines
 * `group: user1 user2 ...`. Members are user names or token names; the
 * groups found here are merged with those LDAP and the token file give. */
#ifndef GOMIRROR_AUTH_GROUPS_H
#define GOMIRROR_AUTH_GROUPS_H

#include <stddef.h>

struct reason;
struct groups;
struct identity;

/* Parses the file's text (name for messages). 0 with *out (free with
 * groups_free), or ERR_CONFIG with "FILE:LINE: ...". A group may appear on
 * several lines; its members add up, as in Apache. */
int groups_parse(const char *text, size_t len, const char *name,
                 struct groups **out, struct reason *why);
void groups_free(struct groups *g); /* NULL-safe */
/* Distinct groups with at least one member. */
size_t groups_count(const struct groups *g);

/* Adds to id every group that lists id's name. NULL g does nothing. */
void groups_apply(const struct groups *g, struct identity *id);

#endif
