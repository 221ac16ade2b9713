/* libFuzzer target: a distribution's cleanup rules (rootfs/<distro>/cleanup). A text that
 * parses gives rules whose paths are absolute, free of "." and ".." components, and carry a
 * pattern exactly when they match; one that does not is -EINVAL with nothing returned. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "root-data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = fuzz_text(data, size);
  struct kgb_ctx *ctx = NULL;
  if (!text || kgb_ctx_new(&ctx) < 0)
    abort();
  struct kgb_root_cleanup_rule *v = NULL;
  size_t n = 0;
  int r = kgb_root_cleanup_parse(ctx, "cleanup", text, &v, &n);
  if (r == 0) {
    for (size_t i = 0; i < n; i++) {
      const char *p = v[i].path;
      if (!p || p[0] != '/' || strstr(p, "/../") || strstr(p, "/./") || strstr(p, "//"))
        abort();
      if ((v[i].verb == KGB_CLEANUP_MATCH) != (v[i].pattern != NULL))
        abort();
      if (v[i].pattern && strchr(v[i].pattern, '/'))
        abort();
      free(v[i].path);
      free(v[i].pattern);
    }
    free(v);
  } else if (r != -EINVAL || v) {
    abort();
  }
  kgb_ctx_free(ctx);
  free(text);
  return 0;
}
