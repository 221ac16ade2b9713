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
  bool json;              /* one JSON document instead of YAML */
};

/* The device plugin's rule for a pci.ids name: upper case, '/' and '.' and runs of white space
 * as '_', anything else that is not a letter, a digit or '_' dropped:
 * "TU106 [GeForce RTX 2060 Rev. A]" -> "TU106_GEFORCE_RTX_2060_REV__A". */
char *kgb_kubevirt_pci_resource(const char *name);
/* The plugin's rule for an mdev type name: runs of white space as '_' ("GRID T4-1Q" ->
 * "GRID_T4-1Q"). */
char *kgb_kubevirt_mdev_resource(const char *name);

int kgb_kubevirt_render(struct kgb_ctx *ctx, const struct kgb_profile *p,
                        const struct kgb_kubevirt_opts *opts, char **ret);
