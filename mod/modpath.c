/* Request-path parsing for the GOPROXY protocol: percent-decoding, then the
 * case-encoding and path and version rules ported from golang.org/x/mod
 * module/module.go. Pure functions, so the parser can be fuzzed; nothing a
 * request names reaches storage or an upstream unless modpath_parse accepts
 * it. */
#include "modpath.h"

#include "core/ascii.h"
#include "core/err.h"
#include "semver.h"

#include <ctype.h>
#include <string.h>

/* Reasons go back to clients: echo at most this much input, never raw
 * control bytes. */
#define SHOW_MAX 80

struct shown {
  char s[SHOW_MAX + 4];
};

static const char *show(struct shown *sh, const char *s, size_t n) {
  size_t i, k = 0;
  for (i = 0; i < n && k < SHOW_MAX; i++) {
    unsigned char c = (unsigned char)s[i];
    sh->s[k++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
  }
  if (i < n) {
    memcpy(sh->s + k, "...", 3);
    k += 3;
  }
  sh->s[k] = '\0';
  return sh->s;
}

static int is_lower(char c) {
  return c >= 'a' && c <= 'z';
}
static int is_upper(char c) {
  return c >= 'A' && c <= 'Z';
}
static int is_digit(char c) {
  return c >= '0' && c <= '9';
}

/* x/mod firstPathOK: the first element is a lower-case LDH domain name. */
static int first_ok(char c) {
  return c == '-' || c == '.' || is_digit(c) || is_lower(c);
}

/* x/mod modPathOK. */
static int mod_ok(char c) {
  return c == '-' || c == '.' || c == '_' || c == '~' || is_digit(c) ||
         is_upper(c) || is_lower(c);
}

/* x/mod fileNameOK, ASCII only: non-ASCII never gets this far. */
static int file_ok(char c) {
  if (is_digit(c) || is_upper(c) || is_lower(c))
    return 1;
  return c != '\0' && strchr("!#$%&()+,-.=@[]^_{}~ ", c) != NULL;
}

static int eq_fold(const char *a, size_t n, const char *b) {
  if (strlen(b) != n)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = is_upper(a[i]) ? (char)(a[i] - 'A' + 'a') : a[i];
    if (c != b[i])
      return 0;
  }
  return 1;
}

static const char *const bad_windows_names[] = {
    "con",  "prn",  "aux",  "nul",  "com1", "com2", "com3", "com4",
    "com5", "com6", "com7", "com8", "com9", "lpt1", "lpt2", "lpt3",
    "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
};

enum elem_kind { ELEM_MODULE, ELEM_FILE };

/* x/mod checkElem for module paths and file names. Returns NULL when the
 * element is valid, else what is wrong with it. */
static const char *check_elem(const char *e, size_t n, enum elem_kind kind) {
  if (n == 0)
    return "empty path element";
  size_t dots = 0;
  while (dots < n && e[dots] == '.')
    dots++;
  if (dots == n)
    return "path element is all dots";
  if (e[0] == '.' && kind == ELEM_MODULE)
    return "leading dot in path element";
  if (e[n - 1] == '.')
    return "trailing dot in path element";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)e[i];
    if (c >= 0x80 || !(kind == ELEM_MODULE ? mod_ok(e[i]) : file_ok(e[i])))
      return "invalid character in path element";
  }
  /* Windows reserves these names whatever follows the first dot. */
  const char *dot = memchr(e, '.', n);
  size_t short_n = dot ? (size_t)(dot - e) : n;
  /* Every reserved name (CON, COM1, ...) has three or four letters. */
  if (short_n == 3 || short_n == 4)
    for (size_t i = 0; i < sizeof bad_windows_names / sizeof *bad_windows_names;
         i++)
      if (eq_fold(e, short_n, bad_windows_names[i]))
        return "Windows reserved name in path element";
  if (kind == ELEM_FILE)
    return NULL;
  /* "name~1" looks like a Windows short name. */
  size_t t = short_n;
  while (t > 0 && e[t - 1] != '~')
    t--;
  if (t > 0 && t < short_n) {
    size_t k = t;
    while (k < short_n && is_digit(e[k]))
      k++;
    if (k == short_n)
      return "trailing tilde and digits in path element";
  }
  return NULL;
}

/* x/mod SplitPathVersion (with splitGopkgIn). Returns 1 when the path's
 * major-version suffix is well formed, and sets *prefix_n so that the
 * suffix ("/v2", ".v1", ".v2-unstable" or "") starts at path + *prefix_n. */
