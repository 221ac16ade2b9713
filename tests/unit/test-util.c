/* builder/shared/util.c: what the file helpers refuse to read and how -o FILE is written. */
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

int main(void) {
  const struct CMUnitTest tests[] = {
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
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
