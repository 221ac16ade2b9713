/* The image stage (image-stage.c): a root file system packed, cached under its key. */
#pragma once

#include "image.h"
#include "rootfs.h"

struct kgb_image_result {
  char *stage_dir;
  char *path; /* the image in the stage directory */
  char *key;
  bool cached;
  struct kgb_image_info info;
  double seconds;
};
struct kgb_image_result *kgb_image_result_free(struct kgb_image_result *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_image_result *, kgb_image_result_free)

/* The image of a built root file system (cached by the rootfs key and the image options). */
int kgb_rootfs_image(struct kgb_ctx *ctx, const struct kgb_profile *p,
                     const struct kgb_rootfs_result *rootfs, enum kgb_image_format format,
                     enum kgb_compression compression, struct kgb_image_result **ret);
