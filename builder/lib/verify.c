/* Explains dropped config values. Kconfig's own tool resolved the configuration; this only
 * reads the definitions to say which rule changed each requested value, because
 * "value requested ... not in final .config" with no reason is what users get today. */
#define _GNU_SOURCE
#include "verify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../shared/hashmap.h"
#include "../shared/sbuf.h"
#include "../shared/string-table.h"
#include "../shared/util.h"

static const char *const kgb_drop_reason_table[_KGB_DROP_REASON_MAX] = {
    [KGB_DROP_UNKNOWN] = "unknown",         [KGB_DROP_TYPE] = "type",
    [KGB_DROP_DEPENDENCY] = "dependency",   [KGB_DROP_SELECT] = "select",
    [KGB_DROP_CHOICE] = "choice",           [KGB_DROP_PROMPT] = "prompt",
    [KGB_DROP_UNEXPLAINED] = "unexplained",
};

DEFINE_STRING_TABLE_TO_STRING(kgb_drop_reason, enum kgb_drop_reason);

struct kgb_verify *kgb_verify_free(struct kgb_verify *v) {
  if (!v)
    return NULL;
  for (size_t i = 0; i < v->n_drops; i++) {
    free(v->drops[i].actual);
    free(v->drops[i].detail);
  }
  free(v->drops);
  strv_free(v->notes);
  free(v);
  return NULL;
}

struct values {
  struct hashmap map; /* symbol -> struct kgb_fentry * of the .config */
};

static const char *value_of(void *ud, const char *sym) {
  const struct kgb_fentry *e = hashmap_get(&((struct values *)ud)->map, sym);
  return e ? e->value : NULL;
}

static enum kgb_tristate tri_of(const char *v) {
  if (!v)
    return KGB_N;
  if (STREQ(v, "y"))
    return KGB_Y;
  return STREQ(v, "m") ? KGB_M : KGB_N;
}

static bool is_tristate_value(const char *v) {
  return STREQ(v, "y") || STREQ(v, "m") || STREQ(v, "n");
}

/* Visibility of the symbol's prompts: the best any definition offers. */
static enum kgb_tristate prompt_visibility(const struct kgb_ksym *s, struct values *vals) {
  enum kgb_tristate best = KGB_N;
  for (size_t i = 0; i < s->n_defs; i++) {
    const struct kgb_kdef *d = &s->defs[i];
    if (!d->has_prompt)
      continue;
    enum kgb_tristate a = kgb_kexpr_eval(d->prompt_if, value_of, vals);
    enum kgb_tristate b = kgb_kexpr_eval(d->depends, value_of, vals);
    best = MAX(best, MIN(a, b));
  }
  return best;
}

static int explain_unknown(const struct kgb_kconfig *k, const char *sym, struct sbuf *sb) {
  int r = sbuf_addf(sb, "no Kconfig file of this kernel defines CONFIG_%s", sym);
  const char *similar[3];
  size_t n = k ? kgb_kconfig_similar(k, sym, similar, ELEMENTSOF(similar)) : 0;
  for (size_t i = 0; i < n && r >= 0; i++)
    r = sbuf_addf(sb, "%sCONFIG_%s", i == 0 ? "; similar: " : ", ", similar[i]);
  return r;
}

static int explain_dependency(const struct kgb_ksym *s, struct values *vals, struct sbuf *sb) {
  _cleanup_(kgb_kexpr_unrefp) struct kgb_kexpr *dep = kgb_ksym_dependency(s);
  _cleanup_free_ char *txt = kgb_kexpr_format(dep, value_of, vals);
  if (!txt)
    return -ENOMEM;
  return sbuf_addf(sb, "%s depends on %s", s->name, txt);
}

/* Selectors that are on and whose condition holds: they force the symbol's lower bound. */
static int explain_select(const struct kgb_ksym *s, struct values *vals, struct sbuf *sb,
                          bool *found) {
  int r = 0;
  *found = false;
  for (size_t i = 0; i < s->n_selected_by && r >= 0; i++) {
    const struct kgb_kselect *sel = &s->selected_by[i];
    if (sel->imply)
      continue;
    enum kgb_tristate on = tri_of(value_of(vals, sel->symbol));
    if (on == KGB_N || kgb_kexpr_eval(sel->cond, value_of, vals) == KGB_N)
      continue;
    r = sbuf_addf(sb, "%s%s [=%s] (%s:%u)", *found ? ", " : "selected by ", sel->symbol,
                  on == KGB_Y ? "y" : "m", sel->file, sel->line);
    *found = true;
  }
  return r;
}

