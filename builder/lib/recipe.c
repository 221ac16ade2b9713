/* Recipe files: parsing with libconfig, a check of every field and variable with its line,
 * the expansion of variables and conditions into what the rootfs stage executes, and the
 * order in which recipes run. */
#define _GNU_SOURCE
#include "recipe.h"

#include <errno.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../shared/sbuf.h"
#include "../shared/util.h"
#include "source.h"

const char *const kgb_recipe_builtins[] = {
    "kernel_release",     /* uname -r of the guest kernel */
    "arch",               /* the kernel's architecture: x86_64 */
    "deb_arch",           /* the distribution's: amd64 */
    "multiarch",          /* the library directory's triplet: x86_64-linux-gnu */
    "jobs",               /* parallel jobs (--jobs) */
    "profile",            /* the profile's name */
    "distro",             /* debian, ubuntu */
    "suite",              /* bookworm */
    "kernel_modules",     /* host: the build's /lib/modules/<release> staging tree */
    "kernel_headers_deb", /* host: the build's linux-headers-<release> package */
    NULL,
};

static void setting_release(struct kgb_recipe_setting *s) {
  free(s->name);
  free(s->help);
  free(s->default_value);
}

static void input_release(struct kgb_recipe_input *i) {
  free(i->name);
  free(i->url);
  free(i->sha256);
  free(i->destination);
  free(i->extract);
  strv_free(i->when);
}

static void file_release(struct kgb_recipe_file *f) {
  free(f->path);
  free(f->source);
  free(f->content);
  free(f->link);
  strv_free(f->when);
}

static void step_release(struct kgb_recipe_step *s) {
  strv_free(s->argv);
  free(s->warn);
  free(s->fail);
  strv_free(s->env);
  free(s->cwd);
  strv_free(s->when);
}

struct kgb_recipe *kgb_recipe_free(struct kgb_recipe *r) {
  if (!r)
    return NULL;
  free(r->name);
  free(r->description);
  free(r->path);
  free(r->dir);
  strv_free(r->requires);
  strv_free(r->packages);
  for (size_t i = 0; i < r->n_settings; i++)
    setting_release(&r->settings[i]);
  free(r->settings);
  for (size_t i = 0; i < r->n_inputs; i++)
    input_release(&r->inputs[i]);
  free(r->inputs);
  for (size_t i = 0; i < r->n_files; i++)
    file_release(&r->files[i]);
  free(r->files);
  for (size_t i = 0; i < r->n_steps; i++)
    step_release(&r->steps[i]);
  free(r->steps);
  strv_free(r->purge);
  strv_free(r->remove);
  free(r);
  return NULL;
}

void kgb_recipes_free(struct kgb_recipe **v) {
  for (size_t i = 0; v && v[i]; i++)
    kgb_recipe_free(v[i]);
  free(v);
}

/* ---- parsing ---- */

struct parser {
  struct kgb_ctx *ctx;
  const char *shown;
};

static unsigned line_of(const config_setting_t *s) { return config_setting_source_line(s); }

static int perr(struct parser *p, unsigned line, const char *fmt, ...) _printf_(3, 4);
static int perr(struct parser *p, unsigned line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  _cleanup_free_ char *msg = NULL;
  int n = vasprintf(&msg, fmt, ap);
  va_end(ap);
  if (n < 0)
    return -ENOMEM;
  return kgb_error(p->ctx, -EINVAL, "%s:%u: %s", p->shown, line, msg);
}

static int check_keys(struct parser *p, const config_setting_t *group, const char *where,
                      const char *const *allowed) {
  for (int i = 0; i < config_setting_length(group); i++) {
    const config_setting_t *el = config_setting_get_elem(group, (unsigned)i);
    const char *name = config_setting_name(el);
    bool ok = false;
    for (size_t j = 0; allowed[j] && !ok; j++)
      ok = STREQ(name, allowed[j]);
    if (ok)
      continue;
    const char *best = NULL;
    size_t bestd = 3;
    for (size_t j = 0; allowed[j]; j++) {
      size_t d = levenshtein(name, allowed[j], 3);
      if (d < bestd) {
        bestd = d;
        best = allowed[j];
      }
    }
    return perr(p, line_of(el), "unknown field '%s'%s%s%s%s%s", name, *where ? " in " : "", where,
                best ? " (did you mean '" : "", best ? best : "", best ? "'?)" : "");
  }
  return 0;
}

static int get_string(struct parser *p, const config_setting_t *group, const char *key,
                      bool required, char **ret) {
  const config_setting_t *s = config_setting_get_member(group, key);
  if (!s) {
    if (required)
      return perr(p, line_of(group), "missing field '%s'", key);
    return 0;
  }
  if (config_setting_type(s) != CONFIG_TYPE_STRING)
    return perr(p, line_of(s), "'%s' must be a string", key);
  *ret = strdup(config_setting_get_string(s));
  return *ret ? 0 : -ENOMEM;
}

