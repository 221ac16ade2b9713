/* KubeVirt resource names (the NVIDIA device plugin's rules) and OCI device entries. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fixture.h"
#include "kubevirt.h"
#include "oci-devices.h"
#include "util.h"

static void expect_pci(const char *name, const char *want) {
  char *got = kgb_kubevirt_pci_resource(name);
  assert_string_equal(got, want);
  free(got);
}

static void test_names(void **state) {
  (void)state;
  /* Seed 002: the plugin's resource for 10de:1f08. */
  expect_pci("TU106 [GeForce RTX 2060 Rev. A]", "TU106_GEFORCE_RTX_2060_REV__A");
  expect_pci("  GA100 [A100 PCIe 80GB]  ", "GA100_A100_PCIE_80GB");
  expect_pci("GP104GL [Quadro P4000/P5000]", "GP104GL_QUADRO_P4000_P5000");
  expect_pci("TU104GL\t [Tesla T4]", "TU104GL_TESLA_T4");
  char *m = kgb_kubevirt_mdev_resource("GRID T4-1Q");
  assert_string_equal(m, "GRID_T4-1Q");
  free(m);
}

static void test_render(void **state) {
  (void)state;
  assert_int_equal(kgb_ctx_set_string(&ctx->sysfs, KGB_TEST_FIXTURES "/host-geforce/sys"), 0);
  struct kgb_profile *p = NULL;
  assert_int_equal(kgb_profile_load(ctx, "nvidia-gpu", &p), 0);
  struct kgb_kubevirt_opts o = {.pci_ids = KGB_TEST_FIXTURES "/pci.ids"};
  struct kgb_kubevirt_plan *pl = NULL;
  assert_int_equal(kgb_kubevirt_plan(ctx, p, &o, &pl), 0);
  char *text = cli_kubevirt_render(pl, true);
  assert_non_null(text);
  pl = kgb_kubevirt_plan_free(pl);
  /* Two GPUs of one model: one selector. */
  assert_non_null(strstr(text, "\"pciVendorSelector\": \"10DE:1F08\", \"resourceName\": "
                               "\"nvidia.com/TU106_GEFORCE_RTX_2060_REV__A\"}"));
  assert_null(strstr(strstr(text, "10DE:1F08") + 1, "10DE:1F08"));
  free(text);
  kgb_profile_free(p);
  assert_int_equal(kgb_profile_load(ctx, "virgl", &p), 0);
  kgb_error_clear(ctx);
  assert_int_equal(kgb_kubevirt_plan(ctx, p, &o, &pl), -EINVAL);
  kgb_profile_free(p);
}

static void test_oci(void **state) {
  (void)state;
  struct kgb_oci_device d = {0};
  assert_int_equal(kgb_oci_device_read(ctx, "/dev/null", &d), 0);
  assert_int_equal(d.type, 'c');
  assert_int_equal(d.major, 1);
  assert_int_equal(d.minor, 3);
  char *json = cli_oci_devices_json(&d, 1);
  assert_string_equal(json,
                      "[\n  {\"path\": \"/dev/null\", \"type\": \"c\", \"major\": 1, \"minor\": "
                      "3, \"fileMode\": 438, \"uid\": 0, \"gid\": 0}\n]\n");
  free(json);
  kgb_oci_device_release(&d);
  kgb_error_clear(ctx);
  assert_int_equal(kgb_oci_device_read(ctx, KGB_TEST_FIXTURES "/pci.ids", &d), -ENODEV);
  assert_non_null(strstr(kgb_error_detail(ctx), "is not a device node (it is a regular file)"));
  kgb_error_clear(ctx);
  assert_int_equal(kgb_oci_device_read(ctx, "/nonexistent/dev", &d), -ENOENT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_render),
      cmocka_unit_test(test_oci),
  };
  return cmocka_run_group_tests(tests, fixture_setup_datadir, fixture_teardown);
}
