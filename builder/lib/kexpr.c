/* Kconfig expressions: parsing, tristate evaluation, formatting with values, combination.
 *
 * The grammar and precedence follow the kernel's scripts/kconfig/parser.y: comparisons bind
 * tightest and only between two operands, then `!`, then `&&`, then `||`. An operand holding
 * an unexpanded $(function,...) call is kept verbatim as a "macro" whose value is unknown,
 * because running the compiler probes behind it is not this tool's business.
 *
 * Long `&&`/`||` chains are walked along their left spine in a loop rather than by recursion,
 * so that a symbol with thousands of dependency terms (or a fuzzer's input) cannot exhaust
 * the stack; recursion depth is bounded by the nesting of different operators. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../shared/sbuf.h"
#include "kconfig.h"

/* Deeper nesting of parentheses or `!` is rejected; real Kconfig files nest a handful. */
#define KEXPR_MAX_DEPTH 256

enum kexpr_kind {
  KEXPR_SYMBOL, /* a symbol name */
  KEXPR_CONST,  /* y, m or n */
  KEXPR_NUMBER, /* a decimal or 0x hexadecimal word */
  KEXPR_STRING, /* a quoted string, text unescaped */
  KEXPR_MACRO,  /* text containing an unexpanded $(...) */
  KEXPR_NOT,    /* left */
  KEXPR_AND,    /* left, right */
  KEXPR_OR,     /* left, right */
  KEXPR_EQUAL,  /* comparisons: left, right are atoms */
  KEXPR_UNEQUAL,
  KEXPR_LESS,
  KEXPR_LESS_EQUAL,
  KEXPR_GREATER,
  KEXPR_GREATER_EQUAL,
};

struct kgb_kexpr {
  unsigned n_ref;
  enum kexpr_kind kind;
  struct kgb_kexpr *left, *right;
  struct kgb_kexpr *free_next; /* worklist link while freeing */
  char text[];                 /* atoms only, "" otherwise */
};

static bool kind_is_atom(enum kexpr_kind k) { return k <= KEXPR_MACRO; }
static bool kind_is_compare(enum kexpr_kind k) { return k >= KEXPR_EQUAL; }

static struct kgb_kexpr *kexpr_new(enum kexpr_kind kind, const char *text, size_t len) {
  struct kgb_kexpr *e = malloc(sizeof(*e) + len + 1);
  if (!e)
    return NULL;
  *e = (struct kgb_kexpr){.n_ref = 1, .kind = kind};
  if (len)
    memcpy(e->text, text, len);
  e->text[len] = '\0';
  return e;
}

/* Takes ownership of both operands (also on failure). */
static struct kgb_kexpr *kexpr_new_op(enum kexpr_kind kind, struct kgb_kexpr *l,
                                      struct kgb_kexpr *r) {
  struct kgb_kexpr *e = kexpr_new(kind, NULL, 0);
  if (!e) {
    kgb_kexpr_unref(l);
    kgb_kexpr_unref(r);
    return NULL;
  }
  e->left = l;
  e->right = r;
  return e;
}

struct kgb_kexpr *kgb_kexpr_ref(struct kgb_kexpr *e) {
  if (e)
    e->n_ref++;
  return e;
}

struct kgb_kexpr *kgb_kexpr_unref(struct kgb_kexpr *e) {
  if (!e || --e->n_ref > 0)
    return NULL;
  e->free_next = NULL;
  while (e) {
    struct kgb_kexpr *next = e->free_next;
    struct kgb_kexpr *children[2] = {e->left, e->right};
    free(e);
    for (size_t i = 0; i < 2; i++)
      if (children[i] && --children[i]->n_ref == 0) {
        children[i]->free_next = next;
        next = children[i];
      }
    e = next;
  }
  return NULL;
}

/* ---- spines ---- */

/* The operands of a left-deep chain of the same binary operator, in source order. The
 * array is either buf (when n fits) or malloc'ed; release with spine_release. */
struct spine {
  const struct kgb_kexpr **items;
  size_t n;
  const struct kgb_kexpr *buf[16];
};

