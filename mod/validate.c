/* Checks on what an upstream sends (.info, .mod, .zip) before the proxy
 * stores it, so nothing is cached that the go command would refuse. The zip
 * rules are a port of x/mod zip.checkZip and module.CheckFilePath (Go 1.19)
 * plus what cmd/go's modfetch and dirhash.HashZip do with a download. */
#include "validate.h"
#include "rfc3339.h"

#include "core/utf8.h"

#include "core/ascii.h"
#include "core/err.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <search.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

/* ---- Printing untrusted names into one-line reasons ---- */

/* Room for a quoted name inside a 240-byte reason. */
#define SHOW_MAX 72

/* Writes s[0..n) into out for a reason: printable ASCII as is, everything
 * else as \xNN, cut with "..." so the whole reason stays one short line. */
static const char *show(char *out, size_t cap, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    int plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
    size_t need = plain ? 1 : 4;
    /* Keep room for "..." and the NUL unless this is the last byte. */
    size_t reserve = i + 1 < n ? 4 : 1;
    if (o + need + reserve > cap) {
      if (o + 4 <= cap) {
        memcpy(out + o, "...", 3);
        o += 3;
      }
      break;
    }
    if (plain) {
      out[o++] = (char)c;
    } else {
      out[o++] = '\\';
      out[o++] = 'x';
      out[o++] = hex[c >> 4];
      out[o++] = hex[c & 15];
    }
  }
  out[o] = '\0';
  return out;
}

