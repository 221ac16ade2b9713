/* The TOML reader and the in-place editor declared in toml.h. The reader follows TOML 1.0 for
 * everything it accepts and refuses what it does not understand, with the line, so that a file
 * the editor touches is one that Kata's own parser reads the same way. */
#define _GNU_SOURCE
#include "toml.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../shared/hashmap.h"
#include "../shared/sbuf.h"
#include "../shared/util.h"

/* What a dotted path names, for the duplicate checks TOML requires. */
enum kind {
  K_VALUE = 1,
  K_TABLE,    /* defined by a [header] */
  K_IMPLICIT, /* created as the parent of a [header] */
  K_DOTTED,   /* created by a dotted key */
  K_ARRAY,    /* an array of tables */
};

struct parser {
  struct kgb_ctx *ctx;
  const char *name;
  const char *s;
  size_t len, pos;
  unsigned line;
  struct kgb_toml_doc *doc;
  size_t cur;             /* index of the current table */
  char *cur_path;         /* registration path of the current table ("" at the top) */
  struct hashmap defined; /* path -> (line << 4 | kind) */
  struct hashmap arrays;  /* path of an array of tables -> number of elements */
  char **paths;           /* owns the hash map keys */
};

static int fail(struct parser *p, const char *fmt, ...) _printf_(2, 3);
static int fail(struct parser *p, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  _cleanup_free_ char *msg = NULL;
  if (vasprintf(&msg, fmt, ap) < 0)
    msg = NULL;
  va_end(ap);
  return kgb_error(p->ctx, -EINVAL, "%s:%u: %s", p->name, p->line, msg ? msg : "invalid TOML");
}

static bool eof(const struct parser *p) { return p->pos >= p->len; }
static char peek(const struct parser *p) { return eof(p) ? '\0' : p->s[p->pos]; }
static char peek_at(const struct parser *p, size_t k) {
  return p->pos + k >= p->len ? '\0' : p->s[p->pos + k];
}

static void skip_ws(struct parser *p) {
  while (!eof(p) && (peek(p) == ' ' || peek(p) == '\t'))
    p->pos++;
}

static bool at_newline(const struct parser *p) {
  return peek(p) == '\n' || (peek(p) == '\r' && peek_at(p, 1) == '\n');
}

static void eat_newline(struct parser *p) {
  p->pos += peek(p) == '\r' ? 2 : 1;
  p->line++;
}

static bool is_control(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }

static int skip_comment(struct parser *p) {
  if (peek(p) != '#')
    return 0;
  for (; !eof(p) && !at_newline(p); p->pos++)
    if (is_control((unsigned char)peek(p)))
      return fail(p, "control character 0x%02x in a comment", (unsigned char)peek(p));
  return 0;
}

/* After a key/value pair or a header: spaces, an optional comment, then the end of the line. */
static int end_of_line(struct parser *p, const char *after) {
  skip_ws(p);
  int r = skip_comment(p);
  if (r < 0)
    return r;
  if (eof(p))
    return 0;
  if (!at_newline(p))
    return fail(p, "unexpected '%c' after %s: expected the end of the line", peek(p), after);
  eat_newline(p);
  return 0;
}

/* Spaces, comments and newlines, as allowed inside arrays. */
static int skip_ws_nl(struct parser *p) {
  for (;;) {
    skip_ws(p);
    int r = skip_comment(p);
    if (r < 0)
      return r;
    if (!at_newline(p))
      return 0;
    eat_newline(p);
  }
}

static bool is_bare(char c) { return isalnum((unsigned char)c) || c == '_' || c == '-'; }

