/* boot-test: module load order, the bzImage's release, and whole runs against a stand-in QEMU
 * (tests/fixtures/fake-qemu.py) that reads the plan from the initrd, prints what the guest
 * would, serves QMP and can hang, fail or panic. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "boottest.h"
#include "fixture.h"
#include "image.h"
#include "util.h"

#define FAKE_QEMU KGB_TEST_FIXTURES "/fake-qemu.py"

static char tmpdir[] = "/tmp/kgb-test-boottest-XXXXXX";

static int setup(void **state) {
  int r = fixture_setup_datadir(state);
  if (r == 0)
    r = kgb_ctx_set_string(&ctx->sysfs, KGB_TEST_FIXTURES "/host-no-iommu/sys");
  if (r == 0 && !mkdtemp(tmpdir))
    r = -errno;
  if (r == 0)
    r = kgb_ctx_set_string(&ctx->workdir, tmpdir);
  return r;
}
static int teardown(void **state) {
  rm_rf(tmpdir);
  return fixture_teardown(state);
}

static void test_load_order(void **state) {
  (void)state;
  char **order = NULL;
  /* drm_kms_helper needs drm; virtio-gpu needs both, the one to load first listed last */
  assert_int_equal(kgb_modules_load_order("kernel/gpu/virtio-gpu.ko: kernel/drm_kms_helper.ko "
                                          "kernel/drm.ko\n"
                                          "kernel/drm_kms_helper.ko: kernel/drm.ko\n"
                                          "kernel/drm.ko:\n"
                                          "extra/lonely.ko:\n"
                                          "kernel/needs-missing.ko: kernel/not-there.ko\n",
                                          &order),
                   0);
  static const char *const want[] = {"kernel/drm.ko", "kernel/drm_kms_helper.ko",
                                     "kernel/gpu/virtio-gpu.ko", "extra/lonely.ko",
                                     "kernel/needs-missing.ko"};
  assert_int_equal(strv_length(order), 5);
  for (size_t i = 0; i < 5; i++)
    assert_string_equal(order[i], want[i]);
  strv_free(order);

  assert_int_equal(kgb_modules_load_order("", &order), 0);
  assert_int_equal(strv_length(order), 0);
  strv_free(order);
  /* a cycle (which depmod refuses) ends rather than recursing */
  assert_int_equal(kgb_modules_load_order("a.ko: b.ko\nb.ko: a.ko\n", &order), 0);
  assert_int_equal(strv_length(order), 2);
  strv_free(order);
}

/* A file with just the parts of an x86 setup header that carry the release. */
static char *fake_bzimage(const char *name, const char *version) {
  char *path = kgb_strdup_printf("%s/%s", tmpdir, name);
  unsigned char b[0x600] = {0};
  b[0x1f1] = 1;
  memcpy(b + 0x202, "HdrS", 4);
  b[0x206] = 0x0f, b[0x207] = 0x02;
  b[0x20e] = 0x00, b[0x20f] = 0x03; /* the string is at 0x300 + 0x200 */
  if (version)
    memcpy(b + 0x500, version, strlen(version));
  assert_int_equal(write_file_atomic(path, b, sizeof(b), 0644), 0);
  return path;
}

static void test_bzimage_release(void **state) {
  (void)state;
  _cleanup_free_ char *ok = fake_bzimage("bz-ok", "6.1.192-nvidia-gpu (kgb@build) #1 SMP");
  _cleanup_free_ char *none = fake_bzimage("bz-none", NULL);
  _cleanup_free_ char *release = NULL;
  assert_int_equal(kgb_bzimage_release(ctx, ok, &release), 0);
  assert_string_equal(release, "6.1.192-nvidia-gpu");
  kgb_error_clear(ctx);
  char *x = NULL;
  assert_int_equal(kgb_bzimage_release(ctx, none, &x), -ENODATA);
  kgb_error_clear(ctx);
  assert_int_equal(kgb_bzimage_release(ctx, FAKE_QEMU, &x), -ENOEXEC);
  assert_non_null(strstr(kgb_error_detail(ctx), "not an x86 bzImage"));
  kgb_error_clear(ctx);
}

