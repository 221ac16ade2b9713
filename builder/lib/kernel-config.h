/* The `kernel config` stage: fragments merged in profile order, resolved by the kernel's own
 * Kconfig (allnoconfig + KCONFIG_ALLCONFIG, out of tree), then verified value by value. */
#pragma once

#include "merge.h"
#include "profile.h"
#include "source.h"
#include "verify.h"

struct kgb_kernel_config_opts {
  const char *source;     /* --kernel-source; NULL: the profile's */
  const char *sha256;     /* --sha256 of a downloaded source; NULL: the profile's */
  const char *mirror;     /* --mirror URL template for -v VERSION; NULL: the profile's */
  char *const *fragments; /* --fragment files, merged last */
};

struct kgb_config_result {
  struct kgb_source *source;
  struct kgb_merge *merge;
  struct kgb_verify *verify;
  struct kgb_allow *allow; /* the drops' allow-list entries point into it */
  char *stage_dir;         /* <workdir>/stages/config/<key> */
  char *config_path;       /* <stage_dir>/config */
  char *log_path;
  char *key;
  bool cached; /* the resolution was reused, make did not run */
  double resolve_seconds, verify_seconds;
};

struct kgb_config_result *kgb_config_result_free(struct kgb_config_result *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_config_result *, kgb_config_result_free)

/* Returns 0 when the stage ran or was cached, whatever the verification found (the caller
 * decides on ret->verify->n_unexplained); a negative errno when it could not run. Two vendor
 * fragments that disagree are -EINVAL with both places in the error detail. */
int kgb_kernel_config(struct kgb_ctx *ctx, const struct kgb_profile *p,
                      const struct kgb_kernel_config_opts *o, struct kgb_config_result **ret);
/* The stage key the config would have, without extracting or downloading the source (NULL
 * when a URL without a known SHA-256 makes it unknowable), and whether it is cached; with
 * ret_source_dir, the kernel tree when it is already on disk (else NULL). */
int kgb_kernel_config_plan(struct kgb_ctx *ctx, const struct kgb_profile *p,
                           const struct kgb_kernel_config_opts *o, char **ret_key, bool *ret_cached,
                           char **ret_source_dir);
/* One value another fragment set asks for, gets on this kernel tree, and ours does not have. */
struct kgb_compare_item {
  const char *file; /* the other set's fragment, relative to its directory */
  unsigned line;
  char *symbol;        /* without CONFIG_ */
  char *theirs, *ours; /* as kgb_fentry_display shows them; ours NULL: not set */
};

struct kgb_config_compare {
  char *dir;
  char **files;   /* the fragments merged, relative to dir */
  char **skipped; /* excluded by their tags for the profile's architecture */
  size_t n_requested;
  char *config_path; /* their resolved .config */
  struct kgb_compare_item *items;
  size_t n_items;
};
struct kgb_config_compare *kgb_config_compare_free(struct kgb_config_compare *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_config_compare *, kgb_config_compare_free)

/* Resolves another fragment set (the .conf files of dir/common, then of dir/<arch>: the layout of
 * Kata's tools/packaging/kernel/configs/fragments, whose `# !arch` tags are honoured) on the
 * tree ours was resolved on, and lists every value it asks for and gets that ours does not
 * have, in the order of its files. */
int kgb_kernel_config_compare(struct kgb_ctx *ctx, const struct kgb_profile *p,
                              const struct kgb_config_result *ours, const char *dir,
                              struct kgb_config_compare **ret);

/* SRCARCH for an ARCH (x86_64 -> x86). */
const char *kgb_srcarch(const char *arch);
