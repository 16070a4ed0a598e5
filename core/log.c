/* Leveled logging and the access log, as text or JSON lines on stderr. Each
 * line is built in one stack buffer and written with a single write(2), so
 * lines from different threads never interleave. */
#include "log.h"

#include "utf8.h"

#include "err.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The one piece of process-wide state (see log.h): written by log_setup in
 * main() before any thread starts, only read afterwards, so no lock. */
static struct {
  enum log_level level;
  int json;
} logger = {LOG_INFO, 0};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* At most PIPE_BUF bytes, so a write to a pipe is atomic as well; longer
 * messages are cut. */
#define LINE_MAX_BYTES 4096
/* Room kept for the closing of a line ("\"}\n", "...") after a cut. */
#define LINE_RESERVE 64

struct line {
  char buf[LINE_MAX_BYTES];
  size_t len;
  size_t limit; /* where text stops so the line can still be closed */
  int cut;
};

static void put(struct line *l, const char *s, size_t n) {
  if (l->cut)
    return;
  if (n > l->limit - l->len) {
    n = l->limit - l->len;
    l->cut = 1;
  }
  memcpy(l->buf + l->len, s, n);
  l->len += n;
}
static void put_str(struct line *l, const char *s) {
  put(l, s, strlen(s));
}

/* Appends the byte sequence as one unit, or nothing when it would not fit,
 * so an escape is never split by a cut. */
static void put_unit(struct line *l, const char *s, size_t n) {
  if (l->cut)
    return;
  if (n > l->limit - l->len) {
    l->cut = 1;
    return;
  }
  put(l, s, n);
}

static void put_hex_escape(struct line *l, const char *prefix,
                           unsigned char ch) {
  static const char hex[] = "0123456789abcdef";
  char tmp[8];
  size_t n = strlen(prefix);
  memcpy(tmp, prefix, n);
  tmp[n++] = hex[ch >> 4];
  tmp[n++] = hex[ch & 15];
  put_unit(l, tmp, n);
}


/* Text fields: control characters and backslashes become \n, \t, \\ or \xNN
 * so one entry is one line; with space_too (access-log fields) spaces are
 * escaped as well, so fields split on spaces. */
static void put_text(struct line *l, const char *s, int space_too) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '\n')
      put_unit(l, "\\n", 2);
    else if (*p == '\t')
      put_unit(l, "\\t", 2);
    else if (*p == '\\')
      put_unit(l, "\\\\", 2);
    else if (*p < 0x20 || *p == 0x7f || (space_too && *p == ' '))
      put_hex_escape(l, "\\x", *p);
    else
      put(l, (const char *)p, 1);
  }
}

/* A JSON string body (RFC 8259). Bytes that are not valid UTF-8 cannot be
 * represented, so they appear as the text \xNN. */
static void put_json(struct line *l, const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  size_t n = strlen(s);
  while (n) {
    size_t u;
    uint32_t rune;
    if (*p == '"')
      put_unit(l, "\\\"", 2), u = 1;
    else if (*p == '\\')
      put_unit(l, "\\\\", 2), u = 1;
    else if (*p == '\n')
      put_unit(l, "\\n", 2), u = 1;
    else if (*p == '\r')
      put_unit(l, "\\r", 2), u = 1;
    else if (*p == '\t')
      put_unit(l, "\\t", 2), u = 1;
    else if (*p < 0x20 || *p == 0x7f)
      put_hex_escape(l, "\\u00", *p), u = 1;
    else if ((u = utf8_decode(p, n, &rune)) != 0)
      put_unit(l, (const char *)p, u);
    else
      put_hex_escape(l, "\\\\x", *p), u = 1;
    p += u;
    n -= u;
  }
}

/* Now as RFC 3339 UTC with milliseconds: 2026-12-03T11:20:16.123Z. */
static void timestamp(char stamp[48]) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(stamp, 48, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(stamp + n, 48 - n, ".%03ldZ", ts.tv_nsec / 1000000L);
}

static void begin(struct line *l, enum log_level level) {
  l->len = 0;
  l->cut = 0;
  l->limit = sizeof l->buf - LINE_RESERVE;
  char stamp[48];
  timestamp(stamp);
  if (logger.json) {
    put_str(l, "{\"ts\":\"");
    put_str(l, stamp);
    put_str(l, "\",\"level\":\"");
    put_str(l, level_names[level]);
    put_str(l, "\"");
  } else {
    put_str(l, stamp);
    put_str(l, " ");
    put_str(l, level_names[level]);
    put_str(l, " ");
  }
}

