/* The bootstrap stage: a minbase root of the profile's distribution from the host's apt
 * mirror (mmdebstrap, debootstrap as the fallback), kept as a tarball under a key that
 * includes the mirror's Release dates, so a new mirror snapshot bootstraps again and an
 * unreachable mirror reuses the newest base of the same settings. */
#define _GNU_SOURCE
#include "bootstrap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../shared/sbuf.h"
#include "../shared/util.h"
#include "apt-sources.h"
#include "chroot.h"
#include "exec.h"
#include "fetch.h"
#include "image.h"
#include "root-write.h"
#include "rootfs.h"
#include "stage.h"

#define KGB_BOOTSTRAP_STAGE_VERSION "bootstrap 1"

/* The Date of the suite's InRelease or Release file on the mirror. */
static int mirror_date(struct kgb_ctx *ctx, const char *uri, const char *suite, char **ret) {
  static const char *const files[] = {"InRelease", "Release"};
  _cleanup_free_ char *msg = NULL;
  for (size_t i = 0; i < ELEMENTSOF(files); i++) {
    _cleanup_free_ char *url = kgb_strdup_printf("%s/dists/%s/%s", uri, suite, files[i]);
    _cleanup_free_ char *text = NULL;
    if (!url)
      return -ENOMEM;
    free(msg);
    msg = NULL;
    int r = kgb_fetch_text(ctx, url, "a Release file", &text, &msg);
    if (r == -ENOENT)
      continue;
    if (r < 0)
      return kgb_error(ctx, r, "%s: %s", url, msg ? msg : strerror(-r));
    r = kgb_release_date(text, ret);
    if (r < 0)
      return kgb_error(ctx, -EBADMSG, "%s: no 'Date:' field", url);
    return 0;
  }
  return kgb_error(ctx, -ENOENT, "%s/dists/%s: no InRelease or Release file (%s)", uri, suite,
                   msg ? msg : "404");
}

struct bootstrap {
  char *distro, *suite, *arch, *variant;
  char **components, **packages, **lines, **keyrings;
  char **dates;
  char *tool;
  char *base_id; /* everything but the mirror's dates */
  char *key_text;
};

static void bootstrap_release(struct bootstrap *b) {
  free(b->distro);
  free(b->suite);
  free(b->arch);
  free(b->variant);
  strv_free(b->components);
  strv_free(b->packages);
  strv_free(b->lines);
  strv_free(b->keyrings);
  strv_free(b->dates);
  free(b->tool);
  free(b->base_id);
  free(b->key_text);
}

