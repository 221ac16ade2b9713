/* The rootfs and image stages. Order of work in kgb_rootfs_build: recipes resolved and
 * expanded (every error a user can make is reported here, before anything runs), the kernel
 * and its header package built or found, the bootstrap base found or made, the stage key
 * computed, then in a temporary stage directory: the base extracted, each recipe's
 * packages, inputs, files and steps in namespaced chroots, cleanup, the module checks, the
 * report, and a rename into place. */
#define _GNU_SOURCE
#include "rootfs.h"

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../shared/sbuf.h"
#include "../shared/util.h"
#include "apt-sources.h"
#include "chroot.h"
#include "exec.h"
#include "fetch.h"
#include "recipe-run.h"
#include "root-data.h"
#include "root-write.h"
#include "source.h"
#include "stage.h"

/* 2: built on the packages layer; the guest files and cleanup rules are data (rootfs/) */
#define KGB_ROOTFS_STAGE_VERSION "rootfs 2"
#define KGB_LAYER_STAGE_VERSION "packages 1"

/* Extracts a bootstrap tarball as root: owners, modes, times, extended attributes, device
 * nodes; no entry may climb out or go through a link. */
static int extract_base(struct kgb_ctx *ctx, const char *tarball, const char *dest) {
  return kgb_archive_extract_into(
      ctx, tarball, dest,
      &(struct kgb_extract_opts){.as_root = true, .progress = "unpacking the base"});
}

struct kgb_rootfs_result *kgb_rootfs_result_free(struct kgb_rootfs_result *r) {
  if (!r)
    return NULL;
  free(r->headers_deb);
  free(r->stage_dir);
  free(r->root);
  free(r->key);
  free(r->base);
  free(r->layer);
  free(r->log_path);
  strv_free(r->recipes);
  strv_free(r->warnings);
  kgb_modcheck_free(r->check);
  kgb_tree_report_release(&r->report);
  free(r);
  return NULL;
}

static bool uses_variable(const struct kgb_recipe *r, const char *var) {
  _cleanup_free_ char *needle = kgb_strdup_printf("${%s}", var);
  if (!needle)
    return false;
  for (size_t i = 0; i < r->n_files; i++)
    if ((r->files[i].source && strstr(r->files[i].source, needle)) ||
        (r->files[i].content && strstr(r->files[i].content, needle)))
      return true;
  for (size_t i = 0; i < r->n_inputs; i++)
    if (strstr(r->inputs[i].url, needle))
      return true;
  for (size_t i = 0; i < r->n_steps; i++)
    for (size_t j = 0; r->steps[i].argv && r->steps[i].argv[j]; j++)
      if (strstr(r->steps[i].argv[j], needle))
        return true;
  return false;
}

/* Every --set and profile setting must be declared by a recipe that runs. */
static int check_settings(struct kgb_ctx *ctx, const struct kgb_profile *p,
                          struct kgb_recipe **recipes, char *const *profile_settings,
                          char *const *set) {
  for (int pass = 0; pass < 2; pass++) {
    char *const *v = pass == 0 ? profile_settings : set;
    for (size_t i = 0; v && v[i]; i++) {
      size_t n = strcspn(v[i], "=");
      bool found = false;
      const char *best = NULL;
      size_t bestd = 4;
      for (size_t k = 0; recipes[k] && !found; k++)
        for (size_t s = 0; s < recipes[k]->n_settings && !found; s++) {
          const char *name = recipes[k]->settings[s].name;
          found = strlen(name) == n && strncmp(name, v[i], n) == 0;
          _cleanup_free_ char *given = strndup(v[i], n);
          size_t d = given ? levenshtein(given, name, 3) : 99;
          if (d < bestd)
            bestd = d, best = name;
        }
      if (found)
        continue;
      if (pass == 0) {
        kgb_warn(ctx, "%s: setting '%.*s' is used by none of the recipes that run", p->path, (int)n,
                 v[i]);
        continue;
      }
      return kgb_error(ctx, -EINVAL, "--set %.*s: no recipe of this run declares it%s%s%s", (int)n,
                       v[i], best ? " (did you mean '" : "", best ? best : "", best ? "'?)" : "");
    }
  }
  return 0;
}

