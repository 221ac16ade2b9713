/* What `rootfs build` and `image build` share: their options (the rootfs's and the kernel's
 * it needs), the build of the root file system and its report. */
#pragma once

#include "cli.h"
#include "pipeline.h"
#include "rootfs.h"

struct rootfs_args {
  const char *profile;
  char **without, **set, **fragments;
  const char *source, *sha256, *ccache_dir, *apt_dir, *bootstrapper;
  bool no_ccache, keep_failed;
  /* image build only */
  const char *format, *output, *compression;
};

void rootfs_args_release(struct rootfs_args *a);

/* The options of `rootfs build`, and of `image build`: those and the image's. */
extern const struct option rootfs_build_options[], image_build_options[];
#define ROOTFS_BUILD_SHORTOPTS "p:k:f"
#define IMAGE_BUILD_SHORTOPTS "p:k:fo:"

/* Parses the options of cmd ("rootfs build" or "image build"); returns EXIT_OK or an exit
 * status. */
int rootfs_args_parse(struct cli *cli, const char *cmd, bool image, int argc, char **argv,
                      struct rootfs_args *a);

/* Loads the profile and runs the stages up to its root file system (ret->rootfs); says what
 * happened on stderr. Returns EXIT_OK with *ret set, or an exit status (3 when the module
 * checks found a mismatch). */
int rootfs_run(struct cli *cli, const struct rootfs_args *a, struct kgb_profile **ret_profile,
               struct kgb_pipeline_result **ret);

/* The size, file count and ten largest directories, on stderr. */
void rootfs_print_report(struct cli *cli, const struct kgb_tree_report *r);
/* The ten largest directories as the member "largest_directories" of a JSON object. */
struct json;
void rootfs_json_largest(struct json *j, const struct kgb_tree_report *r);
