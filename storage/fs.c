/* The local-disk backend. Keys map to files under the root, so the tree is a
 * valid GOPROXY=file:// layout. Writes go to a temp file in the same
 * directory, are fsync'd and renamed into place, and the directory is
 * fsync'd after the rename: a reader sees the old file or the whole new one,
 * a crash leaves only a temp file that is never served (temp names start
 * with '.' and are skipped by list), and a power loss after a put returned
 * cannot lose what it stored. Files are 0640 and directories 0750: cached
 * private modules are not for every local user. */
#include "storage.h"

#include "core/config.h"
#include "core/err.h"
#include "core/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (64 * 1024)
#define FILE_MODE 0640
#define DIR_MODE 0750

struct fs_storage {
  struct storage base;
  char root[PATH_MAX];
};

static struct fs_storage *fs_of(struct storage *s) {
  return (struct fs_storage *)s;
}

/* Keys are built from validated module paths, but the backend checks again
 * so that no caller mistake can name a file outside the root. */
static int key_ok(const char *key) {
  if (!key[0] || key[0] == '/' || strlen(key) > 3000)
    return 0;
  const char *p = key;
  for (;;) {
    const char *e = strchr(p, '/');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && !memcmp(p, "..", 2)))
      return 0;
    if (p[0] == '.' && e == NULL)
      return 0; /* final element must not look like a temp file */
    if (!e)
      break;
    p = e + 1;
  }
  for (p = key; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == '\\')
      return 0;
  return 1;
}

static int path_for(struct fs_storage *fs, const char *key, char *out,
                    size_t cap) {
  if (!key_ok(key))
    return ERR_INVALID;
  int n = snprintf(out, cap, "%s/%s", fs->root, key);
  if (n < 0 || (size_t)n >= cap)
    return ERR_INVALID;
  return 0;
}

/* Flushes directory dir's entries (a rename or mkdir in it) to disk. */
static int sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return ERR_STORAGE;
  int rc = fsync(fd) ? ERR_STORAGE : 0;
  close(fd);
  return rc;
}

/* Creates one directory; a new one is made durable in its parent, or a
 * file later renamed into it could vanish with it on a power loss. */
static int make_dir(char *path) {
  if (mkdir(path, DIR_MODE))
    return errno == EEXIST ? 0 : ERR_STORAGE;
  char *slash = strrchr(path, '/');
  if (!slash)
    return sync_dir(".");
  if (slash == path)
    return sync_dir("/");
  *slash = '\0';
  int rc = sync_dir(path);
  *slash = '/';
  return rc;
}

static int mkdirs(char *path) {
  for (char *p = path + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    int rc = make_dir(path);
    *p = '/';
    if (rc)
      return rc;
  }
  return make_dir(path);
}

static int fs_open(const struct config *c, struct storage **out,
                   struct reason *why) {
  const char *p = c->storage + strlen("fs://");
  if (!*p)
    return reason_set(why, ERR_CONFIG, "storage=%s: empty path", c->storage);
  struct fs_storage *fs = calloc(1, sizeof *fs);
  if (!fs)
    return ERR_NOMEM;
  fs->base.ops = &storage_fs_ops;
  char tmp[PATH_MAX];
  int n = snprintf(tmp, sizeof tmp, "%s", p);
  if (n < 0 || (size_t)n >= sizeof tmp) {
    free(fs);
    return reason_set(why, ERR_CONFIG, "storage path too long");
  }
  if (mkdirs(tmp) || !realpath(tmp, fs->root)) {
    int e = errno;
    free(fs);
    return reason_set(why, ERR_CONFIG, "storage=%s: cannot create: %s",
                      c->storage, strerror(e));
  }
  *out = &fs->base;
  return 0;
}

static void fs_close(struct storage *s) {
  free(s);
}