/* What the key covers of a source on the host: a file's content, a tree's listing. */
static int hash_source(struct kgb_ctx *ctx, const char *path, struct sbuf *sb) {
  struct stat st;
  if (lstat(path, &st) < 0)
    return kgb_error(ctx, -errno, "cannot read '%s': %m", path);
  if (S_ISREG(st.st_mode)) {
    _cleanup_free_ char *hex = NULL;
    int r = kgb_sha256_file(ctx, path, &hex);
    return r < 0 ? r : sbuf_addf(sb, " sha256:%s", hex);
  }
  if (S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    return n < 0 ? -errno : sbuf_addf(sb, " link:%.*s", (int)n, target);
  }
  if (!S_ISDIR(st.st_mode))
    return kgb_error(ctx, -EINVAL, "'%s' is neither a file, a directory nor a link", path);
  _cleanup_strv_free_ char **names = NULL;
  int r = readdir_sorted(path, 0, NULL, NULL, &names);
  if (r < 0)
    return r == -ENOMEM ? r : kgb_error(ctx, r, "cannot read '%s': %s", path, strerror(-r));
  for (size_t i = 0; r >= 0 && names[i]; i++) {
    _cleanup_free_ char *sub = strjoin_path(path, names[i]);
    struct stat s2;
    if (!sub)
      return -ENOMEM;
    if (lstat(sub, &s2) < 0)
      return -errno;
    /* content, never times: the same modules built at another moment (another work
     * directory) must give the same key, or the image's UUIDs, derived from it, differ */
    r = sbuf_addf(sb, " [%s %o %lld", names[i], s2.st_mode, (long long)s2.st_size);
    if (r >= 0 && (S_ISDIR(s2.st_mode) || S_ISREG(s2.st_mode) || S_ISLNK(s2.st_mode)))
      r = hash_source(ctx, sub, sb);
    if (r >= 0)
      r = sbuf_addc(sb, ']');
  }
  return r;
}

/* What a key covers of an expanded recipe; with hash false, a source is named, not read (to
 * compare two expansions). */
static int describe_recipe(struct kgb_ctx *ctx, const struct kgb_recipe *r, bool hash,
                           struct sbuf *sb) {
  int rc = sbuf_addf(sb, "recipe %s %s\n", r->name, r->sha256);
  for (size_t i = 0; rc >= 0 && r->packages && r->packages[i]; i++)
    rc = sbuf_addf(sb, " package %s\n", r->packages[i]);
  for (size_t i = 0; rc >= 0 && i < r->n_inputs; i++) {
    const struct kgb_recipe_input *in = &r->inputs[i];
    rc = sbuf_addf(sb, " input %s %s %s %s %o %s\n", in->name, in->url, in->sha256, in->destination,
                   in->mode, in->extract ? in->extract : "");
  }
  for (size_t i = 0; rc >= 0 && i < r->n_files; i++) {
    const struct kgb_recipe_file *f = &r->files[i];
    rc = sbuf_addf(sb, " file %s %o", f->path, f->mode);
    if (rc >= 0 && f->content)
      rc = sbuf_addf(sb, " content %zu:%s", strlen(f->content), f->content);
    if (rc >= 0 && f->link)
      rc = sbuf_addf(sb, " link %s", f->link);
    if (rc >= 0 && f->source)
      rc = hash ? hash_source(ctx, f->source, sb) : sbuf_addf(sb, " source %s", f->source);
    if (rc >= 0)
      rc = sbuf_addc(sb, '\n');
  }
  for (size_t i = 0; rc >= 0 && i < r->n_steps; i++) {
    const struct kgb_recipe_step *s = &r->steps[i];
    rc = sbuf_adds(sb, " step");
    for (size_t j = 0; rc >= 0 && s->argv && s->argv[j]; j++)
      rc = sbuf_addf(sb, " %zu:%s", strlen(s->argv[j]), s->argv[j]);
    for (size_t j = 0; rc >= 0 && s->env && s->env[j]; j++)
      rc = sbuf_addf(sb, " env %s", s->env[j]);
    if (rc >= 0)
      rc = sbuf_addf(sb, " cwd %s warn %s\n", s->cwd ? s->cwd : "", s->warn ? s->warn : "");
  }
  for (size_t i = 0; rc >= 0 && r->purge && r->purge[i]; i++)
    rc = sbuf_addf(sb, " purge %s\n", r->purge[i]);
  for (size_t i = 0; rc >= 0 && r->remove && r->remove[i]; i++)
    rc = sbuf_addf(sb, " remove %s\n", r->remove[i]);
  return rc;
}

