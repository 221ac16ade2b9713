/* What the commands of the CLI share: global options, the command table type and the
 * helpers that talk to a person (messages, progress, exit codes). */
#pragma once

#include <stdbool.h>

#include "kgb.h"

enum {
  EXIT_OK = 0,
  EXIT_FAIL = 1,
  EXIT_USAGE = 2,
  EXIT_MISMATCH = KGB_EXIT_MISMATCH,
};

struct cli {
  struct kgb_ctx *ctx;
  bool json;
  int verbosity; /* -1 quiet, 0 normal, 1 verbose */
  bool dry_run;
};

struct cli_command {
  const char *name;
  int (*run)(struct cli *cli, int argc, char **argv);
  const char *summary;
  const char *help; /* full help: usage, options, an example */
};

extern const struct cli_command cli_cmd_build;
extern const struct cli_command cli_cmd_profiles, cli_cmd_profile, cli_cmd_kernel;
extern const struct cli_command cli_cmd_rootfs, cli_cmd_image;
extern const struct cli_command cli_cmd_boot_test;
extern const struct cli_command cli_cmd_kata_config, cli_cmd_host, cli_cmd_kubevirt,
    cli_cmd_oci_devices;

/* Runs a sub-verb from a table (argv[0] is the verb); prints usage errors itself. */
int cli_dispatch(struct cli *cli, const char *prefix, const struct cli_command *table, size_t n,
                 int argc, char **argv);
/* Prints `kata-gpu-builder: error: <what>: <engine detail>` once; with --json also the error
 * document on stdout. Returns EXIT_FAIL. */
int cli_fail(struct cli *cli, int r, const char *what);
/* A usage error (exit 2) with a hint. */
int cli_usage(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reports an unknown option, with the closest known long option when there is one. */
int cli_bad_option(struct cli *cli, const char *cmd, const char *arg, const char *const *known);
void cli_msg(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes s to stdout and checks for write errors. */
int cli_out(const char *s);
struct sbuf;
/* cli_out of a text built in sb; a failed append (sb's sticky error) prints nothing of it, says
 * so on stderr and returns the error: data on stdout is whole or absent. */
int cli_out_sbuf(const struct sbuf *sb);
void cli_progress_install(struct cli *cli);
void cli_progress_done(void);
const char *cli_closest(const char *word, const char *const *candidates);
