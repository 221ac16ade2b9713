/* kernel headers: the header package that out-of-tree GPU drivers compile against, as a
 * Debian package (the kernel's bindeb-pkg), an RPM (binrpm-pkg) or a plain tarball of the
 * tree that /lib/modules/<release>/build points at. The tarball takes the file set the
 * kernel's own builddeb puts in linux-headers, written with libarchive reproducibly (sorted
 * names, clamped times, owner root). */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../shared/hashmap.h"
#include "../shared/sbuf.h"
#include "../shared/string-table.h"
#include "../shared/util.h"
#include "kernel-build.h"
#include "stage.h"

#define KGB_HEADERS_STAGE_VERSION "headers 1"

static const char *const kgb_headers_format_table[_KGB_HEADERS_FORMAT_MAX] = {
    [KGB_HEADERS_DEB] = "deb", [KGB_HEADERS_RPM] = "rpm", [KGB_HEADERS_TAR] = "tar"};

DEFINE_STRING_TABLE_FROM_STRING(kgb_headers_format, enum kgb_headers_format);

struct kgb_headers_result *kgb_headers_result_free(struct kgb_headers_result *h) {
  if (!h)
    return NULL;
  free(h->stage_dir);
  strv_free(h->files);
  free(h);
  return NULL;
}

/* ---- the file set ---- */

struct fileset {
  struct hashmap map; /* relative path -> absolute path (both owned by the vectors) */
  char **rel, **abs;
};

static int fileset_add(struct fileset *fs, const char *rel, const char *abs) {
  char *a = strdup(abs);
  if (!a)
    return -ENOMEM;
  char *old = hashmap_get(&fs->map, rel);
  if (old) { /* the object tree's copy wins, as in builddeb's second tar pass */
    for (size_t i = 0; fs->abs[i]; i++)
      if (fs->abs[i] == old) {
        free(fs->abs[i]);
        fs->abs[i] = a;
        return hashmap_put(&fs->map, fs->rel[i], a);
      }
  }
  int r = strv_extend(&fs->rel, rel);
  if (r < 0) {
    free(a);
    return r;
  }
  if ((r = strv_push(&fs->abs, a)) < 0)
    return r;
  return hashmap_put(&fs->map, fs->rel[strv_length(fs->rel) - 1], a);
}

static void fileset_release(struct fileset *fs) {
  hashmap_release(&fs->map);
  strv_free(fs->rel);
  strv_free(fs->abs);
}

enum walk_pick { PICK_ALL, PICK_FILES, PICK_PLATFORM, PICK_UNDER_INCLUDE_OR_SCRIPTS };

/* Adds entries below base/rel to fs; depth limits recursion (-1: none). */
static int walk(struct fileset *fs, const char *base, const char *rel, enum walk_pick pick,
                bool inside) {
  _cleanup_free_ char *dir = strjoin_path(base, rel);
  if (!dir)
    return -ENOMEM;
  DIR *d = opendir(dir);
  if (!d)
    return errno == ENOENT ? 0 : -errno;
  int r = 0;
  struct dirent *de;
  while (r >= 0 && (de = readdir(d))) {
    if (STREQ(de->d_name, ".") || STREQ(de->d_name, ".."))
      continue;
    _cleanup_free_ char *crel =
        *rel ? kgb_strdup_printf("%s/%s", rel, de->d_name) : strdup(de->d_name);
    _cleanup_free_ char *cabs = crel ? strjoin_path(base, crel) : NULL;
    struct stat st;
    if (!crel || !cabs) {
      r = -ENOMEM;
      break;
    }
    if (lstat(cabs, &st) < 0)
      continue;
    if (S_ISDIR(st.st_mode)) {
      bool in = inside || STREQ(de->d_name, "include") || STREQ(de->d_name, "scripts");
      r = walk(fs, base, crel, pick, pick == PICK_UNDER_INCLUDE_OR_SCRIPTS ? in : inside);
      continue;
    }
    bool take = false;
    switch (pick) {
    case PICK_ALL:
      take = S_ISREG(st.st_mode) || S_ISLNK(st.st_mode);
      break;
    case PICK_FILES:
      take = S_ISREG(st.st_mode);
      break;
    case PICK_PLATFORM:
      take = S_ISREG(st.st_mode) &&
             (STREQ(de->d_name, "Kbuild.platforms") || STREQ(de->d_name, "Platform"));
      break;
    case PICK_UNDER_INCLUDE_OR_SCRIPTS:
      take = inside && S_ISREG(st.st_mode);
      break;
    }
    if (take)
      r = fileset_add(fs, crel, cabs);
  }
  closedir(d);
  return r;
}