/* A list of strings; with single_ok, one string is a list of one. */
static int get_strv(struct parser *p, const config_setting_t *group, const char *key,
                    bool single_ok, char ***ret) {
  const config_setting_t *s = config_setting_get_member(group, key);
  if (!s)
    return 0;
  int t = config_setting_type(s);
  if (single_ok && t == CONFIG_TYPE_STRING)
    return strv_extend(ret, config_setting_get_string(s));
  if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
    return perr(p, line_of(s), "'%s' must be a list of strings [ \"...\" ]", key);
  for (int i = 0; i < config_setting_length(s); i++) {
    const config_setting_t *el = config_setting_get_elem(s, (unsigned)i);
    if (config_setting_type(el) != CONFIG_TYPE_STRING)
      return perr(p, line_of(s), "'%s' must be a list of strings [ \"...\" ]", key);
    int r = strv_extend(ret, config_setting_get_string(el));
    if (r < 0)
      return r;
  }
  if (!*ret && !(*ret = calloc(1, sizeof(char *))))
    return -ENOMEM;
  return 0;
}

static int get_mode(struct parser *p, const config_setting_t *group, mode_t *ret) {
  const config_setting_t *s = config_setting_get_member(group, "mode");
  if (!s)
    return 0;
  const char *v = config_setting_type(s) == CONFIG_TYPE_STRING ? config_setting_get_string(s) : "";
  char *end;
  unsigned long m = strtoul(v, &end, 8);
  if (!*v || *end || m > 07777 || m == 0)
    return perr(p, line_of(s), "'mode' must be an octal string such as \"0755\"");
  *ret = (mode_t)m;
  return 0;
}

/* The groups of a list field: ( { ... }, { ... } ) */
static int get_groups(struct parser *p, const config_setting_t *root, const char *key,
                      const config_setting_t **ret, int *ret_n) {
  const config_setting_t *s = config_setting_get_member(root, key);
  *ret = s;
  *ret_n = 0;
  if (!s)
    return 0;
  int t = config_setting_type(s);
  if (t != CONFIG_TYPE_LIST && !(t == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0))
    return perr(p, line_of(s), "'%s' must be a list of groups ( { ... }, ... )", key);
  for (int i = 0; i < config_setting_length(s); i++)
    if (config_setting_type(config_setting_get_elem(s, (unsigned)i)) != CONFIG_TYPE_GROUP)
      return perr(p, line_of(s), "'%s' must be a list of groups ( { ... }, ... )", key);
  *ret_n = config_setting_length(s);
  return 0;
}

static int parse_settings(struct parser *p, const config_setting_t *root, struct kgb_recipe *r) {
  const config_setting_t *s;
  int n, ret;
  if ((ret = get_groups(p, root, "settings", &s, &n)) < 0 || n == 0)
    return ret;
  static const char *const keys[] = {"name", "help", "default", NULL};
  if (!(r->settings = calloc((size_t)n, sizeof(*r->settings))))
    return -ENOMEM;
  for (int i = 0; i < n; i++) {
    const config_setting_t *g = config_setting_get_elem(s, (unsigned)i);
    struct kgb_recipe_setting *st = &r->settings[r->n_settings++];
    st->line = line_of(g);
    if ((ret = check_keys(p, g, "a setting", keys)) < 0 ||
        (ret = get_string(p, g, "name", true, &st->name)) < 0 ||
        (ret = get_string(p, g, "help", true, &st->help)) < 0 ||
        (ret = get_string(p, g, "default", false, &st->default_value)) < 0)
      return ret;
    if (strpbrk(st->name, "${}= !") || !*st->name)
      return perr(p, st->line,
                  "setting name '%s' may not contain spaces, '$', '{', '}', '=' or '!'", st->name);
    for (size_t j = 0; j + 1 < r->n_settings; j++)
      if (STREQ(r->settings[j].name, st->name))
        return perr(p, st->line, "setting '%s' is declared twice (also line %u)", st->name,
                    r->settings[j].line);
    for (size_t j = 0; kgb_recipe_builtins[j]; j++)
      if (STREQ(kgb_recipe_builtins[j], st->name))
        return perr(p, st->line, "setting '%s' has the name of a built-in variable", st->name);
  }
  return 0;
}

static int parse_inputs(struct parser *p, const config_setting_t *root, struct kgb_recipe *r) {
  const config_setting_t *s;
  int n, ret;
  if ((ret = get_groups(p, root, "inputs", &s, &n)) < 0 || n == 0)
    return ret;
  static const char *const keys[] = {"name",    "url",  "path", "sha256", "destination",
                                     "extract", "mode", "when", NULL};
  if (!(r->inputs = calloc((size_t)n, sizeof(*r->inputs))))
    return -ENOMEM;
  for (int i = 0; i < n; i++) {
    const config_setting_t *g = config_setting_get_elem(s, (unsigned)i);
    struct kgb_recipe_input *in = &r->inputs[r->n_inputs++];
    in->line = line_of(g);
    _cleanup_free_ char *url = NULL, *path = NULL;
    if ((ret = check_keys(p, g, "an input", keys)) < 0 ||
        (ret = get_string(p, g, "name", true, &in->name)) < 0 ||
        (ret = get_string(p, g, "url", false, &url)) < 0 ||
        (ret = get_string(p, g, "path", false, &path)) < 0 ||
        (ret = get_string(p, g, "sha256", true, &in->sha256)) < 0 ||
        (ret = get_string(p, g, "destination", true, &in->destination)) < 0 ||
        (ret = get_string(p, g, "extract", false, &in->extract)) < 0 ||
        (ret = get_mode(p, g, &in->mode)) < 0 ||
        (ret = get_strv(p, g, "when", true, &in->when)) < 0)
      return ret;
    if (!url == !path)
      return perr(p, in->line, "input '%s' needs one of 'url' or 'path'", in->name);
    in->url = url ? TAKE_PTR(url) : TAKE_PTR(path);
    for (size_t j = 0; j + 1 < r->n_inputs; j++)
      if (STREQ(r->inputs[j].name, in->name))
        return perr(p, in->line, "input '%s' is declared twice", in->name);
  }
  return 0;
}

