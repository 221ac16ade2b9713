/* The seeds' `host bind|unbind`: a GPU given to vfio-pci through driver_override and back to
 * the driver it had, which is remembered in <workdir>/host/<bdf>.driver in between. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../shared/util.h"
#include "exec.h"
#include "host.h"
#include "sysfs.h"

int kgb_host_check_writable(struct kgb_ctx *ctx, const char *what) {
  if (kgb_sysfs_is_real(ctx) && geteuid() != 0)
    return kgb_error(ctx, -EPERM,
                     "'%s' writes to /sys and needs root: run it with sudo (nothing was changed)",
                     what);
  return 0;
}

static char *state_path(struct kgb_ctx *ctx, const char *bdf) {
  return kgb_strdup_printf("%s/host/%s.driver", ctx->workdir, bdf);
}

void kgb_bind_result_release(struct kgb_bind_result *b) {
  free(b->bdf);
  free(b->before);
  free(b->after);
  free(b->vfio_dev);
  strv_free(b->group_others);
  *b = (struct kgb_bind_result){.iommu_group = -1};
}

static int fill_group(struct kgb_ctx *ctx, const char *dev_root, struct kgb_bind_result *b) {
  _cleanup_free_ char *p = kgb_sysfs_pci_path(ctx, b->bdf, "iommu_group");
  _cleanup_free_ char *g = p ? kgb_sysfs_link_name(p) : NULL;
  if (!p)
    return -ENOMEM;
  if (!g)
    return 0;
  b->iommu_group = atoi(g);
  if (!(b->vfio_dev = kgb_strdup_printf("%s/vfio/%d", dev_root, b->iommu_group)))
    return -ENOMEM;
  _cleanup_strv_free_ char **members = NULL;
  int r = kgb_pci_group_devices(ctx, b->iommu_group, &members);
  if (r < 0)
    return r;
  for (size_t i = 0; members[i]; i++) {
    if (STREQ(members[i], b->bdf) || kgb_sysfs_pci_is_bridge(ctx, members[i]))
      continue;
    _cleanup_free_ char *drv = kgb_sysfs_pci_driver(ctx, members[i]);
    if (drv && !STREQ(drv, "vfio-pci") &&
        strv_push(&b->group_others, kgb_strdup_printf("%s (%s)", members[i], drv)) < 0)
      return -ENOMEM;
  }
  return 0;
}

struct driver_wait {
  struct kgb_ctx *ctx;
  const char *bdf;
  const char *want; /* NULL: any driver but not_this */
  const char *not_this;
  char *driver; /* the last one read */
};

static bool driver_is(void *userdata) {
  struct driver_wait *w = userdata;
  free(w->driver);
  w->driver = kgb_sysfs_pci_driver(w->ctx, w->bdf);
  if (w->want)
    return w->driver && STREQ(w->driver, w->want);
  return !(w->driver && w->not_this && STREQ(w->driver, w->not_this));
}

/* Waits until the device's driver is want (NULL: any driver other than not_this); *ret is
 * the driver it has in the end, whatever the result. */
static int wait_driver(struct kgb_ctx *ctx, const char *bdf, const char *want, const char *not_this,
                       char **ret) {
  struct driver_wait w = {ctx, bdf, want, not_this, NULL};
  int r = kgb_sysfs_wait(ctx, driver_is, &w);
  *ret = w.driver;
  return r;
}

static int ensure_vfio_pci(struct kgb_ctx *ctx) {
  _cleanup_free_ char *drv = strjoin_path(ctx->sysfs, "bus/pci/drivers/vfio-pci");
  if (!drv)
    return -ENOMEM;
  if (is_dir(drv))
    return 0;
  /* Only the real host gets a module loaded; a fixture tree says what to do instead. */
  if (kgb_sysfs_is_real(ctx)) {
    char *const argv[] = {"modprobe", "vfio-pci", NULL};
    int st = kgb_exec(ctx, argv, NULL);
    if (st == 0 && is_dir(drv))
      return 0;
    kgb_error_clear(ctx);
  }
  return kgb_error(ctx, -ENOENT,
                   "the vfio-pci driver is not loaded ('%s' does not exist): run 'modprobe "
                   "vfio-pci' (CONFIG_VFIO_PCI)",
                   drv);
}

/* The start of bind and unbind: the host may be changed, the BDF is valid, and the device's
 * driver now (b->before) and whether driver_override is set. */
static int bind_begin(struct kgb_ctx *ctx, const char *verb, const char *bdf_in,
                      struct kgb_bind_result *b, bool *ret_overridden) {
  int r = kgb_host_check_writable(ctx, verb);
  if (r < 0 || (r = kgb_pci_bdf_normalize(ctx, bdf_in, &b->bdf)) < 0)
    return r;
  struct kgb_pci_dev d = {0};
  if ((r = kgb_pci_read(ctx, b->bdf, NULL, &d)) < 0)
    return r;
  if (d.driver && !(b->before = strdup(d.driver)))
    r = -ENOMEM;
  *ret_overridden = d.driver_override != NULL;
  kgb_pci_dev_release(&d);
  return r;
}

/* The kernel's own way to hand a device to another driver: driver_override, unbind from the
 * driver it has (if any), then drivers_probe. */
