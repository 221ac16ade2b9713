/* Images and archives: the same tree made twice, in another order and at other times, gives
 * byte-identical initrds, tarballs, ext4 and erofs images; the msdos label is Kata's; the init
 * check resolves links inside the root; the report counts a hard-linked file once. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <archive.h>
#include <archive_entry.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "fixture.h"
#include "image.h"
#include "source.h"
#include "util.h"

#define EPOCH 1700000000LL

static char dir[] = "/tmp/kgb-test-image.XXXXXX";
static char tree_a[512], tree_b[512];

static void link_in(const char *tree, const char *target, const char *rel) {
  char p[1024];
  snprintf(p, sizeof(p), "%s/%s", tree, rel);
  assert_int_equal(symlink(target, p), 0);
}

static void hard_in(const char *tree, const char *from, const char *to) {
  char a[1024], b[1024];
  snprintf(a, sizeof(a), "%s/%s", tree, from);
  snprintf(b, sizeof(b), "%s/%s", tree, to);
  assert_int_equal(link(a, b), 0);
}

/* The same content; b written in the other order, with files newer than the epoch. */
static void make_tree(const char *t, bool reverse) {
  static const char *const files[] = {"usr/bin/agent", "etc/os-release", "usr/lib/dri/a_dri.so",
                                      "usr/share/doc/x/README", "var/lib/dpkg/status"};
  size_t n = sizeof(files) / sizeof(files[0]);
  for (size_t k = 0; k < n; k++) {
    size_t i = reverse ? n - 1 - k : k;
    fixture_put(t, files[i], files[i], i == 0 ? 0755 : 0644);
  }
  hard_in(t, "usr/lib/dri/a_dri.so", "usr/lib/dri/b_dri.so");
  hard_in(t, "usr/lib/dri/a_dri.so", "usr/lib/dri/c_dri.so");
  char p[1024];
  snprintf(p, sizeof(p), "%s/sbin", t);
  mkdir_p(p, 0755);
  link_in(t, "/usr/bin/agent", "sbin/init");
  link_in(t, "usr/lib", "lib");
  /* one file older than the epoch keeps its mtime; the rest, newer, get the epoch */
  struct timeval tv[2] = {{EPOCH - 100, 0}, {EPOCH - 100, 0}};
  snprintf(p, sizeof(p), "%s/etc/os-release", t);
  utimes(p, tv);
}

static int setup(void **state) {
  if (fixture_setup(state) < 0 || !mkdtemp(dir))
    return -1;
  snprintf(tree_a, sizeof(tree_a), "%s/a", dir);
  snprintf(tree_b, sizeof(tree_b), "%s/b", dir);
  make_tree(tree_a, false);
  sleep(1); /* b's ctimes and mtimes differ from a's */
  make_tree(tree_b, true);
  return 0;
}

static int teardown(void **state) {
  rm_rf(dir);
  return fixture_teardown(state);
}

static char *hash(const char *path) {
  char *hex = NULL;
  struct kgb_ctx *c = NULL;
  kgb_ctx_new(&c);
  kgb_ctx_set_string(&c->workdir, dir);
  assert_int_equal(kgb_sha256_file(c, path, &hex), 0);
  kgb_ctx_free(c);
  return hex;
}

static char *out(const char *name) { return kgb_strdup_printf("%s/%s", dir, name); }

static void same_archives(enum kgb_archive_format f, enum kgb_compression c, const char *init) {
  char *a = out("a.arc"), *b = out("b.arc");
  kgb_error_clear(ctx);
  if (kgb_tree_archive(ctx, tree_a, a, f, c, EPOCH, init) != 0)
    fail_msg("%s", kgb_error_detail(ctx));
  assert_int_equal(kgb_tree_archive(ctx, tree_b, b, f, c, EPOCH, init), 0);
  char *ha = hash(a), *hb = hash(b);
  assert_string_equal(ha, hb);
  free(ha);
  free(hb);
  free(a);
  free(b);
}

static void test_archives_reproducible(void **state) {
  (void)state;
  same_archives(KGB_ARCHIVE_CPIO, KGB_COMPRESS_ZSTD, "/sbin/init");
  same_archives(KGB_ARCHIVE_CPIO, KGB_COMPRESS_GZIP, NULL);
  same_archives(KGB_ARCHIVE_TAR, KGB_COMPRESS_NONE, NULL);
}

