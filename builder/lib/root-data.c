/* The data every root of a distribution gets (<datadir>/rootfs/<distro>/): laid in, keyed,
 * cleaned up. */
#define _GNU_SOURCE
#include "root-data.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../shared/sbuf.h"
#include "../shared/util.h"
#include "chroot.h"
#include "root-write.h"
#include "source.h"

static void rules_free(struct kgb_root_cleanup_rule *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(v[i].path);
    free(v[i].pattern);
  }
  free(v);
}

struct kgb_root_data *kgb_root_data_free(struct kgb_root_data *d) {
  if (!d)
    return NULL;
  free(d->dir);
  free(d->files);
  free(d->while_building);
  rules_free(d->cleanup, d->n_cleanup);
  free(d);
  return NULL;
}

static bool has_glob(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] == '*' || s[i] == '?' || s[i] == '[')
      return true;
  return false;
}

/* An absolute path in the root, no "." or ".." component, no empty one. */
static bool root_path_ok(const char *p) {
  if (p[0] != '/' || !p[1])
    return false;
  for (const char *c = p + 1; *c;) {
    size_t n = strcspn(c, "/");
    if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
      return false;
    c += n;
    if (*c == '/')
      c++;
    if (!*c && c[-1] == '/')
      return false;
  }
  return true;
}

int kgb_root_cleanup_parse(struct kgb_ctx *ctx, const char *shown, const char *text,
                           struct kgb_root_cleanup_rule **ret, size_t *ret_n) {
  _cleanup_free_ char *copy = strdup(text);
  if (!copy)
    return -ENOMEM;
  struct kgb_root_cleanup_rule *v = NULL;
  size_t n = 0;
  unsigned lineno = 0;
  int r = 0;
  for (char *line = copy, *next; line && r >= 0; line = next) {
    next = strchr(line, '\n');
    if (next)
      *next++ = '\0';
    lineno++;
    char *hash = strchr(line, '#');
    if (hash)
      *hash = '\0';
    char *s = strstrip(line);
    if (!*s)
      continue;
    size_t vl = strcspn(s, " \t");
    char *arg = s + vl;
    arg += strspn(arg, " \t");
    if (!s[vl] || !*arg || arg[strcspn(arg, " \t")]) {
      r = kgb_error(ctx, -EINVAL,
                    "%s:%u: '%s': write 'remove PATH', 'remove DIR/PATTERN' or "
                    "'empty PATH', one per line",
                    shown, lineno, s);
      break;
    }
    s[vl] = '\0';
    bool remove = STREQ(s, "remove");
    if (!remove && !STREQ(s, "empty")) {
      r = kgb_error(ctx, -EINVAL, "%s:%u: unknown word '%s': use remove or empty", shown, lineno,
                    s);
      break;
    }
    if (!root_path_ok(arg)) {
      r = kgb_error(ctx, -EINVAL,
                    "%s:%u: '%s' is not an absolute path in the root (no '.', '..' or empty "
                    "component)",
                    shown, lineno, arg);
      break;
    }
    const char *last = strrchr(arg, '/') + 1;
    if (has_glob(arg, (size_t)(last - arg)) || (!remove && has_glob(last, strlen(last)))) {
      r = kgb_error(ctx, -EINVAL,
                    "%s:%u: '%s': a pattern may only be the last component of a 'remove' line",
                    shown, lineno, arg);
      break;
    }
    struct kgb_root_cleanup_rule *nv = realloc(v, (n + 1) * sizeof(*v));
    if (!nv) {
      r = -ENOMEM;
      break;
    }
    v = nv;
    struct kgb_root_cleanup_rule *e = &v[n++];
    *e =
        (struct kgb_root_cleanup_rule){.verb = !remove                        ? KGB_CLEANUP_EMPTY
                                               : has_glob(last, strlen(last)) ? KGB_CLEANUP_MATCH
                                                                              : KGB_CLEANUP_REMOVE};
    if (e->verb == KGB_CLEANUP_MATCH) {
      e->path = last - 1 == arg ? strdup("/") : strndup(arg, (size_t)(last - 1 - arg));
      e->pattern = strdup(last);
      if (!e->path || !e->pattern)
        r = -ENOMEM;
    } else if (!(e->path = strdup(arg))) {
      r = -ENOMEM;
    }
  }
  if (r < 0) {
    rules_free(v, n);
    return r;
  }
  *ret = v;
  *ret_n = n;
  return 0;
}

