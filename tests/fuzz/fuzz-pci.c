/* libFuzzer target: the two PCI texts read from a host. The first byte picks one: a sysfs
 * `resource` file (six BARs at most, sizes as the kernel's start/end give them, the large-BAR
 * decision and the size shown for it), or a pci.ids file looked up for the vendor and device
 * in the next four bytes (written to a temporary file, as the lookup reads a path). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "pci.h"

static char path[4096 + 16];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  snprintf(path, sizeof(path), "%s/pci.ids", fuzz_dir("pci"));
  return 0;
}

static void resource(const char *text) {
  struct kgb_pci_bar bars[6];
  size_t n = 99;
  if (kgb_pci_parse_resource(text, bars, &n) < 0)
    return;
  if (n > 6)
    abort();
  struct kgb_pci_dev d = {0};
  for (size_t i = 0; i < n; i++) {
    if (bars[i].index > 5 || bars[i].size == 0 || (i && bars[i].index <= bars[i - 1].index))
      abort();
    char *s = kgb_format_size(bars[i].size);
    if (!s)
      abort();
    free(s);
    d.bars[d.n_bars++] = bars[i];
  }
  const struct kgb_pci_bar *large = kgb_pci_large_bar(&d);
  if (large && !kgb_pci_bar_is_large(large))
    abort();
}

static void ids(const uint8_t *data, size_t size) {
  if (size < 4)
    return;
  unsigned vendor = (unsigned)data[0] << 8 | data[1], device = (unsigned)data[2] << 8 | data[3];
  fuzz_write(path, data + 4, size - 4);
  char *vname = NULL, *dname = NULL;
  /* a known vendor with an unknown device is a success without a device name */
  if (kgb_pci_ids_lookup(path, vendor, device, &vname, &dname) == 0 && !vname)
    abort();
  free(vname);
  free(dname);
  kgb_pci_ids_lookup(path, vendor, device, NULL, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  if (data[0] & 1) {
    ids(data + 1, size - 1);
    return 0;
  }
  char *text = strndup((const char *)data + 1, size - 1);
  if (!text)
    return 0;
  resource(text);
  free(text);
  return 0;
}
