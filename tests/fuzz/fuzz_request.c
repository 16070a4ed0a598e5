/* Fuzzes the other request parsers that see raw network input: the
 * checksum-database path after /sumdb/<name>/ and the Range header. */
#include "server/http.h"
#include "mod/modpath.h"
#include "server/sumdb.h"
#include "storage/storage.h"

#include "core/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096)
    return 0;
  char *s = malloc(size + 1);
  if (!s)
    return 0;
  memcpy(s, data, size);
  s[size] = '\0';

  enum sumdb_kind kind;
  int partial;
  char mod[MODPATH_ESC_MAX + 1], ver[VERSION_ESC_MAX + 1];
  struct reason why = {{0}};
  int rc = sumdb_parse_rest(s, &kind, &partial, mod, sizeof mod, ver,
                            sizeof ver, &why);
  if (rc != 0 && rc != ERR_NOT_FOUND && rc != ERR_INVALID)
    abort();
  if (rc == 0 && kind == SUMDB_LOOKUP && (!mod[0] || !ver[0]))
    abort();
  if (rc && !why.text[0])
    abort();

  /* The same bytes as a Range header against a few sizes: an accepted
   * range must lie inside the blob. */
  static const uint64_t sizes[] = {0, 1, 10, 1u << 20, UINT64_MAX / 2};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    struct range r;
    int ok = http_parse_range(s, sizes[i], &r);
    if (ok < -1 || ok > 1)
      abort();
    if (ok == 1 && (r.len == 0 || r.start >= sizes[i] ||
                    r.len > sizes[i] - r.start))
      abort();
  }
  free(s);
  return 0;
}
