/* Host readiness (`host check`): the kernel's config and command line, the IOMMU, the GPUs and
 * their groups, mediated devices and MIG, each problem with its fix. Reads only below
 * ctx->sysfs, ctx->proc, ctx->boot and the dev root given by the caller, so that a fixture
 * tree stands in for a host. The steps that change the host are in host-bind.c and mdev.c. */
#define _GNU_SOURCE
#include "host.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../shared/sbuf.h"
#include "../shared/util.h"
#include "exec.h"
#include "ikconfig.h"
#include "sysfs.h"

/* ---- small helpers ---- */
static int add_problem(struct kgb_host_report *r, char *what, char *fix) {
  if (!what || !fix) {
    free(what);
    free(fix);
    return -ENOMEM;
  }
  struct kgb_host_problem *np = realloc(r->problems, (r->n_problems + 1) * sizeof(*np));
  if (!np) {
    free(what);
    free(fix);
    return -ENOMEM;
  }
  r->problems = np;
  r->problems[r->n_problems++] = (struct kgb_host_problem){what, fix};
  return 0;
}

static int add_note(struct kgb_host_report *r, char *note) {
  if (!note)
    return -ENOMEM;
  return strv_push(&r->notes, note);
}

/* ---- kernel config ---- */
/* A kernel's config is some 300 KiB; a gzip bomb given as <proc>/config.gz stops here. */
#define HOST_CONFIG_MAX ((size_t)64 << 20)

static int read_gzip(struct kgb_ctx *ctx, const char *path, char **ret) {
  _cleanup_free_ char *data = NULL;
  size_t len;
  int r = read_full_file(path, &data, &len);
  if (r < 0)
    return kgb_error(ctx, r, "cannot read '%s': %s", path,
                     file_error_reason(path, r, READ_TEXT_MAX));
  if (!kgb_compression_detect(data, len)) { /* a plain config under that name */
    *ret = TAKE_PTR(data);
    return 0;
  }
  _cleanup_free_ char *desc = kgb_strdup_printf("'%s'", path);
  if (!desc)
    return -ENOMEM;
  return kgb_decompress(ctx, desc, data, len, HOST_CONFIG_MAX, 0, ret, &len, NULL);
}

int kgb_host_kernel_config(struct kgb_ctx *ctx, const char *release, char **ret_text,
                           char **ret_source) {
  _cleanup_free_ char *boot =
      release ? kgb_strdup_printf("%s/config-%s", ctx->boot, release) : NULL;
  _cleanup_free_ char *gz = strjoin_path(ctx->proc, "config.gz");
  if (!gz || (release && !boot))
    return -ENOMEM;
  int r;
  if (boot && is_file(boot)) {
    r = read_full_file(boot, ret_text, NULL);
    if (r < 0)
      return kgb_error(ctx, r, "cannot read '%s': %s", boot,
                       file_error_reason(boot, r, READ_TEXT_MAX));
    *ret_source = TAKE_PTR(boot);
    return 0;
  }
  if (is_file(gz)) {
    r = read_gzip(ctx, gz, ret_text);
    if (r < 0)
      return r;
    *ret_source = TAKE_PTR(gz);
    return 0;
  }
  return -ENOENT;
}

char *kgb_host_config_value(const char *text, const char *symbol) {
  size_t sl = strlen(symbol);
  for (const char *line = text; line && *line;) {
    const char *nl = strchr(line, '\n');
    size_t len = nl ? (size_t)(nl - line) : strlen(line);
    if (len > sl && strncmp(line, symbol, sl) == 0 && line[sl] == '=') {
      char *v = strndup(line + sl + 1, len - sl - 1);
      if (v && STREQ(v, "n")) {
        free(v);
        return strdup("n");
      }
      return v;
    }
    line = nl ? nl + 1 : NULL;
  }
  return strdup("n");
}

/* Does the config know the symbol at all (set, or "is not set")? */
static bool config_mentions(const char *text, const char *symbol) {
  _cleanup_free_ char *a = kgb_strdup_printf("\n%s=", symbol);
  _cleanup_free_ char *b = kgb_strdup_printf("# %s is not set", symbol);
  return a && b && (strstr(text, a) || strstr(text, b) || startswith(text, a + 1));
}

