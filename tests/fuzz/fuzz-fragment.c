/* libFuzzer target: the fragment parser and the allow-list parser on arbitrary text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "allow.h"
#include "fragment.h"
#include "fuzz.h"
#include "sbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = fuzz_text(data, size);
  if (!text)
    return 0;
  struct kgb_fragment *f = NULL;
  if (kgb_fragment_parse(NULL, "fuzz.conf", text, true, &f) == 0) {
    struct sbuf sb = SBUF_INIT;
    for (size_t i = 0; i < f->n_entries; i++)
      kgb_fentry_format(&sb, f->entries[i].symbol, f->entries[i].value, f->entries[i].is_string);
    /* what we write must parse back to the same values */
    struct kgb_fragment *g = NULL;
    if (kgb_fragment_parse(NULL, "again.conf", sbuf_str(&sb), true, &g) != 0 ||
        g->n_entries != f->n_entries)
      abort();
    for (size_t i = 0; i < f->n_entries; i++)
      if (strcmp(f->entries[i].value, g->entries[i].value) != 0)
        abort();
    kgb_fragment_free(g);
    sbuf_release(&sb);
    kgb_fragment_excludes(f, "x86_64");
    kgb_fragment_free(f);
  }
  struct kgb_allow *a = NULL;
  if (kgb_allow_parse(NULL, "allow.conf", text, &a) == 0) {
    kgb_allow_match(a, "FOO", "6.1.5");
    kgb_allow_free(a);
  }
  free(text);
  return 0;
}