static int put_utf8(struct sbuf *out, uint32_t cp) {
  char b[4];
  size_t n;
  if (cp < 0x80)
    b[0] = (char)cp, n = 1;
  else if (cp < 0x800)
    b[0] = (char)(0xc0 | (cp >> 6)), b[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
  else if (cp < 0x10000)
    b[0] = (char)(0xe0 | (cp >> 12)), b[1] = (char)(0x80 | ((cp >> 6) & 0x3f)),
    b[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
  else
    b[0] = (char)(0xf0 | (cp >> 18)), b[1] = (char)(0x80 | ((cp >> 12) & 0x3f)),
    b[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), b[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
  return sbuf_add(out, b, n);
}

static int parse_escape(struct parser *p, struct sbuf *out) {
  char c = peek_at(p, 1);
  const char *simple = strchr("btnfr\"\\", c);
  if (c && simple) {
    static const char map[] = "\b\t\n\f\r\"\\";
    p->pos += 2;
    return sbuf_addc(out, map[simple - "btnfr\"\\"]);
  }
  if (c == 'u' || c == 'U') {
    size_t n = c == 'u' ? 4 : 8;
    uint32_t cp = 0;
    for (size_t i = 0; i < n; i++) {
      char h = peek_at(p, 2 + i);
      if (!isxdigit((unsigned char)h))
        return fail(p, "\\%c needs %zu hexadecimal digits", c, n);
      cp = cp * 16 + (uint32_t)(isdigit((unsigned char)h) ? h - '0' : (tolower(h) - 'a' + 10));
    }
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return fail(p, "\\%c%0*" PRIX32 " is not a Unicode scalar value", c, (int)n, cp);
    p->pos += 2 + n;
    return put_utf8(out, cp);
  }
  if (c == '\0' || c == '\n' || c == '\r')
    return fail(p, "unfinished escape at the end of the line");
  return fail(p, "unknown escape '\\%c'", c);
}

/* Basic and literal strings, single- and multi-line; the decoded bytes go to out. */
static int parse_string(struct parser *p, struct sbuf *out) {
  char q = peek(p);
  bool multi = peek_at(p, 1) == q && peek_at(p, 2) == q;
  unsigned start_line = p->line;
  p->pos += multi ? 3 : 1;
  if (multi && at_newline(p))
    eat_newline(p);
  for (;;) {
    if (eof(p)) {
      p->line = start_line;
      return fail(p, "unterminated string");
    }
    char c = peek(p);
    if (c == q) {
      if (!multi) {
        p->pos++;
        return out->err; /* the content is whole, or the string is an error */
      }
      if (peek_at(p, 1) == q && peek_at(p, 2) == q) {
        /* Up to two quotes may end the content right before the closing three. */
        size_t extra = 0;
        while (extra < 2 && peek_at(p, 3 + extra) == q)
          extra++;
        for (size_t i = 0; i < extra; i++)
          sbuf_addc(out, q);
        p->pos += 3 + extra;
        return out->err;
      }
      sbuf_addc(out, c);
      p->pos++;
      continue;
    }
    if (at_newline(p)) {
      if (!multi)
        return fail(p, "newline in a single-line string");
      sbuf_adds(out, "\n");
      eat_newline(p);
      continue;
    }
    if (c == '\\' && q == '"') {
      if (multi) {
        /* A line-ending backslash trims the newline and the whitespace after it. */
        size_t k = 1;
        while (peek_at(p, k) == ' ' || peek_at(p, k) == '\t')
          k++;
        if (peek_at(p, k) == '\n' || (peek_at(p, k) == '\r' && peek_at(p, k + 1) == '\n')) {
          p->pos += k;
          for (;;) {
            skip_ws(p);
            if (!at_newline(p))
              break;
            eat_newline(p);
          }
          continue;
        }
      }
      int r = parse_escape(p, out);
      if (r < 0)
        return r;
      continue;
    }
    if (is_control((unsigned char)c))
      return fail(p, "control character 0x%02x in a string", (unsigned char)c);
    sbuf_addc(out, c);
    p->pos++;
  }
}

/* A key part: bare, "basic" or 'literal' (single-line). */
static int parse_simple_key(struct parser *p, char **ret) {
  struct sbuf sb = SBUF_INIT;
  int r = 0;
  char c = peek(p);
  if (c == '"' || c == '\'') {
    if (peek_at(p, 1) == c && peek_at(p, 2) == c)
      r = fail(p, "a key cannot be a multi-line string");
    else
      r = parse_string(p, &sb);
  } else if (is_bare(c)) {
    while (is_bare(peek(p)))
      sbuf_addc(&sb, p->s[p->pos++]);
  } else if (eof(p) || at_newline(p)) {
    r = fail(p, "expected a key");
  } else {
    r = fail(p, "unexpected '%c': expected a key", c);
  }
  if (r < 0) {
    sbuf_release(&sb);
    return r;
  }
  *ret = sbuf_steal(&sb);
  return *ret ? 0 : -ENOMEM;
}

static int parse_key(struct parser *p, char ***ret) {
  _cleanup_strv_free_ char **parts = NULL;
  for (;;) {
    char *part = NULL;
    int r = parse_simple_key(p, &part);
    if (r < 0)
      return r;
    if ((r = strv_push(&parts, part)) < 0)
      return r;
    skip_ws(p);
    if (peek(p) != '.')
      break;
    p->pos++;
    skip_ws(p);
  }
  *ret = TAKE_PTR(parts);
  return 0;
}

static bool bare_ok(const char *s) {
  if (!*s)
    return false;
  for (; *s; s++)
    if (!is_bare(*s))
      return false;
  return true;
}

static int add_key_part(struct sbuf *sb, const char *part) {
  if (sb->len)
    sbuf_addc(sb, '.');
  return bare_ok(part) ? sbuf_adds(sb, part) : sbuf_add_json(sb, part);
}

static char *join_key(char *const *parts, size_t n) {
  struct sbuf sb = SBUF_INIT;
  sbuf_adds(&sb, "");
  for (size_t i = 0; i < n; i++)
    add_key_part(&sb, parts[i]);
  return sbuf_steal(&sb);
}

static bool digits_at(const struct parser *p, size_t k, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isdigit((unsigned char)peek_at(p, k + i)))
      return false;
  return true;
}

/* hh:mm:ss(.frac)? at offset k; returns its length or 0. */
static size_t time_len(const struct parser *p, size_t k) {
  if (!digits_at(p, k, 2) || peek_at(p, k + 2) != ':' || !digits_at(p, k + 3, 2) ||
      peek_at(p, k + 5) != ':' || !digits_at(p, k + 6, 2))
    return 0;
  size_t n = 8;
  if (peek_at(p, k + n) == '.' && isdigit((unsigned char)peek_at(p, k + n + 1))) {
    n++;
    while (isdigit((unsigned char)peek_at(p, k + n)))
      n++;
  }
  return n;
}

static int parse_datetime(struct parser *p, struct sbuf *canon) {
  size_t start = p->pos, n = 0;
  if (digits_at(p, 0, 4) && peek_at(p, 4) == '-') {
    if (!digits_at(p, 5, 2) || peek_at(p, 7) != '-' || !digits_at(p, 8, 2))
      return fail(p, "invalid date");
    n = 10;
    char sep = peek_at(p, n);
    size_t t = (sep == 'T' || sep == 't' || sep == ' ') ? time_len(p, n + 1) : 0;
    if (t) {
      n += 1 + t;
      char z = peek_at(p, n);
      if (z == 'Z' || z == 'z')
        n++;
      else if ((z == '+' || z == '-') && digits_at(p, n + 1, 2) && peek_at(p, n + 3) == ':' &&
               digits_at(p, n + 4, 2))
        n += 6;
    } else if (sep == 'T' || sep == 't') {
      return fail(p, "invalid time after the date");
    }
  } else {
    n = time_len(p, 0);
    if (!n)
      return fail(p, "invalid time");
  }
  p->pos += n;
  return sbuf_add(canon, p->s + start, p->pos - start);
}

/* Digits of a base with '_' only between two digits; copies the digits to out. */
static bool scan_digits(const char *s, size_t n, int base, struct sbuf *out) {
  if (n == 0)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '_') {
      if (i == 0 || i + 1 == n || s[i - 1] == '_' || s[i + 1] == '_')
        return false;
      continue;
    }
    bool ok = base == 16   ? isxdigit((unsigned char)c)
              : base == 10 ? isdigit((unsigned char)c)
              : base == 8  ? (c >= '0' && c <= '7')
                           : (c == '0' || c == '1');
    if (!ok)
      return false;
    sbuf_addc(out, c);
  }
  return true;
}

