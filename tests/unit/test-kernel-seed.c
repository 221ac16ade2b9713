/* Choosing a sibling O= directory to start a build from: kbuild's per-object records
 * (`$(wildcard include/config/SYM)`) against the symbols two configs set differently, and
 * the relocation of the tools' absolute-path records in a copy. The trees are written here
 * in kbuild's own record format. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fixture.h"
#include "kernel-seed.h"
#include "util.h"

static char *top;

static int setup(void **state) {
  char tmpl[] = "/tmp/kgb-seed-XXXXXX";
  if (!mkdtemp(tmpl))
    return -1;
  top = strdup(tmpl);
  return top ? fixture_setup(state) : -1;
}

static int teardown(void **state) {
  rm_rf(top);
  free(top);
  return fixture_teardown(state);
}

static void put(const char *rel, const char *text) { fixture_put(top, rel, text, 0644); }

static char *path(const char *rel) {
  char *p = kgb_strdup_printf("%s/%s", top, rel);
  assert_non_null(p);
  return p;
}

static const char base_config[] =
    "CONFIG_MMU_NOTIFIER=y\nCONFIG_DRM=y\n# CONFIG_MEDIA_SUPPORT is not set\n";

/* <parent>/<name>: three objects; one uses MMU_NOTIFIER, one MEDIA_SUPPORT, one neither */
static void make_sibling(const char *parent, const char *name, const char *config) {
  char rel[256];
  snprintf(rel, sizeof(rel), "%s/%s/.kgb-config", parent, name);
  put(rel, config);
  snprintf(rel, sizeof(rel), "%s/%s/mm/.memory.o.cmd", parent, name);
  put(rel, "deps_mm/memory.o := \\\n  $(wildcard include/config/MMU_NOTIFIER) \\\n"
           "  $(wildcard include/config/DRM) \\\n");
  snprintf(rel, sizeof(rel), "%s/%s/drivers/media/.core.o.cmd", parent, name);
  put(rel, "deps := \\\n  $(wildcard include/config/MEDIA_SUPPORT) \\\n");
  snprintf(rel, sizeof(rel), "%s/%s/lib/.sort.o.cmd", parent, name);
  put(rel, "deps := \\\n  $(wildcard include/config/64BIT) \\\n");
}

static void plan_counts_objects_that_use_a_changed_symbol(void **state) {
  (void)state;
  make_sibling("obj", "a", base_config);
  put("new.config", "CONFIG_MMU_NOTIFIER=y\nCONFIG_DRM=y\nCONFIG_MEDIA_SUPPORT=m\n");
  _cleanup_free_ char *parent = path("obj"), *cfg = path("new.config");
  struct kgb_seed_plan sp;
  assert_int_equal(kgb_seed_plan(ctx, parent, "new", cfg, &sp), 0);
  assert_non_null(sp.sibling);
  assert_string_equal(sp.name, "a");
  assert_int_equal(sp.objects, 3);
  assert_int_equal(sp.affected, 1);
  assert_int_equal(sp.n_changed, 1);
  assert_string_equal(sp.top_symbol, "MEDIA_SUPPORT");
  assert_true(sp.seed); /* a third of the objects */
  kgb_seed_plan_release(&sp);

  /* a core symbol: the more objects use it, the less a copy saves */
  put("new.config", "# CONFIG_MMU_NOTIFIER is not set\nCONFIG_DRM=m\n");
  assert_int_equal(kgb_seed_plan(ctx, parent, "new", cfg, &sp), 0);
  assert_int_equal(sp.affected, 1);
  assert_int_equal(sp.n_changed, 2);
  assert_int_equal(sp.top_objects, 1);
  kgb_seed_plan_release(&sp);
  put("obj/a/kernel/.fork.o.cmd", "deps := $(wildcard include/config/MMU_NOTIFIER)\n");
  assert_int_equal(kgb_seed_plan(ctx, parent, "new", cfg, &sp), 0);
  assert_int_equal(sp.objects, 4);
  assert_int_equal(sp.affected, 2);
  assert_string_equal(sp.top_symbol, "MMU_NOTIFIER");
  assert_int_equal(sp.top_objects, 2);
  assert_true(sp.seed); /* exactly half */
  kgb_seed_plan_release(&sp);
  put("obj/a/kernel/.exit.o.cmd", "deps := $(wildcard include/config/MMU_NOTIFIER)\n");
  assert_int_equal(kgb_seed_plan(ctx, parent, "new", cfg, &sp), 0);
  assert_false(sp.seed); /* three of five */
  kgb_seed_plan_release(&sp);
}

