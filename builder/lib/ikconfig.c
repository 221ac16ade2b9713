/* Reading built kernels and modules: the IKCONFIG blob of a vmlinux (libelf section data), of a
 * bzImage (x86 boot protocol payload, decompressed by its magic number, then the same ELF
 * walk), a profile's required values against it, and module vermagic from .modinfo. */
#define _GNU_SOURCE
#include "ikconfig.h"

#include <archive.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../shared/sbuf.h"
#include "../shared/util.h"
#include "exec.h"
#include "fragment.h"

#define IKCFG_ST "IKCFG_ST"
#define IKCFG_ED "IKCFG_ED"
#define MARKER_LEN 8
#define ELF_MAGIC "\177ELF"
#define BANNER "Linux version "

/* Bounds on what is read into memory: a decompressed vmlinux, a bzImage, a module, a config. */
#define PAYLOAD_MAX ((size_t)1 << 30)
#define BZIMAGE_MAX ((size_t)256 << 20)
#define MODULE_MAX ((size_t)1 << 30)
#define CONFIG_MAX ((size_t)64 << 20)
/* a vmlinux with its debug information is mapped, not read, but is never this large */
#define KERNEL_FILE_MAX ((size_t)4 << 30)

/* x86 boot protocol (Documentation/x86/boot.rst): the setup header's fields. */
#define BOOT_SETUP_SECTS 0x1f1
#define BOOT_FLAG 0x1fe
#define BOOT_HEADER 0x202
#define BOOT_VERSION 0x206
#define BOOT_PAYLOAD_OFFSET 0x248
#define BOOT_PAYLOAD_LENGTH 0x24c
#define BOOT_HEADER_END 0x250

struct compression {
  const char *name;
  const char *magic;
  size_t magic_len;
  int (*support)(struct archive *a); /* NULL: libarchive cannot do it without a program */
  int filter_code;
  const char *ext; /* the suffix the external program strips */
  const char *const argv[8];
};

/* Magic numbers as boot.rst and scripts/extract-ikconfig list them. lzo has no libarchive
 * reader without liblzo2 (libarchive would spawn lzop itself, outside kgb_exec). */
static const struct compression compressions[] = {
    {"gzip",
     "\x1f\x8b",
     2,
     archive_read_support_filter_gzip,
     ARCHIVE_FILTER_GZIP,
     ".gz",
     {"gzip", "-d", "-f", "-k", "-q"}},
    {"xz",
     "\xfd"
     "7zXZ\0",
     6,
     archive_read_support_filter_xz,
     ARCHIVE_FILTER_XZ,
     ".xz",
     {"xz", "-d", "-f", "-k", "-q"}},
    {"zstd",
     "\x28\xb5\x2f\xfd",
     4,
     archive_read_support_filter_zstd,
     ARCHIVE_FILTER_ZSTD,
     ".zst",
     {"zstd", "-d", "-f", "-k", "-q"}},
    {"lz4",
     "\x02\x21\x4c\x18",
     4,
     archive_read_support_filter_lz4,
     ARCHIVE_FILTER_LZ4,
     ".lz4",
     {"lz4", "-d", "-f", "-q"}},
    {"lz4",
     "\x04\x22\x4d\x18",
     4,
     archive_read_support_filter_lz4,
     ARCHIVE_FILTER_LZ4,
     ".lz4",
     {"lz4", "-d", "-f", "-q"}},
    {"lzma",
     "\x5d\x00\x00",
     3,
     archive_read_support_filter_lzma,
     ARCHIVE_FILTER_LZMA,
     ".lzma",
     {"xz", "--format=lzma", "-d", "-f", "-k", "-q"}},
    {"bzip2",
     "BZh",
     3,
     archive_read_support_filter_bzip2,
     ARCHIVE_FILTER_BZIP2,
     ".bz2",
     {"bzip2", "-d", "-f", "-k", "-q"}},
    {"lzo",
     "\x89LZO\0\r\n\x1a\n",
     9,
     NULL,
     ARCHIVE_FILTER_LZOP,
     ".lzo",
     {"lzop", "-d", "-f", "-q"}},
};

