/* The host's side of the boot-test console protocol (boot-protocol.h): one line of the guest's
 * serial console parsed into a struct, and the status of a check. */
#pragma once

enum kgb_check_status {
  KGB_CHECK_PASS,
  KGB_CHECK_FAIL,
  KGB_CHECK_SKIP,
  _KGB_CHECK_STATUS_MAX,
  _KGB_CHECK_STATUS_INVALID = -22,
};
/* "pass", "fail", "skipped" ("skip" is accepted too). */
enum kgb_check_status kgb_check_status_from_string(const char *s);
const char *kgb_check_status_to_string(enum kgb_check_status s);

enum kgb_boot_line_kind {
  KGB_BOOT_LINE_BEGIN,   /* KGB-CHECK begin uptime=0.84 */
  KGB_BOOT_LINE_RESULT,  /* KGB-CHECK name=uname status=pass detail="..." */
  KGB_BOOT_LINE_HOTPLUG, /* KGB-CHECK hotplug: the guest waits for a device in a root port */
  KGB_BOOT_LINE_END,     /* KGB-CHECK end uptime=0.91 pass=5 fail=0 skip=1 */
  _KGB_BOOT_LINE_KIND_MAX,
  _KGB_BOOT_LINE_KIND_INVALID = -22,
};

struct kgb_boot_line {
  enum kgb_boot_line_kind kind;
  char *name; /* RESULT */
  enum kgb_check_status status;
  char *detail;
  double uptime;              /* BEGIN, END: seconds since the guest's boot; -1 unknown */
  int n_pass, n_fail, n_skip; /* END: the guest's own counts, -1 unknown */
};
void kgb_boot_line_release(struct kgb_boot_line *l);

/* Parses one console line. The marker may follow other text on the line (a kernel message
 * that was not ended). -ENOMSG: not a check line; -EBADMSG: a check line that is malformed
 * (cut short, an unknown status); -ENOMEM. */
int kgb_boot_line_parse(const char *line, struct kgb_boot_line *ret);
