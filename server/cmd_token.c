/* `gomirror token new --name NAME [--groups G,G]`: prints a new API token
 * and the auth_tokens line that admits it. The token itself is stored
 * nowhere; the file holds only its SHA-256. */
#include "cmd.h"

#include "auth/identity.h"
#include "auth/tokens.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

static int usage(FILE *out, int status) {
  fputs("usage: gomirror token new --name NAME [--groups GROUP,GROUP]\n"
        "\n"
        "Prints a new API token for CI (32 random bytes behind the prefix "
        "'" TOKEN_PREFIX "',\nso secret scanners can find a leaked one) and "
        "the line to add to the auth_tokens\nfile. A client sends the token "
        "as the password of Basic auth (any user name;\na .netrc line works "
        "for the go command) or as 'Authorization: Bearer TOKEN'.\n",
        out);
  return status;
}

/* The value of --key=VALUE or --key VALUE at argv[*i]; NULL otherwise. */
static const char *flag(int argc, char **argv, int *i, const char *key) {
  size_t n = strlen(key);
  const char *a = argv[*i];
  if (strncmp(a, key, n) != 0)
    return NULL;
  if (a[n] == '=')
    return a + n + 1;
  if (a[n] == '\0' && *i + 1 < argc)
    return argv[++*i];
  return NULL;
}

int cmd_token(int argc, char **argv) {
  if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || !strcmp(argv[1], "-h")))
    return usage(stdout, 0);
  if (argc < 2 || strcmp(argv[1], "new") != 0)
    return usage(stderr, 2);
  const char *name = NULL, *groups = "";
  for (int i = 2; i < argc; i++) {
    const char *v;
    if ((v = flag(argc, argv, &i, "--name")) != NULL)
      name = v;
    else if ((v = flag(argc, argv, &i, "--groups")) != NULL)
      groups = v;
    else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
      return usage(stdout, 0);
    else {
      fprintf(stderr, "gomirror token new: unexpected argument '%.64s'\n",
              argv[i]);
      return usage(stderr, 2);
    }
  }
  if (!name || !auth_name_ok(name, strlen(name))) {
    fprintf(stderr, "gomirror token new: --name must be 1-127 letters, "
                    "digits or ._@-+\n");
    return 2;
  }
  struct identity check = {0};
  if (identity_add_groups(&check, groups) ||
      strlen(check.groups) != strlen(groups)) {
    fprintf(stderr, "gomirror token new: --groups must be names of letters, "
                    "digits or ._@-+ separated by ','\n");
    return 2;
  }
  char token[TOKEN_LEN + 1], hex[65];
  if (tokens_generate(token, sizeof token)) {
    fprintf(stderr, "gomirror token new: the system gave no random bytes\n");
    return 1;
  }
  tokens_hash_hex(token, strlen(token), hex);
  printf("# The token (shown once, stored nowhere): give it to the client.\n"
         "%s\n"
         "# Add this line to the auth_tokens file (only the token's "
         "SHA-256):\n"
         "%s %s%s%s\n",
         token, name, hex, groups[0] ? " " : "", groups);
  OPENSSL_cleanse(token, sizeof token);
  return 0;
}
