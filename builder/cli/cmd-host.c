/* `host check|bind|unbind|mdev`: is this host ready for GPU passthrough, and the seeds' manual
 * host steps. Every path is under --sysfs, --proc, --boot and --dev (default /sys, /proc,
 * /boot, /dev); writing needs root only when --sysfs is the real /sys. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "host.h"
#include "json.h"
#include "pci.h"
#include "sbuf.h"
#include "util.h"

struct host_opts {
  const char *profile;
  const char *dev;
  const char *pci_ids;
  const char *parent;
  const char *uuid;
  char **args;
};

static const char *default_pci_ids(void) {
  const char *env = getenv("KGB_PCI_IDS");
  if (env)
    return *env ? env : NULL;
  if (is_file(KGB_PCI_IDS_DEFAULT))
    return KGB_PCI_IDS_DEFAULT;
  if (is_file("/usr/share/hwdata/pci.ids"))
    return "/usr/share/hwdata/pci.ids";
  return NULL;
}

enum { O_SYSFS = 0x100, O_PROC, O_BOOT, O_DEV, O_PCI_IDS, O_PARENT, O_UUID };
/* Every verb's options: parse refuses those that do not apply to the verb. */
static const struct option options[] = {{"sysfs", required_argument, NULL, O_SYSFS},
                                        {"proc", required_argument, NULL, O_PROC},
                                        {"boot", required_argument, NULL, O_BOOT},
                                        {"dev", required_argument, NULL, O_DEV},
                                        {"pci-ids", required_argument, NULL, O_PCI_IDS},
                                        {"profile", required_argument, NULL, 'p'},
                                        {"parent", required_argument, NULL, O_PARENT},
                                        {"uuid", required_argument, NULL, O_UUID},
                                        {}};

/* The options of a verb; allowed: which of the table's it takes. */
static int parse(struct cli *cli, const char *cmd, const char *allowed, int argc, char **argv,
                 int min_args, int max_args, struct host_opts *o) {
  o->dev = "/dev";
  o->pci_ids = default_pci_ids();
  int c;
  while ((c = getopt_long(argc, argv, "p:", options, NULL)) != -1) {
    const char *name = c == 'p' ? "profile" : NULL;
    for (size_t i = 0; !name && options[i].name; i++)
      if (options[i].val == c)
        name = options[i].name;
    if (c != '?' && name && !strstr(allowed, name))
      return cli_usage(cli, "%s: --%s does not apply here; see 'kata-gpu-builder help host'", cmd,
                       name);
    switch (c) {
    case O_SYSFS:
      if (kgb_ctx_set_string(&cli->ctx->sysfs, optarg) < 0)
        return EXIT_FAIL;
      break;
    case O_PROC:
      if (kgb_ctx_set_string(&cli->ctx->proc, optarg) < 0)
        return EXIT_FAIL;
      break;
    case O_BOOT:
      if (kgb_ctx_set_string(&cli->ctx->boot, optarg) < 0)
        return EXIT_FAIL;
      break;
    case O_DEV:
      o->dev = optarg;
      break;
    case O_PCI_IDS:
      o->pci_ids = optarg;
      break;
    case 'p':
      o->profile = optarg;
      break;
    case O_PARENT:
      o->parent = optarg;
      break;
    case O_UUID:
      o->uuid = optarg;
      break;
    default:
      return cli_bad_option(cli, cmd, argv[optind - 1], options);
    }
  }
  int n = argc - optind;
  if (n < min_args || n > max_args) {
    if (n > max_args)
      return cli_usage(cli, "%s: unexpected argument '%s'; see 'kata-gpu-builder help host'", cmd,
                       argv[optind + max_args]);
    return cli_usage(cli, "%s: missing argument; see 'kata-gpu-builder help host'", cmd);
  }
  o->args = argv + optind;
  return EXIT_OK;
}

