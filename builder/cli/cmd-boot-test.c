/* `boot-test`: boot the profile's kernel (built, or taken from the stage cache) in QEMU and
 * check it from inside; the table of checks, the serial log's path and the boot time. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boottest.h"
#include "cli.h"
#include "json.h"
#include "kernel-build.h"
#include "pipeline.h"
#include "sbuf.h"
#include "util.h"

#define KGB_DEFAULT_PROFILE "virgl"

struct boot_opts {
  const char *profile;
  const char *source;
  bool no_image;
  struct kgb_boot_opts engine;
};

/* Where kgb-guest-check is: $KGB_GUEST_CHECK, the build tree's while developing, else the
 * installed one. */
static const char *guest_check_path(void) {
  const char *env = getenv("KGB_GUEST_CHECK");
  if (env && *env)
    return env;
  if (is_file(KGB_BUILD_GUEST_CHECK))
    return KGB_BUILD_GUEST_CHECK;
  return KGB_INSTALL_GUEST_CHECK;
}

static int parse_unsigned(struct cli *cli, const char *opt, const char *arg, unsigned min,
                          unsigned max, unsigned *ret) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(arg, &end, 10);
  if (errno || end == arg || *end || v < min || v > max || arg[0] == '-')
    return cli_usage(cli, "boot-test: %s takes a number from %u to %u, not '%s'", opt, min, max,
                     arg);
  *ret = (unsigned)v;
  return EXIT_OK;
}

enum {
  O_ACCEL = 0x100,
  O_TIMEOUT,
  O_KERNEL,
  O_INITRD,
  O_APPEND,
  O_MEMORY,
  O_QEMU,
  O_MODULES,
  O_IMAGE,
  O_NO_IMAGE
};
static const struct option options[] = {{"profile", required_argument, NULL, 'p'},
                                        {"kernel-source", required_argument, NULL, 'k'},
                                        {"accel", required_argument, NULL, O_ACCEL},
                                        {"timeout", required_argument, NULL, O_TIMEOUT},
                                        {"kernel", required_argument, NULL, O_KERNEL},
                                        {"initrd", required_argument, NULL, O_INITRD},
                                        {"append", required_argument, NULL, O_APPEND},
                                        {"memory", required_argument, NULL, O_MEMORY},
                                        {"qemu", required_argument, NULL, O_QEMU},
                                        {"modules", required_argument, NULL, O_MODULES},
                                        {"image", required_argument, NULL, O_IMAGE},
                                        {"no-image", no_argument, NULL, O_NO_IMAGE},
                                        {}};

static int parse(struct cli *cli, int argc, char **argv, struct boot_opts *o) {
  int c, r;
  while ((c = getopt_long(argc, argv, "p:k:", options, NULL)) != -1) {
    switch (c) {
    case 'p':
      o->profile = optarg;
      break;
    case 'k':
      o->source = optarg;
      break;
    case O_ACCEL:
      o->engine.accel = kgb_accel_from_string(optarg);
      if (o->engine.accel < 0)
        return cli_usage(cli, "boot-test: --accel takes auto, kvm or tcg, not '%s'", optarg);
      break;
    case O_TIMEOUT:
      if ((r = parse_unsigned(cli, "--timeout", optarg, 1, 86400, &o->engine.timeout)) != EXIT_OK)
        return r;
      break;
    case O_KERNEL:
      o->engine.kernel = optarg;
      break;
    case O_INITRD:
      o->engine.initrd = optarg;
      break;
    case O_APPEND:
      o->engine.append = optarg;
      break;
    case O_MEMORY:
      if ((r = parse_unsigned(cli, "--memory", optarg, 64, 1048576, &o->engine.memory)) != EXIT_OK)
        return r;
      break;
    case O_QEMU:
      o->engine.qemu = optarg;
      break;
    case O_MODULES:
      o->engine.modules_dir = optarg;
      break;
    case O_IMAGE:
      o->engine.image = optarg;
      break;
    case O_NO_IMAGE:
      o->no_image = true;
      break;
    default:
      return cli_bad_option(cli, "boot-test", argv[optind - 1], options);
    }
  }
  if (optind < argc)
    return cli_usage(cli, "boot-test: unexpected argument '%s'", argv[optind]);
  if (o->engine.kernel && o->source)
    return cli_usage(cli, "boot-test: --kernel boots that file; -k would build another");
  if (o->engine.image && (o->engine.initrd || o->no_image))
    return cli_usage(cli, "boot-test: --image is the root disk; it goes with neither --initrd "
                          "nor --no-image");
  if (!o->profile)
    o->profile = KGB_DEFAULT_PROFILE;
  return EXIT_OK;
}

