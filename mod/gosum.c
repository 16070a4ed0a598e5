/* Reading the module versions a project needs from its go.sum, its go.mod
 * (x/mod modfile's lexical rules, enough of them for require directives) or
 * plain module@version lines, checked with the x/mod rules of modpath.c and
 * each listed once. */
#include "gosum.h"

#include "core/buf.h"
#include "core/err.h"
#include "modpath.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gosum_init(struct gosum_list *l, size_t max) {
  memset(l, 0, sizeof *l);
  l->max = max == 0 || max > GOSUM_MAX ? GOSUM_MAX : max;
}

void gosum_free(struct gosum_list *l) {
  if (!l)
    return;
  for (size_t i = 0; i < l->n; i++)
    free(l->v[i].module);
  free(l->v);
  free(l->slots);
  size_t max = l->max;
  memset(l, 0, sizeof *l);
  l->max = max;
}

/* --- the index: FNV-1a over "module@version", linear probing ----------- */

static uint64_t hash_mv(const char *module, const char *version) {
  uint64_t h = 1469598103934665603ull;
  for (const char *s = module; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  h = (h ^ '@') * 1099511628211ull;
  for (const char *s = version; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* The slot holding module@version, or the empty slot where it would go. */
static size_t *slot_for(const struct gosum_list *l, const char *module,
                        const char *version) {
  size_t mask = l->nslots - 1;
  for (size_t i = (size_t)hash_mv(module, version) & mask;;
       i = (i + 1) & mask) {
    size_t *s = &l->slots[i];
    if (*s == 0)
      return s;
    const struct gosum_entry *e = &l->v[*s - 1];
    if (strcmp(e->module, module) == 0 && strcmp(e->version, version) == 0)
      return s;
  }
}

/* Keeps the index at most half full, so probes stay short and end. */
static int index_reserve(struct gosum_list *l) {
  if ((l->n + 1) * 2 <= l->nslots)
    return 0;
  size_t n = l->nslots ? l->nslots * 2 : 64;
  size_t *slots = calloc(n, sizeof *slots);
  if (!slots)
    return ERR_NOMEM;
  free(l->slots);
  l->slots = slots;
  l->nslots = n;
  for (size_t i = 0; i < l->n; i++)
    *slot_for(l, l->v[i].module, l->v[i].version) = i + 1;
  return 0;
}

int gosum_add(struct gosum_list *l, const char *module, const char *version,
              int want_zip, struct reason *why) {
  size_t ml = strlen(module), vl = strlen(version);
  if (ml > MODPATH_MAX)
    return reason_set(why, ERR_INVALID,
                      "invalid module path: longer than %d bytes", MODPATH_MAX);
  if (vl > VERSION_MAX)
    return reason_set(why, ERR_INVALID, "invalid version: longer than %d bytes",
                      VERSION_MAX);
  /* The canonical check covers the path too (and its /vN suffix). A
   * version that cannot belong to the path is a 404 to a client (not
   * here), but in a list it is a mistake like any other. */
  int rc = modpath_check_path(module, why);
  if (!rc)
    rc = modpath_check_version(module, version, 1, why);
  if (rc)
    return ERR_INVALID;
  if (l->nslots) {
    size_t *s = slot_for(l, module, version);
    if (*s) {
      l->v[*s - 1].want_zip |= !!want_zip;
      return 0;
    }
  }
  if (l->n >= l->max)
    return reason_set(why, ERR_TOO_LARGE, "more than %zu module versions",
                      l->max);
  if (index_reserve(l))
    return reason_set(why, ERR_NOMEM, "out of memory");
  struct gosum_entry *v = array_grow(l->v, &l->cap, l->n, sizeof *l->v);
  if (!v)
    return reason_set(why, ERR_NOMEM, "out of memory");
  l->v = v;
  char *mem = malloc(ml + vl + 2);
  if (!mem)
    return reason_set(why, ERR_NOMEM, "out of memory");
  memcpy(mem, module, ml + 1);
  memcpy(mem + ml + 1, version, vl + 1);
  struct gosum_entry *e = &l->v[l->n];
  e->module = mem;
  e->version = mem + ml + 1;
  e->want_zip = !!want_zip;
  *slot_for(l, e->module, e->version) = ++l->n;
  return 0;
}

/* --- lines ---------------------------------------------------------------- */

/* More tokens than any line we know has. */
#define MAX_TOKENS 8

struct tok {
  const char *p;
  size_t n;
  int quoted; /* "..." or `...`: never a parenthesis or a comment */
};

static int is_space(char c) {
  return c == ' ' || c == '\t';
}

static int tok_is(const struct tok *t, const char *s) {
  return !t->quoted && t->n == strlen(s) && memcmp(t->p, s, t->n) == 0;
}

/* Splits line[0..n) at blanks into t (at most MAX_TOKENS + 1, so "too many"
 * shows). '(' and ')' stand alone (modfile's lexer does the same; no valid
 * token holds one), a quoted string is one token without its quotes, and a
 * token starting with "//" or '#' ends the line. The count, or -1 for an
 * unterminated quote. */
static int tokenize(const char *line, size_t n, struct tok *t) {
  int k = 0;
  size_t i = 0;
  while (i < n && k <= MAX_TOKENS) {
    if (is_space(line[i])) {
      i++;
      continue;
    }
    char c = line[i];
    if (c == '#' || (c == '/' && i + 1 < n && line[i + 1] == '/'))
      break;
    if (c == '"' || c == '`') {
      const char *end = memchr(line + i + 1, c, n - i - 1);
      if (!end)
        return -1;
      t[k++] = (struct tok){line + i + 1, (size_t)(end - line - i - 1), 1};
      i = (size_t)(end - line) + 1;
      continue;
    }
    if (c == '(' || c == ')') {
      t[k++] = (struct tok){line + i, 1, 0};
      i++;
      continue;
    }
    size_t s = i;
    while (i < n && !is_space(line[i]) && line[i] != '(' && line[i] != ')' &&
           line[i] != '"' && line[i] != '`')
      i++;
    t[k++] = (struct tok){line + s, i - s, 0};
  }
  return k;
}

/* In go.mod context a comment may follow a token without a blank
 * ("v1.2.3//indirect"); module paths and versions never hold "//". */
static int cut_comment(struct tok *t, int k) {
  for (int i = 0; i < k; i++) {
    if (t[i].quoted)
      continue;
    const char *c = memmem(t[i].p, t[i].n, "//", 2);
    if (c) {
      t[i].n = (size_t)(c - t[i].p);
      return t[i].n ? i + 1 : i;
    }
  }
  return k;
}

/* The directives of a go.mod file (x/mod modfile, up to Go 1.25). Module
 * paths need a dot in their first element, so none is ever one of these. */
static int is_directive(const struct tok *t) {
  static const char *const verbs[] = {
      "module",  "go",      "toolchain", "godebug", "require",
      "replace", "exclude", "retract",   "tool",    "ignore"};
  for (size_t i = 0; i < sizeof verbs / sizeof *verbs; i++)
    if (tok_is(t, verbs[i]))
      return 1;
  return 0;
}

/* "<alg>:<base64>", e.g. "h1:2A7...=". */
static int is_hash(const struct tok *t) {
  size_t i = 0;
  while (i < t->n && ((t->p[i] >= 'a' && t->p[i] <= 'z') ||
                      (t->p[i] >= '0' && t->p[i] <= '9')))
    i++;
  if (i == 0 || i + 1 >= t->n || t->p[i] != ':')
    return 0;
  for (i++; i < t->n; i++) {
    char c = t->p[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
          (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '='))
      return 0;
  }
  return 1;
}

struct parse {
  struct gosum_list *l;
  const char *name;
  size_t line;
  struct reason *why;
};

/* Fails the current line: "<name>:<line>: <text>". */
static int line_fail(struct parse *ps, int code, const char *text) {
  return reason_set(ps->why, code, "%.100s:%zu: %s", ps->name, ps->line, text);
}

/* Adds module and version given as tokens (not NUL-terminated). */
static int add_tok(struct parse *ps, const struct tok *m, const char *v,
                   size_t vn, int want_zip) {
  char module[MODPATH_MAX + 1], version[VERSION_MAX + 1];
  if (m->n > MODPATH_MAX)
    return line_fail(ps, ERR_INVALID, "invalid module path: too long");
  if (vn > VERSION_MAX)
    return line_fail(ps, ERR_INVALID, "invalid version: too long");
  memcpy(module, m->p, m->n);
  module[m->n] = '\0';
  memcpy(version, v, vn);
  version[vn] = '\0';
  struct reason r = {{0}};
  int rc = gosum_add(ps->l, module, version, want_zip, &r);
  return rc ? line_fail(ps, rc, reason_text(&r, rc)) : 0;
}

static const char WANT[] =
    "not a go.sum line (\"<module> <version>[/go.mod] h1:<hash>\"), a go.mod "
    "require or a \"<module>@<version>\" line";

enum block { BLOCK_NONE, BLOCK_REQUIRE, BLOCK_OTHER };

int gosum_parse(struct gosum_list *l, const char *name, const char *text,
                size_t len, struct reason *why) {
  struct parse ps = {l, name ? name : "input", 0, why};
  enum block block = BLOCK_NONE;
  size_t block_line = 0;
  if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
    text += 3;
    len -= 3;
  }
  size_t off = 0;
  while (off < len) {
    const char *line = text + off;
    const char *nl = memchr(line, '\n', len - off);
    size_t n = nl ? (size_t)(nl - line) : len - off;
    off += n + (nl != NULL);
    ps.line++;
    if (n && line[n - 1] == '\r')
      n--;
    for (size_t i = 0; i < n; i++) {
      unsigned char c = (unsigned char)line[i];
      if ((c < 0x20 && c != '\t') || c == 0x7f) {
        char msg[48];
        snprintf(msg, sizeof msg, "control byte 0x%02x", c);
        return line_fail(&ps, ERR_INVALID, msg);
      }
    }
    struct tok t[MAX_TOKENS + 1];
    int k = tokenize(line, n, t);
    if (k < 0)
      return line_fail(&ps, ERR_INVALID, "unterminated quoted string");
    if (k == 0)
      continue;
    /* Every branch below that reads tokens wants an exact count, so a line
     * with too many (k is at most MAX_TOKENS + 1) fails there. */
    int rc = 0;
    if (block != BLOCK_NONE) {
      if (tok_is(&t[0], ")")) {
        if (k != 1)
          return line_fail(&ps, ERR_INVALID, "unexpected text after ')'");
        block = BLOCK_NONE;
      } else if (block == BLOCK_REQUIRE) {
        k = cut_comment(t, k);
        if (k != 2)
          return line_fail(&ps, ERR_INVALID,
                           "want \"<module> <version>\" in a require block");
        rc = add_tok(&ps, &t[0], t[1].p, t[1].n, 1);
      }
    } else if (is_directive(&t[0])) {
      int req = tok_is(&t[0], "require");
      if (k >= 2 && tok_is(&t[1], "(")) {
        if (k == 3 && tok_is(&t[2], ")"))
          continue; /* an empty block */
        if (k != 2)
          return line_fail(&ps, ERR_INVALID, "unexpected text after '('");
        block = req ? BLOCK_REQUIRE : BLOCK_OTHER;
        block_line = ps.line;
      } else if (req) {
        k = cut_comment(t, k);
        if (k != 3)
          return line_fail(&ps, ERR_INVALID,
                           "want \"require <module> <version>\"");
        rc = add_tok(&ps, &t[1], t[2].p, t[2].n, 1);
      }
    } else if (k == 1) {
      const char *at = memchr(t[0].p, '@', t[0].n);
      if (!at)
        return line_fail(&ps, ERR_INVALID, WANT);
      struct tok m = {t[0].p, (size_t)(at - t[0].p), 0};
      rc = add_tok(&ps, &m, at + 1, t[0].n - m.n - 1, 1);
    } else if (k == 3 && !t[0].quoted && !t[1].quoted && is_hash(&t[2])) {
      size_t vn = t[1].n;
      int want_zip = 1;
      if (vn > 7 && memcmp(t[1].p + vn - 7, "/go.mod", 7) == 0) {
        vn -= 7;
        want_zip = 0;
      }
      rc = add_tok(&ps, &t[0], t[1].p, vn, want_zip);
    } else {
      return line_fail(&ps, ERR_INVALID, WANT);
    }
    if (rc)
      return rc;
  }
  if (block != BLOCK_NONE) {
    ps.line = block_line;
    return line_fail(&ps, ERR_INVALID, "block not closed with ')'");
  }
  return 0;
}
