/* Fragment and allow-list parsing: what is accepted, what is refused and how it is said. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>
#include <string.h>
#include <sys/stat.h>

#include "allow.h"
#include "fixture.h"
#include "fragment.h"
#include "sbuf.h"
#include "util.h"

static struct kgb_fragment *parse_ok(const char *text) {
  struct kgb_fragment *f = NULL;
  kgb_error_clear(ctx);
  assert_int_equal(kgb_fragment_parse(ctx, "t.conf", text, false, &f), 0);
  return f;
}

static void expect_error(const char *text, int err, const char *detail) {
  struct kgb_fragment *f = NULL;
  kgb_error_clear(ctx);
  assert_int_equal(kgb_fragment_parse(ctx, "t.conf", text, false, &f), err);
  assert_null(f);
  assert_detail(detail);
}

/* A FIFO given as --fragment blocked the run forever: refused at once, the file named. */
static void test_load_fifo(void **state) {
  (void)state;
  char dir[] = "/tmp/kgb-test-fragment-XXXXXX";
  assert_non_null(mkdtemp(dir));
  _cleanup_free_ char *fifo = strjoin_path(dir, "gpu.conf");
  assert_int_equal(mkfifo(fifo, 0644), 0);
  struct kgb_fragment *f = NULL;
  kgb_error_clear(ctx);
  assert_int_equal(kgb_fragment_load(ctx, fifo, fifo, false, &f), -ENOTSUP);
  assert_null(f);
  if (!strstr(kgb_error_detail(ctx), "gpu.conf: cannot read fragment: it is a FIFO"))
    fail_msg("detail '%s'", kgb_error_detail(ctx));
  rm_rf(dir);
}

static void test_values(void **state) {
  (void)state;
  struct kgb_fragment *f = parse_ok("# why: virtio\n"
                                    "CONFIG_VIRTIO=y\n"
                                    "CONFIG_DRM=m   # trailing comment\n"
                                    "# CONFIG_DRM_NOUVEAU is not set\n"
                                    "CONFIG_NOUVEAU_X=n\r\n"
                                    "CONFIG_LOCALVERSION=\"-nvidia-gpu\"\n"
                                    "CONFIG_CMDLINE=\"a \\\"quoted\\\" b\"\n"
                                    "CONFIG_NR_CPUS=64\n"
                                    "CONFIG_PHYS=0x1000000\n"
                                    "\n");
  assert_int_equal(f->n_entries, 8);
  assert_string_equal(f->entries[0].symbol, "VIRTIO");
  assert_int_equal(f->entries[0].line, 2);
  assert_string_equal(f->entries[1].value, "m");
  assert_string_equal(f->entries[2].symbol, "DRM_NOUVEAU");
  assert_string_equal(f->entries[2].value, "n");
  assert_string_equal(f->entries[3].value, "n");
  assert_true(f->entries[4].is_string);
  assert_string_equal(f->entries[4].value, "-nvidia-gpu");
  assert_string_equal(f->entries[5].value, "a \"quoted\" b");
  assert_string_equal(f->entries[7].value, "0x1000000");
  struct sbuf sb = SBUF_INIT;
  kgb_fentry_format(&sb, "CMDLINE", f->entries[5].value, true);
  kgb_fentry_format(&sb, "DRM_NOUVEAU", "n", false);
  assert_string_equal(sbuf_str(&sb), "CONFIG_CMDLINE=\"a \\\"quoted\\\" b\"\n"
                                     "# CONFIG_DRM_NOUVEAU is not set\n");
  sbuf_release(&sb);
  kgb_fragment_free(f);
  /* a UTF-8 byte order mark is not part of the first line */
  f = parse_ok("\xef\xbb\xbf"
               "CONFIG_DRM=y\n");
  assert_string_equal(f->entries[0].symbol, "DRM");
  assert_int_equal(f->entries[0].line, 1);
  kgb_fragment_free(f);
  /* an empty string is an empty string (a .config has many: CONFIG_BUILD_SALT="") */
  f = parse_ok("CONFIG_BUILD_SALT=\"\"\n");
  assert_true(f->entries[0].is_string);
  assert_string_equal(f->entries[0].value, "");
  kgb_fragment_free(f);
}

static void test_errors(void **state) {
  (void)state;
  expect_error("CONFIG_A=y\nVIRTIO=y\n", -EINVAL, "t.conf:2: not an assignment");
  expect_error("CONFIG_A=yes\n", -EINVAL, "t.conf:1: 'yes' is not a valid value");
  expect_error("CONFIG_A=\"open\n", -EINVAL, "t.conf:1: unterminated string");
  expect_error("CONFIG_A\n", -EINVAL, "has no '=value'");
  expect_error("CONFIG_A=\n", -EINVAL, "has no value");
  expect_error("CONFIG_A=y y\n", -EINVAL, "unexpected text after the value");
  expect_error("CONFIG_=y\n", -EINVAL, "empty symbol name");
  expect_error("# only a comment\n\n", -ENODATA, "sets no option");
  expect_error("", -ENODATA, "sets no option");
}