static int write_rootfs_manifest(struct kgb_stage *st, const struct kgb_profile *p,
                                 const struct kgb_rootfs_result *res, const char *base_key,
                                 const char *layer_key) {
  struct sbuf sb = SBUF_INIT;
  kgb_manifest_begin(&sb, "rootfs", res->key);
  kgb_manifest_string(&sb, "profile", p->name);
  kgb_manifest_string(&sb, "release", res->kernel->release);
  kgb_manifest_string(&sb, "bootstrap", base_key);
  kgb_manifest_string(&sb, "packages", layer_key);
  sbuf_addf(&sb, ",\n  \"source_date_epoch\": %lld,\n  \"kata_agent\": %s,\n  \"recipes\": [",
            res->epoch, res->kata_agent ? "true" : "false");
  kgb_stage_set(st, "release", "%s", res->kernel->release);
  kgb_stage_set(st, "epoch", "%lld", res->epoch);
  kgb_stage_set(st, "kata_agent", "%d", res->kata_agent);
  kgb_stage_set(st, "bytes", "%llu", (unsigned long long)res->report.bytes);
  kgb_stage_set(st, "files", "%llu", (unsigned long long)res->report.files);
  kgb_stage_set(st, "dirs", "%llu", (unsigned long long)res->report.dirs);
  for (size_t i = 0; res->recipes && res->recipes[i]; i++) {
    sbuf_adds(&sb, i ? ", " : "");
    sbuf_add_json(&sb, res->recipes[i]);
    kgb_stage_set(st, "recipe", "%s", res->recipes[i]);
  }
  sbuf_adds(&sb, "],\n  \"warnings\": [");
  for (size_t i = 0; res->warnings && res->warnings[i]; i++) {
    sbuf_adds(&sb, i ? ", " : "");
    sbuf_add_json(&sb, res->warnings[i]);
    kgb_stage_set(st, "warning", "%s", res->warnings[i]);
  }
  sbuf_addf(&sb, "],\n  \"modules_checked\": %zu,\n  \"bytes\": %llu,\n  \"files\": %llu,\n",
            res->check ? res->check->n_modules : 0, (unsigned long long)res->report.bytes,
            (unsigned long long)res->report.files);
  sbuf_adds(&sb, "  \"largest_directories\": [");
  for (size_t i = 0; i < res->report.n_top; i++) {
    sbuf_adds(&sb, i ? ",\n    {\"path\": " : "\n    {\"path\": ");
    sbuf_add_json(&sb, res->report.top[i].path);
    sbuf_addf(&sb, ", \"bytes\": %llu}", (unsigned long long)res->report.top[i].bytes);
    kgb_stage_set(st, "top", "%llu %s", (unsigned long long)res->report.top[i].bytes,
                  res->report.top[i].path);
  }
  sbuf_adds(&sb, "\n  ]\n}\n");
  int r = kgb_stage_commit(st, &sb);
  sbuf_release(&sb);
  return r;
}

static int read_cached(struct kgb_stage *st, struct kgb_rootfs_result *res) {
  _cleanup_free_ char *agent = kgb_stage_get1(st, "kata_agent");
  _cleanup_free_ char *bytes = kgb_stage_get1(st, "bytes"), *files = kgb_stage_get1(st, "files");
  _cleanup_free_ char *dirs = kgb_stage_get1(st, "dirs");
  if (!agent || !bytes || !files)
    return -EIO;
  res->kata_agent = STREQ(agent, "1");
  res->report.bytes = strtoull(bytes, NULL, 10);
  res->report.files = strtoull(files, NULL, 10);
  res->report.dirs = dirs ? strtoull(dirs, NULL, 10) : 0;
  int r;
  if ((r = kgb_stage_get(st, "recipe", &res->recipes)) < 0 ||
      (r = kgb_stage_get(st, "warning", &res->warnings)) < 0)
    return r;
  _cleanup_strv_free_ char **top = NULL;
  if ((r = kgb_stage_get(st, "top", &top)) < 0)
    return r;
  for (size_t i = 0; top && top[i] && res->report.n_top < ELEMENTSOF(res->report.top); i++) {
    char *sp = strchr(top[i], ' ');
    if (!sp)
      continue;
    struct kgb_tree_dir *d = &res->report.top[res->report.n_top];
    d->bytes = strtoull(top[i], NULL, 10);
    if (!(d->path = strdup(sp + 1)))
      return -ENOMEM;
    res->report.n_top++;
  }
  return 0;
}

/* The built-in variables of the recipes (recipe.h lists them). */
static int builtin_values(struct kgb_ctx *ctx, const struct kgb_profile *p, const char *release,
                          const char *modules, const char *headers_deb, char ***ret) {
  _cleanup_strv_free_ char **v = NULL;
  int r;
  if ((r = strv_push(&v, kgb_strdup_printf("kernel_release=%s", release))) < 0 ||
      (r = strv_push(&v, kgb_strdup_printf("arch=%s", p->kernel.arch))) < 0 ||
      (r = strv_push(&v, kgb_strdup_printf("kgb_deb_arch=%s", kgb_deb_arch(p->kernel.arch)))) < 0 ||
      (r = strv_push(&v, kgb_strdup_printf("multiarch=%s-linux-gnu", p->kernel.arch))) < 0 ||
      (r = strv_push(&v, kgb_strdup_printf("jobs=%u", ctx->jobs ? ctx->jobs : 1))) < 0 ||
      (r = strv_push(&v, kgb_strdup_printf("profile=%s", p->name))) < 0 ||
      (r = strv_push(&v, kgb_strdup_printf("distro=%s", p->rootfs.distro))) < 0 ||
      (r = strv_push(&v, kgb_strdup_printf("suite=%s", p->rootfs.suite))) < 0 ||
      (r = strv_push(&v, kgb_strdup_printf("kernel_modules=%s", modules))) < 0)
    return r;
  if (headers_deb &&
      (r = strv_push(&v, kgb_strdup_printf("kernel_headers_deb=%s", headers_deb))) < 0)
    return r;
  *ret = TAKE_PTR(v);
  return 0;
}