static const struct compression *compression_of(const void *data, size_t len) {
  for (size_t i = 0; i < ELEMENTSOF(compressions); i++)
    if (len >= compressions[i].magic_len &&
        memcmp(data, compressions[i].magic, compressions[i].magic_len) == 0)
      return &compressions[i];
  return NULL;
}

const char *kgb_compression_detect(const void *data, size_t len) {
  const struct compression *c = compression_of(data, len);
  return c ? c->name : NULL;
}

static uint32_t le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void archive_freep(struct archive **a) {
  if (*a)
    archive_read_free(*a);
}

/* Returns 1 when libarchive would need an external program for this format. */
static int decompress_libarchive(struct kgb_ctx *ctx, const char *name, const struct compression *c,
                                 const void *data, size_t len, size_t max, struct sbuf *out) {
  if (!c->support)
    return 1;
  _cleanup_(archive_freep) struct archive *a = archive_read_new();
  if (!a)
    return -ENOMEM;
  if (c->support(a) != ARCHIVE_OK)
    return 1;
  if (archive_read_support_format_raw(a) != ARCHIVE_OK)
    return kgb_error(ctx, -EIO, "libarchive: %s", archive_error_string(a));
  struct archive_entry *entry;
  if (archive_read_open_memory(a, data, len) != ARCHIVE_OK ||
      archive_read_next_header(a, &entry) != ARCHIVE_OK)
    return kgb_error(ctx, archive_errno(a) == ENOMEM ? -ENOMEM : -EBADMSG, "%s is corrupt: %s",
                     name, archive_error_string(a) ? archive_error_string(a) : "unreadable");
  /* The bidder may decline what only looks like this format; raw would pass it through. */
  if (archive_filter_code(a, 0) != c->filter_code)
    return kgb_error(ctx, -EBADMSG, "%s is corrupt: not a valid %s header", name, c->name);
  for (;;) {
    if (kgb_cancelled(ctx))
      return -ECANCELED;
    int r = sbuf_grow(out, 1 << 20);
    if (r < 0)
      return r;
    la_ssize_t n = archive_read_data(a, out->buf + out->len, out->cap - out->len - 1);
    if (n < 0)
      return kgb_error(ctx, archive_errno(a) == ENOMEM ? -ENOMEM : -EBADMSG, "%s is corrupt: %s",
                       name, archive_error_string(a) ? archive_error_string(a) : "unreadable");
    if (n == 0)
      break;
    out->len += (size_t)n;
    out->buf[out->len] = '\0';
    if (out->len > max)
      return kgb_error(ctx, -EFBIG, "%s is more than %zu MiB once decompressed", name, max >> 20);
  }
  return 0;
}

static void keep_first_line(void *userdata, const char *line) {
  char **first = userdata;
  if (!*first && *line)
    *first = strdup(line);
}

/* The program decompresses dir/payload<ext> into dir/payload. */
static int run_decompressor(struct kgb_ctx *ctx, const char *name, const struct compression *c,
                            const char *dir, const void *data, size_t len, size_t max,
                            struct sbuf *out) {
  _cleanup_free_ char *in = kgb_strdup_printf("%s/payload%s", dir, c->ext);
  _cleanup_free_ char *outp = kgb_strdup_printf("%s/payload", dir);
  if (!in || !outp)
    return -ENOMEM;
  int r = write_file_atomic(in, data, len, 0600);
  if (r < 0)
    return kgb_error(ctx, r, "cannot write '%s': %s", in, strerror(-r));
  char *argv[ELEMENTSOF(c->argv) + 2] = {NULL};
  size_t n = 0;
  for (; c->argv[n]; n++)
    argv[n] = (char *)c->argv[n];
  argv[n++] = in;
  if (STREQ(c->name, "lz4")) /* lz4 names its output only when given one */
    argv[n++] = outp;
  _cleanup_free_ char *first = NULL;
  struct kgb_exec_opts o = {.line_fn = keep_first_line, .userdata = &first};
  r = kgb_exec(ctx, argv, &o);
  if (r < 0) /* -ENOENT: kgb_exec said "cannot run 'lzop'" */
    return r;
  if (r > 0)
    return kgb_error(ctx, -EBADMSG, "%s is corrupt: '%s' failed (status %d)%s%s", name, argv[0], r,
                     first ? ": " : "", first ? first : "");
  struct stat st;
  if (stat(outp, &st) < 0)
    return kgb_error(ctx, -EBADMSG, "%s: '%s' wrote nothing", name, argv[0]);
  if ((uint64_t)st.st_size > max)
    return kgb_error(ctx, -EFBIG, "%s is more than %zu MiB once decompressed", name, max >> 20);
  _cleanup_free_ char *buf = NULL;
  size_t blen;
  r = read_full_file_max(outp, max, &buf, &blen);
  if (r < 0)
    return kgb_error(ctx, r, "cannot read '%s': %s", outp, strerror(-r));
  return sbuf_add(out, buf, blen);
}

