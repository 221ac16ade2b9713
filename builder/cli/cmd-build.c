/* `build`: the whole pipeline for one profile, ending with a table of the stages. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "json.h"
#include "pipeline.h"
#include "sbuf.h"
#include "util.h"

static void print_table(struct cli *cli, const struct kgb_pipeline_result *res) {
  cli_progress_done();
  cli_msg(cli, "%-8s %-9s %8s  %s\n", "STAGE", "RESULT", "TIME", "OUTPUT / WHY");
  for (int i = 0; i < _KGB_STAGE_MAX; i++) {
    const struct kgb_stage_report *s = &res->stages[i];
    cli_msg(cli, "%-8s %-9s %7.1fs  %s%s%s\n", kgb_stage_to_string(i),
            kgb_stage_state_to_string(s->state), s->seconds, s->output ? s->output : "",
            s->output && s->why ? "\n                            " : "", s->why ? s->why : "");
  }
  cli_msg(cli, "total %.1f s\n", res->seconds);
}

static void render_json(struct json *j, const struct kgb_profile *p,
                        const struct kgb_pipeline_result *res, int status) {
  json_object_begin(j, NULL, JSON_BLOCK);
  json_string(j, "profile", p->name);
  json_int(j, "status", status);
  json_double(j, "seconds", res->seconds);
  json_string_or_null(j, "destdir", res->destdir);
  json_array_begin(j, "stages", JSON_BLOCK);
  for (int i = 0; i < _KGB_STAGE_MAX; i++) {
    const struct kgb_stage_report *s = &res->stages[i];
    json_object_begin(j, NULL, JSON_INLINE);
    json_string(j, "stage", kgb_stage_to_string(i));
    json_string(j, "result", kgb_stage_state_to_string(s->state));
    json_double(j, "seconds", s->seconds);
    json_string_or_null(j, "key", s->key);
    json_string_or_null(j, "output", s->output);
    json_string_or_null(j, "why", s->why);
    json_object_end(j);
  }
  json_array_end(j);
  json_object_end(j);
}

static const struct option options[] = {{"profile", required_argument, NULL, 'p'},
                                        {"kernel-source", required_argument, NULL, 'k'},
                                        {"fragment", required_argument, NULL, 'F'},
                                        {"format", required_argument, NULL, 'T'},
                                        {"destdir", required_argument, NULL, 'D'},
                                        {"prefix", required_argument, NULL, 'P'},
                                        {"kata-version", required_argument, NULL, 'K'},
                                        {"without", required_argument, NULL, 'W'},
                                        {"set", required_argument, NULL, 'S'},
                                        {"no-ccache", no_argument, NULL, 'N'},
                                        {"force", no_argument, NULL, 'f'},
                                        {}};

static int run_build(struct cli *cli, int argc, char **argv) {
  const char *profile = "virgl", *source = NULL, *format = NULL, *destdir = NULL, *prefix = NULL,
             *kata_version = NULL;
  _cleanup_strv_free_ char **fragments = NULL, **without = NULL, **set = NULL;
  bool no_ccache = false;
  int c;
  while ((c = getopt_long(argc, argv, "p:k:f", options, NULL)) != -1) {
    switch (c) {
    case 'p':
      profile = optarg;
      break;
    case 'k':
      source = optarg;
      break;
    case 'F':
      if (strv_extend(&fragments, optarg) < 0)
        return EXIT_FAIL;
      break;
    case 'T':
      if (kgb_image_format_from_string(optarg) < 0)
        return cli_usage(cli, "build: --format takes ext4, erofs or initrd, not '%s'", optarg);
      format = optarg;
      break;
    case 'D':
      destdir = optarg;
      break;
    case 'P':
      prefix = optarg;
      break;
    case 'K':
      kata_version = optarg;
      break;
    case 'W':
      if (strv_extend(&without, optarg) < 0)
        return EXIT_FAIL;
      break;
    case 'S':
      if (!strchr(optarg, '='))
        return cli_usage(cli, "build: --set takes NAME=VALUE, not '%s'", optarg);
      if (strv_extend(&set, optarg) < 0)
        return EXIT_FAIL;
      break;
    case 'N':
      no_ccache = true;
      break;
    case 'f':
      cli->ctx->force = true;
      break;
    default:
      return cli_bad_option(cli, "build", argv[optind - 1], options);
    }
  }
  if (optind < argc)
    return cli_usage(cli, "build: unexpected argument '%s'", argv[optind]);
  _cleanup_(kgb_profile_freep) struct kgb_profile *p = NULL;
  int r = kgb_profile_load(cli->ctx, profile, &p);
  if (r < 0)
    return cli_fail(cli, r, NULL);
  struct kgb_kernel_config_opts ko = {.source = source, .fragments = fragments};
  struct kgb_build_opts bo = {.config = &ko, .no_ccache = no_ccache};
  struct kgb_rootfs_opts ro = {.without = without, .set = set};
  struct kgb_pipeline_opts po = {.kernel = &bo,
                                 .rootfs = &ro,
                                 .image_format = format,
                                 .destdir = destdir,
                                 .prefix = prefix,
                                 .kata_version = kata_version,
                                 .dry_run = cli->dry_run};
  _cleanup_(kgb_pipeline_result_freep) struct kgb_pipeline_result *res = NULL;
  r = kgb_pipeline_run(cli->ctx, p, &po, &res);
  int status = r == -EBADE ? EXIT_MISMATCH : r < 0 ? EXIT_FAIL : EXIT_OK;
  if (r < 0 && r != -EBADE)
    cli_fail(cli, r, NULL);
  else if (r == -EBADE)
    cli_err(cli, "kata-gpu-builder: %s\n",
            kgb_error_detail(cli->ctx) ? kgb_error_detail(cli->ctx) : "a verification failed");
  if (res)
    print_table(cli, res);
  if (cli->json && res && !(r < 0 && r != -EBADE)) {
    struct json j = JSON_INIT;
    render_json(&j, p, res, status);
    if (cli_out_json(&j) < 0)
      status = EXIT_FAIL;
  } else if (!cli->json && r == 0 && !cli->dry_run) {
    _cleanup_free_ char *line = kgb_strdup_printf("%s\n", res->destdir);
    if (!line || cli_out(line) < 0)
      status = EXIT_FAIL;
  }
  return status;
}

static const char build_help[] =
    "usage: kata-gpu-builder [--dry-run] build [-p PROFILE] [options]\n\n"
    "Runs the stages of a profile in order, each cached under a key of everything it reads:\n"
    "config (fragments resolved and verified), kernel (bzImage, vmlinux, modules), rootfs\n"
    "(bootstrap, recipes in namespaced chroot steps, module checks), image, kata (the\n"
    "configuration.toml settings for this host) and install (the kernel under Kata's names, the\n"
    "image and the drop-in under DESTDIR). Ends with a table: each stage, cached or ran and\n"
    "why, its time and output. Interrupted anywhere, the next run continues from the finished\n"
    "stages. With --dry-run it prints the plan and runs nothing. The destination goes to "
    "stdout.\n\n"
    "options:\n"
    "  -p, --profile NAME|FILE   the profile (default: virgl)\n"
    "  -k, --kernel-source SRC   a kernel tree, tarball or URL (see 'help kernel')\n"
    "      --fragment FILE       an extra kernel config fragment (repeatable)\n"
    "      --format FORMAT       ext4, erofs or initrd (default: the profile's image.format)\n"
    "      --destdir D           where to install (default: <workdir>/out/<profile>)\n"
    "      --prefix P            Kata's prefix inside D (default /usr)\n"
    "      --kata-version V      the Kata version the settings are for (default 3.x)\n"
    "      --without RECIPE      leave a recipe out for this run (repeatable)\n"
    "      --set NAME=VALUE      a recipe setting, e.g. nvidia.driver.url=... (repeatable)\n"
    "      --no-ccache           compile the kernel without ccache\n"
    "  -f, --force               run every stage again\n\n"
    "exit status: 0 done, 1 failed, 3 a verification failed (config values, modules)\n\n"
    "examples:\n"
    "  kata-gpu-builder build -p virgl\n"
    "  kata-gpu-builder --dry-run build -p nvidia-gpu\n"
    "  kata-gpu-builder build -p nvidia-gpu --without nvidia-driver --destdir /tmp/root\n";

const struct cli_command cli_cmd_build = {
    .name = "build",
    .run = run_build,
    .summary = "the whole pipeline for a profile, every stage cached",
    .options = options,
    .shortopts = "p:k:f",
    .flags = CLI_LOCKS_WORKDIR,
    .help = build_help,
};
