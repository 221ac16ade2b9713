/* OCI runtime-spec `linux.devices` entries read from device nodes with stat() (seed 003:
 * /dev/dri/renderD128 is {"path", "type": "c", "major": 226, "minor": 128, "fileMode", "uid",
 * "gid"}). */
#pragma once

#include <sys/types.h>

#include "kgb.h"

struct kgb_oci_device {
  char *path;
  char type; /* 'c' or 'b' */
  unsigned major, minor;
  mode_t file_mode; /* permission bits */
  uid_t uid;
  gid_t gid;
};

void kgb_oci_device_release(struct kgb_oci_device *d);
/* -ENODEV (with detail) when path is not a character or block device. */
int kgb_oci_device_read(struct kgb_ctx *ctx, const char *path, struct kgb_oci_device *ret);