static int spine_collect(const struct kgb_kexpr *e, struct spine *s) {
  size_t n = 1;
  for (const struct kgb_kexpr *i = e; i->kind == e->kind; i = i->left)
    n++;
  s->n = n;
  s->items = s->buf;
  if (n > ELEMENTSOF(s->buf)) {
    s->items = malloc(n * sizeof(*s->items));
    if (!s->items)
      return -ENOMEM;
  }
  const struct kgb_kexpr *i = e;
  for (size_t k = n - 1; k > 0; k--, i = i->left)
    s->items[k] = i->right;
  s->items[0] = i;
  return 0;
}

static void spine_release(struct spine *s) {
  if (s->items != s->buf)
    free(s->items);
}

/* ---- lexer ---- */

enum ktok {
  KTOK_END,
  KTOK_WORD, /* text is the word; has_macro when it holds a $(...) */
  KTOK_STRING,
  KTOK_NOT,
  KTOK_AND,
  KTOK_OR,
  KTOK_OPEN,
  KTOK_CLOSE,
  KTOK_EQUAL,
  KTOK_UNEQUAL,
  KTOK_LESS,
  KTOK_LESS_EQUAL,
  KTOK_GREATER,
  KTOK_GREATER_EQUAL,
  KTOK_ERROR,
};

struct kparser {
  const char *text;
  size_t pos;
  enum ktok tok;
  size_t tok_start, tok_end;
  bool has_macro;
  struct sbuf str; /* unescaped content of a KTOK_STRING */
  size_t errcol;
  unsigned depth;
};

static bool is_word_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

/* Index just past the `)` matching the `$(` at s[i], or 0 when unbalanced. Quotes are not
 * special inside a macro call, as in the kernel's preprocessor. */
static size_t skip_macro(const char *s, size_t i) {
  unsigned depth = 0;
  for (i += 1; s[i]; i++) {
    if (s[i] == '(')
      depth++;
    else if (s[i] == ')' && --depth == 0)
      return i + 1;
  }
  return 0;
}

static void lex(struct kparser *p) {
  const char *s = p->text;
  size_t i = p->pos;
  while (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')
    i++;
  p->tok_start = i;
  p->has_macro = false;
  char c = s[i];
  enum ktok t = KTOK_ERROR;
  size_t len = 1;

  if (c == '\0') {
    t = KTOK_END;
    len = 0;
  } else if (is_word_char(c) || (c == '$' && s[i + 1] == '(')) {
    size_t j = i;
    for (;;) {
      if (is_word_char(s[j]))
        j++;
      else if (s[j] == '$' && s[j + 1] == '(') {
        size_t end = skip_macro(s, j);
        if (!end) {
          p->tok = KTOK_ERROR;
          return;
        }
        p->has_macro = true;
        j = end;
      } else
        break;
    }
    t = KTOK_WORD;
    len = j - i;
  } else if (c == '"' || c == '\'') {
    size_t j = i + 1;
    p->str.len = 0;
    if (sbuf_add(&p->str, "", 0) < 0) {
      p->tok = KTOK_ERROR;
      return;
    }
    while (s[j] && s[j] != c) {
      if (s[j] == '\\' && s[j + 1])
        j++;
      if (sbuf_addc(&p->str, s[j]) < 0) {
        p->tok = KTOK_ERROR;
        return;
      }
      j++;
    }
    if (!s[j]) {
      p->tok = KTOK_ERROR;
      return;
    }
    t = KTOK_STRING;
    len = j + 1 - i;
  } else if (c == '&' && s[i + 1] == '&') {
    t = KTOK_AND;
    len = 2;
  } else if (c == '|' && s[i + 1] == '|') {
    t = KTOK_OR;
    len = 2;
  } else if (c == '!') {
    t = s[i + 1] == '=' ? KTOK_UNEQUAL : KTOK_NOT;
    len = t == KTOK_UNEQUAL ? 2 : 1;
  } else if (c == '=')
    t = KTOK_EQUAL;
  else if (c == '<') {
    t = s[i + 1] == '=' ? KTOK_LESS_EQUAL : KTOK_LESS;
    len = t == KTOK_LESS_EQUAL ? 2 : 1;
  } else if (c == '>') {
    t = s[i + 1] == '=' ? KTOK_GREATER_EQUAL : KTOK_GREATER;
    len = t == KTOK_GREATER_EQUAL ? 2 : 1;
  } else if (c == '(')
    t = KTOK_OPEN;
  else if (c == ')')
    t = KTOK_CLOSE;

  p->tok = t;
  if (t != KTOK_ERROR) {
    p->tok_end = i + len;
    p->pos = i + len;
  }
}

/* Whole-string integer forms that Kconfig compares numerically: decimal with an optional
 * minus sign, or hexadecimal with 0x. */
static bool parse_number(const char *s, bool *ret_hex, long long *ret_signed,
                         unsigned long long *ret_unsigned) {
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    if (!s[2])
      return false;
    for (const char *c = s + 2; *c; c++)
      if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f') || (*c >= 'A' && *c <= 'F')))
        return false;
    errno = 0;
    unsigned long long u = strtoull(s + 2, NULL, 16);
    if (errno)
      return false;
    *ret_hex = true;
    *ret_unsigned = u;
    *ret_signed = (long long)u;
    return true;
  }
  const char *d = s[0] == '-' ? s + 1 : s;
  if (!*d)
    return false;
  for (const char *c = d; *c; c++)
    if (*c < '0' || *c > '9')
      return false;
  errno = 0;
  long long v = strtoll(s, NULL, 10);
  if (errno)
    return false;
  *ret_hex = false;
  *ret_signed = v;
  *ret_unsigned = (unsigned long long)v;
  return true;
}

