/* Module checks of a root file system: libkmod reads each module's .modinfo (compressed or
 * not), depmod -n -e says what modules.dep should be and which symbols nobody exports. */
#define _GNU_SOURCE
#include "modcheck.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libkmod.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../shared/sbuf.h"
#include "../shared/string-table.h"
#include "../shared/util.h"
#include "chroot.h"
#include "exec.h"

static const char *const kgb_modcheck_kind_table[_KGB_MODCHECK_KIND_MAX] = {
    [KGB_MODCHECK_VERMAGIC] = "vermagic",     [KGB_MODCHECK_DEPENDENCY] = "dependency",
    [KGB_MODCHECK_SYMBOL] = "symbol",         [KGB_MODCHECK_MODULES_DEP] = "modules.dep",
    [KGB_MODCHECK_RELEASE] = "release",       [KGB_MODCHECK_LIBRARY] = "library",
    [KGB_MODCHECK_UNREADABLE] = "unreadable",
};

DEFINE_STRING_TABLE_TO_STRING(kgb_modcheck_kind, enum kgb_modcheck_kind);

struct kgb_modcheck *kgb_modcheck_free(struct kgb_modcheck *c) {
  if (!c)
    return NULL;
  for (size_t i = 0; i < c->n_problems; i++) {
    free(c->problems[i].what);
    free(c->problems[i].detail);
  }
  free(c->problems);
  free(c);
  return NULL;
}

static int add_problem(struct kgb_modcheck *c, enum kgb_modcheck_kind kind, const char *what,
                       const char *fmt, ...) _printf_(4, 5);
static int add_problem(struct kgb_modcheck *c, enum kgb_modcheck_kind kind, const char *what,
                       const char *fmt, ...) {
  struct kgb_modcheck_problem *grown =
      realloc(c->problems, (c->n_problems + 1) * sizeof(*c->problems));
  if (!grown)
    return -ENOMEM;
  c->problems = grown;
  va_list ap;
  va_start(ap, fmt);
  char *detail = NULL;
  int n = vasprintf(&detail, fmt, ap);
  va_end(ap);
  char *w = strdup(what);
  if (n < 0 || !w) {
    free(w);
    if (n >= 0)
      free(detail);
    return -ENOMEM;
  }
  c->problems[c->n_problems++] = (struct kgb_modcheck_problem){kind, w, detail};
  return 0;
}

static bool is_module_name(const char *name) {
  static const char *const ext[] = {".ko", ".ko.xz", ".ko.zst", ".ko.gz"};
  for (size_t i = 0; i < ELEMENTSOF(ext); i++)
    if (endswith(name, ext[i]))
      return true;
  return false;
}

/* "snd-hda_x.ko.zst" -> "snd_hda_x", as the kernel names modules */
static char *module_name_of(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  char *n = strndup(base, strcspn(base, "."));
  for (char *c = n; c && *c; c++)
    if (*c == '-')
      *c = '_';
  return n;
}

/* Module files below dir, relative to top; links (build/, source/) are never followed. */
static int walk_modules(const char *top, const char *rel, char ***paths) {
  _cleanup_free_ char *dir = *rel ? kgb_strdup_printf("%s/%s", top, rel) : strdup(top);
  if (!dir)
    return -ENOMEM;
  DIR *d = opendir(dir);
  if (!d)
    return -errno;
  int r = 0;
  struct dirent *de;
  while (r >= 0 && (de = readdir(d))) {
    if (STREQ(de->d_name, ".") || STREQ(de->d_name, ".."))
      continue;
    _cleanup_free_ char *sub =
        *rel ? kgb_strdup_printf("%s/%s", rel, de->d_name) : strdup(de->d_name);
    _cleanup_free_ char *full = sub ? kgb_strdup_printf("%s/%s", top, sub) : NULL;
    struct stat st;
    if (!full)
      r = -ENOMEM;
    else if (lstat(full, &st) < 0)
      r = -errno;
    else if (S_ISDIR(st.st_mode))
      r = walk_modules(top, sub, paths);
    else if (S_ISREG(st.st_mode) && is_module_name(de->d_name))
      r = strv_push(paths, TAKE_PTR(sub));
  }
  closedir(d);
  return r;
}

