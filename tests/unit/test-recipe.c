/* Recipe parsing, variables, conditions and order: what is accepted, what is refused with
 * which file:line, and what a recipe expands to. Also every shipped recipe parses. */
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
#include "recipe.h"
#include "util.h"

static struct kgb_recipe *parse_ok(const char *text) {
  struct kgb_recipe *r = NULL;
  kgb_error_clear(ctx);
  int rc = kgb_recipe_parse(ctx, "recipes/t.recipe", "/recipes", text, &r);
  if (rc != 0)
    fail_msg("parse failed: %s", kgb_error_detail(ctx));
  return r;
}

static void expect_error(const char *text, const char *detail) {
  struct kgb_recipe *r = NULL;
  kgb_error_clear(ctx);
  int rc = kgb_recipe_parse(ctx, "recipes/t.recipe", "/recipes", text, &r);
  if (rc != -EINVAL)
    fail_msg("'%s' gave %d, not -EINVAL", text, rc);
  assert_null(r);
  assert_detail(detail);
}

static const char full[] =
    "name = \"t\";\n"                                                /* 1 */
    "description = \"a test\";\n"                                    /* 2 */
    "requires = [ \"kernel-headers\" ];\n"                           /* 3 */
    "settings = ( { name = \"drv.url\"; help = \"the driver\"; },\n" /* 4 */
    "             { name = \"drv.mode\"; default = \"a\"; help = \"a or b\"; } );\n"
    "inputs = ( { name = \"drv\"; url = \"${drv.url}\"; sha256 = \"skip\";\n" /* 6 */
    "             destination = \"/opt/${drv.mode}/drv.bin\"; mode = \"0755\";\n"
    "             when = \"drv.url\"; } );\n"
    "packages = [ \"gcc\", \"make\" ];\n"
    "files = ( { path = \"/etc/t.conf\"; content = \"release ${kernel_release}\\n$${literal} "
    "$@\\n\"; },\n"
    "          { path = \"/sbin/init\"; link = \"/usr/bin/agent\"; when = [ \"drv.url\", "
    "\"drv.mode=b\" ]; },\n"
    "          { path = \"/lib/x\"; source = \"files/x\"; } );\n"
    "run = ( { argv = [ \"make\", \"-C\", \"${input:drv}\", \"-j${jobs}\" ]; env = [ \"A=${arch}\" "
    "]; cwd = \"/\"; when = \"drv.url\"; },\n"
    "        { warn = \"no driver\"; when = \"!drv.url\"; },\n"
    "        { fail = \"mode ${drv.mode} is wrong\"; when = \"drv.mode=c\"; } );\n"
    "cleanup = { purge = [ \"gcc\" ]; remove = [ \"/opt/a\" ]; };\n";

static void test_parse_fields(void **state) {
  (void)state;
  struct kgb_recipe *r = parse_ok(full);
  assert_string_equal(r->name, "t");
  assert_string_equal(r->description, "a test");
  assert_string_equal(r->requires[0], "kernel-headers");
  assert_int_equal(r->n_settings, 2);
  assert_string_equal(r->settings[1].default_value, "a");
  assert_int_equal(r->settings[1].line, 5);
  assert_int_equal(r->n_inputs, 1);
  assert_int_equal(r->inputs[0].mode, 0755);
  assert_int_equal(r->inputs[0].line, 6);
  assert_string_equal(r->inputs[0].when[0], "drv.url");
  assert_int_equal(r->n_files, 3);
  assert_string_equal(r->files[1].when[1], "drv.mode=b");
  assert_int_equal(r->n_steps, 3);
  assert_string_equal(r->steps[0].argv[3], "-j${jobs}");
  assert_string_equal(r->purge[0], "gcc");
  assert_string_equal(r->remove[0], "/opt/a");
  assert_int_equal(strlen(r->sha256), 64);
  kgb_recipe_free(r);
}