struct kgb_rootfs_plan {
  struct kgb_recipe **recipes;
  size_t n;
  /* per recipe: expanded with placeholders for the kernel's values, which is its real
   * expansion when it uses none of them */
  struct kgb_recipe **expanded;
  bool *early;   /* needs no kernel (nor do the recipes it requires): runs in the packages layer */
  bool *hoisted; /* runs after the kernel, but its packages are installed in the packages layer */
  char **layer_packages;
  struct kgb_root_data *data;
  bool need_headers;
};

struct kgb_rootfs_plan *kgb_rootfs_plan_free(struct kgb_rootfs_plan *pl) {
  if (!pl)
    return NULL;
  kgb_recipes_free(pl->recipes);
  for (size_t i = 0; pl->expanded && i < pl->n; i++)
    kgb_recipe_free(pl->expanded[i]);
  free(pl->expanded);
  free(pl->early);
  free(pl->hoisted);
  strv_free(pl->layer_packages);
  kgb_root_data_free(pl->data);
  free(pl);
  return NULL;
}

bool kgb_rootfs_plan_needs_headers(const struct kgb_rootfs_plan *pl) { return pl->need_headers; }

/* Every value the recipes see: the built-ins, then the profile's settings, then --set (later
 * entries win). */
static int recipe_values(struct kgb_ctx *ctx, const struct kgb_profile *p,
                         const struct kgb_rootfs_opts *o, const char *release, const char *modules,
                         const char *headers_deb, char ***ret) {
  _cleanup_strv_free_ char **vals = NULL;
  int r = builtin_values(ctx, p, release, modules, headers_deb, &vals);
  for (size_t i = 0; r >= 0 && p->settings && p->settings[i]; i++)
    r = strv_extend(&vals, p->settings[i]);
  for (size_t i = 0; r >= 0 && o->set && o->set[i]; i++)
    r = strv_extend(&vals, o->set[i]);
  if (r < 0)
    return r;
  *ret = TAKE_PTR(vals);
  return 0;
}

static bool recipe_is_early(const struct kgb_rootfs_plan *pl, const char *name) {
  for (size_t i = 0; i < pl->n; i++)
    if (STREQ(pl->recipes[i]->name, name))
      return pl->early[i];
  return false;
}

/* Which work needs the kernel: a recipe is expanded twice with different placeholders for
 * ${kernel_release}, ${kernel_modules} and ${kernel_headers_deb}; if both expansions are the
 * same, it uses none of them and (when every recipe it requires is early too) runs in the
 * packages layer, beside the kernel compile. The kernel's recipes keep their order after it;
 * the packages of those at their head, before any of them lays a file or runs a step, are
 * installed in the layer as well. */
static int plan_layers(struct kgb_ctx *ctx, const struct kgb_profile *p,
                       const struct kgb_rootfs_opts *o, struct kgb_rootfs_plan *pl) {
  _cleanup_strv_free_ char **va = NULL, **vb = NULL;
  int r;
  if ((r = recipe_values(ctx, p, o, "RELEASE", "/nonexistent", "/nonexistent", &va)) < 0 ||
      (r = recipe_values(ctx, p, o, "RELEASE-B", "/nonexistent-b", "/nonexistent-b", &vb)) < 0)
    return r;
  pl->expanded = calloc(pl->n + 1, sizeof(*pl->expanded));
  pl->early = calloc(pl->n + 1, sizeof(*pl->early));
  pl->hoisted = calloc(pl->n + 1, sizeof(*pl->hoisted));
  if (!pl->expanded || !pl->early || !pl->hoisted)
    return -ENOMEM;
  bool hoisting = true;
  for (size_t i = 0; i < pl->n; i++) {
    /* a recipe that cannot run fails now, not after ten minutes of compiling */
    _cleanup_(kgb_recipe_freep) struct kgb_recipe *xb = NULL;
    if ((r = kgb_recipe_expand(ctx, pl->recipes[i], va, &pl->expanded[i])) < 0 ||
        (r = kgb_recipe_expand(ctx, pl->recipes[i], vb, &xb)) < 0)
      return r;
    const struct kgb_recipe *xa = pl->expanded[i];
    struct sbuf ta = SBUF_INIT, tb = SBUF_INIT;
    r = describe_recipe(ctx, xa, false, &ta);
    if (r >= 0)
      r = describe_recipe(ctx, xb, false, &tb);
    bool same = r >= 0 && !ta.err && !tb.err && STREQ(sbuf_str(&ta), sbuf_str(&tb));
    sbuf_release(&ta);
    sbuf_release(&tb);
    if (r < 0)
      return r;
    bool early = same;
    for (size_t k = 0; early && pl->recipes[i]->requires && pl->recipes[i]->requires[k]; k++)
      early = recipe_is_early(pl, pl->recipes[i]->requires[k]);
    pl->early[i] = early;
    if (early)
      continue;
    /* the packages of the kernel's recipes at their head; the same in both expansions */
    bool same_packages = strv_length(xa->packages) == strv_length(xb->packages);
    for (size_t k = 0; same_packages && xa->packages && xa->packages[k]; k++)
      same_packages = STREQ(xa->packages[k], xb->packages[k]);
    if (hoisting && same_packages && xa->packages && xa->packages[0]) {
      pl->hoisted[i] = true;
      for (size_t k = 0; xa->packages[k]; k++)
        if (!strv_contains(pl->layer_packages, xa->packages[k]) &&
            (r = strv_extend(&pl->layer_packages, xa->packages[k])) < 0)
          return r;
    }
    hoisting = hoisting && same_packages && !xa->n_inputs && !xa->n_files && !xa->n_steps;
  }
  return 0;
}

