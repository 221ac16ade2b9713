/* The Kconfig reader: builds the symbol database (definitions, folded dependencies, defaults,
 * select/imply edges and their reverse index, choices) from a kernel tree, following the
 * language of Linux 6.1's scripts/kconfig/lexer.l and parser.y.
 *
 * The reader works one logical line at a time: continuations are joined, comments dropped and
 * $(VAR) references expanded as the kernel's preprocessor would, except that functions
 * ($(shell,...), $(cc-option,...)) are never run; such a reference stays in the text verbatim
 * and becomes an operand of unknown value in the expression that holds it. Help texts are
 * skipped by indentation, so their words are never read as keywords. */
#define _GNU_SOURCE
#include <errno.h>
#include <glob.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../shared/hashmap.h"
#include "../shared/sbuf.h"
#include "../shared/string-table.h"
#include "../shared/util.h"
#include "kconfig.h"

/* The kernel has no limit but detects recursion; these bound what hostile input can cost. */
#define KCONFIG_MAX_SOURCE_DEPTH 64
#define KCONFIG_MAX_VARIABLE_DEPTH 32
#define KCONFIG_MAX_EXPANSION_STEPS 10000
#define KCONFIG_MAX_EXPANSION_LEN (64 * 1024)

static const char *const kgb_ktype_table[_KGB_KTYPE_MAX] = {
    [KGB_KTYPE_UNKNOWN] = "unknown", [KGB_KTYPE_BOOL] = "bool", [KGB_KTYPE_TRISTATE] = "tristate",
    [KGB_KTYPE_STRING] = "string",   [KGB_KTYPE_INT] = "int",   [KGB_KTYPE_HEX] = "hex",
};

DEFINE_STRING_TABLE_TO_STRING(kgb_ktype, enum kgb_ktype);

/* ---- the database ---- */

struct ksym {
  struct kgb_ksym pub;
  struct ksym *hash_next;
  bool defined; /* by a config/menuconfig block, not only referenced */
  char name[];
};

struct kchoice {
  struct kgb_kchoice pub;
  enum kgb_ktype type; /* given to members that declare none, as the kernel does */
};

struct kgb_kconfig {
  struct ksym **buckets;
  size_t n_buckets, n_symbols;
  struct ksym **defined; /* in order of first definition */
  size_t n_defined;
  char **files; /* every file read, relative to the tree */
  size_t n_files;
  struct hashmap file_index; /* name -> the same name in files */
  struct kchoice **choices;
  size_t n_choices;
};

/* Makes room for element n of an array whose capacity is the next power of two, so that no
 * capacity field is needed. */
static int array_grow(void **array, size_t n, size_t size) {
  if (n & (n - 1))
    return 0;
  size_t cap = n ? n * 2 : 1;
  if (cap > SIZE_MAX / size)
    return -ENOMEM;
  void *p = realloc(*array, cap * size);
  if (!p)
    return -ENOMEM;
  *array = p;
  return 0;
}
#define ARRAY_GROW(array, n) array_grow((void **)&(array), (n), sizeof(*(array)))

