/* Reading PCI devices from sysfs (through ctx->sysfs) and their names from pci.ids. */
#define _GNU_SOURCE
#include "pci.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../shared/sbuf.h"
#include "../shared/util.h"

/* Linux's IORESOURCE_* flags in the third column of `resource`. */
#define RES_IO 0x00000100ULL
#define RES_MEM 0x00000200ULL
#define RES_PREFETCH 0x00002000ULL
#define RES_MEM_64 0x00100000ULL

void kgb_pci_dev_release(struct kgb_pci_dev *d) {
  free(d->bdf);
  free(d->path);
  free(d->driver);
  free(d->driver_override);
  free(d->physfn);
  strv_free(d->virtfns);
  for (size_t i = 0; i < d->n_mdev_types; i++) {
    free(d->mdev_types[i].id);
    free(d->mdev_types[i].name);
    free(d->mdev_types[i].description);
    free(d->mdev_types[i].path);
  }
  free(d->mdev_types);
  free(d->vendor_name);
  free(d->device_name);
  *d = (struct kgb_pci_dev){0};
}

struct kgb_pci_list *kgb_pci_list_free(struct kgb_pci_list *l) {
  if (!l)
    return NULL;
  for (size_t i = 0; i < l->n; i++)
    kgb_pci_dev_release(&l->devs[i]);
  free(l->devs);
  free(l);
  return NULL;
}

int kgb_pci_bdf_normalize(struct kgb_ctx *ctx, const char *in, char **ret) {
  unsigned dom = 0, bus, dev, fn;
  int n = 0;
  size_t len = strlen(in);
  bool ok = false;
  if (sscanf(in, "%4x:%2x:%2x.%1u%n", &dom, &bus, &dev, &fn, &n) == 4 && (size_t)n == len &&
      len == 12)
    ok = true;
  else if (sscanf(in, "%2x:%2x.%1u%n", &bus, &dev, &fn, &n) == 3 && (size_t)n == len && len == 7)
    ok = true, dom = 0;
  if (!ok || dev > 0x1f || fn > 7)
    return kgb_error(ctx, -EINVAL,
                     "'%s' is not a PCI address: use DDDD:BB:DD.F as lspci -D prints it, e.g. "
                     "0000:d0:00.0",
                     in);
  *ret = kgb_strdup_printf("%04x:%02x:%02x.%u", dom, bus, dev, fn);
  return *ret ? 0 : -ENOMEM;
}

/* Text from sysfs is shown on terminals and written into YAML and TOML: a driver (or a fixture
 * tree) that puts escape sequences or other control characters in a name must not reach a
 * terminal raw. Each such byte becomes '?'; newlines are the caller's business. */
static void defang(char *s) {
  for (; s && *s; s++)
    if (((unsigned char)*s < 0x20 && *s != '\n') || *s == 0x7f)
      *s = '?';
}

/* The first line of a sysfs attribute, without the newline; NULL when unreadable. */
static char *read_attr(const char *dir, const char *name) {
  _cleanup_free_ char *p = strjoin_path(dir, name);
  char *text = NULL;
  if (!p || read_full_file(p, &text, NULL) < 0)
    return NULL;
  text[strcspn(text, "\n")] = '\0';
  defang(text);
  return text;
}

static bool read_hex(const char *dir, const char *name, unsigned *ret) {
  _cleanup_free_ char *v = read_attr(dir, name);
  if (!v)
    return false;
  char *end;
  errno = 0;
  unsigned long x = strtoul(v, &end, 16);
  if (errno || end == v)
    return false;
  *ret = (unsigned)x;
  return true;
}

static bool read_uint(const char *dir, const char *name, unsigned *ret) {
  _cleanup_free_ char *v = read_attr(dir, name);
  if (!v)
    return false;
  char *end;
  errno = 0;
  unsigned long x = strtoul(v, &end, 10);
  if (errno || end == v)
    return false;
  *ret = (unsigned)x;
  return true;
}