static bool is_number(const char *s) {
  bool hex;
  long long sv;
  unsigned long long uv;
  return parse_number(s, &hex, &sv, &uv);
}

/* ---- parser ---- */

static struct kgb_kexpr *parse_or(struct kparser *p);

static struct kgb_kexpr *parse_fail(struct kparser *p) {
  p->errcol = p->tok_start;
  return NULL;
}

static struct kgb_kexpr *parse_atom(struct kparser *p) {
  struct kgb_kexpr *e = NULL;
  if (p->tok == KTOK_STRING)
    e = kexpr_new(KEXPR_STRING, p->str.buf, p->str.len);
  else if (p->tok == KTOK_WORD) {
    const char *w = p->text + p->tok_start;
    size_t n = p->tok_end - p->tok_start;
    enum kexpr_kind kind = KEXPR_SYMBOL;
    if (p->has_macro)
      kind = KEXPR_MACRO;
    else if (n == 1 && (w[0] == 'y' || w[0] == 'm' || w[0] == 'n'))
      kind = KEXPR_CONST;
    e = kexpr_new(kind, w, n);
    if (e && kind == KEXPR_SYMBOL && is_number(e->text))
      e->kind = KEXPR_NUMBER;
  } else
    return parse_fail(p);
  if (!e)
    return parse_fail(p);
  lex(p);
  return e;
}

static struct kgb_kexpr *parse_unary(struct kparser *p) {
  if (++p->depth > KEXPR_MAX_DEPTH)
    return parse_fail(p);
  struct kgb_kexpr *e = NULL;
  if (p->tok == KTOK_NOT) {
    lex(p);
    struct kgb_kexpr *operand = parse_unary(p);
    if (operand)
      e = kexpr_new_op(KEXPR_NOT, operand, NULL);
  } else if (p->tok == KTOK_OPEN) {
    lex(p);
    e = parse_or(p);
    if (e && p->tok != KTOK_CLOSE) {
      parse_fail(p);
      e = kgb_kexpr_unref(e);
    } else if (e)
      lex(p);
  } else {
    e = parse_atom(p);
    static const enum kexpr_kind compare[] = {
        [KTOK_EQUAL] = KEXPR_EQUAL,     [KTOK_UNEQUAL] = KEXPR_UNEQUAL,
        [KTOK_LESS] = KEXPR_LESS,       [KTOK_LESS_EQUAL] = KEXPR_LESS_EQUAL,
        [KTOK_GREATER] = KEXPR_GREATER, [KTOK_GREATER_EQUAL] = KEXPR_GREATER_EQUAL,
    };
    if (e && p->tok >= KTOK_EQUAL && p->tok <= KTOK_GREATER_EQUAL) {
      enum kexpr_kind kind = compare[p->tok];
      lex(p);
      struct kgb_kexpr *r = parse_atom(p);
      e = r ? kexpr_new_op(kind, e, r) : kgb_kexpr_unref(e);
    }
  }
  p->depth--;
  return e;
}

static struct kgb_kexpr *parse_and(struct kparser *p) {
  struct kgb_kexpr *e = parse_unary(p);
  while (e && p->tok == KTOK_AND) {
    lex(p);
    struct kgb_kexpr *r = parse_unary(p);
    e = r ? kexpr_new_op(KEXPR_AND, e, r) : kgb_kexpr_unref(e);
  }
  return e;
}

