/* The Kconfig reader and its expressions: precedence, tristate logic and comparisons as the
 * kernel defines them, dependencies folded from enclosing blocks, the select index, help
 * texts, error locations and name suggestions, on in-memory trees, a fixture tree and (when
 * KGB_TEST_KERNEL_TREE names an extracted kernel source) the real x86_64 Kconfig of 6.1. */
/* cmocka.h needs these first */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fixture.h"
#include "kconfig.h"

/* ---- helpers ---- */

/* name=value pairs; a name missing from the list is unset */
struct values {
  const char *const *pairs;
};

static const char *value_of(void *userdata, const char *symbol) {
  const struct values *v = userdata;
  for (size_t i = 0; v->pairs[i]; i += 2)
    if (strcmp(v->pairs[i], symbol) == 0)
      return v->pairs[i + 1];
  return NULL;
}

static struct kgb_kexpr *parse(const char *text) {
  struct kgb_kexpr *e = NULL;
  size_t col = 0;
  int r = kgb_kexpr_parse(text, &e, &col);
  if (r < 0)
    fail_msg("'%s' does not parse (column %zu)", text, col);
  return e;
}

static void assert_format(const char *text, const char *expected) {
  _cleanup_(kgb_kexpr_unrefp) struct kgb_kexpr *e = parse(text);
  _cleanup_free_ char *s = kgb_kexpr_format(e, NULL, NULL);
  assert_string_equal(s, expected);
  /* the formatted text means the same: it formats identically once more */
  _cleanup_(kgb_kexpr_unrefp) struct kgb_kexpr *again = parse(s);
  _cleanup_free_ char *s2 = kgb_kexpr_format(again, NULL, NULL);
  assert_string_equal(s2, expected);
}

static enum kgb_tristate eval_with(const char *text, const char *const *pairs) {
  _cleanup_(kgb_kexpr_unrefp) struct kgb_kexpr *e = parse(text);
  struct values v = {pairs};
  return kgb_kexpr_eval(e, value_of, &v);
}

static char *format_with(const struct kgb_kexpr *e, const char *const *pairs) {
  struct values v = {pairs};
  return kgb_kexpr_format(e, value_of, &v);
}

struct memfile {
  const char *path;
  const char *text;
};

static int open_mem(void *userdata, const char *path, char **ret_text) {
  for (const struct memfile *f = userdata; f->path; f++)
    if (strcmp(f->path, path) == 0) {
      *ret_text = strdup(f->text);
      return *ret_text ? 0 : -ENOMEM;
    }
  return -ENOENT;
}

static const struct kgb_kconfig_vars x86_vars = {"x86", "x86_64", "6.1.0"};

static struct kgb_kconfig *load_mem(const struct memfile *files) {
  struct kgb_kconfig *k = NULL;
  kgb_error_clear(ctx);
  int r = kgb_kconfig_load_with(ctx, "Kconfig", open_mem, (void *)files, &x86_vars, &k);
  if (r < 0)
    fail_msg("loading failed: %d %s", r, kgb_error_detail(ctx));
  return k;
}

static const struct kgb_ksym *find(const struct kgb_kconfig *k, const char *name) {
  const struct kgb_ksym *s = kgb_kconfig_find(k, name);
  if (!s)
    fail_msg("symbol %s not found", name);
  return s;
}

static void assert_expr(const struct kgb_kexpr *e, const char *expected) {
  _cleanup_free_ char *s = kgb_kexpr_format(e, NULL, NULL);
  assert_string_equal(s, expected);
}

static const struct kgb_kselect *find_selector(const struct kgb_ksym *s, const char *selector) {
  for (size_t i = 0; i < s->n_selected_by; i++)
    if (strcmp(s->selected_by[i].symbol, selector) == 0)
      return &s->selected_by[i];
  return NULL;
}

/* ---- expressions ---- */

static void test_format_precedence(void **state) {
  (void)state;
  assert_format("A && B || C", "A && B || C");
  assert_format("(A && B) || C", "A && B || C");
  assert_format("A && (B || C)", "A && (B || C)");
  assert_format("A || B && C", "A || B && C");
  assert_format("(A || B) && (C || D)", "(A || B) && (C || D)");
  assert_format("!A && B", "!A && B");
  assert_format("!(A && B)", "!(A && B)");
  assert_format("!!A", "!!A");
  assert_format("((A))", "A");
  assert_format("A && (B && C)", "A && B && C");
  assert_format("A || (B || C)", "A || B || C");
  assert_format("!(A || B) || C", "!(A || B) || C");
  assert_format("X!=y", "X != y");
  assert_format("N>=3 && N<10", "N >= 3 && N < 10");
  assert_format("!FOO = y", "!FOO = y");
  assert_format("FOO = \"bar baz\"", "FOO = \"bar baz\"");
  assert_format("'single' = FOO", "\"single\" = FOO");
  assert_format("S = \"say \\\"hi\\\"\"", "S = \"say \\\"hi\\\"\"");
  assert_format("64BIT && X86_64", "64BIT && X86_64");
  assert_format("$(cc-option,-mfoo -O2) && X", "$(cc-option,-mfoo -O2) && X");
  assert_format("!$(success,test \"$(cc-name)\" = GCC)", "!$(success,test \"$(cc-name)\" = GCC)");
  assert_format("\t A  \n&&\tB ", "A && B");
}

