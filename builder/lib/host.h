/* The host side of GPU passthrough: is this host ready (kernel config, command line, IOMMU,
 * GPUs, VFIO device nodes, MIG; host.c), and the seeds' manual steps: bind a GPU to vfio-pci
 * and back (host-bind.c), create and remove mediated devices (mdev.h). Every read and write
 * goes through the context's sysfs, proc and boot roots and the dev root given here. */
#pragma once

#include <stdbool.h>

#include "kgb.h"
#include "mdev.h"
#include "pci.h"
#include "profile.h"

struct kgb_host_problem {
  char *what;
  char *fix; /* the exact command line or config line to add */
};

struct kgb_host_symbol {
  char *name;  /* CONFIG_VFIO */
  char *value; /* "y", "m", "n" (not set or absent); NULL when no config was found */
  bool required;
};

struct kgb_host_gpu {
  struct kgb_pci_dev dev;
  char **group_members; /* the other devices of its IOMMU group */
  char *vfio_dev;       /* <dev>/vfio/<group>, NULL without a group */
  bool vfio_dev_present;
  char *mig_mode; /* "Enabled", "Disabled", or NULL when it cannot tell */
  int mig_instances;
};

struct kgb_host_report {
  char *profile; /* NULL: checked for any GPU use */
  char *release;
  char *config_source; /* the file the kernel config came from, NULL: none found */
  struct kgb_host_symbol *symbols;
  size_t n_symbols;
  char *cmdline;
  bool iommu_enabled;
  unsigned iommu_groups;
  struct kgb_host_gpu *gpus;
  size_t n_gpus;
  struct kgb_mdev *mdevs;
  size_t n_mdevs;
  char *mig; /* how MIG was checked, or why it cannot tell */
  struct kgb_host_problem *problems;
  size_t n_problems;
  char **notes;
  bool ready;
};

struct kgb_host_opts {
  const char *dev_root; /* default /dev */
  const char *pci_ids;  /* may be NULL */
  const struct kgb_profile *profile;
};

int kgb_host_check(struct kgb_ctx *ctx, const struct kgb_host_opts *opts,
                   struct kgb_host_report **ret);
struct kgb_host_report *kgb_host_report_free(struct kgb_host_report *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_host_report *, kgb_host_report_free)

/* Reads the host kernel's config: <boot>/config-<release>, else <proc>/config.gz. Returns
 * the lines; ret_source names the file. -ENOENT when there is neither. */
int kgb_host_kernel_config(struct kgb_ctx *ctx, const char *release, char **ret_text,
                           char **ret_source);
/* A symbol's value in config text: "y", "m", a string, or "n" when unset or absent. */
char *kgb_host_config_value(const char *text, const char *symbol);

/* Writing to the host: -EPERM with a clear detail when the sysfs root is the real /sys and the
 * process is not root. Fixture trees (any other --sysfs) need no privileges. */
int kgb_host_check_writable(struct kgb_ctx *ctx, const char *what);

struct kgb_bind_result {
  char *bdf;
  char *before; /* the driver before, NULL: none */
  char *after;  /* the driver after */
  int iommu_group;
  char *vfio_dev;
  char **group_others; /* other group members still bound to a host driver: "BDF (driver)" */
  bool changed;
};
void kgb_bind_result_release(struct kgb_bind_result *b);

/* driver_override = vfio-pci, unbind, drivers_probe, check (seed 001); the original driver
 * is remembered in <workdir>/host/<bdf>.driver for unbind. */
int kgb_host_bind(struct kgb_ctx *ctx, const char *bdf, const char *dev_root,
                  struct kgb_bind_result *ret);
/* Clears driver_override, unbinds from vfio-pci, reprobes and checks that the remembered
 * driver (or, without one, whatever the kernel picks) took the device back. */
int kgb_host_unbind(struct kgb_ctx *ctx, const char *bdf, const char *dev_root,
                    struct kgb_bind_result *ret);
