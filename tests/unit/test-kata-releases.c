/* Kata releases as data: --kata-version forms, the version lines of Kata's programs, the key
 * table against docs/kata-keys.tsv (the two must say the same), and the boundaries read off
 * Kata's source that the settings depend on. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "kata-releases.h"

static struct kgb_kata_release rel(const char *v, enum kgb_kata_runtime rt) {
  struct kgb_kata_release r;
  kgb_error_clear(ctx);
  if (kgb_kata_release_parse(ctx, v, rt, &r) < 0)
    fail_msg("%s: %s", v, kgb_error_detail(ctx));
  return r;
}

static void test_parse(void **state) {
  (void)state;
  assert_string_equal(rel("3.2.0", KGB_KATA_GO).name, "3.2.0");
  assert_string_equal(rel("v3.2.0", KGB_KATA_GO).name, "3.2.0");
  assert_string_equal(rel("3.2", KGB_KATA_GO).name, "3.2.0");
  assert_string_equal(rel("3.1", KGB_KATA_GO).name, "3.1.3");
  assert_string_equal(rel("3.x", KGB_KATA_GO).name, "3.32.0");
  assert_string_equal(rel("3", KGB_KATA_GO).name, "3.32.0");
  assert_string_equal(rel("4.x", KGB_KATA_GO).name, "4.1.0");
  assert_string_equal(rel("1.x", KGB_KATA_GO).name, "1.13.0");
  assert_string_equal(rel("1.10", KGB_KATA_GO).name, "1.10.8");
  assert_string_equal(kgb_kata_release_newest(), "4.1.0");
  struct kgb_kata_release r = rel("3.19.1", KGB_KATA_RS);
  assert_int_equal(r.major, 3);
  assert_int_equal(r.minor, 19);
  assert_int_equal(r.patch, 1);
  assert_int_equal(r.runtime, KGB_KATA_RS);
  static const char *const bad[] = {"4.2.0", "3.2.1", "5.x",  "0.x", "3.x.1",   "",
                                    "x",     "3..2",  "3.2.", "abc", "3.2.0.1", "30000.1"};
  for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
    kgb_error_clear(ctx);
    assert_int_equal(kgb_kata_release_parse(ctx, bad[i], KGB_KATA_GO, &r), -EINVAL);
    assert_detail("unknown Kata release");
  }
  kgb_error_clear(ctx);
  assert_int_equal(kgb_kata_release_parse(ctx, "2.5", KGB_KATA_RS, &r), -EINVAL);
  assert_detail("Kata 2.5.2 has no runtime-rs");
}

static void test_version_lines(void **state) {
  (void)state;
  char v[32];
  enum kgb_kata_runtime rt;
  assert_int_equal(kgb_kata_version_line_parse("kata-runtime  : 3.2.0", v, &rt), 0);
  assert_string_equal(v, "3.2.0");
  assert_int_equal(rt, KGB_KATA_GO);
  assert_int_equal(
      kgb_kata_version_line_parse("Kata Containers containerd shim (Golang): id: "
                                  "\"io.containerd.kata.v2\", version: 3.1.0, commit: abc",
                                  v, &rt),
      0);
  assert_string_equal(v, "3.1.0");
  assert_int_equal(rt, KGB_KATA_GO);
  assert_int_equal(kgb_kata_version_line_parse("Kata Containers containerd shim (Rust): id: "
                                               "io.containerd.kata.v2, version: 4.1.0, commit: x",
                                               v, &rt),
                   0);
  assert_string_equal(v, "4.1.0");
  assert_int_equal(rt, KGB_KATA_RS);
  /* 3.0: no marker; the Rust shim quotes no id */
  assert_int_equal(kgb_kata_version_line_parse("Kata Containers containerd shim: id: "
                                               "io.containerd.kata.v2, version: 3.0.2, commit: x",
                                               v, &rt),
                   0);
  assert_int_equal(rt, KGB_KATA_RS);
  assert_int_equal(kgb_kata_version_line_parse("Kata Containers containerd shim: id: "
                                               "\"io.containerd.kata.v2\", version: 3.0.2, "
                                               "commit: x",
                                               v, &rt),
                   0);
  assert_int_equal(rt, KGB_KATA_GO);
  assert_int_equal(kgb_kata_version_line_parse("runc version 1.1.5", v, &rt), -EINVAL);
  assert_int_equal(kgb_kata_version_line_parse("kata-runtime", v, &rt), -EINVAL);
}

