/* Which configuration.toml keys a profile needs for a Kata version and this host, and why;
 * rendering them as TOML, writing a drop-in, patching a configuration.toml in place. The host
 * decides the VFIO topology from the GPUs' BARs (REFERENCE.md: large BARs fail behind a PCI
 * bridge and need q35 with PCIe root ports). */
#define _GNU_SOURCE
#include "kata-config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../shared/sbuf.h"
#include "../shared/util.h"
#include "kata-effective.h"
#include "kata-names.h"
#include "kata-releases.h"
#include "pci.h"
#include "toml.h"

#define HV "hypervisor.qemu"
#define AGENT "agent.kata"
#define RUNTIME "runtime"
#define MAX_ROOT_PORTS 16 /* Kata's upper bound for pcie_root_port */

struct kgb_kata_plan *kgb_kata_plan_free(struct kgb_kata_plan *p) {
  if (!p)
    return NULL;
  free(p->profile);
  free(p->version);
  strv_free(p->header);
  strv_free(p->gpus);
  free(p->large_bar);
  free(p->qemu.machine_type);
  free(p->qemu.kernel_params);
  for (size_t i = 0; i < p->n_settings; i++) {
    free(p->settings[i].key);
    free(p->settings[i].value);
    free(p->settings[i].why);
  }
  free(p->settings);
  for (size_t i = 0; i < p->n_lost; i++) {
    free(p->lost[i].key);
    free(p->lost[i].why);
  }
  free(p->lost);
  kgb_kata_effective_free(p->effective);
  free(p);
  return NULL;
}

/* ---- building the plan ---- */
static int add_header(struct kgb_kata_plan *plan, char *line);

/* A setting the release cannot express: what it would have done, for the error (or the
 * warning with --allow-loss). Takes why. */
static int lose(struct kgb_kata_plan *plan, const char *table, const char *key, char *why) {
  struct kgb_kata_setting *n = realloc(plan->lost, (plan->n_lost + 1) * sizeof(*plan->lost));
  if (!n || !why) {
    free(why);
    return -ENOMEM;
  }
  plan->lost = n;
  char *k = strdup(key);
  if (!k) {
    free(why);
    return -ENOMEM;
  }
  plan->lost[plan->n_lost++] = (struct kgb_kata_setting){.table = table, .key = k, .why = why};
  return 0;
}

/* Adds a setting when the release's runtime reads the key. Otherwise the setting is lost
 * (unless_missing NULL), or nothing is lost and unless_missing says why in the header. Takes
 * value and why. */
static int add_if_known(struct kgb_kata_plan *plan, const char *table, const char *key, char *value,
                        char *why, const char *unless_missing);

static int add(struct kgb_kata_plan *plan, const char *table, const char *key, char *value,
               char *why) {
  return add_if_known(plan, table, key, value, why, NULL);
}

/* Adds a setting whatever the release reads (the experimental virgl keys). */
static int add_any(struct kgb_kata_plan *plan, const char *table, const char *key, char *value,
                   char *why) {
  if (!value || !why) {
    free(value);
    free(why);
    return -ENOMEM;
  }
  struct kgb_kata_setting *n =
      realloc(plan->settings, (plan->n_settings + 1) * sizeof(*plan->settings));
  if (n)
    plan->settings = n;
  char *k = n ? strdup(key) : NULL;
  if (!k) {
    free(value);
    free(why);
    return -ENOMEM;
  }
  plan->settings[plan->n_settings++] =
      (struct kgb_kata_setting){.table = table, .key = k, .value = value, .why = why};
  return 0;
}

static int add_if_known(struct kgb_kata_plan *plan, const char *table, const char *key, char *value,
                        char *why, const char *unless_missing) {
  if (kgb_kata_release_has_key(&plan->release, table, key))
    return add_any(plan, table, key, value, why);
  free(value);
  if (!unless_missing)
    return lose(plan, table, key, why);
  free(why);
  return add_header(plan, kgb_strdup_printf("Kata %s (%s) has no %s: %s", plan->version,
                                            kgb_kata_runtime_label(plan->release.runtime), key,
                                            unless_missing));
}

static char *str_value(const char *s) { return kgb_toml_quote(s); }
static char *int_value(long long v) { return kgb_strdup_printf("%lld", v); }
static char *bool_value(bool v) { return strdup(v ? "true" : "false"); }

static char *strv_value(char *const *v) {
  struct sbuf sb = SBUF_INIT;
  sbuf_addc(&sb, '[');
  for (size_t i = 0; v && v[i]; i++) {
    _cleanup_free_ char *q = kgb_toml_quote(v[i]);
    if (!q) { /* not "": a module list missing one would be a wrong setting, not a short one */
      sbuf_release(&sb);
      return NULL;
    }
    sbuf_addf(&sb, "%s%s", i ? ", " : "", q);
  }
  sbuf_addc(&sb, ']');
  return sbuf_steal(&sb);
}

static int add_header(struct kgb_kata_plan *plan, char *line) {
  if (!line)
    return -ENOMEM;
  return strv_push(&plan->header, line);
}

/* The GPUs that decide the topology: the vendor's, or the one --gpu names. */
struct host {
  struct kgb_pci_list *list;
  const struct kgb_pci_dev **gpus;
  size_t n_gpus;      /* every function considered (VFs included) */
  size_t n_physical;  /* GPUs as the count of root ports sees them: physical functions */
  size_t n_functions; /* PCIe functions in their IOMMU groups, bridges left out: Kata gives
                       * each its own root port */
  const struct kgb_pci_dev *large;
  const struct kgb_pci_bar *large_bar;
};

static void host_release(struct host *h) {
  kgb_pci_list_free(h->list);
  free(h->gpus);
}

/* Kata plugs every PCIe function of a device's IOMMU group (a GPU and its audio function) into
 * a root port of its own (qemu.go, GetAllVFIODevicesFromIOMMUGroup); bridges are not plugged.
 * Each group is counted once; a device without a group counts as itself. */
