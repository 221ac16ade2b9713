/* kernel config: merge, resolve with the kernel's Kconfig, verify. The resolved .config is
 * a stage output keyed by everything that can change it; the verification always runs, as
 * it is cheap and its report is the point of the command. */
#define _GNU_SOURCE
#include "kernel-config.h"

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
#include "kconfig.h"
#include "stage.h"

#define KGB_KCONFIG_STAGE_VERSION "kconfig-stage 1"

struct kgb_config_result *kgb_config_result_free(struct kgb_config_result *r) {
  if (!r)
    return NULL;
  kgb_source_free(r->source);
  kgb_merge_free(r->merge);
  kgb_verify_free(r->verify);
  kgb_allow_free(r->allow);
  free(r->stage_dir);
  free(r->config_path);
  free(r->log_path);
  free(r->key);
  free(r);
  return NULL;
}

const char *kgb_srcarch(const char *arch) {
  if (STREQ(arch, "x86_64") || STREQ(arch, "i386"))
    return "x86";
  if (STREQ(arch, "aarch64"))
    return "arm64";
  if (STREQ(arch, "ppc64le"))
    return "powerpc";
  return arch;
}

static enum kgb_layer layer_of(const char *name, const char *arch) {
  _cleanup_free_ char *archdir = kgb_strdup_printf("kconfig-fragments/%s/", arch);
  if (startswith(name, "kconfig-fragments/common/") || (archdir && startswith(name, archdir)))
    return KGB_LAYER_BASE;
  return KGB_LAYER_VENDOR;
}

static int load_merge(struct kgb_ctx *ctx, const struct kgb_profile *p,
                      const struct kgb_kernel_config_opts *o, struct kgb_merge **ret) {
  _cleanup_strv_free_ char **paths = NULL, **names = NULL, **allowed = NULL;
  int r = kgb_profile_fragments(ctx, p, &paths, &names);
  if (r < 0)
    return r;
  _cleanup_(kgb_merge_freep) struct kgb_merge *m = kgb_merge_new();
  if (!m)
    return -ENOMEM;
  for (size_t i = 0; paths && paths[i]; i++) {
    struct kgb_fragment *f;
    r = kgb_fragment_load(ctx, paths[i], names[i], false, &f);
    if (r < 0)
      return r;
    r = kgb_merge_add(m, f, layer_of(names[i], p->kernel.arch), p->kernel.arch);
    if (r < 0)
      return r;
  }
  for (size_t i = 0; o->fragments && o->fragments[i]; i++) {
    struct kgb_fragment *f;
    r = kgb_fragment_load(ctx, o->fragments[i], o->fragments[i], false, &f);
    if (r < 0)
      return r;
    r = kgb_merge_add(m, f, KGB_LAYER_USER, p->kernel.arch);
    if (r < 0)
      return r;
  }
  for (size_t i = 0; p->kernel.overrides && p->kernel.overrides[i]; i++)
    if ((r = strv_extend(&allowed, p->kernel.overrides[i] + strlen("CONFIG_"))) < 0)
      return r;
  r = kgb_merge_finish(m, allowed);
  if (r < 0)
    return r;
  if (m->n_conflicts) {
    struct sbuf sb = SBUF_INIT;
    for (size_t i = 0; i < m->n_overrides; i++) {
      const struct kgb_override *ov = &m->overrides[i];
      if (!ov->conflict)
        continue;
      _cleanup_free_ char *a = kgb_fentry_display(ov->from.entry->value, ov->from.entry->is_string);
      _cleanup_free_ char *b = kgb_fentry_display(ov->to.entry->value, ov->to.entry->is_string);
      sbuf_addf(&sb, "%s%s:%u: CONFIG_%s=%s conflicts with %s:%u (%s)", sb.len ? "\n" : "",
                ov->to.fragment->name, ov->to.entry->line, ov->symbol, b ? b : "?",
                ov->from.fragment->name, ov->from.entry->line, a ? a : "?");
    }
    sbuf_addf(&sb,
              "\ntwo vendor fragments of profile '%s' disagree: remove one value, or list "
              "the symbol in kernel.overrides of '%s' to let the later fragment win on purpose",
              p->name, p->path);
    r = kgb_error(ctx, -EINVAL, "%s", sbuf_str(&sb));
    sbuf_release(&sb);
    return r;
  }
  *ret = TAKE_PTR(m);
  return 0;
}