static int parse_number(struct parser *p, struct sbuf *canon) {
  size_t start = p->pos;
  while (!eof(p) && (isalnum((unsigned char)peek(p)) || strchr("_+-.", peek(p))))
    p->pos++;
  const char *tok = p->s + start;
  size_t n = p->pos - start;
  _cleanup_free_ char *t = strndup(tok, n);
  if (!t)
    return -ENOMEM;
  const char *u = t + (t[0] == '+' || t[0] == '-');
  if (STREQ(u, "inf") || STREQ(u, "nan"))
    return sbuf_addf(canon, "%s%s", t[0] == '-' && u[0] == 'i' ? "-" : "", u);
  struct sbuf digits = SBUF_INIT;
  int r = 0;
  if (t[0] == '0' && (t[1] == 'x' || t[1] == 'o' || t[1] == 'b')) {
    int base = t[1] == 'x' ? 16 : t[1] == 'o' ? 8 : 2;
    if (!scan_digits(t + 2, n - 2, base, &digits)) {
      r = fail(p, "invalid number '%s'", t);
    } else if (digits.err) {
      r = digits.err;
    } else {
      errno = 0;
      unsigned long long v = strtoull(sbuf_str(&digits), NULL, base);
      if (errno == ERANGE || v > (unsigned long long)LLONG_MAX)
        r = fail(p, "integer '%s' does not fit in 64 bits", t);
      else
        r = sbuf_addf(canon, "%llu", v);
    }
    sbuf_release(&digits);
    return r;
  }
  /* Decimal: sign, integer part without leading zeros, optional fraction and exponent. */
  size_t i = (size_t)(u - t);
  size_t int_end = i;
  while (int_end < n && (isdigit((unsigned char)t[int_end]) || t[int_end] == '_'))
    int_end++;
  bool ok = int_end > i && scan_digits(t + i, int_end - i, 10, &digits) &&
            !(t[i] == '0' && int_end - i > 1);
  bool is_float = false;
  size_t k = int_end;
  if (ok && k < n && t[k] == '.') {
    size_t f = k + 1;
    while (f < n && (isdigit((unsigned char)t[f]) || t[f] == '_'))
      f++;
    sbuf_addc(&digits, '.');
    ok = scan_digits(t + k + 1, f - k - 1, 10, &digits);
    k = f;
    is_float = true;
  }
  if (ok && k < n && (t[k] == 'e' || t[k] == 'E')) {
    sbuf_addc(&digits, 'e');
    k++;
    if (k < n && (t[k] == '+' || t[k] == '-'))
      sbuf_addc(&digits, t[k++]);
    ok = scan_digits(t + k, n - k, 10, &digits);
    k = n;
    is_float = true;
  }
  if (!ok || k != n) {
    sbuf_release(&digits);
    return fail(p, "invalid value '%s'", t);
  }
  if (digits.err) { /* out of memory: a number read from part of its digits would be wrong */
    r = digits.err;
    sbuf_release(&digits);
    return r;
  }
  bool neg = t[0] == '-';
  if (is_float) {
    double v = strtod(sbuf_str(&digits), NULL);
    r = sbuf_addf(canon, "%.17g", neg ? -v : v);
  } else {
    errno = 0;
    unsigned long long v = strtoull(sbuf_str(&digits), NULL, 10);
    if (errno == ERANGE || v > (unsigned long long)LLONG_MAX + (neg ? 1 : 0))
      r = fail(p, "integer '%s' does not fit in 64 bits", t);
    else if (neg && v)
      r = sbuf_addf(canon, "-%llu", v);
    else
      r = sbuf_addf(canon, "%llu", v);
  }
  sbuf_release(&digits);
  return r;
}

static int parse_value(struct parser *p, struct sbuf *canon, unsigned depth);

static int parse_array(struct parser *p, struct sbuf *canon, unsigned depth) {
  unsigned start_line = p->line;
  p->pos++;
  sbuf_addc(canon, '[');
  for (size_t n = 0;; n++) {
    int r = skip_ws_nl(p);
    if (r < 0)
      return r;
    if (peek(p) == ']')
      break;
    if (eof(p)) {
      p->line = start_line;
      return fail(p, "unterminated array");
    }
    if (n)
      sbuf_adds(canon, ", ");
    if ((r = parse_value(p, canon, depth + 1)) < 0)
      return r;
    if ((r = skip_ws_nl(p)) < 0)
      return r;
    if (peek(p) == ',') {
      p->pos++;
      continue;
    }
    if (peek(p) == ']')
      break;
    if (eof(p)) {
      p->line = start_line;
      return fail(p, "unterminated array");
    }
    return fail(p, "unexpected '%c' in an array: expected ',' or ']'", peek(p));
  }
  p->pos++;
  return sbuf_addc(canon, ']');
}

