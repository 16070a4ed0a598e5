/* UTF-8 with Go's rules (unicode/utf8); see utf8.h. */
#include "utf8.h"

/* Decodes one rune from s[0..n) with Go's utf8 rules (no overlong forms, no
 * surrogates, nothing above U+10FFFF). Returns its length, 0 if invalid. */
size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *r) {
  if (n == 0)
    return 0;
  unsigned char c = s[0];
  if (c < 0x80) {
    *r = c;
    return 1;
  }
  size_t len;
  uint32_t min, v;
  if (c >= 0xc2 && c <= 0xdf)
    len = 2, min = 0x80, v = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef)
    len = 3, min = 0x800, v = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4)
    len = 4, min = 0x10000, v = c & 0x07;
  else
    return 0;
  if (n < len)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    v = v << 6 | (s[i] & 0x3f);
  }
  if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
    return 0;
  *r = v;
  return len;
}

size_t utf8_encode(uint32_t r, char *out) {
  if (r < 0x80) {
    out[0] = (char)r;
    return 1;
  }
  if (r < 0x800) {
    out[0] = (char)(0xc0 | r >> 6);
    out[1] = (char)(0x80 | (r & 0x3f));
    return 2;
  }
  if (r < 0x10000) {
    out[0] = (char)(0xe0 | r >> 12);
    out[1] = (char)(0x80 | (r >> 6 & 0x3f));
    out[2] = (char)(0x80 | (r & 0x3f));
    return 3;
  }
  out[0] = (char)(0xf0 | r >> 18);
  out[1] = (char)(0x80 | (r >> 12 & 0x3f));
  out[2] = (char)(0x80 | (r >> 6 & 0x3f));
  out[3] = (char)(0x80 | (r & 0x3f));
  return 4;
}
