/* The one way the engine runs external programs: an argv array (never a shell string), output
 * captured to a log file, the exit status returned. */
#pragma once

#include "kgb.h"

struct kgb_exec_opts {
  const char *cwd;      /* NULL: inherit */
  char *const *env;     /* extra NAME=VALUE entries added to the environment */
  const char *log_path; /* stdout+stderr appended here; NULL: discarded */
  /* Called for each complete output line (for progress); may be NULL. */
  void (*line_fn)(void *userdata, const char *line);
  void *userdata;
  /* Runs in the child after its output is redirected and its environment set, just before
   * execvp; a negative errno fails the run as if the program could not be started. It may
   * fork: only a process in which it returns 0 goes on to execute argv (chroot.c). */
  int (*child_setup)(void *userdata);
  void *child_userdata;
};

/* Returns the exit status (0..255), 128+N for a signal, or a negative errno when the program
 * could not be started (-ENOENT: not installed) or the run was cancelled (-ECANCELED). */
int kgb_exec(struct kgb_ctx *ctx, char *const argv[], const struct kgb_exec_opts *opts);
/* Runs argv and returns its first output line (trailing newline removed). */
int kgb_exec_first_line(struct kgb_ctx *ctx, char *const argv[], char **ret);
/* "make -C x O=y": the command line as a person would type it, for logs. */
char *kgb_argv_to_string(char *const argv[]);

/* The first line a program prints (its --version), or "unknown" when it cannot run: for
 * stage keys, where a missing tool is reported later by the step that needs it. */
int kgb_exec_version(struct kgb_ctx *ctx, char *const *argv, char **ret);

/* Appends a formatted line to a log file (created 0644). */
int kgb_log_append(const char *log_path, const char *fmt, ...) _printf_(2, 3);