static int parse_inline_table(struct parser *p, struct sbuf *canon, unsigned depth) {
  p->pos++;
  sbuf_addc(canon, '{');
  _cleanup_strv_free_ char **seen = NULL;
  skip_ws(p);
  if (peek(p) == '}') {
    p->pos++;
    return sbuf_addc(canon, '}');
  }
  for (size_t n = 0;; n++) {
    skip_ws(p);
    _cleanup_strv_free_ char **parts = NULL;
    int r = parse_key(p, &parts);
    if (r < 0)
      return r;
    _cleanup_free_ char *key = join_key(parts, strv_length(parts));
    if (!key)
      return -ENOMEM;
    /* A dotted key must not reuse a plain key as a table, nor the reverse. */
    for (size_t i = 0; seen && seen[i]; i++) {
      size_t l = strlen(seen[i]);
      if (STREQ(seen[i], key) || (startswith(key, seen[i]) && key[l] == '.') ||
          (startswith(seen[i], key) && seen[i][strlen(key)] == '.'))
        return fail(p, "duplicate key '%s' in an inline table", key);
    }
    if ((r = strv_extend(&seen, key)) < 0)
      return r;
    skip_ws(p);
    if (peek(p) != '=')
      return fail(p, "expected '=' after key '%s'", key);
    p->pos++;
    skip_ws(p);
    sbuf_addf(canon, "%s%s = ", n ? ", " : "", key);
    if ((r = parse_value(p, canon, depth + 1)) < 0)
      return r;
    skip_ws(p);
    if (peek(p) == ',') {
      p->pos++;
      skip_ws(p);
      if (peek(p) == '}')
        return fail(p, "trailing comma in an inline table");
      continue;
    }
    if (peek(p) == '}') {
      p->pos++;
      return sbuf_addc(canon, '}');
    }
    if (eof(p) || at_newline(p))
      return fail(p, "unterminated inline table (it must end on the same line)");
    return fail(p, "unexpected '%c' in an inline table: expected ',' or '}'", peek(p));
  }
}

static int parse_value(struct parser *p, struct sbuf *canon, unsigned depth) {
  if (depth > 64)
    return fail(p, "values nested too deeply");
  char c = peek(p);
  if (c == '"' || c == '\'') {
    struct sbuf s = SBUF_INIT;
    int r = parse_string(p, &s);
    if (r >= 0)
      r = sbuf_add_json(canon, sbuf_str(&s));
    sbuf_release(&s);
    return r;
  }
  if (c == '[')
    return parse_array(p, canon, depth);
  if (c == '{')
    return parse_inline_table(p, canon, depth);
  if (strncmp(p->s + p->pos, "true", MIN(4, p->len - p->pos)) == 0 && p->len - p->pos >= 4 &&
      !is_bare(peek_at(p, 4))) {
    p->pos += 4;
    return sbuf_adds(canon, "true");
  }
  if (strncmp(p->s + p->pos, "false", MIN(5, p->len - p->pos)) == 0 && p->len - p->pos >= 5 &&
      !is_bare(peek_at(p, 5))) {
    p->pos += 5;
    return sbuf_adds(canon, "false");
  }
  if ((digits_at(p, 0, 4) && peek_at(p, 4) == '-') || (digits_at(p, 0, 2) && peek_at(p, 2) == ':'))
    return parse_datetime(p, canon);
  if (isdigit((unsigned char)c) || c == '+' || c == '-' || c == 'i' || c == 'n')
    return parse_number(p, canon);
  if (eof(p) || at_newline(p) || c == '#')
    return fail(p, "missing value after '='");
  size_t n = 0;
  while (p->pos + n < p->len && !strchr(" \t\r\n#,]}", p->s[p->pos + n]) && n < 40)
    n++;
  return fail(p, "invalid value '%.*s' (strings need quotes)", (int)n, p->s + p->pos);
}

/* ---- registration of paths, for TOML's rules on duplicates ---- */
static uintptr_t lookup(struct parser *p, const char *path) {
  return (uintptr_t)hashmap_get(&p->defined, path);
}

static int define(struct parser *p, const char *path, enum kind k) {
  if (!hashmap_get(&p->defined, path)) {
    int r = strv_extend(&p->paths, path);
    if (r < 0)
      return r;
    path = p->paths[strv_length(p->paths) - 1];
  }
  return hashmap_put(&p->defined, path, (void *)(uintptr_t)(((uintptr_t)p->line << 4) | k));
}

static const char *kind_name(uintptr_t v) {
  switch (v & 0xf) {
  case K_VALUE:
    return "a value";
  case K_ARRAY:
    return "an array of tables";
  default:
    return "a table";
  }
}

/* Registration path of prefix+part: elements of arrays of tables get their own namespace. */
static char *reg_path(struct parser *p, const char *prefix, const char *part) {
  struct sbuf sb = SBUF_INIT;
  sbuf_adds(&sb, prefix);
  add_key_part(&sb, part);
  uintptr_t v = lookup(p, sbuf_str(&sb));
  if ((v & 0xf) == K_ARRAY) {
    uintptr_t count = (uintptr_t)hashmap_get(&p->arrays, sbuf_str(&sb));
    sbuf_addf(&sb, "#%" PRIuPTR, count);
  }
  return sbuf_steal(&sb);
}

