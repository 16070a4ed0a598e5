/* The version policy's grammar and decisions (policy.h): a small line
 * parser (quoted reasons, '#' comments), GOPRIVATE patterns through
 * mod/private.c, semver ranges through mod/semver.c. */
#include "policy.h"

#include "core/err.h"
#include "private.h"
#include "rfc3339.h"
#include "semver.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { K_DENY, K_ALLOW, K_COOLDOWN, K_ONLY, K_KEEP };

static const char *const kind_names[] = {"deny", "allow", "cooldown", "only",
                                         "keep"};

struct rule {
  enum kind kind;
  long line;
  char *pattern; /* GOPRIVATE list; for only, every field joined by ',' */
  char *range;   /* deny, allow, keep */
  long seconds;  /* cooldown */
  char *reason;  /* deny; NULL: none given */
  char *text;    /* the rule as written, without its reason */
};

struct policy_rules {
  struct rule *v;
  size_t n, cap;
};

/* --- durations, times, ranges ------------------------------------------- */

int policy_duration_parse(const char *s, size_t n, long *seconds) {
  if (n < 2)
    return ERR_INVALID;
  long unit;
  switch (s[n - 1]) {
  case 's':
    unit = 1;
    break;
  case 'm':
    unit = 60;
    break;
  case 'h':
    unit = 3600;
    break;
  case 'd':
    unit = 86400;
    break;
  case 'w':
    unit = 7 * 86400;
    break;
  default:
    return ERR_INVALID;
  }
  long v = 0;
  for (size_t i = 0; i + 1 < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return ERR_INVALID;
    v = v * 10 + (s[i] - '0');
    if (v > POLICY_DURATION_MAX)
      return ERR_INVALID;
  }
  if (v > POLICY_DURATION_MAX / unit)
    return ERR_INVALID;
  *seconds = v * unit;
  return 0;
}

void policy_duration_format(long seconds, char *out, size_t cap) {
  static const struct {
    long unit;
    char c;
  } units[] = {{7 * 86400, 'w'}, {86400, 'd'}, {3600, 'h'}, {60, 'm'}};
  for (size_t i = 0; i < sizeof units / sizeof *units; i++)
    if (seconds > 0 && seconds % units[i].unit == 0) {
      snprintf(out, cap, "%ld%c", seconds / units[i].unit, units[i].c);
      return;
    }
  snprintf(out, cap, "%lds", seconds);
}

int policy_time_parse(const char *s, size_t n, time_t *out) {
  return rfc3339_parse(s, n, RFC3339_ANY_CASE, out);
}

void policy_time_format(time_t t, char *out, size_t cap) {
  struct tm tm;
  if (!gmtime_r(&t, &tm) || !strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm))
    snprintf(out, cap, "@%lld", (long long)t);
}

int policy_info_time(const char *body, size_t len, time_t *out) {
  if (!body || len == 0 || len > (1u << 20))
    return ERR_INVALID;
  struct json_tokener *tok = json_tokener_new();
  if (!tok)
    return ERR_NOMEM;
  struct json_object *o = json_tokener_parse_ex(tok, body, (int)len);
  int rc = ERR_INVALID;
  struct json_object *jt;
  if (o && json_tokener_get_error(tok) == json_tokener_success &&
      json_object_is_type(o, json_type_object)) {
    if (!json_object_object_get_ex(o, "Time", &jt))
      rc = ERR_NOT_FOUND;
    else if (json_object_is_type(jt, json_type_string))
      rc = policy_time_parse(json_object_get_string(jt),
                             (size_t)json_object_get_string_len(jt), out);
  }
  json_object_put(o);
  json_tokener_free(tok);
  return rc;
}

/* One comparison of a range: an operator and a valid version. *op gets
 * "<", "<=", ">", ">=", "=" or "!=" ("" reads as "="). */
static int comparison(const char *s, size_t n, char *op, char *v, size_t cap) {
  size_t ol = 0;
  while (ol < n && ol < 2 && strchr("<>=!", s[ol]))
    ol++;
  if (ol == n || n - ol >= cap)
    return ERR_INVALID;
  memcpy(op, s, ol);
  op[ol] = '\0';
  memcpy(v, s + ol, n - ol);
  v[n - ol] = '\0';
  static const char *const ops[] = {"", "<", "<=", ">", ">=", "=", "!="};
  int known = 0;
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
    known |= strcmp(op, ops[i]) == 0;
  if (!known || !semver_is_valid(v))
    return ERR_INVALID;
  return 0;
}

/* Calls fn for every comparison of range[0..n); stops at the first
 * non-zero return. */
