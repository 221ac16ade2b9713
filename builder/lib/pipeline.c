/* The `build` pipeline. Each stage is one of the engine's cached stages; this file only
 * orders them, records for each whether it ran or was reused and why, and lays the results
 * out as a host installs them. Interrupted anywhere, a second run resumes from the stages
 * that finished, because every stage writes under a temporary name and renames when done. */
#define _GNU_SOURCE
#include "pipeline.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../shared/sbuf.h"
#include "../shared/string-table.h"
#include "../shared/util.h"

static const char *const kgb_stage_table[_KGB_STAGE_MAX] = {
    [KGB_STAGE_CONFIG] = "config", [KGB_STAGE_KERNEL] = "kernel", [KGB_STAGE_ROOTFS] = "rootfs",
    [KGB_STAGE_IMAGE] = "image",   [KGB_STAGE_KATA] = "kata",     [KGB_STAGE_INSTALL] = "install",
};
static const char *const kgb_stage_state_table[_KGB_STAGE_STATE_MAX] = {
    [KGB_STAGE_PENDING] = "not run", [KGB_STAGE_CACHED] = "cached",     [KGB_STAGE_RAN] = "ran",
    [KGB_STAGE_FAILED] = "failed",   [KGB_STAGE_PLANNED] = "would run",
};

DEFINE_STRING_TABLE_TO_STRING(kgb_stage, enum kgb_stage_id);
DEFINE_STRING_TABLE_TO_STRING(kgb_stage_state, enum kgb_stage_state);

struct kgb_pipeline_result *kgb_pipeline_result_free(struct kgb_pipeline_result *r) {
  if (!r)
    return NULL;
  for (size_t i = 0; i < _KGB_STAGE_MAX; i++) {
    free(r->stages[i].why);
    free(r->stages[i].output);
    free(r->stages[i].key);
  }
  kgb_image_result_free(r->image);
  kgb_rootfs_result_free(r->rootfs);
  kgb_packages_layer_release(&r->layer);
  kgb_base_release(&r->base);
  kgb_headers_result_free(r->headers);
  kgb_build_result_free(r->kernel);
  kgb_config_result_free(r->config);
  free(r->destdir);
  free(r);
  return NULL;
}

static void report(struct kgb_stage_report *s, enum kgb_stage_state state, const char *why,
                   const char *output, const char *key, double seconds) {
  s->state = state;
  free(s->why);
  free(s->output);
  free(s->key);
  s->why = why ? strdup(why) : NULL;
  s->output = output ? strdup(output) : NULL;
  s->key = key ? strdup(key) : NULL;
  s->seconds = seconds;
}

static const char *basename_of(const char *path) {
  const char *s = path ? strrchr(path, '/') : NULL;
  return s ? s + 1 : path;
}

static int plan(struct kgb_ctx *ctx, const struct kgb_profile *p, const struct kgb_pipeline_opts *o,
                struct kgb_pipeline_result *res) {
  _cleanup_free_ char *key = NULL, *srcdir = NULL, *kkey = NULL;
  bool cached = false, kcached = false;
  int r = kgb_kernel_config_plan(ctx, p, o->kernel->config, &key, &cached, &srcdir);
  if (r < 0)
    return r;
  report(&res->stages[KGB_STAGE_CONFIG], cached ? KGB_STAGE_CACHED : KGB_STAGE_PLANNED,
         !key     ? "the source must be downloaded before its key is known"
         : cached ? "resolved config found under its key"
                  : "no resolved config under this key: make allnoconfig would run",
         NULL, key, 0);
  static const char *const later[] = {
      [KGB_STAGE_KERNEL] = "its key includes the resolved config's: known once the config "
                           "stage has run",
      [KGB_STAGE_ROOTFS] = "its key includes the kernel's and the mirror's Release date: read "
                           "when the stage runs",
      [KGB_STAGE_IMAGE] = "its key includes the root file system's",
      [KGB_STAGE_KATA] = "always computed (reads the host's GPUs)",
      [KGB_STAGE_INSTALL] = "always copies the outputs into the destination",
  };
  for (int i = KGB_STAGE_KERNEL; i < _KGB_STAGE_MAX; i++)
    report(&res->stages[i], KGB_STAGE_PLANNED, later[i], NULL, NULL, 0);
  /* with the config resolved, the kernel's key is known too */
  if (!cached || !srcdir)
    return 0;
  if ((r = kgb_kernel_build_plan(ctx, p, key, srcdir, &kkey, &kcached)) < 0)
    return r;
  report(&res->stages[KGB_STAGE_KERNEL], kcached ? KGB_STAGE_CACHED : KGB_STAGE_PLANNED,
         kcached ? "kernel found under its key"
                 : "no kernel under this key: make bzImage vmlinux modules would run",
         NULL, kkey, 0);
  return 0;
}

