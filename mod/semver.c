/* Semantic versions with Go's rules, ported from golang.org/x/mod/semver and
 * module/pseudo.go, plus the @v/list merging the proxy does. Everything works
 * on (pointer, length) slices so list bodies need no copying. */
#include "semver.h"

#include "core/buf.h"
#include "core/err.h"

#include <stdlib.h>
#include <string.h>

/* Parsed slices of one version string; mirrors x/mod semver.parsed. */
struct sv {
  const char *major, *minor, *patch;
  size_t majorn, minorn, patchn;
  const char *pre; /* includes the leading '-'; NULL when absent */
  size_t pren;
  const char *build; /* includes the leading '+'; NULL when absent */
  size_t buildn;
  int short_form; /* "v1" or "v1.2": valid but not canonical */
};

static int is_digit(char c) {
  return c >= '0' && c <= '9';
}

static int is_ident(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) ||
         c == '-';
}

/* x/mod parseInt: digits, no leading zero unless the number is 0. */
static int parse_int(const char *v, size_t n, size_t *i, const char **t,
                     size_t *tn) {
  size_t s = *i;
  if (s >= n || !is_digit(v[s]))
    return 0;
  size_t e = s + 1;
  while (e < n && is_digit(v[e]))
    e++;
  if (v[s] == '0' && e - s != 1)
    return 0;
  *t = v + s;
  *tn = e - s;
  *i = e;
  return 1;
}

/* A numeric identifier with a leading zero, which semver forbids. */
static int is_bad_num(const char *v, size_t n) {
  size_t i = 0;
  while (i < n && is_digit(v[i]))
    i++;
  return i == n && i > 1 && v[0] == '0';
}

static int parse_pre(const char *v, size_t n, size_t *i) {
  size_t k = *i + 1, start = k;
  while (k < n && v[k] != '+') {
    if (!is_ident(v[k]) && v[k] != '.')
      return 0;
    if (v[k] == '.') {
      if (start == k || is_bad_num(v + start, k - start))
        return 0;
      start = k + 1;
    }
    k++;
  }
  if (start == k || is_bad_num(v + start, k - start))
    return 0;
  *i = k;
  return 1;
}

static int parse_build(const char *v, size_t n, size_t *i) {
  size_t k = *i + 1, start = k;
  while (k < n) {
    if (!is_ident(v[k]) && v[k] != '.')
      return 0;
    if (v[k] == '.') {
      if (start == k)
        return 0;
      start = k + 1;
    }
    k++;
  }
  if (start == k)
    return 0;
  *i = k;
  return 1;
}

/* x/mod semver.parse over a slice. Returns 1 when valid. */
static int sv_parse(const char *v, size_t n, struct sv *p) {
  memset(p, 0, sizeof *p);
  if (!v || n == 0 || v[0] != 'v')
    return 0;
  size_t i = 1;
  if (!parse_int(v, n, &i, &p->major, &p->majorn))
    return 0;
  if (i == n) {
    p->minor = p->patch = "0";
    p->minorn = p->patchn = 1;
    p->short_form = 1;
    return 1;
  }
  if (v[i] != '.')
    return 0;
  i++;
  if (!parse_int(v, n, &i, &p->minor, &p->minorn))
    return 0;
  if (i == n) {
    p->patch = "0";
    p->patchn = 1;
    p->short_form = 1;
    return 1;
  }
  if (v[i] != '.')
    return 0;
  i++;
  if (!parse_int(v, n, &i, &p->patch, &p->patchn))
    return 0;
  if (i < n && v[i] == '-') {
    size_t s = i;
    if (!parse_pre(v, n, &i))
      return 0;
    p->pre = v + s;
    p->pren = i - s;
  }
  if (i < n && v[i] == '+') {
    size_t s = i;
    if (!parse_build(v, n, &i))
      return 0;
    p->build = v + s;
    p->buildn = i - s;
  }
  return i == n;
}

static int slice_eq(const char *a, size_t an, const char *b, size_t bn) {
  return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

/* x/mod compareInt: numbers without leading zeros compare by length first. */
static int cmp_int(const char *x, size_t xn, const char *y, size_t yn) {
  if (xn != yn)
    return xn < yn ? -1 : 1;
  int c = memcmp(x, y, xn);
  return c < 0 ? -1 : c > 0;
}

static int all_digits(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!is_digit(s[i]))
      return 0;
  return 1;
}