static int list_modules(const char *moddir, char ***ret) {
  _cleanup_strv_free_ char **paths = NULL;
  int r = walk_modules(moddir, "", &paths);
  if (r < 0)
    return r;
  strv_sort(paths);
  *ret = TAKE_PTR(paths);
  return 0;
}

struct modinfo {
  char *rel;  /* path relative to the module directory */
  char *name; /* kernel name */
  char *vermagic, *version, *depends;
};

static void modinfo_release(struct modinfo *m) {
  free(m->rel);
  free(m->name);
  free(m->vermagic);
  free(m->version);
  free(m->depends);
}

static int read_modinfo(struct kmod_ctx *kctx, const char *path, struct modinfo *m,
                        char **ret_problem) {
  struct kmod_module *mod = NULL;
  int r = kmod_module_new_from_path(kctx, path, &mod);
  if (r < 0) {
    *ret_problem = kgb_strdup_printf("libkmod cannot open it: %s", strerror(-r));
    return 0;
  }
  struct kmod_list *info = NULL;
  r = kmod_module_get_info(mod, &info);
  if (r < 0) {
    kmod_module_unref(mod);
    *ret_problem = kgb_strdup_printf("libkmod cannot read its .modinfo: %s", strerror(-r));
    return 0;
  }
  struct kmod_list *l;
  kmod_list_foreach(l, info) {
    const char *k = kmod_module_info_get_key(l), *v = kmod_module_info_get_value(l);
    char **dst = STREQ(k, "vermagic")  ? &m->vermagic
                 : STREQ(k, "version") ? &m->version
                 : STREQ(k, "depends") ? &m->depends
                 : STREQ(k, "name")    ? &m->name
                                       : NULL;
    if (dst && !*dst && !(*dst = strdup(v ? v : ""))) {
      r = -ENOMEM;
      break;
    }
  }
  kmod_module_info_free_list(info);
  kmod_module_unref(mod);
  if (r < 0)
    return r;
  if (!m->name && !(m->name = module_name_of(path)))
    return -ENOMEM;
  return 0;
}

/* Names in modules.builtin ("kernel/drivers/x/y.ko" lines) count as present. */
static int read_builtin(const char *moddir, char ***ret) {
  _cleanup_free_ char *p = strjoin_path(moddir, "modules.builtin"), *text = NULL;
  if (!p)
    return -ENOMEM;
  if (read_full_file(p, &text, NULL) < 0)
    return 0;
  for (char *line = text, *nl; line && *line; line = nl) {
    nl = strchr(line, '\n');
    if (nl)
      *nl++ = '\0';
    if (*line && strv_push(ret, module_name_of(line)) < 0)
      return -ENOMEM;
  }
  return 0;
}

struct depmod_out {
  struct sbuf dep; /* the modules.dep part of depmod -n */
  bool in_dep;
  char **unknown; /* "path\tsymbol" */
  int err;
};

static void on_depmod_line(void *ud, const char *line) {
  struct depmod_out *d = ud;
  static const char needs[] = " needs unknown symbol ";
  if (startswith(line, "depmod: ")) {
    const char *w = strstr(line, "WARNING: ");
    const char *n = strstr(line, needs);
    if (w && n) {
      char *entry = kgb_strdup_printf("%.*s\t%s", (int)(n - (w + 9)), w + 9, n + strlen(needs));
      if (!entry || strv_push(&d->unknown, entry) < 0)
        d->err = -ENOMEM;
    }
    return;
  }
  /* modules.dep comes first and has no comment lines; the next file starts with "# " */
  if (startswith(line, "# "))
    d->in_dep = false;
  if (d->in_dep && (sbuf_adds(&d->dep, line) < 0 || sbuf_addc(&d->dep, '\n') < 0))
    d->err = -ENOMEM;
}

