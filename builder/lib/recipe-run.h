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

/* apt-get install of packages in the root ("--" before them: a name never becomes an option). */
int kgb_apt_install(struct kgb_runner *run, char *const *packages, const char *what);

/* A recipe's packages (unless packages_installed: the packages layer has them), inputs, files
 * and steps; its warn steps are printed and appended to warnings. */
int kgb_recipe_run(struct kgb_runner *run, const struct kgb_recipe *r, size_t index, size_t total,
                   bool packages_installed, char ***warnings);

/* Recipes run with the host's resolv.conf (they download); the root's own is put back after
 * them. */
int kgb_root_swap_resolv_conf(struct kgb_ctx *ctx, const char *root, bool in);
