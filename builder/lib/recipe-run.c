/* Running a recipe in a root: its packages, inputs, files and steps, each step in a contained
 * chroot (chroot.c), every command logged to the stage log. */
#define _GNU_SOURCE
#include "recipe-run.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../shared/sbuf.h"
#include "../shared/util.h"
#include "chroot.h"
#include "exec.h"
#include "fetch.h"
#include "root-write.h"
#include "source.h"

int kgb_recipe_step(struct kgb_runner *run, char *const *argv, char *const *extra_env,
                    const char *cwd, const char *what) {
  _cleanup_strv_free_ char **env = NULL;
  for (size_t i = 0; run->env && run->env[i]; i++)
    if (strv_extend(&env, run->env[i]) < 0)
      return -ENOMEM;
  for (size_t i = 0; extra_env && extra_env[i]; i++)
    if (strv_extend(&env, extra_env[i]) < 0)
      return -ENOMEM;
  _cleanup_free_ char *cmd = kgb_argv_to_string(argv);
  kgb_log_append(run->log_path, "\n### %s\n", what);
  kgb_debug(run->ctx, "in the root: %s", cmd ? cmd : argv[0]);
  struct kgb_chroot_opts co = {.log_path = run->log_path, .env = env, .cwd = cwd};
  int r = kgb_chroot_run(run->ctx, run->root, argv, &co);
  if (r < 0)
    return r;
  if (r != 0) {
    _cleanup_free_ char *tail = file_tail(run->log_path, 20);
    return kgb_error(run->ctx, -EIO, "%s: '%s' failed (exit %d) in the root:\n%s\nfull log: %s",
                     what, cmd ? cmd : argv[0], r, tail ? tail : "", run->log_path);
  }
  return 0;
}

int kgb_apt_install(struct kgb_runner *run, char *const *packages, const char *what) {
  _cleanup_strv_free_ char **argv = NULL;
  /* "--": a package name never becomes an option */
  static const char *const head[] = {"apt-get", "install",         "-y", "--no-install-recommends",
                                     "-o",      "Dpkg::Use-Pty=0", "--"};
  for (size_t i = 0; i < ELEMENTSOF(head); i++)
    if (strv_extend(&argv, head[i]) < 0)
      return -ENOMEM;
  for (size_t i = 0; packages && packages[i]; i++)
    if (strv_extend(&argv, packages[i]) < 0)
      return -ENOMEM;
  return kgb_recipe_step(run, argv, NULL, NULL, what);
}

/* An input: downloaded (or a local path) checked against its SHA-256, then its file, or the
 * member `extract` of it as an archive, put at its destination. */
static int install_input(struct kgb_runner *run, const struct kgb_recipe *r,
                         const struct kgb_recipe_input *in) {
  struct kgb_fetch_opts fo;
  kgb_fetch_opts_init(&fo);
  fo.sha256 = in->sha256;
  fo.retries = 3;
  _cleanup_free_ char *file = NULL;
  int rc = kgb_fetch_file(run->ctx, in->url, &fo, &file);
  if (rc < 0)
    return kgb_error_prefix(run->ctx, rc, "recipe '%s' input '%s' (%s:%u)", r->name, in->name,
                            r->path, in->line);
  mode_t mode = in->mode ? in->mode : 0644;
  if (!in->extract || !*in->extract) {
    _cleanup_free_ char *host = NULL;
    rc = kgb_root_path_for_write(run->ctx, run->root, in->destination, false, &host);
    return rc < 0 ? rc : kgb_root_install_file(run->ctx, file, host, mode, NULL);
  }
  /* the member of an archive (Kata's static release tarball carries the agent) */
  struct archive *a = archive_read_new();
  if (!a)
    return -ENOMEM;
  archive_read_support_filter_all(a);
  archive_read_support_format_all(a);
  rc = -ENOENT;
  if (archive_read_open_filename(a, file, 1 << 16) == ARCHIVE_OK) {
    struct archive_entry *e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
      const char *name = archive_entry_pathname(e);
      while (name && name[0] == '.' && name[1] == '/')
        name += 2;
      if (!name || !STREQ(name, in->extract) || archive_entry_filetype(e) != AE_IFREG)
        continue;
      _cleanup_free_ char *host = NULL;
      if ((rc = kgb_root_path_for_write(run->ctx, run->root, in->destination, false, &host)) < 0)
        break;
      _cleanup_free_ char *tmp = kgb_strdup_printf("%s.kgb-XXXXXX", host);
      _cleanup_close_ int fd = tmp ? mkostemp(tmp, O_CLOEXEC) : -1;
      if (fd < 0) {
        rc = tmp ? kgb_error(run->ctx, -errno, "cannot create '%s': %m", tmp) : -ENOMEM;
        break;
      }
      rc = archive_read_data_into_fd(a, fd) == ARCHIVE_OK ? 0 : -EIO;
      if (rc == 0 && (fchmod(fd, mode) < 0 || fchown(fd, 0, 0) < 0 || rename(tmp, host) < 0))
        rc = -errno;
      if (rc < 0) {
        unlink(tmp);
        rc = kgb_error(run->ctx, rc, "cannot extract '%s' from '%s': %s", in->extract, in->url,
                       strerror(-rc));
      }
      break;
    }
  }
  archive_read_free(a);
  if (rc == -ENOENT)
    return kgb_error(run->ctx, rc, "recipe '%s' input '%s': '%s' has no file '%s'", r->name,
                     in->name, in->url, in->extract);
  return rc;
}

