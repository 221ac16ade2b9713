/* Which finished sibling O= directory, if any, a profile's first kernel build starts from.
 * See kernel-seed.h. */
#define _GNU_SOURCE
#include "kernel-seed.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../shared/hashmap.h"
#include "../shared/sbuf.h"
#include "../shared/util.h"
#include "fragment.h"

int kgb_config_diff(struct kgb_ctx *ctx, const char *old_path, const char *new_path,
                    kgb_config_diff_fn fn, void *userdata) {
  _cleanup_(kgb_fragment_freep) struct kgb_fragment *a = NULL, *b = NULL;
  int r;
  if ((r = kgb_fragment_load(ctx, old_path, old_path, true, &a)) < 0 ||
      (r = kgb_fragment_load(ctx, new_path, new_path, true, &b)) < 0)
    return r;
  for (size_t i = 0; i < b->n_entries; i++) {
    const struct kgb_fentry *e = &b->entries[i], *o = kgb_fragment_find(a, e->symbol);
    if (kgb_fvalue_equal(o ? o->value : NULL, o && o->is_string, e->value, e->is_string))
      continue;
    fn(userdata, e->symbol, o ? o->value : NULL, o && o->is_string, e->value, e->is_string);
  }
  for (size_t i = 0; i < a->n_entries; i++) {
    const struct kgb_fentry *o = &a->entries[i];
    if (!kgb_fragment_find(b, o->symbol) && !kgb_fvalue_equal(o->value, o->is_string, NULL, false))
      fn(userdata, o->symbol, o->value, o->is_string, NULL, false);
  }
  return 0;
}

/* The changed symbols of one sibling and what its objects' records say about them. */
struct scan {
  char **symbols;         /* changed symbols; the map's keys point into them */
  struct hashmap changed; /* symbol -> its index + 1 */
  size_t *objects_using;  /* per symbol: objects that use it */
  size_t *last_object;    /* per symbol: the object that counted it last (once per object) */
  size_t objects, affected;
};

static void scan_release(struct scan *s) {
  hashmap_release(&s->changed);
  strv_free(s->symbols);
  free(s->objects_using);
  free(s->last_object);
}

static void add_changed(void *ud, const char *symbol, const char *ov, bool os, const char *nv,
                        bool ns) {
  (void)ov, (void)os, (void)nv, (void)ns;
  struct scan *s = ud;
  strv_extend(&s->symbols, symbol); /* an allocation failure only makes the estimate low */
}

/* One object's record: `$(wildcard include/config/FOO_BAR)` for every symbol it uses. */
static void scan_record(struct scan *s, const char *text) {
  static const char mark[] = "include/config/";
  bool hit = false;
  s->objects++;
  for (const char *p = text; (p = strstr(p, mark));) {
    p += sizeof(mark) - 1;
    size_t n = strcspn(p, ") \t\n\\");
    char sym[128];
    if (n > 0 && n < sizeof(sym)) {
      memcpy(sym, p, n);
      sym[n] = '\0';
      uintptr_t idx = (uintptr_t)hashmap_get(&s->changed, sym);
      if (idx) {
        hit = true;
        if (s->last_object[idx - 1] != s->objects) {
          s->last_object[idx - 1] = s->objects;
          s->objects_using[idx - 1]++;
        }
      }
    }
    p += n;
  }
  if (hit)
    s->affected++;
}

/* Calls fn with the path of every regular file below dir whose name starts with a dot
 * (kbuild's records: .<target>.cmd, .<target>.d); symbolic links are not followed (`source`
 * points at the kernel tree). */
typedef int (*record_fn)(void *ud, const char *file, const char *name);
static int walk(const char *dir, record_fn fn, void *ud) {
  DIR *d = opendir(dir);
  if (!d)
    return -errno;
  int r = 0;
  struct dirent *de;
  while (r >= 0 && (de = readdir(d))) {
    const char *n = de->d_name;
    if (STREQ(n, ".") || STREQ(n, ".."))
      continue;
    unsigned char type = de->d_type;
    struct stat st;
    if (type == DT_UNKNOWN && fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) == 0)
      type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
    if (type != DT_DIR && (type != DT_REG || n[0] != '.'))
      continue;
    _cleanup_free_ char *sub = strjoin_path(dir, n);
    if (!sub)
      r = -ENOMEM;
    else
      r = type == DT_DIR ? walk(sub, fn, ud) : fn(ud, sub, n);
  }
  closedir(d);
  return r;
}

static int scan_one(void *ud, const char *file, const char *name) {
  struct scan *s = ud;
  if (!endswith(name, ".o.cmd"))
    return 0;
  _cleanup_free_ char *text = NULL;
  int r = read_full_file(file, &text, NULL);
  if (r >= 0)
    scan_record(s, text);
  return r;
}