static int count_group_functions(struct kgb_ctx *ctx, const struct kgb_pci_dev *d, int *groups,
                                 size_t *n_groups, struct host *h) {
  if (d->iommu_group < 0) {
    h->n_functions++;
    return 0;
  }
  for (size_t i = 0; i < *n_groups; i++)
    if (groups[i] == d->iommu_group)
      return 0;
  groups[(*n_groups)++] = d->iommu_group;
  _cleanup_strv_free_ char **devs = NULL;
  int r = kgb_pci_group_devices(ctx, d->iommu_group, &devs);
  if (r < 0 || !devs || !devs[0]) {
    h->n_functions++; /* unreadable: the GPU itself */
    return r == -ENOMEM ? r : 0;
  }
  for (size_t i = 0; devs[i]; i++) {
    struct kgb_pci_dev f = {0};
    if (kgb_pci_read(ctx, devs[i], NULL, &f) < 0) {
      kgb_error_clear(ctx);
      h->n_functions++;
      continue;
    }
    if ((f.class_code >> 8) != 0x0604) /* PCI-to-PCI bridge */
      h->n_functions++;
    kgb_pci_dev_release(&f);
  }
  return 0;
}

static int read_host(struct kgb_ctx *ctx, const struct kgb_profile *p,
                     const struct kgb_kata_opts *o, struct host *h) {
  int r = kgb_pci_scan(ctx, true, NULL, &h->list);
  if (r < 0)
    return r;
  h->gpus = calloc(h->list->n + 1, sizeof(*h->gpus));
  if (!h->gpus)
    return -ENOMEM;
  unsigned want = kgb_pci_vendor_id(p->vendor);
  _cleanup_free_ char *bdf = NULL;
  if (o->gpu) {
    if ((r = kgb_pci_bdf_normalize(ctx, o->gpu, &bdf)) < 0)
      return r;
    const struct kgb_pci_dev *d = NULL;
    for (size_t i = 0; i < h->list->n && !d; i++)
      if (STREQ(h->list->devs[i].bdf, bdf))
        d = &h->list->devs[i];
    if (!d) {
      struct kgb_pci_dev any = {0};
      r = kgb_pci_read(ctx, bdf, NULL, &any);
      if (r < 0)
        return r;
      unsigned cls = any.class_code;
      kgb_pci_dev_release(&any);
      return kgb_error(ctx, -EINVAL, "--gpu %s: class 0x%06x is not a display controller (0x03)",
                       bdf, cls);
    }
    if (want && d->vendor != want)
      return kgb_error(ctx, -EINVAL, "--gpu %s: vendor %04x is not %s's (%04x), for profile '%s'",
                       bdf, d->vendor, kgb_pci_vendor_label(want), want, p->name);
    h->gpus[h->n_gpus++] = d;
  } else {
    for (size_t i = 0; i < h->list->n; i++)
      if (!want || h->list->devs[i].vendor == want)
        h->gpus[h->n_gpus++] = &h->list->devs[i];
  }
  _cleanup_free_ int *groups = calloc(h->n_gpus + 1, sizeof(int));
  size_t n_groups = 0;
  if (!groups)
    return -ENOMEM;
  for (size_t i = 0; i < h->n_gpus; i++) {
    const struct kgb_pci_dev *d = h->gpus[i];
    if (!d->physfn)
      h->n_physical++;
    if (!d->physfn && (r = count_group_functions(ctx, d, groups, &n_groups, h)) < 0)
      return r;
    const struct kgb_pci_bar *b = kgb_pci_large_bar(d);
    if (b && (!h->large_bar || b->size > h->large_bar->size)) {
      h->large = d;
      h->large_bar = b;
    }
  }
  return 0;
}

static const char *profile_label(const struct kgb_profile *p) {
  unsigned id = kgb_pci_vendor_id(p->vendor);
  return id ? kgb_pci_vendor_label(id) : p->vendor;
}

static int plan_host_header(struct kgb_kata_plan *plan, const struct kgb_profile *p,
                            const struct host *h) {
  unsigned want = kgb_pci_vendor_id(p->vendor);
  if (!h->n_gpus)
    return add_header(plan, kgb_strdup_printf("Host: no %s GPU (PCI class 0x03, vendor %04x) "
                                              "found: the profile's defaults",
                                              profile_label(p), want));
  struct sbuf sb = SBUF_INIT;
  size_t vfs = 0;
  for (size_t i = 0; i < h->n_gpus; i++) {
    const struct kgb_pci_dev *d = h->gpus[i];
    if (strv_extend(&plan->gpus, d->bdf) < 0) {
      sbuf_release(&sb);
      return -ENOMEM;
    }
    if (d->physfn) {
      vfs++;
      continue;
    }
    const struct kgb_pci_bar *b = kgb_pci_large_bar(d);
    _cleanup_free_ char *sz = b ? kgb_format_size(b->size) : NULL;
    sbuf_addf(&sb, "%s%s (%04x:%04x%s%s%s)", sb.len ? ", " : "", d->bdf, d->vendor, d->device,
              b ? ", " : "", b && sz ? sz : "", b ? " 64-bit BAR" : "");
  }
  if (vfs)
    sbuf_addf(&sb, "%s%zu virtual function%s", sb.len ? ", and " : "", vfs, vfs == 1 ? "" : "s");
  int r =
      add_header(plan, sb.err ? NULL
                              : kgb_strdup_printf("Host: %s GPU%s %s", profile_label(p),
                                                  h->n_physical == 1 ? "" : "s", sbuf_str(&sb)));
  sbuf_release(&sb);
  return r;
}