static void test_precedence_semantics(void **state) {
  (void)state;
  const char *const a_only[] = {"A", "y", NULL};
  /* && binds tighter than ||: A || (B && C) */
  assert_int_equal(eval_with("A || B && C", a_only), KGB_Y);
  assert_int_equal(eval_with("B && C || A", a_only), KGB_Y);
  /* ! binds tighter than &&: (!B) && A, not !(B && A) */
  assert_int_equal(eval_with("!B && A", a_only), KGB_Y);
  assert_int_equal(eval_with("!A && B", a_only), KGB_N);
  /* a comparison binds tighter than !: !(A = y) */
  assert_int_equal(eval_with("!A = y", a_only), KGB_N);
  assert_int_equal(eval_with("!B = y", a_only), KGB_Y);
}

static void test_eval_tristate(void **state) {
  (void)state;
  const char *const vals[] = {"Y", "y", "M", "m", "STR", "hello", NULL};
  assert_int_equal(eval_with("m && y", vals), KGB_M);
  assert_int_equal(eval_with("!m", vals), KGB_M);
  assert_int_equal(eval_with("!y", vals), KGB_N);
  assert_int_equal(eval_with("!n", vals), KGB_Y);
  assert_int_equal(eval_with("m || n", vals), KGB_M);
  assert_int_equal(eval_with("m || y", vals), KGB_Y);
  assert_int_equal(eval_with("M && Y", vals), KGB_M);
  assert_int_equal(eval_with("!M", vals), KGB_M);
  assert_int_equal(eval_with("M && !M", vals), KGB_M);
  assert_int_equal(eval_with("UNSET", vals), KGB_N);
  assert_int_equal(eval_with("!UNSET", vals), KGB_Y);
  assert_int_equal(eval_with("Y && UNSET", vals), KGB_N);
  /* a string or int symbol in a boolean context is n */
  assert_int_equal(eval_with("STR", vals), KGB_N);
  /* a quoted "y" is the constant y, as in the kernel */
  assert_int_equal(eval_with("\"y\"", vals), KGB_Y);
  /* an unexpanded function call cannot be known: it counts as n */
  assert_int_equal(eval_with("$(cc-option,-mfoo)", vals), KGB_N);
  assert_int_equal(eval_with("!$(cc-option,-mfoo)", vals), KGB_Y);
  assert_int_equal(kgb_kexpr_eval(NULL, value_of, &(struct values){vals}), KGB_Y);
  /* without a value function every symbol is unset */
  _cleanup_(kgb_kexpr_unrefp) struct kgb_kexpr *e = parse("!A && y");
  assert_int_equal(kgb_kexpr_eval(e, NULL, NULL), KGB_Y);
}

static void test_eval_compare(void **state) {
  (void)state;
  const char *const vals[] = {"NR",  "10", "ADDR", "0x100", "NAME", "bar",
                              "NEG", "-5", "T",    "m",     NULL};
  /* numeric when both sides are numbers: "10" < "3" as strings, 10 >= 3 as numbers */
  assert_int_equal(eval_with("NR >= 3", vals), KGB_Y);
  assert_int_equal(eval_with("NR < 3", vals), KGB_N);
  assert_int_equal(eval_with("NR = 10", vals), KGB_Y);
  assert_int_equal(eval_with("NR != 10", vals), KGB_N);
  assert_int_equal(eval_with("NR <= 0xa", vals), KGB_Y);
  assert_int_equal(eval_with("ADDR > 0xff", vals), KGB_Y);
  assert_int_equal(eval_with("ADDR = 256", vals), KGB_Y);
  assert_int_equal(eval_with("NEG < 0", vals), KGB_Y);
  /* strings */
  assert_int_equal(eval_with("NAME = \"bar\"", vals), KGB_Y);
  assert_int_equal(eval_with("NAME != \"bar\"", vals), KGB_N);
  assert_int_equal(eval_with("NAME < \"baz\"", vals), KGB_Y);
  /* tristates compare as their letters; an unset symbol is "n" */
  assert_int_equal(eval_with("T = m", vals), KGB_Y);
  assert_int_equal(eval_with("T != n", vals), KGB_Y);
  assert_int_equal(eval_with("UNSET = n", vals), KGB_Y);
  assert_int_equal(eval_with("UNSET != y", vals), KGB_Y);
  assert_int_equal(eval_with("\"x86_64\" = \"x86\"", vals), KGB_N);
  /* a comparison gives y or n, never m */
  assert_int_equal(eval_with("T = m && y", vals), KGB_Y);
  /* an operand of unknown value makes the comparison false either way */
  assert_int_equal(eval_with("$(shell,uname) = Linux", vals), KGB_N);
  assert_int_equal(eval_with("$(shell,uname) != Linux", vals), KGB_N);
}

static void test_format_values(void **state) {
  (void)state;
  const char *const vals[] = {"X86", "y", "PCI", "y", "NAME", "bar", "NR", "64", NULL};
  _cleanup_(kgb_kexpr_unrefp) struct kgb_kexpr *e = parse("DRM && X86 && PCI");
  _cleanup_free_ char *s = format_with(e, vals);
  assert_string_equal(s, "DRM [=n] && X86 [=y] && PCI [=y]");

  _cleanup_(kgb_kexpr_unrefp) struct kgb_kexpr *e2 =
      parse("(NAME = \"bar\" || !y) && NR >= 4 && $(cc-option,-mfoo)");
  _cleanup_free_ char *s2 = format_with(e2, vals);
  assert_string_equal(s2,
                      "(NAME [=bar] = \"bar\" || !y) && NR [=64] >= 4 && $(cc-option,-mfoo) [=?]");

  _cleanup_free_ char *s3 = kgb_kexpr_format(NULL, NULL, NULL);
  assert_string_equal(s3, "y");
}