static void test_arch_tags(void **state) {
  (void)state;
  struct kgb_fragment *f = parse_ok("# !s390x !powerpc\nCONFIG_A=y\n");
  assert_true(kgb_fragment_excludes(f, "s390x"));
  assert_true(kgb_fragment_excludes(f, "powerpc"));
  assert_false(kgb_fragment_excludes(f, "x86_64"));
  assert_false(kgb_fragment_excludes(f, "s390")); /* exact, not a substring */
  assert_int_equal(f->tag_line, 1);
  kgb_fragment_free(f);
  /* a comment that merely mentions !x86_64 among words is not a tag */
  f = parse_ok("# not for !x86_64 users\n# !x86_64, !arm64\nCONFIG_A=y\n");
  assert_false(kgb_fragment_excludes(f, "x86_64"));
  assert_int_equal(f->tag_line, 0);
  kgb_fragment_free(f);
  f = parse_ok("#!x86_64\nCONFIG_A=y\n");
  assert_true(kgb_fragment_excludes(f, "x86_64"));
  assert_false(kgb_fragment_excludes(f, "x86"));
  kgb_fragment_free(f);
}

static void test_value_equality(void **state) {
  (void)state;
  assert_true(kgb_fvalue_equal("n", false, NULL, false));
  assert_true(kgb_fvalue_equal(NULL, false, "n", false));
  assert_false(kgb_fvalue_equal("y", false, NULL, false));
  assert_false(kgb_fvalue_equal("m", false, "y", false));
  assert_true(kgb_fvalue_equal("0x10", false, "16", false));
  assert_true(kgb_fvalue_equal("", true, NULL, false));
  assert_false(kgb_fvalue_equal("a", true, "b", true));
  assert_false(kgb_fvalue_equal("y", true, "y", false));
}

static void test_allow(void **state) {
  (void)state;
  struct kgb_allow *a = NULL;
  kgb_error_clear(ctx);
  assert_int_equal(kgb_allow_parse(ctx, "allow.conf",
                                   "# known drops\n"
                                   "CONFIG_OLD kernel:..5.15 renamed to CONFIG_NEW in 5.16\n"
                                   "CONFIG_NEW kernel:5.16.. introduced in 5.16\n"
                                   "CONFIG_ANY gone everywhere\n"
                                   "CONFIG_MID kernel:6.0..6.1 only in 6.0 and 6.1\n",
                                   &a),
                   0);
  assert_int_equal(a->n_entries, 4);
  assert_non_null(kgb_allow_match(a, "OLD", "5.15.80"));
  assert_null(kgb_allow_match(a, "OLD", "6.1.192"));
  assert_non_null(kgb_allow_match(a, "NEW", "6.1.192"));
  assert_null(kgb_allow_match(a, "NEW", "5.10"));
  assert_non_null(kgb_allow_match(a, "ANY", "4.19"));
  assert_non_null(kgb_allow_match(a, "MID", "6.1.192"));
  assert_null(kgb_allow_match(a, "MID", "6.2"));
  assert_null(kgb_allow_match(a, "OTHER", "6.1"));
  assert_string_equal(kgb_allow_match(a, "ANY", NULL)->reason, "gone everywhere");
  kgb_allow_free(a);

  a = NULL;
  kgb_error_clear(ctx);
  assert_int_equal(kgb_allow_parse(ctx, "allow.conf", "\nCONFIG_X kernel:6.1..\n", &a), -EINVAL);
  assert_non_null(
      strstr(kgb_error_detail(ctx), "allow.conf:2: allow-list entry for 'CONFIG_X' has no reason"));
  kgb_error_clear(ctx);
  assert_int_equal(kgb_allow_parse(ctx, "allow.conf", "CONFIG_X kernel:6.x.. why\n", &a), -EINVAL);
  assert_non_null(strstr(kgb_error_detail(ctx), "bad kernel range"));
  assert_true(version_compare("6.1", "6.1.5") < 0);
  assert_true(version_compare("6.10", "6.9") > 0);
  assert_int_equal(version_compare("6.1.0", "6.1.0"), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_load_fifo),      cmocka_unit_test(test_values),
      cmocka_unit_test(test_errors),         cmocka_unit_test(test_arch_tags),
      cmocka_unit_test(test_value_equality), cmocka_unit_test(test_allow),
  };
  return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