/* pcie_root_port: at least one per GPU, at least the profile's, at most Kata's 16. */
static int plan_root_ports(struct kgb_kata_plan *plan, const struct kgb_profile *p,
                           const struct host *h) {
  int want = p->kata.has_pcie_root_port ? p->kata.pcie_root_port : 1;
  char *why;
  if (!h->n_gpus) {
    want = MAX(want, 1);
    why = kgb_strdup_printf("one PCIe root port per GPU; no %s GPU on this host, so the "
                            "profile's count",
                            profile_label(p));
  } else if ((size_t)want >= h->n_functions) {
    why = kgb_strdup_printf("one PCIe root port per PCIe function in the GPUs' IOMMU groups, as "
                            "Kata plugs each into its own: %zu on this host (the profile asks for "
                            "%d)",
                            h->n_functions, want);
  } else {
    want = (int)h->n_functions;
    why = kgb_strdup_printf("one PCIe root port per PCIe function in the GPUs' IOMMU groups, as "
                            "Kata plugs each into its own: %zu on this host",
                            h->n_functions);
  }
  if (want > MAX_ROOT_PORTS) {
    free(why);
    why = kgb_strdup_printf("one PCIe root port per PCIe function in the GPUs' IOMMU groups, %zu "
                            "here, but Kata allows at most %d: the rest cannot be plugged",
                            h->n_functions, MAX_ROOT_PORTS);
    want = MAX_ROOT_PORTS;
  }
  plan->qemu.pcie_root_port = (unsigned)want;
  return add(plan, HV, "pcie_root_port", int_value(want), why);
}

/* Releases with hot_plug_vfio/cold_plug_vfio (Go from 3.2): the port types. */
static int plan_vfio_ports(struct kgb_kata_plan *plan, const struct kgb_profile *p,
                           const struct host *h) {
  const char *large = plan->large_bar;
  const char *hot = p->kata.hot_plug_vfio;
  const char *cold = p->kata.cold_plug_vfio;
  hot = hot ? hot : "root-port";
  cold = cold ? cold : "no-port";
  char *why;
  int r;
  if (large && !STREQ(hot, "root-port") && !STREQ(cold, "root-port")) {
    why = kgb_strdup_printf("%s: hot-plug it into a PCIe root port (the profile says '%s', and "
                            "behind a bridge there is no room for it)",
                            large, hot);
    hot = "root-port";
    cold = "no-port";
  } else if (large && !STREQ(cold, "no-port")) {
    why = kgb_strdup_printf("%s: cold-plugged into a PCIe root port when the VM starts, where "
                            "there is room for it (kata.cold_plug_vfio)",
                            large);
  } else if (large) {
    why = kgb_strdup_printf("%s: a PCIe root port has room for it, a PCI bridge does not", large);
  } else {
    why = kgb_strdup_printf("how GPUs are plugged into the VM (kata.%s_plug_vfio in the profile)",
                            STREQ(cold, "no-port") ? "hot" : "cold");
  }
  if (!STREQ(cold, "no-port") && !STREQ(hot, "no-port"))
    hot = "no-port";
  /* the reason goes with the key that plugs; the other one says why it is off */
  bool cold_plugs = !STREQ(cold, "no-port");
  char *off = strdup("only one of hot_plug_vfio and cold_plug_vfio may be other than "
                     "\"no-port\"");
  if ((r = add(plan, HV, "hot_plug_vfio", str_value(hot), cold_plugs ? off : why)) < 0 ||
      (r = add(plan, HV, "cold_plug_vfio", str_value(cold), cold_plugs ? why : off)) < 0)
    return r;
  if (!STREQ(hot, "root-port") && !STREQ(cold, "root-port"))
    return 0;
  if (!kgb_kata_release_has_key(&plan->release, HV, "pcie_root_port"))
    return add_header(plan, kgb_strdup_printf("Kata %s has no pcie_root_port: it adds a root port "
                                              "for each PCIe function of the devices' IOMMU "
                                              "groups itself",
                                              plan->version));
  return plan_root_ports(plan, p, h);
}

/* cold_plug_vfio for a release that reads it (a value it accepts), and the root ports. */
static int add_cold_plug(struct kgb_kata_plan *plan, const struct kgb_profile *p,
                         const struct host *h, const char *cold) {
  int r = add(plan, HV, "cold_plug_vfio", str_value(cold),
              strdup("GPUs are cold-plugged into the VM when it starts (kata.cold_plug_vfio)"));
  if (r < 0)
    return r;
  return STREQ(cold, "root-port") ? plan_root_ports(plan, p, h) : 0;
}

/* runtime-rs from 4.0: cold_plug_vfio alone (no hot-plug key at all). */
static int plan_vfio_cold_only(struct kgb_kata_plan *plan, const struct kgb_profile *p,
                               const struct host *h) {
  const char *hot = p->kata.hot_plug_vfio, *cold = p->kata.cold_plug_vfio;
  if (hot && !STREQ(hot, "no-port") && (!cold || STREQ(cold, "no-port")))
    return lose(plan, HV, "hot_plug_vfio",
                kgb_strdup_printf("the profile hot-plugs GPUs (kata.hot_plug_vfio = \"%s\"); "
                                  "%s %s only cold-plugs them: set kata.cold_plug_vfio = "
                                  "\"root-port\" and kata.hot_plug_vfio = \"no-port\"",
                                  hot, kgb_kata_runtime_label(plan->release.runtime),
                                  plan->version));
  cold = cold ? cold : "root-port";
  if (!kgb_kata_release_port_ok(&plan->release, "cold_plug_vfio", cold))
    return lose(plan, HV, "cold_plug_vfio",
                kgb_strdup_printf("cold_plug_vfio = \"%s\": %s takes only \"root-port\" or "
                                  "\"no-port\"",
                                  cold, kgb_kata_runtime_label(plan->release.runtime)));
  return add_cold_plug(plan, p, h, cold);
}

/* Releases before the port types (Go 1.x to 3.1, runtime-rs 3.x): hotplug_vfio_on_root_bus,
 * with pcie_root_port from Go 1.11 on. */
