/* AuthGroupFile parsing. Kept as parsed (group, member) pairs: the file is
 * small and is consulted only when a credential is first verified, never on
 * a cached request. */
#include "groups.h"

#include "core/buf.h"
#include "core/err.h"
#include "identity.h"
#include "textfile.h"

#include <stdlib.h>
#include <string.h>

struct member {
  char *group, *user;
};

struct groups {
  struct member *v;
  size_t n, ngroups;
};

void groups_free(struct groups *g) {
  if (!g)
    return;
  for (size_t i = 0; i < g->n; i++) {
    free(g->v[i].group);
    free(g->v[i].user);
  }
  free(g->v);
  free(g);
}

size_t groups_count(const struct groups *g) {
  return g ? g->ngroups : 0;
}

static int add(struct groups *g, size_t *cap, const char *group, size_t gl,
               const char *user, size_t ul) {
  struct member *v = array_grow(g->v, cap, g->n, sizeof *v);
  if (!v)
    return ERR_NOMEM;
  g->v = v;
  char *gs = strndup(group, gl), *us = strndup(user, ul);
  if (!gs || !us) {
    free(gs);
    free(us);
    return ERR_NOMEM;
  }
  g->v[g->n].group = gs;
  g->v[g->n].user = us;
  g->n++;
  return 0;
}

int groups_parse(const char *text, size_t len, const char *name,
                 struct groups **out, struct reason *why) {
  *out = NULL;
  struct groups *g = calloc(1, sizeof *g);
  if (!g)
    return ERR_NOMEM;
  size_t cap = 0;
  struct line_iter it;
  line_iter_init(&it, text, len);
  const char *s;
  size_t n;
  int rc = 0;
  while (!rc && line_next(&it, &s, &n)) {
    const char *colon = memchr(s, ':', n);
    size_t gl = colon ? (size_t)(colon - s) : 0;
    while (gl && (s[gl - 1] == ' ' || s[gl - 1] == '\t'))
      gl--;
    if (!colon || !auth_name_ok(s, gl)) {
      rc = reason_set(why, ERR_CONFIG,
                      "%.100s:%ld: expected 'group: user user ...' with a "
                      "group name of letters, digits or ._@-+",
                      name, it.lineno);
      break;
    }
    const char *rest = colon + 1;
    size_t rl = n - (size_t)(rest - s);
    const char *f;
    size_t fl;
    size_t first = g->n;
    while (!rc && field_next(&rest, &rl, &f, &fl)) {
      if (!auth_name_ok(f, fl))
        rc = reason_set(why, ERR_CONFIG,
                        "%.100s:%ld: member names are letters, digits or "
                        "._@-+",
                        name, it.lineno);
      else
        rc = add(g, &cap, s, gl, f, fl);
    }
    /* A group on several lines is counted once. */
    int seen = g->n == first;
    for (size_t i = 0; !seen && i < first; i++)
      seen = strncmp(g->v[i].group, s, gl) == 0 && g->v[i].group[gl] == '\0';
    g->ngroups += !seen;
  }
  if (rc) {
    groups_free(g);
    return rc;
  }
  *out = g;
  return 0;
}

void groups_apply(const struct groups *g, struct identity *id) {
  if (!g || !id->name[0])
    return;
  for (size_t i = 0; i < g->n; i++)
    if (strcmp(g->v[i].user, id->name) == 0)
      identity_add_groups(id, g->v[i].group);
}
