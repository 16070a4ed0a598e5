/* `gomirror sumdb keygen NAME [--out FILE]`: a new note key pair for the
 * organisation checksum database (orgsumdb.h). The signer key goes to FILE
 * (created with mode 0600, never over an existing file) or to stdout; the
 * verifier key, which developers put in GOSUMDB, is printed. */
#include "cmd.h"

#include "core/err.h"
#include "mod/note.h"
#include "orgsumdb.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int usage(FILE *out, int status) {
  fputs("usage: gomirror sumdb keygen NAME [--out FILE]\n"
        "\n"
        "Makes the note key pair of the organisation checksum database NAME\n"
        "(e.g. sum.corp.example). The signer key goes to FILE, created with\n"
        "mode 0600 (an existing file is never overwritten), or to stdout;\n"
        "point org_sumdb_key at that file and set org_sumdb_name=NAME. The\n"
        "verifier key printed is what developers set GOSUMDB to, with\n"
        "GOPROXY naming gomirror.\n",
        out);
  return status;
}

/* Writes text and a newline to a new file at path, mode 0600. */
static int write_new(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    fprintf(stderr, "gomirror sumdb keygen: %s: %s%s\n", path, strerror(errno),
            errno == EEXIST ? " (not overwritten)" : "");
    return -1;
  }
  size_t n = strlen(text);
  int ok = write(fd, text, n) == (ssize_t)n && write(fd, "\n", 1) == 1 &&
           fsync(fd) == 0;
  if (close(fd) || !ok) {
    fprintf(stderr, "gomirror sumdb keygen: writing %s failed: %s\n", path,
            strerror(errno));
    unlink(path);
    return -1;
  }
  return 0;
}

int cmd_sumdb(int argc, char **argv) {
  if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
    return usage(stdout, 0);
  if (argc < 2 || strcmp(argv[1], "keygen") != 0)
    return usage(stderr, 2);
  const char *name = NULL, *out = NULL;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h"))
      return usage(stdout, 0);
    if (!strncmp(a, "--out=", 6))
      out = a + 6;
    else if (!strcmp(a, "--out") && i + 1 < argc)
      out = argv[++i];
    else if (a[0] != '-' && !name)
      name = a;
    else {
      fprintf(stderr, "gomirror sumdb keygen: unexpected argument '%.64s'\n",
              a);
      return usage(stderr, 2);
    }
  }
  if (!name || !orgsumdb_name_ok(name)) {
    fprintf(stderr, "gomirror sumdb keygen: NAME must be a host-like name "
                    "(letters, digits, '.', '-', '_'), e.g. "
                    "sum.corp.example\n");
    return 2;
  }
  if (out && !*out) {
    fprintf(stderr, "gomirror sumdb keygen: --out needs a file name\n");
    return 2;
  }
  char skey[NOTE_KEY_MAX], vkey[NOTE_KEY_MAX];
  struct reason why = {{0}};
  int rc = note_keygen(name, skey, vkey, &why);
  if (rc) {
    fprintf(stderr, "gomirror sumdb keygen: %s\n", reason_text(&why, rc));
    return 1;
  }
  int status = 0;
  if (out) {
    if (write_new(out, skey))
      status = 1;
    else
      printf("# The signer key is in %s (mode 0600): point org_sumdb_key at "
             "it, with org_sumdb_name=%s.\n",
             out, name);
  } else {
    printf("# The signer key (a secret: put it in the file org_sumdb_key "
           "names, mode 0600):\n%s\n",
           skey);
  }
  if (!status)
    printf("# Developers set GOSUMDB to this verifier key (and GOPROXY to "
           "gomirror):\n%s\n",
           vkey);
  OPENSSL_cleanse(skey, sizeof skey);
  return status;
}
