/* The stage lifecycle (stage.h): open by key, write under a temporary name, commit by rename,
 * the small record format, and the sweep of what killed runs left. */
#define _GNU_SOURCE
#include "stage.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../shared/util.h"
#include "source.h"

static char *mfree(char *p) {
  free(p);
  return NULL;
}

int kgb_stage_key(const char *key_text, char ret[65]) {
  return kgb_sha256_hex(key_text, strlen(key_text), ret);
}

struct kgb_stage *kgb_stage_free(struct kgb_stage *st) {
  if (!st)
    return NULL;
  if (st->tmp)
    rm_rf(st->tmp);
  free(st->name);
  free(st->dir);
  free(st->tmp);
  free(st->path);
  free(st->record_text);
  sbuf_release(&st->record);
  free(st);
  return NULL;
}

static int set_path(struct kgb_stage *st, const char *path) {
  char *c = strdup(path);
  if (!c)
    return -ENOMEM;
  free(st->path);
  st->path = c;
  return 0;
}

int kgb_stage_open(struct kgb_ctx *ctx, const char *name, const char *key_text,
                   const char *required, struct kgb_stage **ret) {
  _cleanup_(kgb_stage_freep) struct kgb_stage *st = calloc(1, sizeof(*st));
  if (!st || !(st->name = strdup(name)))
    return -ENOMEM;
  st->ctx = ctx;
  st->forced = ctx->force;
  if (kgb_stage_key(key_text, st->key) < 0)
    return -ENOMEM;
  _cleanup_free_ char *parent = kgb_strdup_printf("%s/stages/%s", ctx->workdir, name);
  st->dir = parent ? strjoin_path(parent, st->key) : NULL;
  _cleanup_free_ char *manifest = st->dir ? strjoin_path(st->dir, "manifest.json") : NULL;
  _cleanup_free_ char *req = st->dir && required ? strjoin_path(st->dir, required) : NULL;
  if (!manifest || (required && !req))
    return -ENOMEM;
  if (!ctx->force && is_file(manifest) && (!req || is_file(req))) {
    _cleanup_free_ char *record = strjoin_path(st->dir, "state");
    if (!record)
      return -ENOMEM;
    int r = read_full_file(record, &st->record_text, NULL);
    if (r < 0 && r != -ENOENT)
      return kgb_error(ctx, r, "cannot read '%s': %s", record, strerror(-r));
    st->cached = true;
    if ((r = set_path(st, st->dir)) < 0)
      return r;
    *ret = TAKE_PTR(st);
    return 0;
  }
  int r = mkdir_p(parent, 0755);
  if (r < 0)
    return kgb_error(ctx, r, "cannot create '%s': %s", parent, strerror(-r));
  st->tmp = kgb_strdup_printf("%s/.%.16s.tmp-XXXXXX", parent, st->key);
  if (!st->tmp)
    return -ENOMEM;
  if (!mkdtemp(st->tmp)) {
    r = -errno;
    free(st->tmp);
    st->tmp = NULL;
    return kgb_error(ctx, r, "cannot create a directory in '%s': %s", parent, strerror(-r));
  }
  /* mkdtemp makes it private; stage outputs are not */
  if (chmod(st->tmp, 0755) < 0)
    return kgb_error(ctx, -errno, "cannot change the mode of '%s': %m", st->tmp);
  if ((r = set_path(st, st->tmp)) < 0)
    return r;
  *ret = TAKE_PTR(st);
  return 0;
}

void kgb_stage_set(struct kgb_stage *st, const char *name, const char *fmt, ...) {
  va_list ap;
  sbuf_addf(&st->record, "%s ", name);
  va_start(ap, fmt);
  sbuf_vaddf(&st->record, fmt, ap);
  va_end(ap);
  sbuf_addc(&st->record, '\n');
}