static int split_path_version(const char *p, size_t n, size_t *prefix_n) {
  *prefix_n = n;
  if (n >= 9 && memcmp(p, "gopkg.in/", 9) == 0) {
    size_t i = n;
    if (memcmp(p + n - 9, "-unstable", 9) == 0)
      i -= 9;
    while (i > 0 && is_digit(p[i - 1]))
      i--;
    if (i <= 1 || p[i - 1] != 'v' || p[i - 2] != '.')
      return 0; /* every gopkg.in path ends in .vN */
    size_t mn = n - (i - 2);
    const char *m = p + i - 2;
    if (mn <= 2 || (m[2] == '0' && mn != 3)) /* only ".v0" may have a 0 */
      return 0;
    *prefix_n = i - 2;
    return 1;
  }
  size_t i = n;
  int dot = 0;
  while (i > 0 && (is_digit(p[i - 1]) || p[i - 1] == '.')) {
    if (p[i - 1] == '.')
      dot = 1;
    i--;
  }
  if (i <= 1 || i == n || p[i - 1] != 'v' || p[i - 2] != '/')
    return 1;
  const char *m = p + i - 2;
  size_t mn = n - (i - 2);
  if (dot || mn <= 2 || m[2] == '0' || (mn == 3 && m[2] == '1'))
    return 0;
  *prefix_n = i - 2;
  return 1;
}

/* x/mod CheckPath; msg gets what is wrong. */
static const char *check_path_msg(const char *p, size_t n) {
  if (n == 0)
    return "empty string";
  if (p[0] == '-')
    return "leading dash";
  for (size_t i = 0; i + 1 < n; i++)
    if (p[i] == '/' && p[i + 1] == '/')
      return "double slash";
  if (p[n - 1] == '/')
    return "trailing slash";
  for (size_t s = 0; s <= n;) {
    const char *sl = memchr(p + s, '/', n - s);
    size_t e = sl ? (size_t)(sl - p) : n;
    const char *m = check_elem(p + s, e - s, ELEM_MODULE);
    if (m)
      return m;
    s = e + 1;
  }
  const char *sl = memchr(p, '/', n);
  size_t first = sl ? (size_t)(sl - p) : n;
  if (first == 0)
    return "leading slash";
  if (!memchr(p, '.', first))
    return "missing dot in first path element";
  for (size_t i = 0; i < first; i++)
    if (!first_ok(p[i]))
      return "invalid character in first path element (lower-case domain "
             "expected)";
  size_t prefix_n;
  if (!split_path_version(p, n, &prefix_n))
    return n >= 9 && memcmp(p, "gopkg.in/", 9) == 0
               ? "gopkg.in path must end in .vN"
               : "invalid major version suffix (want /vN, N >= 2, no "
                 "leading zero)";
  return NULL;
}

int modpath_check_path(const char *path, struct reason *why) {
  struct shown sh;
  if (!path)
    return reason_set(why, ERR_INVALID, "invalid module path: missing");
  size_t n = strlen(path);
  const char *m = check_path_msg(path, n);
  if (m)
    return reason_set(why, ERR_INVALID, "invalid module path \"%s\": %s",
                      show(&sh, path, n), m);
  return 0;
}

/* x/mod escapeString: callers have rejected '!' and non-ASCII already, but
 * the encoding is only reversible without them, so check again. */
static int escape_str(const char *s, char *out, size_t cap) {
  size_t k = 0;
  if (!out || cap == 0)
    return ERR_INVALID;
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '!' || c >= 0x80)
      return ERR_INVALID;
    size_t need = is_upper(*s) ? 2 : 1;
    if (k + need >= cap) {
      out[0] = '\0';
      return ERR_INVALID;
    }
    if (need == 2) {
      out[k++] = '!';
      out[k++] = (char)(*s - 'A' + 'a');
    } else {
      out[k++] = *s;
    }
  }
  out[k] = '\0';
  return 0;
}

int modpath_escape(const char *path, char *out, size_t cap) {
  if (!path || check_path_msg(path, strlen(path)))
    return ERR_INVALID;
  return escape_str(path, out, cap);
}

/* x/mod EscapeVersion's precondition: a file-name element without '!'. */
static const char *check_version_elem(const char *v, size_t n) {
  if (memchr(v, '!', n))
    return "'!' is not allowed";
  return check_elem(v, n, ELEM_FILE);
}

