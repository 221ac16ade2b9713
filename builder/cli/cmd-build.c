/* `build`: the whole pipeline for one profile, ending with a table of the stages. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "pipeline.h"
#include "sbuf.h"
#include "util.h"

static void print_table(struct cli *cli, const struct kgb_pipeline_result *res) {
  if (cli->verbosity < 0)
    return;
  cli_progress_done();
  fprintf(stderr, "%-8s %-9s %8s  %s\n", "STAGE", "RESULT", "TIME", "OUTPUT / WHY");
  for (int i = 0; i < _KGB_STAGE_MAX; i++) {
    const struct kgb_stage_report *s = &res->stages[i];
    fprintf(stderr, "%-8s %-9s %7.1fs  %s%s%s\n", kgb_stage_to_string(i),
            kgb_stage_state_to_string(s->state), s->seconds, s->output ? s->output : "",
            s->output && s->why ? "\n                            " : "", s->why ? s->why : "");
  }
  fprintf(stderr, "total %.1f s\n", res->seconds);
}

static void json_opt(struct sbuf *sb, const char *v) {
  if (v)
    sbuf_add_json(sb, v);
  else
    sbuf_adds(sb, "null");
}

static void render_json(struct sbuf *sb, const struct kgb_profile *p,
                        const struct kgb_pipeline_result *res, int status) {
  sbuf_adds(sb, "{\n  \"profile\": ");
  sbuf_add_json(sb, p->name);
  sbuf_addf(sb, ",\n  \"status\": %d,\n  \"seconds\": %.3f,\n  \"destdir\": ", status,
            res->seconds);
  json_opt(sb, res->destdir);
  sbuf_adds(sb, ",\n  \"stages\": [");
  for (int i = 0; i < _KGB_STAGE_MAX; i++) {
    const struct kgb_stage_report *s = &res->stages[i];
    sbuf_adds(sb, i ? ",\n    {\"stage\": " : "\n    {\"stage\": ");
    sbuf_add_json(sb, kgb_stage_to_string(i));
    sbuf_adds(sb, ", \"result\": ");
    sbuf_add_json(sb, kgb_stage_state_to_string(s->state));
    sbuf_addf(sb, ", \"seconds\": %.3f, \"key\": ", s->seconds);
    json_opt(sb, s->key);
    sbuf_adds(sb, ", \"output\": ");
    json_opt(sb, s->output);
    sbuf_adds(sb, ", \"why\": ");
    json_opt(sb, s->why);
    sbuf_adds(sb, "}");
  }
  sbuf_adds(sb, "\n  ]\n}\n");
}

static int run_build(struct cli *cli, int argc, char **argv) {
  static const struct option opts[] = {{"profile", required_argument, NULL, 'p'},
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
                                       {"help", no_argument, NULL, 'h'},
                                       {}};
  static const char *const known[] = {"--profile", "--kernel-source", "--fragment",     "--format",
                                      "--destdir", "--prefix",        "--kata-version", "--without",
                                      "--set",     "--no-ccache",     "--force",        "--help",
                                      NULL};
  const char *profile = "virgl", *source = NULL, *format = NULL, *destdir = NULL, *prefix = NULL,
             *kata_version = NULL;
  _cleanup_strv_free_ char **fragments = NULL, **without = NULL, **set = NULL;
  bool no_ccache = false;
  int c;
  while ((c = getopt_long(argc, argv, "p:k:fh", opts, NULL)) != -1) {
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
    case 'h':
      fputs(cli_cmd_build.help, stdout);
      return EXIT_OK;
    default:
      return cli_bad_option(cli, "build", argv[optind - 1], known);
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
    fprintf(stderr, "kata-gpu-builder: %s\n",
            kgb_error_detail(cli->ctx) ? kgb_error_detail(cli->ctx) : "a verification failed");
  if (res)
    print_table(cli, res);
  struct sbuf sb = SBUF_INIT;
  if (cli->json && res && !(r < 0 && r != -EBADE))
    render_json(&sb, p, res, status);
  else if (!cli->json && r == 0 && !cli->dry_run)
    sbuf_addf(&sb, "%s\n", res->destdir);
  if (sb.len && cli_out_sbuf(&sb) < 0)
    status = EXIT_FAIL;
  sbuf_release(&sb);
  return status;
}

const struct cli_command cli_cmd_build = {
    "build", run_build, "the whole pipeline for a profile, every stage cached",
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
    "  kata-gpu-builder build -p nvidia-gpu --without nvidia-driver --destdir /tmp/root\n"};
