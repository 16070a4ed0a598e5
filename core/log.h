/* Leveled logging to stderr, as text or one JSON object per line, plus the
 * access log. The logger is the one piece of process-wide state: it is set up
 * once in main() before any thread starts and only read afterwards. */
#ifndef GOMIRROR_CORE_LOG_H
#define GOMIRROR_CORE_LOG_H

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
 * ("hit", "miss", "-"), at info level. */
void log_access(const char *method, const char *path, int status,
                long long bytes, double duration_ms, const char *cache);

#endif