/* A time that was not measured (the guest never got there) is null. */
static void seconds_json(struct json *j, const char *key, double v) {
  if (v < 0)
    json_null(j, key);
  else
    json_double(j, key, v);
}

static void render_json(struct json *j, const struct kgb_profile *p, const char *kernel,
                        const struct kgb_boot_result *res) {
  json_object_begin(j, NULL, JSON_BLOCK);
  json_string(j, "profile", p->name);
  json_string(j, "release", res->release);
  json_string(j, "kernel", kernel);
  json_string(j, "accel", kgb_accel_to_string(res->accel));
  json_string(j, "accel_why", res->accel_why);
  json_uint(j, "memory_mib", res->memory);
  json_string(j, "log", res->log_path);
  json_string_or_null(j, "root", res->root);
  json_string_or_null(j, "initrd", res->initrd);
  json_strv(j, "qemu", res->qemu_argv);
  json_array_begin(j, "checks", JSON_BLOCK);
  for (size_t i = 0; i < res->n_checks; i++) {
    const struct kgb_boot_check *c = &res->checks[i];
    json_object_begin(j, NULL, JSON_INLINE);
    json_string(j, "name", c->name);
    json_string(j, "status", kgb_check_status_to_string(c->status));
    json_string(j, "detail", c->detail);
    json_object_end(j);
  }
  json_array_end(j);
  json_uint(j, "passed", res->n_pass);
  json_uint(j, "failed", res->n_fail);
  json_uint(j, "skipped", res->n_skip);
  json_bool(j, "timed_out", res->timed_out);
  json_object_begin(j, "seconds", JSON_INLINE);
  seconds_json(j, "boot", res->boot_seconds);
  seconds_json(j, "boot_to_check", res->check_seconds);
  seconds_json(j, "total", res->total_seconds);
  seconds_json(j, "kvm_probe", res->kvm_probe_seconds);
  json_object_end(j);
  json_object_begin(j, "guest_uptime", JSON_INLINE);
  seconds_json(j, "begin", res->uptime_begin);
  seconds_json(j, "end", res->uptime_end);
  json_object_end(j);
  json_array_begin(j, "log_tail", JSON_BLOCK);
  for (size_t i = 0; res->log_tail && res->log_tail[i]; i++)
    json_string(j, NULL, res->log_tail[i]);
  json_array_end(j);
  json_object_end(j);
}

static void render_table(struct sbuf *sb, const struct kgb_profile *p,
                         const struct kgb_boot_result *res) {
  sbuf_addf(sb, "boot-test: profile '%s', kernel %s, %s, %u MiB\n", p->name, res->release,
            res->accel == KGB_ACCEL_KVM ? "KVM" : "TCG", res->memory);
  sbuf_addf(sb, "  accelerator: %s\n", res->accel_why);
  sbuf_addf(sb, "  root: %s\n", res->root ? res->root : "the initrd only (no image)");
  size_t w = 5;
  for (size_t i = 0; i < res->n_checks; i++)
    w = MAX(w, strlen(res->checks[i].name));
  sbuf_addf(sb, "  %-*s  %-7s  %s\n", (int)w, "CHECK", "RESULT", "DETAIL");
  for (size_t i = 0; i < res->n_checks; i++) {
    const struct kgb_boot_check *c = &res->checks[i];
    sbuf_addf(sb, "  %-*s  %-7s  %s\n", (int)w, c->name, kgb_check_status_to_string(c->status),
              c->detail);
  }
  sbuf_addf(sb, "%zu passed, %zu failed, %zu skipped", res->n_pass, res->n_fail, res->n_skip);
  if (res->check_seconds >= 0)
    sbuf_addf(sb, "; boot-to-check %.2f s (QEMU start to the last check)", res->check_seconds);
  sbuf_addf(sb, "\nserial log: %s\n", res->log_path);
  if (res->initrd)
    sbuf_addf(sb, "initrd (kept for a boot by hand): %s\n", res->initrd);
}

