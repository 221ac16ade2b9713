/* The one JSON writer of the CLI (curl's tool_writeout_json.c does the same job): every
 * command that prints JSON builds its document here, and the engine only hands over structs.
 *
 * A value inside an object takes its key as the second argument; at the top level and inside
 * an array the key is NULL. The writer puts the commas, the line breaks and the indentation;
 * a container is laid out one of two ways:
 *
 *   JSON_INLINE   {"a": 1, "b": [1, 2]}          members on one line, ", " between them
 *   JSON_BLOCK    {\n  "a": 1,\n  "b": 2\n}       one member a line, two spaces a level;
 *                                                 empty: {} or []
 *
 * so the documents keep the shape they always had: a block object at the top, lists of
 * records as blocks of inline objects, short lists inline.
 *
 *   struct json j = JSON_INIT;
 *   json_object_begin(&j, NULL, JSON_BLOCK);
 *   json_string(&j, "profile", p->name);
 *   json_array_begin(&j, "checks", JSON_BLOCK);
 *   ... json_object_begin(&j, NULL, JSON_INLINE); ... json_object_end(&j);
 *   json_array_end(&j);
 *   json_object_end(&j);
 *   char *text = json_steal(&j);   // the document and a newline; NULL on failure
 *
 * Errors are sticky, as in struct sbuf: after a failed allocation or a misuse (a key missing
 * or given where none belongs, an end that does not match, nesting deeper than JSON_MAX_DEPTH)
 * every call is a no-op and json_steal returns NULL. */
#pragma once

#include <stdbool.h>

#include "sbuf.h"

#define JSON_MAX_DEPTH 16

enum json_layout {
  JSON_INLINE,
  JSON_BLOCK,
  /* JSON_BLOCK whose brackets stand on two lines even when empty: "[\n]" (the lists of
   * `profiles` and `rootfs recipes` have always printed so) */
  JSON_BLOCK_OPEN,
};

struct json_level {
  enum json_layout layout;
  bool object;
  unsigned n; /* members written */
};

struct json {
  struct sbuf sb;
  unsigned depth;
  struct json_level stack[JSON_MAX_DEPTH];
  bool done; /* the top-level value is complete */
  int err;
};

#define JSON_INIT                                                                                  \
  { .sb = SBUF_INIT }

void json_object_begin(struct json *j, const char *key, enum json_layout layout);
void json_object_end(struct json *j);
void json_array_begin(struct json *j, const char *key, enum json_layout layout);
void json_array_end(struct json *j);

/* A string literal: '"', '\\' and control characters escaped, other bytes (UTF-8) as they
 * are. */
void json_string(struct json *j, const char *key, const char *s);
void json_stringf(struct json *j, const char *key, const char *fmt, ...) _printf_(3, 4);
/* s, or null when s is NULL */
void json_string_or_null(struct json *j, const char *key, const char *s);
void json_null(struct json *j, const char *key);
void json_bool(struct json *j, const char *key, bool v);
void json_int(struct json *j, const char *key, long long v);
void json_uint(struct json *j, const char *key, unsigned long long v);
/* With three decimals (the CLI's numbers with a fraction are seconds); NaN and infinity,
 * which JSON cannot say, as null. */
void json_double(struct json *j, const char *key, double v);
/* An inline array of the strings; NULL is []. */
void json_strv(struct json *j, const char *key, char *const *v);

/* The document followed by a newline, and j reset; NULL (and j reset) after any failure or
 * when the document is not complete. */
char *json_steal(struct json *j);
void json_release(struct json *j);