int modpath_escape_version(const char *version, char *out, size_t cap) {
  if (!version || check_version_elem(version, strlen(version)))
    return ERR_INVALID;
  return escape_str(version, out, cap);
}

/* x/mod unescapeString over e[0..n). Returns NULL when valid, else what is
 * wrong. Writes at most cap - 1 bytes (NUL-terminated) but always sets
 * *len to the full unescaped length, so callers can tell "too long". */
static const char *unescape_n(const char *e, size_t n, char *out, size_t cap,
                              size_t *len) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)e[i];
    if (c >= 0x80)
      return "non-ASCII byte";
    if (is_upper(e[i]))
      return "upper-case letter (escape it as '!' + lower case)";
    if (c == '!') {
      if (i + 1 == n)
        return "trailing '!'";
      if (!is_lower(e[i + 1]))
        return "'!' not followed by a-z";
      c = (unsigned char)(e[++i] - 'a' + 'A');
    }
    if (k + 1 < cap)
      out[k] = (char)c;
    k++;
  }
  if (cap)
    out[k < cap ? k : cap - 1] = '\0';
  *len = k;
  return NULL;
}

int modpath_unescape(const char *esc, char *out, size_t cap) {
  size_t len;
  if (!esc || !out || cap == 0)
    return ERR_INVALID;
  if (unescape_n(esc, strlen(esc), out, cap, &len) || len >= cap) {
    out[0] = '\0';
    return ERR_INVALID;
  }
  return 0;
}

/* x/mod CheckPathMajor, plus the +incompatible rules the go command applies
 * in modfetch (coderepo.go): +incompatible only for v2 and later, and only
 * for paths without a major-version suffix. A well-formed version that
 * cannot belong to the path is ERR_NOT_FOUND (404), as proxy.golang.org
 * answers: the go command treats 404/410 as "not here" and 400 as a hard
 * error. */
static int check_major(const char *path, size_t pn, const char *v,
                       struct reason *why) {
  struct shown sv;
  size_t prefix_n;
  split_path_version(path, pn, &prefix_n);
  const char *pm = path + prefix_n;
  size_t pmn = pn - prefix_n;
  if (pmn >= 9 && pm[0] == '.' && memcmp(pm + pmn - 9, "-unstable", 9) == 0)
    pmn -= 9;
  char m[VERSION_MAX + 2];
  semver_major(v, m, sizeof m);
  size_t vn = strlen(v);
  int incompatible = vn > 13 && memcmp(v + vn - 13, "+incompatible", 13) == 0;
  int v01 = strcmp(m, "v0") == 0 || strcmp(m, "v1") == 0;
  if (incompatible && (pmn > 0 || v01))
    return reason_set(why, ERR_NOT_FOUND,
                      "invalid version \"%s\": +incompatible is only for v2 "
                      "and later, in a path without a major version suffix",
                      show(&sv, v, vn));
  /* x/mod keeps an old pseudo-version bug working for gopkg.in .v1. */
  if (strncmp(v, "v0.0.0-", 7) == 0 && pmn == 3 && memcmp(pm, ".v1", 3) == 0)
    return 0;
  if (pmn == 0) {
    if (v01 || incompatible)
      return 0;
    return reason_set(why, ERR_NOT_FOUND,
                      "invalid version \"%s\": should be v0 or v1, not %s",
                      show(&sv, v, vn), m);
  }
  if (strlen(m) == pmn - 1 && memcmp(m, pm + 1, pmn - 1) == 0)
    return 0;
  return reason_set(why, ERR_NOT_FOUND,
                    "invalid version \"%s\": should be %.*s, not %s",
                    show(&sv, v, vn), (int)(pmn - 1), pm + 1, m);
}

int modpath_check_version(const char *path, const char *version,
                          int require_canonical, struct reason *why) {
  struct shown sv;
  if (!version)
    return reason_set(why, ERR_INVALID, "invalid version: missing");
  size_t vn = strlen(version);
  const char *m = check_version_elem(version, vn);
  if (m)
    return reason_set(why, ERR_INVALID, "invalid version \"%s\": %s",
                      show(&sv, version, vn), m);
  if (!require_canonical)
    return 0;
  if (!semver_is_canonical(version))
    return reason_set(why, ERR_INVALID,
                      "invalid version \"%s\": not canonical semver "
                      "(vMAJOR.MINOR.PATCH[-pre][+incompatible])",
                      show(&sv, version, vn));
  int rc = modpath_check_path(path, why);
  if (rc)
    return rc;
  return check_major(path, strlen(path), version, why);
}