static int plan_one(struct kgb_ctx *ctx, const char *dir, const char *old_config,
                    const char *new_config, struct kgb_seed_plan *ret) {
  struct scan s = {.changed = HASHMAP_INIT};
  int r = kgb_config_diff(ctx, old_config, new_config, add_changed, &s);
  size_t n = strv_length(s.symbols);
  if (r >= 0) {
    s.objects_using = calloc(n + 1, sizeof(size_t));
    s.last_object = calloc(n + 1, sizeof(size_t));
    if (!s.objects_using || !s.last_object)
      r = -ENOMEM;
  }
  for (size_t i = 0; r >= 0 && i < n; i++)
    r = hashmap_put(&s.changed, s.symbols[i], (void *)(uintptr_t)(i + 1));
  if (r >= 0)
    r = walk(dir, scan_one, &s);
  if (r >= 0) {
    size_t top = SIZE_MAX;
    for (size_t i = 0; i < n; i++)
      if (s.objects_using[i] && (top == SIZE_MAX || s.objects_using[i] > s.objects_using[top]))
        top = i;
    *ret = (struct kgb_seed_plan){.sibling = strdup(dir),
                                  .objects = s.objects,
                                  .affected = s.affected,
                                  .n_changed = n,
                                  .top_symbol = top != SIZE_MAX ? strdup(s.symbols[top]) : NULL,
                                  .top_objects = top != SIZE_MAX ? s.objects_using[top] : 0};
    if (!ret->sibling || (top != SIZE_MAX && !ret->top_symbol)) {
      kgb_seed_plan_release(ret);
      r = -ENOMEM;
    } else {
      ret->name = strrchr(ret->sibling, '/') ? strrchr(ret->sibling, '/') + 1 : ret->sibling;
    }
  }
  scan_release(&s);
  return r;
}

int kgb_seed_plan(struct kgb_ctx *ctx, const char *parent, const char *self, const char *new_config,
                  struct kgb_seed_plan *ret) {
  *ret = (struct kgb_seed_plan){0};
  DIR *d = opendir(parent);
  if (!d)
    return errno == ENOENT ? 0 : -errno;
  int r = 0;
  struct dirent *de;
  while (r >= 0 && (de = readdir(d))) {
    const char *n = de->d_name;
    /* the config stage's own tree is "kconfig"; a copy in progress has ".tmp-" in its name */
    if (n[0] == '.' || STREQ(n, self) || STREQ(n, "kconfig") || strstr(n, ".tmp-"))
      continue;
    _cleanup_free_ char *dir = strjoin_path(parent, n);
    _cleanup_free_ char *cfg = dir ? strjoin_path(dir, ".kgb-config") : NULL;
    _cleanup_free_ char *busy = dir ? strjoin_path(dir, ".kgb-building") : NULL;
    if (!cfg || !busy) {
      r = -ENOMEM;
      break;
    }
    if (!is_file(cfg) || is_file(busy))
      continue;
    struct kgb_seed_plan c;
    if (plan_one(ctx, dir, cfg, new_config, &c) < 0) {
      kgb_error_clear(ctx); /* an unreadable sibling is no candidate, not a failed build */
      continue;
    }
    /* the smaller share of objects to recompile wins */
    if (!ret->sibling || c.affected * ret->objects < ret->affected * c.objects) {
      kgb_seed_plan_release(ret);
      *ret = c;
    } else {
      kgb_seed_plan_release(&c);
    }
  }
  closedir(d);
  if (r < 0) {
    kgb_seed_plan_release(ret);
    return r;
  }
  ret->seed = ret->sibling && ret->objects > 0 &&
              ret->affected * 100 <= ret->objects * KGB_SEED_MAX_PERCENT;
  return 0;
}

/* Replaces from with to in text wherever from is a whole path or a path's leading part. */
static char *replace_path(const char *text, const char *from, const char *to, size_t *n_done) {
  struct sbuf sb = SBUF_INIT;
  size_t fl = strlen(from);
  const char *p = text;
  *n_done = 0;
  for (const char *q; (q = strstr(p, from)); p = q + fl) {
    sbuf_add(&sb, p, (size_t)(q - p));
    if (strchr("/ \t\n:)\\,'\"", q[fl]) || !q[fl]) {
      sbuf_adds(&sb, to);
      (*n_done)++;
    } else {
      sbuf_add(&sb, q, fl);
    }
  }
  sbuf_adds(&sb, p);
  return sbuf_steal(&sb);
}

struct relocation {
  const char *from, *to;
  size_t files;
};

static int relocate_one(void *ud, const char *file, const char *name) {
  struct relocation *rl = ud;
  if (!endswith(name, ".cmd") && !endswith(name, ".d"))
    return 0;
  _cleanup_free_ char *text = NULL;
  struct stat st;
  if (lstat(file, &st) < 0 || read_full_file(file, &text, NULL) < 0)
    return 0;
  size_t n;
  _cleanup_free_ char *moved = replace_path(text, rl->from, rl->to, &n);
  if (!moved)
    return -ENOMEM;
  if (n == 0)
    return 0;
  int r = write_file_atomic(file, moved, strlen(moved), st.st_mode & 07777);
  if (r < 0)
    return r;
  /* make compares times: the record keeps its own */
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  utimensat(AT_FDCWD, file, times, AT_SYMLINK_NOFOLLOW);
  rl->files++;
  return 0;
}

int kgb_seed_relocate(const char *dir, const char *from, const char *to, size_t *ret_files) {
  struct relocation rl = {from, to, 0};
  _cleanup_free_ char *tools = strjoin_path(dir, "tools");
  if (!tools)
    return -ENOMEM;
  int r = is_dir(tools) ? walk(tools, relocate_one, &rl) : 0;
  if (ret_files)
    *ret_files = rl.files;
  return r;
}

void kgb_seed_plan_release(struct kgb_seed_plan *plan) {
  free(plan->sibling);
  free(plan->top_symbol);
  *plan = (struct kgb_seed_plan){0};
}
