/* Kernel sources: a directory used in place, or a tarball extracted once into the work
 * directory under its SHA-256, with path-traversal protections. */
#pragma once

#include "kgb.h"

struct kgb_source {
  char *dir;      /* top of the kernel tree */
  char *key;      /* SHA-256 (hex) identifying the source for stage keys */
  char *version;  /* VERSION.PATCHLEVEL.SUBLEVEL from the top Makefile, e.g. "6.1.192" */
  bool extracted; /* false when the directory was used in place */
};

struct kgb_source *kgb_source_free(struct kgb_source *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_source *, kgb_source_free)

/* spec: a kernel directory, a .tar[.xz|.gz|.zst|.bz2] file, or an http(s):// or file:// URL
 * of a tarball, downloaded into the cache first; sha256 is the tarball's hash (NULL: from a
 * sha256sums file beside the URL). */
/* The kernel tree of a tarball already extracted into the work directory under its key;
 * -ENOENT when it is not there. Reads only. */
int kgb_source_extracted(struct kgb_ctx *ctx, const char *source_key, char **ret_dir);

int kgb_source_prepare(struct kgb_ctx *ctx, const char *spec, const char *sha256,
                       struct kgb_source **ret);
/* Checks that dir is a kernel tree and reads its version. */
int kgb_source_check_tree(struct kgb_ctx *ctx, const char *dir, char **ret_version);
struct kgb_extract_opts {
  bool as_root;         /* the archive's numeric owners, xattrs, ACLs, flags: a root file system */
  const char *progress; /* the progress line's text, NULL: none */
};
/* Extracts archive into the existing directory dir; refuses entries with absolute paths or
 * `..` ("refused, nothing extracted" is true only when dir is thrown away after a failure, as
 * kgb_archive_extract does) and never writes outside dir. */
int kgb_archive_extract_into(struct kgb_ctx *ctx, const char *archive, const char *dir,
                             const struct kgb_extract_opts *o);
/* Extracts archive into dest (which must not exist) through dest.tmp-XXXXXX; refuses entries
 * with absolute paths or `..` and never writes outside dest. */
int kgb_archive_extract(struct kgb_ctx *ctx, const char *archive, const char *dest);
/* SHA-256 of a file as lowercase hex; remembered in <workdir>/cache/hashes by device, inode,
 * size and mtime so that a 130 MB tarball is hashed once. */
int kgb_sha256_file(struct kgb_ctx *ctx, const char *path, char **ret_hex);
int kgb_sha256_hex(const void *data, size_t len, char ret_hex[65]);
