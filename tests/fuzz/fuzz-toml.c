/* libFuzzer target: the TOML reader on arbitrary text. A document it accepts must hold
 * together: every offset inside the text and in order, every entry found again under its
 * table and key, and the text between value_start and value_end reading back to the same
 * canonical value (the editor relies on those offsets to rewrite a value in place). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "toml.h"

static bool in_array(const struct kgb_toml_doc *d, const char *table) {
  for (size_t i = 0; i < d->n_tables; i++) {
    size_t n = strlen(d->tables[i].name);
    if (d->tables[i].is_array && strncmp(d->tables[i].name, table, n) == 0 &&
        (table[n] == '\0' || table[n] == '.'))
      return true;
  }
  return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct kgb_ctx ctx = {0};
  struct kgb_toml_doc *d = NULL;
  const char *text = (const char *)data;

  if (kgb_toml_parse(&ctx, "fuzz.toml", text, size, &d) < 0) {
    if (d || !ctx.error)
      abort(); /* a refusal says why, and produces nothing */
    free(ctx.error);
    return 0;
  }
  if (!d->n_tables || d->tables[0].name[0] != '\0')
    abort();
  for (size_t i = 0; i < d->n_entries; i++) {
    const struct kgb_toml_entry *e = &d->entries[i];
    if (!(e->line_start <= e->value_start && e->value_start < e->value_end &&
          e->value_end <= e->line_end && e->line_end <= size))
      abort();
    const struct kgb_toml_entry *f = kgb_toml_find(d, e->table, e->key);
    if (!f || (f != e && !in_array(d, e->table)))
      abort(); /* only an array of tables holds the same key more than once */
    char *value = strndup(text + e->value_start, e->value_end - e->value_start);
    char *canon = NULL;
    if (!value || kgb_toml_canonical(&ctx, value, &canon) < 0 || strcmp(canon, e->value) != 0)
      abort();
    free(canon);
    free(value);
  }
  for (size_t i = 0; i < d->n_tables; i++) {
    const struct kgb_toml_table *t = &d->tables[i];
    if (!(t->header_start <= t->body_start && t->body_start <= t->last_entry_end &&
          t->last_entry_end <= t->end && t->end <= size))
      abort();
    if (!t->is_array && kgb_toml_find_table(d, t->name) != t)
      abort();
  }
  for (size_t i = 0; i < d->n_comments; i++) {
    const struct kgb_toml_comment *c = &d->comments[i];
    if (!(c->start <= c->hash && c->hash < c->end && c->end <= size && text[c->hash] == '#' &&
          c->table < d->n_tables))
      abort();
  }
  kgb_toml_doc_free(d);
  free(ctx.error);
  return 0;
}
