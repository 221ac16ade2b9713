/* What every root of a distribution gets, as data under <datadir>/rootfs/<distro>/ (see
 * rootfs/README.md): files/ laid into the finished root, while-building/ present only while
 * packages and recipes are installed, and `cleanup`, the list of what is taken out at the end.
 * Adding a guest file or a distribution is a change there, not in the code. */
#pragma once

#include <stdbool.h>

#include "kgb.h"

struct sbuf;

enum kgb_root_cleanup_verb {
  KGB_CLEANUP_REMOVE, /* the path, if present */
  KGB_CLEANUP_MATCH,  /* the entries of dir matching pattern */
  KGB_CLEANUP_EMPTY,  /* truncated to nothing (mode 0444) when it is a regular file */
};

struct kgb_root_cleanup_rule {
  enum kgb_root_cleanup_verb verb;
  char *path;    /* REMOVE, EMPTY; MATCH: the directory */
  char *pattern; /* MATCH: fnmatch(3) pattern for the last component */
};

struct kgb_root_data {
  char *dir;            /* <datadir>/rootfs/<distro> */
  char *files;          /* <dir>/files, or NULL when there is none */
  char *while_building; /* <dir>/while-building, or NULL */
  struct kgb_root_cleanup_rule *cleanup;
  size_t n_cleanup;
};

struct kgb_root_data *kgb_root_data_free(struct kgb_root_data *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_root_data *, kgb_root_data_free)

/* Loads <datadir>/rootfs/<distro>/; a missing directory or a bad `cleanup` line is an error
 * that names the file (and line) and what to write there. */
int kgb_root_data_load(struct kgb_ctx *ctx, const char *distro, struct kgb_root_data **ret);

/* Parses the text of a `cleanup` file (shown names it in messages). */
int kgb_root_cleanup_parse(struct kgb_ctx *ctx, const char *shown, const char *text,
                           struct kgb_root_cleanup_rule **ret, size_t *ret_n);

enum kgb_root_data_part {
  KGB_ROOT_DATA_FILES = 1 << 0,
  KGB_ROOT_DATA_WHILE_BUILDING = 1 << 1,
  KGB_ROOT_DATA_CLEANUP = 1 << 2,
};

/* What a stage key covers of the parts: every file's path, mode and content, every link's
 * target, the cleanup rules. */
int kgb_root_data_describe(struct kgb_ctx *ctx, const struct kgb_root_data *d, unsigned parts,
                           struct sbuf *sb);

/* Lays the files of FILES or WHILE_BUILDING into root: owned by root, mode 0755 when the data
 * file is executable and 0644 otherwise (never the checkout's umask), links as they are. */
int kgb_root_data_lay(struct kgb_ctx *ctx, const struct kgb_root_data *d,
                      enum kgb_root_data_part part, const char *root);

/* The end of a root's build: every while-building file removed, then the cleanup rules. */
int kgb_root_data_cleanup(struct kgb_ctx *ctx, const struct kgb_root_data *d, const char *root);
