/* kernel build and kernel install. The O= directory is kept per (source, architecture,
 * profile) so that a changed fragment rebuilds incrementally; finished outputs are copied
 * into a stage directory keyed by everything that can change them, written under a
 * temporary name and renamed when complete. */
#define _GNU_SOURCE
#include "kernel-build.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../shared/sbuf.h"
#include "../shared/util.h"
#include "exec.h"
#include "kata-names.h"
#include "kernel-seed.h"
#include "stage.h"

#define KGB_BUILD_STAGE_VERSION "kernel-build 2"
/* A minimal Kata-like x86_64 guest compiles about this many objects (CC and AS lines). */
#define KGB_OBJECTS_ESTIMATE 1500

struct kgb_build_result *kgb_build_result_free(struct kgb_build_result *r) {
  if (!r)
    return NULL;
  free(r->stage_dir);
  free(r->vmlinuz);
  free(r->vmlinux);
  free(r->config_file);
  free(r->system_map);
  free(r->modules_dir);
  free(r->objdir);
  free(r->release);
  free(r->log_path);
  free(r->why);
  free(r);
  return NULL;
}

long long kgb_source_date_epoch(const struct kgb_profile *p, const char *srcdir) {
  const char *env = getenv("SOURCE_DATE_EPOCH");
  if (env && *env)
    return strtoll(env, NULL, 10);
  if (p->kernel.has_source_date_epoch)
    return p->kernel.source_date_epoch;
  _cleanup_free_ char *mk = strjoin_path(srcdir, "Makefile");
  struct stat st;
  return mk && stat(mk, &st) == 0 ? (long long)st.st_mtime : 0;
}

/* "config changed: CONFIG_X y -> n, CONFIG_Y ..." from the old and new .config */
struct change_text {
  struct sbuf sb;
  size_t n;
};

static void add_change(void *ud, const char *symbol, const char *ov, bool os, const char *nv,
                       bool ns) {
  struct change_text *c = ud;
  if (c->n++ >= 5)
    return;
  _cleanup_free_ char *o = kgb_fentry_display(ov, os), *n = kgb_fentry_display(nv, ns);
  sbuf_addf(&c->sb, "%s CONFIG_%s %s -> %s", c->n > 1 ? "," : "", symbol, o, n);
}

static char *describe_config_change(struct kgb_ctx *ctx, const char *old_path,
                                    const char *new_path) {
  struct change_text c = {SBUF_INIT, 0};
  sbuf_adds(&c.sb, "config changed:");
  if (kgb_config_diff(ctx, old_path, new_path, add_change, &c) < 0) {
    kgb_error_clear(ctx);
    sbuf_release(&c.sb);
    return strdup("config changed");
  }
  if (c.n > 5)
    sbuf_addf(&c.sb, " and %zu more", c.n - 5);
  return sbuf_steal(&c.sb);
}

struct make_progress {
  struct kgb_ctx *ctx;
  unsigned long objects;
  unsigned long expected;
};

static void on_make_line(void *ud, const char *line) {
  struct make_progress *mp = ud;
  /* kbuild's quiet output: "  CC      init/main.o", "  CC [M]  drivers/x.o", "  AS ..." */
  if (startswith(line, "  CC ") || startswith(line, "  AS ")) {
    mp->objects++;
    kgb_progress(mp->ctx, "compiling the kernel", mp->objects, MAX(mp->expected, mp->objects + 1));
  }
}

/* The make invocation every step of one build shares: the same variables and environment,
 * or kbuild would see a changed command line and rebuild everything. */
struct make_env {
  char *o_arg, *a_arg, *j_arg, *stamp, *epoch, *ccdir, *base, *kcflags;
  bool ccache;
  const char *srcdir;
  const char *log_path;
};

static void make_env_release(struct make_env *m) {
  free(m->o_arg);
  free(m->a_arg);
  free(m->j_arg);
  free(m->stamp);
  free(m->epoch);
  free(m->ccdir);
  free(m->base);
  free(m->kcflags);
}

/* The path of `to` relative to the directory from, both made canonical first. */
static char *relative_to(const char *from, const char *to) {
  _cleanup_free_ char *f = realpath(from, NULL), *t = realpath(to, NULL);
  if (!f || !t)
    return NULL;
  size_t common = 0;
  for (size_t i = 0;; i++) {
    if ((f[i] == '/' || !f[i]) && (t[i] == '/' || !t[i]))
      common = i;
    if (!f[i] || !t[i] || f[i] != t[i])
      break;
  }
  struct sbuf sb = SBUF_INIT;
  for (const char *c = f + common; *c; c++)
    if (*c == '/')
      sbuf_adds(&sb, "../");
  sbuf_adds(&sb, t[common] == '/' ? t + common + 1 : t + common);
  return sbuf_steal(&sb);
}

