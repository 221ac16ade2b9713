/* The allow-list of config values known to be dropped (kconfig-fragments/allow.conf): each
 * entry names a symbol, a reason (mandatory) and optionally the kernel versions it holds for. */
#pragma once

#include <stddef.h>

#include "kgb.h"

struct kgb_allow_entry {
  char *symbol; /* without CONFIG_ */
  char *min;    /* inclusive bounds, NULL when open */
  char *max;
  char *reason;
  unsigned line;
};

struct kgb_allow {
  char *name;
  struct kgb_allow_entry *entries;
  size_t n_entries;
};

/* Format, one entry a line: `CONFIG_NAME [kernel:RANGE] reason text`, RANGE one of `A..B`,
 * `A..`, `..B`; `#` comments and blank lines. A missing file is an empty list. */
int kgb_allow_parse(struct kgb_ctx *ctx, const char *name, const char *text,
                    struct kgb_allow **ret);
int kgb_allow_load(struct kgb_ctx *ctx, const char *path, const char *name, struct kgb_allow **ret);
struct kgb_allow *kgb_allow_free(struct kgb_allow *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_allow *, kgb_allow_free)
/* The entry covering symbol on kernel version kver (NULL kver matches only entries without a
 * range). An upper bound covers its series: ..6.1 includes 6.1.192. */
const struct kgb_allow_entry *kgb_allow_match(const struct kgb_allow *a, const char *symbol,
                                              const char *kver);
