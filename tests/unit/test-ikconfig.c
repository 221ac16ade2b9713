/* Reading built kernels: the embedded config of ELF objects and bzImages in every compression
 * (tests/fixtures/kernels/mkfixtures.py builds them), required values against a config, and
 * module vermagic. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "ikconfig.h"
#include "util.h"

static char *expected_config; /* tests/fixtures/kernels/config, what every fixture embeds */

static int setup(void **state) {
  (void)state;
  size_t len;
  if (read_full_file(KGB_TEST_FIXTURES "/kernels/config", &expected_config, &len) < 0)
    return -1;
  return fixture_setup(state);
}

static int teardown(void **state) {
  free(expected_config);
  return fixture_teardown(state);
}

static char *fixture(const char *name) {
  char *p = kgb_strdup_printf("%s/%s", KGB_KERNEL_FIXTURES, name);
  assert_non_null(p);
  return p;
}

static void read_ok(const char *name, const char *format, const char *compression) {
  _cleanup_free_ char *path = fixture(name);
  char *config = NULL;
  struct kgb_ikconfig_info info = {0};
  kgb_error_clear(ctx);
  int r = kgb_ikconfig_read_info(ctx, path, &config, &info);
  if (r < 0)
    fail_msg("%s: %s", name, kgb_error_detail(ctx));
  assert_string_equal(config, expected_config);
  assert_string_equal(info.format, format);
  if (compression) {
    struct stat st;
    _cleanup_free_ char *vmlinux = fixture("vmlinux");
    assert_int_equal(stat(vmlinux, &st), 0);
    assert_string_equal(info.compression, compression);
    assert_int_equal(info.payload_size, (uint64_t)st.st_size);
  } else {
    assert_string_equal(info.section, ".rodata");
  }
  free(config);
}

static void read_fails(const char *path, int err, const char *detail) {
  char *config = NULL;
  kgb_error_clear(ctx);
  assert_int_equal(kgb_ikconfig_read(ctx, path, &config), err);
  assert_null(config);
  assert_detail(detail);
}

/* `kernel verify FIFO` blocked in open(); /dev/zero would be read without end. Both are
 * refused at once, the file named. */
static void test_not_regular_files(void **state) {
  (void)state;
  char dir[] = "/tmp/kgb-test-ikconfig-XXXXXX";
  assert_non_null(mkdtemp(dir));
  _cleanup_free_ char *fifo = strjoin_path(dir, "vmlinux.fifo");
  assert_int_equal(mkfifo(fifo, 0644), 0);
  time_t t0 = time(NULL);
  read_fails(fifo, -ENOTSUP, "it is a FIFO, not a regular file");
  assert_detail(fifo);
  assert_true(time(NULL) - t0 < 5);
  read_fails("/dev/zero", -ENOTSUP, "'/dev/zero': it is a character device, not a regular file");
  read_fails(dir, -EISDIR, "it is a directory, not a regular file");
  rm_rf(dir);
}

static void test_vmlinux(void **state) {
  (void)state;
  read_ok("vmlinux", "vmlinux", NULL);
}

static void test_bzimage_every_compression(void **state) {
  (void)state;
  static const char *const kinds[] = {"gzip", "xz", "zstd", "bzip2", "lzma", "lz4"};
  for (size_t i = 0; i < ELEMENTSOF(kinds); i++) {
    _cleanup_free_ char *name = kgb_strdup_printf("bzImage-%s", kinds[i]);
    _cleanup_free_ char *path = fixture(name);
    if (STREQ(kinds[i], "lz4") && !is_file(path))
      continue; /* built only where the lz4 program is installed */
    read_ok(name, "bzImage", kinds[i]);
  }
}

static void test_no_ikconfig(void **state) {
  (void)state;
  _cleanup_free_ char *vmlinux = fixture("vmlinux-noikconfig");
  _cleanup_free_ char *bz = fixture("bzImage-noikconfig");
  _cleanup_free_ char *msg =
      kgb_strdup_printf("'%s' has no embedded config: build it with CONFIG_IKCONFIG=y", vmlinux);
  read_fails(vmlinux, -ENODATA, msg);
  read_fails(bz, -ENODATA, "has no embedded config: build it with CONFIG_IKCONFIG=y");
}

static void test_not_a_kernel(void **state) {
  (void)state;
  _cleanup_free_ char *obj = fixture("not-a-kernel.o");
  read_fails(obj, -ENOEXEC, "is an ELF file but not a Linux kernel");
  read_fails(KGB_TEST_FIXTURES "/kernels/config", -ENOEXEC,
             "is not a kernel image: neither an ELF vmlinux nor an x86 bzImage");
  read_fails(KGB_TEST_FIXTURES "/kernels", -EISDIR, "it is a directory, not a regular file");
  read_fails(KGB_TEST_FIXTURES "/kernels/no-such-file", -ENOENT,
             "/kernels/no-such-file': No such file or directory");
}

