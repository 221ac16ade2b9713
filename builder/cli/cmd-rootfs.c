/* `rootfs build` (bootstrap, recipes in namespaced chroots, module checks; the root's path on
 * stdout), `rootfs check` (the module checks on any tree) and `rootfs recipes` (what the
 * recipes do and which settings they take). */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "rootfs-cli.h"
#include "sbuf.h"
#include "util.h"

void rootfs_args_release(struct rootfs_args *a) {
  strv_free(a->without);
  strv_free(a->set);
  strv_free(a->fragments);
  *a = (struct rootfs_args){0};
}

/* The options of `rootfs build`, which `image build` takes too */
/* clang-format off */
#define ROOTFS_OPTIONS                                                                             \
  {"profile", required_argument, NULL, 'p'},                                                       \
  {"without", required_argument, NULL, 'W'},                                                       \
  {"set", required_argument, NULL, 'S'},                                                           \
  {"kernel-source", required_argument, NULL, 'k'},                                                 \
  {"sha256", required_argument, NULL, 's'},                                                        \
  {"fragment", required_argument, NULL, 'F'},                                                      \
  {"ccache-dir", required_argument, NULL, 'C'},                                                    \
  {"no-ccache", no_argument, NULL, 'N'},                                                           \
  {"apt-dir", required_argument, NULL, 'A'},                                                       \
  {"bootstrapper", required_argument, NULL, 'B'},                                                  \
  {"force", no_argument, NULL, 'f'},                                                               \
  {"keep-failed", no_argument, NULL, 'K'}
/* clang-format on */

const struct option rootfs_build_options[] = {ROOTFS_OPTIONS, {}};
const struct option image_build_options[] = {ROOTFS_OPTIONS,
                                             {"format", required_argument, NULL, 'T'},
                                             {"output", required_argument, NULL, 'o'},
                                             {"compress", required_argument, NULL, 'Z'},
                                             {}};

int rootfs_args_parse(struct cli *cli, const char *cmd, bool image, int argc, char **argv,
                      struct rootfs_args *a) {
  const struct option *options = image ? image_build_options : rootfs_build_options;
  int c;
  while ((c = getopt_long(argc, argv, image ? IMAGE_BUILD_SHORTOPTS : ROOTFS_BUILD_SHORTOPTS,
                          options, NULL)) != -1) {
    switch (c) {
    case 'p':
      a->profile = optarg;
      break;
    case 'W':
      if (strv_extend(&a->without, optarg) < 0)
        return EXIT_FAIL;
      break;
    case 'S': {
      const char *eq = strchr(optarg, '=');
      if (!eq || eq == optarg)
        return cli_usage(cli,
                         "%s: --set takes NAME=VALUE (e.g. --set kata.agent.url=URL), not '%s'",
                         cmd, optarg);
      if (strv_extend(&a->set, optarg) < 0)
        return EXIT_FAIL;
      break;
    }
    case 'k':
      a->source = optarg;
      break;
    case 's':
      a->sha256 = optarg;
      break;
    case 'F':
      if (strv_extend(&a->fragments, optarg) < 0)
        return EXIT_FAIL;
      break;
    case 'C':
      a->ccache_dir = optarg;
      break;
    case 'N':
      a->no_ccache = true;
      break;
    case 'A':
      a->apt_dir = optarg;
      break;
    case 'B':
      if (!STREQ(optarg, "mmdebstrap") && !STREQ(optarg, "debootstrap"))
        return cli_usage(cli, "%s: --bootstrapper takes mmdebstrap or debootstrap, not '%s'", cmd,
                         optarg);
      a->bootstrapper = optarg;
      break;
    case 'f':
      cli->ctx->force = true;
      break;
    case 'K':
      a->keep_failed = true;
      break;
    case 'T':
      if (kgb_image_format_from_string(optarg) < 0)
        return cli_usage(cli, "%s: --format takes ext4, erofs or initrd, not '%s'", cmd, optarg);
      a->format = optarg;
      break;
    case 'Z': {
      enum kgb_compression z = kgb_compression_from_string(optarg);
      if (z != KGB_COMPRESS_GZIP && z != KGB_COMPRESS_ZSTD)
        return cli_usage(cli, "%s: --compress takes zstd or gzip, not '%s'", cmd, optarg);
      a->compression = optarg;
      break;
    }
    case 'o':
      a->output = optarg;
      break;
    default:
      return cli_bad_option(cli, cmd, argv[optind - 1], options);
    }
  }
  if (optind < argc)
    return cli_usage(cli, "%s: unexpected argument '%s'", cmd, argv[optind]);
  if (a->compression && (!a->format || !STREQ(a->format, "initrd")))
    return cli_usage(cli, "%s: --compress goes with --format initrd", cmd);
  if (!a->profile)
    return cli_usage(cli,
                     "%s: which profile? give -p PROFILE ('kata-gpu-builder profiles' lists "
                     "them)",
                     cmd);
  return EXIT_OK;
}