static int parse_files(struct parser *p, const config_setting_t *root, struct kgb_recipe *r) {
  const config_setting_t *s;
  int n, ret;
  if ((ret = get_groups(p, root, "files", &s, &n)) < 0 || n == 0)
    return ret;
  static const char *const keys[] = {"path", "source", "content", "link", "mode", "when", NULL};
  if (!(r->files = calloc((size_t)n, sizeof(*r->files))))
    return -ENOMEM;
  for (int i = 0; i < n; i++) {
    const config_setting_t *g = config_setting_get_elem(s, (unsigned)i);
    struct kgb_recipe_file *f = &r->files[r->n_files++];
    f->line = line_of(g);
    if ((ret = check_keys(p, g, "a file", keys)) < 0 ||
        (ret = get_string(p, g, "path", true, &f->path)) < 0 ||
        (ret = get_string(p, g, "source", false, &f->source)) < 0 ||
        (ret = get_string(p, g, "content", false, &f->content)) < 0 ||
        (ret = get_string(p, g, "link", false, &f->link)) < 0 ||
        (ret = get_mode(p, g, &f->mode)) < 0 || (ret = get_strv(p, g, "when", true, &f->when)) < 0)
      return ret;
    if (!!f->source + !!f->content + !!f->link != 1)
      return perr(p, f->line, "file '%s' needs exactly one of 'source', 'content' or 'link'",
                  f->path);
    if (f->link && f->mode)
      return perr(p, f->line, "file '%s' is a link: it has no 'mode'", f->path);
  }
  return 0;
}

static int parse_steps(struct parser *p, const config_setting_t *root, struct kgb_recipe *r) {
  const config_setting_t *s;
  int n, ret;
  if ((ret = get_groups(p, root, "run", &s, &n)) < 0 || n == 0)
    return ret;
  static const char *const keys[] = {"argv", "env", "cwd", "warn", "fail", "when", NULL};
  if (!(r->steps = calloc((size_t)n, sizeof(*r->steps))))
    return -ENOMEM;
  for (int i = 0; i < n; i++) {
    const config_setting_t *g = config_setting_get_elem(s, (unsigned)i);
    struct kgb_recipe_step *st = &r->steps[r->n_steps++];
    st->line = line_of(g);
    if ((ret = check_keys(p, g, "a run step", keys)) < 0 ||
        (ret = get_strv(p, g, "argv", false, &st->argv)) < 0 ||
        (ret = get_strv(p, g, "env", false, &st->env)) < 0 ||
        (ret = get_string(p, g, "cwd", false, &st->cwd)) < 0 ||
        (ret = get_string(p, g, "warn", false, &st->warn)) < 0 ||
        (ret = get_string(p, g, "fail", false, &st->fail)) < 0 ||
        (ret = get_strv(p, g, "when", true, &st->when)) < 0)
      return ret;
    if (!!st->argv + !!st->warn + !!st->fail != 1)
      return perr(p, st->line, "a run step needs exactly one of 'argv', 'warn' or 'fail'");
    if (st->argv && !st->argv[0])
      return perr(p, st->line, "'argv' is empty");
    if (!st->argv && (st->env || st->cwd))
      return perr(p, st->line, "'env' and 'cwd' belong to a step with 'argv'");
    for (size_t j = 0; st->env && st->env[j]; j++)
      if (!strchr(st->env[j], '=') || st->env[j][0] == '=')
        return perr(p, st->line, "env entry '%s' is not NAME=VALUE", st->env[j]);
    if (st->cwd && st->cwd[0] != '/')
      return perr(p, st->line, "'cwd' must be an absolute path inside the root");
  }
  return 0;
}

static int parse_cleanup(struct parser *p, const config_setting_t *root, struct kgb_recipe *r) {
  const config_setting_t *c = config_setting_get_member(root, "cleanup");
  if (!c)
    return 0;
  if (config_setting_type(c) != CONFIG_TYPE_GROUP)
    return perr(p, line_of(c), "'cleanup' must be a group { purge = [...]; remove = [...]; }");
  static const char *const keys[] = {"purge", "remove", NULL};
  int ret;
  if ((ret = check_keys(p, c, "cleanup", keys)) < 0 ||
      (ret = get_strv(p, c, "purge", false, &r->purge)) < 0 ||
      (ret = get_strv(p, c, "remove", false, &r->remove)) < 0)
    return ret;
  for (size_t i = 0; r->remove && r->remove[i]; i++)
    if (r->remove[i][0] != '/' || strstr(r->remove[i], "..") || strpbrk(r->remove[i], "*?["))
      return perr(p, line_of(c),
                  "cleanup.remove: '%s' must be an absolute path inside the root, without '..' or "
                  "wildcards",
                  r->remove[i]);
  return 0;
}