int kgb_rootfs_plan_new(struct kgb_ctx *ctx, const struct kgb_profile *p,
                        const struct kgb_rootfs_opts *o, struct kgb_rootfs_plan **ret) {
  _cleanup_(kgb_rootfs_plan_freep) struct kgb_rootfs_plan *pl = calloc(1, sizeof(*pl));
  if (!pl)
    return -ENOMEM;
  int r = kgb_recipes_resolve(ctx, p->rootfs.recipes, o->without, &pl->recipes);
  if (r < 0)
    return r;
  while (pl->recipes[pl->n])
    pl->n++;
  if ((r = check_settings(ctx, p, pl->recipes, p->settings, o->set)) < 0 ||
      (r = kgb_root_data_load(ctx, p->rootfs.distro, &pl->data)) < 0)
    return r;
  for (size_t i = 0; pl->recipes[i]; i++)
    pl->need_headers = pl->need_headers || uses_variable(pl->recipes[i], "kernel_headers_deb");
  if ((r = plan_layers(ctx, p, o, pl)) < 0)
    return r;
  *ret = TAKE_PTR(pl);
  return 0;
}

void kgb_packages_layer_release(struct kgb_packages_layer *l) {
  free(l->tarball);
  free(l->key);
  strv_free(l->warnings);
  *l = (struct kgb_packages_layer){0};
}

/* <workdir>/stages/<name>/<key>/<file> -> <key> */
static char *stage_key_of(const char *file) {
  const char *end = strrchr(file, '/'), *start = end;
  while (start > file && start[-1] != '/')
    start--;
  return strndup(start, (size_t)(end - start));
}

static int layer_manifest(struct kgb_stage *st, const struct kgb_rootfs_plan *pl,
                          const char *base_key, char *const *warnings) {
  struct sbuf sb = SBUF_INIT;
  kgb_manifest_begin(&sb, "packages", st->key);
  kgb_manifest_string(&sb, "bootstrap", base_key);
  sbuf_adds(&sb, ",\n  \"packages\": [");
  for (size_t i = 0; pl->layer_packages && pl->layer_packages[i]; i++) {
    sbuf_adds(&sb, i ? ", " : "");
    sbuf_add_json(&sb, pl->layer_packages[i]);
  }
  sbuf_adds(&sb, "],\n  \"recipes\": [");
  for (size_t i = 0, k = 0; i < pl->n; i++)
    if (pl->early[i]) {
      sbuf_adds(&sb, k++ ? ", " : "");
      sbuf_add_json(&sb, pl->recipes[i]->name);
    }
  sbuf_adds(&sb, "],\n  \"warnings\": [");
  for (size_t i = 0; warnings && warnings[i]; i++) {
    sbuf_adds(&sb, i ? ", " : "");
    sbuf_add_json(&sb, warnings[i]);
    kgb_stage_set(st, "warning", "%s", warnings[i]);
  }
  sbuf_adds(&sb, "]\n}\n");
  int r = kgb_stage_commit(st, &sb);
  sbuf_release(&sb);
  return r;
}