void rootfs_print_report(struct cli *cli, const struct kgb_tree_report *r) {
  char size[FORMAT_SIZE_MAX];
  format_size(size, sizeof(size), r->bytes, FORMAT_SIZE_DECIMAL);
  cli_msg(cli, "  content: %s in %llu files and %llu directories; largest directories:\n", size,
          (unsigned long long)r->files, (unsigned long long)r->dirs);
  for (size_t i = 0; i < r->n_top; i++) {
    format_size(size, sizeof(size), r->top[i].bytes, FORMAT_SIZE_DECIMAL);
    cli_msg(cli, "    %10s  %s\n", size, r->top[i].path);
  }
}

static void print_problems(struct cli *cli, const struct kgb_modcheck *c) {
  for (size_t i = 0; i < c->n_problems; i++)
    cli_err(cli, "%s: %s: %s\n", c->problems[i].what,
            kgb_modcheck_kind_to_string(c->problems[i].kind), c->problems[i].detail);
}

int rootfs_run(struct cli *cli, const struct rootfs_args *a, struct kgb_profile **ret_profile,
               struct kgb_pipeline_result **ret) {
  _cleanup_(kgb_profile_freep) struct kgb_profile *p = NULL;
  int r = kgb_profile_load(cli->ctx, a->profile, &p);
  if (r < 0)
    return cli_fail(cli, r, NULL);
  struct kgb_kernel_config_opts ko = {
      .source = a->source, .sha256 = a->sha256, .fragments = a->fragments};
  struct kgb_build_opts bo = {
      .config = &ko, .ccache_dir = a->ccache_dir, .no_ccache = a->no_ccache};
  struct kgb_rootfs_opts ro = {.without = a->without,
                               .set = a->set,
                               .apt_dir = a->apt_dir,
                               .bootstrapper = a->bootstrapper,
                               .keep_failed = a->keep_failed};
  struct kgb_pipeline_opts po = {.kernel = &bo, .rootfs = &ro};
  _cleanup_(kgb_pipeline_result_freep) struct kgb_pipeline_result *pres = NULL;
  r = kgb_pipeline_upto(cli->ctx, p, &po, KGB_STAGE_ROOTFS, &pres);
  const struct kgb_rootfs_result *res = pres ? pres->rootfs : NULL;
  if (r == -EBADE && res && res->check) {
    print_problems(cli, res->check);
    cli_fail(cli, r, NULL);
    cli_err(cli, "kata-gpu-builder: the log of the build is '%s'\n", res->log_path);
    return EXIT_MISMATCH;
  }
  if (r == -EBADE) {
    cli_fail(cli, r, "the kernel it needs");
    return EXIT_MISMATCH;
  }
  if (r < 0)
    return cli_fail(cli, r, NULL);
  char size[FORMAT_SIZE_MAX];
  format_size(size, sizeof(size), res->report.bytes, FORMAT_SIZE_DECIMAL);
  if (res->cached)
    cli_msg(cli, "rootfs: '%s' for %s is up to date ('%s'), nothing ran\n", p->name,
            res->kernel->release, res->stage_dir);
  else
    cli_msg(cli,
            "rootfs: built '%s' for %s in %.0f s (%s%.0f s, %s%.0f s), %zu recipe%s, %zu "
            "modules checked\n",
            p->name, res->kernel->release, res->seconds,
            res->base_cached ? "base from the cache, bootstrap " : "bootstrap ",
            res->bootstrap_seconds,
            res->layer_cached ? "packages layer from the cache, " : "packages layer ",
            res->layer_seconds, strv_length(res->recipes),
            strv_length(res->recipes) == 1 ? "" : "s", res->check ? res->check->n_modules : 0);
  if (cli->verbosity >= 0 && !cli->json)
    rootfs_print_report(cli, &res->report);
  if (!res->kata_agent)
    cli_err(cli, "kata-gpu-builder: note: no kata-agent was given, so this root boots the "
                 "distribution's init for testing and is not yet a complete Kata guest; give one "
                 "with --set kata.agent.url=PATH|URL --set kata.agent.sha256=HEX\n");
  *ret_profile = TAKE_PTR(p);
  *ret = TAKE_PTR(pres);
  return EXIT_OK;
}

