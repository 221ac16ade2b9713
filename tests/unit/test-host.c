/* Host readiness on the fixture trees, the host kernel's config (plain and gzip), and the
 * guards of the writing steps. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fixture.h"
#include "host.h"
#include "util.h"

static struct kgb_host_report *check(const char *host, const char *profile) {
  fixture_use_host(host);
  struct kgb_profile *p = NULL;
  kgb_error_clear(ctx);
  if (profile && kgb_profile_load(ctx, profile, &p) < 0)
    fail_msg("profile: %s", kgb_error_detail(ctx));
  struct kgb_host_opts o = {.dev_root = "/nonexistent-dev", .profile = p};
  struct kgb_host_report *r = NULL;
  if (kgb_host_check(ctx, &o, &r) < 0)
    fail_msg("check: %s", kgb_error_detail(ctx));
  kgb_profile_free(p);
  return r;
}

static bool has_problem(const struct kgb_host_report *r, const char *what, const char *fix) {
  for (size_t i = 0; i < r->n_problems; i++)
    if (strstr(r->problems[i].what, what) && (!fix || strstr(r->problems[i].fix, fix)))
      return true;
  return false;
}

static void test_config_values(void **state) {
  (void)state;
  const char *text = "CONFIG_VFIO=m\n# CONFIG_VFIO_MDEV is not set\nCONFIG_VFIO_PCI=y\n"
                     "CONFIG_LOCALVERSION=\"-x\"\nCONFIG_VFIO_PCI_VGA=y\n";
  char *v = kgb_host_config_value(text, "CONFIG_VFIO");
  assert_string_equal(v, "m");
  free(v);
  v = kgb_host_config_value(text, "CONFIG_VFIO_MDEV");
  assert_string_equal(v, "n");
  free(v);
  v = kgb_host_config_value(text, "CONFIG_VFIO_PCI");
  assert_string_equal(v, "y");
  free(v);
  v = kgb_host_config_value(text, "CONFIG_ABSENT");
  assert_string_equal(v, "n");
  free(v);
}

static void test_config_gz(void **state) {
  (void)state;
  char dir[] = "/tmp/kgb-test-host.XXXXXX";
  assert_non_null(mkdtemp(dir));
  char *cmd = kgb_strdup_printf("gzip -c '%s/host-intel-gvt/proc-config.txt' > '%s/config.gz'",
                                KGB_TEST_FIXTURES, dir);
  assert_int_equal(system(cmd), 0);
  free(cmd);
  assert_int_equal(kgb_ctx_set_string(&ctx->proc, dir), 0);
  assert_int_equal(kgb_ctx_set_string(&ctx->boot, "/nonexistent-boot"), 0);
  char *text = NULL, *src = NULL;
  assert_int_equal(kgb_host_kernel_config(ctx, "5.10.0-28-amd64", &text, &src), 0);
  assert_non_null(strstr(src, "/config.gz"));
  char *v = kgb_host_config_value(text, "CONFIG_DRM_I915_GVT_KVMGT");
  assert_string_equal(v, "m");
  free(v);
  free(text);
  free(src);
  /* Neither file: -ENOENT, which host check turns into a note. */
  assert_int_equal(kgb_ctx_set_string(&ctx->proc, "/nonexistent-proc"), 0);
  text = src = NULL;
  assert_int_equal(kgb_host_kernel_config(ctx, "5.10.0-28-amd64", &text, &src), -ENOENT);
  char *rm = kgb_strdup_printf("rm -rf '%s'", dir);
  assert_int_equal(system(rm), 0);
  free(rm);
}

/* A gzip bomb as <proc>/config.gz stops at a cap with the file named, not when memory runs
 * out. */
static void test_config_gz_bomb(void **state) {
  (void)state;
  char dir[] = "/tmp/kgb-test-host.XXXXXX";
  assert_non_null(mkdtemp(dir));
  char *cmd = kgb_strdup_printf("head -c 100M /dev/zero | gzip -1 > '%s/config.gz'", dir);
  assert_int_equal(system(cmd), 0);
  free(cmd);
  assert_int_equal(kgb_ctx_set_string(&ctx->proc, dir), 0);
  assert_int_equal(kgb_ctx_set_string(&ctx->boot, "/nonexistent-boot"), 0);
  char *text = NULL, *src = NULL;
  kgb_error_clear(ctx);
  assert_int_equal(kgb_host_kernel_config(ctx, "5.10.0-28-amd64", &text, &src), -EFBIG);
  assert_null(text);
  const char *d = kgb_error_detail(ctx);
  assert_non_null(d);
  if (!strstr(d, "/config.gz' is more than 64 MiB once decompressed"))
    fail_msg("detail '%s'", d);
  char *rm = kgb_strdup_printf("rm -rf '%s'", dir);
  assert_int_equal(system(rm), 0);
  free(rm);
}

