/* RFC 3339 date-times (rfc3339.h), parsed by hand: no timegm, no time
 * zone, no locale, and exactly the grammar Go's JSON time accepts, which
 * strptime does not express. */
#include "rfc3339.h"

#include "core/err.h"

static int num(const char *s, size_t n, int *out) {
  int v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return 0;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static long long days_from_civil(long long y, int m, int d) {
  y -= m <= 2;
  long long era = (y >= 0 ? y : y - 399) / 400;
  long long yoe = y - era * 400;
  long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

int rfc3339_parse(const char *s, size_t n, int flags, time_t *out) {
  int any_case = (flags & RFC3339_ANY_CASE) != 0;
  int y, mo, d, h, mi, sec;
  if (n < 20 || s[4] != '-' || s[7] != '-' ||
      (s[10] != 'T' && !(any_case && s[10] == 't')) || s[13] != ':' ||
      s[16] != ':')
    return ERR_INVALID;
  if (!num(s, 4, &y) || !num(s + 5, 2, &mo) || !num(s + 8, 2, &d) ||
      !num(s + 11, 2, &h) || !num(s + 14, 2, &mi) || !num(s + 17, 2, &sec))
    return ERR_INVALID;
  static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59)
    return ERR_INVALID;
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (d > mdays[mo - 1] + (mo == 2 && leap))
    return ERR_INVALID;
  size_t i = 19;
  if (s[i] == '.') {
    size_t start = ++i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
      i++;
    if (i == start)
      return ERR_INVALID;
  }
  long offset = 0;
  if (i < n && (s[i] == 'Z' || (any_case && s[i] == 'z'))) {
    if (i + 1 != n)
      return ERR_INVALID;
  } else {
    int oh, om;
    if (n - i != 6 || (s[i] != '+' && s[i] != '-') || s[i + 3] != ':' ||
        !num(s + i + 1, 2, &oh) || !num(s + i + 4, 2, &om) || oh > 23 ||
        om > 59)
      return ERR_INVALID;
    offset = (oh * 3600L + om * 60L) * (s[i] == '-' ? -1 : 1);
  }
  if (out)
    *out = (time_t)(days_from_civil(y, mo, d) * 86400LL + h * 3600LL +
                    mi * 60LL + sec - offset);
  return 0;
}
