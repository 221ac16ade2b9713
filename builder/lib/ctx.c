/* The engine context: defaults for roots and work directory, logging and error details. */
#define _GNU_SOURCE
#include "kgb.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../shared/util.h"

int kgb_ctx_new(struct kgb_ctx **ret) {
  struct kgb_ctx *ctx = calloc(1, sizeof(*ctx));
  if (!ctx)
    return -ENOMEM;
  const char *home = getenv("HOME");
  _cleanup_free_ char *wd = kgb_strdup_printf("%s/.cache/kata-gpu-builder", home ? home : "/tmp");
  if (!wd || kgb_ctx_set_string(&ctx->sysfs, "/sys") < 0 ||
      kgb_ctx_set_string(&ctx->proc, "/proc") < 0 || kgb_ctx_set_string(&ctx->boot, "/boot") < 0 ||
      kgb_ctx_set_string(&ctx->workdir, wd) < 0) {
    kgb_ctx_free(ctx);
    return -ENOMEM;
  }
  ctx->jobs = 1;
  *ret = ctx;
  return 0;
}

struct kgb_ctx *kgb_ctx_free(struct kgb_ctx *ctx) {
  if (!ctx)
    return NULL;
  free(ctx->sysfs);
  free(ctx->proc);
  free(ctx->boot);
  free(ctx->workdir);
  free(ctx->datadir);
  free(ctx->error);
  free(ctx);
  return NULL;
}

int kgb_ctx_set_string(char **field, const char *value) {
  char *c = NULL;
  if (value && !(c = strdup(value)))
    return -ENOMEM;
  free(*field);
  *field = c;
  return 0;
}

void kgb_log(struct kgb_ctx *ctx, enum kgb_log_level level, const char *fmt, ...) {
  if (!ctx || !ctx->log)
    return;
  va_list ap;
  char *msg;
  va_start(ap, fmt);
  int n = vasprintf(&msg, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  ctx->log(ctx->log_userdata, level, msg);
  free(msg);
}

int kgb_error(struct kgb_ctx *ctx, int err, const char *fmt, ...) {
  if (!ctx || ctx->error)
    return err;
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(&ctx->error, fmt, ap) < 0)
    ctx->error = NULL;
  va_end(ap);
  return err;
}

int kgb_error_prefix(struct kgb_ctx *ctx, int err, const char *fmt, ...) {
  if (!ctx)
    return err;
  va_list ap;
  va_start(ap, fmt);
  _cleanup_free_ char *what = NULL;
  int n = vasprintf(&what, fmt, ap);
  va_end(ap);
  char *detail = NULL;
  if (n < 0 || asprintf(&detail, "%s: %s", what, ctx->error ? ctx->error : strerror(-err)) < 0)
    return err; /* out of memory: the deeper detail, without the context, is still true */
  free(ctx->error);
  ctx->error = detail;
  return err;
}

const char *kgb_error_detail(const struct kgb_ctx *ctx) { return ctx ? ctx->error : NULL; }

void kgb_error_clear(struct kgb_ctx *ctx) {
  free(ctx->error);
  ctx->error = NULL;
}

bool kgb_cancelled(const struct kgb_ctx *ctx) { return ctx && ctx->cancel && *ctx->cancel; }

void kgb_progress(struct kgb_ctx *ctx, const char *what, uint64_t done, uint64_t total) {
  if (ctx && ctx->progress)
    ctx->progress(ctx->progress_userdata, ctx->stage, what, done, total);
}

void kgb_progress_end(struct kgb_ctx *ctx) {
  if (ctx && ctx->progress)
    ctx->progress(ctx->progress_userdata, ctx->stage, NULL, 0, 0);
}

int kgb_ctx_clone(const struct kgb_ctx *ctx, struct kgb_ctx **ret) {
  struct kgb_ctx *c = calloc(1, sizeof(*c));
  if (!c)
    return -ENOMEM;
  if (kgb_ctx_set_string(&c->sysfs, ctx->sysfs) < 0 ||
      kgb_ctx_set_string(&c->proc, ctx->proc) < 0 || kgb_ctx_set_string(&c->boot, ctx->boot) < 0 ||
      kgb_ctx_set_string(&c->workdir, ctx->workdir) < 0 ||
      kgb_ctx_set_string(&c->datadir, ctx->datadir) < 0) {
    kgb_ctx_free(c);
    return -ENOMEM;
  }
  c->jobs = ctx->jobs;
  c->force = ctx->force;
  c->log = ctx->log;
  c->log_userdata = ctx->log_userdata;
  c->progress = ctx->progress;
  c->progress_userdata = ctx->progress_userdata;
  c->cancel = ctx->cancel;
  *ret = c;
  return 0;
}