static int plan_vfio_root_bus(struct kgb_ctx *ctx, struct kgb_kata_plan *plan,
                              const struct kgb_profile *p, const struct host *h, bool intel_pc) {
  const char *large = plan->large_bar;
  const char *cold = p->kata.cold_plug_vfio;
  int r;
  const char *hot = p->kata.hot_plug_vfio;
  if (cold && !STREQ(cold, "no-port")) {
    /* runtime-rs 3.31 and 3.32 have cold_plug_vfio beside the root bus */
    if (kgb_kata_release_port_ok(&plan->release, "cold_plug_vfio", cold))
      return add_cold_plug(plan, p, h, cold);
    /* before the port types, the seeds' way: hot-plugged on the root bus, into a root port */
    if ((r = add_header(plan, kgb_strdup_printf("Kata %s cannot cold-plug (kata.cold_plug_vfio): "
                                                "the GPU is hot-plugged into a root port on the "
                                                "root bus instead",
                                                plan->version))) < 0)
      return r;
    hot = "root-port";
  }
  bool ports = kgb_kata_release_has_key(&plan->release, HV, "pcie_root_port");
  if (large) {
    if (!ports)
      return kgb_error(ctx, -ENOTSUP,
                       "%s: Kata %s cannot hot-plug it (large BARs need PCIe root ports, from "
                       "Kata 1.11 on); use --kata-version 1.11 or later",
                       large, plan->version);
    if ((r = add(plan, HV, "hotplug_vfio_on_root_bus", bool_value(true),
                 kgb_strdup_printf("%s: hot-plug it on the root bus, into a PCIe root port "
                                   "(Kata 1.11 and later), not behind a PCI bridge",
                                   large))) < 0)
      return r;
    return plan_root_ports(plan, p, h);
  }
  if (intel_pc)
    return add(plan, HV, "hotplug_vfio_on_root_bus", bool_value(true),
               strdup("Intel GVT-d/GVT-g with Kata 1.x: the integrated GPU is hot-plugged on the "
                      "root bus of the pc machine (seed: Intel GPU with Kata)"));
  if (h->n_gpus)
    return add(plan, HV, "hotplug_vfio_on_root_bus", bool_value(false),
               strdup("no BAR of 4 GiB or more: the GPU is hot-plugged behind a PCI bridge "
                      "through ACPI hotplug"));
  bool root = !hot || STREQ(hot, "root-port");
  if ((r = add(plan, HV, "hotplug_vfio_on_root_bus", bool_value(root),
               kgb_strdup_printf("no %s GPU on this host: the profile's %s, which Kata before "
                                 "3.2 spells hotplug_vfio_on_root_bus = %s",
                                 profile_label(p), root ? "root-port hot-plug" : "bridge hot-plug",
                                 root ? "true" : "false"))) < 0)
    return r;
  return root && ports ? plan_root_ports(plan, p, h) : 0;
}

static int plan_vfio(struct kgb_ctx *ctx, struct kgb_kata_plan *plan, const struct kgb_profile *p,
                     const struct host *h, bool intel_pc) {
  const struct kgb_kata_release *rel = &plan->release;
  if (kgb_kata_release_has_key(rel, HV, "hot_plug_vfio"))
    return plan_vfio_ports(plan, p, h);
  if (kgb_kata_release_has_key(rel, HV, "hotplug_vfio_on_root_bus"))
    return plan_vfio_root_bus(ctx, plan, p, h, intel_pc);
  return plan_vfio_cold_only(plan, p, h);
}

/* The agent's timeouts (kata.agent_timeout, seconds): connecting to the agent and creating a
 * container; the Go runtime and runtime-rs spell them differently. */
static int plan_timeouts(struct kgb_kata_plan *plan, long long secs) {
  static const char *const why =
      "seconds the runtime waits for the agent (kata.agent_timeout): loading a GPU driver and "
      "preparing its devices in the guest take long";
  bool rs = plan->release.runtime == KGB_KATA_RS;
  int r = rs ? add_if_known(plan, AGENT, "dial_timeout_ms", int_value(secs * 1000),
                            kgb_strdup_printf("milli%s", why), "it waits its default")
             : add_if_known(plan, AGENT, "dial_timeout", int_value(secs), strdup(why),
                            "it waits its default");
  if (r >= 0)
    r = add_if_known(plan, rs ? AGENT : RUNTIME, "create_container_timeout", int_value(secs),
                     strdup(why), "it waits its default for a container");
  return r;
}

