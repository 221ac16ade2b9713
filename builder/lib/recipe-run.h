/* Running a recipe's work inside a root (recipe-run.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "kgb.h"
#include "recipe.h"

/* Where and how the steps of one root run. */
struct kgb_runner {
  struct kgb_ctx *ctx;
  const char *root;
  const char *log_path;
  char **env; /* SOURCE_DATE_EPOCH and such, for every step */
};

int kgb_recipe_step(struct kgb_runner *run, char *const *argv, char *const *extra_env,
                    const char *cwd, const char *what);

int kgb_recipe_run(struct kgb_runner *run, const struct kgb_recipe *r, size_t index, size_t total,
                   char ***warnings);

/* Logs, caches and host traces that would make the image depend on when and where it was
 * built. */
int kgb_root_cleanup(struct kgb_runner *run);

/* The bootstrapper copies the build host's resolv.conf and hostname: the image gets neutral
 * ones (the runtime provides both). Recipes run with the host's resolv.conf, and the root's
 * own is put back after them. */
int kgb_root_neutral_host_files(struct kgb_ctx *ctx, const char *root);

int kgb_root_swap_resolv_conf(struct kgb_ctx *ctx, const char *root, bool in);
