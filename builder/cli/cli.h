/* What the commands of the CLI share: global options, the command table type and the
 * helpers that talk to a person (messages, progress, exit codes). */
#pragma once

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>

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

struct json;

enum {
  /* the command builds into the work directory: it runs holding the directory's lock, as two
   * of them at once would race on the same O= directories */
  CLI_LOCKS_WORKDIR = 1 << 0,
};

/* A command or a sub-verb (`kernel config`, `host mdev list`). The dispatcher in main.c walks
 * the verbs, answers -h/--help from the help text (a verb without one shows its parent's) and
 * takes the work directory's lock; run then parses its options from options and shortopts
 * (cli_bad_option derives its did-you-mean from the same table). */
struct cli_command {
  const char *name;
  int (*run)(struct cli *cli, int argc, char **argv); /* NULL when the command has verbs */
  const char *summary;
  const char *help; /* full help: usage, options, an example */
  const struct option *options;
  const char *shortopts;
  const struct cli_command *verbs;
  size_t n_verbs;
  unsigned flags; /* CLI_LOCKS_WORKDIR */
};

extern const struct cli_command cli_cmd_build;
extern const struct cli_command cli_cmd_profiles, cli_cmd_profile, cli_cmd_kernel;
extern const struct cli_command cli_cmd_rootfs, cli_cmd_image;
extern const struct cli_command cli_cmd_boot_test;
extern const struct cli_command cli_cmd_kata_config, cli_cmd_host, cli_cmd_kubevirt,
    cli_cmd_oci_devices;
/* `kernel verify`, in its own file */
int cli_kernel_verify(struct cli *cli, int argc, char **argv);
extern const char cli_kernel_verify_help[];
extern const struct option cli_kernel_verify_options[];

/* ---- talking to a person (output.c): each clears the progress line first ---- */
/* Prints `kata-gpu-builder: error: <what>: <engine detail>` once; with --json also the error
 * document on stdout. Returns EXIT_FAIL. */
int cli_fail(struct cli *cli, int r, const char *what);
/* A usage error (exit 2) with a hint. */
int cli_usage(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reports an unknown option of cmd, with the closest long option of the table (or --help)
 * when there is one. */
int cli_bad_option(struct cli *cli, const char *cmd, const char *arg, const struct option *options);
/* What is being done and what was found; -q silences it. */
void cli_msg(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* What the user must see even with -q: mismatches, problems, the end of a log. As given. */
void cli_err(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* `kata-gpu-builder: warning: ...` and `kata-gpu-builder: error: ...`, newline added */
void cli_warn(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_error(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes s to stdout and checks for write errors. */
int cli_out(const char *s);
struct sbuf;
/* cli_out of a text built in sb; a failed append (sb's sticky error) prints nothing of it, says
 * so on stderr and returns the error: data on stdout is whole or absent. */
int cli_out_sbuf(const struct sbuf *sb);
/* Writes the finished JSON document to stdout (as cli_out) and releases j. */
int cli_out_json(struct json *j);
void cli_progress_install(struct cli *cli);
void cli_progress_done(void);
const char *cli_closest(const char *word, const char *const *candidates);

/* ---- JSON renderings that the unit tests check too ---- */
struct kgb_host_report;
struct kgb_oci_device;
char *cli_host_report_json(const struct kgb_host_report *r);
char *cli_oci_devices_json(const struct kgb_oci_device *devs, size_t n);
/* kubevirt's document: YAML, or JSON with --json (cmd-kubevirt.c). */
struct kgb_kubevirt_plan;
char *cli_kubevirt_render(const struct kgb_kubevirt_plan *pl, bool json);