static void test_parse_errors(void **state) {
  (void)state;
  static const struct {
    const char *text;
    size_t col;
  } cases[] = {
      {"", 0},          {"A &&", 4},    {"A && && B", 5}, {"(A", 2},    {"A)", 1},    {"A B", 2},
      {"A = B = C", 6}, {"\"open", 0},  {"$(foo", 0},     {"A & B", 2}, {"A | B", 2}, {"!", 1},
      {"A = (B)", 4},   {"(A) = B", 4}, {"A =", 3},       {"#A", 0},
  };
  for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
    struct kgb_kexpr *e = NULL;
    size_t col = 99;
    int r = kgb_kexpr_parse(cases[i].text, &e, &col);
    if (r != -EINVAL || e || col != cases[i].col)
      fail_msg("'%s': r=%d column %zu, expected -EINVAL at %zu", cases[i].text, r, col,
               cases[i].col);
  }
  /* deep nesting is refused rather than exhausting the stack */
  char deep[4096];
  memset(deep, '(', sizeof(deep) - 1);
  deep[sizeof(deep) - 1] = '\0';
  struct kgb_kexpr *e = NULL;
  assert_int_equal(kgb_kexpr_parse(deep, &e, NULL), -EINVAL);
}

static void collect(void *ud, const char *sym) {
  char *buf = ud;
  if (*buf)
    strcat(buf, " ");
  strcat(buf, sym);
}

static void test_combine(void **state) {
  (void)state;
  _cleanup_(kgb_kexpr_unrefp) struct kgb_kexpr *a = parse("A && B");
  _cleanup_(kgb_kexpr_unrefp) struct kgb_kexpr *b = parse("B && C");

  /* NULL is y */
  struct kgb_kexpr *x = kgb_kexpr_and(NULL, b);
  assert_ptr_equal(x, b);
  kgb_kexpr_unref(x);
  x = kgb_kexpr_and(a, NULL);
  assert_ptr_equal(x, a);
  kgb_kexpr_unref(x);
  assert_null(kgb_kexpr_and(NULL, NULL));
  assert_null(kgb_kexpr_or(NULL, b));
  assert_null(kgb_kexpr_or(a, NULL));

  /* a term both sides share appears once, as in the kernel's menu dependencies */
  _cleanup_(kgb_kexpr_unrefp) struct kgb_kexpr *ab = kgb_kexpr_and(a, b);
  assert_expr(ab, "A && B && C");
  _cleanup_(kgb_kexpr_unrefp) struct kgb_kexpr *aa = kgb_kexpr_and(a, a);
  assert_expr(aa, "A && B");
  _cleanup_(kgb_kexpr_unrefp) struct kgb_kexpr *o = kgb_kexpr_or(a, b);
  assert_expr(o, "A && B || B && C");
  _cleanup_(kgb_kexpr_unrefp) struct kgb_kexpr *oa = kgb_kexpr_and(o, a);
  assert_expr(oa, "(A && B || B && C) && A && B");

  /* the inputs are untouched */
  assert_expr(a, "A && B");
  assert_expr(b, "B && C");

  char names[256] = "";
  _cleanup_(kgb_kexpr_unrefp) struct kgb_kexpr *e =
      parse("A && (B || !C) && D = \"s\" && y && m && 3 && $(f,x) && A");
  kgb_kexpr_foreach_symbol(e, collect, names);
  assert_string_equal(names, "A B C D A");
}

/* ---- the reader, in memory ---- */

static const struct memfile tree[] = {
    {"Kconfig", "# SPDX-License-Identifier: GPL-2.0\n"
                "mainmenu \"Test $(SRCARCH) kernel\"\n"
                "\n"
                "source \"arch/$(SRCARCH)/Kconfig\"\n"
                "\n"
                "menu \"Drivers\"\n"
                "\tdepends on HAS_IOMEM\n"
                "\tvisible if EXPERT\n"
                "\n"
                "if PCI\n"
                "\n"
                "config DRM_I915\n" /* line 12 */
                "\ttristate \"Intel graphics\"\n"
                "\tdepends on DRM\n"
                "\tdepends on X86 && PCI\n"
                "\tselect DRM_KMS_HELPER\n"
                "\n"
                "choice\n" /* line 18 */
                "\tprompt \"Backend\"\n"
                "\tdepends on DRM_I915\n"
                "\tdefault BACKEND_A\n"
                "\n"
                "config BACKEND_A\n"
                "\tbool \"A\"\n"
                "\n"
                "if X86\n"
                "config BACKEND_B\n"
                "\tbool \"B\" if EXPERT\n"
                "\tdepends on 64BIT\n"
                "endif\n"
                "\n"
                "endchoice\n"
                "\n"
                "endif # PCI\n"
                "\n"
                "comment \"DRM needs more\"\n"
                "\tdepends on !DRM\n"
                "\n"
                "endmenu\n"
                "\n"
                "config DRM\n" /* line 41 */
                "\ttristate \"DRM\"\n"
                "\tselect FW_LOADER\n"
                "\tselect DRM_KMS_HELPER if DRM_I915\n"
                "\timply FB\n"
                "\n"
                "config FW_LOADER\n"
                "\ttristate\n"
                "\tdefault y\n"
                "\n"
                "config DRM_KMS_HELPER\n"
                "\ttristate\n"
                "\n"
                "choice OPTIONAL_CHOICE\n"
                "\ttristate \"maybe\"\n"
                "\toptional\n"
                "config UNTYPED_MEMBER\n"
                "\tprompt \"member\"\n"
                "endchoice\n"},
    {"arch/x86/Kconfig", "config X86\n"
                         "\tdef_bool y\n"
                         "\n"
                         "config 64BIT\n"
                         "\tbool \"64-bit kernel\" if \"$(ARCH)\" = \"x86\"\n"
                         "\tdefault \"$(ARCH)\" != \"i386\"\n"
                         "\n"
                         "config PCI\n"
                         "\tbool \"PCI support\"\n"
                         "\tdefault y if X86 && \\\n"
                         "\t           64BIT\n"
                         "\n"
                         "menuconfig HAS_IOMEM\n"
                         "\tdef_bool y if !UML\n"
                         "\n"
                         "config EXPERT\n"
                         "\tbool\n"},
    {NULL, NULL},
};

