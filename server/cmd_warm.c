/* gomirror warm: placeholder until the warm command lands (same issue). */
#include "cmd.h"

#include <stdio.h>

int cmd_warm(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "gomirror warm: not built yet\n");
  return 2;
}