static int parse_header(struct parser *p, size_t line_start) {
  bool array = peek_at(p, 1) == '[';
  unsigned line = p->line;
  p->pos += array ? 2 : 1;
  skip_ws(p);
  _cleanup_strv_free_ char **parts = NULL;
  int r = parse_key(p, &parts);
  if (r < 0)
    return r;
  skip_ws(p);
  if (peek(p) != ']' || (array && peek_at(p, 1) != ']'))
    return fail(p, "expected '%s' to close the table header", array ? "]]" : "]");
  p->pos += array ? 2 : 1;
  size_t n = strv_length(parts);
  _cleanup_free_ char *name = join_key(parts, n);
  if (!name)
    return -ENOMEM;
  /* Parents: created implicitly, never values. */
  _cleanup_free_ char *path = strdup("");
  if (!path)
    return -ENOMEM;
  for (size_t i = 0; i + 1 < n; i++) {
    char *next = reg_path(p, path, parts[i]);
    if (!next)
      return -ENOMEM;
    free(path);
    path = next;
    uintptr_t v = lookup(p, path);
    if ((v & 0xf) == K_VALUE)
      return fail(p, "'%s' in table header [%s] is already a value (line %" PRIuPTR ")", parts[i],
                  name, v >> 4);
    if (!v && (r = define(p, path, K_IMPLICIT)) < 0)
      return r;
  }
  _cleanup_free_ char *full = NULL;
  {
    struct sbuf sb = SBUF_INIT;
    sbuf_adds(&sb, path);
    add_key_part(&sb, parts[n - 1]);
    full = sbuf_steal(&sb);
    if (!full)
      return -ENOMEM;
  }
  uintptr_t v = lookup(p, full);
  enum kind k = v & 0xf;
  if (array) {
    if (v && k != K_ARRAY)
      return fail(p, "[[%s]]: '%s' is already %s (line %" PRIuPTR ")", name, name, kind_name(v),
                  v >> 4);
    if (!v && (r = define(p, full, K_ARRAY)) < 0)
      return r;
    const char *key = p->paths[strv_length(p->paths) - 1];
    for (size_t i = 0; p->paths[i]; i++)
      if (STREQ(p->paths[i], full))
        key = p->paths[i];
    uintptr_t count = (uintptr_t)hashmap_get(&p->arrays, key) + 1;
    if ((r = hashmap_put(&p->arrays, key, (void *)count)) < 0)
      return r;
    free(p->cur_path);
    p->cur_path = kgb_strdup_printf("%s#%" PRIuPTR, full, count);
  } else {
    if (k == K_TABLE || k == K_DOTTED)
      return fail(p, "table [%s] is defined twice (first at line %" PRIuPTR ")", name, v >> 4);
    if (k == K_VALUE || k == K_ARRAY)
      return fail(p, "[%s]: '%s' is already %s (line %" PRIuPTR ")", name, name, kind_name(v),
                  v >> 4);
    if ((r = define(p, full, K_TABLE)) < 0)
      return r;
    free(p->cur_path);
    p->cur_path = TAKE_PTR(full);
  }
  if (!p->cur_path)
    return -ENOMEM;
  if ((r = end_of_line(p, "the table header")) < 0)
    return r;
  struct kgb_toml_doc *d = p->doc;
  struct kgb_toml_table *nt = realloc(d->tables, (d->n_tables + 1) * sizeof(*nt));
  if (!nt)
    return -ENOMEM;
  d->tables = nt;
  d->tables[p->cur].end = line_start;
  p->cur = d->n_tables++;
  d->tables[p->cur] = (struct kgb_toml_table){.name = TAKE_PTR(name),
                                              .is_array = array,
                                              .header_start = line_start,
                                              .body_start = p->pos,
                                              .end = p->len,
                                              .last_entry_end = p->pos,
                                              .line = line};
  return 0;
}

static int parse_keyval(struct parser *p, size_t line_start) {
  unsigned line = p->line;
  _cleanup_strv_free_ char **parts = NULL;
  int r = parse_key(p, &parts);
  if (r < 0)
    return r;
  size_t n = strv_length(parts);
  _cleanup_free_ char *key = join_key(parts, n);
  if (!key)
    return -ENOMEM;
  skip_ws(p);
  if (peek(p) != '=')
    return fail(p, "expected '=' after key '%s'", key);
  p->pos++;
  skip_ws(p);
  size_t value_start = p->pos;
  struct sbuf canon = SBUF_INIT;
  r = parse_value(p, &canon, 0);
  if (r < 0) {
    sbuf_release(&canon);
    return r;
  }
  _cleanup_free_ char *value = sbuf_steal(&canon);
  if (!value)
    return -ENOMEM;
  size_t value_end = p->pos;
  unsigned end_line = p->line;
  _cleanup_free_ char *string = NULL;
  if (p->s[value_start] == '"' || p->s[value_start] == '\'') {
    /* the decoded text as well, for those who read the value */
    struct sbuf s = SBUF_INIT;
    p->pos = value_start;
    r = parse_string(p, &s);
    string = r >= 0 ? sbuf_steal(&s) : NULL;
    sbuf_release(&s);
    p->pos = value_end;
    if (!string)
      return r < 0 ? r : -ENOMEM;
  }
  p->line = line;
  /* Dotted parents within the table, then the key itself. */
  _cleanup_free_ char *path = strdup(p->cur_path);
  if (!path)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    struct sbuf sb = SBUF_INIT;
    sbuf_adds(&sb, path);
    add_key_part(&sb, parts[i]);
    char *next = sbuf_steal(&sb);
    if (!next)
      return -ENOMEM;
    free(path);
    path = next;
    uintptr_t v = lookup(p, path);
    if (i + 1 == n) {
      if (v)
        return fail(p, "duplicate key '%s' (first defined at line %" PRIuPTR ")", key, v >> 4);
      if ((r = define(p, path, K_VALUE)) < 0)
        return r;
    } else if (v && (v & 0xf) != K_DOTTED) {
      return fail(p, "key '%s': '%s' is already %s (line %" PRIuPTR ")", key, parts[i],
                  kind_name(v), v >> 4);
    } else if (!v && (r = define(p, path, K_DOTTED)) < 0) {
      return r;
    }
  }
  p->line = end_line;
  if ((r = end_of_line(p, "the value")) < 0)
    return r;
  struct kgb_toml_doc *d = p->doc;
  struct kgb_toml_entry *ne = realloc(d->entries, (d->n_entries + 1) * sizeof(*ne));
  if (!ne)
    return -ENOMEM;
  d->entries = ne;
  char *table = strdup(d->tables[p->cur].name);
  if (!table)
    return -ENOMEM;
  d->entries[d->n_entries++] = (struct kgb_toml_entry){.table = table,
                                                       .key = TAKE_PTR(key),
                                                       .value = TAKE_PTR(value),
                                                       .string = TAKE_PTR(string),
                                                       .line_start = line_start,
                                                       .value_start = value_start,
                                                       .value_end = value_end,
                                                       .line_end = p->pos,
                                                       .line = line};
  d->tables[p->cur].last_entry_end = p->pos;
  return 0;
}