static void plan_skips_unfinished_and_self_and_prefers_the_closest(void **state) {
  (void)state;
  _cleanup_free_ char *parent = path("obj2"), *cfg = path("new.config");
  struct kgb_seed_plan sp;
  /* nothing at all */
  _cleanup_free_ char *none = path("nothing-here");
  assert_int_equal(kgb_seed_plan(ctx, none, "new", cfg, &sp), 0);
  assert_null(sp.sibling);
  assert_false(sp.seed);
  /* b is being built: not a candidate; "new" is the profile itself */
  make_sibling("obj2", "b", "CONFIG_MEDIA_SUPPORT=y\n");
  put("obj2/b/.kgb-building", "");
  make_sibling("obj2", "new", "CONFIG_MEDIA_SUPPORT=y\n");
  make_sibling("obj2", "d", "# CONFIG_MMU_NOTIFIER is not set\n");
  /* c matches the new config exactly: nothing to recompile */
  put("new.config", base_config);
  make_sibling("obj2", "c", base_config);
  assert_int_equal(kgb_seed_plan(ctx, parent, "new", cfg, &sp), 0);
  assert_string_equal(sp.name, "c");
  assert_int_equal(sp.affected, 0);
  assert_int_equal(sp.n_changed, 0);
  assert_null(sp.top_symbol);
  assert_true(sp.seed);
  kgb_seed_plan_release(&sp);
}

static void relocate_rewrites_the_tools_records_only(void **state) {
  (void)state;
  _cleanup_free_ char *from = path("obj/a"), *to = path("obj/a-variant");
  _cleanup_free_ char *rec =
      kgb_strdup_printf("cmd_%s/tools/objtool/check.o := gcc -o %s/tools/objtool/check.o "
                        "-I%s-other/x %s\n",
                        from, from, from, from);
  put("copy/tools/objtool/.check.o.cmd", rec);
  put("copy/tools/objtool/check.c.kept", rec); /* not a record */
  put("copy/arch/.setup.o.cmd", rec);          /* kbuild's own: relative in practice, left */
  _cleanup_free_ char *copy = path("copy"), *cmd = path("copy/tools/objtool/.check.o.cmd");
  struct stat before;
  assert_int_equal(stat(cmd, &before), 0);
  struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
  assert_int_equal(utimensat(AT_FDCWD, cmd, old, 0), 0);
  size_t n = 0;
  assert_int_equal(kgb_seed_relocate(copy, from, to, &n), 0);
  assert_int_equal(n, 1);
  _cleanup_free_ char *text = NULL,
                      *want = kgb_strdup_printf("cmd_%s/tools/objtool/check.o := gcc -o "
                                                "%s/tools/objtool/check.o -I%s-other/x %s\n",
                                                to, to, from, to);
  assert_int_equal(read_full_file(cmd, &text, NULL), 0);
  assert_string_equal(text, want); /* "<from>-other" is another directory: left alone */
  struct stat after;
  assert_int_equal(stat(cmd, &after), 0);
  assert_int_equal(after.st_mtim.tv_sec, 1000000000);
  _cleanup_free_ char *kept = NULL, *other = NULL, *kp = path("copy/tools/objtool/check.c.kept"),
                      *op = path("copy/arch/.setup.o.cmd");
  assert_int_equal(read_full_file(kp, &kept, NULL), 0);
  assert_int_equal(read_full_file(op, &other, NULL), 0);
  assert_string_equal(kept, rec);
  assert_string_equal(other, rec);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(plan_counts_objects_that_use_a_changed_symbol),
      cmocka_unit_test(plan_skips_unfinished_and_self_and_prefers_the_closest),
      cmocka_unit_test(relocate_rewrites_the_tools_records_only),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