static void test_initrd_content(void **state) {
  (void)state;
  char *path = out("initrd.img");
  kgb_error_clear(ctx);
  if (kgb_tree_archive(ctx, tree_a, path, KGB_ARCHIVE_CPIO, KGB_COMPRESS_GZIP, EPOCH,
                       "/sbin/init") != 0)
    fail_msg("%s", kgb_error_detail(ctx));
  struct archive *a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_all(a);
  assert_int_equal(archive_read_open_filename(a, path, 10240), ARCHIVE_OK);
  assert_int_equal(archive_filter_code(a, 0), ARCHIVE_FILTER_GZIP);
  struct archive_entry *e;
  char prev[256] = "";
  int n = 0, with_data = 0;
  bool init = false;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    const char *name = archive_entry_pathname(e);
    assert_int_equal(archive_format(a), ARCHIVE_FORMAT_CPIO_SVR4_NOCRC);
    if (strcmp(name, "init") == 0) {
      init = true;
      assert_string_equal(archive_entry_symlink(e), "/sbin/init");
    }
    /* sorted, except that linkify moves the data-carrying hard link last */
    if (!strstr(name, "_dri.so"))
      assert_true(strcmp(prev, name) < 0);
    snprintf(prev, sizeof(prev), "%s", name);
    assert_true(archive_entry_mtime(e) <= EPOCH);
    if (strcmp(name, "etc/os-release") == 0)
      assert_int_equal(archive_entry_mtime(e), EPOCH - 100);
    if (strstr(name, "_dri.so") && archive_entry_size(e) > 0)
      with_data++;
    n++;
  }
  archive_read_free(a);
  assert_true(init);
  assert_int_equal(with_data, 1); /* three links, one copy of the data */
  assert_true(n > 10);
  free(path);
}

static void test_mbr(void **state) {
  (void)state;
  uint8_t m[512];
  kgb_mbr_build(m, 0x11223344, 2048, 262144);
  assert_int_equal(m[440], 0x44);
  assert_int_equal(m[443], 0x11);
  assert_int_equal(m[446], 0x00);
  assert_int_equal(m[446 + 4], 0x83);
  assert_int_equal(m[454] | m[455] << 8 | m[456] << 16 | m[457] << 24, 2048);
  assert_int_equal(m[458] | m[459] << 8 | m[460] << 16 | m[461] << 24, 262144 - 2048);
  /* CHS of LBA 2048 with 255 heads and 63 sectors: cylinder 0, head 32, sector 33 */
  assert_int_equal(m[447], 32);
  assert_int_equal(m[448], 33);
  assert_int_equal(m[449], 0);
  assert_int_equal(m[510], 0x55);
  assert_int_equal(m[511], 0xaa);
  for (int i = 462; i < 510; i++)
    assert_int_equal(m[i], 0);
}

static void test_init_check(void **state) {
  (void)state;
  char *init = NULL;
  kgb_error_clear(ctx);
  assert_int_equal(kgb_image_check_init(ctx, tree_a, &init), 0);
  assert_string_equal(init, "/sbin/init"); /* /sbin/init -> /usr/bin/agent, inside the root */
  free(init);
  char *empty = out("empty-root");
  assert_int_equal(mkdir_p(empty, 0755), 0);
  fixture_put(empty, "init", "not executable", 0644);
  kgb_error_clear(ctx);
  assert_int_equal(kgb_image_check_init(ctx, empty, &init), -ENOENT);
  assert_non_null(strstr(kgb_error_detail(ctx),
                         "has no init: /init is not an executable file, /sbin/init is missing"));
  /* a link that would leave the root finds nothing there */
  char p[1024];
  snprintf(p, sizeof(p), "%s/sbin", empty);
  mkdir_p(p, 0755);
  link_in(empty, "/bin/sh", "sbin/init");
  kgb_error_clear(ctx);
  assert_int_equal(kgb_image_check_init(ctx, empty, &init), -ENOENT);
  free(empty);
}