static int bootstrap_plan(struct kgb_ctx *ctx, const struct kgb_profile *p,
                          const struct kgb_rootfs_opts *o, struct bootstrap *b) {
  b->distro = strdup(p->rootfs.distro);
  b->suite = strdup(p->rootfs.suite);
  b->arch = strdup(kgb_deb_arch(p->kernel.arch));
  b->variant = strdup(p->rootfs.variant);
  if (!b->distro || !b->suite || !b->arch || !b->variant)
    return -ENOMEM;
  int r;
  for (size_t i = 0; p->rootfs.components && p->rootfs.components[i]; i++)
    if ((r = strv_extend(&b->components, p->rootfs.components[i])) < 0)
      return r;
  if (!b->components && (r = strv_extend(&b->components, "main")) < 0) /* given as [] */
    return r;
  /* sorted, then each name once: linear after the sort, for lists of any length */
  size_t n_pkgs = strv_length(p->rootfs.packages), kept = 0;
  if (n_pkgs) {
    if (!(b->packages = calloc(n_pkgs + 1, sizeof(char *))))
      return -ENOMEM;
    for (size_t i = 0; i < n_pkgs; i++)
      if (!(b->packages[i] = strdup(p->rootfs.packages[i])))
        return -ENOMEM;
    strv_sort(b->packages);
    for (size_t i = 0; i < n_pkgs; i++) {
      if (kept && STREQ(b->packages[kept - 1], b->packages[i]))
        free(b->packages[i]);
      else
        b->packages[kept++] = b->packages[i];
      if (i >= kept)
        b->packages[i] = NULL;
    }
  }
  _cleanup_free_ char *comps_s = NULL;
  {
    struct sbuf sb = SBUF_INIT;
    for (size_t i = 0; b->components[i]; i++)
      sbuf_addf(&sb, "%s%s", i ? " " : "", b->components[i]);
    comps_s = sbuf_steal(&sb);
    if (!comps_s)
      return -ENOMEM;
  }
  const char *mirror = p->rootfs.mirror, *keyring = p->rootfs.keyring;
  struct kgb_apt_sources chosen = {0};
  if (mirror) {
    r = kgb_apt_sources_add(&chosen, mirror, b->suite, NULL, keyring, p->path, 0);
  } else {
    const char *apt_dir = o->apt_dir ? o->apt_dir : "/etc/apt";
    struct kgb_apt_sources all = {0};
    r = kgb_apt_sources_read(ctx, apt_dir, &all);
    if (r >= 0)
      r = kgb_apt_sources_for_suite(ctx, &all, apt_dir, b->suite, &chosen);
    kgb_apt_sources_release(&all);
  }
  for (size_t i = 0; r >= 0 && i < chosen.n; i++) {
    const struct kgb_apt_source *s = &chosen.v[i];
    r = strv_push(&b->lines, kgb_strdup_printf("deb %s %s %s", s->uri, s->suite, comps_s));
    const char *k = keyring ? keyring : s->signed_by;
    if (r >= 0 && k && keyring && !strv_contains(b->keyrings, k))
      r = strv_extend(&b->keyrings, k);
    if (r < 0)
      break;
    char *date = NULL;
    kgb_progress(ctx, "reading the mirror's Release date", 0, 0);
    if (mirror_date(ctx, s->uri, s->suite, &date) < 0) {
      kgb_warn(ctx,
               "cannot read the Release date of %s %s (%s): reusing the newest base "
               "bootstrapped from it",
               s->uri, s->suite, kgb_error_detail(ctx));
      kgb_error_clear(ctx);
      date = strdup("unknown");
    }
    r = strv_push(&b->dates, date);
  }
  kgb_apt_sources_release(&chosen);
  return r;
}

static int bootstrap_keys(struct bootstrap *b, const char *tool_version, long long epoch) {
  struct sbuf sb = SBUF_INIT;
  sbuf_addf(&sb, "%s\ntool %s\ndistro %s\nsuite %s\narch %s\nvariant %s\nepoch %lld\n",
            KGB_BOOTSTRAP_STAGE_VERSION, tool_version, b->distro, b->suite, b->arch, b->variant,
            epoch);
  for (size_t i = 0; b->components && b->components[i]; i++)
    sbuf_addf(&sb, "component %s\n", b->components[i]);
  for (size_t i = 0; b->packages && b->packages[i]; i++)
    sbuf_addf(&sb, "package %s\n", b->packages[i]);
  for (size_t i = 0; b->lines && b->lines[i]; i++)
    sbuf_addf(&sb, "source %s\n", b->lines[i]);
  for (size_t i = 0; b->keyrings && b->keyrings[i]; i++)
    sbuf_addf(&sb, "keyring %s\n", b->keyrings[i]);
  char hex[65];
  if (sb.err || kgb_sha256_hex(sbuf_str(&sb), sb.len, hex) < 0) {
    sbuf_release(&sb);
    return -ENOMEM;
  }
  b->base_id = strdup(hex);
  for (size_t i = 0; b->dates && b->dates[i]; i++)
    sbuf_addf(&sb, "date %s\n", b->dates[i]);
  if (!b->base_id || sb.err) {
    sbuf_release(&sb);
    return -ENOMEM;
  }
  b->key_text = sbuf_steal(&sb);
  return b->key_text ? 0 : -ENOMEM;
}

