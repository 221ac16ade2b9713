/* PCI devices from sysfs fixture trees: BARs from `resource`, addresses, sizes, names. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "pci.h"
#include "util.h"

static void test_resource(void **state) {
  (void)state;
  /* The seed's NVIDIA GPU: 16 MiB 32-bit, 32 GiB and 32 MiB 64-bit prefetchable. */
  const char *text = "0x00000000e7000000 0x00000000e7ffffff 0x0000000000040200\n"
                     "0x0000222800000000 0x0000222fffffffff 0x000000000014220c\n"
                     "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
                     "0x0000223810000000 0x0000223811ffffff 0x000000000014220c\n"
                     "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
                     "0x0000000000003000 0x000000000000307f 0x0000000000040101\n"
                     "0x00000000e8000000 0x00000000e807ffff 0x0000000000046200\n";
  struct kgb_pci_bar bars[6];
  size_t n = 0;
  assert_int_equal(kgb_pci_parse_resource(text, bars, &n), 0);
  assert_int_equal(n, 4); /* the ROM (line 7) is not a BAR */
  assert_int_equal(bars[0].index, 0);
  assert_int_equal(bars[0].size, 16 << 20);
  assert_false(bars[0].is64);
  assert_false(kgb_pci_bar_is_large(&bars[0]));
  assert_int_equal(bars[1].index, 1);
  assert_true(bars[1].size == (uint64_t)32 << 30);
  assert_true(bars[1].is64 && bars[1].prefetchable);
  assert_true(kgb_pci_bar_is_large(&bars[1]));
  assert_int_equal(bars[2].index, 3);
  assert_true(bars[3].io);
  assert_int_equal(bars[3].size, 128);
  assert_int_equal(kgb_pci_parse_resource("garbage\n", bars, &n), -EINVAL);
  /* a BAR that ends at the top of the address space keeps its size; one that spans all of it
   * has a size (2^64) no uint64_t holds, and is refused rather than reported as 0 bytes */
  assert_int_equal(kgb_pci_parse_resource(
                       "0xfffffff000000000 0xffffffffffffffff 0x000000000014220c\n", bars, &n),
                   0);
  assert_int_equal(n, 1);
  assert_true(bars[0].size == (uint64_t)64 << 30);
  assert_int_equal(kgb_pci_parse_resource(
                       "0x0000000000000000 0xffffffffffffffff 0x000000000014220c\n", bars, &n),
                   -ERANGE);
}

/* Found by fuzz-pci: a short line took its missing columns from the next one, a number too
 * large for 64 bits was clamped, and a BAR spanning all of 2^64 bytes got the size 0 (-ERANGE,
 * as main's fix of that case has it). */
static void test_resource_broken(void **state) {
  (void)state;
  struct kgb_pci_bar bars[6];
  size_t n = 99;
  /* "0x0" alone on a line, then a line whose numbers it must not borrow */
  assert_int_equal(kgb_pci_parse_resource("0x0\n0x0 0xffffffffffffffff 0x200\n", bars, &n),
                   -EINVAL);
  assert_int_equal(kgb_pci_parse_resource("0x0 0xffffffffffffffff 0x200\n", bars, &n), -ERANGE);
  assert_int_equal(kgb_pci_parse_resource("0x1000 0x1fff 0x200 junk\n", bars, &n), -EINVAL);
  assert_int_equal(kgb_pci_parse_resource("0x1000 0x10000000000000000000 0x200\n", bars, &n),
                   -EINVAL);
  assert_int_equal(n, 99); /* written only on success */
  /* CRLF and a last line without its newline are still a resource file */
  assert_int_equal(
      kgb_pci_parse_resource("0x1000 0x1fff 0x200\r\n0x0 0x0 0x0\n0xe000 0xe07f 0x101", bars, &n),
      0);
  assert_int_equal(n, 2);
  assert_int_equal(bars[0].size, 0x1000);
  assert_int_equal(bars[1].index, 2);
  assert_true(bars[1].io);
}

static void test_bdf_and_size(void **state) {
  (void)state;
  char *b = NULL;
  assert_int_equal(kgb_pci_bdf_normalize(ctx, "D0:00.0", &b), 0);
  assert_string_equal(b, "0000:d0:00.0");
  free(b);
  assert_int_equal(kgb_pci_bdf_normalize(ctx, "0000:41:01.6", &b), 0);
  assert_string_equal(b, "0000:41:01.6");
  free(b);
  kgb_error_clear(ctx);
  assert_int_equal(kgb_pci_bdf_normalize(ctx, "0000:41:00.8", &b), -EINVAL);
  assert_non_null(strstr(kgb_error_detail(ctx), "is not a PCI address"));
  kgb_error_clear(ctx);
  assert_int_equal(kgb_pci_bdf_normalize(ctx, "../../etc", &b), -EINVAL);
  char *s = kgb_format_size((uint64_t)32 << 30);
  assert_string_equal(s, "32 GiB");
  free(s);
  s = kgb_format_size(128);
  assert_string_equal(s, "128 B");
  free(s);
  s = kgb_format_size(16 << 10);
  assert_string_equal(s, "16 KiB");
  free(s);
}

static void test_pci_ids(void **state) {
  (void)state;
  char *ids = kgb_strdup_printf("%s/pci.ids", KGB_TEST_FIXTURES);
  char *v = NULL, *d = NULL;
  assert_int_equal(kgb_pci_ids_lookup(ids, 0x10de, 0x1f08, &v, &d), 0);
  assert_string_equal(v, "NVIDIA Corporation");
  assert_string_equal(d, "TU106 [GeForce RTX 2060 Rev. A]");
  free(v);
  free(d);
  v = d = NULL;
  /* A known vendor with an unknown device: the vendor's name only. */
  assert_int_equal(kgb_pci_ids_lookup(ids, 0x8086, 0xffff, &v, &d), 0);
  assert_string_equal(v, "Intel Corporation");
  assert_null(d);
  free(v);
  assert_int_equal(kgb_pci_ids_lookup(ids, 0x1234, 0x1111, &v, &d), -ENOENT);
  assert_true(kgb_pci_ids_lookup("/nonexistent/pci.ids", 0x10de, 0x1f08, &v, &d) < 0);
  free(ids);
}