/* <dir>/<name> when it is a directory, else NULL */
static int optional_dir(const char *dir, const char *name, char **ret) {
  char *p = strjoin_path(dir, name);
  if (!p)
    return -ENOMEM;
  if (!is_dir(p)) {
    free(p);
    p = NULL;
  }
  *ret = p;
  return 0;
}

int kgb_root_data_load(struct kgb_ctx *ctx, const char *distro, struct kgb_root_data **ret) {
  _cleanup_(kgb_root_data_freep) struct kgb_root_data *d = calloc(1, sizeof(*d));
  if (!d)
    return -ENOMEM;
  d->dir = kgb_strdup_printf("%s/rootfs/%s", ctx->datadir, distro);
  if (!d->dir)
    return -ENOMEM;
  if (!is_dir(d->dir))
    return kgb_error(ctx, -ENOENT,
                     "no guest data for the distribution '%s': '%s' is missing (add it with "
                     "files/, while-building/ and cleanup, see rootfs/README.md)",
                     distro, d->dir);
  int r;
  if ((r = optional_dir(d->dir, "files", &d->files)) < 0 ||
      (r = optional_dir(d->dir, "while-building", &d->while_building)) < 0)
    return r;
  _cleanup_free_ char *path = strjoin_path(d->dir, "cleanup"), *text = NULL;
  if (!path)
    return -ENOMEM;
  r = read_full_file(path, &text, NULL);
  if (r == -ENOENT) {
    *ret = TAKE_PTR(d);
    return 0;
  }
  if (r < 0)
    return kgb_error(ctx, r, "cannot read '%s': %s", path,
                     file_error_reason(path, r, READ_TEXT_MAX));
  if ((r = kgb_root_cleanup_parse(ctx, path, text, &d->cleanup, &d->n_cleanup)) < 0)
    return r;
  *ret = TAKE_PTR(d);
  return 0;
}

/* Calls fn for every file and link below dir, in sorted order, with its path in the root. */
typedef int (*walk_fn)(struct kgb_ctx *ctx, const char *host, const char *path,
                       const struct stat *st, void *userdata);

static int walk(struct kgb_ctx *ctx, const char *dir, const char *prefix, walk_fn fn,
                void *userdata) {
  _cleanup_strv_free_ char **names = NULL;
  int r = readdir_sorted(dir, 0, NULL, NULL, &names);
  if (r < 0)
    return r == -ENOMEM ? r : kgb_error(ctx, r, "cannot read '%s': %s", dir, strerror(-r));
  for (size_t i = 0; r >= 0 && names[i]; i++) {
    _cleanup_free_ char *host = strjoin_path(dir, names[i]);
    _cleanup_free_ char *path = kgb_strdup_printf("%s/%s", prefix, names[i]);
    struct stat st;
    if (!host || !path)
      return -ENOMEM;
    if (lstat(host, &st) < 0)
      return kgb_error(ctx, -errno, "cannot read '%s': %m", host);
    if (S_ISDIR(st.st_mode))
      r = walk(ctx, host, path, fn, userdata);
    else if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode))
      r = fn(ctx, host, path, &st, userdata);
    else
      r = kgb_error(ctx, -EINVAL, "'%s' is neither a file, a directory nor a link", host);
  }
  return r;
}

static mode_t data_mode(const struct stat *st) { return st->st_mode & 0111 ? 0755 : 0644; }