/* ---- host check ---- */
static void render_bars(struct sbuf *sb, const struct kgb_pci_dev *d) {
  for (size_t b = 0; b < d->n_bars; b++) {
    const struct kgb_pci_bar *bar = &d->bars[b];
    _cleanup_free_ char *sz = kgb_format_size(bar->size);
    sbuf_addf(sb, "%s%u: %s %s%s%s", b ? "; " : "", bar->index, sz ? sz : "?",
              bar->io     ? "I/O"
              : bar->is64 ? "64-bit"
                          : "32-bit",
              bar->prefetchable ? " prefetchable" : "",
              kgb_pci_bar_is_large(bar) ? " (large)" : "");
  }
  if (!d->n_bars)
    sbuf_adds(sb, "none");
}

static void render_table(struct sbuf *sb, const struct kgb_host_report *r) {
  sbuf_addf(sb, "%-13s Linux %s\n", "host:", r->release ? r->release : "(unknown release)");
  sbuf_addf(sb, "%-13s %s\n", "checked for:", r->profile ? r->profile : "any GPU use (no -p)");
  sbuf_addf(sb, "%-13s %s", "kernel:", r->config_source ? r->config_source : "no config found");
  for (size_t i = 0; i < r->n_symbols; i++)
    if (r->symbols[i].value)
      sbuf_addf(sb, "%s%s=%s", i ? " " : ": ", r->symbols[i].name, r->symbols[i].value);
  sbuf_addf(sb, "\n%-13s %s\n", "cmdline:", r->cmdline && *r->cmdline ? r->cmdline : "(empty)");
  if (r->iommu_enabled)
    sbuf_addf(sb, "%-13s active, %u group%s\n", "IOMMU:", r->iommu_groups,
              r->iommu_groups == 1 ? "" : "s");
  else
    sbuf_addf(sb, "%-13s not active (no groups)\n", "IOMMU:");
  if (r->mig)
    sbuf_addf(sb, "%-13s %s\n", "MIG:", r->mig);
  if (!r->n_gpus) {
    sbuf_adds(sb, "\nno GPU (PCI class 0x03) on this host\n");
  } else {
    sbuf_addf(sb, "\n%-13s %-9s %-8s %-9s %-5s %s\n", "GPU", "ID", "CLASS", "DRIVER", "GROUP",
              "NAME");
    for (size_t i = 0; i < r->n_gpus; i++) {
      const struct kgb_host_gpu *g = &r->gpus[i];
      const struct kgb_pci_dev *d = &g->dev;
      char group[16] = "-";
      if (d->iommu_group >= 0)
        snprintf(group, sizeof(group), "%d", d->iommu_group);
      sbuf_addf(sb, "%-13s %04x:%04x 0x%06x %-9s %-5s %s%s%s\n", d->bdf, d->vendor, d->device,
                d->class_code, d->driver ? d->driver : "-", group,
                d->vendor_name ? d->vendor_name : "", d->vendor_name ? " " : "",
                d->device_name   ? d->device_name
                : d->vendor_name ? ""
                                 : "(not in pci.ids)");
      sbuf_addf(sb, "  %-12s ", "BARs:");
      render_bars(sb, d);
      sbuf_adds(sb, "\n");
      if (g->vfio_dev)
        sbuf_addf(sb, "  %-12s %s %s\n", "VFIO:", g->vfio_dev,
                  g->vfio_dev_present ? "present" : "missing");
      if (g->group_members && g->group_members[0]) {
        sbuf_addf(sb, "  %-11s", "group also:");
        for (size_t m = 0; g->group_members[m]; m++)
          sbuf_addf(sb, " %s", g->group_members[m]);
        sbuf_adds(sb, "\n");
      }
      if (d->physfn)
        sbuf_addf(sb, "  %-12s virtual function of %s\n", "SR-IOV:", d->physfn);
      else if (d->sriov)
        sbuf_addf(sb, "  %-12s %u of %u virtual functions enabled\n", "SR-IOV:", d->numvfs,
                  d->totalvfs);
      for (size_t t = 0; t < d->n_mdev_types; t++) {
        const struct kgb_mdev_type *mt = &d->mdev_types[t];
        sbuf_addf(sb, "  %-12s %s%s%s%s, %ld available\n", t ? "" : "mdev types:", mt->id,
                  mt->name ? " \"" : "", mt->name ? mt->name : "", mt->name ? "\"" : "",
                  mt->available);
      }
      if (g->mig_mode)
        sbuf_addf(sb, "  %-12s %s, %d instance%s\n", "MIG:", g->mig_mode, g->mig_instances,
                  g->mig_instances == 1 ? "" : "s");
    }
  }
  if (r->n_mdevs) {
    sbuf_addf(sb, "\n%-36s %-13s %-16s %s\n", "MEDIATED DEVICE", "PARENT", "TYPE", "GROUP");
    for (size_t i = 0; i < r->n_mdevs; i++) {
      const struct kgb_mdev *m = &r->mdevs[i];
      char group[16] = "-";
      if (m->iommu_group >= 0)
        snprintf(group, sizeof(group), "%d", m->iommu_group);
      sbuf_addf(sb, "%-36s %-13s %-16s %s\n", m->uuid, m->parent ? m->parent : "-",
                m->type ? m->type : "-", group);
    }
  }
  if (r->n_problems) {
    sbuf_adds(sb, "\nproblems:\n");
    for (size_t i = 0; i < r->n_problems; i++)
      sbuf_addf(sb, "  - %s\n    fix: %s\n", r->problems[i].what, r->problems[i].fix);
  }
  if (r->notes) {
    sbuf_adds(sb, "\nnotes:\n");
    for (size_t i = 0; r->notes[i]; i++)
      sbuf_addf(sb, "  - %s\n", r->notes[i]);
  }
  if (r->ready)
    sbuf_addf(sb, "\nready %s%s%s\n",
              r->profile ? "for profile '"
                         : "for GPU use (-p PROFILE also checks the GPU's binding "
                           "and vGPUs)",
              r->profile ? r->profile : "", r->profile ? "'" : "");
  else
    sbuf_addf(sb, "\nnot ready%s%s%s: %zu problem%s\n", r->profile ? " for profile '" : "",
              r->profile ? r->profile : "", r->profile ? "'" : "", r->n_problems,
              r->n_problems == 1 ? "" : "s");
}