/* Checks every byte of the raw path before anything splits or decodes it:
 * escapes are well formed, no encoded separators, no NUL or control bytes,
 * ASCII only, no "." or ".." elements (encoded or not). */
static int validate_raw(const char *raw, struct reason *why) {
  size_t elen = 0;
  int dots = 1;
  for (size_t i = 0;;) {
    unsigned char c = (unsigned char)raw[i];
    if (c == '/' || c == '\0') {
      if (elen > 0 && elen <= 2 && dots)
        return reason_set(why, ERR_INVALID,
                          "'.' or '..' element in request path");
      if (c == '\0')
        return 0;
      elen = 0;
      dots = 1;
      i++;
      continue;
    }
    if (c == '%') {
      int h = ascii_hexval(raw[i + 1]);
      int l = h >= 0 ? ascii_hexval(raw[i + 2]) : -1;
      if (h < 0 || l < 0)
        return reason_set(why, ERR_INVALID,
                          "malformed percent-escape at byte %zu of request "
                          "path",
                          i);
      c = (unsigned char)(h * 16 + l);
      if (c == '/' || c == '\\')
        return reason_set(why, ERR_INVALID,
                          "encoded '%c' (%%%02X) in request path", (char)c, c);
      i += 3;
    } else {
      i++;
    }
    if (c == '\0')
      return reason_set(why, ERR_INVALID, "NUL byte in request path");
    if (c < 0x20 || c == 0x7f)
      return reason_set(why, ERR_INVALID, "control byte 0x%02x in request path",
                        c);
    if (c >= 0x80)
      return reason_set(why, ERR_INVALID, "non-ASCII byte in request path");
    if (c == '\\')
      return reason_set(why, ERR_INVALID, "backslash in request path");
    elen++;
    if (c != '.')
      dots = 0;
  }
}

/* The last bytes decode_span saw, for matching a suffix of a span too long
 * to keep whole. */
#define WIN 5

/* Percent-decodes s[0..n), which validate_raw has accepted. Keeps at most
 * cap - 1 bytes in out (NUL-terminated), the last WIN bytes in win (if not
 * NULL), and returns the full decoded length. */
static size_t decode_span(const char *s, size_t n, char *out, size_t cap,
                          char win[WIN]) {
  size_t k = 0;
  for (size_t i = 0; i < n;) {
    char c = s[i];
    if (c == '%') {
      c = (char)(ascii_hexval(s[i + 1]) * 16 + ascii_hexval(s[i + 2]));
      i += 3;
    } else {
      i++;
    }
    if (k + 1 < cap)
      out[k] = c;
    if (win) {
      memmove(win, win + 1, WIN - 1);
      win[WIN - 1] = c;
    }
    k++;
  }
  out[k < cap ? k : cap - 1] = '\0';
  return k;
}

static int ends_with(const char *win, size_t len, const char *ext) {
  size_t en = strlen(ext);
  return len >= en && memcmp(win + WIN - en, ext, en) == 0;
}