/* base's parameters, then each of add's that base does not have already */
static int merge_params(const char *base, const char *add, char **ret) {
  struct sbuf sb = SBUF_INIT;
  sbuf_adds(&sb, base);
  _cleanup_free_ char *copy = strdup(add);
  if (!copy)
    return -ENOMEM;
  char *save = NULL;
  for (char *t = strtok_r(copy, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
    bool have = false;
    size_t n = strlen(t);
    for (const char *b = base; *b && !have;) {
      b += strspn(b, " \t");
      size_t k = strcspn(b, " \t");
      have = k == n && strncmp(b, t, n) == 0;
      b += k;
    }
    if (!have)
      sbuf_addf(&sb, "%s%s", sb.len ? " " : "", t);
  }
  *ret = sbuf_steal(&sb);
  return *ret ? 0 : -ENOMEM;
}

/* A drop-in that sorts after the one written wins over it: said for each key it takes. */
static int note_later(struct kgb_ctx *ctx, struct kgb_kata_plan *plan) {
  for (size_t i = 0; i < plan->n_settings; i++) {
    const struct kgb_kata_setting *s = &plan->settings[i];
    const struct kgb_kata_value *l = kgb_kata_effective_later(plan->effective, s->table, s->key);
    if (!l)
      continue;
    kgb_warn(ctx, "%s:%u sets %s.%s and sorts after this drop-in: its value wins", l->file, l->line,
             s->table, s->key);
    int r = add_header(plan, kgb_strdup_printf("%s:%u sets %s and sorts after this drop-in: its "
                                               "value (%s) wins over the one below",
                                               l->file, l->line, s->key, l->value));
    if (r < 0)
      return r;
  }
  return 0;
}

/* --kata-version and --runtime, else the installed runtime's, else the newest release known. */
static int kgb_kata_release_choose(struct kgb_ctx *ctx, const struct kgb_kata_opts *o,
                                   struct kgb_kata_release *ret, const char **ret_source) {
  enum kgb_kata_runtime rt = KGB_KATA_GO;
  bool rt_given = o->runtime != NULL;
  if (rt_given && (rt = kgb_kata_runtime_from_string(o->runtime)) < 0)
    return kgb_error(ctx, -EINVAL, "--runtime takes go or rs, not '%s'", o->runtime);
  if (o->kata_version) {
    *ret_source = "as given";
    return kgb_kata_release_parse(ctx, o->kata_version, rt, ret);
  }
  struct kgb_kata_release installed;
  int r = kgb_kata_release_installed(ctx, &installed);
  if (r >= 0) {
    *ret_source = "the installed runtime's release";
    if (rt_given)
      return kgb_kata_release_parse(ctx, installed.name, rt, ret);
    *ret = installed;
    return 0;
  }
  *ret_source = "the newest release known; none is installed";
  return kgb_kata_release_parse(ctx, kgb_kata_release_newest(), rt, ret);
}

/* What the release cannot express is an error, or with --allow-loss a warning and a header
 * line each. */
static int check_losses(struct kgb_ctx *ctx, struct kgb_kata_plan *plan, bool allow) {
  if (!plan->n_lost)
    return 0;
  const char *rt = kgb_kata_runtime_label(plan->release.runtime);
  if (allow) {
    for (size_t i = 0; i < plan->n_lost; i++) {
      const struct kgb_kata_setting *l = &plan->lost[i];
      kgb_warn(ctx, "Kata %s (%s) has no %s.%s: lost: %s", plan->version, rt, l->table, l->key,
               l->why);
      int r = add_header(plan, kgb_strdup_printf("LOST (--allow-loss): Kata %s (%s) has no %s: %s",
                                                 plan->version, rt, l->key, l->why));
      if (r < 0)
        return r;
    }
    return 0;
  }
  struct sbuf sb = SBUF_INIT;
  for (size_t i = 0; i < plan->n_lost; i++) {
    const struct kgb_kata_setting *l = &plan->lost[i];
    const char *first = kgb_kata_key_first(plan->release.runtime, l->table, l->key);
    if (first)
      sbuf_addf(&sb, "\n  %s.%s (read from %s on): %s", l->table, l->key, first, l->why);
    else
      sbuf_addf(&sb, "\n  %s.%s (read by no %s release): %s", l->table, l->key, rt, l->why);
  }
  int r = kgb_error(ctx, -ENOTSUP,
                    "Kata %s (%s) cannot express what profile '%s' needs; it would lose:%s\n"
                    "use a --kata-version (or --runtime) that reads these keys, or --allow-loss "
                    "to write the settings without them",
                    plan->version, rt, plan->profile, sb.err ? "" : sbuf_str(&sb));
  sbuf_release(&sb);
  return r;
}

int kgb_kata_plan(struct kgb_ctx *ctx, const struct kgb_profile *p, const struct kgb_kata_opts *o,
                  struct kgb_kata_plan **ret) {
  _cleanup_(kgb_kata_plan_freep) struct kgb_kata_plan *plan = calloc(1, sizeof(*plan));
  if (!plan)
    return -ENOMEM;
  int r = kgb_kata_release_choose(ctx, o, &plan->release, &plan->release_source);
  if (r < 0)
    return r;
  const char *version = plan->release.name;
  if (!(plan->profile = strdup(p->name)) || !(plan->version = strdup(version)))
    return -ENOMEM;
  {
    const char *base = o->base ? o->base : getenv("KGB_KATA_BASE");
    _cleanup_free_ char *own = kgb_strdup_printf(
        "%d-kata-gpu-%s.toml", o->priority ? o->priority : KGB_DROP_IN_DEFAULT, p->name);
    if (!own)
      return -ENOMEM;
    if ((r = kgb_kata_effective_load(ctx, base && *base ? base : NULL, own, &plan->effective)) < 0)
      return r;
  }
  const char *host_mode = p->host.mode;
  bool no_device = STREQ(p->mode, "virgl") || (host_mode && STREQ(host_mode, "none"));
  if (o->experimental_virgl && !STREQ(p->mode, "virgl"))
    return kgb_error(ctx, -EINVAL,
                     "--experimental-virgl is for the virgl profile, not '%s' (mode '%s')", p->name,
                     p->mode);
  if (no_device && o->gpu)
    return kgb_error(ctx, -EINVAL, "profile '%s' passes no device to the VM: --gpu does not apply",
                     p->name);
  struct host h = {0};
  if (!no_device && (r = read_host(ctx, p, o, &h)) < 0) {
    host_release(&h);
    return r;
  }
  if (h.large) {
    _cleanup_free_ char *sz = kgb_format_size(h.large_bar->size);
    plan->large_bar = kgb_strdup_printf("%s has a %s 64-bit BAR", h.large->bdf, sz ? sz : "large");
    if (!plan->large_bar)
      r = -ENOMEM;
  }
  if (r >= 0)
    r = add_header(plan, kgb_strdup_printf("Kata Containers %s (%s, %s) settings for profile "
                                           "'%s': %s",
                                           version, kgb_kata_runtime_label(plan->release.runtime),
                                           plan->release_source, p->name, p->description));
  if (r >= 0)
    r = add_header(plan, strdup("Generated by kata-gpu-builder kata-config: only the keys this "
                                "profile needs, each with its reason."));
  if (r >= 0 && no_device)
    r = add_header(plan, strdup("virgl passes no device to the VM: no VFIO settings."));
  else if (r >= 0)
    r = plan_host_header(plan, p, &h);
  if (r >= 0 && no_device && !o->experimental_virgl)
    r = add_header(plan, strdup("virgl's QEMU settings (virtio_gpu, display) are left out: "
                                "upstream Kata has no such keys; --experimental-virgl adds them "
                                "for a patched runtime."));
  _cleanup_free_ char *dir = kgb_kata_share_dir(NULL, o->prefix);
  _cleanup_free_ char *suffix = kgb_kata_suffix(p);
  _cleanup_free_ char *link = suffix ? kgb_kata_kernel_link("vmlinuz", suffix) : NULL;
  bool initrd_image = p->image.format && STREQ(p->image.format, "initrd");
  _cleanup_free_ char *image = kgb_kata_image_file(p, initrd_image);
  if (!dir || !link || !image)
    r = -ENOMEM;
  bool intel_pc = STREQ(p->vendor, "intel") && plan->release.major == 1 && !plan->large_bar;
  /* [hypervisor.qemu] */
  if (r >= 0) {
    _cleanup_free_ char *kernel = strjoin_path(dir, link);
    r = kernel ? add(plan, HV, "kernel", str_value(kernel),
                     kgb_strdup_printf("the guest kernel built for profile '%s', under the name "
                                       "'kernel install' gives it",
                                       p->name))
               : -ENOMEM;
  }
  const char *format = p->image.format ? p->image.format : "ext4";
  if (r >= 0 && STREQ(format, "initrd")) {
    _cleanup_free_ char *img = strjoin_path(dir, image);
    r = img ? add(plan, HV, "initrd", str_value(img),
                  kgb_strdup_printf("the guest initrd of profile '%s', as 'image build' names it",
                                    p->name))
            : -ENOMEM;
    if (r >= 0) {
      r = add(plan, HV, "image", str_value(""),
              strdup("Kata refuses an image and an initrd together: no image"));
      if (r >= 0)
        plan->settings[plan->n_settings - 1].clear = true;
    }
  } else if (r >= 0) {
    _cleanup_free_ char *img = strjoin_path(dir, image);
    r = img ? add(plan, HV, "image", str_value(img),
                  kgb_strdup_printf("the guest image of profile '%s' (%s), as 'image build' "
                                    "names it",
                                    p->name, format))
            : -ENOMEM;
    const struct kgb_kata_value *ini = kgb_kata_effective_get(plan->effective, HV, "initrd");
    if (r >= 0 && ini && ini->string && *ini->string) {
      r = add(plan, HV, "initrd", str_value(""),
              kgb_strdup_printf("Kata refuses an image and an initrd together, and %s:%u sets an "
                                "initrd: no initrd",
                                ini->file, ini->line));
      if (r >= 0)
        plan->settings[plan->n_settings - 1].clear = true;
    }
    if (r >= 0)
      r = add_if_known(plan, HV, "rootfs_type", str_value(format),
                       strdup("the image's file system (image.format in the profile)"),
                       STREQ(format, "ext4") ? "the image is ext4, what it assumes" : NULL);
    /* the root device path: Kata's GetKernelRootParams gives root=/dev/pmem0p1 (NVDIMM) or
     * root=/dev/vda1 (virtio-blk) */
    bool blk = p->kata.disable_image_nvdimm;
    plan->qemu.image_nvdimm = !blk;
    if (r >= 0)
      r = add_if_known(
          plan, HV, "disable_image_nvdimm", bool_value(blk),
          strdup(blk ? "the image is a virtio-blk disk and the guest mounts root=/dev/vda1 "
                       "(kata.disable_image_nvdimm)"
                     : "the image is an NVDIMM, Kata's default: the guest mounts root=/dev/pmem0p1 "
                       "with DAX (its kernel has LIBNVDIMM, BLK_DEV_PMEM, ACPI_NFIT and FS_DAX)"),
          blk ? "the image is an NVDIMM, the only way it attaches one, which the kernel "
                "supports too"
              : "the image is an NVDIMM, the only way it attaches one");
  }
  if (r >= 0) {
    const char *machine = p->kata.machine_type;
    bool large = plan->large_bar && !no_device;
    const char *set = intel_pc ? "pc" : large ? "q35" : machine ? machine : "q35";
    char *why =
        intel_pc    ? strdup("Intel GVT-d/GVT-g with Kata 1.x uses the pc machine type "
                                "(seed: Intel GPU with Kata)")
        : large     ? kgb_strdup_printf("%s: q35 has the PCIe root ports it needs", plan->large_bar)
        : no_device ? strdup("the profile's machine type (kata.machine_type)")
                    : strdup("PCIe for the GPU: the profile's machine type (kata.machine_type)");
    if (!kgb_kata_release_machine_ok(&plan->release, set)) {
      free(why);
      host_release(&h);
      return kgb_error(ctx, -EINVAL,
                       "machine_type \"%s\": Kata %s refuses it (it takes %s); set "
                       "kata.machine_type in the profile, or use another --kata-version",
                       set, plan->version, kgb_kata_release_machines(&plan->release));
    }
    if (!(plan->qemu.machine_type = strdup(set))) {
      free(why);
      r = -ENOMEM;
    } else
      r = add(plan, HV, "machine_type", str_value(set), why);
  }
  /* kernel_params: a drop-in's replaces the whole string, so what the base and the earlier
   * drop-ins set is kept and the profile's parameters are added after it */
  const char *params = p->kata.kernel_params;
  const struct kgb_kata_value *kp = kgb_kata_effective_get(plan->effective, HV, "kernel_params");
  _cleanup_free_ char *merged = NULL;
  if (r >= 0 && params)
    r = merge_params(kp && kp->string ? kp->string : "", params, &merged);
  if (r >= 0 && params && !(plan->qemu.kernel_params = strdup(merged)))
    r = -ENOMEM;
  if (r >= 0 && params) {
    const char *what =
        strstr(params, "pci=realloc")
            ? strstr(params, "cgroup_no_v1=all")
                  ? "cgroup v2 only, and let the guest kernel re-assign PCI windows that the "
                    "firmware sized too small for the GPU's BARs (kata.kernel_params)"
                  : "let the guest kernel re-assign PCI windows that the firmware sized too "
                    "small for the GPU's BARs (kata.kernel_params)"
            : "the profile's guest kernel parameters (kata.kernel_params)";
    r = add(plan, HV, "kernel_params", str_value(merged),
            kp && kp->string && *kp->string
                ? kgb_strdup_printf("%s, after the ones %s:%u sets (\"%s\"): a drop-in's "
                                    "kernel_params replaces the whole string",
                                    what, kp->file, kp->line, kp->string)
                : strdup(what));
  }
  if (p->kata.has_default_memory)
    plan->qemu.default_memory = p->kata.default_memory;
  if (r >= 0 && p->kata.has_default_memory)
    r = add(plan, HV, "default_memory", int_value(p->kata.default_memory),
            kgb_strdup_printf("MiB of memory for the VM: the %s driver and its workloads need "
                              "it (kata.default_memory)",
                              no_device ? "guest's graphics" : profile_label(p)));
  if (r >= 0 && !no_device)
    r = plan_vfio(ctx, plan, p, &h, intel_pc);
  if (r >= 0 && p->kata.has_enable_iommu)
    r = add(plan, HV, "enable_iommu", bool_value(p->kata.enable_iommu),
            strdup("a virtual IOMMU in the guest (kata.enable_iommu)"));
  const char *hooks = p->kata.guest_hook_path;
  if (r >= 0 && hooks)
    r = add(plan, HV, "guest_hook_path", str_value(hooks),
            strdup("the OCI hooks the guest image installs (the prestart hook of the container "
                   "toolkit) live under this directory of the guest"));
  if (r >= 0 && o->experimental_virgl) {
    r = add_any(plan, HV, "virtio_gpu", str_value("virtio-gpu-gl-pci"),
                strdup("EXPERIMENTAL, needs a runtime patched for virgl (upstream Kata has no such "
                       "key): a virtio-gpu device with OpenGL for virglrenderer"));
    if (r >= 0)
      r = add_any(plan, HV, "display", str_value("egl-headless"),
                  strdup("EXPERIMENTAL, needs a runtime patched for virgl: render with EGL on the "
                         "host, without a window"));
  }
  /* [agent.kata] */
  if (r >= 0) {
    char *const *mods = p->kata.kernel_modules;
    bool s = p->kata.has_kernel_modules;
    if (r >= 0 && s && mods)
      r = add(plan, AGENT, "kernel_modules", strv_value(mods),
              strdup("drivers the guest must load before the first container "
                     "(kata.kernel_modules)"));
    else if (r >= 0 && !s && STREQ(p->vendor, "nvidia")) {
      char *const nv[] = {"nvidia", "nvidia_uvm", NULL};
      r = add(plan, AGENT, "kernel_modules", strv_value(nv),
              strdup("the NVIDIA driver is a module (nouveau is off): the agent loads it, and "
                     "nvidia_uvm for CUDA, before the first container starts"));
    }
  }
  if (r >= 0 && p->kata.agent_timeout)
    r = plan_timeouts(plan, p->kata.agent_timeout);
  /* [runtime] */
  if (r >= 0 && p->kata.has_static_sandbox_resource_mgmt)
    r = add_if_known(plan, RUNTIME, "static_sandbox_resource_mgmt",
                     bool_value(p->kata.static_sandbox_resource_mgmt),
                     strdup(p->kata.static_sandbox_resource_mgmt
                                ? "the VM is sized for its containers when it starts: no CPU or "
                                  "memory is hot-added beside a GPU "
                                  "(kata.static_sandbox_resource_mgmt)"
                                : "CPUs and memory are hot-added as containers ask "
                                  "(kata.static_sandbox_resource_mgmt)"),
                     "it sizes the VM as containers ask");
  const char *vfio_mode = p->kata.vfio_mode;
  if (r >= 0 && vfio_mode && !no_device)
    r = add_if_known(plan, RUNTIME, "vfio_mode", str_value(vfio_mode),
                     strdup(STREQ(vfio_mode, "guest-kernel")
                                ? "the GPU is driven by its driver in the guest kernel, not handed "
                                  "to the container as a VFIO device (kata.vfio_mode)"
                                : "the GPU reaches the container as a VFIO device "
                                  "(kata.vfio_mode)"),
                     STREQ(vfio_mode, "guest-kernel")
                         ? "the GPU is driven by the guest kernel, its only mode"
                         : NULL);
  host_release(&h);
  if (r >= 0)
    r = check_losses(ctx, plan, o->allow_loss);
  if (r >= 0)
    r = note_later(ctx, plan);
  if (r < 0)
    return r;
  *ret = TAKE_PTR(plan);
  return 0;
}

/* ---- output ---- */
static void add_comment(struct sbuf *sb, const char *text) {
  /* One comment line per reason; a newline in a reason would end the comment early. */
  sbuf_adds(sb, "# ");
  for (const char *c = text; *c; c++)
    sbuf_addc(sb, *c == '\n' ? ' ' : *c);
  sbuf_addc(sb, '\n');
}

char *kgb_kata_render(const struct kgb_kata_plan *plan) {
  static const char *const tables[] = {HV, AGENT, RUNTIME};
  struct sbuf sb = SBUF_INIT;
  for (size_t i = 0; plan->header && plan->header[i]; i++)
    add_comment(&sb, plan->header[i]);
  for (size_t t = 0; t < ELEMENTSOF(tables); t++) {
    bool any = false;
    for (size_t i = 0; i < plan->n_settings; i++) {
      const struct kgb_kata_setting *s = &plan->settings[i];
      if (!STREQ(s->table, tables[t]))
        continue;
      if (!any)
        sbuf_addf(&sb, "\n[%s]\n", tables[t]);
      any = true;
      add_comment(&sb, s->why);
      sbuf_addf(&sb, "%s = %s\n", s->key, s->value);
    }
  }
  return sbuf_steal(&sb);
}

static bool name_ok(const char *s) {
  if (!*s)
    return false;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && !strchr("._-", *s))
      return false;
  return true;
}

