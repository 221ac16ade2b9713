/* boot-test's QEMU command line: the accelerator's names, and the argv of a Kata-like q35
 * machine (root ports with native hotplug, the image read-only with its commas doubled, QMP)
 * against a minimal one. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "boot-qemu.h"
#include "util.h"

static void test_accel(void **state) {
  (void)state;
  assert_int_equal(kgb_accel_from_string("auto"), KGB_ACCEL_AUTO);
  assert_int_equal(kgb_accel_from_string("tcg"), KGB_ACCEL_TCG);
  assert_int_equal(kgb_accel_from_string("hvf"), _KGB_ACCEL_INVALID);
  assert_string_equal(kgb_accel_to_string(KGB_ACCEL_KVM), "kvm");
}

/* The value after the first occurrence of option opt at or after *from, or NULL. */
static const char *after(char **argv, size_t *from, const char *opt) {
  for (size_t i = *from; argv[i] && argv[i + 1]; i++)
    if (STREQ(argv[i], opt)) {
      *from = i + 2;
      return argv[i + 1];
    }
  return NULL;
}

static void test_q35(void **state) {
  (void)state;
  struct kgb_qemu_cmd q = {.qemu = "qemu-system-x86_64",
                           .name = "nvidia-gpu",
                           .kernel = "/k/bzImage",
                           .initrd = "/r/initrd.img",
                           .cmdline = "console=ttyS0 rdinit=/kgb/check",
                           .image = "/i/a,b.img",
                           .machine = "q35",
                           .memory = 2048,
                           .root_ports = 2,
                           .accel = KGB_ACCEL_KVM,
                           .qmp_path = "/r/qmp.sock"};
  _cleanup_strv_free_ char **argv = NULL;
  assert_int_equal(kgb_qemu_argv(&q, &argv), 0);
  assert_string_equal(argv[0], "qemu-system-x86_64");
  size_t i = 0;
  assert_string_equal(after(argv, &i, "-name"), "kgb-boot-test-nvidia-gpu");
  assert_string_equal(after(argv, &i, "-machine"), "q35");
  assert_string_equal(after(argv, &i, "-accel"), "kvm");
  assert_string_equal(after(argv, &i, "-m"), "2048");
  assert_string_equal(after(argv, &i, "-serial"), "stdio");
  assert_string_equal(after(argv, &i, "-kernel"), "/k/bzImage");
  assert_string_equal(after(argv, &i, "-initrd"), "/r/initrd.img");
  assert_string_equal(after(argv, &i, "-append"), "console=ttyS0 rdinit=/kgb/check");
  assert_string_equal(after(argv, &i, "-cpu"), "host");
  assert_string_equal(after(argv, &i, "-global"),
                      "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off");
  assert_string_equal(after(argv, &i, "-device"),
                      "pcie-root-port,id=rp0,bus=pcie.0,chassis=1,slot=1");
  assert_string_equal(after(argv, &i, "-device"),
                      "pcie-root-port,id=rp1,bus=pcie.0,chassis=2,slot=2");
  assert_string_equal(after(argv, &i, "-device"), "virtio-rng-pci");
  assert_string_equal(after(argv, &i, "-device"), "virtio-serial-pci");
  assert_string_equal(after(argv, &i, "-drive"),
                      "file=/i/a,,b.img,if=none,id=kgb-root,format=raw,readonly=on");
  assert_string_equal(after(argv, &i, "-device"), "virtio-blk-pci,drive=kgb-root");
  assert_string_equal(after(argv, &i, "-qmp"), "unix:/r/qmp.sock,server=on,wait=off");
  assert_null(argv[i]);
}

static void test_minimal(void **state) {
  (void)state;
  struct kgb_qemu_cmd q = {.qemu = "/opt/qemu",
                           .name = "virgl",
                           .kernel = "k",
                           .initrd = "i",
                           .cmdline = "",
                           .machine = "pc",
                           .memory = 512,
                           .root_ports = 4,
                           .accel = KGB_ACCEL_TCG,
                           .virtio_gpu = true};
  _cleanup_strv_free_ char **argv = NULL;
  assert_int_equal(kgb_qemu_argv(&q, &argv), 0);
  /* no root ports off q35, no -cpu host under TCG, no disk, no QMP */
  assert_false(strv_contains(argv, "-global"));
  assert_false(strv_contains(argv, "-cpu"));
  assert_false(strv_contains(argv, "-drive"));
  assert_false(strv_contains(argv, "-qmp"));
  size_t i = 0;
  assert_string_equal(after(argv, &i, "-accel"), "tcg");
  assert_string_equal(after(argv, &i, "-device"), "virtio-rng-pci");
  assert_string_equal(after(argv, &i, "-device"), "virtio-serial-pci");
  assert_string_equal(after(argv, &i, "-device"), "virtio-gpu-pci");
  assert_null(argv[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accel),
      cmocka_unit_test(test_q35),
      cmocka_unit_test(test_minimal),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
