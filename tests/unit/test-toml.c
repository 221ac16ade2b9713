/* The TOML reader and the in-place editor: what is accepted (with canonical values), what is
 * refused (with its line), and edits that leave every other byte alone. */
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
#include "toml.h"

static struct kgb_toml_doc *parse_ok(const char *text) {
  struct kgb_toml_doc *d = NULL;
  kgb_error_clear(ctx);
  int r = kgb_toml_parse(ctx, "t.toml", text, strlen(text), &d);
  if (r < 0)
    fail_msg("parse failed: %s", kgb_error_detail(ctx));
  return d;
}

static void expect_error(const char *text, const char *detail) {
  struct kgb_toml_doc *d = NULL;
  kgb_error_clear(ctx);
  assert_int_equal(kgb_toml_parse(ctx, "t.toml", text, strlen(text), &d), -EINVAL);
  assert_null(d);
  assert_detail(detail);
}

static const char *value_of(const struct kgb_toml_doc *d, const char *table, const char *key) {
  const struct kgb_toml_entry *e = kgb_toml_find(d, table, key);
  if (!e)
    fail_msg("no %s.%s", table, key);
  return e->value;
}

static void test_values(void **state) {
  (void)state;
  struct kgb_toml_doc *d = parse_ok("# top\n"
                                    "title = 'lit\\eral'\n"
                                    "[hypervisor.qemu]\n"
                                    "path = \"/usr/bin/qemu\" # trailing\n"
                                    "rootfs_type=\"ext4\"\n"
                                    "n = 1_000\n"
                                    "neg = -7\n"
                                    "hex = 0xff\n"
                                    "f = 1.5e3\n"
                                    "ok = true\n"
                                    "when = 1979-05-27T07:32:00Z\n"
                                    "list = [ \"a\", 'b',  # comment\n"
                                    "  \"c\", ]\n"
                                    "empty=[]\n"
                                    "nested = [[1, 2], [\"x\"]]\n"
                                    "inline = { a = 1, b.c = \"d\" }\n"
                                    "esc = \"tab\\there \\u00e9\"\n"
                                    "multi = \"\"\"\n"
                                    "one \\\n"
                                    "   two\"\"\"\n"
                                    "[\"quoted.table\" . sub]\n"
                                    "'key with space' = 1\n"
                                    "a.b = 2\n");
  assert_string_equal(value_of(d, "", "title"), "\"lit\\\\eral\"");
  assert_string_equal(value_of(d, "hypervisor.qemu", "path"), "\"/usr/bin/qemu\"");
  assert_string_equal(value_of(d, "hypervisor.qemu", "n"), "1000");
  assert_string_equal(value_of(d, "hypervisor.qemu", "neg"), "-7");
  assert_string_equal(value_of(d, "hypervisor.qemu", "hex"), "255");
  assert_string_equal(value_of(d, "hypervisor.qemu", "f"), "1500");
  assert_string_equal(value_of(d, "hypervisor.qemu", "ok"), "true");
  assert_string_equal(value_of(d, "hypervisor.qemu", "when"), "1979-05-27T07:32:00Z");
  assert_string_equal(value_of(d, "hypervisor.qemu", "list"), "[\"a\", \"b\", \"c\"]");
  assert_string_equal(value_of(d, "hypervisor.qemu", "empty"), "[]");
  assert_string_equal(value_of(d, "hypervisor.qemu", "nested"), "[[1, 2], [\"x\"]]");
  assert_string_equal(value_of(d, "hypervisor.qemu", "inline"), "{a = 1, b.c = \"d\"}");
  assert_string_equal(value_of(d, "hypervisor.qemu", "esc"), "\"tab\\there \xc3\xa9\"");
  assert_string_equal(value_of(d, "hypervisor.qemu", "multi"), "\"one two\"");
  assert_string_equal(value_of(d, "\"quoted.table\".sub", "\"key with space\""), "1");
  assert_string_equal(value_of(d, "\"quoted.table\".sub", "a.b"), "2");
  /* Offsets: the value of path, and the line of the list that spans two lines. */
  const struct kgb_toml_entry *e = kgb_toml_find(d, "hypervisor.qemu", "path");
  assert_int_equal(e->line, 4);
  assert_int_equal(e->value_end - e->value_start, strlen("\"/usr/bin/qemu\""));
  assert_int_equal(kgb_toml_find(d, "hypervisor.qemu", "list")->line, 12);
  assert_int_equal(d->n_tables, 3);
  assert_int_equal(d->n_comments, 1);
  kgb_toml_doc_free(d);
}