static int ascii_lower(int c) {
  return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Locale-free ASCII case-insensitive equality of s[0..n) and the C string t.
 * Enough wherever the other side (go.mod, CON, ...) holds no letter with a
 * non-ASCII fold partner (only K and S have one). */
static int ascii_eqfold(const char *s, size_t n, const char *t) {
  size_t i = 0;
  for (; i < n && t[i]; i++)
    if (ascii_lower((unsigned char)s[i]) != ascii_lower((unsigned char)t[i]))
      return 0;
  return i == n && t[i] == '\0';
}

/* ---- Unicode, as Go 1.19 sees it ---- */


/* Runes lo, lo+stride, ..., hi fold to rune+delta. */
struct fold_range {
  uint32_t lo, hi, stride;
  int32_t delta;
};

/* The two tables below were generated from Go 1.19's unicode package
 * (Unicode 13.0.0) by looping over every rune: letter_ranges holds the runs
 * of unicode.IsLetter above U+007F (what module.fileNameOK allows beyond
 * ASCII); fold_ranges maps each rune to the smallest rune of its
 * unicode.SimpleFold orbit, which is what zip.strToFold compares, as runs of
 * (lo, hi, stride, delta). Checked rune by rune against Go. Folding ASCII
 * only would not do: Go folds "ſ" (U+017F) to "s" and the Kelvin sign to
 * "k", so "ſrc/a.go" and "src/a.go" collide. */
static const uint32_t letter_ranges[][2] = {
    {0xAA, 0xAA},       {0xB5, 0xB5},       {0xBA, 0xBA},
    {0xC0, 0xD6},       {0xD8, 0xF6},       {0xF8, 0x2C1},
    {0x2C6, 0x2D1},     {0x2E0, 0x2E4},     {0x2EC, 0x2EC},
    {0x2EE, 0x2EE},     {0x370, 0x374},     {0x376, 0x377},
    {0x37A, 0x37D},     {0x37F, 0x37F},     {0x386, 0x386},
    {0x388, 0x38A},     {0x38C, 0x38C},     {0x38E, 0x3A1},
    {0x3A3, 0x3F5},     {0x3F7, 0x481},     {0x48A, 0x52F},
    {0x531, 0x556},     {0x559, 0x559},     {0x560, 0x588},
    {0x5D0, 0x5EA},     {0x5EF, 0x5F2},     {0x620, 0x64A},
    {0x66E, 0x66F},     {0x671, 0x6D3},     {0x6D5, 0x6D5},
    {0x6E5, 0x6E6},     {0x6EE, 0x6EF},     {0x6FA, 0x6FC},
    {0x6FF, 0x6FF},     {0x710, 0x710},     {0x712, 0x72F},
    {0x74D, 0x7A5},     {0x7B1, 0x7B1},     {0x7CA, 0x7EA},
    {0x7F4, 0x7F5},     {0x7FA, 0x7FA},     {0x800, 0x815},
    {0x81A, 0x81A},     {0x824, 0x824},     {0x828, 0x828},
    {0x840, 0x858},     {0x860, 0x86A},     {0x8A0, 0x8B4},
    {0x8B6, 0x8C7},     {0x904, 0x939},     {0x93D, 0x93D},
    {0x950, 0x950},     {0x958, 0x961},     {0x971, 0x980},
    {0x985, 0x98C},     {0x98F, 0x990},     {0x993, 0x9A8},
    {0x9AA, 0x9B0},     {0x9B2, 0x9B2},     {0x9B6, 0x9B9},
    {0x9BD, 0x9BD},     {0x9CE, 0x9CE},     {0x9DC, 0x9DD},
    {0x9DF, 0x9E1},     {0x9F0, 0x9F1},     {0x9FC, 0x9FC},
    {0xA05, 0xA0A},     {0xA0F, 0xA10},     {0xA13, 0xA28},
    {0xA2A, 0xA30},     {0xA32, 0xA33},     {0xA35, 0xA36},
    {0xA38, 0xA39},     {0xA59, 0xA5C},     {0xA5E, 0xA5E},
    {0xA72, 0xA74},     {0xA85, 0xA8D},     {0xA8F, 0xA91},
    {0xA93, 0xAA8},     {0xAAA, 0xAB0},     {0xAB2, 0xAB3},
    {0xAB5, 0xAB9},     {0xABD, 0xABD},     {0xAD0, 0xAD0},
    {0xAE0, 0xAE1},     {0xAF9, 0xAF9},     {0xB05, 0xB0C},
    {0xB0F, 0xB10},     {0xB13, 0xB28},     {0xB2A, 0xB30},
    {0xB32, 0xB33},     {0xB35, 0xB39},     {0xB3D, 0xB3D},
    {0xB5C, 0xB5D},     {0xB5F, 0xB61},     {0xB71, 0xB71},
    {0xB83, 0xB83},     {0xB85, 0xB8A},     {0xB8E, 0xB90},
    {0xB92, 0xB95},     {0xB99, 0xB9A},     {0xB9C, 0xB9C},
    {0xB9E, 0xB9F},     {0xBA3, 0xBA4},     {0xBA8, 0xBAA},
    {0xBAE, 0xBB9},     {0xBD0, 0xBD0},     {0xC05, 0xC0C},
    {0xC0E, 0xC10},     {0xC12, 0xC28},     {0xC2A, 0xC39},
    {0xC3D, 0xC3D},     {0xC58, 0xC5A},     {0xC60, 0xC61},
    {0xC80, 0xC80},     {0xC85, 0xC8C},     {0xC8E, 0xC90},
    {0xC92, 0xCA8},     {0xCAA, 0xCB3},     {0xCB5, 0xCB9},
    {0xCBD, 0xCBD},     {0xCDE, 0xCDE},     {0xCE0, 0xCE1},
    {0xCF1, 0xCF2},     {0xD04, 0xD0C},     {0xD0E, 0xD10},
    {0xD12, 0xD3A},     {0xD3D, 0xD3D},     {0xD4E, 0xD4E},
    {0xD54, 0xD56},     {0xD5F, 0xD61},     {0xD7A, 0xD7F},
    {0xD85, 0xD96},     {0xD9A, 0xDB1},     {0xDB3, 0xDBB},
    {0xDBD, 0xDBD},     {0xDC0, 0xDC6},     {0xE01, 0xE30},
    {0xE32, 0xE33},     {0xE40, 0xE46},     {0xE81, 0xE82},
    {0xE84, 0xE84},     {0xE86, 0xE8A},     {0xE8C, 0xEA3},
    {0xEA5, 0xEA5},     {0xEA7, 0xEB0},     {0xEB2, 0xEB3},
    {0xEBD, 0xEBD},     {0xEC0, 0xEC4},     {0xEC6, 0xEC6},
    {0xEDC, 0xEDF},     {0xF00, 0xF00},     {0xF40, 0xF47},
    {0xF49, 0xF6C},     {0xF88, 0xF8C},     {0x1000, 0x102A},
    {0x103F, 0x103F},   {0x1050, 0x1055},   {0x105A, 0x105D},
    {0x1061, 0x1061},   {0x1065, 0x1066},   {0x106E, 0x1070},
    {0x1075, 0x1081},   {0x108E, 0x108E},   {0x10A0, 0x10C5},
    {0x10C7, 0x10C7},   {0x10CD, 0x10CD},   {0x10D0, 0x10FA},
    {0x10FC, 0x1248},   {0x124A, 0x124D},   {0x1250, 0x1256},
    {0x1258, 0x1258},   {0x125A, 0x125D},   {0x1260, 0x1288},
    {0x128A, 0x128D},   {0x1290, 0x12B0},   {0x12B2, 0x12B5},
    {0x12B8, 0x12BE},   {0x12C0, 0x12C0},   {0x12C2, 0x12C5},
    {0x12C8, 0x12D6},   {0x12D8, 0x1310},   {0x1312, 0x1315},
    {0x1318, 0x135A},   {0x1380, 0x138F},   {0x13A0, 0x13F5},
    {0x13F8, 0x13FD},   {0x1401, 0x166C},   {0x166F, 0x167F},
    {0x1681, 0x169A},   {0x16A0, 0x16EA},   {0x16F1, 0x16F8},
    {0x1700, 0x170C},   {0x170E, 0x1711},   {0x1720, 0x1731},
    {0x1740, 0x1751},   {0x1760, 0x176C},   {0x176E, 0x1770},
    {0x1780, 0x17B3},   {0x17D7, 0x17D7},   {0x17DC, 0x17DC},
    {0x1820, 0x1878},   {0x1880, 0x1884},   {0x1887, 0x18A8},
    {0x18AA, 0x18AA},   {0x18B0, 0x18F5},   {0x1900, 0x191E},
    {0x1950, 0x196D},   {0x1970, 0x1974},   {0x1980, 0x19AB},
    {0x19B0, 0x19C9},   {0x1A00, 0x1A16},   {0x1A20, 0x1A54},
    {0x1AA7, 0x1AA7},   {0x1B05, 0x1B33},   {0x1B45, 0x1B4B},
    {0x1B83, 0x1BA0},   {0x1BAE, 0x1BAF},   {0x1BBA, 0x1BE5},
    {0x1C00, 0x1C23},   {0x1C4D, 0x1C4F},   {0x1C5A, 0x1C7D},
    {0x1C80, 0x1C88},   {0x1C90, 0x1CBA},   {0x1CBD, 0x1CBF},
    {0x1CE9, 0x1CEC},   {0x1CEE, 0x1CF3},   {0x1CF5, 0x1CF6},
    {0x1CFA, 0x1CFA},   {0x1D00, 0x1DBF},   {0x1E00, 0x1F15},
    {0x1F18, 0x1F1D},   {0x1F20, 0x1F45},   {0x1F48, 0x1F4D},
    {0x1F50, 0x1F57},   {0x1F59, 0x1F59},   {0x1F5B, 0x1F5B},
    {0x1F5D, 0x1F5D},   {0x1F5F, 0x1F7D},   {0x1F80, 0x1FB4},
    {0x1FB6, 0x1FBC},   {0x1FBE, 0x1FBE},   {0x1FC2, 0x1FC4},
    {0x1FC6, 0x1FCC},   {0x1FD0, 0x1FD3},   {0x1FD6, 0x1FDB},
    {0x1FE0, 0x1FEC},   {0x1FF2, 0x1FF4},   {0x1FF6, 0x1FFC},
    {0x2071, 0x2071},   {0x207F, 0x207F},   {0x2090, 0x209C},
    {0x2102, 0x2102},   {0x2107, 0x2107},   {0x210A, 0x2113},
    {0x2115, 0x2115},   {0x2119, 0x211D},   {0x2124, 0x2124},
    {0x2126, 0x2126},   {0x2128, 0x2128},   {0x212A, 0x212D},
    {0x212F, 0x2139},   {0x213C, 0x213F},   {0x2145, 0x2149},
    {0x214E, 0x214E},   {0x2183, 0x2184},   {0x2C00, 0x2C2E},
    {0x2C30, 0x2C5E},   {0x2C60, 0x2CE4},   {0x2CEB, 0x2CEE},
    {0x2CF2, 0x2CF3},   {0x2D00, 0x2D25},   {0x2D27, 0x2D27},
    {0x2D2D, 0x2D2D},   {0x2D30, 0x2D67},   {0x2D6F, 0x2D6F},
    {0x2D80, 0x2D96},   {0x2DA0, 0x2DA6},   {0x2DA8, 0x2DAE},
    {0x2DB0, 0x2DB6},   {0x2DB8, 0x2DBE},   {0x2DC0, 0x2DC6},
    {0x2DC8, 0x2DCE},   {0x2DD0, 0x2DD6},   {0x2DD8, 0x2DDE},
    {0x2E2F, 0x2E2F},   {0x3005, 0x3006},   {0x3031, 0x3035},
    {0x303B, 0x303C},   {0x3041, 0x3096},   {0x309D, 0x309F},
    {0x30A1, 0x30FA},   {0x30FC, 0x30FF},   {0x3105, 0x312F},
    {0x3131, 0x318E},   {0x31A0, 0x31BF},   {0x31F0, 0x31FF},
    {0x3400, 0x4DBF},   {0x4E00, 0x9FFC},   {0xA000, 0xA48C},
    {0xA4D0, 0xA4FD},   {0xA500, 0xA60C},   {0xA610, 0xA61F},
    {0xA62A, 0xA62B},   {0xA640, 0xA66E},   {0xA67F, 0xA69D},
    {0xA6A0, 0xA6E5},   {0xA717, 0xA71F},   {0xA722, 0xA788},
    {0xA78B, 0xA7BF},   {0xA7C2, 0xA7CA},   {0xA7F5, 0xA801},
    {0xA803, 0xA805},   {0xA807, 0xA80A},   {0xA80C, 0xA822},
    {0xA840, 0xA873},   {0xA882, 0xA8B3},   {0xA8F2, 0xA8F7},
    {0xA8FB, 0xA8FB},   {0xA8FD, 0xA8FE},   {0xA90A, 0xA925},
    {0xA930, 0xA946},   {0xA960, 0xA97C},   {0xA984, 0xA9B2},
    {0xA9CF, 0xA9CF},   {0xA9E0, 0xA9E4},   {0xA9E6, 0xA9EF},
    {0xA9FA, 0xA9FE},   {0xAA00, 0xAA28},   {0xAA40, 0xAA42},
    {0xAA44, 0xAA4B},   {0xAA60, 0xAA76},   {0xAA7A, 0xAA7A},
    {0xAA7E, 0xAAAF},   {0xAAB1, 0xAAB1},   {0xAAB5, 0xAAB6},
    {0xAAB9, 0xAABD},   {0xAAC0, 0xAAC0},   {0xAAC2, 0xAAC2},
    {0xAADB, 0xAADD},   {0xAAE0, 0xAAEA},   {0xAAF2, 0xAAF4},
    {0xAB01, 0xAB06},   {0xAB09, 0xAB0E},   {0xAB11, 0xAB16},
    {0xAB20, 0xAB26},   {0xAB28, 0xAB2E},   {0xAB30, 0xAB5A},
    {0xAB5C, 0xAB69},   {0xAB70, 0xABE2},   {0xAC00, 0xD7A3},
    {0xD7B0, 0xD7C6},   {0xD7CB, 0xD7FB},   {0xF900, 0xFA6D},
    {0xFA70, 0xFAD9},   {0xFB00, 0xFB06},   {0xFB13, 0xFB17},
    {0xFB1D, 0xFB1D},   {0xFB1F, 0xFB28},   {0xFB2A, 0xFB36},
    {0xFB38, 0xFB3C},   {0xFB3E, 0xFB3E},   {0xFB40, 0xFB41},
    {0xFB43, 0xFB44},   {0xFB46, 0xFBB1},   {0xFBD3, 0xFD3D},
    {0xFD50, 0xFD8F},   {0xFD92, 0xFDC7},   {0xFDF0, 0xFDFB},
    {0xFE70, 0xFE74},   {0xFE76, 0xFEFC},   {0xFF21, 0xFF3A},
    {0xFF41, 0xFF5A},   {0xFF66, 0xFFBE},   {0xFFC2, 0xFFC7},
    {0xFFCA, 0xFFCF},   {0xFFD2, 0xFFD7},   {0xFFDA, 0xFFDC},
    {0x10000, 0x1000B}, {0x1000D, 0x10026}, {0x10028, 0x1003A},
    {0x1003C, 0x1003D}, {0x1003F, 0x1004D}, {0x10050, 0x1005D},
    {0x10080, 0x100FA}, {0x10280, 0x1029C}, {0x102A0, 0x102D0},
    {0x10300, 0x1031F}, {0x1032D, 0x10340}, {0x10342, 0x10349},
    {0x10350, 0x10375}, {0x10380, 0x1039D}, {0x103A0, 0x103C3},
    {0x103C8, 0x103CF}, {0x10400, 0x1049D}, {0x104B0, 0x104D3},
    {0x104D8, 0x104FB}, {0x10500, 0x10527}, {0x10530, 0x10563},
    {0x10600, 0x10736}, {0x10740, 0x10755}, {0x10760, 0x10767},
    {0x10800, 0x10805}, {0x10808, 0x10808}, {0x1080A, 0x10835},
    {0x10837, 0x10838}, {0x1083C, 0x1083C}, {0x1083F, 0x10855},
    {0x10860, 0x10876}, {0x10880, 0x1089E}, {0x108E0, 0x108F2},
    {0x108F4, 0x108F5}, {0x10900, 0x10915}, {0x10920, 0x10939},
    {0x10980, 0x109B7}, {0x109BE, 0x109BF}, {0x10A00, 0x10A00},
    {0x10A10, 0x10A13}, {0x10A15, 0x10A17}, {0x10A19, 0x10A35},
    {0x10A60, 0x10A7C}, {0x10A80, 0x10A9C}, {0x10AC0, 0x10AC7},
    {0x10AC9, 0x10AE4}, {0x10B00, 0x10B35}, {0x10B40, 0x10B55},
    {0x10B60, 0x10B72}, {0x10B80, 0x10B91}, {0x10C00, 0x10C48},
    {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x10D00, 0x10D23},
    {0x10E80, 0x10EA9}, {0x10EB0, 0x10EB1}, {0x10F00, 0x10F1C},
    {0x10F27, 0x10F27}, {0x10F30, 0x10F45}, {0x10FB0, 0x10FC4},
    {0x10FE0, 0x10FF6}, {0x11003, 0x11037}, {0x11083, 0x110AF},
    {0x110D0, 0x110E8}, {0x11103, 0x11126}, {0x11144, 0x11144},
    {0x11147, 0x11147}, {0x11150, 0x11172}, {0x11176, 0x11176},
    {0x11183, 0x111B2}, {0x111C1, 0x111C4}, {0x111DA, 0x111DA},
    {0x111DC, 0x111DC}, {0x11200, 0x11211}, {0x11213, 0x1122B},
    {0x11280, 0x11286}, {0x11288, 0x11288}, {0x1128A, 0x1128D},
    {0x1128F, 0x1129D}, {0x1129F, 0x112A8}, {0x112B0, 0x112DE},
    {0x11305, 0x1130C}, {0x1130F, 0x11310}, {0x11313, 0x11328},
    {0x1132A, 0x11330}, {0x11332, 0x11333}, {0x11335, 0x11339},
    {0x1133D, 0x1133D}, {0x11350, 0x11350}, {0x1135D, 0x11361},
    {0x11400, 0x11434}, {0x11447, 0x1144A}, {0x1145F, 0x11461},
    {0x11480, 0x114AF}, {0x114C4, 0x114C5}, {0x114C7, 0x114C7},
    {0x11580, 0x115AE}, {0x115D8, 0x115DB}, {0x11600, 0x1162F},
    {0x11644, 0x11644}, {0x11680, 0x116AA}, {0x116B8, 0x116B8},
    {0x11700, 0x1171A}, {0x11800, 0x1182B}, {0x118A0, 0x118DF},
    {0x118FF, 0x11906}, {0x11909, 0x11909}, {0x1190C, 0x11913},
    {0x11915, 0x11916}, {0x11918, 0x1192F}, {0x1193F, 0x1193F},
    {0x11941, 0x11941}, {0x119A0, 0x119A7}, {0x119AA, 0x119D0},
    {0x119E1, 0x119E1}, {0x119E3, 0x119E3}, {0x11A00, 0x11A00},
    {0x11A0B, 0x11A32}, {0x11A3A, 0x11A3A}, {0x11A50, 0x11A50},
    {0x11A5C, 0x11A89}, {0x11A9D, 0x11A9D}, {0x11AC0, 0x11AF8},
    {0x11C00, 0x11C08}, {0x11C0A, 0x11C2E}, {0x11C40, 0x11C40},
    {0x11C72, 0x11C8F}, {0x11D00, 0x11D06}, {0x11D08, 0x11D09},
    {0x11D0B, 0x11D30}, {0x11D46, 0x11D46}, {0x11D60, 0x11D65},
    {0x11D67, 0x11D68}, {0x11D6A, 0x11D89}, {0x11D98, 0x11D98},
    {0x11EE0, 0x11EF2}, {0x11FB0, 0x11FB0}, {0x12000, 0x12399},
    {0x12480, 0x12543}, {0x13000, 0x1342E}, {0x14400, 0x14646},
    {0x16800, 0x16A38}, {0x16A40, 0x16A5E}, {0x16AD0, 0x16AED},
    {0x16B00, 0x16B2F}, {0x16B40, 0x16B43}, {0x16B63, 0x16B77},
    {0x16B7D, 0x16B8F}, {0x16E40, 0x16E7F}, {0x16F00, 0x16F4A},
    {0x16F50, 0x16F50}, {0x16F93, 0x16F9F}, {0x16FE0, 0x16FE1},
    {0x16FE3, 0x16FE3}, {0x17000, 0x187F7}, {0x18800, 0x18CD5},
    {0x18D00, 0x18D08}, {0x1B000, 0x1B11E}, {0x1B150, 0x1B152},
    {0x1B164, 0x1B167}, {0x1B170, 0x1B2FB}, {0x1BC00, 0x1BC6A},
    {0x1BC70, 0x1BC7C}, {0x1BC80, 0x1BC88}, {0x1BC90, 0x1BC99},
    {0x1D400, 0x1D454}, {0x1D456, 0x1D49C}, {0x1D49E, 0x1D49F},
    {0x1D4A2, 0x1D4A2}, {0x1D4A5, 0x1D4A6}, {0x1D4A9, 0x1D4AC},
    {0x1D4AE, 0x1D4B9}, {0x1D4BB, 0x1D4BB}, {0x1D4BD, 0x1D4C3},
    {0x1D4C5, 0x1D505}, {0x1D507, 0x1D50A}, {0x1D50D, 0x1D514},
    {0x1D516, 0x1D51C}, {0x1D51E, 0x1D539}, {0x1D53B, 0x1D53E},
    {0x1D540, 0x1D544}, {0x1D546, 0x1D546}, {0x1D54A, 0x1D550},
    {0x1D552, 0x1D6A5}, {0x1D6A8, 0x1D6C0}, {0x1D6C2, 0x1D6DA},
    {0x1D6DC, 0x1D6FA}, {0x1D6FC, 0x1D714}, {0x1D716, 0x1D734},
    {0x1D736, 0x1D74E}, {0x1D750, 0x1D76E}, {0x1D770, 0x1D788},
    {0x1D78A, 0x1D7A8}, {0x1D7AA, 0x1D7C2}, {0x1D7C4, 0x1D7CB},
    {0x1E100, 0x1E12C}, {0x1E137, 0x1E13D}, {0x1E14E, 0x1E14E},
    {0x1E2C0, 0x1E2EB}, {0x1E800, 0x1E8C4}, {0x1E900, 0x1E943},
    {0x1E94B, 0x1E94B}, {0x1EE00, 0x1EE03}, {0x1EE05, 0x1EE1F},
    {0x1EE21, 0x1EE22}, {0x1EE24, 0x1EE24}, {0x1EE27, 0x1EE27},
    {0x1EE29, 0x1EE32}, {0x1EE34, 0x1EE37}, {0x1EE39, 0x1EE39},
    {0x1EE3B, 0x1EE3B}, {0x1EE42, 0x1EE42}, {0x1EE47, 0x1EE47},
    {0x1EE49, 0x1EE49}, {0x1EE4B, 0x1EE4B}, {0x1EE4D, 0x1EE4F},
    {0x1EE51, 0x1EE52}, {0x1EE54, 0x1EE54}, {0x1EE57, 0x1EE57},
    {0x1EE59, 0x1EE59}, {0x1EE5B, 0x1EE5B}, {0x1EE5D, 0x1EE5D},
    {0x1EE5F, 0x1EE5F}, {0x1EE61, 0x1EE62}, {0x1EE64, 0x1EE64},
    {0x1EE67, 0x1EE6A}, {0x1EE6C, 0x1EE72}, {0x1EE74, 0x1EE77},
    {0x1EE79, 0x1EE7C}, {0x1EE7E, 0x1EE7E}, {0x1EE80, 0x1EE89},
    {0x1EE8B, 0x1EE9B}, {0x1EEA1, 0x1EEA3}, {0x1EEA5, 0x1EEA9},
    {0x1EEAB, 0x1EEBB}, {0x20000, 0x2A6DD}, {0x2A700, 0x2B734},
    {0x2B740, 0x2B81D}, {0x2B820, 0x2CEA1}, {0x2CEB0, 0x2EBE0},
    {0x2F800, 0x2FA1D}, {0x30000, 0x3134A},
};

static const struct fold_range fold_ranges[] = {
    {0x61, 0x7A, 1, -32},        {0xE0, 0xF6, 1, -32},
    {0xF8, 0xFE, 1, -32},        {0x101, 0x12F, 2, -1},
    {0x133, 0x137, 2, -1},       {0x13A, 0x148, 2, -1},
    {0x14B, 0x177, 2, -1},       {0x178, 0x178, 1, -121},
    {0x17A, 0x17E, 2, -1},       {0x17F, 0x17F, 1, -300},
    {0x183, 0x185, 2, -1},       {0x188, 0x188, 1, -1},
    {0x18C, 0x18C, 1, -1},       {0x192, 0x192, 1, -1},
    {0x199, 0x199, 1, -1},       {0x1A1, 0x1A5, 2, -1},
    {0x1A8, 0x1A8, 1, -1},       {0x1AD, 0x1AD, 1, -1},
    {0x1B0, 0x1B0, 1, -1},       {0x1B4, 0x1B6, 2, -1},
    {0x1B9, 0x1B9, 1, -1},       {0x1BD, 0x1BD, 1, -1},
    {0x1C5, 0x1C5, 1, -1},       {0x1C6, 0x1C6, 1, -2},
    {0x1C8, 0x1C8, 1, -1},       {0x1C9, 0x1C9, 1, -2},
    {0x1CB, 0x1CB, 1, -1},       {0x1CC, 0x1CC, 1, -2},
    {0x1CE, 0x1DC, 2, -1},       {0x1DD, 0x1DD, 1, -79},
    {0x1DF, 0x1EF, 2, -1},       {0x1F2, 0x1F2, 1, -1},
    {0x1F3, 0x1F3, 1, -2},       {0x1F5, 0x1F5, 1, -1},
    {0x1F6, 0x1F6, 1, -97},      {0x1F7, 0x1F7, 1, -56},
    {0x1F9, 0x21F, 2, -1},       {0x220, 0x220, 1, -130},
    {0x223, 0x233, 2, -1},       {0x23C, 0x23C, 1, -1},
    {0x23D, 0x23D, 1, -163},     {0x242, 0x242, 1, -1},
    {0x243, 0x243, 1, -195},     {0x247, 0x24F, 2, -1},
    {0x253, 0x253, 1, -210},     {0x254, 0x254, 1, -206},
    {0x256, 0x257, 1, -205},     {0x259, 0x259, 1, -202},
    {0x25B, 0x25B, 1, -203},     {0x260, 0x260, 1, -205},
    {0x263, 0x263, 1, -207},     {0x268, 0x268, 1, -209},
    {0x269, 0x269, 1, -211},     {0x26F, 0x26F, 1, -211},
    {0x272, 0x272, 1, -213},     {0x275, 0x275, 1, -214},
    {0x280, 0x280, 1, -218},     {0x283, 0x283, 1, -218},
    {0x288, 0x288, 1, -218},     {0x289, 0x289, 1, -69},
    {0x28A, 0x28B, 1, -217},     {0x28C, 0x28C, 1, -71},
    {0x292, 0x292, 1, -219},     {0x371, 0x373, 2, -1},
    {0x377, 0x377, 1, -1},       {0x399, 0x399, 1, -84},
    {0x39C, 0x39C, 1, -743},     {0x3AC, 0x3AC, 1, -38},
    {0x3AD, 0x3AF, 1, -37},      {0x3B1, 0x3B8, 1, -32},
    {0x3B9, 0x3B9, 1, -116},     {0x3BA, 0x3BB, 1, -32},
    {0x3BC, 0x3BC, 1, -775},     {0x3BD, 0x3C1, 1, -32},
    {0x3C2, 0x3C2, 1, -31},      {0x3C3, 0x3CB, 1, -32},
    {0x3CC, 0x3CC, 1, -64},      {0x3CD, 0x3CE, 1, -63},
    {0x3D0, 0x3D0, 1, -62},      {0x3D1, 0x3D1, 1, -57},
    {0x3D5, 0x3D5, 1, -47},      {0x3D6, 0x3D6, 1, -54},
    {0x3D7, 0x3D7, 1, -8},       {0x3D9, 0x3EF, 2, -1},
    {0x3F0, 0x3F0, 1, -86},      {0x3F1, 0x3F1, 1, -80},
    {0x3F3, 0x3F3, 1, -116},     {0x3F4, 0x3F4, 1, -92},
    {0x3F5, 0x3F5, 1, -96},      {0x3F8, 0x3F8, 1, -1},
    {0x3F9, 0x3F9, 1, -7},       {0x3FB, 0x3FB, 1, -1},
    {0x3FD, 0x3FF, 1, -130},     {0x430, 0x44F, 1, -32},
    {0x450, 0x45F, 1, -80},      {0x461, 0x481, 2, -1},
    {0x48B, 0x4BF, 2, -1},       {0x4C2, 0x4CE, 2, -1},
    {0x4CF, 0x4CF, 1, -15},      {0x4D1, 0x52F, 2, -1},
    {0x561, 0x586, 1, -48},      {0x13F8, 0x13FD, 1, -8},
    {0x1C80, 0x1C80, 1, -6254},  {0x1C81, 0x1C81, 1, -6253},
    {0x1C82, 0x1C82, 1, -6244},  {0x1C83, 0x1C84, 1, -6242},
    {0x1C85, 0x1C85, 1, -6243},  {0x1C86, 0x1C86, 1, -6236},
    {0x1C87, 0x1C87, 1, -6181},  {0x1C90, 0x1CBA, 1, -3008},
    {0x1CBD, 0x1CBF, 1, -3008},  {0x1E01, 0x1E95, 2, -1},
    {0x1E9B, 0x1E9B, 1, -59},    {0x1E9E, 0x1E9E, 1, -7615},
    {0x1EA1, 0x1EFF, 2, -1},     {0x1F08, 0x1F0F, 1, -8},
    {0x1F18, 0x1F1D, 1, -8},     {0x1F28, 0x1F2F, 1, -8},
    {0x1F38, 0x1F3F, 1, -8},     {0x1F48, 0x1F4D, 1, -8},
    {0x1F59, 0x1F5F, 2, -8},     {0x1F68, 0x1F6F, 1, -8},
    {0x1F88, 0x1F8F, 1, -8},     {0x1F98, 0x1F9F, 1, -8},
    {0x1FA8, 0x1FAF, 1, -8},     {0x1FB8, 0x1FB9, 1, -8},
    {0x1FBA, 0x1FBB, 1, -74},    {0x1FBC, 0x1FBC, 1, -9},
    {0x1FBE, 0x1FBE, 1, -7289},  {0x1FC8, 0x1FCB, 1, -86},
    {0x1FCC, 0x1FCC, 1, -9},     {0x1FD8, 0x1FD9, 1, -8},
    {0x1FDA, 0x1FDB, 1, -100},   {0x1FE8, 0x1FE9, 1, -8},
    {0x1FEA, 0x1FEB, 1, -112},   {0x1FEC, 0x1FEC, 1, -7},
    {0x1FF8, 0x1FF9, 1, -128},   {0x1FFA, 0x1FFB, 1, -126},
    {0x1FFC, 0x1FFC, 1, -9},     {0x2126, 0x2126, 1, -7549},
    {0x212A, 0x212A, 1, -8415},  {0x212B, 0x212B, 1, -8294},
    {0x214E, 0x214E, 1, -28},    {0x2170, 0x217F, 1, -16},
    {0x2184, 0x2184, 1, -1},     {0x24D0, 0x24E9, 1, -26},
    {0x2C30, 0x2C5E, 1, -48},    {0x2C61, 0x2C61, 1, -1},
    {0x2C62, 0x2C62, 1, -10743}, {0x2C63, 0x2C63, 1, -3814},
    {0x2C64, 0x2C64, 1, -10727}, {0x2C65, 0x2C65, 1, -10795},
    {0x2C66, 0x2C66, 1, -10792}, {0x2C68, 0x2C6C, 2, -1},
    {0x2C6D, 0x2C6D, 1, -10780}, {0x2C6E, 0x2C6E, 1, -10749},
    {0x2C6F, 0x2C6F, 1, -10783}, {0x2C70, 0x2C70, 1, -10782},
    {0x2C73, 0x2C73, 1, -1},     {0x2C76, 0x2C76, 1, -1},
    {0x2C7E, 0x2C7F, 1, -10815}, {0x2C81, 0x2CE3, 2, -1},
    {0x2CEC, 0x2CEE, 2, -1},     {0x2CF3, 0x2CF3, 1, -1},
    {0x2D00, 0x2D25, 1, -7264},  {0x2D27, 0x2D27, 1, -7264},
    {0x2D2D, 0x2D2D, 1, -7264},  {0xA641, 0xA649, 2, -1},
    {0xA64A, 0xA64A, 1, -35266}, {0xA64B, 0xA64B, 1, -35267},
    {0xA64D, 0xA66D, 2, -1},     {0xA681, 0xA69B, 2, -1},
    {0xA723, 0xA72F, 2, -1},     {0xA733, 0xA76F, 2, -1},
    {0xA77A, 0xA77C, 2, -1},     {0xA77D, 0xA77D, 1, -35332},
    {0xA77F, 0xA787, 2, -1},     {0xA78C, 0xA78C, 1, -1},
    {0xA78D, 0xA78D, 1, -42280}, {0xA791, 0xA793, 2, -1},
    {0xA797, 0xA7A9, 2, -1},     {0xA7AA, 0xA7AA, 1, -42308},
    {0xA7AB, 0xA7AB, 1, -42319}, {0xA7AC, 0xA7AC, 1, -42315},
    {0xA7AD, 0xA7AD, 1, -42305}, {0xA7AE, 0xA7AE, 1, -42308},
    {0xA7B0, 0xA7B0, 1, -42258}, {0xA7B1, 0xA7B1, 1, -42282},
    {0xA7B2, 0xA7B2, 1, -42261}, {0xA7B5, 0xA7BF, 2, -1},
    {0xA7C3, 0xA7C3, 1, -1},     {0xA7C4, 0xA7C4, 1, -48},
    {0xA7C5, 0xA7C5, 1, -42307}, {0xA7C6, 0xA7C6, 1, -35384},
    {0xA7C8, 0xA7CA, 2, -1},     {0xA7F6, 0xA7F6, 1, -1},
    {0xAB53, 0xAB53, 1, -928},   {0xAB70, 0xABBF, 1, -38864},
    {0xFF41, 0xFF5A, 1, -32},    {0x10428, 0x1044F, 1, -40},
    {0x104D8, 0x104FB, 1, -40},  {0x10CC0, 0x10CF2, 1, -64},
    {0x118C0, 0x118DF, 1, -32},  {0x16E60, 0x16E7F, 1, -32},
    {0x1E922, 0x1E943, 1, -34},
};

static int bsearch_letter(uint32_t r) {
  size_t lo = 0, hi = sizeof letter_ranges / sizeof letter_ranges[0];
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (r < letter_ranges[mid][0])
      hi = mid;
    else if (r > letter_ranges[mid][1])
      lo = mid + 1;
    else
      return 1;
  }
  return 0;
}

