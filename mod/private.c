/* GOPRIVATE-style pattern matching: a line-by-line port of Go 1.19's
 * path.Match (src/path/match.go) and x/mod's module.MatchPrefixPatterns.
 * fnmatch(3) is not used because it differs in the corners that matter
 * here: escapes inside classes, '^' negation, ranges over runes, and which
 * malformed patterns are errors. */
#include "private.h"

#include "core/err.h"

#include <string.h>

#define RUNE_ERROR 0xFFFDL

/* utf8.DecodeRuneInString: the rune at p and its width; an invalid or
 * truncated sequence is RUNE_ERROR with width 1, empty input width 0. */
static size_t decode_rune(const char *p, size_t n, long *r) {
  const unsigned char *s = (const unsigned char *)p;
  *r = RUNE_ERROR;
  if (n == 0)
    return 0;
  unsigned c = s[0];
  if (c < 0x80) {
    *r = (long)c;
    return 1;
  }
  size_t sz;
  unsigned lo = 0x80, hi = 0xBF;
  long v;
  if (c >= 0xC2 && c <= 0xDF) {
    sz = 2;
    v = (long)(c & 0x1F);
  } else if (c >= 0xE0 && c <= 0xEF) {
    sz = 3;
    v = (long)(c & 0x0F);
    if (c == 0xE0)
      lo = 0xA0; /* overlong */
    else if (c == 0xED)
      hi = 0x9F; /* surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    sz = 4;
    v = (long)(c & 0x07);
    if (c == 0xF0)
      lo = 0x90; /* overlong */
    else if (c == 0xF4)
      hi = 0x8F; /* past U+10FFFF */
  } else {
    return 1;
  }
  if (n < sz || s[1] < lo || s[1] > hi)
    return 1;
  v = (v << 6) | (long)(s[1] & 0x3F);
  for (size_t i = 2; i < sz; i++) {
    if (s[i] < 0x80 || s[i] > 0xBF)
      return 1;
    v = (v << 6) | (long)(s[i] & 0x3F);
  }
  *r = v;
  return sz;
}

/* scanChunk: skips leading stars (reported in *star), then returns the
 * length of the star-free chunk that follows, starting at *pi. */
static size_t scan_chunk(const char *pat, size_t plen, size_t *pi, int *star) {
  *star = 0;
  while (*pi < plen && pat[*pi] == '*') {
    (*pi)++;
    *star = 1;
  }
  int inrange = 0;
  size_t i = *pi;
  for (; i < plen; i++) {
    char c = pat[i];
    if (c == '\\') {
      /* A trailing backslash is reported by match_chunk. */
      if (i + 1 < plen)
        i++;
    } else if (c == '[') {
      inrange = 1;
    } else if (c == ']') {
      inrange = 0;
    } else if (c == '*' && !inrange) {
      break;
    }
  }
  size_t len = i - *pi;
  return len;
}

/* getEsc: one possibly escaped character of a class at c[*ci]. */
static int get_esc(const char *c, size_t clen, size_t *ci, long *r) {
  size_t i = *ci;
  if (i >= clen || c[i] == '-' || c[i] == ']')
    return ERR_INVALID;
  if (c[i] == '\\') {
    i++;
    if (i >= clen)
      return ERR_INVALID;
  }
  size_t n = decode_rune(c + i, clen - i, r);
  if (*r == RUNE_ERROR && n == 1)
    return ERR_INVALID;
  i += n;
  if (i >= clen)
    return ERR_INVALID; /* a class needs its closing ']' */
  *ci = i;
  return 0;
}

/* matchChunk: 1 when the chunk matches the start of s (*used gets the bytes
 * consumed), 0 when not, ERR_INVALID for bad syntax. After a mismatch the
 * rest of the chunk is still parsed, so errors are found as Go finds them. */
static int match_chunk(const char *c, size_t clen, const char *s, size_t slen,
                       size_t *used) {
  int failed = 0;
  size_t ci = 0, si = 0;
  while (ci < clen) {
    if (!failed && si == slen)
      failed = 1;
    switch (c[ci]) {
    case '[': {
      long r = 0;
      if (!failed)
        si += decode_rune(s + si, slen - si, &r);
      ci++;
      int negated = 0;
      if (ci < clen && c[ci] == '^') {
        negated = 1;
        ci++;
      }
      int match = 0, nrange = 0;
      for (;;) {
        if (ci < clen && c[ci] == ']' && nrange > 0) {
          ci++;
          break;
        }
        long lo, hi;
        if (get_esc(c, clen, &ci, &lo))
          return ERR_INVALID;
        hi = lo;
        if (c[ci] == '-') {
          ci++;
          if (get_esc(c, clen, &ci, &hi))
            return ERR_INVALID;
        }
        if (lo <= r && r <= hi)
          match = 1;
        nrange++;
      }
      if (match == negated)
        failed = 1;
      break;
    }
    case '?':
      if (!failed) {
        long r;
        if (s[si] == '/')
          failed = 1;
        si += decode_rune(s + si, slen - si, &r);
      }
      ci++;
      break;
    case '\\':
      ci++;
      if (ci >= clen)
        return ERR_INVALID;
      /* fall through */
    default:
      if (!failed) {
        if (c[ci] != s[si])
          failed = 1;
        si++;
      }
      ci++;
      break;
    }
  }
  if (failed)
    return 0;
  *used = si;
  return 1;
}

