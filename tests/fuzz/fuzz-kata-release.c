/* libFuzzer target: what --kata-version takes and what Kata's programs print for --version.
 * A version that parses is a published release of the table; a line that parses gives a
 * version of one token. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "kata-releases.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = fuzz_text(data, size);
  struct kgb_ctx *ctx = NULL;
  if (!text || kgb_ctx_new(&ctx) < 0)
    abort();
  for (int rt = 0; rt < _KGB_KATA_RUNTIME_MAX; rt++) {
    struct kgb_kata_release r;
    int e = kgb_kata_release_parse(ctx, text, (enum kgb_kata_runtime)rt, &r);
    if (e == 0) {
      /* parsing the name it resolved to gives the same release */
      struct kgb_kata_release again;
      if (kgb_kata_release_parse(ctx, r.name, (enum kgb_kata_runtime)rt, &again) < 0 ||
          strcmp(again.name, r.name) != 0 || r.major < 1 || r.major > 4)
        abort();
    } else if (e != -EINVAL) {
      abort();
    }
    kgb_error_clear(ctx);
  }
  char version[32];
  enum kgb_kata_runtime rt;
  if (kgb_kata_version_line_parse(text, version, &rt) == 0 &&
      (!version[0] || strpbrk(version, " \t\n,") || strlen(version) >= sizeof(version)))
    abort();
  kgb_ctx_free(ctx);
  free(text);
  return 0;
}