static int decompress_external(struct kgb_ctx *ctx, const char *name, const struct compression *c,
                               const void *data, size_t len, size_t max, struct sbuf *out) {
  const char *tmpdir = getenv("TMPDIR");
  _cleanup_free_ char *dir =
      kgb_strdup_printf("%s/kgb-decompress-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
  if (!dir)
    return -ENOMEM;
  if (!mkdtemp(dir))
    return kgb_error(ctx, -errno, "cannot create a temporary directory '%s': %m", dir);
  int r = run_decompressor(ctx, name, c, dir, data, len, max, out);
  rm_rf(dir);
  return r;
}

int kgb_decompress(struct kgb_ctx *ctx, const char *name, const void *data, size_t len, size_t max,
                   unsigned flags, char **ret, size_t *ret_len, const char **ret_format) {
  const struct compression *c = compression_of(data, len);
  if (!c)
    return kgb_error(ctx, -EBADMSG, "%s is not in a known compression format", name);
  struct sbuf out = SBUF_INIT;
  int r = 1;
  if (!(flags & KGB_DECOMPRESS_EXTERNAL))
    r = decompress_libarchive(ctx, name, c, data, len, max, &out);
  if (r > 0) {
    kgb_debug(ctx, "%s: %s through its program", name, c->name);
    r = decompress_external(ctx, name, c, data, len, max, &out);
  }
  if (r == 0 && !out.buf)
    r = sbuf_grow(&out, 0);
  if (r < 0) {
    sbuf_release(&out);
    return r;
  }
  *ret_len = out.len;
  *ret = sbuf_steal(&out);
  if (ret_format)
    *ret_format = c->name;
  return 0;
}

static void elf_endp(Elf **e) {
  if (*e)
    elf_end(*e);
}

static int elf_init(struct kgb_ctx *ctx) {
  if (elf_version(EV_CURRENT) == EV_NONE)
    return kgb_error(ctx, -EIO, "libelf: %s", elf_errmsg(-1));
  return 0;
}

/* Looks for IKCFG_ST + gzip + IKCFG_ED in one block of section data. 0: not there. */
static int config_in_block(struct kgb_ctx *ctx, const char *name, const char *buf, size_t n,
                           char **ret) {
  const char *end = buf + n, *p = buf;
  while ((p = memmem(p, (size_t)(end - p), IKCFG_ST, MARKER_LEN))) {
    const char *gz = p + MARKER_LEN;
    const char *ed = memmem(gz, (size_t)(end - gz), IKCFG_ED, MARKER_LEN);
    if (!ed)
      return 0;
    /* scripts/extract-ikconfig also insists on gzip's magic and deflate right after. */
    if (ed - gz > 18 && memcmp(gz, "\x1f\x8b\x08", 3) == 0) {
      _cleanup_free_ char *desc = kgb_strdup_printf("'%s': its embedded config", name);
      char *text = NULL;
      size_t len;
      int r =
          desc ? kgb_decompress(ctx, desc, gz, (size_t)(ed - gz), CONFIG_MAX, 0, &text, &len, NULL)
               : -ENOMEM;
      if (r < 0)
        return r;
      if (memchr(text, '\0', len)) {
        free(text);
        return kgb_error(ctx, -EBADMSG, "'%s': the embedded config is not text", name);
      }
      *ret = text;
      return 1;
    }
    p = gz;
  }
  return 0;
}

/* The config of an ELF file: .rodata first (where kernel/configs.c puts it), then every other
 * allocated section with contents; debug sections are never read. */
static int config_in_elf(struct kgb_ctx *ctx, const char *name, Elf *e, char **ret,
                         struct kgb_ikconfig_info *info) {
  if (elf_kind(e) != ELF_K_ELF)
    return kgb_error(ctx, -ENOEXEC, "'%s' is not an ELF file", name);
  size_t shstrndx;
  if (elf_getshdrstrndx(e, &shstrndx) < 0)
    return kgb_error(ctx, -ENOEXEC, "'%s': corrupt ELF file: %s", name, elf_errmsg(-1));
  bool banner = false, any = false;
  for (int pass = 0; pass < 2; pass++) {
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(e, scn))) {
      GElf_Shdr sh;
      if (!gelf_getshdr(scn, &sh))
        return kgb_error(ctx, -ENOEXEC, "'%s': corrupt ELF file: %s", name, elf_errmsg(-1));
      if (sh.sh_type == SHT_NOBITS || !(sh.sh_flags & SHF_ALLOC))
        continue;
      const char *sname = elf_strptr(e, shstrndx, sh.sh_name);
      bool rodata = sname && STREQ(sname, ".rodata");
      if (rodata != (pass == 0))
        continue;
      any = true;
      Elf_Data *d = NULL;
      while ((d = elf_rawdata(scn, d))) {
        if (!d->d_buf || !d->d_size)
          continue;
        int r = config_in_block(ctx, name, d->d_buf, d->d_size, ret);
        if (r < 0)
          return r;
        if (r > 0) {
          if (info)
            snprintf(info->section, sizeof(info->section), "%s", sname ? sname : "?");
          return 0;
        }
        if (!banner && memmem(d->d_buf, d->d_size, BANNER, strlen(BANNER)))
          banner = true;
      }
    }
  }
  if (!any || !banner)
    return kgb_error(ctx, -ENOEXEC,
                     "'%s' is an ELF file but not a Linux kernel: no '%s' banner and no "
                     "embedded config",
                     name, "Linux version");
  return kgb_error(ctx, -ENODATA, "'%s' has no embedded config: build it with CONFIG_IKCONFIG=y",
                   name);
}

