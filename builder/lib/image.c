/* Images and archives of a root file system tree: the walk (sorted, links never followed),
 * the archive writer, the init check, ext4 and erofs in Kata's partitioned layout, and the
 * size report. Everything that could vary between two runs over the same tree is fixed:
 * times (SOURCE_DATE_EPOCH), order, inode numbers, UUIDs, hash seeds and disk signatures
 * (derived from a seed, the stage key). */
#define _GNU_SOURCE
#include "image.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../shared/hashmap.h"
#include "../shared/sbuf.h"
#include "../shared/string-table.h"
#include "../shared/util.h"
#include "chroot.h"
#include "exec.h"
#include "source.h"

static const char *const kgb_image_format_table[_KGB_IMAGE_FORMAT_MAX] = {"ext4", "erofs",
                                                                          "initrd"};
DEFINE_STRING_TABLE_LOOKUP(kgb_image_format, enum kgb_image_format);

static const char *const kgb_compression_table[_KGB_COMPRESS_MAX] = {"none", "gzip", "zstd",
                                                                     "zstd-fast"};
DEFINE_STRING_TABLE_LOOKUP(kgb_compression, enum kgb_compression);

/* ---- the walk ---- */

struct entry {
  char *path; /* relative to the root, "" for the root itself */
  struct stat st;
};

struct tree {
  struct entry *v;
  size_t n, cap;
};

static void tree_release(struct tree *t) {
  for (size_t i = 0; i < t->n; i++)
    free(t->v[i].path);
  free(t->v);
  *t = (struct tree){0};
}

static int tree_add(struct tree *t, char *path, const struct stat *st) {
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 1024;
    struct entry *v = realloc(t->v, cap * sizeof(*v));
    if (!v) {
      free(path);
      return -ENOMEM;
    }
    t->v = v;
    t->cap = cap;
  }
  t->v[t->n++] = (struct entry){path, *st};
  return 0;
}

static int walk(struct kgb_ctx *ctx, const char *root, const char *rel, struct tree *t) {
  _cleanup_free_ char *dir = *rel ? kgb_strdup_printf("%s/%s", root, rel) : strdup(root);
  if (!dir)
    return -ENOMEM;
  DIR *d = opendir(dir);
  if (!d)
    return kgb_error(ctx, -errno, "cannot read '%s': %m", dir);
  int r = 0;
  struct dirent *de;
  while (r >= 0 && (de = readdir(d))) {
    if (STREQ(de->d_name, ".") || STREQ(de->d_name, ".."))
      continue;
    char *sub = *rel ? kgb_strdup_printf("%s/%s", rel, de->d_name) : strdup(de->d_name);
    if (!sub) {
      r = -ENOMEM;
      break;
    }
    struct stat st;
    if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      r = kgb_error(ctx, -errno, "cannot stat '%s/%s': %m", root, sub);
      free(sub);
      break;
    }
    if ((r = tree_add(t, sub, &st)) < 0)
      break;
    if (S_ISDIR(st.st_mode))
      r = walk(ctx, root, sub, t);
  }
  closedir(d);
  return r;
}

static int cmp_entry(const void *a, const void *b) {
  return strcmp(((const struct entry *)a)->path, ((const struct entry *)b)->path);
}

/* Every entry of root, the root first, sorted by path. */
static int tree_collect(struct kgb_ctx *ctx, const char *root, struct tree *t) {
  struct stat st;
  if (lstat(root, &st) < 0 || !S_ISDIR(st.st_mode))
    return kgb_error(ctx, -ENOTDIR, "'%s' is not a directory", root);
  char *top = strdup("");
  int r = top ? tree_add(t, top, &st) : -ENOMEM;
  if (r >= 0)
    r = walk(ctx, root, "", t);
  if (r < 0) {
    tree_release(t);
    return r;
  }
  qsort(t->v, t->n, sizeof(*t->v), cmp_entry);
  return 0;
}

/* ---- archives ---- */

static int archive_fail(struct kgb_ctx *ctx, struct archive *a, const char *what) {
  int e = archive_errno(a);
  const char *msg = archive_error_string(a);
  return kgb_error(ctx, e > 0 ? -e : -EIO, "%s: %s", what, msg ? msg : "archive error");
}