static void test_errors(void **state) {
  (void)state;
  expect_error("a = 1\nb = \n", "t.toml:2: missing value after '='");
  expect_error("a = 1\na = 2\n", "t.toml:2: duplicate key 'a' (first defined at line 1)");
  expect_error("[t]\nx = 1\n[t]\n", "t.toml:3: table [t] is defined twice (first at line 1)");
  expect_error("a = 1\n[a]\n", "t.toml:2: [a]: 'a' is already a value (line 1)");
  expect_error("x = yes\n", "t.toml:1: invalid value 'yes' (strings need quotes)");
  expect_error("x = \"open\n", "t.toml:1: newline in a single-line string");
  expect_error("\n\nx = [1, 2\n", "t.toml:3: unterminated array");
  expect_error("x = 1 2\n", "t.toml:1: unexpected '2' after the value");
  expect_error("[a\n", "t.toml:1: expected ']' to close the table header");
  expect_error("x = 012\n", "invalid value '012'");
  expect_error("x = 1__0\n", "invalid value '1__0'");
  expect_error("x = \"\\q\"\n", "unknown escape '\\q'");
  expect_error("x = { a = 1, }\n", "trailing comma in an inline table");
  expect_error("x = 9223372036854775808\n", "does not fit in 64 bits");
  expect_error("key\n", "t.toml:1: expected '=' after key 'key'");
  expect_error("[t]\na.b = 1\n[t.a]\n", "table [t.a] is defined twice");
  expect_error("x = \"\"\"never closed\n\n", "t.toml:1: unterminated string");
}

static void test_canonical(void **state) {
  (void)state;
  char *a = NULL, *b = NULL;
  assert_int_equal(kgb_toml_canonical(ctx, "'q35'", &a), 0);
  assert_int_equal(kgb_toml_canonical(ctx, "\"q35\"", &b), 0);
  assert_string_equal(a, b);
  free(a);
  free(b);
  char *q = kgb_toml_quote("a \"b\"\\\n");
  assert_string_equal(q, "\"a \\\"b\\\"\\\\\\n\"");
  free(q);
}

static char *patch(const char *text, const struct kgb_toml_set *sets, size_t n, unsigned changes) {
  struct kgb_toml_patch p = {0};
  kgb_error_clear(ctx);
  int r = kgb_toml_patch(ctx, "c.toml", text, strlen(text), sets, n, &p);
  if (r < 0)
    fail_msg("patch failed: %s", kgb_error_detail(ctx));
  assert_int_equal(p.changes, changes);
  assert_int_equal(p.len, strlen(p.text));
  char *out = p.text;
  p.text = NULL;
  kgb_toml_patch_release(&p);
  return out;
}