/* An IOMMU group; -1, no group, is null. */
static void group_json(struct json *j, const char *key, int v) {
  if (v >= 0)
    json_int(j, key, v);
  else
    json_null(j, key);
}

static void gpu_json(struct json *j, const struct kgb_host_gpu *g) {
  const struct kgb_pci_dev *d = &g->dev;
  json_object_begin(j, NULL, JSON_INLINE);
  json_string(j, "bdf", d->bdf);
  json_stringf(j, "vendor", "%04x", d->vendor);
  json_stringf(j, "device", "%04x", d->device);
  json_stringf(j, "class", "0x%06x", d->class_code);
  json_string_or_null(j, "name", d->device_name);
  json_string_or_null(j, "vendor_name", d->vendor_name);
  json_string_or_null(j, "driver", d->driver);
  group_json(j, "iommu_group", d->iommu_group);
  json_strv(j, "group_members", g->group_members);
  json_string_or_null(j, "vfio_device", g->vfio_dev);
  json_bool(j, "vfio_device_present", g->vfio_dev_present);
  json_array_begin(j, "bars", JSON_INLINE);
  for (size_t b = 0; b < d->n_bars; b++) {
    json_object_begin(j, NULL, JSON_INLINE);
    json_uint(j, "index", d->bars[b].index);
    json_uint(j, "size", d->bars[b].size);
    json_bool(j, "is64", d->bars[b].is64);
    json_bool(j, "prefetchable", d->bars[b].prefetchable);
    json_bool(j, "io", d->bars[b].io);
    json_object_end(j);
  }
  json_array_end(j);
  json_bool(j, "large_bar", kgb_pci_large_bar(d));
  if (d->sriov) {
    json_object_begin(j, "sriov", JSON_INLINE);
    json_uint(j, "totalvfs", d->totalvfs);
    json_uint(j, "numvfs", d->numvfs);
    json_object_end(j);
  } else {
    json_null(j, "sriov");
  }
  json_string_or_null(j, "physfn", d->physfn);
  json_strv(j, "virtfns", d->virtfns);
  json_array_begin(j, "mdev_types", JSON_INLINE);
  for (size_t t = 0; t < d->n_mdev_types; t++) {
    const struct kgb_mdev_type *mt = &d->mdev_types[t];
    json_object_begin(j, NULL, JSON_INLINE);
    json_string(j, "type", mt->id);
    json_string_or_null(j, "name", mt->name);
    json_string_or_null(j, "description", mt->description);
    json_int(j, "available_instances", mt->available);
    json_object_end(j);
  }
  json_array_end(j);
  json_string_or_null(j, "mig_mode", g->mig_mode);
  if (g->mig_mode)
    json_int(j, "mig_instances", g->mig_instances);
  else
    json_null(j, "mig_instances");
  json_object_end(j);
}