static void test_corrupt(void **state) {
  (void)state;
  _cleanup_free_ char *vmlinux = fixture("vmlinux-corrupt");
  _cleanup_free_ char *bz = fixture("bzImage-corrupt");
  _cleanup_free_ char *cut = fixture("bzImage-truncated");
  read_fails(vmlinux, -EBADMSG, "its embedded config is corrupt");
  read_fails(bz, -EBADMSG, "its gzip payload is corrupt");
  read_fails(cut, -ENOEXEC, "outside the file's");
}

/* The bzImage-xz fixture with one change, written to a temporary file. */
static char *patched_bzimage(const char *tmpname, void (*patch)(char *img, size_t len)) {
  _cleanup_free_ char *src = fixture("bzImage-xz");
  char *img;
  size_t len;
  assert_int_equal(read_full_file(src, &img, &len), 0);
  patch(img, len);
  char *out = fixture(tmpname);
  assert_int_equal(write_file_atomic(out, img, len, 0644), 0);
  free(img);
  return out;
}

static uint32_t get32(const char *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

static char *payload_of(char *img) {
  size_t setup = ((size_t)(unsigned char)img[0x1f1] + 1) * 512;
  return img + setup + get32(img + 0x248);
}

static void bad_trailer(char *img, size_t len) {
  (void)len;
  char *payload = payload_of(img);
  payload[get32(img + 0x24c) - 4] ^= 1;
}
static void old_protocol(char *img, size_t len) {
  (void)len;
  img[0x206] = 0x04, img[0x207] = 0x02;
}
static void unknown_magic(char *img, size_t len) {
  (void)len;
  memcpy(payload_of(img), "ABCD", 4);
}

static void test_bzimage_header_checks(void **state) {
  (void)state;
  _cleanup_free_ char *a = patched_bzimage("tmp-trailer", bad_trailer);
  read_fails(a, -EBADMSG, "but its trailer says");
  _cleanup_free_ char *b = patched_bzimage("tmp-old", old_protocol);
  read_fails(b, -ENOEXEC, "boot protocol 2.04 has no payload fields");
  _cleanup_free_ char *c = patched_bzimage("tmp-magic", unknown_magic);
  read_fails(c, -ENOEXEC, "unknown compression of its payload (magic 41 42 43 44)");
  unlink(a), unlink(b), unlink(c);
}

/* libarchive and the external programs give the same bytes for every payload kind. */
static void test_decompress_both_ways(void **state) {
  (void)state;
  static const char *const kinds[] = {"gzip", "xz", "zstd", "bzip2", "lzma", "lz4"};
  _cleanup_free_ char *vpath = fixture("vmlinux");
  _cleanup_free_ char *vmlinux = NULL;
  size_t vlen;
  assert_int_equal(read_full_file(vpath, &vmlinux, &vlen), 0);
  size_t external = 0;
  for (size_t i = 0; i < ELEMENTSOF(kinds); i++) {
    _cleanup_free_ char *name = kgb_strdup_printf("bzImage-%s", kinds[i]);
    _cleanup_free_ char *path = fixture(name);
    if (!is_file(path))
      continue;
    _cleanup_free_ char *img = NULL;
    size_t len;
    assert_int_equal(read_full_file(path, &img, &len), 0);
    const char *payload = payload_of(img);
    size_t plen = get32(img + 0x24c) - (STREQ(kinds[i], "gzip") ? 0 : 4);
    assert_string_equal(kgb_compression_detect(payload, plen), kinds[i]);
    for (unsigned flags = 0; flags <= KGB_DECOMPRESS_EXTERNAL; flags++) {
      char *out = NULL;
      size_t olen = 0;
      const char *format = NULL;
      kgb_error_clear(ctx);
      int r = kgb_decompress(ctx, name, payload, plen, 1 << 20, flags, &out, &olen, &format);
      if (r == -ENOENT && flags)
        continue; /* that program is not installed */
      if (r < 0)
        fail_msg("%s (flags %u): %s", name, flags, kgb_error_detail(ctx));
      assert_string_equal(format, kinds[i]);
      assert_int_equal(olen, vlen);
      assert_memory_equal(out, vmlinux, vlen);
      free(out);
      external += flags;
    }
    /* The output limit holds on both paths. */
    for (unsigned flags = 0; flags <= KGB_DECOMPRESS_EXTERNAL; flags++) {
      char *out = NULL;
      size_t olen = 0;
      kgb_error_clear(ctx);
      int r = kgb_decompress(ctx, name, payload, plen, 100, flags, &out, &olen, NULL);
      if (r == -ENOENT && flags)
        continue;
      assert_int_equal(r, -EFBIG);
      assert_null(out);
    }
  }
  assert_true(external >= 3); /* gzip, xz and zstd at least: the fixtures needed them */
  char *out = NULL;
  size_t olen;
  kgb_error_clear(ctx);
  assert_int_equal(kgb_decompress(ctx, "'x'", "plain text", 10, 100, 0, &out, &olen, NULL),
                   -EBADMSG);
  assert_detail("'x' is not in a known compression format");
}

static struct kgb_required_check *check_ok(const char *config, char **required) {
  struct kgb_required_check *c = NULL;
  kgb_error_clear(ctx);
  int r = kgb_verify_required(ctx, "t.config", config, required, &c);
  if (r < 0)
    fail_msg("%s", kgb_error_detail(ctx));
  return c;
}

static void test_required_pass(void **state) {
  (void)state;
  char *required[] = {"CONFIG_DRM=y",
                      "CONFIG_DRM_VIRTIO_GPU=y",
                      "CONFIG_VFIO=m",
                      "# CONFIG_DRM_I915 is not set",
                      "CONFIG_DRM_NOUVEAU=n",
                      "# CONFIG_NOT_IN_THIS_KERNEL is not set",
                      "CONFIG_NR_CPUS=0x40",
                      "CONFIG_LOCALVERSION=\"-fixture\"",
                      NULL};
  struct kgb_required_check *c = check_ok(expected_config, required);
  assert_int_equal(c->n_checked, 8);
  assert_int_equal(c->n_mismatches, 0);
  kgb_required_check_free(c);
}

static void test_required_mismatch(void **state) {
  (void)state;
  char *required[] = {"CONFIG_DRM=y",
                      "CONFIG_DRM_I915=y",
                      "CONFIG_DRM_I915_USERPTR=y",
                      "# CONFIG_DRM_VIRTIO_GPU is not set",
                      "CONFIG_VFIO=y",
                      "CONFIG_LOCALVERSION=\"-nvidia-gpu\"",
                      "CONFIG_NR_CPUS=128",
                      NULL};
  struct kgb_required_check *c = check_ok(expected_config, required);
  assert_int_equal(c->n_checked, 7);
  assert_int_equal(c->n_mismatches, 6);
  static const struct {
    const char *symbol, *required, *actual;
    bool absent;
  } want[] = {
      {"CONFIG_DRM_I915", "y", "n", false},
      {"CONFIG_DRM_I915_USERPTR", "y", "n", true},
      {"CONFIG_DRM_VIRTIO_GPU", "n", "y", false},
      {"CONFIG_VFIO", "y", "m", false},
      {"CONFIG_LOCALVERSION", "\"-nvidia-gpu\"", "\"-fixture\"", false},
      {"CONFIG_NR_CPUS", "128", "64", false},
  };
  for (size_t i = 0; i < ELEMENTSOF(want); i++) {
    assert_string_equal(c->mismatches[i].symbol, want[i].symbol);
    assert_string_equal(c->mismatches[i].required, want[i].required);
    assert_string_equal(c->mismatches[i].actual, want[i].actual);
    assert_int_equal(c->mismatches[i].absent, want[i].absent);
  }
  kgb_required_check_free(c);
}

static void test_required_bad_input(void **state) {
  (void)state;
  struct kgb_required_check *c = NULL;
  char *bad_line[] = {"CONFIG_DRM=y", "DRM=y", NULL};
  kgb_error_clear(ctx);
  assert_true(kgb_verify_required(ctx, "t.config", expected_config, bad_line, &c) < 0);
  assert_null(c);
  assert_detail("kernel.required[1]");
  char *ok[] = {"CONFIG_DRM=y", NULL};
  kgb_error_clear(ctx);
  assert_true(kgb_verify_required(ctx, "t.config", "CONFIG_DRM=maybe\n", ok, &c) < 0);
  assert_null(c);
  assert_detail("t.config");
}

static void test_module_vermagic(void **state) {
  (void)state;
  _cleanup_free_ char *good = fixture("mod-good.ko");
  _cleanup_free_ char *none = fixture("mod-none.ko");
  _cleanup_free_ char *xz = fixture("modules-ok/kernel/drivers/vfio/vfio.ko.xz");
  char *v = NULL;
  kgb_error_clear(ctx);
  assert_int_equal(kgb_module_vermagic(ctx, good, &v), 0);
  assert_string_equal(v, "6.1.0-fixture SMP preempt mod_unload modversions");
  free(v);
  assert_int_equal(kgb_module_vermagic(ctx, xz, &v), 0);
  assert_string_equal(v, "6.1.0-fixture SMP preempt mod_unload modversions");
  free(v);
  v = NULL;
  assert_int_equal(kgb_module_vermagic(ctx, none, &v), -ENODATA);
  assert_null(v);
  assert_detail("no vermagic in its .modinfo section");
  kgb_error_clear(ctx);
  assert_int_equal(kgb_module_vermagic(ctx, KGB_TEST_FIXTURES "/kernels/config", &v), -ENOEXEC);
  assert_detail("not an ELF object");
}

static void test_modules_ok(void **state) {
  (void)state;
  _cleanup_free_ char *dir = fixture("modules-ok");
  struct kgb_modules_check *c = NULL;
  kgb_error_clear(ctx);
  int r = kgb_modules_vermagic_check(ctx, dir, "6.1.0-fixture", &c);
  if (r < 0)
    fail_msg("%s", kgb_error_detail(ctx));
  /* .ko, .ko.xz, .ko.zst, .ko.gz; the build -> .. link is not followed */
  assert_int_equal(c->n_checked, 4);
  assert_int_equal(c->n_mismatches, 0);
  kgb_modules_check_free(c);
  /* the same modules against another release: every one is a mismatch */
  kgb_error_clear(ctx);
  assert_int_equal(kgb_modules_vermagic_check(ctx, dir, "6.1.0", &c), 0);
  assert_int_equal(c->n_mismatches, 4);
  assert_string_equal(c->mismatches[0].path, "kernel/drivers/gpu/drm/virtio/virtio-gpu.ko");
  assert_null(c->mismatches[0].problem);
  kgb_modules_check_free(c);
}

static void test_modules_mixed(void **state) {
  (void)state;
  _cleanup_free_ char *dir = fixture("modules-mixed");
  struct kgb_modules_check *c = NULL;
  kgb_error_clear(ctx);
  assert_int_equal(kgb_modules_vermagic_check(ctx, dir, "6.1.0-fixture", &c), 0);
  assert_null(kgb_error_detail(ctx)); /* a module's problem is not the run's error */
  assert_int_equal(c->n_checked, 6);
  assert_int_equal(c->n_mismatches, 5);
  static const struct {
    const char *path, *vermagic, *problem;
  } want[] = {
      {"b-wrong.ko.xz", "6.1.0-other SMP preempt mod_unload", NULL},
      {"c-none.ko.zst", NULL, "no vermagic"},
      {"d-longer.ko", "6.1.0-fixture-rc1 SMP", NULL},
      {"e-corrupt.ko.xz", NULL, "its xz data is corrupt"},
      {"f-text.ko", NULL, "not an ELF object"},
  };
  for (size_t i = 0; i < ELEMENTSOF(want); i++) {
    const struct kgb_module_mismatch *m = &c->mismatches[i];
    assert_string_equal(m->path, want[i].path);
    if (want[i].vermagic)
      assert_string_equal(m->vermagic, want[i].vermagic);
    else
      assert_null(m->vermagic);
    if (want[i].problem) {
      assert_non_null(m->problem);
      if (!strstr(m->problem, want[i].problem))
        fail_msg("%s: problem '%s' lacks '%s'", m->path, m->problem, want[i].problem);
    } else {
      assert_null(m->problem);
    }
  }
  kgb_modules_check_free(c);
}

static void test_modules_errors(void **state) {
  (void)state;
  _cleanup_free_ char *empty = fixture("modules-empty");
  _cleanup_free_ char *file = fixture("mod-good.ko");
  struct kgb_modules_check *c = NULL;
  kgb_error_clear(ctx);
  assert_int_equal(kgb_modules_vermagic_check(ctx, empty, "6.1.0-fixture", &c), -ENOENT);
  assert_detail("no module (.ko, .ko.gz, .ko.xz, .ko.zst) under");
  kgb_error_clear(ctx);
  assert_int_equal(kgb_modules_vermagic_check(ctx, file, "6.1.0-fixture", &c), -ENOTDIR);
  assert_detail("is not a directory");
  assert_null(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_not_regular_files),
      cmocka_unit_test(test_vmlinux),
      cmocka_unit_test(test_bzimage_every_compression),
      cmocka_unit_test(test_no_ikconfig),
      cmocka_unit_test(test_not_a_kernel),
      cmocka_unit_test(test_corrupt),
      cmocka_unit_test(test_bzimage_header_checks),
      cmocka_unit_test(test_decompress_both_ways),
      cmocka_unit_test(test_required_pass),
      cmocka_unit_test(test_required_mismatch),
      cmocka_unit_test(test_required_bad_input),
      cmocka_unit_test(test_module_vermagic),
      cmocka_unit_test(test_modules_ok),
      cmocka_unit_test(test_modules_mixed),
      cmocka_unit_test(test_modules_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