static struct kgb_kexpr *parse_or(struct kparser *p) {
  struct kgb_kexpr *e = parse_and(p);
  while (e && p->tok == KTOK_OR) {
    lex(p);
    struct kgb_kexpr *r = parse_and(p);
    e = r ? kexpr_new_op(KEXPR_OR, e, r) : kgb_kexpr_unref(e);
  }
  return e;
}

int kgb_kexpr_parse(const char *text, struct kgb_kexpr **ret, size_t *ret_errcol) {
  if (!text || !ret)
    return -EINVAL;
  struct kparser p = {.text = text};
  lex(&p);
  struct kgb_kexpr *e = parse_or(&p);
  if (e && p.tok != KTOK_END) {
    parse_fail(&p);
    e = kgb_kexpr_unref(e);
  }
  sbuf_release(&p.str);
  if (!e) {
    if (ret_errcol)
      *ret_errcol = p.errcol;
    return -EINVAL;
  }
  *ret = e;
  return 0;
}

/* ---- structural comparison and combination ---- */

static bool kexpr_equal(const struct kgb_kexpr *a, const struct kgb_kexpr *b) {
  for (;;) {
    if (a == b)
      return true;
    if (a->kind != b->kind)
      return false;
    if (kind_is_atom(a->kind))
      return STREQ(a->text, b->text);
    if (a->right && !kexpr_equal(a->right, b->right))
      return false;
    a = a->left;
    b = b->left;
  }
}

/* Appends the operands of e when e is a chain of op (at any nesting), else e itself. */
static int collect_terms(const struct kgb_kexpr *e, enum kexpr_kind op,
                         const struct kgb_kexpr ***terms, size_t *n, size_t *cap) {
  if (e->kind != op) {
    if (*n == *cap) {
      size_t c = *cap ? *cap * 2 : 16;
      const struct kgb_kexpr **t = realloc(*terms, c * sizeof(**terms));
      if (!t)
        return -ENOMEM;
      *terms = t;
      *cap = c;
    }
    (*terms)[(*n)++] = e;
    return 0;
  }
  struct spine s;
  int r = spine_collect(e, &s);
  if (r < 0)
    return r;
  for (size_t i = 0; i < s.n && r >= 0; i++)
    r = collect_terms(s.items[i], op, terms, n, cap);
  spine_release(&s);
  return r;
}

/* a op b, leaving out the terms of b that a (or an earlier term of b) already has, because
 * enclosing `if` blocks often repeat a symbol's own `depends on`; the kernel drops those
 * duplicates too (expr_eliminate_dups), and a user reading the explanation should not see
 * `DRM && DRM`. */
static struct kgb_kexpr *kexpr_combine(enum kexpr_kind op, struct kgb_kexpr *a,
                                       struct kgb_kexpr *b) {
  _cleanup_free_ const struct kgb_kexpr **ta = NULL, **tb = NULL;
  size_t na = 0, ca = 0, nb = 0, cb = 0;
  if (collect_terms(a, op, &ta, &na, &ca) < 0 || collect_terms(b, op, &tb, &nb, &cb) < 0)
    return NULL;

  size_t n_new = 0;
  for (size_t i = 0; i < nb; i++) {
    bool dup = false;
    for (size_t j = 0; j < na && !dup; j++)
      dup = kexpr_equal(tb[i], ta[j]);
    for (size_t j = 0; j < n_new && !dup; j++)
      dup = kexpr_equal(tb[i], tb[j]);
    if (!dup)
      tb[n_new++] = tb[i];
  }
  if (n_new == nb)
    return kexpr_new_op(op, kgb_kexpr_ref(a), kgb_kexpr_ref(b));
  struct kgb_kexpr *e = kgb_kexpr_ref(a);
  for (size_t i = 0; i < n_new && e; i++)
    e = kexpr_new_op(op, e, kgb_kexpr_ref((struct kgb_kexpr *)tb[i]));
  return e;
}

struct kgb_kexpr *kgb_kexpr_and(struct kgb_kexpr *a, struct kgb_kexpr *b) {
  if (!a)
    return kgb_kexpr_ref(b);
  if (!b)
    return kgb_kexpr_ref(a);
  return kexpr_combine(KEXPR_AND, a, b);
}

