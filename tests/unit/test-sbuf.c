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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_append),
      cmocka_unit_test(test_overflow),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
