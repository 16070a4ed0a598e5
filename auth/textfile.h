/* The small text files access control reads (htpasswd, tokens, groups,
 * rules): reading one whole with a size cap, walking its lines, splitting
 * fields, and telling when it changed on disk (a Kubernetes Secret update
 * swaps a symlink, so the inode changes too). */
#ifndef GOMIRROR_AUTH_TEXTFILE_H
#define GOMIRROR_AUTH_TEXTFILE_H

#include <stddef.h>
#include <sys/types.h>

struct reason;

#define TEXTFILE_MAX (16u << 20)

/* Reads path into a malloc'd, NUL-terminated buffer (caller frees). 0, or
 * ERR_IO / ERR_TOO_LARGE with a reason naming the file. A NUL byte inside is
 * ERR_CONFIG: these files are text. */
int textfile_read(const char *path, char **out, size_t *len,
                  struct reason *why);

struct line_iter {
  const char *p, *end;
  long lineno; /* of the line last returned */
};

void line_iter_init(struct line_iter *it, const char *text, size_t len);
/* The next line that is not blank or a '#' comment, without its line end
 * and surrounding white space: 1 with *s and *n, or 0 at the end. */
int line_next(struct line_iter *it, const char **s, size_t *n);
/* Splits the next white-space-separated field off the front of the text
 * (*s, *n): 1 with *f and *fl, or 0 when nothing is left. */
int field_next(const char **s, size_t *n, const char **f, size_t *fl);

/* What identifies a file's content on disk without reading it. */
struct file_sig {
  dev_t dev;
  ino_t ino;
  off_t size;
  long long mtime_ns;
  int exists;
};

/* Fills sig from stat(2) (following symlinks); exists = 0 when stat fails. */
void file_sig_get(const char *path, struct file_sig *sig);
/* 1 when a and b describe different content. */
int file_sig_changed(const struct file_sig *a, const struct file_sig *b);

#endif