int kgb_record_get(const char *text, const char *name, char ***ret) {
  size_t nl = strlen(name);
  _cleanup_strv_free_ char **v = NULL;
  for (const char *line = text; line && *line;) {
    const char *end = strchrnul(line, '\n');
    if ((size_t)(end - line) > nl && strncmp(line, name, nl) == 0 && line[nl] == ' ') {
      char *value = strndup(line + nl + 1, (size_t)(end - line) - nl - 1);
      int r = value ? strv_push(&v, value) : -ENOMEM;
      if (r < 0)
        return r;
    }
    line = *end ? end + 1 : end;
  }
  *ret = TAKE_PTR(v);
  return 0;
}

int kgb_stage_get(struct kgb_stage *st, const char *name, char ***ret) {
  return kgb_record_get(st->cached ? st->record_text : sbuf_str(&st->record), name, ret);
}

char *kgb_stage_get1(struct kgb_stage *st, const char *name) {
  _cleanup_strv_free_ char **v = NULL;
  if (kgb_stage_get(st, name, &v) < 0 || !v)
    return NULL;
  return strdup(v[0]);
}

void kgb_manifest_begin(struct sbuf *sb, const char *stage, const char *key) {
  sbuf_adds(sb, "{\n  \"stage\": ");
  sbuf_add_json(sb, stage);
  kgb_manifest_string(sb, "key", key);
}

void kgb_manifest_string(struct sbuf *sb, const char *name, const char *value) {
  sbuf_addf(sb, ",\n  \"%s\": ", name);
  if (value)
    sbuf_add_json(sb, value);
  else
    sbuf_adds(sb, "null");
}

int kgb_stage_commit(struct kgb_stage *st, const struct sbuf *manifest) {
  struct kgb_ctx *ctx = st->ctx;
  if (!st->tmp)
    return kgb_error(ctx, -EINVAL, "stage '%s' is not open for writing", st->name);
  int r = st->record.err ? st->record.err : manifest->err ? manifest->err : 0;
  _cleanup_free_ char *mpath = strjoin_path(st->tmp, "manifest.json");
  _cleanup_free_ char *rpath = strjoin_path(st->tmp, "state");
  if (r >= 0 && (!mpath || !rpath))
    r = -ENOMEM;
  if (r >= 0 && st->record.len)
    r = write_file_atomic(rpath, st->record.buf, st->record.len, 0644);
  /* the manifest last: its presence says the stage is complete */
  if (r >= 0)
    r = write_file_atomic(mpath, sbuf_str(manifest), manifest->len, 0644);
  if (r < 0) {
    rm_rf(st->tmp);
    st->tmp = mfree(st->tmp);
    return kgb_error(ctx, r, "cannot write the manifest of stage '%s' in '%s': %s", st->name,
                     st->dir, strerror(-r));
  }
  _cleanup_free_ char *final_manifest = strjoin_path(st->dir, "manifest.json");
  if (!final_manifest)
    return -ENOMEM;
  if (is_dir(st->dir)) {
    if (!st->forced && is_file(final_manifest)) {
      /* a concurrent run committed the same key first: its result is as good, and the
       * directory others may be reading already stays */
      rm_rf(st->tmp);
    } else {
      /* --force over an existing result (or the rest of a broken one): replace it whole */
      rm_rf(st->dir);
    }
  }
  if (is_dir(st->tmp) && rename(st->tmp, st->dir) < 0) {
    int e = errno;
    rm_rf(st->tmp);
    st->tmp = mfree(st->tmp);
    /* the same race, lost between the check and the rename */
    if (!((e == EEXIST || e == ENOTEMPTY) && is_file(final_manifest)))
      return kgb_error(ctx, -e, "cannot rename the stage '%s' to '%s': %s", st->name, st->dir,
                       strerror(e));
  }
  st->tmp = mfree(st->tmp);
  free(st->record_text);
  st->record_text = sbuf_steal(&st->record);
  st->cached = false;
  return set_path(st, st->dir);
}

const char *kgb_stage_keep(struct kgb_stage *st) {
  free(st->path);
  st->path = TAKE_PTR(st->tmp);
  return st->path;
}

