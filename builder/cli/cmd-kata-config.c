/* `kata-config`: Kata's configuration.toml settings for a profile, a Kata version and this
 * host's GPUs, as TOML on stdout, a file, a drop-in, or an in-place patch. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "kata-config.h"
#include "sbuf.h"
#include "util.h"

struct kata_opts {
  const char *profile;
  const char *output;
  const char *drop_in;
  const char *patch;
  int priority;
  bool check;
  bool explain;
  struct kgb_kata_opts engine;
};

enum {
  O_VERSION = 0x100,
  O_SYSFS,
  O_GPU,
  O_PREFIX,
  O_DROP_IN,
  O_PRIORITY,
  O_PATCH,
  O_CHECK,
  O_VIRGL,
  O_RUNTIME,
  O_ALLOW_LOSS,
  O_BASE,
  O_EXPLAIN,
};
static const struct option options[] = {{"profile", required_argument, NULL, 'p'},
                                        {"kata-version", required_argument, NULL, O_VERSION},
                                        {"runtime", required_argument, NULL, O_RUNTIME},
                                        {"allow-loss", no_argument, NULL, O_ALLOW_LOSS},
                                        {"base", required_argument, NULL, O_BASE},
                                        {"explain", no_argument, NULL, O_EXPLAIN},
                                        {"sysfs", required_argument, NULL, O_SYSFS},
                                        {"gpu", required_argument, NULL, O_GPU},
                                        {"prefix", required_argument, NULL, O_PREFIX},
                                        {"output", required_argument, NULL, 'o'},
                                        {"drop-in", required_argument, NULL, O_DROP_IN},
                                        {"priority", required_argument, NULL, O_PRIORITY},
                                        {"patch", required_argument, NULL, O_PATCH},
                                        {"check", no_argument, NULL, O_CHECK},
                                        {"experimental-virgl", no_argument, NULL, O_VIRGL},
                                        {}};

static int parse(struct cli *cli, int argc, char **argv, struct kata_opts *o) {
  int c;
  while ((c = getopt_long(argc, argv, "p:o:", options, NULL)) != -1) {
    switch (c) {
    case 'p':
      o->profile = optarg;
      break;
    case O_VERSION:
      o->engine.kata_version = optarg;
      break;
    case O_RUNTIME:
      if (kgb_kata_runtime_from_string(optarg) < 0)
        return cli_usage(cli, "kata-config: --runtime takes go or rs, not '%s'", optarg);
      o->engine.runtime = optarg;
      break;
    case O_ALLOW_LOSS:
      o->engine.allow_loss = true;
      break;
    case O_BASE:
      o->engine.base = optarg;
      break;
    case O_EXPLAIN:
      o->explain = true;
      break;
    case O_SYSFS:
      if (kgb_ctx_set_string(&cli->ctx->sysfs, optarg) < 0)
        return EXIT_FAIL;
      break;
    case O_GPU:
      o->engine.gpu = optarg;
      break;
    case O_PREFIX:
      if (optarg[0] != '/')
        return cli_usage(cli, "kata-config: --prefix takes an absolute path, not '%s'", optarg);
      o->engine.prefix = optarg;
      break;
    case 'o':
      o->output = optarg;
      break;
    case O_DROP_IN:
      o->drop_in = optarg;
      break;
    case O_PRIORITY: {
      char *end;
      long n = strtol(optarg, &end, 10);
      if (*end || end == optarg || n < 50 || n > 89)
        return cli_usage(cli,
                         "kata-config: --priority takes a number from 50 to 89 (custom drop-ins), "
                         "not '%s'",
                         optarg);
      o->priority = (int)n;
      break;
    }
    case O_PATCH:
      o->patch = optarg;
      break;
    case O_CHECK:
      o->check = true;
      break;
    case O_VIRGL:
      o->engine.experimental_virgl = true;
      break;
    default:
      return cli_bad_option(cli, "kata-config", argv[optind - 1], options);
    }
  }
  if (optind < argc)
    return cli_usage(cli, "kata-config: unexpected argument '%s'", argv[optind]);
  if (!o->profile)
    return cli_usage(cli, "kata-config: -p PROFILE is required ('kata-gpu-builder profiles' "
                          "lists them)");
  if (!!o->output + !!o->drop_in + !!o->patch > 1)
    return cli_usage(cli, "kata-config: -o, --drop-in and --patch exclude each other");
  if (o->check && !o->patch)
    return cli_usage(cli, "kata-config: --check goes with --patch FILE");
  if (o->priority && !o->drop_in)
    return cli_usage(cli, "kata-config: --priority goes with --drop-in DIR");
  if (o->explain && (o->output || o->drop_in || o->patch))
    return cli_usage(cli, "kata-config: --explain shows the effective configuration; it writes "
                          "nothing (leave out -o, --drop-in and --patch)");
  if (!o->priority)
    o->priority = KGB_DROP_IN_DEFAULT;
  o->engine.priority = o->priority;
  /* the file patched is the configuration the runtime loads */
  if (o->patch && !o->engine.base && access(o->patch, F_OK) == 0)
    o->engine.base = o->patch;
  return EXIT_OK;
}