static uint32_t fold_rune(uint32_t r) {
  size_t lo = 0, hi = sizeof fold_ranges / sizeof fold_ranges[0];
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const struct fold_range *f = &fold_ranges[mid];
    if (r < f->lo) {
      hi = mid;
    } else if (r > f->hi) {
      lo = mid + 1;
    } else {
      if ((r - f->lo) % f->stride == 0)
        return (uint32_t)((int32_t)r + f->delta);
      return r;
    }
  }
  return r;
}

/* Writes the fold of valid UTF-8 s[0..n) to out (at least n bytes: a rune's
 * fold is never longer than the rune) and returns its length. */
static size_t fold_string(const char *s, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    uint32_t r;
    size_t k = utf8_decode((const unsigned char *)s + i, n - i, &r);
    if (k == 0) { /* Not reached for checked names; copy the byte. */
      out[o++] = s[i++];
      continue;
    }
    o += utf8_encode(fold_rune(r), out + o);
    i += k;
  }
  return o;
}

/* strings.EqualFold for valid UTF-8 s[0..n) and the C string t. */
static int unicode_eqfold(const char *s, size_t n, const char *t) {
  size_t tn = strlen(t), i = 0, j = 0;
  while (i < n && j < tn) {
    uint32_t a, b;
    size_t ka = utf8_decode((const unsigned char *)s + i, n - i, &a);
    size_t kb = utf8_decode((const unsigned char *)t + j, tn - j, &b);
    if (ka == 0 || kb == 0 || fold_rune(a) != fold_rune(b))
      return 0;
    i += ka;
    j += kb;
  }
  return i == n && j == tn;
}