int kgb_stage_planned(struct kgb_ctx *ctx, const char *stage, const char *key, char **ret_key,
                      bool *ret_cached) {
  _cleanup_free_ char *manifest =
      kgb_strdup_printf("%s/stages/%s/%s/manifest.json", ctx->workdir, stage, key);
  if (!manifest || !(*ret_key = strdup(key)))
    return -ENOMEM;
  *ret_cached = !ctx->force && is_file(manifest);
  return 0;
}

int kgb_workdir_logs(struct kgb_ctx *ctx) {
  _cleanup_free_ char *d = kgb_strdup_printf("%s/logs", ctx->workdir);
  if (!d)
    return -ENOMEM;
  int r = mkdir_p(d, 0755);
  return r < 0 ? kgb_error(ctx, r, "cannot create '%s': %s", d, strerror(-r)) : 0;
}

/* ---- the sweep ---- */

/* What an interrupted writer leaves: a name with ".tmp-" or ".tmp." in it (starting with a
 * dot, for stage directories). */
static bool is_leftover(_unused_ int dir_fd, const char *name, void *dotted) {
  if (*(bool *)dotted && name[0] != '.')
    return false;
  return strstr(name, ".tmp-") || strstr(name, ".tmp.");
}

/* Removes the leftovers in dir. */
static int sweep_dir(const char *dir, bool dotted, unsigned *n) {
  _cleanup_strv_free_ char **names = NULL;
  int r = readdir_sorted(dir, 0, is_leftover, &dotted, &names);
  if (r == -ENOENT || r == -ENOTDIR)
    return 0;
  if (r < 0)
    return r;
  /* one that cannot be removed does not keep the others */
  for (size_t i = 0; names[i]; i++) {
    _cleanup_free_ char *path = strjoin_path(dir, names[i]);
    int k = path ? rm_rf(path) : -ENOMEM;
    if (k < 0 && r >= 0)
      r = k;
    else if (k >= 0)
      (*n)++;
  }
  return r;
}

/* sweep_dir on every subdirectory of dir */
static int sweep_subdirs(const char *dir, bool dotted, unsigned *n) {
  _cleanup_strv_free_ char **names = NULL;
  int r = readdir_sorted(dir, READDIR_NO_HIDDEN, NULL, NULL, &names);
  if (r == -ENOENT || r == -ENOTDIR)
    return 0;
  if (r < 0)
    return r;
  for (size_t i = 0; names[i]; i++) {
    _cleanup_free_ char *sub = strjoin_path(dir, names[i]);
    int k = sub ? sweep_dir(sub, dotted, n) : -ENOMEM;
    if (k < 0 && r >= 0)
      r = k;
  }
  return r;
}

int kgb_workdir_sweep(struct kgb_ctx *ctx, unsigned *ret_removed) {
  unsigned n = 0;
  _cleanup_free_ char *stages = strjoin_path(ctx->workdir, "stages");
  _cleanup_free_ char *sources = strjoin_path(ctx->workdir, "sources");
  _cleanup_free_ char *builds = strjoin_path(ctx->workdir, "builds");
  _cleanup_free_ char *obj = strjoin_path(ctx->workdir, "obj");
  if (!stages || !sources || !builds || !obj)
    return -ENOMEM;
  /* stage outputs in the making are dot names; a build directory being copied from a
   * sibling is obj/<source>-<arch>/<profile>.tmp-seed */
  int r = sweep_subdirs(stages, true, &n);
  int k = sweep_subdirs(obj, false, &n);
  if (k < 0 && r >= 0)
    r = k;
  k = sweep_dir(sources, false, &n);
  if (k < 0 && r >= 0)
    r = k;
  k = sweep_dir(builds, false, &n);
  if (k < 0 && r >= 0)
    r = k;
  *ret_removed = n;
  if (r < 0)
    return kgb_error(ctx, r, "cleaning up after an interrupted run in '%s': %s", ctx->workdir,
                     strerror(-r));
  return 0;
}