static void render_json(struct json *j, const struct kgb_kata_plan *plan, const char *toml,
                        const char *written, const struct kgb_kata_patch_result *patch,
                        bool check) {
  json_object_begin(j, NULL, JSON_BLOCK);
  json_string(j, "profile", plan->profile);
  json_string(j, "kata_version", plan->version);
  json_string(j, "runtime", kgb_kata_runtime_to_string(plan->release.runtime));
  json_string(j, "kata_version_from", plan->release_source);
  json_strv(j, "gpus", plan->gpus);
  json_string_or_null(j, "large_bar", plan->large_bar);
  json_strv(j, "header", plan->header);
  json_array_begin(j, "settings", JSON_BLOCK);
  for (size_t i = 0; i < plan->n_settings; i++) {
    const struct kgb_kata_setting *s = &plan->settings[i];
    json_object_begin(j, NULL, JSON_INLINE);
    json_string(j, "table", s->table);
    json_string(j, "key", s->key);
    json_string(j, "value", s->value); /* TOML text */
    json_string(j, "why", s->why);
    json_bool(j, "clear", s->clear);
    json_object_end(j);
  }
  json_array_end(j);
  json_string(j, "toml", toml);
  json_string_or_null(j, "written", written);
  const struct kgb_kata_effective *e = plan->effective;
  if (e) {
    json_object_begin(j, "effective", JSON_BLOCK);
    json_string(j, "base", e->base);
    json_string(j, "resolved", e->resolved);
    json_string(j, "config_d", e->config_d);
    json_strv(j, "dropins", e->dropins);
    json_strv(j, "later_dropins", e->later_dropins);
    json_array_begin(j, "keys", JSON_BLOCK);
    for (size_t i = 0; i < plan->n_settings; i++) {
      const struct kgb_kata_setting *s = &plan->settings[i];
      const struct kgb_kata_value *v = kgb_kata_effective_get(e, s->table, s->key);
      const struct kgb_kata_value *l = kgb_kata_effective_later(e, s->table, s->key);
      json_object_begin(j, NULL, JSON_INLINE);
      json_string(j, "table", s->table);
      json_string(j, "key", s->key);
      json_string_or_null(j, "before", v ? v->value : NULL);
      json_string_or_null(j, "from", v ? v->file : NULL);
      json_uint(j, "line", v ? v->line : 0);
      json_string(j, "after", l ? l->value : s->value);
      json_string(j, "after_from", l ? l->file : "this profile");
      json_object_end(j);
    }
    json_array_end(j);
    json_object_end(j);
  } else {
    json_null(j, "effective");
  }
  if (patch) {
    json_object_begin(j, "patch", JSON_INLINE);
    json_string(j, "path", patch->path);
    json_bool(j, "check", check);
    json_uint(j, "changes", patch->changes);
    json_string_or_null(j, "backup", patch->backup);
    json_string(j, "diff", patch->diff);
    json_object_end(j);
  } else {
    json_null(j, "patch");
  }
  json_object_end(j);
}

/* --explain: each key the profile sets, what the runtime loads today and from where, and what
 * it loads with this profile's settings */
static void explain(struct sbuf *out, const struct kgb_kata_plan *plan) {
  const struct kgb_kata_effective *e = plan->effective;
  sbuf_addf(out, "Kata %s (%s): ", plan->version, kgb_kata_runtime_label(plan->release.runtime));
  if (!e) {
    sbuf_adds(out, "no configuration found (--base FILE, or Kata's search order: ");
    for (size_t i = 0; kgb_kata_config_search[i]; i++)
      sbuf_addf(out, "%s%s", i ? ", " : "", kgb_kata_config_search[i]);
    sbuf_adds(out, "); the values before are Kata's defaults\n");
  } else {
    sbuf_addf(out, "%s", e->base);
    if (!STREQ(e->base, e->resolved))
      sbuf_addf(out, " -> %s", e->resolved);
    sbuf_addf(out, "\n  drop-ins in %s:", e->config_d);
    if (!e->dropins && !e->later_dropins)
      sbuf_adds(out, " none");
    for (size_t i = 0; e->dropins && e->dropins[i]; i++)
      sbuf_addf(out, " %s", strrchr(e->dropins[i], '/') + 1);
    for (size_t i = 0; e->later_dropins && e->later_dropins[i]; i++)
      sbuf_addf(out, " %s (after this one)", strrchr(e->later_dropins[i], '/') + 1);
    sbuf_addc(out, '\n');
  }
  for (size_t i = 0; i < plan->n_settings; i++) {
    const struct kgb_kata_setting *s = &plan->settings[i];
    const struct kgb_kata_value *v = kgb_kata_effective_get(e, s->table, s->key);
    const struct kgb_kata_value *l = kgb_kata_effective_later(e, s->table, s->key);
    sbuf_addf(out, "%s.%s\n  now:  ", s->table, s->key);
    if (v)
      sbuf_addf(out, "%s (%s:%u)\n", v->value, v->file, v->line);
    else
      sbuf_adds(out, "Kata's default\n");
    if (l)
      sbuf_addf(out, "  then: %s (%s:%u, which sorts after this drop-in)\n", l->value, l->file,
                l->line);
    else
      sbuf_addf(out, "  then: %s (this profile: %s)\n", s->value, s->why);
  }
}