static int add_makefiles(struct fileset *fs, const char *base, const char *rel) {
  _cleanup_free_ char *dir = strjoin_path(base, rel);
  DIR *d = dir ? opendir(dir) : NULL;
  if (!d)
    return dir ? 0 : -ENOMEM;
  int r = 0;
  struct dirent *de;
  while (r >= 0 && (de = readdir(d)))
    if (startswith(de->d_name, "Makefile")) {
      _cleanup_free_ char *crel =
          *rel ? kgb_strdup_printf("%s/%s", rel, de->d_name) : strdup(de->d_name);
      _cleanup_free_ char *cabs = crel ? strjoin_path(base, crel) : NULL;
      r = cabs ? (is_file(cabs) ? fileset_add(fs, crel, cabs) : 0) : -ENOMEM;
    }
  closedir(d);
  return r;
}

static int collect_headers(const char *src, const char *obj, const char *srcarch,
                           struct fileset *fs) {
  _cleanup_free_ char *archdir = kgb_strdup_printf("arch/%s", srcarch);
  _cleanup_free_ char *archinc = kgb_strdup_printf("arch/%s/include", srcarch);
  if (!archdir || !archinc)
    return -ENOMEM;
  int r;
  if ((r = add_makefiles(fs, src, "")) < 0 || (r = add_makefiles(fs, src, archdir)) < 0 ||
      (r = walk(fs, src, "include", PICK_ALL, false)) < 0 ||
      (r = walk(fs, src, "scripts", PICK_ALL, false)) < 0 ||
      (r = walk(fs, src, archdir, PICK_PLATFORM, false)) < 0 ||
      (r = walk(fs, src, archdir, PICK_UNDER_INCLUDE_OR_SCRIPTS, false)) < 0)
    return r;
  /* what the build generated: headers, host tools, symbol versions */
  if ((r = walk(fs, obj, archinc, PICK_FILES, false)) < 0 ||
      (r = walk(fs, obj, "include", PICK_FILES, false)) < 0 ||
      (r = walk(fs, obj, "scripts", PICK_FILES, false)) < 0)
    return r;
  static const char *const singles[] = {"Module.symvers", "tools/objtool/objtool", ".config"};
  for (size_t i = 0; i < ELEMENTSOF(singles); i++) {
    _cleanup_free_ char *a = strjoin_path(obj, singles[i]);
    if (!a)
      return -ENOMEM;
    if (is_file(a) && (r = fileset_add(fs, singles[i], a)) < 0)
      return r;
  }
  return 0;
}

static int write_headers_tar(struct kgb_ctx *ctx, const struct kgb_build_result *b,
                             const char *srcarch, const char *out) {
  struct fileset fs = {HASHMAP_INIT, NULL, NULL};
  int r = collect_headers(b->config->source->dir, b->objdir, srcarch, &fs);
  if (r < 0) {
    fileset_release(&fs);
    return kgb_error(ctx, r, "collecting the header files: %s", strerror(-r));
  }
  size_t n = strv_length(fs.rel);
  _cleanup_free_ char **sorted = malloc((n + 1) * sizeof(char *));
  if (!sorted) {
    fileset_release(&fs);
    return -ENOMEM;
  }
  memcpy(sorted, fs.rel, n * sizeof(char *));
  sorted[n] = NULL;
  strv_sort(sorted);
  _cleanup_free_ char *tmp = kgb_strdup_printf("%s.tmp.XXXXXX", out);
  _cleanup_close_ int fd = tmp ? mkostemp(tmp, O_CLOEXEC) : -1;
  if (fd < 0) {
    fileset_release(&fs);
    return tmp ? kgb_error(ctx, -errno, "cannot create '%s': %m", out) : -ENOMEM;
  }
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_add_filter_gzip(a);
  archive_write_set_filter_option(a, "gzip", "timestamp", NULL); /* no time in the header */
  archive_write_open_fd(a, fd);
  _cleanup_free_ char *top = kgb_strdup_printf("linux-headers-%s", b->release);
  char buf[65536];
  for (size_t i = 0; r >= 0 && i < n; i++) {
    const char *abs = hashmap_get(&fs.map, sorted[i]);
    struct stat st;
    if (lstat(abs, &st) < 0) {
      r = kgb_error(ctx, -errno, "'%s': %m", abs);
      break;
    }
    _cleanup_free_ char *name = kgb_strdup_printf("%s/%s", top, sorted[i]);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_mode(e, st.st_mode & (S_IFMT | 0755));
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    archive_entry_set_mtime(e, st.st_mtime < b->epoch ? st.st_mtime : b->epoch, 0);
    if (S_ISLNK(st.st_mode)) {
      char target[4096];
      ssize_t l = readlink(abs, target, sizeof(target) - 1);
      target[l > 0 ? l : 0] = '\0';
      archive_entry_set_symlink(e, target);
      archive_entry_set_size(e, 0);
    } else {
      archive_entry_set_size(e, st.st_size);
    }
    if (archive_write_header(a, e) != ARCHIVE_OK)
      r = kgb_error(ctx, -EIO, "'%s': %s", out, archive_error_string(a));
    archive_entry_free(e);
    if (r >= 0 && S_ISREG(st.st_mode)) {
      _cleanup_close_ int in = open(abs, O_RDONLY | O_CLOEXEC);
      ssize_t k;
      while (in >= 0 && (k = read(in, buf, sizeof(buf))) > 0)
        if (archive_write_data(a, buf, (size_t)k) != k) {
          r = kgb_error(ctx, -EIO, "'%s': %s", out, archive_error_string(a));
          break;
        }
      if (in < 0)
        r = kgb_error(ctx, -errno, "'%s': %m", abs);
    }
  }
  if (archive_write_close(a) != ARCHIVE_OK && r >= 0)
    r = kgb_error(ctx, -EIO, "'%s': %s", out, archive_error_string(a));
  archive_write_free(a);
  fileset_release(&fs);
  if (r >= 0 && fsync(fd) < 0)
    r = -errno;
  if (r >= 0 && rename(tmp, out) < 0)
    r = kgb_error(ctx, -errno, "cannot rename '%s': %m", tmp);
  if (r < 0)
    unlink(tmp);
  return r;
}

