/* Image portability checks on a root file system (seed 003: "user level libraries MUST match
 * the underlying kernel; reject on any mismatch"), with libkmod on <root>/lib/modules/<release>:
 * every module's vermagic is the release, every dependency resolves (modinfo's depends= and,
 * with a System.map, every symbol through depmod -e), modules.dep is what depmod makes of the
 * tree now, no module directory exists for another release, and user-space libraries named
 * by the profile have the version of their module. */
#pragma once

#include <stddef.h>

#include "kgb.h"

enum kgb_modcheck_kind {
  KGB_MODCHECK_VERMAGIC,    /* built for another kernel, or no vermagic */
  KGB_MODCHECK_DEPENDENCY,  /* depends= names a module that is not there */
  KGB_MODCHECK_SYMBOL,      /* needs a symbol neither the kernel nor a module exports */
  KGB_MODCHECK_MODULES_DEP, /* modules.dep missing or stale */
  KGB_MODCHECK_RELEASE,     /* a /lib/modules directory for another release */
  KGB_MODCHECK_LIBRARY,     /* a library's version differs from its module's */
  KGB_MODCHECK_UNREADABLE,  /* a module libkmod cannot read */
  _KGB_MODCHECK_KIND_MAX,
  _KGB_MODCHECK_KIND_INVALID = -22,
};
const char *kgb_modcheck_kind_to_string(enum kgb_modcheck_kind k);

struct kgb_modcheck_problem {
  enum kgb_modcheck_kind kind;
  char *what;   /* the module, directory or library, relative to the root */
  char *detail; /* one line */
};

struct kgb_modcheck {
  bool has_moddir; /* <root>/lib/modules/<release> exists */
  size_t n_modules;
  struct kgb_modcheck_problem *problems;
  size_t n_problems;
};

struct kgb_modcheck *kgb_modcheck_free(struct kgb_modcheck *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_modcheck *, kgb_modcheck_free)

struct kgb_modcheck_opts {
  const char *release;
  const char *system_map;        /* the kernel's System.map for depmod -e; NULL: no symbols */
  char *const *library_versions; /* "libnvidia-ml.so=nvidia": LIB.<version> must be MODULE's */
  const char *log_path;          /* depmod's output; NULL: discarded */
};

/* Returns 0 whatever was found (the caller decides on ret->n_problems), or a negative errno
 * when the check could not run (depmod missing, unreadable tree). */
int kgb_modcheck_run(struct kgb_ctx *ctx, const char *root, const struct kgb_modcheck_opts *o,
                     struct kgb_modcheck **ret);