static int run_kata_config(struct cli *cli, int argc, char **argv) {
  struct kata_opts o = {0};
  int r = parse(cli, argc, argv, &o);
  if (r != EXIT_OK)
    return r;
  _cleanup_(kgb_profile_freep) struct kgb_profile *p = NULL;
  r = kgb_profile_load(cli->ctx, o.profile, &p);
  if (r < 0)
    return cli_fail(cli, r, NULL);
  _cleanup_(kgb_kata_plan_freep) struct kgb_kata_plan *plan = NULL;
  r = kgb_kata_plan(cli->ctx, p, &o.engine, &plan);
  if (r < 0)
    return cli_fail(cli, r, "kata-config");
  _cleanup_free_ char *toml = kgb_kata_render(plan);
  if (!toml)
    return cli_fail(cli, -ENOMEM, "kata-config");
  if (o.engine.experimental_virgl && (o.drop_in || o.patch))
    cli_warn(cli, "writing virgl's experimental settings into a file the runtime reads: a stock "
                  "Kata runtime does not know them");
  _cleanup_free_ char *written = NULL;
  struct kgb_kata_patch_result patch = {0};
  int status = EXIT_OK;
  struct sbuf out = SBUF_INIT;
  if (o.output) {
    r = write_file_output(o.output, toml, strlen(toml), 0644);
    if (r < 0) {
      kgb_error(cli->ctx, r, "cannot write '%s': %s", o.output, file_error_reason(o.output, r, 0));
      return cli_fail(cli, r, "kata-config");
    }
    written = strdup(o.output);
    cli_msg(cli, "kata-config: wrote %s\n", o.output);
  } else if (o.drop_in) {
    r = kgb_kata_drop_in(cli->ctx, plan, o.drop_in, o.priority, &written);
    if (r < 0)
      return cli_fail(cli, r, "kata-config");
    cli_msg(cli, "kata-config: wrote the drop-in %s\n", written);
    if (!cli->json)
      sbuf_addf(&out, "%s\n", written);
  } else if (o.patch) {
    r = kgb_kata_patch_file(cli->ctx, plan, o.patch, o.check, &patch);
    if (r < 0)
      return cli_fail(cli, r, "kata-config --patch");
    if (!patch.changes)
      cli_msg(cli, "kata-config: %s already has these settings: nothing to change\n", patch.path);
    else if (o.check)
      cli_msg(cli, "kata-config: %s differs in %u place%s (nothing written)\n", patch.path,
              patch.changes, patch.changes == 1 ? "" : "s");
    else
      cli_msg(cli, "kata-config: patched %s in %u place%s; the original is in %s\n", patch.path,
              patch.changes, patch.changes == 1 ? "" : "s", patch.backup);
    if (o.check && patch.changes)
      status = EXIT_MISMATCH;
    if (!cli->json)
      sbuf_adds(&out, patch.diff);
  } else if (o.explain && !cli->json) {
    explain(&out, plan);
  } else if (!cli->json) {
    sbuf_adds(&out, toml);
  }
  if (cli->json) {
    struct json j = JSON_INIT;
    render_json(&j, plan, toml, written, o.patch ? &patch : NULL, o.check);
    r = cli_out_json(&j);
  } else {
    r = cli_out_sbuf(&out);
  }
  kgb_kata_patch_result_release(&patch);
  sbuf_release(&out);
  return r < 0 ? EXIT_FAIL : status;
}