/* ---- .mod ---- */

/* The go command reads a dependency's go.mod with modfile.ParseLax and
 * wants its module directive (cmd/go/internal/modload rawGoModSummary,
 * x/mod modfile read.go and rule.go). What follows is that lexer and
 * statement parser, ported for the module directive only: the syntax of
 * the whole file is checked, the arguments of go, require and retract are
 * not (the client checks those). */

enum {
  MT_EOF = -1,
  MT_EOLCOMMENT = -2,
  MT_IDENT = -3,
  MT_STRING = -4,
  MT_COMMENT = -5,
};

struct modtok {
  int kind; /* an MT_* or the punctuation byte itself */
  size_t start, len;
};

struct modlex {
  const char *s;
  size_t n, pos;
  struct modtok tok; /* the next token, as modfile's input.token */
  const char *err;   /* first syntax error, a static string */
  size_t err_pos;
};

/* Non-ASCII runes unicode.IsPrint refuses or unicode.IsSpace accepts (Go
 * 1.19): spaces, controls, format characters, surrogates, private use and
 * noncharacters. Unassigned code points, which Go refuses too, are let
 * through: the client still parses the file. */
static const uint32_t mod_nonident[][2] = {
    {0x80, 0xA0},       {0xAD, 0xAD},       {0x600, 0x605},
    {0x61C, 0x61C},     {0x6DD, 0x6DD},     {0x70F, 0x70F},
    {0x8E2, 0x8E2},     {0x1680, 0x1680},   {0x180E, 0x180E},
    {0x2000, 0x200F},   {0x2028, 0x202F},   {0x205F, 0x2064},
    {0x2066, 0x206F},   {0x3000, 0x3000},   {0xD800, 0xF8FF},
    {0xFDD0, 0xFDEF},   {0xFEFF, 0xFEFF},   {0xFFF9, 0xFFFB},
    {0xFFFE, 0xFFFF},   {0x110BD, 0x110BD}, {0x110CD, 0x110CD},
    {0x13430, 0x13438}, {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A},
    {0xE0001, 0xE0001}, {0xE0020, 0xE007F}, {0xF0000, 0x10FFFF},
};

/* modfile isIdent. */
static int mod_is_ident(uint32_t r) {
  if (r < 0x80)
    return r > 0x20 && r < 0x7f && !strchr("()[]{},", (int)r);
  if ((r & 0xfffe) == 0xfffe)
    return 0; /* U+xFFFE and U+xFFFF in every plane */
  for (size_t i = 0; i < sizeof mod_nonident / sizeof *mod_nonident; i++)
    if (r >= mod_nonident[i][0] && r <= mod_nonident[i][1])
      return 0;
  return 1;
}

/* utf8.DecodeRune: an invalid byte reads as U+FFFD of length 1. */
static size_t mod_rune(const struct modlex *lx, size_t at, uint32_t *r) {
  if (at >= lx->n) {
    *r = 0;
    return 0;
  }
  size_t k = utf8_decode((const unsigned char *)lx->s + at, lx->n - at, r);
  if (!k) {
    *r = 0xfffd;
    k = 1;
  }
  return k;
}

static int mod_prefix(const struct modlex *lx, const char *p) {
  size_t k = strlen(p);
  return lx->n - lx->pos >= k && !memcmp(lx->s + lx->pos, p, k);
}

static void mod_error(struct modlex *lx, const char *msg) {
  if (!lx->err) {
    lx->err = msg;
    lx->err_pos = lx->pos;
  }
  lx->tok.kind = MT_EOF; /* stop the parser */
  lx->tok.start = lx->pos;
  lx->tok.len = 0;
  lx->pos = lx->n;
}

/* modfile input.readToken. */
static void mod_read_token(struct modlex *lx) {
  if (lx->err)
    return;
  while (lx->pos < lx->n) {
    char c = lx->s[lx->pos];
    if (c == ' ' || c == '\t' || c == '\r') {
      lx->pos++;
      continue;
    }
    if (mod_prefix(lx, "//")) {
      /* A comment alone on its line is a top-level _COMMENT; after
       * something else on the line it ends that line (_EOLCOMMENT). */
      size_t ls = lx->pos;
      while (ls > 0 && lx->s[ls - 1] != '\n')
        ls--;
      int suffix = 0;
      for (size_t i = ls; i < lx->pos; i++)
        if (lx->s[i] != ' ' && lx->s[i] != '\t' && lx->s[i] != '\r')
          suffix = 1;
      lx->tok.start = lx->pos;
      const char *nl = memchr(lx->s + lx->pos, '\n', lx->n - lx->pos);
      lx->pos = nl ? (size_t)(nl - lx->s) + 1 : lx->n;
      lx->tok.kind = suffix ? MT_EOLCOMMENT : MT_COMMENT;
      lx->tok.len = lx->pos - lx->tok.start;
      return;
    }
    if (mod_prefix(lx, "/*")) {
      mod_error(lx, "mod files must use // comments (not /* */ comments)");
      return;
    }
    break;
  }
  lx->tok.start = lx->pos;
  lx->tok.len = 0;
  if (lx->pos >= lx->n) {
    lx->tok.kind = MT_EOF;
    return;
  }
  char c = lx->s[lx->pos];
  if (strchr("\n()[]{},", c)) {
    lx->pos++;
    lx->tok.kind = (unsigned char)c;
    lx->tok.len = 1;
    return;
  }
  if (c == '"' || c == '`') {
    lx->pos++;
    for (;;) {
      if (lx->pos >= lx->n) {
        lx->pos = lx->tok.start;
        mod_error(lx, "unexpected EOF in string");
        return;
      }
      char d = lx->s[lx->pos];
      if (d == '\n') {
        mod_error(lx, "unexpected newline in string");
        return;
      }
      uint32_t r;
      lx->pos += mod_rune(lx, lx->pos, &r);
      if (d == c)
        break;
      if (d == '\\' && c != '`') {
        if (lx->pos >= lx->n) {
          lx->pos = lx->tok.start;
          mod_error(lx, "unexpected EOF in string");
          return;
        }
        lx->pos += mod_rune(lx, lx->pos, &r);
      }
    }
    lx->tok.kind = MT_STRING;
    lx->tok.len = lx->pos - lx->tok.start;
    return;
  }
  uint32_t r;
  size_t k = mod_rune(lx, lx->pos, &r);
  if (!mod_is_ident(r)) {
    mod_error(lx, "unexpected input character");
    return;
  }
  while (k && mod_is_ident(r)) {
    if (mod_prefix(lx, "//"))
      break;
    if (mod_prefix(lx, "/*")) {
      mod_error(lx, "mod files must use // comments (not /* */ comments)");
      return;
    }
    lx->pos += k;
    k = mod_rune(lx, lx->pos, &r);
  }
  lx->tok.kind = MT_IDENT;
  lx->tok.len = lx->pos - lx->tok.start;
}