static int set_compression(struct kgb_ctx *ctx, struct archive *a, enum kgb_compression c) {
  int ar = ARCHIVE_OK;
  switch (c) {
  case KGB_COMPRESS_NONE:
    return 0;
  case KGB_COMPRESS_GZIP:
    ar = archive_write_add_filter_gzip(a);
    /* no mtime in the gzip header */
    if (ar == ARCHIVE_OK)
      ar = archive_write_set_filter_option(a, "gzip", "timestamp", NULL);
    if (ar == ARCHIVE_OK)
      ar = archive_write_set_filter_option(a, "gzip", "compression-level", "6");
    break;
  case KGB_COMPRESS_ZSTD:
  case KGB_COMPRESS_ZSTD_FAST:
    ar = archive_write_add_filter_zstd(a);
    if (ar == ARCHIVE_OK)
      ar = archive_write_set_filter_option(a, "zstd", "compression-level",
                                           c == KGB_COMPRESS_ZSTD ? "9" : "1");
    break;
  default:
    return -EINVAL;
  }
  return ar == ARCHIVE_OK ? 0 : archive_fail(ctx, a, "setting up compression");
}

static int write_data(struct kgb_ctx *ctx, struct archive *a, const char *path) {
  _cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return kgb_error(ctx, -errno, "cannot open '%s': %m", path);
  char buf[1 << 16];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0)
    if (archive_write_data(a, buf, (size_t)n) != n)
      return archive_fail(ctx, a, path);
  return n < 0 ? kgb_error(ctx, -errno, "cannot read '%s': %m", path) : 0;
}

/* Inode numbers: hard links share one, counted from 1 in path order. */
struct inodes {
  struct hashmap map; /* "dev:ino" -> number, for files with several links */
  char **keys;
  unsigned long next;
};

static int inode_number(struct inodes *in, const struct stat *st, unsigned long *ret) {
  if (S_ISDIR(st->st_mode) || st->st_nlink < 2) {
    *ret = ++in->next;
    return 0;
  }
  char *key = kgb_strdup_printf("%lu:%lu", (unsigned long)st->st_dev, (unsigned long)st->st_ino);
  if (!key)
    return -ENOMEM;
  void *v = hashmap_get(&in->map, key);
  if (v) {
    free(key);
    *ret = (unsigned long)(uintptr_t)v;
    return 0;
  }
  int r = strv_push(&in->keys, key);
  if (r < 0)
    return r;
  *ret = ++in->next;
  return hashmap_put(&in->map, key, (void *)(uintptr_t)*ret);
}

static int write_linked(struct kgb_ctx *ctx, struct archive *a, const char *root,
                        struct archive_entry *w) {
  if (archive_write_header(a, w) < ARCHIVE_WARN)
    return archive_fail(ctx, a, archive_entry_pathname(w));
  if (archive_entry_filetype(w) != AE_IFREG || archive_entry_size(w) <= 0)
    return 0;
  const char *src = archive_entry_sourcepath(w);
  _cleanup_free_ char *p = src ? strdup(src) : strjoin_path(root, archive_entry_pathname(w));
  return p ? write_data(ctx, a, p) : -ENOMEM;
}

static int write_entry(struct kgb_ctx *ctx, struct archive *a,
                       struct archive_entry_linkresolver *lr, struct archive *disk,
                       const char *root, const struct entry *e, unsigned long ino, long long epoch,
                       bool tar) {
  _cleanup_free_ char *full = *e->path ? kgb_strdup_printf("%s/%s", root, e->path) : strdup(root);
  _cleanup_free_ char *name = *e->path ? strdup(e->path) : strdup(".");
  if (!full || !name)
    return -ENOMEM;
  struct archive_entry *ae = archive_entry_new();
  if (!ae)
    return -ENOMEM;
  int r = 0;
  if (tar) {
    /* extended attributes (file capabilities) and ACLs are read from the file itself */
    archive_entry_copy_sourcepath(ae, full);
    if (archive_read_disk_entry_from_file(disk, ae, -1, &e->st) < ARCHIVE_WARN)
      r = archive_fail(ctx, disk, full);
  } else {
    archive_entry_copy_stat(ae, &e->st);
  }
  if (r >= 0) {
    archive_entry_set_pathname(ae, name);
    archive_entry_set_uname(ae, NULL);
    archive_entry_set_gname(ae, NULL);
    archive_entry_set_dev(ae, 0);
    archive_entry_set_ino(ae, (la_int64_t)ino);
    time_t mt = e->st.st_mtime > epoch ? (time_t)epoch : e->st.st_mtime;
    archive_entry_set_mtime(ae, mt, 0);
    archive_entry_unset_atime(ae);
    archive_entry_unset_ctime(ae);
    archive_entry_unset_birthtime(ae);
    if (!S_ISREG(e->st.st_mode))
      archive_entry_set_size(ae, 0);
    if (S_ISLNK(e->st.st_mode)) {
      char target[4096];
      ssize_t n = readlink(full, target, sizeof(target) - 1);
      if (n < 0)
        r = kgb_error(ctx, -errno, "cannot read the link '%s': %m", full);
      else {
        target[n] = '\0';
        archive_entry_set_symlink(ae, target);
      }
    }
  }
  if (r < 0) {
    archive_entry_free(ae);
    return r;
  }
  /* cpio carries a linked file's data with its last link: linkify holds entries back and
   * hands them out later; whatever it hands out is ours to write and free */
  struct archive_entry *spare = NULL;
  archive_entry_linkify(lr, &ae, &spare);
  if (ae)
    r = write_linked(ctx, a, root, ae);
  if (spare && r >= 0)
    r = write_linked(ctx, a, root, spare);
  archive_entry_free(ae);
  archive_entry_free(spare);
  return r;
}

