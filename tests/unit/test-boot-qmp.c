/* boot-test's QMP client: QEMU's replies (greeting, return, error, event) told apart, an
 * error's text kept, and malformed or too deeply nested JSON refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "boot-qmp.h"
#include "sbuf.h"

static void test_qmp(void **state) {
  (void)state;
  struct kgb_qmp_reply r;
  assert_int_equal(kgb_qmp_parse("{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, "
                                 "\"major\": 7}, \"package\": \"Debian 1:7.2\"}, "
                                 "\"capabilities\": [\"oob\"]}}\r",
                                 &r),
                   0);
  assert_int_equal(r.kind, KGB_QMP_GREETING);
  kgb_qmp_reply_release(&r);

  assert_int_equal(kgb_qmp_parse("{\"return\": {}}", &r), 0);
  assert_int_equal(r.kind, KGB_QMP_RETURN);
  kgb_qmp_reply_release(&r);

  assert_int_equal(kgb_qmp_parse("{\"return\": [{\"a\": [1, -2.5e3, true, null]}], \"id\": 7}", &r),
                   0);
  assert_int_equal(r.kind, KGB_QMP_RETURN);
  kgb_qmp_reply_release(&r);

  assert_int_equal(kgb_qmp_parse("{\"id\": \"x\", \"error\": {\"class\": \"GenericError\", "
                                 "\"desc\": \"Bus \\u0027rp0\\u0027 not found\\u00e9\"}}",
                                 &r),
                   0);
  assert_int_equal(r.kind, KGB_QMP_ERROR);
  assert_string_equal(r.error_class, "GenericError");
  assert_string_equal(r.desc, "Bus 'rp0' not found?");
  kgb_qmp_reply_release(&r);

  assert_int_equal(kgb_qmp_parse("{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, "
                                 "\"event\": \"DEVICE_ADDED\", \"data\": {\"path\": \"/x\"}}",
                                 &r),
                   0);
  assert_int_equal(r.kind, KGB_QMP_EVENT);
  assert_string_equal(r.event, "DEVICE_ADDED");
  kgb_qmp_reply_release(&r);

  assert_int_equal(kgb_qmp_parse("{\"greeting\": 1}", &r), -ENOMSG);
  static const char *const bad[] = {
      "",
      "[]",
      "{\"return\": {}",
      "{\"return\": {}} x",
      "{\"return\" {}}",
      "{return: 1}",
      "{\"error\": \"text\"}",
      "{\"a\": \"\\q\"}",
      "{\"a\": tru}",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (kgb_qmp_parse(bad[i], &r) != -EBADMSG)
      fail_msg("'%s' was accepted", bad[i]);
  /* nesting has a limit */
  struct sbuf deep = SBUF_INIT;
  sbuf_adds(&deep, "{\"return\": ");
  for (int i = 0; i < 100; i++)
    sbuf_adds(&deep, "[");
  for (int i = 0; i < 100; i++)
    sbuf_adds(&deep, "]");
  sbuf_adds(&deep, "}");
  assert_int_equal(kgb_qmp_parse(sbuf_str(&deep), &r), -EBADMSG);
  sbuf_release(&deep);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_qmp),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