int kgb_rootfs_layer(struct kgb_ctx *ctx, const struct kgb_profile *p,
                     const struct kgb_rootfs_opts *o, const struct kgb_rootfs_plan *pl,
                     const struct kgb_base *base, long long epoch, struct kgb_packages_layer *ret) {
  double t0 = monotonic_seconds();
  _cleanup_free_ char *base_key = stage_key_of(base->tarball);
  if (!base_key)
    return -ENOMEM;
  struct sbuf ks = SBUF_INIT;
  sbuf_addf(&ks, "%s\nbase %s\nepoch %lld\n", KGB_LAYER_STAGE_VERSION, base_key, epoch);
  int r = kgb_root_data_describe(ctx, pl->data, KGB_ROOT_DATA_FILES | KGB_ROOT_DATA_WHILE_BUILDING,
                                 &ks);
  for (size_t i = 0; r >= 0 && pl->layer_packages && pl->layer_packages[i]; i++)
    r = sbuf_addf(&ks, "install %s\n", pl->layer_packages[i]);
  for (size_t i = 0; r >= 0 && i < pl->n; i++)
    if (pl->early[i])
      r = describe_recipe(ctx, pl->expanded[i], true, &ks);
  if (r < 0 || ks.err) {
    sbuf_release(&ks);
    return r < 0 ? r : -ENOMEM;
  }
  _cleanup_(kgb_stage_freep) struct kgb_stage *st = NULL;
  r = kgb_stage_open(ctx, "packages", sbuf_str(&ks), "root.tar.zst", &st);
  sbuf_release(&ks);
  if (r < 0)
    return r;
  struct kgb_packages_layer l = {.tarball = strjoin_path(st->dir, "root.tar.zst"),
                                 .key = strdup(st->key)};
  if (!l.tarball || !l.key) {
    kgb_packages_layer_release(&l);
    return -ENOMEM;
  }
  if (st->cached) {
    if ((r = kgb_stage_get(st, "warning", &l.warnings)) < 0) {
      kgb_packages_layer_release(&l);
      return r;
    }
    l.cached = true;
    l.seconds = monotonic_seconds() - t0;
    kgb_info(ctx, "packages: layer for '%s' is cached ('%s')", p->name, st->dir);
    *ret = l;
    return 0;
  }
  _cleanup_free_ char *log_path =
      kgb_strdup_printf("%s/logs/packages-%s-%.16s.log", ctx->workdir, p->name, st->key);
  _cleanup_free_ char *troot = strjoin_path(st->tmp, "rootfs");
  _cleanup_free_ char *out = strjoin_path(st->tmp, "root.tar.zst");
  _cleanup_strv_free_ char **env = NULL;
  if (!log_path || !troot || !out ||
      (r = strv_push(&env, kgb_strdup_printf("SOURCE_DATE_EPOCH=%lld", epoch))) < 0 ||
      (r = kgb_workdir_logs(ctx)) < 0) {
    kgb_packages_layer_release(&l);
    return r < 0 ? r : -ENOMEM;
  }
  unlink(log_path);
  kgb_info(ctx, "packages: installing what needs no kernel for '%s' in '%s': log '%s'", p->name,
           st->tmp, log_path);
  kgb_progress(ctx, "extracting the base", 0, 0);
  struct kgb_runner run = {ctx, troot, log_path, env};
  if ((r = mkdir_p(troot, 0755)) >= 0 && (r = extract_base(ctx, base->tarball, troot)) >= 0 &&
      (r = kgb_root_data_lay(ctx, pl->data, KGB_ROOT_DATA_FILES, troot)) >= 0 &&
      (r = kgb_root_data_lay(ctx, pl->data, KGB_ROOT_DATA_WHILE_BUILDING, troot)) >= 0 &&
      (r = kgb_root_swap_resolv_conf(ctx, troot, true)) >= 0) {
    char *argv[] = {"apt-get", "update", "-o", "Dpkg::Use-Pty=0", NULL};
    kgb_progress(ctx, "updating the package lists", 0, 0);
    r = kgb_recipe_step(&run, argv, NULL, NULL, "updating the package lists");
    if (r >= 0 && pl->layer_packages) {
      kgb_progress(ctx, "installing packages", 0, 0);
      r = kgb_apt_install(&run, pl->layer_packages,
                          "installing the packages of the recipes that use the kernel");
    }
    for (size_t i = 0; r >= 0 && i < pl->n; i++)
      if (pl->early[i])
        r = kgb_recipe_run(&run, pl->expanded[i], i, pl->n, false, &l.warnings);
    int r2 = kgb_root_swap_resolv_conf(ctx, troot, false);
    if (r >= 0)
      r = r2;
  }
  if (r >= 0 && (r = kgb_tree_archive(ctx, troot, out, KGB_ARCHIVE_TAR, KGB_COMPRESS_ZSTD_FAST,
                                      epoch, NULL)) >= 0) {
    int r2 = rm_rf(troot);
    r = r2 < 0 ? kgb_error(ctx, r2, "cannot remove '%s': %s", troot, strerror(-r2)) : 0;
  }
  if (r >= 0)
    r = layer_manifest(st, pl, base_key, l.warnings);
  if (r < 0) {
    if (o->keep_failed && r != -ECANCELED) {
      kgb_stage_keep(st);
      kgb_warn(ctx, "the failed root is kept in '%s' (--keep-failed): remove it when done", troot);
    }
    kgb_packages_layer_release(&l);
    return r;
  }
  l.seconds = monotonic_seconds() - t0;
  *ret = l;
  return 0;
}

