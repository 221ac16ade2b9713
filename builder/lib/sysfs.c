/* Sysfs attributes below the context's root: paths, links, a safe write and a wait for the
 * kernel's reaction (sysfs.h). */
#define _GNU_SOURCE
#include "sysfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../shared/util.h"

bool kgb_sysfs_is_real(const struct kgb_ctx *ctx) {
  _cleanup_free_ char *real = realpath(ctx->sysfs, NULL);
  return real && STREQ(real, "/sys");
}

char *kgb_sysfs_pci_path(const struct kgb_ctx *ctx, const char *bdf, const char *attr) {
  return kgb_strdup_printf("%s/bus/pci/devices/%s%s%s", ctx->sysfs, bdf, attr ? "/" : "",
                           attr ? attr : "");
}

char *kgb_sysfs_link_name(const char *path) {
  char buf[PATH_MAX];
  ssize_t n = readlink(path, buf, sizeof(buf) - 1);
  if (n < 0)
    return NULL;
  buf[n] = '\0';
  const char *s = strrchr(buf, '/');
  return strdup(s ? s + 1 : buf);
}

char *kgb_sysfs_pci_driver(const struct kgb_ctx *ctx, const char *bdf) {
  _cleanup_free_ char *p = kgb_sysfs_pci_path(ctx, bdf, "driver");
  return p ? kgb_sysfs_link_name(p) : NULL;
}

unsigned kgb_sysfs_pci_class(const struct kgb_ctx *ctx, const char *bdf) {
  _cleanup_free_ char *p = kgb_sysfs_pci_path(ctx, bdf, "class");
  _cleanup_free_ char *v = p ? read_first_line(p) : NULL;
  return v ? (unsigned)strtoul(v, NULL, 16) : 0;
}

/* A sysfs attribute is a regular file: the path may pass through the device's and driver's
 * links, but the attribute itself is never followed as a link (a tree under --sysfs, or a
 * root where someone replaced an attribute, would otherwise be written through it). */
int kgb_sysfs_write(struct kgb_ctx *ctx, const char *path, const char *value) {
  int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0 && errno == ELOOP)
    return kgb_error(ctx, -ELOOP,
                     "'%s' is a symbolic link, not a sysfs attribute: refusing to write through "
                     "it (nothing was changed)",
                     path);
  if (fd < 0)
    return kgb_error(ctx, -errno, "cannot open '%s' for writing: %m", path);
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return kgb_error(ctx, -EINVAL, "'%s' is not a regular file, not a sysfs attribute", path);
  }
  size_t len = strlen(value);
  ssize_t n = write(fd, value, len);
  int err = n < 0 ? errno : 0;
  close(fd);
  if (n < 0)
    return kgb_error(ctx, -err, "writing '%.*s' to '%s' failed: %s", (int)strcspn(value, "\n"),
                     value, path, strerror(err));
  if ((size_t)n != len)
    return kgb_error(ctx, -EIO, "short write to '%s'", path);
  return 0;
}

int kgb_sysfs_wait(struct kgb_ctx *ctx, bool (*done)(void *userdata), void *userdata) {
  for (unsigned waited = 0;; waited += 10) {
    if (done(userdata))
      return 0;
    if (kgb_cancelled(ctx))
      return -ECANCELED;
    if (waited >= KGB_SYSFS_WAIT_MS)
      return -ETIMEDOUT;
    struct timespec ts = {0, 10 * 1000000L};
    nanosleep(&ts, NULL);
  }
}
