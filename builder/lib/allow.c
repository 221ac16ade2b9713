/* Allow-list parsing and matching. An entry without a reason is refused: the point of the
 * list is that every tolerated drop is explained where it is tolerated. */
#define _GNU_SOURCE
#include "allow.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../shared/util.h"

struct kgb_allow *kgb_allow_free(struct kgb_allow *a) {
  if (!a)
    return NULL;
  for (size_t i = 0; i < a->n_entries; i++) {
    free(a->entries[i].symbol);
    free(a->entries[i].min);
    free(a->entries[i].max);
    free(a->entries[i].reason);
  }
  free(a->entries);
  free(a->name);
  free(a);
  return NULL;
}

static bool valid_version(const char *s, size_t n) {
  if (n == 0 || !isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[n - 1]))
    return false;
  for (size_t i = 0; i < n; i++)
    if (!isdigit((unsigned char)s[i]) && !(s[i] == '.' && s[i + 1] != '.'))
      return false;
  return true;
}

static int parse_entry(struct kgb_ctx *ctx, struct kgb_allow *a, char *line, unsigned lineno) {
  char *p = strstrip(line);
  if (!*p || *p == '#')
    return 0;
  if (!startswith(p, "CONFIG_"))
    return kgb_error(ctx, -EINVAL, "%s:%u: expected 'CONFIG_NAME [kernel:RANGE] reason'", a->name,
                     lineno);
  char *s = p + 7, *e = s;
  while (isalnum((unsigned char)*e) || *e == '_')
    e++;
  if (e == s || (*e && *e != ' ' && *e != '\t'))
    return kgb_error(ctx, -EINVAL, "%s:%u: bad symbol name", a->name, lineno);
  struct kgb_allow_entry ent = {.line = lineno};
  _cleanup_free_ char *sym = strndup(s, (size_t)(e - s)), *min = NULL, *max = NULL;
  if (!sym)
    return -ENOMEM;
  p = e;
  while (*p == ' ' || *p == '\t')
    p++;
  if (startswith(p, "kernel:")) {
    char *r = p + 7, *re = r;
    while (*re && *re != ' ' && *re != '\t')
      re++;
    char *dots = strstr(r, "..");
    if (!dots || dots >= re)
      return kgb_error(ctx, -EINVAL, "%s:%u: bad kernel range '%.*s': use A..B, A.. or ..B",
                       a->name, lineno, (int)(re - r), r);
    size_t lmin = (size_t)(dots - r), lmax = (size_t)(re - dots - 2);
    if ((lmin && !valid_version(r, lmin)) || (lmax && !valid_version(dots + 2, lmax)) ||
        (!lmin && !lmax))
      return kgb_error(ctx, -EINVAL, "%s:%u: bad kernel range '%.*s': use A..B, A.. or ..B",
                       a->name, lineno, (int)(re - r), r);
    if ((lmin && !(min = strndup(r, lmin))) || (lmax && !(max = strndup(dots + 2, lmax))))
      return -ENOMEM;
    p = re;
    while (*p == ' ' || *p == '\t')
      p++;
  }
  if (!*p || *p == '#')
    return kgb_error(ctx, -EINVAL,
                     "%s:%u: allow-list entry for 'CONFIG_%s' has no reason: say why the value "
                     "may be dropped",
                     a->name, lineno, sym);
  struct kgb_allow_entry *n = realloc(a->entries, (a->n_entries + 1) * sizeof(*n));
  if (!n)
    return -ENOMEM;
  a->entries = n;
  ent.reason = strdup(p);
  if (!ent.reason)
    return -ENOMEM;
  ent.symbol = TAKE_PTR(sym);
  ent.min = TAKE_PTR(min);
  ent.max = TAKE_PTR(max);
  a->entries[a->n_entries++] = ent;
  return 0;
}

int kgb_allow_parse(struct kgb_ctx *ctx, const char *name, const char *text,
                    struct kgb_allow **ret) {
  _cleanup_(kgb_allow_freep) struct kgb_allow *a = calloc(1, sizeof(*a));
  if (!a || !(a->name = strdup(name)))
    return -ENOMEM;
  _cleanup_free_ char *copy = strdup(text);
  if (!copy)
    return -ENOMEM;
  unsigned lineno = 0;
  for (char *line = copy, *nl; line; line = nl) {
    nl = strchr(line, '\n');
    if (nl)
      *nl++ = '\0';
    lineno++;
    int r = parse_entry(ctx, a, line, lineno);
    if (r < 0)
      return r;
  }
  *ret = TAKE_PTR(a);
  return 0;
}

int kgb_allow_load(struct kgb_ctx *ctx, const char *path, const char *name,
                   struct kgb_allow **ret) {
  _cleanup_free_ char *text = NULL;
  int r = read_full_file(path, &text, NULL);
  if (r == -ENOENT)
    return kgb_allow_parse(ctx, name, "", ret);
  if (r < 0)
    return kgb_error(ctx, r, "%s: cannot read allow-list: %s", name, strerror(-r));
  return kgb_allow_parse(ctx, name, text, ret);
}

const struct kgb_allow_entry *kgb_allow_match(const struct kgb_allow *a, const char *symbol,
                                              const char *kver) {
  for (size_t i = 0; a && i < a->n_entries; i++) {
    const struct kgb_allow_entry *e = &a->entries[i];
    if (!STREQ(e->symbol, symbol))
      continue;
    if ((e->min || e->max) && !kver)
      continue;
    if (e->min && version_compare(kver, e->min) < 0)
      continue;
    /* an upper bound covers its whole series: ..6.1 includes 6.1.192 */
    if (e->max && version_compare_series(kver, e->max) > 0)
      continue;
    return e;
  }
  return NULL;
}
