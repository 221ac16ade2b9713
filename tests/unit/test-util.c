/* builder/shared: what the file helpers refuse to read and how -o FILE is written; the sorted
 * directory listing, strv_sort, sizes, version order and the enum string tables. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "string-table.h"
#include "util.h"

static char dir[] = "/tmp/kgb-test-util-XXXXXX";

static int setup(void **state) {
  (void)state;
  return mkdtemp(dir) ? 0 : -1;
}
static int teardown(void **state) {
  (void)state;
  return rm_rf(dir);
}

static char *path_in(const char *name) { return strjoin_path(dir, name); }

static void put(const char *path, const char *text, mode_t mode) {
  assert_int_equal(write_file_atomic(path, text, strlen(text), mode), 0);
}

static void test_read_regular(void **state) {
  (void)state;
  _cleanup_free_ char *p = path_in("plain"), *text = NULL;
  put(p, "CONFIG_X=y\n", 0644);
  size_t len;
  assert_int_equal(read_full_file(p, &text, &len), 0);
  assert_string_equal(text, "CONFIG_X=y\n");
  assert_int_equal(len, 11);
}

/* A FIFO without a writer would block open() and read() forever: refused at once. */
static void test_read_fifo_refused_at_once(void **state) {
  (void)state;
  _cleanup_free_ char *p = path_in("fifo"), *text = NULL;
  assert_int_equal(mkfifo(p, 0644), 0);
  time_t t0 = time(NULL);
  assert_int_equal(read_full_file(p, &text, NULL), -ENOTSUP);
  assert_null(text);
  assert_true(time(NULL) - t0 < 5);
  assert_string_equal(file_error_reason(p, -ENOTSUP, READ_TEXT_MAX),
                      "it is a FIFO, not a regular file");
  assert_int_equal(open_regular_file(p, SIZE_MAX, NULL), -ENOTSUP);
}

static void test_read_directory_and_devices(void **state) {
  (void)state;
  _cleanup_free_ char *text = NULL;
  assert_int_equal(read_full_file(dir, &text, NULL), -EISDIR);
  assert_string_equal(file_error_reason(dir, -EISDIR, READ_TEXT_MAX),
                      "it is a directory, not a regular file");
  /* /dev/zero never ends: it must not be read at all */
  assert_int_equal(read_full_file("/dev/zero", &text, NULL), -ENOTSUP);
  assert_string_equal(file_error_reason("/dev/zero", -ENOTSUP, READ_TEXT_MAX),
                      "it is a character device, not a regular file");
  assert_null(text);
}

static void test_read_cap(void **state) {
  (void)state;
  _cleanup_free_ char *p = path_in("big"), *text = NULL;
  put(p, "0123456789abcdef", 0644);
  assert_int_equal(read_full_file_max(p, 10, &text, NULL), -EFBIG);
  assert_null(text);
  assert_string_equal(file_error_reason(p, -EFBIG, 10), "it is larger than 10 bytes");
  assert_string_equal(file_error_reason(p, -EFBIG, READ_TEXT_MAX), "it is larger than 16 MiB");
  assert_int_equal(read_full_file_max(p, 16, &text, NULL), 0);
  assert_string_equal(text, "0123456789abcdef");
  assert_int_equal(open_regular_file(p, 15, NULL), -EFBIG);
}

static char *slurp(const char *path) {
  char *text = NULL;
  assert_int_equal(read_full_file(path, &text, NULL), 0);
  return text;
}

static void test_output_new_file(void **state) {
  (void)state;
  _cleanup_free_ char *p = path_in("new.toml"), *text = NULL;
  assert_int_equal(write_file_output(p, "a\n", 2, 0640), 0);
  struct stat st;
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0640);
  text = slurp(p);
  assert_string_equal(text, "a\n");
}

/* Replacing a file keeps what a person set on it: owner, group, mode, extended attributes. */
static void test_output_keeps_metadata(void **state) {
  (void)state;
  _cleanup_free_ char *p = path_in("owned.toml"), *text = NULL;
  put(p, "old\n", 0640);
  bool root = geteuid() == 0;
  if (root)
    assert_int_equal(chown(p, 65534, 65534), 0);
  bool xattrs = setxattr(p, "user.test", "1", 1, 0) == 0;
  assert_int_equal(write_file_output(p, "new\n", 4, 0644), 0);
  text = slurp(p);
  assert_string_equal(text, "new\n");
  struct stat st;
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0640);
  if (root) {
    assert_int_equal(st.st_uid, 65534);
    assert_int_equal(st.st_gid, 65534);
  }
  if (xattrs) {
    char v[8] = "";
    assert_int_equal(getxattr(p, "user.test", v, sizeof(v)), 1);
    assert_int_equal(v[0], '1');
  }
}

