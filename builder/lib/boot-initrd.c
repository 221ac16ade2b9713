/* boot-test's initrd: a cpio archive (newc, compressed as the kernel's config allows) that
 * carries the guest check program as /kgb/check, its plan and the build's modules, written
 * reproducibly (uid 0, the build's mtime, inode numbers in order) after the image's own
 * initrd when there is one. */
#define _GNU_SOURCE
#include "boot-initrd.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../shared/util.h"
#include "ikconfig.h"

/* ---- cpio entries ---- */

struct cpio {
  struct archive *a;
  long long epoch;
  unsigned ino;
};

static int cpio_fail(struct kgb_ctx *ctx, struct cpio *c, const char *what) {
  return kgb_error(ctx, -EIO, "writing the boot-test initrd (%s): %s", what,
                   archive_error_string(c->a) ? archive_error_string(c->a) : "unknown error");
}

static int cpio_add(struct kgb_ctx *ctx, struct cpio *c, const char *path, mode_t type, mode_t perm,
                    dev_t rdev, const void *data, size_t len) {
  struct archive_entry *e = archive_entry_new();
  if (!e)
    return -ENOMEM;
  archive_entry_set_pathname(e, path);
  archive_entry_set_filetype(e, type);
  archive_entry_set_perm(e, perm);
  archive_entry_set_uid(e, 0);
  archive_entry_set_gid(e, 0);
  archive_entry_set_mtime(e, c->epoch, 0);
  archive_entry_set_ino(e, ++c->ino);
  archive_entry_set_nlink(e, type == AE_IFDIR ? 2 : 1);
  archive_entry_set_size(e, type == AE_IFREG ? (la_int64_t)len : 0);
  if (type == AE_IFCHR)
    archive_entry_set_rdev(e, rdev);
  int r = 0;
  if (archive_write_header(c->a, e) < ARCHIVE_WARN)
    r = cpio_fail(ctx, c, path);
  else if (type == AE_IFREG && len && archive_write_data(c->a, data, len) != (la_ssize_t)len)
    r = cpio_fail(ctx, c, path);
  archive_entry_free(e);
  return r;
}

/* What one file of the boot-test initrd may be: modules such as nvidia.ko are tens of MiB. */
#define CPIO_FILE_MAX ((size_t)1 << 30)

static int cpio_add_file(struct kgb_ctx *ctx, struct cpio *c, const char *path, mode_t perm,
                         const char *src) {
  _cleanup_free_ char *data = NULL;
  size_t len;
  int r = read_full_file_max(src, CPIO_FILE_MAX, &data, &len);
  if (r < 0)
    return kgb_error(ctx, r, "cannot read '%s': %s", src, file_error_reason(src, r, CPIO_FILE_MAX));
  return cpio_add(ctx, c, path, AE_IFREG, perm, 0, data, len);
}

/* A module as the kernel loads it: decompressed when kbuild compressed it. */
static int cpio_add_module(struct kgb_ctx *ctx, struct cpio *c, const char *path, const char *src) {
  _cleanup_free_ char *data = NULL, *plain = NULL;
  size_t len, plain_len;
  int r = read_full_file_max(src, CPIO_FILE_MAX, &data, &len);
  if (r < 0)
    return kgb_error(ctx, r, "cannot read module '%s': %s", src,
                     file_error_reason(src, r, CPIO_FILE_MAX));
  if (endswith(src, ".ko"))
    return cpio_add(ctx, c, path, AE_IFREG, 0644, 0, data, len);
  const char *fmt;
  r = kgb_decompress(ctx, src, data, len, (size_t)1 << 30, 0, &plain, &plain_len, &fmt);
  if (r < 0)
    return r;
  return cpio_add(ctx, c, path, AE_IFREG, 0644, 0, plain, plain_len);
}

/* ---- the initrd ---- */

const char *kgb_boot_initrd_filter(const char *config_text) {
  if (!config_text || strstr(config_text, "\nCONFIG_RD_GZIP=y\n"))
    return "gzip";
  if (strstr(config_text, "\nCONFIG_RD_ZSTD=y\n"))
    return "zstd";
  return NULL;
}

