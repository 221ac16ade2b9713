/* Kernel config fragments and resolved .config files: the same line format, parsed strictly,
 * with the file and line of every value kept for reports. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "kgb.h"

struct kgb_fentry {
  char *symbol; /* without CONFIG_ */
  char *value;  /* "y", "m", "n", a number as written, or a string's unescaped content */
  bool is_string;
  unsigned line;
};

struct kgb_fragment {
  char *name; /* as shown in messages, e.g. "kconfig-fragments/gpu/nvidia.conf" */
  struct kgb_fentry *entries;
  size_t n_entries;
  char **exclude_arches; /* from tag lines such as `# !s390x !powerpc` */
  unsigned tag_line;     /* line of the first tag, 0 when none */
};

/* Parses text. name is used in error details ("name:line: ..."). An empty fragment (no
 * setting at all) is an error unless allow_empty is set (a .config never is). */
int kgb_fragment_parse(struct kgb_ctx *ctx, const char *name, const char *text, bool allow_empty,
                       struct kgb_fragment **ret);
int kgb_fragment_load(struct kgb_ctx *ctx, const char *path, const char *name, bool allow_empty,
                      struct kgb_fragment **ret);
struct kgb_fragment *kgb_fragment_free(struct kgb_fragment *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_fragment *, kgb_fragment_free)

/* True when a tag line names exactly this architecture (`!x86_64` excludes x86_64 only,
 * never x86). */
bool kgb_fragment_excludes(const struct kgb_fragment *f, const char *arch);
/* The last entry for symbol, or NULL. */
const struct kgb_fentry *kgb_fragment_find(const struct kgb_fragment *f, const char *symbol);

/* Appends one line in .config syntax (`CONFIG_X=y`, `# CONFIG_X is not set`, quoted strings
 * escaped). */
struct sbuf;
int kgb_fentry_format(struct sbuf *sb, const char *symbol, const char *value, bool is_string);
/* Value as a person reads it in a report: y, m, n, 5, "text". */
char *kgb_fentry_display(const char *value, bool is_string);
/* True when two values are the same setting: n equals unset, strings compare exactly, numbers
 * numerically (0x10 == 16). A NULL value means unset. */
bool kgb_fvalue_equal(const char *a, bool a_string, const char *b, bool b_string);