/* Moves the packages the kernel's packaging wrote next to the O= directory into dir. */
static int collect_packages(struct kgb_ctx *ctx, const char *from, const char *marker,
                            const char *dir, char ***files) {
  DIR *d = opendir(from);
  if (!d)
    return kgb_error(ctx, -errno, "cannot list '%s': %m", from);
  int r = 0;
  struct dirent *de;
  while (r >= 0 && (de = readdir(d))) {
    if (!strstr(de->d_name, marker) ||
        !(endswith(de->d_name, ".deb") || endswith(de->d_name, ".rpm") ||
          endswith(de->d_name, ".buildinfo") || endswith(de->d_name, ".changes")))
      continue;
    _cleanup_free_ char *src = strjoin_path(from, de->d_name), *dst = strjoin_path(dir, de->d_name);
    if (!src || !dst)
      r = -ENOMEM;
    else if (rename(src, dst) < 0)
      r = kgb_error(ctx, -errno, "cannot move '%s': %m", src);
    else if (endswith(dst, ".deb") || endswith(dst, ".rpm"))
      r = strv_push(files, TAKE_PTR(dst));
  }
  closedir(d);
  return r;
}

static int header_first(const void *a, const void *b) {
  const char *x = *(char *const *)a, *y = *(char *const *)b;
  bool hx = strstr(x, "headers") != NULL, hy = strstr(y, "headers") != NULL;
  return hx != hy ? (hx ? -1 : 1) : strcmp(x, y);
}

