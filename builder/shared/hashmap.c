/* String-keyed hash map used for symbol tables (FNV-1a hashing). */
#include "hashmap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL;
  }
  return (size_t)h;
}

static size_t slot_for(const struct hashmap *m, const char *key) {
  size_t i = hash_str(key) & (m->cap - 1);
  while (m->keys[i] && strcmp(m->keys[i], key) != 0)
    i = (i + 1) & (m->cap - 1);
  return i;
}

static int grow(struct hashmap *m) {
  size_t ncap = m->cap ? m->cap * 2 : 64;
  struct hashmap n = {calloc(ncap, sizeof(char *)), calloc(ncap, sizeof(void *)), ncap, 0};
  if (!n.keys || !n.values) {
    free(n.keys);
    free(n.values);
    return -ENOMEM;
  }
  for (size_t i = 0; i < m->cap; i++)
    if (m->keys[i]) {
      size_t j = slot_for(&n, m->keys[i]);
      n.keys[j] = m->keys[i];
      n.values[j] = m->values[i];
      n.n++;
    }
  hashmap_release(m);
  *m = n;
  return 0;
}

int hashmap_put(struct hashmap *m, const char *key, void *value) {
  if ((m->n + 1) * 4 > m->cap * 3) {
    int r = grow(m);
    if (r < 0)
      return r;
  }
  size_t i = slot_for(m, key);
  if (!m->keys[i]) {
    m->keys[i] = key;
    m->n++;
  }
  m->values[i] = value;
  return 0;
}

void *hashmap_get(const struct hashmap *m, const char *key) {
  if (!m->cap)
    return NULL;
  size_t i = slot_for(m, key);
  return m->keys[i] ? m->values[i] : NULL;
}

void hashmap_release(struct hashmap *m) {
  free(m->keys);
  free(m->values);
  m->keys = NULL;
  m->values = NULL;
  m->cap = m->n = 0;
}