char *cli_host_report_json(const struct kgb_host_report *r) {
  struct json j = JSON_INIT;
  json_object_begin(&j, NULL, JSON_BLOCK);
  json_string_or_null(&j, "profile", r->profile);
  json_string_or_null(&j, "release", r->release);
  json_string_or_null(&j, "kernel_config_source", r->config_source);
  json_object_begin(&j, "kernel_config", JSON_INLINE);
  for (size_t i = 0; i < r->n_symbols; i++)
    json_string_or_null(&j, r->symbols[i].name, r->symbols[i].value);
  json_object_end(&j);
  json_array_begin(&j, "kernel_config_required", JSON_INLINE);
  for (size_t i = 0; i < r->n_symbols; i++)
    if (r->symbols[i].required)
      json_string(&j, NULL, r->symbols[i].name);
  json_array_end(&j);
  json_string(&j, "cmdline", r->cmdline ? r->cmdline : "");
  json_bool(&j, "iommu_enabled", r->iommu_enabled);
  json_uint(&j, "iommu_groups", r->iommu_groups);
  json_array_begin(&j, "gpus", JSON_BLOCK);
  for (size_t i = 0; i < r->n_gpus; i++)
    gpu_json(&j, &r->gpus[i]);
  json_array_end(&j);
  json_array_begin(&j, "mdevs", JSON_INLINE);
  for (size_t i = 0; i < r->n_mdevs; i++) {
    const struct kgb_mdev *m = &r->mdevs[i];
    json_object_begin(&j, NULL, JSON_INLINE);
    json_string(&j, "uuid", m->uuid);
    json_string_or_null(&j, "parent", m->parent);
    json_string_or_null(&j, "type", m->type);
    group_json(&j, "iommu_group", m->iommu_group);
    json_object_end(&j);
  }
  json_array_end(&j);
  json_string_or_null(&j, "mig", r->mig);
  json_bool(&j, "ready", r->ready);
  json_array_begin(&j, "problems", JSON_BLOCK);
  for (size_t i = 0; i < r->n_problems; i++) {
    json_object_begin(&j, NULL, JSON_INLINE);
    json_string(&j, "what", r->problems[i].what);
    json_string(&j, "fix", r->problems[i].fix);
    json_object_end(&j);
  }
  json_array_end(&j);
  json_array_begin(&j, "notes", JSON_BLOCK);
  for (size_t i = 0; r->notes && r->notes[i]; i++)
    json_string(&j, NULL, r->notes[i]);
  json_array_end(&j);
  json_object_end(&j);
  return json_steal(&j);
}

static int run_check(struct cli *cli, int argc, char **argv) {
  struct host_opts o = {0};
  int r = parse(cli, "host check", "sysfs proc boot dev pci-ids profile", argc, argv, 0, 0, &o);
  if (r != EXIT_OK)
    return r;
  _cleanup_(kgb_profile_freep) struct kgb_profile *p = NULL;
  if (o.profile && (r = kgb_profile_load(cli->ctx, o.profile, &p)) < 0)
    return cli_fail(cli, r, NULL);
  struct kgb_host_opts ho = {.dev_root = o.dev, .pci_ids = o.pci_ids, .profile = p};
  _cleanup_(kgb_host_report_freep) struct kgb_host_report *rep = NULL;
  r = kgb_host_check(cli->ctx, &ho, &rep);
  if (r < 0)
    return cli_fail(cli, r, "host check");
  _cleanup_free_ char *text = NULL;
  if (cli->json) {
    text = cli_host_report_json(rep);
  } else {
    struct sbuf sb = SBUF_INIT;
    render_table(&sb, rep);
    text = sbuf_steal(&sb);
  }
  if (!text)
    return cli_fail(cli, -ENOMEM, "host check");
  if (cli_out(text) < 0)
    return EXIT_FAIL;
  return rep->ready ? EXIT_OK : EXIT_MISMATCH;
}