static int each_comparison(const char *range, size_t n,
                           int (*fn)(void *, const char *, const char *),
                           void *arg) {
  size_t i = 0;
  while (i <= n) {
    size_t j = i;
    while (j < n && range[j] != ',')
      j++;
    char op[3], v[256];
    if (comparison(range + i, j - i, op, v, sizeof v))
      return ERR_INVALID;
    int rc = fn(arg, op, v);
    if (rc)
      return rc;
    i = j + 1;
  }
  return 0;
}

static int nothing(void *arg, const char *op, const char *v) {
  (void)arg;
  (void)op;
  (void)v;
  return 0;
}

int policy_range_check(const char *s, size_t n, struct reason *why) {
  if (n == 1 && s[0] == '*')
    return 0;
  if (n == 0 || each_comparison(s, n, nothing, NULL))
    return reason_set(why, ERR_INVALID,
                      "bad version range '%.*s' (want *, or comparisons like "
                      "<v1.2.0 or >=v1.0.0,<v2 joined by ',')",
                      (int)(n > 80 ? 80 : n), s);
  return 0;
}

/* 1 when version fails the comparison (each_comparison then stops). */
static int fails(void *arg, const char *op, const char *v) {
  int c = semver_compare(arg, v);
  int ok = !op[0] || !strcmp(op, "=") ? c == 0
           : !strcmp(op, "!=")        ? c != 0
           : !strcmp(op, "<")         ? c < 0
           : !strcmp(op, "<=")        ? c <= 0
           : !strcmp(op, ">")         ? c > 0
                                      : c >= 0;
  return !ok;
}

int policy_range_match(const char *range, size_t n, const char *version) {
  if (n == 1 && range[0] == '*')
    return 1;
  if (n == 0)
    return 0;
  return each_comparison(range, n, fails, (void *)version) == 0;
}

/* --- parsing ------------------------------------------------------------ */

void policy_rules_free(struct policy_rules *r) {
  if (!r)
    return;
  for (size_t i = 0; i < r->n; i++) {
    free(r->v[i].pattern);
    free(r->v[i].range);
    free(r->v[i].reason);
    free(r->v[i].text);
  }
  free(r->v);
  free(r);
}

size_t policy_rules_count(const struct policy_rules *r) {
  return r ? r->n : 0;
}

#define FIELDS_MAX 64

struct field {
  const char *s;
  size_t n;
  int quoted;
};

/* Splits one line into fields: white space separates them, "..." is one
 * field (\" and \\ inside), '#' outside quotes ends the line. 0, or
 * ERR_CONFIG with a reason (no line prefix). The quoted fields are
 * unescaped in place into buf. */
static int split(const char *line, size_t len, struct field *f, size_t *nf,
                 char *buf, struct reason *why) {
  size_t i = 0, k = 0, b = 0;
  while (i < len) {
    char c = line[i];
    if (c == ' ' || c == '\t' || c == '\r') {
      i++;
      continue;
    }
    if (c == '#')
      break;
    if (k == FIELDS_MAX)
      return reason_set(why, ERR_CONFIG, "more than %d fields", FIELDS_MAX);
    if (c == '"') {
      size_t start = b;
      i++;
      for (;;) {
        if (i >= len)
          return reason_set(why, ERR_CONFIG, "unterminated quote");
        c = line[i++];
        if (c == '"')
          break;
        if (c == '\\' && i < len && (line[i] == '"' || line[i] == '\\'))
          c = line[i++];
        if ((unsigned char)c < 0x20 || c == 0x7f)
          return reason_set(why, ERR_CONFIG,
                            "control character inside a quoted reason");
        buf[b++] = c;
      }
      if (i < len && line[i] != ' ' && line[i] != '\t' && line[i] != '\r' &&
          line[i] != '#')
        return reason_set(why, ERR_CONFIG, "text right after a closing quote");
      f[k++] = (struct field){buf + start, b - start, 1};
      continue;
    }
    size_t start = i;
    while (i < len && line[i] != ' ' && line[i] != '\t' && line[i] != '\r' &&
           line[i] != '#') {
      if (line[i] == '"' || (unsigned char)line[i] < 0x20 || line[i] == 0x7f)
        return reason_set(why, ERR_CONFIG, "unexpected %s in '%.*s'",
                          line[i] == '"' ? "quote" : "control character",
                          (int)(i - start + 1 > 60 ? 60 : i - start + 1),
                          line + start);
      i++;
    }
    f[k++] = (struct field){line + start, i - start, 0};
  }
  *nf = k;
  return 0;
}