/* x/mod comparePrerelease; x and y include their leading '-' or are empty. */
static int cmp_pre(const char *x, size_t xn, const char *y, size_t yn) {
  if (slice_eq(x, xn, y, yn))
    return 0;
  if (xn == 0)
    return 1;
  if (yn == 0)
    return -1;
  size_t i = 0, j = 0;
  while (i < xn && j < yn) {
    i++; /* skip '-' or '.' */
    j++;
    size_t si = i, sj = j;
    while (i < xn && x[i] != '.')
      i++;
    while (j < yn && y[j] != '.')
      j++;
    const char *dx = x + si, *dy = y + sj;
    size_t dxn = i - si, dyn = j - sj;
    if (slice_eq(dx, dxn, dy, dyn))
      continue;
    int ix = all_digits(dx, dxn), iy = all_digits(dy, dyn);
    if (ix != iy)
      return ix ? -1 : 1;
    if (ix && dxn != dyn)
      return dxn < dyn ? -1 : 1;
    size_t m = dxn < dyn ? dxn : dyn;
    int c = memcmp(dx, dy, m);
    if (c)
      return c < 0 ? -1 : 1;
    return dxn < dyn ? -1 : 1;
  }
  return i >= xn ? -1 : 1;
}

static int cmp_n(const char *a, size_t an, const char *b, size_t bn) {
  struct sv pa, pb;
  int oka = sv_parse(a, an, &pa), okb = sv_parse(b, bn, &pb);
  if (!oka && !okb)
    return 0;
  if (!oka)
    return -1;
  if (!okb)
    return 1;
  int c = cmp_int(pa.major, pa.majorn, pb.major, pb.majorn);
  if (!c)
    c = cmp_int(pa.minor, pa.minorn, pb.minor, pb.minorn);
  if (!c)
    c = cmp_int(pa.patch, pa.patchn, pb.patch, pb.patchn);
  if (!c)
    c = cmp_pre(pa.pre, pa.pren, pb.pre, pb.pren);
  return c;
}

/* module.CanonicalVersion(v) == v: full three numbers, and the only build
 * suffix Go keeps is +incompatible. */
static int canonical_n(const char *v, size_t n) {
  struct sv p;
  if (!sv_parse(v, n, &p) || p.short_form)
    return 0;
  return p.buildn == 0 || slice_eq(p.build, p.buildn, "+incompatible", 13);
}

static int is_alnum(char c) {
  return is_digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* module.IsPseudoVersion without a regexp. The pattern
 *   ^v\d+\.(0\.0-|\d+\.\d+-([^+]*\.)?0\.)\d{14}-[A-Za-z0-9]+(\+build)?$
 * on a valid version means: the pre-release ends in "-<rev>" preceded by 14
 * digits, which either start the pre-release (only for vX.0.0) or follow a
 * "0." that itself starts the pre-release or follows a '.'. */
static int pseudo_n(const char *v, size_t n) {
  struct sv p;
  if (!sv_parse(v, n, &p) || p.short_form || p.pren < 2)
    return 0;
  const char *s = p.pre + 1; /* without the '-' */
  size_t sn = p.pren - 1;
  size_t dash = sn;
  while (dash > 0 && s[dash - 1] != '-')
    dash--;
  if (dash == 0 || dash == sn)
    return 0;
  for (size_t k = dash; k < sn; k++)
    if (!is_alnum(s[k]))
      return 0;
  size_t dash_at = dash - 1; /* index of the '-' before the revision */
  if (dash_at < 14 || !all_digits(s + dash_at - 14, 14))
    return 0;
  size_t ts = dash_at - 14; /* where the timestamp starts */
  if (ts == 0)
    return slice_eq(p.minor, p.minorn, "0", 1) &&
           slice_eq(p.patch, p.patchn, "0", 1);
  if (ts < 2 || s[ts - 1] != '.' || s[ts - 2] != '0')
    return 0;
  return ts == 2 || s[ts - 3] == '.';
}

int semver_is_valid(const char *v) {
  struct sv p;
  return v && sv_parse(v, strlen(v), &p);
}

int semver_is_canonical(const char *v) {
  return v && canonical_n(v, strlen(v));
}

int semver_compare(const char *a, const char *b) {
  return cmp_n(a, a ? strlen(a) : 0, b, b ? strlen(b) : 0);
}

int semver_is_prerelease(const char *v) {
  struct sv p;
  return v && sv_parse(v, strlen(v), &p) && p.pren > 0;
}

int semver_is_pseudo(const char *v) {
  return v && pseudo_n(v, strlen(v));
}

void semver_major(const char *v, char *out, size_t cap) {
  struct sv p;
  if (!out || cap == 0)
    return;
  out[0] = '\0';
  if (!v || !sv_parse(v, strlen(v), &p) || p.majorn + 2 > cap)
    return;
  memcpy(out, v, p.majorn + 1);
  out[p.majorn + 1] = '\0';
}

/* One usable line of a list body. */
struct entry {
  const char *v, *t; /* t is NULL when the line has no usable time */
  size_t vn, tn;
  size_t order; /* input position, so ties keep the first-seen line */
};

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Times are relayed to clients, so only short printable tokens pass. */
static int time_ok(const char *t, size_t n) {
  if (n == 0 || n > 64)
    return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)t[i];
    if (c <= ' ' || c >= 0x7f)
      return 0;
  }
  return 1;
}