static void test_report(void **state) {
  (void)state;
  struct kgb_tree_report r = {0};
  assert_int_equal(kgb_tree_report(ctx, tree_a, &r), 0);
  /* the three links of the DRI driver count once */
  uint64_t want = strlen("usr/bin/agent") + strlen("etc/os-release") +
                  strlen("usr/lib/dri/a_dri.so") + strlen("usr/share/doc/x/README") +
                  strlen("var/lib/dpkg/status") + strlen("/usr/bin/agent") + strlen("usr/lib");
  assert_int_equal(r.bytes, want);
  assert_string_equal(r.top[0].path, "/usr");
  assert_true(r.n_top >= 5);
  kgb_tree_report_release(&r);
}

static bool have(const char *prog) {
  char *p = find_program(prog);
  if (!p) {
    char sbin[64];
    snprintf(sbin, sizeof(sbin), "/usr/sbin/%s", prog);
    p = is_file(sbin) ? strdup(sbin) : NULL;
  }
  free(p);
  return p != NULL;
}

static void same_images(enum kgb_image_format f) {
  struct kgb_image_opts o = {.format = f, .free_mb = 1, .epoch = EPOCH, .seed = "key"};
  struct kgb_image_info ia = {0}, ib = {0};
  char *a = out("a.img"), *b = out("b.img");
  kgb_error_clear(ctx);
  if (kgb_image_pack(ctx, tree_a, a, &o, &ia) != 0)
    fail_msg("%s", kgb_error_detail(ctx));
  assert_int_equal(kgb_image_pack(ctx, tree_b, b, &o, &ib), 0);
  char *ha = hash(a), *hb = hash(b);
  assert_string_equal(ha, hb);
  assert_string_equal(ia.uuid, ib.uuid);
  /* Kata's layout: one partition at 1 MiB; ext4 rounded up to 128 MiB */
  int fd = open(a, O_RDONLY);
  uint8_t m[512];
  assert_int_equal(pread(fd, m, sizeof(m), 0), 512);
  close(fd);
  assert_int_equal(m[446 + 4], 0x83);
  assert_int_equal(m[454] | m[455] << 8, 2048);
  assert_int_equal(m[510], 0x55);
  if (f == KGB_IMAGE_EXT4)
    assert_int_equal(ia.size % (128 * 1024 * 1024), 0);
  assert_int_equal(ia.fs_size + 1024 * 1024 <= ia.size, true);
  /* another seed, another UUID */
  o.seed = "other";
  struct kgb_image_info ic = {0};
  assert_int_equal(kgb_image_pack(ctx, tree_a, b, &o, &ic), 0);
  assert_string_not_equal(ia.uuid, ic.uuid);
  kgb_image_info_release(&ia);
  kgb_image_info_release(&ib);
  kgb_image_info_release(&ic);
  free(ha);
  free(hb);
  free(a);
  free(b);
}

static void test_ext4_reproducible(void **state) {
  (void)state;
  if (!have("mkfs.ext4") || !have("debugfs"))
    skip();
  same_images(KGB_IMAGE_EXT4);
}

static void test_erofs_reproducible(void **state) {
  (void)state;
  if (!have("mkfs.erofs"))
    skip();
  same_images(KGB_IMAGE_EROFS);
}

static void test_no_init_refused(void **state) {
  (void)state;
  char *root = out("noinit");
  fixture_put(root, "etc/x", "x", 0644);
  char *img = out("noinit.img");
  struct kgb_image_opts o = {.format = KGB_IMAGE_INITRD, .epoch = EPOCH, .seed = "k"};
  struct kgb_image_info info = {0};
  kgb_error_clear(ctx);
  assert_int_equal(kgb_image_pack(ctx, root, img, &o, &info), -ENOENT);
  assert_false(is_file(img));
  free(root);
  free(img);
}

static void test_names(void **state) {
  (void)state;
  assert_int_equal(kgb_image_format_from_string("erofs"), KGB_IMAGE_EROFS);
  assert_int_equal(kgb_image_format_from_string("qcow2"), _KGB_IMAGE_FORMAT_INVALID);
  assert_string_equal(kgb_compression_to_string(KGB_COMPRESS_ZSTD), "zstd");
  assert_int_equal(kgb_compression_from_string("xz"), _KGB_COMPRESS_INVALID);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_archives_reproducible),
      cmocka_unit_test(test_initrd_content),
      cmocka_unit_test(test_mbr),
      cmocka_unit_test(test_init_check),
      cmocka_unit_test(test_report),
      cmocka_unit_test(test_ext4_reproducible),
      cmocka_unit_test(test_erofs_reproducible),
      cmocka_unit_test(test_no_init_refused),
      cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