static int install_outputs(struct kgb_ctx *ctx, const struct kgb_profile *p,
                           const struct kgb_pipeline_opts *o, struct kgb_pipeline_result *res,
                           const struct kgb_kata_plan *kp) {
  const struct kgb_build_result *b = res->kernel;
  /* the default destination, <workdir>/out/<profile>, is this tool's own tree (an older
   * version installed there without a record of it) */
  struct kgb_install_opts io = {
      .destdir = res->destdir, .prefix = o->prefix, .replace = !o->destdir};
  _cleanup_(kgb_installed_freep) struct kgb_installed *in = NULL;
  int r = kgb_kernel_install(ctx, p, b, &io, &in);
  if (r < 0)
    return r;
  bool initrd = res->format == KGB_IMAGE_INITRD;
  _cleanup_free_ char *name = kgb_kata_image_file(p, initrd);
  _cleanup_free_ char *img = name ? strjoin_path(in->dir, name) : NULL;
  if (!img)
    return -ENOMEM;
  r = copy_file_if_changed(res->image->path, img, 0644);
  if (r < 0)
    return kgb_error(ctx, r, "cannot install '%s': %s", img, strerror(-r));
  _cleanup_free_ char *confd = kgb_strdup_printf("%s/etc/kata-containers/config.d", res->destdir);
  if (!confd || (r = mkdir_p(confd, 0755)) < 0)
    return confd ? kgb_error(ctx, r, "cannot create '%s': %s", confd, strerror(-r)) : -ENOMEM;
  _cleanup_free_ char *dropin = NULL;
  r = kgb_kata_drop_in(ctx, kp, confd, KGB_DROP_IN_DEFAULT, &dropin);
  if (r < 0)
    return r;
  _cleanup_free_ char *why =
      kgb_strdup_printf("%s, %s and %s", in->vmlinuz_link, basename_of(img), basename_of(dropin));
  report(&res->stages[KGB_STAGE_INSTALL], KGB_STAGE_RAN, why, res->destdir, NULL, 0);
  return 0;
}

struct bootstrap_job {
  struct kgb_ctx *ctx; /* the thread's own */
  const struct kgb_profile *p;
  const struct kgb_rootfs_opts *o;
  const struct kgb_rootfs_plan *plan;
  long long epoch;
  struct kgb_base base;
  struct kgb_packages_layer layer;
  int r;
};

/* The base, then the packages layer on it: everything of the root that needs no kernel. */
static void *bootstrap_thread(void *arg) {
  struct bootstrap_job *j = arg;
  j->r = kgb_rootfs_bootstrap(j->ctx, j->p, j->o, j->epoch, &j->base);
  if (j->r >= 0)
    j->r = kgb_rootfs_layer(j->ctx, j->p, j->o, j->plan, &j->base, j->epoch, &j->layer);
  kgb_progress_end(j->ctx);
  return NULL;
}

static void enter(struct kgb_ctx *ctx, enum kgb_stage_id s) {
  kgb_progress_end(ctx);
  ctx->stage = kgb_stage_to_string(s);
}

/* The kernel build with the root file system's bootstrap and packages layer beside it (when
 * the run goes that far): they need only the source's SOURCE_DATE_EPOCH, known once the
 * config has run. */
