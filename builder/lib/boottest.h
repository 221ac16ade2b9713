/* `boot-test`: the built kernel booted in QEMU on a Kata-like machine (q35, the PCIe root ports
 * of the profile's Kata settings, virtio devices, a serial console; boot-qemu.h), with
 * kgb-guest-check as early userspace in an initrd written for the test (or appended to the
 * image's; boot-initrd.h), its result lines read from the console into a table
 * (boot-console.h), a device hot-plugged over QMP when the profile needs it (boot-qmp.h), KVM
 * probed and TCG taken when KVM fails or is slow, and a hung guest killed. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "boot-console.h"
#include "boot-qemu.h"
#include "kgb.h"
#include "profile.h"

/* ---- a root disk image ---- */

struct kgb_root_image {
  const char *fstype; /* "ext4" or "erofs" */
  const char
      *device;     /* the guest's name of the root: "/dev/vda1" in Kata's layout, else "/dev/vda" */
  uint64_t offset; /* where the file system starts in the image */
};

/* Reads an image's partition table and super block: Kata's layout (an msdos label whose first
 * partition, type 0x83, holds the file system) or a bare file system. -EMEDIUMTYPE with an
 * error naming the file when it holds neither ext4 nor erofs (an initrd, say). */
int kgb_root_image_probe(struct kgb_ctx *ctx, const char *path, struct kgb_root_image *ret);

/* ---- the test ---- */

struct kgb_boot_opts {
  const char *kernel;      /* bzImage */
  const char *release;     /* what `uname -r` must print; NULL: read from the bzImage */
  const char *modules_dir; /* <root>/lib/modules/<release> of the build; NULL: none */
  const char *config;      /* the kernel's .config (initrd compression); NULL: gzip */
  const char *initrd;      /* the image's initrd: the checks go in an overlay after it */
  const char *image;       /* an ext4/erofs disk image: the guest's root disk, read-only; its
                            * modules load with its own modprobe unless modules_dir is set */
  const char *guest_check; /* the static kgb-guest-check program */
  const char *qemu;        /* default qemu-system-x86_64 */
  const char *append;      /* more kernel parameters, after ours (a later one wins) */
  enum kgb_accel accel;
  unsigned timeout; /* seconds from QEMU's start to the end of the checks; 0: 60 */
  unsigned memory;  /* MiB; 0: the profile's kata.default_memory, at most 2048 */
  long long epoch;  /* mtimes in the initrd (SOURCE_DATE_EPOCH of the build) */
};

struct kgb_boot_check {
  char *name;
  enum kgb_check_status status;
  char *detail;
};

struct kgb_boot_result {
  char *rundir;   /* <workdir>/boot-test/<profile>-XXXXXX */
  char *log_path; /* the serial console (and QEMU's messages) */
  char *initrd;   /* the initrd booted (deleted after a passing run) */
  char *root;     /* with an image: "ext4 image IMG as /dev/vda1", else NULL */
  char *release;
  char **qemu_argv;     /* the last QEMU command line */
  enum kgb_accel accel; /* KVM or TCG: what the checks ran under */
  char *accel_why;
  unsigned memory;
  struct kgb_boot_check *checks;
  size_t n_checks, n_pass, n_fail, n_skip;
  bool timed_out;
  char **log_tail; /* the log's last lines when the boot failed */
  /* Host clock from QEMU's start: to the guest's first line (userspace reached) and to its
   * last (checks done, the boot-to-check time); -1 when not reached. */
  double boot_seconds, check_seconds, total_seconds;
  double uptime_begin, uptime_end; /* the guest's own clock at both markers, -1 unknown */
  double kvm_probe_seconds;        /* spent on a KVM attempt that was given up, 0 none */
};

struct kgb_boot_result *kgb_boot_result_free(struct kgb_boot_result *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_boot_result *, kgb_boot_result_free)

/* Boots and checks. Returns 0 when the run could be judged, failed checks included (a hung or
 * crashed guest is a failed "boot" check); a negative errno when the test could not run
 * (QEMU missing, -ECANCELED). */
int kgb_boot_test(struct kgb_ctx *ctx, const struct kgb_profile *p, const struct kgb_boot_opts *o,
                  struct kgb_boot_result **ret);

/* The release string an x86 bzImage's setup header carries ("6.1.192-virgl-gpu"). */
int kgb_bzimage_release(struct kgb_ctx *ctx, const char *path, char **ret);

/* The order in which modules must be loaded (dependencies first), from a modules.dep text:
 * paths relative to the modules directory. */
int kgb_modules_load_order(const char *modules_dep, char ***ret);
