/* A growable, always NUL-terminated byte buffer. Not named strbuf: libconfig exports
 * strbuf_* symbols of its own, and ours would interpose on them.
 *
 * The error is sticky, as in curl's dynbuf: once an append fails (no memory, or a size that
 * does not fit a size_t), every later append is a no-op returning that error and sbuf_steal
 * gives NULL, so a text built from many appends is either complete or absent, never silently
 * missing a piece in the middle, and a caller may check only once at the end: sb.err before
 * the text is used (written to a file, hashed into a stage key, printed), or sbuf_steal's
 * NULL; either means -ENOMEM (or -EOVERFLOW) for the caller. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

struct sbuf {
  char *buf;
  size_t len;
  size_t cap;
  int err; /* the first failure, 0 while none */
};

#define SBUF_INIT                                                                                  \
  { NULL, 0, 0, 0 }

int sbuf_grow(struct sbuf *sb, size_t extra);
int sbuf_add(struct sbuf *sb, const void *data, size_t n);
int sbuf_adds(struct sbuf *sb, const char *s);
int sbuf_addc(struct sbuf *sb, char c);
int sbuf_addf(struct sbuf *sb, const char *fmt, ...) _printf_(2, 3);
int sbuf_vaddf(struct sbuf *sb, const char *fmt, va_list ap);
/* Appends s as a JSON string literal, quotes included. */
int sbuf_add_json(struct sbuf *sb, const char *s);
/* Returns the buffer and resets sb; NULL (and the buffer freed) after a failed append. */
char *sbuf_steal(struct sbuf *sb);
void sbuf_release(struct sbuf *sb);
static inline const char *sbuf_str(const struct sbuf *sb) { return sb->buf ? sb->buf : ""; }