static int make_env_init(struct kgb_ctx *ctx, struct make_env *m, const struct kgb_profile *p,
                         const struct kgb_build_opts *o, const struct kgb_build_result *res) {
  char stamp[64];
  time_t t = (time_t)res->epoch;
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(stamp, sizeof(stamp), "%a %b %e %H:%M:%S UTC %Y", &tm);
  const char *ccdir = o->ccache_dir ? o->ccache_dir : getenv("KGB_CCACHE_DIR");
  _cleanup_free_ char *ccache = o->no_ccache ? NULL : find_program("ccache");
  /* ccache makes the paths below CCACHE_BASEDIR relative to the O= directory, and kbuild's
   * -fmacro-prefix-map only strips the absolute source path: without a second map for the
   * relative one, __FILE__ in WARN and BUG would hold "../../../sources/<key>/..." and the
   * kernel would differ from one built without ccache. */
  _cleanup_free_ char *rel = ccache ? relative_to(res->objdir, res->config->source->dir) : NULL;
  if (ccache && !rel)
    return kgb_error(ctx, -errno ? -errno : -ENOMEM, "cannot relate '%s' to '%s': %m", res->objdir,
                     res->config->source->dir);
  *m = (struct make_env){
      .kcflags = rel ? kgb_strdup_printf("KCFLAGS=-fmacro-prefix-map=%s/=", rel) : NULL,
      .o_arg = kgb_strdup_printf("O=%s", res->objdir),
      .a_arg = kgb_strdup_printf("ARCH=%s", p->kernel.arch),
      .j_arg = kgb_strdup_printf("-j%u", ctx->jobs ? ctx->jobs : 1),
      .stamp = kgb_strdup_printf("KBUILD_BUILD_TIMESTAMP=%s", stamp),
      .epoch = kgb_strdup_printf("SOURCE_DATE_EPOCH=%lld", res->epoch),
      .ccdir = ccdir ? kgb_strdup_printf("CCACHE_DIR=%s", ccdir) : NULL,
      /* relative paths below the work directory make ccache hits independent of where it is */
      .base = kgb_strdup_printf("CCACHE_BASEDIR=%s", ctx->workdir),
      .ccache = ccache != NULL,
      .srcdir = res->config->source->dir,
      .log_path = res->log_path,
  };
  if (!m->o_arg || !m->a_arg || !m->j_arg || !m->stamp || !m->epoch || !m->base ||
      (ccdir && !m->ccdir) || (rel && !m->kcflags)) {
    make_env_release(m);
    return -ENOMEM;
  }
  return 0;
}

static int run_make(struct kgb_ctx *ctx, const struct make_env *m, char *const *targets,
                    char *const *extra_env, struct make_progress *mp, const char *what) {
  char *argv[32] = {"make", "-C", (char *)m->srcdir, m->o_arg, m->a_arg, m->j_arg};
  size_t n = 6;
  if (m->ccache) {
    argv[n++] = "CC=ccache gcc";
    argv[n++] = m->kcflags;
  }
  for (size_t i = 0; targets[i] && n < ELEMENTSOF(argv) - 1; i++)
    argv[n++] = targets[i];
  char *env[16] = {m->stamp,
                   m->epoch,
                   "KBUILD_BUILD_USER=kata",
                   "KBUILD_BUILD_HOST=kata-gpu-builder",
                   "KBUILD_BUILD_VERSION=1",
                   "LC_ALL=C",
                   m->base};
  size_t ne = 7;
  if (m->ccdir)
    env[ne++] = m->ccdir;
  for (size_t i = 0; extra_env && extra_env[i] && ne < ELEMENTSOF(env) - 1; i++)
    env[ne++] = extra_env[i];
  struct kgb_exec_opts eo = {
      .env = env, .log_path = m->log_path, .line_fn = mp ? on_make_line : NULL, .userdata = mp};
  int r = kgb_exec(ctx, argv, &eo);
  if (r < 0)
    return r;
  if (r != 0) {
    _cleanup_free_ char *tail = file_tail(m->log_path, 30);
    return kgb_error(ctx, -EIO, "%s failed (make exit %d):\n%s\nfull log: %s", what, r,
                     tail ? tail : "", m->log_path);
  }
  return 0;
}

static int copy_into(struct kgb_ctx *ctx, const char *objdir, const char *rel, const char *dir,
                     const char *name) {
  _cleanup_free_ char *src = strjoin_path(objdir, rel), *dst = strjoin_path(dir, name);
  if (!src || !dst)
    return -ENOMEM;
  int r = copy_file_atomic(src, dst, 0644);
  if (r < 0)
    return kgb_error(ctx, r, "cannot copy '%s' to '%s': %s", src, dst, strerror(-r));
  return 0;
}

