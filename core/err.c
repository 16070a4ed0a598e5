/* Error code table and the one-line reasons that travel with failures. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

static const struct {
  int status;
  const char *msg;
} table[ERR__COUNT] = {
#define ERR_ROW(name, st, m) [ERR_I_##name] = {st, m},
    ERR_MAP(ERR_ROW)
#undef ERR_ROW
};

const char *err_str(int code) {
  if (code == 0)
    return "ok";
  int i = -code - 1;
  if (i < 0 || i >= ERR__COUNT)
    return "unknown error";
  return table[i].msg;
}

int err_http_status(int code) {
  if (code == 0)
    return 200;
  int i = -code - 1;
  if (i < 0 || i >= ERR__COUNT)
    return 500;
  return table[i].status;
}

int reason_set(struct reason *r, int code, const char *fmt, ...) {
  if (!r)
    return code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->text, sizeof r->text, fmt, ap);
  va_end(ap);
  for (char *p = r->text; *p; p++)
    if (*p == '\n' || *p == '\r')
      *p = ' ';
  return code;
}

const char *reason_text(const struct reason *r, int code) {
  if (r && r->text[0])
    return r->text;
  return err_str(code);
}