static int add_comment(struct parser *p, size_t line_start) {
  struct kgb_toml_doc *d = p->doc;
  struct kgb_toml_comment *nc = realloc(d->comments, (d->n_comments + 1) * sizeof(*nc));
  if (!nc)
    return -ENOMEM;
  d->comments = nc;
  size_t hash = p->pos;
  int r = skip_comment(p);
  if (r < 0)
    return r;
  d->comments[d->n_comments++] = (struct kgb_toml_comment){
      .start = line_start, .hash = hash, .end = p->pos, .line = p->line, .table = p->cur};
  if (!eof(p))
    eat_newline(p);
  return 0;
}

struct kgb_toml_doc *kgb_toml_doc_free(struct kgb_toml_doc *d) {
  if (!d)
    return NULL;
  for (size_t i = 0; i < d->n_entries; i++) {
    free(d->entries[i].table);
    free(d->entries[i].key);
    free(d->entries[i].value);
    free(d->entries[i].string);
  }
  for (size_t i = 0; i < d->n_tables; i++)
    free(d->tables[i].name);
  free(d->entries);
  free(d->tables);
  free(d->comments);
  free(d);
  return NULL;
}

int kgb_toml_parse(struct kgb_ctx *ctx, const char *name, const char *text, size_t len,
                   struct kgb_toml_doc **ret) {
  _cleanup_(kgb_toml_doc_freep) struct kgb_toml_doc *d = calloc(1, sizeof(*d));
  if (!d || !(d->tables = calloc(1, sizeof(*d->tables))) || !(d->tables[0].name = strdup("")))
    return -ENOMEM;
  d->n_tables = 1;
  d->tables[0].end = len;
  struct parser p = {.ctx = ctx,
                     .name = name,
                     .s = text,
                     .len = len,
                     .line = 1,
                     .doc = d,
                     .defined = HASHMAP_INIT,
                     .arrays = HASHMAP_INIT};
  p.cur_path = strdup("");
  int r = p.cur_path ? 0 : -ENOMEM;
  if (r == 0 && len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
    p.pos = 3;
  while (r >= 0 && !eof(&p)) {
    size_t line_start = p.pos;
    skip_ws(&p);
    if (eof(&p))
      break;
    char c = peek(&p);
    if (c == '#')
      r = add_comment(&p, line_start);
    else if (at_newline(&p))
      eat_newline(&p);
    else if (c == '\r')
      r = fail(&p, "carriage return without a newline");
    else if (c == '[')
      r = parse_header(&p, line_start);
    else
      r = parse_keyval(&p, line_start);
  }
  hashmap_release(&p.defined);
  hashmap_release(&p.arrays);
  strv_free(p.paths);
  free(p.cur_path);
  if (r < 0)
    return r;
  *ret = TAKE_PTR(d);
  return 0;
}

const struct kgb_toml_entry *kgb_toml_find(const struct kgb_toml_doc *d, const char *table,
                                           const char *key) {
  /* By full path: [a] b.c = 1 is the key c of table a.b as well. */
  size_t tl = strlen(table);
  for (size_t i = 0; i < d->n_entries; i++) {
    const struct kgb_toml_entry *e = &d->entries[i];
    if (STREQ(e->table, table) && STREQ(e->key, key))
      return e;
    size_t el = strlen(e->table);
    /* e->table "." e->key == table "." key, with e->table a prefix of table. */
    if (el < tl && strncmp(table, e->table, el) == 0 && (el == 0 || table[el] == '.')) {
      const char *rest = table + el + (el ? 1 : 0); /* the part of table below e->table */
      size_t rl = strlen(rest);
      if (strncmp(e->key, rest, rl) == 0 && e->key[rl] == '.' && STREQ(e->key + rl + 1, key))
        return e;
    }
  }
  return NULL;
}

const struct kgb_toml_table *kgb_toml_find_table(const struct kgb_toml_doc *d, const char *name) {
  for (size_t i = 0; i < d->n_tables; i++)
    if (!d->tables[i].is_array && STREQ(d->tables[i].name, name))
      return &d->tables[i];
  return NULL;
}

int kgb_toml_canonical(struct kgb_ctx *ctx, const char *value, char **ret) {
  _cleanup_free_ char *doc = kgb_strdup_printf("v = %s\n", value);
  if (!doc)
    return -ENOMEM;
  _cleanup_(kgb_toml_doc_freep) struct kgb_toml_doc *d = NULL;
  int r = kgb_toml_parse(ctx, "value", doc, strlen(doc), &d);
  if (r < 0)
    return r;
  *ret = strdup(d->entries[0].value);
  return *ret ? 0 : -ENOMEM;
}

char *kgb_toml_quote(const char *s) {
  struct sbuf sb = SBUF_INIT;
  sbuf_addc(&sb, '"');
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    switch (*c) {
    case '"':
      sbuf_adds(&sb, "\\\"");
      break;
    case '\\':
      sbuf_adds(&sb, "\\\\");
      break;
    case '\n':
      sbuf_adds(&sb, "\\n");
      break;
    case '\t':
      sbuf_adds(&sb, "\\t");
      break;
    case '\r':
      sbuf_adds(&sb, "\\r");
      break;
    default:
      if (*c < 0x20 || *c == 0x7f)
        sbuf_addf(&sb, "\\u%04x", *c);
      else
        sbuf_addc(&sb, (char)*c);
    }
  }
  sbuf_addc(&sb, '"');
  return sbuf_steal(&sb);
}

/* ---- the editor ---- */
struct edit {
  size_t start, end; /* line-aligned range of the original text */
  char *repl;
  size_t seq;
};

struct edits {
  struct edit *v;
  size_t n;
};

