/* Kernel source preparation. A tarball is extracted with libarchive into a temporary
 * directory next to its final place and renamed only when complete, so an interrupted or
 * failed extraction never leaves a tree that looks finished. */
#define _GNU_SOURCE
#include "source.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../shared/sbuf.h"
#include "../shared/util.h"
#include "fetch.h"

struct kgb_source *kgb_source_free(struct kgb_source *s) {
  if (!s)
    return NULL;
  free(s->dir);
  free(s->key);
  free(s->version);
  free(s);
  return NULL;
}

static int make_var(const char *makefile, const char *name, char **ret) {
  size_t n = strlen(name);
  for (const char *p = makefile; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
    if (strncmp(p, name, n) != 0)
      continue;
    const char *q = p + n;
    while (*q == ' ' || *q == '\t')
      q++;
    if (*q != '=')
      continue;
    q++;
    while (*q == ' ' || *q == '\t')
      q++;
    const char *e = q;
    while (*e && *e != '\n' && *e != ' ' && *e != '\t')
      e++;
    *ret = strndup(q, (size_t)(e - q));
    return *ret ? 0 : -ENOMEM;
  }
  return -ENOENT;
}

int kgb_source_check_tree(struct kgb_ctx *ctx, const char *dir, char **ret_version) {
  static const char *const need[] = {"Makefile", "Kconfig", "scripts/kconfig/Makefile"};
  for (size_t i = 0; i < ELEMENTSOF(need); i++) {
    _cleanup_free_ char *p = strjoin_path(dir, need[i]);
    if (!p)
      return -ENOMEM;
    if (!is_file(p))
      return kgb_error(ctx, -ENOENT,
                       "'%s' is not a kernel source tree: '%s' is missing; pass the top "
                       "directory of a Linux source tree or its tarball",
                       dir, need[i]);
  }
  _cleanup_free_ char *mk = strjoin_path(dir, "Makefile"), *text = NULL, *v = NULL, *p = NULL,
                      *s = NULL;
  if (!mk)
    return -ENOMEM;
  int r = read_full_file(mk, &text, NULL);
  if (r < 0)
    return kgb_error(ctx, r, "cannot read '%s': %s", mk, strerror(-r));
  if (make_var(text, "VERSION", &v) < 0 || make_var(text, "PATCHLEVEL", &p) < 0)
    return kgb_error(ctx, -EINVAL, "'%s' has no VERSION/PATCHLEVEL: not a kernel Makefile", mk);
  if (make_var(text, "SUBLEVEL", &s) < 0 || !*s) {
    free(s);
    s = strdup("0");
  }
  *ret_version = kgb_strdup_printf("%s.%s.%s", v, p, s ? s : "0");
  return *ret_version ? 0 : -ENOMEM;
}

/* An archive entry name is acceptable when it is relative and never climbs out. */
static bool safe_entry_path(const char *name) {
  if (!name || !*name || name[0] == '/')
    return false;
  for (const char *p = name; *p;) {
    const char *e = strchr(p, '/');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n == 2 && p[0] == '.' && p[1] == '.')
      return false;
    p += n;
    while (*p == '/')
      p++;
  }
  return true;
}

static int archive_err(struct kgb_ctx *ctx, struct archive *a, const char *archive, int fallback) {
  int e = archive_errno(a);
  const char *msg = archive_error_string(a);
  if (!msg)
    msg = "archive error";
  /* libarchive's text often omits the system's reason ("Write failed"): add it */
  if (e > 0 && !strstr(msg, strerror(e)))
    return kgb_error(ctx, -e, "'%s': %s: %s", archive, msg, strerror(e));
  return kgb_error(ctx, e > 0 ? -e : fallback, "'%s': %s", archive, msg);
}

/* name below dir: "./a" and "a" are dir/a, "." and "./" are dir itself. */
static char *entry_dest(const char *dir, const char *name) {
  while (name[0] == '.' && name[1] == '/')
    name += 2 + strspn(name + 2, "/");
  return !*name || STREQ(name, ".") ? strdup(dir) : strjoin_path(dir, name);
}