static uint32_t hash_name(const char *s, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

static struct ksym *ksym_lookup(const struct kgb_kconfig *k, const char *name, size_t n) {
  if (!k->n_buckets)
    return NULL;
  for (struct ksym *s = k->buckets[hash_name(name, n) & (k->n_buckets - 1)]; s; s = s->hash_next)
    if (strncmp(s->name, name, n) == 0 && s->name[n] == '\0')
      return s;
  return NULL;
}

static int kconfig_rehash(struct kgb_kconfig *k) {
  size_t n = k->n_buckets ? k->n_buckets * 2 : 4096;
  struct ksym **b = calloc(n, sizeof(*b));
  if (!b)
    return -ENOMEM;
  for (size_t i = 0; i < k->n_buckets; i++)
    for (struct ksym *s = k->buckets[i], *next; s; s = next) {
      next = s->hash_next;
      size_t h = hash_name(s->name, strlen(s->name)) & (n - 1);
      s->hash_next = b[h];
      b[h] = s;
    }
  free(k->buckets);
  k->buckets = b;
  k->n_buckets = n;
  return 0;
}

/* Every name the reader meets gets one entry, so that all pointers to a name share it. */
static struct ksym *ksym_intern(struct kgb_kconfig *k, const char *name, size_t n) {
  struct ksym *s = ksym_lookup(k, name, n);
  if (s)
    return s;
  if (k->n_symbols >= k->n_buckets && kconfig_rehash(k) < 0)
    return NULL;
  s = calloc(1, sizeof(*s) + n + 1);
  if (!s)
    return NULL;
  memcpy(s->name, name, n);
  s->pub.name = s->name;
  size_t h = hash_name(name, n) & (k->n_buckets - 1);
  s->hash_next = k->buckets[h];
  k->buckets[h] = s;
  k->n_symbols++;
  return s;
}

static void kdef_release(struct kgb_kdef *d) {
  kgb_kexpr_unref(d->prompt_if);
  kgb_kexpr_unref(d->depends);
  for (size_t i = 0; i < d->n_defaults; i++) {
    kgb_kexpr_unref(d->defaults[i].value);
    kgb_kexpr_unref(d->defaults[i].cond);
  }
  free(d->defaults);
  for (size_t i = 0; i < d->n_selects; i++)
    kgb_kexpr_unref(d->selects[i].cond);
  free(d->selects);
}

static void ksym_free(struct ksym *s) {
  for (size_t i = 0; i < s->pub.n_defs; i++)
    kdef_release(&s->pub.defs[i]);
  free(s->pub.defs);
  for (size_t i = 0; i < s->pub.n_selected_by; i++)
    kgb_kexpr_unref(s->pub.selected_by[i].cond);
  free(s->pub.selected_by);
  free(s);
}

struct kgb_kconfig *kgb_kconfig_free(struct kgb_kconfig *k) {
  if (!k)
    return NULL;
  for (size_t i = 0; i < k->n_buckets; i++)
    for (struct ksym *s = k->buckets[i], *next; s; s = next) {
      next = s->hash_next;
      ksym_free(s);
    }
  free(k->buckets);
  free(k->defined);
  hashmap_release(&k->file_index);
  for (size_t i = 0; i < k->n_files; i++)
    free(k->files[i]);
  free(k->files);
  for (size_t i = 0; i < k->n_choices; i++) {
    struct kchoice *c = k->choices[i];
    free((char *)c->pub.name);
    kgb_kexpr_unref(c->pub.depends);
    free(c->pub.members);
    free(c);
  }
  free(k->choices);
  free(k);
  return NULL;
}

const struct kgb_ksym *kgb_kconfig_find(const struct kgb_kconfig *k, const char *name) {
  if (!k || !name)
    return NULL;
  struct ksym *s = ksym_lookup(k, name, strlen(name));
  return s && s->defined ? &s->pub : NULL;
}

size_t kgb_kconfig_count(const struct kgb_kconfig *k) { return k ? k->n_defined : 0; }

const struct kgb_ksym *kgb_kconfig_at(const struct kgb_kconfig *k, size_t i) {
  return k && i < k->n_defined ? &k->defined[i]->pub : NULL;
}

size_t kgb_kconfig_n_files(const struct kgb_kconfig *k) { return k ? k->n_files : 0; }

struct kgb_kexpr *kgb_ksym_dependency(const struct kgb_ksym *s) {
  if (!s || s->n_defs == 0)
    return NULL;
  struct kgb_kexpr *dep = NULL;
  for (size_t i = 0; i < s->n_defs; i++) {
    if (!s->defs[i].depends)
      return kgb_kexpr_unref(dep);
    struct kgb_kexpr *next =
        dep ? kgb_kexpr_or(dep, s->defs[i].depends) : kgb_kexpr_ref(s->defs[i].depends);
    kgb_kexpr_unref(dep);
    dep = next;
    if (!dep)
      return NULL;
  }
  return dep;
}

/* ---- similar names ---- */

struct candidate {
  const char *name;
  size_t score;
};

static bool candidate_better(const struct candidate *a, const struct candidate *b) {
  return a->score < b->score || (a->score == b->score && strcmp(a->name, b->name) < 0);
}

size_t kgb_kconfig_similar(const struct kgb_kconfig *k, const char *name, const char **out,
                           size_t max) {
  if (!k || !name || !out || max == 0)
    return 0;
  if (startswith(name, "CONFIG_") && name[strlen("CONFIG_")])
    name += strlen("CONFIG_");
  /* symbol names are upper case by convention; a user typing `drm_i915` means DRM_I915 */
  _cleanup_free_ char *want = strdup(name);
  if (!want || !*want)
    return 0;
  for (char *c = want; *c; c++)
    if (*c >= 'a' && *c <= 'z')
      *c = (char)(*c - 'a' + 'A');
  bool same_case = STREQ(want, name); /* else also try as typed: a few names have lower case */
  size_t len = strlen(want), limit = MAX((size_t)2, len / 3);

  max = MIN(max, k->n_defined);
  _cleanup_free_ struct candidate *best = calloc(max ? max : 1, sizeof(*best));
  if (!best)
    return 0;
  size_t n = 0;
  for (size_t i = 0; i < k->n_defined; i++) {
    const char *cand = k->defined[i]->name;
    size_t clen = strlen(cand);
    struct candidate c = {cand, levenshtein(want, cand, limit)};
    if (c.score > limit && !same_case)
      c.score = levenshtein(name, cand, limit);
    if (c.score > limit) {
      /* containment is a weaker hint than a small edit; among those, closer length wins */
      if (strcasestr(cand, want) || (clen >= 3 && strcasestr(want, cand)))
        c.score = limit + 1 + (clen > len ? clen - len : len - clen);
      else
        continue;
    }
    if (n == max && !candidate_better(&c, &best[n - 1]))
      continue;
    size_t j = n < max ? n++ : n - 1;
    while (j > 0 && candidate_better(&c, &best[j - 1])) {
      best[j] = best[j - 1];
      j--;
    }
    best[j] = c;
  }
  for (size_t i = 0; i < n; i++)
    out[i] = best[i].name;
  return n;
}

/* ---- the reader ---- */

struct kvar {
  struct kvar *next;
  bool recursive; /* `=`: expanded at each use; `:=`: expanded once */
  bool unknown;   /* a simple variable whose value needed a function call */
  char *value;
  char name[];
};

enum kblock_kind { KBLOCK_IF, KBLOCK_MENU, KBLOCK_CHOICE };

struct kblock {
  enum kblock_kind kind;
  unsigned line;
  struct kgb_kexpr *dep; /* enclosing dependencies ANDed with this block's own */
  struct kchoice *choice;
};

enum kentry {
  KENTRY_NONE,
  KENTRY_CONFIG,
  KENTRY_MENUCONFIG,
  KENTRY_CHOICE,
  KENTRY_MENU,
  KENTRY_COMMENT,
};

enum ktoken_type { KTOKEN_WORD, KTOKEN_STRING, KTOKEN_OP };

struct ktoken {
  enum ktoken_type type;
  bool macro; /* a word holding an unexpanded $(...) */
  size_t start, end;
};

struct kloader {
  struct kgb_ctx *ctx;
  struct kgb_kconfig *k;
  kgb_kconfig_open_fn open_fn;
  void *userdata;
  const char *srctree; /* for glob(3) in source paths; NULL when reading from memory */
  struct kgb_kconfig_vars vars;
  struct kvar *variables;
  unsigned expansion_steps;

  struct kblock *blocks;
  size_t n_blocks;
  size_t file_blocks; /* blocks opened before the current file, which it must not close */
  const char *include_stack[KCONFIG_MAX_SOURCE_DEPTH];
  size_t depth;

  const char *file; /* the statement being read */
  unsigned line;
  struct sbuf text; /* its logical line, expanded */
  struct ktoken *tokens;
  size_t n_tokens;

  enum kentry entry;
  struct ksym *entry_sym;
  struct kgb_kexpr *entry_dep; /* the entry's own `depends on` lines */
  struct kchoice *entry_choice;
};

static int kloader_error(struct kloader *L, const char *fmt, ...) _printf_(2, 3);
static int kloader_error(struct kloader *L, const char *fmt, ...) {
  if (!L->ctx)
    return -EINVAL;
  struct sbuf sb = SBUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  int r = sbuf_vaddf(&sb, fmt, ap);
  va_end(ap);
  if (r < 0)
    return kgb_error(L->ctx, -EINVAL, "%s:%u: syntax error", L->file, L->line);
  r = kgb_error(L->ctx, -EINVAL, "%s:%u: %s", L->file, L->line, sb.buf);
  sbuf_release(&sb);
  return r;
}

static const char *entry_name(enum kentry e) {
  static const char *const names[] = {
      [KENTRY_NONE] = "",         [KENTRY_CONFIG] = "config", [KENTRY_MENUCONFIG] = "menuconfig",
      [KENTRY_CHOICE] = "choice", [KENTRY_MENU] = "menu",     [KENTRY_COMMENT] = "comment",
  };
  return names[e];
}

static const char *block_name(enum kblock_kind b) {
  return b == KBLOCK_IF ? "if" : b == KBLOCK_MENU ? "menu" : "choice";
}

static struct kgb_kexpr *kloader_block_dep(const struct kloader *L) {
  return L->n_blocks ? L->blocks[L->n_blocks - 1].dep : NULL;
}

/* a && b into *acc, for a non-NULL b; NULL from kgb_kexpr_and then means out of memory. */
static int and_into(struct kgb_kexpr **acc, struct kgb_kexpr *b) {
  struct kgb_kexpr *e = kgb_kexpr_and(*acc, b);
  if (!e)
    return -ENOMEM;
  kgb_kexpr_unref(*acc);
  *acc = e;
  return 0;
}

/* ---- preprocessing: variables and $(...) references ---- */

static bool is_word_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

/* Index just past the `)` matching the `$(` at s[i], looking no further than n and not past
 * a newline; 0 when unbalanced. Quotes are not special, as in the kernel's preprocessor. */
static size_t match_paren(const char *s, size_t i, size_t n) {
  unsigned depth = 0;
  for (i += 1; i < n && s[i] != '\n'; i++) {
    if (s[i] == '(')
      depth++;
    else if (s[i] == ')' && --depth == 0)
      return i + 1;
  }
  return 0;
}

static struct kvar *kvar_find(struct kloader *L, const char *name) {
  for (struct kvar *v = L->variables; v; v = v->next)
    if (STREQ(v->name, name))
      return v;
  return NULL;
}

static int expand_reference(struct kloader *L, const char *s, size_t n, unsigned depth,
                            struct sbuf *out, bool *unknown);

/* Expands every $(...) in s[0..n) onto out. *unknown is set (and out is then meaningless)
 * when something would need a function call or an undefined variable. */
static int expand_text(struct kloader *L, const char *s, size_t n, unsigned depth, struct sbuf *out,
                       bool *unknown) {
  for (size_t i = 0; i < n && !*unknown;) {
    if (s[i] == '$' && i + 1 < n && s[i + 1] == '(') {
      size_t end = match_paren(s, i, n);
      if (!end) {
        *unknown = true;
        return 0;
      }
      int r = expand_reference(L, s + i + 2, end - i - 3, depth, out, unknown);
      if (r < 0)
        return r;
      i = end;
    } else {
      size_t j = i + 1;
      while (j < n && s[j] != '$')
        j++;
      if (sbuf_add(out, s + i, j - i) < 0)
        return -ENOMEM;
      i = j;
    }
    if (out->len > KCONFIG_MAX_EXPANSION_LEN)
      return kloader_error(L, "expansion of '%.*s' is too long", (int)MIN(n, (size_t)64), s);
  }
  return 0;
}

/* The kernel's builtin functions; a reference to one is never expanded. */
static bool is_function(const char *name) {
  static const char *const functions[] = {
      "error-if", "filename", "if", "info", "lineno", "shell", "warning-if",
  };
  for (size_t i = 0; i < ELEMENTSOF(functions); i++)
    if (STREQ(functions[i], name))
      return true;
  return false;
}

/* Expands the inside of one $(...) onto out. */
static int expand_reference(struct kloader *L, const char *s, size_t n, unsigned depth,
                            struct sbuf *out, bool *unknown) {
  if (++L->expansion_steps > KCONFIG_MAX_EXPANSION_STEPS)
    return kloader_error(L, "too many variable expansions");

  /* a comma outside nested parentheses makes it a call with arguments */
  unsigned nest = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '(')
      nest++;
    else if (s[i] == ')' && nest)
      nest--;
    else if (s[i] == ',' && !nest) {
      *unknown = true;
      return 0;
    }
  }

  struct sbuf name = SBUF_INIT;
  int r = expand_text(L, s, n, depth, &name, unknown);
  if (r < 0 || *unknown || !name.buf || is_function(name.buf)) {
    *unknown = true;
    sbuf_release(&name);
    return r;
  }

  struct kvar *v = kvar_find(L, name.buf);
  const char *value = NULL;
  if (v) {
    if (v->unknown)
      *unknown = true;
    else if (!v->recursive)
      value = v->value;
    else if (depth >= KCONFIG_MAX_VARIABLE_DEPTH)
      r = kloader_error(L, "recursive variable '%s' references itself", name.buf);
    else
      r = expand_text(L, v->value, strlen(v->value), depth + 1, out, unknown);
  } else if (STREQ(name.buf, "SRCARCH"))
    value = L->vars.srcarch;
  else if (STREQ(name.buf, "ARCH"))
    value = L->vars.arch;
  else if (STREQ(name.buf, "KERNELVERSION"))
    value = L->vars.kernelversion;
  else if (STREQ(name.buf, "srctree"))
    value = ".";

  if (r >= 0 && !*unknown && !(v && v->recursive)) {
    if (!value)
      *unknown = true; /* undefined here: the kernel would look in the environment */
    else if (sbuf_adds(out, value) < 0)
      r = -ENOMEM;
  }
  sbuf_release(&name);
  return r;
}

