/* libFuzzer target: expressions parsed from arbitrary text, evaluated, formatted with and
 * without values, combined; what the formatter writes must parse back to the same text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "kconfig.h"

/* A value that depends only on the name, so that runs are reproducible. */
static const char *value_of(void *userdata, const char *symbol) {
  static const char *const values[] = {NULL, "y", "m", "n", "3", "0x10", "-1", "text", ""};
  (void)userdata;
  size_t h = 0;
  for (const char *c = symbol; *c; c++)
    h = h * 31 + (unsigned char)*c;
  return values[h % (sizeof(values) / sizeof(values[0]))];
}

static void count(void *ud, const char *sym) {
  (void)sym;
  (*(size_t *)ud)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = fuzz_text(data, size);
  if (!text)
    return 0;

  struct kgb_kexpr *e = NULL;
  size_t col = (size_t)-1;
  if (kgb_kexpr_parse(text, &e, &col) < 0) {
    if (e || col > strlen(text))
      abort();
    free(text);
    return 0;
  }

  enum kgb_tristate v = kgb_kexpr_eval(e, value_of, NULL);
  if (v != KGB_N && v != KGB_M && v != KGB_Y)
    abort();
  kgb_kexpr_eval(e, NULL, NULL);

  char *plain = kgb_kexpr_format(e, NULL, NULL);
  char *shown = kgb_kexpr_format(e, value_of, NULL);
  if (!plain || !shown)
    abort();

  /* round trip: the formatted text parses, means the same, and formats identically */
  struct kgb_kexpr *again = NULL;
  if (kgb_kexpr_parse(plain, &again, NULL) < 0)
    abort();
  char *plain2 = kgb_kexpr_format(again, NULL, NULL);
  if (!plain2 || strcmp(plain, plain2) != 0)
    abort();
  if (kgb_kexpr_eval(again, value_of, NULL) != v)
    abort();

  size_t n1 = 0, n2 = 0;
  kgb_kexpr_foreach_symbol(e, count, &n1);
  kgb_kexpr_foreach_symbol(again, count, &n2);
  if (n1 != n2)
    abort();

  /* combinations keep Kconfig's logic: a && a = a, a || a = a */
  struct kgb_kexpr *and = kgb_kexpr_and(e, again);
  struct kgb_kexpr * or = kgb_kexpr_or(e, again);
  if (!and || ! or)
    abort();
  if (kgb_kexpr_eval(and, value_of, NULL) != v || kgb_kexpr_eval(or, value_of, NULL) != v)
    abort();
  struct kgb_kexpr *mixed = kgb_kexpr_and(or, e);
  char *s = kgb_kexpr_format(mixed, value_of, NULL);
  if (!s)
    abort();

  free(s);
  kgb_kexpr_unref(mixed);
  kgb_kexpr_unref(and);
  kgb_kexpr_unref(or);
  free(plain2);
  kgb_kexpr_unref(again);
  free(shown);
  free(plain);
  kgb_kexpr_unref(e);
  free(text);
  return 0;
}
