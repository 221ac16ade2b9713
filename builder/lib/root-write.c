/* Writes inside a root file system from the host: every path is resolved inside the root
 * (a link in the root can never lead a write out of it), parents are created root-owned, and
 * what is replaced is replaced whole (a link is replaced, never followed). */
#define _GNU_SOURCE
#include "root-write.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../shared/util.h"
#include "chroot.h"

/* The host path of path in root, its parent directories created (mode 0755, root-owned). */
int kgb_root_path_for_write(struct kgb_ctx *ctx, const char *root, const char *path,
                            bool follow_last, char **ret) {
  _cleanup_free_ char *host = NULL;
  int r = kgb_root_resolve(root, path, follow_last, &host);
  if (r < 0)
    return kgb_error(ctx, r, "cannot resolve '%s' in the root: %s", path, strerror(-r));
  _cleanup_free_ char *parent = strdup(host);
  if (!parent)
    return -ENOMEM;
  char *slash = strrchr(parent, '/');
  if (slash && slash != parent) {
    *slash = '\0';
    if ((r = mkdir_p(parent, 0755)) < 0)
      return kgb_error(ctx, r, "cannot create '%s': %s", parent, strerror(-r));
  }
  *ret = TAKE_PTR(host);
  return 0;
}

/* Replaces whatever is at host (a link is replaced, never followed) with a copy of src. */
int kgb_root_install_file(struct kgb_ctx *ctx, const char *src, const char *host, mode_t mode,
                          const struct stat *src_st) {
  struct stat st;
  if (lstat(host, &st) == 0 && S_ISDIR(st.st_mode))
    return kgb_error(ctx, -EISDIR, "'%s' is a directory: cannot put the file '%s' there", host,
                     src);
  int r = copy_file_atomic(src, host, mode);
  if (r < 0)
    return kgb_error(ctx, r, "cannot copy '%s' to '%s': %s", src, host, strerror(-r));
  if (lchown(host, 0, 0) < 0)
    return kgb_error(ctx, -errno, "cannot chown '%s': %m", host);
  if (src_st) {
    struct timespec ts[2] = {src_st->st_mtim, src_st->st_mtim};
    utimensat(AT_FDCWD, host, ts, AT_SYMLINK_NOFOLLOW);
  }
  return 0;
}

int kgb_root_install_symlink(struct kgb_ctx *ctx, const char *target, const char *host) {
  _cleanup_free_ char *tmp = kgb_strdup_printf("%s.kgb-link", host);
  if (!tmp)
    return -ENOMEM;
  unlink(tmp);
  if (symlink(target, tmp) < 0)
    return kgb_error(ctx, -errno, "cannot create the link '%s': %m", host);
  struct stat st;
  if (lstat(host, &st) == 0 && S_ISDIR(st.st_mode)) {
    unlink(tmp);
    return kgb_error(ctx, -EISDIR, "'%s' is a directory: cannot replace it with a link", host);
  }
  if (rename(tmp, host) < 0) {
    int e = errno;
    unlink(tmp);
    return kgb_error(ctx, -e, "cannot create the link '%s': %s", host, strerror(e));
  }
  lchown(host, 0, 0);
  return 0;
}

