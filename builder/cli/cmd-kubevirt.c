/* `kubevirt`: KubeVirt's permittedHostDevices for this host's GPUs and a profile. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kubevirt.h"
#include "pci.h"
#include "sbuf.h"
#include "util.h"

static void render_yaml(struct sbuf *sb, const char *list, const char *selector_key,
                        const struct kgb_kubevirt_plan *pl) {
  sbuf_addf(sb, "  %s:\n", list);
  for (size_t i = 0; i < pl->n; i++) {
    const struct kgb_kubevirt_entry *e = &pl->entries[i];
    if (e->comment)
      sbuf_addf(sb, "    # %s\n", e->comment);
    sbuf_addf(sb, "    - %s: ", selector_key);
    sbuf_add_json(sb, e->selector);
    sbuf_adds(sb, "\n      resourceName: ");
    sbuf_add_json(sb, e->resource);
    sbuf_adds(sb, "\n");
    if (pl->external_provider)
      sbuf_adds(sb, "      externalResourceProvider: true\n");
  }
}

static void render_json(struct sbuf *sb, const char *list, const char *selector_key,
                        const struct kgb_kubevirt_plan *pl) {
  sbuf_addf(sb, "{\n  \"permittedHostDevices\": {\n    \"%s\": [", list);
  for (size_t i = 0; i < pl->n; i++) {
    const struct kgb_kubevirt_entry *e = &pl->entries[i];
    sbuf_addf(sb, "%s\n      {\"%s\": ", i ? "," : "", selector_key);
    sbuf_add_json(sb, e->selector);
    sbuf_adds(sb, ", \"resourceName\": ");
    sbuf_add_json(sb, e->resource);
    if (pl->external_provider)
      sbuf_adds(sb, ", \"externalResourceProvider\": true");
    sbuf_adds(sb, "}");
  }
  sbuf_adds(sb, pl->n ? "\n    ]" : "]");
  sbuf_adds(sb, "\n  }\n}\n");
}

char *cli_kubevirt_render(const struct kgb_kubevirt_plan *pl, bool json) {
  const char *list = pl->mdev ? "mediatedDevices" : "pciHostDevices";
  const char *key = pl->mdev ? "mdevNameSelector" : "pciVendorSelector";
  struct sbuf sb = SBUF_INIT;
  if (json) {
    render_json(&sb, list, key, pl);
    return sbuf_steal(&sb);
  }
  sbuf_addf(&sb,
            "# KubeVirt permittedHostDevices for profile '%s' and this host's GPUs, generated "
            "by kata-gpu-builder:\n# put it under spec.configuration of the KubeVirt "
            "resource.\n",
            pl->profile);
  if (pl->mdev && !pl->from_existing)
    sbuf_adds(&sb, "# No vGPU exists yet: every type the GPUs offer is listed.\n");
  if (pl->external_provider)
    sbuf_adds(&sb, "# externalResourceProvider: a device plugin (such as NVIDIA's KubeVirt "
                   "GPU device plugin) provides the resources.\n");
  sbuf_adds(&sb, "permittedHostDevices:\n");
  render_yaml(&sb, list, key, pl);
  return sbuf_steal(&sb);
}

enum { O_EXTERNAL = 0x100, O_SYSFS, O_PCI_IDS };
static const struct option options[] = {{"profile", required_argument, NULL, 'p'},
                                        {"external-provider", no_argument, NULL, O_EXTERNAL},
                                        {"sysfs", required_argument, NULL, O_SYSFS},
                                        {"pci-ids", required_argument, NULL, O_PCI_IDS},
                                        {}};

static int run_kubevirt(struct cli *cli, int argc, char **argv) {
  const char *profile = NULL;
  const char *env = getenv("KGB_PCI_IDS");
  struct kgb_kubevirt_opts o = {0};
  o.pci_ids = env                                    ? (*env ? env : NULL)
              : is_file(KGB_PCI_IDS_DEFAULT)         ? KGB_PCI_IDS_DEFAULT
              : is_file("/usr/share/hwdata/pci.ids") ? "/usr/share/hwdata/pci.ids"
                                                     : NULL;
  int c;
  while ((c = getopt_long(argc, argv, "p:", options, NULL)) != -1) {
    switch (c) {
    case 'p':
      profile = optarg;
      break;
    case O_EXTERNAL:
      o.external_provider = true;
      break;
    case O_SYSFS:
      if (kgb_ctx_set_string(&cli->ctx->sysfs, optarg) < 0)
        return EXIT_FAIL;
      break;
    case O_PCI_IDS:
      o.pci_ids = optarg;
      break;
    default:
      return cli_bad_option(cli, "kubevirt", argv[optind - 1], options);
    }
  }
  if (optind < argc)
    return cli_usage(cli, "kubevirt: unexpected argument '%s'", argv[optind]);
  if (!profile)
    return cli_usage(cli, "kubevirt: -p PROFILE is required ('kata-gpu-builder profiles' lists "
                          "them)");
  _cleanup_(kgb_profile_freep) struct kgb_profile *p = NULL;
  int r = kgb_profile_load(cli->ctx, profile, &p);
  if (r < 0)
    return cli_fail(cli, r, NULL);
  _cleanup_(kgb_kubevirt_plan_freep) struct kgb_kubevirt_plan *pl = NULL;
  r = kgb_kubevirt_plan(cli->ctx, p, &o, &pl);
  if (r < 0)
    return cli_fail(cli, r, "kubevirt");
  _cleanup_free_ char *text = cli_kubevirt_render(pl, cli->json);
  if (!text)
    return cli_fail(cli, -ENOMEM, "kubevirt");
  return cli_out(text) < 0 ? EXIT_FAIL : EXIT_OK;
}

static const char kubevirt_help[] =
    "usage: kata-gpu-builder kubevirt -p PROFILE [--external-provider] [--sysfs DIR]\n"
    "                                 [--pci-ids FILE]\n\n"
    "Prints the permittedHostDevices section of the KubeVirt resource (its\n"
    "spec.configuration) for the profile's GPUs on this host: for passthrough profiles\n"
    "pciHostDevices with pciVendorSelector \"VVVV:DDDD\" and resourceName\n"
    "<vendor>.com/<NAME>, where NAME is the device's pci.ids name in upper case with spaces,\n"
    "'/' and '.' as '_' and other punctuation dropped (NVIDIA's KubeVirt device plugin names\n"
    "its resources so); for vGPU profiles mediatedDevices with mdevNameSelector (the mdev\n"
    "type's name) of the vGPUs that exist, or of every type offered when none does.\n"
    "--json prints the same as JSON.\n\n"
    "options:\n"
    "  -p, --profile NAME|FILE  the profile\n"
    "      --external-provider  externalResourceProvider: true (a device plugin provides the\n"
    "                           resources, as NVIDIA's does)\n"
    "      --sysfs DIR          read the GPUs from DIR instead of /sys\n"
    "      --pci-ids FILE       device names (default $KGB_PCI_IDS, /usr/share/misc/pci.ids)\n\n"
    "example:\n"
    "  kata-gpu-builder kubevirt -p nvidia-gpu --external-provider\n";

const struct cli_command cli_cmd_kubevirt = {
    .name = "kubevirt",
    .run = run_kubevirt,
    .summary = "KubeVirt permittedHostDevices for this host's GPUs",
    .options = options,
    .shortopts = "p:",
    .help = kubevirt_help,
};