static int check_depmod(struct kgb_ctx *ctx, const char *root, const char *moddir,
                        const struct kgb_modcheck_opts *o, struct kgb_modcheck *c) {
  _cleanup_free_ char *depmod = find_program("depmod");
  if (!depmod) {
    _cleanup_free_ char *sbin = strdup("/usr/sbin/depmod");
    if (sbin && is_file(sbin))
      depmod = TAKE_PTR(sbin);
  }
  if (!depmod)
    return kgb_error(ctx, -ENOENT, "depmod is not installed: apt-get install kmod");
  char *argv[10] = {depmod, "-n", "-b", (char *)root};
  size_t n = 4;
  if (o->system_map) {
    argv[n++] = "-e";
    argv[n++] = "-F";
    argv[n++] = (char *)o->system_map;
  }
  argv[n++] = (char *)o->release;
  struct depmod_out d = {.dep = SBUF_INIT, .in_dep = true};
  struct kgb_exec_opts eo = {.log_path = o->log_path, .line_fn = on_depmod_line, .userdata = &d};
  int r = kgb_exec(ctx, argv, &eo);
  if (r == 0 && d.err < 0)
    r = d.err;
  if (r > 0)
    r = kgb_error(ctx, -EIO, "depmod -n -b '%s' %s failed (exit %d)%s%s", root, o->release, r,
                  o->log_path ? "; log: " : "", o->log_path ? o->log_path : "");
  for (size_t i = 0; r == 0 && d.unknown && d.unknown[i]; i++) {
    char *tab = strchr(d.unknown[i], '\t');
    *tab = '\0';
    const char *path = d.unknown[i];
    /* depmod names it below <root>/lib/modules/<release>/, unresolved */
    _cleanup_free_ char *marker = kgb_strdup_printf("/lib/modules/%s/", o->release);
    const char *at = marker ? strstr(path, marker) : NULL;
    const char *rel = at ? at + strlen(marker) : path;
    _cleanup_free_ char *shown = kgb_strdup_printf("lib/modules/%s/%s", o->release, rel);
    r = shown ? add_problem(c, KGB_MODCHECK_SYMBOL, shown,
                            "needs symbol '%s', which neither the kernel nor a module exports",
                            tab + 1)
              : -ENOMEM;
  }
  if (r == 0) {
    _cleanup_free_ char *p = strjoin_path(moddir, "modules.dep"), *have = NULL;
    _cleanup_free_ char *shown = kgb_strdup_printf("lib/modules/%s/modules.dep", o->release);
    if (!p || !shown)
      r = -ENOMEM;
    else if (read_full_file(p, &have, NULL) < 0)
      r = add_problem(c, KGB_MODCHECK_MODULES_DEP, shown, "missing: run depmod %s in the root",
                      o->release);
    else if (!STREQ(have, sbuf_str(&d.dep)))
      r = add_problem(c, KGB_MODCHECK_MODULES_DEP, shown,
                      "stale: depmod makes a different one of the modules now in the tree (a "
                      "module was added or removed after depmod ran)");
  }
  sbuf_release(&d.dep);
  strv_free(d.unknown);
  return r;
}

static bool not_release(_unused_ int dir_fd, const char *name, void *release) {
  return !STREQ(name, (const char *)release);
}

static int check_other_releases(const char *root, const char *release, struct kgb_modcheck *c) {
  _cleanup_free_ char *dir = NULL;
  int r = kgb_root_resolve(root, "/lib/modules", true, &dir);
  if (r < 0)
    return r;
  _cleanup_strv_free_ char **others = NULL;
  r = readdir_sorted(dir, READDIR_NO_HIDDEN, not_release, (void *)release, &others);
  if (r < 0)
    return r == -ENOMEM ? r : 0; /* no /lib/modules: no other release */
  for (size_t i = 0; r >= 0 && others[i]; i++) {
    _cleanup_free_ char *shown = kgb_strdup_printf("lib/modules/%s", others[i]);
    r = shown ? add_problem(c, KGB_MODCHECK_RELEASE, shown,
                            "modules for release '%s', not '%s' (built for another kernel, such as "
                            "the build host's): remove them",
                            others[i], release)
              : -ENOMEM;
  }
  return r;
}

