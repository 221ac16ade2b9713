/* kernel install: Kata's names and links from a kernel stage, the record of what this tool
 * installed, and the refusal to replace a kernel or .container link someone else installed
 * (Kata's own packages) without --replace, checked before anything is written. A stage
 * directory of small files stands for a built kernel. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>
#include <stdio.h>
#include <unistd.h>

#include "fixture.h"
#include "kernel-build.h"
#include "profile.h"

static char dir[] = "/tmp/kgb-test-kernel-install-XXXXXX";

static int install(const struct kgb_profile *p, const struct kgb_build_result *b,
                   const char *destdir, bool replace) {
  struct kgb_install_opts o = {.destdir = destdir, .replace = replace};
  struct kgb_installed *in = NULL;
  kgb_error_clear(ctx);
  int r = kgb_kernel_install(ctx, p, b, &o, &in);
  kgb_installed_free(in);
  return r;
}

static void test_install(void **state) {
  (void)state;
  assert_non_null(mkdtemp(dir));
  assert_int_equal(kgb_ctx_set_string(&ctx->datadir, FIXTURE_SRCDIR), 0);
  struct kgb_profile *p = NULL;
  assert_int_equal(kgb_profile_load(ctx, "virgl", &p), 0);
  _cleanup_free_ char *stage = strjoin_path(dir, "stage");
  static const char *const files[] = {"vmlinuz", "vmlinux", "config", "System.map"};
  for (size_t i = 0; i < ELEMENTSOF(files); i++)
    fixture_put(stage, files[i], files[i], 0644);
  struct kgb_build_result b = {.stage_dir = stage, .release = (char *)"6.1.192-virgl-gpu"};

  _cleanup_free_ char *d1 = strjoin_path(dir, "root1");
  assert_int_equal(install(p, &b, d1, false), 0);
  assert_int_equal(install(p, &b, d1, false), 0); /* ours: again without --replace */
  _cleanup_free_ char *record =
                          kgb_strdup_printf("%s/usr/share/kata-gpu-builder/installed-kernels", d1),
                      *text = NULL;
  assert_int_equal(read_full_file(record, &text, NULL), 0);
  assert_non_null(strstr(text, "\nvmlinuz-virgl-gpu.container\n"));
  assert_non_null(strstr(text, "\nvmlinuz-6.1.192-2-virgl-gpu\n"));
  /* each name once, however often it was installed */
  assert_null(strstr(strstr(text, "\nvmlinuz-virgl-gpu.container\n") + 1,
                     "\nvmlinuz-virgl-gpu.container\n"));

  /* Kata's own link is there: refused, and nothing is written */
  _cleanup_free_ char *d2 = strjoin_path(dir, "root2");
  _cleanup_free_ char *share = kgb_strdup_printf("%s/usr/share/kata-containers", d2);
  assert_int_equal(mkdir_p(share, 0755), 0);
  _cleanup_free_ char *link = strjoin_path(share, "vmlinuz-virgl-gpu.container");
  assert_int_equal(symlink("vmlinuz-6.12.8-158-virgl-gpu", link), 0);
  assert_int_equal(install(p, &b, d2, false), -EEXIST);
  assert_detail("vmlinuz-virgl-gpu.container' was not installed by kata-gpu-builder");
  assert_detail("give --replace to replace it");
  _cleanup_free_ char *kernel = strjoin_path(share, "vmlinuz-6.1.192-2-virgl-gpu");
  assert_int_equal(access(kernel, F_OK), -1);
  /* --replace takes it over, and from then on it is ours */
  assert_int_equal(install(p, &b, d2, true), 0);
  char target[256];
  ssize_t n = readlink(link, target, sizeof(target) - 1);
  assert_true(n > 0);
  target[n] = '\0';
  assert_string_equal(target, "vmlinuz-6.1.192-2-virgl-gpu");
  assert_int_equal(install(p, &b, d2, false), 0);

  /* a kernel file of the same name with other content is someone else's too */
  _cleanup_free_ char *d3 = strjoin_path(dir, "root3");
  _cleanup_free_ char *share3 = kgb_strdup_printf("%s/usr/share/kata-containers", d3);
  fixture_put(share3, "vmlinux-6.1.192-2-virgl-gpu", "Kata's own", 0644);
  assert_int_equal(install(p, &b, d3, false), -EEXIST);
  assert_detail("vmlinux-6.1.192-2-virgl-gpu' was not installed by kata-gpu-builder");
  /* the same content is not a conflict */
  fixture_put(share3, "vmlinux-6.1.192-2-virgl-gpu", "vmlinux", 0644);
  assert_int_equal(install(p, &b, d3, false), 0);
  kgb_profile_free(p);
  rm_rf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_install),
  };
  return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
