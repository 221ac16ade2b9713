/* Enum ↔ string tables (systemd's string-table.h): a table
 *
 *   static const char *const kgb_accel_table[_KGB_ACCEL_MAX] = {
 *       [KGB_ACCEL_AUTO] = "auto", [KGB_ACCEL_KVM] = "kvm", [KGB_ACCEL_TCG] = "tcg"};
 *   DEFINE_STRING_TABLE_LOOKUP(kgb_accel, enum kgb_accel);
 *
 * gives kgb_accel_to_string() (NULL for a value outside the table) and
 * kgb_accel_from_string() (-EINVAL, which every enum's _INVALID is, for an unknown or NULL
 * string), so that the names are written once, in the table. */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "macro.h"

static inline const char *string_table_lookup_to_string(const char *const *table, size_t n,
                                                        long i) {
  return i >= 0 && (size_t)i < n ? table[i] : NULL;
}

static inline long string_table_lookup_from_string(const char *const *table, size_t n,
                                                   const char *s) {
  for (size_t i = 0; s && i < n; i++)
    if (table[i] && strcmp(table[i], s) == 0)
      return (long)i;
  return -EINVAL;
}

#define _DEFINE_STRING_TABLE_TO_STRING(name, type, scope)                                          \
  scope const char *name##_to_string(type i) {                                                     \
    return string_table_lookup_to_string(name##_table, ELEMENTSOF(name##_table), (long)i);         \
  }
#define _DEFINE_STRING_TABLE_FROM_STRING(name, type, scope)                                        \
  scope type name##_from_string(const char *s) {                                                   \
    return (type)string_table_lookup_from_string(name##_table, ELEMENTSOF(name##_table), s);       \
  }

#define DEFINE_STRING_TABLE_TO_STRING(name, type) _DEFINE_STRING_TABLE_TO_STRING(name, type, )
#define DEFINE_STRING_TABLE_FROM_STRING(name, type) _DEFINE_STRING_TABLE_FROM_STRING(name, type, )
#define DEFINE_STRING_TABLE_LOOKUP(name, type)                                                     \
  DEFINE_STRING_TABLE_TO_STRING(name, type)                                                        \
  DEFINE_STRING_TABLE_FROM_STRING(name, type)
/* The same, static: for a table private to its file. */
#define DEFINE_PRIVATE_STRING_TABLE_LOOKUP(name, type)                                             \
  _DEFINE_STRING_TABLE_TO_STRING(name, type, static)                                               \
  _DEFINE_STRING_TABLE_FROM_STRING(name, type, static)