/* ---- host bind / unbind ---- */
static int report_bind(struct cli *cli, const struct kgb_bind_result *b, bool bind) {
  bool present = b->vfio_dev && access(b->vfio_dev, F_OK) == 0;
  if (cli->json) {
    struct json j = JSON_INIT;
    json_object_begin(&j, NULL, JSON_INLINE);
    json_string(&j, "bdf", b->bdf);
    json_string_or_null(&j, "before", b->before);
    json_string_or_null(&j, "after", b->after);
    json_bool(&j, "changed", b->changed);
    group_json(&j, "iommu_group", b->iommu_group);
    json_string_or_null(&j, "vfio_device", bind ? b->vfio_dev : NULL);
    json_bool(&j, "vfio_device_present", bind && present);
    json_strv(&j, "group_others", b->group_others);
    json_object_end(&j);
    return cli_out_json(&j) < 0 ? EXIT_FAIL : EXIT_OK;
  }
  _cleanup_free_ char *out = NULL;
  if (bind) {
    if (b->changed)
      cli_msg(cli, "%s: bound to vfio-pci (was %s); the driver to restore is remembered\n", b->bdf,
              b->before ? b->before : "no driver");
    else
      cli_msg(cli, "%s: already bound to vfio-pci\n", b->bdf);
    if (b->iommu_group >= 0) {
      cli_msg(cli, "%s: IOMMU group %d, pass %s to the container%s\n", b->bdf, b->iommu_group,
              b->vfio_dev, present ? "" : " (it does not exist yet)");
      if (!(out = kgb_strdup_printf("%s\n", b->vfio_dev)))
        return cli_fail(cli, -ENOMEM, NULL);
    } else {
      cli_warn(cli, "%s has no IOMMU group: is the IOMMU on (intel_iommu=on)?", b->bdf);
    }
    for (size_t i = 0; b->group_others && b->group_others[i]; i++)
      cli_warn(cli,
               "IOMMU group %d also holds %s: bind it too ('kata-gpu-builder host bind %.12s'), "
               "the VM gets the whole group",
               b->iommu_group, b->group_others[i], b->group_others[i]);
  } else {
    if (b->changed)
      cli_msg(cli, "%s: released from vfio-pci, now %s%s\n", b->bdf,
              b->after ? "bound to " : "without a driver", b->after ? b->after : "");
    else
      cli_msg(cli, "%s: not bound to vfio-pci (%s%s): nothing to undo\n", b->bdf,
              b->before ? "driver " : "no driver", b->before ? b->before : "");
  }
  return cli_out(out ? out : "") < 0 ? EXIT_FAIL : EXIT_OK;
}

/* --dry-run: what would be written, on stdout */
static int dry_run(const char *fmt, ...) _printf_(1, 2);
static int dry_run(const char *fmt, ...) {
  _cleanup_free_ char *s = NULL;
  va_list ap;
  va_start(ap, fmt);
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  return n < 0 || cli_out(s) < 0 ? EXIT_FAIL : EXIT_OK;
}

static int run_bind_or_unbind(struct cli *cli, int argc, char **argv, bool bind) {
  const char *cmd = bind ? "host bind" : "host unbind";
  struct host_opts o = {0};
  int r = parse(cli, cmd, "sysfs dev", argc, argv, 1, 1, &o);
  if (r != EXIT_OK)
    return r;
  if (cli->dry_run) {
    const char *s = cli->ctx->sysfs;
    if (bind)
      return dry_run("would write vfio-pci to %s/bus/pci/devices/%s/driver_override, %s to its "
                     "driver/unbind, %s to %s/bus/pci/drivers_probe\n",
                     s, o.args[0], o.args[0], o.args[0], s);
    return dry_run("would clear %s/bus/pci/devices/%s/driver_override, write %s to its "
                   "driver/unbind and to %s/bus/pci/drivers_probe\n",
                   s, o.args[0], o.args[0], s);
  }
  struct kgb_bind_result b = {0};
  r = bind ? kgb_host_bind(cli->ctx, o.args[0], o.dev, &b)
           : kgb_host_unbind(cli->ctx, o.args[0], o.dev, &b);
  if (r < 0)
    return cli_fail(cli, r, cmd);
  r = report_bind(cli, &b, bind);
  kgb_bind_result_release(&b);
  return r;
}

