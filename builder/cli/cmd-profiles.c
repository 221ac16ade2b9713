/* `profiles` (the list) and `profile show NAME` (one profile after includes and overrides). */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "profile.h"
#include "sbuf.h"
#include "util.h"

static int no_options(struct cli *cli, const char *cmd, int argc, char **argv, int min_args,
                      int max_args) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {}};
  static const char *const known[] = {"--help", NULL};
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (c == 'h')
      return -1;
    return cli_bad_option(cli, cmd, argv[optind - 1], known);
  }
  int n = argc - optind;
  if (n < min_args || n > max_args)
    return cli_usage(cli, "%s: expected %d argument%s; see 'kata-gpu-builder help %s'", cmd,
                     min_args, min_args == 1 ? "" : "s", cmd);
  return EXIT_OK;
}

static int run_profiles(struct cli *cli, int argc, char **argv) {
  int r = no_options(cli, "profiles", argc, argv, 0, 0);
  if (r < 0) {
    fputs(cli_cmd_profiles.help, stdout);
    return EXIT_OK;
  }
  if (r != EXIT_OK)
    return r;
  _cleanup_strv_free_ char **names = NULL;
  r = kgb_profile_list(cli->ctx, &names);
  if (r < 0)
    return cli_fail(cli, r, "listing profiles");
  struct sbuf sb = SBUF_INIT;
  if (cli->json)
    sbuf_adds(&sb, "[");
  else
    sbuf_addf(&sb, "%-16s %-7s %-12s %s\n", "NAME", "VENDOR", "MODE", "DESCRIPTION");
  int status = EXIT_OK;
  for (size_t i = 0; names[i]; i++) {
    _cleanup_(kgb_profile_freep) struct kgb_profile *p = NULL;
    r = kgb_profile_load(cli->ctx, names[i], &p);
    if (r < 0) {
      status = cli_fail(cli, r, NULL);
      kgb_error_clear(cli->ctx);
      continue;
    }
    if (cli->json) {
      sbuf_adds(&sb, i ? ",\n  {\"name\": " : "\n  {\"name\": ");
      sbuf_add_json(&sb, p->name);
      sbuf_adds(&sb, ", \"vendor\": ");
      sbuf_add_json(&sb, p->vendor);
      sbuf_adds(&sb, ", \"mode\": ");
      sbuf_add_json(&sb, p->mode);
      sbuf_adds(&sb, ", \"description\": ");
      sbuf_add_json(&sb, p->description);
      sbuf_adds(&sb, ", \"path\": ");
      sbuf_add_json(&sb, p->path);
      sbuf_adds(&sb, "}");
    } else {
      sbuf_addf(&sb, "%-16s %-7s %-12s %s\n", p->name, p->vendor, p->mode, p->description);
    }
  }
  if (cli->json)
    sbuf_adds(&sb, "\n]\n");
  r = cli_out_sbuf(&sb);
  sbuf_release(&sb);
  return r < 0 ? EXIT_FAIL : status;
}

static int run_show(struct cli *cli, int argc, char **argv) {
  int r = no_options(cli, "profile show", argc, argv, 1, 1);
  if (r < 0) {
    fputs(cli_cmd_profile.help, stdout);
    return EXIT_OK;
  }
  if (r != EXIT_OK)
    return r;
  _cleanup_(kgb_profile_freep) struct kgb_profile *p = NULL;
  r = kgb_profile_load(cli->ctx, argv[optind], &p);
  if (r < 0)
    return cli_fail(cli, r, NULL);
  _cleanup_free_ char *text = NULL;
  r = kgb_profile_format(p, cli->json, &text);
  if (r < 0)
    return cli_fail(cli, r, "formatting the profile");
  return cli_out(text) < 0 ? EXIT_FAIL : EXIT_OK;
}

static const struct cli_command profile_verbs[] = {
    {"show", run_show, "print a profile after includes and overrides", NULL},
};

static int run_profile(struct cli *cli, int argc, char **argv) {
  return cli_dispatch(cli, "profile", profile_verbs, ELEMENTSOF(profile_verbs), argc - 1, argv + 1);
}

const struct cli_command cli_cmd_profiles = {
    "profiles", run_profiles, "list the profiles",
    "usage: kata-gpu-builder [--json] profiles\n\n"
    "Lists the shipped profiles: name, vendor, mode and a one-line description.\n\n"
    "example:\n  kata-gpu-builder profiles\n"};

const struct cli_command cli_cmd_profile = {
    "profile", run_profile, "show one profile",
    "usage: kata-gpu-builder [--json] profile show NAME|FILE\n\n"
    "Prints the profile after its @include files and its 'override' group are applied, as\n"
    "libconfig text or, with --json, as JSON. NAME is a shipped profile; FILE is a path to\n"
    "your own .cfg, which may '@include \"nvidia-gpu.cfg\"' and change fields in a top-level\n"
    "'override = { kernel = { cfgver = 2; }; };' group.\n\n"
    "example:\n  kata-gpu-builder profile show nvidia-gpu\n"};
