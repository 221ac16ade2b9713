/* The guest data of a distribution (rootfs/<distro>/): the cleanup rules and their errors,
 * laying files into a root with modes that do not depend on the checkout, the cleanup of a
 * root, and what a stage key covers. The shipped rootfs/debian is loaded as it is. No root
 * privileges beyond writing a temporary directory. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "root-data.h"
#include "sbuf.h"

static void parse_fails(const char *text, const char *part) {
  struct kgb_root_cleanup_rule *v = NULL;
  size_t n = 0;
  kgb_error_clear(ctx);
  assert_int_equal(kgb_root_cleanup_parse(ctx, "cleanup", text, &v, &n), -EINVAL);
  assert_null(v);
  assert_detail(part);
}

static void test_cleanup_parse(void **state) {
  (void)state;
  struct kgb_root_cleanup_rule *v = NULL;
  size_t n = 0;
  assert_int_equal(kgb_root_cleanup_parse(ctx, "cleanup",
                                          "# comment\n\nremove /var/log/dpkg.log\n"
                                          "  remove /var/lib/apt/lists/*_*  # lists\n"
                                          "remove /x*\nempty /etc/machine-id\n",
                                          &v, &n),
                   0);
  assert_int_equal(n, 4);
  assert_int_equal(v[0].verb, KGB_CLEANUP_REMOVE);
  assert_string_equal(v[0].path, "/var/log/dpkg.log");
  assert_int_equal(v[1].verb, KGB_CLEANUP_MATCH);
  assert_string_equal(v[1].path, "/var/lib/apt/lists");
  assert_string_equal(v[1].pattern, "*_*");
  assert_int_equal(v[2].verb, KGB_CLEANUP_MATCH);
  assert_string_equal(v[2].path, "/");
  assert_string_equal(v[2].pattern, "x*");
  assert_int_equal(v[3].verb, KGB_CLEANUP_EMPTY);
  for (size_t i = 0; i < n; i++) {
    free(v[i].path);
    free(v[i].pattern);
  }
  free(v);

  parse_fails("remove /a\nzap /b\n", "cleanup:2: unknown word 'zap'");
  parse_fails("remove var/log\n", "cleanup:1: 'var/log' is not an absolute path");
  parse_fails("remove /var/../etc\n", "not an absolute path in the root");
  parse_fails("remove /var//log\n", "not an absolute path in the root");
  parse_fails("remove /\n", "not an absolute path in the root");
  parse_fails("remove /var/*/log\n", "a pattern may only be the last component");
  parse_fails("empty /etc/*\n", "a pattern may only be the last component");
  parse_fails("remove\n", "write 'remove PATH'");
  parse_fails("remove /a /b\n", "cleanup:1: 'remove /a /b'");
}

static char *tmpdir(void) {
  char *d = strdup("/tmp/kgb-test-root-data-XXXXXX");
  assert_non_null(d);
  assert_non_null(mkdtemp(d));
  return d;
}

static mode_t mode_of(const char *root, const char *rel) {
  _cleanup_free_ char *p = strjoin_path(root, rel);
  struct stat st;
  assert_int_equal(lstat(p, &st), 0);
  return st.st_mode;
}

static bool exists(const char *root, const char *rel) {
  _cleanup_free_ char *p = strjoin_path(root, rel);
  struct stat st;
  return lstat(p, &st) == 0;
}

/* a datadir with rootfs/test/{files,while-building,cleanup} */
static char *make_datadir(void) {
  char *d = tmpdir();
  fixture_put(d, "rootfs/test/files/etc/hostname", "localhost\n", 0600);
  fixture_put(d, "rootfs/test/files/usr/bin/tool", "#!/bin/sh\n", 0700);
  fixture_put(d, "rootfs/test/while-building/usr/sbin/policy-rc.d", "exit 101\n", 0775);
  fixture_put(d, "rootfs/test/cleanup",
              "remove /var/log/x.log\nremove /var/cache/*.bin\nempty /etc/machine-id\n"
              "empty /etc/absent\n",
              0644);
  _cleanup_free_ char *link = strjoin_path(d, "rootfs/test/files/etc/localtime");
  assert_int_equal(symlink("/usr/share/zoneinfo/UTC", link), 0);
  return d;
}