/* The tail of path.Match: before reporting "no match", make sure the rest of
 * the pattern is well-formed. */
static int check_rest(const char *pat, size_t plen, size_t pi) {
  while (pi < plen) {
    int star;
    size_t clen = scan_chunk(pat, plen, &pi, &star);
    size_t used;
    int rc = match_chunk(pat + pi, clen, "", 0, &used);
    if (rc < 0)
      return rc;
    pi += clen;
  }
  return 0;
}

int private_glob_match(const char *pat, size_t plen, const char *name,
                       size_t nlen) {
  size_t pi = 0, ni = 0;
next_chunk:
  while (pi < plen) {
    int star;
    size_t clen = scan_chunk(pat, plen, &pi, &star);
    const char *chunk = pat + pi;
    pi += clen;
    if (star && clen == 0) /* a trailing star matches the rest but no '/' */
      return memchr(name + ni, '/', nlen - ni) == NULL;
    size_t used = 0;
    int rc = match_chunk(chunk, clen, name + ni, nlen - ni, &used);
    /* The last chunk must use up the name, or a star may still help. */
    if (rc == 1 && (used == nlen - ni || pi < plen)) {
      ni += used;
      continue;
    }
    if (rc < 0)
      return rc;
    if (star) {
      /* Let the star swallow i+1 more bytes, never a '/'. */
      for (size_t i = 0; ni + i < nlen && name[ni + i] != '/'; i++) {
        size_t off = ni + i + 1;
        rc = match_chunk(chunk, clen, name + off, nlen - off, &used);
        if (rc == 1) {
          if (pi == plen && used < nlen - off)
            continue;
          ni = off + used;
          goto next_chunk;
        }
        if (rc < 0)
          return rc;
      }
    }
    rc = check_rest(pat, plen, pi);
    return rc < 0 ? rc : 0;
  }
  return ni == nlen;
}

/* Calls fn on each non-empty comma-separated entry, a trailing '/' removed;
 * stops early when fn returns non-zero and passes that on. */
static int each_pattern(const char *patterns,
                        int (*fn)(const char *g, size_t n, void *arg),
                        void *arg) {
  const char *p = patterns;
  while (*p) {
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    const char *g = p;
    p += n + (comma ? 1 : 0);
    if (n > 0 && g[n - 1] == '/')
      n--; /* strings.TrimSuffix removes one slash only */
    if (n == 0)
      continue;
    int rc = fn(g, n, arg);
    if (rc)
      return rc;
  }
  return 0;
}

/* A pattern of N+1 elements (N slashes) is matched against the module's
 * first N+1 elements; a shorter module cannot match. */
static int match_one(const char *g, size_t n, void *arg) {
  const char *target = arg;
  size_t slashes = 0;
  for (size_t i = 0; i < n; i++)
    slashes += g[i] == '/';
  size_t tlen = strlen(target), prefix = tlen;
  for (size_t i = 0; i < tlen; i++) {
    if (target[i] == '/') {
      if (slashes == 0) {
        prefix = i;
        break;
      }
      slashes--;
    }
  }
  if (slashes > 0)
    return 0;
  return private_glob_match(g, n, target, prefix) == 1;
}

int private_match(const char *patterns, const char *module) {
  if (!patterns || !module)
    return 0;
  return each_pattern(patterns, match_one, (void *)module) == 1;
}

struct check_arg {
  struct reason *why;
};

static int check_one(const char *g, size_t n, void *arg) {
  struct check_arg *a = arg;
  if (check_rest(g, n, 0) == 0)
    return 0;
  return reason_set(a->why, ERR_CONFIG,
                    "private pattern \"%.*s\" is malformed (path.Match "
                    "syntax), so it would match nothing",
                    n > 100 ? 100 : (int)n, g);
}

int private_check(const char *patterns, struct reason *why) {
  struct check_arg a = {why};
  if (!patterns)
    return 0;
  return each_pattern(patterns, check_one, &a);
}
