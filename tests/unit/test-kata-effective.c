/* The configuration Kata loads: the base through its symlink, the drop-ins beside the resolved
 * file in name order (later wins), the one being written left out, those after it kept apart,
 * each value with its file and line. */
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
#include "kata-effective.h"

static void test_merge(void **state) {
  (void)state;
  char dir[] = "/tmp/kgb-test-kata-effective-XXXXXX";
  assert_non_null(mkdtemp(dir));
  fixture_put(dir, "real/configuration-qemu.toml",
              "[hypervisor.qemu]\nkernel_params = \"a=1\"\ndefault_memory = 2048\n", 0644);
  fixture_put(dir, "real/config.d/10-x.toml", "[hypervisor.qemu]\nkernel_params = \"a=1 b=2\"\n",
              0644);
  fixture_put(dir, "real/config.d/50-kata-gpu-p.toml", "[hypervisor.qemu]\ndefault_memory = 1\n",
              0644);
  fixture_put(dir, "real/config.d/70-y.toml", "[hypervisor.qemu]\ndefault_memory = 4096\n", 0644);
  fixture_put(dir, "real/config.d/80-z.toml", "[hypervisor.qemu]\ndefault_memory = 8192\n", 0644);
  /* the link Kata is pointed at is elsewhere: config.d is beside the resolved file */
  _cleanup_free_ char *link = strjoin_path(dir, "configuration.toml");
  _cleanup_free_ char *target = strjoin_path(dir, "real/configuration-qemu.toml");
  assert_int_equal(symlink(target, link), 0);

  struct kgb_kata_effective *e = NULL;
  assert_int_equal(kgb_kata_effective_load(ctx, link, "50-kata-gpu-p.toml", &e), 0);
  assert_string_equal(e->resolved, target);
  assert_int_equal(strv_length(e->dropins), 1);
  assert_int_equal(strv_length(e->later_dropins), 2);
  const struct kgb_kata_value *v = kgb_kata_effective_get(e, "hypervisor.qemu", "kernel_params");
  assert_non_null(v);
  assert_string_equal(v->string, "a=1 b=2");
  assert_non_null(strstr(v->file, "config.d/10-x.toml"));
  assert_int_equal(v->line, 2);
  v = kgb_kata_effective_get(e, "hypervisor.qemu", "default_memory");
  assert_string_equal(v->value, "2048"); /* our own (50) left out, 70 and 80 after it */
  assert_null(v->string);
  v = kgb_kata_effective_later(e, "hypervisor.qemu", "default_memory");
  assert_string_equal(v->value, "4096"); /* the first after ours: the one that wins over it */
  assert_null(kgb_kata_effective_later(e, "hypervisor.qemu", "kernel_params"));
  kgb_kata_effective_free(e);

  /* none, a missing file, a file that is not TOML */
  assert_int_equal(kgb_kata_effective_load(ctx, "none", NULL, &e), 0);
  assert_null(e);
  kgb_error_clear(ctx);
  assert_int_equal(kgb_kata_effective_load(ctx, "/nonexistent/configuration.toml", NULL, &e),
                   -ENOENT);
  fixture_put(dir, "bad.toml", "[hypervisor.qemu]\nkernel = \n", 0644);
  _cleanup_free_ char *bad = strjoin_path(dir, "bad.toml");
  kgb_error_clear(ctx);
  assert_int_equal(kgb_kata_effective_load(ctx, bad, NULL, &e), -EINVAL);
  assert_detail("bad.toml:2");
  rm_rf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_merge),
  };
  return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
