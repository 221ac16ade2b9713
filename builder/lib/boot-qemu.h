/* boot-test's QEMU command line, built from what the test decided: the machine of the
 * profile's Kata settings, the kernel and initrd, the root image, the accelerator and the QMP
 * socket. Only argv construction: boottest.c runs it through kgb_exec. */
#pragma once

#include <stdbool.h>

enum kgb_accel {
  KGB_ACCEL_AUTO,
  KGB_ACCEL_KVM,
  KGB_ACCEL_TCG,
  _KGB_ACCEL_MAX,
  _KGB_ACCEL_INVALID = -22,
};
enum kgb_accel kgb_accel_from_string(const char *s);
const char *kgb_accel_to_string(enum kgb_accel a);

struct kgb_qemu_cmd {
  const char *qemu; /* the program: a name on PATH or a path */
  const char *name; /* the profile: -name kgb-boot-test-<name> */
  const char *kernel, *initrd;
  const char *cmdline; /* -append */
  const char *image;   /* the root disk, read-only on virtio-blk; NULL: none */
  const char *machine; /* -machine: "q35" gets root_ports pcie-root-ports rp0... */
  unsigned memory;     /* MiB */
  unsigned root_ports;
  enum kgb_accel accel; /* KVM or TCG (a KVM guest gets -cpu host) */
  bool virtio_gpu;      /* -device virtio-gpu-pci */
  const char *qmp_path; /* the QMP socket QEMU listens on; NULL: no QMP */
};

/* The argv (a strv) that starts q; -ENOMEM. */
int kgb_qemu_argv(const struct kgb_qemu_cmd *q, char ***ret);