static struct modtok mod_lex(struct modlex *lx) {
  struct modtok t = lx->tok;
  mod_read_token(lx);
  return t;
}

static int mod_is_eol(int kind) {
  return kind == MT_EOF || kind == MT_EOLCOMMENT || kind == '\n';
}

/* What the module directives of a file said. */
struct modscan {
  int count;           /* module statements seen */
  const char *problem; /* first problem with one, a static string */
  struct modtok arg;   /* the argument of the first one */
  int nargs;           /* its number of arguments */
};

/* modfile File.add for verb "module": only the first statement counts, a
 * second one is an error. */
static void mod_directive(struct modscan *ms, int nargs,
                          const struct modtok *arg) {
  if (ms->count++) {
    if (!ms->problem)
      ms->problem = "repeated module statement";
    return;
  }
  ms->nargs = nargs;
  if (nargs == 1)
    ms->arg = *arg;
  else if (!ms->problem)
    ms->problem = "usage: module module/path";
}

static int tok_is(const struct modlex *lx, const struct modtok *t,
                  const char *word) {
  size_t k = strlen(word);
  return t->kind == MT_IDENT && t->len == k &&
         !memcmp(lx->s + t->start, word, k);
}

/* modfile parseLine: the tokens of one line inside a block. */
static void mod_block_line(struct modlex *lx, struct modscan *ms,
                           int is_module) {
  struct modtok first = mod_lex(lx);
  int n = 1;
  while (!mod_is_eol(lx->tok.kind)) {
    mod_lex(lx);
    n++;
  }
  mod_lex(lx); /* the end of the line */
  if (is_module)
    mod_directive(ms, n, &first);
}

/* modfile parseLineBlock, after "verb (". */
static void mod_block(struct modlex *lx, struct modscan *ms, int is_module) {
  for (;;) {
    int k = lx->tok.kind;
    if (lx->err)
      return;
    if (k == MT_EOLCOMMENT || k == '\n' || k == MT_COMMENT) {
      mod_lex(lx);
    } else if (k == MT_EOF) {
      mod_error(lx, "syntax error (unterminated block)");
      return;
    } else if (k == ')') {
      mod_lex(lx);
      if (!mod_is_eol(lx->tok.kind)) {
        mod_error(lx, "syntax error (expected newline after closing paren)");
        return;
      }
      mod_lex(lx);
      return;
    } else {
      mod_block_line(lx, ms, is_module);
    }
  }
}

/* modfile parseStmt: a line, or a block when it ends in '('. */
static void mod_stmt(struct modlex *lx, struct modscan *ms) {
  struct modtok t0 = mod_lex(lx), t1 = {0};
  int n = 1;
  for (;;) {
    struct modtok t = mod_lex(lx);
    if (mod_is_eol(t.kind)) {
      if (tok_is(lx, &t0, "module"))
        mod_directive(ms, n - 1, &t1);
      return;
    }
    if (t.kind == '(') {
      if (mod_is_eol(lx->tok.kind)) {
        /* A block. Lax parsing reads only blocks of one verb. */
        mod_block(lx, ms, n == 1 && tok_is(lx, &t0, "module"));
        return;
      }
      if (lx->tok.kind == ')') {
        mod_lex(lx);
        if (mod_is_eol(lx->tok.kind)) {
          mod_lex(lx); /* an empty block: no statement */
          return;
        }
        if (n == 1)
          t1 = t;
        n += 2;
        continue;
      }
    }
    if (n == 1)
      t1 = t;
    n++;
  }
}

/* strconv.Unquote of a double-quoted token into out (cap bytes). 0, or -1
 * when Go refuses it or it does not fit. */
static int mod_unquote(const char *s, size_t n, char *out, size_t cap,
                       size_t *out_n) {
  size_t o = 0, i = 1;
  if (n < 2 || s[0] != '"' || s[n - 1] != '"')
    return -1;
  while (i < n - 1) {
    unsigned char c = (unsigned char)s[i];
    char enc[4];
    size_t el = 0;
    if (c == '"' || c == '\n')
      return -1;
    if (c != '\\') {
      uint32_t r;
      size_t k = utf8_decode((const unsigned char *)s + i, n - 1 - i, &r);
      if (!k) { /* Go writes U+FFFD for an invalid byte */
        r = 0xfffd;
        k = 1;
      }
      el = utf8_encode(r, enc);
      i += k;
    } else {
      if (i + 1 >= n - 1)
        return -1;
      char e = s[i + 1];
      const char *simple = strchr("abfnrtv\\\"", e);
      if (e && simple) {
        enc[0] = "\a\b\f\n\r\t\v\\\""[simple - "abfnrtv\\\""];
        el = 1;
        i += 2;
      } else if (e == 'x' || e == 'u' || e == 'U') {
        size_t digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        if (i + 2 + digits > n - 1)
          return -1;
        uint32_t v = 0;
        for (size_t d = 0; d < digits; d++) {
          int h = ascii_hexval(s[i + 2 + d]);
          if (h < 0)
            return -1;
          v = v << 4 | (uint32_t)h;
        }
        if (e == 'x') {
          enc[0] = (char)v;
          el = 1;
        } else {
          if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
            return -1;
          el = utf8_encode(v, enc);
        }
        i += 2 + digits;
      } else if (e >= '0' && e <= '7') {
        if (i + 4 > n - 1)
          return -1;
        uint32_t v = 0;
        for (size_t d = 1; d <= 3; d++) {
          char oc = s[i + d];
          if (oc < '0' || oc > '7')
            return -1;
          v = v * 8 + (uint32_t)(oc - '0');
        }
        if (v > 255)
          return -1;
        enc[0] = (char)v;
        el = 1;
        i += 4;
      } else {
        return -1;
      }
    }
    if (o + el >= cap)
      return -1;
    memcpy(out + o, enc, el);
    o += el;
  }
  out[o] = '\0';
  *out_n = o;
  return 0;
}

/* x/mod module.SplitPathVersion: the major-version suffix of p[0..n) (""
 * when none) at p + *suffix; 0 when the suffix is malformed. */
static int mod_split_major(const char *p, size_t n, size_t *suffix) {
  *suffix = n;
  size_t i = n;
  if (n >= 9 && !memcmp(p, "gopkg.in/", 9)) {
    if (n >= 18 && !memcmp(p + n - 9, "-unstable", 9))
      i -= 9;
    while (i > 0 && p[i - 1] >= '0' && p[i - 1] <= '9')
      i--;
    if (i <= 1 || p[i - 1] != 'v' || p[i - 2] != '.')
      return 0;
    size_t mn = n - (i - 2);
    if (mn <= 2 || (p[i] == '0' && !(mn == 3)))
      return 0;
    *suffix = i - 2;
    return 1;
  }
  int dot = 0;
  while (i > 0 && ((p[i - 1] >= '0' && p[i - 1] <= '9') || p[i - 1] == '.')) {
    dot |= p[i - 1] == '.';
    i--;
  }
  if (i <= 1 || i == n || p[i - 1] != 'v' || p[i - 2] != '/')
    return 1;
  size_t mn = n - (i - 2);
  if (dot || mn <= 2 || p[i] == '0' || (mn == 3 && p[i] == '1'))
    return 0;
  *suffix = i - 2;
  return 1;
}

/* The "vN" of a major suffix ("/v2", ".v1", ".v2-unstable"): its length
 * after the separator, without "-unstable". */
static size_t mod_major_len(const char *m, size_t mn) {
  if (mn >= 9 && m[0] == '.' && !memcmp(m + mn - 9, "-unstable", 9))
    mn -= 9;
  return mn ? mn - 1 : 0;
}

/* cmd/go modfetch isMajor (with canReplaceMismatchedVersionDueToBug): a
 * go.mod declaring decl may be served for the requested path when their
 * major versions agree. This is what `go mod download` itself accepts from
 * version control, so that a fork keeping its original module path can be
 * used in a replace directive. */
static int mod_same_major(const char *decl, size_t dn, const char *want) {
  size_t wn = strlen(want), ws, ds;
  if (!mod_split_major(want, wn, &ws))
    return 0;
  if (ws == wn && dn >= 9 && !memcmp(decl, "gopkg.in/", 9))
    return 1; /* canReplaceMismatchedVersionDueToBug, golang.org/issue/34254 */
  if (!mod_split_major(decl, dn, &ds))
    return 0;
  const char *wm = want + ws, *dm = decl + ds;
  size_t wml = wn - ws, dml = dn - ds;
  if (wml == 0) {
    size_t k = mod_major_len(dm, dml);
    return dml == 0 ||
           (k == 2 && dm[1] == 'v' && (dm[2] == '0' || dm[2] == '1'));
  }
  if (dml == 0)
    return 0;
  return wml == dml && !memcmp(wm + 1, dm + 1, wml - 1);
}

/* Room for any module path worth comparing (Go sets no limit). */
#define MOD_PATH_CAP 1024