static int write_init_link(struct kgb_ctx *ctx, struct archive *a, const char *target,
                           long long epoch, unsigned long ino) {
  struct archive_entry *ae = archive_entry_new();
  if (!ae)
    return -ENOMEM;
  archive_entry_set_pathname(ae, "init");
  archive_entry_set_filetype(ae, AE_IFLNK);
  archive_entry_set_perm(ae, 0777);
  archive_entry_set_size(ae, 0);
  archive_entry_set_symlink(ae, target);
  archive_entry_set_mtime(ae, (time_t)epoch, 0);
  archive_entry_set_ino(ae, (la_int64_t)ino);
  archive_entry_set_nlink(ae, 1);
  int r = archive_write_header(a, ae) < ARCHIVE_WARN ? archive_fail(ctx, a, "init") : 0;
  archive_entry_free(ae);
  return r;
}

int kgb_tree_archive(struct kgb_ctx *ctx, const char *root, const char *output,
                     enum kgb_archive_format format, enum kgb_compression compression,
                     long long epoch, const char *init_link) {
  struct tree t = {0};
  int r = tree_collect(ctx, root, &t);
  if (r < 0)
    return r;
  _cleanup_free_ char *tmp = kgb_strdup_printf("%s.tmp-XXXXXX", output);
  _cleanup_close_ int fd = tmp ? mkostemp(tmp, O_CLOEXEC) : -1;
  if (!tmp || fd < 0) {
    tree_release(&t);
    return tmp ? kgb_error(ctx, -errno, "cannot create '%s': %m", tmp) : -ENOMEM;
  }
  bool tar = format == KGB_ARCHIVE_TAR;
  struct archive *a = archive_write_new(), *disk = tar ? archive_read_disk_new() : NULL;
  struct archive_entry_linkresolver *lr = archive_entry_linkresolver_new();
  struct inodes in = {.map = HASHMAP_INIT};
  if (!a || !lr || (tar && !disk)) {
    r = -ENOMEM;
    goto finish;
  }
  if (tar) {
    archive_write_set_format_pax_restricted(a);
    archive_read_disk_set_symlink_physical(disk);
    archive_read_disk_set_behavior(disk, ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS);
  } else {
    archive_write_set_format_cpio_newc(a);
  }
  archive_entry_linkresolver_set_strategy(lr, archive_format(a));
  /* one output block size whatever the content: no padding that depends on it */
  archive_write_set_bytes_per_block(a, 512);
  if ((r = set_compression(ctx, a, compression)) < 0)
    goto finish;
  if (archive_write_open_fd(a, fd) != ARCHIVE_OK) {
    r = archive_fail(ctx, a, tmp);
    goto finish;
  }
  bool want_init = init_link != NULL;
  for (size_t i = 0; i < t.n && want_init; i++)
    want_init = !STREQ(t.v[i].path, "init");
  for (size_t i = 0; i < t.n && r >= 0; i++) {
    if (i % 1000 == 0) {
      kgb_progress(ctx, "writing the archive", i, t.n);
      if (kgb_cancelled(ctx)) {
        r = -ECANCELED;
        break;
      }
    }
    /* the added /init goes where sorting puts it */
    if (want_init && strcmp(t.v[i].path, "init") > 0) {
      want_init = false;
      if ((r = write_init_link(ctx, a, init_link, epoch, ++in.next)) < 0)
        break;
    }
    unsigned long ino;
    if ((r = inode_number(&in, &t.v[i].st, &ino)) < 0)
      break;
    if (!tar && !*t.v[i].path)
      continue; /* the kernel's initramfs needs no "." entry */
    r = write_entry(ctx, a, lr, disk, root, &t.v[i], ino, epoch, tar);
  }
  if (r >= 0 && want_init)
    r = write_init_link(ctx, a, init_link, epoch, ++in.next);
  if (r >= 0) {
    /* what linkify still holds: files whose other links are outside the tree */
    for (;;) {
      struct archive_entry *rest = NULL, *spare = NULL;
      archive_entry_linkify(lr, &rest, &spare);
      if (!rest)
        break;
      r = write_linked(ctx, a, root, rest);
      archive_entry_free(rest);
      if (r < 0)
        break;
    }
  }
  if (r >= 0 && archive_write_close(a) != ARCHIVE_OK)
    r = archive_fail(ctx, a, tmp);
  kgb_progress(ctx, "writing the archive", t.n, t.n);
finish:
  if (a)
    archive_write_free(a);
  if (disk)
    archive_read_free(disk);
  if (lr)
    archive_entry_linkresolver_free(lr);
  hashmap_release(&in.map);
  strv_free(in.keys);
  tree_release(&t);
  if (r >= 0 && fchmod(fd, 0644) < 0)
    r = -errno;
  if (r >= 0 && fsync(fd) < 0)
    r = kgb_error(ctx, -errno, "cannot write '%s': %m", tmp);
  if (r >= 0 && rename(tmp, output) < 0)
    r = kgb_error(ctx, -errno, "cannot rename '%s' to '%s': %m", tmp, output);
  if (r < 0)
    unlink(tmp);
  return r;
}

