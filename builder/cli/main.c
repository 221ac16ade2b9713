/* kata-gpu-builder: global options, the command table, help and version. Each command lives
 * in its own cmd-<name>.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "cli.h"
#include "util.h"

static int cmd_help(struct cli *cli, int argc, char **argv);

static const struct cli_command help_cmd = {
    .name = "help",
    .run = cmd_help,
    .summary = "show the help of a command",
    .help = "usage: kata-gpu-builder help [COMMAND]\n\n"
            "Shows the list of commands, or the full help of one.\n\n"
            "example:\n  kata-gpu-builder help kernel\n",
};

static const struct cli_command *const commands[] = {
    &cli_cmd_profiles,    &cli_cmd_profile,     &cli_cmd_kernel,    &cli_cmd_rootfs,
    &cli_cmd_image,       &cli_cmd_kata_config, &cli_cmd_host,      &cli_cmd_kubevirt,
    &cli_cmd_oci_devices, &cli_cmd_build,       &cli_cmd_boot_test, &help_cmd,
};

static const char main_usage[] =
    "usage: kata-gpu-builder [--workdir DIR] [--json] [-q|-v] [--jobs N] [--dry-run]\n"
    "                        [--no-wait] COMMAND ...\n";

static void print_main_help(FILE *f) {
  fprintf(f,
          "%s\n"
          "Builds GPU-capable guest kernels for Kata Containers from one profile, with every\n"
          "requested kernel option proven to survive the kernel's own Kconfig.\n\n"
          "commands:\n",
          main_usage);
  for (size_t i = 0; i < ELEMENTSOF(commands); i++)
    fprintf(f, "  %-12s %s\n", commands[i]->name, commands[i]->summary);
  fprintf(f, "\n"
             "global options:\n"
             "  --workdir DIR   stages, caches and extracted sources (default: $KGB_WORKDIR or\n"
             "                  ~/.cache/kata-gpu-builder)\n"
             "  --json          print one JSON document on stdout\n"
             "  -q, --quiet     only errors and warnings on stderr\n"
             "  -v, --verbose   also debug messages (commands run, cache decisions)\n"
             "  --jobs N        parallel jobs for builds (default: number of CPUs)\n"
             "  --dry-run       say what would run, run nothing\n"
             "  --no-wait       fail at once when another run holds the work directory\n"
             "  --version       print the version\n\n"
             "exit status: 0 done, 1 failed, 2 usage error, 3 a verification found a mismatch\n\n"
             "example:\n  kata-gpu-builder kernel config -p virgl\n\n"
             "'kata-gpu-builder help COMMAND' shows the options of a command.\n");
}

static const struct cli_command *find_command(const char *name) {
  for (size_t i = 0; i < ELEMENTSOF(commands); i++)
    if (STREQ(commands[i]->name, name))
      return commands[i];
  return NULL;
}

static const char *closest_command(const char *name) {
  const char *names[ELEMENTSOF(commands) + 1] = {NULL};
  for (size_t i = 0; i < ELEMENTSOF(commands); i++)
    names[i] = commands[i]->name;
  return cli_closest(name, names);
}

static int unknown_command(struct cli *cli, const char *name) {
  const char *near = closest_command(name);
  if (near)
    return cli_usage(cli,
                     "'%s' is not a command (did you mean '%s'?); see 'kata-gpu-builder --help'",
                     name, near);
  return cli_usage(cli, "'%s' is not a command; see 'kata-gpu-builder --help'", name);
}

static int cmd_help(struct cli *cli, int argc, char **argv) {
  if (argc < 2) {
    print_main_help(stdout);
    return EXIT_OK;
  }
  const struct cli_command *c = find_command(argv[1]);
  if (!c)
    return unknown_command(cli, argv[1]);
  fputs(c->help, stdout);
  return EXIT_OK;
}

/* Returns the locked descriptor, or -1 after saying why. */
static int lock_workdir(struct cli *cli, bool no_wait) {
  _cleanup_free_ char *path = kgb_strdup_printf("%s/lock", cli->ctx->workdir);
  if (!path)
    return -1;
  _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    cli_error(cli, "cannot open '%s': %s", path, strerror(errno));
    return -1;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) == 0)
    return TAKE_FD(fd);
  if (errno != EWOULDBLOCK) {
    cli_error(cli, "cannot lock '%s': %s", path, strerror(errno));
    return -1;
  }
  if (no_wait) {
    cli_error(cli, "another run is using the work directory '%s' (--no-wait)", cli->ctx->workdir);
    return -1;
  }
  cli_msg(cli, "waiting for another run to finish with the work directory '%s'...\n",
          cli->ctx->workdir);
  while (flock(fd, LOCK_EX) < 0)
    if (errno != EINTR || kgb_cancelled(cli->ctx)) {
      cli_error(cli, "waiting for the lock on '%s': %s", path,
                errno == EINTR ? "interrupted" : strerror(errno));
      return -1;
    }
  return TAKE_FD(fd);
}

