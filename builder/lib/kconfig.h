/* A reader for the kernel's Kconfig language and an evaluator for its expressions.
 *
 * It does not resolve a configuration (the kernel's own scripts/kconfig does that); it reads
 * the symbol definitions so that a value that did not survive resolution can be explained:
 * which `depends on` (with enclosing `if`, `menu ... depends on` and `choice`) was false,
 * which `select` forced a value, which choice member won. Values come from a resolved
 * .config through a callback. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "kgb.h"

enum kgb_ktype {
  KGB_KTYPE_UNKNOWN, /* no type line seen (e.g. a symbol only referenced) */
  KGB_KTYPE_BOOL,
  KGB_KTYPE_TRISTATE,
  KGB_KTYPE_STRING,
  KGB_KTYPE_INT,
  KGB_KTYPE_HEX,
  _KGB_KTYPE_MAX,
  _KGB_KTYPE_INVALID = -22,
};
const char *kgb_ktype_to_string(enum kgb_ktype t);

/* Value of a symbol (name without the CONFIG_ prefix) as a resolved .config holds it, without
 * quotes: "y", "m", a string, a number; NULL when the symbol is not set (n for bool/tristate). */
typedef const char *(*kgb_kvalue_fn)(void *userdata, const char *symbol);

/* ---- expressions ---- */
struct kgb_kexpr; /* immutable, reference counted */

/* Parses a Kconfig expression (`A && (B || !C)`, `FOO = "bar"`, `X != y`, `N >= 3`, `$(macro)`).
 * On a syntax error returns -EINVAL and, when ret_errcol is given, the 0-based column. */
int kgb_kexpr_parse(const char *text, struct kgb_kexpr **ret, size_t *ret_errcol);
struct kgb_kexpr *kgb_kexpr_ref(struct kgb_kexpr *e);
struct kgb_kexpr *kgb_kexpr_unref(struct kgb_kexpr *e); /* NULL-safe, returns NULL */
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_kexpr *, kgb_kexpr_unref)
/* a && b; NULL stands for "y" on input, so and(NULL, b) is a new reference to b. */
struct kgb_kexpr *kgb_kexpr_and(struct kgb_kexpr *a, struct kgb_kexpr *b);
struct kgb_kexpr *kgb_kexpr_or(struct kgb_kexpr *a, struct kgb_kexpr *b);
/* Tristate value with Kconfig semantics (&& = min, || = max, ! = 2 - v, comparisons give
 * y or n); NULL evaluates to KGB_Y. An operand whose value cannot be known (an unexpanded
 * $(function,...) call) evaluates to KGB_N. */
enum kgb_tristate kgb_kexpr_eval(const struct kgb_kexpr *e, kgb_kvalue_fn value, void *userdata);
/* Text of the expression with minimal parentheses; with a value function each symbol operand
 * is followed by its value as menuconfig prints it: `DRM [=n] && X86 [=y] && PCI [=y]`. */
char *kgb_kexpr_format(const struct kgb_kexpr *e, kgb_kvalue_fn value, void *userdata);
/* Calls fn for every symbol name the expression refers to (with repeats). */
void kgb_kexpr_foreach_symbol(const struct kgb_kexpr *e, void (*fn)(void *ud, const char *sym),
                              void *userdata);

/* ---- the symbol database ---- */
struct kgb_kdefault {
  struct kgb_kexpr *value; /* `default VALUE if COND`: value as an expression */
  struct kgb_kexpr *cond;  /* NULL: unconditional */
  const char *file;
  unsigned line;
};

struct kgb_kselect {
  const char *symbol;     /* the other end: target for selects[], selector for selected_by[] */
  struct kgb_kexpr *cond; /* `if COND`, NULL: unconditional */
  bool imply;             /* `imply` (weak) rather than `select` */
  const char *file;
  unsigned line;
};

/* One `config` or `menuconfig` block. A symbol may have several. */
struct kgb_kdef {
  const char *file; /* path relative to the source tree */
  unsigned line;
  bool has_prompt;
  struct kgb_kexpr *prompt_if; /* `bool "x" if COND` / `prompt "x" if COND`; NULL: none */
  /* Own `depends on` lines ANDed with every enclosing `if`, `menu ... depends on` and the
   * enclosing choice's dependencies; NULL means no dependency. */
  struct kgb_kexpr *depends;
  struct kgb_kdefault *defaults;
  size_t n_defaults;
  struct kgb_kselect *selects; /* this block's select/imply lines */
  size_t n_selects;
};

struct kgb_kchoice {
  const char *name; /* NULL for an unnamed choice */
  const char *file;
  unsigned line;
  struct kgb_kexpr *depends; /* including enclosing if/menu */
  bool optional;
  const char **members; /* symbol names, in order */
  size_t n_members;
};

struct kgb_ksym {
  const char *name; /* without CONFIG_ */
  enum kgb_ktype type;
  struct kgb_kdef *defs;
  size_t n_defs;
  struct kgb_kchoice *choice;      /* the choice this symbol is a member of, or NULL */
  struct kgb_kselect *selected_by; /* reverse index: every select/imply naming this symbol */
  size_t n_selected_by;
};

struct kgb_kconfig;

struct kgb_kconfig_vars {
  const char *srcarch;       /* $(SRCARCH), e.g. "x86" */
  const char *arch;          /* $(ARCH), e.g. "x86_64" */
  const char *kernelversion; /* $(KERNELVERSION), may be NULL */
};

/* Reads <srctree>/Kconfig and everything it sources. A syntax error in a Kconfig file gives
 * -EINVAL with "file:line: ..." in the context's error detail. */
int kgb_kconfig_load(struct kgb_ctx *ctx, const char *srctree, const struct kgb_kconfig_vars *vars,
                     struct kgb_kconfig **ret);

/* The same from memory, for tests and fuzzing: open(ud, path) returns the text of a file
 * named relative to the tree (malloc'ed, NUL-terminated) or a negative errno. */
typedef int (*kgb_kconfig_open_fn)(void *userdata, const char *path, char **ret_text);
int kgb_kconfig_load_with(struct kgb_ctx *ctx, const char *top, kgb_kconfig_open_fn open_fn,
                          void *userdata, const struct kgb_kconfig_vars *vars,
                          struct kgb_kconfig **ret);

struct kgb_kconfig *kgb_kconfig_free(struct kgb_kconfig *k);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_kconfig *, kgb_kconfig_free)

/* Lookup by name without the CONFIG_ prefix; NULL when no Kconfig defines it. A symbol that
 * is only referenced in expressions, never defined by a config block, is not found. */
const struct kgb_ksym *kgb_kconfig_find(const struct kgb_kconfig *k, const char *name);
size_t kgb_kconfig_count(const struct kgb_kconfig *k);
const struct kgb_ksym *kgb_kconfig_at(const struct kgb_kconfig *k, size_t i);
size_t kgb_kconfig_n_files(const struct kgb_kconfig *k); /* Kconfig files read */
/* Up to max defined names closest to name (edit distance, then shared substring), best
 * first; returns how many were written to out (pointers stay owned by k). */
size_t kgb_kconfig_similar(const struct kgb_kconfig *k, const char *name, const char **out,
                           size_t max);
/* Direct dependency of a symbol: the OR over its definitions' `depends`; NULL when one of
 * them has none. The caller owns the returned reference. */
struct kgb_kexpr *kgb_ksym_dependency(const struct kgb_ksym *s);
