/* Access-rule parsing and first-match evaluation. */
#include "rules.h"

#include "core/buf.h"
#include "core/err.h"
#include "identity.h"
#include "mod/private.h"
#include "textfile.h"

#include <stdlib.h>
#include <string.h>

enum who_kind { WHO_USER, WHO_GROUP, WHO_TOKEN, WHO_AUTH, WHO_ANON, WHO_ANY };

struct rule {
  int allow;
  enum who_kind who;
  char name[128]; /* for user:, group:, token: */
  long line;
  char who_text[RULE_TEXT_MAX];
  char patterns[RULE_TEXT_MAX];
};

struct rules {
  struct rule *v;
  size_t n;
};

void rules_free(struct rules *r) {
  if (!r)
    return;
  free(r->v);
  free(r);
}

size_t rules_count(const struct rules *r) {
  return r ? r->n : 0;
}

static int push(struct rules *r, size_t *cap, const struct rule *x) {
  struct rule *v = array_grow(r->v, cap, r->n, sizeof *v);
  if (!v)
    return ERR_NOMEM;
  r->v = v;
  r->v[r->n++] = *x;
  return 0;
}

static int word(const char *f, size_t n, const char *w) {
  return strlen(w) == n && memcmp(f, w, n) == 0;
}

/* Parses who[0..n) into x; 0 or -1. */
static int parse_who(const char *f, size_t n, struct rule *x) {
  static const struct {
    const char *prefix;
    enum who_kind kind;
  } named[] = {
      {"user:", WHO_USER}, {"group:", WHO_GROUP}, {"token:", WHO_TOKEN}};
  if (word(f, n, "*"))
    x->who = WHO_ANY;
  else if (word(f, n, "authenticated"))
    x->who = WHO_AUTH;
  else if (word(f, n, "anonymous"))
    x->who = WHO_ANON;
  else {
    size_t i = 0;
    for (; i < 3; i++) {
      size_t pl = strlen(named[i].prefix);
      if (n > pl && memcmp(f, named[i].prefix, pl) == 0) {
        if (!auth_name_ok(f + pl, n - pl))
          return -1;
        x->who = named[i].kind;
        memcpy(x->name, f + pl, n - pl);
        x->name[n - pl] = '\0';
        break;
      }
    }
    if (i == 3)
      return -1;
  }
  memcpy(x->who_text, f, n);
  x->who_text[n] = '\0';
  return 0;
}

int rules_parse(const char *text, size_t len, const char *name,
                struct rules **out, struct reason *why) {
  *out = NULL;
  struct rules *r = calloc(1, sizeof *r);
  if (!r)
    return ERR_NOMEM;
  size_t cap = 0;
  struct line_iter it;
  line_iter_init(&it, text, len);
  const char *s;
  size_t n;
  int rc = 0;
  while (!rc && line_next(&it, &s, &n)) {
    const char *hash = memchr(s, '#', n);
    if (hash)
      n = (size_t)(hash - s);
    const char *f[4];
    size_t fl[4], nf = 0;
    while (nf < 4 && field_next(&s, &n, &f[nf], &fl[nf]))
      nf++;
    if (nf == 0)
      continue;
    struct rule x;
    memset(&x, 0, sizeof x);
    x.line = it.lineno;
    if (nf != 3) {
      rc = reason_set(why, ERR_CONFIG,
                      "%.100s:%ld: expected '<allow|deny> <who> <modules>'",
                      name, it.lineno);
      break;
    }
    if (word(f[0], fl[0], "allow"))
      x.allow = 1;
    else if (!word(f[0], fl[0], "deny")) {
      rc = reason_set(why, ERR_CONFIG,
                      "%.100s:%ld: the action must be allow or deny", name,
                      it.lineno);
      break;
    }
    if (fl[1] >= RULE_TEXT_MAX || parse_who(f[1], fl[1], &x)) {
      rc = reason_set(why, ERR_CONFIG,
                      "%.100s:%ld: who must be user:NAME, group:NAME, "
                      "token:NAME, authenticated, anonymous or *",
                      name, it.lineno);
      break;
    }
    if (fl[2] >= RULE_TEXT_MAX) {
      rc = reason_set(why, ERR_CONFIG, "%.100s:%ld: module patterns too long",
                      name, it.lineno);
      break;
    }
    memcpy(x.patterns, f[2], fl[2]);
    x.patterns[fl[2]] = '\0';
    struct reason pwhy = {{0}};
    if (private_check(x.patterns, &pwhy)) {
      rc = reason_set(why, ERR_CONFIG, "%.100s:%ld: %s", name, it.lineno,
                      pwhy.text);
      break;
    }
    rc = push(r, &cap, &x);
  }
  if (rc) {
    rules_free(r);
    return rc;
  }
  *out = r;
  return 0;
}

int rules_default(struct rules **out) {
  static const char text[] = "allow authenticated *\n";
  return rules_parse(text, sizeof text - 1, "(default rules)", out, NULL);
}

static int who_matches(const struct rule *x, const struct identity *id) {
  int anon = id->source == AUTH_ANONYMOUS;
  switch (x->who) {
  case WHO_ANY:
    return 1;
  case WHO_AUTH:
    return !anon;
  case WHO_ANON:
    return anon;
  case WHO_USER:
    return (id->source == AUTH_HTPASSWD || id->source == AUTH_LDAP) &&
           strcmp(id->name, x->name) == 0;
  case WHO_TOKEN:
    return id->source == AUTH_TOKEN && strcmp(id->name, x->name) == 0;
  case WHO_GROUP:
    return !anon && identity_in_group(id, x->name);
  }
  return 0;
}

int rules_decide(const struct rules *r, const struct identity *id,
                 const char *module, struct rule_match *m) {
  for (size_t i = 0; r && i < r->n; i++) {
    const struct rule *x = &r->v[i];
    if (!who_matches(x, id) || private_match(x->patterns, module) != 1)
      continue;
    if (m) {
      m->allow = x->allow;
      m->line = x->line;
      memcpy(m->who, x->who_text, sizeof m->who);
      memcpy(m->patterns, x->patterns, sizeof m->patterns);
    }
    return x->allow;
  }
  if (m) {
    memset(m, 0, sizeof *m);
  }
  return 0;
}

/* 1 when an entry of patterns is a lone "*" (a trailing / is dropped): it
 * matches every module path. */
static int matches_all(const char *patterns) {
  for (const char *p = patterns; *p;) {
    size_t n = strcspn(p, ",");
    if (p[0] == '*' && (n == 1 || (n == 2 && p[1] == '/')))
      return 1;
    p += n;
    if (*p == ',')
      p++;
  }
  return 0;
}

int rules_allow_any(const struct rules *r, const struct identity *id) {
  for (size_t i = 0; r && i < r->n; i++) {
    const struct rule *x = &r->v[i];
    if (!who_matches(x, id))
      continue;
    if (x->allow)
      return 1;
    if (matches_all(x->patterns))
      return 0; /* denies id every module: no later rule can allow one */
  }
  return 0;
}