/* `NAME := value`, `NAME = value`, `NAME += value`: the value is the raw rest of the line,
 * without comment stripping or continuation, as in the kernel's ASSIGN_VAL lexer state. */
static int kvar_assign(struct kloader *L, const char *name, size_t name_len, const char *op,
                       const char *value, size_t value_len) {
  _cleanup_free_ char *vname = strndup(name, name_len);
  if (!vname)
    return -ENOMEM;
  struct kvar *v = kvar_find(L, vname);
  bool append = op[0] == '+' && v;
  bool recursive = append ? v->recursive : op[0] != ':';

  struct sbuf sb = SBUF_INIT;
  bool unknown = append && v->unknown;
  int r = 0;
  if (recursive || unknown)
    r = sbuf_add(&sb, value, value_len);
  else {
    r = expand_text(L, value, value_len, 0, &sb, &unknown);
    if (r >= 0 && unknown) {
      sb.len = 0;
      r = sbuf_add(&sb, value, value_len);
    }
  }
  if (r >= 0 && !sb.buf)
    r = sbuf_add(&sb, "", 0);
  if (r < 0) {
    sbuf_release(&sb);
    return r;
  }

  if (append) {
    char *joined = kgb_strdup_printf("%s %s", v->value, sb.buf);
    sbuf_release(&sb);
    if (!joined)
      return -ENOMEM;
    if (strlen(joined) > KCONFIG_MAX_EXPANSION_LEN) {
      free(joined);
      return kloader_error(L, "value of variable '%s' is too long", vname);
    }
    free(v->value);
    v->value = joined;
    v->unknown = unknown;
    return 0;
  }
  if (!v) {
    v = calloc(1, sizeof(*v) + name_len + 1);
    if (!v) {
      sbuf_release(&sb);
      return -ENOMEM;
    }
    memcpy(v->name, name, name_len);
    v->next = L->variables;
    L->variables = v;
  }
  free(v->value);
  v->value = sbuf_steal(&sb);
  v->recursive = recursive;
  v->unknown = unknown;
  return 0;
}

/* ---- lines and tokens ---- */

enum kkeyword {
  KW_CONFIG,
  KW_MENUCONFIG,
  KW_CHOICE,
  KW_ENDCHOICE,
  KW_COMMENT,
  KW_MENU,
  KW_ENDMENU,
  KW_IF,
  KW_ENDIF,
  KW_SOURCE,
  KW_MAINMENU,
  KW_BOOL,
  KW_TRISTATE,
  KW_STRING,
  KW_INT,
  KW_HEX,
  KW_DEF_BOOL,
  KW_DEF_TRISTATE,
  KW_PROMPT,
  KW_DEFAULT,
  KW_DEPENDS,
  KW_SELECT,
  KW_IMPLY,
  KW_RANGE,
  KW_HELP,
  KW_OLD_HELP,
  KW_OPTION,
  KW_MODULES,
  KW_TRANSITIONAL,
  KW_OPTIONAL,
  KW_VISIBLE,
  _KW_MAX,
  _KW_INVALID = -22,
};

