/* boot-test's initrd writer: the overlay that boots kgb-guest-check as the guest's first
 * process (rdinit=/kgb/check), appended to the image's initrd when there is one.
 *
 *   /dev, /dev/console (5,1)   the console the kernel hands the first process
 *   /kgb/check                 the static guest check program
 *   /kgb/plan                  the checks to run (see boottest.c)
 *   /kgb/modules/...           the build's modules (module_paths), decompressed
 *   /proc, /sys                mount points */
#pragma once

#include "kgb.h"

struct kgb_boot_initrd {
  const char *guest_check; /* the program's path on the host */
  const char *plan;        /* the plan's text */
  const char *modules_dir; /* sources of modules[] */
  char **modules;          /* relative to modules_dir, in load order */
  char **module_paths;     /* their paths in the initrd ("/kgb/modules/000-drm.ko") */
  const char *filter;      /* "gzip", "zstd" or NULL: kgb_boot_initrd_filter */
  long long epoch;         /* every entry's mtime */
};

/* Which compression the kernel unpacks: gzip when its config says so (or is unknown: NULL),
 * else zstd, else none (NULL). */
const char *kgb_boot_initrd_filter(const char *config_text);

/* Writes base (an initrd to boot with, or NULL) followed by the overlay o into path, through a
 * temporary name. Errors, with an error detail: the errno of a file that cannot be read,
 * written or renamed, -EIO (libarchive's text in the detail), -ENOMEM, and those of
 * kgb_decompress for a compressed module. */
int kgb_boot_initrd_write(struct kgb_ctx *ctx, const char *base, const struct kgb_boot_initrd *o,
                          const char *path);
