/* Kata's on-disk names, in one place: where a Kata installation keeps its guest assets and
 * what the kernel, its links and the images are called there. kernel install, the build's
 * install stage and the Kata settings all use these, so the files written and the paths in
 * configuration.toml cannot drift apart. */
#pragma once

#include <stdbool.h>

#include "profile.h"

/* <destdir><prefix>/share/kata-containers; destdir may be NULL or "", prefix NULL (/usr). */
char *kgb_kata_share_dir(const char *destdir, const char *prefix);
/* The Kata name suffix of a build: "-<vendor>-gpu". */
char *kgb_kata_suffix(const struct kgb_profile *p);
/* "6.1.192" from release "6.1.192-nvidia-gpu" and suffix "-nvidia-gpu". */
char *kgb_kata_kver(const char *release, const char *suffix);
/* A kernel file: <kind>-<kver>-<cfgver><suffix>, kind one of vmlinuz, vmlinux, config,
 * System.map. */
char *kgb_kata_kernel_file(const char *kind, const char *kver, int cfgver, const char *suffix);
/* The stable link the settings name: <kind><suffix>.container (vmlinuz, vmlinux). */
char *kgb_kata_kernel_link(const char *kind, const char *suffix);
/* The installed image: kata-containers-<profile>.img, or kata-containers-initrd-<profile>.img. */
char *kgb_kata_image_file(const struct kgb_profile *p, bool initrd);
