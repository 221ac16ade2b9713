/* Merging (overrides, conflicts) and verification (the reason for each dropped value) on a
 * small in-memory Kconfig tree and a hand-written resolved .config. The real-kernel runs are
 * in tests/e2e. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "kconfig.h"
#include "merge.h"
#include "verify.h"

static const char kconfig_text[] = "config MODULES\n"
                                   "\tbool \"modules\"\n"
                                   "config X86\n"
                                   "\tdef_bool y\n"
                                   "config PCI\n"
                                   "\tbool \"PCI\"\n"
                                   "config DRM\n"
                                   "\ttristate \"DRM\"\n"
                                   "\tdepends on PCI\n"
                                   "config DRM_I915\n"
                                   "\ttristate \"i915\"\n"
                                   "\tdepends on DRM && X86 && PCI\n"
                                   "config FW_LOADER\n"
                                   "\ttristate \"firmware loader\"\n"
                                   "config NEEDS_FW\n"
                                   "\ttristate \"needs firmware\"\n"
                                   "\tselect FW_LOADER\n"
                                   "choice\n"
                                   "\tprompt \"timer frequency\"\n"
                                   "\tdefault HZ_100\n"
                                   "config HZ_100\n"
                                   "\tbool \"100 Hz\"\n"
                                   "config HZ_1000\n"
                                   "\tbool \"1000 Hz\"\n"
                                   "endchoice\n"
                                   "config HIDDEN\n"
                                   "\tbool\n"
                                   "\tdefault y if PCI\n"
                                   "config LOCALVERSION\n"
                                   "\tstring \"local version\"\n"
                                   "if PCI\n"
                                   "menu \"GPU\"\n"
                                   "\tdepends on DRM\n"
                                   "config INSIDE\n"
                                   "\tbool \"inside\"\n"
                                   "endmenu\n"
                                   "endif\n";

/* the resolved .config our "kernel" produced */
static const char dotconfig_text[] = "# CONFIG_MODULES is not set\n"
                                     "CONFIG_X86=y\n"
                                     "CONFIG_PCI=y\n"
                                     "# CONFIG_DRM is not set\n"
                                     "CONFIG_FW_LOADER=y\n"
                                     "CONFIG_NEEDS_FW=y\n"
                                     "CONFIG_HZ_100=y\n"
                                     "CONFIG_HIDDEN=y\n"
                                     "CONFIG_LOCALVERSION=\"-virgl-gpu\"\n";

static int open_mem(void *ud, const char *path, char **ret) {
  (void)ud;
  if (strcmp(path, "Kconfig") != 0)
    return -ENOENT;
  *ret = strdup(kconfig_text);
  return *ret ? 0 : -ENOMEM;
}

struct fixture {
  struct kgb_ctx *ctx;
  struct kgb_kconfig *kc;
  struct kgb_fragment *dot;
};