static int add_symbol(struct kgb_host_report *r, const char *name, const char *text,
                      bool required) {
  for (size_t i = 0; i < r->n_symbols; i++)
    if (STREQ(r->symbols[i].name, name)) {
      r->symbols[i].required = r->symbols[i].required || required;
      return 0;
    }
  struct kgb_host_symbol *ns = realloc(r->symbols, (r->n_symbols + 1) * sizeof(*ns));
  if (!ns)
    return -ENOMEM;
  r->symbols = ns;
  struct kgb_host_symbol *s = &r->symbols[r->n_symbols];
  *s = (struct kgb_host_symbol){.name = strdup(name), .required = required};
  if (text)
    s->value = kgb_host_config_value(text, name);
  if (!s->name || (text && !s->value)) {
    free(s->name);
    free(s->value);
    return -ENOMEM;
  }
  r->n_symbols++;
  return 0;
}

/* ---- MIG through nvidia-smi ---- */
struct lines {
  char **v;
};

static void collect_line(void *userdata, const char *line) {
  struct lines *l = userdata;
  strv_extend(&l->v, line);
}

/* "00000000:D0:00.0" -> "0000:d0:00.0" */
static char *smi_bdf(const char *s) {
  unsigned dom, bus, dev, fn;
  if (sscanf(s, " %x:%x:%x.%x", &dom, &bus, &dev, &fn) != 4)
    return NULL;
  return kgb_strdup_printf("%04x:%02x:%02x.%x", dom & 0xffff, bus, dev, fn);
}