static char *dup_n(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (p) {
    memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}

/* A module pattern field: GOPRIVATE syntax that private_check accepts. */
static int check_pattern(const struct field *f, struct reason *why) {
  if (f->quoted || f->n == 0 || f->n >= POLICY_TEXT_MAX)
    return reason_set(why, ERR_CONFIG, "bad module pattern");
  char *p = dup_n(f->s, f->n);
  if (!p)
    return reason_set(why, ERR_NOMEM, "out of memory");
  struct reason pwhy = {{0}};
  int rc = private_check(p, &pwhy);
  free(p);
  if (rc)
    return reason_set(why, ERR_CONFIG, "%s", reason_text(&pwhy, rc));
  return 0;
}

static int add_rule(struct policy_rules *r, struct rule *x) {
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 16;
    struct rule *v = realloc(r->v, cap * sizeof *v);
    if (!v)
      return ERR_NOMEM;
    r->v = v;
    r->cap = cap;
  }
  r->v[r->n++] = *x;
  return 0;
}

/* The fields of one line to a rule. 0 (with *x owning its strings), or
 * ERR_CONFIG / ERR_NOMEM with a reason without the line prefix. */
static int build(const struct field *f, size_t nf, struct rule *x,
                 struct reason *why) {
  memset(x, 0, sizeof *x);
  size_t k;
  for (k = 0; k < sizeof kind_names / sizeof *kind_names; k++)
    if (!f[0].quoted && strlen(kind_names[k]) == f[0].n &&
        memcmp(kind_names[k], f[0].s, f[0].n) == 0)
      break;
  if (k == sizeof kind_names / sizeof *kind_names)
    return reason_set(why, ERR_CONFIG,
                      "unknown rule '%.*s' (deny, allow, cooldown, only, keep)",
                      (int)(f[0].n > 40 ? 40 : f[0].n), f[0].s);
  x->kind = (enum kind)k;
  const char *name = kind_names[k];
  int rc;
  switch (x->kind) {
  case K_DENY:
  case K_ALLOW:
  case K_KEEP: {
    size_t want = x->kind == K_DENY ? 4 : 3;
    if (nf < 3 || nf > want || (nf == 4 && !f[3].quoted))
      return reason_set(why, ERR_CONFIG, "%s needs PATTERN RANGE%s", name,
                        x->kind == K_DENY ? " [\"reason\"]" : "");
    if ((rc = check_pattern(&f[1], why)))
      return rc;
    struct reason rwhy = {{0}};
    if (f[2].quoted || f[2].n >= POLICY_TEXT_MAX ||
        policy_range_check(f[2].s, f[2].n, &rwhy))
      return reason_set(why, ERR_CONFIG, "%s",
                        rwhy.text[0] ? rwhy.text : "bad version range");
    if (nf == 4 && (f[3].n == 0 || f[3].n >= POLICY_TEXT_MAX))
      return reason_set(why, ERR_CONFIG, "the reason must be 1 to %d bytes",
                        POLICY_TEXT_MAX - 1);
    x->pattern = dup_n(f[1].s, f[1].n);
    x->range = dup_n(f[2].s, f[2].n);
    if (nf == 4 && !(x->reason = dup_n(f[3].s, f[3].n)))
      return reason_set(why, ERR_NOMEM, "out of memory");
    break;
  }
  case K_COOLDOWN:
    if (nf != 3 || f[2].quoted)
      return reason_set(why, ERR_CONFIG, "cooldown needs PATTERN DURATION");
    if ((rc = check_pattern(&f[1], why)))
      return rc;
    if (policy_duration_parse(f[2].s, f[2].n, &x->seconds))
      return reason_set(why, ERR_CONFIG,
                        "bad duration '%.*s' (a number and s, m, h, d or w, "
                        "e.g. 7d)",
                        (int)(f[2].n > 40 ? 40 : f[2].n), f[2].s);
    x->pattern = dup_n(f[1].s, f[1].n);
    break;
  case K_ONLY: {
    if (nf < 2)
      return reason_set(why, ERR_CONFIG, "only needs one or more PATTERNs");
    size_t total = 0;
    for (size_t i = 1; i < nf; i++) {
      if ((rc = check_pattern(&f[i], why)))
        return rc;
      total += f[i].n + 1;
    }
    if (!(x->pattern = malloc(total)))
      return reason_set(why, ERR_NOMEM, "out of memory");
    size_t o = 0;
    for (size_t i = 1; i < nf; i++) {
      memcpy(x->pattern + o, f[i].s, f[i].n);
      o += f[i].n;
      x->pattern[o++] = i + 1 < nf ? ',' : '\0';
    }
    break;
  }
  }
  if (!x->pattern ||
      ((x->kind == K_DENY || x->kind == K_ALLOW || x->kind == K_KEEP) &&
       !x->range))
    return reason_set(why, ERR_NOMEM, "out of memory");
  /* The rule as written, fields joined by one space, reason left out. */
  char text[POLICY_TEXT_MAX];
  size_t o = 0;
  for (size_t i = 0; i < nf && !f[i].quoted; i++) {
    int w = snprintf(text + o, sizeof text - o, "%s%.*s", i ? " " : "",
                     (int)f[i].n, f[i].s);
    if (w < 0 || (size_t)w >= sizeof text - o) {
      o = sizeof text - 1;
      break;
    }
    o += (size_t)w;
  }
  text[o] = '\0';
  if (!(x->text = dup_n(text, o)))
    return reason_set(why, ERR_NOMEM, "out of memory");
  return 0;
}