static int fs_stat(struct storage *s, const char *key, struct blob_stat *out) {
  char path[PATH_MAX];
  int rc = path_for(fs_of(s), key, path, sizeof path);
  if (rc)
    return ERR_NOT_FOUND;
  struct stat st;
  if (stat(path, &st))
    return errno == ENOENT || errno == ENOTDIR ? ERR_NOT_FOUND : ERR_STORAGE;
  if (!S_ISREG(st.st_mode))
    return ERR_NOT_FOUND;
  out->size = (uint64_t)st.st_size;
  out->mtime = st.st_mtime;
  /* Content under a key never changes once written, so size, inode and
   * mtime identify it as strongly as a hash would, at no read cost. */
  snprintf(out->etag, sizeof out->etag, "\"%llx-%llx-%llx\"",
           (unsigned long long)st.st_size, (unsigned long long)st.st_ino,
           (unsigned long long)st.st_mtim.tv_sec * 1000000000ull +
               (unsigned long long)st.st_mtim.tv_nsec);
  return 0;
}

static int fs_get(struct storage *s, const char *key, const struct range *r,
                  blob_sink_fn sink, void *arg) {
  char path[PATH_MAX];
  if (path_for(fs_of(s), key, path, sizeof path))
    return ERR_NOT_FOUND;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT || errno == ENOTDIR ? ERR_NOT_FOUND : ERR_STORAGE;
  struct stat st;
  if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
    close(fd);
    return ERR_NOT_FOUND;
  }
  off_t off = r ? (off_t)r->start : 0;
  uint64_t left = r ? r->len : (uint64_t)st.st_size;
  /* Worker threads have small stacks: chunk buffers live on the heap. */
  char *chunk = malloc(CHUNK);
  if (!chunk) {
    close(fd);
    return ERR_NOMEM;
  }
  int rc = 0;
  while (left > 0) {
    size_t want = left < CHUNK ? (size_t)left : CHUNK;
    ssize_t n = pread(fd, chunk, want, off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      rc = ERR_STORAGE;
      break;
    }
    rc = sink(arg, chunk, (size_t)n);
    if (rc)
      break;
    off += n;
    left -= (uint64_t)n;
  }
  free(chunk);
  close(fd);
  return rc;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return ERR_STORAGE;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int fs_put(struct storage *s, const char *key, blob_source_fn src,
                  void *arg, uint64_t size) {
  struct fs_storage *fs = fs_of(s);
  char path[PATH_MAX], tmp[PATH_MAX + 32];
  int rc = path_for(fs, key, path, sizeof path);
  if (rc)
    return rc;
  char *slash = strrchr(path, '/');
  *slash = '\0';
  rc = mkdirs(path);
  *slash = '/';
  if (rc)
    return rc;
  int n = snprintf(tmp, sizeof tmp, "%.*s/.tmp-%s-XXXXXX", (int)(slash - path),
                   path, slash + 1);
  if (n < 0 || (size_t)n >= sizeof tmp)
    return ERR_INVALID;
  /* Close-on-exec: the VCS fetcher runs git and go while blobs are stored. */
  int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0)
    return ERR_STORAGE;
  char *chunk = malloc(CHUNK);
  if (!chunk) {
    rc = ERR_NOMEM;
    goto fail;
  }
  uint64_t total = 0;
  for (;;) {
    long long got = src(arg, total, chunk, CHUNK);
    if (got < 0) {
      rc = (int)got;
      goto fail;
    }
    if (got == 0)
      break;
    total += (uint64_t)got;
    if (total > size) {
      rc = ERR_IO;
      goto fail;
    }
    rc = write_all(fd, chunk, (size_t)got);
    if (rc)
      goto fail;
  }
  if (total != size) {
    rc = ERR_IO;
    goto fail;
  }
  if (fchmod(fd, FILE_MODE) || fsync(fd)) {
    rc = ERR_STORAGE;
    goto fail;
  }
  if (close(fd)) {
    fd = -1;
    rc = ERR_STORAGE;
    goto fail;
  }
  fd = -1;
  if (rename(tmp, path)) {
    rc = ERR_STORAGE;
    goto fail;
  }
  free(chunk);
  /* The file is in place; only its directory entry may still be in memory.
   * Failing here tells the caller the blob is not yet safe to rely on. */
  *slash = '\0';
  rc = sync_dir(path);
  *slash = '/';
  if (rc)
    log_warn("fs: storing %s: fsync of its directory failed", key);
  return rc;