/* Does argv (argv[0] is the command's name) ask for help: -h or --help where getopt_long
 * would see an option with the command's table, so that `-p --help` stays a profile name. */
static bool wants_help(const struct cli_command *c, int argc, char **argv) {
  size_t n = 0;
  while (c->options && c->options[n].name)
    n++;
  _cleanup_free_ struct option *options = calloc(n + 2, sizeof(*options));
  _cleanup_free_ char **args = calloc((size_t)argc + 1, sizeof(*args));
  _cleanup_free_ char *shortopts = kgb_strdup_printf("%sh", c->shortopts ? c->shortopts : "");
  if (!options || !args || !shortopts)
    return false;
  if (n)
    memcpy(options, c->options, n * sizeof(*options));
  options[n] = (struct option){"help", no_argument, NULL, 'h'};
  memcpy(args, argv, (size_t)argc * sizeof(*args)); /* getopt_long permutes what it reads */
  bool help = false;
  int ch;
  optind = 0;
  while (!help && (ch = getopt_long(argc, args, shortopts, options, NULL)) != -1)
    help = ch == 'h';
  optind = 0;
  return help;
}

struct run_opts {
  bool lock; /* the command takes the work directory's lock */
  bool no_wait;
};

/* Runs the command c, argv[0] being its name: down its verbs, or its help when asked for (a
 * verb without help text shows its parent's), or its function, holding the work directory's
 * lock when the command takes it. prefix: the names of the commands above c. */
static int run_command(struct cli *cli, const struct cli_command *c, const char *prefix,
                       const char *help, const struct run_opts *o, int argc, char **argv) {
  char name[64];
  snprintf(name, sizeof(name), "%s%s%s", prefix, *prefix ? " " : "", c->name);
  if (c->help)
    help = c->help;
  if (c->verbs) {
    argc--, argv++;
    if (argc < 1 || STREQ(argv[0], "--help") || STREQ(argv[0], "-h")) {
      FILE *f = argc < 1 ? stderr : stdout;
      fprintf(f, "usage: kata-gpu-builder %s VERB ...\n\nverbs:\n", name);
      for (size_t i = 0; i < c->n_verbs; i++)
        fprintf(f, "  %-14s %s\n", c->verbs[i].name, c->verbs[i].summary);
      return argc < 1 ? EXIT_USAGE : EXIT_OK;
    }
    const char *names[32] = {NULL};
    for (size_t i = 0; i < c->n_verbs; i++) {
      if (STREQ(argv[0], c->verbs[i].name))
        return run_command(cli, &c->verbs[i], name, help, o, argc, argv);
      if (i < ELEMENTSOF(names) - 1)
        names[i] = c->verbs[i].name;
    }
    const char *near = cli_closest(argv[0], names);
    if (near)
      return cli_usage(cli, "'%s %s' is not a command (did you mean '%s %s'?)", name, argv[0], name,
                       near);
    return cli_usage(cli, "'%s %s' is not a command; see 'kata-gpu-builder help %s'", name, argv[0],
                     name);
  }
  if (wants_help(c, argc, argv)) {
    fputs(help, stdout);
    return EXIT_OK;
  }
  _cleanup_close_ int lock = -1;
  if (o->lock && (lock = lock_workdir(cli, o->no_wait)) < 0)
    return EXIT_FAIL;
  /* with the lock held no other run writes: a temporary name is what a killed one left */
  unsigned swept = 0;
  if (lock >= 0 && !cli->dry_run && kgb_workdir_sweep(cli->ctx, &swept) < 0)
    kgb_warn(cli->ctx, "%s", kgb_error_detail(cli->ctx));
  else if (swept)
    kgb_info(cli->ctx, "removed %u unfinished result%s of an interrupted run from '%s'", swept,
             swept == 1 ? "" : "s", cli->ctx->workdir);
  kgb_error_clear(cli->ctx);
  optind = 0; /* commands parse their own options from their argv */
  return c->run(cli, argc, argv);
}