static int kernel_and_base(struct kgb_ctx *ctx, const struct kgb_profile *p,
                           const struct kgb_pipeline_opts *o, const struct kgb_rootfs_plan *rplan,
                           enum kgb_stage_id last, struct kgb_pipeline_result *res,
                           enum kgb_stage_id *ret_failed) {
  *ret_failed = KGB_STAGE_KERNEL;
  struct bootstrap_job job = {.p = p,
                              .o = o->rootfs,
                              .plan = rplan,
                              .epoch = kgb_source_date_epoch(p, res->config->source->dir)};
  pthread_t th;
  bool started = last >= KGB_STAGE_ROOTFS && rplan && !res->config->verify->n_unexplained &&
                 kgb_ctx_clone(ctx, &job.ctx) >= 0;
  if (started) {
    job.ctx->stage = kgb_stage_to_string(KGB_STAGE_ROOTFS);
    started = pthread_create(&th, NULL, bootstrap_thread, &job) == 0;
  }
  if (!started)
    job.ctx = kgb_ctx_free(job.ctx);
  enter(ctx, KGB_STAGE_KERNEL);
  int r = kgb_kernel_build(ctx, p, o->kernel, res->config, &res->kernel);
  if (started) {
    pthread_join(th, NULL);
    if (r >= 0 && job.r < 0) {
      *ret_failed = KGB_STAGE_ROOTFS;
      r = kgb_error(ctx, job.r, "%s",
                    kgb_error_detail(job.ctx) ? kgb_error_detail(job.ctx) : strerror(-job.r));
    }
    kgb_ctx_free(job.ctx);
    res->base = job.base;
    res->layer = job.layer;
  }
  return r;
}

static char *last_build_path(struct kgb_ctx *ctx, const char *profile) {
  return kgb_strdup_printf("%s/builds/%s", ctx->workdir, profile);
}

static int last_build_write(struct kgb_ctx *ctx, const struct kgb_profile *p,
                            const struct kgb_pipeline_result *res) {
  const struct kgb_build_result *b = res->kernel;
  _cleanup_free_ char *path = last_build_path(ctx, p->name);
  _cleanup_free_ char *dir = kgb_strdup_printf("%s/builds", ctx->workdir);
  _cleanup_free_ char *text =
      kgb_strdup_printf("kernel_stage %s\nrelease %s\nimage %s\nformat %s\n", b->stage_dir,
                        b->release, res->image->path, kgb_image_format_to_string(res->format));
  if (!path || !dir || !text)
    return -ENOMEM;
  int r = mkdir_p(dir, 0755);
  if (r >= 0)
    r = write_file_atomic(path, text, strlen(text), 0644);
  if (r < 0)
    return kgb_error(ctx, r, "cannot write '%s': %s", path, strerror(-r));
  return 0;
}

void kgb_last_build_release(struct kgb_last_build *b) {
  free(b->kernel_stage);
  free(b->release);
  free(b->image);
  *b = (struct kgb_last_build){0};
}

int kgb_last_build_read(struct kgb_ctx *ctx, const char *profile, struct kgb_last_build *ret) {
  _cleanup_free_ char *path = last_build_path(ctx, profile), *text = NULL;
  size_t len;
  int r = path ? read_full_file(path, &text, &len) : -ENOMEM;
  if (r == -ENOENT)
    return r;
  if (r < 0)
    return kgb_error(ctx, r, "cannot read '%s': %s", path, strerror(-r));
  struct kgb_last_build b = {.format = _KGB_IMAGE_FORMAT_INVALID};
  for (char *line = text, *next; line && *line; line = next) {
    next = strchr(line, '\n');
    if (next)
      *next++ = '\0';
    char *v = strchr(line, ' ');
    if (!v)
      continue;
    *v++ = '\0';
    char **slot = STREQ(line, "kernel_stage") ? &b.kernel_stage
                  : STREQ(line, "release")    ? &b.release
                  : STREQ(line, "image")      ? &b.image
                                              : NULL;
    if (slot) {
      free(*slot);
      *slot = strdup(v);
    } else if (STREQ(line, "format")) {
      b.format = kgb_image_format_from_string(v);
    }
  }
  if (!b.kernel_stage || !b.release || !b.image || b.format < 0) {
    kgb_last_build_release(&b);
    return kgb_error(ctx, -EBADMSG, "'%s' is incomplete: run 'build -p %s' again", path, profile);
  }
  *ret = b;
  return 0;
}