static bool is_bzimage(const unsigned char *p, size_t len) {
  return len >= BOOT_HEADER_END && p[BOOT_FLAG] == 0x55 && p[BOOT_FLAG + 1] == 0xaa &&
         memcmp(p + BOOT_HEADER, "HdrS", 4) == 0;
}

static int config_in_bzimage(struct kgb_ctx *ctx, const char *name, int fd, char **ret,
                             struct kgb_ikconfig_info *info) {
  struct stat st;
  if (fstat(fd, &st) < 0)
    return kgb_error(ctx, -errno, "cannot read '%s': %m", name);
  if ((uint64_t)st.st_size > BZIMAGE_MAX)
    return kgb_error(ctx, -EFBIG, "'%s' is larger than any bzImage (%zu MiB)", name,
                     BZIMAGE_MAX >> 20);
  _cleanup_free_ unsigned char *img = malloc((size_t)st.st_size);
  if (!img)
    return -ENOMEM;
  size_t size = 0;
  while (size < (size_t)st.st_size) {
    ssize_t n = pread(fd, img + size, (size_t)st.st_size - size, (off_t)size);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return kgb_error(ctx, -errno, "cannot read '%s': %m", name);
    if (n == 0)
      break;
    size += (size_t)n;
  }
  if (!is_bzimage(img, size))
    return kgb_error(ctx, -ENOEXEC, "'%s' changed while it was read", name);
  unsigned version = img[BOOT_VERSION] | (unsigned)img[BOOT_VERSION + 1] << 8;
  if (version < 0x208)
    return kgb_error(ctx, -ENOEXEC,
                     "'%s': boot protocol %u.%02u has no payload fields (2.08 or later needed)",
                     name, version >> 8, version & 0xff);
  size_t setup = ((size_t)(img[BOOT_SETUP_SECTS] ? img[BOOT_SETUP_SECTS] : 4) + 1) * 512;
  size_t off = le32(img + BOOT_PAYLOAD_OFFSET), plen = le32(img + BOOT_PAYLOAD_LENGTH);
  if (setup > size || off > size - setup || plen > size - setup - off || plen < 8)
    return kgb_error(ctx, -ENOEXEC,
                     "'%s': the bzImage header places its payload (offset %zu, %zu bytes) "
                     "outside the file's %zu bytes: truncated?",
                     name, setup + off, plen, size);
  const unsigned char *payload = img + setup + off;
  _cleanup_free_ char *vmlinux = NULL;
  size_t vlen;
  if (memcmp(payload, ELF_MAGIC, 4) == 0) { /* CONFIG_KERNEL_UNCOMPRESSED */
    vmlinux = malloc(plen);
    if (!vmlinux)
      return -ENOMEM;
    memcpy(vmlinux, payload, plen);
    vlen = plen;
    if (info)
      info->compression = "none";
  } else {
    const struct compression *c = compression_of(payload, plen);
    if (!c)
      return kgb_error(ctx, -ENOEXEC,
                       "'%s': unknown compression of its payload (magic %02x %02x %02x %02x)", name,
                       payload[0], payload[1], payload[2], payload[3]);
    /* kbuild appends the decompressed size as 32-bit little endian (gzip has it as its own
     * trailer): the decompressors must not see it as the start of another stream. */
    uint32_t want = le32(payload + plen - 4);
    size_t clen = STREQ(c->name, "gzip") ? plen : plen - 4;
    _cleanup_free_ char *desc = kgb_strdup_printf("'%s': its %s payload", name, c->name);
    if (!desc)
      return -ENOMEM;
    int r = kgb_decompress(ctx, desc, payload, clen, PAYLOAD_MAX, 0, &vmlinux, &vlen, NULL);
    if (r < 0)
      return r;
    if ((uint32_t)vlen != want)
      return kgb_error(ctx, -EBADMSG,
                       "'%s': the %s payload decompressed to %zu bytes, but its trailer says %u",
                       name, c->name, vlen, want);
    if (info)
      info->compression = c->name;
  }
  if (info) {
    info->format = "bzImage";
    info->payload_size = vlen;
  }
  if (vlen < 4 || memcmp(vmlinux, ELF_MAGIC, 4) != 0)
    return kgb_error(ctx, -ENOEXEC, "'%s': the decompressed payload is not an ELF vmlinux", name);
  _cleanup_(elf_endp) Elf *e = elf_memory(vmlinux, vlen);
  if (!e)
    return kgb_error(ctx, -ENOEXEC, "'%s': the payload is a corrupt ELF file: %s", name,
                     elf_errmsg(-1));
  return config_in_elf(ctx, name, e, ret, info);
}

