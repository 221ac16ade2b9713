/* Commands inside a root file system: each runs in a child with its own mount and PID
 * namespaces, in which /proc, /sys, a minimal /dev (no host device), /dev/pts, /dev/shm, /tmp
 * and /run are mounted inside the root, so that every mount vanishes with the child, even on
 * SIGKILL. The command runs as root with the capabilities a package installation needs and no
 * others (chroot.c's header lists them), on a root mounted nodev. */
#pragma once

#include "exec.h"

struct kgb_chroot_opts {
  const char *log_path; /* output appended here; NULL: discarded */
  const char *cwd;      /* inside the root; NULL: "/" */
  /* NAME=VALUE entries added to the clean environment the command gets (PATH, HOME, LC_ALL,
   * DEBIAN_FRONTEND=noninteractive, and the host's proxy variables); a later entry wins. */
  char *const *env;
  void (*line_fn)(void *userdata, const char *line);
  void *userdata;
};

/* Runs argv (looked up in the root's PATH) chrooted into root. Returns like kgb_exec: the
 * exit status, 128+N for a signal, or a negative errno (-EPERM without root privileges,
 * -ENOTDIR when root or one of its mount points is not a directory, -ECANCELED). When the
 * command cannot be contained it never runs: the reason goes to the log, and the call returns
 * 127 (a mount failed) or the negative errno of what failed (a capability not dropped). */
int kgb_chroot_run(struct kgb_ctx *ctx, const char *root, char *const argv[],
                   const struct kgb_chroot_opts *o);

/* Runs argv on the host, in a private mount namespace and a PID namespace of its own: for
 * tools that mount things themselves (mmdebstrap, debootstrap), so that nothing they mount
 * outlives them. The environment is the host's plus o->env. */
int kgb_ns_run(struct kgb_ctx *ctx, char *const argv[], const struct kgb_chroot_opts *o);

/* The host path of path inside root, every symbolic link resolved within root, as the
 * kernel's RESOLVE_IN_ROOT does: an absolute target starts again at root and ".." stops at
 * it, so that nothing written through the result lands outside root. With follow_last false
 * a link in the last component is kept. Components that do not exist are appended as given.
 * -ELOOP after 40 links. */
int kgb_root_resolve(const char *root, const char *path, bool follow_last, char **ret);

/* The default PATH inside a root file system. */
#define KGB_CHROOT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