fail:
  free(chunk);
  if (fd >= 0)
    close(fd);
  unlink(tmp);
  log_warn("fs: storing %s failed: %s", key, err_str(rc));
  return rc;
}

static int fs_del(struct storage *s, const char *key) {
  char path[PATH_MAX];
  if (path_for(fs_of(s), key, path, sizeof path))
    return ERR_NOT_FOUND;
  if (unlink(path))
    return errno == ENOENT ? ERR_NOT_FOUND : ERR_STORAGE;
  return 0;
}

/* Walks dir (the file system path of key prefix `rel`), reporting files. */
static int walk(const char *dir, const char *rel, const char *prefix,
                blob_list_fn fn, void *arg, int depth) {
  if (depth > 64)
    return 0;
  DIR *d = opendir(dir);
  if (!d)
    return errno == ENOENT || errno == ENOTDIR ? 0 : ERR_STORAGE;
  int rc = 0;
  struct dirent *e;
  while (!rc && (e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue; /* ".", "..", temp files */
    char path[PATH_MAX], key[PATH_MAX];
    int n1 = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    int n2 =
        snprintf(key, sizeof key, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
    if (n1 < 0 || (size_t)n1 >= sizeof path || n2 < 0 ||
        (size_t)n2 >= sizeof key)
      continue;
    struct stat st;
    if (stat(path, &st))
      continue;
    if (S_ISDIR(st.st_mode)) {
      size_t kl = strlen(key), pl = strlen(prefix);
      /* Descend only where the prefix can still match. */
      if (strncmp(key, prefix, kl < pl ? kl : pl) == 0)
        rc = walk(path, key, prefix, fn, arg, depth + 1);
    } else if (S_ISREG(st.st_mode) &&
               strncmp(key, prefix, strlen(prefix)) == 0) {
      rc = fn(arg, key, (uint64_t)st.st_size);
    }
  }
  closedir(d);
  return rc;
}

static int fs_list(struct storage *s, const char *prefix, blob_list_fn fn,
                   void *arg) {
  struct fs_storage *fs = fs_of(s);
  /* Start at the deepest directory the prefix names. */
  char rel[PATH_MAX], dir[PATH_MAX];
  const char *slash = strrchr(prefix, '/');
  size_t rl = slash ? (size_t)(slash - prefix) : 0;
  if (rl >= sizeof rel)
    return ERR_INVALID;
  memcpy(rel, prefix, rl);
  rel[rl] = '\0';
  if (rl && !key_ok(rel))
    return ERR_INVALID;
  int n = snprintf(dir, sizeof dir, "%s%s%s", fs->root, rl ? "/" : "", rel);
  if (n < 0 || (size_t)n >= sizeof dir)
    return ERR_INVALID;
  return walk(dir, rel, prefix, fn, arg, 0);
}

static int fs_ready(struct storage *s, struct reason *why) {
  struct fs_storage *fs = fs_of(s);
  if (access(fs->root, W_OK | X_OK))
    return reason_set(why, ERR_STORAGE, "storage %s is not writable: %s",
                      fs->root, strerror(errno));
  return 0;
}

static int fs_local_path(struct storage *s, const char *key, char *out,
                         size_t cap) {
  return path_for(fs_of(s), key, out, cap);
}

const struct storage_ops storage_fs_ops = {
    .name = "fs",
    .open = fs_open,
    .close = fs_close,
    .stat = fs_stat,
    .get = fs_get,
    .put = fs_put,
    .del = fs_del,
    .list = fs_list,
    .ready = fs_ready,
    .local_path = fs_local_path,
};