/* ---- whole runs against the stand-in QEMU ---- */

static const struct kgb_boot_check *find_check(const struct kgb_boot_result *res,
                                               const char *name) {
  for (size_t i = 0; i < res->n_checks; i++)
    if (STREQ(res->checks[i].name, name))
      return &res->checks[i];
  fail_msg("no check '%s'", name);
  return NULL;
}

static struct kgb_boot_result *boot(const char *profile, const char *mode,
                                    struct kgb_boot_opts *o) {
  struct kgb_profile *p = NULL;
  kgb_error_clear(ctx);
  if (kgb_profile_load(ctx, profile, &p) < 0)
    fail_msg("profile: %s", kgb_error_detail(ctx));
  _cleanup_free_ char *kernel = fake_bzimage("vmlinuz", "6.1.0-fake-gpu (kgb@tests) #1");
  _cleanup_free_ char *plan = kgb_strdup_printf("%s/plan.seen", tmpdir);
  _cleanup_free_ char *args = kgb_strdup_printf("%s/args.seen", tmpdir);
  _cleanup_free_ char *files = kgb_strdup_printf("%s/files.seen", tmpdir);
  setenv("FAKE_QEMU_FILES", files, 1);
  setenv("FAKE_QEMU_MODE", mode, 1);
  setenv("FAKE_QEMU_PLAN", plan, 1);
  setenv("FAKE_QEMU_ARGS", args, 1);
  o->kernel = kernel;
  o->qemu = FAKE_QEMU;
  o->guest_check = FAKE_QEMU; /* any file: the stand-in runs nothing of the initrd */
  struct kgb_boot_result *res = NULL;
  int r = kgb_boot_test(ctx, p, o, &res);
  kgb_profile_free(p);
  if (r < 0)
    fail_msg("boot-test: %s (%s)", strerror(-r), kgb_error_detail(ctx));
  return res;
}

static char *seen(const char *name) {
  _cleanup_free_ char *path = kgb_strdup_printf("%s/%s.seen", tmpdir, name);
  char *text = NULL;
  size_t len;
  assert_int_equal(read_full_file(path, &text, &len), 0);
  return text;
}