/* ---- variables ---- */

static const struct kgb_recipe_setting *find_setting(const struct kgb_recipe *r, const char *name) {
  for (size_t i = 0; i < r->n_settings; i++)
    if (STREQ(r->settings[i].name, name))
      return &r->settings[i];
  return NULL;
}

static bool is_builtin(const char *name) {
  for (size_t i = 0; kgb_recipe_builtins[i]; i++)
    if (STREQ(kgb_recipe_builtins[i], name))
      return true;
  return false;
}

static bool has_input(const struct kgb_recipe *r, const char *name) {
  for (size_t i = 0; i < r->n_inputs; i++)
    if (STREQ(r->inputs[i].name, name))
      return true;
  return false;
}

static const char *closest_variable(const struct kgb_recipe *r, const char *name) {
  const char *best = NULL;
  size_t bestd = 4;
  for (size_t i = 0; kgb_recipe_builtins[i]; i++) {
    size_t d = levenshtein(name, kgb_recipe_builtins[i], 3);
    if (d < bestd)
      bestd = d, best = kgb_recipe_builtins[i];
  }
  for (size_t i = 0; i < r->n_settings; i++) {
    size_t d = levenshtein(name, r->settings[i].name, 3);
    if (d < bestd)
      bestd = d, best = r->settings[i].name;
  }
  return best;
}

/* Calls fn for each ${NAME} in s; returns -EINVAL for an unterminated or empty one. */
static int each_variable(const char *s, int (*fn)(void *ud, const char *name, size_t len),
                         void *ud) {
  for (const char *c = s; (c = strchr(c, '$'));) {
    if (c[1] == '$') {
      c += 2;
      continue;
    }
    if (c[1] != '{') {
      c++;
      continue;
    }
    const char *end = strchr(c + 2, '}');
    if (!end || end == c + 2)
      return -EINVAL;
    int r = fn(ud, c + 2, (size_t)(end - c - 2));
    if (r < 0)
      return r;
    c = end + 1;
  }
  return 0;
}

struct check_var {
  struct parser *p;
  const struct kgb_recipe *r;
  unsigned line;
};