int kgb_kata_drop_in(struct kgb_ctx *ctx, const struct kgb_kata_plan *plan, const char *dir,
                     int priority, char **ret_path) {
  if (priority < 50 || priority > 89)
    return kgb_error(ctx, -EINVAL,
                     "drop-in number %d: custom drop-ins use 50 to 89 (Kata's own deployment "
                     "uses 10, 20, 30 and 50)",
                     priority);
  if (!kgb_kata_release_reads_dropins(&plan->release))
    return kgb_error(ctx, -ENOTSUP,
                     "Kata %s reads no config.d drop-ins (the Go runtime reads them from 2.5.0 "
                     "on): edit its configuration.toml with --patch FILE instead",
                     plan->version);
  if (!name_ok(plan->profile))
    return kgb_error(ctx, -EINVAL, "profile name '%s' cannot be part of a file name",
                     plan->profile);
  _cleanup_free_ char *path =
      kgb_strdup_printf("%s/%d-kata-gpu-%s.toml", dir, priority, plan->profile);
  _cleanup_free_ char *text = kgb_kata_render(plan);
  if (!path || !text)
    return -ENOMEM;
  int r = mkdir_p(dir, 0755);
  if (r < 0)
    return kgb_error(ctx, r, "cannot create '%s': %s", dir, strerror(-r));
  r = write_file_output(path, text, strlen(text), 0644);
  if (r < 0)
    return kgb_error(ctx, r, "cannot write '%s': %s", path, file_error_reason(path, r, 0));
  *ret_path = TAKE_PTR(path);
  return 0;
}