/* ---- init ---- */

int kgb_image_check_init(struct kgb_ctx *ctx, const char *root, char **ret) {
  static const char *const candidates[] = {"/init", "/sbin/init"};
  struct sbuf why = SBUF_INIT;
  for (size_t i = 0; i < ELEMENTSOF(candidates); i++) {
    _cleanup_free_ char *p = NULL;
    int r = kgb_root_resolve(root, candidates[i], true, &p);
    struct stat st;
    if (r < 0 || lstat(p, &st) < 0) {
      sbuf_addf(&why, "%s%s is missing", why.len ? ", " : "", candidates[i]);
      continue;
    }
    if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111)) {
      sbuf_addf(&why, "%s%s is not an executable file", why.len ? ", " : "", candidates[i]);
      continue;
    }
    sbuf_release(&why);
    *ret = strdup(candidates[i]);
    return *ret ? 0 : -ENOMEM;
  }
  int r = kgb_error(ctx, -ENOENT,
                    "'%s' has no init: %s; the kata-agent recipe installs the agent as init, or "
                    "the distribution's init without one",
                    root, sbuf_str(&why));
  sbuf_release(&why);
  return r;
}

/* ---- ext4 and erofs ---- */

void kgb_image_info_release(struct kgb_image_info *i) {
  free(i->uuid);
  i->uuid = NULL;
}

static void derive(const char *seed, const char *purpose, uint8_t out[32]) {
  _cleanup_free_ char *s = kgb_strdup_printf("%s:%s", seed ? seed : "", purpose);
  char hex[65];
  kgb_sha256_hex(s ? s : purpose, strlen(s ? s : purpose), hex);
  for (int i = 0; i < 32; i++)
    sscanf(hex + 2 * i, "%2hhx", &out[i]);
}

static char *derive_uuid(const char *seed, const char *purpose) {
  uint8_t b[32];
  derive(seed, purpose, b);
  b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
  b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
  return kgb_strdup_printf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                           b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                           b[12], b[13], b[14], b[15]);
}

static void put_le32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

/* CHS of an LBA for the 255-head, 63-sector geometry, saturated as partitioners do. */
static void chs(uint32_t lba, uint8_t out[3]) {
  uint32_t c = lba / (255 * 63), h = (lba / 63) % 255, s = lba % 63 + 1;
  if (c > 1023) {
    c = 1023;
    h = 254;
    s = 63;
  }
  out[0] = (uint8_t)h;
  out[1] = (uint8_t)(s | ((c >> 2) & 0xc0));
  out[2] = (uint8_t)c;
}