int validate_mod(const char *body, size_t len, const char *module,
                 struct reason *why) {
  if (len > VALIDATE_MOD_MAX)
    return reason_set(why, ERR_TOO_LARGE,
                      "upstream .mod is %zu bytes (limit %u)", len,
                      VALIDATE_MOD_MAX);
  if ((len && !body) || !module || !*module)
    return reason_set(why, ERR_INVALID, "validate_mod: missing argument");
  const char *nul = len ? memchr(body, '\0', len) : NULL;
  if (nul)
    return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "upstream .mod holds a NUL byte at offset %zu",
                      (size_t)(nul - body));

  struct modlex lx = {.s = body ? body : "", .n = len};
  struct modscan ms = {0};
  mod_read_token(&lx);
  while (!lx.err && lx.tok.kind != MT_EOF) {
    if (lx.tok.kind == '\n' || lx.tok.kind == MT_COMMENT)
      mod_lex(&lx);
    else
      mod_stmt(&lx, &ms);
  }
  if (lx.err) {
    size_t line = 1;
    for (size_t i = 0; i < lx.err_pos && i < len; i++)
      line += body[i] == '\n';
    return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "upstream .mod for %s is not a go.mod file: line %zu: %s",
                      module, line, lx.err);
  }
  if (!ms.count)
    return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "upstream .mod for %s has no module line", module);
  if (ms.problem)
    return reason_set(why, ERR_BAD_UPSTREAM_DATA, "upstream .mod for %s: %s",
                      module, ms.problem);

  const char *t = body + ms.arg.start;
  size_t tn = ms.arg.len;
  char path[MOD_PATH_CAP + 1];
  size_t pn = 0;
  if (tn && t[0] == '"') {
    if (mod_unquote(t, tn, path, sizeof path, &pn))
      return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                        "upstream .mod for %s: invalid quoted module path",
                        module);
  } else {
    if (memchr(t, '"', tn) || memchr(t, '\'', tn) || memchr(t, '`', tn))
      return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                        "upstream .mod for %s: unquoted module path "
                        "cannot contain a quote",
                        module);
    if (tn > MOD_PATH_CAP)
      return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                        "upstream .mod for %s: module path too long", module);
    memcpy(path, t, tn);
    path[tn] = '\0';
    pn = tn;
  }
  if (pn == 0)
    return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "upstream .mod for %s: missing module path", module);
  if (strlen(path) == pn &&
      (strcmp(path, module) == 0 || mod_same_major(path, pn, module)))
    return 0;
  char shown[SHOW_MAX];
  return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                    "upstream .mod for %s declares module \"%s\"", module,
                    show(shown, sizeof shown, path, pn));
}

/* ---- .info ---- */

/* Go's encoding/json matches keys to fields case-insensitively, so
 * {"version": ...} or a second "VERSION" would be read as Version by the
 * client. We only accept the exact spelling and refuse look-alikes, so we
 * never pass on a body the client reads differently from us. */
static int key_is_lookalike(const char *key, const char *field) {
  return strcmp(key, field) != 0 && unicode_eqfold(key, strlen(key), field);
}

int validate_info(const char *body, size_t len, const char *want,
                  int want_exact, char *version_out, size_t cap,
                  struct reason *why) {
  char a[SHOW_MAX], b[SHOW_MAX];
  if (len > VALIDATE_INFO_MAX)
    return reason_set(why, ERR_TOO_LARGE,
                      "upstream .info is %zu bytes (limit %u)", len,
                      VALIDATE_INFO_MAX);
  if ((len && !body) || (want_exact && !want))
    return reason_set(why, ERR_INVALID, "validate_info: missing argument");
  /* json-c stops at a NUL; Go's decoder rejects one anywhere. */
  if (len == 0 || memchr(body, '\0', len))
    return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "upstream .info is not valid JSON");

  int rc = 0;
  struct json_object *obj = NULL;
  struct json_tokener *tok = json_tokener_new();
  if (!tok)
    return reason_set(why, ERR_NOMEM, "out of memory parsing .info");
  json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
  obj = json_tokener_parse_ex(tok, body, (int)len);
  enum json_tokener_error jerr = json_tokener_get_error(tok);
  if (!obj || jerr != json_tokener_success) {
    rc = reason_set(
        why, ERR_BAD_UPSTREAM_DATA, "upstream .info is not valid JSON: %s",
        jerr == json_tokener_continue ? "unexpected end of input"
                                      : json_tokener_error_desc(jerr));
    goto out;
  }
  for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
    if (body[i] != ' ' && body[i] != '\t' && body[i] != '\n' &&
        body[i] != '\r') {
      rc = reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "upstream .info has data after the JSON object");
      goto out;
    }
  }
  if (!json_object_is_type(obj, json_type_object)) {
    rc = reason_set(why, ERR_BAD_UPSTREAM_DATA,
                    "upstream .info is not a JSON object");
    goto out;
  }
  json_object_object_foreach(obj, key, val) {
    (void)val;
    if (key_is_lookalike(key, "Version") || key_is_lookalike(key, "Time")) {
      rc = reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "upstream .info has an ambiguous key \"%s\"",
                      show(a, sizeof a, key, strlen(key)));
      goto out;
    }
  }

  struct json_object *jv = NULL, *jt = NULL;
  if (!json_object_object_get_ex(obj, "Version", &jv) ||
      !json_object_is_type(jv, json_type_string)) {
    rc = reason_set(why, ERR_BAD_UPSTREAM_DATA,
                    "upstream .info has no \"Version\" string");
    goto out;
  }
  const char *v = json_object_get_string(jv);
  size_t vlen = (size_t)json_object_get_string_len(jv);
  for (size_t i = 0; i < vlen; i++) {
    unsigned char c = (unsigned char)v[i];
    if (c < 0x21 || c == 0x7f) {
      rc = reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "upstream .info Version \"%s\" holds a space or "
                      "control byte",
                      show(a, sizeof a, v, vlen));
      goto out;
    }
  }
  if (vlen == 0) {
    rc = reason_set(why, ERR_BAD_UPSTREAM_DATA,
                    "upstream .info has an empty Version");
    goto out;
  }
  if (want_exact && (strlen(want) != vlen || memcmp(want, v, vlen) != 0)) {
    rc = reason_set(
        why, ERR_BAD_UPSTREAM_DATA, "upstream .info names version %s, not %s",
        show(a, sizeof a, v, vlen), show(b, sizeof b, want, strlen(want)));
    goto out;
  }
  if (json_object_object_get_ex(obj, "Time", &jt)) {
    if (!json_object_is_type(jt, json_type_string) ||
        rfc3339_parse(json_object_get_string(jt),
                      (size_t)json_object_get_string_len(jt), 0, NULL)) {
      const char *t = json_object_get_string(jt);
      rc = reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "upstream .info Time %s is not an RFC 3339 string",
                      t ? show(a, sizeof a, t, strlen(t)) : "null");
      goto out;
    }
  }
  if (version_out) {
    if (vlen >= cap) {
      rc = reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "upstream .info Version is too long (%zu bytes)", vlen);
      goto out;
    }
    memcpy(version_out, v, vlen);
    version_out[vlen] = '\0';
  }
out:
  json_object_put(obj);
  json_tokener_free(tok);
  return rc;
}

/* ---- .zip: file names ---- */

/* Whether path.Clean(p) == p, for p without its directory slash. */
static int path_is_clean(const char *p, size_t n) {
  if (n == 0)
    return 0;
  if (n == 1 && (p[0] == '/' || p[0] == '.'))
    return 1;
  if (p[n - 1] == '/')
    return 0;
  int rooted = p[0] == '/', only_dotdot = 1;
  for (size_t i = rooted; i < n;) {
    size_t j = i;
    while (j < n && p[j] != '/')
      j++;
    size_t e = j - i;
    if (e == 0 || (e == 1 && p[i] == '.'))
      return 0; /* "//" or a "." element */
    if (e == 2 && p[i] == '.' && p[i + 1] == '.') {
      /* Clean keeps ".." only as a leading run in a relative path. */
      if (rooted || !only_dotdot)
        return 0;
    } else {
      only_dotdot = 0;
    }
    i = j + 1;
  }
  return 1;
}

/* module.fileNameOK */
static int file_rune_ok(uint32_t r) {
  if (r < 0x80) {
    if ((r >= '0' && r <= '9') || (r >= 'A' && r <= 'Z') ||
        (r >= 'a' && r <= 'z'))
      return 1;
    return r != 0 && strchr("!#$%&()+,-.=@[]^_{}~ ", (int)r) != NULL;
  }
  return bsearch_letter(r);
}

/* module.CheckFilePath: fills problem (cap bytes) and returns 0 if bad. */
static int check_file_path(const char *p, size_t n, char *problem, size_t cap) {
  static const char *const bad_windows[] = {
      "CON",  "PRN",  "AUX",  "NUL",  "COM1", "COM2", "COM3", "COM4",
      "COM5", "COM6", "COM7", "COM8", "COM9", "LPT1", "LPT2", "LPT3",
      "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9"};
  for (size_t i = 0; i < n;) {
    uint32_t r;
    size_t k = utf8_decode((const unsigned char *)p + i, n - i, &r);
    if (k == 0) {
      snprintf(problem, cap, "invalid UTF-8");
      return 0;
    }
    i += k;
  }
  if (n == 0) {
    snprintf(problem, cap, "empty file path");
    return 0;
  }
  /* No leading-dash or leading-dot rule: those are for import paths. */
  if (memmem(p, n, "//", 2)) {
    snprintf(problem, cap, "double slash");
    return 0;
  }
  if (p[n - 1] == '/') {
    snprintf(problem, cap, "trailing slash");
    return 0;
  }
  for (size_t i = 0; i <= n;) {
    size_t j = i;
    while (j < n && p[j] != '/')
      j++;
    const char *e = p + i;
    size_t en = j - i, dots = 0;
    if (en == 0) {
      snprintf(problem, cap, "empty path element");
      return 0;
    }
    while (dots < en && e[dots] == '.')
      dots++;
    if (dots == en) {
      snprintf(problem, cap, "invalid path element \"%.*s\"", (int)en, e);
      return 0;
    }
    if (e[en - 1] == '.') {
      snprintf(problem, cap, "trailing dot in path element");
      return 0;
    }
    for (size_t q = 0; q < en;) {
      uint32_t r;
      size_t k = utf8_decode((const unsigned char *)e + q, en - q, &r);
      if (!file_rune_ok(r)) {
        char shown[16];
        snprintf(problem, cap, "invalid char \"%s\"",
                 show(shown, sizeof shown, e + q, k));
        return 0;
      }
      q += k;
    }
    const char *dot = memchr(e, '.', en);
    size_t short_len = dot ? (size_t)(dot - e) : en;
    for (size_t w = 0; w < sizeof bad_windows / sizeof bad_windows[0]; w++) {
      if (ascii_eqfold(e, short_len, bad_windows[w])) {
        snprintf(problem, cap, "\"%s\" disallowed as path element on Windows",
                 bad_windows[w]);
        return 0;
      }
    }
    i = j + 1;
  }
  return 1;
}

/* ---- .zip: collisions (zip.collisionChecker) ---- */

/* Names and nodes live in chunks freed together; nodes point into them. */
struct arena_chunk {
  struct arena_chunk *next;
  size_t used, cap;
  max_align_t data[];
};

struct arena {
  struct arena_chunk *head;
};

#define ARENA_CHUNK (64u << 10)

static void *arena_alloc(struct arena *a, size_t n) {
  n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
  struct arena_chunk *c = a->head;
  if (!c || c->cap - c->used < n) {
    size_t cap = n > ARENA_CHUNK / 4 ? n : ARENA_CHUNK;
    c = malloc(sizeof *c + cap);
    if (!c)
      return NULL;
    c->cap = cap;
    c->used = 0;
    /* A big one-off chunk goes behind the head so the head keeps filling. */
    if (a->head && cap != ARENA_CHUNK) {
      c->next = a->head->next;
      a->head->next = c;
    } else {
      c->next = a->head;
      a->head = c;
    }
  }
  void *p = (char *)c->data + c->used;
  c->used += n;
  return p;
}

