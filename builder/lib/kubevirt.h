/* KubeVirt's permittedHostDevices for this host's GPUs (seed 002): pciHostDevices for
 * passthrough profiles, mediatedDevices for vGPU profiles, named the way NVIDIA's KubeVirt
 * device plugin names its resources so that an external provider and KubeVirt agree. */
#pragma once

#include <stdbool.h>

#include "kgb.h"
#include "profile.h"

struct kgb_kubevirt_opts {
  const char *pci_ids;    /* may be NULL: resources are then named by device ID */
  bool external_provider; /* externalResourceProvider: true on every entry */
};

struct kgb_kubevirt_entry {
  char *selector; /* "10DE:20B9" or the mdev type name */
  char *resource; /* "nvidia.com/TU106_..." */
  char *comment;  /* NULL or a note on where it comes from */
};

/* What to permit: the CLI renders it as YAML or JSON. */
struct kgb_kubevirt_plan {
  char *profile;
  bool mdev;              /* mediatedDevices by mdevNameSelector, else pciHostDevices */
  bool from_existing;     /* mdev: the types of the vGPUs that exist, not every type offered */
  bool external_provider; /* externalResourceProvider: true on every entry */
  struct kgb_kubevirt_entry *entries;
  size_t n;
};
struct kgb_kubevirt_plan *kgb_kubevirt_plan_free(struct kgb_kubevirt_plan *pl);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_kubevirt_plan *, kgb_kubevirt_plan_free)

/* The device plugin's rule for a pci.ids name: upper case, '/' and '.' and runs of white space
 * as '_', anything else that is not a letter, a digit or '_' dropped:
 * "TU106 [GeForce RTX 2060 Rev. A]" -> "TU106_GEFORCE_RTX_2060_REV__A". */
char *kgb_kubevirt_pci_resource(const char *name);
/* The plugin's rule for an mdev type name: runs of white space as '_' ("GRID T4-1Q" ->
 * "GRID_T4-1Q"). */
char *kgb_kubevirt_mdev_resource(const char *name);

/* The entries for the profile's GPUs on this host; -EINVAL for a profile that passes no
 * device, -ENOENT (with what to do) when there is nothing to permit. */
int kgb_kubevirt_plan(struct kgb_ctx *ctx, const struct kgb_profile *p,
                      const struct kgb_kubevirt_opts *opts, struct kgb_kubevirt_plan **ret);
