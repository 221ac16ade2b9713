/* libFuzzer target: a user profile on arbitrary text, loaded as `-p FILE` loads it: libconfig
 * parses it (with @include resolved among the shipped profiles), the schema checks every key,
 * the `override` group is applied. A profile that loads is then shown (libconfig text and
 * JSON) and its fragment patterns are resolved. libconfig keeps a little memory on some syntax
 * errors: tests/fuzz/lsan.supp. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "profile.h"

static char path[4096 + 16];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  snprintf(path, sizeof(path), "%s/user.cfg", fuzz_dir("profile"));
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_write(path, data, size);
  struct kgb_ctx *ctx = NULL;
  if (kgb_ctx_new(&ctx) < 0 || kgb_ctx_set_string(&ctx->datadir, KGB_TEST_SRCDIR) < 0)
    abort();
  struct kgb_profile *p = NULL;
  if (kgb_profile_load(ctx, path, &p) < 0) {
    if (p || !ctx->error)
      abort();
    kgb_ctx_free(ctx);
    return 0;
  }
  if (!p->name || !p->vendor || !p->mode)
    abort();
  char *text = NULL, *json = NULL;
  if (kgb_profile_format(p, false, &text) < 0 || kgb_profile_format(p, true, &json) < 0)
    abort();
  char **paths = NULL, **names = NULL;
  if (kgb_profile_fragments(ctx, p, &paths, &names) == 0) {
    for (size_t i = 0; paths[i]; i++) {
      if (!names[i])
        abort();
      free(paths[i]);
      free(names[i]);
    }
    free(paths);
    free(names);
  }
  free(json);
  free(text);
  kgb_profile_free(p);
  kgb_ctx_free(ctx);
  return 0;
}