static void test_patch(void **state) {
  (void)state;
  const char *base = "# head\n"
                     "[hypervisor.qemu]\n"
                     "kernel = \"/old\"   # keep this comment\n"
                     "image = \"/img\"\n"
                     "#hot_plug_vfio = \"root-port\" \n"
                     "# pcie_root_port = 2\n"
                     "#  - kernel_modules=[\"x\"]\n"
                     "machine_type = 'q35'\n"
                     "\n"
                     "# about the agent\n"
                     "[agent.kata]\n"
                     "kernel_modules=[]\n";
  const struct kgb_toml_set sets[] = {
      {"hypervisor.qemu", "kernel", "\"/new\"", "why kernel"},
      {"hypervisor.qemu", "machine_type", "\"q35\"", "why machine"},
      {"hypervisor.qemu", "hot_plug_vfio", "\"root-port\"", "why hot"},
      {"hypervisor.qemu", "pcie_root_port", "2", "why ports"},
      {"hypervisor.qemu", "default_memory", "8192", "why memory"},
      {"hypervisor.qemu", "image", NULL, "why no image"},
      {"agent.kata", "kernel_modules", "[\"nvidia\"]", "why modules"},
      {"runtime", "vfio_mode", "\"guest-kernel\"", "why vfio"},
  };
  char *out = patch(base, sets, ELEMENTSOF(sets), 7);
  assert_string_equal(out, "# head\n"
                           "[hypervisor.qemu]\n"
                           "kernel = \"/new\"   # keep this comment\n"
                           "#image = \"/img\"\n"
                           "hot_plug_vfio = \"root-port\"\n"
                           "pcie_root_port = 2\n"
                           "#  - kernel_modules=[\"x\"]\n"
                           "machine_type = 'q35'\n"
                           "# why memory\n"
                           "default_memory = 8192\n"
                           "\n"
                           "# about the agent\n"
                           "[agent.kata]\n"
                           "kernel_modules=[\"nvidia\"]\n"
                           "\n"
                           "[runtime]\n"
                           "# why vfio\n"
                           "vfio_mode = \"guest-kernel\"\n");
  /* A second run changes nothing. */
  char *again = patch(out, sets, ELEMENTSOF(sets), 0);
  assert_string_equal(again, out);
  free(again);
  free(out);

  /* CRLF files stay CRLF; a file without a final newline gets one before an added key. */
  const struct kgb_toml_set one[] = {{"t", "b", "2", NULL}};
  out = patch("[t]\r\na = 1\r\n", one, 1, 1);
  assert_string_equal(out, "[t]\r\na = 1\r\nb = 2\r\n");
  free(out);
  out = patch("[t]\na = 1", one, 1, 1);
  assert_string_equal(out, "[t]\na = 1\nb = 2\n");
  free(out);

  /* A key written with a dotted key in a parent table is found and set there. */
  const struct kgb_toml_set dotted[] = {{"hypervisor.qemu", "kernel", "\"/k\"", NULL}};
  out = patch("[hypervisor]\nqemu.kernel = \"/old\"\n", dotted, 1, 1);
  assert_string_equal(out, "[hypervisor]\nqemu.kernel = \"/k\"\n");
  free(out);
  out = patch("hypervisor.qemu.kernel = \"/k\"\n", dotted, 1, 0);
  free(out);
  /* A table written inline cannot take a new key: refused, not a broken file. */
  struct kgb_toml_patch q = {0};
  const char *inl = "hypervisor = { qemu = { path = \"/q\" } }\n";
  kgb_error_clear(ctx);
  assert_int_equal(kgb_toml_patch(ctx, "c.toml", inl, strlen(inl), dotted, 1, &q), -EINVAL);
  assert_null(q.text);
  assert_non_null(strstr(kgb_error_detail(ctx), "the edit would not be valid TOML"));

  /* An invalid document is refused with its line, and nothing is produced. */
  struct kgb_toml_patch p = {0};
  kgb_error_clear(ctx);
  assert_int_equal(kgb_toml_patch(ctx, "c.toml", "[t]\nx = \n", 9, one, 1, &p), -EINVAL);
  assert_null(p.text);
  assert_non_null(strstr(kgb_error_detail(ctx), "c.toml:2:"));
}

static void test_diff(void **state) {
  (void)state;
  const struct kgb_toml_set sets[] = {{"t", "a", "2", NULL}, {"t", "c", "3", "why c"}};
  struct kgb_toml_patch p = {0};
  kgb_error_clear(ctx);
  const char *text = "[t]\na = 1\nb = 1\n";
  assert_int_equal(kgb_toml_patch(ctx, "c.toml", text, strlen(text), sets, 2, &p), 0);
  assert_string_equal(p.diff, "--- c.toml\n+++ c.toml\n"
                              "@@ -2,1 +2,1 @@\n-a = 1\n+a = 2\n"
                              "@@ -3,0 +4,2 @@\n+# why c\n+c = 3\n");
  kgb_toml_patch_release(&p);
}

/* A file without a final newline whose last table takes several keys (or a key and a new
 * table): every insertion lands after the last line, which gets its newline once. This used
 * to rewrite the last line once per insertion and corrupt the heap. */