static void test_enclosing_dependencies(void **state) {
  (void)state;
  _cleanup_(kgb_kconfig_freep) struct kgb_kconfig *k = load_mem(tree);
  assert_int_equal(kgb_kconfig_n_files(k), 2);

  /* menu `depends on`, then `if`, then its own lines; PCI is not repeated */
  const struct kgb_ksym *i915 = find(k, "DRM_I915");
  assert_int_equal(i915->type, KGB_KTYPE_TRISTATE);
  assert_int_equal(i915->n_defs, 1);
  assert_string_equal(i915->defs[0].file, "Kconfig");
  assert_int_equal(i915->defs[0].line, 12);
  assert_true(i915->defs[0].has_prompt);
  assert_null(i915->defs[0].prompt_if);
  assert_expr(i915->defs[0].depends, "HAS_IOMEM && PCI && DRM && X86");
  assert_null(i915->choice);

  /* a choice member: the choice's dependencies (with its own enclosing blocks), then an `if`
   * inside the choice, then its own */
  const struct kgb_ksym *b = find(k, "BACKEND_B");
  assert_expr(b->defs[0].depends, "HAS_IOMEM && PCI && DRM_I915 && X86 && 64BIT");
  assert_expr(b->defs[0].prompt_if, "EXPERT");
  assert_non_null(b->choice);
  const struct kgb_kchoice *c = b->choice;
  assert_null(c->name);
  assert_string_equal(c->file, "Kconfig");
  assert_int_equal(c->line, 18);
  assert_false(c->optional);
  assert_expr(c->depends, "HAS_IOMEM && PCI && DRM_I915");
  assert_int_equal(c->n_members, 2);
  assert_string_equal(c->members[0], "BACKEND_A");
  assert_string_equal(c->members[1], "BACKEND_B");
  assert_ptr_equal(find(k, "BACKEND_A")->choice, c);

  /* outside every block: no dependency at all */
  const struct kgb_ksym *drm = find(k, "DRM");
  assert_null(drm->defs[0].depends);
  _cleanup_(kgb_kexpr_unrefp) struct kgb_kexpr *dep = kgb_ksym_dependency(i915);
  const char *const vals[] = {"HAS_IOMEM", "y", "PCI", "y", "X86", "y", NULL};
  _cleanup_free_ char *why = format_with(dep, vals);
  assert_string_equal(why, "HAS_IOMEM [=y] && PCI [=y] && DRM [=n] && X86 [=y]");

  /* types, prompts, defaults; $(ARCH) expanded in strings; a continued line */
  const struct kgb_ksym *b64 = find(k, "64BIT");
  assert_int_equal(b64->type, KGB_KTYPE_BOOL);
  assert_expr(b64->defs[0].prompt_if, "\"x86_64\" = \"x86\"");
  assert_int_equal(kgb_kexpr_eval(b64->defs[0].prompt_if, NULL, NULL), KGB_N);
  assert_int_equal(b64->defs[0].n_defaults, 1);
  assert_expr(b64->defs[0].defaults[0].value, "\"x86_64\" != \"i386\"");
  assert_null(b64->defs[0].defaults[0].cond);
  assert_int_equal(kgb_kexpr_eval(b64->defs[0].defaults[0].value, NULL, NULL), KGB_Y);
  const struct kgb_ksym *pci = find(k, "PCI");
  assert_expr(pci->defs[0].defaults[0].value, "y");
  assert_expr(pci->defs[0].defaults[0].cond, "X86 && 64BIT");
  assert_string_equal(pci->defs[0].defaults[0].file, "arch/x86/Kconfig");
  assert_int_equal(pci->defs[0].defaults[0].line, 10);
  const struct kgb_ksym *iomem = find(k, "HAS_IOMEM");
  assert_int_equal(iomem->type, KGB_KTYPE_BOOL);
  assert_false(iomem->defs[0].has_prompt);
  assert_expr(iomem->defs[0].defaults[0].cond, "!UML");
  assert_int_equal(find(k, "X86")->defs[0].line, 1);

  /* a menu's `visible if` is not a dependency; a comment defines nothing */
  assert_null(kgb_kconfig_find(k, "UML"));
  assert_int_equal(kgb_kconfig_count(k), 12);

  /* an optional named choice gives its type to an untyped member */
  const struct kgb_ksym *um = find(k, "UNTYPED_MEMBER");
  assert_int_equal(um->type, KGB_KTYPE_TRISTATE);
  assert_string_equal(um->choice->name, "OPTIONAL_CHOICE");
  assert_true(um->choice->optional);

  /* count and at enumerate defined symbols in order of definition */
  assert_string_equal(kgb_kconfig_at(k, 0)->name, "X86");
  assert_null(kgb_kconfig_at(k, kgb_kconfig_count(k)));
}