static void test_lay_and_cleanup(void **state) {
  (void)state;
  _cleanup_free_ char *data = make_datadir(), *root = tmpdir();
  assert_int_equal(kgb_ctx_set_string(&ctx->datadir, data), 0);
  _cleanup_(kgb_root_data_freep) struct kgb_root_data *d = NULL;
  assert_int_equal(kgb_root_data_load(ctx, "test", &d), 0);
  assert_int_equal(d->n_cleanup, 4);

  assert_int_equal(kgb_root_data_lay(ctx, d, KGB_ROOT_DATA_FILES, root), 0);
  assert_int_equal(kgb_root_data_lay(ctx, d, KGB_ROOT_DATA_WHILE_BUILDING, root), 0);
  /* the data's modes are normalized: 0644, or 0755 when executable */
  assert_int_equal(mode_of(root, "etc/hostname") & 07777, 0644);
  assert_int_equal(mode_of(root, "usr/bin/tool") & 07777, 0755);
  assert_int_equal(mode_of(root, "usr/sbin/policy-rc.d") & 07777, 0755);
  assert_true(S_ISLNK(mode_of(root, "etc/localtime")));

  fixture_put(root, "var/log/x.log", "log", 0644);
  fixture_put(root, "var/cache/a.bin", "", 0644);
  fixture_put(root, "var/cache/keep.txt", "", 0644);
  fixture_put(root, "etc/machine-id", "0123456789abcdef\n", 0644);
  assert_int_equal(kgb_root_data_cleanup(ctx, d, root), 0);
  assert_false(exists(root, "usr/sbin/policy-rc.d")); /* while-building: gone */
  assert_true(exists(root, "usr/bin/tool"));          /* files: stay */
  assert_false(exists(root, "var/log/x.log"));
  assert_false(exists(root, "var/cache/a.bin"));
  assert_true(exists(root, "var/cache/keep.txt"));
  assert_int_equal(mode_of(root, "etc/machine-id") & 07777, 0444);
  _cleanup_free_ char *mid = strjoin_path(root, "etc/machine-id"), *text = NULL;
  assert_int_equal(read_full_file(mid, &text, NULL), 0);
  assert_string_equal(text, "");
  assert_false(exists(root, "etc/absent")); /* empty: only an existing regular file */

  /* the key covers content and mode, not the checkout's umask */
  struct sbuf a = SBUF_INIT, b = SBUF_INIT, c = SBUF_INIT;
  assert_int_equal(kgb_root_data_describe(ctx, d, KGB_ROOT_DATA_FILES, &a), 0);
  _cleanup_free_ char *host = strjoin_path(data, "rootfs/test/files/etc/hostname");
  assert_int_equal(chmod(host, 0644), 0);
  assert_int_equal(kgb_root_data_describe(ctx, d, KGB_ROOT_DATA_FILES, &b), 0);
  assert_string_equal(sbuf_str(&a), sbuf_str(&b));
  fixture_put(data, "rootfs/test/files/etc/hostname", "guest\n", 0644);
  assert_int_equal(kgb_root_data_describe(ctx, d, KGB_ROOT_DATA_FILES, &c), 0);
  assert_string_not_equal(sbuf_str(&a), sbuf_str(&c));
  sbuf_release(&a);
  sbuf_release(&b);
  sbuf_release(&c);
  rm_rf(root);
  rm_rf(data);
}

static void test_missing_and_shipped(void **state) {
  (void)state;
  assert_int_equal(kgb_ctx_set_string(&ctx->datadir, FIXTURE_SRCDIR), 0);
  struct kgb_root_data *d = NULL;
  kgb_error_clear(ctx);
  assert_int_equal(kgb_root_data_load(ctx, "plan9", &d), -ENOENT);
  assert_detail("no guest data for the distribution 'plan9'");
  assert_detail("rootfs/README.md");
  /* what the project ships loads, with the files every Debian root gets */
  assert_int_equal(kgb_root_data_load(ctx, "debian", &d), 0);
  assert_non_null(d->files);
  assert_non_null(d->while_building);
  assert_true(d->n_cleanup >= 10);
  kgb_root_data_free(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cleanup_parse),
      cmocka_unit_test(test_lay_and_cleanup),
      cmocka_unit_test(test_missing_and_shipped),
  };
  return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