static void arena_free(struct arena *a) {
  while (a->head) {
    struct arena_chunk *next = a->head->next;
    free(a->head);
    a->head = next;
  }
}

/* One path element of the names seen so far: a trie keyed by (parent,
 * folded element), so a deep name costs time linear in its length, where a
 * map of whole paths (as Go keeps) costs its length squared. */
struct cc_node {
  const struct cc_node *parent; /* NULL at the module root */
  const char *fold;             /* this element, folded */
  size_t fold_len;
  const char *path; /* the original name of the entry that added the node */
  size_t elem, end; /* this element is path[elem..end) */
  int is_dir;
};

static int cc_cmp(const void *x, const void *y) {
  const struct cc_node *a = x, *b = y;
  if (a->parent != b->parent)
    return (uintptr_t)a->parent < (uintptr_t)b->parent ? -1 : 1;
  if (a->fold_len != b->fold_len)
    return a->fold_len < b->fold_len ? -1 : 1;
  return memcmp(a->fold, b->fold, a->fold_len);
}

static void cc_keep(void *node) {
  (void)node;
}

/* A balanced tree (tsearch) rather than a hash set: O(log n) per element
 * whatever names a hostile upstream picks. */
struct collisions {
  void *root;
  struct arena arena;
  struct cc_node *spare; /* allocated, not yet in the tree */
};

enum cc_problem { CC_OK, CC_COLLISION, CC_FILE_AND_DIR, CC_MULTIPLE };

/* zip.collisionChecker.check for name p[0..n) (valid UTF-8) and its parent
 * directories. Go checks the name, then each parent, and reports the first
 * problem; we walk down from the root instead and keep the deepest problem,
 * which is the same one. Returns 0, ERR_NOMEM, or ERR_BAD_UPSTREAM_DATA with
 * the problem written to problem. */
static int cc_check(struct collisions *cc, const char *p, size_t n, int is_dir,
                    char *problem, size_t cap) {
  char *orig = arena_alloc(&cc->arena, 2 * n + 2);
  if (!orig)
    return ERR_NOMEM;
  memcpy(orig, p, n);
  orig[n] = '\0';
  char *fold = orig + n + 1;
  size_t fold_n = fold_string(p, n, fold);
  fold[fold_n] = '\0';

  enum cc_problem found_problem = CC_OK;
  const struct cc_node *other = NULL, *parent = NULL;
  size_t problem_end = 0;
  int same_so_far = 1;
  /* Folding maps '/' to itself: the k-th element of fold is the fold of
   * the k-th element of orig. */
  size_t os = 0, fs = 0;
  while (os < n) {
    size_t oe = os, fe = fs;
    while (oe < n && orig[oe] != '/')
      oe++;
    while (fe < fold_n && fold[fe] != '/')
      fe++;
    int level_dir = oe < n ? 1 : is_dir;
    if (!cc->spare && !(cc->spare = arena_alloc(&cc->arena, sizeof *cc->spare)))
      return ERR_NOMEM;
    struct cc_node *nn = cc->spare;
    *nn = (struct cc_node){parent, fold + fs, fe - fs, orig, os, oe, level_dir};
    struct cc_node **hit = tsearch(nn, &cc->root, cc_cmp);
    if (!hit)
      return ERR_NOMEM;
    if (*hit == nn) {
      cc->spare = NULL; /* now in the tree */
      parent = nn;
    } else {
      const struct cc_node *o = *hit;
      /* Go compares whole original paths; the elements above matched. */
      if (o->end - o->elem != oe - os ||
          memcmp(o->path + o->elem, orig + os, oe - os) != 0)
        same_so_far = 0;
      enum cc_problem level = !same_so_far             ? CC_COLLISION
                              : o->is_dir != level_dir ? CC_FILE_AND_DIR
                              : !level_dir             ? CC_MULTIPLE
                                                       : CC_OK;
      if (level != CC_OK) {
        found_problem = level;
        other = o;
        problem_end = oe;
      }
      parent = o;
    }
    os = oe + 1;
    fs = fe + 1;
  }

  char a[SHOW_MAX], b[SHOW_MAX];
  switch (found_problem) {
  case CC_OK:
    return 0;
  case CC_COLLISION:
    snprintf(problem, cap,
             "case-insensitive file name collision: \"%s\" and \"%s\"",
             show(a, sizeof a, other->path, other->end),
             show(b, sizeof b, orig, problem_end));
    break;
  case CC_FILE_AND_DIR:
    snprintf(problem, cap, "entry \"%s\" is both a file and a directory",
             show(a, sizeof a, orig, problem_end));
    break;
  case CC_MULTIPLE:
    snprintf(problem, cap, "multiple entries for file \"%s\"",
             show(a, sizeof a, orig, problem_end));
    break;
  }
  return ERR_BAD_UPSTREAM_DATA;
}

static void cc_free(struct collisions *cc) {
  tdestroy(cc->root, cc_keep);
  cc->root = NULL;
  arena_free(&cc->arena);
}

/* ---- .zip: limits read from the end of the file, before libzip ---- */

static uint64_t le(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

static int pread_full(int fd, void *buf, size_t n, uint64_t off) {
  char *p = buf;
  while (n) {
    ssize_t got = pread(fd, p, n, (off_t)off);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      return -1;
    p += got;
    n -= (size_t)got;
    off += (uint64_t)got;
  }
  return 0;
}

#define EOCD_LEN 22
#define EOCD64_LOC_LEN 20
#define EOCD64_LEN 56
/* Where libzip looks for the end-of-central-directory record: the record,
 * a comment of up to 64 KiB and room for the zip64 locator. */
#define EOCD_TAIL (65535 + EOCD_LEN + EOCD64_LOC_LEN)

/* The most entries and the largest central directory that any end record
 * libzip could pick claims. libzip reads the directory of every "PK\5\6"
 * in the tail (and keeps the most consistent one), allocating for each
 * entry, so every candidate counts, and so does the zip64 record that a
 * locator in front of one points to. Candidates whose directory would not
 * end before the record are refused by libzip before it allocates, so they
 * are skipped: stray signature bytes in compressed data do not count. */
static int directory_claims(int fd, uint64_t fsize, uint64_t *entries,
                            uint64_t *cd_size) {
  size_t tn = fsize < EOCD_TAIL ? (size_t)fsize : EOCD_TAIL;
  uint64_t base = fsize - tn;
  unsigned char *tail = malloc(tn ? tn : 1);
  if (!tail)
    return ERR_NOMEM;
  if (pread_full(fd, tail, tn, base) != 0) {
    free(tail);
    return ERR_IO;
  }
  *entries = *cd_size = 0;
  for (size_t i = 0; i + EOCD_LEN <= tn; i++) {
    const unsigned char *e = tail + i;
    if (memcmp(e, "PK\5\6", 4) != 0)
      continue;
    uint64_t at = base + i;
    uint64_t n = le(e + 8, 2) > le(e + 10, 2) ? le(e + 8, 2) : le(e + 10, 2);
    uint64_t size = le(e + 12, 4), off = le(e + 16, 4);
    if (off <= at && size <= at - off) {
      *entries = n > *entries ? n : *entries;
      *cd_size = size > *cd_size ? size : *cd_size;
    }
    if (i < EOCD64_LOC_LEN || memcmp(e - EOCD64_LOC_LEN, "PK\6\7", 4) != 0)
      continue;
    uint64_t at64 = le(e - EOCD64_LOC_LEN + 8, 8);
    unsigned char r[EOCD64_LEN];
    if (at64 > at || at - at64 < EOCD64_LEN ||
        pread_full(fd, r, sizeof r, at64) != 0 || memcmp(r, "PK\6\6", 4) != 0)
      continue;
    n = le(r + 24, 8) > le(r + 32, 8) ? le(r + 24, 8) : le(r + 32, 8);
    size = le(r + 40, 8);
    off = le(r + 48, 8);
    if (off <= at && size <= at - off) {
      *entries = n > *entries ? n : *entries;
      *cd_size = size > *cd_size ? size : *cd_size;
    }
  }
  free(tail);
  return 0;
}

static int zip_open_error(int zerr, struct reason *why) {
  zip_error_t ze;
  zip_error_init_with_code(&ze, zerr);
  int code = zerr == ZIP_ER_MEMORY ? ERR_NOMEM
             : zerr == ZIP_ER_OPEN ? ERR_IO
                                   : ERR_BAD_UPSTREAM_DATA;
  reason_set(why, code, "upstream zip is not a valid zip archive: %s",
             zip_error_strerror(&ze));
  zip_error_fini(&ze);
  return code;
}

int validate_zip_open(const char *zip_path, struct zip **out,
                      struct reason *why) {
  *out = NULL;
  int rc = 0;
  struct stat sb;
  int fd = open(zip_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return reason_set(why, ERR_IO, "cannot open spooled zip: %s",
                      strerror(errno));
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    rc = reason_set(why, ERR_IO, "spooled zip is not a regular file");
    goto out;
  }
  /* libzip takes an empty file for an empty archive; Go does not. */
  if (sb.st_size == 0) {
    rc = reason_set(why, ERR_BAD_UPSTREAM_DATA, "upstream zip is empty");
    goto out;
  }
  if ((uint64_t)sb.st_size > VALIDATE_ZIP_MAX) {
    rc = reason_set(why, ERR_TOO_LARGE, "upstream zip is %lld bytes (limit %u)",
                    (long long)sb.st_size, VALIDATE_ZIP_MAX);
    goto out;
  }
  uint64_t entries, cd_size;
  rc = directory_claims(fd, (uint64_t)sb.st_size, &entries, &cd_size);
  if (rc) {
    reason_set(why, rc, "cannot read the spooled zip's end");
    goto out;
  }
  if (entries > VALIDATE_ZIP_ENTRIES_MAX) {
    rc = reason_set(why, ERR_TOO_LARGE,
                    "upstream zip has %llu entries (limit %u)",
                    (unsigned long long)entries, VALIDATE_ZIP_ENTRIES_MAX);
    goto out;
  }
  if (cd_size > VALIDATE_ZIP_CDIR_MAX) {
    rc = reason_set(why, ERR_TOO_LARGE,
                    "upstream zip's central directory is %llu bytes "
                    "(limit %u)",
                    (unsigned long long)cd_size, VALIDATE_ZIP_CDIR_MAX);
    goto out;
  }
  /* zip_fdopen works on a dup and leaves fd open when it fails. */
  int zerr = 0;
  zip_t *za = zip_fdopen(fd, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
  if (!za && zerr == ZIP_ER_EXISTS) {
    /* CHECKCONS refuses any repeated name, but only after its consistency
     * checks passed. Go allows a repeated directory entry, so read the
     * names without it and let cc_check refuse repeated files. */
    za = zip_fdopen(fd, ZIP_RDONLY, &zerr);
  }
  if (!za) {
    rc = zip_open_error(zerr, why);
    goto out;
  }
  fd = -1; /* closed by zip_fdopen on success */
  /* Already bounded above; checked again so no caller depends on how
   * libzip picked its record. */
  zip_int64_t count = zip_get_num_entries(za, 0);
  if (count < 0 || (uint64_t)count > VALIDATE_ZIP_ENTRIES_MAX) {
    zip_discard(za);
    rc = reason_set(why, ERR_TOO_LARGE,
                    "upstream zip has %lld entries (limit %u)",
                    (long long)count, VALIDATE_ZIP_ENTRIES_MAX);
    goto out;
  }
  *out = za;
out:
  if (fd >= 0)
    close(fd);
  return rc;
}

/* ---- .zip: reading entries ---- */

/* An entry name as reasons show it: without "<module>@<version>/" (module
 * paths hold no '@'), so the part that differs fits. */
static const char *entry_shown(const char *name, char *out, size_t cap) {
  const char *at = strchr(name, '@');
  const char *slash = at ? strchr(at, '/') : NULL;
  const char *rel = slash && slash[1] ? slash + 1 : name;
  return show(out, cap, rel, strlen(rel));
}

static int zip_read_error(zip_error_t *ze, const char *shown,
                          struct reason *why) {
  switch (zip_error_code_zip(ze)) {
  case ZIP_ER_CRC:
    return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "zip entry \"%s\": CRC-32 mismatch", shown);
  case ZIP_ER_MEMORY:
    return reason_set(why, ERR_NOMEM, "out of memory reading zip entry \"%s\"",
                      shown);
  case ZIP_ER_READ:
  case ZIP_ER_SEEK:
  case ZIP_ER_OPEN:
    /* Our spool file failed, not the upstream. */
    return reason_set(why, ERR_IO, "reading spooled zip entry \"%s\": %s",
                      shown, zip_error_strerror(ze));
  default:
    return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "zip entry \"%s\" is corrupt: %s", shown,
                      zip_error_strerror(ze));
  }
}