static int write_text(struct kgb_ctx *ctx, const char *dir, const char *name, const char *text) {
  _cleanup_free_ char *p = strjoin_path(dir, name);
  if (!p)
    return -ENOMEM;
  int r = write_file_atomic(p, text, strlen(text), 0644);
  return r < 0 ? kgb_error(ctx, r, "cannot write '%s': %s", p, strerror(-r)) : 0;
}

/* Removes the build/source links modules_install points at the O= directory: the rootfs
 * gets its headers from the header package instead. */
static void drop_module_links(const char *modroot, const char *release) {
  static const char *const links[] = {"build", "source"};
  for (size_t i = 0; i < ELEMENTSOF(links); i++) {
    _cleanup_free_ char *l = kgb_strdup_printf("%s/lib/modules/%s/%s", modroot, release, links[i]);
    if (l)
      unlink(l);
  }
}

/* A profile's first build starts from a copy of a finished sibling's O= directory (same
 * source and architecture) when kbuild's records say that few of its objects use a config
 * symbol the two profiles set differently (kernel-seed.h); otherwise from scratch, saying
 * why. A copy, never shared links: the sibling stays intact. */
static int seed_objdir(struct kgb_ctx *ctx, struct kgb_build_result *res, const char *parent,
                       const char *self) {
  _cleanup_(kgb_seed_plan_release) struct kgb_seed_plan sp = {0};
  int r = kgb_seed_plan(ctx, parent, self, res->config->config_path, &sp);
  if (r < 0) /* sp stays empty: a build from scratch */
    kgb_warn(ctx, "cannot compare with the other build directories in '%s': %s", parent,
             strerror(-r));
  _cleanup_free_ char *used = NULL;
  if (sp.top_symbol)
    used = kgb_strdup_printf(", CONFIG_%s by %zu", sp.top_symbol, sp.top_objects);
  _cleanup_free_ char *why = NULL;
  if (sp.sibling)
    why = kgb_strdup_printf("%zu of %zu objects of %s's tree use one of the %zu config symbols "
                            "set differently%s",
                            sp.affected, sp.objects, sp.name, sp.n_changed, used ? used : "");
  r = 0;
  if (sp.seed) {
    _cleanup_free_ char *tmp = kgb_strdup_printf("%s.tmp-seed", res->objdir);
    if (!tmp || !why)
      return -ENOMEM;
    rm_rf(tmp);
    char *argv[] = {"cp", "-a", "--reflink=auto", sp.sibling, tmp, NULL};
    kgb_progress(ctx, "copying the build directory", 0, 0);
    r = kgb_exec(ctx, argv, NULL);
    size_t moved = 0;
    if (r == 0 && (r = kgb_seed_relocate(tmp, sp.sibling, res->objdir, &moved)) >= 0)
      kgb_info(ctx, "%zu records of the kernel's tools point at the copy now", moved);
    if (r == 0 && rename(tmp, res->objdir) < 0)
      r = -errno;
    if (r == 0) {
      static const char *const markers[] = {".kgb-inputs", ".kgb-config"};
      for (size_t i = 0; i < ELEMENTSOF(markers); i++) {
        _cleanup_free_ char *m = strjoin_path(res->objdir, markers[i]);
        if (m)
          unlink(m);
      }
      res->expect = sp.affected;
      res->why =
          kgb_strdup_printf("first build of this profile, from a copy of %s's: %s", sp.name, why);
    } else {
      rm_rf(tmp);
      if (r != -ECANCELED)
        kgb_warn(ctx, "could not copy '%s' (%s); building from scratch", sp.sibling,
                 r < 0 ? strerror(-r) : "cp failed");
    }
  }
  if (r == -ECANCELED || res->why)
    return r == -ECANCELED ? r : 0;
  res->from_scratch = true;
  if (sp.sibling && why)
    res->why = kgb_strdup_printf("first build (not from a copy of %s's: %s)", sp.name, why);
  else
    res->why = strdup("first build");
  if (!res->why)
    return -ENOMEM;
  return (r = mkdir_p(res->objdir, 0755)) < 0
             ? kgb_error(ctx, r, "cannot create '%s': %s", res->objdir, strerror(-r))
             : 0;
}

