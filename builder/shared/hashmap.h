/* A string-keyed hash map (open addressing, linear probing). Keys are borrowed: they must
 * outlive the map. */
#pragma once

#include <stddef.h>

#include "macro.h"

struct hashmap {
  const char **keys;
  void **values;
  size_t cap; /* power of two or 0 */
  size_t n;
};

#define HASHMAP_INIT                                                                               \
  { NULL, NULL, 0, 0 }

int hashmap_put(struct hashmap *m, const char *key, void *value); /* replaces */
void *hashmap_get(const struct hashmap *m, const char *key);
void hashmap_release(struct hashmap *m);
