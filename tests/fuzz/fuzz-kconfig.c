/* libFuzzer target: the Kconfig reader on arbitrary text. Every file name resolves to the
 * input itself, a bounded number of times, so that `source` lines exercise nesting and
 * recursion checks; then everything the database holds is evaluated and formatted. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kconfig.h"

struct input {
  const uint8_t *data;
  size_t size;
  unsigned opens;
};

static int open_input(void *userdata, const char *path, char **ret_text) {
  struct input *in = userdata;
  (void)path;
  /* bounded: a file sourcing itself under ever new names would otherwise fan out */
  if (in->opens++ >= 8)
    return -ENOENT;
  char *text = malloc(in->size + 1);
  if (!text)
    return -ENOMEM;
  memcpy(text, in->data, in->size);
  text[in->size] = '\0';
  *ret_text = text;
  return 0;
}

static const char *value_of(void *userdata, const char *symbol) {
  static const char *const values[] = {NULL, "y", "m", "n", "3", "0x10", "text"};
  (void)userdata;
  size_t h = 0;
  for (const char *c = symbol; *c; c++)
    h = h * 31 + (unsigned char)*c;
  return values[h % (sizeof(values) / sizeof(values[0]))];
}

static void show(const struct kgb_kexpr *e) {
  kgb_kexpr_eval(e, value_of, NULL);
  free(kgb_kexpr_format(e, value_of, NULL));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct input in = {data, size, 0};
  struct kgb_ctx ctx = {0};
  struct kgb_kconfig_vars vars = {"x86", "x86_64", "6.1.0"};
  struct kgb_kconfig *k = NULL;

  if (kgb_kconfig_load_with(&ctx, "Kconfig", open_input, &in, &vars, &k) == 0) {
    for (size_t i = 0; i < kgb_kconfig_count(k); i++) {
      const struct kgb_ksym *s = kgb_kconfig_at(k, i);
      if (kgb_kconfig_find(k, s->name) != s || !kgb_ktype_to_string(s->type))
        abort();
      struct kgb_kexpr *dep = kgb_ksym_dependency(s);
      show(dep);
      kgb_kexpr_unref(dep);
      for (size_t d = 0; d < s->n_defs; d++) {
        const struct kgb_kdef *def = &s->defs[d];
        show(def->depends);
        show(def->prompt_if);
        for (size_t j = 0; j < def->n_defaults; j++) {
          show(def->defaults[j].value);
          show(def->defaults[j].cond);
        }
        for (size_t j = 0; j < def->n_selects; j++)
          show(def->selects[j].cond);
      }
      for (size_t j = 0; j < s->n_selected_by; j++)
        if (!kgb_kconfig_find(k, s->selected_by[j].symbol))
          abort();
      if (s->choice)
        show(s->choice->depends);
      if (i < 8) {
        const char *similar[4];
        if (kgb_kconfig_similar(k, s->name, similar, 4) == 0)
          abort(); /* a defined name is at least similar to itself */
      }
    }
    kgb_kconfig_free(k);
  } else if (k)
    abort();
  free(ctx.error);
  return 0;
}