static int run_bind(struct cli *cli, int argc, char **argv) {
  return run_bind_or_unbind(cli, argc, argv, true);
}

static int run_unbind(struct cli *cli, int argc, char **argv) {
  return run_bind_or_unbind(cli, argc, argv, false);
}

/* ---- host mdev ---- */
static char *mdev_node(const char *dev_root, const struct kgb_mdev *m) {
  return m->iommu_group >= 0 ? kgb_strdup_printf("%s/vfio/%d", dev_root, m->iommu_group) : NULL;
}

static int render_mdev_json(const struct kgb_pci_list *l, const struct kgb_mdev *m, size_t n,
                            const char *dev_root) {
  struct json j = JSON_INIT;
  json_object_begin(&j, NULL, JSON_BLOCK);
  json_array_begin(&j, "types", JSON_BLOCK);
  for (size_t i = 0; i < l->n; i++)
    for (size_t t = 0; t < l->devs[i].n_mdev_types; t++) {
      const struct kgb_mdev_type *mt = &l->devs[i].mdev_types[t];
      json_object_begin(&j, NULL, JSON_INLINE);
      json_string(&j, "parent", l->devs[i].bdf);
      json_string(&j, "type", mt->id);
      json_string_or_null(&j, "name", mt->name);
      json_string_or_null(&j, "description", mt->description);
      json_int(&j, "available_instances", mt->available);
      json_object_end(&j);
    }
  json_array_end(&j);
  json_array_begin(&j, "devices", JSON_BLOCK);
  for (size_t i = 0; i < n; i++) {
    _cleanup_free_ char *node = mdev_node(dev_root, &m[i]);
    json_object_begin(&j, NULL, JSON_INLINE);
    json_string(&j, "uuid", m[i].uuid);
    json_string_or_null(&j, "parent", m[i].parent);
    json_string_or_null(&j, "type", m[i].type);
    json_string_or_null(&j, "name", m[i].type_name);
    group_json(&j, "iommu_group", m[i].iommu_group);
    json_string_or_null(&j, "vfio_device", node);
    json_object_end(&j);
  }
  json_array_end(&j);
  json_object_end(&j);
  return cli_out_json(&j);
}

static int render_mdev_table(struct cli *cli, const struct kgb_pci_list *l,
                             const struct kgb_mdev *m, size_t n, const char *dev_root) {
  struct sbuf sb = SBUF_INIT;
  size_t types = 0;
  for (size_t i = 0; i < l->n; i++)
    for (size_t t = 0; t < l->devs[i].n_mdev_types; t++) {
      const struct kgb_mdev_type *mt = &l->devs[i].mdev_types[t];
      if (!types++)
        sbuf_addf(&sb, "%-13s %-16s %-18s %-9s %s\n", "PARENT", "TYPE", "NAME", "AVAILABLE",
                  "DESCRIPTION");
      sbuf_addf(&sb, "%-13s %-16s %-18s %-9ld %s\n", l->devs[i].bdf, mt->id,
                mt->name ? mt->name : "-", mt->available, mt->description ? mt->description : "");
    }
  if (!types)
    cli_msg(cli, "no device under '%s/bus/pci/devices' offers mediated device types\n",
            cli->ctx->sysfs);
  for (size_t i = 0; i < n; i++) {
    _cleanup_free_ char *node = mdev_node(dev_root, &m[i]);
    if (!i)
      sbuf_addf(&sb, "%s%-36s %-13s %-16s %s\n", types ? "\n" : "", "UUID", "PARENT", "TYPE",
                "DEVICE");
    sbuf_addf(&sb, "%-36s %-13s %-16s %s\n", m[i].uuid, m[i].parent ? m[i].parent : "-",
              m[i].type ? m[i].type : "-", node ? node : "(no IOMMU group)");
  }
  _cleanup_free_ char *text = sbuf_steal(&sb);
  return text ? cli_out(text) : -ENOMEM;
}