/* Splits a body into entries the way strings.Fields does per line, keeping
 * canonical non-pseudo versions. es may be NULL to only count lines. */
static size_t scan_lines(const char *s, size_t n, struct entry *es,
                         size_t base) {
  size_t count = 0, i = 0;
  while (s && i < n) {
    size_t e = i;
    while (e < n && s[e] != '\n')
      e++;
    size_t k = i;
    while (k < e && is_space(s[k]))
      k++;
    size_t vs = k;
    while (k < e && !is_space(s[k]))
      k++;
    size_t vn = k - vs;
    while (k < e && is_space(s[k]))
      k++;
    size_t ts = k;
    while (k < e && !is_space(s[k]))
      k++;
    size_t tn = k - ts;
    if (vn && canonical_n(s + vs, vn) && !pseudo_n(s + vs, vn)) {
      if (es) {
        struct entry *x = &es[count];
        x->v = s + vs;
        x->vn = vn;
        x->t = time_ok(s + ts, tn) ? s + ts : NULL;
        x->tn = x->t ? tn : 0;
        x->order = base + count;
      }
      count++;
    }
    i = e + 1;
  }
  return count;
}

/* Ascending by semver; equal versions by bytes, then input order. */
static int entry_cmp(const void *pa, const void *pb) {
  const struct entry *a = pa, *b = pb;
  int c = cmp_n(a->v, a->vn, b->v, b->vn);
  if (c)
    return c;
  size_t m = a->vn < b->vn ? a->vn : b->vn;
  c = memcmp(a->v, b->v, m);
  if (c)
    return c;
  if (a->vn != b->vn)
    return a->vn < b->vn ? -1 : 1;
  return a->order < b->order ? -1 : a->order > b->order;
}

int versions_merge(const char *a, size_t alen, const char *b, size_t blen,
                   struct buf *out) {
  size_t na = scan_lines(a, alen, NULL, 0);
  size_t nb = scan_lines(b, blen, NULL, 0);
  if (na + nb == 0)
    return 0;
  struct entry *es = calloc(na + nb, sizeof *es);
  if (!es)
    return ERR_NOMEM;
  scan_lines(a, alen, es, 0);
  scan_lines(b, blen, es + na, na);
  qsort(es, na + nb, sizeof *es, entry_cmp);
  int rc = 0;
  for (size_t i = 0; i < na + nb && !rc;) {
    /* Among identical versions the first line with a time wins. */
    const struct entry *pick = &es[i];
    size_t j = i + 1;
    for (; j < na + nb && slice_eq(es[j].v, es[j].vn, es[i].v, es[i].vn); j++)
      if (!pick->t && es[j].t)
        pick = &es[j];
    rc = buf_append(out, pick->v, pick->vn);
    if (!rc && pick->t) {
      rc = buf_append(out, " ", 1);
      if (!rc)
        rc = buf_append(out, pick->t, pick->tn);
    }
    if (!rc)
      rc = buf_append(out, "\n", 1);
    i = j;
  }
  free(es);
  return rc;
}

int versions_latest(const char *list, size_t len, char *out, size_t cap) {
  size_t n = scan_lines(list, len, NULL, 0);
  if (n == 0)
    return ERR_NOT_FOUND;
  struct entry *es = calloc(n, sizeof *es);
  if (!es)
    return ERR_NOMEM;
  scan_lines(list, len, es, 0);
  const struct entry *rel = NULL, *pre = NULL;
  for (size_t i = 0; i < n; i++) {
    struct sv p;
    sv_parse(es[i].v, es[i].vn, &p);
    const struct entry **best = p.pren ? &pre : &rel;
    if (!*best || entry_cmp(&es[i], *best) > 0)
      *best = &es[i];
  }
  const struct entry *pick = rel ? rel : pre;
  int rc = 0;
  if (!out || pick->vn + 1 > cap) {
    rc = ERR_INVALID;
  } else {
    memcpy(out, pick->v, pick->vn);
    out[pick->vn] = '\0';
  }
  free(es);
  return rc;
}