static int compiler_version(struct kgb_ctx *ctx, char **ret) {
  char *argv[] = {"gcc", "--version", NULL};
  int r = kgb_exec_first_line(ctx, argv, ret);
  if (r < 0) {
    kgb_error_clear(ctx);
    return kgb_error(ctx, r,
                     "gcc is needed to resolve a kernel config ('apt-get install gcc make "
                     "flex bison'): %s",
                     strerror(-r));
  }
  return 0;
}

static int run_kconfig(struct kgb_ctx *ctx, const struct kgb_source *src, const char *arch,
                       const char *merged, const char *tmpdir, const char *log) {
  _cleanup_free_ char *obj =
      kgb_strdup_printf("%s/obj/%s-%s/kconfig", ctx->workdir, src->key, arch);
  if (!obj)
    return -ENOMEM;
  int r = mkdir_p(obj, 0755);
  if (r < 0)
    return kgb_error(ctx, r, "cannot create '%s': %s", obj, strerror(-r));
  _cleanup_free_ char *allcfg = strjoin_path(tmpdir, "merged.config");
  _cleanup_free_ char *o_arg = kgb_strdup_printf("O=%s", obj);
  _cleanup_free_ char *a_arg = kgb_strdup_printf("ARCH=%s", arch);
  _cleanup_free_ char *k_arg = allcfg ? kgb_strdup_printf("KCONFIG_ALLCONFIG=%s", allcfg) : NULL;
  if (!allcfg || !o_arg || !a_arg || !k_arg)
    return -ENOMEM;
  r = write_file_atomic(allcfg, merged, strlen(merged), 0644);
  if (r < 0)
    return kgb_error(ctx, r, "cannot write '%s': %s", allcfg, strerror(-r));
  char *argv[] = {"make", "-C", src->dir, o_arg, a_arg, k_arg, "allnoconfig", NULL};
  struct kgb_exec_opts eo = {.log_path = log};
  kgb_progress(ctx, "resolving with the kernel's Kconfig", 0, 0);
  r = kgb_exec(ctx, argv, &eo);
  kgb_progress(ctx, "resolving with the kernel's Kconfig", 1, 1);
  if (r == -ENOENT) {
    kgb_error_clear(ctx); /* "cannot run 'make'": what to install says more */
    return kgb_error(ctx, r, "'make' is not installed: apt-get install make gcc flex bison bc");
  }
  if (r < 0)
    return r;
  if (r != 0) {
    _cleanup_free_ char *tail = file_tail(log, 30);
    return kgb_error(ctx, -EIO,
                     "the kernel's 'make allnoconfig' failed (exit %d):\n%s\nfull log: %s", r,
                     tail ? tail : "", log);
  }
  _cleanup_free_ char *dotconfig = strjoin_path(obj, ".config"), *text = NULL;
  _cleanup_free_ char *dest = strjoin_path(tmpdir, "config");
  if (!dotconfig || !dest)
    return -ENOMEM;
  size_t len;
  r = read_full_file(dotconfig, &text, &len);
  if (r < 0)
    return kgb_error(ctx, r, "'make allnoconfig' wrote no '%s': %s", dotconfig, strerror(-r));
  r = write_file_atomic(dest, text, len, 0644);
  if (r < 0)
    return kgb_error(ctx, r, "cannot write '%s': %s", dest, strerror(-r));
  return 0;
}

static void manifest_text(struct sbuf *sb, const char *key, const struct kgb_source *src,
                          const char *arch, const char *cc) {
  kgb_manifest_begin(sb, "config", key);
  kgb_manifest_string(sb, "source", src->dir);
  kgb_manifest_string(sb, "source_key", src->key);
  kgb_manifest_string(sb, "arch", arch);
  kgb_manifest_string(sb, "compiler", cc);
  sbuf_adds(sb, "\n}\n");
}