void kgb_mbr_build(uint8_t mbr[512], uint32_t signature, uint32_t start_sector,
                   uint32_t total_sectors) {
  memset(mbr, 0, 512);
  put_le32(mbr + 440, signature);
  uint8_t *p = mbr + 446;
  p[0] = 0x00;
  chs(start_sector, p + 1);
  p[4] = 0x83;
  chs(total_sectors - 1, p + 5);
  put_le32(p + 8, start_sector);
  put_le32(p + 12, total_sectors - start_sector);
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
}

#define MIB (1024ULL * 1024ULL)
#define PART_START MIB            /* Kata's rootfs_start: 1 MiB */
#define KATA_BOUNDARY (128 * MIB) /* Kata's mem_boundary_mb: nvdimm-mapped images */

static uint64_t round_up(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }

static uint64_t journal_blocks(uint64_t blocks) {
  /* mke2fs's ext2fs_default_journal_size() for 4 KiB blocks */
  return blocks < 32768     ? 1024
         : blocks < 262144  ? 4096
         : blocks < 524288  ? 8192
         : blocks < 4194304 ? 16384
                            : 32768;
}

/* What mkfs.ext4 -d needs for the tree, with margins; and the inode count to give it. */
static void ext4_estimate(const struct tree *t, uint64_t *ret_bytes, uint64_t *ret_inodes) {
  uint64_t blocks = 0;
  for (size_t i = 0; i < t->n; i++) {
    const struct stat *st = &t->v[i].st;
    if (S_ISREG(st->st_mode))
      blocks += ((uint64_t)st->st_size + 4095) / 4096 + ((uint64_t)st->st_size >> 22);
    else if (S_ISDIR(st->st_mode))
      blocks += 1 + (uint64_t)st->st_size / 4096;
    else if (S_ISLNK(st->st_mode) && st->st_size > 59)
      blocks += 1;
  }
  uint64_t inodes = t->n + t->n / 4 + 1024;
  uint64_t need = blocks + inodes * 256 / 4096;
  need = need + need / 20 + 1024; /* group metadata and slack: 5 % and 4 MiB */
  need += journal_blocks(need);
  need = need * 100 / 97; /* Kata's 3 % reserved for root */
  *ret_bytes = need * 4096;
  *ret_inodes = inodes;
}

static int run_tool(struct kgb_ctx *ctx, char *const *argv, char *const *env, const char *log_path,
                    const char *what) {
  struct kgb_exec_opts eo = {.env = env, .log_path = log_path};
  int r = kgb_exec(ctx, argv, &eo);
  if (r == -ENOENT) {
    kgb_error_clear(ctx); /* "cannot run 'mkfs.erofs'": what to install says more */
    return kgb_error(ctx, r, "%s is not installed: %s", argv[0],
                     STREQ(argv[0], "mkfs.erofs") ? "apt-get install erofs-utils"
                                                  : "apt-get install e2fsprogs");
  }
  if (r < 0)
    return r;
  if (r != 0) {
    _cleanup_free_ char *tail = file_tail(log_path, 15);
    return kgb_error(ctx, -EIO, "%s failed (%s exit %d):\n%s%s%s", what, argv[0], r,
                     tail ? tail : "", log_path ? "\nfull log: " : "", log_path ? log_path : "");
  }
  return 0;
}

/* debugfs's command line quoting: "..." with a quote doubled */
static int add_quoted(struct sbuf *sb, const char *path) {
  int r = sbuf_addc(sb, '"');
  for (const char *c = path; *c && r >= 0; c++)
    r = *c == '"' ? sbuf_adds(sb, "\"\"") : sbuf_addc(sb, *c);
  return r < 0 ? r : sbuf_addc(sb, '"');
}

/* mke2fs -d copies atime and ctime from the tree, and mtimes newer than the epoch: fix
 * every inode's times. */
