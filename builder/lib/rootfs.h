/* The root file system stage (seed 001's rootfs steps as one command): a minbase bootstrap
 * from the host's apt mirror (mmdebstrap, debootstrap as fallback) cached as a tarball, the
 * profile's recipes run in namespaced chroot steps, cleanup, the module checks of seed 003,
 * and the image stage on top of it. Outputs under <workdir>/stages/{bootstrap,rootfs,image}/
 * <key>/, written to a temporary name and renamed when complete; logs under <workdir>/logs/. */
#pragma once

#include "bootstrap.h"
#include "image.h"
#include "kernel-build.h"
#include "modcheck.h"
#include "recipe.h"

struct kgb_rootfs_opts {
  char *const *without;     /* recipes dropped for this run */
  char *const *set;         /* NAME=VALUE settings, winning over the profile's */
  const char *apt_dir;      /* default /etc/apt */
  const char *bootstrapper; /* "mmdebstrap", "debootstrap"; NULL: the first found */
  bool keep_failed;         /* keep the temporary root of a failed build */
};

/* The recipes and settings of a profile, resolved and checked (every --set declared, every
 * recipe expandable), before anything is built: a mistake fails in seconds, not after the
 * kernel compile. */
struct kgb_rootfs_plan;
int kgb_rootfs_plan_new(struct kgb_ctx *ctx, const struct kgb_profile *p,
                        const struct kgb_rootfs_opts *o, struct kgb_rootfs_plan **ret);
struct kgb_rootfs_plan *kgb_rootfs_plan_free(struct kgb_rootfs_plan *pl);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_rootfs_plan *, kgb_rootfs_plan_free)
/* A recipe installs the kernel's Debian header package (${kernel_headers_deb}). */
bool kgb_rootfs_plan_needs_headers(const struct kgb_rootfs_plan *pl);

/* The packages layer: the base with the package lists, the packages of the plan's recipes
 * and every recipe that needs no kernel, as a tarball. It needs the base and the build's
 * SOURCE_DATE_EPOCH, not the kernel: a pipeline makes it while the kernel compiles. */
struct kgb_packages_layer {
  char *tarball; /* <workdir>/stages/packages/<key>/root.tar.zst */
  char *key;
  char **warnings; /* what its recipes said */
  bool cached;
  double seconds;
};
void kgb_packages_layer_release(struct kgb_packages_layer *l);
int kgb_rootfs_layer(struct kgb_ctx *ctx, const struct kgb_profile *p,
                     const struct kgb_rootfs_opts *o, const struct kgb_rootfs_plan *pl,
                     const struct kgb_base *base, long long epoch, struct kgb_packages_layer *ret);

/* What the rootfs stage is built from: the results of the stages before it. */
struct kgb_rootfs_inputs {
  const struct kgb_build_result *kernel;
  const char *headers_deb; /* required when the plan needs headers */
  const struct kgb_base *base;
  const struct kgb_packages_layer *layer;
};

struct kgb_rootfs_result {
  const struct kgb_build_result *kernel; /* the input, not owned */
  char *headers_deb;                     /* when a recipe used it */
  char *stage_dir;                       /* <workdir>/stages/rootfs/<key> */
  char *root;                            /* <stage_dir>/rootfs */
  char *key;
  char *base;  /* the bootstrap tarball */
  char *layer; /* the packages layer's tarball */
  char *log_path;
  char **recipes;  /* names, in the order they ran */
  char **warnings; /* what the recipes said (warn steps) */
  bool cached, base_cached, layer_cached;
  bool kata_agent; /* an agent was installed: a complete Kata guest */
  struct kgb_modcheck *check;
  struct kgb_tree_report report;
  long long epoch;
  double seconds, bootstrap_seconds, layer_seconds;
};

struct kgb_rootfs_result *kgb_rootfs_result_free(struct kgb_rootfs_result *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_rootfs_result *, kgb_rootfs_result_free)

/* The root file system of a plan on its inputs (cached by a key over the bootstrap, the
 * kernel, the recipes and every value they use). A module check mismatch is -EBADE with *ret
 * set (ret->check lists it) and nothing stored under the key. The result points at
 * in->kernel, which must outlive it. */
int kgb_rootfs_build(struct kgb_ctx *ctx, const struct kgb_profile *p,
                     const struct kgb_rootfs_opts *o, const struct kgb_rootfs_plan *pl,
                     const struct kgb_rootfs_inputs *in, struct kgb_rootfs_result **ret);