static int add_edit(struct edits *e, size_t start, size_t end, char *repl) {
  if (!repl)
    return -ENOMEM;
  struct edit *nv = realloc(e->v, (e->n + 1) * sizeof(*nv));
  if (!nv) {
    free(repl);
    return -ENOMEM;
  }
  e->v = nv;
  e->v[e->n] = (struct edit){start, end, repl, e->n};
  e->n++;
  return 0;
}

/* By position; at one position the insertions (empty ranges) come first, in the order they
 * were made, then the one range that may start there. */
static int cmp_edit(const void *a, const void *b) {
  const struct edit *x = a, *y = b;
  if (x->start != y->start)
    return x->start < y->start ? -1 : 1;
  bool xi = x->start == x->end, yi = y->start == y->end;
  if (xi != yi)
    return xi ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Does the comment line hold `#key = ...` or `# key = ...`? */
static bool comment_sets(const char *text, const struct kgb_toml_comment *c, const char *key) {
  const char *s = text + c->hash + 1, *end = text + c->end;
  if (s < end && *s == ' ')
    s++;
  size_t kl = strlen(key);
  if ((size_t)(end - s) < kl || memcmp(s, key, kl) != 0)
    return false;
  s += kl;
  while (s < end && (*s == ' ' || *s == '\t'))
    s++;
  return s < end && *s == '=';
}

static unsigned line_of(const char *text, size_t off) {
  unsigned n = 1;
  for (size_t i = 0; i < off; i++)
    n += text[i] == '\n';
  return n;
}

static unsigned count_lines(const char *s, size_t len) {
  unsigned n = 0;
  for (size_t i = 0; i < len; i++)
    n += s[i] == '\n';
  return n + (len && s[len - 1] != '\n');
}

static void diff_lines(struct sbuf *sb, char sign, const char *s, size_t len) {
  size_t i = 0;
  while (i < len) {
    const char *nl = memchr(s + i, '\n', len - i);
    size_t l = nl ? (size_t)(nl - (s + i)) + 1 : len - i;
    sbuf_addc(sb, sign);
    sbuf_add(sb, s + i, l);
    if (!nl)
      sbuf_adds(sb, "\n\\ No newline at end of file\n");
    i += l;
  }
}

/* Edits never overlap: two of them rewriting the same bytes would each copy the original,
 * so one would be lost or, worse, the text between them would be measured backwards. */
static int render_edits(struct kgb_ctx *ctx, const char *name, const char *text, size_t len,
                        struct edits *e, struct kgb_toml_patch *ret) {
  if (e->n)
    qsort(e->v, e->n, sizeof(*e->v), cmp_edit);
  /* insertions at one point become one, so that the diff has one hunk for them */
  size_t n = 0;
  for (size_t i = 0; i < e->n; i++) {
    struct edit *x = &e->v[i], *last = n ? &e->v[n - 1] : NULL;
    if (last && last->start == last->end && x->start == x->end && x->start == last->start) {
      char *repl = kgb_strdup_printf("%s%s", last->repl, x->repl);
      if (repl) { /* else two hunks, no harm */
        free(last->repl);
        free(x->repl);
        last->repl = repl;
        continue;
      }
    }
    e->v[n++] = *x;
  }
  e->n = n;
  for (size_t i = 1; i < e->n; i++)
    if (e->v[i].start < e->v[i - 1].end)
      return kgb_error(ctx, -EINVAL, "%s:%u: two edits of the same line: set these keys by hand",
                       name, line_of(text, e->v[i].start));
  struct sbuf out = SBUF_INIT, diff = SBUF_INIT;
  size_t pos = 0;
  long delta = 0;
  if (e->n)
    sbuf_addf(&diff, "--- %s\n+++ %s\n", name, name);
  for (size_t i = 0; i < e->n; i++) {
    struct edit *x = &e->v[i];
    sbuf_add(&out, text + pos, x->start - pos);
    sbuf_adds(&out, x->repl);
    pos = x->end;
    /* the lines before the edit: an insertion at the end of a last line without a newline
     * comes after that line (an earlier edit has given it its newline) */
    unsigned before = count_lines(text, x->start);
    unsigned old_n = count_lines(text + x->start, x->end - x->start);
    unsigned new_n = count_lines(x->repl, strlen(x->repl));
    long new_before = (long)before + delta;
    sbuf_addf(&diff, "@@ -%u,%u +%ld,%u @@\n", old_n ? before + 1 : before, old_n,
              new_n ? new_before + 1 : new_before, new_n);
    diff_lines(&diff, '-', text + x->start, x->end - x->start);
    diff_lines(&diff, '+', x->repl, strlen(x->repl));
    delta += (long)new_n - (long)old_n;
  }
  sbuf_add(&out, text + pos, len - pos);
  sbuf_adds(&diff, "");
  ret->len = out.len;
  ret->text = sbuf_steal(&out);
  ret->diff = sbuf_steal(&diff);
  if (!ret->text || !ret->diff) {
    kgb_toml_patch_release(ret);
    return -ENOMEM;
  }
  return 0;
}

void kgb_toml_patch_release(struct kgb_toml_patch *p) {
  free(p->text);
  free(p->diff);
  *p = (struct kgb_toml_patch){0};
}

/* The text for an added key: its comment, then `key = value`. */
static char *added_lines(const struct kgb_toml_set *s, const char *eol) {
  if (s->why)
    return kgb_strdup_printf("# %s%s%s = %s%s", s->why, eol, s->key, s->value, eol);
  return kgb_strdup_printf("%s = %s%s", s->key, s->value, eol);
}

/* Insertions after a last line that has no newline: that line gets one, once, however many
 * insertions follow it. When an edit already rewrites the last line, its replacement takes the
 * newline; otherwise the line is rewritten with one. A second rewrite of the same line would
 * overlap the first (two copies of it, or a refusal). */
static int end_last_line(struct edits *e, const char *text, size_t len, const char *eol) {
  if (!len || text[len - 1] == '\n')
    return 0;
  bool inserts = false;
  for (size_t i = 0; i < e->n && !inserts; i++)
    inserts = e->v[i].start == len;
  if (!inserts)
    return 0;
  for (size_t i = 0; i < e->n; i++) {
    struct edit *x = &e->v[i];
    if (x->end != len || x->start == len)
      continue;
    char *repl = kgb_strdup_printf("%s%s", x->repl, eol);
    if (!repl)
      return -ENOMEM;
    free(x->repl);
    x->repl = repl;
    return 0;
  }
  size_t ls = len;
  while (ls && text[ls - 1] != '\n')
    ls--;
  return add_edit(e, ls, len, kgb_strdup_printf("%.*s%s", (int)(len - ls), text + ls, eol));
}

int kgb_toml_patch(struct kgb_ctx *ctx, const char *name, const char *text, size_t len,
                   const struct kgb_toml_set *sets, size_t n_sets, struct kgb_toml_patch *ret) {
  _cleanup_(kgb_toml_doc_freep) struct kgb_toml_doc *d = NULL;
  int r = kgb_toml_parse(ctx, name, text, len, &d);
  if (r < 0)
    return r;
  const char *nl = memchr(text, '\n', len);
  const char *eol = nl && nl > text && nl[-1] == '\r' ? "\r\n" : "\n";
  struct edits e = {0};
  _cleanup_strv_free_ char **new_tables = NULL; /* tables that do not exist yet */
  for (size_t i = 0; i < n_sets && r >= 0; i++) {
    const struct kgb_toml_set *s = &sets[i];
    const struct kgb_toml_entry *en = kgb_toml_find(d, s->table, s->key);
    if (!s->value) {
      if (!en)
        continue;
      struct sbuf sb = SBUF_INIT;
      for (size_t k = en->line_start; k < en->line_end; k++) {
        if (k == en->line_start || text[k - 1] == '\n')
          sbuf_addc(&sb, '#');
        sbuf_addc(&sb, text[k]);
      }
      r = add_edit(&e, en->line_start, en->line_end, sbuf_steal(&sb));
      continue;
    }
    _cleanup_free_ char *canon = NULL;
    if ((r = kgb_toml_canonical(ctx, s->value, &canon)) < 0)
      break;
    if (en) {
      if (STREQ(en->value, canon))
        continue;
      r = add_edit(&e, en->line_start, en->line_end,
                   kgb_strdup_printf("%.*s%s%.*s", (int)(en->value_start - en->line_start),
                                     text + en->line_start, s->value,
                                     (int)(en->line_end - en->value_end), text + en->value_end));
      continue;
    }
    const struct kgb_toml_table *t = kgb_toml_find_table(d, s->table);
    if (!t) {
      if (!strv_contains(new_tables, s->table))
        r = strv_extend(&new_tables, s->table);
      continue;
    }
    size_t ti = (size_t)(t - d->tables);
    const struct kgb_toml_comment *found = NULL;
    for (size_t k = 0; k < d->n_comments && !found; k++)
      if (d->comments[k].table == ti && comment_sets(text, &d->comments[k], s->key))
        found = &d->comments[k];
    if (found) {
      /* The whole line, its newline included, so that edits stay line-aligned. */
      size_t end = found->end;
      if (end < len && text[end] == '\r')
        end++;
      if (end < len && text[end] == '\n')
        end++;
      r = add_edit(&e, found->start, end,
                   kgb_strdup_printf("%.*s%s = %s%.*s", (int)(found->hash - found->start),
                                     text + found->start, s->key, s->value, (int)(end - found->end),
                                     text + found->end));
      continue;
    }
    r = add_edit(&e, t->last_entry_end, t->last_entry_end, added_lines(s, eol));
  }
  /* Tables that do not exist are added at the end, each with all of its keys. */
  if (r >= 0 && new_tables) {
    struct sbuf tail = SBUF_INIT;
    for (size_t k = 0; new_tables[k]; k++) {
      sbuf_addf(&tail, "%s[%s]%s", eol, new_tables[k], eol);
      for (size_t i = 0; i < n_sets; i++) {
        if (!sets[i].value || !STREQ(sets[i].table, new_tables[k]))
          continue;
        _cleanup_free_ char *lines = added_lines(&sets[i], eol);
        if (!lines || sbuf_adds(&tail, lines) < 0)
          r = -ENOMEM;
      }
    }
    if (r >= 0)
      r = add_edit(&e, len, len, sbuf_steal(&tail));
    sbuf_release(&tail);
  }
  unsigned changes = (unsigned)e.n; /* a last line given its newline is not one of them */
  if (r >= 0)
    r = end_last_line(&e, text, len, eol);
  if (r >= 0) {
    struct kgb_toml_patch out = {0};
    r = render_edits(ctx, name, text, len, &e, &out);
    out.changes = changes;
    if (r >= 0) {
      /* The result must still be a valid document (a table written inline, for one, cannot
       * take a key this way): refuse rather than write a file Kata cannot read. */
      _cleanup_(kgb_toml_doc_freep) struct kgb_toml_doc *check = NULL;
      r = kgb_toml_parse(ctx, name, out.text, out.len, &check);
      if (r < 0) {
        _cleanup_free_ char *why = strdup(kgb_error_detail(ctx) ? kgb_error_detail(ctx) : "");
        kgb_error_clear(ctx);
        r = kgb_error(ctx, -EINVAL,
                      "%s: the edit would not be valid TOML (%s): set these keys by hand", name,
                      why ? why : "");
        kgb_toml_patch_release(&out);
      } else {
        *ret = out;
      }
    }
  }
  for (size_t i = 0; i < e.n; i++)
    free(e.v[i].repl);
  free(e.v);
  return r;
}