int kgb_ikconfig_read_info(struct kgb_ctx *ctx, const char *kernel_path, char **ret_config,
                           struct kgb_ikconfig_info *ret_info) {
  int r = elf_init(ctx);
  if (r < 0)
    return r;
  /* a FIFO would block here and /dev/zero would never end: only regular files are read */
  _cleanup_close_ int fd = open_regular_file(kernel_path, KERNEL_FILE_MAX, NULL);
  if (fd < 0)
    return kgb_error(ctx, fd, "cannot read '%s': %s", kernel_path,
                     file_error_reason(kernel_path, fd, KERNEL_FILE_MAX));
  unsigned char head[BOOT_HEADER_END] = {0};
  ssize_t n = pread(fd, head, sizeof(head), 0);
  if (n < 0)
    return kgb_error(ctx, -errno, "cannot read '%s': %m", kernel_path);
  struct kgb_ikconfig_info info = {.format = "vmlinux"};
  _cleanup_free_ char *config = NULL;
  if (n >= 4 && memcmp(head, ELF_MAGIC, 4) == 0) {
    _cleanup_(elf_endp) Elf *e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    if (!e)
      return kgb_error(ctx, -ENOEXEC, "'%s': corrupt ELF file: %s", kernel_path, elf_errmsg(-1));
    r = config_in_elf(ctx, kernel_path, e, &config, &info);
  } else if (is_bzimage(head, (size_t)n)) {
    r = config_in_bzimage(ctx, kernel_path, fd, &config, &info);
  } else {
    r = kgb_error(ctx, -ENOEXEC,
                  "'%s' is not a kernel image: neither an ELF vmlinux nor an x86 bzImage",
                  kernel_path);
  }
  if (r < 0)
    return r;
  *ret_config = TAKE_PTR(config);
  if (ret_info)
    *ret_info = info;
  return 0;
}