static int prepare_objdir(struct kgb_ctx *ctx, struct kgb_build_result *res, const char *parent,
                          const char *name, const char *inputs) {
  /* .kgb-inputs and .kgb-config describe the last finished build in this directory;
   * .kgb-building exists while a build runs, so an interrupted one is recognised */
  _cleanup_free_ char *old_inputs_path = strjoin_path(res->objdir, ".kgb-inputs");
  _cleanup_free_ char *old_config = strjoin_path(res->objdir, ".kgb-config");
  _cleanup_free_ char *building = strjoin_path(res->objdir, ".kgb-building");
  if (!old_inputs_path || !old_config || !building)
    return -ENOMEM;
  _cleanup_free_ char *old_inputs = NULL;
  if (is_dir(res->objdir)) {
    const char *lead = is_file(building) ? "continuing an interrupted build; " : "";
    _cleanup_free_ char *what = NULL;
    if (ctx->force)
      what = strdup("rebuild forced (--force)");
    else if (read_full_file(old_inputs_path, &old_inputs, NULL) < 0)
      what = strdup("no finished build here yet");
    else if (STREQ(old_inputs, inputs))
      what = strdup("outputs missing from the stage cache");
    else if (is_file(old_config))
      what = describe_config_change(ctx, old_config, res->config->config_path);
    else
      what = strdup("inputs changed");
    res->why = what ? kgb_strdup_printf("%s%s", lead, what) : NULL;
    return res->why && write_file_atomic(building, "", 0, 0644) >= 0 ? 0 : -ENOMEM;
  }
  int r = mkdir_p(parent, 0755);
  if (r < 0)
    return kgb_error(ctx, r, "cannot create '%s': %s", parent, strerror(-r));
  if ((r = seed_objdir(ctx, res, parent, name)) < 0)
    return r;
  return write_file_atomic(building, "", 0, 0644) >= 0 ? 0 : -ENOMEM;
}

/* The paths of the outputs in a finished stage directory. */
static int publish(struct kgb_build_result *res) {
  res->vmlinuz = strjoin_path(res->stage_dir, "vmlinuz");
  res->vmlinux = strjoin_path(res->stage_dir, "vmlinux");
  res->config_file = strjoin_path(res->stage_dir, "config");
  res->system_map = strjoin_path(res->stage_dir, "System.map");
  _cleanup_free_ char *m =
      kgb_strdup_printf("%s/modules/lib/modules/%s", res->stage_dir, res->release);
  if (!res->vmlinuz || !res->vmlinux || !res->config_file || !res->system_map || !m)
    return -ENOMEM;
  if (is_dir(m))
    res->modules_dir = TAKE_PTR(m);
  return 0;
}

static bool config_has(const char *config_path, const char *line) {
  _cleanup_free_ char *text = NULL;
  if (read_full_file(config_path, &text, NULL) < 0)
    return false;
  size_t n = strlen(line);
  for (const char *p = text; (p = strstr(p, line)); p += n)
    if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
      return true;
  return false;
}

static int build_and_stage(struct kgb_ctx *ctx, const struct kgb_profile *p,
                           struct kgb_build_result *res, const struct make_env *menv,
                           const char *parent, const char *inputs, struct kgb_stage *st);

/* What the kernel stage's key is made of. */
static char *build_inputs(const char *config_key, long long epoch) {
  return kgb_strdup_printf("%s\nconfig %s\nepoch %lld\n", KGB_BUILD_STAGE_VERSION, config_key,
                           epoch);
}

int kgb_kernel_build_plan(struct kgb_ctx *ctx, const struct kgb_profile *p, const char *config_key,
                          const char *source_dir, char **ret_key, bool *ret_cached) {
  _cleanup_free_ char *inputs = build_inputs(config_key, kgb_source_date_epoch(p, source_dir));
  char key[65];
  if (!inputs || kgb_stage_key(inputs, key) < 0)
    return -ENOMEM;
  return kgb_stage_planned(ctx, "kernel", key, ret_key, ret_cached);
}

