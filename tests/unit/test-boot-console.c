/* boot-test's console protocol: the lines the guest program prints, parsed on the host, and
 * the lines written with the guest's formats (boot-protocol.h) read back by that parser. */
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

#include "boot-console.h"
#include "boot-protocol.h"

static struct kgb_boot_line parse_ok(const char *text) {
  struct kgb_boot_line l;
  int r = kgb_boot_line_parse(text, &l);
  if (r < 0)
    fail_msg("'%s': %s", text, strerror(-r));
  return l;
}

static void test_lines(void **state) {
  (void)state;
  struct kgb_boot_line l = parse_ok("KGB-CHECK begin uptime=0.842\r");
  assert_int_equal(l.kind, KGB_BOOT_LINE_BEGIN);
  assert_true(l.uptime > 0.841 && l.uptime < 0.843);
  kgb_boot_line_release(&l);

  l = parse_ok("KGB-CHECK name=uname status=pass detail=\"6.1.192-virgl-gpu\"");
  assert_int_equal(l.kind, KGB_BOOT_LINE_RESULT);
  assert_string_equal(l.name, "uname");
  assert_int_equal(l.status, KGB_CHECK_PASS);
  assert_string_equal(l.detail, "6.1.192-virgl-gpu");
  kgb_boot_line_release(&l);

  /* escapes, a key from a newer guest, the marker after an unfinished kernel message */
  l = parse_ok("[    1.20] pciehp: Slot(1)KGB-CHECK name=config status=fail "
               "detail=\"say \\\"y\\\"\\nC:\\\\\" future=1");
  assert_int_equal(l.status, KGB_CHECK_FAIL);
  assert_string_equal(l.detail, "say \"y\"\nC:\\");
  kgb_boot_line_release(&l);

  l = parse_ok("KGB-CHECK name=modules status=skip");
  assert_int_equal(l.status, KGB_CHECK_SKIP);
  assert_string_equal(l.detail, "");
  kgb_boot_line_release(&l);

  l = parse_ok("KGB-CHECK end uptime=1.5 pass=5 fail=1 skip=2");
  assert_int_equal(l.kind, KGB_BOOT_LINE_END);
  assert_int_equal(l.n_pass, 5);
  assert_int_equal(l.n_fail, 1);
  assert_int_equal(l.n_skip, 2);
  kgb_boot_line_release(&l);

  l = parse_ok("KGB-CHECK hotplug");
  assert_int_equal(l.kind, KGB_BOOT_LINE_HOTPLUG);
  kgb_boot_line_release(&l);

  struct kgb_boot_line bad;
  assert_int_equal(kgb_boot_line_parse("Run /kgb/check as init process", &bad), -ENOMSG);
  assert_int_equal(kgb_boot_line_parse("KGB-CHECKS begin", &bad), -ENOMSG);
  static const char *const malformed[] = {
      "KGB-CHECK name=virtio-gpu status=pa",                     /* cut by a kernel message */
      "KGB-CHECK name=config status=pass detail=\"no end quote", /* cut short */
      "KGB-CHECK status=pass detail=\"x\"",                      /* no name */
      "KGB-CHECK name=x detail=\"no status\"",                   /* no status */
      "KGB-CHECK name=x status=maybe",                           /* unknown status */
      "KGB-CHECK begin end",                                     /* two kinds */
      "KGB-CHECK reboot",                                        /* unknown kind */
      "KGB-CHECK end pass=-1",                                   /* a count below 0 */
      "KGB-CHECK begin uptime=soon",                             /* not a number */
      "KGB-CHECK ",                                              /* nothing */
  };
  for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++)
    if (kgb_boot_line_parse(malformed[i], &bad) != -EBADMSG)
      fail_msg("'%s' was accepted", malformed[i]);
}

static void test_status(void **state) {
  (void)state;
  assert_int_equal(kgb_check_status_from_string("skip"), KGB_CHECK_SKIP);
  assert_int_equal(kgb_check_status_from_string("skipped"), KGB_CHECK_SKIP);
  assert_string_equal(kgb_check_status_to_string(KGB_CHECK_SKIP), "skipped");
  assert_null(kgb_check_status_to_string(_KGB_CHECK_STATUS_INVALID));
}

/* What the guest writes (its formats, its quoting) is what the host reads. */
static void test_guest_lines(void **state) {
  (void)state;
  char line[512];
  snprintf(line, sizeof(line), KGB_CONSOLE_BEGIN_FMT, 0.5);
  struct kgb_boot_line l = parse_ok(line);
  assert_int_equal(l.kind, KGB_BOOT_LINE_BEGIN);
  assert_true(l.uptime > 0.49 && l.uptime < 0.51);
  kgb_boot_line_release(&l);

  static const char *const statuses[] = {KGB_CONSOLE_STATUS_PASS, KGB_CONSOLE_STATUS_FAIL,
                                         KGB_CONSOLE_STATUS_SKIP, KGB_CONSOLE_STATUS_SKIP_SHORT};
  static const enum kgb_check_status want[] = {KGB_CHECK_PASS, KGB_CHECK_FAIL, KGB_CHECK_SKIP,
                                               KGB_CHECK_SKIP};
  for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
    size_t n = (size_t)snprintf(line, sizeof(line), KGB_CONSOLE_RESULT_OPEN, "config", statuses[i]);
    n = kgb_console_quote(line, n, sizeof(line), "say \"y\"\nC:\\ \x01");
    snprintf(line + n, sizeof(line) - n, KGB_CONSOLE_RESULT_CLOSE);
    l = parse_ok(line);
    assert_int_equal(l.kind, KGB_BOOT_LINE_RESULT);
    assert_string_equal(l.name, "config");
    assert_int_equal(l.status, want[i]);
    assert_string_equal(l.detail, "say \"y\"\nC:\\ ?");
    kgb_boot_line_release(&l);
  }

  l = parse_ok(KGB_CONSOLE_HOTPLUG_LINE);
  assert_int_equal(l.kind, KGB_BOOT_LINE_HOTPLUG);
  kgb_boot_line_release(&l);

  snprintf(line, sizeof(line), KGB_CONSOLE_END_FMT, 1.25, 5u, 1u, 2u);
  l = parse_ok(line);
  assert_int_equal(l.kind, KGB_BOOT_LINE_END);
  assert_true(l.uptime > 1.24 && l.uptime < 1.26);
  assert_int_equal(l.n_pass, 5);
  assert_int_equal(l.n_fail, 1);
  assert_int_equal(l.n_skip, 2);
  kgb_boot_line_release(&l);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lines),
      cmocka_unit_test(test_status),
      cmocka_unit_test(test_guest_lines),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
