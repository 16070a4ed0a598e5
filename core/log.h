/* Leveled logging to stderr, as text or one JSON object per line, plus the
 * access log. The logger is the one piece of process-wide state: it is set up
 * once in main() before any thread starts and only read afterwards. */
#ifndef GOMIRROR_CORE_LOG_H
#define GOMIRROR_CORE_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* format: "text" or "json"; level: "debug".."error". Returns 0 or
 * ERR_CONFIG for an unknown name (the logger keeps its defaults). */
int log_setup(const char *format, const char *level);
/* Logs one line at level; msg is printf-style. Thread-safe (one write(2)). */
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* One access-log line: method, path, status, bytes, duration, cache outcome
 * ("hit", "miss", "-") and, when user is not NULL (access control is on),
 * who asked; at info level. */
void log_access(const char *method, const char *path, int status,
                long long bytes, double duration_ms, const char *cache,
                const char *user);

/* One field of a JSON line: a string when str is not NULL, else a number
 * (written as an integer when integer is set). */
struct log_field {
  const char *key;
  const char *str;
  double num;
  int integer;
};

/* Writes one JSON object per line to fd with a single write(2): first
 * "<time_key>": the UTC time in RFC 3339 with milliseconds, then the fields
 * in order. Strings are escaped (invalid UTF-8 as \\xNN text) and a line is
 * at most 4 KiB, long strings cut. For the audit log, independent of the
 * log level and format. 0, or ERR_IO when the write failed. */
int log_json_line(int fd, const char *time_key, const struct log_field *f,
                  size_t n);

#endif