int kgb_ikconfig_read(struct kgb_ctx *ctx, const char *kernel_path, char **ret_config) {
  return kgb_ikconfig_read_info(ctx, kernel_path, ret_config, NULL);
}

struct kgb_required_check *kgb_required_check_free(struct kgb_required_check *c) {
  if (!c)
    return NULL;
  for (size_t i = 0; i < c->n_mismatches; i++) {
    free(c->mismatches[i].symbol);
    free(c->mismatches[i].required);
    free(c->mismatches[i].actual);
  }
  free(c->mismatches);
  free(c);
  return NULL;
}

static int add_required_mismatch(struct kgb_required_check *c, const struct kgb_fentry *want,
                                 const struct kgb_fentry *got) {
  struct kgb_required_mismatch *m =
      reallocarray(c->mismatches, c->n_mismatches + 1, sizeof(*c->mismatches));
  if (!m)
    return -ENOMEM;
  c->mismatches = m;
  m = &c->mismatches[c->n_mismatches];
  *m = (struct kgb_required_mismatch){
      .symbol = kgb_strdup_printf("CONFIG_%s", want->symbol),
      .required = kgb_fentry_display(want->value, want->is_string),
      .actual = got ? kgb_fentry_display(got->value, got->is_string) : strdup("n"),
      .absent = !got,
  };
  c->n_mismatches++;
  if (!m->symbol || !m->required || !m->actual)
    return -ENOMEM;
  return 0;
}

int kgb_verify_required(struct kgb_ctx *ctx, const char *config_name, const char *config_text,
                        char *const *required, struct kgb_required_check **ret) {
  _cleanup_(kgb_fragment_freep) struct kgb_fragment *config = NULL;
  int r = kgb_fragment_parse(ctx, config_name, config_text, true, &config);
  if (r < 0)
    return r;
  _cleanup_(kgb_required_check_freep) struct kgb_required_check *c = calloc(1, sizeof(*c));
  if (!c)
    return -ENOMEM;
  for (size_t i = 0; required && required[i]; i++) {
    _cleanup_free_ char *name = kgb_strdup_printf("kernel.required[%zu]", i);
    _cleanup_(kgb_fragment_freep) struct kgb_fragment *want = NULL;
    r = name ? kgb_fragment_parse(ctx, name, required[i], false, &want) : -ENOMEM;
    if (r < 0)
      return r;
    for (size_t j = 0; j < want->n_entries; j++) {
      const struct kgb_fentry *w = &want->entries[j];
      const struct kgb_fentry *got = kgb_fragment_find(config, w->symbol);
      c->n_checked++;
      if (kgb_fvalue_equal(w->value, w->is_string, got ? got->value : NULL, got && got->is_string))
        continue;
      r = add_required_mismatch(c, w, got);
      if (r < 0)
        return r;
    }
  }
  *ret = TAKE_PTR(c);
  return 0;
}

/* The vermagic in the .modinfo section of an ELF module image, without the trailing space
 * that the kernel writes. When there is none, *ret_problem says why (static text). */