static int parse(const char *raw, struct modreq *out, struct reason *why) {
  struct shown sh;
  if (!raw || raw[0] != '/')
    return reason_set(why, ERR_NOT_FOUND, "request path must start with '/'");
  int rc = validate_raw(raw, why);
  if (rc)
    return rc;

  /* '/' can only arrive literally (%2F was refused), so raw and decoded
   * paths split at the same places. */
  size_t n = strlen(raw);
  size_t tail_at = (size_t)(strrchr(raw, '/') - raw) + 1;
  char tail[VERSION_ESC_MAX + 8];
  char win[WIN] = {0};
  size_t tl = decode_span(raw + tail_at, n - tail_at, tail, sizeof tail, win);
  size_t mod_end; /* index of the '/' that ends the module path */
  size_t ext_n = 0;

  if (tl == 7 && strcmp(tail, "@latest") == 0) {
    out->kind = MODREQ_LATEST;
    mod_end = tail_at - 1;
  } else {
    size_t p = tail_at - 1, q = p;
    while (q > 0 && raw[q - 1] != '/')
      q--;
    char parent[4];
    if (p == 0 ||
        decode_span(raw + q, p - q, parent, sizeof parent, NULL) != 2 ||
        strcmp(parent, "@v") != 0)
      return reason_set(why, ERR_NOT_FOUND,
                        "not a module proxy path (want <module>/@v/list, "
                        "<module>/@v/<version>.info|.mod|.zip or "
                        "<module>/@latest)");
    mod_end = q - 1;
    if (tl == 4 && strcmp(tail, "list") == 0) {
      out->kind = MODREQ_LIST;
    } else if (ends_with(win, tl, ".info")) {
      out->kind = MODREQ_INFO;
      ext_n = 5;
    } else if (ends_with(win, tl, ".mod")) {
      out->kind = MODREQ_MOD;
      ext_n = 4;
    } else if (ends_with(win, tl, ".zip")) {
      out->kind = MODREQ_ZIP;
      ext_n = 4;
    } else {
      return reason_set(why, ERR_NOT_FOUND,
                        "unknown @v/ file (want list, .info, .mod or .zip)");
    }
  }
  if (mod_end <= 1)
    return reason_set(why, ERR_NOT_FOUND, "empty module path");

  /* Module path. */
  char esc[MODPATH_ESC_MAX + 1];
  size_t ml = decode_span(raw + 1, mod_end - 1, esc, sizeof esc, NULL);
  if (ml >= sizeof esc)
    return reason_set(why, ERR_NOT_FOUND, "module path too long");
  for (size_t i = 0; i < ml; i++)
    if (is_upper(esc[i]))
      return reason_set(why, ERR_NOT_FOUND,
                        "module path \"%s\" has upper-case letters; clients "
                        "send them as '!' + lower case",
                        show(&sh, esc, ml));
  size_t len;
  const char *bad = unescape_n(esc, ml, out->module, sizeof out->module, &len);
  if (bad)
    return reason_set(why, ERR_INVALID,
                      "invalid escaped module path \"%s\": %s",
                      show(&sh, esc, ml), bad);
  if (len >= sizeof out->module)
    return reason_set(why, ERR_NOT_FOUND, "module path too long");
  rc = modpath_check_path(out->module, why);
  if (rc)
    return rc;
  rc = modpath_escape(out->module, out->module_esc, sizeof out->module_esc);
  if (rc)
    return reason_set(why, rc, "cannot escape module path");

  if (out->kind == MODREQ_LIST || out->kind == MODREQ_LATEST)
    return 0;

  /* Version. */
  size_t vl = tl - ext_n;
  if (vl == 0)
    return reason_set(why, ERR_INVALID, "empty version");
  if (tl >= sizeof tail || vl > VERSION_ESC_MAX)
    return reason_set(why, ERR_INVALID, "version too long");
  tail[vl] = '\0';
  bad = unescape_n(tail, vl, out->version, sizeof out->version, &len);
  if (bad)
    return reason_set(why, ERR_INVALID, "invalid escaped version \"%s\": %s",
                      show(&sh, tail, vl), bad);
  if (len >= sizeof out->version)
    return reason_set(why, ERR_INVALID, "version too long");
  int immutable = out->kind != MODREQ_INFO;
  rc = modpath_check_version(out->module, out->version, immutable, why);
  if (rc)
    return rc;
  /* An .info query is immutable only when the go command itself would
   * insist on an exact answer: canonical and matching the path's major
   * version (modfetch/proxy.go Stat). */
  out->canonical = immutable || modpath_check_version(out->module, out->version,
                                                      1, NULL) == 0;
  /* Go allows queries such as "my branch" or "a#b", but such a version
   * would have to be re-encoded for every upstream URL and storage key.
   * Real queries (branches, tags, commit hashes) fit this set. */
  if (!out->canonical) {
    for (const char *p = out->version; *p; p++)
      if (!isalnum((unsigned char)*p) && !strchr("._~+-", *p))
        return reason_set(why, ERR_INVALID,
                          "version query \"%s\" has characters gomirror "
                          "does not pass on (only letters, digits and ._~+-)",
                          show(&sh, out->version, strlen(out->version)));
  }
  rc = modpath_escape_version(out->version, out->version_esc,
                              sizeof out->version_esc);
  if (rc)
    return reason_set(why, rc, "cannot escape version");
  return 0;
}

int modpath_parse(const char *raw, struct modreq *out, struct reason *why) {
  if (!out)
    return reason_set(why, ERR_INVALID, "no output");
  memset(out, 0, sizeof *out);
  int rc = parse(raw, out, why);
  if (rc)
    memset(out, 0, sizeof *out);
  return rc;
}