/* The members of a root file system in the documents of `rootfs build` and `image build` */
void rootfs_json_largest(struct json *j, const struct kgb_tree_report *r) {
  json_array_begin(j, "largest_directories", JSON_INLINE);
  for (size_t i = 0; i < r->n_top; i++) {
    json_object_begin(j, NULL, JSON_INLINE);
    json_string(j, "path", r->top[i].path);
    json_uint(j, "bytes", r->top[i].bytes);
    json_object_end(j);
  }
  json_array_end(j);
}

static void rootfs_json(struct json *j, const struct kgb_profile *p,
                        const struct kgb_rootfs_result *res) {
  json_object_begin(j, NULL, JSON_BLOCK);
  json_string(j, "profile", p->name);
  json_string(j, "release", res->kernel->release);
  json_string(j, "root", res->root);
  json_string(j, "stage", res->stage_dir);
  json_string(j, "kernel", res->kernel->stage_dir);
  json_string(j, "key", res->key);
  json_bool(j, "cached", res->cached);
  json_bool(j, "base_cached", res->base_cached);
  json_string(j, "base", res->base);
  json_bool(j, "layer_cached", res->layer_cached);
  json_string(j, "layer", res->layer);
  json_strv(j, "recipes", res->recipes);
  json_strv(j, "warnings", res->warnings);
  json_bool(j, "kata_agent", res->kata_agent);
  json_uint(j, "bytes", res->report.bytes);
  json_uint(j, "files", res->report.files);
  rootfs_json_largest(j, &res->report);
  json_double(j, "seconds", res->seconds);
  json_double(j, "bootstrap_seconds", res->bootstrap_seconds);
  json_double(j, "layer_seconds", res->layer_seconds);
  json_string(j, "log", res->log_path);
  json_object_end(j);
}

static int run_build(struct cli *cli, int argc, char **argv) {
  struct rootfs_args a = {0};
  int r = rootfs_args_parse(cli, "rootfs build", false, argc, argv, &a);
  if (r != EXIT_OK) {
    rootfs_args_release(&a);
    return r;
  }
  _cleanup_(kgb_profile_freep) struct kgb_profile *p = NULL;
  _cleanup_(kgb_pipeline_result_freep) struct kgb_pipeline_result *pres = NULL;
  r = rootfs_run(cli, &a, &p, &pres);
  rootfs_args_release(&a);
  if (r != EXIT_OK)
    return r;
  const struct kgb_rootfs_result *res = pres->rootfs;
  if (cli->json) {
    struct json j = JSON_INIT;
    rootfs_json(&j, p, res);
    r = cli_out_json(&j);
  } else {
    _cleanup_free_ char *line = kgb_strdup_printf("%s\n", res->root);
    r = line ? cli_out(line) : -ENOMEM;
  }
  return r < 0 ? EXIT_FAIL : EXIT_OK;
}

