/* Kata's configuration.toml settings for a profile, a Kata version and this host's GPUs: the
 * keys the profile needs and nothing else, each with the reason, as a TOML fragment, a
 * drop-in file, or an in-place edit of an existing configuration.toml. */
#pragma once

#include <stdbool.h>

#include "kata-effective.h"
#include "kata-releases.h"
#include "kgb.h"
#include "profile.h"

struct kgb_kata_setting {
  const char *table; /* "hypervisor.qemu", "agent.kata", "runtime" */
  char *key;
  char *value; /* TOML text of the value */
  bool clear;  /* switches a conflicting key off (value ""): commented out by --patch */
  char *why;
};

struct kgb_kata_opts {
  const char *kata_version; /* "3.2.0", "3.2", "3.x"; NULL: the installed runtime's, else the
                             * newest release known */
  const char *runtime;      /* "go", "rs"; NULL: the installed shim's, else go */
  bool allow_loss;          /* write what the release can express, warn about the rest */
  const char *base;         /* the configuration the runtime loads: a file, "none"; NULL:
                             * $KGB_KATA_BASE, else Kata's search order (kata-effective.h) */
  int priority;             /* the drop-in's number (0: KGB_DROP_IN_DEFAULT): those after it
                             * win over it */
  const char *prefix;       /* where Kata's files are installed; default /usr */
  const char *gpu;          /* consider only this GPU (a BDF); NULL: every GPU of the vendor */
  bool experimental_virgl;  /* emit virgl's QEMU settings, which need a patched runtime */
};

struct kgb_kata_plan {
  char *profile;
  char *version; /* the exact release, e.g. "3.2.0" */
  struct kgb_kata_release release;
  const char *release_source; /* "as given", "the installed runtime's release", ... */
  char **header;              /* comment lines: what was decided from the host */
  char **gpus;                /* the GPUs that decided the topology */
  char *large_bar;            /* "0000:d0:00.0 has a 32 GiB 64-bit BAR", NULL: none */
  struct kgb_kata_setting *settings;
  size_t n_settings;
  struct kgb_kata_setting *lost;        /* what the release cannot express (value NULL) */
  struct kgb_kata_effective *effective; /* what the runtime loads today; NULL: none found */
  size_t n_lost;
  /* the QEMU launch the settings give, typed, for those who launch it (boot-test) */
  struct {
    char *machine_type;       /* as set: the profile's, pc or q35 */
    char *kernel_params;      /* the profile's, NULL: none */
    unsigned pcie_root_port;  /* 0: not set */
    long long default_memory; /* MiB; 0: Kata's default */
    bool image_nvdimm;        /* the image is an NVDIMM (root=/dev/pmem0p1), not virtio-blk */
  } qemu;
};

struct kgb_kata_plan *kgb_kata_plan_free(struct kgb_kata_plan *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_kata_plan *, kgb_kata_plan_free)

/* The settings a profile needs for a Kata release (kata-releases.h) and this host; a setting
 * the release has no key for is an error naming what would be lost (-ENOTSUP), unless
 * opts->allow_loss. */
int kgb_kata_plan(struct kgb_ctx *ctx, const struct kgb_profile *p,
                  const struct kgb_kata_opts *opts, struct kgb_kata_plan **ret);
/* The TOML fragment: header comments, then each table with its keys and their reasons. */
char *kgb_kata_render(const struct kgb_kata_plan *plan);

#define KGB_DROP_IN_DEFAULT 50
/* Writes <dir>/<priority>-kata-gpu-<profile>.toml atomically (priority 50..89). */
int kgb_kata_drop_in(struct kgb_ctx *ctx, const struct kgb_kata_plan *plan, const char *dir,
                     int priority, char **ret_path);

struct kgb_kata_patch_result {
  char *path; /* the file edited (symlinks resolved) */
  char *diff; /* unified diff, "" when nothing changes */
  unsigned changes;
  char *backup; /* the copy of the original, NULL when nothing was written */
};
void kgb_kata_patch_result_release(struct kgb_kata_patch_result *r);
/* Edits an existing configuration.toml in place (see kgb_toml_patch); check: only compute the
 * difference. A backup of the original is written beside it (FILE.bak, or FILE.bak.N when
 * that exists) with its owner, mode and extended attributes, and synced; then the new text is
 * written into the same inode (write, ftruncate, fsync), so that the file keeps its owner,
 * SELinux label, other extended attributes and hard links. A read-only file (no w bit) is
 * refused with -EACCES; a file replaced since it was read with -ESTALE. */
int kgb_kata_patch_file(struct kgb_ctx *ctx, const struct kgb_kata_plan *plan, const char *path,
                        bool check, struct kgb_kata_patch_result *ret);
