/* Growable string buffer used for messages, generated files and JSON. */
#include "sbuf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(struct sbuf *sb, int err) {
  if (!sb->err)
    sb->err = err;
  return sb->err;
}

int sbuf_grow(struct sbuf *sb, size_t extra) {
  if (sb->err)
    return sb->err;
  /* need = len + extra + 1, checked before it is computed: a wrapped sum would pass the
   * capacity test below and let the caller copy past the end of the buffer */
  if (extra >= SIZE_MAX - sb->len)
    return fail(sb, -EOVERFLOW);
  size_t need = sb->len + extra + 1;
  if (need <= sb->cap)
    return 0;
  size_t cap = sb->cap ? sb->cap : 64;
  while (cap < need)
    cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  char *p = realloc(sb->buf, cap);
  if (!p)
    return fail(sb, -ENOMEM);
  p[sb->len] = '\0'; /* a buffer that is stolen empty must still be a string */
  sb->buf = p;
  sb->cap = cap;
  return 0;
}

int sbuf_add(struct sbuf *sb, const void *data, size_t n) {
  int r = sbuf_grow(sb, n);
  if (r < 0)
    return r;
  if (n)
    memcpy(sb->buf + sb->len, data, n);
  sb->len += n;
  sb->buf[sb->len] = '\0';
  return 0;
}

int sbuf_adds(struct sbuf *sb, const char *s) { return sbuf_add(sb, s, strlen(s)); }

int sbuf_addc(struct sbuf *sb, char c) { return sbuf_add(sb, &c, 1); }

int sbuf_vaddf(struct sbuf *sb, const char *fmt, va_list ap) {
  va_list aq;
  va_copy(aq, ap);
  int n = vsnprintf(NULL, 0, fmt, aq);
  va_end(aq);
  if (n < 0)
    return fail(sb, -EINVAL);
  int r = sbuf_grow(sb, (size_t)n);
  if (r < 0)
    return r;
  vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
  sb->len += (size_t)n;
  return 0;
}

int sbuf_addf(struct sbuf *sb, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = sbuf_vaddf(sb, fmt, ap);
  va_end(ap);
  return r;
}

int sbuf_add_json(struct sbuf *sb, const char *s) {
  int r = sbuf_addc(sb, '"');
  for (const unsigned char *p = (const unsigned char *)s; r >= 0 && *p; p++) {
    switch (*p) {
    case '"':
      r = sbuf_adds(sb, "\\\"");
      break;
    case '\\':
      r = sbuf_adds(sb, "\\\\");
      break;
    case '\n':
      r = sbuf_adds(sb, "\\n");
      break;
    case '\t':
      r = sbuf_adds(sb, "\\t");
      break;
    case '\r':
      r = sbuf_adds(sb, "\\r");
      break;
    default:
      if (*p < 0x20)
        r = sbuf_addf(sb, "\\u%04x", *p);
      else
        r = sbuf_addc(sb, (char)*p);
    }
  }
  return r < 0 ? r : sbuf_addc(sb, '"');
}

char *sbuf_steal(struct sbuf *sb) {
  if (sb->err || (!sb->buf && sbuf_grow(sb, 0) < 0)) {
    sbuf_release(sb);
    return NULL;
  }
  char *p = sb->buf;
  sb->buf = NULL;
  sb->len = sb->cap = 0;
  return p;
}

void sbuf_release(struct sbuf *sb) {
  free(sb->buf);
  sb->buf = NULL;
  sb->len = sb->cap = 0;
  sb->err = 0;
}