/* The last component of a symlink's target: a driver's or group's name. */
static char *link_name(const char *dir, const char *name) {
  _cleanup_free_ char *p = strjoin_path(dir, name);
  if (!p)
    return NULL;
  char buf[PATH_MAX];
  ssize_t n = readlink(p, buf, sizeof(buf) - 1);
  if (n < 0)
    return NULL;
  buf[n] = '\0';
  const char *slash = strrchr(buf, '/');
  char *last = strdup(slash ? slash + 1 : buf);
  defang(last);
  return last;
}

/* Sorted names in a directory (no dot files); an empty vector when it does not exist. */
static int list_dir(const char *path, char ***ret) {
  int r = readdir_sorted(path, READDIR_NO_HIDDEN, NULL, NULL, ret);
  if (r != -ENOENT && r != -ENOTDIR)
    return r;
  *ret = calloc(1, sizeof(char *));
  return *ret ? 0 : -ENOMEM;
}

/* One hex number of a resource line; the line's newline is not whitespace to skip (sscanf's
 * would take a missing column from the next line), and an overflow is not clamped. */
static bool resource_number(const char **p, unsigned long long *ret) {
  while (**p == ' ' || **p == '\t')
    (*p)++;
  if (!isxdigit((unsigned char)**p))
    return false;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(*p, &end, 16);
  if (errno != 0 || end == *p)
    return false;
  *p = end;
  *ret = v;
  return true;
}

int kgb_pci_parse_resource(const char *text, struct kgb_pci_bar bars[6], size_t *ret_n) {
  size_t n = 0;
  const char *line = text;
  for (unsigned idx = 0; idx < 6 && line && *line; idx++) {
    unsigned long long start, end, flags;
    const char *p = line;
    if (!resource_number(&p, &start) || !resource_number(&p, &end) || !resource_number(&p, &flags))
      return -EINVAL;
    while (*p == ' ' || *p == '\t' || *p == '\r')
      p++;
    if (*p != '\n' && *p != '\0')
      return -EINVAL;
    line = *p ? p + 1 : NULL;
    if (end == 0 && start == 0)
      continue;
    if (end < start || !(flags & (RES_MEM | RES_IO)))
      continue;
    /* its size, 2^64, has no uint64_t: no device decodes the whole address space */
    if (start == 0 && end == UINT64_MAX)
      return -ERANGE;
    bars[n++] = (struct kgb_pci_bar){.index = idx,
                                     .start = start,
                                     .size = end - start + 1,
                                     .is64 = (flags & RES_MEM_64) != 0,
                                     .prefetchable = (flags & RES_PREFETCH) != 0,
                                     .io = (flags & RES_IO) != 0};
  }
  *ret_n = n;
  return 0;
}

int kgb_pci_ids_lookup(const char *pci_ids, unsigned vendor, unsigned device, char **ret_vendor,
                       char **ret_device) {
  if (!pci_ids)
    return -ENOENT;
  int fd = open_regular_file(pci_ids, READ_TEXT_MAX, NULL);
  if (fd < 0)
    return fd;
  _cleanup_fclose_ FILE *f = fdopen(fd, "re");
  if (!f) {
    close(fd);
    return -ENOMEM;
  }
  char vid[8], did[8];
  snprintf(vid, sizeof(vid), "%04x", vendor);
  snprintf(did, sizeof(did), "%04x", device);
  _cleanup_free_ char *line = NULL, *vname = NULL;
  size_t cap = 0;
  ssize_t n;
  bool in_vendor = false;
  while ((n = getline(&line, &cap, f)) >= 0) {
    line[strcspn(line, "\r\n")] = '\0';
    if (line[0] == '#' || line[0] == '\0')
      continue;
    if (line[0] != '\t') {
      if (in_vendor)
        break;
      if (strncasecmp(line, vid, 4) == 0 && (line[4] == ' ' || line[4] == '\t')) {
        in_vendor = true;
        vname = strdup(strstrip(line + 4));
        if (!vname)
          return -ENOMEM;
      }
      continue;
    }
    if (in_vendor && line[1] != '\t' && strncasecmp(line + 1, did, 4) == 0 &&
        (line[5] == ' ' || line[5] == '\t')) {
      char *dname = strdup(strstrip(line + 5));
      if (!dname)
        return -ENOMEM;
      if (ret_vendor)
        *ret_vendor = TAKE_PTR(vname);
      if (ret_device)
        *ret_device = dname;
      else
        free(dname);
      return 0;
    }
  }
  if (vname && ret_vendor) {
    *ret_vendor = TAKE_PTR(vname);
    if (ret_device)
      *ret_device = NULL;
    return 0;
  }
  return -ENOENT;
}

