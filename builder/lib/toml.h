/* A small TOML reader for what Kata's configuration.toml uses (tables, dotted headers, bare and
 * quoted keys, strings, integers, floats, booleans, dates, arrays, inline tables, comments),
 * with byte offsets kept for every entry so that a file can be edited in place, and the
 * in-place editor itself: set a key, uncomment a commented-out `#key = ...` line, or add the
 * key at the end of its table, leaving every other byte as it was. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "kgb.h"

struct kgb_toml_entry {
  char *table;  /* canonical dotted name of the enclosing table, "" at the top */
  char *key;    /* canonical dotted key, relative to the table */
  char *value;  /* canonical text of the value, to compare values written differently */
  char *string; /* a string value decoded (escapes applied); NULL for other types */
  size_t line_start, value_start, value_end, line_end; /* line_end: after the newline */
  unsigned line;
};

struct kgb_toml_table {
  char *name; /* "" for the keys before the first header */
  bool is_array;
  size_t header_start, body_start, end; /* end: where the next header's line starts */
  size_t last_entry_end;                /* after the last entry's line, or body_start */
  unsigned line;
};

/* A line holding only a comment (the candidates for `#key = ...`). */
struct kgb_toml_comment {
  size_t start, hash, end; /* line start, the '#', the newline (or the end of the text) */
  unsigned line;
  size_t table; /* index into tables */
};

struct kgb_toml_doc {
  struct kgb_toml_entry *entries;
  size_t n_entries;
  struct kgb_toml_table *tables; /* tables[0] is the top level */
  size_t n_tables;
  struct kgb_toml_comment *comments;
  size_t n_comments;
};

/* Parses text; an invalid document is -EINVAL with "<name>:<line>: <what>" as the detail. */
int kgb_toml_parse(struct kgb_ctx *ctx, const char *name, const char *text, size_t len,
                   struct kgb_toml_doc **ret);
struct kgb_toml_doc *kgb_toml_doc_free(struct kgb_toml_doc *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_toml_doc *, kgb_toml_doc_free)
const struct kgb_toml_entry *kgb_toml_find(const struct kgb_toml_doc *d, const char *table,
                                           const char *key);
const struct kgb_toml_table *kgb_toml_find_table(const struct kgb_toml_doc *d, const char *name);

/* The canonical text of one TOML value (e.g. 'q35' and "q35" give the same). */
int kgb_toml_canonical(struct kgb_ctx *ctx, const char *value, char **ret);
/* A basic string literal, quotes and escapes included. */
char *kgb_toml_quote(const char *s);

struct kgb_toml_set {
  const char *table; /* canonical table name */
  const char *key;   /* a bare key */
  const char *value; /* TOML text of the value; NULL: comment out an active key */
  const char *why;   /* the comment written above a key that has to be added */
};

struct kgb_toml_patch {
  char *text; /* the edited document */
  size_t len;
  char *diff; /* unified diff without context lines; "" when nothing changes */
  unsigned changes;
};

/* Applies sets to text: an active key gets the new value (its line otherwise unchanged), else
 * the first `#key = ...` or `# key = ...` comment line of its table is uncommented, else the key
 * is added after the last entry of its table (or in a new table at the end). A key whose value
 * is already equal is left alone, so a second run changes nothing. A last line without a newline
 * gets one when keys are added after it. Sets that would edit the same line (one key set twice)
 * are -EINVAL, as is a result that would not parse. */
int kgb_toml_patch(struct kgb_ctx *ctx, const char *name, const char *text, size_t len,
                   const struct kgb_toml_set *sets, size_t n_sets, struct kgb_toml_patch *ret);
void kgb_toml_patch_release(struct kgb_toml_patch *p);