static void test_scan(void **state) {
  (void)state;
  fixture_use_host("host-nvidia-dc");
  struct kgb_pci_list *l = NULL;
  assert_int_equal(kgb_pci_scan(ctx, true, NULL, &l), 0);
  assert_int_equal(l->n, 1);
  const struct kgb_pci_dev *g = &l->devs[0];
  assert_string_equal(g->bdf, "0000:d0:00.0");
  assert_int_equal(g->vendor, 0x10de);
  assert_int_equal(g->device, 0x20b9);
  assert_int_equal(g->class_code, 0x030200);
  assert_string_equal(g->driver, "nvidia");
  assert_null(g->driver_override);
  assert_int_equal(g->iommu_group, 192);
  assert_int_equal(g->n_bars, 3);
  assert_non_null(kgb_pci_large_bar(g));
  assert_true(kgb_pci_large_bar(g)->size == (uint64_t)32 << 30);
  l = kgb_pci_list_free(l);
  assert_int_equal(kgb_pci_scan(ctx, false, NULL, &l), 0);
  assert_int_equal(l->n, 3);
  l = kgb_pci_list_free(l);

  fixture_use_host("host-nvidia-sriov");
  assert_int_equal(kgb_pci_scan(ctx, true, NULL, &l), 0);
  assert_int_equal(l->n, 5);
  assert_true(l->devs[0].sriov);
  assert_int_equal(l->devs[0].totalvfs, 16);
  assert_int_equal(l->devs[0].numvfs, 4);
  assert_int_equal(strv_length(l->devs[0].virtfns), 4);
  assert_string_equal(l->devs[0].virtfns[3], "0000:41:00.7");
  assert_string_equal(l->devs[1].physfn, "0000:41:00.0");
  assert_int_equal(l->devs[1].n_mdev_types, 3);
  assert_string_equal(l->devs[1].mdev_types[0].name, "GRID A100D-4C");
  assert_int_equal(l->devs[4].mdev_types[0].available, 0);
  l = kgb_pci_list_free(l);

  fixture_use_host("host-intel-gvt");
  assert_int_equal(kgb_pci_scan(ctx, true, NULL, &l), 0);
  assert_int_equal(l->devs[0].n_mdev_types, 4);
  assert_null(l->devs[0].mdev_types[3].name);
  assert_string_equal(l->devs[0].mdev_types[3].id, "i915-GVTg_V4_8");
  assert_int_equal(l->devs[0].mdev_types[3].available, 7);
  assert_string_equal(l->devs[0].mdev_types[3].description,
                      "low_gm_size: 64MB,high_gm_size: 384MB,fence: 4,resolution: 1024x768,"
                      "weight: 2");
  l = kgb_pci_list_free(l);

  char **members = NULL;
  fixture_use_host("host-geforce");
  assert_int_equal(kgb_pci_group_devices(ctx, 40, &members), 0);
  assert_int_equal(strv_length(members), 2);
  assert_string_equal(members[1], "0000:86:00.1");
  strv_free(members);

  kgb_error_clear(ctx);
  struct kgb_pci_dev d = {0};
  assert_int_equal(kgb_pci_read(ctx, "0000:01:00.0", NULL, &d), -ENOENT);
  assert_non_null(strstr(kgb_error_detail(ctx), "no PCI device 0000:01:00.0"));
}

/* Names from sysfs never carry control characters to a terminal. */
static void test_control_characters(void **state) {
  (void)state;
  char dir[] = "/tmp/kgb-test-pci-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char *cmd = kgb_strdup_printf("cp -a '%s/host-intel-gvt/sys' '%s/'", KGB_TEST_FIXTURES, dir);
  assert_int_equal(system(cmd), 0);
  free(cmd);
  char *types =
      kgb_strdup_printf("%s/sys/devices/pci0000:00/0000:00:02.0/mdev_supported_types", dir);
  char *name = kgb_strdup_printf("%s/i915-GVTg_V4_4/name", types);
  static const char evil[] = "\x1b]0;owned\x07\x1b[2J GVTg\n";
  assert_int_equal(write_file_atomic(name, evil, sizeof(evil) - 1, 0644), 0);
  char *sys = kgb_strdup_printf("%s/sys", dir);
  assert_int_equal(kgb_ctx_set_string(&ctx->sysfs, sys), 0);
  struct kgb_pci_list *l = NULL;
  assert_int_equal(kgb_pci_scan(ctx, true, NULL, &l), 0);
  const struct kgb_mdev_type *t = NULL;
  for (size_t i = 0; i < l->devs[0].n_mdev_types; i++)
    if (strcmp(l->devs[0].mdev_types[i].id, "i915-GVTg_V4_4") == 0)
      t = &l->devs[0].mdev_types[i];
  assert_non_null(t);
  assert_string_equal(t->name, "?]0;owned??[2J GVTg");
  kgb_pci_list_free(l);
  assert_int_equal(rm_rf(dir), 0);
  free(sys);
  free(name);
  free(types);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_resource),     cmocka_unit_test(test_resource_broken),
      cmocka_unit_test(test_bdf_and_size), cmocka_unit_test(test_pci_ids),
      cmocka_unit_test(test_scan),         cmocka_unit_test(test_control_characters),
  };
  return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