static const char kata_config_help[] =
    "usage: kata-gpu-builder kata-config -p PROFILE [--kata-version V] [--sysfs DIR]\n"
    "         [--gpu BDF] [--prefix DIR] [-o FILE | --drop-in DIR [--priority N] |\n"
    "         --patch FILE [--check]] [--experimental-virgl]\n\n"
    "Prints the configuration.toml keys that the profile needs, and only those, each with a\n"
    "comment saying why: the installed kernel and image, the machine type, kernel parameters,\n"
    "memory, guest hooks, the modules the agent loads, the VFIO mode, and the VFIO topology.\n"
    "The host decides the topology: the GPUs' BARs are read from <sysfs>/bus/pci/devices; a\n"
    "64-bit BAR of 4 GiB or more means q35 with PCIe root ports, one per GPU. With no GPU of\n"
    "the profile's vendor, the profile's defaults (and a comment says so).\n\n"
    "Keys follow the Kata release and runtime: only keys that release's runtime reads are\n"
    "written (the table is docs/kata-keys.tsv, read off Kata's source at every release), and a\n"
    "setting the profile needs that the release cannot express is an error that says what\n"
    "would be lost (--allow-loss writes the rest and warns). The Go runtime uses\n"
    "hot_plug_vfio/cold_plug_vfio from 3.2, hotplug_vfio_on_root_bus before (large BARs need\n"
    "1.11 or later); runtime-rs 4.x only cold-plugs. Intel profiles with 1.x use the pc\n"
    "machine type with VFIO on the root bus. Drop-ins are read by the Go runtime from 2.5.0 on\n"
    "(runtime-rs always): for an older release --drop-in is refused, use --patch.\n\n"
    "Installed names: <prefix>/share/kata-containers/vmlinuz-<vendor>-gpu.container for the\n"
    "kernel, kata-containers-<profile>.img (image) or kata-containers-initrd-<profile>.img\n"
    "(initrd) beside it.\n\n"
    "options:\n"
    "  -p, --profile NAME|FILE  the profile ('kata-gpu-builder profiles' lists them)\n"
    "      --kata-version V     a release (3.2.0), a minor line (3.2: its newest patch) or a\n"
    "                           major line (3.x: its newest release); default: the installed\n"
    "                           runtime's (kata-runtime or containerd-shim-kata-v2 --version),\n"
    "                           else the newest known\n"
    "      --runtime go|rs      the Go runtime or runtime-rs (default: the installed shim's,\n"
    "                           else go)\n"
    "      --allow-loss         write what the release can express; warn about the rest\n"
    "      --base FILE|none     the configuration the runtime loads (default $KGB_KATA_BASE,\n"
    "                           else /etc/kata-containers/configuration.toml, else the\n"
    "                           shipped defaults under /usr or /opt/kata); its config.d\n"
    "                           drop-ins (beside the symlink-resolved file) are merged as Kata\n"
    "                           merges them, and what is written keeps what they set:\n"
    "                           kernel_params gets the profile's parameters added, an image\n"
    "                           profile clears a base's initrd (with --patch: the file patched)\n"
    "      --explain            each key the profile sets: its value now and where it comes\n"
    "                           from, and its value with this profile's settings\n"
    "      --sysfs DIR          read the GPUs from DIR instead of /sys\n"
    "      --gpu BDF            decide the topology from this GPU only\n"
    "      --prefix DIR         where Kata's files are installed (default /usr; kata-deploy\n"
    "                           uses /opt/kata)\n"
    "  -o, --output FILE        write the TOML to FILE instead of stdout\n"
    "      --drop-in DIR        write DIR/50-kata-gpu-<profile>.toml (for Kata's config.d/)\n"
    "      --priority N         the drop-in's number, 50 to 89 (default 50)\n"
    "      --patch FILE         edit an existing configuration.toml in place: each key is set\n"
    "                           in its table, a commented-out '#key = ...' is uncommented, a\n"
    "                           missing key is added at the end of its table; every other byte\n"
    "                           stays; the original goes to FILE.bak; the diff goes to stdout\n"
    "      --check              with --patch: print the diff, write nothing, exit 3 when the\n"
    "                           file differs\n"
    "      --experimental-virgl virgl's QEMU settings (virtio_gpu, display), which only a\n"
    "                           runtime patched for them understands\n\n"
    "examples:\n"
    "  kata-gpu-builder kata-config -p nvidia-gpu --kata-version 2.x\n"
    "  sudo kata-gpu-builder kata-config -p nvidia-gpu --drop-in /etc/kata-containers/config.d\n"
    "  kata-gpu-builder kata-config -p intel-gvt-d --patch configuration.toml --check\n";

const struct cli_command cli_cmd_kata_config = {
    .name = "kata-config",
    .run = run_kata_config,
    .summary = "Kata configuration.toml settings for a profile and host",
    .help = kata_config_help,
    .options = options,
    .shortopts = "p:o:",
};