static void test_select_index(void **state) {
  (void)state;
  _cleanup_(kgb_kconfig_freep) struct kgb_kconfig *k = load_mem(tree);

  const struct kgb_ksym *drm = find(k, "DRM");
  assert_int_equal(drm->defs[0].n_selects, 3);
  assert_string_equal(drm->defs[0].selects[0].symbol, "FW_LOADER");
  assert_false(drm->defs[0].selects[0].imply);
  assert_null(drm->defs[0].selects[0].cond);
  assert_int_equal(drm->defs[0].selects[0].line, 43);
  assert_string_equal(drm->defs[0].selects[2].symbol, "FB");
  assert_true(drm->defs[0].selects[2].imply);

  const struct kgb_ksym *fw = find(k, "FW_LOADER");
  assert_int_equal(fw->n_selected_by, 1);
  assert_string_equal(fw->selected_by[0].symbol, "DRM");
  assert_string_equal(fw->selected_by[0].file, "Kconfig");
  assert_int_equal(fw->selected_by[0].line, 43);

  const struct kgb_ksym *kms = find(k, "DRM_KMS_HELPER");
  assert_int_equal(kms->n_selected_by, 2);
  const struct kgb_kselect *by_i915 = find_selector(kms, "DRM_I915");
  const struct kgb_kselect *by_drm = find_selector(kms, "DRM");
  assert_non_null(by_i915);
  assert_non_null(by_drm);
  assert_null(by_i915->cond);
  assert_expr(by_drm->cond, "DRM_I915");

  /* FB is only implied, never defined: not a symbol of this tree */
  assert_null(kgb_kconfig_find(k, "FB"));
}

static void test_help_text(void **state) {
  (void)state;
  static const struct memfile files[] = {
      {"Kconfig", "config FOO\n"
                  "\tbool \"foo\"\n"
                  "\thelp\n"
                  "\t  This help mentions\n"
                  "\t  config BOGUS\n"
                  "\t  depends on BAR, and select BAZ\n"
                  "\n"
                  "\t  endif or endmenu, \"an unbalanced quote and a 'single one\n"
                  "\t    if MORE_INDENTED\n"
                  "          source \"ten/spaces/are/as/deep/as/tab/plus/two\"\n"
                  "\t  trailing backslash \\\n"
                  "\tdepends on REAL\n"
                  "\n"
                  "config OLD\n"
                  "\tbool \"old style\"\n"
                  "\t---help---\n"
                  "\t  endchoice\n"
                  "# a comment at column zero ends the help\n"
                  "config AFTER\n"
                  "\tbool\n"
                  "\thelp\n"
                  "config AT_COLUMN_ZERO\n"
                  "\tdef_bool y\n"},
      {NULL, NULL},
  };
  _cleanup_(kgb_kconfig_freep) struct kgb_kconfig *k = load_mem(files);
  assert_int_equal(kgb_kconfig_count(k), 4);
  assert_null(kgb_kconfig_find(k, "BOGUS"));
  assert_null(kgb_kconfig_find(k, "BAZ"));

  /* a line indented less than the help text ends it and is an attribute again */
  const struct kgb_ksym *foo = find(k, "FOO");
  assert_expr(foo->defs[0].depends, "REAL");
  assert_int_equal(foo->defs[0].n_selects, 0);
  assert_int_equal(find(k, "OLD")->defs[0].line, 14);
  assert_int_equal(find(k, "AFTER")->defs[0].line, 19);
  assert_int_equal(find(k, "AT_COLUMN_ZERO")->defs[0].line, 22);
}

