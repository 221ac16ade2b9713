/* Kata configuration plans: versions, the keys each version knows, and what the host's BARs
 * decide, on the fixture trees. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "kata-config.h"
#include "toml.h"
#include "util.h"

static struct kgb_kata_plan *plan_for(const char *profile, const char *version, const char *host) {
  struct kgb_profile *p = NULL;
  kgb_error_clear(ctx);
  fixture_use_host(host);
  if (kgb_profile_load(ctx, profile, &p) < 0)
    fail_msg("profile: %s", kgb_error_detail(ctx));
  struct kgb_kata_opts o = {.kata_version = version};
  struct kgb_kata_plan *plan = NULL;
  if (kgb_kata_plan(ctx, p, &o, &plan) < 0)
    fail_msg("plan: %s", kgb_error_detail(ctx));
  kgb_profile_free(p);
  return plan;
}

static const char *value(const struct kgb_kata_plan *plan, const char *key) {
  for (size_t i = 0; i < plan->n_settings; i++)
    if (STREQ(plan->settings[i].key, key))
      return plan->settings[i].value;
  return NULL;
}

static void test_versions(void **state) {
  (void)state;
  unsigned major, minor;
  assert_int_equal(kgb_kata_version_parse(ctx, "3.x", &major, &minor), 0);
  assert_int_equal(major, 3);
  assert_int_equal(minor, UINT_MAX);
  assert_int_equal(kgb_kata_version_parse(ctx, "v1.10.2", &major, &minor), 0);
  assert_int_equal(major, 1);
  assert_int_equal(minor, 10);
  assert_int_equal(kgb_kata_version_parse(ctx, "2", &major, &minor), 0);
  kgb_error_clear(ctx);
  assert_int_equal(kgb_kata_version_parse(ctx, "4.0", &major, &minor), -EINVAL);
  assert_non_null(strstr(kgb_error_detail(ctx), "unknown Kata version '4.0'"));
  assert_int_equal(kgb_kata_version_parse(ctx, "3.x.1", &major, &minor), -EINVAL);

  assert_true(kgb_kata_key_known(3, UINT_MAX, "hypervisor.qemu", "hot_plug_vfio"));
  assert_false(kgb_kata_key_known(2, UINT_MAX, "hypervisor.qemu", "hot_plug_vfio"));
  assert_true(kgb_kata_key_known(2, UINT_MAX, "hypervisor.qemu", "hotplug_vfio_on_root_bus"));
  assert_false(kgb_kata_key_known(3, UINT_MAX, "hypervisor.qemu", "hotplug_vfio_on_root_bus"));
  assert_false(kgb_kata_key_known(1, 10, "hypervisor.qemu", "pcie_root_port"));
  assert_true(kgb_kata_key_known(1, 11, "hypervisor.qemu", "pcie_root_port"));
  assert_false(kgb_kata_key_known(1, UINT_MAX, "runtime", "vfio_mode"));
  assert_false(kgb_kata_key_known(2, UINT_MAX, "hypervisor.qemu", "rootfs_type"));
}

static void test_plans(void **state) {
  (void)state;
  static const char *const profiles[] = {"intel-gvt-d", "intel-gvt-g",     "nvidia-gpu",
                                         "nvidia-vgpu", "nvidia-vgpu-mig", "virgl"};
  static const char *const versions[] = {"1.x", "2.x", "3.x", "1.11"};
  static const char *const hosts[] = {"host-nvidia-dc", "host-intel-gvt", "host-geforce",
                                      "host-no-iommu", "host-nvidia-sriov"};
  for (size_t p = 0; p < ELEMENTSOF(profiles); p++)
    for (size_t v = 0; v < ELEMENTSOF(versions); v++)
      for (size_t h = 0; h < ELEMENTSOF(hosts); h++) {
        struct kgb_kata_plan *plan = plan_for(profiles[p], versions[v], hosts[h]);
        for (size_t i = 0; i < plan->n_settings; i++) {
          const struct kgb_kata_setting *s = &plan->settings[i];
          if (!kgb_kata_key_known(plan->major, plan->minor, s->table, s->key))
            fail_msg("%s on %s, Kata %s: %s.%s is not a key of that version", profiles[p], hosts[h],
                     versions[v], s->table, s->key);
          assert_non_null(s->why);
          char *canon = NULL;
          assert_int_equal(kgb_toml_canonical(ctx, s->value, &canon), 0);
          free(canon);
        }
        /* The whole rendering is valid TOML. */
        char *text = kgb_kata_render(plan);
        struct kgb_toml_doc *d = NULL;
        assert_int_equal(kgb_toml_parse(ctx, "render", text, strlen(text), &d), 0);
        kgb_toml_doc_free(d);
        free(text);
        kgb_kata_plan_free(plan);
      }
}

static void test_topology(void **state) {
  (void)state;
  struct kgb_kata_plan *plan = plan_for("nvidia-gpu", "3.x", "host-nvidia-dc");
  assert_string_equal(plan->large_bar, "0000:d0:00.0 has a 32 GiB 64-bit BAR");
  assert_string_equal(value(plan, "machine_type"), "\"q35\"");
  assert_string_equal(value(plan, "hot_plug_vfio"), "\"root-port\"");
  assert_string_equal(value(plan, "pcie_root_port"), "1");
  assert_null(value(plan, "hotplug_vfio_on_root_bus"));
  kgb_kata_plan_free(plan);

  plan = plan_for("nvidia-gpu", "3.x", "host-geforce");
  assert_null(plan->large_bar);
  assert_string_equal(value(plan, "pcie_root_port"), "2");
  kgb_kata_plan_free(plan);

  plan = plan_for("intel-gvt-d", "1.x", "host-intel-gvt");
  assert_string_equal(value(plan, "machine_type"), "\"pc\"");
  assert_string_equal(value(plan, "hotplug_vfio_on_root_bus"), "true");
  assert_null(value(plan, "pcie_root_port"));
  assert_null(value(plan, "vfio_mode"));
  kgb_kata_plan_free(plan);

  plan = plan_for("virgl", "3.x", "host-nvidia-dc");
  assert_null(value(plan, "hot_plug_vfio"));
  assert_null(value(plan, "virtio_gpu"));
  assert_null(plan->gpus);
  kgb_kata_plan_free(plan);

  /* Large BARs before Kata 1.11 are refused. */
  struct kgb_profile *p = NULL;
  fixture_use_host("host-nvidia-dc");
  assert_int_equal(kgb_profile_load(ctx, "nvidia-gpu", &p), 0);
  struct kgb_kata_opts o = {.kata_version = "1.10"};
  kgb_error_clear(ctx);
  assert_int_equal(kgb_kata_plan(ctx, p, &o, &plan), -ENOTSUP);
  assert_non_null(strstr(kgb_error_detail(ctx), "Kata 1.10 cannot hot-plug it"));
  kgb_profile_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_versions),
      cmocka_unit_test(test_plans),
      cmocka_unit_test(test_topology),
  };
  return cmocka_run_group_tests(tests, fixture_setup_datadir, fixture_teardown);
}
