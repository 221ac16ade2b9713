/* boot-test's QEMU command line: a Kata-like machine (the machine type, memory and PCIe root
 * ports of the profile's Kata settings, native PCIe hotplug, virtio devices, the image on
 * virtio-blk read-only, a serial console on stdio, QMP on a socket) as an argv for kgb_exec,
 * and the accelerator's names. */
#include "boot-qemu.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../shared/sbuf.h"
#include "../shared/string-table.h"
#include "../shared/util.h"

/* ---- the accelerator ---- */

static const char *const kgb_accel_table[_KGB_ACCEL_MAX] = {"auto", "kvm", "tcg"};
DEFINE_STRING_TABLE_LOOKUP(kgb_accel, enum kgb_accel);

/* ---- the command line ---- */

/* -drive for the image; a comma in QEMU's option syntax is doubled. */
static char *qemu_drive(const char *image) {
  struct sbuf sb = SBUF_INIT;
  sbuf_adds(&sb, "file=");
  for (const char *c = image; *c; c++) {
    if (*c == ',')
      sbuf_addc(&sb, ',');
    sbuf_addc(&sb, *c);
  }
  sbuf_adds(&sb, ",if=none,id=kgb-root,format=raw,readonly=on");
  return sbuf_steal(&sb);
}

int kgb_qemu_argv(const struct kgb_qemu_cmd *q, char ***ret) {
  char **v = NULL;
  int r = 0;
  _cleanup_free_ char *mem = kgb_strdup_printf("%u", q->memory);
  _cleanup_free_ char *name = kgb_strdup_printf("kgb-boot-test-%s", q->name);
  const char *fixed[] = {q->qemu,
                         "-name",
                         name,
                         "-machine",
                         q->machine,
                         "-accel",
                         kgb_accel_to_string(q->accel),
                         "-m",
                         mem,
                         "-smp",
                         "1",
                         "-nodefaults",
                         "-no-user-config",
                         "-display",
                         "none",
                         "-serial",
                         "stdio",
                         "-no-reboot",
                         "-kernel",
                         q->kernel,
                         "-initrd",
                         q->initrd,
                         "-append",
                         q->cmdline};
  if (!mem || !name)
    return -ENOMEM;
  for (size_t i = 0; i < ELEMENTSOF(fixed) && r >= 0; i++)
    r = strv_extend(&v, fixed[i]);
  /* Kata runs KVM guests with the host's CPU model */
  if (r >= 0 && q->accel == KGB_ACCEL_KVM)
    r = strv_extend(&v, "-cpu") < 0 ? -ENOMEM : strv_extend(&v, "host");
  bool q35 = STREQ(q->machine, "q35");
  if (r >= 0 && q35 && q->root_ports)
    /* QEMU 6.1 and later hand q35's root ports to ACPI hotplug; Kata's large-BAR path is
     * native PCIe hotplug (pciehp) */
    r = strv_extend(&v, "-global") < 0
            ? -ENOMEM
            : strv_extend(&v, "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off");
  for (unsigned i = 0; q35 && i < q->root_ports && r >= 0; i++) {
    _cleanup_free_ char *dev =
        kgb_strdup_printf("pcie-root-port,id=rp%u,bus=pcie.0,chassis=%u,slot=%u", i, i + 1, i + 1);
    r = dev && strv_extend(&v, "-device") >= 0 ? strv_extend(&v, dev) : -ENOMEM;
  }
  static const char *const devices[] = {"virtio-rng-pci", "virtio-serial-pci"};
  for (size_t i = 0; i < ELEMENTSOF(devices) && r >= 0; i++)
    r = strv_extend(&v, "-device") < 0 ? -ENOMEM : strv_extend(&v, devices[i]);
  if (r >= 0 && q->virtio_gpu)
    r = strv_extend(&v, "-device") < 0 ? -ENOMEM : strv_extend(&v, "virtio-gpu-pci");
  if (r >= 0 && q->image) {
    /* Kata's disable_image_nvdimm = true path: the image on virtio-blk, never written */
    _cleanup_free_ char *drive = qemu_drive(q->image);
    r = drive && strv_extend(&v, "-drive") >= 0 && strv_extend(&v, drive) >= 0 &&
                strv_extend(&v, "-device") >= 0
            ? strv_extend(&v, "virtio-blk-pci,drive=kgb-root")
            : -ENOMEM;
  }
  if (r >= 0 && q->qmp_path) {
    _cleanup_free_ char *qmp = kgb_strdup_printf("unix:%s,server=on,wait=off", q->qmp_path);
    r = qmp && strv_extend(&v, "-qmp") >= 0 ? strv_extend(&v, qmp) : -ENOMEM;
  }
  if (r < 0) {
    strv_free(v);
    return r;
  }
  *ret = v;
  return 0;
}