static void test_macros_and_variables(void **state) {
  (void)state;
  static const struct memfile files[] = {
      {"Kconfig", "# helpers, as in scripts/Kconfig.include\n"
                  "quote     := \"\n"
                  "comma     := ,\n"
                  "cc-option = $(success,$(CC) -Werror $(1) -c -x c /dev/null -o /dev/null)\n"
                  "cc-info := $(shell,scripts/cc-version.sh $(CC))\n"
                  "$(error-if,$(failure,command -v $(CC)),C compiler '$(CC)' not found)\n"
                  "sub := drivers\n"
                  "dir = $(sub)/$(leaf)\n"
                  "leaf := gpu\n"
                  "flags := -a\n"
                  "flags += -b\n"
                  "\n"
                  "source \"$(dir)/Kconfig\"\n"
                  "\n"
                  "config STACKPROTECTOR\n"
                  "\tbool \"stack protector\"\n"
                  "\tdepends on HAVE_SP\n"
                  "\tdepends on $(cc-option,-fstack-protector)\n"
                  "\n"
                  "config CC_IS_GCC\n"
                  "\tdef_bool $(success,test \"$(cc-name)\" = GCC)\n"
                  "\n"
                  "config CC_VERSION_TEXT\n"
                  "\tstring\n"
                  "\tdefault \"$(shell,$(CC) --version | head -n 1)\"\n"
                  "\n"
                  "config FLAGS\n"
                  "\tstring\n"
                  "\tdefault \"$(flags)$(comma)$(quote)\"\n"
                  "\n"
                  "config VERSION_KNOWN\n"
                  "\tstring\n"
                  "\tdefault \"$(KERNELVERSION)\"\n"
                  "\n"
                  "config CC_INFO\n"
                  "\tstring\n"
                  "\tdefault \"$(cc-info)\" # a simple variable holding a call\n"},
      {"drivers/gpu/Kconfig", "config GPU\n"
                              "\tbool \"GPU\"\n"},
      {NULL, NULL},
  };
  _cleanup_(kgb_kconfig_freep) struct kgb_kconfig *k = load_mem(files);
  assert_non_null(kgb_kconfig_find(k, "GPU"));
  assert_string_equal(find(k, "GPU")->defs[0].file, "drivers/gpu/Kconfig");

  const struct kgb_ksym *sp = find(k, "STACKPROTECTOR");
  assert_expr(sp->defs[0].depends, "HAVE_SP && $(cc-option,-fstack-protector)");
  const char *const vals[] = {"HAVE_SP", "y", NULL};
  _cleanup_free_ char *why = format_with(sp->defs[0].depends, vals);
  assert_string_equal(why, "HAVE_SP [=y] && $(cc-option,-fstack-protector) [=?]");
  assert_int_equal(kgb_kexpr_eval(sp->defs[0].depends, value_of, &(struct values){vals}), KGB_N);

  assert_expr(find(k, "CC_IS_GCC")->defs[0].defaults[0].value,
              "$(success,test \"$(cc-name)\" = GCC)");
  assert_expr(find(k, "CC_VERSION_TEXT")->defs[0].defaults[0].value,
              "\"$(shell,$(CC) --version | head -n 1)\"");
  assert_expr(find(k, "FLAGS")->defs[0].defaults[0].value, "\"-a -b,\\\"\"");
  assert_expr(find(k, "VERSION_KNOWN")->defs[0].defaults[0].value, "\"6.1.0\"");
  assert_expr(find(k, "CC_INFO")->defs[0].defaults[0].value, "\"$(cc-info)\"");
}

static void expect_error(const struct memfile *files, int err, const char *detail) {
  struct kgb_kconfig *k = NULL;
  kgb_error_clear(ctx);
  int r = kgb_kconfig_load_with(ctx, "Kconfig", open_mem, (void *)files, &x86_vars, &k);
  if (r != err || k)
    fail_msg("expected %d for '%s', got %d", err, detail, r);
  assert_non_null(kgb_error_detail(ctx));
  assert_string_equal(kgb_error_detail(ctx), detail);
}

#define ONE_FILE(text)                                                                             \
  (const struct memfile[]) {                                                                       \
    {"Kconfig", text}, { NULL, NULL }                                                              \
  }

static void test_errors(void **state) {
  (void)state;
  expect_error(ONE_FILE("config X\n\tbool\nendif\n"), -EINVAL,
               "Kconfig:3: 'endif' without matching 'if'");
  expect_error(ONE_FILE("\nif A\nconfig X\n\tbool\n"), -EINVAL,
               "Kconfig:2: 'if' without matching 'endif'");
  expect_error(ONE_FILE("menu \"m\"\nif A\nendmenu\nendif\n"), -EINVAL,
               "Kconfig:3: unexpected 'endmenu' inside 'if' block from line 2");
  expect_error(ONE_FILE("choice\nconfig A\n\tbool \"a\"\nendchoice\nendchoice\n"), -EINVAL,
               "Kconfig:5: 'endchoice' without matching 'choice'");
  expect_error(ONE_FILE("config X\n\tbool \"unterminated\n\tdepends on Y\n"), -EINVAL,
               "Kconfig:2: unterminated string");
  expect_error(ONE_FILE("config X\n\tbool\n\n\nsource \"missing/Kconfig\"\n"), -EINVAL,
               "Kconfig:5: sourced file 'missing/Kconfig' not found");
  expect_error(ONE_FILE("depends on X\n"), -EINVAL,
               "Kconfig:1: attribute 'depends' outside of an entry");
  expect_error(ONE_FILE("if X\n\tdefault y\nendif\n"), -EINVAL,
               "Kconfig:2: attribute 'default' outside of an entry");
  expect_error(ONE_FILE("menu \"m\"\n\tselect FOO\nendmenu\n"), -EINVAL,
               "Kconfig:2: attribute 'select' is not allowed in a 'menu' entry");
  expect_error(ONE_FILE("config X\n\tbool\n\tfrobnicate y\n"), -EINVAL,
               "Kconfig:3: unknown attribute 'frobnicate' in 'config' entry");
  expect_error(ONE_FILE("frobnicate\n"), -EINVAL, "Kconfig:1: unknown statement 'frobnicate'");
  expect_error(ONE_FILE("config X\n\tdepends on A &&\n"), -EINVAL,
               "Kconfig:2: incomplete expression 'A &&'");
  expect_error(ONE_FILE("config X\n\tdepends on A && || B\n"), -EINVAL,
               "Kconfig:2: invalid expression 'A && || B' at '|| B'");
  expect_error(ONE_FILE("config X\n\tdepends A\n"), -EINVAL,
               "Kconfig:2: expected 'on' after 'depends'");
  expect_error(ONE_FILE("config\n"), -EINVAL, "Kconfig:1: expected a symbol name after 'config'");
  /* the statement's first line counts, continuation lines are counted too */
  expect_error(ONE_FILE("config X\n\tdepends on A && \\\n\t\tB\nconfig Y\n\tbool \"y\" if\n"),
               -EINVAL, "Kconfig:5: missing expression after 'if'");
  expect_error(ONE_FILE("config X\n\tselect \"quoted\"\n"), -EINVAL,
               "Kconfig:2: expected a symbol name after 'select'");
  expect_error(ONE_FILE("config X\n\tbool\n\tdepends on A ; B\n"), -EINVAL,
               "Kconfig:3: invalid character ';'");
  expect_error(ONE_FILE("x = $(x)\nconfig A\n\tdefault \"$(x)\"\n"), -EINVAL,
               "Kconfig:3: recursive variable 'x' references itself");
  expect_error(ONE_FILE("source \"Kconfig\"\n"), -EINVAL,
               "Kconfig:1: recursive inclusion of 'Kconfig'");

  /* in a sourced file the location is that file's */
  expect_error(
      (const struct memfile[]){
          {"Kconfig", "config A\n\tbool\nsource \"sub/Kconfig\"\nconfig B\n\tbool\n"},
          {"sub/Kconfig", "\n\nmenu \"x\"\nconfig C\n\tbool\n"},
          {NULL, NULL},
      },
      -EINVAL, "sub/Kconfig:3: 'menu' without matching 'endmenu'");
  /* a block cannot be closed in another file */
  expect_error(
      (const struct memfile[]){
          {"Kconfig", "if A\nsource \"sub/Kconfig\"\nendif\n"},
          {"sub/Kconfig", "config C\n\tbool\nendif\n"},
          {NULL, NULL},
      },
      -EINVAL, "sub/Kconfig:3: 'endif' without matching 'if'");

  /* a missing top file is not a syntax error */
  struct kgb_kconfig *k = NULL;
  kgb_error_clear(ctx);
  assert_int_equal(kgb_kconfig_load_with(ctx, "Kconfig", open_mem,
                                         (void *)(const struct memfile[]){{NULL, NULL}}, NULL, &k),
                   -ENOENT);
  assert_null(k);
  assert_non_null(strstr(kgb_error_detail(ctx), "'Kconfig'"));

  /* without a context the same errors are still returned */
  assert_int_equal(
      kgb_kconfig_load_with(NULL, "Kconfig", open_mem, (void *)ONE_FILE("endif\n"), NULL, &k),
      -EINVAL);
}

