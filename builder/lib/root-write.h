/* Writes inside a root file system from the host, safe against links in the root. */
#pragma once

#include <stdbool.h>
#include <sys/stat.h>

#include "kgb.h"

/* The host path of path in root, its parent directories created (mode 0755, root-owned). */
int kgb_root_path_for_write(struct kgb_ctx *ctx, const char *root, const char *path,
                            bool follow_last, char **ret);

/* Replaces whatever is at host (a link is replaced, never followed) with a copy of src. */
int kgb_root_install_file(struct kgb_ctx *ctx, const char *src, const char *host, mode_t mode,
                          const struct stat *src_st);

int kgb_root_install_symlink(struct kgb_ctx *ctx, const char *target, const char *host);

/* Copies a host file or directory to path in root (directories merge into what is there). */
int kgb_root_copy(struct kgb_ctx *ctx, const char *root, const char *src, const char *path,
                  mode_t mode);

int kgb_root_write(struct kgb_ctx *ctx, const char *root, const char *path, const char *content,
                   mode_t mode);

/* Removes path in root (links are removed, never followed). */
int kgb_root_remove(struct kgb_ctx *ctx, const char *root, const char *path);

/* Removes the entries of dir in root that match pattern. */
int kgb_root_remove_matching(struct kgb_ctx *ctx, const char *root, const char *dir,
                             const char *pattern);
