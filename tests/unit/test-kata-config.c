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
  struct kgb_kata_opts o = {.base = "none", .kata_version = version};
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

/* A Go 3.4.0 drop-in, a runtime-rs 4.x hot-plug: what the release cannot say is an error
 * naming it, and with allow_loss a header line instead. */
static void test_losses(void **state) {
  (void)state;
  struct kgb_profile *p = NULL;
  fixture_use_host("host-nvidia-dc");
  assert_int_equal(kgb_profile_load(ctx, "nvidia-gpu", &p), 0);
  struct kgb_kata_plan *plan = NULL;
  /* runtime-rs 4.1.0 has no hot-plug key at all: a profile that hot-plugs loses it */
  struct kgb_profile *intel = NULL;
  fixture_use_host("host-intel-gvt");
  assert_int_equal(kgb_profile_load(ctx, "intel-gvt-d", &intel), 0);
  kgb_error_clear(ctx);
  struct kgb_kata_opts o = {.base = "none", .kata_version = "4.1.0", .runtime = "rs"};
  assert_int_equal(kgb_kata_plan(ctx, intel, &o, &plan), -ENOTSUP);
  assert_detail("Kata 4.1.0 (runtime-rs) cannot express what profile 'intel-gvt-d' needs");
  assert_detail("hypervisor.qemu.hot_plug_vfio (read by no runtime-rs release)");
  assert_detail("--allow-loss");
  o.allow_loss = true;
  assert_int_equal(kgb_kata_plan(ctx, intel, &o, &plan), 0);
  assert_null(value(plan, "hot_plug_vfio"));
  bool said = false;
  for (size_t i = 0; plan->header[i]; i++)
    said = said || strstr(plan->header[i], "LOST (--allow-loss): Kata 4.1.0 (runtime-rs) has no "
                                           "hot_plug_vfio");
  assert_true(said);
  kgb_kata_plan_free(plan);
  kgb_profile_free(intel);
  /* the NVIDIA profile cold-plugs, which runtime-rs 4.1.0 can */
  fixture_use_host("host-nvidia-dc");
  o = (struct kgb_kata_opts){.base = "none", .kata_version = "4.1.0", .runtime = "rs"};
  assert_int_equal(kgb_kata_plan(ctx, p, &o, &plan), 0);
  assert_string_equal(value(plan, "cold_plug_vfio"), "\"root-port\"");
  assert_string_equal(value(plan, "dial_timeout_ms"), "1200000");
  assert_string_equal(value(plan, "create_container_timeout"), "1200");
  kgb_kata_plan_free(plan);
  /* Go 1.3.1: no guest_hook_path, no kernel_modules (a host without a large BAR, which 1.3
   * refuses first) */
  kgb_profile_free(p);
  fixture_use_host("host-no-iommu");
  assert_int_equal(kgb_profile_load(ctx, "nvidia-gpu", &p), 0);
  kgb_error_clear(ctx);
  o = (struct kgb_kata_opts){.base = "none", .kata_version = "1.3"};
  assert_int_equal(kgb_kata_plan(ctx, p, &o, &plan), -ENOTSUP);
  assert_detail("hypervisor.qemu.guest_hook_path (read from 1.4.0 on)");
  assert_detail("agent.kata.kernel_modules (read from 1.9.0 on)");
  kgb_profile_free(p);
  fixture_use_host("host-nvidia-dc");
  assert_int_equal(kgb_profile_load(ctx, "nvidia-gpu", &p), 0);
  /* Go 3.4.0: no pcie_root_port, and nothing lost (the runtime counts the ports) */
  o = (struct kgb_kata_opts){.base = "none", .kata_version = "3.4.0"};
  assert_int_equal(kgb_kata_plan(ctx, p, &o, &plan), 0);
  assert_string_equal(value(plan, "cold_plug_vfio"), "\"root-port\"");
  assert_string_equal(value(plan, "hot_plug_vfio"), "\"no-port\"");
  assert_null(value(plan, "pcie_root_port"));
  assert_null(value(plan, "hotplug_vfio_on_root_bus"));
  kgb_kata_plan_free(plan);
  /* Go 3.1.3: hotplug_vfio_on_root_bus and rootfs_type, no port types: the cold-plug the
   * profile asks for becomes a hot-plug into a root port, and the header says so */
  o = (struct kgb_kata_opts){.base = "none", .kata_version = "3.1"};
  assert_int_equal(kgb_kata_plan(ctx, p, &o, &plan), 0);
  assert_string_equal(plan->version, "3.1.3");
  assert_null(value(plan, "hot_plug_vfio"));
  assert_string_equal(value(plan, "hotplug_vfio_on_root_bus"), "true");
  assert_string_equal(value(plan, "rootfs_type"), "\"ext4\"");
  kgb_kata_plan_free(plan);
  /* a drop-in for 2.4.3 is refused with the --patch alternative */
  o = (struct kgb_kata_opts){.base = "none", .kata_version = "2.4"};
  assert_int_equal(kgb_kata_plan(ctx, p, &o, &plan), 0);
  char *path = NULL;
  kgb_error_clear(ctx);
  assert_int_equal(kgb_kata_drop_in(ctx, plan, "/nonexistent", 50, &path), -ENOTSUP);
  assert_detail("Kata 2.4.3 reads no config.d drop-ins");
  assert_detail("--patch FILE");
  kgb_kata_plan_free(plan);
  kgb_profile_free(p);
}

static void test_plans(void **state) {
  (void)state;
  static const char *const profiles[] = {"intel-gvt-d", "intel-gvt-g",     "nvidia-gpu",
                                         "nvidia-vgpu", "nvidia-vgpu-mig", "virgl"};
  static const char *const versions[] = {"1.x", "1.11", "2.2", "2.5", "3.0",
                                         "3.1", "3.2",  "3.6", "3.x", "4.x"};
  static const char *const hosts[] = {"host-nvidia-dc", "host-intel-gvt", "host-geforce",
                                      "host-no-iommu", "host-nvidia-sriov"};
  for (size_t p = 0; p < ELEMENTSOF(profiles); p++)
    for (size_t v = 0; v < ELEMENTSOF(versions); v++)
      for (size_t h = 0; h < ELEMENTSOF(hosts); h++) {
        struct kgb_kata_plan *plan = plan_for(profiles[p], versions[v], hosts[h]);
        for (size_t i = 0; i < plan->n_settings; i++) {
          const struct kgb_kata_setting *s = &plan->settings[i];
          if (!kgb_kata_release_has_key(&plan->release, s->table, s->key))
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
  assert_string_equal(value(plan, "cold_plug_vfio"), "\"root-port\"");
  assert_string_equal(value(plan, "pcie_root_port"), "8"); /* Kata's NVIDIA template */
  assert_null(value(plan, "hotplug_vfio_on_root_bus"));
  kgb_kata_plan_free(plan);

  plan = plan_for("nvidia-gpu", "3.x", "host-geforce");
  assert_null(plan->large_bar);
  assert_string_equal(value(plan, "pcie_root_port"), "8");
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
  struct kgb_kata_opts o = {.base = "none", .kata_version = "1.10"};
  kgb_error_clear(ctx);
  assert_int_equal(kgb_kata_plan(ctx, p, &o, &plan), -ENOTSUP);
  assert_non_null(strstr(kgb_error_detail(ctx), "Kata 1.10.8 cannot hot-plug it"));
  kgb_profile_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_losses),
      cmocka_unit_test(test_plans),
      cmocka_unit_test(test_topology),
  };
  return cmocka_run_group_tests(tests, fixture_setup_datadir, fixture_teardown);
}