static int check_mig(struct kgb_ctx *ctx, struct kgb_host_report *r) {
  bool any = false;
  for (size_t i = 0; i < r->n_gpus; i++)
    any = any || r->gpus[i].dev.vendor == 0x10de;
  if (!any)
    return 0;
  struct lines q = {0}, list = {0};
  char *const query[] = {"nvidia-smi", "--query-gpu=index,pci.bus_id,mig.mode.current",
                         "--format=csv,noheader", NULL};
  struct kgb_exec_opts o = {.line_fn = collect_line, .userdata = &q};
  int st = kgb_exec(ctx, query, &o);
  if (st == -ENOENT) {
    kgb_error_clear(ctx);
    r->mig = strdup("cannot tell: nvidia-smi is not installed");
    strv_free(q.v);
    return r->mig ? 0 : -ENOMEM;
  }
  if (st != 0) {
    kgb_error_clear(ctx);
    r->mig = kgb_strdup_printf("cannot tell: nvidia-smi failed (%s%d)%s%s",
                               st < 0 ? "error " : "exit ", st < 0 ? -st : st,
                               q.v && q.v[0] ? ": " : "", q.v && q.v[0] ? q.v[0] : "");
    strv_free(q.v);
    return r->mig ? 0 : -ENOMEM;
  }
  char *const list_argv[] = {"nvidia-smi", "-L", NULL};
  o.userdata = &list;
  st = kgb_exec(ctx, list_argv, &o);
  if (st != 0)
    kgb_error_clear(ctx);
  /* Index -> MIG devices listed under "GPU <index>:" by nvidia-smi -L. */
  int counts[64] = {0};
  int cur = -1;
  for (size_t i = 0; list.v && list.v[i]; i++) {
    const char *l = list.v[i];
    int idx;
    if (sscanf(l, "GPU %d:", &idx) == 1)
      cur = idx >= 0 && idx < 64 ? idx : -1;
    else if (cur >= 0 && strstr(l, "MIG "))
      counts[cur]++;
  }
  for (size_t i = 0; q.v && q.v[i]; i++) {
    char *line = q.v[i];
    char *c1 = strchr(line, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
    if (!c2)
      continue;
    *c1 = *c2 = '\0';
    int idx = atoi(line);
    _cleanup_free_ char *bdf = smi_bdf(c1 + 1);
    char *mode = strstrip(c2 + 1);
    for (size_t g = 0; bdf && g < r->n_gpus; g++) {
      if (!STREQ(r->gpus[g].dev.bdf, bdf))
        continue;
      if (STREQ(mode, "Enabled") || STREQ(mode, "Disabled")) {
        r->gpus[g].mig_mode = strdup(mode);
        r->gpus[g].mig_instances = idx >= 0 && idx < 64 ? counts[idx] : 0;
      }
    }
  }
  strv_free(q.v);
  strv_free(list.v);
  r->mig = strdup("read with nvidia-smi");
  return r->mig ? 0 : -ENOMEM;
}

/* ---- the report ---- */
struct kgb_host_report *kgb_host_report_free(struct kgb_host_report *r) {
  if (!r)
    return NULL;
  free(r->profile);
  free(r->release);
  free(r->config_source);
  for (size_t i = 0; i < r->n_symbols; i++) {
    free(r->symbols[i].name);
    free(r->symbols[i].value);
  }
  free(r->symbols);
  free(r->cmdline);
  for (size_t i = 0; i < r->n_gpus; i++) {
    kgb_pci_dev_release(&r->gpus[i].dev);
    strv_free(r->gpus[i].group_members);
    free(r->gpus[i].vfio_dev);
    free(r->gpus[i].mig_mode);
  }
  free(r->gpus);
  for (size_t i = 0; i < r->n_mdevs; i++)
    kgb_mdev_release(&r->mdevs[i]);
  free(r->mdevs);
  free(r->mig);
  for (size_t i = 0; i < r->n_problems; i++) {
    free(r->problems[i].what);
    free(r->problems[i].fix);
  }
  free(r->problems);
  strv_free(r->notes);
  free(r);
  return NULL;
}

static bool has_token(const char *cmdline, const char *tok) {
  size_t tl = strlen(tok);
  for (const char *p = cmdline; p && *p;) {
    while (*p == ' ' || *p == '\t' || *p == '\n')
      p++;
    size_t l = strcspn(p, " \t\n");
    if (l == tl && strncmp(p, tok, tl) == 0)
      return true;
    p += l;
  }
  return false;
}

/* i915.enable_gvt=1 set another way: <sysfs>/module/i915/parameters/enable_gvt says Y or 1. */
static bool module_param_set(struct kgb_ctx *ctx, const char *tok) {
  const char *dot = strchr(tok, '.'), *eq = strchr(tok, '=');
  if (!dot || !eq || eq < dot)
    return false;
  _cleanup_free_ char *p = kgb_strdup_printf("%s/module/%.*s/parameters/%.*s", ctx->sysfs,
                                             (int)(dot - tok), tok, (int)(eq - dot - 1), dot + 1);
  _cleanup_free_ char *v = p ? read_first_line(p) : NULL;
  if (!v)
    return false;
  const char *want = eq + 1;
  return STREQ(v, want) || (STREQ(want, "1") && STREQ(v, "Y")) ||
         (STREQ(want, "0") && STREQ(v, "N"));
}

static const char *grub_hint =
    " to GRUB_CMDLINE_LINUX in /etc/default/grub, run update-grub (grub2-mkconfig -o "
    "/boot/grub2/grub.cfg on Fedora) and reboot";

static char *cpu_vendor(struct kgb_ctx *ctx) {
  _cleanup_free_ char *p = strjoin_path(ctx->proc, "cpuinfo"), *text = NULL;
  if (!p || read_full_file(p, &text, NULL) < 0)
    return NULL;
  char *v = strstr(text, "vendor_id");
  if (!v)
    return NULL;
  v = strchr(v, ':');
  if (!v)
    return NULL;
  v++;
  size_t l = strcspn(v, "\n");
  v[l] = '\0';
  return strdup(strstrip(v));
}

static int check_kernel(struct kgb_ctx *ctx, struct kgb_host_report *r, const struct kgb_profile *p,
                        const char *mode) {
  _cleanup_free_ char *text = NULL;
  int k = kgb_host_kernel_config(ctx, r->release, &text, &r->config_source);
  if (k < 0 && k != -ENOENT)
    return k;
  if (k == -ENOENT) {
    kgb_error_clear(ctx);
    int e =
        add_note(r, kgb_strdup_printf("cannot check the host kernel's options: neither "
                                      "'%s/config-%s' nor '%s/config.gz' exists",
                                      ctx->boot, r->release ? r->release : "RELEASE", ctx->proc));
    if (e < 0)
      return e;
  }
  bool none = mode && STREQ(mode, "none");
  _cleanup_strv_free_ char **req = NULL;
  bool s = p && p->host.has_kernel_config;
  for (size_t i = 0; s && p->host.kernel_config && p->host.kernel_config[i]; i++)
    if (strv_extend(&req, p->host.kernel_config[i]) < 0)
      return -ENOMEM;
  if (!p || (!s && !none)) {
    static const char *const base[] = {"CONFIG_VFIO", "CONFIG_VFIO_IOMMU_TYPE1", "CONFIG_VFIO_PCI"};
    for (size_t i = 0; i < ELEMENTSOF(base); i++)
      if (strv_extend(&req, base[i]) < 0)
        return -ENOMEM;
  }
  /* CONFIG_VFIO_MDEV_DEVICE was folded into CONFIG_VFIO_MDEV in Linux 5.13. */
  if (strv_contains(req, "CONFIG_VFIO_MDEV") && !strv_contains(req, "CONFIG_VFIO_MDEV_DEVICE") &&
      ((text && config_mentions(text, "CONFIG_VFIO_MDEV_DEVICE")) ||
       (r->release && version_compare(r->release, "5.13") < 0)))
    if (strv_extend(&req, "CONFIG_VFIO_MDEV_DEVICE") < 0)
      return -ENOMEM;
  for (size_t i = 0; req && req[i]; i++)
    if (add_symbol(r, req[i], text, true) < 0)
      return -ENOMEM;
  /* Shown for information: the VFIO options, and GVT-g's on a host with an Intel GPU. */
  bool intel = false;
  for (size_t i = 0; i < r->n_gpus; i++)
    intel = intel || r->gpus[i].dev.vendor == 0x8086;
  static const char *const shown[] = {"CONFIG_VFIO",         "CONFIG_VFIO_IOMMU_TYPE1",
                                      "CONFIG_VFIO_PCI",     "CONFIG_VFIO_MDEV",
                                      "CONFIG_DRM_I915_GVT", "CONFIG_DRM_I915_GVT_KVMGT"};
  for (size_t i = 0; i < ELEMENTSOF(shown); i++)
    if ((intel || !strstr(shown[i], "I915")) && add_symbol(r, shown[i], text, false) < 0)
      return -ENOMEM;
  for (size_t i = 0; text && i < r->n_symbols; i++) {
    const struct kgb_host_symbol *sym = &r->symbols[i];
    if (!sym->required || !STREQ(sym->value, "n"))
      continue;
    int e = add_problem(
        r,
        kgb_strdup_printf("the host kernel lacks %s (not set in %s)", sym->name, r->config_source),
        kgb_strdup_printf("use a host kernel built with %s=m (add the line to its "
                          ".config and rebuild), or a distribution kernel that "
                          "has it",
                          sym->name));
    if (e < 0)
      return e;
  }
  return 0;
}

static int check_cmdline(struct kgb_ctx *ctx, struct kgb_host_report *r,
                         const struct kgb_profile *p, const char *mode) {
  _cleanup_free_ char *path = strjoin_path(ctx->proc, "cmdline");
  if (!path)
    return -ENOMEM;
  r->cmdline = read_first_line(path);
  if (!r->cmdline && !(r->cmdline = strdup("")))
    return -ENOMEM;
  _cleanup_free_ char *groups = strjoin_path(ctx->sysfs, "kernel/iommu_groups");
  DIR *d = groups ? opendir(groups) : NULL;
  if (d) {
    struct dirent *de;
    while ((de = readdir(d)))
      if (de->d_name[0] != '.')
        r->iommu_groups++;
    closedir(d);
  }
  r->iommu_enabled = r->iommu_groups > 0;
  if (mode && STREQ(mode, "none"))
    return 0;
  _cleanup_free_ char *vendor = cpu_vendor(ctx);
  bool amd = vendor && STREQ(vendor, "AuthenticAMD");
  const char *param = amd ? "amd_iommu=on" : "intel_iommu=on";
  int e = 0;
  if (!r->iommu_enabled) {
    bool on = has_token(r->cmdline, "intel_iommu=on") || has_token(r->cmdline, "amd_iommu=on");
    if (on)
      e = add_problem(r,
                      kgb_strdup_printf("the IOMMU is not active: '%s' has no groups although the "
                                        "command line has %s",
                                        groups, param),
                      kgb_strdup_printf("enable %s in the firmware setup and reboot",
                                        amd ? "AMD-Vi (IOMMU)" : "VT-d"));
    else
      e = add_problem(r,
                      kgb_strdup_printf("the IOMMU is not active: no groups under '%s' and no %s "
                                        "on the kernel command line",
                                        groups, param),
                      kgb_strdup_printf("add %s%s; enable %s in the firmware setup", param,
                                        grub_hint, amd ? "AMD-Vi" : "VT-d"));
    if (e < 0)
      return e;
  } else if (!has_token(r->cmdline, "iommu=pt")) {
    e = add_note(r, kgb_strdup_printf("iommu=pt is not on the command line: host devices that "
                                      "stay with the host then go through the IOMMU too (add "
                                      "iommu=pt%s)",
                                      grub_hint));
    if (e < 0)
      return e;
  }
  char *const *cmdline = p ? p->host.cmdline : NULL;
  for (size_t i = 0; cmdline && cmdline[i]; i++) {
    const char *tok = cmdline[i];
    /* The IOMMU switch is judged by the groups above: it may be on by default. */
    if (STREQ(tok, "intel_iommu=on") || STREQ(tok, "amd_iommu=on") || has_token(r->cmdline, tok) ||
        module_param_set(ctx, tok))
      continue;
    e = add_problem(r,
                    kgb_strdup_printf("'%s' is not on the kernel command line (profile '%s' "
                                      "needs it)",
                                      tok, p->name),
                    kgb_strdup_printf("add %s%s", tok, grub_hint));
    if (e < 0)
      return e;
  }
  return 0;
}

static int read_gpus(struct kgb_ctx *ctx, struct kgb_host_report *r, const char *dev_root,
                     const char *pci_ids) {
  _cleanup_(kgb_pci_list_freep) struct kgb_pci_list *l = NULL;
  int e = kgb_pci_scan(ctx, true, pci_ids, &l);
  if (e < 0)
    return e;
  r->gpus = calloc(l->n + 1, sizeof(*r->gpus));
  if (!r->gpus)
    return -ENOMEM;
  for (size_t i = 0; i < l->n; i++) {
    struct kgb_host_gpu *g = &r->gpus[r->n_gpus++];
    g->dev = l->devs[i];
    l->devs[i] = (struct kgb_pci_dev){0};
    g->mig_instances = -1;
    if (g->dev.iommu_group < 0)
      continue;
    _cleanup_strv_free_ char **members = NULL;
    if ((e = kgb_pci_group_devices(ctx, g->dev.iommu_group, &members)) < 0)
      return e;
    for (size_t m = 0; members[m]; m++)
      if (!STREQ(members[m], g->dev.bdf) && (e = strv_extend(&g->group_members, members[m])) < 0)
        return e;
    g->vfio_dev = kgb_strdup_printf("%s/vfio/%d", dev_root, g->dev.iommu_group);
    if (!g->vfio_dev)
      return -ENOMEM;
    g->vfio_dev_present = access(g->vfio_dev, F_OK) == 0;
  }
  return 0;
}

/* Problems of one GPU's IOMMU group: members that are neither GPUs nor bridges and that a
 * host driver still holds. */
static int check_group(struct kgb_ctx *ctx, struct kgb_host_report *r,
                       const struct kgb_host_gpu *g) {
  struct sbuf who = SBUF_INIT, fix = SBUF_INIT;
  size_t n = 0;
  for (size_t m = 0; g->group_members && g->group_members[m]; m++) {
    const char *bdf = g->group_members[m];
    unsigned cls = kgb_sysfs_pci_class(ctx, bdf);
    if ((cls >> 16) == 0x03 || (cls >> 8) == 0x0604)
      continue;
    _cleanup_free_ char *drv = kgb_sysfs_pci_driver(ctx, bdf);
    if (drv && STREQ(drv, "vfio-pci"))
      continue;
    sbuf_addf(&who, "%s%s (class 0x%06x, %s%s)", n ? ", " : "", bdf, cls,
              drv ? "bound to " : "no driver", drv ? drv : "");
    sbuf_addf(&fix, "%skata-gpu-builder host bind %s", n ? "; " : "", bdf);
    n++;
  }
  int e = 0;
  if (n)
    e = add_problem(r,
                    who.err || fix.err
                        ? NULL
                        : kgb_strdup_printf("IOMMU group %d of %s is shared with %s: the whole "
                                            "group goes to the VM",
                                            g->dev.iommu_group, g->dev.bdf, sbuf_str(&who)),
                    kgb_strdup_printf("%s (the container then gets all of /dev/vfio/%d), or put "
                                      "the GPU in a slot with its own IOMMU group",
                                      sbuf_str(&fix), g->dev.iommu_group));
  sbuf_release(&who);
  sbuf_release(&fix);
  return e;
}

static int check_passthrough(struct kgb_ctx *ctx, struct kgb_host_report *r,
                             const struct kgb_host_gpu *g) {
  int e = check_group(ctx, r, g);
  if (e < 0 || g->dev.iommu_group < 0)
    return e;
  if (!g->dev.driver || !STREQ(g->dev.driver, "vfio-pci"))
    e = add_problem(r,
                    kgb_strdup_printf("%s is %s%s, not to vfio-pci", g->dev.bdf,
                                      g->dev.driver ? "bound to " : "not bound to any driver",
                                      g->dev.driver ? g->dev.driver : ""),
                    kgb_strdup_printf("kata-gpu-builder host bind %s", g->dev.bdf));
  else if (!g->vfio_dev_present)
    e = add_problem(r,
                    kgb_strdup_printf("%s is bound to vfio-pci but '%s' does not exist", g->dev.bdf,
                                      g->vfio_dev),
                    strdup("load the VFIO modules (modprobe vfio-pci) and check that devtmpfs "
                           "is mounted on /dev"));
  if (e >= 0) {
    const struct kgb_pci_bar *b = kgb_pci_large_bar(&g->dev);
    if (b) {
      _cleanup_free_ char *sz = kgb_format_size(b->size);
      e = add_note(r, kgb_strdup_printf("%s has a %s 64-bit BAR: the guest needs q35 with PCIe "
                                        "root ports ('kata-config' sets them), and the firmware "
                                        "must map MMIO above 4 GiB ('Above 4G Decoding')",
                                        g->dev.bdf, sz ? sz : "large"));
    }
  }
  return e;
}

static const struct kgb_host_gpu *find_gpu(const struct kgb_host_report *r, const char *bdf) {
  for (size_t i = 0; i < r->n_gpus; i++)
    if (STREQ(r->gpus[i].dev.bdf, bdf))
      return &r->gpus[i];
  return NULL;
}

static int check_mdev(struct kgb_ctx *ctx, struct kgb_host_report *r, const struct kgb_profile *p,
                      const struct kgb_host_gpu *const *mine, size_t n_mine) {
  (void)ctx;
  const struct kgb_mdev_type *avail = NULL;
  const char *avail_parent = NULL;
  bool any_types = false;
  for (size_t i = 0; i < n_mine; i++)
    for (size_t t = 0; t < mine[i]->dev.n_mdev_types; t++) {
      any_types = true;
      if (!avail && mine[i]->dev.mdev_types[t].available > 0) {
        avail = &mine[i]->dev.mdev_types[t];
        avail_parent = mine[i]->dev.bdf;
      }
    }
  bool intel = STREQ(p->vendor, "intel");
  int e = 0;
  if (!any_types) {
    const struct kgb_host_gpu *pf = NULL;
    for (size_t i = 0; i < n_mine && !pf; i++)
      if (mine[i]->dev.sriov && mine[i]->dev.numvfs == 0)
        pf = mine[i];
    if (intel)
      e = add_problem(
          r, kgb_strdup_printf("%s offers no mediated device types (GVT-g)", mine[0]->dev.bdf),
          kgb_strdup_printf("boot with i915.enable_gvt=1%s, then load kvmgt "
                            "(modprobe kvmgt); GVT-g needs a 5th to 10th "
                            "generation Intel Core GPU",
                            grub_hint));
    else if (pf)
      e = add_problem(
          r,
          kgb_strdup_printf("%s has SR-IOV with no virtual function enabled: vGPUs live on VFs",
                            pf->dev.bdf),
          kgb_strdup_printf("/usr/lib/nvidia/sriov-manage -e %s", pf->dev.bdf));
    else
      e = add_problem(r, kgb_strdup_printf("no NVIDIA GPU offers mediated device (vGPU) types"),
                      strdup("install the NVIDIA vGPU manager (the host vGPU driver) for this "
                             "GPU and reboot"));
    return e;
  }
  /* Existing mediated devices on these GPUs. */
  size_t mine_mdevs = 0;
  for (size_t i = 0; i < r->n_mdevs && e >= 0; i++) {
    const struct kgb_mdev *m = &r->mdevs[i];
    bool ours = false;
    for (size_t k = 0; k < n_mine; k++)
      ours = ours || STREQ(mine[k]->dev.bdf, m->parent);
    if (!ours)
      continue;
    mine_mdevs++;
    if (m->iommu_group < 0)
      e = add_problem(r, kgb_strdup_printf("mediated device %s has no IOMMU group", m->uuid),
                      strdup("load vfio_mdev and the vendor's mdev driver (modprobe vfio_mdev "
                             "kvmgt, or the NVIDIA vGPU manager), then recreate the device"));
  }
  if (e >= 0 && !mine_mdevs) {
    if (avail)
      e = add_problem(r,
                      kgb_strdup_printf(
                          "no %s exists yet on this host (%s offers type %s%s%s%s, %ld available)",
                          intel ? "GVT-g vGPU" : "vGPU", avail_parent, avail->id,
                          avail->name ? " \"" : "", avail->name ? avail->name : "",
                          avail->name ? "\"" : "", avail->available),
                      kgb_strdup_printf("kata-gpu-builder host mdev create %s --parent %s",
                                        avail->id, avail_parent));
    else
      e = add_problem(r, strdup("every mediated device type has 0 available instances"),
                      strdup("remove a vGPU that is no longer used (kata-gpu-builder host mdev "
                             "list; kata-gpu-builder host mdev remove UUID)"));
  }
  return e;
}

static int check_mig_mode(struct kgb_host_report *r, const char *mode,
                          const struct kgb_host_gpu *const *mine, size_t n_mine) {
  int e = 0;
  for (size_t i = 0; i < n_mine && e >= 0; i++) {
    const struct kgb_host_gpu *g = mine[i];
    if (g->dev.physfn)
      continue;
    if (!g->mig_mode) {
      if (STREQ(mode, "mig"))
        e = add_note(r, kgb_strdup_printf("cannot tell whether MIG is enabled on %s (%s)",
                                          g->dev.bdf, r->mig ? r->mig : "no nvidia-smi"));
      continue;
    }
    bool on = STREQ(g->mig_mode, "Enabled");
    if (STREQ(mode, "mig") && !on)
      e = add_problem(r, kgb_strdup_printf("MIG is disabled on %s", g->dev.bdf),
                      kgb_strdup_printf("nvidia-smi -i %s -mig 1, reset the GPU (nvidia-smi "
                                        "--gpu-reset) or reboot, then create GPU instances "
                                        "(nvidia-smi mig -cgi PROFILE -C)",
                                        g->dev.bdf));
    else if (STREQ(mode, "mig") && g->mig_instances == 0)
      e = add_problem(
          r, kgb_strdup_printf("MIG is enabled on %s but it has no GPU instance", g->dev.bdf),
          kgb_strdup_printf("nvidia-smi mig -i %s -lgip lists the profiles; "
                            "nvidia-smi mig -i %s -cgi PROFILE -C creates one",
                            g->dev.bdf, g->dev.bdf));
    else if (STREQ(mode, "mdev") && on)
      e = add_problem(
          r, kgb_strdup_printf("MIG is enabled on %s: time-sliced vGPUs need it off", g->dev.bdf),
          kgb_strdup_printf("nvidia-smi -i %s -mig 0", g->dev.bdf));
  }
  return e;
}

static bool is_render_node(_unused_ int dir_fd, const char *name, _unused_ void *userdata) {
  return startswith(name, "renderD");
}

static int check_render_node(struct kgb_host_report *r, const char *dev_root) {
  _cleanup_free_ char *dri = strjoin_path(dev_root, "dri");
  _cleanup_strv_free_ char **nodes = NULL;
  _cleanup_free_ char *found = NULL;
  /* the first by name: the same host gives the same report */
  if (dri && readdir_sorted(dri, 0, is_render_node, NULL, &nodes) >= 0 && nodes[0])
    found = kgb_strdup_printf("%s/%s", dri, nodes[0]);
  if (found)
    return add_note(r, kgb_strdup_printf("virgl renders on the host through %s", found));
  return add_note(r, kgb_strdup_printf("no DRM render node under '%s': virglrenderer falls back "
                                       "to software rendering without a host GPU driver",
                                       dri ? dri : "dri"));
}

int kgb_host_check(struct kgb_ctx *ctx, const struct kgb_host_opts *opts,
                   struct kgb_host_report **ret) {
  _cleanup_(kgb_host_report_freep) struct kgb_host_report *r = calloc(1, sizeof(*r));
  if (!r)
    return -ENOMEM;
  const struct kgb_profile *p = opts->profile;
  const char *dev_root = opts->dev_root ? opts->dev_root : "/dev";
  const char *mode = NULL;
  if (p) {
    if (!(r->profile = strdup(p->name)))
      return -ENOMEM;
    mode = p->host.mode ? p->host.mode : STREQ(p->mode, "virgl") ? "none" : "passthrough";
  }
  _cleanup_free_ char *osrel = strjoin_path(ctx->proc, "sys/kernel/osrelease");
  if (!osrel)
    return -ENOMEM;
  r->release = read_first_line(osrel);
  int e = 0;
  if (!r->release)
    e = add_note(r, kgb_strdup_printf("cannot read '%s': the kernel release is unknown", osrel));
  if (e < 0 || (e = read_gpus(ctx, r, dev_root, opts->pci_ids)) < 0 ||
      (e = check_kernel(ctx, r, p, mode)) < 0 || (e = check_cmdline(ctx, r, p, mode)) < 0 ||
      (e = kgb_mdev_list(ctx, &r->mdevs, &r->n_mdevs)) < 0 || (e = check_mig(ctx, r)) < 0)
    return e;
  if (mode && STREQ(mode, "none")) {
    if ((e = check_render_node(r, dev_root)) < 0)
      return e;
  } else {
    unsigned want = p ? kgb_pci_vendor_id(p->vendor) : 0;
    _cleanup_free_ const struct kgb_host_gpu **mine = calloc(r->n_gpus + 1, sizeof(*mine));
    size_t n_mine = 0;
    if (!mine)
      return -ENOMEM;
    for (size_t i = 0; i < r->n_gpus; i++)
      if (!want || r->gpus[i].dev.vendor == want)
        mine[n_mine++] = &r->gpus[i];
    if (!r->n_gpus) {
      _cleanup_free_ char *dir = strjoin_path(ctx->sysfs, "bus/pci/devices");
      e = add_problem(r,
                      kgb_strdup_printf("no GPU (PCI class 0x03) under '%s': nothing to pass "
                                        "to a VM",
                                        dir),
                      strdup("run on a host with a GPU, or use the 'virgl' profile, which needs "
                             "none"));
    } else if (!n_mine) {
      struct sbuf sb = SBUF_INIT;
      for (size_t i = 0; i < r->n_gpus; i++)
        sbuf_addf(&sb, "%s%s (%04x:%04x)", i ? ", " : "", r->gpus[i].dev.bdf, r->gpus[i].dev.vendor,
                  r->gpus[i].dev.device);
      e = add_problem(r,
                      sb.err ? NULL
                             : kgb_strdup_printf("no %s GPU (vendor %04x) on this host; it has %s",
                                                 kgb_pci_vendor_label(want), want, sbuf_str(&sb)),
                      strdup("use a profile for this host's GPU ('kata-gpu-builder profiles' "
                             "lists them)"));
      sbuf_release(&sb);
    } else if (!p) {
      for (size_t i = 0; i < n_mine && e >= 0; i++)
        e = check_group(ctx, r, mine[i]);
    } else if (STREQ(mode, "passthrough")) {
      for (size_t i = 0; i < n_mine && e >= 0; i++)
        if (!mine[i]->dev.physfn)
          e = check_passthrough(ctx, r, mine[i]);
    } else {
      if (STREQ(p->vendor, "nvidia") && (e = check_mig_mode(r, mode, mine, n_mine)) < 0)
        return e;
      e = check_mdev(ctx, r, p, mine, n_mine);
      for (size_t i = 0; i < r->n_mdevs && e >= 0; i++) {
        const struct kgb_mdev *m = &r->mdevs[i];
        _cleanup_free_ char *node = kgb_strdup_printf("%s/vfio/%d", dev_root, m->iommu_group);
        if (!node)
          return -ENOMEM;
        if (m->iommu_group >= 0 && find_gpu(r, m->parent) && access(node, F_OK) < 0)
          e = add_problem(r,
                          kgb_strdup_printf("mediated device %s is in IOMMU group %d but '%s' "
                                            "does not exist",
                                            m->uuid, m->iommu_group, node),
                          strdup("load the VFIO modules (modprobe vfio_mdev vfio_iommu_type1) "
                                 "and check that devtmpfs is mounted on /dev"));
      }
    }
    if (e < 0)
      return e;
  }
  r->ready = r->n_problems == 0;
  *ret = TAKE_PTR(r);
  return 0;
}