static void test_parse_errors(void **state) {
  (void)state;
  expect_error("name = \"t\";\ndescription = \"d\";\npackges = [ \"gcc\" ];\n",
               "recipes/t.recipe:3: unknown field 'packges' (did you mean 'packages'?)");
  expect_error("name = \"t\";\n", "missing field 'description'");
  expect_error(
      "name = \"t\";\ndescription = \"d\";\nrun = ( { argv = [ \"x\" ]; colour = 1; } );\n",
      "recipes/t.recipe:3: unknown field 'colour' in a run step");
  expect_error(
      "name = \"t\";\ndescription = \"d\";\n\nrun = ( { argv = [ \"echo\", \"${kernel_relase}\" ]; "
      "} );\n",
      "recipes/t.recipe:4: unknown variable '${kernel_relase}' (did you mean 'kernel_release'?)");
  expect_error(
      "name = \"t\";\ndescription = \"d\";\nfiles = ( { path = \"/x\"; content = "
      "\"${input:nope}\"; } );\n",
      "recipes/t.recipe:3: unknown variable '${input:nope}': the recipe has no input 'nope'");
  expect_error("name = \"t\";\ndescription = \"d\";\nfiles = ( { path = \"/x\"; content = \"a\"; "
               "link = \"/y\"; } );\n",
               "needs exactly one of 'source', 'content' or 'link'");
  expect_error("name = \"t\";\ndescription = \"d\";\nfiles = ( { path = \"/x\"; content = \"a\"; "
               "mode = \"999\"; } );\n",
               "'mode' must be an octal string");
  expect_error(
      "name = \"t\";\ndescription = \"d\";\nrun = ( { argv = [ \"x\" ]; when = \"nosuch\"; } );\n",
      "recipes/t.recipe:3: condition 'nosuch' names no setting 'nosuch'");
  expect_error("name = \"t\";\ndescription = \"d\";\ninputs = ( { name = \"a\"; sha256 = \"x\"; "
               "destination = \"/a\"; } );\n",
               "input 'a' needs one of 'url' or 'path'");
  expect_error("name = \"t\";\ndescription = \"d\";\ncleanup = { remove = [ \"/var/*\" ]; };\n",
               "must be an absolute path inside the root, without '..' or wildcards");
  expect_error("name = \"t\";\ndescription = \"d\";\nrun = ( { argv = [ \"echo\", \"${\" ]; } );\n",
               "'${' without a name");
  expect_error(
      "name = \"t\";\ndescription = \"d\";\nsettings = ( { name = \"arch\"; help = \"h\"; } );\n",
      "setting 'arch' has the name of a built-in variable");
  expect_error("name = \"t\";\ndescription = = \"d\";\n", "recipes/t.recipe:2: syntax error");
  /* Found by fuzz-recipe: libconfig read an include from the current directory, and one
   * naming a directory made its scanner exit(2) the whole process. */
  expect_error("name = \"t\";\n  @include \".\"\ndescription = \"d\";\n",
               "recipes/t.recipe:2: '@include' is not allowed in a recipe");
  expect_error("name = \"t\";\r\n\t@include \"/etc/hostname\"\n",
               "recipes/t.recipe:2: '@include' is not allowed");
  expect_error(
      "name = \"t\";\ndescription = \"d\";\nfiles = ( { path = \"x\"; content = \"a\"; } );\n",
      "file path 'x' must be absolute");
}

static char **values(const char *first, ...) {
  char **v = NULL;
  va_list ap;
  va_start(ap, first);
  for (const char *s = first; s; s = va_arg(ap, const char *))
    strv_extend(&v, s);
  va_end(ap);
  return v;
}

static void test_expand(void **state) {
  (void)state;
  struct kgb_recipe *r = parse_ok(full);
  char **v = values("kernel_release=6.1.192-virgl-gpu", "arch=x86_64", "jobs=2",
                    "drv.url=/srv/drv.run", "drv.mode=b", NULL);
  struct kgb_recipe *x = NULL;
  kgb_error_clear(ctx);
  if (kgb_recipe_expand(ctx, r, v, &x) != 0)
    fail_msg("%s", kgb_error_detail(ctx));
  assert_int_equal(x->n_inputs, 1);
  assert_string_equal(x->inputs[0].url, "/srv/drv.run");
  assert_string_equal(x->inputs[0].destination, "/opt/b/drv.bin");
  assert_int_equal(x->n_files, 3);
  assert_string_equal(x->files[0].content, "release 6.1.192-virgl-gpu\n${literal} $@\n");
  assert_string_equal(x->files[1].link, "/usr/bin/agent");
  assert_string_equal(x->files[2].source, "/recipes/files/x");
  /* the warn step's condition does not hold; fail's neither */
  assert_int_equal(x->n_steps, 1);
  assert_string_equal(x->steps[0].argv[2], "/opt/b/drv.bin");
  assert_string_equal(x->steps[0].argv[3], "-j2");
  assert_string_equal(x->steps[0].env[0], "A=x86_64");
  kgb_recipe_free(x);
  strv_free(v);

  /* no url: the input and the link are gone, the warning stays, the default mode is used */
  v = values("kernel_release=r", "arch=x86_64", "jobs=2", "drv.url=", NULL);
  x = NULL;
  assert_int_equal(kgb_recipe_expand(ctx, r, v, &x), 0);
  assert_int_equal(x->n_inputs, 0);
  assert_int_equal(x->n_files, 2);
  assert_int_equal(x->n_steps, 1);
  assert_string_equal(x->steps[0].warn, "no driver");
  kgb_recipe_free(x);
  strv_free(v);

  /* a fail step that holds is refused before anything runs */
  v = values("kernel_release=r", "arch=x86_64", "jobs=2", "drv.url=/d", "drv.mode=c", NULL);
  x = NULL;
  kgb_error_clear(ctx);
  assert_int_equal(kgb_recipe_expand(ctx, r, v, &x), -EPERM);
  assert_null(x);
  assert_string_equal(kgb_error_detail(ctx), "recipe 't' (recipes/t.recipe:15): mode c is wrong");
  strv_free(v);
  kgb_recipe_free(r);
}