int kgb_recipe_run(struct kgb_runner *run, const struct kgb_recipe *r, size_t index, size_t total,
                   bool packages_installed, char ***warnings) {
  kgb_info(run->ctx, "rootfs: recipe %zu of %zu, '%s': %s", index + 1, total, r->name,
           r->description);
  _cleanup_free_ char *what = kgb_strdup_printf("recipe '%s'", r->name);
  if (!what)
    return -ENOMEM;
  int rc;
  if (r->packages && r->packages[0] && !packages_installed) {
    _cleanup_free_ char *w =
        kgb_strdup_printf("recipe '%s' (%s): installing its packages", r->name, r->path);
    kgb_progress(run->ctx, "installing packages", 0, 0);
    if (!w || (rc = kgb_apt_install(run, r->packages, w)) < 0)
      return w ? rc : -ENOMEM;
  }
  for (size_t i = 0; i < r->n_inputs; i++)
    if ((rc = install_input(run, r, &r->inputs[i])) < 0)
      return rc;
  for (size_t i = 0; i < r->n_files; i++) {
    const struct kgb_recipe_file *f = &r->files[i];
    if (f->content)
      rc = kgb_root_write(run->ctx, run->root, f->path, f->content, f->mode ? f->mode : 0644);
    else if (f->link) {
      _cleanup_free_ char *host = NULL;
      rc = kgb_root_path_for_write(run->ctx, run->root, f->path, false, &host);
      if (rc >= 0)
        rc = kgb_root_install_symlink(run->ctx, f->link, host);
    } else
      rc = kgb_root_copy(run->ctx, run->root, f->source, f->path, f->mode);
    if (rc < 0)
      return kgb_error_prefix(run->ctx, rc, "recipe '%s' (%s:%u): installing '%s'", r->name,
                              r->path, f->line, f->path);
  }
  for (size_t i = 0; i < r->n_steps; i++) {
    const struct kgb_recipe_step *s = &r->steps[i];
    if (kgb_cancelled(run->ctx))
      return -ECANCELED;
    if (s->warn) {
      kgb_warn(run->ctx, "recipe '%s': %s", r->name, s->warn);
      if ((rc = strv_push(warnings, kgb_strdup_printf("%s: %s", r->name, s->warn))) < 0)
        return rc;
      continue;
    }
    _cleanup_free_ char *w =
        kgb_strdup_printf("recipe '%s' step at %s:%u", r->name, r->path, s->line);
    kgb_progress(run->ctx, r->name, 0, 0);
    if (!w || (rc = kgb_recipe_step(run, s->argv, s->env, s->cwd, w)) < 0)
      return w ? rc : -ENOMEM;
  }
  return 0;
}

/* Recipes run with the host's resolv.conf (they download); the root's own is put back after
 * them. */
int kgb_root_swap_resolv_conf(struct kgb_ctx *ctx, const char *root, bool in) {
  _cleanup_free_ char *conf = NULL, *saved = NULL;
  int r = kgb_root_resolve(root, "/etc/resolv.conf", false, &conf);
  if (r < 0 || (r = kgb_root_resolve(root, "/etc/.resolv.conf.kgb-saved", false, &saved)) < 0)
    return r;
  if (in) {
    struct stat st;
    if (lstat(conf, &st) == 0 && rename(conf, saved) < 0)
      return kgb_error(ctx, -errno, "cannot move '%s' aside: %m", conf);
    _cleanup_free_ char *text = NULL;
    if (read_full_file("/etc/resolv.conf", &text, NULL) < 0)
      text = strdup("");
    r = text ? write_file_atomic(conf, text, strlen(text), 0644) : -ENOMEM;
    return r < 0 ? kgb_error(ctx, r, "cannot write '%s': %s", conf, strerror(-r)) : 0;
  }
  unlink(conf);
  struct stat st;
  if (lstat(saved, &st) == 0 && rename(saved, conf) < 0)
    return kgb_error(ctx, -errno, "cannot restore '%s': %m", conf);
  return 0;
}
