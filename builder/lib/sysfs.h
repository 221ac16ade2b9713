/* Reading and writing sysfs attributes below the context's sysfs root, for the host steps
 * that change the host (host-bind.c, mdev.c) and the readiness check (host.c). A fixture tree
 * given as --sysfs stands in for /sys: writing to it needs no privilege and nothing but this
 * module decides whether a root is the real one.
 *
 * Writes go to a regular file and never through a symbolic link at the attribute itself
 * (the path may pass through the device's and driver's links, as sysfs is made of them). */
#pragma once

#include <stdbool.h>

#include "kgb.h"

/* How long a write to sysfs may take to show its effect (a driver binding, a device
 * appearing), in milliseconds. */
#define KGB_SYSFS_WAIT_MS 5000

/* Is the sysfs root the real /sys (symbolic links resolved)? */
bool kgb_sysfs_is_real(const struct kgb_ctx *ctx);

/* <sysfs>/bus/pci/devices/<bdf>, or with attr <sysfs>/bus/pci/devices/<bdf>/<attr>; NULL when
 * out of memory. */
char *kgb_sysfs_pci_path(const struct kgb_ctx *ctx, const char *bdf, const char *attr);
/* The last component of a link's target (the "vfio-pci" of a device's driver link, the "192"
 * of its iommu_group); NULL when path is not a link. */
char *kgb_sysfs_link_name(const char *path);
/* The driver bound to a PCI device; NULL when none is (or out of memory). */
char *kgb_sysfs_pci_driver(const struct kgb_ctx *ctx, const char *bdf);
/* A PCI device's class code (0x030200 for a 3D controller); 0 when it cannot be read. */
unsigned kgb_sysfs_pci_class(const struct kgb_ctx *ctx, const char *bdf);
static inline bool kgb_sysfs_pci_is_bridge(const struct kgb_ctx *ctx, const char *bdf) {
  return (kgb_sysfs_pci_class(ctx, bdf) >> 8) == 0x0604;
}

/* Writes value to the attribute at path, in one write(2) as sysfs wants it. Errors (with
 * detail): -ELOOP when the attribute is a symbolic link, -EINVAL when it is not a regular
 * file, the errno of open or write, -EIO for a short write. */
int kgb_sysfs_write(struct kgb_ctx *ctx, const char *path, const char *value);

/* Polls done(userdata) every 10 ms until it returns true: 0, or -ECANCELED when the run is
 * cancelled, or -ETIMEDOUT after KGB_SYSFS_WAIT_MS. */
int kgb_sysfs_wait(struct kgb_ctx *ctx, bool (*done)(void *userdata), void *userdata);