static int read_mdev_types(const char *dev_path, struct kgb_pci_dev *d) {
  _cleanup_free_ char *dir = strjoin_path(dev_path, "mdev_supported_types");
  _cleanup_strv_free_ char **ids = NULL;
  if (!dir)
    return -ENOMEM;
  int r = list_dir(dir, &ids);
  if (r < 0)
    return r;
  size_t n = strv_length(ids);
  if (!n)
    return 0;
  d->mdev_types = calloc(n, sizeof(*d->mdev_types));
  if (!d->mdev_types)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    struct kgb_mdev_type *t = &d->mdev_types[d->n_mdev_types++];
    t->id = strdup(ids[i]);
    t->path = strjoin_path(dir, ids[i]);
    if (!t->id || !t->path)
      return -ENOMEM;
    defang(t->id); /* shown; the path keeps the real name */
    t->name = read_attr(t->path, "name");
    _cleanup_free_ char *p = strjoin_path(t->path, "description");
    if (p && read_full_file(p, &t->description, NULL) >= 0) {
      /* Several lines ("low_gm_size: 64MB\nhigh_gm_size: ..."): one line, comma-separated. */
      char *s = strstrip(t->description);
      memmove(t->description, s, strlen(s) + 1);
      for (char *c = t->description; *c; c++)
        if (*c == '\n')
          *c = ',';
      defang(t->description);
    }
    unsigned avail;
    t->available = read_uint(t->path, "available_instances", &avail) ? (long)avail : -1;
  }
  return 0;
}

int kgb_pci_read(struct kgb_ctx *ctx, const char *bdf, const char *pci_ids,
                 struct kgb_pci_dev *ret) {
  _cleanup_free_ char *devices = strjoin_path(ctx->sysfs, "bus/pci/devices");
  _cleanup_free_ char *path = devices ? strjoin_path(devices, bdf) : NULL;
  if (!path)
    return -ENOMEM;
  if (!is_dir(path))
    return kgb_error(ctx, -ENOENT, "no PCI device %s: '%s' does not exist", bdf, path);
  struct kgb_pci_dev d = {.iommu_group = -1};
  /* declared before the first goto: the cleanup tail must never see them uninitialised */
  _cleanup_free_ char *group = NULL, *res = NULL, *rtext = NULL;
  _cleanup_strv_free_ char **entries = NULL;
  int r = -ENOMEM;
  if (!(d.bdf = strdup(bdf)))
    goto fail;
  d.path = TAKE_PTR(path);
  if (!read_hex(d.path, "vendor", &d.vendor) || !read_hex(d.path, "device", &d.device) ||
      !read_hex(d.path, "class", &d.class_code)) {
    r = kgb_error(ctx, -EIO, "%s: cannot read its vendor, device and class files", d.path);
    goto fail;
  }
  d.driver = link_name(d.path, "driver");
  d.driver_override = read_attr(d.path, "driver_override");
  if (d.driver_override && (!*d.driver_override || STREQ(d.driver_override, "(null)"))) {
    free(d.driver_override);
    d.driver_override = NULL;
  }
  group = link_name(d.path, "iommu_group");
  if (group)
    d.iommu_group = atoi(group);
  res = strjoin_path(d.path, "resource");
  if (!res)
    goto fail;
  if (read_full_file(res, &rtext, NULL) >= 0 &&
      (r = kgb_pci_parse_resource(rtext, d.bars, &d.n_bars)) < 0) {
    r = kgb_error(ctx, -EINVAL, "%s: %s", res,
                  r == -ERANGE ? "a BAR spans the whole 64-bit address space"
                               : "not the format of a PCI resource file");
    goto fail;
  }
  d.sriov = read_uint(d.path, "sriov_totalvfs", &d.totalvfs);
  if (d.sriov)
    read_uint(d.path, "sriov_numvfs", &d.numvfs);
  d.physfn = link_name(d.path, "physfn");
  if ((r = list_dir(d.path, &entries)) < 0)
    goto fail;
  r = -ENOMEM;
  for (size_t i = 0; entries[i]; i++) {
    if (!startswith(entries[i], "virtfn"))
      continue;
    char *vf = link_name(d.path, entries[i]);
    if (vf && strv_push(&d.virtfns, vf) < 0)
      goto fail;
  }
  /* virtfn10 sorts before virtfn2 by name: sort the targets by address instead. */
  if (d.virtfns)
    strv_sort(d.virtfns);
  if ((r = read_mdev_types(d.path, &d)) < 0)
    goto fail;
  kgb_pci_ids_lookup(pci_ids, d.vendor, d.device, &d.vendor_name, &d.device_name);
  *ret = d;
  return 0;
fail:
  kgb_pci_dev_release(&d);
  return r;
}