static int describe_one(struct kgb_ctx *ctx, const char *host, const char *path,
                        const struct stat *st, void *userdata) {
  struct sbuf *sb = userdata;
  if (S_ISLNK(st->st_mode)) {
    char target[4096];
    ssize_t n = readlink(host, target, sizeof(target) - 1);
    if (n < 0)
      return kgb_error(ctx, -errno, "cannot read the link '%s': %m", host);
    return sbuf_addf(sb, " %s link:%.*s\n", path, (int)n, target);
  }
  _cleanup_free_ char *hex = NULL;
  int r = kgb_sha256_file(ctx, host, &hex);
  return r < 0 ? r : sbuf_addf(sb, " %s %o sha256:%s\n", path, data_mode(st), hex);
}

int kgb_root_data_describe(struct kgb_ctx *ctx, const struct kgb_root_data *d, unsigned parts,
                           struct sbuf *sb) {
  int r = 0;
  if ((parts & KGB_ROOT_DATA_FILES) && d->files && (r = sbuf_adds(sb, "guest files\n")) >= 0)
    r = walk(ctx, d->files, "", describe_one, sb);
  if (r >= 0 && (parts & KGB_ROOT_DATA_WHILE_BUILDING) && d->while_building &&
      (r = sbuf_adds(sb, "while building\n")) >= 0)
    r = walk(ctx, d->while_building, "", describe_one, sb);
  for (size_t i = 0; r >= 0 && (parts & KGB_ROOT_DATA_CLEANUP) && i < d->n_cleanup; i++)
    r = sbuf_addf(sb, "cleanup %d %s %s\n", (int)d->cleanup[i].verb, d->cleanup[i].path,
                  d->cleanup[i].pattern ? d->cleanup[i].pattern : "");
  return r < 0 ? r : sb->err ? -ENOMEM : 0;
}

static int lay_one(struct kgb_ctx *ctx, const char *host, const char *path, const struct stat *st,
                   void *userdata) {
  const char *root = userdata;
  return kgb_root_copy(ctx, root, host, path, S_ISREG(st->st_mode) ? data_mode(st) : 0);
}

int kgb_root_data_lay(struct kgb_ctx *ctx, const struct kgb_root_data *d,
                      enum kgb_root_data_part part, const char *root) {
  const char *dir = part == KGB_ROOT_DATA_FILES            ? d->files
                    : part == KGB_ROOT_DATA_WHILE_BUILDING ? d->while_building
                                                           : NULL;
  return dir ? walk(ctx, dir, "", lay_one, (void *)root) : 0;
}

static int remove_one(struct kgb_ctx *ctx, _unused_ const char *host, const char *path,
                      _unused_ const struct stat *st, void *userdata) {
  return kgb_root_remove(ctx, userdata, path);
}

int kgb_root_data_cleanup(struct kgb_ctx *ctx, const struct kgb_root_data *d, const char *root) {
  int r = d->while_building ? walk(ctx, d->while_building, "", remove_one, (void *)root) : 0;
  for (size_t i = 0; r >= 0 && i < d->n_cleanup; i++) {
    const struct kgb_root_cleanup_rule *c = &d->cleanup[i];
    if (c->verb == KGB_CLEANUP_REMOVE) {
      r = kgb_root_remove(ctx, root, c->path);
    } else if (c->verb == KGB_CLEANUP_MATCH) {
      r = kgb_root_remove_matching(ctx, root, c->path, c->pattern);
    } else {
      /* e.g. systemd makes a machine ID on first boot when the file is empty */
      _cleanup_free_ char *host = NULL;
      struct stat st;
      if (kgb_root_resolve(root, c->path, false, &host) >= 0 && lstat(host, &st) == 0 &&
          S_ISREG(st.st_mode))
        r = kgb_root_write(ctx, root, c->path, "", 0444);
    }
  }
  return r;
}