int kgb_archive_extract_into(struct kgb_ctx *ctx, const char *archive, const char *tmp,
                             const struct kgb_extract_opts *o) {
  struct archive *in = archive_read_new(), *out = archive_write_disk_new();
  int r = 0;
  if (!in || !out) {
    r = -ENOMEM;
    goto finish;
  }
  archive_read_support_filter_all(in);
  archive_read_support_format_all(in);
  int flags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
              ARCHIVE_EXTRACT_SECURE_NODOTDOT;
  /* a root file system keeps the archive's numeric owners (no lookup in the host's passwd),
   * extended attributes (file capabilities), ACLs and flags */
  if (o->as_root)
    flags |= ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_ACL |
             ARCHIVE_EXTRACT_FFLAGS;
  archive_write_disk_set_options(out, flags);
  /* Entry names were checked by safe_entry_path() and are prefixed with the absolute
   * temporary directory, so NOABSOLUTEPATHS cannot be set here. */
  if (!o->as_root)
    archive_write_disk_set_standard_lookup(out);
  struct stat st;
  uint64_t total = stat(archive, &st) == 0 ? (uint64_t)st.st_size : 0;
  if (archive_read_open_filename(in, archive, 1 << 16) != ARCHIVE_OK) {
    r = archive_err(ctx, in, archive, -EINVAL);
    goto finish;
  }
  struct archive_entry *e;
  unsigned long count = 0, skipped = 0;
  for (;;) {
    int ar = archive_read_next_header(in, &e);
    if (ar == ARCHIVE_EOF)
      break;
    if (ar < ARCHIVE_WARN) {
      r = archive_err(ctx, in, archive, -EINVAL);
      goto finish;
    }
    const char *name = archive_entry_pathname(e);
    const char *link = archive_entry_hardlink(e);
    if (!safe_entry_path(name) || (link && !safe_entry_path(link))) {
      r = kgb_error(ctx, -EPERM,
                    "'%s': entry '%s' has an absolute path or '..': refused, nothing extracted",
                    archive, name ? name : "");
      goto finish;
    }
    /* A source tree holds files, directories and links: device nodes, FIFOs and sockets are
     * left out, and so are set-id bits and write access for others (a "./" entry of mode
     * 0777 would make the work directory's sources/<key>/ world-writable). */
    if (!o->as_root) {
      mode_t type = archive_entry_filetype(e);
      if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
        skipped++;
        continue;
      }
      archive_entry_set_perm(e, archive_entry_perm(e) & ~(mode_t)(S_ISUID | S_ISGID | S_IWOTH));
    }
    _cleanup_free_ char *dest = entry_dest(tmp, name);
    _cleanup_free_ char *ldest = link ? entry_dest(tmp, link) : NULL;
    if (!dest || (link && !ldest)) {
      r = -ENOMEM;
      goto finish;
    }
    archive_entry_set_pathname(e, dest);
    if (link)
      archive_entry_set_hardlink(e, ldest);
    ar = archive_write_header(out, e);
    if (ar == ARCHIVE_OK && archive_entry_size(e) > 0) {
      const void *buf;
      size_t len;
      la_int64_t off;
      while ((ar = archive_read_data_block(in, &buf, &len, &off)) == ARCHIVE_OK)
        if (archive_write_data_block(out, buf, len, off) < ARCHIVE_OK) {
          r = archive_err(ctx, out, archive, -EIO);
          goto finish;
        }
      if (ar != ARCHIVE_EOF) {
        r = archive_err(ctx, in, archive, -EIO);
        goto finish;
      }
    } else if (ar < ARCHIVE_WARN) {
      r = archive_err(ctx, out, archive, -EIO);
      goto finish;
    }
    if (archive_write_finish_entry(out) < ARCHIVE_WARN) {
      r = archive_err(ctx, out, archive, -EIO);
      goto finish;
    }
    if (++count % 2000 == 0) {
      if (o->progress)
        kgb_progress(ctx, o->progress, (uint64_t)archive_filter_bytes(in, -1), total);
      if (kgb_cancelled(ctx)) {
        r = -ECANCELED;
        goto finish;
      }
    }
  }
  if (archive_write_close(out) != ARCHIVE_OK)
    r = archive_err(ctx, out, archive, -EIO);
  if (r == 0 && count == 0)
    r = kgb_error(ctx, -ENODATA, "'%s': the archive is empty", archive);
  if (r == 0 && skipped)
    kgb_info(ctx, "'%s': left out %lu device nodes, FIFOs or sockets (no place in a source tree)",
             archive, skipped);
  if (r == 0 && o->progress)
    kgb_progress(ctx, o->progress, total, total);
finish:
  archive_read_free(in);
  archive_write_free(out);
  return r;
}

int kgb_archive_extract(struct kgb_ctx *ctx, const char *archive, const char *dest) {
  _cleanup_free_ char *tmpl = kgb_strdup_printf("%s.tmp-XXXXXX", dest);
  if (!tmpl)
    return -ENOMEM;
  _cleanup_free_ char *parent = strdup(dest);
  if (!parent)
    return -ENOMEM;
  char *slash = strrchr(parent, '/');
  if (slash && slash != parent) {
    *slash = '\0';
    int r = mkdir_p(parent, 0755);
    if (r < 0)
      return kgb_error(ctx, r, "cannot create '%s': %s", parent, strerror(-r));
  }
  if (!mkdtemp(tmpl))
    return kgb_error(ctx, -errno, "cannot create a directory next to '%s': %m", dest);
  int r = kgb_archive_extract_into(ctx, archive, tmpl,
                                   &(struct kgb_extract_opts){.progress = "extracting source"});
  /* Another run may have finished the same extraction meanwhile: its tree is as good. */
  if (r == 0 && rename(tmpl, dest) < 0 &&
      !((errno == EEXIST || errno == ENOTEMPTY) && is_dir(dest)))
    r = kgb_error(ctx, -errno, "cannot rename '%s' to '%s': %m", tmpl, dest);
  if (r == 0 && is_dir(tmpl))
    rm_rf(tmpl);
  if (r < 0)
    rm_rf(tmpl);
  return r;
}