static int run_bootstrapper(struct kgb_ctx *ctx, const struct bootstrap *b, const char *tool,
                            const char *tmp, const char *log_path, long long epoch) {
  _cleanup_free_ char *out = kgb_strdup_printf("%s/base.tar.zst", tmp);
  _cleanup_free_ char *epoch_env = kgb_strdup_printf("SOURCE_DATE_EPOCH=%lld", epoch);
  _cleanup_strv_free_ char **argv = NULL;
  struct sbuf comps = SBUF_INIT, pkgs = SBUF_INIT;
  for (size_t i = 0; b->components[i]; i++)
    sbuf_addf(&comps, "%s%s", i ? "," : "", b->components[i]);
  for (size_t i = 0; b->packages && b->packages[i]; i++)
    sbuf_addf(&pkgs, "%s%s", i ? "," : "", b->packages[i]);
  bool mm = STREQ(tool, "mmdebstrap");
  _cleanup_free_ char *dir = kgb_strdup_printf("%s/tree", tmp);
  int r = out && epoch_env && dir && comps.buf && !comps.err && !pkgs.err ? 0 : -ENOMEM;
  if (r >= 0)
    r = strv_extend(&argv, tool);
  if (r >= 0)
    r = strv_push(&argv, kgb_strdup_printf("--variant=%s", b->variant));
  if (r >= 0 && mm)
    r = strv_extend(&argv, "--mode=root");
  if (r >= 0)
    r = strv_push(&argv, kgb_strdup_printf("--%s=%s", mm ? "architectures" : "arch", b->arch));
  if (r >= 0)
    r = strv_push(&argv, kgb_strdup_printf("--components=%s", comps.buf));
  if (r >= 0 && pkgs.len)
    r = strv_push(&argv, kgb_strdup_printf("--include=%s", pkgs.buf));
  for (size_t i = 0; r >= 0 && b->keyrings && b->keyrings[i]; i++)
    r = strv_push(&argv, kgb_strdup_printf("--keyring=%s", b->keyrings[i]));
  if (r >= 0)
    r = strv_extend(&argv, b->suite);
  if (r >= 0)
    r = strv_extend(&argv, mm ? out : dir);
  if (mm) {
    for (size_t i = 0; r >= 0 && b->lines[i]; i++)
      r = strv_extend(&argv, b->lines[i]);
  } else if (r >= 0) {
    /* debootstrap takes one mirror: "deb URI SUITE COMPS" -> URI */
    char *uri = strdup(b->lines[0] + 4);
    if (uri)
      uri[strcspn(uri, " ")] = '\0';
    r = strv_push(&argv, uri);
  }
  sbuf_release(&comps);
  sbuf_release(&pkgs);
  if (r < 0)
    return r;
  char *env[] = {epoch_env, "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive", NULL};
  struct kgb_chroot_opts co = {.log_path = log_path, .env = env};
  kgb_info(ctx, "bootstrapping %s %s (%s, %s) with %s: log '%s'", b->distro, b->suite, b->variant,
           b->arch, tool, log_path);
  kgb_progress(ctx, "bootstrapping the base system", 0, 0);
  r = kgb_ns_run(ctx, argv, &co);
  if (r == -ENOENT) {
    kgb_error_clear(ctx); /* "cannot run 'mmdebstrap'": what to install says more */
    return kgb_error(ctx, r, "%s is not installed: apt-get install mmdebstrap (or debootstrap)",
                     tool);
  }
  if (r < 0)
    return r;
  if (r != 0) {
    _cleanup_free_ char *tail = file_tail(log_path, 25);
    return kgb_error(ctx, -EIO, "bootstrapping %s %s failed (%s exit %d):\n%s\nfull log: %s",
                     b->distro, b->suite, tool, r, tail ? tail : "", log_path);
  }
  if (mm)
    return 0;
  /* debootstrap wrote a tree: give it every source line, then pack it like mmdebstrap */
  _cleanup_free_ char *list = kgb_strdup_printf("%s/etc/apt/sources.list", dir);
  struct sbuf sb = SBUF_INIT;
  for (size_t i = 0; b->lines[i]; i++)
    sbuf_addf(&sb, "%s\n", b->lines[i]);
  r = list && !sb.err ? write_file_atomic(list, sbuf_str(&sb), sb.len, 0644) : -ENOMEM;
  sbuf_release(&sb);
  /* debootstrap installs from the first mirror only: the updates and security suites, as
   * mmdebstrap would have used them */
  static const char *const upgrade[][5] = {
      {"apt-get", "update", NULL}, {"apt-get", "-y", "upgrade", NULL}, {"apt-get", "clean", NULL}};
  for (size_t i = 0; r >= 0 && b->lines[1] && i < ELEMENTSOF(upgrade); i++) {
    r = kgb_chroot_run(ctx, dir, (char *const *)upgrade[i], &co);
    if (r > 0)
      r = kgb_error(ctx, -EIO, "'%s %s' failed (exit %d) in the new base; log: %s", upgrade[i][0],
                    upgrade[i][1], r, log_path);
  }
  if (r >= 0)
    r = kgb_root_remove_matching(ctx, dir, "/var/lib/apt/lists", "*_*");
  if (r >= 0)
    r = kgb_tree_archive(ctx, dir, out, KGB_ARCHIVE_TAR, KGB_COMPRESS_ZSTD, epoch, NULL);
  rm_rf(dir);
  return r;
}