int kgb_pci_scan(struct kgb_ctx *ctx, bool gpus_only, const char *pci_ids,
                 struct kgb_pci_list **ret) {
  _cleanup_free_ char *dir = strjoin_path(ctx->sysfs, "bus/pci/devices");
  if (!dir)
    return -ENOMEM;
  _cleanup_strv_free_ char **names = NULL;
  if (!is_dir(dir))
    return kgb_error(ctx, -ENOENT, "'%s' does not exist: is '%s' a sysfs tree?", dir, ctx->sysfs);
  int r = list_dir(dir, &names);
  if (r < 0)
    return kgb_error(ctx, r, "cannot list '%s': %s", dir, strerror(-r));
  _cleanup_(kgb_pci_list_freep) struct kgb_pci_list *l = calloc(1, sizeof(*l));
  if (!l || !(l->devs = calloc(strv_length(names) + 1, sizeof(*l->devs))))
    return -ENOMEM;
  for (size_t i = 0; names[i]; i++) {
    if (gpus_only) {
      _cleanup_free_ char *p = strjoin_path(dir, names[i]);
      unsigned cls = 0;
      if (!p)
        return -ENOMEM;
      if (!read_hex(p, "class", &cls) || (cls >> 16) != 0x03)
        continue;
    }
    r = kgb_pci_read(ctx, names[i], pci_ids, &l->devs[l->n]);
    if (r < 0)
      return r;
    l->n++;
  }
  *ret = TAKE_PTR(l);
  return 0;
}

int kgb_pci_group_devices(struct kgb_ctx *ctx, int group, char ***ret) {
  _cleanup_free_ char *dir =
      kgb_strdup_printf("%s/kernel/iommu_groups/%d/devices", ctx->sysfs, group);
  if (!dir)
    return -ENOMEM;
  return list_dir(dir, ret);
}

bool kgb_pci_is_gpu(const struct kgb_pci_dev *d) { return (d->class_code >> 16) == 0x03; }

bool kgb_pci_bar_is_large(const struct kgb_pci_bar *b) {
  return !b->io && b->is64 && b->size >= KGB_LARGE_BAR;
}

const struct kgb_pci_bar *kgb_pci_large_bar(const struct kgb_pci_dev *d) {
  const struct kgb_pci_bar *best = NULL;
  for (size_t i = 0; i < d->n_bars; i++)
    if (kgb_pci_bar_is_large(&d->bars[i]) && (!best || d->bars[i].size > best->size))
      best = &d->bars[i];
  return best;
}

char *kgb_format_size(uint64_t bytes) { return strdup(FORMAT_SIZE(bytes, FORMAT_SIZE_UNIT)); }

const char *kgb_pci_vendor_label(unsigned vendor) {
  switch (vendor) {
  case 0x10de:
    return "NVIDIA";
  case 0x8086:
    return "Intel";
  case 0x1002:
    return "AMD";
  case 0x1af4:
    return "virtio";
  default:
    return NULL;
  }
}

unsigned kgb_pci_vendor_id(const char *profile_vendor) {
  if (profile_vendor && STREQ(profile_vendor, "nvidia"))
    return 0x10de;
  if (profile_vendor && STREQ(profile_vendor, "intel"))
    return 0x8086;
  return 0;
}