static void test_similar(void **state) {
  (void)state;
  static const struct memfile files[] = {
      {"Kconfig", "config DRM\n\ttristate \"drm\"\n"
                  "config DRM_I915\n\ttristate \"i915\"\n"
                  "config DRM_I915_GVT\n\tbool \"gvt\"\n"
                  "config DRM_I810\n\ttristate \"i810\"\n"
                  "config DRM_NOUVEAU\n\ttristate \"nouveau\"\n"
                  "config USB\n\ttristate \"usb\"\n"
                  "config USB_STORAGE\n\ttristate \"usb storage\"\n"},
      {NULL, NULL},
  };
  _cleanup_(kgb_kconfig_freep) struct kgb_kconfig *k = load_mem(files);
  const char *out[8];

  /* a typo: the closest edit first */
  size_t n = kgb_kconfig_similar(k, "DRM_I195", out, ELEMENTSOF(out));
  assert_true(n >= 2);
  assert_string_equal(out[0], "DRM_I915");
  assert_string_equal(out[1], "DRM"); /* contained in the request */

  /* case and the CONFIG_ prefix do not matter */
  n = kgb_kconfig_similar(k, "CONFIG_drm_i915", out, 1);
  assert_int_equal(n, 1);
  assert_string_equal(out[0], "DRM_I915");

  /* a part of a name finds the names containing it */
  n = kgb_kconfig_similar(k, "NOUVEAU", out, ELEMENTSOF(out));
  assert_int_equal(n, 1);
  assert_string_equal(out[0], "DRM_NOUVEAU");

  /* a longer name finds the names it contains, closest length first */
  n = kgb_kconfig_similar(k, "USB_STORAGE_REALTEK", out, ELEMENTSOF(out));
  assert_true(n >= 2);
  assert_string_equal(out[0], "USB_STORAGE");
  assert_string_equal(out[1], "USB");

  /* max bounds the answer */
  n = kgb_kconfig_similar(k, "DRM_I91", out, 2);
  assert_int_equal(n, 2);
  assert_string_equal(out[0], "DRM_I915");

  assert_int_equal(kgb_kconfig_similar(k, "ZZZZZZZZ", out, ELEMENTSOF(out)), 0);
  assert_int_equal(kgb_kconfig_similar(k, "", out, ELEMENTSOF(out)), 0);
}

/* ---- the reader, on files ---- */

