/* gomirror export and import: placeholder until bundles land (same issue). */
#include "cmd.h"

#include <stdio.h>

int cmd_export(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "gomirror export: not built yet\n");
  return 2;
}

int cmd_import(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "gomirror import: not built yet\n");
  return 2;
}
