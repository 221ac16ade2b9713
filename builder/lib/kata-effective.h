/* The configuration a Kata runtime will load: its configuration.toml, found as Kata finds it
 * (or given), with the config.d drop-ins beside the symlink-resolved file merged in file-name
 * order, key by key, later files winning. What kata-config writes is computed against it: a
 * kernel_params that keeps what the base and earlier drop-ins set, an image without a stale
 * initrd. */
#pragma once

#include <stdbool.h>

#include "kgb.h"

struct kgb_kata_value {
  char *table, *key;
  char *value;  /* canonical TOML text */
  char *string; /* a string's text, NULL for other types */
  char *file;   /* where it was set */
  unsigned line;
};

struct kgb_kata_effective {
  char *base;     /* the configuration file as found or given */
  char *resolved; /* after symlinks: config.d is beside it */
  char *config_d;
  char **dropins;                /* merged, in order */
  char **later_dropins;          /* sorting after the file being written: they win over it */
  struct kgb_kata_value *values; /* the effective value of each key set */
  size_t n_values;
  struct kgb_kata_value *later; /* what the later drop-ins set, first one per key */
  size_t n_later;
};

struct kgb_kata_effective *kgb_kata_effective_free(struct kgb_kata_effective *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_kata_effective *, kgb_kata_effective_free)

/* The configuration files Kata's Go runtime looks for, in order, when none is given:
 * /etc/kata-containers/configuration.toml, then the shipped defaults under
 * <prefix>/share/defaults/kata-containers/ (prefix /usr, and /opt/kata for kata-deploy). */
extern const char *const kgb_kata_config_search[];

/* base: a file, "none" (nothing: *ret is NULL), or NULL (the search order; *ret NULL when no
 * file exists). own_dropin: the name of the drop-in being written, which is left out (it is
 * being replaced); drop-ins sorting after it are listed in later_dropins and not merged. A
 * file that is not valid TOML is an error with its line. */
int kgb_kata_effective_load(struct kgb_ctx *ctx, const char *base, const char *own_dropin,
                            struct kgb_kata_effective **ret);

const struct kgb_kata_value *kgb_kata_effective_get(const struct kgb_kata_effective *e,
                                                    const char *table, const char *key);

/* What a drop-in sorting after the one being written sets for table.key, NULL if none. */
const struct kgb_kata_value *kgb_kata_effective_later(const struct kgb_kata_effective *e,
                                                      const char *table, const char *key);