/* The kernel tree inside an extracted archive: the top itself or its only directory. */
static int find_tree(const char *top, char **ret) {
  _cleanup_free_ char *mk = strjoin_path(top, "Makefile");
  if (mk && is_file(mk)) {
    *ret = strdup(top);
    return *ret ? 0 : -ENOMEM;
  }
  DIR *d = opendir(top);
  if (!d)
    return -errno;
  char *found = NULL;
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.')
      continue;
    _cleanup_free_ char *p = strjoin_path(top, de->d_name);
    if (p && is_dir(p) && n++ == 0)
      found = TAKE_PTR(p);
  }
  closedir(d);
  if (n != 1) {
    free(found);
    return -ENOENT;
  }
  *ret = found;
  return 0;
}

int kgb_source_extracted(struct kgb_ctx *ctx, const char *source_key, char **ret_dir) {
  _cleanup_free_ char *dest = kgb_strdup_printf("%s/sources/%s", ctx->workdir, source_key);
  if (!dest)
    return -ENOMEM;
  if (!is_dir(dest))
    return -ENOENT;
  return find_tree(dest, ret_dir);
}

static bool is_tarball(const char *p) {
  static const char *const ext[] = {".tar", ".tar.xz",  ".txz",     ".tar.gz",
                                    ".tgz", ".tar.zst", ".tar.bz2", ".tbz2"};
  for (size_t i = 0; i < ELEMENTSOF(ext); i++)
    if (endswith(p, ext[i]))
      return true;
  return false;
}

int kgb_source_prepare(struct kgb_ctx *ctx, const char *spec, const char *sha256,
                       struct kgb_source **ret) {
  _cleanup_(kgb_source_freep) struct kgb_source *s = calloc(1, sizeof(*s));
  if (!s)
    return -ENOMEM;
  _cleanup_free_ char *downloaded = NULL;
  if (strstr(spec, "://")) {
    struct kgb_fetch_opts fo;
    kgb_fetch_opts_init(&fo);
    fo.sha256 = sha256;
    int r = kgb_fetch_file(ctx, spec, &fo, &downloaded);
    if (r < 0)
      return r;
    spec = downloaded; /* named by its hash: libarchive tells the format from the content */
  }
  struct stat st;
  if (stat(spec, &st) < 0)
    return kgb_error(ctx, -errno, "kernel source '%s': %m", spec);
  if (S_ISDIR(st.st_mode)) {
    char *real = realpath(spec, NULL);
    if (!real)
      return -errno;
    s->dir = real;
    int r = kgb_source_check_tree(ctx, s->dir, &s->version);
    if (r < 0)
      return r;
    /* A tree used in place is identified by its path and version. */
    _cleanup_free_ char *id = kgb_strdup_printf("dir:%s:%s", s->dir, s->version);
    char hex[65];
    if (!id || kgb_sha256_hex(id, strlen(id), hex) < 0 || !(s->key = strdup(hex)))
      return -ENOMEM;
    *ret = TAKE_PTR(s);
    return 0;
  }
  if (!S_ISREG(st.st_mode) || (!downloaded && !is_tarball(spec)))
    return kgb_error(ctx, -EINVAL,
                     "kernel source '%s' is neither a directory nor a tarball (.tar, .tar.xz, "
                     ".tar.gz, .tar.zst, .tar.bz2)",
                     spec);
  int r = kgb_sha256_file(ctx, spec, &s->key);
  if (r < 0)
    return r;
  _cleanup_free_ char *dest = kgb_strdup_printf("%s/sources/%s", ctx->workdir, s->key);
  if (!dest)
    return -ENOMEM;
  if (!is_dir(dest)) {
    kgb_info(ctx, "extracting '%s' into the work directory (once per tarball)", spec);
    r = kgb_archive_extract(ctx, spec, dest);
    if (r < 0)
      return r;
    s->extracted = true;
  }
  r = find_tree(dest, &s->dir);
  if (r < 0) {
    /* nothing can ever use it: the same tarball extracts to the same tree */
    rm_rf(dest);
    return kgb_error(ctx, -ENOENT,
                     "'%s' holds no kernel tree (no Makefile at its top or in its "
                     "only directory)",
                     spec);
  }
  r = kgb_source_check_tree(ctx, s->dir, &s->version);
  if (r < 0) {
    rm_rf(dest);
    return r;
  }
  *ret = TAKE_PTR(s);
  return 0;
}
