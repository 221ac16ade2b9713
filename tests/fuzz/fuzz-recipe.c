/* libFuzzer target: a recipe on arbitrary text. One that parses is expanded twice: once with
 * every built-in and every setting given a value (so that every ${...} has one), once with
 * only the built-ins (settings fall back to their defaults or are missing). Expansion either
 * succeeds or says why with one of the errors recipe.h lists. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "recipe.h"

static char **values_for(const struct kgb_recipe *r, bool settings) {
  size_t nb = 0;
  while (kgb_recipe_builtins[nb])
    nb++;
  size_t n = nb + (settings ? r->n_settings : 0);
  char **v = calloc(n + 1, sizeof(*v));
  if (!v)
    abort();
  for (size_t i = 0; i < nb; i++)
    if (asprintf(&v[i], "%s=%s", kgb_recipe_builtins[i], i % 2 ? "x86_64" : "${arch}") < 0)
      abort();
  for (size_t i = 0; settings && i < r->n_settings; i++)
    if (asprintf(&v[nb + i], "%s=v%zu", r->settings[i].name, i) < 0)
      abort();
  return v;
}

static void expand(struct kgb_ctx *ctx, const struct kgb_recipe *r, bool settings) {
  char **v = values_for(r, settings);
  struct kgb_recipe *x = NULL;
  int e = kgb_recipe_expand(ctx, r, v, &x);
  if (e == 0) {
    if (!x || x->n_steps > r->n_steps || x->n_files > r->n_files || x->n_inputs > r->n_inputs)
      abort();
    for (size_t i = 0; i < x->n_steps; i++)
      if (x->steps[i].fail)
        abort(); /* fail steps that hold are errors; those that do not are gone */
  } else if (x || (e != -ENOKEY && e != -EPERM && e != -EINVAL && e != -ENOENT)) {
    abort();
  }
  kgb_recipe_free(x);
  for (size_t i = 0; v[i]; i++)
    free(v[i]);
  free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = fuzz_text(data, size);
  if (!text)
    return 0;
  struct kgb_ctx ctx = {0};
  struct kgb_recipe *r = NULL;
  if (kgb_recipe_parse(&ctx, "recipes/fuzz.recipe", KGB_TEST_SRCDIR "/recipes", text, &r) < 0) {
    if (r || !ctx.error)
      abort();
  } else {
    if (!r || !r->name)
      abort();
    expand(&ctx, r, true);
    expand(&ctx, r, false);
    kgb_recipe_free(r);
  }
  free(ctx.error);
  free(text);
  return 0;
}
