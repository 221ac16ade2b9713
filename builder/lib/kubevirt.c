/* permittedHostDevices for KubeVirt from this host's GPUs. */
#define _GNU_SOURCE
#include "kubevirt.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../shared/sbuf.h"
#include "../shared/util.h"
#include "mdev.h"
#include "pci.h"

char *kgb_kubevirt_pci_resource(const char *name) {
  struct sbuf sb = SBUF_INIT;
  sbuf_adds(&sb, "");
  const char *s = name;
  while (isspace((unsigned char)*s))
    s++;
  size_t len = strlen(s);
  while (len && isspace((unsigned char)s[len - 1]))
    len--;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (isspace(c)) {
      while (i + 1 < len && isspace((unsigned char)s[i + 1]))
        i++;
      sbuf_addc(&sb, '_');
    } else if (c == '/' || c == '.' || c == '_') {
      sbuf_addc(&sb, '_');
    } else if (isalnum(c)) {
      sbuf_addc(&sb, (char)toupper(c));
    }
  }
  return sbuf_steal(&sb);
}

char *kgb_kubevirt_mdev_resource(const char *name) {
  struct sbuf sb = SBUF_INIT;
  sbuf_adds(&sb, "");
  for (const char *c = name; *c; c++) {
    if (isspace((unsigned char)*c)) {
      while (isspace((unsigned char)c[1]))
        c++;
      sbuf_addc(&sb, '_');
    } else {
      sbuf_addc(&sb, *c);
    }
  }
  return sbuf_steal(&sb);
}

static void entries_free(struct kgb_kubevirt_entry *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(v[i].selector);
    free(v[i].resource);
    free(v[i].comment);
  }
  free(v);
}

static bool have(const struct kgb_kubevirt_entry *v, size_t n, const char *selector) {
  for (size_t i = 0; i < n; i++)
    if (STREQ(v[i].selector, selector))
      return true;
  return false;
}

static int push(struct kgb_kubevirt_entry **v, size_t *n, char *selector, char *resource,
                char *comment) {
  struct kgb_kubevirt_entry *nv = realloc(*v, (*n + 1) * sizeof(**v));
  if (!nv || !selector || !resource) {
    if (nv)
      *v = nv;
    free(selector);
    free(resource);
    free(comment);
    return -ENOMEM;
  }
  *v = nv;
  (*v)[(*n)++] = (struct kgb_kubevirt_entry){selector, resource, comment};
  return 0;
}

static const char *domain(unsigned vendor) { return vendor == 0x8086 ? "intel.com" : "nvidia.com"; }

struct kgb_kubevirt_plan *kgb_kubevirt_plan_free(struct kgb_kubevirt_plan *pl) {
  if (!pl)
    return NULL;
  free(pl->profile);
  entries_free(pl->entries, pl->n);
  free(pl);
  return NULL;
}

