/* The boot-test console protocol: the lines kgb-guest-check (builder/guest/check.c) prints on
 * the guest's serial console and boot-console.c parses on the host, defined once here. Header
 * only and libc only: the guest program is linked statically without the engine and includes
 * this file and nothing else from builder/lib.
 *
 *   KGB-CHECK begin uptime=0.84
 *   KGB-CHECK name=uname status=pass detail="6.1.192-virgl-gpu"
 *   KGB-CHECK hotplug                 (asks the host to hot-plug a device over QMP)
 *   KGB-CHECK end uptime=0.91 pass=5 fail=0 skip=1
 *
 * A line is the prefix, then a kind word and key=value fields, or (a result) the fields alone.
 * A value is bare up to a space, or "quoted" with \" \\ and \n escapes. The host finds the
 * prefix anywhere on a line (after a kernel message that was not ended) and ignores keys it
 * does not know (from a newer guest). The guest writes each line with one write() so that it
 * stays whole on the console. */
#pragma once

#include <stddef.h>

#define KGB_CONSOLE_PREFIX "KGB-CHECK "

/* the kind words; a line without one is a result */
#define KGB_CONSOLE_BEGIN "begin"
#define KGB_CONSOLE_HOTPLUG "hotplug"
#define KGB_CONSOLE_END "end"

/* the keys */
#define KGB_CONSOLE_KEY_NAME "name"
#define KGB_CONSOLE_KEY_STATUS "status"
#define KGB_CONSOLE_KEY_DETAIL "detail"
#define KGB_CONSOLE_KEY_UPTIME "uptime" /* seconds since the guest's boot */
#define KGB_CONSOLE_KEY_PASS "pass"     /* the guest's own counts, on the end line */
#define KGB_CONSOLE_KEY_FAIL "fail"
#define KGB_CONSOLE_KEY_SKIP "skip"

/* the values of status= */
#define KGB_CONSOLE_STATUS_PASS "pass"
#define KGB_CONSOLE_STATUS_FAIL "fail"
#define KGB_CONSOLE_STATUS_SKIP "skipped"
#define KGB_CONSOLE_STATUS_SKIP_SHORT "skip" /* accepted too */

/* The lines as the guest writes them, fields in this order. A result line is
 * KGB_CONSOLE_RESULT_OPEN (name, status), the detail through kgb_console_quote, then
 * KGB_CONSOLE_RESULT_CLOSE. */
#define KGB_CONSOLE_BEGIN_FMT                                                                      \
  KGB_CONSOLE_PREFIX KGB_CONSOLE_BEGIN " " KGB_CONSOLE_KEY_UPTIME "=%.3f\n"
#define KGB_CONSOLE_RESULT_OPEN                                                                    \
  KGB_CONSOLE_PREFIX KGB_CONSOLE_KEY_NAME "=%s " KGB_CONSOLE_KEY_STATUS                            \
                                          "=%s " KGB_CONSOLE_KEY_DETAIL "=\""
#define KGB_CONSOLE_RESULT_CLOSE "\"\n"
#define KGB_CONSOLE_HOTPLUG_LINE KGB_CONSOLE_PREFIX KGB_CONSOLE_HOTPLUG "\n"
#define KGB_CONSOLE_END_FMT                                                                        \
  KGB_CONSOLE_PREFIX KGB_CONSOLE_END " " KGB_CONSOLE_KEY_UPTIME "=%.3f " KGB_CONSOLE_KEY_PASS      \
                                     "=%u " KGB_CONSOLE_KEY_FAIL "=%u " KGB_CONSOLE_KEY_SKIP       \
                                     "=%u\n"

/* Appends s to buf (n bytes used of size) as the inside of a quoted value: " and \ escaped, a
 * newline as \n, other control characters as '?'. Stops 4 bytes short of size, so that the
 * closing quote and newline fit. Returns the new length. */
static inline size_t kgb_console_quote(char *buf, size_t n, size_t size, const char *s) {
  for (const char *c = s; *c && n + 4 < size; c++) {
    if (*c == '"' || *c == '\\')
      buf[n++] = '\\', buf[n++] = *c;
    else if (*c == '\n')
      buf[n++] = '\\', buf[n++] = 'n';
    else
      buf[n++] = (unsigned char)*c < 0x20 ? '?' : *c;
  }
  return n;
}