static int write_overlay(struct kgb_ctx *ctx, const struct kgb_boot_initrd *o, int fd) {
  struct cpio c = {.a = archive_write_new(), .epoch = o->epoch};
  if (!c.a)
    return -ENOMEM;
  int r = 0;
  archive_write_set_format_cpio_newc(c.a);
  if (o->filter && STREQ(o->filter, "gzip")) {
    if (archive_write_add_filter_gzip(c.a) != ARCHIVE_OK ||
        archive_write_set_filter_option(c.a, "gzip", "timestamp", NULL) < ARCHIVE_WARN)
      r = cpio_fail(ctx, &c, "gzip");
  } else if (o->filter && archive_write_add_filter_zstd(c.a) != ARCHIVE_OK) {
    r = cpio_fail(ctx, &c, "zstd");
  }
  archive_write_set_bytes_per_block(c.a, 512);
  if (r >= 0 && archive_write_open_fd(c.a, fd) != ARCHIVE_OK)
    r = cpio_fail(ctx, &c, "open");
  static const char *const dirs[] = {"dev", "kgb", "kgb/modules", "proc", "sys"};
  for (size_t i = 0; i < ELEMENTSOF(dirs) && r >= 0; i++)
    r = cpio_add(ctx, &c, dirs[i], AE_IFDIR, 0755, 0, NULL, 0);
  /* so that the kernel can give the first process its console before devtmpfs is mounted */
  if (r >= 0)
    r = cpio_add(ctx, &c, "dev/console", AE_IFCHR, 0600, makedev(5, 1), NULL, 0);
  if (r >= 0)
    r = cpio_add_file(ctx, &c, "kgb/check", 0755, o->guest_check);
  if (r >= 0)
    r = cpio_add(ctx, &c, "kgb/plan", AE_IFREG, 0644, 0, o->plan, strlen(o->plan));
  for (size_t i = 0; o->modules && o->modules[i] && r >= 0; i++) {
    _cleanup_free_ char *src = strjoin_path(o->modules_dir, o->modules[i]);
    r = src ? cpio_add_module(ctx, &c, o->module_paths[i] + 1, src) : -ENOMEM;
  }
  if (r >= 0 && archive_write_close(c.a) != ARCHIVE_OK)
    r = cpio_fail(ctx, &c, "close");
  archive_write_free(c.a);
  return r;
}

/* The image's initrd (if any) followed by ours: the kernel unpacks concatenated archives in
 * order, so ours adds /kgb without touching the image's files. */
int kgb_boot_initrd_write(struct kgb_ctx *ctx, const char *base, const struct kgb_boot_initrd *o,
                          const char *path) {
  _cleanup_free_ char *tmp = kgb_strdup_printf("%s.tmp.XXXXXX", path);
  if (!tmp)
    return -ENOMEM;
  _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0)
    return kgb_error(ctx, -errno, "cannot create '%s': %m", tmp);
  int r = 0;
  if (base) {
    _cleanup_close_ int in = open(base, O_RDONLY | O_CLOEXEC);
    if (in < 0)
      r = kgb_error(ctx, -errno, "cannot open initrd '%s': %m", base);
    char buf[65536];
    ssize_t n;
    while (r >= 0 && (n = read(in, buf, sizeof(buf))) != 0) {
      if (n < 0 || write(fd, buf, (size_t)n) != n)
        r = kgb_error(ctx, -errno, "copying initrd '%s': %m", base);
    }
    /* the next archive starts on a 4-byte boundary, as the kernel's unpacker expects */
    off_t end = lseek(fd, 0, SEEK_END);
    static const char zeros[4];
    if (r >= 0 && end % 4 && write(fd, zeros, (size_t)(4 - end % 4)) < 0)
      r = -errno;
  }
  if (r >= 0)
    r = write_overlay(ctx, o, fd);
  if (r >= 0 && fsync(fd) < 0)
    r = -errno;
  if (r >= 0 && rename(tmp, path) < 0)
    r = kgb_error(ctx, -errno, "cannot rename '%s': %m", tmp);
  if (r < 0)
    unlink(tmp);
  return r;
}