static void test_output_read_only_refused(void **state) {
  (void)state;
  _cleanup_free_ char *p = path_in("ro.toml"), *text = NULL;
  put(p, "keep\n", 0444);
  assert_int_equal(write_file_output(p, "new\n", 4, 0644), -EACCES);
  assert_string_equal(file_error_reason(p, -EACCES, 0),
                      "it is read-only (mode 0444): make it writable (chmod u+w) if it should be "
                      "replaced");
  text = slurp(p);
  assert_string_equal(text, "keep\n");
}

/* A symbolic link stays a link; its target gets the content, even when it does not exist. */
static void test_output_through_symlink(void **state) {
  (void)state;
  _cleanup_free_ char *target = path_in("target.toml"), *link = path_in("link.toml");
  _cleanup_free_ char *dangling = path_in("dangling.toml"), *made = path_in("made.toml");
  put(target, "old\n", 0644);
  assert_int_equal(symlink("target.toml", link), 0);
  assert_int_equal(write_file_output(link, "new\n", 4, 0644), 0);
  struct stat st;
  assert_int_equal(lstat(link, &st), 0);
  assert_true(S_ISLNK(st.st_mode));
  _cleanup_free_ char *text = slurp(target);
  assert_string_equal(text, "new\n");

  assert_int_equal(symlink("made.toml", dangling), 0);
  assert_int_equal(write_file_output(dangling, "made\n", 5, 0644), 0);
  assert_int_equal(lstat(dangling, &st), 0);
  assert_true(S_ISLNK(st.st_mode));
  _cleanup_free_ char *text2 = slurp(made);
  assert_string_equal(text2, "made\n");
}

/* A character device node (a private one, never the real /dev/null) is written in place. */
static void test_output_char_device_in_place(void **state) {
  (void)state;
  _cleanup_free_ char *p = path_in("null");
  if (mknod(p, S_IFCHR | 0666, makedev(1, 3)) < 0)
    skip();
  assert_int_equal(write_file_output(p, "x\n", 2, 0644), 0);
  struct stat st;
  assert_int_equal(lstat(p, &st), 0);
  assert_true(S_ISCHR(st.st_mode));
  assert_int_equal(st.st_rdev, makedev(1, 3));
}

/* /dev/fd/N is that descriptor: the bytes go down the pipe, nothing is renamed. */
static void test_output_named_descriptor(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  char name[32];
  snprintf(name, sizeof(name), "/dev/fd/%d", fds[1]);
  assert_int_equal(write_file_output(name, "piped\n", 6, 0644), 0);
  char buf[16] = "";
  assert_int_equal(read(fds[0], buf, sizeof(buf) - 1), 6);
  assert_string_equal(buf, "piped\n");
  close(fds[0]);
  close(fds[1]);
}

static void test_output_fifo_in_place(void **state) {
  (void)state;
  _cleanup_free_ char *p = path_in("out.fifo");
  assert_int_equal(mkfifo(p, 0644), 0);
  int rd = open(p, O_RDONLY | O_NONBLOCK);
  assert_true(rd >= 0);
  assert_int_equal(write_file_output(p, "fifo\n", 5, 0644), 0);
  char buf[16] = "";
  assert_int_equal(read(rd, buf, sizeof(buf) - 1), 5);
  close(rd);
  struct stat st;
  assert_int_equal(lstat(p, &st), 0);
  assert_true(S_ISFIFO(st.st_mode));
}

static void test_output_directory_refused(void **state) {
  (void)state;
  assert_int_equal(write_file_output(dir, "x", 1, 0644), -EISDIR);
}

/* ---- primitives ---- */

static void test_strv_sort(void **state) {
  (void)state;
  _cleanup_strv_free_ char **v = NULL;
  const char *in[] = {"b", "a-b", "a", "B", "a.cfg"};
  for (size_t i = 0; i < ELEMENTSOF(in); i++)
    assert_int_equal(strv_extend(&v, in[i]), 0);
  strv_sort(v);
  /* byte order, not the locale's: upper case first, '-' before '.' */
  const char *want[] = {"B", "a", "a-b", "a.cfg", "b"};
  for (size_t i = 0; i < ELEMENTSOF(want); i++)
    assert_string_equal(v[i], want[i]);
  assert_null(v[ELEMENTSOF(want)]);
  strv_sort(NULL);
}

