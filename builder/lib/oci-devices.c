/* Device nodes to OCI linux.devices entries. */
#define _GNU_SOURCE
#include "oci-devices.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

void kgb_oci_device_release(struct kgb_oci_device *d) {
  free(d->path);
  *d = (struct kgb_oci_device){0};
}

int kgb_oci_device_read(struct kgb_ctx *ctx, const char *path, struct kgb_oci_device *ret) {
  struct stat st;
  if (stat(path, &st) < 0)
    return kgb_error(ctx, -errno, "cannot stat '%s': %m", path);
  char type;
  if (S_ISCHR(st.st_mode))
    type = 'c';
  else if (S_ISBLK(st.st_mode))
    type = 'b';
  else
    return kgb_error(ctx, -ENODEV,
                     "'%s' is not a device node (it is a %s): linux.devices takes character "
                     "and block devices such as /dev/dri/renderD128",
                     path,
                     S_ISDIR(st.st_mode)    ? "directory"
                     : S_ISREG(st.st_mode)  ? "regular file"
                     : S_ISFIFO(st.st_mode) ? "FIFO"
                     : S_ISSOCK(st.st_mode) ? "socket"
                                            : "special file");
  char *p = strdup(path);
  if (!p)
    return -ENOMEM;
  *ret = (struct kgb_oci_device){.path = p,
                                 .type = type,
                                 .major = major(st.st_rdev),
                                 .minor = minor(st.st_rdev),
                                 .file_mode = st.st_mode & 0777,
                                 .uid = st.st_uid,
                                 .gid = st.st_gid};
  return 0;
}