#define E_CFG ((1u << KENTRY_CONFIG) | (1u << KENTRY_MENUCONFIG))
#define E_CHOICE (1u << KENTRY_CHOICE)
#define E_MENU (1u << KENTRY_MENU)
#define E_COMMENT (1u << KENTRY_COMMENT)

static const struct {
  const char *word;
  unsigned entries; /* entries an attribute may appear in; 0 for statements */
} keywords[_KW_MAX] = {
    [KW_CONFIG] = {"config", 0},
    [KW_MENUCONFIG] = {"menuconfig", 0},
    [KW_CHOICE] = {"choice", 0},
    [KW_ENDCHOICE] = {"endchoice", 0},
    [KW_COMMENT] = {"comment", 0},
    [KW_MENU] = {"menu", 0},
    [KW_ENDMENU] = {"endmenu", 0},
    [KW_IF] = {"if", 0},
    [KW_ENDIF] = {"endif", 0},
    [KW_SOURCE] = {"source", 0},
    [KW_MAINMENU] = {"mainmenu", 0},
    [KW_BOOL] = {"bool", E_CFG | E_CHOICE},
    [KW_TRISTATE] = {"tristate", E_CFG | E_CHOICE},
    [KW_STRING] = {"string", E_CFG},
    [KW_INT] = {"int", E_CFG},
    [KW_HEX] = {"hex", E_CFG},
    [KW_DEF_BOOL] = {"def_bool", E_CFG},
    [KW_DEF_TRISTATE] = {"def_tristate", E_CFG},
    [KW_PROMPT] = {"prompt", E_CFG | E_CHOICE},
    [KW_DEFAULT] = {"default", E_CFG | E_CHOICE},
    [KW_DEPENDS] = {"depends", E_CFG | E_CHOICE | E_MENU | E_COMMENT},
    [KW_SELECT] = {"select", E_CFG},
    [KW_IMPLY] = {"imply", E_CFG},
    [KW_RANGE] = {"range", E_CFG},
    [KW_HELP] = {"help", E_CFG | E_CHOICE},
    [KW_OLD_HELP] = {"---help---", E_CFG | E_CHOICE},
    [KW_OPTION] = {"option", E_CFG | E_CHOICE},
    [KW_MODULES] = {"modules", E_CFG},
    [KW_TRANSITIONAL] = {"transitional", E_CFG},
    [KW_OPTIONAL] = {"optional", E_CHOICE},
    [KW_VISIBLE] = {"visible", E_MENU},
};

static enum kkeyword keyword_lookup(const char *s, size_t n) {
  for (size_t i = 0; i < _KW_MAX; i++)
    if (keywords[i].word[0] == s[0] && strncmp(keywords[i].word, s, n) == 0 &&
        keywords[i].word[n] == '\0')
      return (enum kkeyword)i;
  return _KW_INVALID;
}

/* Handles a physical line of the form `NAME op value`; returns 1 when it was one. */
static int try_assignment(struct kloader *L, const char *text, size_t len, size_t *pos,
                          unsigned *lineno) {
  size_t p = *pos;
  while (p < len && (text[p] == ' ' || text[p] == '\t'))
    p++;
  size_t name = p;
  while (p < len && is_word_char(text[p]))
    p++;
  size_t name_len = p - name;
  if (!name_len)
    return 0;
  while (p < len && (text[p] == ' ' || text[p] == '\t'))
    p++;
  const char *op;
  if (text[p] == '=')
    op = "=";
  else if ((text[p] == ':' || text[p] == '+') && text[p + 1] == '=')
    op = text[p] == ':' ? ":=" : "+=";
  else
    return 0;
  if (keyword_lookup(text + name, name_len) >= 0)
    return 0;
  p += strlen(op);
  while (p < len && (text[p] == ' ' || text[p] == '\t'))
    p++;
  size_t value = p;
  while (p < len && text[p] != '\n')
    p++;
  size_t value_end = p;
  while (value_end > value && strchr(" \t\r", text[value_end - 1]))
    value_end--;
  if (p < len)
    p++;

  L->line = *lineno;
  (*lineno)++;
  *pos = p;
  L->expansion_steps = 0;
  int r = kvar_assign(L, text + name, name_len, op, text + value, value_end - value);
  return r < 0 ? r : 1;
}

/* Appends s[0..n) to the logical line, escaped when it lands inside a quoted string so that
 * the string's end stays where the source put it. */
static int line_add(struct sbuf *sb, const char *s, size_t n, bool in_string) {
  if (!in_string)
    return sbuf_add(sb, s, n);
  for (size_t i = 0; i < n; i++) {
    if ((s[i] == '"' || s[i] == '\'' || s[i] == '\\') && sbuf_addc(sb, '\\') < 0)
      return -ENOMEM;
    if (sbuf_addc(sb, s[i]) < 0)
      return -ENOMEM;
  }
  return 0;
}

/* Reads one logical line from *pos into L->text: continuations joined, comment dropped,
 * expandable references replaced; *pos and *lineno move past it. */
static int read_logical_line(struct kloader *L, const char *text, size_t len, size_t *pos,
                             unsigned *lineno) {
  struct sbuf *sb = &L->text;
  sb->len = 0;
  if (sbuf_add(sb, "", 0) < 0)
    return -ENOMEM;
  L->line = *lineno;
  L->expansion_steps = 0;

  size_t p = *pos;
  char quote = 0;
  int r = 0;
  while (p < len && text[p] != '\n' && r >= 0) {
    char c = text[p];
    if (c == '\\' && text[p + 1] == '\n' && !quote) {
      p += 2;
      (*lineno)++;
      r = sbuf_addc(sb, ' ');
    } else if (c == '#' && !quote) {
      while (p < len && text[p] != '\n')
        p++;
    } else if (c == '$' && text[p + 1] == '(') {
      size_t end = match_paren(text, p, len);
      if (!end)
        return kloader_error(L, "unterminated reference '%.*s'", (int)strcspn(text + p, "\n"),
                             text + p);
      bool unknown = false;
      struct sbuf value = SBUF_INIT;
      r = expand_reference(L, text + p + 2, end - p - 3, 0, &value, &unknown);
      if (r >= 0) {
        if (unknown)
          r = line_add(sb, text + p, end - p, quote);
        else
          r = line_add(sb, sbuf_str(&value), value.len, quote);
      }
      sbuf_release(&value);
      p = end;
    } else if (quote && c == '\\' && text[p + 1] && text[p + 1] != '\n') {
      r = sbuf_add(sb, text + p, 2);
      p += 2;
    } else {
      if (quote && c == quote)
        quote = 0;
      else if (!quote && (c == '"' || c == '\''))
        quote = c;
      r = sbuf_addc(sb, c);
      p++;
    }
  }
  if (r < 0)
    return r;
  if (quote)
    return kloader_error(L, "unterminated string");
  if (p < len) {
    p++;
    (*lineno)++;
  }
  *pos = p;
  return 0;
}

