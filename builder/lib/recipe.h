/* Recipes: declarative install steps for the root file system (recipes/<name>.recipe, libconfig).
 *
 *   name = "dkms-module";
 *   description = "a DKMS package built for the guest kernel";
 *   requires = [ "kernel-headers" ];              # recipes that must run first
 *   settings = ( { name = "dkms.package"; default = "v4l2loopback-dkms"; help = "..."; } );
 *   inputs = ( { name = "agent"; url = "${kata.agent.url}"; sha256 = "${kata.agent.sha256}";
 *                destination = "/usr/bin/kata-agent"; mode = "0755"; when = "kata.agent.url"; } );
 *   packages = [ "dkms" ];                        # apt packages, installed before the steps
 *   files = ( { path = "/etc/x"; content = "..."; mode = "0644"; },   # or source = FILE|DIR,
 *             { path = "/sbin/init"; link = "/usr/bin/kata-agent"; } ); # or a symlink
 *   run = ( { argv = [ "dkms", "autoinstall", "-k", "${kernel_release}" ]; env = [ "A=b" ]; },
 *           { warn = "..."; when = "!kata.agent.url"; },   # a warning, in order
 *           { fail = "..."; when = "!nvidia.driver.url"; } ); # refused before anything runs
 *   cleanup = { purge = [ "gcc" ]; remove = [ "/var/cache/kgb" ]; };
 *
 * Variables ${NAME}: the built-in ones (kgb_recipe_builtins), ${input:NAME} (the input's
 * destination inside the root) and the recipe's declared settings, whose values come from
 * the profile's `settings` group and `--set NAME=VALUE`. `$$` is a literal `$`. `when` is a
 * condition or a list of them, all of which must hold: "NAME" (set and not empty), "!NAME",
 * "NAME=VALUE", "NAME!=VALUE". Unknown fields, variables and settings are errors with
 * file:line. */
#pragma once

#include <sys/types.h>

#include "kgb.h"

struct kgb_recipe_setting {
  char *name, *help, *default_value;
  unsigned line;
};

struct kgb_recipe_input {
  char *name;
  char *url; /* URL or local path */
  char *sha256;
  char *destination; /* inside the root */
  char *extract;     /* member of an archive input to install; NULL or "": the file itself */
  mode_t mode;       /* 0: 0644 */
  char **when;
  unsigned line;
};

struct kgb_recipe_file {
  char *path;    /* inside the root */
  char *source;  /* a file or directory on the host, relative to the recipe's directory */
  char *content; /* or the text itself */
  char *link;    /* or a symbolic link to this target */
  mode_t mode;   /* 0: the source's (files), 0644 (content) */
  char **when;
  unsigned line;
};

struct kgb_recipe_step {
  char **argv; /* a command run in the root, or: */
  char *warn;  /* a warning printed when the step is reached */
  char *fail;  /* an error raised when recipes are planned, before anything runs */
  char **env;
  char *cwd;
  char **when;
  unsigned line;
};

struct kgb_recipe {
  char *name, *description;
  char *path; /* as shown in messages */
  char *dir;  /* where relative sources are found */
  char sha256[65];
  char **requires, **packages;
  struct kgb_recipe_setting *settings;
  size_t n_settings;
  struct kgb_recipe_input *inputs;
  size_t n_inputs;
  struct kgb_recipe_file *files;
  size_t n_files;
  struct kgb_recipe_step *steps;
  size_t n_steps;
  char **purge, **remove;
};

struct kgb_recipe *kgb_recipe_free(struct kgb_recipe *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_recipe *, kgb_recipe_free)

/* Names of the built-in variables, NULL-terminated. */
extern const char *const kgb_recipe_builtins[];

/* Parses recipe text; shown names the file in messages ("recipes/x.recipe"), dir is where
 * relative `source` paths are found. Errors are -EINVAL with "file:line: ..." in the detail. */
int kgb_recipe_parse(struct kgb_ctx *ctx, const char *shown, const char *dir, const char *text,
                     struct kgb_recipe **ret);
/* <datadir>/recipes/<name>.recipe; its `name` must be the file's. -ENOENT for no such recipe. */
int kgb_recipe_load(struct kgb_ctx *ctx, const char *name, struct kgb_recipe **ret);

/* The recipe with every ${...} replaced and only the elements whose `when` holds: what the
 * root file system stage executes. values: "NAME=VALUE" strings, later entries winning, for
 * the built-ins and the settings (declared defaults fill the rest). Input destinations are
 * expanded first so that ${input:NAME} can be used in what follows. A setting without a value
 * that an active element uses is -ENOKEY, an active `fail` step -EPERM, each with what to do
 * in the error detail. The result's steps keep their `warn` texts; `fail` steps are gone. */
int kgb_recipe_expand(struct kgb_ctx *ctx, const struct kgb_recipe *r, char *const *values,
                      struct kgb_recipe **ret);

/* Orders names so that every recipe comes after those it requires (stable otherwise); a
 * required recipe missing from names is added before it, unless it is in without (-ENOENT,
 * with which recipe needs it in the detail). recipes gets the loaded recipes in order. */
int kgb_recipes_resolve(struct kgb_ctx *ctx, char *const *names, char *const *without,
                        struct kgb_recipe ***ret);
void kgb_recipes_free(struct kgb_recipe **v);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_recipe **, kgb_recipes_free)