static void test_boot_nvidia(void **state) {
  (void)state;
  struct kgb_boot_opts o = {.accel = KGB_ACCEL_TCG, .timeout = 30};
  struct kgb_boot_result *res = boot("nvidia-gpu", "pass", &o);
  assert_int_equal(res->n_fail, 0);
  assert_int_equal(res->accel, KGB_ACCEL_TCG);
  assert_string_equal(res->release, "6.1.0-fake-gpu");
  assert_string_equal(res->checks[0].name, "boot");
  assert_int_equal(res->checks[0].status, KGB_CHECK_PASS);
  /* the hot-plug went through QMP: the stand-in echoes the device_add it got */
  assert_string_equal(find_check(res, "hotplug")->detail, "virtio-net-pci into rp0 appeared");
  assert_int_equal(find_check(res, "modules")->status, KGB_CHECK_SKIP);
  assert_true(res->boot_seconds >= 0 && res->check_seconds >= res->boot_seconds);
  assert_true(res->uptime_begin > 0.5 && res->uptime_begin < 0.52);
  assert_null(res->initrd); /* a passing run's initrd is removed */
  assert_null(res->log_tail);
  /* the plan the guest got, from the initrd */
  _cleanup_free_ char *plan = seen("plan");
  static const char *const lines[] = {"release 6.1.0-fake-gpu\n",
                                      "require CONFIG_HOTPLUG_PCI_PCIE=y\n",
                                      "require # CONFIG_DRM_NOUVEAU is not set\n",
                                      "pciehp 8\n",
                                      "hotplug 1af4:1041 20\n",
                                      "absent nouveau\n"};
  for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
    if (!strstr(plan, lines[i]))
      fail_msg("plan lacks '%s':\n%s", lines[i], plan);
  /* a Kata-like machine: q35, native PCIe hotplug on the profile's root port, its params */
  _cleanup_free_ char *args = seen("args");
  static const char *const want[] = {
      "\n-machine\nq35\n",
      "\n-accel\ntcg\n",
      "\n-m\n2048\n",
      "\n-no-reboot\n",
      "\nICH9-LPC.acpi-pci-hotplug-with-bridge-support=off\n",
      "\npcie-root-port,id=rp0,bus=pcie.0,chassis=1,slot=1\n",
      "\nconsole=ttyS0 rdinit=/kgb/check panic=-1 cgroup_no_v1=all pci=realloc pci=nocrs "
      "pci=assign-busses\n",
      "\n-qmp\nunix:"};
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
    if (!strstr(args, want[i]))
      fail_msg("QEMU's arguments lack '%s':\n%s", want[i], args);
  assert_null(strstr(args, "virtio-gpu-pci"));
  /* the profile's 8 root ports, as Kata's NVIDIA template has them, and no more */
  assert_non_null(strstr(args, "\npcie-root-port,id=rp7,bus=pcie.0,chassis=8,slot=8\n"));
  assert_null(strstr(args, "rp8"));
  kgb_boot_result_free(res);
}

static void test_boot_virgl(void **state) {
  (void)state;
  struct kgb_boot_opts o = {.accel = KGB_ACCEL_TCG, .memory = 512, .append = "loglevel=3"};
  struct kgb_boot_result *res = boot("virgl", "pass", &o);
  assert_int_equal(res->n_fail, 0);
  assert_int_equal(res->memory, 512);
  assert_int_equal(find_check(res, "virtio-gpu")->status, KGB_CHECK_PASS);
  assert_int_equal(find_check(res, "virgl-gl")->status, KGB_CHECK_SKIP);
  _cleanup_free_ char *args = seen("args");
  assert_non_null(strstr(args, "\n-device\nvirtio-gpu-pci\n"));
  assert_non_null(strstr(args, "\nconsole=ttyS0 rdinit=/kgb/check panic=-1 loglevel=3\n"));
  assert_null(strstr(args, "-qmp"));
  assert_null(strstr(args, "pcie-root-port"));
  kgb_boot_result_free(res);

  /* a result line cut on the console: the guest's counts show it */
  res = boot("virgl", "garble", &o);
  assert_int_equal(find_check(res, "console")->status, KGB_CHECK_FAIL);
  assert_non_null(strstr(find_check(res, "console")->detail, "(1 garbled)"));
  assert_non_null(res->initrd); /* kept to boot by hand */
  kgb_boot_result_free(res);
}

/* An image file: Kata's msdos label (partition 1 from 1 MiB) or none, and a super block
 * magic (ext4, erofs, or none) where the file system starts. */
static char *fake_image(const char *name, bool label, const char *fs) {
  char *path = kgb_strdup_printf("%s/%s", tmpdir, name);
  size_t start = label ? 1 << 20 : 0, size = start + 8192;
  uint8_t *img = calloc(1, size);
  assert_non_null(img);
  if (label)
    kgb_mbr_build(img, 0x4b4742u, 2048, (uint32_t)(size / 512));
  if (fs && STREQ(fs, "ext4"))
    img[start + 1024 + 56] = 0x53, img[start + 1024 + 57] = 0xef;
  if (fs && STREQ(fs, "erofs"))
    memcpy(img + start + 1024, "\xe2\xe1\xf5\xe0", 4);
  assert_int_equal(write_file_atomic(path, img, size, 0644), 0);
  free(img);
  return path;
}