static void rule_free(struct rule *x) {
  free(x->pattern);
  free(x->range);
  free(x->reason);
  free(x->text);
}

int policy_rules_parse(const char *text, size_t len, const char *name,
                       struct policy_rules **out, struct reason *why) {
  *out = NULL;
  struct policy_rules *r = calloc(1, sizeof *r);
  char *buf = malloc(len + 1); /* unescaped quoted fields of one line */
  if (!r || !buf) {
    free(r);
    free(buf);
    return reason_set(why, ERR_NOMEM, "out of memory");
  }
  const char *p = text, *end = text + len;
  long lineno = 0;
  int rc = 0;
  while (p < end && !rc) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = (size_t)((nl ? nl : end) - p);
    lineno++;
    struct field f[FIELDS_MAX];
    size_t nf = 0;
    struct reason lwhy = {{0}};
    rc = memchr(p, '\0', n) ? reason_set(&lwhy, ERR_CONFIG, "a NUL byte")
                            : split(p, n, f, &nf, buf, &lwhy);
    struct rule x;
    memset(&x, 0, sizeof x);
    if (!rc && nf > 0) {
      if (r->n >= POLICY_RULES_MAX)
        rc = reason_set(&lwhy, ERR_CONFIG, "more than %d rules",
                        POLICY_RULES_MAX);
      else
        rc = build(f, nf, &x, &lwhy);
      x.line = lineno;
      if (!rc && add_rule(r, &x))
        rc = reason_set(&lwhy, ERR_NOMEM, "out of memory");
      if (rc)
        rule_free(&x);
    }
    if (rc)
      reason_set(why, rc, "%s:%ld: %s", name, lineno, reason_text(&lwhy, rc));
    p = nl ? nl + 1 : end;
  }
  free(buf);
  if (rc) {
    policy_rules_free(r);
    return rc;
  }
  *out = r;
  return 0;
}

/* --- decisions ------------------------------------------------------------ */

static int matches(const struct rule *x, const char *module,
                   const char *version) {
  if (private_match(x->pattern, module) != 1)
    return 0;
  return !x->range || policy_range_match(x->range, strlen(x->range), version);
}

static void fill(struct policy_match *m, enum policy_verdict v,
                 const struct rule *x) {
  if (!m)
    return;
  memset(m, 0, sizeof *m);
  m->verdict = v;
  if (!x)
    return;
  m->line = x->line;
  m->cooldown_s = x->kind == K_COOLDOWN ? x->seconds : 0;
  snprintf(m->rule, sizeof m->rule, "%s", x->text);
  if (x->kind == K_DENY)
    snprintf(m->reason, sizeof m->reason, "%s",
             x->reason ? x->reason : "denied by policy");
}

enum policy_verdict policy_rules_decide(const struct policy_rules *r,
                                        const char *module, const char *version,
                                        struct policy_match *m) {
  const struct rule *cool = NULL;
  for (size_t i = 0; r && i < r->n; i++) {
    const struct rule *x = &r->v[i];
    if (x->kind == K_DENY || x->kind == K_ALLOW) {
      if (matches(x, module, version)) {
        enum policy_verdict v = x->kind == K_DENY ? POLICY_DENY : POLICY_ALLOW;
        fill(m, v, x);
        return v;
      }
    } else if (x->kind == K_COOLDOWN && !cool &&
               private_match(x->pattern, module) == 1) {
      cool = x;
    }
  }
  /* A cooldown of 0s holds nothing back. */
  if (cool && cool->seconds > 0) {
    fill(m, POLICY_COOLDOWN, cool);
    return POLICY_COOLDOWN;
  }
  fill(m, POLICY_ALLOW, cool);
  return POLICY_ALLOW;
}

int policy_rules_only(const struct policy_rules *r, const char *module,
                      long *line) {
  long first = 0;
  for (size_t i = 0; r && i < r->n; i++) {
    const struct rule *x = &r->v[i];
    if (x->kind != K_ONLY)
      continue;
    if (private_match(x->pattern, module) == 1)
      return 1;
    if (!first)
      first = x->line;
  }
  if (line)
    *line = first;
  return first == 0;
}

int policy_rules_keep(const struct policy_rules *r, const char *module,
                      const char *version, long *line) {
  for (size_t i = 0; r && i < r->n; i++) {
    const struct rule *x = &r->v[i];
    if (x->kind == K_KEEP && matches(x, module, version)) {
      if (line)
        *line = x->line;
      return 1;
    }
  }
  return 0;
}