static const char *choice_winner(const struct kgb_ksym *s, struct values *vals) {
  const struct kgb_kchoice *c = s->choice;
  for (size_t i = 0; c && i < c->n_members; i++)
    if (!STREQ(c->members[i], s->name) && tri_of(value_of(vals, c->members[i])) == KGB_Y)
      return c->members[i];
  return NULL;
}

static enum kgb_drop_reason explain(const struct kgb_kconfig *k, const struct kgb_request *q,
                                    const char *actual, struct values *vals, struct sbuf *sb) {
  const struct kgb_fentry *e = q->entry;
  const struct kgb_ksym *s = k ? kgb_kconfig_find(k, q->symbol) : NULL;
  if (!k) {
    sbuf_adds(sb, "the kernel's Kconfig could not be read");
    return KGB_DROP_UNEXPLAINED;
  }
  if (!s) {
    explain_unknown(k, q->symbol, sb);
    return KGB_DROP_UNKNOWN;
  }
  bool tristate_sym = s->type == KGB_KTYPE_BOOL || s->type == KGB_KTYPE_TRISTATE;
  if (tristate_sym && (e->is_string || !is_tristate_value(e->value))) {
    sbuf_addf(sb, "CONFIG_%s is %s: use y or n%s", s->name, kgb_ktype_to_string(s->type),
              s->type == KGB_KTYPE_TRISTATE ? " or m" : "");
    return KGB_DROP_TYPE;
  }
  if (!tristate_sym && s->type != KGB_KTYPE_UNKNOWN && !e->is_string &&
      is_tristate_value(e->value) && !STREQ(e->value, "n")) {
    sbuf_addf(sb, "CONFIG_%s is %s, not bool or tristate", s->name, kgb_ktype_to_string(s->type));
    return KGB_DROP_TYPE;
  }
  if (s->type == KGB_KTYPE_STRING && !e->is_string) {
    sbuf_addf(sb, "CONFIG_%s is a string: quote the value", s->name);
    return KGB_DROP_TYPE;
  }
  if (tristate_sym) {
    enum kgb_tristate want = tri_of(e->value), have = tri_of(actual);
    if (want == KGB_M && s->type == KGB_KTYPE_BOOL) {
      sbuf_addf(sb, "CONFIG_%s is bool: m is not possible, use y", s->name);
      return KGB_DROP_TYPE;
    }
    if (want == KGB_M && have == KGB_Y && tri_of(value_of(vals, "MODULES")) != KGB_Y) {
      sbuf_addf(sb, "m needs CONFIG_MODULES=y (MODULES [=%s]): without modules it became y",
                value_of(vals, "MODULES") ? value_of(vals, "MODULES") : "n");
      return KGB_DROP_TYPE;
    }
    if (want > have) {
      _cleanup_(kgb_kexpr_unrefp) struct kgb_kexpr *dep = kgb_ksym_dependency(s);
      if (kgb_kexpr_eval(dep, value_of, vals) < want) {
        explain_dependency(s, vals, sb);
        return KGB_DROP_DEPENDENCY;
      }
      const char *winner = choice_winner(s, vals);
      if (winner) {
        sbuf_addf(sb, "member of the choice at %s:%u, where %s [=y] won", s->choice->file,
                  s->choice->line, winner);
        return KGB_DROP_CHOICE;
      }
      if (prompt_visibility(s, vals) < want) {
        sbuf_addf(sb, "CONFIG_%s has no visible prompt, so only a default or a select can set it",
                  s->name);
        bool any = false;
        for (size_t i = 0; i < s->n_selected_by; i++) {
          sbuf_addf(sb, "%s%s",
                    any ? ", " : "; enable one of its selectors: ", s->selected_by[i].symbol);
          any = true;
        }
        return KGB_DROP_PROMPT;
      }
    } else {
      bool found;
      explain_select(s, vals, sb, &found);
      if (found)
        return KGB_DROP_SELECT;
      if (s->choice && !s->choice->optional) {
        sbuf_addf(sb,
                  "member of the choice at %s:%u, which needs one member set: request "
                  "another member =y",
                  s->choice->file, s->choice->line);
        return KGB_DROP_CHOICE;
      }
      if (prompt_visibility(s, vals) == KGB_N) {
        sbuf_addf(sb,
                  "CONFIG_%s has no visible prompt: its default sets it and cannot be "
                  "overridden",
                  s->name);
        return KGB_DROP_PROMPT;
      }
    }
  } else {
    _cleanup_(kgb_kexpr_unrefp) struct kgb_kexpr *dep = kgb_ksym_dependency(s);
    if (kgb_kexpr_eval(dep, value_of, vals) == KGB_N) {
      explain_dependency(s, vals, sb);
      return KGB_DROP_DEPENDENCY;
    }
    if (prompt_visibility(s, vals) == KGB_N) {
      sbuf_addf(sb, "CONFIG_%s has no visible prompt: its default sets it", s->name);
      return KGB_DROP_PROMPT;
    }
  }
  sbuf_adds(sb, "the kernel's Kconfig changed the value; no rule found that explains it");
  return KGB_DROP_UNEXPLAINED;
}