static void test_root_image(void **state) {
  (void)state;
  struct kgb_root_image ri;
  _cleanup_free_ char *ext4 = fake_image("kata,ext4.img", true, "ext4");
  assert_int_equal(kgb_root_image_probe(ctx, ext4, &ri), 0);
  assert_string_equal(ri.fstype, "ext4");
  assert_string_equal(ri.device, "/dev/vda1");
  assert_int_equal(ri.offset, 1 << 20);
  _cleanup_free_ char *erofs = fake_image("kata-erofs.img", true, "erofs");
  assert_int_equal(kgb_root_image_probe(ctx, erofs, &ri), 0);
  assert_string_equal(ri.fstype, "erofs");
  _cleanup_free_ char *bare = fake_image("bare.erofs", false, "erofs");
  assert_int_equal(kgb_root_image_probe(ctx, bare, &ri), 0);
  assert_string_equal(ri.device, "/dev/vda");
  assert_int_equal(ri.offset, 0);
  /* a label whose partition holds nothing known, and no file system at all */
  _cleanup_free_ char *empty = fake_image("empty.img", true, NULL);
  assert_int_equal(kgb_root_image_probe(ctx, empty, &ri), -EMEDIUMTYPE);
  assert_non_null(strstr(kgb_error_detail(ctx), "an initrd image goes to --initrd"));
  _cleanup_free_ char *none = kgb_strdup_printf("%s/missing.img", tmpdir);
  assert_int_equal(kgb_root_image_probe(ctx, none, &ri), -ENOENT);

  /* booted: on virtio-blk, read-only, root= as Kata gives it, the checks told to mount it */
  struct kgb_boot_opts o = {.accel = KGB_ACCEL_TCG, .image = ext4};
  struct kgb_boot_result *res = boot("nvidia-gpu", "pass", &o);
  assert_int_equal(res->n_fail, 0);
  _cleanup_free_ char *args = seen("args");
  _cleanup_free_ char *drive =
      kgb_strdup_printf("\n-drive\nfile=%s/kata,,ext4.img,if=none,id=kgb-root,format=raw,"
                        "readonly=on\n-device\nvirtio-blk-pci,drive=kgb-root\n",
                        tmpdir);
  assert_non_null(strstr(args, drive));
  assert_non_null(strstr(args, "\nconsole=ttyS0 rdinit=/kgb/check panic=-1 root=/dev/vda1 "
                               "rootfstype=ext4 ro cgroup_no_v1=all pci=realloc"));
  _cleanup_free_ char *plan = seen("plan");
  assert_non_null(strstr(plan, "root /dev/vda1 ext4\nimage-modules 6.1.0-fake-gpu\n"));
  assert_non_null(strstr(plan, "image-driver nvidia-driver nvidia\n"));
  assert_int_equal(find_check(res, "rootfs")->status, KGB_CHECK_PASS);
  /* the image's modules are the guest's to report: no host row says otherwise */
  assert_int_equal(find_check(res, "modules")->status, KGB_CHECK_SKIP);
  assert_non_null(strstr(find_check(res, "modules")->detail, "the image's /lib/modules"));
  assert_non_null(strstr(find_check(res, "nvidia-driver")->detail, "the image has no nvidia"));
  assert_non_null(strstr(res->root, "ext4 image "));
  assert_non_null(strstr(res->root, " as /dev/vda1, read-only"));
  kgb_boot_result_free(res);
}

static void put(const char *dir, const char *name, const void *data, size_t len) {
  _cleanup_free_ char *path = kgb_strdup_printf("%s/%s", dir, name);
  _cleanup_free_ char *parent = strdup(path);
  *strrchr(parent, '/') = '\0';
  assert_int_equal(mkdir_p(parent, 0755), 0);
  assert_int_equal(write_file_atomic(path, data, len, 0644), 0);
}