/* The versions of LIB found as LIB.<version> in the root's library directories. */
static int find_library_versions(const char *root, const char *lib, char ***ret) {
  static const char *const dirs[] = {"/usr/lib/x86_64-linux-gnu", "/usr/lib", "/usr/lib64",
                                     "/usr/local/lib", "/lib/x86_64-linux-gnu"};
  _cleanup_strv_free_ char **found = NULL, **seen = NULL;
  size_t ll = strlen(lib);
  for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
    _cleanup_free_ char *dir = NULL;
    int r = kgb_root_resolve(root, dirs[i], true, &dir);
    if (r < 0)
      return r;
    if (strv_contains(seen, dir))
      continue; /* /lib is /usr/lib in a merged-/usr root */
    if ((r = strv_extend(&seen, dir)) < 0)
      return r;
    DIR *d = opendir(dir);
    if (!d)
      continue;
    struct dirent *de;
    struct stat st;
    /* the file itself carries the full version; its soname links (LIB.1) do not */
    while ((de = readdir(d)))
      if (strncmp(de->d_name, lib, ll) == 0 && de->d_name[ll] == '.' && de->d_name[ll + 1] &&
          fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
          !strv_contains(found, de->d_name + ll + 1) &&
          strv_extend(&found, de->d_name + ll + 1) < 0)
        r = -ENOMEM;
    closedir(d);
    if (r < 0)
      return r;
  }
  strv_sort(found);
  *ret = TAKE_PTR(found);
  return 0;
}

static int check_libraries(const char *root, const struct kgb_modcheck_opts *o,
                           const struct modinfo *mods, size_t n, struct kgb_modcheck *c) {
  for (size_t i = 0; o->library_versions && o->library_versions[i]; i++) {
    const char *spec = o->library_versions[i];
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || !eq[1])
      return add_problem(c, KGB_MODCHECK_LIBRARY, spec,
                         "not LIBRARY=MODULE (e.g. libnvidia-ml.so=nvidia)");
    _cleanup_free_ char *lib = strndup(spec, (size_t)(eq - spec));
    if (!lib)
      return -ENOMEM;
    const char *modname = eq + 1;
    const struct modinfo *m = NULL;
    for (size_t j = 0; j < n && !m; j++)
      if (mods[j].name && STREQ(mods[j].name, modname))
        m = &mods[j];
    _cleanup_strv_free_ char **versions = NULL;
    int r = find_library_versions(root, lib, &versions);
    if (r < 0)
      return r;
    if (!versions)
      continue; /* nothing to compare: the driver's user-space part is not installed */
    if (!m)
      r = add_problem(c, KGB_MODCHECK_LIBRARY, lib, "module '%s' is not in lib/modules/%s", modname,
                      o->release);
    else if (!m->version)
      r = add_problem(c, KGB_MODCHECK_LIBRARY, lib, "module '%s' has no version in its .modinfo",
                      modname);
    else
      for (size_t j = 0; r >= 0 && versions[j]; j++)
        if (!STREQ(versions[j], m->version))
          r = add_problem(c, KGB_MODCHECK_LIBRARY, lib,
                          "%s.%s does not match module '%s' version %s: user-space and kernel "
                          "parts of the driver must come from the same release",
                          lib, versions[j], modname, m->version);
    if (r < 0)
      return r;
  }
  return 0;
}

