/* Module checks on fixture roots (tests/fixtures/rootfs/mkmodtrees.py): a good tree passes
 * with compressed modules, a built-in dependency and an exported symbol; the bad tree has one
 * problem of each kind, each named. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "modcheck.h"
#include "util.h"

#define FIX KGB_ROOTFS_FIXTURES

static char *const libs[] = {"libalpha.so=alpha", NULL};

static struct kgb_modcheck *check(const char *root, const char *release, bool symbols) {
  struct kgb_modcheck_opts o = {.release = release,
                                .system_map = symbols ? FIX "/System.map" : NULL,
                                .library_versions = libs};
  struct kgb_modcheck *c = NULL;
  kgb_error_clear(ctx);
  int r = kgb_modcheck_run(ctx, root, &o, &c);
  if (r != 0)
    fail_msg("modcheck failed: %s", kgb_error_detail(ctx));
  return c;
}

static const struct kgb_modcheck_problem *find(const struct kgb_modcheck *c,
                                               enum kgb_modcheck_kind kind, const char *what) {
  for (size_t i = 0; i < c->n_problems; i++)
    if (c->problems[i].kind == kind && strcmp(c->problems[i].what, what) == 0)
      return &c->problems[i];
  return NULL;
}

static void test_good(void **state) {
  (void)state;
  struct kgb_modcheck *c = check(FIX "/good", "6.1.0-fixture", true);
  assert_true(c->has_moddir);
  assert_int_equal(c->n_modules, 4); /* alpha.ko, beta.ko.xz, gamma.ko.zst, delta-mod.ko */
  for (size_t i = 0; i < c->n_problems; i++)
    print_error("unexpected: %s: %s\n", c->problems[i].what, c->problems[i].detail);
  assert_int_equal(c->n_problems, 0);
  kgb_modcheck_free(c);
}

static void test_bad(void **state) {
  (void)state;
  struct kgb_modcheck *c = check(FIX "/bad", "6.1.0-fixture", true);
  const struct kgb_modcheck_problem *p;
  assert_int_equal(c->n_modules, 7);
  p = find(c, KGB_MODCHECK_VERMAGIC, "lib/modules/6.1.0-fixture/extra/wrong.ko");
  assert_non_null(p);
  assert_string_equal(p->detail,
                      "built for '6.1.0-other', not '6.1.0-fixture': rebuild it against this "
                      "kernel's headers");
  p = find(c, KGB_MODCHECK_DEPENDENCY, "lib/modules/6.1.0-fixture/extra/orphan.ko");
  assert_non_null(p);
  assert_string_equal(p->detail, "depends on 'missing_mod', which is not in the tree");
  p = find(c, KGB_MODCHECK_SYMBOL, "lib/modules/6.1.0-fixture/extra/needs.ko");
  assert_non_null(p);
  assert_non_null(strstr(p->detail, "'missing_symbol'"));
  assert_non_null(find(c, KGB_MODCHECK_MODULES_DEP, "lib/modules/6.1.0-fixture/modules.dep"));
  p = find(c, KGB_MODCHECK_RELEASE, "lib/modules/6.1.0-other");
  assert_non_null(p);
  p = find(c, KGB_MODCHECK_LIBRARY, "libalpha.so");
  assert_non_null(p);
  assert_non_null(
      strstr(p->detail, "libalpha.so.1.9.0 does not match module 'alpha' version 2.0.1"));
  /* exactly those six: the soname link libalpha.so.2 and libalpha.so.2.0.1 are fine */
  assert_int_equal(c->n_problems, 6);
  kgb_modcheck_free(c);
}

static void test_without_symbols(void **state) {
  (void)state;
  /* no System.map: unknown symbols are not checked, the rest is */
  struct kgb_modcheck *c = check(FIX "/bad", "6.1.0-fixture", false);
  assert_null(find(c, KGB_MODCHECK_SYMBOL, "lib/modules/6.1.0-fixture/extra/needs.ko"));
  assert_int_equal(c->n_problems, 5);
  kgb_modcheck_free(c);
}

static void test_other_release(void **state) {
  (void)state;
  /* seen from 6.1.0-other, the fixture release's directory is the foreign one */
  struct kgb_modcheck *c = check(FIX "/good", "6.1.0-other", false);
  assert_false(c->has_moddir);
  assert_int_equal(c->n_modules, 0);
  assert_non_null(find(c, KGB_MODCHECK_RELEASE, "lib/modules/6.1.0-fixture"));
  kgb_modcheck_free(c);
}

static void test_no_moddir(void **state) {
  (void)state;
  struct kgb_modcheck *c = check(FIX "/no-moddir", "6.1.0-fixture", true);
  assert_false(c->has_moddir);
  assert_int_equal(c->n_problems, 0);
  kgb_modcheck_free(c);
}

static void test_bad_release(void **state) {
  (void)state;
  struct kgb_modcheck_opts o = {.release = "../etc"};
  struct kgb_modcheck *c = NULL;
  kgb_error_clear(ctx);
  assert_int_equal(kgb_modcheck_run(ctx, FIX "/good", &o, &c), -EINVAL);
  assert_null(c);
  assert_string_equal(kgb_error_detail(ctx), "'../etc' is not a kernel release");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_good),
      cmocka_unit_test(test_bad),
      cmocka_unit_test(test_without_symbols),
      cmocka_unit_test(test_other_release),
      cmocka_unit_test(test_no_moddir),
      cmocka_unit_test(test_bad_release),
  };
  return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