static void test_boot_modules(void **state) {
  (void)state;
  _cleanup_free_ char *dir = kgb_strdup_printf("%s/lib/modules/6.1.0-fake-gpu", tmpdir);
  /* gzip -n of the 19 bytes "\x7fELF-c-module-bytes", as kbuild's MODULE_COMPRESS_GZIP */
  static const unsigned char c_gz[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03,
                                       0xab, 0x77, 0xf5, 0x71, 0xd3, 0x4d, 0xd6, 0xcd, 0xcd, 0x4f,
                                       0x29, 0xcd, 0x49, 0xd5, 0x4d, 0xaa, 0x2c, 0x49, 0x2d, 0x06,
                                       0x00, 0x45, 0xe9, 0x10, 0xff, 0x13, 0x00, 0x00, 0x00};
  put(dir, "kernel/drivers/b.ko",
      "\x7f"
      "ELF-b",
      6);
  put(dir, "kernel/a.ko",
      "\x7f"
      "ELF-a-longer",
      13);
  put(dir, "updates/c.ko.gz", c_gz, sizeof(c_gz));
  static const char dep[] = "kernel/drivers/b.ko: kernel/a.ko\n"
                            "updates/c.ko.gz: kernel/drivers/b.ko kernel/a.ko\n"
                            "kernel/a.ko:\n";
  put(dir, "modules.dep", dep, strlen(dep));
  struct kgb_boot_opts o = {.accel = KGB_ACCEL_TCG, .modules_dir = dir};
  struct kgb_boot_result *res = boot("virgl", "pass", &o);
  assert_int_equal(res->n_fail, 0);
  _cleanup_free_ char *plan = seen("plan");
  assert_non_null(strstr(plan, "module /kgb/modules/000-a.ko\n"
                               "module /kgb/modules/001-b.ko\n"
                               "module /kgb/modules/002-c.ko\n"));
  /* in the initrd as the kernel loads them: c decompressed */
  _cleanup_free_ char *files = seen("files");
  assert_non_null(strstr(files, "kgb/modules/000-a.ko 13\n"));
  assert_non_null(strstr(files, "kgb/modules/001-b.ko 6\n"));
  assert_non_null(strstr(files, "kgb/modules/002-c.ko 19\n"));
  assert_non_null(strstr(files, "dev/console 0\n"));
  assert_non_null(strstr(files, "kgb/check "));
  kgb_boot_result_free(res);

  /* no modules.dep: said, not guessed */
  _cleanup_free_ char *empty = kgb_strdup_printf("%s/empty-modules", tmpdir);
  assert_int_equal(mkdir_p(empty, 0755), 0);
  struct kgb_profile *p = NULL;
  assert_int_equal(kgb_profile_load(ctx, "virgl", &p), 0);
  _cleanup_free_ char *kernel = fake_bzimage("vmlinuz", "6.1.0-fake-gpu (kgb@tests) #1");
  o = (struct kgb_boot_opts){.kernel = kernel,
                             .qemu = FAKE_QEMU,
                             .guest_check = FAKE_QEMU,
                             .modules_dir = empty,
                             .accel = KGB_ACCEL_TCG};
  kgb_error_clear(ctx);
  assert_int_equal(kgb_boot_test(ctx, p, &o, &res), -ENOENT);
  assert_non_null(strstr(kgb_error_detail(ctx), "no modules.dep in"));
  kgb_error_clear(ctx);
  kgb_profile_free(p);
}