struct kgb_kexpr *kgb_kexpr_or(struct kgb_kexpr *a, struct kgb_kexpr *b) {
  if (!a || !b)
    return NULL; /* y || anything is y */
  return kexpr_combine(KEXPR_OR, a, b);
}

/* ---- evaluation ---- */

static enum kgb_tristate tristate_of(const char *v) {
  if (!v)
    return KGB_N;
  if (STREQ(v, "y"))
    return KGB_Y;
  if (STREQ(v, "m"))
    return KGB_M;
  return KGB_N;
}

/* The string an operand of a comparison stands for; NULL when it cannot be known. */
static const char *operand_value(const struct kgb_kexpr *e, kgb_kvalue_fn value, void *userdata) {
  switch (e->kind) {
  case KEXPR_SYMBOL: {
    const char *v = value ? value(userdata, e->text) : NULL;
    return v ? v : "n";
  }
  case KEXPR_MACRO:
    return NULL;
  default:
    return e->text;
  }
}

static enum kgb_tristate eval_compare(const struct kgb_kexpr *e, kgb_kvalue_fn value,
                                      void *userdata) {
  const char *l = operand_value(e->left, value, userdata);
  const char *r = operand_value(e->right, value, userdata);
  if (!l || !r)
    return KGB_N;

  int cmp;
  bool lhex, rhex;
  long long ls, rs;
  unsigned long long lu, ru;
  if (parse_number(l, &lhex, &ls, &lu) && parse_number(r, &rhex, &rs, &ru)) {
    if (lhex || rhex)
      cmp = (lu > ru) - (lu < ru);
    else
      cmp = (ls > rs) - (ls < rs);
  } else
    cmp = strcmp(l, r);

  bool res = false;
  switch (e->kind) {
  case KEXPR_EQUAL:
    res = cmp == 0;
    break;
  case KEXPR_UNEQUAL:
    res = cmp != 0;
    break;
  case KEXPR_LESS:
    res = cmp < 0;
    break;
  case KEXPR_LESS_EQUAL:
    res = cmp <= 0;
    break;
  case KEXPR_GREATER:
    res = cmp > 0;
    break;
  case KEXPR_GREATER_EQUAL:
    res = cmp >= 0;
    break;
  default:
    break;
  }
  return res ? KGB_Y : KGB_N;
}

enum kgb_tristate kgb_kexpr_eval(const struct kgb_kexpr *e, kgb_kvalue_fn value, void *userdata) {
  if (!e)
    return KGB_Y;
  switch (e->kind) {
  case KEXPR_SYMBOL:
    return tristate_of(value ? value(userdata, e->text) : NULL);
  case KEXPR_CONST:
  case KEXPR_STRING: /* "y" is the constant y, as in the kernel's sym_lookup */
    return tristate_of(e->text);
  case KEXPR_NUMBER:
  case KEXPR_MACRO:
    return KGB_N;
  case KEXPR_NOT:
    return KGB_Y - kgb_kexpr_eval(e->left, value, userdata);
  case KEXPR_AND:
  case KEXPR_OR: {
    bool and = e->kind == KEXPR_AND;
    enum kgb_tristate acc = and? KGB_Y : KGB_N;
    const struct kgb_kexpr *i = e;
    for (;; i = i->left) {
      const struct kgb_kexpr *operand = i->kind == e->kind ? i->right : i;
      enum kgb_tristate v = kgb_kexpr_eval(operand, value, userdata);
      acc = and? MIN(acc, v) : MAX(acc, v);
      if (i->kind != e->kind)
        break;
    }
    return acc;
  }
  default:
    return eval_compare(e, value, userdata);
  }
}

/* ---- formatting ---- */

enum {
  PREC_OR = 1,
  PREC_AND,
  PREC_NOT,
  PREC_COMPARE,
  PREC_ATOM,
};

static int precedence(enum kexpr_kind k) {
  if (kind_is_atom(k))
    return PREC_ATOM;
  if (kind_is_compare(k))
    return PREC_COMPARE;
  return k == KEXPR_NOT ? PREC_NOT : k == KEXPR_AND ? PREC_AND : PREC_OR;
}

static int format_string(struct sbuf *sb, const char *s) {
  int r = sbuf_addc(sb, '"');
  for (; *s && r >= 0; s++) {
    if (*s == '"' || *s == '\\')
      r = sbuf_addc(sb, '\\');
    if (r >= 0)
      r = sbuf_addc(sb, *s);
  }
  return r < 0 ? r : sbuf_addc(sb, '"');
}

