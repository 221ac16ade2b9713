/* Fragment merging. Order is the contract: base, then vendor, then user fragments; a later
 * value wins and every change of value is recorded so that nothing is overridden silently. */
#include "merge.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../shared/hashmap.h"
#include "../shared/sbuf.h"
#include "../shared/util.h"

struct kgb_merge *kgb_merge_new(void) {
  return calloc(1, sizeof(struct kgb_merge));
}

struct kgb_merge *kgb_merge_free(struct kgb_merge *m) {
  if (!m)
    return NULL;
  for (size_t i = 0; i < m->n_fragments; i++)
    kgb_fragment_free(m->fragments[i]);
  free(m->fragments);
  free(m->layers);
  strv_free(m->skipped);
  free(m->requests);
  free(m->overrides);
  free(m);
  return NULL;
}

int kgb_merge_add(struct kgb_merge *m, struct kgb_fragment *f, enum kgb_layer layer,
                  const char *arch) {
  _cleanup_(kgb_fragment_freep) struct kgb_fragment *frag = f;
  if (arch && kgb_fragment_excludes(f, arch))
    return strv_extend(&m->skipped, f->name);
  struct kgb_fragment **nf = realloc(m->fragments, (m->n_fragments + 1) * sizeof(*nf));
  if (!nf)
    return -ENOMEM;
  m->fragments = nf;
  enum kgb_layer *nl = realloc(m->layers, (m->n_fragments + 1) * sizeof(*nl));
  if (!nl)
    return -ENOMEM;
  m->layers = nl;
  m->fragments[m->n_fragments] = TAKE_PTR(frag);
  m->layers[m->n_fragments] = layer;
  m->n_fragments++;
  return 0;
}

static int push_override(struct kgb_merge *m, const struct kgb_request *from,
                         const struct kgb_request *to, bool conflict) {
  struct kgb_override *n = realloc(m->overrides, (m->n_overrides + 1) * sizeof(*n));
  if (!n)
    return -ENOMEM;
  m->overrides = n;
  m->overrides[m->n_overrides++] =
      (struct kgb_override){.symbol = to->symbol, .from = *from, .to = *to, .conflict = conflict};
  if (conflict)
    m->n_conflicts++;
  return 0;
}

int kgb_merge_finish(struct kgb_merge *m, char *const *allowed) {
  struct hashmap index = HASHMAP_INIT; /* symbol -> request index + 1 */
  int r = 0;
  size_t total = 0;
  for (size_t i = 0; i < m->n_fragments; i++)
    total += m->fragments[i]->n_entries;
  free(m->requests);
  m->requests = calloc(total ? total : 1, sizeof(*m->requests));
  m->n_requests = 0;
  if (!m->requests)
    return -ENOMEM;
  for (size_t i = 0; i < m->n_fragments && r >= 0; i++) {
    const struct kgb_fragment *f = m->fragments[i];
    for (size_t j = 0; j < f->n_entries && r >= 0; j++) {
      const struct kgb_fentry *e = &f->entries[j];
      struct kgb_request req = {e->symbol, e, f, m->layers[i]};
      size_t slot = (size_t)(uintptr_t)hashmap_get(&index, e->symbol);
      if (!slot) {
        m->requests[m->n_requests++] = req;
        r = hashmap_put(&index, e->symbol, (void *)(uintptr_t)m->n_requests);
        continue;
      }
      struct kgb_request *prev = &m->requests[slot - 1];
      if (!kgb_fvalue_equal(prev->entry->value, prev->entry->is_string, e->value, e->is_string)) {
        bool conflict = prev->layer == KGB_LAYER_VENDOR && req.layer == KGB_LAYER_VENDOR &&
                        prev->fragment != f && !strv_contains(allowed, e->symbol);
        r = push_override(m, prev, &req, conflict);
      }
      *prev = req;
    }
  }
  hashmap_release(&index);
  return r;
}

int kgb_merge_render(const struct kgb_merge *m, char **ret) {
  struct sbuf sb = SBUF_INIT;
  int r = 0;
  for (size_t i = 0; i < m->n_requests && r >= 0; i++) {
    const struct kgb_request *q = &m->requests[i];
    r = kgb_fentry_format(&sb, q->symbol, q->entry->value, q->entry->is_string);
  }
  char *s = r < 0 ? NULL : sbuf_steal(&sb);
  sbuf_release(&sb);
  if (!s)
    return r < 0 ? r : -ENOMEM;
  *ret = s;
  return 0;
}

const struct kgb_request *kgb_merge_find(const struct kgb_merge *m, const char *symbol) {
  for (size_t i = 0; i < m->n_requests; i++)
    if (STREQ(m->requests[i].symbol, symbol))
      return &m->requests[i];
  return NULL;
}
