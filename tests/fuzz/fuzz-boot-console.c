/* libFuzzer target: what boot-test reads from a guest and from QEMU, one line at a time: the
 * check program's console lines (KGB-CHECK ...) and QMP replies. Both come from a process the
 * tool does not control; neither may crash it, and a parsed result must be self-consistent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "boot-console.h"
#include "boot-qmp.h"
#include "boottest.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *line = fuzz_text(data, size);
  if (!line)
    return 0;
  struct kgb_boot_line l = {0};
  if (kgb_boot_line_parse(line, &l) == 0) {
    if (l.kind < 0 || l.kind >= _KGB_BOOT_LINE_KIND_MAX)
      abort();
    if (l.kind == KGB_BOOT_LINE_RESULT && (!l.name || !l.detail))
      abort();
    kgb_boot_line_release(&l);
  }
  struct kgb_qmp_reply q = {0};
  if (kgb_qmp_parse(line, &q) == 0) {
    if (q.kind < 0 || q.kind >= _KGB_QMP_KIND_MAX)
      abort();
    if (q.kind == KGB_QMP_EVENT && !q.event)
      abort();
    kgb_qmp_reply_release(&q);
  }
  free(line);
  return 0;
}