static int run_mdev_list(struct cli *cli, int argc, char **argv) {
  struct host_opts o = {0};
  int r = parse(cli, "host mdev list", "sysfs dev pci-ids", argc, argv, 0, 0, &o);
  if (r != EXIT_OK)
    return r;
  _cleanup_(kgb_pci_list_freep) struct kgb_pci_list *l = NULL;
  if ((r = kgb_pci_scan(cli->ctx, false, NULL, &l)) < 0)
    return cli_fail(cli, r, "host mdev list");
  struct kgb_mdev *m = NULL;
  size_t n = 0;
  if ((r = kgb_mdev_list(cli->ctx, &m, &n)) < 0)
    return cli_fail(cli, r, "host mdev list");
  r = cli->json ? render_mdev_json(l, m, n, o.dev) : render_mdev_table(cli, l, m, n, o.dev);
  for (size_t i = 0; i < n; i++)
    kgb_mdev_release(&m[i]);
  free(m);
  return r < 0 ? EXIT_FAIL : EXIT_OK;
}

static int run_mdev_create(struct cli *cli, int argc, char **argv) {
  struct host_opts o = {0};
  int r = parse(cli, "host mdev create", "sysfs dev parent uuid", argc, argv, 1, 1, &o);
  if (r != EXIT_OK)
    return r;
  if (cli->dry_run)
    return dry_run("would write %s to the 'create' file of mdev type %s%s%s\n",
                   o.uuid ? o.uuid : "a new UUID", o.args[0], o.parent ? " on " : "",
                   o.parent ? o.parent : "");
  struct kgb_mdev m = {0};
  r = kgb_mdev_create(cli->ctx, o.args[0], o.parent, o.uuid, &m);
  if (r < 0)
    return cli_fail(cli, r, "host mdev create");
  _cleanup_free_ char *node = kgb_strdup_printf("%s/vfio/%d", o.dev, m.iommu_group);
  if (cli->json) {
    struct json j = JSON_INIT;
    json_object_begin(&j, NULL, JSON_INLINE);
    json_string(&j, "uuid", m.uuid);
    json_string(&j, "parent", m.parent);
    json_string(&j, "type", m.type);
    json_string_or_null(&j, "name", m.type_name);
    json_int(&j, "iommu_group", m.iommu_group);
    json_string_or_null(&j, "vfio_device", node);
    json_object_end(&j);
    r = cli_out_json(&j);
  } else {
    _cleanup_free_ char *text = kgb_strdup_printf(
        "uuid: %s\nparent: %s\ntype: %s%s%s%s\niommu_group: %d\ndevice: %s\n", m.uuid, m.parent,
        m.type, m.type_name ? " (" : "", m.type_name ? m.type_name : "", m.type_name ? ")" : "",
        m.iommu_group, node ? node : "");
    cli_msg(cli, "created mediated device %s on %s: pass %s to the container\n", m.uuid, m.parent,
            node ? node : "");
    r = text ? cli_out(text) : -ENOMEM;
  }
  kgb_mdev_release(&m);
  return r < 0 ? EXIT_FAIL : EXIT_OK;
}

static int run_mdev_remove(struct cli *cli, int argc, char **argv) {
  struct host_opts o = {0};
  int r = parse(cli, "host mdev remove", "sysfs", argc, argv, 1, 1, &o);
  if (r != EXIT_OK)
    return r;
  if (cli->dry_run)
    return dry_run("would write 1 to %s/bus/mdev/devices/%s/remove\n", cli->ctx->sysfs, o.args[0]);
  r = kgb_mdev_remove(cli->ctx, o.args[0]);
  if (r < 0)
    return cli_fail(cli, r, "host mdev remove");
  cli_msg(cli, "removed mediated device %s\n", o.args[0]);
  if (cli->json) {
    struct json j = JSON_INIT;
    json_object_begin(&j, NULL, JSON_INLINE);
    json_string(&j, "removed", o.args[0]);
    json_object_end(&j);
    if (cli_out_json(&j) < 0)
      return EXIT_FAIL;
  }
  return EXIT_OK;
}