/* Copies a host file or directory to path in root (directories merge into what is there). */
int kgb_root_copy(struct kgb_ctx *ctx, const char *root, const char *src, const char *path,
                  mode_t mode) {
  struct stat st;
  if (lstat(src, &st) < 0)
    return kgb_error(ctx, -errno, "cannot read '%s': %m", src);
  if (S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = readlink(src, target, sizeof(target) - 1);
    if (n < 0)
      return kgb_error(ctx, -errno, "cannot read the link '%s': %m", src);
    target[n] = '\0';
    _cleanup_free_ char *host = NULL;
    int r = kgb_root_path_for_write(ctx, root, path, false, &host);
    return r < 0 ? r : kgb_root_install_symlink(ctx, target, host);
  }
  if (S_ISREG(st.st_mode)) {
    _cleanup_free_ char *host = NULL;
    int r = kgb_root_path_for_write(ctx, root, path, false, &host);
    return r < 0 ? r
                 : kgb_root_install_file(ctx, src, host, mode ? mode : (st.st_mode & 07777), &st);
  }
  if (!S_ISDIR(st.st_mode))
    return kgb_error(ctx, -EINVAL, "'%s' is neither a file, a directory nor a link", src);
  _cleanup_free_ char *host = NULL;
  int r = kgb_root_path_for_write(ctx, root, path, true, &host);
  if (r < 0)
    return r;
  if (mkdir(host, st.st_mode & 07777) < 0 && errno != EEXIST)
    return kgb_error(ctx, -errno, "cannot create '%s': %m", host);
  struct stat hst;
  if (lstat(host, &hst) < 0 || !S_ISDIR(hst.st_mode))
    return kgb_error(ctx, -ENOTDIR, "'%s' is not a directory: cannot copy '%s' into it", host, src);
  lchown(host, 0, 0);
  _cleanup_strv_free_ char **names = NULL;
  r = readdir_sorted(src, 0, NULL, NULL, &names);
  if (r < 0)
    return r == -ENOMEM ? r : kgb_error(ctx, r, "cannot read '%s': %s", src, strerror(-r));
  for (size_t i = 0; r >= 0 && names[i]; i++) {
    _cleanup_free_ char *s = strjoin_path(src, names[i]);
    _cleanup_free_ char *p = kgb_strdup_printf("%s/%s", STREQ(path, "/") ? "" : path, names[i]);
    r = s && p ? kgb_root_copy(ctx, root, s, p, 0) : -ENOMEM;
  }
  return r;
}

int kgb_root_write(struct kgb_ctx *ctx, const char *root, const char *path, const char *content,
                   mode_t mode) {
  _cleanup_free_ char *host = NULL;
  int r = kgb_root_path_for_write(ctx, root, path, false, &host);
  if (r < 0)
    return r;
  struct stat st;
  if (lstat(host, &st) == 0 && S_ISDIR(st.st_mode))
    return kgb_error(ctx, -EISDIR, "'%s' is a directory", host);
  if ((r = write_file_atomic(host, content, strlen(content), mode)) < 0)
    return kgb_error(ctx, r, "cannot write '%s': %s", host, strerror(-r));
  lchown(host, 0, 0);
  return 0;
}

/* Removes path in root (links are removed, never followed). */
int kgb_root_remove(struct kgb_ctx *ctx, const char *root, const char *path) {
  _cleanup_free_ char *host = NULL;
  int r = kgb_root_resolve(root, path, false, &host);
  if (r < 0)
    return kgb_error(ctx, r, "cannot resolve '%s' in the root: %s", path, strerror(-r));
  if (STREQ(host, root))
    return kgb_error(ctx, -EINVAL, "refusing to remove the root itself ('%s')", path);
  r = rm_rf(host);
  return r < 0 ? kgb_error(ctx, r, "cannot remove '%s': %s", host, strerror(-r)) : 0;
}

static bool matches_pattern(_unused_ int dir_fd, const char *name, void *pattern) {
  return fnmatch(pattern, name, 0) == 0;
}

/* Removes the entries of dir in root that match pattern. */
int kgb_root_remove_matching(struct kgb_ctx *ctx, const char *root, const char *dir,
                             const char *pattern) {
  _cleanup_free_ char *host = NULL;
  int r = kgb_root_resolve(root, dir, true, &host);
  if (r < 0)
    return r;
  _cleanup_strv_free_ char **names = NULL;
  r = readdir_sorted(host, 0, matches_pattern, (void *)pattern, &names);
  if (r < 0)
    return r == -ENOMEM ? r : 0; /* nothing there: nothing to remove */
  for (size_t i = 0; r >= 0 && names[i]; i++) {
    _cleanup_free_ char *p = kgb_strdup_printf("%s/%s", dir, names[i]);
    r = p ? kgb_root_remove(ctx, root, p) : -ENOMEM;
  }
  return r;
}