/* What the config stage's key is made of. */
static char *key_text(const char *source_key, const char *arch, const char *cc,
                      const char *merged) {
  return kgb_strdup_printf("%s\n%s\n%s\n%s\n%s", KGB_KCONFIG_STAGE_VERSION, source_key, arch, cc,
                           merged);
}

/* The config stage for a merged fragment text: cached under its key, or resolved by the
 * kernel's Kconfig. */
static int resolve(struct kgb_ctx *ctx, const struct kgb_source *src, const char *arch,
                   const char *cc, const char *merged, char **ret_key, char **ret_dir,
                   char **ret_config, char **ret_log, bool *ret_cached) {
  _cleanup_free_ char *text = key_text(src->key, arch, cc, merged);
  if (!text)
    return -ENOMEM;
  _cleanup_(kgb_stage_freep) struct kgb_stage *st = NULL;
  int r = kgb_stage_open(ctx, "config", text, "config", &st);
  if (r < 0)
    return r;
  *ret_key = strdup(st->key);
  *ret_dir = strdup(st->dir);
  *ret_config = strjoin_path(st->dir, "config");
  /* Logs live outside the stage directory so that a failed run keeps its log. */
  _cleanup_free_ char *logdir = kgb_strdup_printf("%s/logs", ctx->workdir);
  *ret_log = kgb_strdup_printf("%s/logs/config-%.16s.log", ctx->workdir, st->key);
  if (!*ret_key || !*ret_dir || !*ret_config || !logdir || !*ret_log)
    return -ENOMEM;
  *ret_cached = st->cached;
  if (st->cached)
    return 0;
  if ((r = mkdir_p(logdir, 0755)) < 0)
    return kgb_error(ctx, r, "cannot create '%s': %s", logdir, strerror(-r));
  unlink(*ret_log);
  if ((r = run_kconfig(ctx, src, arch, merged, st->tmp, *ret_log)) < 0)
    return r;
  struct sbuf m = SBUF_INIT;
  manifest_text(&m, st->key, src, arch, cc);
  r = kgb_stage_commit(st, &m);
  sbuf_release(&m);
  return r;
}

int kgb_kernel_config_plan(struct kgb_ctx *ctx, const struct kgb_profile *p,
                           const struct kgb_kernel_config_opts *o, char **ret_key, bool *ret_cached,
                           char **ret_source_dir) {
  _cleanup_free_ char *spec = NULL, *merged = NULL, *cc = NULL, *source_key = NULL;
  _cleanup_(kgb_merge_freep) struct kgb_merge *m = NULL;
  int r = o->source ? ((spec = strdup(o->source)) ? 0 : -ENOMEM)
                    : kgb_profile_source(ctx, p, o->mirror, &spec);
  if (r < 0 || (r = load_merge(ctx, p, o, &m)) < 0 || (r = kgb_merge_render(m, &merged)) < 0 ||
      (r = compiler_version(ctx, &cc)) < 0)
    return r;
  /* the source's key without extracting or downloading it */
  const char *sha = o->sha256 ? o->sha256 : p->kernel.sha256;
  if (strstr(spec, "://")) {
    if (!sha) {
      *ret_key = NULL;
      *ret_cached = false;
      return 0;
    }
    source_key = strdup(sha);
  } else if (is_dir(spec)) {
    _cleanup_(kgb_source_freep) struct kgb_source *src = NULL;
    if ((r = kgb_source_prepare(ctx, spec, NULL, &src)) < 0)
      return r;
    source_key = TAKE_PTR(src->key);
    if (ret_source_dir)
      *ret_source_dir = TAKE_PTR(src->dir);
  } else if ((r = kgb_sha256_file(ctx, spec, &source_key)) < 0)
    return r;
  if (ret_source_dir && !*ret_source_dir && source_key &&
      (r = kgb_source_extracted(ctx, source_key, ret_source_dir)) < 0 && r != -ENOENT)
    return r;
  char key[65];
  _cleanup_free_ char *text = source_key ? key_text(source_key, p->kernel.arch, cc, merged) : NULL;
  if (!text || kgb_stage_key(text, key) < 0)
    return -ENOMEM;
  return kgb_stage_planned(ctx, "config", key, ret_key, ret_cached);
}