static const struct option check_options[] = {{"root", required_argument, NULL, 'r'},
                                              {"release", required_argument, NULL, 'R'},
                                              {"system-map", required_argument, NULL, 'm'},
                                              {"library", required_argument, NULL, 'l'},
                                              {}};

static int run_check(struct cli *cli, int argc, char **argv) {
  const char *root = NULL, *release = NULL, *sysmap = NULL;
  _cleanup_strv_free_ char **libs = NULL;
  int c;
  while ((c = getopt_long(argc, argv, "", check_options, NULL)) != -1) {
    switch (c) {
    case 'r':
      root = optarg;
      break;
    case 'R':
      release = optarg;
      break;
    case 'm':
      sysmap = optarg;
      break;
    case 'l':
      if (!strchr(optarg, '='))
        return cli_usage(cli,
                         "rootfs check: --library takes LIBRARY=MODULE (e.g. "
                         "libnvidia-ml.so=nvidia), not '%s'",
                         optarg);
      if (strv_extend(&libs, optarg) < 0)
        return EXIT_FAIL;
      break;
    default:
      return cli_bad_option(cli, "rootfs check", argv[optind - 1], check_options);
    }
  }
  if (optind < argc)
    return cli_usage(cli, "rootfs check: unexpected argument '%s'", argv[optind]);
  if (!root || !release)
    return cli_usage(cli, "rootfs check: give --root DIR and --release KVER (the kernel's "
                          "'uname -r')");
  if (!is_dir(root))
    return cli_usage(cli, "rootfs check: '%s' is not a directory", root);
  struct kgb_modcheck_opts mo = {
      .release = release, .system_map = sysmap, .library_versions = libs};
  _cleanup_(kgb_modcheck_freep) struct kgb_modcheck *check = NULL;
  int r = kgb_modcheck_run(cli->ctx, root, &mo, &check);
  if (r < 0)
    return cli_fail(cli, r, NULL);
  if (cli->json) {
    struct json j = JSON_INIT;
    json_object_begin(&j, NULL, JSON_BLOCK);
    json_string(&j, "root", root);
    json_string(&j, "release", release);
    json_uint(&j, "modules", check->n_modules);
    json_array_begin(&j, "problems", JSON_BLOCK);
    for (size_t i = 0; i < check->n_problems; i++) {
      json_object_begin(&j, NULL, JSON_INLINE);
      json_string(&j, "what", check->problems[i].what);
      json_string(&j, "kind", kgb_modcheck_kind_to_string(check->problems[i].kind));
      json_string(&j, "detail", check->problems[i].detail);
      json_object_end(&j);
    }
    json_array_end(&j);
    json_object_end(&j);
    if (cli_out_json(&j) < 0)
      return EXIT_FAIL;
  }
  print_problems(cli, check);
  if (!check->has_moddir)
    cli_msg(cli, "rootfs check: '%s' has no lib/modules/%s\n", root, release);
  cli_msg(cli, "rootfs check: %zu modules for %s, %zu problem%s\n", check->n_modules, release,
          check->n_problems, check->n_problems == 1 ? "" : "s");
  return check->n_problems ? EXIT_MISMATCH : EXIT_OK;
}

static bool is_recipe_file(_unused_ int dir_fd, const char *name, _unused_ void *userdata) {
  return endswith(name, ".recipe");
}
static const struct option recipes_options[] = {{"profile", required_argument, NULL, 'p'}, {}};

