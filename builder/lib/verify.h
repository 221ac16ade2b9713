/* Verification of a resolved .config against the merged request: every value that did not
 * survive, with the reason read from the kernel's own Kconfig. */
#pragma once

#include "allow.h"
#include "kconfig.h"
#include "merge.h"

enum kgb_drop_reason {
  KGB_DROP_UNKNOWN,     /* no Kconfig of this kernel defines the symbol */
  KGB_DROP_TYPE,        /* the value does not fit the symbol's type (m for a bool, ...) */
  KGB_DROP_DEPENDENCY,  /* its `depends on` (with enclosing if/menu/choice) is false */
  KGB_DROP_SELECT,      /* another symbol's select forced a higher value */
  KGB_DROP_CHOICE,      /* another member of its choice won */
  KGB_DROP_PROMPT,      /* no visible prompt: only defaults and selects set it */
  KGB_DROP_UNEXPLAINED, /* changed, and the Kconfig reading found no reason */
  _KGB_DROP_REASON_MAX,
  _KGB_DROP_REASON_INVALID = -22,
};
const char *kgb_drop_reason_to_string(enum kgb_drop_reason r);

struct kgb_drop {
  const struct kgb_request *request;
  char *actual; /* as in .config; NULL when not set */
  bool actual_is_string;
  enum kgb_drop_reason reason;
  char *detail;
  const struct kgb_allow_entry *allowed; /* the allow-list entry that tolerates it, or NULL */
};

struct kgb_verify {
  size_t n_requested;
  struct kgb_drop *drops;
  size_t n_drops;
  size_t n_unexplained; /* drops not covered by the allow-list */
  char **notes;         /* harmless oddities, e.g. an unknown symbol requested off */
};

struct kgb_verify *kgb_verify_free(struct kgb_verify *v);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_verify *, kgb_verify_free)

/* dotconfig: the resolved .config parsed as a fragment; kconfig: the tree's symbols; allow
 * may be NULL; kver is the kernel version for allow-list ranges. */
int kgb_verify_config(struct kgb_ctx *ctx, const struct kgb_merge *m,
                      const struct kgb_fragment *dotconfig, const struct kgb_kconfig *kconfig,
                      const struct kgb_allow *allow, const char *kver, struct kgb_verify **ret);