int kgb_kernel_build(struct kgb_ctx *ctx, const struct kgb_profile *p,
                     const struct kgb_build_opts *o, const struct kgb_config_result *cfg,
                     struct kgb_build_result **ret) {
  if (cfg->verify->n_unexplained)
    return kgb_error(ctx, -EBADE, "the config lost %zu requested value%s: not building",
                     cfg->verify->n_unexplained, cfg->verify->n_unexplained == 1 ? "" : "s");
  _cleanup_(kgb_build_result_freep) struct kgb_build_result *res = calloc(1, sizeof(*res));
  if (!res)
    return -ENOMEM;
  res->config = cfg;
  long long epoch = res->epoch = kgb_source_date_epoch(p, cfg->source->dir);
  res->has_modules = config_has(cfg->config_path, "CONFIG_MODULES=y");
  _cleanup_free_ char *inputs = build_inputs(cfg->key, epoch);
  if (!inputs)
    return -ENOMEM;
  double t0 = monotonic_seconds();
  _cleanup_(kgb_stage_freep) struct kgb_stage *st = NULL;
  int r = kgb_stage_open(ctx, "kernel", inputs, "kernel.release", &st);
  if (r < 0)
    return r;
  res->stage_dir = strdup(st->dir);
  _cleanup_free_ char *parent =
      kgb_strdup_printf("%s/obj/%s-%s", ctx->workdir, cfg->source->key, p->kernel.arch);
  res->objdir = parent ? kgb_strdup_printf("%s/%s", parent, p->name) : NULL;
  res->log_path = kgb_strdup_printf("%s/logs/kernel-%s-%.16s.log", ctx->workdir, p->name, st->key);
  if (!res->stage_dir || !res->objdir || !res->log_path)
    return -ENOMEM;
  if (st->cached) {
    _cleanup_free_ char *rel = strjoin_path(res->stage_dir, "kernel.release");
    res->release = rel ? read_first_line(rel) : NULL;
    if (!res->release)
      return kgb_error(ctx, -EIO, "'%s' is incomplete: remove it and build again", res->stage_dir);
    res->cached = true;
    if ((r = publish(res)) < 0)
      return r;
    res->seconds = monotonic_seconds() - t0;
    *ret = TAKE_PTR(res);
    return 0;
  }
  r = prepare_objdir(ctx, res, parent, p->name, inputs);
  if (r < 0)
    return r;
  kgb_info(ctx, "building the %s kernel in '%s': %s", p->name, res->objdir, res->why);
  _cleanup_free_ char *logdir = kgb_strdup_printf("%s/logs", ctx->workdir);
  if (!logdir || (r = mkdir_p(logdir, 0755)) < 0)
    return logdir ? kgb_error(ctx, r, "cannot create '%s'", logdir) : -ENOMEM;
  unlink(res->log_path);
  /* .config changes only when the content does, so kbuild's timestamps stay meaningful */
  _cleanup_free_ char *objcfg = strjoin_path(res->objdir, ".config"), *cur = NULL, *want = NULL;
  if (!objcfg)
    return -ENOMEM;
  if ((r = read_full_file(cfg->config_path, &want, NULL)) < 0)
    return kgb_error(ctx, r, "cannot read '%s'", cfg->config_path);
  if (read_full_file(objcfg, &cur, NULL) < 0 || !STREQ(cur, want))
    if ((r = write_file_atomic(objcfg, want, strlen(want), 0644)) < 0)
      return kgb_error(ctx, r, "cannot write '%s': %s", objcfg, strerror(-r));

  struct make_env menv;
  if ((r = make_env_init(ctx, &menv, p, o, res)) < 0)
    return r;
  r = build_and_stage(ctx, p, res, &menv, parent, inputs, st);
  make_env_release(&menv);
  if (r < 0 || (r = publish(res)) < 0)
    return r;
  res->seconds = monotonic_seconds() - t0;
  *ret = TAKE_PTR(res);
  return 0;
}

