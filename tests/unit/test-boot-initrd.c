/* boot-test's initrd writer: the overlay's entries, owners, times and contents read back with
 * libarchive, the image's initrd kept in front of it on a 4-byte boundary, the compression
 * chosen from the kernel's config, and a missing program named in the error. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <archive.h>
#include <archive_entry.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "boot-initrd.h"
#include "util.h"

#define EPOCH 1700000000LL

static struct kgb_ctx *ctx;
static char tmpdir[] = "/tmp/kgb-test-boot-initrd-XXXXXX";

static int setup(void **state) {
  (void)state;
  int r = kgb_ctx_new(&ctx);
  if (r == 0 && !mkdtemp(tmpdir))
    r = -errno;
  return r;
}
static int teardown(void **state) {
  (void)state;
  rm_rf(tmpdir);
  ctx = kgb_ctx_free(ctx);
  return 0;
}

static char *tmp_path(const char *name) {
  char *p = strjoin_path(tmpdir, name);
  assert_non_null(p);
  return p;
}

static void test_filter(void **state) {
  (void)state;
  assert_string_equal(kgb_boot_initrd_filter(NULL), "gzip");
  assert_string_equal(kgb_boot_initrd_filter("#\nCONFIG_RD_GZIP=y\nCONFIG_RD_ZSTD=y\n"), "gzip");
  assert_string_equal(kgb_boot_initrd_filter("#\nCONFIG_RD_ZSTD=y\n"), "zstd");
  assert_null(kgb_boot_initrd_filter("#\n# CONFIG_RD_GZIP is not set\n"));
}

static void test_overlay(void **state) {
  (void)state;
  _cleanup_free_ char *check = tmp_path("check"), *initrd = tmp_path("initrd.img");
  assert_int_equal(write_file_atomic(check, "#!check\n", 8, 0755), 0);
  struct kgb_boot_initrd o = {
      .guest_check = check, .plan = "release 6.1.0\n", .filter = "gzip", .epoch = EPOCH};
  assert_int_equal(kgb_boot_initrd_write(ctx, NULL, &o, initrd), 0);

  struct archive *a = archive_read_new();
  assert_non_null(a);
  archive_read_support_format_cpio(a);
  archive_read_support_filter_gzip(a);
  assert_int_equal(archive_read_open_filename(a, initrd, 4096), ARCHIVE_OK);
  static const struct {
    const char *path;
    mode_t type, perm;
  } want[] = {
      {"dev", AE_IFDIR, 0755},       {"kgb", AE_IFDIR, 0755},      {"kgb/modules", AE_IFDIR, 0755},
      {"proc", AE_IFDIR, 0755},      {"sys", AE_IFDIR, 0755},      {"dev/console", AE_IFCHR, 0600},
      {"kgb/check", AE_IFREG, 0755}, {"kgb/plan", AE_IFREG, 0644},
  };
  struct archive_entry *e;
  size_t n = 0;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    assert_true(n < sizeof(want) / sizeof(want[0]));
    assert_string_equal(archive_entry_pathname(e), want[n].path);
    assert_int_equal(archive_entry_filetype(e), want[n].type);
    assert_int_equal(archive_entry_perm(e), want[n].perm);
    assert_int_equal(archive_entry_uid(e), 0);
    assert_int_equal(archive_entry_gid(e), 0);
    assert_int_equal(archive_entry_mtime(e), EPOCH);
    if (want[n].type == AE_IFCHR)
      assert_int_equal(archive_entry_rdev(e), makedev(5, 1));
    if (STREQ(want[n].path, "kgb/plan")) {
      char buf[64] = {0};
      assert_int_equal(archive_read_data(a, buf, sizeof(buf) - 1), strlen(o.plan));
      assert_string_equal(buf, o.plan);
    }
    n++;
  }
  assert_int_equal(n, sizeof(want) / sizeof(want[0]));
  archive_read_free(a);

  /* no temporary file is left beside it */
  DIR *d = opendir(tmpdir);
  assert_non_null(d);
  for (struct dirent *de; (de = readdir(d));)
    if (strstr(de->d_name, ".tmp"))
      fail_msg("'%s' left behind", de->d_name);
  closedir(d);
}

static void test_base(void **state) {
  (void)state;
  _cleanup_free_ char *check = tmp_path("check"), *base = tmp_path("base.img"),
                      *initrd = tmp_path("initrd-base.img");
  assert_int_equal(write_file_atomic(check, "#!check\n", 8, 0755), 0);
  assert_int_equal(write_file_atomic(base, "BASE!", 5, 0644), 0);
  struct kgb_boot_initrd o = {.guest_check = check, .plan = "", .epoch = EPOCH};
  assert_int_equal(kgb_boot_initrd_write(ctx, base, &o, initrd), 0);
  _cleanup_free_ char *data = NULL;
  size_t len;
  assert_int_equal(read_full_file_max(initrd, 1 << 20, &data, &len), 0);
  /* the image's bytes, zeros to a 4-byte boundary, then an uncompressed newc archive */
  assert_true(len > 8);
  assert_memory_equal(data, "BASE!\0\0\0", 8);
  assert_memory_equal(data + 8, "070701", 6);
}

static void test_errors(void **state) {
  (void)state;
  _cleanup_free_ char *initrd = tmp_path("initrd-bad.img");
  struct kgb_boot_initrd o = {.guest_check = "/nonexistent/kgb-guest-check", .plan = ""};
  kgb_error_clear(ctx);
  assert_int_equal(kgb_boot_initrd_write(ctx, NULL, &o, initrd), -ENOENT);
  assert_non_null(strstr(kgb_error_detail(ctx), "/nonexistent/kgb-guest-check"));
  assert_false(is_file(initrd));
  kgb_error_clear(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_filter),
      cmocka_unit_test(test_overlay),
      cmocka_unit_test(test_base),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