static void report_config(struct kgb_pipeline_result *res) {
  const struct kgb_config_result *c = res->config;
  bool lost = c->verify && c->verify->n_unexplained;
  report(&res->stages[KGB_STAGE_CONFIG],
         lost        ? KGB_STAGE_FAILED
         : c->cached ? KGB_STAGE_CACHED
                     : KGB_STAGE_RAN,
         lost        ? "requested values did not survive"
         : c->cached ? "resolved config found under its key"
                     : "resolved with the kernel's Kconfig",
         c->config_path, c->key, c->resolve_seconds + c->verify_seconds);
}

static int failed(struct kgb_ctx *ctx, struct kgb_pipeline_result *res, enum kgb_stage_id s, int r,
                  double t, double t0) {
  report(&res->stages[s], KGB_STAGE_FAILED, kgb_error_detail(ctx), NULL, NULL,
         monotonic_seconds() - t);
  res->seconds = monotonic_seconds() - t0;
  return r;
}

static int run_stages(struct kgb_ctx *ctx, const struct kgb_profile *p,
                      const struct kgb_pipeline_opts *o, enum kgb_stage_id last,
                      struct kgb_pipeline_result *res) {
  double t0 = monotonic_seconds(), t = t0;
  res->destdir =
      o->destdir ? strdup(o->destdir) : kgb_strdup_printf("%s/out/%s", ctx->workdir, p->name);
  if (!res->destdir)
    return -ENOMEM;
  if (o->dry_run)
    return plan(ctx, p, o, res);

  /* the recipes and settings first: a mistake there fails before anything is built */
  _cleanup_(kgb_rootfs_plan_freep) struct kgb_rootfs_plan *rplan = NULL;
  int r;
  if (last >= KGB_STAGE_ROOTFS && (r = kgb_rootfs_plan_new(ctx, p, o->rootfs, &rplan)) < 0)
    return failed(ctx, res, KGB_STAGE_ROOTFS, r, t, t0);

  enter(ctx, KGB_STAGE_CONFIG);
  if ((r = kgb_kernel_config(ctx, p, o->kernel->config, &res->config)) < 0)
    return failed(ctx, res, KGB_STAGE_CONFIG, r, t, t0);
  report_config(res);
  if (last == KGB_STAGE_CONFIG) {
    res->seconds = monotonic_seconds() - t0;
    return 0;
  }

  /* the kernel compile and the bootstrap (which waits on the network) at once */
  t = monotonic_seconds();
  enum kgb_stage_id fail_at;
  r = kernel_and_base(ctx, p, o, rplan, last, res, &fail_at);
  if (res->kernel)
    report(&res->stages[KGB_STAGE_KERNEL], res->kernel->cached ? KGB_STAGE_CACHED : KGB_STAGE_RAN,
           res->kernel->cached ? "kernel found under its key" : res->kernel->why,
           res->kernel->stage_dir, basename_of(res->kernel->stage_dir), res->kernel->seconds);
  if (r < 0) {
    if (r == -EBADE && res->config->verify->n_unexplained)
      fail_at = KGB_STAGE_CONFIG;
    return failed(ctx, res, fail_at, r, t, t0);
  }
  if (last == KGB_STAGE_KERNEL) {
    res->seconds = monotonic_seconds() - t0;
    return 0;
  }

  t = monotonic_seconds();
  enter(ctx, KGB_STAGE_ROOTFS);
  if (kgb_rootfs_plan_needs_headers(rplan) &&
      (r = kgb_kernel_headers(ctx, p, o->kernel, res->kernel, KGB_HEADERS_DEB, &res->headers)) < 0)
    return failed(ctx, res, KGB_STAGE_ROOTFS, r, t, t0);
  struct kgb_rootfs_inputs in = {.kernel = res->kernel,
                                 .headers_deb = res->headers ? res->headers->files[0] : NULL,
                                 .base = &res->base,
                                 .layer = &res->layer};
  r = kgb_rootfs_build(ctx, p, o->rootfs, rplan, &in, &res->rootfs);
  if (r < 0)
    return failed(ctx, res, KGB_STAGE_ROOTFS, r, t, t0);
  const struct kgb_rootfs_result *rf = res->rootfs;
  _cleanup_free_ char *rwhy = kgb_strdup_printf(
      "%s; %zu recipe%s%s", rf->cached ? "root file system found under its key" : "built",
      strv_length(rf->recipes), strv_length(rf->recipes) == 1 ? "" : "s",
      rf->kata_agent
          ? ""
          : "; no kata-agent: boots with the distro's init, not yet a complete Kata guest");
  report(&res->stages[KGB_STAGE_ROOTFS], rf->cached ? KGB_STAGE_CACHED : KGB_STAGE_RAN, rwhy,
         rf->root, rf->key, rf->seconds);
  if (last == KGB_STAGE_ROOTFS) {
    res->seconds = monotonic_seconds() - t0;
    return 0;
  }

  t = monotonic_seconds();
  const char *fmt = o->image_format ? o->image_format : p->image.format ? p->image.format : "ext4";
  enum kgb_image_format f = kgb_image_format_from_string(fmt);
  if (f < 0)
    return kgb_error(ctx, -EINVAL, "unknown image format '%s': use ext4, erofs or initrd", fmt);
  res->format = f;
  enter(ctx, KGB_STAGE_IMAGE);
  r = kgb_rootfs_image(ctx, p, res->rootfs, f, KGB_COMPRESS_ZSTD, &res->image);
  if (r < 0)
    return failed(ctx, res, KGB_STAGE_IMAGE, r, t, t0);
  report(&res->stages[KGB_STAGE_IMAGE], res->image->cached ? KGB_STAGE_CACHED : KGB_STAGE_RAN,
         res->image->cached ? "image found under its key" : fmt, res->image->path, res->image->key,
         res->image->seconds);
  if (last == KGB_STAGE_IMAGE) {
    res->seconds = monotonic_seconds() - t0;
    return 0;
  }

  t = monotonic_seconds();
  enter(ctx, KGB_STAGE_KATA);
  struct kgb_kata_opts ko = {.kata_version = o->kata_version, .prefix = o->prefix};
  _cleanup_(kgb_kata_plan_freep) struct kgb_kata_plan *kp = NULL;
  r = kgb_kata_plan(ctx, p, &ko, &kp);
  if (r < 0)
    return failed(ctx, res, KGB_STAGE_KATA, r, t, t0);
  _cleanup_free_ char *kwhy =
      kgb_strdup_printf("%zu settings for Kata %s%s%s", kp->n_settings, kp->version,
                        kp->large_bar ? "; " : "", kp->large_bar ? kp->large_bar : "");
  report(&res->stages[KGB_STAGE_KATA], KGB_STAGE_RAN, kwhy, NULL, NULL, monotonic_seconds() - t);

  t = monotonic_seconds();
  enter(ctx, KGB_STAGE_INSTALL);
  r = install_outputs(ctx, p, o, res, kp);
  if (r >= 0)
    r = last_build_write(ctx, p, res);
  res->stages[KGB_STAGE_INSTALL].seconds = monotonic_seconds() - t;
  if (r < 0)
    return failed(ctx, res, KGB_STAGE_INSTALL, r, t, t0);
  res->seconds = monotonic_seconds() - t0;
  return 0;
}

int kgb_pipeline_upto(struct kgb_ctx *ctx, const struct kgb_profile *p,
                      const struct kgb_pipeline_opts *o, enum kgb_stage_id last,
                      struct kgb_pipeline_result **ret) {
  struct kgb_pipeline_result *res = calloc(1, sizeof(*res));
  if (!res)
    return -ENOMEM;
  *ret = res;
  int r = run_stages(ctx, p, o, last, res);
  kgb_progress_end(ctx);
  ctx->stage = NULL;
  return r;
}

int kgb_pipeline_run(struct kgb_ctx *ctx, const struct kgb_profile *p,
                     const struct kgb_pipeline_opts *o, struct kgb_pipeline_result **ret) {
  return kgb_pipeline_upto(ctx, p, o, KGB_STAGE_INSTALL, ret);
}