static int build_and_stage(struct kgb_ctx *ctx, const struct kgb_profile *p,
                           struct kgb_build_result *res, const struct make_env *menv,
                           const char *parent, const char *inputs, struct kgb_stage *st) {
  int r;
  char *targets[4] = {NULL};
  size_t nt = 0;
  targets[nt++] = "bzImage";
  if (res->has_modules)
    targets[nt++] = "modules";
  _cleanup_free_ char *countf = kgb_strdup_printf("%s/.kgb-objcount", parent);
  _cleanup_free_ char *prev = countf ? read_first_line(countf) : NULL;
  struct make_progress mp = {ctx, 0,
                             res->expect ? res->expect
                             : prev      ? strtoul(prev, NULL, 10)
                                         : KGB_OBJECTS_ESTIMATE};
  double t = monotonic_seconds();
  r = run_make(ctx, menv, targets, NULL, &mp, "the kernel build");
  kgb_progress(ctx, "compiling the kernel", 1, 1);
  if (r < 0)
    return r;
  res->objects = mp.objects;
  res->make_seconds = monotonic_seconds() - t;
  kgb_info(ctx, "make %s: %lu objects in %.1f s", res->has_modules ? "bzImage modules" : "bzImage",
           mp.objects, res->make_seconds);
  t = monotonic_seconds();

  const char *tmp = st->tmp;
  _cleanup_free_ char *relpath = strjoin_path(res->objdir, "include/config/kernel.release");
  res->release = relpath ? read_first_line(relpath) : NULL;
  if (!res->release)
    r = kgb_error(ctx, -EIO, "the build wrote no '%s'", relpath ? relpath : "kernel.release");
  _cleanup_free_ char *bz = kgb_strdup_printf("arch/%s/boot/bzImage", kgb_srcarch(p->kernel.arch));
  if (r >= 0 && !bz)
    r = -ENOMEM;
  if (r >= 0)
    r = copy_into(ctx, res->objdir, bz, tmp, "vmlinuz");
  if (r >= 0)
    r = copy_into(ctx, res->objdir, "vmlinux", tmp, "vmlinux");
  if (r >= 0)
    r = copy_into(ctx, res->objdir, "System.map", tmp, "System.map");
  if (r >= 0)
    r = copy_into(ctx, res->objdir, ".config", tmp, "config");
  if (r >= 0)
    r = write_text(ctx, tmp, "kernel.release", res->release);
  if (r >= 0)
    r = write_text(ctx, tmp, "inputs", inputs);
  if (r >= 0 && res->has_modules) {
    _cleanup_free_ char *modroot = strjoin_path(tmp, "modules");
    _cleanup_free_ char *arg = modroot ? kgb_strdup_printf("INSTALL_MOD_PATH=%s", modroot) : NULL;
    char *mi[] = {arg, "INSTALL_MOD_STRIP=1", "modules_install", NULL};
    if (!arg)
      r = -ENOMEM;
    else
      r = run_make(ctx, menv, mi, NULL, NULL, "installing the modules");
    if (r >= 0)
      drop_module_links(modroot, res->release);
  }
  if (r >= 0)
    kgb_info(ctx, "kernel files and modules staged in %.1f s", monotonic_seconds() - t);
  if (r >= 0) {
    struct sbuf sb = SBUF_INIT;
    kgb_manifest_begin(&sb, "kernel", st->key);
    kgb_manifest_string(&sb, "profile", p->name);
    kgb_manifest_string(&sb, "release", res->release);
    sbuf_addf(
        &sb, ",\n  \"config_key\": \"%s\",\n  \"source_date_epoch\": %lld,\n  \"modules\": %s\n}\n",
        res->config->key, res->epoch, res->has_modules ? "true" : "false");
    r = kgb_stage_commit(st, &sb);
    sbuf_release(&sb);
  }
  if (r < 0)
    return r;
  /* the O= directory now matches these inputs */
  _cleanup_free_ char *inputs_path = strjoin_path(res->objdir, ".kgb-inputs");
  _cleanup_free_ char *config_copy = strjoin_path(res->objdir, ".kgb-config");
  _cleanup_free_ char *building = strjoin_path(res->objdir, ".kgb-building");
  if (inputs_path && config_copy && building) {
    write_file_atomic(inputs_path, inputs, strlen(inputs), 0644);
    copy_file_atomic(res->config->config_path, config_copy, 0644);
    unlink(building);
  }
  if (countf && res->from_scratch) {
    _cleanup_free_ char *c = kgb_strdup_printf("%lu\n", mp.objects);
    if (c)
      write_file_atomic(countf, c, strlen(c), 0644);
  }
  return 0;
}

struct kgb_installed *kgb_installed_free(struct kgb_installed *i) {
  if (!i)
    return NULL;
  free(i->dir);
  strv_free(i->files);
  free(i->vmlinuz_link);
  free(i->vmlinux_link);
  free(i);
  return NULL;
}

/* Points link at target through link.tmp + rename, so the link is never missing. */
static int replace_symlink(const char *target, const char *link) {
  _cleanup_free_ char *tmp = kgb_strdup_printf("%s.tmp.%d", link, (int)getpid());
  if (!tmp)
    return -ENOMEM;
  unlink(tmp);
  if (symlink(target, tmp) < 0)
    return -errno;
  if (rename(tmp, link) < 0) {
    int r = -errno;
    unlink(tmp);
    return r;
  }
  return 0;
}

/* The runtime class that boots a .container link of Kata's own, for the message. */
static const char *runtime_class_of(const char *suffix) {
  if (STREQ(suffix, "nvidia-gpu"))
    return "Kata's NVIDIA runtime classes (kata-qemu-nvidia-gpu and its -snp/-tdx variants)";
  return "the Kata runtime class whose configuration names it";
}

static int read_record(struct kgb_ctx *ctx, const char *dir, char ***ret) {
  _cleanup_free_ char *path = strjoin_path(dir, KGB_INSTALLED_RECORD), *text = NULL;
  if (!path)
    return -ENOMEM;
  int r = read_full_file(path, &text, NULL);
  if (r == -ENOENT)
    return 0;
  if (r < 0)
    return kgb_error(ctx, r, "cannot read '%s': %s", path,
                     file_error_reason(path, r, READ_TEXT_MAX));
  char *save = NULL;
  for (char *l = strtok_r(text, "\n", &save); l && r >= 0; l = strtok_r(NULL, "\n", &save))
    if (!strv_contains(*ret, l))
      r = strv_extend(ret, l);
  return r;
}