static int ext4_times_script(struct kgb_ctx *ctx, const struct tree *t, long long epoch,
                             const char *path) {
  struct sbuf sb = SBUF_INIT;
  static const char *const fields[] = {"atime", "ctime", "crtime"};
  int r = 0;
  for (size_t i = 0; i < t->n && r >= 0; i++) {
    const struct entry *e = &t->v[i];
    if (strchr(e->path, '\n')) {
      r = kgb_error(ctx, -EINVAL, "'%s': a file name with a newline cannot go into an image",
                    e->path);
      break;
    }
    _cleanup_free_ char *p = kgb_strdup_printf("/%s", e->path);
    if (!p) {
      r = -ENOMEM;
      break;
    }
    for (size_t f = 0; f < ELEMENTSOF(fields) && r >= 0; f++) {
      r = sbuf_addf(&sb, "sif ");
      if (r >= 0)
        r = add_quoted(&sb, p);
      if (r >= 0)
        r = sbuf_addf(&sb, " %s @%lld\n", fields[f], epoch);
    }
    if (r >= 0 && (e->st.st_mtime > epoch || !*e->path)) {
      r = sbuf_addf(&sb, "sif ");
      if (r >= 0)
        r = add_quoted(&sb, p);
      if (r >= 0)
        r = sbuf_addf(&sb, " mtime @%lld\n", MIN((long long)e->st.st_mtime, epoch));
    }
  }
  if (r >= 0)
    r = write_file_atomic(path, sbuf_str(&sb), sb.len, 0644);
  sbuf_release(&sb);
  return r;
}

static int write_mbr(struct kgb_ctx *ctx, int fd, const char *seed, uint64_t total) {
  uint8_t b[32], mbr[512];
  derive(seed, "disk-signature", b);
  uint32_t sig = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
  kgb_mbr_build(mbr, sig, (uint32_t)(PART_START / 512), (uint32_t)(total / 512));
  if (pwrite(fd, mbr, sizeof(mbr), 0) != (ssize_t)sizeof(mbr))
    return kgb_error(ctx, -errno, "cannot write the partition table: %m");
  return 0;
}

static int pack_ext4(struct kgb_ctx *ctx, const char *root, const char *tmp, int fd,
                     const struct tree *t, const struct kgb_image_opts *o,
                     struct kgb_image_info *info) {
  uint64_t need, inodes;
  ext4_estimate(t, &need, &inodes);
  uint64_t free_bytes = (uint64_t)(o->free_mb > 0 ? o->free_mb : 0) * MIB;
  uint64_t total = round_up(PART_START + need + free_bytes, KATA_BOUNDARY);
  _cleanup_free_ char *uuid = derive_uuid(o->seed, "ext4-uuid");
  _cleanup_free_ char *seed_uuid = derive_uuid(o->seed, "ext4-hash-seed");
  _cleanup_free_ char *script = kgb_strdup_printf("%s.debugfs", tmp);
  _cleanup_free_ char *fake = kgb_strdup_printf("E2FSPROGS_FAKE_TIME=%lld", o->epoch);
  _cleanup_free_ char *opts =
      seed_uuid ? kgb_strdup_printf("offset=%llu,hash_seed=%s,root_owner=0:0,nodiscard",
                                    (unsigned long long)PART_START, seed_uuid)
                : NULL;
  _cleanup_free_ char *dev =
      kgb_strdup_printf("%s?offset=%llu", tmp, (unsigned long long)PART_START);
  if (!uuid || !seed_uuid || !script || !fake || !opts || !dev)
    return -ENOMEM;
  int r = ext4_times_script(ctx, t, o->epoch, script);
  if (r < 0)
    return r;
  char *env[] = {fake, "LC_ALL=C", NULL};
  for (int attempt = 0;; attempt++) {
    uint64_t fs = total - PART_START;
    uint64_t n_inodes = MAX(inodes, fs / 16384);
    _cleanup_free_ char *nstr = kgb_strdup_printf("%llu", (unsigned long long)n_inodes);
    _cleanup_free_ char *blocks = kgb_strdup_printf("%llu", (unsigned long long)(fs / 4096));
    if (!nstr || !blocks) {
      r = -ENOMEM;
      break;
    }
    if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)total) < 0) {
      r = kgb_error(ctx, -errno, "cannot size '%s': %m", tmp);
      break;
    }
    char *argv[] = {"mkfs.ext4", "-q", "-F",         "-b",          "4096", "-m", "3",
                    "-N",        nstr, "-L",         "kata-rootfs", "-U",   uuid, "-E",
                    opts,        "-d", (char *)root, (char *)tmp,   blocks, NULL};
    kgb_progress(ctx, "making the ext4 file system", 0, 0);
    r = run_tool(ctx, argv, env, o->log_path, "making the ext4 file system");
    if (r == -EIO && attempt < 3) {
      /* the estimate was short (mke2fs: "Could not allocate block"): one more boundary */
      kgb_error_clear(ctx);
      kgb_info(ctx, "%llu MiB were not enough for the ext4 file system: trying %llu MiB",
               (unsigned long long)(total / MIB),
               (unsigned long long)((total + KATA_BOUNDARY) / MIB));
      total += KATA_BOUNDARY;
      continue;
    }
    break;
  }
  if (r >= 0) {
    char *argv[] = {"debugfs", "-w", "-f", script, dev, NULL};
    r = run_tool(ctx, argv, env, o->log_path, "setting the file system's times");
  }
  unlink(script);
  if (r >= 0)
    r = write_mbr(ctx, fd, o->seed, total);
  if (r < 0)
    return r;
  info->size = total;
  info->fs_size = total - PART_START;
  info->uuid = TAKE_PTR(uuid);
  return 0;
}

