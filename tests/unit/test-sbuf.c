/* The growable buffer: a size that does not fit is refused before anything is copied, and an
 * error is sticky, so that a text built from many appends is whole or absent. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "sbuf.h"

static void test_append(void **state) {
  (void)state;
  struct sbuf sb = SBUF_INIT;
  char *empty = sbuf_steal(&sb);
  assert_string_equal(empty, "");
  free(empty);
  for (int i = 0; i < 100; i++)
    assert_int_equal(sbuf_adds(&sb, "0123456789"), 0);
  assert_int_equal(sbuf_addf(&sb, "%d%c", 42, 'x'), 0);
  assert_int_equal(sb.len, 1003);
  assert_int_equal(strlen(sbuf_str(&sb)), 1003);
  assert_int_equal(memcmp(sbuf_str(&sb) + 1000, "42x", 4), 0);
  sbuf_release(&sb);
  assert_int_equal(sbuf_add_json(&sb, "a\"\\\n\x01"), 0);
  assert_string_equal(sbuf_str(&sb), "\"a\\\"\\\\\\n\\u0001\"");
  sbuf_release(&sb);
}

/* len + extra + 1 used to wrap around to a small number, pass the capacity check, and let
 * sbuf_add copy about 2^64 bytes. */
static void test_overflow(void **state) {
  (void)state;
  struct sbuf sb = SBUF_INIT;
  assert_int_equal(sbuf_adds(&sb, "abc"), 0);
  assert_int_equal(sbuf_grow(&sb, SIZE_MAX), -EOVERFLOW);
  assert_int_equal(sbuf_grow(&sb, SIZE_MAX - 3), -EOVERFLOW);
  /* sticky: later appends do nothing and report the first error */
  assert_int_equal(sbuf_adds(&sb, "def"), -EOVERFLOW);
  assert_int_equal(sbuf_addf(&sb, "%s", "ghi"), -EOVERFLOW);
  assert_int_equal(sb.len, 3);
  assert_null(sbuf_steal(&sb));
  assert_null(sb.buf);
  /* released (or stolen), the buffer is usable again */
  assert_int_equal(sbuf_adds(&sb, "ok"), 0);
  char *s = sbuf_steal(&sb);
  assert_string_equal(s, "ok");
  free(s);
  assert_int_equal(sb.err, 0);
}

static int addf_wrapper(struct sbuf *sb, const char *fmt, ...) _printf_(2, 3);
static int addf_wrapper(struct sbuf *sb, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = sbuf_vaddf(sb, fmt, ap);
  va_end(ap);
  return r;
}

/* Every kind of append is a no-op once one failed, and reports that first error, so that a
 * caller may append without checking and look at sb.err (or sbuf_steal's NULL) once. */
static void test_sticky_every_append(void **state) {
  (void)state;
  struct sbuf sb = SBUF_INIT;
  assert_int_equal(sbuf_adds(&sb, "kept"), 0);
  assert_int_equal(sbuf_grow(&sb, SIZE_MAX), -EOVERFLOW);
  assert_int_equal(sb.err, -EOVERFLOW);
  assert_int_equal(sbuf_add(&sb, "x", 1), -EOVERFLOW);
  assert_int_equal(sbuf_add(&sb, NULL, 0), -EOVERFLOW);
  assert_int_equal(sbuf_adds(&sb, "x"), -EOVERFLOW);
  assert_int_equal(sbuf_addc(&sb, 'x'), -EOVERFLOW);
  assert_int_equal(sbuf_addf(&sb, "%d", 1), -EOVERFLOW);
  assert_int_equal(addf_wrapper(&sb, "%s", "x"), -EOVERFLOW);
  assert_int_equal(sbuf_add_json(&sb, "x"), -EOVERFLOW);
  assert_int_equal(sbuf_grow(&sb, 1), -EOVERFLOW);
  /* nothing was added: what is there is what came before the failure */
  assert_int_equal(sb.len, 4);
  assert_string_equal(sbuf_str(&sb), "kept");
  assert_int_equal(sb.err, -EOVERFLOW);
  assert_null(sbuf_steal(&sb));
  assert_null(sb.buf);
  assert_int_equal(sb.len, 0);
  assert_int_equal(sb.err, 0);

  /* the first error is the one kept: a later, different failure does not replace it */
  assert_int_equal(sbuf_grow(&sb, SIZE_MAX), -EOVERFLOW);
  assert_int_equal(addf_wrapper(&sb, "%s", "y"), -EOVERFLOW);
  assert_int_equal(sb.err, -EOVERFLOW);
  sbuf_release(&sb);
  assert_int_equal(sb.err, 0);
  assert_null(sb.buf);

  /* a buffer that failed before its first byte is still a string for sbuf_str */
  assert_int_equal(sbuf_grow(&sb, SIZE_MAX), -EOVERFLOW);
  assert_string_equal(sbuf_str(&sb), "");
  sbuf_release(&sb);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_append),
      cmocka_unit_test(test_overflow),
      cmocka_unit_test(test_sticky_every_append),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
