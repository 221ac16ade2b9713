/* The CLI's JSON writer: separators, layout and escaping in one place (json.h). */
#define _GNU_SOURCE
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static void fail(struct json *j, int err) {
  if (!j->err)
    j->err = err;
}

static void indent(struct json *j, unsigned level) {
  for (unsigned i = 0; i < level; i++)
    sbuf_adds(&j->sb, "  ");
}

/* Everything before a value: the separator, the line break and indentation of its container,
 * and its key. Returns false when the value must not be written. */
static bool value_begin(struct json *j, const char *key) {
  if (j->err)
    return false;
  if (j->done) {
    fail(j, -EINVAL);
    return false;
  }
  if (!j->depth) {
    if (key)
      fail(j, -EINVAL);
    return !key;
  }
  struct json_level *c = &j->stack[j->depth - 1];
  if (c->object != !!key) {
    fail(j, -EINVAL);
    return false;
  }
  if (c->layout == JSON_INLINE) {
    if (c->n)
      sbuf_adds(&j->sb, ", ");
  } else {
    sbuf_adds(&j->sb, c->n ? ",\n" : "\n");
    indent(j, j->depth);
  }
  c->n++;
  if (key) {
    sbuf_add_json(&j->sb, key);
    sbuf_adds(&j->sb, ": ");
  }
  return true;
}

/* After a value: a finished top-level value completes the document. */
static void value_end(struct json *j) {
  if (!j->depth)
    j->done = true;
  if (j->sb.err)
    fail(j, j->sb.err);
}

static void container_begin(struct json *j, const char *key, enum json_layout layout, bool object) {
  if (!value_begin(j, key))
    return;
  if (j->depth == JSON_MAX_DEPTH) {
    fail(j, -E2BIG);
    return;
  }
  j->stack[j->depth++] = (struct json_level){.layout = layout, .object = object};
  sbuf_addc(&j->sb, object ? '{' : '[');
}

static void container_end(struct json *j, bool object) {
  if (j->err)
    return;
  if (!j->depth || j->stack[j->depth - 1].object != object) {
    fail(j, -EINVAL);
    return;
  }
  struct json_level *c = &j->stack[--j->depth];
  if ((c->layout == JSON_BLOCK && c->n) || c->layout == JSON_BLOCK_OPEN) {
    sbuf_addc(&j->sb, '\n');
    indent(j, j->depth);
  }
  sbuf_addc(&j->sb, object ? '}' : ']');
  value_end(j);
}

void json_object_begin(struct json *j, const char *key, enum json_layout layout) {
  container_begin(j, key, layout, true);
}

void json_object_end(struct json *j) { container_end(j, true); }

void json_array_begin(struct json *j, const char *key, enum json_layout layout) {
  container_begin(j, key, layout, false);
}

void json_array_end(struct json *j) { container_end(j, false); }

void json_string(struct json *j, const char *key, const char *s) {
  if (!s) {
    fail(j, -EINVAL);
    return;
  }
  if (!value_begin(j, key))
    return;
  sbuf_add_json(&j->sb, s);
  value_end(j);
}

void json_stringf(struct json *j, const char *key, const char *fmt, ...) {
  char *s = NULL;
  va_list ap;
  va_start(ap, fmt);
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (n < 0) {
    fail(j, -ENOMEM);
    return;
  }
  json_string(j, key, s);
  free(s);
}

void json_string_or_null(struct json *j, const char *key, const char *s) {
  if (s)
    json_string(j, key, s);
  else
    json_null(j, key);
}

static void literal(struct json *j, const char *key, const char *fmt, ...) _printf_(3, 4);
static void literal(struct json *j, const char *key, const char *fmt, ...) {
  if (!value_begin(j, key))
    return;
  va_list ap;
  va_start(ap, fmt);
  sbuf_vaddf(&j->sb, fmt, ap);
  va_end(ap);
  value_end(j);
}

void json_null(struct json *j, const char *key) { literal(j, key, "null"); }

void json_bool(struct json *j, const char *key, bool v) {
  literal(j, key, "%s", v ? "true" : "false");
}

void json_int(struct json *j, const char *key, long long v) { literal(j, key, "%lld", v); }

void json_uint(struct json *j, const char *key, unsigned long long v) {
  literal(j, key, "%llu", v);
}

void json_double(struct json *j, const char *key, double v) {
  if (isfinite(v))
    literal(j, key, "%.3f", v);
  else
    json_null(j, key);
}

void json_strv(struct json *j, const char *key, char *const *v) {
  json_array_begin(j, key, JSON_INLINE);
  for (size_t i = 0; v && v[i]; i++)
    json_string(j, NULL, v[i]);
  json_array_end(j);
}

char *json_steal(struct json *j) {
  if (!j->err && !j->done)
    fail(j, -EINVAL);
  if (!j->err)
    sbuf_addc(&j->sb, '\n');
  char *s = j->err ? NULL : sbuf_steal(&j->sb);
  json_release(j);
  return s;
}

void json_release(struct json *j) {
  sbuf_release(&j->sb);
  *j = (struct json)JSON_INIT;
}