static int setup(void **state) {
  struct fixture *f = calloc(1, sizeof(*f));
  assert_int_equal(kgb_ctx_new(&f->ctx), 0);
  struct kgb_kconfig_vars vars = {.srcarch = "x86", .arch = "x86_64"};
  assert_int_equal(kgb_kconfig_load_with(f->ctx, "Kconfig", open_mem, NULL, &vars, &f->kc), 0);
  assert_int_equal(kgb_fragment_parse(f->ctx, ".config", dotconfig_text, true, &f->dot), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fixture *f = *state;
  kgb_fragment_free(f->dot);
  kgb_kconfig_free(f->kc);
  kgb_ctx_free(f->ctx);
  free(f);
  return 0;
}

static struct kgb_merge *merge_of(struct kgb_ctx *ctx, const char *a, enum kgb_layer la,
                                  const char *b, enum kgb_layer lb, char *const *allowed) {
  struct kgb_merge *m = kgb_merge_new();
  struct kgb_fragment *f;
  assert_int_equal(kgb_fragment_parse(ctx, "a.conf", a, false, &f), 0);
  assert_int_equal(kgb_merge_add(m, f, la, "x86_64"), 0);
  if (b) {
    assert_int_equal(kgb_fragment_parse(ctx, "b.conf", b, false, &f), 0);
    assert_int_equal(kgb_merge_add(m, f, lb, "x86_64"), 0);
  }
  assert_int_equal(kgb_merge_finish(m, allowed), 0);
  return m;
}

static const struct kgb_drop *drop_for(const struct kgb_verify *v, const char *sym) {
  for (size_t i = 0; i < v->n_drops; i++)
    if (strcmp(v->drops[i].request->symbol, sym) == 0)
      return &v->drops[i];
  fail_msg("no drop for %s", sym);
  return NULL;
}

static void test_overrides_and_conflicts(void **state) {
  struct fixture *f = *state;
  struct kgb_merge *m = merge_of(f->ctx, "CONFIG_PCI=y\nCONFIG_DRM=y\n", KGB_LAYER_BASE,
                                 "CONFIG_DRM=m\nCONFIG_PCI=y\n", KGB_LAYER_VENDOR, NULL);
  assert_int_equal(m->n_requests, 2);
  assert_int_equal(m->n_overrides, 1); /* PCI=y twice is no override */
  assert_string_equal(m->overrides[0].symbol, "DRM");
  assert_int_equal(m->overrides[0].from.entry->line, 2);
  assert_int_equal(m->overrides[0].to.entry->line, 1);
  assert_false(m->overrides[0].conflict);
  assert_string_equal(kgb_merge_find(m, "DRM")->entry->value, "m");
  char *text;
  assert_int_equal(kgb_merge_render(m, &text), 0);
  assert_string_equal(text, "CONFIG_PCI=y\nCONFIG_DRM=m\n");
  free(text);
  kgb_merge_free(m);

  /* two vendor fragments that disagree: a conflict, unless the profile allows the symbol */
  m = merge_of(f->ctx, "CONFIG_LOCALVERSION=\"-nvidia-gpu\"\n", KGB_LAYER_VENDOR,
               "CONFIG_LOCALVERSION=\"-intel-gpu\"\n", KGB_LAYER_VENDOR, NULL);
  assert_int_equal(m->n_conflicts, 1);
  assert_string_equal(m->overrides[0].from.fragment->name, "a.conf");
  assert_string_equal(m->overrides[0].to.fragment->name, "b.conf");
  kgb_merge_free(m);
  char *allowed[] = {"LOCALVERSION", NULL};
  m = merge_of(f->ctx, "CONFIG_LOCALVERSION=\"-nvidia-gpu\"\n", KGB_LAYER_VENDOR,
               "CONFIG_LOCALVERSION=\"-intel-gpu\"\n", KGB_LAYER_VENDOR, allowed);
  assert_int_equal(m->n_conflicts, 0);
  assert_int_equal(m->n_overrides, 1);
  kgb_merge_free(m);
  /* a user fragment is the last word, never a conflict */
  m = merge_of(f->ctx, "CONFIG_DRM=y\n", KGB_LAYER_VENDOR, "CONFIG_DRM=n\n", KGB_LAYER_USER, NULL);
  assert_int_equal(m->n_conflicts, 0);
  kgb_merge_free(m);
}

static void test_arch_exclusion(void **state) {
  struct fixture *f = *state;
  struct kgb_merge *m = kgb_merge_new();
  struct kgb_fragment *fr;
  assert_int_equal(kgb_fragment_parse(f->ctx, "s390.conf", "# !x86_64\nCONFIG_DRM=y\n", false, &fr),
                   0);
  assert_int_equal(kgb_merge_add(m, fr, KGB_LAYER_BASE, "x86_64"), 0);
  assert_int_equal(kgb_fragment_parse(f->ctx, "all.conf", "# !s390x\nCONFIG_PCI=y\n", false, &fr),
                   0);
  assert_int_equal(kgb_merge_add(m, fr, KGB_LAYER_BASE, "x86_64"), 0);
  assert_int_equal(kgb_merge_finish(m, NULL), 0);
  assert_int_equal(m->n_requests, 1);
  assert_string_equal(m->requests[0].symbol, "PCI");
  assert_string_equal(m->skipped[0], "s390.conf");
  kgb_merge_free(m);
}

static void test_reasons(void **state) {
  struct fixture *f = *state;
  struct kgb_merge *m = merge_of(f->ctx,
                                 "CONFIG_PCI=y\n"
                                 "CONFIG_DRM_I915=y\n"             /* DRM is n: dependency */
                                 "# CONFIG_FW_LOADER is not set\n" /* NEEDS_FW selects it */
                                 "CONFIG_HZ_1000=y\n"              /* HZ_100 won */
                                 "# CONFIG_HIDDEN is not set\n"    /* no prompt, default y */
                                 "CONFIG_DRM_I91=y\n"  /* unknown, similar to DRM_I915 */
                                 "CONFIG_NEEDS_FW=m\n" /* MODULES=n made it y */
                                 "CONFIG_PCI_X=n\n"    /* unknown but off: a note */
                                 "CONFIG_INSIDE=y\n"   /* enclosing menu depends on DRM */
                                 "CONFIG_LOCALVERSION=\"-virgl-gpu\"\n",
                                 KGB_LAYER_BASE, NULL, 0, NULL);
  struct kgb_verify *v = NULL;
  assert_int_equal(kgb_verify_config(f->ctx, m, f->dot, f->kc, NULL, "6.1.0", &v), 0);
  assert_int_equal(v->n_requested, 10);
  assert_int_equal(v->n_drops, 7);
  assert_int_equal(v->n_unexplained, 7);

  const struct kgb_drop *d = drop_for(v, "DRM_I915");
  assert_int_equal(d->reason, KGB_DROP_DEPENDENCY);
  assert_string_equal(d->detail, "DRM_I915 depends on DRM [=n] && X86 [=y] && PCI [=y]");
  assert_int_equal(d->request->entry->line, 2);

  d = drop_for(v, "FW_LOADER");
  assert_int_equal(d->reason, KGB_DROP_SELECT);
  assert_non_null(strstr(d->detail, "selected by NEEDS_FW [=y]"));

  d = drop_for(v, "HZ_1000");
  assert_int_equal(d->reason, KGB_DROP_CHOICE);
  assert_non_null(strstr(d->detail, "HZ_100 [=y] won"));

  d = drop_for(v, "HIDDEN");
  assert_int_equal(d->reason, KGB_DROP_PROMPT);

  d = drop_for(v, "DRM_I91");
  assert_int_equal(d->reason, KGB_DROP_UNKNOWN);
  assert_non_null(strstr(d->detail, "similar: CONFIG_DRM_I915"));

  d = drop_for(v, "NEEDS_FW");
  assert_int_equal(d->reason, KGB_DROP_TYPE);
  assert_non_null(strstr(d->detail, "CONFIG_MODULES"));

  d = drop_for(v, "INSIDE");
  assert_int_equal(d->reason, KGB_DROP_DEPENDENCY);
  assert_non_null(strstr(d->detail, "PCI [=y]"));
  assert_non_null(strstr(d->detail, "DRM [=n]"));

  assert_non_null(v->notes);
  assert_non_null(strstr(v->notes[0], "CONFIG_PCI_X is requested off"));
  kgb_verify_free(v);

  /* the allow-list tolerates a drop, for the kernel versions it names */
  struct kgb_allow *allow;
  assert_int_equal(
      kgb_allow_parse(f->ctx, "allow.conf",
                      "CONFIG_DRM_I91 kernel:6.1.. typo kept on purpose for the test\n", &allow),
      0);
  assert_int_equal(kgb_verify_config(f->ctx, m, f->dot, f->kc, allow, "6.1.192", &v), 0);
  assert_int_equal(v->n_unexplained, 6);
  assert_non_null(drop_for(v, "DRM_I91")->allowed);
  kgb_verify_free(v);
  assert_int_equal(kgb_verify_config(f->ctx, m, f->dot, f->kc, allow, "5.15.1", &v), 0);
  assert_int_equal(v->n_unexplained, 7);
  kgb_verify_free(v);
  kgb_allow_free(allow);
  kgb_merge_free(m);
}

/* A .config that holds the requested value of a symbol no Kconfig defines was not made by
 * this Kconfig (a tree whose kconfig step only copies its input): not "survived". */
static void test_value_without_kconfig(void **state) {
  struct fixture *f = *state;
  struct kgb_fragment *dot = NULL;
  assert_int_equal(
      kgb_fragment_parse(f->ctx, ".config", "CONFIG_PCI=y\nCONFIG_NOT_IN_KCONFIG=y\n", true, &dot),
      0);
  struct kgb_merge *m = merge_of(f->ctx,
                                 "CONFIG_PCI=y\n"
                                 "CONFIG_NOT_IN_KCONFIG=y\n"
                                 "# CONFIG_ALSO_NOT is not set\n",
                                 KGB_LAYER_BASE, NULL, 0, NULL);
  struct kgb_verify *v = NULL;
  assert_int_equal(kgb_verify_config(f->ctx, m, dot, f->kc, NULL, "6.1.0", &v), 0);
  assert_int_equal(v->n_drops, 1);
  const struct kgb_drop *d = drop_for(v, "NOT_IN_KCONFIG");
  assert_int_equal(d->reason, KGB_DROP_UNKNOWN);
  assert_string_equal(d->actual, "y");
  assert_non_null(v->notes); /* the one requested off is a note, as before */
  kgb_verify_free(v);
  kgb_merge_free(m);
  kgb_fragment_free(dot);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_overrides_and_conflicts),
      cmocka_unit_test(test_arch_exclusion),
      cmocka_unit_test(test_reasons),
      cmocka_unit_test(test_value_without_kconfig),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