static int rebind(struct kgb_ctx *ctx, const char *bdf, const char *override_value, bool bound) {
  _cleanup_free_ char *override = kgb_sysfs_pci_path(ctx, bdf, "driver_override");
  _cleanup_free_ char *unbind = kgb_sysfs_pci_path(ctx, bdf, "driver/unbind");
  _cleanup_free_ char *probe = strjoin_path(ctx->sysfs, "bus/pci/drivers_probe");
  if (!override || !unbind || !probe)
    return -ENOMEM;
  int r = kgb_sysfs_write(ctx, override, override_value);
  if (r >= 0 && bound)
    r = kgb_sysfs_write(ctx, unbind, bdf);
  if (r >= 0)
    r = kgb_sysfs_write(ctx, probe, bdf);
  return r;
}

/* The end of bind and unbind: the IOMMU group as it is now, *ret set, or b released. */
static int bind_finish(struct kgb_ctx *ctx, const char *dev_root, struct kgb_bind_result *b,
                       struct kgb_bind_result *ret) {
  int r = fill_group(ctx, dev_root, b);
  if (r < 0) {
    kgb_bind_result_release(b);
    return r;
  }
  *ret = *b;
  return 0;
}

int kgb_host_bind(struct kgb_ctx *ctx, const char *bdf_in, const char *dev_root,
                  struct kgb_bind_result *ret) {
  struct kgb_bind_result b = {.iommu_group = -1};
  /* declared before the first goto: the cleanup tail must never see them uninitialised */
  _cleanup_free_ char *state = NULL, *state_dir = NULL, *remembered = NULL;
  bool overridden;
  int r = bind_begin(ctx, "host bind", bdf_in, &b, &overridden);
  if (r < 0)
    goto fail;
  const char *bdf = b.bdf;
  if (b.before && STREQ(b.before, "vfio-pci")) {
    if (!(b.after = strdup("vfio-pci")))
      goto oom;
    return bind_finish(ctx, dev_root, &b, ret);
  }
  if ((r = ensure_vfio_pci(ctx)) < 0)
    goto fail;
  state = state_path(ctx, bdf);
  state_dir = kgb_strdup_printf("%s/host", ctx->workdir);
  remembered = kgb_strdup_printf("%s\n", b.before ? b.before : "");
  if (!state || !state_dir || !remembered)
    goto oom;
  if ((r = mkdir_p(state_dir, 0755)) < 0 ||
      (r = write_file_atomic(state, remembered, strlen(remembered), 0644)) < 0) {
    r = kgb_error(ctx, r, "cannot remember the driver of %s in '%s': %s", bdf, state, strerror(-r));
    goto fail;
  }
  if ((r = rebind(ctx, bdf, "vfio-pci\n", b.before != NULL)) < 0)
    goto fail;
  r = wait_driver(ctx, bdf, "vfio-pci", NULL, &b.after);
  if (r == -ETIMEDOUT) {
    r = kgb_error(ctx, -EIO,
                  "%s: after driver_override and drivers_probe it is %s%s, not vfio-pci: check "
                  "'dmesg' for vfio-pci errors",
                  bdf, b.after ? "bound to " : "not bound to any driver", b.after ? b.after : "");
    goto fail;
  }
  if (r < 0)
    goto fail;
  b.changed = true;
  return bind_finish(ctx, dev_root, &b, ret);
oom:
  r = -ENOMEM;
fail:
  kgb_bind_result_release(&b);
  return r;
}

int kgb_host_unbind(struct kgb_ctx *ctx, const char *bdf_in, const char *dev_root,
                    struct kgb_bind_result *ret) {
  struct kgb_bind_result b = {.iommu_group = -1};
  _cleanup_free_ char *state = NULL, *original = NULL, *probe = NULL;
  bool overridden;
  int r = bind_begin(ctx, "host unbind", bdf_in, &b, &overridden);
  if (r < 0)
    goto fail;
  const char *bdf = b.bdf;
  state = state_path(ctx, bdf);
  original = state ? read_first_line(state) : NULL;
  probe = strjoin_path(ctx->sysfs, "bus/pci/drivers_probe");
  if (!state || !probe)
    goto oom;
  if (!(b.before && STREQ(b.before, "vfio-pci")) && !overridden) {
    /* Nothing to undo: not ours, and not vfio-pci's. */
    if (b.before && !(b.after = strdup(b.before)))
      goto oom;
    return bind_finish(ctx, dev_root, &b, ret);
  }
  if ((r = rebind(ctx, bdf, "\n", b.before != NULL)) < 0)
    goto fail;
  const char *want = original && *original ? original : NULL;
  r = wait_driver(ctx, bdf, want, "vfio-pci", &b.after);
  if (r == -ETIMEDOUT) {
    if (want)
      r = kgb_error(ctx, -EIO,
                    "%s: after clearing driver_override it is %s%s, not %s as before 'host "
                    "bind': load it (modprobe %s), then 'echo %s > %s'",
                    bdf, b.after ? "bound to " : "not bound to any driver", b.after ? b.after : "",
                    want, want, bdf, probe);
    else
      r = kgb_error(ctx, -EIO, "%s: still bound to vfio-pci after clearing driver_override", bdf);
    goto fail;
  }
  if (r < 0)
    goto fail;
  if (unlink(state) < 0 && errno != ENOENT) {
    r = kgb_error(ctx, -errno, "cannot remove '%s': %m", state);
    goto fail;
  }
  b.changed = true;
  return bind_finish(ctx, dev_root, &b, ret);
oom:
  r = -ENOMEM;
fail:
  kgb_bind_result_release(&b);
  return r;
}