int kgb_kernel_config(struct kgb_ctx *ctx, const struct kgb_profile *p,
                      const struct kgb_kernel_config_opts *o, struct kgb_config_result **ret) {
  _cleanup_(kgb_config_result_freep) struct kgb_config_result *res = calloc(1, sizeof(*res));
  if (!res)
    return -ENOMEM;
  _cleanup_free_ char *spec = NULL;
  int r = o->source ? ((spec = strdup(o->source)) ? 0 : -ENOMEM)
                    : kgb_profile_source(ctx, p, o->mirror, &spec);
  if (r < 0)
    return r;
  r = load_merge(ctx, p, o, &res->merge);
  if (r < 0)
    return r;
  r = kgb_source_prepare(ctx, spec, o->sha256 ? o->sha256 : p->kernel.sha256, &res->source);
  if (r < 0)
    return r;
  if (p->kernel.version && !startswith(res->source->version, p->kernel.version))
    kgb_warn(ctx, "profile '%s' expects kernel %s, the source is %s", p->name, p->kernel.version,
             res->source->version);
  _cleanup_free_ char *merged = NULL, *cc = NULL;
  if ((r = kgb_merge_render(res->merge, &merged)) < 0 || (r = compiler_version(ctx, &cc)) < 0)
    return r;
  double t0 = monotonic_seconds();
  if ((r = resolve(ctx, res->source, p->kernel.arch, cc, merged, &res->key, &res->stage_dir,
                   &res->config_path, &res->log_path, &res->cached)) < 0)
    return r;
  res->resolve_seconds = monotonic_seconds() - t0;
  t0 = monotonic_seconds();
  _cleanup_(kgb_fragment_freep) struct kgb_fragment *dot = NULL;
  r = kgb_fragment_load(ctx, res->config_path, res->config_path, true, &dot);
  if (r < 0)
    return r;
  struct kgb_kconfig_vars vars = {.srcarch = kgb_srcarch(p->kernel.arch),
                                  .arch = p->kernel.arch,
                                  .kernelversion = res->source->version};
  _cleanup_(kgb_kconfig_freep) struct kgb_kconfig *kc = NULL;
  r = kgb_kconfig_load(ctx, res->source->dir, &vars, &kc);
  if (r < 0)
    return r;
  _cleanup_free_ char *allow_path =
      kgb_strdup_printf("%s/kconfig-fragments/allow.conf", ctx->datadir);
  if (!allow_path)
    return -ENOMEM;
  r = kgb_allow_load(ctx, allow_path, "kconfig-fragments/allow.conf", &res->allow);
  if (r < 0)
    return r;
  r = kgb_verify_config(ctx, res->merge, dot, kc, res->allow, res->source->version, &res->verify);
  if (r < 0)
    return r;
  res->verify_seconds = monotonic_seconds() - t0;
  *ret = TAKE_PTR(res);
  return 0;
}

struct kgb_config_compare *kgb_config_compare_free(struct kgb_config_compare *c) {
  if (!c)
    return NULL;
  for (size_t i = 0; i < c->n_items; i++) {
    free(c->items[i].symbol);
    free(c->items[i].theirs);
    free(c->items[i].ours);
  }
  free(c->items);
  free(c->dir);
  strv_free(c->files);
  strv_free(c->skipped);
  free(c->config_path);
  free(c);
  return NULL;
}

static bool conf_file(_unused_ int dir_fd, const char *name, _unused_ void *userdata) {
  return endswith(name, ".conf");
}