static int write_record(struct kgb_ctx *ctx, const char *dir, char **names) {
  _cleanup_free_ char *path = strjoin_path(dir, KGB_INSTALLED_RECORD);
  if (!path)
    return -ENOMEM;
  _cleanup_free_ char *parent = strdup(path);
  if (!parent)
    return -ENOMEM;
  *strrchr(parent, '/') = '\0';
  int rm = mkdir_p(parent, 0755);
  if (rm < 0)
    return kgb_error(ctx, rm, "cannot create '%s': %s", parent, strerror(-rm));
  strv_sort(names);
  struct sbuf sb = SBUF_INIT;
  sbuf_adds(&sb, "# kernels and links kata-gpu-builder installed in ../kata-containers\n");
  for (size_t i = 0; names && names[i]; i++)
    if (names[i][0] != '#')
      sbuf_addf(&sb, "%s\n", names[i]);
  int r = sb.err ? -ENOMEM : write_file_atomic(path, sbuf_str(&sb), sb.len, 0644);
  sbuf_release(&sb);
  return r < 0 ? kgb_error(ctx, r, "cannot write '%s': %s", path, strerror(-r)) : 0;
}

/* A name in dir that exists, is not ours and would change: refused without --replace. */
static int check_ours(struct kgb_ctx *ctx, const struct kgb_install_opts *o, char *const *ours,
                      const char *dir, const char *name, const char *src, const char *link_target,
                      const char *suffix) {
  _cleanup_free_ char *path = strjoin_path(dir, name);
  if (!path)
    return -ENOMEM;
  struct stat st;
  if (o->replace || strv_contains(ours, name) || lstat(path, &st) < 0)
    return 0;
  if (link_target && S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    if (n >= 0 && (size_t)n == strlen(link_target) && memcmp(target, link_target, (size_t)n) == 0)
      return 0; /* already what it would be */
  } else if (src && S_ISREG(st.st_mode) && files_equal(src, path)) {
    return 0;
  }
  return kgb_error(ctx, -EEXIST,
                   "'%s' was not installed by kata-gpu-builder%s: replacing it changes what %s "
                   "boots; give --replace to replace it, or --prefix/--destdir to install "
                   "elsewhere",
                   path, link_target ? " (a .container link Kata's packages ship)" : "",
                   runtime_class_of(suffix));
}

int kgb_kernel_install(struct kgb_ctx *ctx, const struct kgb_profile *p,
                       const struct kgb_build_result *b, const struct kgb_install_opts *o,
                       struct kgb_installed **ret) {
  _cleanup_(kgb_installed_freep) struct kgb_installed *in = calloc(1, sizeof(*in));
  _cleanup_free_ char *suffix = kgb_kata_suffix(p);
  _cleanup_free_ char *kver = suffix ? kgb_kata_kver(b->release, suffix) : NULL;
  if (!in || !suffix || !kver)
    return -ENOMEM;
  in->dir = kgb_kata_share_dir(o->destdir, o->prefix);
  if (!in->dir)
    return -ENOMEM;
  int r = mkdir_p(in->dir, 0755);
  if (r < 0)
    return kgb_error(ctx, r, "cannot create '%s': %s", in->dir, strerror(-r));
  _cleanup_strv_free_ char **ours = NULL;
  if ((r = read_record(ctx, in->dir, &ours)) < 0)
    return r;
  /* everything is checked before anything is written */
  for (size_t i = 0; i < 2; i++) {
    const char *kind = i == 0 ? "vmlinuz" : "vmlinux";
    _cleanup_free_ char *target = kgb_kata_kernel_file(kind, kver, p->kernel.cfgver, suffix);
    _cleanup_free_ char *name = kgb_kata_kernel_link(kind, suffix);
    _cleanup_free_ char *src = strjoin_path(b->stage_dir, kind);
    if (!target || !name || !src)
      return -ENOMEM;
    if ((r = check_ours(ctx, o, ours, in->dir, name, NULL, target, suffix)) < 0 ||
        (r = check_ours(ctx, o, ours, in->dir, target, src, NULL, suffix)) < 0)
      return r;
  }
  static const struct {
    const char *stage_name, *kata_name;
  } files[] = {{"vmlinuz", "vmlinuz"},
               {"vmlinux", "vmlinux"},
               {"config", "config"},
               {"System.map", "System.map"}};
  for (size_t i = 0; i < ELEMENTSOF(files); i++) {
    _cleanup_free_ char *name =
        kgb_kata_kernel_file(files[i].kata_name, kver, p->kernel.cfgver, suffix);
    _cleanup_free_ char *src = strjoin_path(b->stage_dir, files[i].stage_name);
    _cleanup_free_ char *dst = name ? strjoin_path(in->dir, name) : NULL;
    if (!name || !src || !dst)
      return -ENOMEM;
    if (STREQ(files[i].kata_name, "config") && is_file(dst) && !files_equal(src, dst)) {
      in->cfgver_stale = true;
      kgb_warn(ctx,
               "'%s' had a different config with the same cfgver %d: bump kernel.cfgver in '%s' "
               "so that Kata's file names change with the config",
               dst, p->kernel.cfgver, p->path);
    }
    r = copy_file_if_changed(src, dst, 0644);
    if (r < 0)
      return kgb_error(ctx, r, "cannot install '%s': %s", dst, strerror(-r));
    if ((r = strv_push(&in->files, TAKE_PTR(name))) < 0)
      return r;
  }
  for (size_t i = 0; i < 2; i++) {
    const char *kind = i == 0 ? "vmlinuz" : "vmlinux";
    _cleanup_free_ char *target = kgb_kata_kernel_file(kind, kver, p->kernel.cfgver, suffix);
    _cleanup_free_ char *name = kgb_kata_kernel_link(kind, suffix);
    _cleanup_free_ char *link = name ? strjoin_path(in->dir, name) : NULL;
    if (!target || !link)
      return -ENOMEM;
    r = replace_symlink(target, link);
    if (r < 0)
      return kgb_error(ctx, r, "cannot create the link '%s': %s", link, strerror(-r));
    if (!strv_contains(ours, name) && (r = strv_extend(&ours, name)) < 0)
      return r;
    if (i == 0)
      in->vmlinuz_link = TAKE_PTR(link);
    else
      in->vmlinux_link = TAKE_PTR(link);
  }
  for (size_t i = 0; in->files[i]; i++)
    if (!strv_contains(ours, in->files[i]) && (r = strv_extend(&ours, in->files[i])) < 0)
      return r;
  if ((r = write_record(ctx, in->dir, ours)) < 0)
    return r;
  *ret = TAKE_PTR(in);
  return 0;
}

