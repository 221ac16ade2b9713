/* libFuzzer target: the readers of built kernels and images, on an arbitrary file: the
 * bzImage header and its compressed payload, ELF sections and the IKCONFIG markers
 * (kernel verify), the bzImage's release string (boot-test --kernel) and the partition table
 * and super block of a root disk image (boot-test --image). Each reads a file a user names. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "boottest.h"
#include "fuzz.h"
#include "ikconfig.h"

static struct kgb_ctx *ctx;
static char path[4200];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!ctx) {
    if (kgb_ctx_new(&ctx) < 0)
      abort();
    snprintf(path, sizeof(path), "%s/input", fuzz_dir("kernel-image"));
  }
  fuzz_write(path, data, size);

  char *config = NULL;
  struct kgb_ikconfig_info info = {0};
  if (kgb_ikconfig_read_info(ctx, path, &config, &info) == 0) {
    if (!config || !info.format)
      abort();
    free(config);
  }
  kgb_error_clear(ctx);
  char *release = NULL;
  if (kgb_bzimage_release(ctx, path, &release) == 0) {
    if (!release)
      abort();
    free(release);
  }
  kgb_error_clear(ctx);
  struct kgb_root_image img = {0};
  if (kgb_root_image_probe(ctx, path, &img) == 0 && (!img.fstype || !img.device))
    abort();
  kgb_error_clear(ctx);
  return 0;
}
