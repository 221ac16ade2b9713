/* Mediated devices (vGPUs), the seeds' `host mdev list|create|remove`: read from
 * <sysfs>/bus/mdev/devices, created by writing a UUID to a type's `create` file and removed by
 * writing 1 to the device's `remove` (sysfs.h does the writing). */
#define _GNU_SOURCE
#include "mdev.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "../shared/sbuf.h"
#include "../shared/util.h"
#include "host.h"
#include "pci.h"
#include "sysfs.h"

void kgb_mdev_release(struct kgb_mdev *m) {
  free(m->uuid);
  free(m->parent);
  free(m->type);
  free(m->type_name);
  *m = (struct kgb_mdev){.iommu_group = -1};
}

bool kgb_uuid_valid(const char *s) {
  static const char pattern[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
  if (strlen(s) != sizeof(pattern) - 1)
    return false;
  for (size_t i = 0; pattern[i]; i++)
    if (pattern[i] == '-' ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
      return false;
  return true;
}

static char *random_uuid(void) {
  unsigned char b[16];
  if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
    return NULL;
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
  return kgb_strdup_printf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                           b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                           b[12], b[13], b[14], b[15]);
}

static int read_mdev(struct kgb_ctx *ctx, const char *uuid, struct kgb_mdev *m) {
  _cleanup_free_ char *dir = kgb_strdup_printf("%s/bus/mdev/devices/%s", ctx->sysfs, uuid);
  if (!dir)
    return -ENOMEM;
  *m = (struct kgb_mdev){.iommu_group = -1};
  if (!(m->uuid = strdup(uuid)))
    return -ENOMEM;
  /* bus/mdev/devices/<uuid> -> ../../../devices/<...>/<parent>/<uuid> */
  char buf[PATH_MAX];
  ssize_t n = readlink(dir, buf, sizeof(buf) - 1);
  if (n > 0) {
    buf[n] = '\0';
    char *last = strrchr(buf, '/');
    if (last) {
      *last = '\0';
      char *parent = strrchr(buf, '/');
      m->parent = strdup(parent ? parent + 1 : buf);
    }
  }
  _cleanup_free_ char *type_link = strjoin_path(dir, "mdev_type");
  _cleanup_free_ char *group_link = strjoin_path(dir, "iommu_group");
  _cleanup_free_ char *name = strjoin_path(dir, "mdev_type/name");
  if (!type_link || !group_link || !name)
    return -ENOMEM;
  m->type = kgb_sysfs_link_name(type_link);
  m->type_name = read_first_line(name);
  _cleanup_free_ char *g = kgb_sysfs_link_name(group_link);
  if (g)
    m->iommu_group = atoi(g);
  return 0;
}

static int cmp_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int kgb_mdev_list(struct kgb_ctx *ctx, struct kgb_mdev **ret, size_t *ret_n) {
  _cleanup_free_ char *dir = strjoin_path(ctx->sysfs, "bus/mdev/devices");
  if (!dir)
    return -ENOMEM;
  struct kgb_mdev *v = NULL;
  size_t n = 0;
  DIR *d = opendir(dir);
  _cleanup_strv_free_ char **names = NULL;
  if (d) {
    struct dirent *de;
    while ((de = readdir(d)))
      if (de->d_name[0] != '.' && strv_extend(&names, de->d_name) < 0) {
        closedir(d);
        return -ENOMEM;
      }
    closedir(d);
  }
  size_t total = strv_length(names);
  if (total) {
    qsort(names, total, sizeof(char *), cmp_name);
  }
  v = calloc(total + 1, sizeof(*v));
  if (!v)
    return -ENOMEM;
  for (size_t i = 0; i < total; i++) {
    int r = read_mdev(ctx, names[i], &v[n]);
    n++;
    if (r < 0) {
      for (size_t k = 0; k < n; k++)
        kgb_mdev_release(&v[k]);
      free(v);
      return r;
    }
  }
  *ret = v;
  *ret_n = n;
  return 0;
}

static bool is_gone(void *path) { return access(path, F_OK) < 0; }

static bool exists(void *path) { return access(path, F_OK) == 0; }

int kgb_mdev_create(struct kgb_ctx *ctx, const char *type, const char *parent_in,
                    const char *uuid_in, struct kgb_mdev *ret) {
  int r = kgb_host_check_writable(ctx, "host mdev create");
  if (r < 0)
    return r;
  _cleanup_free_ char *parent = NULL, *uuid = NULL;
  if (parent_in && (r = kgb_pci_bdf_normalize(ctx, parent_in, &parent)) < 0)
    return r;
  if (uuid_in) {
    if (!kgb_uuid_valid(uuid_in))
      return kgb_error(ctx, -EINVAL,
                       "'%s' is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, as uuidgen "
                       "prints it)",
                       uuid_in);
    uuid = strdup(uuid_in);
    for (char *c = uuid; c && *c; c++)
      *c = (char)tolower((unsigned char)*c);
  } else {
    uuid = random_uuid();
  }
  if (!uuid)
    return -ENOMEM;
  _cleanup_(kgb_pci_list_freep) struct kgb_pci_list *l = NULL;
  if ((r = kgb_pci_scan(ctx, false, NULL, &l)) < 0)
    return r;
  const struct kgb_pci_dev *chosen = NULL;
  const struct kgb_mdev_type *ct = NULL;
  struct sbuf offered = SBUF_INIT, zero = SBUF_INIT;
  bool parent_seen = false;
  for (size_t i = 0; i < l->n && !chosen; i++) {
    const struct kgb_pci_dev *d = &l->devs[i];
    if (parent && !STREQ(d->bdf, parent))
      continue;
    parent_seen = true;
    for (size_t t = 0; t < d->n_mdev_types; t++) {
      const struct kgb_mdev_type *mt = &d->mdev_types[t];
      if (!STREQ(mt->id, type) && !(mt->name && STREQ(mt->name, type)))
        continue;
      if (mt->available > 0) {
        chosen = d;
        ct = mt;
        break;
      }
      sbuf_addf(&zero, "%s%s", zero.len ? ", " : "", d->bdf);
    }
  }
  if (!chosen) {
    for (size_t i = 0; i < l->n; i++)
      for (size_t t = 0; t < l->devs[i].n_mdev_types; t++)
        if (!parent || STREQ(l->devs[i].bdf, parent))
          sbuf_addf(&offered, "%s%s", offered.len ? ", " : "", l->devs[i].mdev_types[t].id);
    if (parent && !parent_seen)
      r = kgb_error(ctx, -ENOENT, "no PCI device %s under '%s/bus/pci/devices'", parent,
                    ctx->sysfs);
    else if (zero.len)
      r = kgb_error(ctx, -ENOSPC,
                    "mdev type '%s' has no instance available on %s (available_instances is "
                    "0): remove an unused one ('host mdev list', 'host mdev remove UUID') or "
                    "choose another type",
                    type, sbuf_str(&zero));
    else if (offered.len)
      r = kgb_error(ctx, -ENOENT, "no device %s offers mdev type '%s'; types offered: %s",
                    parent ? parent : "here", type, sbuf_str(&offered));
    else
      r = kgb_error(ctx, -ENOENT,
                    "no device %s offers mediated device types: for GVT-g boot with "
                    "i915.enable_gvt=1 and load kvmgt; for NVIDIA vGPU install the vGPU "
                    "manager and enable VFs (sriov-manage -e BDF)",
                    parent ? parent : "here");
  }
  sbuf_release(&offered);
  sbuf_release(&zero);
  if (r < 0)
    return r;
  _cleanup_free_ char *existing = kgb_strdup_printf("%s/bus/mdev/devices/%s", ctx->sysfs, uuid);
  _cleanup_free_ char *create = strjoin_path(ct->path, "create");
  _cleanup_free_ char *made = kgb_strdup_printf("%s/%s/iommu_group", chosen->path, uuid);
  if (!existing || !create || !made)
    return -ENOMEM;
  if (access(existing, F_OK) == 0)
    return kgb_error(ctx, -EEXIST, "a mediated device %s already exists", uuid);
  if ((r = kgb_sysfs_write(ctx, create, uuid)) < 0)
    return r;
  r = kgb_sysfs_wait(ctx, exists, made);
  if (r == -ETIMEDOUT)
    return kgb_error(ctx, -EIO,
                     "wrote %s to '%s' but no device with an IOMMU group appeared ('%s'): "
                     "check 'dmesg' and that vfio_mdev is loaded",
                     uuid, create, made);
  if (r < 0)
    return r;
  _cleanup_free_ char *g = kgb_sysfs_link_name(made);
  *ret = (struct kgb_mdev){.uuid = TAKE_PTR(uuid),
                           .parent = strdup(chosen->bdf),
                           .type = strdup(ct->id),
                           .type_name = ct->name ? strdup(ct->name) : NULL,
                           .iommu_group = g ? atoi(g) : -1};
  if (!ret->parent || !ret->type) {
    kgb_mdev_release(ret);
    return -ENOMEM;
  }
  return 0;
}

int kgb_mdev_remove(struct kgb_ctx *ctx, const char *uuid) {
  int r = kgb_host_check_writable(ctx, "host mdev remove");
  if (r < 0)
    return r;
  if (!kgb_uuid_valid(uuid))
    return kgb_error(ctx, -EINVAL, "'%s' is not a UUID ('host mdev list' shows the devices)", uuid);
  _cleanup_free_ char *dir = kgb_strdup_printf("%s/bus/mdev/devices/%s", ctx->sysfs, uuid);
  _cleanup_free_ char *remove = dir ? strjoin_path(dir, "remove") : NULL;
  if (!remove)
    return -ENOMEM;
  if (access(dir, F_OK) < 0)
    return kgb_error(ctx, -ENOENT, "no mediated device %s ('host mdev list' shows them)", uuid);
  if ((r = kgb_sysfs_write(ctx, remove, "1")) < 0)
    return r;
  r = kgb_sysfs_wait(ctx, is_gone, dir);
  if (r == -ETIMEDOUT)
    return kgb_error(ctx, -EBUSY,
                     "wrote 1 to '%s' but the device is still there: is a VM still using it?",
                     remove);
  return r;
}