static void test_boot_failures(void **state) {
  (void)state;
  /* 4 s: the fake QEMU (a Python program) must get to its first console line on a loaded
   * machine before the timeout, or the log's tail checked below is empty */
  struct kgb_boot_opts o = {.accel = KGB_ACCEL_TCG, .timeout = 4};
  struct kgb_boot_result *res = boot("intel-gvt-d", "hang", &o);
  assert_true(res->timed_out);
  assert_int_equal(res->checks[0].status, KGB_CHECK_FAIL);
  assert_non_null(strstr(res->checks[0].detail, "within 4 s under TCG"));
  assert_true(res->total_seconds >= 4 && res->total_seconds < 15);
  assert_non_null(res->log_tail);
  assert_true(strv_contains(res->log_tail, "Run /kgb/check as init process"));
  kgb_boot_result_free(res);

  o.timeout = 30;
  res = boot("intel-gvt-d", "panic", &o);
  assert_false(res->timed_out);
  assert_string_equal(res->checks[0].detail, "the guest kernel panicked: Kernel panic - not "
                                             "syncing: VFS: Unable to mount root fs on "
                                             "unknown-block(0,0)");
  kgb_boot_result_free(res);

  res = boot("nvidia-gpu", "qmp-error", &o);
  assert_non_null(strstr(find_check(res, "hotplug")->detail, "QMP: GenericError: Bus 'rp0'"));
  kgb_boot_result_free(res);

  res = boot("intel-gvt-d", "fail", &o);
  assert_int_equal(res->n_fail, 1);
  assert_int_equal(find_check(res, "config")->status, KGB_CHECK_FAIL);
  assert_int_equal(find_check(res, "i915")->status, KGB_CHECK_PASS);
  kgb_boot_result_free(res);

  /* QEMU that fails under KVM: forced, it is the boot that fails */
  o.accel = KGB_ACCEL_KVM;
  struct kgb_profile *p = NULL;
  assert_int_equal(kgb_profile_load(ctx, "virgl", &p), 0);
  _cleanup_free_ char *kernel = fake_bzimage("vmlinuz", "6.1.0-fake-gpu (kgb@tests) #1");
  o.kernel = kernel;
  o.qemu = FAKE_QEMU;
  o.guest_check = FAKE_QEMU;
  setenv("FAKE_QEMU_MODE", "kvm-fails", 1);
  kgb_error_clear(ctx);
  int r = kgb_boot_test(ctx, p, &o, &res);
  if (r == 0) {
    assert_non_null(strstr(res->checks[0].detail, "QEMU failed (exit status 1): "
                                                  "qemu-system-x86_64: error: failed to set MSR"));
    kgb_boot_result_free(res);
    /* auto: given up, TCG */
    o.accel = KGB_ACCEL_AUTO;
    assert_int_equal(kgb_boot_test(ctx, p, &o, &res), 0);
    assert_int_equal(res->n_fail, 0);
    assert_int_equal(res->accel, KGB_ACCEL_TCG);
    assert_non_null(strstr(res->accel_why, "KVM was tried first and given up"));
    kgb_boot_result_free(res);
  } else {
    /* no usable /dev/kvm here */
    assert_int_equal(r, -ENODEV);
    assert_non_null(strstr(kgb_error_detail(ctx), "--accel kvm: /dev/kvm:"));
  }

  /* no QEMU at all */
  o.accel = KGB_ACCEL_TCG;
  o.qemu = "/nonexistent/qemu-system-x86_64";
  kgb_error_clear(ctx);
  assert_int_equal(kgb_boot_test(ctx, p, &o, &res), -ENOENT);
  assert_non_null(strstr(kgb_error_detail(ctx), "apt-get install qemu-system-x86"));
  o.qemu = FAKE_QEMU;
  o.guest_check = "/nonexistent/kgb-guest-check";
  kgb_error_clear(ctx);
  assert_int_equal(kgb_boot_test(ctx, p, &o, &res), -ENOENT);
  assert_non_null(strstr(kgb_error_detail(ctx), "KGB_GUEST_CHECK"));
  kgb_error_clear(ctx);
  kgb_profile_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_load_order),   cmocka_unit_test(test_bzimage_release),
      cmocka_unit_test(test_boot_nvidia),  cmocka_unit_test(test_boot_virgl),
      cmocka_unit_test(test_boot_modules), cmocka_unit_test(test_boot_failures),
      cmocka_unit_test(test_root_image),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
