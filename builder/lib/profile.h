/* GPU profiles: one libconfig file per setup under profiles/, shared parts through @include,
 * user profiles that include a shipped one and change fields in an `override` group. */
#pragma once

#include <libconfig.h>
#include <stdbool.h>

#include "kgb.h"

/* Every key of a profile, typed, validated (with file and line) and defaulted by
 * kgb_profile_load; no other module reads the libconfig tree. A has_* flag says whether an
 * optional number was given (the default then comes from elsewhere: the host, Kata). */
struct kgb_profile {
  char *name;
  char *path;   /* the file that was loaded */
  char *vendor; /* nvidia, intel, virgl */
  char *mode;   /* passthrough, vgpu, mig, gvt-d, gvt-g, virgl */
  char *description;
  char *notes;
  struct {
    char *version; /* expected kernel version series, e.g. "6.1" */
    char *source;  /* directory, tarball; NULL: Debian's linux-source */
    char *sha256;
    char *mirror;
    char *arch;       /* x86_64 */
    char **fragments; /* patterns relative to kconfig-fragments/, ${arch} expanded */
    int cfgver;
    char **required;  /* CONFIG_X=v lines that the built kernel must have */
    char **overrides; /* symbols a later vendor fragment may change on purpose */
    long long source_date_epoch;
    bool has_source_date_epoch;
  } kernel;
  struct {
    char *distro, *suite; /* default debian, bookworm; guest data in rootfs/<distro>/ */
    char **components;    /* default main */
    char *variant;        /* the bootstrapper's variant, default minbase */
    char **packages, **recipes;
    char *mirror, *keyring; /* NULL: the host's apt sources */
    char **library_versions;
    bool purge_build_packages;
  } rootfs;
  struct {
    char *format; /* NULL: ext4 */
    int free_mb;
  } image;
  struct {
    char *machine_type;
    long long default_memory; /* MiB */
    bool has_default_memory;
    char *kernel_params;
    char *hot_plug_vfio, *cold_plug_vfio;
    int pcie_root_port;
    bool has_pcie_root_port;
    char *vfio_mode;
    char **kernel_modules;
    bool has_kernel_modules; /* given, maybe empty: no default list */
    char *guest_hook_path;
    bool enable_iommu, has_enable_iommu;
    bool disable_image_nvdimm; /* false: the image is an NVDIMM (Kata's default) */
    bool static_sandbox_resource_mgmt, has_static_sandbox_resource_mgmt;
    long long agent_timeout; /* s: dial_timeout, create_container_timeout; 0: Kata's */
  } kata;
  struct {
    char *mode; /* passthrough, mdev, mig, none; NULL: from the profile's mode */
    char **kernel_config;
    bool has_kernel_config; /* given, maybe empty: no default list */
    char **cmdline;
  } host;
  char **settings; /* the `settings` group flattened to "a.b.c=value", in file order */
  config_t cfg;    /* the resolved tree, for `profile show` only */
};

struct kgb_profile *kgb_profile_free(struct kgb_profile *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_profile *, kgb_profile_free)

/* name_or_path: a shipped profile's name, or a path to a .cfg file. */
int kgb_profile_load(struct kgb_ctx *ctx, const char *name_or_path, struct kgb_profile **ret);
/* Names of the shipped profiles, sorted. */
int kgb_profile_list(struct kgb_ctx *ctx, char ***ret);
/* The resolved profile as libconfig text or as one JSON object. */
int kgb_profile_format(const struct kgb_profile *p, bool json, char **ret);
/* Fragment patterns resolved to files under <datadir>/kconfig-fragments, in profile order;
 * each pattern must match at least one file. ret_names are for messages. */
int kgb_profile_fragments(struct kgb_ctx *ctx, const struct kgb_profile *p, char ***ret_paths,
                          char ***ret_names);
/* The profile's source: kernel.source; else Debian's linux-source tarball for the version
 * when it is installed; else, for a full version (6.1.192), the URL the mirror template
 * (mirror, else kernel.mirror, else $KGB_KERNEL_MIRROR, else kernel.org's layout) gives. */
int kgb_profile_source(struct kgb_ctx *ctx, const struct kgb_profile *p, const char *mirror,
                       char **ret);

/* The profile's `settings` group flattened to "a.b.c=value" (nested groups joined by dots,
 * integers and booleans as text), in file order. */
int kgb_profile_settings(struct kgb_ctx *ctx, const struct kgb_profile *p, char ***ret);