static int format_atom(struct sbuf *sb, const struct kgb_kexpr *e, kgb_kvalue_fn value,
                       void *userdata) {
  switch (e->kind) {
  case KEXPR_STRING:
    return format_string(sb, e->text);
  case KEXPR_SYMBOL:
    if (value) {
      const char *v = value(userdata, e->text);
      return sbuf_addf(sb, "%s [=%s]", e->text, v ? v : "n");
    }
    return sbuf_adds(sb, e->text);
  case KEXPR_MACRO:
    return sbuf_addf(sb, value ? "%s [=?]" : "%s", e->text);
  default:
    return sbuf_adds(sb, e->text);
  }
}

static int format_expr(struct sbuf *sb, const struct kgb_kexpr *e, int min_prec,
                       kgb_kvalue_fn value, void *userdata) {
  static const char *const compare_ops[] = {
      [KEXPR_EQUAL] = " = ",       [KEXPR_UNEQUAL] = " != ", [KEXPR_LESS] = " < ",
      [KEXPR_LESS_EQUAL] = " <= ", [KEXPR_GREATER] = " > ",  [KEXPR_GREATER_EQUAL] = " >= ",
  };
  int prec = precedence(e->kind);
  bool paren = prec < min_prec;
  int r = paren ? sbuf_addc(sb, '(') : 0;
  if (r < 0)
    return r;

  if (kind_is_atom(e->kind))
    r = format_atom(sb, e, value, userdata);
  else if (kind_is_compare(e->kind)) {
    r = format_expr(sb, e->left, PREC_ATOM, value, userdata);
    if (r >= 0)
      r = sbuf_adds(sb, compare_ops[e->kind]);
    if (r >= 0)
      r = format_expr(sb, e->right, PREC_ATOM, value, userdata);
  } else if (e->kind == KEXPR_NOT) {
    r = sbuf_addc(sb, '!');
    if (r >= 0)
      r = format_expr(sb, e->left, PREC_NOT, value, userdata);
  } else {
    /* && and || are associative: neither side of a chain needs parentheses for its own
     * operator, only for a looser one */
    struct spine s;
    r = spine_collect(e, &s);
    if (r < 0)
      return r;
    for (size_t i = 0; i < s.n && r >= 0; i++) {
      if (i > 0)
        r = sbuf_adds(sb, e->kind == KEXPR_AND ? " && " : " || ");
      if (r >= 0)
        r = format_expr(sb, s.items[i], prec, value, userdata);
    }
    spine_release(&s);
  }

  if (r >= 0 && paren)
    r = sbuf_addc(sb, ')');
  return r;
}

char *kgb_kexpr_format(const struct kgb_kexpr *e, kgb_kvalue_fn value, void *userdata) {
  struct sbuf sb = SBUF_INIT;
  int r = e ? format_expr(&sb, e, PREC_OR, value, userdata) : sbuf_adds(&sb, "y");
  if (r < 0) {
    sbuf_release(&sb);
    return NULL;
  }
  return sbuf_steal(&sb);
}

/* ---- traversal ---- */

void kgb_kexpr_foreach_symbol(const struct kgb_kexpr *e, void (*fn)(void *ud, const char *sym),
                              void *userdata) {
  if (!e || !fn)
    return;
  switch (e->kind) {
  case KEXPR_SYMBOL:
    fn(userdata, e->text);
    return;
  case KEXPR_AND:
  case KEXPR_OR: {
    struct spine s;
    if (spine_collect(e, &s) < 0) {
      /* out of memory: still visit every symbol, only the order suffers */
      for (; e->kind == KEXPR_AND || e->kind == KEXPR_OR; e = e->left)
        kgb_kexpr_foreach_symbol(e->right, fn, userdata);
      kgb_kexpr_foreach_symbol(e, fn, userdata);
      return;
    }
    for (size_t i = 0; i < s.n; i++)
      kgb_kexpr_foreach_symbol(s.items[i], fn, userdata);
    spine_release(&s);
    return;
  }
  default:
    if (!kind_is_atom(e->kind)) {
      kgb_kexpr_foreach_symbol(e->left, fn, userdata);
      kgb_kexpr_foreach_symbol(e->right, fn, userdata);
    }
    return;
  }
}