int kgb_modcheck_run(struct kgb_ctx *ctx, const char *root, const struct kgb_modcheck_opts *o,
                     struct kgb_modcheck **ret) {
  _cleanup_(kgb_modcheck_freep) struct kgb_modcheck *c = calloc(1, sizeof(*c));
  _cleanup_free_ char *relpath = kgb_strdup_printf("/lib/modules/%s", o->release);
  _cleanup_free_ char *moddir = NULL;
  if (!c || !relpath)
    return -ENOMEM;
  if (!*o->release || strchr(o->release, '/'))
    return kgb_error(ctx, -EINVAL, "'%s' is not a kernel release", o->release);
  int r = kgb_root_resolve(root, relpath, true, &moddir);
  if (r < 0)
    return kgb_error(ctx, r, "cannot resolve '%s' in '%s': %s", relpath, root, strerror(-r));
  if ((r = check_other_releases(root, o->release, c)) < 0)
    return r;
  c->has_moddir = is_dir(moddir);
  _cleanup_strv_free_ char **paths = NULL, **builtin = NULL;
  if (c->has_moddir) {
    if ((r = list_modules(moddir, &paths)) < 0)
      return kgb_error(ctx, r, "cannot list '%s': %s", moddir, strerror(-r));
    if ((r = read_builtin(moddir, &builtin)) < 0)
      return r;
  }
  size_t n = strv_length(paths);
  struct modinfo *mods = calloc(n + 1, sizeof(*mods));
  if (!mods)
    return -ENOMEM;
  const char *no_config = NULL;
  struct kmod_ctx *kctx = c->has_moddir ? kmod_new(moddir, &no_config) : NULL;
  if (c->has_moddir && !kctx) {
    free(mods);
    return kgb_error(ctx, -ENOMEM, "libkmod cannot start on '%s'", moddir);
  }
  size_t rlen = strlen(o->release);
  for (size_t i = 0; i < n && r >= 0; i++) {
    kgb_progress(ctx, "checking modules", i, n);
    _cleanup_free_ char *full = strjoin_path(moddir, paths[i]), *problem = NULL;
    _cleanup_free_ char *shown = kgb_strdup_printf("lib/modules/%s/%s", o->release, paths[i]);
    if (!full || !shown || !(mods[i].rel = strdup(paths[i]))) {
      r = -ENOMEM;
      break;
    }
    if ((r = read_modinfo(kctx, full, &mods[i], &problem)) < 0)
      break;
    if (problem)
      r = add_problem(c, KGB_MODCHECK_UNREADABLE, shown, "%s", problem);
    else if (!mods[i].vermagic || !*mods[i].vermagic)
      r = add_problem(c, KGB_MODCHECK_VERMAGIC, shown, "no vermagic in its .modinfo");
    else if (strncmp(mods[i].vermagic, o->release, rlen) != 0 ||
             (mods[i].vermagic[rlen] != ' ' && mods[i].vermagic[rlen] != '\0')) {
      _cleanup_free_ char *built = strndup(mods[i].vermagic, strcspn(mods[i].vermagic, " "));
      r = add_problem(c, KGB_MODCHECK_VERMAGIC, shown,
                      "built for '%s', not '%s': rebuild it against this kernel's headers",
                      built ? built : "?", o->release);
    }
  }
  kgb_progress(ctx, "checking modules", n, n);
  c->n_modules = n;
  /* every depends= entry must be a module of the tree or built in */
  for (size_t i = 0; i < n && r >= 0; i++) {
    if (!mods[i].depends || !*mods[i].depends)
      continue;
    _cleanup_free_ char *deps = strdup(mods[i].depends);
    if (!deps) {
      r = -ENOMEM;
      break;
    }
    for (char *save = NULL, *d = strtok_r(deps, ",", &save); d && r >= 0;
         d = strtok_r(NULL, ",", &save)) {
      _cleanup_free_ char *want = module_name_of(d);
      bool ok = !want || strv_contains(builtin, want);
      for (size_t j = 0; j < n && !ok; j++)
        ok = mods[j].name && STREQ(mods[j].name, want);
      if (!ok) {
        _cleanup_free_ char *shown = kgb_strdup_printf("lib/modules/%s/%s", o->release, paths[i]);
        r = shown ? add_problem(c, KGB_MODCHECK_DEPENDENCY, shown,
                                "depends on '%s', which is not in the tree", want)
                  : -ENOMEM;
      }
    }
  }
  if (r >= 0 && c->has_moddir)
    r = check_depmod(ctx, root, moddir, o, c);
  if (r >= 0)
    r = check_libraries(root, o, mods, n, c);
  for (size_t i = 0; i < n; i++)
    modinfo_release(&mods[i]);
  free(mods);
  kmod_unref(kctx);
  if (r < 0)
    return r;
  *ret = TAKE_PTR(c);
  return 0;
}