int kgb_kernel_config_compare(struct kgb_ctx *ctx, const struct kgb_profile *p,
                              const struct kgb_config_result *ours, const char *dir,
                              struct kgb_config_compare **ret) {
  _cleanup_(kgb_config_compare_freep) struct kgb_config_compare *c = calloc(1, sizeof(*c));
  _cleanup_(kgb_merge_freep) struct kgb_merge *m = kgb_merge_new();
  if (!c || !m || !(c->dir = strdup(dir)))
    return -ENOMEM;
  const char *subdirs[] = {"common", p->kernel.arch};
  int r = 0;
  for (size_t d = 0; d < ELEMENTSOF(subdirs); d++) {
    _cleanup_free_ char *sub = strjoin_path(dir, subdirs[d]);
    _cleanup_strv_free_ char **names = NULL;
    if (!sub)
      return -ENOMEM;
    r = readdir_sorted(sub, 0, conf_file, NULL, &names);
    if (r == -ENOENT || r == -ENOTDIR)
      continue;
    if (r < 0)
      return r == -ENOMEM ? r : kgb_error(ctx, r, "cannot read '%s': %s", sub, strerror(-r));
    for (size_t i = 0; names[i]; i++) {
      _cleanup_free_ char *path = strjoin_path(sub, names[i]);
      _cleanup_free_ char *shown = kgb_strdup_printf("%s/%s", subdirs[d], names[i]);
      struct kgb_fragment *f = NULL;
      if (!path || !shown)
        return -ENOMEM;
      if ((r = kgb_fragment_load(ctx, path, shown, true, &f)) < 0)
        return r;
      if (kgb_fragment_excludes(f, p->kernel.arch))
        r = strv_extend(&c->skipped, shown);
      else
        r = strv_extend(&c->files, shown);
      if (r < 0 || (r = kgb_merge_add(m, f, KGB_LAYER_BASE, p->kernel.arch)) < 0)
        return r;
    }
  }
  if (!c->files)
    return kgb_error(ctx, -ENOENT,
                     "'%s' has no fragments in common/ or %s/ (the layout of Kata's "
                     "tools/packaging/kernel/configs/fragments)",
                     dir, p->kernel.arch);
  if ((r = kgb_merge_finish(m, NULL)) < 0)
    return r;
  c->n_requested = m->n_requests;
  _cleanup_free_ char *merged = NULL, *cc = NULL, *key = NULL, *sdir = NULL, *log = NULL;
  bool cached;
  if ((r = kgb_merge_render(m, &merged)) < 0 || (r = compiler_version(ctx, &cc)) < 0 ||
      (r = resolve(ctx, ours->source, p->kernel.arch, cc, merged, &key, &sdir, &c->config_path,
                   &log, &cached)) < 0)
    return r;
  _cleanup_(kgb_fragment_freep) struct kgb_fragment *theirs = NULL, *mine = NULL;
  if ((r = kgb_fragment_load(ctx, c->config_path, c->config_path, true, &theirs)) < 0 ||
      (r = kgb_fragment_load(ctx, ours->config_path, ours->config_path, true, &mine)) < 0)
    return r;
  for (size_t i = 0; i < m->n_requests; i++) {
    const struct kgb_request *q = &m->requests[i];
    const struct kgb_fentry *t = kgb_fragment_find(theirs, q->symbol);
    const struct kgb_fentry *o = kgb_fragment_find(mine, q->symbol);
    /* what it asks for and gets (a value its own tree drops is not a difference of ours) */
    if (!kgb_fvalue_equal(q->entry->value, q->entry->is_string, t ? t->value : NULL,
                          t ? t->is_string : false))
      continue;
    if (kgb_fvalue_equal(t ? t->value : NULL, t ? t->is_string : false, o ? o->value : NULL,
                         o ? o->is_string : false))
      continue;
    struct kgb_compare_item *n = realloc(c->items, (c->n_items + 1) * sizeof(*n));
    if (!n)
      return -ENOMEM;
    c->items = n;
    struct kgb_compare_item *it = &c->items[c->n_items++];
    *it = (struct kgb_compare_item){
        .file = q->fragment->name,
        .line = q->entry->line,
        .symbol = strdup(q->symbol),
        .theirs = kgb_fentry_display(q->entry->value, q->entry->is_string),
        .ours = o && !STREQ(o->value, "n") ? kgb_fentry_display(o->value, o->is_string) : NULL};
    if (!it->symbol || !it->theirs || (o && !STREQ(o->value, "n") && !it->ours))
      return -ENOMEM;
  }
  /* the items point at the merge's fragment names: keep them alive with the result */
  for (size_t i = 0; i < c->n_items; i++)
    for (size_t k = 0; c->files[k]; k++)
      if (STREQ(c->files[k], c->items[i].file))
        c->items[i].file = c->files[k];
  *ret = TAKE_PTR(c);
  return 0;
}