int kgb_rootfs_build(struct kgb_ctx *ctx, const struct kgb_profile *p,
                     const struct kgb_rootfs_opts *o, const struct kgb_rootfs_plan *pl,
                     const struct kgb_rootfs_inputs *in, struct kgb_rootfs_result **ret) {
  _cleanup_(kgb_rootfs_result_freep) struct kgb_rootfs_result *res = calloc(1, sizeof(*res));
  if (!res)
    return -ENOMEM;
  double t0 = monotonic_seconds();
  struct kgb_recipe **recipes = pl->recipes;
  int r;
  res->kernel = in->kernel;
  const struct kgb_build_result *b = res->kernel;
  if (pl->need_headers && !in->headers_deb)
    return kgb_error(ctx, -EINVAL,
                     "a recipe of '%s' installs the kernel's header package, "
                     "and none was built",
                     p->name);
  if (in->headers_deb && !(res->headers_deb = strdup(in->headers_deb)))
    return -ENOMEM;
  res->base_cached = in->base->cached;
  res->bootstrap_seconds = in->base->seconds;
  res->layer_cached = in->layer->cached;
  res->layer_seconds = in->layer->seconds;
  if (!(res->base = strdup(in->base->tarball)) || !(res->layer = strdup(in->layer->tarball)))
    return -ENOMEM;
  for (size_t i = 0; in->layer->warnings && in->layer->warnings[i]; i++)
    if ((r = strv_extend(&res->warnings, in->layer->warnings[i])) < 0)
      return r;
  res->epoch = b->epoch;
  /* every value, then the recipes as they will run */
  _cleanup_strv_free_ char **vals = NULL;
  const char *modules = b->modules_dir;
  _cleanup_free_ char *empty = NULL;
  if (!modules) {
    /* a kernel without modules still gets its (empty) directory and depmod's files; the
     * kernel's finished stage is not written to */
    empty = kgb_strdup_printf("%s/cache/empty-directory", ctx->workdir);
    if (!empty || (r = mkdir_p(empty, 0755)) < 0)
      return empty ? r : -ENOMEM;
    modules = empty;
  }
  if ((r = recipe_values(ctx, p, o, b->release, modules, res->headers_deb, &vals)) < 0)
    return r;
  size_t n_recipes = pl->n;
  _cleanup_(kgb_recipes_freep) struct kgb_recipe **plan = calloc(n_recipes + 1, sizeof(*plan));
  if (!plan)
    return -ENOMEM;
  for (size_t i = 0; i < n_recipes; i++) {
    if ((r = kgb_recipe_expand(ctx, recipes[i], vals, &plan[i])) < 0)
      return r;
    if ((r = strv_extend(&res->recipes, recipes[i]->name)) < 0)
      return r;
    /* the agent recipe installs /usr/bin/kata-agent from an input when it has one */
    if (STREQ(plan[i]->name, "kata-agent") && plan[i]->n_inputs > 0)
      res->kata_agent = true;
  }
  bool purge = p->rootfs.purge_build_packages;
  char *const *libvers = p->rootfs.library_versions;
  _cleanup_free_ char *base_key = stage_key_of(res->base);
  const char *layer_key = in->layer->key;
  if (!base_key)
    return -ENOMEM;
  /* the key: the packages layer's (which covers the base and the early recipes), the
   * kernel's, and what runs on top */
  struct sbuf ks = SBUF_INIT;
  sbuf_addf(&ks, "%s\nlayer %s\nkernel %s\nrelease %s\nepoch %lld\npurge %d\n",
            KGB_ROOTFS_STAGE_VERSION, layer_key, strrchr(b->stage_dir, '/') + 1, b->release,
            res->epoch, purge);
  for (size_t i = 0; libvers && libvers[i]; i++)
    sbuf_addf(&ks, "library %s\n", libvers[i]);
  r = kgb_root_data_describe(ctx, pl->data, KGB_ROOT_DATA_FILES | KGB_ROOT_DATA_CLEANUP, &ks);
  for (size_t i = 0; r >= 0 && plan[i]; i++) {
    if (pl->early[i])
      r = sbuf_addf(&ks, "early %s\n", plan[i]->name);
    else if ((r = sbuf_addf(&ks, "%s", pl->hoisted[i] ? "hoisted " : "")) >= 0)
      r = describe_recipe(ctx, plan[i], true, &ks);
    /* the layer ran the early recipes; their cleanup is part of this stage's */
    for (size_t j = 0; r >= 0 && pl->early[i] && plan[i]->purge && plan[i]->purge[j]; j++)
      r = sbuf_addf(&ks, " purge %s\n", plan[i]->purge[j]);
    for (size_t j = 0; r >= 0 && pl->early[i] && plan[i]->remove && plan[i]->remove[j]; j++)
      r = sbuf_addf(&ks, " remove %s\n", plan[i]->remove[j]);
  }
  if (r < 0 || ks.err) {
    sbuf_release(&ks);
    return r < 0 ? r : -ENOMEM;
  }
  _cleanup_(kgb_stage_freep) struct kgb_stage *st = NULL;
  r = kgb_stage_open(ctx, "rootfs", sbuf_str(&ks), NULL, &st);
  sbuf_release(&ks);
  if (r < 0)
    return r;
  res->key = strdup(st->key);
  res->stage_dir = strdup(st->dir);
  res->root = strjoin_path(st->dir, "rootfs");
  res->log_path = kgb_strdup_printf("%s/logs/rootfs-%s-%.16s.log", ctx->workdir, p->name, st->key);
  if (!res->key || !res->stage_dir || !res->root || !res->log_path)
    return -ENOMEM;
  if (st->cached) {
    strv_free(res->recipes);
    res->recipes = NULL;
    strv_free(res->warnings);
    res->warnings = NULL;
    if ((r = read_cached(st, res)) < 0)
      return kgb_error(ctx, -EIO, "'%s' is incomplete: remove it and build again", res->stage_dir);
    res->cached = true;
    res->seconds = monotonic_seconds() - t0;
    *ret = TAKE_PTR(res);
    return 0;
  }
  /* the tree, in a temporary stage directory */
  if ((r = kgb_workdir_logs(ctx)) < 0)
    return r;
  unlink(res->log_path);
  const char *tmp = st->tmp;
  _cleanup_free_ char *troot = strjoin_path(tmp, "rootfs");
  if (!troot)
    return -ENOMEM;
  kgb_info(ctx, "rootfs: building '%s' for %s in '%s': log '%s'", p->name, b->release, tmp,
           res->log_path);
  kgb_progress(ctx, "extracting the packages layer", 0, 0);
  _cleanup_strv_free_ char **run_env = NULL;
  struct kgb_runner run = {ctx, troot, res->log_path, NULL};
  if ((r = mkdir_p(troot, 0755)) < 0 || (r = extract_base(ctx, res->layer, troot)) < 0)
    goto fail;
  if ((r = strv_push(&run_env, kgb_strdup_printf("SOURCE_DATE_EPOCH=%lld", res->epoch))) < 0)
    goto fail;
  run.env = run_env;
  /* the layer has the package lists and the while-building files (no service starts) */
  if ((r = kgb_root_swap_resolv_conf(ctx, troot, true)) < 0)
    goto fail;
  for (size_t i = 0; r >= 0 && plan[i]; i++)
    if (!pl->early[i])
      r = kgb_recipe_run(&run, plan[i], i, n_recipes, pl->hoisted[i], &res->warnings);
  if (r >= 0 && purge) {
    _cleanup_strv_free_ char **argv = NULL;
    static const char *const head[] = {"apt-get", "purge",           "-y", "--auto-remove",
                                       "-o",      "Dpkg::Use-Pty=0", "--"};
    for (size_t i = 0; i < ELEMENTSOF(head) && r >= 0; i++)
      r = strv_extend(&argv, head[i]);
    size_t before = strv_length(argv);
    for (size_t i = 0; r >= 0 && plan[i]; i++)
      for (size_t j = 0; r >= 0 && plan[i]->purge && plan[i]->purge[j]; j++)
        if (!strv_contains(argv, plan[i]->purge[j]))
          r = strv_extend(&argv, plan[i]->purge[j]);
    if (r >= 0 && strv_length(argv) > before) {
      kgb_info(ctx, "rootfs: purging build-only packages");
      r = kgb_recipe_step(&run, argv, NULL, NULL, "purging build-only packages");
    }
  }
  if (r >= 0) {
    char *argv[] = {"apt-get", "clean", NULL};
    r = kgb_recipe_step(&run, argv, NULL, NULL, "cleaning the apt cache");
  }
  for (size_t i = 0; r >= 0 && plan[i]; i++)
    for (size_t j = 0; r >= 0 && plan[i]->remove && plan[i]->remove[j]; j++)
      r = kgb_root_remove(ctx, troot, plan[i]->remove[j]);
  {
    int r2 = kgb_root_swap_resolv_conf(ctx, troot, false);
    if (r >= 0)
      r = r2;
  }
  /* what would make the image depend on when and where it was built goes; the guest files
   * come last, over whatever a package wrote */
  if (r >= 0 && (r = kgb_root_data_cleanup(ctx, pl->data, troot)) >= 0)
    r = kgb_root_data_lay(ctx, pl->data, KGB_ROOT_DATA_FILES, troot);
  if (r < 0)
    goto fail;
  /* the checks, the report, the rename */
  {
    const char *sysmap = b->system_map;
    struct kgb_modcheck_opts mo = {.release = b->release,
                                   .system_map = is_file(sysmap) ? sysmap : NULL,
                                   .library_versions = libvers,
                                   .log_path = res->log_path};
    kgb_log_append(res->log_path, "\n### checking the modules\n");
    if ((r = kgb_modcheck_run(ctx, troot, &mo, &res->check)) < 0)
      goto fail;
  }
  if (res->check->n_problems) {
    if (o->keep_failed) {
      kgb_stage_keep(st);
      kgb_warn(ctx, "the failed root is kept in '%s' (--keep-failed): remove it when done", troot);
    }
    res->seconds = monotonic_seconds() - t0;
    *ret = TAKE_PTR(res);
    return kgb_error(ctx, -EBADE, "the root file system failed %zu module check%s: not stored",
                     (*ret)->check->n_problems, (*ret)->check->n_problems == 1 ? "" : "s");
  }
  if ((r = kgb_tree_report(ctx, troot, &res->report)) < 0 ||
      (r = write_rootfs_manifest(st, p, res, base_key, layer_key)) < 0)
    goto fail;
  res->seconds = monotonic_seconds() - t0;
  *ret = TAKE_PTR(res);
  return 0;
fail:
  if (o->keep_failed && r != -ECANCELED) {
    kgb_stage_keep(st);
    kgb_warn(ctx, "the failed root is kept in '%s' (--keep-failed): remove it when done", troot);
  }
  return r;
}