/* the boundaries the issue and REFERENCE.md name, read off Kata's config structs */
static void test_keys(void **state) {
  (void)state;
  struct kgb_kata_release r;
#define HAS(v, rt, table, key) (r = rel(v, rt), kgb_kata_release_has_key(&r, table, key))
  const char *hv = "hypervisor.qemu";
  assert_false(HAS("3.1.3", KGB_KATA_GO, hv, "hot_plug_vfio"));
  assert_true(HAS("3.2.0", KGB_KATA_GO, hv, "hot_plug_vfio"));
  assert_true(HAS("3.1.3", KGB_KATA_GO, hv, "hotplug_vfio_on_root_bus"));
  assert_false(HAS("3.2.0", KGB_KATA_GO, hv, "hotplug_vfio_on_root_bus"));
  assert_false(HAS("1.10.8", KGB_KATA_GO, hv, "pcie_root_port"));
  assert_true(HAS("1.11.0", KGB_KATA_GO, hv, "pcie_root_port"));
  assert_true(HAS("3.1.3", KGB_KATA_GO, hv, "pcie_root_port"));
  assert_false(HAS("3.2.0", KGB_KATA_GO, hv, "pcie_root_port"));
  assert_false(HAS("3.5.0", KGB_KATA_GO, hv, "pcie_root_port"));
  assert_true(HAS("3.6.0", KGB_KATA_GO, hv, "pcie_root_port"));
  assert_false(HAS("3.0.2", KGB_KATA_GO, hv, "rootfs_type"));
  assert_true(HAS("3.1.0", KGB_KATA_GO, hv, "rootfs_type"));
  assert_false(HAS("1.3.1", KGB_KATA_GO, hv, "guest_hook_path"));
  assert_false(HAS("2.2.3", KGB_KATA_GO, "runtime", "vfio_mode"));
  assert_true(HAS("2.3.0", KGB_KATA_GO, "runtime", "vfio_mode"));
  assert_false(HAS("3.26.0", KGB_KATA_GO, hv, "kernel_verity_params"));
  assert_true(HAS("3.27.0", KGB_KATA_GO, hv, "kernel_verity_params"));
  assert_true(HAS("4.1.0", KGB_KATA_GO, hv, "disable_image_nvdimm"));
  assert_false(HAS("4.1.0", KGB_KATA_RS, hv, "hot_plug_vfio"));
  assert_true(HAS("3.32.0", KGB_KATA_RS, hv, "hotplug_vfio_on_root_bus"));
  assert_false(HAS("4.0.0", KGB_KATA_RS, hv, "hotplug_vfio_on_root_bus"));
  assert_true(HAS("3.31.0", KGB_KATA_RS, hv, "cold_plug_vfio"));
  assert_false(HAS("4.1.0", KGB_KATA_GO, "agent.kata", "dial_timeout_ms"));
  assert_true(HAS("4.1.0", KGB_KATA_RS, "agent.kata", "dial_timeout_ms"));
  assert_false(HAS("4.1.0", KGB_KATA_GO, hv, "no_such_key"));
#undef HAS
  r = rel("2.4.3", KGB_KATA_GO);
  assert_false(kgb_kata_release_reads_dropins(&r));
  r = rel("2.5.0", KGB_KATA_GO);
  assert_true(kgb_kata_release_reads_dropins(&r));
  r = rel("3.0.0", KGB_KATA_RS);
  assert_true(kgb_kata_release_reads_dropins(&r));
  r = rel("4.1.0", KGB_KATA_RS);
  assert_true(kgb_kata_release_port_ok(&r, "cold_plug_vfio", "root-port"));
  assert_false(kgb_kata_release_port_ok(&r, "cold_plug_vfio", "bridge-port"));
  assert_true(kgb_kata_release_machine_ok(&r, "q35"));
  assert_true(kgb_kata_release_machine_ok(&r, "pc")); /* runtime-rs: no list */
  r = rel("3.17.0", KGB_KATA_GO);
  assert_false(kgb_kata_release_machine_ok(&r, "pc"));
  assert_false(kgb_kata_release_machine_ok(&r, "virt"));
  assert_true(kgb_kata_release_machine_ok(&r, "microvm"));
  assert_false(kgb_kata_release_machine_ok(&r, "microvm2"));
  r = rel("1.13.0", KGB_KATA_GO);
  assert_true(kgb_kata_release_machine_ok(&r, "pc"));
  assert_true(kgb_kata_release_machine_ok(&r, "pc-lite"));
  assert_false(kgb_kata_release_machine_ok(&r, "pc-"));
  r = rel("3.2.0", KGB_KATA_GO);
  assert_true(kgb_kata_release_machine_ok(&r, "virt"));
  assert_true(kgb_kata_release_port_ok(&r, "hot_plug_vfio", "switch-port"));
  assert_false(kgb_kata_release_port_ok(&r, "hot_plug_vfio", "invalid-port"));
}

/* docs/kata-keys.tsv and the compiled table: row for row the same */
static void test_docs_table(void **state) {
  (void)state;
  char *text = NULL;
  assert_int_equal(read_full_file(FIXTURE_SRCDIR "/docs/kata-keys.tsv", &text, NULL), 0);
  size_t row = 0;
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    if (line[0] == '#' || startswith(line, "runtime\t"))
      continue;
    enum kgb_kata_runtime rt;
    const char *table, *key, *first, *last;
    if (!kgb_kata_key_row(row++, &rt, &table, &key, &first, &last))
      fail_msg("docs/kata-keys.tsv has more rows than the code: '%s'", line);
    char expect[256];
    snprintf(expect, sizeof(expect), "%s\t%s\t%s\t%s\t%s", kgb_kata_runtime_to_string(rt), table,
             key, first, last ? last : "-");
    if (!STREQ(expect, line))
      fail_msg("row %zu: docs say '%s', the code '%s'", row, line, expect);
  }
  enum kgb_kata_runtime rt;
  const char *t, *k, *f, *l;
  assert_false(kgb_kata_key_row(row, &rt, &t, &k, &f, &l));
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse),
      cmocka_unit_test(test_version_lines),
      cmocka_unit_test(test_keys),
      cmocka_unit_test(test_docs_table),
  };
  return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
