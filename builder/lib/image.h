/* Images of a root file system tree, byte for byte reproducible:
 * - ext4: Kata's disk layout (an msdos label with one Linux partition from 1 MiB to the end,
 *   the whole rounded up to 128 MiB, which nvdimm-mapped images need), made by mkfs.ext4 -d
 *   without a loop mount, with fixed UUID and hash seed, and every inode time set by debugfs
 *   (mke2fs copies ctime and atime from the tree);
 * - erofs: mkfs.erofs with fixed UUID and time, in the same partition layout;
 * - initrd: cpio newc written with libarchive, entries sorted, inode numbers counted from 1,
 *   mtimes clamped, compressed with zstd or gzip (no timestamp in the gzip header).
 * Also the archive writer behind the initrd (pax tar for bootstrap bases) and a size report. */
#pragma once

#include <stdint.h>

#include "kgb.h"

enum kgb_image_format {
  KGB_IMAGE_EXT4,
  KGB_IMAGE_EROFS,
  KGB_IMAGE_INITRD,
  _KGB_IMAGE_FORMAT_MAX,
  _KGB_IMAGE_FORMAT_INVALID = -22,
};
enum kgb_image_format kgb_image_format_from_string(const char *s);
const char *kgb_image_format_to_string(enum kgb_image_format f);

enum kgb_compression {
  KGB_COMPRESS_NONE,
  KGB_COMPRESS_GZIP,
  KGB_COMPRESS_ZSTD,
  KGB_COMPRESS_ZSTD_FAST, /* zstd level 1: caches written once and read once (a 640 MB root:
                           * 2 s of CPU instead of level 9's 15, 17 % larger) */
  _KGB_COMPRESS_MAX,
  _KGB_COMPRESS_INVALID = -22,
};
enum kgb_compression kgb_compression_from_string(const char *s);
const char *kgb_compression_to_string(enum kgb_compression c);

enum kgb_archive_format {
  KGB_ARCHIVE_CPIO, /* newc, as the kernel reads an initramfs */
  KGB_ARCHIVE_TAR,  /* pax, with extended attributes */
};

/* Every path below root written into output (through a temporary file renamed when complete):
 * sorted, mtimes clamped to epoch, inode numbers counted from 1, owners by number only.
 * init_link: when not NULL and root has no /init, an /init symlink to it is added. */
int kgb_tree_archive(struct kgb_ctx *ctx, const char *root, const char *output,
                     enum kgb_archive_format format, enum kgb_compression compression,
                     long long epoch, const char *init_link);

/* Finds the init the kernel will run: /init, else /sbin/init, resolved inside root, which
 * must be an executable regular file. ret gets "/init" or "/sbin/init". -ENOENT otherwise,
 * with what was found in the error detail. */
int kgb_image_check_init(struct kgb_ctx *ctx, const char *root, char **ret);

struct kgb_image_opts {
  enum kgb_image_format format;
  enum kgb_compression compression; /* initrd; default zstd */
  int free_mb;                      /* ext4: free space on top of the content */
  long long epoch;                  /* SOURCE_DATE_EPOCH: every time in the image */
  const char *seed;                 /* UUIDs, hash seed and disk signature derive from it */
  const char *log_path;             /* mkfs/debugfs output */
};

struct kgb_image_info {
  uint64_t size;    /* bytes of the image file */
  uint64_t fs_size; /* bytes of the file system (partition) */
  char *uuid;       /* ext4, erofs */
  unsigned disk_signature;
};

/* Packs root into output; the root's init is checked first. */
int kgb_image_pack(struct kgb_ctx *ctx, const char *root, const char *output,
                   const struct kgb_image_opts *o, struct kgb_image_info *ret);
void kgb_image_info_release(struct kgb_image_info *i);

/* Writes the 512-byte msdos label of a disk of total_sectors with one Linux partition
 * (type 0x83) from start_sector to the end. */
void kgb_mbr_build(uint8_t mbr[512], uint32_t signature, uint32_t start_sector,
                   uint32_t total_sectors);

/* Size, entries and the largest directories of a tree (content sizes, links not followed). */
struct kgb_tree_dir {
  char *path; /* "/usr/lib", relative to the root */
  uint64_t bytes;
};
struct kgb_tree_report {
  uint64_t bytes;
  uint64_t files; /* every entry but directories */
  uint64_t dirs;
  struct kgb_tree_dir top[10]; /* largest first, the root itself left out */
  size_t n_top;
};
int kgb_tree_report(struct kgb_ctx *ctx, const char *root, struct kgb_tree_report *ret);
void kgb_tree_report_release(struct kgb_tree_report *r);