void kgb_kata_patch_result_release(struct kgb_kata_patch_result *r) {
  free(r->path);
  free(r->diff);
  free(r->backup);
  *r = (struct kgb_kata_patch_result){0};
}

/* The backup is a new file with the original's owner, group, mode and extended attributes,
 * synced before the original is touched: it is what a crash in the middle leaves to restore. */
static int write_backup(const char *path, const char *backup, const char *text, size_t len) {
  int r = write_file_atomic(backup, text, len, 0600);
  if (r < 0)
    return r;
  _cleanup_close_ int from = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  _cleanup_close_ int to = open(backup, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (from < 0 || to < 0)
    return -errno;
  return copy_file_metadata(from, to);
}

/* Kata's configuration.toml is often a hard link or a file with an SELinux label, owned by a
 * packaging user: a rename would give the path a new inode and leave all that behind. The
 * new text goes into the same inode instead; st is what was read, and a file replaced since
 * is not written. */
static int rewrite_in_place(const char *path, const struct stat *st, const char *text, size_t len) {
  _cleanup_close_ int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return -errno;
  struct stat now;
  if (fstat(fd, &now) < 0)
    return -errno;
  if (now.st_dev != st->st_dev || now.st_ino != st->st_ino || !S_ISREG(now.st_mode))
    return -ESTALE;
  int r = write_all(fd, text, len);
  if (r < 0)
    return r;
  if (ftruncate(fd, (off_t)len) < 0 || fsync(fd) < 0)
    return -errno;
  return close(TAKE_FD(fd)) < 0 ? -errno : 0;
}

int kgb_kata_patch_file(struct kgb_ctx *ctx, const struct kgb_kata_plan *plan, const char *path,
                        bool check, struct kgb_kata_patch_result *ret) {
  _cleanup_free_ char *target = realpath(path, NULL);
  if (!target)
    return kgb_error(ctx, -errno, "cannot patch '%s': %m", path);
  struct stat st;
  if (stat(target, &st) < 0)
    return kgb_error(ctx, -errno, "cannot patch '%s': %m", path);
  if (!S_ISREG(st.st_mode))
    return kgb_error(ctx, -EINVAL, "cannot patch '%s': not a regular file", path);
  if (!check && !(st.st_mode & 0222))
    return kgb_error(ctx, -EACCES, "cannot patch '%s': %s", path,
                     file_error_reason(target, -EACCES, 0));
  _cleanup_free_ char *text = NULL;
  size_t len;
  int r = read_full_file(target, &text, &len);
  if (r < 0)
    return kgb_error(ctx, r, "cannot read '%s': %s", path,
                     file_error_reason(target, r, READ_TEXT_MAX));
  _cleanup_free_ struct kgb_toml_set *sets = calloc(plan->n_settings + 1, sizeof(*sets));
  if (!sets)
    return -ENOMEM;
  for (size_t i = 0; i < plan->n_settings; i++) {
    const struct kgb_kata_setting *s = &plan->settings[i];
    sets[i] = (struct kgb_toml_set){
        .table = s->table, .key = s->key, .value = s->clear ? NULL : s->value, .why = s->why};
  }
  struct kgb_toml_patch out = {0};
  r = kgb_toml_patch(ctx, path, text, len, sets, plan->n_settings, &out);
  if (r < 0)
    return r;
  struct kgb_kata_patch_result res = {.changes = out.changes};
  res.path = TAKE_PTR(target);
  res.diff = TAKE_PTR(out.diff);
  if (out.changes && !check) {
    for (unsigned n = 0; n < 100 && !res.backup; n++) {
      char *b =
          n ? kgb_strdup_printf("%s.bak.%u", res.path, n) : kgb_strdup_printf("%s.bak", res.path);
      if (!b) {
        r = -ENOMEM;
        break;
      }
      if (access(b, F_OK) == 0)
        free(b);
      else
        res.backup = b;
    }
    if (r >= 0 && !res.backup)
      r = kgb_error(ctx, -EEXIST, "'%s.bak' to '%s.bak.99' all exist: remove old backups", res.path,
                    res.path);
    if (r >= 0 && (r = write_backup(res.path, res.backup, text, len)) < 0)
      r = kgb_error(ctx, r, "cannot write the backup '%s': %s", res.backup, strerror(-r));
    if (r >= 0 && (r = rewrite_in_place(res.path, &st, out.text, out.len)) < 0)
      r = kgb_error(ctx, r, "cannot write '%s': %s", res.path, strerror(-r));
  }
  kgb_toml_patch_release(&out);
  if (r < 0) {
    kgb_kata_patch_result_release(&res);
    return r;
  }
  *ret = res;
  return 0;
}
