/* The bootstrap stage (bootstrap.c). */
#pragma once

#include <stdbool.h>

#include "profile.h"

struct kgb_rootfs_opts;

/* The bootstrap stage's output: a minbase tarball of the distribution. */
struct kgb_base {
  char *tarball; /* <workdir>/stages/bootstrap/<key>/base.tar.zst */
  bool cached;
  double seconds;
};
void kgb_base_release(struct kgb_base *b);

/* The bootstrap stage: it needs the build's SOURCE_DATE_EPOCH, not the kernel, so a pipeline
 * runs it while the kernel compiles. Offline (the mirror's Release date unreadable), the
 * newest base of the same settings is reused. */
int kgb_rootfs_bootstrap(struct kgb_ctx *ctx, const struct kgb_profile *p,
                         const struct kgb_rootfs_opts *o, long long epoch, struct kgb_base *ret);