int kgb_verify_config(struct kgb_ctx *ctx, const struct kgb_merge *m,
                      const struct kgb_fragment *dotconfig, const struct kgb_kconfig *kconfig,
                      const struct kgb_allow *allow, const char *kver, struct kgb_verify **ret) {
  _cleanup_(kgb_verify_freep) struct kgb_verify *v = calloc(1, sizeof(*v));
  struct values vals = {HASHMAP_INIT};
  int r = 0;
  if (!v)
    return -ENOMEM;
  for (size_t i = 0; i < dotconfig->n_entries && r >= 0; i++)
    r = hashmap_put(&vals.map, dotconfig->entries[i].symbol, &dotconfig->entries[i]);
  v->n_requested = m->n_requests;
  for (size_t i = 0; i < m->n_requests && r >= 0; i++) {
    const struct kgb_request *q = &m->requests[i];
    const struct kgb_fentry *got = hashmap_get(&vals.map, q->symbol);
    const char *actual = got ? got->value : NULL;
    bool actual_string = got && got->is_string;
    bool same = kgb_fvalue_equal(q->entry->value, q->entry->is_string, actual, actual_string);
    bool off = kgb_fvalue_equal(q->entry->value, q->entry->is_string, NULL, false);
    /* a value that no Kconfig defines did not come from Kconfig: only "off" survives that */
    if (same && !off && kconfig && !kgb_kconfig_find(kconfig, q->symbol))
      same = false;
    if (same) {
      if (kconfig && !kgb_kconfig_find(kconfig, q->symbol)) {
        char *note = kgb_strdup_printf("%s:%u: CONFIG_%s is requested off, but no Kconfig of this "
                                       "kernel defines it",
                                       q->fragment->name, q->entry->line, q->symbol);
        r = note ? strv_push(&v->notes, note) : -ENOMEM;
      }
      continue;
    }
    struct sbuf sb = SBUF_INIT;
    enum kgb_drop_reason why = explain(kconfig, q, actual, &vals, &sb);
    struct kgb_drop *nd = realloc(v->drops, (v->n_drops + 1) * sizeof(*nd));
    if (!nd) {
      sbuf_release(&sb);
      r = -ENOMEM;
      break;
    }
    v->drops = nd;
    struct kgb_drop *d = &v->drops[v->n_drops++];
    *d = (struct kgb_drop){.request = q, .actual_is_string = actual_string, .reason = why};
    d->detail = sbuf_steal(&sb);
    if (actual)
      d->actual = strdup(actual);
    if (!d->detail || (actual && !d->actual))
      r = -ENOMEM;
    d->allowed = kgb_allow_match(allow, q->symbol, kver);
    if (!d->allowed)
      v->n_unexplained++;
  }
  hashmap_release(&vals.map);
  if (r < 0)
    return kgb_error(ctx, r, "verifying the resolved configuration: %s", strerror(-r));
  *ret = TAKE_PTR(v);
  return 0;
}