static int write_all(int fd, const char *p, size_t n) {
  size_t off = 0;
  while (off < n) {
    ssize_t w = write(fd, p + off, n - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return ERR_IO;
    off += (size_t)w;
  }
  return 0;
}

/* Ends the line and writes it with one write(2). */
static void finish(struct line *l) {
  l->limit = sizeof l->buf;
  l->cut = 0;
  if (logger.json)
    put_str(l, "}\n");
  else
    put_str(l, "\n");
  /* A failure has nowhere left to be reported. */
  (void)write_all(STDERR_FILENO, l->buf, l->len);
}

int log_setup(const char *format, const char *level) {
  int json;
  if (strcmp(format, "text") == 0)
    json = 0;
  else if (strcmp(format, "json") == 0)
    json = 1;
  else
    return ERR_CONFIG;
  for (int i = LOG_DEBUG; i <= LOG_ERROR; i++) {
    if (strcmp(level, level_names[i]) == 0) {
      logger.json = json;
      logger.level = (enum log_level)i;
      return 0;
    }
  }
  return ERR_CONFIG;
}

/* Runs one field writer with at most max bytes of output, then lifts the cut
 * so fixed text after the field still fits. Returns whether it was cut. */
static int field(struct line *l, const char *s, size_t max, int json,
                 int space_too) {
  size_t limit = l->limit;
  if (max < l->limit - l->len)
    l->limit = l->len + max;
  if (json)
    put_json(l, s);
  else
    put_text(l, s, space_too);
  int cut = l->cut;
  l->limit = limit;
  l->cut = 0;
  return cut;
}

void log_msg(enum log_level level, const char *fmt, ...) {
  if (level < logger.level || level > LOG_ERROR)
    return;
  int saved = errno; /* callers may log and then report errno */
  char msg[LINE_MAX_BYTES];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n < 0)
    msg[0] = '\0';
  struct line l;
  begin(&l, level);
  if (logger.json)
    put_str(&l, ",\"msg\":\"");
  int cut =
      field(&l, msg, sizeof l.buf, logger.json, 0) || (size_t)n >= sizeof msg;
  l.limit = sizeof l.buf;
  if (logger.json)
    put_str(&l, cut ? "\",\"truncated\":true" : "\"");
  else if (cut)
    put_str(&l, "...");
  finish(&l);
  errno = saved;
}

/* Method and cache are short words; a longer one is cut here so the path
 * keeps its room. */
#define WORD_MAX 32

void log_access(const char *method, const char *path, int status,
                long long bytes, double duration_ms, const char *cache,
                const char *user) {
  if (LOG_INFO < logger.level)
    return;
  int saved = errno;
  if (!isfinite(duration_ms) || duration_ms < 0)
    duration_ms = 0; /* JSON has no NaN; a clock step is not worth a line */
  if (!method)
    method = "-";
  if (!path)
    path = "-";
  if (!cache)
    cache = "-";
  char nums[128];
  struct line l;
  begin(&l, LOG_INFO);
  if (logger.json) {
    /* The path goes last so that it is what a cut shortens. */
    put_str(&l, ",\"msg\":\"access\",\"method\":\"");
    field(&l, method, WORD_MAX, 1, 0);
    snprintf(nums, sizeof nums,
             "\",\"status\":%d,\"bytes\":%lld,\"ms\":%.2f,\"cache\":\"", status,
             bytes, duration_ms);
    put_str(&l, nums);
    field(&l, cache, WORD_MAX, 1, 0);
    if (user) {
      put_str(&l, "\",\"user\":\"");
      field(&l, user, WORD_MAX * 4, 1, 0);
    }
    put_str(&l, "\",\"path\":\"");
    field(&l, path, sizeof l.buf, 1, 0);
    l.limit = sizeof l.buf;
    put_str(&l, "\"");
  } else {
    put_str(&l, "access ");
    field(&l, method, WORD_MAX, 0, 1);
    put_str(&l, " ");
    /* Leave room after the path for the numbers and the cache word. */
    size_t room = l.limit - l.len;
    field(&l, path, room > 2 * sizeof nums ? room - 2 * sizeof nums : 0, 0, 1);
    snprintf(nums, sizeof nums, " %d %lld %.2fms ", status, bytes, duration_ms);
    put_str(&l, nums);
    field(&l, cache, WORD_MAX, 0, 1);
    if (user) {
      put_str(&l, " ");
      field(&l, user, WORD_MAX * 4, 0, 1);
    }
  }
  finish(&l);
  errno = saved;
}

int log_json_line(int fd, const char *time_key, const struct log_field *f,
                  size_t n) {
  int saved = errno;
  struct line l;
  l.len = 0;
  l.cut = 0;
  l.limit = sizeof l.buf - LINE_RESERVE;
  char stamp[48], num[64];
  timestamp(stamp);
  put_str(&l, "{\"");
  put_str(&l, time_key);
  put_str(&l, "\":\"");
  put_str(&l, stamp);
  put_str(&l, "\"");
  for (size_t i = 0; i < n; i++) {
    put_str(&l, ",\"");
    put_str(&l, f[i].key);
    put_str(&l, "\":");
    if (f[i].str) {
      put_str(&l, "\"");
      /* Each string keeps a share of the line, so later fields survive. */
      field(&l, f[i].str, 1024, 1, 0);
      put_str(&l, "\"");
    } else {
      double v = isfinite(f[i].num) ? f[i].num : 0;
      if (f[i].integer)
        snprintf(num, sizeof num, "%lld", (long long)v);
      else
        snprintf(num, sizeof num, "%.3f", v);
      put_str(&l, num);
    }
  }
  l.limit = sizeof l.buf;
  l.cut = 0;
  put_str(&l, "}\n");
  int rc = write_all(fd, l.buf, l.len);
  errno = saved;
  return rc;
}
