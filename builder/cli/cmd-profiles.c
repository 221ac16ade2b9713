/* `profiles` (the list) and `profile show NAME` (one profile after includes and overrides). */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "json.h"
#include "profile.h"
#include "sbuf.h"
#include "util.h"

static const struct option options[] = {{}};

static int no_options(struct cli *cli, const char *cmd, int argc, char **argv, int min_args,
                      int max_args) {
  if (getopt_long(argc, argv, "", options, NULL) != -1)
    return cli_bad_option(cli, cmd, argv[optind - 1], options);
  int n = argc - optind;
  if (n < min_args || n > max_args)
    return cli_usage(cli, "%s: expected %d argument%s; see 'kata-gpu-builder help %s'", cmd,
                     min_args, min_args == 1 ? "" : "s", cmd);
  return EXIT_OK;
}

static int run_profiles(struct cli *cli, int argc, char **argv) {
  int r = no_options(cli, "profiles", argc, argv, 0, 0);
  if (r != EXIT_OK)
    return r;
  _cleanup_strv_free_ char **names = NULL;
  r = kgb_profile_list(cli->ctx, &names);
  if (r < 0)
    return cli_fail(cli, r, "listing profiles");
  struct sbuf sb = SBUF_INIT;
  struct json j = JSON_INIT;
  if (cli->json)
    json_array_begin(&j, NULL, JSON_BLOCK_OPEN);
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
      json_object_begin(&j, NULL, JSON_INLINE);
      json_string(&j, "name", p->name);
      json_string(&j, "vendor", p->vendor);
      json_string(&j, "mode", p->mode);
      json_string(&j, "description", p->description);
      json_string(&j, "path", p->path);
      json_object_end(&j);
    } else {
      sbuf_addf(&sb, "%-16s %-7s %-12s %s\n", p->name, p->vendor, p->mode, p->description);
    }
  }
  if (cli->json) {
    json_array_end(&j);
    r = cli_out_json(&j);
  } else {
    r = cli_out_sbuf(&sb);
  }
  sbuf_release(&sb);
  return r < 0 ? EXIT_FAIL : status;
}

static int run_show(struct cli *cli, int argc, char **argv) {
  int r = no_options(cli, "profile show", argc, argv, 1, 1);
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
    {.name = "show",
     .run = run_show,
     .summary = "print a profile after includes and overrides",
     .options = options},
};

static const char profiles_help[] =
    "usage: kata-gpu-builder [--json] profiles\n\n"
    "Lists the shipped profiles: name, vendor, mode and a one-line description.\n\n"
    "example:\n  kata-gpu-builder profiles\n";

const struct cli_command cli_cmd_profiles = {
    .name = "profiles",
    .run = run_profiles,
    .summary = "list the profiles",
    .options = options,
    .help = profiles_help,
};

static const char profile_help[] =
    "usage: kata-gpu-builder [--json] profile show NAME|FILE\n\n"
    "Prints the profile after its @include files and its 'override' group are applied, as\n"
    "libconfig text or, with --json, as JSON. NAME is a shipped profile; FILE is a path to\n"
    "your own .cfg, which may '@include \"nvidia-gpu.cfg\"' and change fields in a top-level\n"
    "'override = { kernel = { cfgver = 2; }; };' group.\n\n"
    "example:\n  kata-gpu-builder profile show nvidia-gpu\n";

const struct cli_command cli_cmd_profile = {
    .name = "profile",
    .summary = "show one profile",
    .verbs = profile_verbs,
    .n_verbs = ELEMENTSOF(profile_verbs),
    .help = profile_help,
};