static int run_recipes(struct cli *cli, int argc, char **argv) {
  const char *profile = NULL;
  int c;
  while ((c = getopt_long(argc, argv, "p:", recipes_options, NULL)) != -1) {
    if (c == 'p')
      profile = optarg;
    else
      return cli_bad_option(cli, "rootfs recipes", argv[optind - 1], recipes_options);
  }
  if (optind < argc)
    return cli_usage(cli, "rootfs recipes: unexpected argument '%s'", argv[optind]);
  _cleanup_strv_free_ char **names = NULL;
  int r = 0;
  if (profile) {
    _cleanup_(kgb_profile_freep) struct kgb_profile *p = NULL;
    if ((r = kgb_profile_load(cli->ctx, profile, &p)) < 0)
      return cli_fail(cli, r, NULL);
    for (size_t i = 0; p->rootfs.recipes && p->rootfs.recipes[i]; i++)
      if ((r = strv_extend(&names, p->rootfs.recipes[i])) < 0)
        return EXIT_FAIL;
  } else {
    _cleanup_free_ char *dir = strjoin_path(cli->ctx->datadir, "recipes");
    if (!dir)
      return EXIT_FAIL;
    /* the shipped recipes, in name order */
    if ((r = readdir_sorted(dir, READDIR_NO_HIDDEN, is_recipe_file, NULL, &names)) < 0)
      return cli_fail(cli, r, "listing recipes");
    for (size_t i = 0; names[i]; i++)
      names[i][strlen(names[i]) - 7] = '\0';
    strv_sort(names);
  }
  _cleanup_(kgb_recipes_freep) struct kgb_recipe **recipes = NULL;
  r = kgb_recipes_resolve(cli->ctx, names, NULL, &recipes);
  if (r < 0)
    return cli_fail(cli, r, NULL);
  if (cli->json) {
    struct json j = JSON_INIT;
    json_array_begin(&j, NULL, JSON_BLOCK_OPEN);
    for (size_t i = 0; recipes[i]; i++) {
      const struct kgb_recipe *rc = recipes[i];
      json_object_begin(&j, NULL, JSON_INLINE);
      json_string(&j, "name", rc->name);
      json_string(&j, "description", rc->description);
      json_strv(&j, "requires", rc->requires);
      json_array_begin(&j, "settings", JSON_INLINE);
      for (size_t s = 0; s < rc->n_settings; s++) {
        json_object_begin(&j, NULL, JSON_INLINE);
        json_string(&j, "name", rc->settings[s].name);
        json_string_or_null(&j, "default", rc->settings[s].default_value);
        json_string(&j, "help", rc->settings[s].help);
        json_object_end(&j);
      }
      json_array_end(&j);
      json_object_end(&j);
    }
    json_array_end(&j);
    return cli_out_json(&j) < 0 ? EXIT_FAIL : EXIT_OK;
  }
  struct sbuf sb = SBUF_INIT;
  for (size_t i = 0; recipes[i]; i++) {
    const struct kgb_recipe *rc = recipes[i];
    sbuf_addf(&sb, "%s: %s\n", rc->name, rc->description);
    if (rc->requires && rc->requires[0]) {
      sbuf_adds(&sb, "  requires:");
      for (size_t k = 0; rc->requires[k]; k++)
        sbuf_addf(&sb, " %s", rc->requires[k]);
      sbuf_adds(&sb, "\n");
    }
    for (size_t s = 0; s < rc->n_settings; s++)
      sbuf_addf(&sb, "  --set %s=...%s%s%s\n      %s\n", rc->settings[s].name,
                rc->settings[s].default_value ? " (default '" : "",
                rc->settings[s].default_value ? rc->settings[s].default_value : "",
                rc->settings[s].default_value ? "')" : "", rc->settings[s].help);
  }
  r = cli_out_sbuf(&sb);
  sbuf_release(&sb);
  return r < 0 ? EXIT_FAIL : EXIT_OK;
}

static const struct cli_command rootfs_verbs[] = {
    {.name = "build",
     .run = run_build,
     .summary = "bootstrap, run the recipes in chroots, check the modules (cached)",
     .options = rootfs_build_options,
     .shortopts = ROOTFS_BUILD_SHORTOPTS},
    {.name = "check",
     .run = run_check,
     .summary = "the module checks on any root file system tree",
     .options = check_options},
    {.name = "recipes",
     .run = run_recipes,
     .summary = "the recipes (of a profile) and the settings they take",
     .options = recipes_options,
     .shortopts = "p:"},
};

