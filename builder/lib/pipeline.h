/* `build`: the whole chain for one profile, stage by stage, each cached under its key:
 * kernel config, kernel, root file system (bootstrap, recipes, module checks), image, Kata
 * settings, and the installed tree. */
#pragma once

#include "image-stage.h"
#include "kata-config.h"
#include "rootfs.h"

enum kgb_stage_id {
  KGB_STAGE_CONFIG,
  KGB_STAGE_KERNEL,
  KGB_STAGE_ROOTFS,
  KGB_STAGE_IMAGE,
  KGB_STAGE_KATA,
  KGB_STAGE_INSTALL,
  _KGB_STAGE_MAX,
  _KGB_STAGE_INVALID = -22,
};
const char *kgb_stage_to_string(enum kgb_stage_id s);

enum kgb_stage_state {
  KGB_STAGE_PENDING, /* not reached (an earlier stage failed) */
  KGB_STAGE_CACHED,
  KGB_STAGE_RAN,
  KGB_STAGE_FAILED,
  KGB_STAGE_PLANNED, /* --dry-run: would run */
  _KGB_STAGE_STATE_MAX,
  _KGB_STAGE_STATE_INVALID = -22,
};
const char *kgb_stage_state_to_string(enum kgb_stage_state s);

struct kgb_stage_report {
  enum kgb_stage_state state;
  char *why;    /* what ran and why, or why it was cached or skipped */
  char *output; /* the stage's main output path */
  char *key;
  double seconds;
};

struct kgb_pipeline_opts {
  const struct kgb_build_opts *kernel;
  const struct kgb_rootfs_opts *rootfs;
  const char *image_format; /* NULL: the profile's image.format, else ext4 */
  const char *destdir;      /* NULL: <workdir>/out/<profile> */
  const char *prefix;       /* default /usr */
  const char *kata_version; /* default 3.x */
  bool dry_run;
};

/* The results of the stages that ran, each owned here; a later one points at the earlier
 * ones it was built from. */
struct kgb_pipeline_result {
  struct kgb_stage_report stages[_KGB_STAGE_MAX];
  struct kgb_config_result *config;
  struct kgb_build_result *kernel;
  struct kgb_headers_result *headers; /* when a recipe installs them */
  struct kgb_base base;               /* the bootstrap, when the run reached the rootfs */
  struct kgb_packages_layer layer;    /* the packages layer on it */
  struct kgb_rootfs_result *rootfs;
  struct kgb_image_result *image;
  enum kgb_image_format format;
  char *destdir;
  double seconds;
};

struct kgb_pipeline_result *kgb_pipeline_result_free(struct kgb_pipeline_result *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_pipeline_result *, kgb_pipeline_result_free)

/* Runs the stages in order, each at most once, every stage handed the results of those before
 * it; *ret is set even on failure (the report says which stage failed). A verification
 * mismatch (dropped config values, a module check) is -EBADE. */
int kgb_pipeline_run(struct kgb_ctx *ctx, const struct kgb_profile *p,
                     const struct kgb_pipeline_opts *o, struct kgb_pipeline_result **ret);

/* The same up to and including stage last (the single-stage commands: `kernel build` is
 * KGB_STAGE_KERNEL, `rootfs build` and `image build` KGB_STAGE_ROOTFS). */
int kgb_pipeline_upto(struct kgb_ctx *ctx, const struct kgb_profile *p,
                      const struct kgb_pipeline_opts *o, enum kgb_stage_id last,
                      struct kgb_pipeline_result **ret);

/* What the last finished `build` of a profile left in the work directory, for boot-test to
 * boot: <workdir>/builds/<profile>. */
struct kgb_last_build {
  char *kernel_stage; /* the kernel stage directory */
  char *release;
  char *image; /* the image in its stage directory */
  enum kgb_image_format format;
};
void kgb_last_build_release(struct kgb_last_build *b);

/* -ENOENT when this work directory has no finished build of the profile. */
int kgb_last_build_read(struct kgb_ctx *ctx, const char *profile, struct kgb_last_build *ret);
