/* The `kernel build` stage: the resolved config compiled out of tree (bzImage, vmlinux,
 * modules), reproducibly, with its outputs and a modules staging tree stored under the
 * stage key; and `kernel install` under Kata's file names. */
#pragma once

#include "kata-names.h"
#include "kernel-config.h"

struct kgb_build_opts {
  const struct kgb_kernel_config_opts *config;
  const char *ccache_dir; /* NULL: $KGB_CCACHE_DIR, else ccache's own default (~/.cache/ccache) */
  bool no_ccache;
};

struct kgb_build_result {
  const struct kgb_config_result *config; /* the input it was built from, not owned */
  char *stage_dir;                        /* <workdir>/stages/kernel/<key> */
  char *objdir;                           /* the O= directory */
  char *release; /* include/config/kernel.release: what `uname -r` prints */
  /* the outputs it publishes, in the stage directory */
  char *vmlinuz, *vmlinux, *config_file, *system_map;
  char *modules_dir; /* <stage_dir>/modules/lib/modules/<release>, NULL without modules */
  char *log_path;
  char *why; /* why it ran ("first build", "config changed: ...") or NULL when cached */
  bool cached;
  bool has_modules;
  long long epoch;       /* SOURCE_DATE_EPOCH of the build */
  unsigned long objects; /* objects compiled by this run */
  double seconds;
  double make_seconds;  /* of seconds, the time in `make bzImage modules` */
  bool from_scratch;    /* compiled in a new, empty O= directory */
  unsigned long expect; /* objects a seeded build is expected to compile, 0 when unknown */
};

struct kgb_build_result *kgb_build_result_free(struct kgb_build_result *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_build_result *, kgb_build_result_free)

/* Builds or reuses the kernel of a resolved config; refuses a config with unexplained drops
 * (-EBADE). The result points at cfg, which must outlive it. */
int kgb_kernel_build(struct kgb_ctx *ctx, const struct kgb_profile *p,
                     const struct kgb_build_opts *o, const struct kgb_config_result *cfg,
                     struct kgb_build_result **ret);

/* The kernel stage's key for a config key and the extracted source, and whether it is
 * cached; reads only (for --dry-run). */
int kgb_kernel_build_plan(struct kgb_ctx *ctx, const struct kgb_profile *p, const char *config_key,
                          const char *source_dir, char **ret_key, bool *ret_cached);

/* Runs make in the build's O= directory with the very variables and environment of the
 * build (a different CC or timestamp would make kbuild rebuild everything), for packaging
 * targets that come after it. */
int kgb_build_make(struct kgb_ctx *ctx, const struct kgb_profile *p, const struct kgb_build_opts *o,
                   const struct kgb_build_result *b, char *const *targets, char *const *extra_env,
                   const char *what);

/* Brings the O= directory back to b's config when another build has used it since. */
int kgb_build_sync(struct kgb_ctx *ctx, const struct kgb_profile *p, const struct kgb_build_opts *o,
                   const struct kgb_build_result *b);

enum kgb_headers_format {
  KGB_HEADERS_DEB, /* the kernel's bindeb-pkg: linux-headers-<release>_*.deb and friends */
  KGB_HEADERS_RPM, /* binrpm-pkg, when rpmbuild is installed */
  KGB_HEADERS_TAR, /* linux-headers-<release>.tar.gz: a tree usable as /lib/modules/<r>/build */
  _KGB_HEADERS_FORMAT_MAX,
  _KGB_HEADERS_FORMAT_INVALID = -22,
};
enum kgb_headers_format kgb_headers_format_from_string(const char *s);

struct kgb_headers_result {
  char *stage_dir;
  char **files; /* absolute paths of the packages, the header package first */
  bool cached;
};
struct kgb_headers_result *kgb_headers_result_free(struct kgb_headers_result *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_headers_result *, kgb_headers_result_free)
int kgb_kernel_headers(struct kgb_ctx *ctx, const struct kgb_profile *p,
                       const struct kgb_build_opts *o, const struct kgb_build_result *b,
                       enum kgb_headers_format fmt, struct kgb_headers_result **ret);

/* SOURCE_DATE_EPOCH for a build: $SOURCE_DATE_EPOCH, else kernel.source_date_epoch of the
 * profile, else the mtime of the source's top Makefile. */
long long kgb_source_date_epoch(const struct kgb_profile *p, const char *srcdir);

struct kgb_install_opts {
  const char *destdir; /* "" or NULL: / */
  const char *prefix;  /* default /usr */
  bool replace;        /* replace kernels and links this tool did not install */
};

/* The names this tool installed in Kata's share directory, kept in
 * <destdir><prefix>/share/kata-gpu-builder/installed-kernels (beside it, not in it): a kernel
 * file or .container link that exists and is not listed is someone else's (Kata's own
 * packages, kata-deploy), and install refuses to replace it without opts->replace. */
#define KGB_INSTALLED_RECORD "../kata-gpu-builder/installed-kernels"

struct kgb_installed {
  char *dir;    /* <destdir><prefix>/share/kata-containers */
  char **files; /* names written, in order */
  char *vmlinuz_link, *vmlinux_link;
  bool cfgver_stale; /* an older config with the same cfgver was replaced */
};
struct kgb_installed *kgb_installed_free(struct kgb_installed *i);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_installed *, kgb_installed_free)

int kgb_kernel_install(struct kgb_ctx *ctx, const struct kgb_profile *p,
                       const struct kgb_build_result *b, const struct kgb_install_opts *o,
                       struct kgb_installed **ret);
