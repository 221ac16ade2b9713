/* PCI devices as sysfs shows them, read only through the context's sysfs root: identity,
 * driver, IOMMU group, BARs (from the `resource` file), SR-IOV, mediated device types, and the
 * names pci.ids gives them. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kgb.h"

#define KGB_PCI_IDS_DEFAULT "/usr/share/misc/pci.ids"
#define KGB_LARGE_BAR ((uint64_t)4 << 30) /* a 64-bit BAR this large cannot sit below 4 GiB */

struct kgb_pci_bar {
  unsigned index;
  uint64_t start, size;
  bool is64, prefetchable, io;
};

struct kgb_mdev_type {
  char *id;   /* directory name: nvidia-692, i915-GVTg_V4_8 */
  char *name; /* the type's `name` file, NULL when it has none */
  char *description;
  long available; /* available_instances; -1 when unreadable */
  char *path;     /* <device>/mdev_supported_types/<id> */
};

struct kgb_pci_dev {
  char *bdf;
  char *path;                          /* <sysfs>/bus/pci/devices/<bdf> */
  unsigned vendor, device, class_code; /* class_code: 24 bits, e.g. 0x030200 */
  char *driver;                        /* NULL: no driver bound */
  char *driver_override;               /* NULL: none set */
  int iommu_group;                     /* -1: none */
  struct kgb_pci_bar bars[6];
  size_t n_bars; /* memory and I/O BARs that have a size */
  bool sriov;    /* the device has SR-IOV capability */
  unsigned totalvfs, numvfs;
  char *physfn;   /* a VF: the BDF of its physical function */
  char **virtfns; /* a PF: the BDFs of its enabled VFs */
  struct kgb_mdev_type *mdev_types;
  size_t n_mdev_types;
  char *vendor_name, *device_name; /* from pci.ids; NULL when unknown */
};

struct kgb_pci_list {
  struct kgb_pci_dev *devs;
  size_t n;
};

struct kgb_pci_list *kgb_pci_list_free(struct kgb_pci_list *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_pci_list *, kgb_pci_list_free)
void kgb_pci_dev_release(struct kgb_pci_dev *d);

/* "d0:00.0" -> "0000:d0:00.0"; -EINVAL for anything that is not a PCI address. */
int kgb_pci_bdf_normalize(struct kgb_ctx *ctx, const char *in, char **ret);
/* Reads one device; -ENOENT (with detail) when <sysfs>/bus/pci/devices/<bdf> does not exist. */
int kgb_pci_read(struct kgb_ctx *ctx, const char *bdf, const char *pci_ids,
                 struct kgb_pci_dev *ret);
/* Every PCI device (gpus_only: class 0x03 only), sorted by address. pci_ids may be NULL. */
int kgb_pci_scan(struct kgb_ctx *ctx, bool gpus_only, const char *pci_ids,
                 struct kgb_pci_list **ret);
/* Parses the text of a `resource` file into the six standard BARs that have a size. */
int kgb_pci_parse_resource(const char *text, struct kgb_pci_bar bars[6], size_t *ret_n);
/* Names from a pci.ids file; -ENOENT when the file or the entry is missing. */
int kgb_pci_ids_lookup(const char *pci_ids, unsigned vendor, unsigned device, char **ret_vendor,
                       char **ret_device);
/* The BDFs in an IOMMU group, sorted. */
int kgb_pci_group_devices(struct kgb_ctx *ctx, int group, char ***ret);

bool kgb_pci_is_gpu(const struct kgb_pci_dev *d);
bool kgb_pci_bar_is_large(const struct kgb_pci_bar *b);
/* The largest 64-bit BAR of 4 GiB or more, NULL when there is none. */
const struct kgb_pci_bar *kgb_pci_large_bar(const struct kgb_pci_dev *d);
/* "32 GiB", "16 MiB", "4 KiB", "512 B" (rounded down to the unit): format_size's
 * FORMAT_SIZE_UNIT, allocated, for the BAR sizes of reports and plans. */
char *kgb_format_size(uint64_t bytes);
/* "NVIDIA", "Intel", ... for the vendors the profiles know; NULL otherwise. */
const char *kgb_pci_vendor_label(unsigned vendor);
/* The PCI vendor of a profile vendor ("nvidia" -> 0x10de, "intel" -> 0x8086), 0 for none. */
unsigned kgb_pci_vendor_id(const char *profile_vendor);