static int check_one_variable(void *ud, const char *name, size_t len) {
  struct check_var *cv = ud;
  _cleanup_free_ char *n = strndup(name, len);
  if (!n)
    return -ENOMEM;
  if (startswith(n, "input:")) {
    if (has_input(cv->r, n + 6))
      return 0;
    return perr(cv->p, cv->line, "unknown variable '${%s}': the recipe has no input '%s'", n,
                n + 6);
  }
  if (is_builtin(n) || find_setting(cv->r, n))
    return 0;
  const char *near = closest_variable(cv->r, n);
  return perr(cv->p, cv->line,
              "unknown variable '${%s}'%s%s%s: use a built-in one or declare it in 'settings'", n,
              near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
}

static int check_string(struct parser *p, const struct kgb_recipe *r, const char *s,
                        unsigned line) {
  if (!s)
    return 0;
  struct check_var cv = {p, r, line};
  int ret = each_variable(s, check_one_variable, &cv);
  if (ret == -EINVAL && !kgb_error_detail(p->ctx))
    return perr(p, line,
                "'${' without a name and a closing '}' in \"%s\" (write '$${' for a literal)", s);
  return ret;
}

static int check_strv(struct parser *p, const struct kgb_recipe *r, char *const *v, unsigned line) {
  for (size_t i = 0; v && v[i]; i++) {
    int ret = check_string(p, r, v[i], line);
    if (ret < 0)
      return ret;
  }
  return 0;
}

/* "NAME", "!NAME", "NAME=VALUE", "NAME!=VALUE" with NAME a setting or a built-in. */
static int check_when(struct parser *p, const struct kgb_recipe *r, char *const *when,
                      unsigned line) {
  for (size_t i = 0; when && when[i]; i++) {
    const char *c = when[i] + (when[i][0] == '!');
    size_t n = strcspn(c, "!=");
    _cleanup_free_ char *name = strndup(c, n);
    if (!name)
      return -ENOMEM;
    if (!*name || (c[n] == '!' && c[n + 1] != '='))
      return perr(p, line, "condition '%s' is not NAME, !NAME, NAME=VALUE or NAME!=VALUE", when[i]);
    if (!find_setting(r, name) && !is_builtin(name)) {
      const char *near = closest_variable(r, name);
      return perr(p, line, "condition '%s' names no setting '%s'%s%s%s", when[i], name,
                  near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
    }
  }
  return 0;
}

static int check_variables(struct parser *p, const struct kgb_recipe *r) {
  int ret = 0;
  for (size_t i = 0; i < r->n_settings && ret >= 0; i++)
    ret = check_string(p, r, r->settings[i].default_value, r->settings[i].line);
  for (size_t i = 0; i < r->n_inputs && ret >= 0; i++) {
    const struct kgb_recipe_input *in = &r->inputs[i];
    if ((ret = check_string(p, r, in->url, in->line)) >= 0 &&
        (ret = check_string(p, r, in->sha256, in->line)) >= 0 &&
        (ret = check_string(p, r, in->extract, in->line)) >= 0 &&
        (ret = check_when(p, r, in->when, in->line)) >= 0)
      ret = check_string(p, r, in->destination, in->line);
    if (ret >= 0 && strstr(in->destination, "${input:"))
      ret = perr(p, in->line, "an input's destination cannot use ${input:...}");
  }
  for (size_t i = 0; i < r->n_files && ret >= 0; i++) {
    const struct kgb_recipe_file *f = &r->files[i];
    if ((ret = check_string(p, r, f->path, f->line)) >= 0 &&
        (ret = check_string(p, r, f->source, f->line)) >= 0 &&
        (ret = check_string(p, r, f->content, f->line)) >= 0 &&
        (ret = check_string(p, r, f->link, f->line)) >= 0)
      ret = check_when(p, r, f->when, f->line);
  }
  for (size_t i = 0; i < r->n_steps && ret >= 0; i++) {
    const struct kgb_recipe_step *s = &r->steps[i];
    if ((ret = check_strv(p, r, s->argv, s->line)) >= 0 &&
        (ret = check_strv(p, r, s->env, s->line)) >= 0 &&
        (ret = check_string(p, r, s->cwd, s->line)) >= 0 &&
        (ret = check_string(p, r, s->warn, s->line)) >= 0 &&
        (ret = check_string(p, r, s->fail, s->line)) >= 0)
      ret = check_when(p, r, s->when, s->line);
  }
  if (ret >= 0 && (ret = check_strv(p, r, r->packages, 1)) >= 0 &&
      (ret = check_strv(p, r, r->purge, 1)) >= 0)
    ret = check_strv(p, r, r->remove, 1);
  return ret;
}

/* The line of an `@include` directive, 0 when there is none. A recipe is one file: its hash
 * (the cache key of the rootfs stage) covers only its own text, and libconfig 1.5 resolves an
 * include against the current directory and, when the name is a directory or "", has its
 * scanner call exit(2) from inside the engine. Matched as libconfig's scanner does: at the
 * start of a line after blanks (a string's line that starts so is refused too, harmlessly). */
static unsigned include_line(const char *text) {
  unsigned line = 1;
  for (const char *p = text; *p; line++) {
    p += strspn(p, " \t\r\f\v");
    if (startswith(p, "@include"))
      return line;
    p = strchr(p, '\n');
    if (!p)
      break;
    p++;
  }
  return 0;
}

int kgb_recipe_parse(struct kgb_ctx *ctx, const char *shown, const char *dir, const char *text,
                     struct kgb_recipe **ret) {
  _cleanup_(kgb_recipe_freep) struct kgb_recipe *r = calloc(1, sizeof(*r));
  if (!r || !(r->path = strdup(shown)) || !(r->dir = strdup(dir ? dir : ".")))
    return -ENOMEM;
  int rc = kgb_sha256_hex(text, strlen(text), r->sha256);
  if (rc < 0)
    return rc;
  unsigned inc = include_line(text);
  if (inc)
    return kgb_error(ctx, -EINVAL,
                     "%s:%u: '@include' is not allowed in a recipe: one recipe, one file", shown,
                     inc);
  config_t cfg;
  config_init(&cfg);
  if (config_read_string(&cfg, text) != CONFIG_TRUE) {
    rc = kgb_error(ctx, -EINVAL, "%s:%d: %s", shown, config_error_line(&cfg),
                   config_error_text(&cfg));
    config_destroy(&cfg);
    return rc;
  }
  struct parser p = {ctx, shown};
  const config_setting_t *root = config_root_setting(&cfg);
  static const char *const keys[] = {"name",     "description", "requires", "settings", "inputs",
                                     "packages", "files",       "run",      "cleanup",  NULL};
  if ((rc = check_keys(&p, root, "", keys)) >= 0 &&
      (rc = get_string(&p, root, "name", true, &r->name)) >= 0 &&
      (rc = get_string(&p, root, "description", true, &r->description)) >= 0 &&
      (rc = get_strv(&p, root, "requires", false, &r->requires)) >= 0 &&
      (rc = get_strv(&p, root, "packages", false, &r->packages)) >= 0 &&
      (rc = parse_settings(&p, root, r)) >= 0 && (rc = parse_inputs(&p, root, r)) >= 0 &&
      (rc = parse_files(&p, root, r)) >= 0 && (rc = parse_steps(&p, root, r)) >= 0 &&
      (rc = parse_cleanup(&p, root, r)) >= 0)
    rc = check_variables(&p, r);
  config_destroy(&cfg);
  if (rc < 0)
    return rc;
  for (size_t i = 0; r->requires && r->requires[i]; i++)
    if (STREQ(r->requires[i], r -> name))
      return kgb_error(ctx, -EINVAL, "%s: recipe '%s' requires itself", shown, r->name);
  for (size_t i = 0; i < r->n_files; i++)
    if (r->files[i].path[0] != '/')
      return kgb_error(ctx, -EINVAL, "%s:%u: file path '%s' must be absolute (inside the root)",
                       shown, r->files[i].line, r->files[i].path);
  *ret = TAKE_PTR(r);
  return 0;
}

int kgb_recipe_load(struct kgb_ctx *ctx, const char *name, struct kgb_recipe **ret) {
  _cleanup_free_ char *dir = strjoin_path(ctx->datadir, "recipes");
  _cleanup_free_ char *path = dir ? kgb_strdup_printf("%s/%s.recipe", dir, name) : NULL;
  _cleanup_free_ char *shown = kgb_strdup_printf("recipes/%s.recipe", name);
  if (!path || !shown)
    return -ENOMEM;
  _cleanup_free_ char *text = NULL;
  if (strchr(name, '/') || !*name || read_full_file(path, &text, NULL) < 0)
    return kgb_error(ctx, -ENOENT, "unknown recipe '%s': no '%s'", name, path);
  _cleanup_(kgb_recipe_freep) struct kgb_recipe *r = NULL;
  int rc = kgb_recipe_parse(ctx, shown, dir, text, &r);
  if (rc < 0)
    return rc;
  if (!STREQ(r->name, name))
    return kgb_error(ctx, -EINVAL, "%s: its name is '%s': a recipe's name must be its file's",
                     shown, r->name);
  *ret = TAKE_PTR(r);
  return 0;
}

/* ---- expansion ---- */

static const char *value_of(char *const *values, const char *name, size_t len) {
  const char *found = NULL;
  for (size_t i = 0; values && values[i]; i++)
    if (strncmp(values[i], name, len) == 0 && values[i][len] == '=')
      found = values[i] + len + 1;
  return found;
}

/* The value of a variable, NULL when it has none. */
static const char *lookup(const struct kgb_recipe *r, char *const *values, const char *name,
                          size_t len) {
  const char *v = value_of(values, name, len);
  if (v)
    return v;
  for (size_t i = 0; i < r->n_settings; i++)
    if (strlen(r->settings[i].name) == len && strncmp(r->settings[i].name, name, len) == 0)
      return r->settings[i].default_value;
  return NULL;
}

struct expander {
  struct kgb_ctx *ctx;
  const struct kgb_recipe *r;
  char *const *values;
  unsigned line;
};

static int missing_value(struct expander *e, const char *name) {
  const struct kgb_recipe_setting *s = find_setting(e->r, name);
  if (!s)
    return kgb_error(e->ctx, -ENOKEY, "%s:%u: '${%s}' has no value here", e->r->path, e->line,
                     name);
  return kgb_error(e->ctx, -ENOKEY,
                   "recipe '%s' needs a value for '%s' (%s:%u): %s; set it with --set %s=VALUE or "
                   "in the profile's settings group",
                   e->r->name, name, e->r->path, s->line, s->help, name);
}

static int expand(struct expander *e, const char *s, char **ret) {
  if (!s) {
    *ret = NULL;
    return 0;
  }
  struct sbuf sb = SBUF_INIT;
  int rc = 0;
  for (const char *c = s; *c && rc >= 0;) {
    if (c[0] == '$' && c[1] == '$') {
      rc = sbuf_addc(&sb, '$');
      c += 2;
      continue;
    }
    if (c[0] != '$' || c[1] != '{') {
      rc = sbuf_addc(&sb, *c++);
      continue;
    }
    const char *end = strchr(c + 2, '}');
    if (!end) {
      rc = -EINVAL;
      break;
    }
    size_t len = (size_t)(end - c - 2);
    const char *v = lookup(e->r, e->values, c + 2, len);
    if (!v || !*v) {
      _cleanup_free_ char *name = strndup(c + 2, len);
      rc = name ? missing_value(e, name) : -ENOMEM;
      break;
    }
    /* a value lands in an argument, a file in the root or an apt source line: a newline
     * there would add a line of the user's choosing (a trusted apt source, say) */
    const char *bad = v;
    while (*bad && (unsigned char)*bad >= 0x20 && *bad != 0x7f)
      bad++;
    if (*bad) {
      rc = kgb_error(e->ctx, -EINVAL,
                     "%s:%u: the value of '${%.*s}' has a control character (\\x%02x) at byte "
                     "%zu: a setting must be one line of text",
                     e->r->path, e->line, (int)len, c + 2, (unsigned char)*bad, (size_t)(bad - v));
      break;
    }
    rc = sbuf_adds(&sb, v);
    c = end + 1;
  }
  if (rc < 0) {
    sbuf_release(&sb);
    return rc;
  }
  *ret = sbuf_steal(&sb);
  return *ret ? 0 : -ENOMEM;
}

/* Arguments, package names and recipe names: an element that starts with a variable may not
 * start with '-', or a setting such as dkms.package=-oDPkg::Pre-Invoke::=CMD would become an
 * option of the program (recipes also put "--" before package names). */
static int expand_strv(struct expander *e, char *const *v, char ***ret) {
  _cleanup_strv_free_ char **out = NULL;
  for (size_t i = 0; v && v[i]; i++) {
    char *x = NULL;
    int rc = expand(e, v[i], &x);
    if (rc >= 0 && startswith(v[i], "${") && x[0] == '-') {
      size_t len = strcspn(v[i] + 2, "}");
      rc = kgb_error(e->ctx, -EINVAL,
                     "%s:%u: the value of '${%.*s}' starts with '-' and would be read as an "
                     "option: give a name or path",
                     e->r->path, e->line, (int)len, v[i] + 2);
      free(x);
    }
    if (rc < 0 || (rc = strv_push(&out, x)) < 0)
      return rc;
  }
  if (v && !out && !(out = calloc(1, sizeof(char *))))
    return -ENOMEM;
  *ret = TAKE_PTR(out);
  return 0;
}

static bool holds(const struct kgb_recipe *r, char *const *values, char *const *when) {
  for (size_t i = 0; when && when[i]; i++) {
    bool neg = when[i][0] == '!';
    const char *c = when[i] + neg;
    size_t n = strcspn(c, "!=");
    const char *v = lookup(r, values, c, n);
    if (!v)
      v = "";
    bool ok;
    if (c[n] == '=')
      ok = STREQ(v, c + n + 1);
    else if (c[n] == '!')
      ok = !STREQ(v, c + n + 2);
    else
      ok = *v != '\0';
    if (neg)
      ok = !ok;
    if (!ok)
      return false;
  }
  return true;
}

int kgb_recipe_expand(struct kgb_ctx *ctx, const struct kgb_recipe *r, char *const *values,
                      struct kgb_recipe **ret) {
  _cleanup_(kgb_recipe_freep) struct kgb_recipe *x = calloc(1, sizeof(*x));
  if (!x || !(x->name = strdup(r->name)) || !(x->description = strdup(r->description)) ||
      !(x->path = strdup(r->path)) || !(x->dir = strdup(r->dir)))
    return -ENOMEM;
  memcpy(x->sha256, r->sha256, sizeof(x->sha256));
  struct expander e = {ctx, r, values, 1};
  int rc;
  if ((rc = expand_strv(&e, r->requires, &x->requires)) < 0 ||
      (rc = expand_strv(&e, r->packages, &x->packages)) < 0 ||
      (rc = expand_strv(&e, r->purge, &x->purge)) < 0 ||
      (rc = expand_strv(&e, r->remove, &x->remove)) < 0)
    return rc;
  /* fail steps first: "no driver given" says more than a missing URL */
  for (size_t i = 0; i < r->n_steps; i++) {
    const struct kgb_recipe_step *s = &r->steps[i];
    if (!s->fail || !holds(r, values, s->when))
      continue;
    e.line = s->line;
    _cleanup_free_ char *msg = NULL;
    if ((rc = expand(&e, s->fail, &msg)) < 0)
      return rc;
    return kgb_error(ctx, -EPERM, "recipe '%s' (%s:%u): %s", r->name, r->path, s->line, msg);
  }
  /* input destinations give ${input:NAME} to everything else */
  _cleanup_strv_free_ char **vals = NULL;
  for (size_t i = 0; values && values[i]; i++)
    if ((rc = strv_extend(&vals, values[i])) < 0)
      return rc;
  if (!(x->inputs = calloc(r->n_inputs + 1, sizeof(*x->inputs))))
    return -ENOMEM;
  for (size_t i = 0; i < r->n_inputs; i++) {
    const struct kgb_recipe_input *in = &r->inputs[i];
    if (!holds(r, values, in->when))
      continue;
    struct kgb_recipe_input *o = &x->inputs[x->n_inputs++];
    e.line = o->line = in->line;
    o->mode = in->mode;
    if (!(o->name = strdup(in->name)))
      return -ENOMEM;
    if ((rc = expand(&e, in->destination, &o->destination)) < 0)
      return rc;
    if (o->destination[0] != '/')
      return kgb_error(ctx, -EINVAL, "%s:%u: input '%s': destination '%s' must be absolute",
                       r->path, in->line, in->name, o->destination);
    if ((rc = strv_push(&vals, kgb_strdup_printf("input:%s=%s", in->name, o->destination))) < 0)
      return rc;
  }
  e.values = vals;
  for (size_t i = 0; i < x->n_inputs; i++) {
    struct kgb_recipe_input *o = &x->inputs[i];
    const struct kgb_recipe_input *in = NULL;
    for (size_t j = 0; j < r->n_inputs && !in; j++)
      if (STREQ(r->inputs[j].name, o->name))
        in = &r->inputs[j];
    e.line = in->line;
    if ((rc = expand(&e, in->url, &o->url)) < 0 || (rc = expand(&e, in->sha256, &o->sha256)) < 0)
      return rc;
    if (in->extract) {
      /* an empty extract means "the file itself" */
      const char *c = in->extract;
      bool empty_ok = c[0] == '$' && c[1] == '{' && strchr(c, '}') && !strchr(c, '}')[1];
      if (empty_ok && !lookup(r, vals, c + 2, (size_t)(strchr(c, '}') - c - 2)))
        continue;
      if (empty_ok) {
        const char *v = lookup(r, vals, c + 2, (size_t)(strchr(c, '}') - c - 2));
        if (!*v)
          continue;
      }
      if ((rc = expand(&e, in->extract, &o->extract)) < 0)
        return rc;
    }
  }
  if (!(x->files = calloc(r->n_files + 1, sizeof(*x->files))))
    return -ENOMEM;
  for (size_t i = 0; i < r->n_files; i++) {
    const struct kgb_recipe_file *f = &r->files[i];
    if (!holds(r, vals, f->when))
      continue;
    struct kgb_recipe_file *o = &x->files[x->n_files++];
    e.line = o->line = f->line;
    o->mode = f->mode;
    if ((rc = expand(&e, f->path, &o->path)) < 0 || (rc = expand(&e, f->source, &o->source)) < 0 ||
        (rc = expand(&e, f->content, &o->content)) < 0 || (rc = expand(&e, f->link, &o->link)) < 0)
      return rc;
    if (o->source && o->source[0] != '/') {
      char *abs = strjoin_path(r->dir, o->source);
      if (!abs)
        return -ENOMEM;
      free(o->source);
      o->source = abs;
    }
  }
  if (!(x->steps = calloc(r->n_steps + 1, sizeof(*x->steps))))
    return -ENOMEM;
  for (size_t i = 0; i < r->n_steps; i++) {
    const struct kgb_recipe_step *s = &r->steps[i];
    if (s->fail || !holds(r, vals, s->when))
      continue;
    struct kgb_recipe_step *o = &x->steps[x->n_steps++];
    e.line = o->line = s->line;
    if ((rc = expand_strv(&e, s->argv, &o->argv)) < 0 ||
        (rc = expand_strv(&e, s->env, &o->env)) < 0 || (rc = expand(&e, s->cwd, &o->cwd)) < 0 ||
        (rc = expand(&e, s->warn, &o->warn)) < 0)
      return rc;
  }
  *ret = TAKE_PTR(x);
  return 0;
}

/* ---- order ---- */

struct resolver {
  struct kgb_ctx *ctx;
  char *const *without;
  struct kgb_recipe **out;
  size_t n;
  char **stack;
};

static bool resolved(const struct resolver *rs, const char *name) {
  for (size_t i = 0; i < rs->n; i++)
    if (STREQ(rs->out[i]->name, name))
      return true;
  return false;
}

static int visit(struct resolver *rs, const char *name, const char *needed_by) {
  if (resolved(rs, name))
    return 0;
  if (strv_contains(rs->stack, name)) {
    struct sbuf sb = SBUF_INIT;
    for (size_t i = 0; rs->stack[i]; i++)
      sbuf_addf(&sb, "%s -> ", rs->stack[i]);
    sbuf_adds(&sb, name);
    int rc = kgb_error(rs->ctx, -ELOOP, "recipes require each other: %s", sbuf_str(&sb));
    sbuf_release(&sb);
    return rc;
  }
  if (needed_by && strv_contains(rs->without, name))
    return kgb_error(rs->ctx, -ENOENT,
                     "recipe '%s' requires '%s', which --without removes: drop '%s' as well "
                     "(--without %s)",
                     needed_by, name, needed_by, needed_by);
  _cleanup_(kgb_recipe_freep) struct kgb_recipe *r = NULL;
  int rc = kgb_recipe_load(rs->ctx, name, &r);
  if (rc < 0)
    return rc;
  if (needed_by)
    kgb_info(rs->ctx, "recipe '%s' requires '%s': added", needed_by, name);
  if ((rc = strv_extend(&rs->stack, name)) < 0)
    return rc;
  for (size_t i = 0; r->requires && r->requires[i] && rc >= 0; i++)
    rc = visit(rs, r->requires[i], name);
  size_t depth = strv_length(rs->stack);
  free(rs->stack[depth - 1]);
  rs->stack[depth - 1] = NULL;
  if (rc < 0)
    return rc;
  struct kgb_recipe **grown = realloc(rs->out, (rs->n + 2) * sizeof(*grown));
  if (!grown)
    return -ENOMEM;
  rs->out = grown;
  rs->out[rs->n++] = TAKE_PTR(r);
  rs->out[rs->n] = NULL;
  return 0;
}

int kgb_recipes_resolve(struct kgb_ctx *ctx, char *const *names, char *const *without,
                        struct kgb_recipe ***ret) {
  struct resolver rs = {.ctx = ctx, .without = without};
  int rc = 0;
  for (size_t i = 0; without && without[i]; i++)
    if (!strv_contains(names, without[i])) {
      rc = kgb_error(ctx, -ENOENT, "--without %s: the profile has no recipe '%s'", without[i],
                     without[i]);
      break;
    }
  for (size_t i = 0; rc >= 0 && names && names[i]; i++)
    if (!strv_contains(without, names[i]))
      rc = visit(&rs, names[i], NULL);
  strv_free(rs.stack);
  if (rc < 0) {
    for (size_t i = 0; i < rs.n; i++)
      kgb_recipe_free(rs.out[i]);
    free(rs.out);
    return rc;
  }
  if (!rs.out && !(rs.out = calloc(1, sizeof(*rs.out))))
    return -ENOMEM;
  *ret = rs.out;
  return 0;
}
