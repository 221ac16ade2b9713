/* Merging fragments in order: the final request per symbol, every override, and the
 * conflicts between vendor fragments that a profile did not order on purpose. */
#pragma once

#include "fragment.h"

enum kgb_layer {
  KGB_LAYER_BASE,   /* common/ and <arch>/ fragments: later layers refine them */
  KGB_LAYER_VENDOR, /* the profile's other fragments: two of them must not disagree */
  KGB_LAYER_USER,   /* --fragment on the command line: the user's last word */
  _KGB_LAYER_MAX,
  _KGB_LAYER_INVALID = -22,
};

struct kgb_request {
  const char *symbol; /* owned by the fragment entry */
  const struct kgb_fentry *entry;
  const struct kgb_fragment *fragment;
  enum kgb_layer layer;
};

struct kgb_override {
  const char *symbol;
  struct kgb_request from, to;
  bool conflict; /* two vendor fragments disagree and the profile did not allow it */
};

struct kgb_merge {
  struct kgb_fragment **fragments; /* owned, in merge order, excluded ones dropped */
  enum kgb_layer *layers;
  size_t n_fragments;
  char **skipped;               /* names of fragments excluded for this architecture */
  struct kgb_request *requests; /* final value per symbol, in order of first appearance */
  size_t n_requests;
  struct kgb_override *overrides;
  size_t n_overrides;
  size_t n_conflicts;
};

struct kgb_merge *kgb_merge_new(void);
struct kgb_merge *kgb_merge_free(struct kgb_merge *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_merge *, kgb_merge_free)

/* Takes the fragment (freed on failure too). A fragment whose tag excludes arch is kept out
 * and listed in skipped. */
int kgb_merge_add(struct kgb_merge *m, struct kgb_fragment *f, enum kgb_layer layer,
                  const char *arch);
/* Computes requests and overrides; allowed lists symbols (without CONFIG_) that the profile
 * lets a later vendor fragment change on purpose. */
int kgb_merge_finish(struct kgb_merge *m, char *const *allowed);
/* The merged fragment in .config syntax, one line per request, in request order. */
int kgb_merge_render(const struct kgb_merge *m, char **ret);
const struct kgb_request *kgb_merge_find(const struct kgb_merge *m, const char *symbol);