static void test_missing_setting(void **state) {
  (void)state;
  struct kgb_recipe *r =
      parse_ok("name = \"t\";\ndescription = \"d\";\n"
               "settings = ( { name = \"pkg\"; help = \"the package to build\"; } );\n"
               "run = ( { argv = [ \"apt-get\", \"install\", \"${pkg}\" ]; } );\n");
  char **v = values("kernel_release=r", NULL);
  struct kgb_recipe *x = NULL;
  kgb_error_clear(ctx);
  assert_int_equal(kgb_recipe_expand(ctx, r, v, &x), -ENOKEY);
  assert_string_equal(kgb_error_detail(ctx),
                      "recipe 't' needs a value for 'pkg' (recipes/t.recipe:3): the package to "
                      "build; set it with --set pkg=VALUE or in the profile's settings group");
  strv_free(v);
  kgb_recipe_free(r);
}

static char **names(const char *first, ...) {
  char **v = NULL;
  va_list ap;
  va_start(ap, first);
  for (const char *s = first; s; s = va_arg(ap, const char *))
    strv_extend(&v, s);
  va_end(ap);
  return v;
}

static void test_resolve_order(void **state) {
  (void)state;
  /* oci-prestart-hook requires the toolkit, which requires the driver, which requires the
   * headers: all are added in front of it */
  char **n = names("kata-agent", "oci-prestart-hook", NULL);
  struct kgb_recipe **v = NULL;
  kgb_error_clear(ctx);
  assert_int_equal(kgb_recipes_resolve(ctx, n, NULL, &v), 0);
  const char *want[] = {"kata-agent", "kernel-headers", "nvidia-driver", "nvidia-container-toolkit",
                        "oci-prestart-hook"};
  for (size_t i = 0; i < 5; i++) {
    assert_non_null(v[i]);
    assert_string_equal(v[i]->name, want[i]);
  }
  assert_null(v[5]);
  kgb_recipes_free(v);
  strv_free(n);

  /* --without a recipe that another needs */
  n = names("kernel-headers", "nvidia-driver", "dkms-module", NULL);
  char **without = names("kernel-headers", NULL);
  v = NULL;
  kgb_error_clear(ctx);
  assert_int_equal(kgb_recipes_resolve(ctx, n, without, &v), -ENOENT);
  assert_string_equal(kgb_error_detail(ctx),
                      "recipe 'nvidia-driver' requires 'kernel-headers', which --without removes: "
                      "drop 'nvidia-driver' as well (--without nvidia-driver)");
  strv_free(without);
  /* --without a recipe the profile does not have */
  without = names("mesa-virgl", NULL);
  kgb_error_clear(ctx);
  assert_int_equal(kgb_recipes_resolve(ctx, n, without, &v), -ENOENT);
  assert_string_equal(kgb_error_detail(ctx),
                      "--without mesa-virgl: the profile has no recipe 'mesa-virgl'");
  strv_free(without);
  strv_free(n);

  n = names("no-such-recipe", NULL);
  kgb_error_clear(ctx);
  assert_int_equal(kgb_recipes_resolve(ctx, n, NULL, &v), -ENOENT);
  assert_non_null(strstr(kgb_error_detail(ctx), "unknown recipe 'no-such-recipe'"));
  strv_free(n);
}

/* every shipped recipe parses, carries its own name, and expands with its defaults */
static void test_shipped(void **state) {
  (void)state;
  static const char *const shipped[] = {"dkms-module",
                                        "intel-gpu",
                                        "kata-agent",
                                        "kernel-headers",
                                        "kernel-modules",
                                        "mesa-virgl",
                                        "nvidia-container-toolkit",
                                        "nvidia-driver",
                                        "oci-prestart-hook"};
  for (size_t i = 0; i < sizeof(shipped) / sizeof(shipped[0]); i++) {
    struct kgb_recipe *r = NULL;
    kgb_error_clear(ctx);
    if (kgb_recipe_load(ctx, shipped[i], &r) != 0)
      fail_msg("%s: %s", shipped[i], kgb_error_detail(ctx));
    assert_string_equal(r->name, shipped[i]);
    kgb_recipe_free(r);
  }
  /* nvidia-driver without a driver refuses with how to give one */
  struct kgb_recipe *r = NULL, *x = NULL;
  assert_int_equal(kgb_recipe_load(ctx, "nvidia-driver", &r), 0);
  char **v = values("kernel_release=r", "jobs=2", NULL);
  kgb_error_clear(ctx);
  assert_int_equal(kgb_recipe_expand(ctx, r, v, &x), -EPERM);
  assert_non_null(
      strstr(kgb_error_detail(ctx), "no NVIDIA driver given: --set nvidia.driver.url="));
  strv_free(v);
  kgb_recipe_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_fields),  cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_expand),        cmocka_unit_test(test_missing_setting),
      cmocka_unit_test(test_resolve_order), cmocka_unit_test(test_shipped),
  };
  return cmocka_run_group_tests(tests, fixture_setup_datadir, fixture_teardown);
}