static int tokenize(struct kloader *L) {
  const char *s = L->text.buf;
  L->n_tokens = 0;
  for (size_t i = 0;;) {
    while (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\f' || s[i] == '\v')
      i++;
    if (!s[i])
      return 0;
    struct ktoken t = {.start = i};
    char c = s[i];
    if (is_word_char(c) || (c == '$' && s[i + 1] == '(')) {
      t.type = KTOKEN_WORD;
      while (is_word_char(s[i]) || (s[i] == '$' && s[i + 1] == '(')) {
        if (s[i] == '$') {
          size_t end = match_paren(s, i, L->text.len);
          if (!end)
            return kloader_error(L, "unterminated reference '%s'", s + i);
          t.macro = true;
          i = end;
        } else
          i++;
      }
    } else if (c == '"' || c == '\'') {
      t.type = KTOKEN_STRING;
      for (i++; s[i] && s[i] != c; i++)
        if (s[i] == '\\' && s[i + 1])
          i++;
      if (!s[i])
        return kloader_error(L, "unterminated string");
      i++;
    } else {
      static const char *const ops[] = {
          "&&", "||", "!=", "<=", ">=", ":=", "+=", "!", "=", "<", ">", "(", ")"};
      size_t n = 0;
      for (size_t k = 0; k < ELEMENTSOF(ops) && !n; k++)
        if (strncmp(s + i, ops[k], strlen(ops[k])) == 0)
          n = strlen(ops[k]);
      if (!n)
        return kloader_error(L, "invalid character '%c'", c);
      t.type = KTOKEN_OP;
      i += n;
    }
    t.end = i;
    if (ARRAY_GROW(L->tokens, L->n_tokens) < 0)
      return -ENOMEM;
    L->tokens[L->n_tokens++] = t;
  }
}

static bool token_is(const struct kloader *L, size_t i, const char *word) {
  if (i >= L->n_tokens || L->tokens[i].type != KTOKEN_WORD)
    return false;
  size_t n = L->tokens[i].end - L->tokens[i].start;
  return strncmp(L->text.buf + L->tokens[i].start, word, n) == 0 && word[n] == '\0';
}

/* Token text for messages (bounded, so a long line does not flood the error). */
#define TOKEN_FMT "%.*s"
#define TOKEN_ARG(L, i)                                                                            \
  (int)MIN((L)->tokens[i].end - (L)->tokens[i].start, (size_t)80),                                 \
      (L)->text.buf + (L)->tokens[i].start

static bool token_is_symbol(const struct kloader *L, size_t i) {
  return i < L->n_tokens && L->tokens[i].type == KTOKEN_WORD && !L->tokens[i].macro;
}

/* The unescaped content of string token i, malloc'ed. */
static char *token_string(const struct kloader *L, size_t i) {
  const char *s = L->text.buf + L->tokens[i].start + 1;
  size_t n = L->tokens[i].end - L->tokens[i].start - 2;
  char *r = malloc(n + 1), *o = r;
  if (!r)
    return NULL;
  for (size_t k = 0; k < n; k++) {
    if (s[k] == '\\' && k + 1 < n)
      k++;
    *o++ = s[k];
  }
  *o = '\0';
  return r;
}

/* Parses tokens [from, to) as an expression. */
static int parse_tokens(struct kloader *L, size_t from, size_t to, const char *what,
                        struct kgb_kexpr **ret) {
  if (from >= to)
    return kloader_error(L, "missing expression after '%s'", what);
  size_t start = L->tokens[from].start, end = L->tokens[to - 1].end;
  _cleanup_free_ char *text = strndup(L->text.buf + start, end - start);
  if (!text)
    return -ENOMEM;
  size_t col = 0;
  int r = kgb_kexpr_parse(text, ret, &col);
  if (r == -EINVAL && !text[col])
    return kloader_error(L, "incomplete expression '%.80s'", text);
  if (r == -EINVAL)
    return kloader_error(L, "invalid expression '%.80s' at '%.20s'", text, text + col);
  return r;
}

/* Index of the first `if` word from `from` on, or n_tokens. */
static size_t find_if(const struct kloader *L, size_t from) {
  for (size_t i = from; i < L->n_tokens; i++)
    if (token_is(L, i, "if"))
      return i;
  return L->n_tokens;
}

/* An optional trailing `if COND` starting at token i. */
static int parse_cond(struct kloader *L, size_t i, struct kgb_kexpr **ret) {
  *ret = NULL;
  if (i >= L->n_tokens)
    return 0;
  if (!token_is(L, i, "if"))
    return kloader_error(L, "unexpected '" TOKEN_FMT "'", TOKEN_ARG(L, i));
  return parse_tokens(L, i + 1, L->n_tokens, "if", ret);
}

static int expect_end(struct kloader *L, size_t i, const char *after) {
  if (i < L->n_tokens)
    return kloader_error(L, "unexpected '" TOKEN_FMT "' after '%s'", TOKEN_ARG(L, i), after);
  return 0;
}

/* ---- entries and blocks ---- */

static struct kgb_kdef *entry_def(struct kloader *L) {
  return &L->entry_sym->pub.defs[L->entry_sym->pub.n_defs - 1];
}

/* Closes the current entry: a config's dependency becomes its own `depends on` lines
 * behind everything that encloses it, in the kernel's order (menu_finalize). */
static int end_entry(struct kloader *L) {
  int r = 0;
  if (L->entry == KENTRY_CONFIG || L->entry == KENTRY_MENUCONFIG) {
    struct kgb_kexpr *outer = kloader_block_dep(L);
    struct kgb_kdef *d = entry_def(L);
    d->depends = kgb_kexpr_and(outer, L->entry_dep);
    if (!d->depends && (outer || L->entry_dep))
      r = -ENOMEM;
  } else if (L->entry == KENTRY_CHOICE) {
    kgb_kexpr_unref(L->entry_choice->pub.depends);
    L->entry_choice->pub.depends = kgb_kexpr_ref(kloader_block_dep(L));
  }
  L->entry_dep = kgb_kexpr_unref(L->entry_dep);
  L->entry = KENTRY_NONE;
  L->entry_sym = NULL;
  L->entry_choice = NULL;
  return r;
}

/* Takes dep. */
static int push_block(struct kloader *L, enum kblock_kind kind, struct kgb_kexpr *dep,
                      struct kchoice *choice) {
  if (ARRAY_GROW(L->blocks, L->n_blocks) < 0) {
    kgb_kexpr_unref(dep);
    return -ENOMEM;
  }
  L->blocks[L->n_blocks++] = (struct kblock){kind, L->line, dep, choice};
  return 0;
}

static int pop_block(struct kloader *L, enum kblock_kind kind) {
  const char *end = kind == KBLOCK_IF ? "endif" : kind == KBLOCK_MENU ? "endmenu" : "endchoice";
  if (L->n_blocks == L->file_blocks)
    return kloader_error(L, "'%s' without matching '%s'", end, block_name(kind));
  struct kblock *b = &L->blocks[L->n_blocks - 1];
  if (b->kind != kind)
    return kloader_error(L, "unexpected '%s' inside '%s' block from line %u", end,
                         block_name(b->kind), b->line);
  kgb_kexpr_unref(b->dep);
  L->n_blocks--;
  return 0;
}

/* The choice a config defined here belongs to: the nearest enclosing one, looking through
 * `if` blocks (which the kernel flattens into the choice) but not menus. */
static struct kchoice *current_choice(const struct kloader *L) {
  for (size_t i = L->n_blocks; i > 0; i--) {
    if (L->blocks[i - 1].kind == KBLOCK_IF)
      continue;
    return L->blocks[i - 1].kind == KBLOCK_CHOICE ? L->blocks[i - 1].choice : NULL;
  }
  return NULL;
}

static int start_config(struct kloader *L, enum kentry kind) {
  const char *kw = entry_name(kind);
  if (!token_is_symbol(L, 1))
    return kloader_error(L, "expected a symbol name after '%s'", kw);
  int r = expect_end(L, 2, kw);
  if (r < 0)
    return r;

  struct kgb_kconfig *k = L->k;
  struct ksym *s =
      ksym_intern(k, L->text.buf + L->tokens[1].start, L->tokens[1].end - L->tokens[1].start);
  if (!s || ARRAY_GROW(s->pub.defs, s->pub.n_defs) < 0)
    return -ENOMEM;
  if (!s->defined) {
    if (ARRAY_GROW(k->defined, k->n_defined) < 0)
      return -ENOMEM;
    k->defined[k->n_defined++] = s;
    s->defined = true;
  }
  s->pub.defs[s->pub.n_defs++] = (struct kgb_kdef){.file = L->file, .line = L->line};

  struct kchoice *c = current_choice(L);
  if (c) {
    s->pub.choice = &c->pub;
    bool member = false;
    for (size_t i = 0; i < c->pub.n_members && !member; i++)
      member = c->pub.members[i] == s->name;
    if (!member) {
      if (ARRAY_GROW(c->pub.members, c->pub.n_members) < 0)
        return -ENOMEM;
      c->pub.members[c->pub.n_members++] = s->name;
    }
  }
  L->entry = kind;
  L->entry_sym = s;
  return 0;
}

static int start_choice(struct kloader *L) {
  if (L->n_tokens > 1 && !token_is_symbol(L, 1))
    return kloader_error(L, "unexpected '" TOKEN_FMT "' after 'choice'", TOKEN_ARG(L, 1));
  int r = expect_end(L, 2, "choice");
  if (r < 0)
    return r;
  struct kgb_kconfig *k = L->k;
  if (ARRAY_GROW(k->choices, k->n_choices) < 0)
    return -ENOMEM;
  struct kchoice *c = calloc(1, sizeof(*c));
  if (!c)
    return -ENOMEM;
  k->choices[k->n_choices++] = c;
  c->pub.file = L->file;
  c->pub.line = L->line;
  if (L->n_tokens > 1 && !(c->pub.name = strndup(L->text.buf + L->tokens[1].start,
                                                 L->tokens[1].end - L->tokens[1].start)))
    return -ENOMEM;
  r = push_block(L, KBLOCK_CHOICE, kgb_kexpr_ref(kloader_block_dep(L)), c);
  if (r < 0)
    return r;
  L->entry = KENTRY_CHOICE;
  L->entry_choice = c;
  return 0;
}

static int parse_text(struct kloader *L, const char *path, const char *text);

static bool has_glob(const char *s) { return strpbrk(s, "*?[") != NULL; }

/* Reads one sourced file; the caller restores its own position afterwards. */
static int source_one(struct kloader *L, const char *path) {
  if (L->depth >= KCONFIG_MAX_SOURCE_DEPTH)
    return kloader_error(L, "'%s' is sourced too deeply", path);
  for (size_t i = 0; i < L->depth; i++)
    if (STREQ(L->include_stack[i], path))
      return kloader_error(L, "recursive inclusion of '%s'", path);

  _cleanup_free_ char *text = NULL;
  int r = L->open_fn(L->userdata, path, &text);
  if (r == -ENOENT || r == -ENOTDIR)
    return kloader_error(L, "sourced file '%s' not found", path);
  if (r < 0)
    return kloader_error(L, "cannot read sourced file '%s': %s", path,
                         file_error_reason(path, r, READ_TEXT_MAX));
  return parse_text(L, path, text);
}

static int do_source(struct kloader *L) {
  if (L->n_tokens < 2 || L->tokens[1].type != KTOKEN_STRING)
    return kloader_error(L, "expected a quoted path after 'source'");
  int r = expect_end(L, 2, "source");
  if (r < 0)
    return r;
  _cleanup_free_ char *raw = token_string(L, 1);
  if (!raw)
    return -ENOMEM;
  /* "$(srctree)/x" names the same file as "x", and file names are kept relative */
  const char *path = raw;
  while (startswith(path, "./"))
    path += 2;

  const char *file = L->file;
  unsigned line = L->line;
  size_t file_blocks = L->file_blocks;

  if (L->srctree && has_glob(path)) {
    _cleanup_free_ char *pattern = strjoin_path(L->srctree, path);
    if (!pattern)
      return -ENOMEM;
    glob_t g = {0};
    int gr = glob(pattern, 0, NULL, &g);
    if (gr == GLOB_NOSPACE)
      r = -ENOMEM;
    else if (gr == GLOB_ABORTED)
      r = kloader_error(L, "cannot read the files matching '%s'", path);
    size_t prefix = strlen(L->srctree);
    for (size_t i = 0; gr == 0 && i < g.gl_pathc && r >= 0; i++) {
      const char *rel = g.gl_pathv[i] + prefix;
      while (*rel == '/')
        rel++;
      r = source_one(L, rel);
      L->file = file;
      L->line = line;
      L->file_blocks = file_blocks;
    }
    globfree(&g);
    return r;
  }

  r = source_one(L, path);
  L->file = file;
  L->line = line;
  L->file_blocks = file_blocks;
  return r;
}

/* Skips a help text: it ends at the first non-blank line indented less than its first line
 * (or not at all); tabs advance to the next multiple of 8, as in the kernel's lexer. */
static void skip_help(const char *text, size_t len, size_t *pos, unsigned *lineno) {
  size_t p = *pos;
  unsigned first = 0;
  while (p < len) {
    size_t q = p;
    unsigned indent = 0;
    while (q < len && (text[q] == ' ' || text[q] == '\t')) {
      indent = text[q] == '\t' ? (indent & ~7u) + 8 : indent + 1;
      q++;
    }
    bool blank = q >= len || text[q] == '\n';
    if (!blank && (indent == 0 || indent < first))
      break;
    if (!blank && !first)
      first = indent;
    while (q < len && text[q] != '\n')
      q++;
    if (q < len) {
      q++;
      (*lineno)++;
    }
    p = q;
  }
  *pos = p;
}

static int add_default(struct kloader *L, size_t from, const char *what) {
  size_t i = find_if(L, from);
  _cleanup_(kgb_kexpr_unrefp) struct kgb_kexpr *value = NULL;
  _cleanup_(kgb_kexpr_unrefp) struct kgb_kexpr *cond = NULL;
  int r = parse_tokens(L, from, i, what, &value);
  if (r >= 0)
    r = parse_cond(L, i, &cond);
  if (r < 0 || L->entry == KENTRY_CHOICE) /* a choice's default is one of its members */
    return r;
  struct kgb_kdef *d = entry_def(L);
  if (ARRAY_GROW(d->defaults, d->n_defaults) < 0)
    return -ENOMEM;
  d->defaults[d->n_defaults++] = (struct kgb_kdefault){
      .value = TAKE_PTR(value), .cond = TAKE_PTR(cond), .file = L->file, .line = L->line};
  return 0;
}

static void set_type(struct kloader *L, enum kgb_ktype type) {
  /* the first type wins; the kernel warns about a redefinition and ignores it */
  if (L->entry == KENTRY_CHOICE) {
    if (L->entry_choice->type == KGB_KTYPE_UNKNOWN)
      L->entry_choice->type = type;
  } else if (L->entry_sym->pub.type == KGB_KTYPE_UNKNOWN)
    L->entry_sym->pub.type = type;
}

static int set_prompt(struct kloader *L, size_t i) {
  _cleanup_(kgb_kexpr_unrefp) struct kgb_kexpr *cond = NULL;
  int r = parse_cond(L, i + 1, &cond);
  if (r < 0 || L->entry == KENTRY_CHOICE)
    return r;
  struct kgb_kdef *d = entry_def(L);
  d->has_prompt = true;
  kgb_kexpr_unref(d->prompt_if);
  d->prompt_if = TAKE_PTR(cond);
  return 0;
}

static int attribute(struct kloader *L, enum kkeyword kw, const char *text, size_t len, size_t *pos,
                     unsigned *lineno) {
  const char *word = keywords[kw].word;
  if (L->entry == KENTRY_NONE)
    return kloader_error(L, "attribute '%s' outside of an entry", word);
  if (!(keywords[kw].entries & (1u << L->entry)))
    return kloader_error(L, "attribute '%s' is not allowed in a '%s' entry", word,
                         entry_name(L->entry));
  int r = 0;
  switch (kw) {
  case KW_BOOL:
  case KW_TRISTATE:
  case KW_STRING:
  case KW_INT:
  case KW_HEX:
    set_type(L, kw == KW_BOOL       ? KGB_KTYPE_BOOL
                : kw == KW_TRISTATE ? KGB_KTYPE_TRISTATE
                : kw == KW_STRING   ? KGB_KTYPE_STRING
                : kw == KW_INT      ? KGB_KTYPE_INT
                                    : KGB_KTYPE_HEX);
    if (L->n_tokens == 1)
      return 0;
    if (L->tokens[1].type != KTOKEN_STRING)
      return kloader_error(L, "expected a quoted prompt after '%s'", word);
    return set_prompt(L, 1);
  case KW_PROMPT:
    if (L->n_tokens < 2 || L->tokens[1].type != KTOKEN_STRING)
      return kloader_error(L, "expected a quoted prompt after 'prompt'");
    return set_prompt(L, 1);
  case KW_DEF_BOOL:
  case KW_DEF_TRISTATE:
    set_type(L, kw == KW_DEF_BOOL ? KGB_KTYPE_BOOL : KGB_KTYPE_TRISTATE);
    return add_default(L, 1, word);
  case KW_DEFAULT:
    return add_default(L, 1, word);
  case KW_DEPENDS: {
    if (!token_is(L, 1, "on"))
      return kloader_error(L, "expected 'on' after 'depends'");
    _cleanup_(kgb_kexpr_unrefp) struct kgb_kexpr *e = NULL;
    r = parse_tokens(L, 2, L->n_tokens, "depends on", &e);
    if (r < 0 || L->entry == KENTRY_COMMENT)
      return r;
    if (L->entry == KENTRY_CHOICE || L->entry == KENTRY_MENU)
      return and_into(&L->blocks[L->n_blocks - 1].dep, e);
    return and_into(&L->entry_dep, e);
  }
  case KW_SELECT:
  case KW_IMPLY: {
    if (!token_is_symbol(L, 1))
      return kloader_error(L, "expected a symbol name after '%s'", word);
    _cleanup_(kgb_kexpr_unrefp) struct kgb_kexpr *cond = NULL;
    r = parse_cond(L, 2, &cond);
    if (r < 0)
      return r;
    struct ksym *target =
        ksym_intern(L->k, L->text.buf + L->tokens[1].start, L->tokens[1].end - L->tokens[1].start);
    struct kgb_kdef *d = entry_def(L);
    if (!target || ARRAY_GROW(d->selects, d->n_selects) < 0)
      return -ENOMEM;
    d->selects[d->n_selects++] = (struct kgb_kselect){.symbol = target->name,
                                                      .cond = TAKE_PTR(cond),
                                                      .imply = kw == KW_IMPLY,
                                                      .file = L->file,
                                                      .line = L->line};
    return 0;
  }
  case KW_HELP:
  case KW_OLD_HELP:
    r = expect_end(L, 1, word);
    if (r >= 0)
      skip_help(text, len, pos, lineno);
    return r;
  case KW_OPTIONAL:
    r = expect_end(L, 1, word);
    if (r >= 0)
      L->entry_choice->pub.optional = true;
    return r;
  case KW_VISIBLE: {
    _cleanup_(kgb_kexpr_unrefp) struct kgb_kexpr *cond = NULL;
    return parse_cond(L, 1, &cond); /* visibility of a menu's prompt, not a dependency */
  }
  case KW_MODULES:
  case KW_TRANSITIONAL:
    return expect_end(L, 1, word);
  case KW_RANGE:
  case KW_OPTION:
  default:
    return 0;
  }
}

static int statement(struct kloader *L, const char *text, size_t len, size_t *pos,
                     unsigned *lineno) {
  const struct ktoken *t = &L->tokens[0];
  if (t->type == KTOKEN_WORD && t->macro)
    return 0; /* e.g. $(error-if,...): a call at statement level expands to nothing */
  if (t->type != KTOKEN_WORD)
    return kloader_error(L, "unexpected '" TOKEN_FMT "'", TOKEN_ARG(L, 0));

  enum kkeyword kw = keyword_lookup(L->text.buf + t->start, t->end - t->start);
  if (kw < 0) {
    if (L->entry != KENTRY_NONE)
      return kloader_error(L, "unknown attribute '" TOKEN_FMT "' in '%s' entry", TOKEN_ARG(L, 0),
                           entry_name(L->entry));
    return kloader_error(L, "unknown statement '" TOKEN_FMT "'", TOKEN_ARG(L, 0));
  }
  if (keywords[kw].entries)
    return attribute(L, kw, text, len, pos, lineno);

  int r = end_entry(L);
  if (r < 0)
    return r;
  switch (kw) {
  case KW_CONFIG:
    return start_config(L, KENTRY_CONFIG);
  case KW_MENUCONFIG:
    return start_config(L, KENTRY_MENUCONFIG);
  case KW_CHOICE:
    return start_choice(L);
  case KW_ENDCHOICE:
  case KW_ENDMENU:
  case KW_ENDIF:
    r = expect_end(L, 1, keywords[kw].word);
    if (r < 0)
      return r;
    return pop_block(L, kw == KW_ENDCHOICE ? KBLOCK_CHOICE
                        : kw == KW_ENDMENU ? KBLOCK_MENU
                                           : KBLOCK_IF);
  case KW_IF: {
    _cleanup_(kgb_kexpr_unrefp) struct kgb_kexpr *cond = NULL;
    r = parse_tokens(L, 1, L->n_tokens, "if", &cond);
    if (r < 0)
      return r;
    struct kgb_kexpr *dep = kgb_kexpr_and(kloader_block_dep(L), cond);
    if (!dep)
      return -ENOMEM;
    return push_block(L, KBLOCK_IF, dep, NULL);
  }
  case KW_MENU:
  case KW_COMMENT:
  case KW_MAINMENU:
    if (L->n_tokens < 2 || L->tokens[1].type != KTOKEN_STRING)
      return kloader_error(L, "expected a quoted title after '%s'", keywords[kw].word);
    r = expect_end(L, 2, keywords[kw].word);
    if (r < 0 || kw == KW_MAINMENU)
      return r;
    if (kw == KW_COMMENT) {
      L->entry = KENTRY_COMMENT;
      return 0;
    }
    L->entry = KENTRY_MENU;
    return push_block(L, KBLOCK_MENU, kgb_kexpr_ref(kloader_block_dep(L)), NULL);
  case KW_SOURCE:
    return do_source(L);
  default:
    return 0;
  }
}

static int parse_text(struct kloader *L, const char *path, const char *text) {
  /* a file sourced from two places (Documentation/Kconfig is) is read twice, as the kernel
   * does, but counted and named once */
  struct kgb_kconfig *k = L->k;
  const char *file = hashmap_get(&k->file_index, path);
  if (!file) {
    if (ARRAY_GROW(k->files, k->n_files) < 0)
      return -ENOMEM;
    char *copy = strdup(path);
    if (!copy)
      return -ENOMEM;
    k->files[k->n_files++] = copy;
    if (hashmap_put(&k->file_index, copy, copy) < 0)
      return -ENOMEM;
    file = copy;
  }
  L->include_stack[L->depth++] = file;
  L->file = file;
  L->file_blocks = L->n_blocks;

  size_t len = strlen(text), pos = 0;
  unsigned lineno = 1;
  int r = 0;
  while (pos < len && r >= 0) {
    r = try_assignment(L, text, len, &pos, &lineno);
    if (r != 0) {
      if (r > 0)
        r = end_entry(L);
      continue;
    }
    r = read_logical_line(L, text, len, &pos, &lineno);
    if (r >= 0)
      r = tokenize(L);
    if (r >= 0 && L->n_tokens > 0)
      r = statement(L, text, len, &pos, &lineno);
  }
  if (r >= 0)
    r = end_entry(L);
  if (r >= 0 && L->n_blocks > L->file_blocks) {
    const struct kblock *b = &L->blocks[L->n_blocks - 1];
    L->line = b->line;
    L->file = file;
    r = kloader_error(L, "'%s' without matching 'end%s'", block_name(b->kind), block_name(b->kind));
  }
  L->depth--;
  return r;
}

/* After reading: members without a type take their choice's, and every select/imply edge is
 * recorded on its target too. */
static int kconfig_finish(struct kgb_kconfig *k) {
  for (size_t i = 0; i < k->n_choices; i++) {
    const struct kchoice *c = k->choices[i];
    for (size_t m = 0; m < c->pub.n_members; m++) {
      struct ksym *s = ksym_lookup(k, c->pub.members[m], strlen(c->pub.members[m]));
      if (s && s->pub.type == KGB_KTYPE_UNKNOWN)
        s->pub.type = c->type;
    }
  }
  for (size_t i = 0; i < k->n_defined; i++) {
    const struct ksym *s = k->defined[i];
    for (size_t d = 0; d < s->pub.n_defs; d++)
      for (size_t j = 0; j < s->pub.defs[d].n_selects; j++) {
        const struct kgb_kselect *sel = &s->pub.defs[d].selects[j];
        struct ksym *t = ksym_lookup(k, sel->symbol, strlen(sel->symbol));
        if (!t || ARRAY_GROW(t->pub.selected_by, t->pub.n_selected_by) < 0)
          return -ENOMEM;
        t->pub.selected_by[t->pub.n_selected_by++] = (struct kgb_kselect){
            .symbol = s->name,
            .cond = kgb_kexpr_ref(sel->cond),
            .imply = sel->imply,
            .file = sel->file,
            .line = sel->line,
        };
      }
  }
  return 0;
}

static void kloader_release(struct kloader *L) {
  end_entry(L);
  while (L->n_blocks > 0)
    kgb_kexpr_unref(L->blocks[--L->n_blocks].dep);
  free(L->blocks);
  free(L->tokens);
  sbuf_release(&L->text);
  for (struct kvar *v = L->variables, *next; v; v = next) {
    next = v->next;
    free(v->value);
    free(v);
  }
}

static int kconfig_load(struct kgb_ctx *ctx, const char *srctree, const char *top,
                        kgb_kconfig_open_fn open_fn, void *userdata,
                        const struct kgb_kconfig_vars *vars, struct kgb_kconfig **ret) {
  if (!open_fn || !ret)
    return -EINVAL;
  if (!top)
    top = "Kconfig";
  _cleanup_(kgb_kconfig_freep) struct kgb_kconfig *k = calloc(1, sizeof(*k));
  if (!k)
    return -ENOMEM;
  struct kloader L = {
      .ctx = ctx,
      .k = k,
      .open_fn = open_fn,
      .userdata = userdata,
      .srctree = srctree,
      .vars = vars ? *vars : (struct kgb_kconfig_vars){0},
  };

  _cleanup_free_ char *text = NULL;
  int r = open_fn(userdata, top, &text);
  if (r < 0) {
    if (srctree)
      return kgb_error(ctx, r, "cannot read '%s/%s': %s", srctree, top, strerror(-r));
    return kgb_error(ctx, r, "cannot read '%s': %s", top, strerror(-r));
  }
  r = parse_text(&L, top, text);
  kloader_release(&L);
  if (r >= 0)
    r = kconfig_finish(k);
  if (r == -ENOMEM)
    return kgb_error(ctx, r, "out of memory while reading Kconfig files");
  if (r < 0)
    return r;
  *ret = TAKE_PTR(k);
  return 0;
}

int kgb_kconfig_load_with(struct kgb_ctx *ctx, const char *top, kgb_kconfig_open_fn open_fn,
                          void *userdata, const struct kgb_kconfig_vars *vars,
                          struct kgb_kconfig **ret) {
  return kconfig_load(ctx, NULL, top, open_fn, userdata, vars, ret);
}

static int open_in_tree(void *userdata, const char *path, char **ret_text) {
  _cleanup_free_ char *full = strjoin_path(userdata, path);
  if (!full)
    return -ENOMEM;
  return read_full_file(full, ret_text, NULL);
}

int kgb_kconfig_load(struct kgb_ctx *ctx, const char *srctree, const struct kgb_kconfig_vars *vars,
                     struct kgb_kconfig **ret) {
  if (!srctree)
    return -EINVAL;
  return kconfig_load(ctx, srctree, "Kconfig", open_in_tree, (void *)srctree, vars, ret);
}