static int elf_vermagic(char *data, size_t len, char **ret, const char **ret_problem,
                        int *ret_errno) {
  *ret_problem = "corrupt ELF object";
  *ret_errno = -ENOEXEC;
  if (len < 4 || memcmp(data, ELF_MAGIC, 4) != 0) {
    *ret_problem = "not an ELF object";
    return 0;
  }
  _cleanup_(elf_endp) Elf *e = elf_memory(data, len);
  size_t shstrndx;
  if (!e || elf_kind(e) != ELF_K_ELF || elf_getshdrstrndx(e, &shstrndx) < 0)
    return 0;
  Elf_Scn *scn = NULL;
  while ((scn = elf_nextscn(e, scn))) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh))
      return 0;
    const char *sname = elf_strptr(e, shstrndx, sh.sh_name);
    if (!sname || !STREQ(sname, ".modinfo") || sh.sh_type == SHT_NOBITS)
      continue;
    *ret_errno = -ENODATA;
    *ret_problem = "no vermagic in its .modinfo section";
    Elf_Data *d = elf_rawdata(scn, NULL);
    if (!d || !d->d_buf)
      return 0;
    /* .modinfo is a run of NUL-terminated key=value strings. */
    const char *p = d->d_buf, *end = p + d->d_size;
    const size_t klen = strlen("vermagic=");
    while (p < end) {
      const char *nul = memchr(p, '\0', (size_t)(end - p));
      size_t n = nul ? (size_t)(nul - p) : (size_t)(end - p);
      if (n > klen && strncmp(p, "vermagic=", klen) == 0) {
        size_t vlen = n - klen;
        while (vlen && p[klen + vlen - 1] == ' ')
          vlen--;
        *ret_problem = NULL;
        *ret = strndup(p + klen, vlen);
        return *ret ? 0 : -ENOMEM;
      }
      p += n + 1;
    }
    return 0;
  }
  *ret_errno = -ENODATA;
  *ret_problem = "no .modinfo section";
  return 0;
}

/* The vermagic of one module. Returns < 0 only when reading failed for a reason outside the
 * module (memory, I/O, cancellation); a module that is not one is described in ret_problem,
 * with the errno that kgb_module_vermagic reports for it in ret_problem_errno. */
static int read_vermagic(struct kgb_ctx *ctx, const char *path, char **ret_vermagic,
                         char **ret_problem, int *ret_problem_errno) {
  _cleanup_free_ char *data = NULL;
  size_t len;
  *ret_vermagic = *ret_problem = NULL;
  int r = read_full_file_max(path, MODULE_MAX, &data, &len);
  if (r < 0)
    return kgb_error(ctx, r, "cannot read '%s': %s", path, file_error_reason(path, r, MODULE_MAX));
  if (compression_of(data, len)) {
    char *plain = NULL;
    size_t plen;
    /* The problem is reported beside the module's path, so the detail does not name it. */
    bool pending = kgb_error_detail(ctx) != NULL;
    _cleanup_free_ char *desc = kgb_strdup_printf("its %s data", kgb_compression_detect(data, len));
    r = desc ? kgb_decompress(ctx, desc, data, len, MODULE_MAX, 0, &plain, &plen, NULL) : -ENOMEM;
    if (r == -EBADMSG || r == -EFBIG) {
      const char *detail = pending ? NULL : kgb_error_detail(ctx);
      *ret_problem = strdup(detail ? detail : "corrupt compressed data");
      *ret_problem_errno = r;
      if (!pending)
        kgb_error_clear(ctx);
      return *ret_problem ? 0 : -ENOMEM;
    }
    if (r < 0)
      return r;
    free(data);
    data = plain;
    len = plen;
  }
  const char *problem;
  r = elf_vermagic(data, len, ret_vermagic, &problem, ret_problem_errno);
  if (r < 0 || !problem)
    return r;
  *ret_problem = strdup(problem);
  return *ret_problem ? 0 : -ENOMEM;
}

int kgb_module_vermagic(struct kgb_ctx *ctx, const char *path, char **ret) {
  int r = elf_init(ctx);
  if (r < 0)
    return r;
  _cleanup_free_ char *vermagic = NULL, *problem = NULL;
  int perr = 0;
  r = read_vermagic(ctx, path, &vermagic, &problem, &perr);
  if (r < 0)
    return r;
  if (problem)
    return kgb_error(ctx, perr, "'%s': %s", path, problem);
  *ret = TAKE_PTR(vermagic);
  return 0;
}

struct kgb_modules_check *kgb_modules_check_free(struct kgb_modules_check *c) {
  if (!c)
    return NULL;
  for (size_t i = 0; i < c->n_mismatches; i++) {
    free(c->mismatches[i].path);
    free(c->mismatches[i].vermagic);
    free(c->mismatches[i].problem);
  }
  free(c->mismatches);
  free(c);
  return NULL;
}