int kgb_kernel_headers(struct kgb_ctx *ctx, const struct kgb_profile *p,
                       const struct kgb_build_opts *o, const struct kgb_build_result *b,
                       enum kgb_headers_format fmt, struct kgb_headers_result **ret) {
  _cleanup_(kgb_headers_result_freep) struct kgb_headers_result *h = calloc(1, sizeof(*h));
  if (!h)
    return -ENOMEM;
  _cleanup_free_ char *rpmbuild = fmt == KGB_HEADERS_RPM ? find_program("rpmbuild") : NULL;
  if (fmt == KGB_HEADERS_RPM && !rpmbuild)
    return kgb_error(ctx, -ENOENT,
                     "-H rpm needs rpmbuild, which is not installed: apt-get install "
                     "rpm, or use -H deb or -H tar");
  const char *build_key = strrchr(b->stage_dir, '/') + 1;
  _cleanup_free_ char *keysrc = kgb_strdup_printf("%s\n%s\n%s\n", KGB_HEADERS_STAGE_VERSION,
                                                  build_key, kgb_headers_format_table[fmt]);
  if (!keysrc)
    return -ENOMEM;
  _cleanup_(kgb_stage_freep) struct kgb_stage *st = NULL;
  int r = kgb_stage_open(ctx, "headers", keysrc, "files", &st);
  if (r < 0)
    return r;
  if (!(h->stage_dir = strdup(st->dir)))
    return -ENOMEM;
  if (st->cached) {
    _cleanup_free_ char *manifest = strjoin_path(st->dir, "files"), *list = NULL;
    if (!manifest)
      return -ENOMEM;
    if ((r = read_full_file(manifest, &list, NULL)) < 0)
      return kgb_error(ctx, r, "cannot read '%s': %s", manifest, strerror(-r));
    for (char *line = strtok(list, "\n"); line; line = strtok(NULL, "\n"))
      if (strv_push(&h->files, strjoin_path(h->stage_dir, line)) < 0)
        return -ENOMEM;
    h->cached = true;
    *ret = TAKE_PTR(h);
    return 0;
  }
  _cleanup_free_ char *parent = strdup(b->objdir);
  if (!parent)
    return -ENOMEM;
  *strrchr(parent, '/') = '\0';
  const char *tmp = st->tmp;
  _cleanup_strv_free_ char **files = NULL;
  _cleanup_free_ char *suffix = kgb_kata_suffix(p);
  _cleanup_free_ char *kver = suffix ? kgb_kata_kver(b->release, suffix) : NULL;
  /* a fixed package version: the default one counts builds and breaks reproducibility */
  _cleanup_free_ char *pkgver = kver ? kgb_strdup_printf("%s-%d", kver, p->kernel.cfgver) : NULL;
  _cleanup_free_ char *e_ver = pkgver ? kgb_strdup_printf("KDEB_PKGVERSION=%s", pkgver) : NULL;
  if (!e_ver)
    r = -ENOMEM;
  else if (fmt == KGB_HEADERS_TAR) {
    _cleanup_free_ char *out = kgb_strdup_printf("%s/linux-headers-%s.tar.gz", tmp, b->release);
    r = out ? kgb_build_sync(ctx, p, o, b) : -ENOMEM;
    if (r >= 0)
      r = write_headers_tar(ctx, b, kgb_srcarch(p->kernel.arch), out);
    if (r >= 0)
      r = strv_push(&files, TAKE_PTR(out));
  } else if (fmt == KGB_HEADERS_DEB) {
    char *targets[] = {"bindeb-pkg", NULL};
    char *env[] = {e_ver, NULL};
    kgb_progress(ctx, "building the Debian packages", 0, 0);
    r = kgb_build_make(ctx, p, o, b, targets, env, "building the Debian packages (bindeb-pkg)");
    if (r >= 0)
      r = collect_packages(ctx, parent, pkgver, tmp, &files);
  } else {
    _cleanup_free_ char *rpmopts = kgb_strdup_printf("RPMOPTS=--define '_topdir %s/rpmbuild'", tmp);
    char *targets[] = {rpmopts, "binrpm-pkg", NULL};
    r = rpmopts ? kgb_build_make(ctx, p, o, b, targets, NULL, "building the RPM packages")
                : -ENOMEM;
    _cleanup_free_ char *rpms = kgb_strdup_printf("%s/rpmbuild/RPMS/%s", tmp, p->kernel.arch);
    if (r >= 0)
      r = rpms ? collect_packages(ctx, rpms, "", tmp, &files) : -ENOMEM;
  }
  if (r >= 0 && strv_length(files) == 0)
    r = kgb_error(ctx, -ENOENT, "the kernel's packaging produced no package; see '%s'",
                  b->log_path);
  if (r < 0)
    return r;
  qsort(files, strv_length(files), sizeof(char *), header_first);
  struct sbuf list = SBUF_INIT, m = SBUF_INIT;
  kgb_manifest_begin(&m, "headers", st->key);
  kgb_manifest_string(&m, "release", b->release);
  sbuf_addf(&m, ",\n  \"format\": \"%s\",\n  \"files\": [", kgb_headers_format_table[fmt]);
  for (size_t i = 0; files[i]; i++) {
    sbuf_addf(&list, "%s\n", strrchr(files[i], '/') + 1);
    sbuf_adds(&m, i ? ", " : "");
    sbuf_add_json(&m, strrchr(files[i], '/') + 1);
  }
  sbuf_adds(&m, "]\n}\n");
  _cleanup_free_ char *lpath = strjoin_path(tmp, "files");
  r = !lpath || list.err ? -ENOMEM : write_file_atomic(lpath, sbuf_str(&list), list.len, 0644);
  if (r >= 0)
    r = kgb_stage_commit(st, &m);
  sbuf_release(&list);
  sbuf_release(&m);
  if (r < 0)
    return r;
  for (size_t i = 0; files[i]; i++) {
    r = strv_push(&h->files, strjoin_path(h->stage_dir, strrchr(files[i], '/') + 1));
    if (r < 0)
      return r;
  }
  *ret = TAKE_PTR(h);
  return 0;
}
