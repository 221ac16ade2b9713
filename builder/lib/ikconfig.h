/* What a built kernel says about itself: the .config that CONFIG_IKCONFIG embeds between the
 * IKCFG_ST and IKCFG_ED markers (found through libelf in a vmlinux, and in a bzImage after
 * decompressing its payload), a profile's required values checked against it, and the vermagic
 * of the modules built with it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kgb.h"

/* What kgb_ikconfig_read_info found, for reports. The pointers are to static strings. */
struct kgb_ikconfig_info {
  const char *format;      /* "vmlinux" (any ELF file) or "bzImage" */
  const char *compression; /* the bzImage payload's: gzip, xz, zstd, lz4, lzma, bzip2, lzo */
  uint64_t payload_size;   /* the bzImage payload once decompressed */
  char section[64];        /* the ELF section that holds the markers, e.g. ".rodata" */
};

/* Reads the config embedded in a vmlinux (or any ELF file that carries it, such as configs.ko)
 * or in an x86 bzImage. ret_config is the .config text. Errors: -ENOEXEC when the file is not a
 * kernel, -ENODATA when it has no embedded config, -EBADMSG when compressed data is corrupt. */
int kgb_ikconfig_read(struct kgb_ctx *ctx, const char *kernel_path, char **ret_config);
int kgb_ikconfig_read_info(struct kgb_ctx *ctx, const char *kernel_path, char **ret_config,
                           struct kgb_ikconfig_info *ret_info);

/* Decompresses data by its magic number: gzip, xz, zstd, lz4 (also legacy frames), lzma,
 * bzip2, lzo. libarchive does it when it has the format built in; otherwise the external
 * program runs through kgb_exec. At most max bytes of output are accepted (-EFBIG beyond).
 * ret is NUL-terminated one byte past ret_len; ret_format is static. */
enum {
  KGB_DECOMPRESS_EXTERNAL = 1 << 0, /* always use the external program (tests) */
};
int kgb_decompress(struct kgb_ctx *ctx, const char *name, const void *data, size_t len, size_t max,
                   unsigned flags, char **ret, size_t *ret_len, const char **ret_format);
/* The compression whose magic number data starts with, or NULL. */
const char *kgb_compression_detect(const void *data, size_t len);

struct kgb_required_mismatch {
  char *symbol;   /* CONFIG_X */
  char *required; /* as a person reads it: y, m, n, 64, "text" */
  char *actual;   /* the same; n when the config does not set the symbol */
  bool absent;    /* the config has no line at all for the symbol */
};

struct kgb_required_check {
  size_t n_checked;
  struct kgb_required_mismatch *mismatches;
  size_t n_mismatches;
};

struct kgb_required_check *kgb_required_check_free(struct kgb_required_check *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_required_check *, kgb_required_check_free)

/* Checks config_text (a .config; config_name names it in error details) against required
 * lines such as "CONFIG_X=y" or "# CONFIG_X is not set"; n and "not set" are the same value.
 * Every required line counts as checked; each one the config does not satisfy is a mismatch. */
int kgb_verify_required(struct kgb_ctx *ctx, const char *config_name, const char *config_text,
                        char *const *required, struct kgb_required_check **ret);

/* The vermagic string of one module (.ko, .ko.gz, .ko.xz, .ko.zst): its .modinfo section read
 * through libelf. -ENODATA when the module has none, -ENOEXEC when the file is not ELF. */
int kgb_module_vermagic(struct kgb_ctx *ctx, const char *path, char **ret);

struct kgb_module_mismatch {
  char *path;     /* relative to the directory checked */
  char *vermagic; /* as found, without the trailing space; NULL when none could be read */
  char *problem;  /* NULL: the release differs; else why no vermagic could be read */
};

struct kgb_modules_check {
  size_t n_checked;
  struct kgb_module_mismatch *mismatches;
  size_t n_mismatches;
};

struct kgb_modules_check *kgb_modules_check_free(struct kgb_modules_check *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_modules_check *, kgb_modules_check_free)

/* Checks every module under dir (symbolic links are not followed, so /lib/modules/KVER with
 * its build and source links works) against release: the first word of each vermagic must
 * equal it. A module that cannot be read as one (corrupt compression, not ELF, no vermagic) is
 * a mismatch with a problem; -ENOENT when dir holds no module at all. */
int kgb_modules_vermagic_check(struct kgb_ctx *ctx, const char *dir, const char *release,
                               struct kgb_modules_check **ret);