static bool only_files(int dir_fd, const char *name, void *userdata) {
  struct stat st;
  (*(unsigned *)userdata)++;
  return fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

static void test_readdir_sorted(void **state) {
  (void)state;
  _cleanup_free_ char *top = path_in("listing"), *sub = path_in("listing/sub");
  assert_int_equal(mkdir_p(sub, 0755), 0);
  const char *files[] = {"zeta", ".hidden", "alpha", "Beta", "mid.list"};
  for (size_t i = 0; i < ELEMENTSOF(files); i++) {
    _cleanup_free_ char *p = strjoin_path(top, files[i]);
    put(p, "x", 0644);
  }
  _cleanup_strv_free_ char **all = NULL, **visible = NULL, **regular = NULL, **none = NULL;
  assert_int_equal(readdir_sorted(top, 0, NULL, NULL, &all), 0);
  const char *want_all[] = {".hidden", "Beta", "alpha", "mid.list", "sub", "zeta"};
  assert_int_equal(strv_length(all), ELEMENTSOF(want_all));
  for (size_t i = 0; i < ELEMENTSOF(want_all); i++)
    assert_string_equal(all[i], want_all[i]);
  assert_int_equal(readdir_sorted(top, READDIR_NO_HIDDEN, NULL, NULL, &visible), 0);
  assert_int_equal(strv_length(visible), 5);
  assert_string_equal(visible[0], "Beta");
  unsigned seen = 0;
  assert_int_equal(readdir_sorted(top, READDIR_NO_HIDDEN, only_files, &seen, &regular), 0);
  assert_int_equal(seen, 5); /* the hidden file never reaches the filter */
  assert_int_equal(strv_length(regular), 4);
  assert_string_equal(regular[3], "zeta");
  /* an empty directory is an empty vector; a missing one, its errno */
  assert_int_equal(readdir_sorted(sub, 0, NULL, NULL, &none), 0);
  assert_non_null(none);
  assert_null(none[0]);
  char **untouched = NULL;
  _cleanup_free_ char *missing = path_in("listing/missing");
  assert_int_equal(readdir_sorted(missing, 0, NULL, NULL, &untouched), -ENOENT);
  assert_null(untouched);
}

static void test_format_size(void **state) {
  (void)state;
  char buf[FORMAT_SIZE_MAX];
  assert_string_equal(format_size(buf, sizeof(buf), (uint64_t)32 << 30, FORMAT_SIZE_UNIT),
                      "32 GiB");
  assert_string_equal(FORMAT_SIZE(128, FORMAT_SIZE_UNIT), "128 B");
  assert_string_equal(FORMAT_SIZE(16 << 10, FORMAT_SIZE_UNIT), "16 KiB");
  assert_string_equal(FORMAT_SIZE(((uint64_t)3 << 30) - 1, FORMAT_SIZE_UNIT), "2 GiB");
  assert_string_equal(FORMAT_SIZE((uint64_t)5 << 40, FORMAT_SIZE_UNIT), "5 TiB");
  assert_string_equal(FORMAT_SIZE(UINT64_MAX, FORMAT_SIZE_UNIT), "16777215 TiB");
  assert_string_equal(FORMAT_SIZE(10, FORMAT_SIZE_LIMIT), "10 bytes");
  assert_string_equal(FORMAT_SIZE(300 << 10, FORMAT_SIZE_LIMIT), "307200 bytes");
  assert_string_equal(FORMAT_SIZE(16 << 20, FORMAT_SIZE_LIMIT), "16 MiB");
  assert_string_equal(FORMAT_SIZE((uint64_t)2 << 30, FORMAT_SIZE_LIMIT), "2 GiB");
  assert_string_equal(FORMAT_SIZE((uint64_t)3 << 29, FORMAT_SIZE_LIMIT), "1536 MiB");
  assert_string_equal(FORMAT_SIZE(200, FORMAT_SIZE_DECIMAL), "0.2 KiB");
  assert_string_equal(FORMAT_SIZE(7 << 19, FORMAT_SIZE_DECIMAL), "3.5 MiB");
  assert_string_equal(FORMAT_SIZE((uint64_t)5 << 28, FORMAT_SIZE_DECIMAL), "1.25 GiB");
  /* the longest text fits, cut rather than overrun in a smaller buffer */
  assert_true(strlen(FORMAT_SIZE(UINT64_MAX, FORMAT_SIZE_LIMIT)) < FORMAT_SIZE_MAX);
  char small[4];
  assert_string_equal(format_size(small, sizeof(small), 1000, FORMAT_SIZE_LIMIT), "100");
}

static void test_version_compare(void **state) {
  (void)state;
  assert_true(version_compare("6.1", "6.1.5") < 0);
  assert_true(version_compare("6.10", "6.9") > 0);
  assert_int_equal(version_compare("6.1.0", "6.1.0"), 0);
  assert_int_equal(version_compare("6.1", "6.1.0"), 0);
  assert_true(version_compare("5.4.0", "5.13") < 0);
  assert_int_equal(version_compare("6.1.0-17-amd64", "6.1"), 0);
  assert_true(version_compare("6.1.0-17-amd64", "6.2") < 0);
  assert_true(version_compare("535.104.05", "535.54.03") > 0);
  /* a series holds every release below it, and nothing else */
  assert_int_equal(version_compare_series("6.1.192", "6.1"), 0);
  assert_int_equal(version_compare_series("6.1", "6.1"), 0);
  assert_true(version_compare_series("6.2", "6.1") > 0);
  assert_true(version_compare_series("6.0.9", "6.1") < 0);
  assert_true(version_compare("6.1.192", "6.1") > 0);
}

enum color { COLOR_RED, COLOR_GREEN, COLOR_BLUE, _COLOR_MAX, _COLOR_INVALID = -EINVAL };
static const char *const color_table[_COLOR_MAX] = {
    [COLOR_RED] = "red", [COLOR_GREEN] = "green", [COLOR_BLUE] = "blue"};
DEFINE_PRIVATE_STRING_TABLE_LOOKUP(color, enum color);

static void test_string_table(void **state) {
  (void)state;
  for (int i = 0; i < _COLOR_MAX; i++)
    assert_int_equal(color_from_string(color_to_string((enum color)i)), i);
  assert_string_equal(color_to_string(COLOR_BLUE), "blue");
  assert_null(color_to_string(_COLOR_MAX));
  assert_null(color_to_string(_COLOR_INVALID));
  assert_int_equal(color_from_string("Red"), _COLOR_INVALID);
  assert_int_equal(color_from_string(""), _COLOR_INVALID);
  assert_int_equal(color_from_string(NULL), _COLOR_INVALID);
}

/* A sparse image is copied hole by hole: the same bytes, the holes stay holes, and only its
 * data is written (the installed 1 GiB image is mostly holes). */
static void test_copy_sparse(void **state) {
  (void)state;
  char tmp[] = "/tmp/kgb-test-copy-XXXXXX";
  assert_non_null(mkdtemp(tmp));
  char *src = strjoin_path(tmp, "src"), *dst = strjoin_path(tmp, "dst");
  int fd = open(src, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  assert_true(fd >= 0);
  char block[4096];
  memset(block, 'a', sizeof(block));
  assert_int_equal(pwrite(fd, block, sizeof(block), 0), (ssize_t)sizeof(block));
  memset(block, 'b', sizeof(block));
  assert_int_equal(pwrite(fd, block, sizeof(block), 8 << 20), (ssize_t)sizeof(block));
  assert_int_equal(ftruncate(fd, 32 << 20), 0); /* a hole at the end too */
  close(fd);
  assert_int_equal(copy_file_atomic(src, dst, 0640), 0);
  assert_true(files_equal(src, dst));
  struct stat st;
  assert_int_equal(stat(dst, &st), 0);
  assert_int_equal(st.st_size, 32 << 20);
  assert_int_equal(st.st_mode & 07777, 0640);
  /* where the file system keeps holes (tmpfs, ext4), the copy keeps them */
  struct stat sst;
  assert_int_equal(stat(src, &sst), 0);
  if (sst.st_blocks * 512 < (off_t)(1 << 20))
    assert_true(st.st_blocks * 512 < (off_t)(1 << 20));
  /* an empty file, and one with no hole at all */
  fd = open(src, O_WRONLY | O_TRUNC | O_CLOEXEC);
  assert_true(fd >= 0);
  close(fd);
  assert_int_equal(copy_file_atomic(src, dst, 0644), 0);
  assert_int_equal(stat(dst, &st), 0);
  assert_int_equal(st.st_size, 0);
  assert_int_equal(write_file_atomic(src, "dense", 5, 0644), 0);
  assert_int_equal(copy_file_atomic(src, dst, 0644), 0);
  assert_true(files_equal(src, dst));
  free(src);
  free(dst);
  rm_rf(tmp);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_copy_sparse),
      cmocka_unit_test(test_read_regular),
      cmocka_unit_test(test_read_fifo_refused_at_once),
      cmocka_unit_test(test_read_directory_and_devices),
      cmocka_unit_test(test_read_cap),
      cmocka_unit_test(test_output_new_file),
      cmocka_unit_test(test_output_keeps_metadata),
      cmocka_unit_test(test_output_read_only_refused),
      cmocka_unit_test(test_output_through_symlink),
      cmocka_unit_test(test_output_char_device_in_place),
      cmocka_unit_test(test_output_named_descriptor),
      cmocka_unit_test(test_output_fifo_in_place),
      cmocka_unit_test(test_output_directory_refused),
      cmocka_unit_test(test_strv_sort),
      cmocka_unit_test(test_readdir_sorted),
      cmocka_unit_test(test_format_size),
      cmocka_unit_test(test_version_compare),
      cmocka_unit_test(test_string_table),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