static volatile sig_atomic_t cancel_flag;

/* Installed with SA_RESETHAND: a second Ctrl-C ends the process at once. */
static void on_signal(int sig) {
  (void)sig;
  cancel_flag = 1;
}

static const char *default_datadir(void) {
  const char *env = getenv("KGB_DATADIR");
  if (env && *env)
    return env;
  if (is_dir(KGB_SOURCE_DATADIR "/profiles") && is_dir(KGB_SOURCE_DATADIR "/kconfig-fragments"))
    return KGB_SOURCE_DATADIR;
  return KGB_INSTALL_DATADIR;
}

static int setup_workdir(struct cli *cli, const char *dir) {
  int r = mkdir_p(dir, 0755);
  if (r < 0) {
    cli_error(cli, "cannot create work directory '%s': %s", dir, strerror(-r));
    return EXIT_FAIL;
  }
  char *real = realpath(dir, NULL);
  if (!real)
    return EXIT_FAIL;
  free(cli->ctx->workdir);
  cli->ctx->workdir = real;
  return EXIT_OK;
}

int main(int argc, char **argv) {
  _cleanup_(kgb_ctx_freep) struct kgb_ctx *ctx = NULL;
  if (kgb_ctx_new(&ctx) < 0) {
    cli_error(NULL, "out of memory");
    return EXIT_FAIL;
  }
  struct cli cli = {.ctx = ctx};
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  ctx->jobs = ncpu > 0 ? (unsigned)ncpu : 1;
  const char *workdir = getenv("KGB_WORKDIR");
  bool no_wait = false;
  static const struct option opts[] = {
      {"workdir", required_argument, NULL, 'W'}, {"json", no_argument, NULL, 'J'},
      {"quiet", no_argument, NULL, 'q'},         {"verbose", no_argument, NULL, 'v'},
      {"jobs", required_argument, NULL, 'j'},    {"dry-run", no_argument, NULL, 'n'},
      {"no-wait", no_argument, NULL, 'w'},       {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},       {}};
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "+qvhj:", opts, NULL)) != -1) {
    switch (c) {
    case 'W':
      workdir = optarg;
      break;
    case 'w':
      no_wait = true;
      break;
    case 'J':
      cli.json = true;
      break;
    case 'q':
      cli.verbosity = -1;
      break;
    case 'v':
      cli.verbosity = 1;
      break;
    case 'j': {
      char *end;
      long n = strtol(optarg, &end, 10);
      if (*end || n < 1 || n > 1024)
        return cli_usage(&cli, "--jobs takes a number from 1 to 1024, not '%s'", optarg);
      ctx->jobs = (unsigned)n;
      break;
    }
    case 'n':
      cli.dry_run = true;
      break;
    case 'h':
      print_main_help(stdout);
      return EXIT_OK;
    case 'V':
      printf("kata-gpu-builder %s\n", KGB_VERSION);
      return EXIT_OK;
    default:
      return cli_bad_option(&cli, "kata-gpu-builder", argv[optind - 1], opts);
    }
  }
  if (optind >= argc) {
    print_main_help(stderr);
    return EXIT_USAGE;
  }
  const struct cli_command *cmd = find_command(argv[optind]);
  if (!cmd)
    return unknown_command(&cli, argv[optind]);
  if (kgb_ctx_set_string(&ctx->datadir, default_datadir()) < 0)
    return EXIT_FAIL;
  if (workdir && setup_workdir(&cli, workdir) != EXIT_OK)
    return EXIT_FAIL;
  if (!workdir && setup_workdir(&cli, ctx->workdir) != EXIT_OK)
    return EXIT_FAIL;
  ctx->cancel = &cancel_flag;
  /* no SA_RESTART: a blocking wait (the work directory lock) must see the interruption */
  struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESETHAND};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  cli_progress_install(&cli);
  int first = optind;
  struct run_opts ro = {.lock = cmd->flags & CLI_LOCKS_WORKDIR, .no_wait = no_wait};
  int r = run_command(&cli, cmd, "", cmd->help, &ro, argc - first, argv + first);
  cli_progress_done();
  if (r == EXIT_OK && (fflush(stdout) != 0 || ferror(stdout))) {
    cli_error(&cli, "writing to standard output failed");
    return EXIT_FAIL;
  }
  return r;
}