/* The profile's kernel, built or from the stage cache, as `kernel build` makes it. */
static int build_kernel(struct cli *cli, const struct kgb_profile *p, const char *source,
                        struct kgb_pipeline_result **ret) {
  struct kgb_kernel_config_opts ko = {.source = source};
  struct kgb_build_opts bo = {.config = &ko};
  struct kgb_pipeline_opts po = {.kernel = &bo};
  _cleanup_(kgb_pipeline_result_freep) struct kgb_pipeline_result *res = NULL;
  int r = kgb_pipeline_upto(cli->ctx, p, &po, KGB_STAGE_KERNEL, &res);
  if (r == -EBADE) {
    cli_fail(cli, r,
             "the profile's kernel config lost requested values ('kernel config' says "
             "which)");
    return EXIT_MISMATCH;
  }
  if (r < 0)
    return cli_fail(cli, r, "building the kernel to boot");
  const struct kgb_build_result *b = res->kernel;
  if (b->cached)
    cli_msg(cli, "kernel build: '%s' is up to date (%s)\n", p->name, b->release);
  else
    cli_msg(cli, "kernel build: built %s in %.0f s (%s)\n", b->release, b->seconds, b->why);
  *ret = TAKE_PTR(res);
  return EXIT_OK;
}

/* The image of the last `build` of the profile in this work dir, when it was made with the
 * kernel about to boot: as the root disk (ext4, erofs) or as the initrd. */
static int last_image(struct cli *cli, const struct kgb_profile *p,
                      const struct kgb_build_result *b, struct boot_opts *o,
                      struct kgb_last_build *last) {
  int r = kgb_last_build_read(cli->ctx, p->name, last);
  if (r == -ENOENT)
    return EXIT_OK;
  if (r < 0)
    return cli_fail(cli, r, NULL);
  if (!STREQ(last->kernel_stage, b->stage_dir) || !is_file(last->image)) {
    cli_msg(cli,
            "boot-test: the last 'build -p %s' here made its image for another kernel (%s): "
            "booting without it; run 'build -p %s' to boot the image too\n",
            p->name, last->release, p->name);
    return EXIT_OK;
  }
  if (last->format == KGB_IMAGE_INITRD)
    o->engine.initrd = last->image;
  else
    o->engine.image = last->image;
  cli_msg(cli, "boot-test: the image of the last 'build -p %s': %s\n", p->name, last->image);
  return EXIT_OK;
}

static int run_boot_test(struct cli *cli, int argc, char **argv) {
  struct boot_opts o = {.engine = {.accel = KGB_ACCEL_AUTO}};
  int r = parse(cli, argc, argv, &o);
  if (r != EXIT_OK)
    return r;
  _cleanup_(kgb_profile_freep) struct kgb_profile *p = NULL;
  _cleanup_(kgb_pipeline_result_freep) struct kgb_pipeline_result *built = NULL;
  _cleanup_(kgb_boot_result_freep) struct kgb_boot_result *res = NULL;
  _cleanup_(kgb_last_build_release) struct kgb_last_build last = {0};
  r = kgb_profile_load(cli->ctx, o.profile, &p);
  if (r < 0)
    return cli_fail(cli, r, NULL);
  if (!o.engine.kernel) {
    if ((r = build_kernel(cli, p, o.source, &built)) != EXIT_OK)
      return r;
    const struct kgb_build_result *b = built->kernel;
    const char *modules = b->modules_dir;
    o.engine.kernel = b->vmlinuz;
    o.engine.release = b->release;
    if (!o.engine.modules_dir)
      o.engine.modules_dir = modules;
    o.engine.config = b->config_file;
    o.engine.epoch = b->epoch;
    bool explicit_root = o.engine.image || o.engine.initrd || o.no_image;
    /* the image's own modules load in the guest: the build's tree only with --modules */
    if (!explicit_root && (r = last_image(cli, p, b, &o, &last)) != EXIT_OK)
      return r;
    if (o.engine.image && modules && o.engine.modules_dir == modules)
      o.engine.modules_dir = NULL;
  }
  o.engine.guest_check = guest_check_path();
  r = kgb_boot_test(cli->ctx, p, &o.engine, &res);
  if (r < 0)
    return cli_fail(cli, r, "boot-test");
  if (res->log_tail && res->log_tail[0] && !cli->json) {
    cli_err(cli, "kata-gpu-builder: the guest did not finish its checks; the serial log ends "
                 "with:\n");
    for (size_t i = 0; res->log_tail[i]; i++)
      cli_err(cli, "  | %s\n", res->log_tail[i]);
  }
  if (cli->json) {
    struct json j = JSON_INIT;
    render_json(&j, p, o.engine.kernel, res);
    r = cli_out_json(&j);
  } else {
    struct sbuf sb = SBUF_INIT;
    render_table(&sb, p, res);
    r = cli_out_sbuf(&sb);
    sbuf_release(&sb);
  }
  if (r < 0)
    return EXIT_FAIL;
  return res->n_fail ? EXIT_MISMATCH : EXIT_OK;
}

