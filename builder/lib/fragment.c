/* Strict parser for config fragment lines. Every rejected line gets "file:line: what is wrong"
 * and a hint, because a silently skipped line is exactly how today's scripts lose options. */
#define _GNU_SOURCE
#include "fragment.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../shared/sbuf.h"
#include "../shared/util.h"

struct kgb_fragment *kgb_fragment_free(struct kgb_fragment *f) {
  if (!f)
    return NULL;
  for (size_t i = 0; i < f->n_entries; i++) {
    free(f->entries[i].symbol);
    free(f->entries[i].value);
  }
  free(f->entries);
  strv_free(f->exclude_arches);
  free(f->name);
  free(f);
  return NULL;
}

static bool is_symchar(char c) { return isalnum((unsigned char)c) || c == '_'; }

/* `# !s390x !powerpc`: a comment made only of !arch tokens. Returns 1 and fills arches when
 * the comment is a tag line, 0 when it is an ordinary comment. */
static int parse_tag_line(const char *comment, char ***arches) {
  const char *p = comment;
  bool any = false;
  _cleanup_strv_free_ char **found = NULL;
  for (;;) {
    while (*p == ' ' || *p == '\t')
      p++;
    if (!*p)
      break;
    if (*p != '!')
      return 0;
    const char *s = ++p;
    while (*p && (islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_'))
      p++;
    if (p == s || (*p && *p != ' ' && *p != '\t'))
      return 0;
    _cleanup_free_ char *a = strndup(s, (size_t)(p - s));
    if (!a || strv_push(&found, TAKE_PTR(a)) < 0)
      return -ENOMEM;
    any = true;
  }
  if (!any)
    return 0;
  for (size_t i = 0; found[i]; i++)
    if (strv_extend(arches, found[i]) < 0)
      return -ENOMEM;
  return 1;
}

static int add_entry(struct kgb_fragment *f, const char *sym, size_t symlen, char *value,
                     bool is_string, unsigned line) {
  struct kgb_fentry *n = realloc(f->entries, (f->n_entries + 1) * sizeof(*n));
  if (!n) {
    free(value);
    return -ENOMEM;
  }
  f->entries = n;
  struct kgb_fentry *e = &f->entries[f->n_entries];
  e->symbol = strndup(sym, symlen);
  if (!e->symbol) {
    free(value);
    return -ENOMEM;
  }
  e->value = value;
  e->is_string = is_string;
  e->line = line;
  f->n_entries++;
  return 0;
}

static bool is_number(const char *s) {
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    if (!s[2])
      return false;
    for (s += 2; *s; s++)
      if (!isxdigit((unsigned char)*s))
        return false;
    return true;
  }
  if (*s == '-')
    s++;
  if (!*s)
    return false;
  for (; *s; s++)
    if (!isdigit((unsigned char)*s))
      return false;
  return true;
}

/* After a value only blanks or a `# comment` may follow. */
static bool rest_is_blank(const char *p) {
  while (*p == ' ' || *p == '\t')
    p++;
  return *p == '\0' || *p == '#';
}

static int parse_line(struct kgb_ctx *ctx, struct kgb_fragment *f, char *line, unsigned lineno) {
  const char *name = f->name;
  char *p = line;
  while (*p == ' ' || *p == '\t')
    p++;
  if (!*p)
    return 0;
  if (*p == '#') {
    const char *c = p + 1;
    while (*c == ' ')
      c++;
    /* `# CONFIG_X is not set` is the .config spelling of n. */
    if (startswith(c, "CONFIG_")) {
      const char *s = c + 7, *e = s;
      while (is_symchar(*e))
        e++;
      if (e > s && startswith(e, " is not set") && rest_is_blank(e + 11)) {
        char *v = strdup("n");
        return v ? add_entry(f, s, (size_t)(e - s), v, false, lineno) : -ENOMEM;
      }
      return 0; /* a comment that mentions a symbol */
    }
    int r = parse_tag_line(p + 1, &f->exclude_arches);
    if (r < 0)
      return r;
    if (r > 0 && !f->tag_line)
      f->tag_line = lineno;
    return 0;
  }
  if (!startswith(p, "CONFIG_")) {
    return kgb_error(ctx, -EINVAL,
                     "%s:%u: not an assignment: expected CONFIG_NAME=value or "
                     "'# CONFIG_NAME is not set'",
                     name, lineno);
  }
  const char *s = p + 7, *e = s;
  while (is_symchar(*e))
    e++;
  if (e == s)
    return kgb_error(ctx, -EINVAL, "%s:%u: empty symbol name after 'CONFIG_'", name, lineno);
  size_t symlen = (size_t)(e - s);
  const char *v = e;
  while (*v == ' ' || *v == '\t')
    v++;
  if (*v != '=')
    return kgb_error(ctx, -EINVAL, "%s:%u: not an assignment: 'CONFIG_%.*s' has no '=value'", name,
                     lineno, (int)symlen, s);
  v++;
  while (*v == ' ' || *v == '\t')
    v++;
  if (*v == '"') {
    struct sbuf sb = SBUF_INIT;
    const char *q = v + 1;
    for (; *q && *q != '"'; q++) {
      if (*q == '\\' && q[1])
        q++;
      if (sbuf_addc(&sb, *q) < 0) {
        sbuf_release(&sb);
        return -ENOMEM;
      }
    }
    if (*q != '"') {
      sbuf_release(&sb);
      return kgb_error(ctx, -EINVAL,
                       "%s:%u: unterminated string for 'CONFIG_%.*s': add the closing '\"'", name,
                       lineno, (int)symlen, s);
    }
    if (!rest_is_blank(q + 1)) {
      sbuf_release(&sb);
      return kgb_error(ctx, -EINVAL, "%s:%u: unexpected text after the value of 'CONFIG_%.*s'",
                       name, lineno, (int)symlen, s);
    }
    char *str = sbuf_steal(&sb);
    return str ? add_entry(f, s, symlen, str, true, lineno) : -ENOMEM;
  }
  const char *ve = v;
  while (*ve && *ve != ' ' && *ve != '\t' && *ve != '#')
    ve++;
  _cleanup_free_ char *val = strndup(v, (size_t)(ve - v));
  if (!val)
    return -ENOMEM;
  if (!*val)
    return kgb_error(ctx, -EINVAL,
                     "%s:%u: 'CONFIG_%.*s' has no value: use y, m, n, a number or a "
                     "quoted string",
                     name, lineno, (int)symlen, s);
  if (!rest_is_blank(ve))
    return kgb_error(ctx, -EINVAL, "%s:%u: unexpected text after the value of 'CONFIG_%.*s'", name,
                     lineno, (int)symlen, s);
  if (!STREQ(val, "y") && !STREQ(val, "m") && !STREQ(val, "n") && !is_number(val))
    return kgb_error(ctx, -EINVAL,
                     "%s:%u: '%s' is not a valid value for 'CONFIG_%.*s': use y, m, n, a number or "
                     "a quoted string",
                     name, lineno, val, (int)symlen, s);
  return add_entry(f, s, symlen, TAKE_PTR(val), false, lineno);
}

int kgb_fragment_parse(struct kgb_ctx *ctx, const char *name, const char *text, bool allow_empty,
                       struct kgb_fragment **ret) {
  struct kgb_fragment *f = calloc(1, sizeof(*f));
  _cleanup_(kgb_fragment_freep) struct kgb_fragment *frag = f;
  if (!f || !(f->name = strdup(name)))
    return -ENOMEM;
  _cleanup_free_ char *copy = strdup(text);
  if (!copy)
    return -ENOMEM;
  unsigned lineno = 0;
  char *save = copy;
  /* editors on some systems start UTF-8 files with a byte order mark: it is not a byte of
   * the first line (which would otherwise be "not an assignment" while looking right) */
  if (startswith(save, "\xef\xbb\xbf"))
    save += 3;
  for (char *nl; save; save = nl) {
    nl = strchr(save, '\n');
    if (nl)
      *nl++ = '\0';
    lineno++;
    size_t l = strlen(save);
    if (l && save[l - 1] == '\r')
      save[l - 1] = '\0';
    if (!nl && !*save)
      break;
    int r = parse_line(ctx, f, save, lineno);
    if (r < 0)
      return r;
  }
  if (!allow_empty && f->n_entries == 0)
    return kgb_error(ctx, -ENODATA,
                     "%s: fragment sets no option: add CONFIG_ lines or remove it from "
                     "the profile",
                     name);
  *ret = TAKE_PTR(frag);
  return 0;
}

int kgb_fragment_load(struct kgb_ctx *ctx, const char *path, const char *name, bool allow_empty,
                      struct kgb_fragment **ret) {
  _cleanup_free_ char *text = NULL;
  size_t len;
  int r = read_full_file(path, &text, &len);
  if (r < 0)
    return kgb_error(ctx, r, "%s: cannot read fragment: %s", name,
                     file_error_reason(path, r, READ_TEXT_MAX));
  if (strlen(text) != len)
    return kgb_error(ctx, -EINVAL, "%s: contains a NUL byte: not a text fragment", name);
  return kgb_fragment_parse(ctx, name, text, allow_empty, ret);
}

bool kgb_fragment_excludes(const struct kgb_fragment *f, const char *arch) {
  return strv_contains(f->exclude_arches, arch);
}

const struct kgb_fentry *kgb_fragment_find(const struct kgb_fragment *f, const char *symbol) {
  for (size_t i = f->n_entries; i > 0; i--)
    if (STREQ(f->entries[i - 1].symbol, symbol))
      return &f->entries[i - 1];
  return NULL;
}

int kgb_fentry_format(struct sbuf *sb, const char *symbol, const char *value, bool is_string) {
  if (!is_string && STREQ(value, "n"))
    return sbuf_addf(sb, "# CONFIG_%s is not set\n", symbol);
  if (!is_string)
    return sbuf_addf(sb, "CONFIG_%s=%s\n", symbol, value);
  int r = sbuf_addf(sb, "CONFIG_%s=\"", symbol);
  for (const char *p = value; r >= 0 && *p; p++) {
    if (*p == '"' || *p == '\\')
      r = sbuf_addc(sb, '\\');
    if (r >= 0)
      r = sbuf_addc(sb, *p);
  }
  return r < 0 ? r : sbuf_adds(sb, "\"\n");
}

char *kgb_fentry_display(const char *value, bool is_string) {
  if (!value)
    return strdup("n");
  return is_string ? kgb_strdup_printf("\"%s\"", value) : strdup(value);
}

static bool is_off(const char *v, bool is_string) {
  return !v || (is_string ? !*v : STREQ(v, "n"));
}

bool kgb_fvalue_equal(const char *a, bool a_string, const char *b, bool b_string) {
  if (is_off(a, a_string) || is_off(b, b_string))
    return is_off(a, a_string) && is_off(b, b_string);
  if (a_string || b_string)
    return a_string == b_string && STREQ(a, b);
  if (is_number(a) && is_number(b) && !STREQ(a, "y"))
    return strtoll(a, NULL, 0) == strtoll(b, NULL, 0);
  return STREQ(a, b);
}
