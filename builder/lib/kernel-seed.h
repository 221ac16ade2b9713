/* Starting a profile's first kernel build from a copy of a finished sibling's O= directory.
 * kbuild records in every object's .cmd file which config symbols the object's sources
 * use (include/config/<SYMBOL>); a copy therefore recompiles only the objects that use a
 * symbol the two configs set differently, plus what the new config adds. Whether that pays
 * is read from those records before copying anything. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "kgb.h"

/* Calls fn for every symbol whose value differs between two .config files (n and unset are
 * the same); old_value or new_value is NULL where the file does not set the symbol. */
typedef void (*kgb_config_diff_fn)(void *userdata, const char *symbol, const char *old_value,
                                   bool old_is_string, const char *new_value, bool new_is_string);
int kgb_config_diff(struct kgb_ctx *ctx, const char *old_path, const char *new_path,
                    kgb_config_diff_fn fn, void *userdata);

struct kgb_seed_plan {
  char *sibling;      /* the finished sibling O= directory that would need the least work */
  const char *name;   /* its last path component (the profile) */
  size_t objects;     /* objects kbuild has a record for in it */
  size_t affected;    /* of those, the ones that use a changed symbol */
  size_t n_changed;   /* config symbols set differently */
  char *top_symbol;   /* the changed symbol the most objects use, NULL when none is used */
  size_t top_objects; /* how many use it */
  bool seed;          /* affected is at most KGB_SEED_MAX_PERCENT of objects */
};

/* A copy is worth it while at most this share of a sibling's objects must be recompiled:
 * bench/kernel measured 88 % affected objects (intel-gvt-d after virgl) taking 109 % of a
 * cold build once the copy is counted. */
#define KGB_SEED_MAX_PERCENT 50

/* Looks at the finished O= directories in parent other than self (each has .kgb-config
 * and no .kgb-building) and fills ret with the best one; ret->sibling is NULL when there is
 * none. Reads only. */
int kgb_seed_plan(struct kgb_ctx *ctx, const char *parent, const char *self, const char *new_config,
                  struct kgb_seed_plan *ret);
/* After copying a sibling's O= directory `from` to dir, which will be renamed to `to`: the
 * kernel's tools (objtool, which every object depends on) record their targets by absolute
 * path, so the copy's records are rewritten to its final place (times kept); left alone,
 * objtool would be rebuilt and with it every object. kbuild's own records are relative. */
int kgb_seed_relocate(const char *dir, const char *from, const char *to, size_t *ret_files);
void kgb_seed_plan_release(struct kgb_seed_plan *plan);