static void test_fixture_tree(void **state) {
  (void)state;
  _cleanup_(kgb_kconfig_freep) struct kgb_kconfig *k = NULL;
  kgb_error_clear(ctx);
  int r = kgb_kconfig_load(ctx, KGB_TEST_FIXTURES "/kconfig/tree", &x86_vars, &k);
  if (r < 0)
    fail_msg("%d %s", r, kgb_error_detail(ctx));
  /* Kconfig, arch/x86/Kconfig and the two files the glob in Kconfig matches */
  assert_int_equal(kgb_kconfig_n_files(k), 4);
  const struct kgb_ksym *gpu = find(k, "GPU");
  assert_string_equal(gpu->defs[0].file, "drivers/gpu/Kconfig");
  assert_expr(gpu->defs[0].depends, "PCI");
  const struct kgb_ksym *net = find(k, "NET_DRIVER");
  assert_string_equal(net->defs[0].file, "drivers/net/Kconfig");
  assert_int_equal(net->defs[0].line, 3);
  const struct kgb_ksym *x86 = find(k, "X86");
  assert_string_equal(x86->defs[0].file, "arch/x86/Kconfig");

  _cleanup_(kgb_kconfig_freep) struct kgb_kconfig *none = NULL;
  kgb_error_clear(ctx);
  assert_int_equal(kgb_kconfig_load(ctx, KGB_TEST_FIXTURES "/kconfig/missing", &x86_vars, &none),
                   -ENOENT);
  assert_null(none);

  _cleanup_(kgb_kconfig_freep) struct kgb_kconfig *bad = NULL;
  kgb_error_clear(ctx);
  assert_int_equal(kgb_kconfig_load(ctx, KGB_TEST_FIXTURES "/kconfig/broken", &x86_vars, &bad),
                   -EINVAL);
  assert_string_equal(kgb_error_detail(ctx), "drivers/Kconfig:4: unterminated string");
}

/* ---- the real kernel ---- */

static void test_real_tree(void **state) {
  (void)state;
  const char *tree_dir = getenv("KGB_TEST_KERNEL_TREE");
  if (!tree_dir || !*tree_dir) {
    print_message("KGB_TEST_KERNEL_TREE is not set: skipping the real-tree test\n");
    skip();
  }

  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  _cleanup_(kgb_kconfig_freep) struct kgb_kconfig *k = NULL;
  kgb_error_clear(ctx);
  int r = kgb_kconfig_load(ctx, tree_dir, &x86_vars, &k);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if (r < 0)
    fail_msg("%d %s", r, kgb_error_detail(ctx));
  double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
  print_message("loaded %zu symbols from %zu Kconfig files in %.1f ms\n", kgb_kconfig_count(k),
                kgb_kconfig_n_files(k), ms);
  assert_true(kgb_kconfig_count(k) > 15000);
  assert_true(kgb_kconfig_n_files(k) > 1000);

  const struct kgb_ksym *i915 = find(k, "DRM_I915");
  assert_int_equal(i915->type, KGB_KTYPE_TRISTATE);
  assert_string_equal(i915->defs[0].file, "drivers/gpu/drm/i915/Kconfig");
  _cleanup_(kgb_kexpr_unrefp) struct kgb_kexpr *dep = kgb_ksym_dependency(i915);
  const char *const vals[] = {"HAS_IOMEM", "y", "X86", "y", "PCI", "y", NULL};
  _cleanup_free_ char *why = format_with(dep, vals);
  assert_non_null(strstr(why, "DRM [=n]"));
  assert_non_null(strstr(why, "X86 [=y]"));
  assert_non_null(strstr(why, "PCI [=y]"));
  assert_int_equal(kgb_kexpr_eval(dep, value_of, &(struct values){vals}), KGB_N);

  assert_non_null(kgb_kconfig_find(k, "PCI_MMCONFIG"));
  assert_non_null(kgb_kconfig_find(k, "DRM_NOUVEAU"));
  assert_null(kgb_kconfig_find(k, "DRM_NOUVEAU_DOES_NOT_EXIST"));
  assert_int_equal(find(k, "64BIT")->type, KGB_KTYPE_BOOL);

  assert_true(find(k, "FW_LOADER")->n_selected_by > 10);
  const struct kgb_ksym *kms = find(k, "DRM_KMS_HELPER");
  assert_non_null(find_selector(kms, "DRM_I915"));
  assert_non_null(find_selector(kms, "DRM_NOUVEAU"));

  /* the x86_64 processor family choice */
  const struct kgb_ksym *generic = find(k, "GENERIC_CPU");
  assert_non_null(generic->choice);
  bool has_mk8 = false;
  for (size_t i = 0; i < generic->choice->n_members; i++)
    has_mk8 |= strcmp(generic->choice->members[i], "MK8") == 0;
  assert_true(has_mk8);

  /* compiler probes stay unexpanded */
  _cleanup_(kgb_kexpr_unrefp) struct kgb_kexpr *sp = kgb_ksym_dependency(find(k, "STACKPROTECTOR"));
  _cleanup_free_ char *sp_text = kgb_kexpr_format(sp, NULL, NULL);
  assert_non_null(strstr(sp_text, "$(cc-option,-fstack-protector)"));

  const char *out[3];
  assert_true(kgb_kconfig_similar(k, "DRM_I195", out, ELEMENTSOF(out)) > 0);
  assert_string_equal(out[0], "DRM_I915");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_format_precedence),
      cmocka_unit_test(test_precedence_semantics),
      cmocka_unit_test(test_eval_tristate),
      cmocka_unit_test(test_eval_compare),
      cmocka_unit_test(test_format_values),
      cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_combine),
      cmocka_unit_test(test_enclosing_dependencies),
      cmocka_unit_test(test_select_index),
      cmocka_unit_test(test_help_text),
      cmocka_unit_test(test_macros_and_variables),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_similar),
      cmocka_unit_test(test_fixture_tree),
      cmocka_unit_test(test_real_tree),
  };
  return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
