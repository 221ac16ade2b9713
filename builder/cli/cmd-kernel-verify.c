/* `kernel verify`: the config embedded in a built kernel (vmlinux or bzImage) against a
 * profile's required values, or the vermagic of every module under a directory against a
 * kernel release. Exit 3 on any mismatch, with one line per symbol or module. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ikconfig.h"
#include "json.h"
#include "profile.h"
#include "sbuf.h"
#include "util.h"

#define VERIFY_USAGE                                                                               \
  "usage: kata-gpu-builder kernel verify -p PROFILE [-o CONFIG] FILE\n"                            \
  "       kata-gpu-builder kernel verify --modules DIR --release KVER\n"

const char cli_kernel_verify_help[] = VERIFY_USAGE
    "\n"
    "Reads the config that CONFIG_IKCONFIG embeds in a built kernel (a vmlinux, or a\n"
    "bzImage whose payload is gzip, xz, zstd, lz4, lzma, bzip2 or lzo) and checks the\n"
    "profile's required values in it; or checks that every module under DIR (.ko,\n"
    ".ko.gz, .ko.xz, .ko.zst) was built for release KVER. Exit 3 on any mismatch.\n\n"
    "options:\n"
    "  -p, --profile NAME|FILE   the profile whose kernel.required values must be present\n"
    "  -o, --output FILE         also write the embedded config to FILE\n"
    "      --modules DIR         check the vermagic of the modules under DIR\n"
    "      --release KVER        the release they must match ('uname -r' of the guest)\n\n"
    "examples:\n"
    "  kata-gpu-builder kernel verify -p virgl vmlinuz-6.1.192-1-virgl-gpu\n"
    "  kata-gpu-builder kernel verify --modules rootfs/lib/modules/6.1.192-virgl-gpu \\\n"
    "      --release 6.1.192-virgl-gpu\n";

const struct option cli_kernel_verify_options[] = {{"profile", required_argument, NULL, 'p'},
                                                   {"output", required_argument, NULL, 'o'},
                                                   {"modules", required_argument, NULL, 'M'},
                                                   {"release", required_argument, NULL, 'r'},
                                                   {}};

struct verify_opts {
  const char *profile;
  const char *output;
  const char *modules;
  const char *release;
  const char *file;
};

static int parse_verify_opts(struct cli *cli, int argc, char **argv, struct verify_opts *o) {
  int c;
  while ((c = getopt_long(argc, argv, "p:o:", cli_kernel_verify_options, NULL)) != -1) {
    switch (c) {
    case 'p':
      o->profile = optarg;
      break;
    case 'o':
      o->output = optarg;
      break;
    case 'M':
      o->modules = optarg;
      break;
    case 'r':
      o->release = optarg;
      break;
    default:
      return cli_bad_option(cli, "kernel verify", argv[optind - 1], cli_kernel_verify_options);
    }
  }
  if (optind < argc)
    o->file = argv[optind++];
  if (optind < argc)
    return cli_usage(cli, "kernel verify: unexpected argument '%s'", argv[optind]);
  if (o->modules) {
    if (!o->release || !*o->release)
      return cli_usage(cli, "kernel verify: --modules needs --release KVER (the kernel's "
                            "'uname -r', e.g. 6.1.192-nvidia-gpu)");
    if (o->file || o->profile || o->output)
      return cli_usage(cli, "kernel verify: --modules checks modules only; verify the kernel "
                            "FILE with -p PROFILE in a separate run");
    return EXIT_OK;
  }
  if (o->release)
    return cli_usage(cli, "kernel verify: --release goes with --modules DIR");
  if (!o->file)
    return cli_usage(cli, "kernel verify: which kernel? give a vmlinux or bzImage FILE\n%s",
                     VERIFY_USAGE);
  if (!o->profile)
    return cli_usage(cli,
                     "kernel verify: -p PROFILE is required (the profile whose required "
                     "values '%s' must have)",
                     o->file);
  return EXIT_OK;
}

static int verify_kernel(struct cli *cli, const struct verify_opts *o) {
  _cleanup_(kgb_profile_freep) struct kgb_profile *p = NULL;
  int r = kgb_profile_load(cli->ctx, o->profile, &p);
  if (r < 0)
    return cli_fail(cli, r, NULL);
  _cleanup_free_ char *config = NULL;
  struct kgb_ikconfig_info info = {0};
  r = kgb_ikconfig_read_info(cli->ctx, o->file, &config, &info);
  if (r < 0)
    return cli_fail(cli, r, NULL);
  if (o->output) {
    r = write_file_output(o->output, config, strlen(config), 0644);
    if (r < 0) {
      cli_error(cli, "cannot write '%s': %s", o->output, file_error_reason(o->output, r, 0));
      return EXIT_FAIL;
    }
  }
  _cleanup_free_ char *name = kgb_strdup_printf("%s (embedded config)", o->file);
  _cleanup_(kgb_required_check_freep) struct kgb_required_check *check = NULL;
  r = name ? kgb_verify_required(cli->ctx, name, config, p->kernel.required, &check) : -ENOMEM;
  if (r < 0)
    return cli_fail(cli, r, NULL);

  if (STREQ(info.format, "bzImage"))
    cli_msg(cli, "kernel verify: '%s' (bzImage, %s payload of %.1f %s), profile '%s'\n", o->file,
            info.compression,
            (double)info.payload_size / (info.payload_size >= 1 << 20 ? 1 << 20 : 1 << 10),
            info.payload_size >= 1 << 20 ? "MiB" : "KiB", p->name);
  else
    cli_msg(cli, "kernel verify: '%s' (ELF, config in %s), profile '%s'\n", o->file, info.section,
            p->name);
  for (size_t i = 0; i < check->n_mismatches; i++) {
    const struct kgb_required_mismatch *m = &check->mismatches[i];
    bool want_off = STREQ(m->required, "n");
    cli_err(cli, "%s: %s is %s%s, but profile '%s' requires %s%s\n", o->file, m->symbol, m->actual,
            m->absent ? " (not in the kernel's config)" : "", p->name, want_off ? "it off" : "",
            want_off ? "" : m->required);
  }
  if (check->n_mismatches)
    cli_err(cli, "kata-gpu-builder: %zu of %zu required value%s missing from '%s'\n",
            check->n_mismatches, check->n_checked, check->n_checked == 1 ? "" : "s", o->file);
  else
    cli_msg(cli, "  all %zu required values present\n", check->n_checked);

  if (cli->json) {
    struct json j = JSON_INIT;
    json_object_begin(&j, NULL, JSON_BLOCK);
    json_string_or_null(&j, "file", o->file);
    json_string_or_null(&j, "profile", p->name);
    json_string_or_null(&j, "format", info.format);
    json_string_or_null(&j, "compression", info.compression);
    json_uint(&j, "checked", check->n_checked);
    json_array_begin(&j, "mismatches", JSON_BLOCK);
    for (size_t i = 0; i < check->n_mismatches; i++) {
      const struct kgb_required_mismatch *m = &check->mismatches[i];
      json_object_begin(&j, NULL, JSON_INLINE);
      json_string(&j, "symbol", m->symbol);
      json_string(&j, "required", m->required);
      json_string(&j, "actual", m->actual);
      json_object_end(&j);
    }
    json_array_end(&j);
    json_object_end(&j);
    if (cli_out_json(&j) < 0)
      return EXIT_FAIL;
  }
  return check->n_mismatches ? EXIT_MISMATCH : EXIT_OK;
}

static int verify_modules(struct cli *cli, const struct verify_opts *o) {
  _cleanup_(kgb_modules_check_freep) struct kgb_modules_check *check = NULL;
  int r = kgb_modules_vermagic_check(cli->ctx, o->modules, o->release, &check);
  if (r < 0)
    return cli_fail(cli, r, NULL);
  cli_msg(cli, "kernel verify: %zu modules under '%s', release '%s'\n", check->n_checked,
          o->modules, o->release);
  for (size_t i = 0; i < check->n_mismatches; i++) {
    const struct kgb_module_mismatch *m = &check->mismatches[i];
    _cleanup_free_ char *path = strjoin_path(o->modules, m->path);
    if (m->problem)
      cli_err(cli, "%s: %s\n", path ? path : m->path, m->problem);
    else
      cli_err(cli, "%s: vermagic '%s' is not for release '%s'\n", path ? path : m->path,
              m->vermagic, o->release);
  }
  if (check->n_mismatches)
    cli_err(cli, "kata-gpu-builder: %zu of %zu modules do not match release '%s'\n",
            check->n_mismatches, check->n_checked, o->release);
  else
    cli_msg(cli, "  every module matches\n");

  if (cli->json) {
    struct json j = JSON_INIT;
    json_object_begin(&j, NULL, JSON_BLOCK);
    json_string_or_null(&j, "modules", o->modules);
    json_string_or_null(&j, "release", o->release);
    json_uint(&j, "checked", check->n_checked);
    json_array_begin(&j, "mismatches", JSON_BLOCK);
    for (size_t i = 0; i < check->n_mismatches; i++) {
      const struct kgb_module_mismatch *m = &check->mismatches[i];
      json_object_begin(&j, NULL, JSON_INLINE);
      json_string(&j, "module", m->path);
      json_string_or_null(&j, "vermagic", m->vermagic);
      json_string_or_null(&j, "problem", m->problem);
      json_object_end(&j);
    }
    json_array_end(&j);
    json_object_end(&j);
    if (cli_out_json(&j) < 0)
      return EXIT_FAIL;
  }
  return check->n_mismatches ? EXIT_MISMATCH : EXIT_OK;
}

int cli_kernel_verify(struct cli *cli, int argc, char **argv) {
  struct verify_opts o = {0};
  int r = parse_verify_opts(cli, argc, argv, &o);
  if (r != EXIT_OK)
    return r;
  return o.modules ? verify_modules(cli, &o) : verify_kernel(cli, &o);
}