static bool is_module_name(const char *name) {
  return endswith(name, ".ko") || endswith(name, ".ko.gz") || endswith(name, ".ko.xz") ||
         endswith(name, ".ko.zst");
}

static void closedirp(DIR **d) {
  if (*d)
    closedir(*d);
}

/* Module paths under root/rel, relative to root; symbolic links are not followed. */
static int collect_modules(struct kgb_ctx *ctx, const char *root, const char *rel, char ***paths) {
  _cleanup_free_ char *path = rel ? strjoin_path(root, rel) : strdup(root);
  if (!path)
    return -ENOMEM;
  _cleanup_(closedirp) DIR *d = opendir(path);
  if (!d)
    return kgb_error(ctx, -errno, "cannot read directory '%s': %m", path);
  struct dirent *de;
  while ((errno = 0, de = readdir(d))) {
    if (STREQ(de->d_name, ".") || STREQ(de->d_name, ".."))
      continue;
    struct stat st;
    if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
      return kgb_error(ctx, -errno, "cannot read '%s/%s': %m", path, de->d_name);
    char *child = rel ? kgb_strdup_printf("%s/%s", rel, de->d_name) : strdup(de->d_name);
    if (!child)
      return -ENOMEM;
    int r = 0;
    if (S_ISDIR(st.st_mode)) {
      r = collect_modules(ctx, root, child, paths);
      free(child);
    } else if (S_ISREG(st.st_mode) && is_module_name(de->d_name)) {
      r = strv_push(paths, child);
    } else {
      free(child);
    }
    if (r < 0)
      return r;
  }
  if (errno)
    return kgb_error(ctx, -errno, "cannot read directory '%s': %m", path);
  return 0;
}

static int add_module_mismatch(struct kgb_modules_check *c, const char *path, char **vermagic,
                               char **problem) {
  struct kgb_module_mismatch *m =
      reallocarray(c->mismatches, c->n_mismatches + 1, sizeof(*c->mismatches));
  if (!m)
    return -ENOMEM;
  c->mismatches = m;
  c->mismatches[c->n_mismatches++] = (struct kgb_module_mismatch){
      .path = strdup(path), .vermagic = TAKE_PTR(*vermagic), .problem = TAKE_PTR(*problem)};
  return c->mismatches[c->n_mismatches - 1].path ? 0 : -ENOMEM;
}

int kgb_modules_vermagic_check(struct kgb_ctx *ctx, const char *dir, const char *release,
                               struct kgb_modules_check **ret) {
  int r = elf_init(ctx);
  if (r < 0)
    return r;
  if (!is_dir(dir))
    return kgb_error(ctx, -ENOTDIR, "'%s' is not a directory", dir);
  _cleanup_strv_free_ char **paths = NULL;
  r = collect_modules(ctx, dir, NULL, &paths);
  if (r < 0)
    return r;
  size_t n = strv_length(paths);
  if (n == 0)
    return kgb_error(ctx, -ENOENT, "no module (.ko, .ko.gz, .ko.xz, .ko.zst) under '%s'", dir);
  strv_sort(paths);
  _cleanup_(kgb_modules_check_freep) struct kgb_modules_check *c = calloc(1, sizeof(*c));
  if (!c)
    return -ENOMEM;
  size_t rlen = strlen(release);
  for (size_t i = 0; i < n; i++) {
    if (kgb_cancelled(ctx))
      return -ECANCELED;
    kgb_progress(ctx, "checking module vermagic", i, n);
    _cleanup_free_ char *full = strjoin_path(dir, paths[i]);
    _cleanup_free_ char *vermagic = NULL, *problem = NULL;
    int perr;
    r = full ? read_vermagic(ctx, full, &vermagic, &problem, &perr) : -ENOMEM;
    if (r < 0)
      return r;
    c->n_checked++;
    if (!problem && strcspn(vermagic, " \t") == rlen && strncmp(vermagic, release, rlen) == 0)
      continue;
    r = add_module_mismatch(c, paths[i], &vermagic, &problem);
    if (r < 0)
      return r;
  }
  kgb_progress(ctx, "checking module vermagic", n, n);
  *ret = TAKE_PTR(c);
  return 0;
}