static void test_patch_no_final_newline(void **state) {
  (void)state;
  const char *text = "[agent.kata]\ndial_timeout = 45";
  const struct kgb_toml_set two[] = {{"agent.kata", "a", "1", "why a"},
                                     {"agent.kata", "b", "2", NULL}};
  char *out = patch(text, two, ELEMENTSOF(two), 2);
  assert_string_equal(out, "[agent.kata]\ndial_timeout = 45\n# why a\na = 1\nb = 2\n");
  char *again = patch(out, two, ELEMENTSOF(two), 0);
  assert_string_equal(again, out);
  free(again);
  free(out);

  const struct kgb_toml_set key_and_table[] = {{"agent.kata", "a", "1", NULL},
                                               {"runtime", "vfio_mode", "\"x\"", NULL}};
  out = patch(text, key_and_table, ELEMENTSOF(key_and_table), 2);
  assert_string_equal(out,
                      "[agent.kata]\ndial_timeout = 45\na = 1\n\n[runtime]\nvfio_mode = \"x\"\n");
  again = patch(out, key_and_table, ELEMENTSOF(key_and_table), 0);
  assert_string_equal(again, out);
  free(again);
  free(out);

  /* The last line itself set, and a key added after it: one rewrite of that line. */
  const struct kgb_toml_set set_and_add[] = {{"agent.kata", "dial_timeout", "60", NULL},
                                             {"agent.kata", "a", "1", NULL},
                                             {"agent.kata", "b", "2", NULL}};
  out = patch(text, set_and_add, ELEMENTSOF(set_and_add), 3);
  assert_string_equal(out, "[agent.kata]\ndial_timeout = 60\na = 1\nb = 2\n");
  free(out);
  /* Only the last line set: it keeps having no newline (every other byte stays). */
  out = patch(text, set_and_add, 1, 1);
  assert_string_equal(out, "[agent.kata]\ndial_timeout = 60");
  free(out);
  /* A table with no keys at the very end, and a commented-out key as the last line. */
  out = patch("[agent.kata]", two, ELEMENTSOF(two), 2);
  assert_string_equal(out, "[agent.kata]\n# why a\na = 1\nb = 2\n");
  free(out);
  out = patch("[agent.kata]\nx = 1\n#a = 0", two, ELEMENTSOF(two), 2);
  assert_string_equal(out, "[agent.kata]\nx = 1\nb = 2\na = 1");
  free(out);

  /* The diff says that the last line gained its newline, and applies. */
  struct kgb_toml_patch p = {0};
  kgb_error_clear(ctx);
  assert_int_equal(kgb_toml_patch(ctx, "c.toml", text, strlen(text), two, 2, &p), 0);
  assert_string_equal(p.diff, "--- c.toml\n+++ c.toml\n"
                              "@@ -2,1 +2,1 @@\n-dial_timeout = 45\n\\ No newline at end of file\n"
                              "+dial_timeout = 45\n"
                              "@@ -2,0 +3,3 @@\n+# why a\n+a = 1\n+b = 2\n");
  kgb_toml_patch_release(&p);
}

/* Edits at one point: a key added after the table's last entry and the commented-out key on
 * the next line, in either order, both land; the same key twice is refused, never two
 * rewrites of one line. */
static void test_patch_same_point(void **state) {
  (void)state;
  const char *text = "[a]\nx = 1\n#y = 2\n[b]\n";
  const struct kgb_toml_set yz[] = {{"a", "y", "3", NULL}, {"a", "z", "4", NULL}};
  const struct kgb_toml_set zy[] = {{"a", "z", "4", NULL}, {"a", "y", "3", NULL}};
  char *out = patch(text, yz, 2, 2);
  assert_string_equal(out, "[a]\nx = 1\nz = 4\ny = 3\n[b]\n");
  free(out);
  out = patch(text, zy, 2, 2);
  assert_string_equal(out, "[a]\nx = 1\nz = 4\ny = 3\n[b]\n");
  free(out);

  const struct kgb_toml_set twice[] = {{"a", "x", "2", NULL}, {"a", "x", "3", NULL}};
  struct kgb_toml_patch p = {0};
  kgb_error_clear(ctx);
  assert_int_equal(kgb_toml_patch(ctx, "c.toml", text, strlen(text), twice, 2, &p), -EINVAL);
  assert_null(p.text);
  assert_non_null(strstr(kgb_error_detail(ctx), "c.toml:2:"));
  const struct kgb_toml_set set_and_clear[] = {{"a", "x", "2", NULL}, {"a", "x", NULL, NULL}};
  kgb_error_clear(ctx);
  assert_int_equal(kgb_toml_patch(ctx, "c.toml", text, strlen(text), set_and_clear, 2, &p),
                   -EINVAL);
  assert_null(p.text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_values),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_canonical),
      cmocka_unit_test(test_patch),
      cmocka_unit_test(test_diff),
      cmocka_unit_test(test_patch_no_final_newline),
      cmocka_unit_test(test_patch_same_point),
  };
  return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