static void test_reports(void **state) {
  (void)state;
  struct kgb_host_report *r = check("host-nvidia-dc", NULL);
  assert_true(r->ready);
  assert_true(r->iommu_enabled);
  assert_int_equal(r->iommu_groups, 3);
  assert_int_equal(r->n_gpus, 1);
  assert_int_equal(r->gpus[0].dev.iommu_group, 192);
  assert_false(r->gpus[0].vfio_dev_present);
  kgb_host_report_free(r);

  r = check("host-nvidia-dc", "nvidia-gpu");
  assert_false(r->ready);
  assert_true(has_problem(r, "0000:d0:00.0 is bound to nvidia, not to vfio-pci",
                          "kata-gpu-builder host bind 0000:d0:00.0"));
  kgb_host_report_free(r);

  r = check("host-no-iommu", "nvidia-gpu");
  assert_false(r->ready);
  assert_false(r->iommu_enabled);
  assert_true(has_problem(r, "the IOMMU is not active", "add amd_iommu=on"));
  assert_true(has_problem(r, "lacks CONFIG_VFIO_PCI", "CONFIG_VFIO_PCI=m"));
  kgb_host_report_free(r);

  r = check("host-geforce", NULL);
  assert_false(r->ready);
  assert_int_equal(r->n_problems, 2);
  assert_true(has_problem(r, "IOMMU group 70 of 0000:af:00.0 is shared with 0000:af:00.1",
                          "kata-gpu-builder host bind 0000:af:00.1"));
  kgb_host_report_free(r);

  /* A Linux 5.10 host needs CONFIG_VFIO_MDEV_DEVICE as well (its config is config.gz, absent
   * here: a note, no kernel problem). */
  r = check("host-intel-gvt", "intel-gvt-g");
  bool mdev_device = false;
  for (size_t i = 0; i < r->n_symbols; i++)
    mdev_device = mdev_device || (STREQ(r->symbols[i].name, "CONFIG_VFIO_MDEV_DEVICE") &&
                                  r->symbols[i].required && !r->symbols[i].value);
  assert_true(mdev_device);
  assert_non_null(r->notes);
  assert_non_null(strstr(r->notes[0], "cannot check the host kernel's options"));
  assert_true(
      has_problem(r, "no GVT-g vGPU exists yet",
                  "kata-gpu-builder host mdev create i915-GVTg_V4_2 --parent 0000:00:02.0"));
  char *json = cli_host_report_json(r);
  assert_non_null(strstr(json, "\"ready\": false"));
  free(json);
  kgb_host_report_free(r);

  r = check("host-nvidia-dc", "virgl");
  assert_true(r->ready);
  kgb_host_report_free(r);
}

static void test_guards(void **state) {
  (void)state;
  assert_true(kgb_uuid_valid("bbc4aafe-5807-11e8-a43e-03533cceae7d"));
  assert_false(kgb_uuid_valid("bbc4aafe-5807-11e8-a43e-03533cceae7"));
  assert_false(kgb_uuid_valid("../../../../etc/passwd-aaaa-aaaaaaaaaaaa"));
  fixture_use_host("host-nvidia-dc");
  assert_int_equal(kgb_host_check_writable(ctx, "host bind"), 0); /* a fixture tree */
  struct kgb_mdev m = {0};
  kgb_error_clear(ctx);
  assert_int_equal(kgb_mdev_create(ctx, "nvidia-692", NULL, NULL, &m), -ENOENT);
  assert_non_null(strstr(kgb_error_detail(ctx), "offers mediated device types"));
  kgb_error_clear(ctx);
  assert_int_equal(kgb_mdev_remove(ctx, "x"), -EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config_values),  cmocka_unit_test(test_config_gz),
      cmocka_unit_test(test_config_gz_bomb), cmocka_unit_test(test_reports),
      cmocka_unit_test(test_guards),
  };
  return cmocka_run_group_tests(tests, fixture_setup_datadir, fixture_teardown);
}