static int pack_erofs(struct kgb_ctx *ctx, const char *root, const char *tmp, int fd,
                      const struct kgb_image_opts *o, struct kgb_image_info *info) {
  _cleanup_free_ char *uuid = derive_uuid(o->seed, "erofs-uuid");
  _cleanup_free_ char *fsfile = kgb_strdup_printf("%s.erofs", tmp);
  _cleanup_free_ char *targ = kgb_strdup_printf("-T%lld", o->epoch);
  _cleanup_free_ char *uarg = uuid ? kgb_strdup_printf("-U%s", uuid) : NULL;
  if (!uuid || !fsfile || !targ || !uarg)
    return -ENOMEM;
  /* -Enoinline_data as Kata's image builder, so that file data stays block-aligned for DAX */
  char *argv[] = {"mkfs.erofs", targ, uarg, "-Enoinline_data", fsfile, (char *)root, NULL};
  char *env[] = {"LC_ALL=C", NULL};
  kgb_progress(ctx, "making the erofs file system", 0, 0);
  int r = run_tool(ctx, argv, env, o->log_path, "making the erofs file system");
  _cleanup_close_ int in = r >= 0 ? open(fsfile, O_RDONLY | O_CLOEXEC) : -1;
  struct stat st;
  if (r >= 0 && (in < 0 || fstat(in, &st) < 0))
    r = kgb_error(ctx, -errno, "cannot read '%s': %m", fsfile);
  uint64_t total = 0;
  if (r >= 0) {
    total = round_up(PART_START + (uint64_t)st.st_size, 2 * MIB);
    if (ftruncate(fd, (off_t)total) < 0)
      r = kgb_error(ctx, -errno, "cannot size '%s': %m", tmp);
  }
  loff_t off_in = 0, off_out = (loff_t)PART_START;
  while (r >= 0 && off_in < st.st_size) {
    ssize_t n = copy_file_range(in, &off_in, fd, &off_out, (size_t)(st.st_size - off_in), 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      r = kgb_error(ctx, n < 0 ? -errno : -EIO, "cannot copy '%s' into the image: %m", fsfile);
  }
  unlink(fsfile);
  if (r >= 0)
    r = write_mbr(ctx, fd, o->seed, total);
  if (r < 0)
    return r;
  info->size = total;
  info->fs_size = (uint64_t)st.st_size;
  info->uuid = TAKE_PTR(uuid);
  return 0;
}

int kgb_image_pack(struct kgb_ctx *ctx, const char *root, const char *output,
                   const struct kgb_image_opts *o, struct kgb_image_info *ret) {
  _cleanup_free_ char *init = NULL;
  int r = kgb_image_check_init(ctx, root, &init);
  if (r < 0)
    return r;
  struct kgb_image_info info = {0};
  if (o->format == KGB_IMAGE_INITRD) {
    enum kgb_compression c = o->compression == KGB_COMPRESS_NONE   ? KGB_COMPRESS_NONE
                             : o->compression == KGB_COMPRESS_GZIP ? KGB_COMPRESS_GZIP
                                                                   : KGB_COMPRESS_ZSTD;
    r = kgb_tree_archive(ctx, root, output, KGB_ARCHIVE_CPIO, c, o->epoch,
                         STREQ(init, "/init") ? NULL : "/sbin/init");
    struct stat st;
    if (r >= 0 && stat(output, &st) == 0)
      info.size = info.fs_size = (uint64_t)st.st_size;
    if (r >= 0)
      *ret = info;
    return r;
  }
  struct tree t = {0};
  if ((r = tree_collect(ctx, root, &t)) < 0)
    return r;
  _cleanup_free_ char *tmp = kgb_strdup_printf("%s.tmp-XXXXXX", output);
  _cleanup_close_ int fd = tmp ? mkostemp(tmp, O_CLOEXEC) : -1;
  if (!tmp || fd < 0) {
    tree_release(&t);
    return tmp ? kgb_error(ctx, -errno, "cannot create '%s': %m", tmp) : -ENOMEM;
  }
  if (o->format == KGB_IMAGE_EXT4)
    r = pack_ext4(ctx, root, tmp, fd, &t, o, &info);
  else
    r = pack_erofs(ctx, root, tmp, fd, o, &info);
  tree_release(&t);
  if (r >= 0 && (fchmod(fd, 0644) < 0 || fsync(fd) < 0))
    r = kgb_error(ctx, -errno, "cannot write '%s': %m", tmp);
  if (r >= 0 && rename(tmp, output) < 0)
    r = kgb_error(ctx, -errno, "cannot rename '%s' to '%s': %m", tmp, output);
  if (r < 0) {
    unlink(tmp);
    kgb_image_info_release(&info);
    return r;
  }
  *ret = info;
  return 0;
}

/* ---- report ---- */

void kgb_tree_report_release(struct kgb_tree_report *r) {
  for (size_t i = 0; i < r->n_top; i++)
    free(r->top[i].path);
  r->n_top = 0;
}

int kgb_tree_report(struct kgb_ctx *ctx, const char *root, struct kgb_tree_report *ret) {
  struct tree t = {0};
  int r = tree_collect(ctx, root, &t);
  if (r < 0)
    return r;
  /* sorted order puts a directory before its contents: a stack of open directories adds
   * each file's size to all of its ancestors */
  uint64_t *dir_bytes = calloc(t.n, sizeof(*dir_bytes));
  size_t *stack = calloc(t.n + 1, sizeof(*stack));
  struct kgb_tree_report rep = {0};
  if (!dir_bytes || !stack) {
    r = -ENOMEM;
    goto finish;
  }
  size_t depth = 0;
  struct inodes seen = {.map = HASHMAP_INIT};
  for (size_t i = 0; i < t.n && r >= 0; i++) {
    const struct entry *e = &t.v[i];
    while (depth > 1) {
      const char *top = t.v[stack[depth - 1]].path;
      size_t n = strlen(top);
      if (strncmp(e->path, top, n) == 0 && e->path[n] == '/')
        break;
      depth--;
    }
    uint64_t size = S_ISDIR(e->st.st_mode) ? 0 : (uint64_t)e->st.st_size;
    /* a file with several links takes its room once (Mesa's DRI drivers are one file) */
    if (S_ISREG(e->st.st_mode) && e->st.st_nlink > 1) {
      unsigned long before = seen.next, ino;
      if ((r = inode_number(&seen, &e->st, &ino)) < 0)
        break;
      if (seen.next == before)
        size = 0;
    }
    if (S_ISDIR(e->st.st_mode))
      rep.dirs++;
    else
      rep.files++;
    rep.bytes += size;
    for (size_t d = 0; d < depth; d++)
      dir_bytes[stack[d]] += size;
    if (S_ISDIR(e->st.st_mode))
      stack[depth++] = i;
  }
  hashmap_release(&seen.map);
  strv_free(seen.keys);
  for (size_t i = 1; i < t.n && r >= 0; i++) {
    if (!S_ISDIR(t.v[i].st.st_mode))
      continue;
    size_t pos = rep.n_top;
    while (pos > 0 && rep.top[pos - 1].bytes < dir_bytes[i])
      pos--;
    if (pos >= ELEMENTSOF(rep.top))
      continue;
    if (rep.n_top == ELEMENTSOF(rep.top))
      free(rep.top[--rep.n_top].path);
    memmove(&rep.top[pos + 1], &rep.top[pos], (rep.n_top - pos) * sizeof(rep.top[0]));
    rep.top[pos] = (struct kgb_tree_dir){kgb_strdup_printf("/%s", t.v[i].path), dir_bytes[i]};
    rep.n_top++;
    if (!rep.top[pos].path) {
      r = -ENOMEM;
      goto finish;
    }
  }
finish:
  free(dir_bytes);
  free(stack);
  tree_release(&t);
  if (r < 0) {
    kgb_tree_report_release(&rep);
    return r;
  }
  *ret = rep;
  return 0;
}