static int find_latest_base(struct kgb_ctx *ctx, const struct bootstrap *b, char **ret_dir) {
  _cleanup_free_ char *link =
      kgb_strdup_printf("%s/stages/bootstrap/latest-%.16s", ctx->workdir, b->base_id);
  if (!link)
    return -ENOMEM;
  char target[4096];
  ssize_t n = readlink(link, target, sizeof(target) - 1);
  if (n <= 0)
    return -ENOENT;
  target[n] = '\0';
  _cleanup_free_ char *dir = kgb_strdup_printf("%s/stages/bootstrap/%s", ctx->workdir, target);
  _cleanup_free_ char *tar = dir ? strjoin_path(dir, "base.tar.zst") : NULL;
  if (!tar)
    return -ENOMEM;
  if (!is_file(tar))
    return -ENOENT;
  *ret_dir = TAKE_PTR(dir);
  return 0;
}

void kgb_base_release(struct kgb_base *b) {
  free(b->tarball);
  *b = (struct kgb_base){0};
}

static int bootstrap_tool(struct kgb_ctx *ctx, const struct kgb_rootfs_opts *o, char **ret) {
  if (o->bootstrapper) {
    if (!STREQ(o->bootstrapper, "mmdebstrap") && !STREQ(o->bootstrapper, "debootstrap"))
      return kgb_error(ctx, -EINVAL, "bootstrapper '%s': use mmdebstrap or debootstrap",
                       o->bootstrapper);
    *ret = strdup(o->bootstrapper);
    return *ret ? 0 : -ENOMEM;
  }
  _cleanup_free_ char *mm = find_program("mmdebstrap");
  _cleanup_free_ char *db = mm ? NULL : find_program("debootstrap");
  if (!mm && !db && is_file("/usr/sbin/debootstrap"))
    db = strdup("/usr/sbin/debootstrap");
  if (!mm && !db)
    return kgb_error(ctx, -ENOENT,
                     "neither mmdebstrap nor debootstrap is installed: apt-get install mmdebstrap");
  *ret = strdup(mm ? "mmdebstrap" : "debootstrap");
  return *ret ? 0 : -ENOMEM;
}

static void bootstrap_manifest(struct sbuf *sb, const struct bootstrap *b, const char *key,
                               const char *version, long long epoch) {
  kgb_manifest_begin(sb, "bootstrap", key);
  kgb_manifest_string(sb, "tool", version);
  kgb_manifest_string(sb, "distro", b->distro);
  kgb_manifest_string(sb, "suite", b->suite);
  sbuf_addf(sb, ",\n  \"source_date_epoch\": %lld,\n  \"sources\": [", epoch);
  for (size_t i = 0; b->lines[i]; i++) {
    sbuf_adds(sb, i ? ",\n    {\"line\": " : "\n    {\"line\": ");
    sbuf_add_json(sb, b->lines[i]);
    sbuf_adds(sb, ", \"date\": ");
    sbuf_add_json(sb, b->dates[i]);
    sbuf_adds(sb, "}");
  }
  sbuf_adds(sb, "\n  ],\n  \"packages\": [");
  for (size_t i = 0; b->packages && b->packages[i]; i++) {
    sbuf_adds(sb, i ? ", " : "");
    sbuf_add_json(sb, b->packages[i]);
  }
  sbuf_adds(sb, "]\n}\n");
}

