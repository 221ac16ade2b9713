/* Mediated devices (vGPUs: NVIDIA vGPU, Intel GVT-g): the ones that exist, and creating and
 * removing them (the seeds' `host mdev` steps). Every path is under the context's sysfs root. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "kgb.h"

struct kgb_mdev {
  char *uuid;
  char *parent; /* BDF */
  char *type;   /* nvidia-692 */
  char *type_name;
  int iommu_group; /* -1: none */
};

void kgb_mdev_release(struct kgb_mdev *m);
/* The mediated devices that exist (<sysfs>/bus/mdev/devices), sorted by UUID. */
int kgb_mdev_list(struct kgb_ctx *ctx, struct kgb_mdev **ret, size_t *ret_n);
/* Creates a device of type on parent (NULL: the first device offering the type with an
 * instance available); uuid NULL: a random one. Refuses when available_instances is 0. */
int kgb_mdev_create(struct kgb_ctx *ctx, const char *type, const char *parent, const char *uuid,
                    struct kgb_mdev *ret);
int kgb_mdev_remove(struct kgb_ctx *ctx, const char *uuid);
bool kgb_uuid_valid(const char *s);
