/* The configuration a Kata runtime loads (kata-effective.h): the base file and its drop-ins,
 * merged as Kata's loaders merge them (Go: decodeDropIns/updateFromDropIn; runtime-rs:
 * drop_in::load), each value remembering the file and line that set it. */
#define _GNU_SOURCE
#include "kata-effective.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../shared/util.h"
#include "toml.h"

const char *const kgb_kata_config_search[] = {
    "/etc/kata-containers/configuration.toml",
    "/usr/share/defaults/kata-containers/configuration.toml",
    "/opt/kata/share/defaults/kata-containers/configuration.toml",
    NULL,
};

static void values_free(struct kgb_kata_value *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(v[i].table);
    free(v[i].key);
    free(v[i].value);
    free(v[i].string);
    free(v[i].file);
  }
  free(v);
}

struct kgb_kata_effective *kgb_kata_effective_free(struct kgb_kata_effective *e) {
  if (!e)
    return NULL;
  free(e->base);
  free(e->resolved);
  free(e->config_d);
  strv_free(e->dropins);
  strv_free(e->later_dropins);
  values_free(e->values, e->n_values);
  values_free(e->later, e->n_later);
  free(e);
  return NULL;
}

static struct kgb_kata_value *find(struct kgb_kata_value *v, size_t n, const char *table,
                                   const char *key) {
  for (size_t i = 0; i < n; i++)
    if (STREQ(v[i].table, table) && STREQ(v[i].key, key))
      return &v[i];
  return NULL;
}

const struct kgb_kata_value *kgb_kata_effective_get(const struct kgb_kata_effective *e,
                                                    const char *table, const char *key) {
  return e ? find(e->values, e->n_values, table, key) : NULL;
}

const struct kgb_kata_value *kgb_kata_effective_later(const struct kgb_kata_effective *e,
                                                      const char *table, const char *key) {
  return e ? find(e->later, e->n_later, table, key) : NULL;
}

/* Merges the entries of one file: replace (a later file wins) or keep the first. */
static int merge_file(struct kgb_ctx *ctx, const char *path, bool replace,
                      struct kgb_kata_value **v, size_t *n) {
  _cleanup_free_ char *text = NULL;
  size_t len = 0;
  int r = read_full_file(path, &text, &len);
  if (r < 0)
    return kgb_error(ctx, r, "cannot read the Kata configuration '%s': %s", path,
                     file_error_reason(path, r, READ_TEXT_MAX));
  _cleanup_(kgb_toml_doc_freep) struct kgb_toml_doc *d = NULL;
  if ((r = kgb_toml_parse(ctx, path, text, len, &d)) < 0)
    return kgb_error_prefix(ctx, r, "the Kata configuration Kata would load is not valid TOML");
  for (size_t i = 0; i < d->n_entries; i++) {
    const struct kgb_toml_entry *en = &d->entries[i];
    struct kgb_kata_value *old = find(*v, *n, en->table, en->key);
    if (old && !replace)
      continue;
    if (!old) {
      struct kgb_kata_value *nv = realloc(*v, (*n + 1) * sizeof(**v));
      if (!nv)
        return -ENOMEM;
      *v = nv;
      old = &(*v)[(*n)++];
      *old = (struct kgb_kata_value){.table = strdup(en->table), .key = strdup(en->key)};
      if (!old->table || !old->key)
        return -ENOMEM;
    }
    free(old->value);
    free(old->string);
    free(old->file);
    old->value = strdup(en->value);
    old->string = en->string ? strdup(en->string) : NULL;
    old->file = strdup(path);
    old->line = en->line;
    if (!old->value || !old->file || (en->string && !old->string))
      return -ENOMEM;
  }
  return 0;
}

static bool regular_or_link(_unused_ int dir_fd, const char *name, _unused_ void *userdata) {
  return name[0] != '.';
}

int kgb_kata_effective_load(struct kgb_ctx *ctx, const char *base, const char *own_dropin,
                            struct kgb_kata_effective **ret) {
  *ret = NULL;
  if (base && STREQ(base, "none"))
    return 0;
  const char *found = base;
  for (size_t i = 0; !found && kgb_kata_config_search[i]; i++)
    if (access(kgb_kata_config_search[i], F_OK) == 0)
      found = kgb_kata_config_search[i];
  if (!found)
    return 0;
  _cleanup_(kgb_kata_effective_freep) struct kgb_kata_effective *e = calloc(1, sizeof(*e));
  if (!e || !(e->base = strdup(found)))
    return -ENOMEM;
  if (!(e->resolved = realpath(found, NULL)))
    return kgb_error(ctx, -errno, "cannot read the Kata configuration '%s': %m", found);
  _cleanup_free_ char *dir = strdup(e->resolved);
  if (!dir)
    return -ENOMEM;
  *strrchr(dir, '/') = '\0';
  if (!(e->config_d = kgb_strdup_printf("%s/config.d", *dir ? dir : "")))
    return -ENOMEM;
  int r = merge_file(ctx, e->resolved, true, &e->values, &e->n_values);
  if (r < 0)
    return r;
  _cleanup_strv_free_ char **names = NULL;
  r = readdir_sorted(e->config_d, 0, regular_or_link, NULL, &names);
  if (r == -ENOENT || r == -ENOTDIR)
    r = 0;
  else if (r < 0)
    return r == -ENOMEM ? r : kgb_error(ctx, r, "cannot read '%s': %s", e->config_d, strerror(-r));
  for (size_t i = 0; names && names[i]; i++) {
    if (own_dropin && STREQ(names[i], own_dropin))
      continue; /* being replaced */
    _cleanup_free_ char *path = strjoin_path(e->config_d, names[i]);
    if (!path)
      return -ENOMEM;
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
      continue; /* Kata reads regular files (and links to them) */
    bool later = own_dropin && strcmp(names[i], own_dropin) > 0;
    if (later) {
      if ((r = strv_extend(&e->later_dropins, path)) < 0 ||
          (r = merge_file(ctx, path, false, &e->later, &e->n_later)) < 0)
        return r;
    } else if ((r = strv_extend(&e->dropins, path)) < 0 ||
               (r = merge_file(ctx, path, true, &e->values, &e->n_values)) < 0) {
      return r;
    }
  }
  *ret = TAKE_PTR(e);
  return 0;
}