/* libzip (1.7) checks neither size on its own: it inflates a deflated
 * entry to its end whatever the headers declare, and stops a stored one
 * only when the data is done. So the declared size is enforced here, by
 * never asking for more than one byte past it. */
int validate_zip_read(struct zip *za, uint64_t index, uint64_t *budget,
                      validate_sink_fn sink, void *arg, struct reason *why) {
  char shown[SHOW_MAX];
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_stat_index(za, index, ZIP_FL_ENC_RAW, &st) != 0 || !st.name ||
      !(st.valid & ZIP_STAT_SIZE))
    return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "upstream zip: cannot read entry %llu: %s",
                      (unsigned long long)index, zip_strerror(za));
  entry_shown(st.name, shown, sizeof shown);
  if (st.size > *budget)
    return reason_set(why, ERR_TOO_LARGE,
                      "zip entry \"%s\": total uncompressed size of module "
                      "contents too large (limit %u bytes)",
                      shown, VALIDATE_UNZIP_MAX);
  zip_file_t *zf = zip_fopen_index(za, index, 0);
  if (!zf)
    return zip_read_error(zip_get_error(za), shown, why);
  unsigned char chunk[16384];
  uint64_t got = 0;
  int rc = 0;
  for (;;) {
    uint64_t left = st.size - got;
    size_t ask = left >= sizeof chunk ? sizeof chunk : (size_t)left + 1;
    zip_int64_t n = zip_fread(zf, chunk, ask);
    if (n < 0) {
      zip_error_t *ze = zip_file_get_error(zf);
      /* libzip notices a short Stored entry itself, at its end. */
      if (zip_error_code_zip(ze) != ZIP_ER_INCONS || got >= st.size)
        rc = zip_read_error(ze, shown, why);
      break;
    }
    if (n == 0)
      break; /* the end: libzip has compared the CRC-32 */
    if ((uint64_t)n > left) {
      rc = reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "zip entry \"%s\" inflates past its declared size of "
                      "%llu bytes",
                      shown, (unsigned long long)st.size);
      break;
    }
    got += (uint64_t)n;
    if (sink && (rc = sink(arg, chunk, (size_t)n)) != 0) {
      if (!why || !why->text[0])
        reason_set(why, rc, "zip entry \"%s\": %s", shown, err_str(rc));
      break;
    }
  }
  if (!rc && got < st.size)
    rc =
        reason_set(why, ERR_BAD_UPSTREAM_DATA,
                   "zip entry \"%s\" holds %llu bytes, fewer than its "
                   "declared %llu",
                   shown, (unsigned long long)got, (unsigned long long)st.size);
  zip_fclose(zf);
  if (!rc)
    *budget -= got;
  return rc;
}

/* ---- .zip ---- */

/* Everything checkZip and the go command check of one entry, given its
 * stat. Returns 0 or an error with why naming the entry. */
static int check_entry(const char *prefix, size_t plen, const zip_stat_t *st,
                       struct collisions *cc, uint64_t *total,
                       struct reason *why) {
  char a[SHOW_MAX], b[SHOW_MAX], problem[200];
  const char *name = st->name;
  size_t n = strlen(name);

  if (n < plen || memcmp(name, prefix, plen) != 0)
    return reason_set(
        why, ERR_BAD_UPSTREAM_DATA, "zip entry \"%s\" is not under \"%s\"",
        show(a, sizeof a, name, n), show(b, sizeof b, prefix, plen));
  const char *rel = name + plen;
  size_t rn = n - plen;
  /* HashZip opens every entry, directories included, so every entry's
   * method must be one archive/zip can read. archive/zip ignores the
   * encryption flag and reads ciphertext as data, failing the CRC; we refuse
   * the flag outright (stricter than Go only if the flag lies). */
  if (st->comp_method != ZIP_CM_STORE && st->comp_method != ZIP_CM_DEFLATE)
    return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "zip entry \"%s\": unsupported compression method %u",
                      show(a, sizeof a, rel, rn), (unsigned)st->comp_method);
  if (st->encryption_method != ZIP_EM_NONE)
    return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "zip entry \"%s\" is encrypted",
                      show(a, sizeof a, rel, rn));
  if (rn == 0)
    return 0; /* the "<module>@<version>/" entry itself */
  int is_dir = rel[rn - 1] == '/';
  if (is_dir)
    rn--;
  if (!path_is_clean(rel, rn))
    return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "zip entry \"%s\": file path is not clean",
                      show(a, sizeof a, rel, rn + (size_t)is_dir));
  if (!check_file_path(rel, rn, problem, sizeof problem))
    return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "zip entry \"%s\": malformed file path: %s",
                      show(a, sizeof a, rel, rn + (size_t)is_dir), problem);
  int rc = cc_check(cc, rel, rn, is_dir, problem, sizeof problem);
  if (rc == ERR_NOMEM)
    return reason_set(why, rc, "out of memory checking zip names");
  if (rc)
    return reason_set(why, rc, "zip entry \"%s\": %s",
                      show(a, sizeof a, rel, rn + (size_t)is_dir), problem);
  if (is_dir)
    return 0;

  const char *slash = memrchr(rel, '/', rn);
  const char *base = slash ? slash + 1 : rel;
  size_t bn = rn - (size_t)(base - rel);
  if (ascii_eqfold(base, bn, "go.mod")) {
    if (base != rel)
      return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                        "zip entry \"%s\": go.mod file not in module root "
                        "directory",
                        show(a, sizeof a, rel, rn));
    if (memcmp(base, "go.mod", 6) != 0)
      return reason_set(why, ERR_BAD_UPSTREAM_DATA,
                        "zip entry \"%s\": go.mod files must have lowercase "
                        "names",
                        show(a, sizeof a, rel, rn));
  }
  if (st->size > VALIDATE_UNZIP_MAX - *total)
    return reason_set(why, ERR_TOO_LARGE,
                      "zip entry \"%s\": total uncompressed size of module "
                      "contents too large (limit %u bytes)",
                      show(a, sizeof a, rel, rn), VALIDATE_UNZIP_MAX);
  *total += st->size;
  if (rn == 6 && memcmp(rel, "go.mod", 6) == 0 && st->size > VALIDATE_MOD_MAX)
    return reason_set(why, ERR_TOO_LARGE,
                      "zip entry \"go.mod\" is %llu bytes (limit %u)",
                      (unsigned long long)st->size, VALIDATE_MOD_MAX);
  if (rn == 7 && memcmp(rel, "LICENSE", 7) == 0 &&
      st->size > VALIDATE_LICENSE_MAX)
    return reason_set(why, ERR_TOO_LARGE,
                      "zip entry \"LICENSE\" is %llu bytes (limit %u)",
                      (unsigned long long)st->size, VALIDATE_LICENSE_MAX);
  return 0;
}

/* Known limit: libzip, not Go, reads the names. It turns a NUL inside a name
 * into a space and prefers an Info-ZIP Unicode Path extra field (0x7075)
 * whose CRC matches the raw name; archive/zip does neither. Only a crafted
 * zip can tell the difference, and the client's own checks refuse it. */
int validate_zip(const char *zip_path, const char *module, const char *version,
                 struct reason *why) {
  if (!zip_path || !module || !version || !*module || !*version)
    return reason_set(why, ERR_INVALID, "validate_zip: missing argument");

  size_t plen = strlen(module) + strlen(version) + 2;
  char *prefix = malloc(plen + 1);
  if (!prefix)
    return reason_set(why, ERR_NOMEM, "out of memory");
  snprintf(prefix, plen + 1, "%s@%s/", module, version);

  zip_t *za = NULL;
  struct collisions cc = {0};
  int rc = validate_zip_open(zip_path, &za, why);
  if (rc)
    goto out;

  zip_int64_t count = zip_get_num_entries(za, 0);
  uint64_t total = 0;
  for (zip_int64_t i = 0; i < count; i++) {
    zip_stat_t st;
    zip_stat_init(&st);
    /* RAW: the bytes Go sees, not libzip's CP437-to-UTF-8 guess. */
    if (zip_stat_index(za, (zip_uint64_t)i, ZIP_FL_ENC_RAW, &st) != 0 ||
        !st.name ||
        (st.valid &
         (ZIP_STAT_SIZE | ZIP_STAT_COMP_METHOD | ZIP_STAT_ENCRYPTION_METHOD)) !=
            (ZIP_STAT_SIZE | ZIP_STAT_COMP_METHOD |
             ZIP_STAT_ENCRYPTION_METHOD)) {
      rc = reason_set(why, ERR_BAD_UPSTREAM_DATA,
                      "upstream zip: cannot read entry %lld: %s", (long long)i,
                      zip_strerror(za));
      goto out;
    }
    rc = check_entry(prefix, plen, &st, &cc, &total, why);
    if (rc)
      goto out;
  }
  cc_free(&cc);
  /* Contents last, so a bad name costs no inflating. What the go command
   * reads (HashZip, Unzip) fails on a lying size or CRC-32: never keep such
   * a zip, whether or not a checksum database is asked. */
  uint64_t budget = VALIDATE_UNZIP_MAX;
  for (zip_int64_t i = 0; i < count; i++) {
    rc = validate_zip_read(za, (zip_uint64_t)i, &budget, NULL, NULL, why);
    if (rc)
      goto out;
  }
out:
  cc_free(&cc);
  if (za)
    zip_discard(za);
  free(prefix);
  return rc;
}