static const char boot_test_help[] =
    "usage: kata-gpu-builder boot-test [-p PROFILE] [--accel auto|kvm|tcg] [--timeout S]\n"
    "                                  [--kernel FILE] [--initrd FILE] [--append PARAMS]\n"
    "                                  [--image FILE | --no-image] [--modules DIR]\n"
    "                                  [--memory MIB] [-k SRC]\n\n"
    "Boots the profile's kernel (built like 'kernel build', or taken from the stage cache) in\n"
    "QEMU on a Kata-like machine: q35, the PCIe root ports and kernel parameters of the\n"
    "profile's Kata settings, virtio devices, the serial console in a log file. A small static\n"
    "program, kgb-guest-check, runs as the guest's first process from an initrd written for the\n"
    "run, checks the kernel from inside and powers the VM off. The image of the last 'build'\n"
    "of the profile in this work directory (when made with this kernel), or --image FILE, is\n"
    "the guest's root disk as Kata gives it (virtio-blk, root=/dev/vda1, read-only): the check\n"
    "mounts it, names its system and init, and loads every module it holds with its own\n"
    "modprobe. Checks: the release ('uname -r'), the profile's required values in\n"
    "/proc/config.gz, the root disk, the modules load; virgl: the\n"
    "virtio_gpu driver binds and /dev/dri/card0 and renderD128 exist; nvidia: pciehp runs on the\n"
    "root ports, a device hot-plugged into a root port over QMP appears in the guest, nouveau is\n"
    "absent; intel: the i915 driver is built in. What cannot be checked here is listed as\n"
    "skipped, with why. Exit status 3 when a check failed; a guest that hangs is killed after\n"
    "--timeout seconds, and the end of its serial log is shown.\n\n"
    "options:\n"
    "  -p, --profile NAME|FILE   the profile (default: virgl)\n"
    "  -k, --kernel-source SRC   the kernel source to build from (as 'kernel build -k')\n"
    "      --accel auto|kvm|tcg  auto (default): KVM when it reaches the guest's userspace within\n"
    "                            5 s, else TCG (a /dev/kvm can open yet fail or crawl under\n"
    "                            nested virtualization); the result says which ran and why\n"
    "      --timeout S           kill the guest when its checks have not ended after S seconds\n"
    "                            from QEMU's start (default 60)\n"
    "      --kernel FILE         boot this bzImage instead of the profile's build (its release is\n"
    "                            read from its header; modules only with --modules)\n"
    "      --initrd FILE         the image's initrd: the checks are appended to it as a second\n"
    "                            archive and run as rdinit=/kgb/check\n"
    "      --image FILE          an ext4 or erofs image (Kata's partitioned layout, or a bare\n"
    "                            file system) as the root disk (default: the last 'build's)\n"
    "      --no-image            boot the kernel and the checks' initrd only\n"
    "      --modules DIR         the modules to load, a /lib/modules/<release> directory with\n"
    "                            its modules.dep (default: the image's, else the build's)\n"
    "      --append PARAMS       more kernel parameters, after the test's own (a later one wins)\n"
    "      --memory MIB          guest memory (default: the profile's kata.default_memory, at\n"
    "                            most 2048)\n"
    "      --qemu PATH           the QEMU binary (default: qemu-system-x86_64)\n\n"
    "The table goes to stdout (with --json one document, with the boot-to-check time in\n"
    "seconds.boot_to_check); the serial log and the initrd of a failed run stay under\n"
    "<workdir>/boot-test/.\n\n"
    "examples:\n"
    "  kata-gpu-builder boot-test -p virgl\n"
    "  kata-gpu-builder --json boot-test -p nvidia-gpu --accel tcg --timeout 120\n"
    "  kata-gpu-builder boot-test -p virgl --kernel vmlinuz-6.1.192-1-virgl-gpu\n"
    "  kata-gpu-builder boot-test -p virgl --image kata-containers-virgl.img\n";

const struct cli_command cli_cmd_boot_test = {
    .name = "boot-test",
    .run = run_boot_test,
    .summary = "boot the kernel in QEMU and check it from inside",
    .options = options,
    .shortopts = "p:k:",
    .flags = CLI_LOCKS_WORKDIR,
    .help = boot_test_help,
};
