/* Kata's on-disk names (kata-names.h). */
#define _GNU_SOURCE
#include "kata-names.h"

#include <stdlib.h>
#include <string.h>

#include "../shared/util.h"

char *kgb_kata_share_dir(const char *destdir, const char *prefix) {
  return kgb_strdup_printf("%s%s/share/kata-containers", destdir ? destdir : "",
                           prefix ? prefix : "/usr");
}

char *kgb_kata_suffix(const struct kgb_profile *p) {
  return kgb_strdup_printf("-%s-gpu", p->vendor);
}

char *kgb_kata_kver(const char *release, const char *suffix) {
  size_t lr = strlen(release), ls = strlen(suffix);
  if (lr > ls && STREQ(release + lr - ls, suffix))
    return strndup(release, lr - ls);
  return strdup(release);
}

char *kgb_kata_kernel_file(const char *kind, const char *kver, int cfgver, const char *suffix) {
  return kgb_strdup_printf("%s-%s-%d%s", kind, kver, cfgver, suffix);
}

char *kgb_kata_kernel_link(const char *kind, const char *suffix) {
  return kgb_strdup_printf("%s%s.container", kind, suffix);
}

char *kgb_kata_image_file(const struct kgb_profile *p, bool initrd) {
  return kgb_strdup_printf("kata-containers-%s%s.img", initrd ? "initrd-" : "", p->name);
}