/* The O= directory may have been rebuilt for another config since b was staged (a changed
 * fragment, an --fragment run): packaging must see b's tree, so bring it back first. The
 * rebuild is incremental and, the build being reproducible, gives b's files again. */
static int sync_objdir(struct kgb_ctx *ctx, const struct make_env *menv,
                       const struct kgb_build_result *b) {
  _cleanup_free_ char *have = strjoin_path(b->objdir, ".kgb-config");
  _cleanup_free_ char *want = strjoin_path(b->stage_dir, "config");
  _cleanup_free_ char *inputs = strjoin_path(b->stage_dir, "inputs");
  _cleanup_free_ char *dotconfig = strjoin_path(b->objdir, ".config");
  _cleanup_free_ char *kgb_inputs = strjoin_path(b->objdir, ".kgb-inputs");
  if (!have || !want || !inputs || !dotconfig || !kgb_inputs)
    return -ENOMEM;
  if (files_equal(have, want))
    return 0;
  kgb_info(ctx, "'%s' holds another config now: rebuilding it for %s first", b->objdir, b->release);
  int r = copy_file_atomic(want, dotconfig, 0644);
  if (r < 0)
    return kgb_error(ctx, r, "cannot write '%s': %s", dotconfig, strerror(-r));
  unlink(have);
  char *targets[] = {"bzImage", b->has_modules ? "modules" : NULL, NULL};
  r = run_make(ctx, menv, targets, NULL, NULL, "rebuilding the kernel tree");
  if (r < 0)
    return r;
  if (is_file(inputs))
    copy_file_atomic(inputs, kgb_inputs, 0644);
  return copy_file_atomic(want, have, 0644);
}

int kgb_build_sync(struct kgb_ctx *ctx, const struct kgb_profile *p, const struct kgb_build_opts *o,
                   const struct kgb_build_result *b) {
  struct make_env menv;
  int r = make_env_init(ctx, &menv, p, o, b);
  if (r < 0)
    return r;
  r = sync_objdir(ctx, &menv, b);
  make_env_release(&menv);
  return r;
}

int kgb_build_make(struct kgb_ctx *ctx, const struct kgb_profile *p, const struct kgb_build_opts *o,
                   const struct kgb_build_result *b, char *const *targets, char *const *extra_env,
                   const char *what) {
  struct make_env menv;
  int r = make_env_init(ctx, &menv, p, o, b);
  if (r < 0)
    return r;
  r = sync_objdir(ctx, &menv, b);
  if (r >= 0)
    r = run_make(ctx, &menv, targets, extra_env, NULL, what);
  make_env_release(&menv);
  return r;
}