#define HOST_VERB(name_, run_, summary_)                                                           \
  { .name = name_, .run = run_, .summary = summary_, .options = options, .shortopts = "p:" }

static const struct cli_command mdev_verbs[] = {
    HOST_VERB("list", run_mdev_list, "mediated device types and the devices that exist"),
    HOST_VERB("create", run_mdev_create, "create a vGPU of a type (writes a UUID to 'create')"),
    HOST_VERB("remove", run_mdev_remove, "remove a vGPU by its UUID"),
};

static const struct cli_command host_verbs[] = {
    HOST_VERB("check", run_check, "is this host ready for GPU passthrough (exit 3 when not)"),
    HOST_VERB("bind", run_bind, "give a GPU to vfio-pci (driver_override flow)"),
    HOST_VERB("unbind", run_unbind, "give a GPU back to the driver it had"),
    {.name = "mdev",
     .summary = "list, create and remove mediated devices (vGPUs)",
     .verbs = mdev_verbs,
     .n_verbs = ELEMENTSOF(mdev_verbs)},
};

static const char host_help[] =
    "usage: kata-gpu-builder host check [-p PROFILE] [--sysfs DIR] [--proc DIR] [--boot DIR]\n"
    "                                   [--dev DIR] [--pci-ids FILE]\n"
    "       kata-gpu-builder host bind|unbind BDF [--sysfs DIR] [--dev DIR]\n"
    "       kata-gpu-builder host mdev list [--sysfs DIR] [--dev DIR]\n"
    "       kata-gpu-builder host mdev create TYPE [--parent BDF] [--uuid UUID] [--sysfs DIR]\n"
    "       kata-gpu-builder host mdev remove UUID [--sysfs DIR]\n\n"
    "check: reads the host kernel's config (<boot>/config-<release>, else <proc>/config.gz)\n"
    "for the VFIO options (and GVT-g's for intel-gvt-g), the command line (<proc>/cmdline)\n"
    "for what the profile needs, the IOMMU groups, every GPU (PCI class 0x03) with its driver,\n"
    "IOMMU group and the group's other members, BARs, SR-IOV and mdev types, whether\n"
    "<dev>/vfio/<group> exists, and MIG through nvidia-smi when it is installed. It prints a\n"
    "table (or with --json one document) and each problem with its exact fix; exit 0 when the\n"
    "host is ready for the profile (or, without -p, for GPU passthrough at all), 3 when not.\n"
    "Names come from pci.ids (--pci-ids, $KGB_PCI_IDS, default /usr/share/misc/pci.ids).\n\n"
    "bind: the driver_override flow: remembers the current driver in\n"
    "<workdir>/host/<BDF>.driver, writes vfio-pci to driver_override, unbinds, writes the BDF\n"
    "to drivers_probe and checks that vfio-pci took the device; prints /dev/vfio/<group>.\n"
    "unbind: clears driver_override, unbinds from vfio-pci, reprobes and checks that the\n"
    "remembered driver took it back.\n"
    "mdev create: writes a UUID to the type's 'create' file (on --parent, else on the first\n"
    "device with an instance available; refused when available_instances is 0) and prints the\n"
    "new device's IOMMU group and /dev/vfio/<group>. mdev remove writes 1 to its 'remove'.\n\n"
    "Writing needs root when --sysfs is the real /sys, and fails before anything is written\n"
    "otherwise; on any other --sysfs (a fixture tree) no privilege is needed.\n\n"
    "examples:\n"
    "  kata-gpu-builder host check -p nvidia-gpu\n"
    "  sudo kata-gpu-builder host bind 0000:d0:00.0\n"
    "  sudo kata-gpu-builder host mdev create i915-GVTg_V4_8 --parent 0000:00:02.0\n";

const struct cli_command cli_cmd_host = {
    .name = "host",
    .summary = "host readiness, vfio-pci binding, mediated devices",
    .verbs = host_verbs,
    .n_verbs = ELEMENTSOF(host_verbs),
    .help = host_help,
};