int kgb_kubevirt_plan(struct kgb_ctx *ctx, const struct kgb_profile *p,
                      const struct kgb_kubevirt_opts *o, struct kgb_kubevirt_plan **ret) {
  const char *host_mode = p->host.mode;
  if (STREQ(p->mode, "virgl") || (host_mode && STREQ(host_mode, "none")))
    return kgb_error(ctx, -EINVAL,
                     "profile '%s' passes no host device to the VM: KubeVirt has nothing to "
                     "permit",
                     p->name);
  bool mdev = host_mode ? !STREQ(host_mode, "passthrough")
                        : !(STREQ(p->mode, "passthrough") || STREQ(p->mode, "gvt-d"));
  unsigned want = kgb_pci_vendor_id(p->vendor);
  _cleanup_(kgb_pci_list_freep) struct kgb_pci_list *l = NULL;
  int r = kgb_pci_scan(ctx, true, o->pci_ids, &l);
  if (r < 0)
    return r;
  struct kgb_kubevirt_entry *v = NULL;
  size_t n = 0;
  size_t found = 0;
  struct kgb_mdev *mdevs = NULL;
  size_t n_mdevs = 0;
  if (mdev && (r = kgb_mdev_list(ctx, &mdevs, &n_mdevs)) < 0)
    return r;
  bool from_existing = false;
  for (size_t i = 0; i < l->n && r >= 0; i++) {
    const struct kgb_pci_dev *d = &l->devs[i];
    if (want && d->vendor != want)
      continue;
    found++;
    if (!mdev) {
      if (d->physfn)
        continue;
      char *sel = kgb_strdup_printf("%04X:%04X", d->vendor, d->device);
      if (!sel) {
        r = -ENOMEM;
        break;
      }
      if (have(v, n, sel)) {
        free(sel);
        continue;
      }
      _cleanup_free_ char *name = d->device_name ? kgb_kubevirt_pci_resource(d->device_name)
                                                 : kgb_strdup_printf("%04x", d->device);
      char *comment =
          d->device_name
              ? kgb_strdup_printf("%s %s", d->bdf, d->device_name)
              : kgb_strdup_printf("%s: %04x:%04x is not in %s%s%s: the device "
                                  "plugin then names it by its device ID",
                                  d->bdf, d->vendor, d->device,
                                  o->pci_ids ? "'" : "pci.ids (none found, see --pci-ids)",
                                  o->pci_ids ? o->pci_ids : "", o->pci_ids ? "'" : "");
      r = push(&v, &n, sel, name ? kgb_strdup_printf("%s/%s", domain(d->vendor), name) : NULL,
               comment);
      continue;
    }
    /* Mediated devices: the types of the vGPUs that exist, else every type offered. */
    for (size_t m = 0; m < n_mdevs; m++)
      if (mdevs[m].parent && STREQ(mdevs[m].parent, d->bdf))
        from_existing = true;
  }
  for (size_t i = 0; mdev && i < l->n && r >= 0; i++) {
    const struct kgb_pci_dev *d = &l->devs[i];
    if (want && d->vendor != want)
      continue;
    for (size_t t = 0; t < d->n_mdev_types && r >= 0; t++) {
      const struct kgb_mdev_type *mt = &d->mdev_types[t];
      bool used = false;
      for (size_t m = 0; m < n_mdevs; m++)
        used = used || (mdevs[m].parent && STREQ(mdevs[m].parent, d->bdf) && mdevs[m].type &&
                        STREQ(mdevs[m].type, mt->id));
      if (from_existing && !used)
        continue;
      const char *sel = mt->name ? mt->name : mt->id;
      if (have(v, n, sel))
        continue;
      _cleanup_free_ char *res = kgb_kubevirt_mdev_resource(sel);
      r = push(&v, &n, strdup(sel), res ? kgb_strdup_printf("%s/%s", domain(d->vendor), res) : NULL,
               kgb_strdup_printf("mdev type %s on %s%s%s", mt->id, d->bdf,
                                 mt->description ? ": " : "",
                                 mt->description ? mt->description : ""));
    }
  }
  for (size_t m = 0; m < n_mdevs; m++)
    kgb_mdev_release(&mdevs[m]);
  free(mdevs);
  if (r < 0) {
    entries_free(v, n);
    return r;
  }
  if (!found || !n) {
    entries_free(v, n);
    if (!found)
      return kgb_error(ctx, -ENOENT, "no %s GPU under '%s/bus/pci/devices': nothing to permit",
                       want ? kgb_pci_vendor_label(want) : "", ctx->sysfs);
    return kgb_error(ctx, -ENOENT,
                     "no %s GPU here offers mediated device types: create vGPUs first (see "
                     "'kata-gpu-builder host check -p %s')",
                     kgb_pci_vendor_label(want), p->name);
  }
  struct kgb_kubevirt_plan *pl = calloc(1, sizeof(*pl));
  if (!pl || !(pl->profile = strdup(p->name))) {
    free(pl);
    entries_free(v, n);
    return -ENOMEM;
  }
  pl->mdev = mdev;
  pl->from_existing = from_existing;
  pl->external_provider = o->external_provider;
  pl->entries = v;
  pl->n = n;
  *ret = pl;
  return 0;
}