static int bootstrap_stage(struct kgb_ctx *ctx, const struct kgb_profile *p,
                           const struct kgb_rootfs_opts *o, long long epoch, struct kgb_base *ret) {
  _cleanup_(bootstrap_release) struct bootstrap b = {0};
  _cleanup_free_ char *tool = NULL, *version = NULL;
  int r = bootstrap_tool(ctx, o, &tool);
  if (r < 0)
    return r;
  char *argv[] = {tool, "--version", NULL};
  if ((r = kgb_exec_version(ctx, argv, &version)) < 0 || (r = bootstrap_plan(ctx, p, o, &b)) < 0 ||
      (r = bootstrap_keys(&b, version, epoch)) < 0)
    return r;
  _cleanup_(kgb_stage_freep) struct kgb_stage *st = NULL;
  if ((r = kgb_stage_open(ctx, "bootstrap", b.key_text, "base.tar.zst", &st)) < 0)
    return r;
  struct kgb_base base = {0};
  if (!st->cached && strv_contains(b.dates, "unknown")) {
    /* the mirror cannot say how new it is: the newest base of these settings will do */
    _cleanup_free_ char *latest = NULL;
    if (find_latest_base(ctx, &b, &latest) < 0)
      return kgb_error(ctx, -EHOSTUNREACH,
                       "the mirror cannot be reached and no base for %s %s was bootstrapped "
                       "before",
                       b.distro, b.suite);
    base.tarball = strjoin_path(latest, "base.tar.zst");
    base.cached = true;
    if (!base.tarball)
      return -ENOMEM;
    kgb_info(ctx, "bootstrap: base for %s %s is cached ('%s')", b.distro, b.suite, latest);
    *ret = base;
    return 0;
  }
  if (!(base.tarball = strjoin_path(st->dir, "base.tar.zst")))
    return -ENOMEM;
  if (st->cached) {
    base.cached = true;
    kgb_info(ctx, "bootstrap: base for %s %s is cached ('%s')", b.distro, b.suite, st->dir);
    *ret = base;
    return 0;
  }
  _cleanup_free_ char *log_path =
      kgb_strdup_printf("%s/logs/bootstrap-%s-%.16s.log", ctx->workdir, b.suite, st->key);
  if (!log_path || (r = kgb_workdir_logs(ctx)) < 0) {
    kgb_base_release(&base);
    return log_path ? r : -ENOMEM;
  }
  unlink(log_path);
  double t0 = monotonic_seconds();
  r = run_bootstrapper(ctx, &b, tool, st->tmp, log_path, epoch);
  base.seconds = monotonic_seconds() - t0;
  if (r >= 0) {
    struct sbuf sb = SBUF_INIT;
    bootstrap_manifest(&sb, &b, st->key, version, epoch);
    r = kgb_stage_commit(st, &sb);
    sbuf_release(&sb);
  }
  if (r < 0) {
    kgb_base_release(&base);
    return r;
  }
  /* the newest base of these settings, for runs that cannot reach the mirror */
  _cleanup_free_ char *link =
      kgb_strdup_printf("%s/stages/bootstrap/latest-%.16s", ctx->workdir, b.base_id);
  _cleanup_free_ char *ltmp = link ? kgb_strdup_printf("%s.tmp", link) : NULL;
  if (ltmp) {
    unlink(ltmp);
    if (symlink(st->key, ltmp) == 0 && rename(ltmp, link) < 0)
      unlink(ltmp);
  }
  *ret = base;
  return 0;
}

int kgb_rootfs_bootstrap(struct kgb_ctx *ctx, const struct kgb_profile *p,
                         const struct kgb_rootfs_opts *o, long long epoch, struct kgb_base *ret) {
  return bootstrap_stage(ctx, p, o, epoch, ret);
}