static const char rootfs_help[] =
    "usage: kata-gpu-builder rootfs build -p PROFILE [--without RECIPE]... [--set NAME=VALUE]...\n"
    "                                     [options]\n"
    "       kata-gpu-builder rootfs check --root DIR --release KVER [--system-map FILE]\n"
    "                                     [--library LIB=MODULE]...\n"
    "       kata-gpu-builder rootfs recipes [-p PROFILE]\n\n"
    "'build' makes the guest root file system of a profile, as seed 001 does by hand: a Debian\n"
    "minbase bootstrapped with mmdebstrap (debootstrap when it is missing) from the mirror and\n"
    "keyring of the host's apt sources (or rootfs.mirror and rootfs.keyring of the profile),\n"
    "cached as a tarball per distribution, suite, architecture, package list and the mirror's\n"
    "Release date; then the profile's recipes (recipes/*.recipe): apt packages, inputs checked\n"
    "against their SHA-256, files, and commands, each in a chroot with its own mount and PID\n"
    "namespaces (/proc, /sys, /dev, /dev/pts, /tmp and /run mounted inside, gone with it even\n"
    "on SIGKILL); then cleanup (apt caches, logs, machine ID). The kernel it needs is built or\n"
    "taken from the stage cache, with its header package when a recipe installs it. Every\n"
    "module under lib/modules/<release> is checked with libkmod: vermagic equal to the release,\n"
    "dependencies and symbols resolved, modules.dep current, no directory for another release,\n"
    "and the profile's rootfs.library_versions; a mismatch lists each problem and exits 3, and\n"
    "nothing is stored. The same inputs are a cache hit. The root's path goes to stdout.\n"
    "Without a kata-agent (the kata-agent recipe's settings) the root boots the distribution's\n"
    "init, for testing: it is then not a complete Kata guest, and the command says so.\n\n"
    "'check' runs the module checks on any tree (exit 3 on a problem). 'recipes' lists the\n"
    "recipes with the settings they take.\n\n"
    "options:\n"
    "  -p, --profile NAME|FILE   the profile\n"
    "      --without RECIPE      leave a recipe of the profile out of this run (repeatable)\n"
    "      --set NAME=VALUE      a recipe setting, over the profile's settings group\n"
    "                            (repeatable; 'rootfs recipes' lists them)\n"
    "  -k, --kernel-source SRC   the kernel source (as for 'kernel build')\n"
    "      --sha256 HEX          the kernel tarball's SHA-256\n"
    "      --fragment FILE       merge FILE into the kernel's config (repeatable)\n"
    "      --ccache-dir DIR, --no-ccache   as for 'kernel build'\n"
    "      --apt-dir DIR         read the apt sources from DIR (default /etc/apt)\n"
    "      --bootstrapper TOOL   mmdebstrap or debootstrap\n"
    "  -f, --force               build again even when cached\n"
    "      --keep-failed         keep the root of a failed build for a look inside\n\n"
    "examples:\n"
    "  kata-gpu-builder rootfs build -p virgl\n"
    "  kata-gpu-builder rootfs build -p nvidia-gpu --set nvidia.driver.url=NVIDIA-Linux-x86_64-"
    "550.54.14.run \\\n"
    "      --set nvidia.driver.sha256=HEX --without nvidia-container-toolkit \\\n"
    "      --without oci-prestart-hook\n"
    "  kata-gpu-builder rootfs check --root /tmp/root --release 6.1.192-virgl-gpu\n";

const struct cli_command cli_cmd_rootfs = {
    .name = "rootfs",
    .summary = "guest root file system: bootstrap, recipes, module checks",
    .verbs = rootfs_verbs,
    .n_verbs = ELEMENTSOF(rootfs_verbs),
    .flags = CLI_LOCKS_WORKDIR,
    .help = rootfs_help,
};
