/* The engine's context: what every engine call receives first (roots, work directory, jobs,
 * log and progress callbacks, cancellation) and the error detail that the CLI prints once. */
#pragma once

#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "../shared/macro.h"

enum kgb_log_level {
  KGB_LOG_ERROR,
  KGB_LOG_WARNING,
  KGB_LOG_NOTICE,
  KGB_LOG_INFO,
  KGB_LOG_DEBUG,
  _KGB_LOG_LEVEL_MAX,
  _KGB_LOG_LEVEL_INVALID = -22,
};

typedef void (*kgb_log_fn)(void *userdata, enum kgb_log_level level, const char *message);
/* stage: the pipeline stage the work belongs to (ctx->stage, NULL outside a pipeline), one
 * progress line each; total == 0 means unknown; done == total ends the line, and so does a
 * NULL what (kgb_progress_end). */
typedef void (*kgb_progress_fn)(void *userdata, const char *stage, const char *what, uint64_t done,
                                uint64_t total);

struct kgb_ctx {
  char *sysfs; /* host roots, default /sys, /proc, /boot */
  char *proc;
  char *boot;
  char *workdir; /* stages/, cache/, sources/ live here */
  char *datadir; /* profiles/, kconfig-fragments/, recipes/ */
  unsigned jobs;
  bool force; /* ignore stage caches */
  kgb_log_fn log;
  void *log_userdata;
  kgb_progress_fn progress;
  void *progress_userdata;
  const char *stage;             /* a static name given to progress: "kernel", "rootfs", ... */
  volatile sig_atomic_t *cancel; /* set by the CLI's signal handler */
  char *error;                   /* detail of the last failure, for the CLI to print once */
};

int kgb_ctx_new(struct kgb_ctx **ret);
struct kgb_ctx *kgb_ctx_free(struct kgb_ctx *ctx);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_ctx *, kgb_ctx_free)
int kgb_ctx_set_string(char **field, const char *value);

void kgb_log(struct kgb_ctx *ctx, enum kgb_log_level level, const char *fmt, ...) _printf_(3, 4);
#define kgb_info(ctx, ...) kgb_log(ctx, KGB_LOG_INFO, __VA_ARGS__)
#define kgb_notice(ctx, ...) kgb_log(ctx, KGB_LOG_NOTICE, __VA_ARGS__)
#define kgb_warn(ctx, ...) kgb_log(ctx, KGB_LOG_WARNING, __VA_ARGS__)
#define kgb_debug(ctx, ...) kgb_log(ctx, KGB_LOG_DEBUG, __VA_ARGS__)

/* The error detail: the one text the CLI prints for a failure, beside the errno.
 *
 * The rule: the first detail recorded wins, and callers add context in front of it. The
 * deepest layer that sees a failure knows most (the file and line, the program and its exit
 * status) and records it with kgb_error(); a later kgb_error() on the same context, by a
 * caller on the way up, leaves that detail alone, so a caller that returns the failure and
 * wants to say what it was doing uses kgb_error_prefix() ("recipe 'x' (a.recipe:3): <the
 * deeper detail>"). A caller that handles a failure (falls back, retries, reports it as a
 * finding) calls kgb_error_clear(), and so does one whose own message is the better one (a
 * missing program: what to install) before it records it.
 *
 * Both return err (a negative errno), for `return kgb_error(ctx, -EINVAL, ...)`. */
int kgb_error(struct kgb_ctx *ctx, int err, const char *fmt, ...) _printf_(3, 4);
/* Puts "<fmt>: " in front of the detail; without one, the detail becomes "<fmt>: strerror". */
int kgb_error_prefix(struct kgb_ctx *ctx, int err, const char *fmt, ...) _printf_(3, 4);
const char *kgb_error_detail(const struct kgb_ctx *ctx);
void kgb_error_clear(struct kgb_ctx *ctx);
bool kgb_cancelled(const struct kgb_ctx *ctx);
void kgb_progress(struct kgb_ctx *ctx, const char *what, uint64_t done, uint64_t total);
/* The context's stage has nothing running any more: its line goes (what is NULL for the
 * callback). */
void kgb_progress_end(struct kgb_ctx *ctx);

/* Shorthand for the tristate values used by the Kconfig reader and the verifier. */
enum kgb_tristate { KGB_N = 0, KGB_M = 1, KGB_Y = 2 };

/* Exit status of a verification that found a mismatch (DESIGN.md). */
#define KGB_EXIT_MISMATCH 3

/* Removes what an interrupted run (SIGKILL, power loss) left half-written in the work
 * directory: stage directories and extracted sources under their temporary names. Call it
 * only while holding the work directory's lock, when no other run can be writing. */
int kgb_workdir_sweep(struct kgb_ctx *ctx, unsigned *ret_removed);

/* A context for another thread: the same roots, settings, log, progress callback and cancel
 * flag, its own error detail and stage (set it: the CLI draws a progress line per stage). */
int kgb_ctx_clone(const struct kgb_ctx *ctx, struct kgb_ctx **ret);
