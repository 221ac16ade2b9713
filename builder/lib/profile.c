/* Profile loading: libconfig parses (with @include resolved in the shipped profiles
 * directory); this file checks every key against a schema so that a typo is an error with
 * file and line, applies a user profile's `override` group, and fills struct kgb_profile. */
#define _GNU_SOURCE
#include "profile.h"

#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../shared/sbuf.h"
#include "../shared/util.h"
#include "fetch.h"
#include "fragment.h"

enum field_type { F_STRING, F_INT, F_BOOL, F_STRINGS, F_GROUP };
static const char *const type_names[] = {"a string", "an integer", "true or false",
                                         "a list of strings", "a group { ... }"};

/* What a string may hold beyond "no control characters" (every string), by where it goes:
 * a file name, a Debian package name, or free text that may span lines. */
enum field_form { FORM_LINE, FORM_NAME, FORM_PACKAGE, FORM_TEXT };

struct field {
  const char *path;
  enum field_type type;
  bool required;
  const char *const *choices; /* allowed string values, NULL-terminated */
  enum field_form form;       /* strings and lists of strings */
  long long min, max;         /* integers: the allowed range */
  /* where the value goes in struct kgb_profile (when stored; groups are not); integers are an
   * int or a long long by size; has, when set, flags an optional value as given */
  bool stored;
  size_t offset, size, has;
  const char *def; /* a string's default */
};

#define AT(member)                                                                                 \
  .stored = true, .offset = offsetof(struct kgb_profile, member),                                  \
  .size = sizeof(((struct kgb_profile *)0)->member)
#define HAS(member) .has = offsetof(struct kgb_profile, member)

static const char *const vendors[] = {"nvidia", "intel", "virgl", NULL};
static const char *const modes[] = {"passthrough", "vgpu", "mig", "gvt-d", "gvt-g", "virgl", NULL};
static const char *const arches[] = {"x86_64", NULL};
static const char *const formats[] = {"ext4", "erofs", "initrd", NULL};
static const char *const host_modes[] = {"passthrough", "mdev", "mig", "none", NULL};
static const char *const plug_ports[] = {"no-port", "bridge-port", "root-port", "switch-port",
                                         NULL};
static const char *const vfio_modes[] = {"guest-kernel", "vfio", NULL};

static const struct field schema[] = {
    {"name", F_STRING, true, NULL, FORM_NAME, AT(name)},
    {"vendor", F_STRING, true, vendors, AT(vendor)},
    {"mode", F_STRING, true, modes, AT(mode)},
    {"description", F_STRING, true, NULL, FORM_TEXT, AT(description)},
    {"notes", F_STRING, false, NULL, FORM_TEXT, AT(notes)},
    {"kernel", F_GROUP, true, NULL},
    {"kernel.version", F_STRING, false, NULL, FORM_NAME, AT(kernel.version)},
    {"kernel.source", F_STRING, false, NULL, AT(kernel.source)},
    {"kernel.sha256", F_STRING, false, NULL, AT(kernel.sha256)},
    {"kernel.mirror", F_STRING, false, NULL, AT(kernel.mirror)},
    {"kernel.arch", F_STRING, true, arches, AT(kernel.arch)},
    {"kernel.fragments", F_STRINGS, true, NULL, AT(kernel.fragments)},
    {"kernel.cfgver", F_INT, true, NULL, .min = 1, .max = INT_MAX, AT(kernel.cfgver)},
    {"kernel.required", F_STRINGS, false, NULL, AT(kernel.required)},
    {"kernel.overrides", F_STRINGS, false, NULL, AT(kernel.overrides)},
    /* up to the last second of year 9999, as tar and mkfs take it */
    {"kernel.source_date_epoch", F_INT, false, NULL, .min = 0, .max = 253402300799LL,
     AT(kernel.source_date_epoch), HAS(kernel.has_source_date_epoch)},
    {"rootfs", F_GROUP, false, NULL},
    {"rootfs.distro", F_STRING, false, NULL, FORM_NAME, AT(rootfs.distro), .def = "debian"},
    {"rootfs.suite", F_STRING, false, NULL, FORM_NAME, AT(rootfs.suite), .def = "bookworm"},
    {"rootfs.components", F_STRINGS, false, NULL, FORM_NAME, AT(rootfs.components), .def = "main"},
    {"rootfs.variant", F_STRING, false, NULL, FORM_NAME, AT(rootfs.variant), .def = "minbase"},
    {"rootfs.packages", F_STRINGS, false, NULL, FORM_PACKAGE, AT(rootfs.packages)},
    {"rootfs.recipes", F_STRINGS, false, NULL, FORM_NAME, AT(rootfs.recipes)},
    {"rootfs.mirror", F_STRING, false, NULL, AT(rootfs.mirror)},
    {"rootfs.keyring", F_STRING, false, NULL, AT(rootfs.keyring)},
    {"rootfs.library_versions", F_STRINGS, false, NULL, AT(rootfs.library_versions)},
    {"rootfs.purge_build_packages", F_BOOL, false, NULL, AT(rootfs.purge_build_packages)},
    /* free-form recipe settings (recipes declare and check them): nvidia = { driver = ... } */
    {"settings", F_GROUP, false, NULL},
    {"image", F_GROUP, false, NULL},
    {"image.format", F_STRING, false, formats, AT(image.format)},
    {"image.free_mb", F_INT, false, NULL, .min = 0, .max = 1 << 20, AT(image.free_mb)},
    {"kata", F_GROUP, false, NULL},
    {"kata.machine_type", F_STRING, false, NULL, FORM_NAME, AT(kata.machine_type)},
    /* MiB: Kata reads a uint32; below 128 no guest kernel of ours boots */
    {"kata.default_memory", F_INT, false, NULL, .min = 128, .max = UINT32_MAX,
     AT(kata.default_memory), HAS(kata.has_default_memory)},
    {"kata.kernel_params", F_STRING, false, NULL, AT(kata.kernel_params)},
    {"kata.hot_plug_vfio", F_STRING, false, plug_ports, AT(kata.hot_plug_vfio)},
    {"kata.cold_plug_vfio", F_STRING, false, plug_ports, AT(kata.cold_plug_vfio)},
    /* Kata refuses more than 16 root ports */
    {"kata.pcie_root_port", F_INT, false, NULL, .min = 0, .max = 16, AT(kata.pcie_root_port),
     HAS(kata.has_pcie_root_port)},
    {"kata.vfio_mode", F_STRING, false, vfio_modes, AT(kata.vfio_mode)},
    {"kata.kernel_modules", F_STRINGS, false, NULL, AT(kata.kernel_modules),
     HAS(kata.has_kernel_modules)},
    {"kata.guest_hook_path", F_STRING, false, NULL, AT(kata.guest_hook_path)},
    {"kata.enable_iommu", F_BOOL, false, NULL, AT(kata.enable_iommu), HAS(kata.has_enable_iommu)},
    {"kata.disable_image_nvdimm", F_BOOL, false, NULL, AT(kata.disable_image_nvdimm)},
    {"kata.static_sandbox_resource_mgmt", F_BOOL, false, NULL,
     AT(kata.static_sandbox_resource_mgmt), HAS(kata.has_static_sandbox_resource_mgmt)},
    {"kata.agent_timeout", F_INT, false, NULL, .min = 1, .max = 86400, AT(kata.agent_timeout)},
    {"host", F_GROUP, false, NULL},
    {"host.mode", F_STRING, false, host_modes, AT(host.mode)},
    {"host.kernel_config", F_STRINGS, false, NULL, AT(host.kernel_config),
     HAS(host.has_kernel_config)},
    {"host.cmdline", F_STRINGS, false, NULL, AT(host.cmdline)},
};

struct kgb_profile *kgb_profile_free(struct kgb_profile *p) {
  if (!p)
    return NULL;
  for (size_t i = 0; i < ELEMENTSOF(schema); i++) {
    const struct field *f = &schema[i];
    if (!f->stored)
      continue;
    void *at = (char *)p + f->offset;
    if (f->type == F_STRING)
      free(*(char **)at);
    else if (f->type == F_STRINGS)
      strv_free(*(char ***)at);
  }
  free(p->path);
  strv_free(p->settings);
  config_destroy(&p->cfg);
  free(p);
  return NULL;
}

static char *profiles_dir(struct kgb_ctx *ctx) { return strjoin_path(ctx->datadir, "profiles"); }

/* "profiles/x.cfg" for shipped files, the path as given otherwise. */
static const char *where(const config_setting_t *s, const char *fallback) {
  const char *f = config_setting_source_file(s);
  return f ? f : fallback;
}

static const struct field *find_field(const char *path) {
  for (size_t i = 0; i < ELEMENTSOF(schema); i++)
    if (STREQ(schema[i].path, path))
      return &schema[i];
  return NULL;
}

static const char *closest_field(const char *path) {
  const char *best = NULL;
  size_t bestd = 4;
  for (size_t i = 0; i < ELEMENTSOF(schema); i++) {
    size_t d = levenshtein(path, schema[i].path, 3);
    if (d < bestd) {
      bestd = d;
      best = schema[i].path;
    }
  }
  return best;
}

static bool type_ok(const config_setting_t *s, enum field_type t) {
  int st = config_setting_type(s);
  switch (t) {
  case F_STRING:
    return st == CONFIG_TYPE_STRING;
  case F_INT:
    return st == CONFIG_TYPE_INT || st == CONFIG_TYPE_INT64;
  case F_BOOL:
    return st == CONFIG_TYPE_BOOL;
  case F_GROUP:
    return st == CONFIG_TYPE_GROUP;
  case F_STRINGS:
    if (st != CONFIG_TYPE_ARRAY && st != CONFIG_TYPE_LIST)
      return false;
    for (int i = 0; i < config_setting_length(s); i++)
      if (config_setting_type(config_setting_get_elem(s, (unsigned)i)) != CONFIG_TYPE_STRING)
        return false;
    return true;
  }
  return false;
}

struct check {
  struct kgb_ctx *ctx;
  const char *file; /* top file, for settings without a source file */
  const char *arch;
};

static int check_fragment_pattern(struct check *c, const config_setting_t *s, const char *pattern);
static int check_recipe(struct check *c, const config_setting_t *s, const char *name);

/* The first byte of v that its form does not allow, or NULL. */
static const char *bad_byte(const char *v, enum field_form form) {
  for (const char *p = v; *p; p++) {
    unsigned char ch = (unsigned char)*p;
    if ((ch < 0x20 && !(form == FORM_TEXT && (ch == '\n' || ch == '\t'))) || ch == 0x7f)
      return p;
    switch (form) {
    case FORM_NAME: /* a path component: no '/', no leading '.', nothing a shell or URL quotes */
      if (!(isalnum(ch) || (p > v && strchr("._+-", ch))))
        return p;
      break;
    case FORM_PACKAGE: /* Debian policy 5.6.1, then an optional :arch, =version or /suite */
      if (!(islower(ch) || isdigit(ch) || (p > v && strchr("+.-:=/~_", ch))))
        return p;
      break;
    case FORM_LINE:
    case FORM_TEXT:
      break;
    }
  }
  return NULL;
}

static int check_string(struct check *c, const config_setting_t *s, const char *path, const char *v,
                        enum field_form form) {
  static const char *const what[] = {
      [FORM_LINE] = "one line of text",
      [FORM_NAME] = "a name of letters, digits and '._+-' that starts with a letter or digit",
      [FORM_PACKAGE] = "a Debian package name (lowercase letters, digits and '+.-')",
      [FORM_TEXT] = "text",
  };
  const char *b = bad_byte(v, form);
  bool named = form == FORM_NAME || form == FORM_PACKAGE;
  if (!b && !(named && !*v) && !(form == FORM_NAME && strlen(v) > 64))
    return 0;
  unsigned char ch = b ? (unsigned char)*b : 0;
  _cleanup_free_ char *shown = NULL;
  if (b && (ch < 0x20 || ch == 0x7f))
    shown = kgb_strdup_printf("a control character (\\x%02x) at byte %zu", ch, (size_t)(b - v));
  else if (b && ch > 0x7f)
    shown = kgb_strdup_printf("the byte \\x%02x at byte %zu", ch, (size_t)(b - v));
  else if (b)
    shown = kgb_strdup_printf("'%c' at byte %zu", ch, (size_t)(b - v));
  else
    shown = strdup(*v ? "more than 64 characters" : "nothing");
  if (!shown)
    return -ENOMEM;
  /* the value itself is not echoed: it may hold the very bytes we refuse */
  return kgb_error(c->ctx, -EINVAL, "%s:%u: '%s' has %s: it must be %s", where(s, c->file),
                   config_setting_source_line(s), path, shown, what[form]);
}

static int check_values(struct check *c, const config_setting_t *s, const char *path) {
  const char *file = where(s, c->file);
  unsigned line = config_setting_source_line(s);
  const struct field *f = find_field(path);
  if (f->type == F_INT) {
    long long v = config_setting_get_int64(s);
    if (v < f->min || v > f->max)
      return kgb_error(c->ctx, -EINVAL, "%s:%u: '%s' is %lld: it must be from %lld to %lld", file,
                       line, path, v, f->min, f->max);
    return 0;
  }
  if (f->type == F_STRING) {
    int r = check_string(c, s, path, config_setting_get_string(s), f->form);
    if (r < 0)
      return r;
  }
  if (f->choices) {
    const char *v = config_setting_get_string(s);
    bool ok = false;
    for (size_t i = 0; f->choices[i]; i++)
      ok = ok || STREQ(v, f->choices[i]);
    if (!ok) {
      struct sbuf sb = SBUF_INIT;
      for (size_t i = 0; f->choices[i]; i++)
        sbuf_addf(&sb, "%s'%s'", i ? ", " : "", f->choices[i]);
      int r = kgb_error(c->ctx, -EINVAL, "%s:%u: '%s' is '%s': use one of %s", file, line, path, v,
                        sbuf_str(&sb));
      sbuf_release(&sb);
      return r;
    }
  }
  for (int i = 0; f->type == F_STRINGS && i < config_setting_length(s); i++) {
    const config_setting_t *el = config_setting_get_elem(s, (unsigned)i);
    const char *v = config_setting_get_string(el);
    int r = check_string(c, el, path, v, f->form);
    if (r < 0)
      return r;
    if (STREQ(path, "kernel.fragments"))
      r = check_fragment_pattern(c, s, v);
    else if (STREQ(path, "rootfs.recipes"))
      r = check_recipe(c, s, v);
    else if (STREQ(path, "kernel.required")) {
      _cleanup_(kgb_fragment_freep) struct kgb_fragment *fr = NULL;
      _cleanup_free_ char *name = kgb_strdup_printf("%s:%u: kernel.required", file, line);
      r = name ? kgb_fragment_parse(c->ctx, name, v, false, &fr) : -ENOMEM;
    } else if (STREQ(path, "kernel.overrides") && !startswith(v, "CONFIG_"))
      r = kgb_error(c->ctx, -EINVAL, "%s:%u: kernel.overrides: '%s' is not a CONFIG_ name", file,
                    line, v);
    if (r < 0)
      return r;
  }
  return 0;
}

/* Recipe settings are free-form (recipes declare them), but each string ends up in a command
 * line, a file inside the root or an apt source: one line, no control characters. */
static int check_settings(struct check *c, const config_setting_t *s, const char *path) {
  if (config_setting_type(s) == CONFIG_TYPE_STRING)
    return check_string(c, s, path, config_setting_get_string(s), FORM_LINE);
  for (int i = 0; config_setting_is_aggregate(s) && i < config_setting_length(s); i++) {
    const config_setting_t *el = config_setting_get_elem(s, (unsigned)i);
    const char *name = config_setting_name(el);
    _cleanup_free_ char *sub =
        name ? kgb_strdup_printf("%s.%s", path, name) : kgb_strdup_printf("%s[%d]", path, i);
    int r = sub ? check_settings(c, el, sub) : -ENOMEM;
    if (r < 0)
      return r;
  }
  return 0;
}

/* Checks every setting under s against the schema; prefix is the dotted path of s. */
static int check_group(struct check *c, const config_setting_t *s, const char *prefix,
                       bool in_override) {
  for (int i = 0; i < config_setting_length(s); i++) {
    const config_setting_t *el = config_setting_get_elem(s, (unsigned)i);
    const char *name = config_setting_name(el);
    _cleanup_free_ char *path = *prefix ? kgb_strdup_printf("%s.%s", prefix, name) : strdup(name);
    if (!path)
      return -ENOMEM;
    const char *file = where(el, c->file);
    unsigned line = config_setting_source_line(el);
    if (!*prefix && STREQ(name, "override")) {
      if (in_override || config_setting_type(el) != CONFIG_TYPE_GROUP)
        return kgb_error(c->ctx, -EINVAL, "%s:%u: 'override' must be a top-level group", file,
                         line);
      int r = check_group(c, el, "", true);
      if (r < 0)
        return r;
      continue;
    }
    const struct field *f = find_field(path);
    if (!f) {
      const char *near = closest_field(path);
      return kgb_error(c->ctx, -EINVAL, "%s:%u: unknown key '%s'%s%s%s", file, line, path,
                       near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
    }
    if (!type_ok(el, f->type))
      return kgb_error(c->ctx, -EINVAL, "%s:%u: '%s' must be %s", file, line, path,
                       type_names[f->type]);
    if (STREQ(path, "settings")) {
      int r = check_settings(c, el, path);
      if (r < 0)
        return r;
      continue;
    }
    int r = f->type == F_GROUP ? check_group(c, el, path, in_override) : check_values(c, el, path);
    if (r < 0)
      return r;
  }
  return 0;
}

static int check_required(struct check *c, const config_setting_t *root) {
  for (size_t i = 0; i < ELEMENTSOF(schema); i++) {
    if (!schema[i].required)
      continue;
    /* A required field inside an optional, absent group is not required. */
    const char *dot = strrchr(schema[i].path, '.');
    if (dot) {
      _cleanup_free_ char *parent = strndup(schema[i].path, (size_t)(dot - schema[i].path));
      if (!parent)
        return -ENOMEM;
      if (!config_setting_lookup(config_root_setting(root->config), parent))
        continue;
    }
    if (!config_setting_lookup(config_root_setting(root->config), schema[i].path))
      return kgb_error(c->ctx, -EINVAL, "%s: missing required field '%s'", c->file, schema[i].path);
  }
  return 0;
}

static char *expand_arch(const char *pattern, const char *arch) {
  const char *p = strstr(pattern, "${arch}");
  if (!p)
    return strdup(pattern);
  return kgb_strdup_printf("%.*s%s%s", (int)(p - pattern), pattern, arch, p + 7);
}

static int glob_fragments(struct kgb_ctx *ctx, const char *pattern, const char *arch, glob_t *g) {
  _cleanup_free_ char *exp = expand_arch(pattern, arch);
  _cleanup_free_ char *base = strjoin_path(ctx->datadir, "kconfig-fragments");
  if (!exp || !base)
    return -ENOMEM;
  _cleanup_free_ char *full = strjoin_path(base, exp);
  if (!full)
    return -ENOMEM;
  int gr = glob(full, GLOB_ERR, NULL, g);
  if (gr == GLOB_NOSPACE)
    return -ENOMEM;
  return gr == 0 ? 0 : -ENOENT;
}

static int check_fragment_pattern(struct check *c, const config_setting_t *s, const char *pattern) {
  if (strstr(pattern, "..") || pattern[0] == '/')
    return kgb_error(c->ctx, -EINVAL,
                     "%s:%u: fragment '%s' must be relative to kconfig-fragments/ (pass other "
                     "files with --fragment)",
                     where(s, c->file), config_setting_source_line(s), pattern);
  glob_t g;
  int r = glob_fragments(c->ctx, pattern, c->arch ? c->arch : "x86_64", &g);
  if (r == 0)
    globfree(&g);
  if (r == -ENOENT)
    return kgb_error(c->ctx, -ENOENT,
                     "%s:%u: fragment '%s' matches no file in '%s/kconfig-fragments'",
                     where(s, c->file), config_setting_source_line(s), pattern, c->ctx->datadir);
  return r;
}

static int check_recipe(struct check *c, const config_setting_t *s, const char *name) {
  _cleanup_free_ char *p = kgb_strdup_printf("%s/recipes/%s.recipe", c->ctx->datadir, name);
  if (!p)
    return -ENOMEM;
  if (strchr(name, '/') || !is_file(p))
    return kgb_error(c->ctx, -ENOENT, "%s:%u: unknown recipe '%s': no '%s/recipes/%s.recipe'",
                     where(s, c->file), config_setting_source_line(s), name, c->ctx->datadir, name);
  return 0;
}

/* ---- include loops: libconfig only stops at a nesting depth, so find the cycle first ---- */
static int scan_includes(struct kgb_ctx *ctx, const char *incdir, const char *path,
                         const char *shown, char ***stack) {
  if (strv_contains(*stack, path)) {
    struct sbuf sb = SBUF_INIT;
    bool on = false;
    for (size_t i = 0; (*stack)[i]; i++) {
      on = on || STREQ((*stack)[i], path);
      if (on)
        sbuf_addf(&sb, "%s -> ", (*stack)[i]);
    }
    sbuf_adds(&sb, path);
    int r = kgb_error(ctx, -ELOOP, "%s: include loop: %s", shown, sbuf_str(&sb));
    sbuf_release(&sb);
    return r;
  }
  /* libconfig 1.5 (no include hook before 1.7) would open whatever this names: a FIFO blocks
   * it forever and a directory makes its scanner exit(2) with no file and no line. Every file
   * is checked here, before libconfig sees it; "shown" is the @include's file and line. */
  _cleanup_free_ char *text = NULL;
  size_t len = 0;
  int r = read_full_file(path, &text, &len);
  /* libconfig reads past a NUL where this scan (C strings) stops: an @include hidden behind
   * one would reach libconfig unchecked. A profile is text: a NUL byte is refused. */
  const char *nul = r >= 0 ? memchr(text, '\0', len) : NULL;
  if (nul) {
    unsigned at_line = 1;
    for (const char *c = text; c < nul; c++)
      at_line += *c == '\n';
    return kgb_error(ctx, -EINVAL, "%s:%u: a NUL byte: a profile is text", path, at_line);
  }
  if (r < 0 && STREQ(shown, path))
    return kgb_error(ctx, r, "cannot read profile '%s': %s", path,
                     file_error_reason(path, r, READ_TEXT_MAX));
  if (r < 0)
    return kgb_error(ctx, r, "%s: cannot include '%s': %s", shown, path,
                     file_error_reason(path, r, READ_TEXT_MAX));
  r = strv_extend(stack, path);
  if (r < 0)
    return r;
  unsigned lineno = 0;
  for (char *line = text, *nl; line && r >= 0; line = nl) {
    nl = strchr(line, '\n');
    if (nl)
      *nl++ = '\0';
    lineno++;
    char *p = strstrip(line);
    if (!startswith(p, "@include"))
      continue;
    char *q1 = strchr(p, '"'), *q2 = q1 ? strchr(q1 + 1, '"') : NULL;
    if (!q2)
      continue;
    *q2 = '\0';
    _cleanup_free_ char *inc = strjoin_path(incdir, q1 + 1);
    _cleanup_free_ char *where_s = kgb_strdup_printf("%s:%u", path, lineno);
    if (!inc || !where_s)
      return -ENOMEM;
#if LIBCONFIG_VER_MAJOR == 1 && LIBCONFIG_VER_MINOR < 7
    /* libconfig before 1.7 puts the include directory in front of every @include, absolute
     * or not, and then says only "cannot open include file" */
    if (q1[1] == '/')
      return kgb_error(ctx, -ENOTSUP,
                       "%s: cannot include '%s': libconfig %d.%d reads every @include below "
                       "'%s'; give the path relative to that directory",
                       where_s, q1 + 1, LIBCONFIG_VER_MAJOR, LIBCONFIG_VER_MINOR, incdir);
#endif
    r = scan_includes(ctx, incdir, inc, where_s, stack);
  }
  size_t n = strv_length(*stack);
  free((*stack)[n - 1]);
  (*stack)[n - 1] = NULL;
  return r;
}

/* ---- override: deep merge of a group into the root ---- */
static int copy_setting(config_setting_t *parent, const config_setting_t *src) {
  int t = config_setting_type(src);
  config_setting_t *dst = config_setting_add(parent, config_setting_name(src), t);
  if (!dst)
    return -ENOMEM;
  switch (t) {
  case CONFIG_TYPE_INT:
    config_setting_set_int(dst, config_setting_get_int(src));
    break;
  case CONFIG_TYPE_INT64:
    config_setting_set_int64(dst, config_setting_get_int64(src));
    break;
  case CONFIG_TYPE_FLOAT:
    config_setting_set_float(dst, config_setting_get_float(src));
    break;
  case CONFIG_TYPE_BOOL:
    config_setting_set_bool(dst, config_setting_get_bool(src));
    break;
  case CONFIG_TYPE_STRING:
    config_setting_set_string(dst, config_setting_get_string(src));
    break;
  default:
    for (int i = 0; i < config_setting_length(src); i++) {
      int r = copy_setting(dst, config_setting_get_elem(src, (unsigned)i));
      if (r < 0)
        return r;
    }
  }
  return 0;
}

static int apply_override(config_setting_t *dst, const config_setting_t *ov) {
  for (int i = 0; i < config_setting_length(ov); i++) {
    const config_setting_t *el = config_setting_get_elem(ov, (unsigned)i);
    const char *name = config_setting_name(el);
    config_setting_t *cur = config_setting_get_member(dst, name);
    if (cur && config_setting_type(cur) == CONFIG_TYPE_GROUP &&
        config_setting_type(el) == CONFIG_TYPE_GROUP) {
      int r = apply_override(cur, el);
      if (r < 0)
        return r;
      continue;
    }
    if (cur && config_setting_remove(dst, name) != CONFIG_TRUE)
      return -EINVAL;
    int r = copy_setting(dst, el);
    if (r < 0)
      return r;
  }
  return 0;
}

/* A list filled in one allocation: strv_extend finds the end each time, and a list of
 * 200,000 packages took 12 s that way. */
static int get_strv(const config_setting_t *s, char ***ret) {
  int n = config_setting_length(s);
  if (n <= 0)
    return 0;
  _cleanup_strv_free_ char **v = calloc((size_t)n + 1, sizeof(char *));
  if (!v)
    return -ENOMEM;
  for (int i = 0; i < n; i++)
    if (!(v[i] = strdup(config_setting_get_string_elem(s, i))))
      return -ENOMEM;
  *ret = TAKE_PTR(v);
  return 0;
}

static int flatten(const config_setting_t *s, const char *prefix, char ***out);

/* Every stored field of the schema from the checked tree into the struct, defaults where a
 * key is absent. */
static int fill(struct kgb_ctx *ctx, struct kgb_profile *p) {
  for (size_t i = 0; i < ELEMENTSOF(schema); i++) {
    const struct field *f = &schema[i];
    if (!f->stored)
      continue;
    void *at = (char *)p + f->offset;
    const config_setting_t *s = config_lookup(&p->cfg, f->path);
    if (f->has && s)
      *(bool *)((char *)p + f->has) = true;
    int r = 0;
    switch (f->type) {
    case F_STRING: {
      const char *v = s ? config_setting_get_string(s) : f->def;
      if (v && !(*(char **)at = strdup(v)))
        return -ENOMEM;
      break;
    }
    case F_STRINGS:
      if (s)
        r = get_strv(s, (char ***)at);
      else if (f->def)
        r = strv_extend((char ***)at, f->def);
      break;
    case F_INT: {
      long long v = s ? config_setting_get_int64(s) : 0;
      if (f->size == sizeof(int))
        *(int *)at = (int)v;
      else
        *(long long *)at = v;
      break;
    }
    case F_BOOL:
      *(bool *)at = s && config_setting_get_bool(s);
      break;
    case F_GROUP:
      break;
    }
    if (r < 0)
      return r;
  }
  const config_setting_t *settings = config_lookup(&p->cfg, "settings");
  int r = settings ? flatten(settings, "", &p->settings) : 0;
  if (r == -EINVAL)
    return kgb_error(ctx, r, "%s:%u: settings: values must be strings, integers or booleans",
                     p->path, config_setting_source_line(settings));
  return r;
}

static int resolve_path(struct kgb_ctx *ctx, const char *name_or_path, char **ret) {
  if (strchr(name_or_path, '/') || endswith(name_or_path, ".cfg")) {
    struct stat st;
    if (stat(name_or_path, &st) < 0)
      return kgb_error(ctx, -ENOENT, "profile file '%s' does not exist", name_or_path);
    *ret = strdup(name_or_path);
    return *ret ? 0 : -ENOMEM;
  }
  _cleanup_free_ char *dir = profiles_dir(ctx);
  _cleanup_free_ char *p = dir ? kgb_strdup_printf("%s/%s.cfg", dir, name_or_path) : NULL;
  if (!p)
    return -ENOMEM;
  if (is_file(p)) {
    *ret = TAKE_PTR(p);
    return 0;
  }
  _cleanup_strv_free_ char **names = NULL;
  const char *best = NULL;
  size_t bestd = 4;
  if (kgb_profile_list(ctx, &names) == 0)
    for (size_t i = 0; names[i]; i++) {
      size_t d = levenshtein(name_or_path, names[i], 3);
      if (d < bestd || (!best && (strstr(names[i], name_or_path) != NULL))) {
        bestd = MIN(d, bestd);
        best = names[i];
      }
    }
  kgb_error_clear(ctx);
  return kgb_error(
      ctx, -ENOENT, "unknown profile '%s'%s%s%s; 'kata-gpu-builder profiles' lists them",
      name_or_path, best ? " (did you mean '" : "", best ? best : "", best ? "'?)" : "");
}

int kgb_profile_load(struct kgb_ctx *ctx, const char *name_or_path, struct kgb_profile **ret) {
  _cleanup_(kgb_profile_freep) struct kgb_profile *p = calloc(1, sizeof(*p));
  if (!p)
    return -ENOMEM;
  config_init(&p->cfg);
  int r = resolve_path(ctx, name_or_path, &p->path);
  if (r < 0)
    return r;
  _cleanup_free_ char *incdir = profiles_dir(ctx);
  if (!incdir)
    return -ENOMEM;
  _cleanup_strv_free_ char **stack = NULL;
  r = scan_includes(ctx, incdir, p->path, p->path, &stack);
  if (r < 0)
    return r;
  config_set_include_dir(&p->cfg, incdir);
  if (config_read_file(&p->cfg, p->path) != CONFIG_TRUE) {
    const char *f = config_error_file(&p->cfg);
    return kgb_error(ctx, -EINVAL, "%s:%d: %s", f ? f : p->path, config_error_line(&p->cfg),
                     config_error_text(&p->cfg));
  }
  config_setting_t *root = config_root_setting(&p->cfg);
  const char *arch = NULL;
  config_lookup_string(&p->cfg, "kernel.arch", &arch);
  const char *ov_arch = NULL;
  config_lookup_string(&p->cfg, "override.kernel.arch", &ov_arch);
  struct check c = {ctx, p->path, ov_arch ? ov_arch : arch};
  r = check_group(&c, root, "", false);
  if (r < 0)
    return r;
  config_setting_t *ov = config_setting_get_member(root, "override");
  if (ov) {
    r = apply_override(root, ov);
    if (r < 0)
      return kgb_error(ctx, r, "%s: applying 'override': %s", p->path, strerror(-r));
    config_setting_remove(root, "override");
  }
  r = check_required(&c, root);
  if (r < 0)
    return r;
  if ((r = fill(ctx, p)) < 0)
    return r;
  *ret = TAKE_PTR(p);
  return 0;
}

static bool is_profile_file(_unused_ int dir_fd, const char *name, _unused_ void *userdata) {
  return endswith(name, ".cfg");
}

int kgb_profile_list(struct kgb_ctx *ctx, char ***ret) {
  _cleanup_free_ char *dir = profiles_dir(ctx);
  if (!dir)
    return -ENOMEM;
  _cleanup_strv_free_ char **names = NULL;
  int r = readdir_sorted(dir, READDIR_NO_HIDDEN, is_profile_file, NULL, &names);
  if (r < 0)
    return r == -ENOMEM ? r
                        : kgb_error(ctx, r, "cannot list profiles in '%s': %s", dir, strerror(-r));
  for (size_t i = 0; names[i]; i++)
    names[i][strlen(names[i]) - 4] = '\0';
  /* by profile name: "a-b.cfg" sorts before "a.cfg", "a" before "a-b" */
  strv_sort(names);
  *ret = TAKE_PTR(names);
  return 0;
}

static int json_setting(struct sbuf *sb, const config_setting_t *s, int indent) {
  int t = config_setting_type(s);
  switch (t) {
  case CONFIG_TYPE_INT:
    return sbuf_addf(sb, "%d", config_setting_get_int(s));
  case CONFIG_TYPE_INT64:
    return sbuf_addf(sb, "%lld", config_setting_get_int64(s));
  case CONFIG_TYPE_FLOAT:
    return sbuf_addf(sb, "%g", config_setting_get_float(s));
  case CONFIG_TYPE_BOOL:
    return sbuf_adds(sb, config_setting_get_bool(s) ? "true" : "false");
  case CONFIG_TYPE_STRING:
    return sbuf_add_json(sb, config_setting_get_string(s));
  default: {
    bool group = t == CONFIG_TYPE_GROUP;
    int n = config_setting_length(s);
    int r = sbuf_adds(sb, group ? "{" : "[");
    for (int i = 0; i < n && r >= 0; i++) {
      const config_setting_t *el = config_setting_get_elem(s, (unsigned)i);
      r = sbuf_addf(sb, "%s\n%*s", i ? "," : "", indent + 2, "");
      if (r >= 0 && group) {
        r = sbuf_add_json(sb, config_setting_name(el));
        if (r >= 0)
          r = sbuf_adds(sb, ": ");
      }
      if (r >= 0)
        r = json_setting(sb, el, indent + 2);
    }
    if (r >= 0 && n)
      r = sbuf_addf(sb, "\n%*s", indent, "");
    return r < 0 ? r : sbuf_adds(sb, group ? "}" : "]");
  }
  }
}

int kgb_profile_format(const struct kgb_profile *p, bool json, char **ret) {
  if (json) {
    struct sbuf sb = SBUF_INIT;
    int r = json_setting(&sb, config_root_setting(&p->cfg), 0);
    if (r >= 0)
      r = sbuf_addc(&sb, '\n');
    if (r < 0) {
      sbuf_release(&sb);
      return r;
    }
    *ret = sbuf_steal(&sb);
    return *ret ? 0 : -ENOMEM;
  }
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f)
    return -ENOMEM;
  config_write(&p->cfg, f);
  if (fclose(f) != 0) {
    free(buf);
    return -ENOMEM;
  }
  *ret = buf;
  return 0;
}

int kgb_profile_fragments(struct kgb_ctx *ctx, const struct kgb_profile *p, char ***ret_paths,
                          char ***ret_names) {
  _cleanup_strv_free_ char **paths = NULL, **names = NULL;
  _cleanup_free_ char *base = strjoin_path(ctx->datadir, "kconfig-fragments");
  if (!base)
    return -ENOMEM;
  for (size_t i = 0; p->kernel.fragments && p->kernel.fragments[i]; i++) {
    glob_t g;
    int r = glob_fragments(ctx, p->kernel.fragments[i], p->kernel.arch, &g);
    if (r == -ENOENT)
      return kgb_error(ctx, r, "%s: fragment '%s' matches no file in '%s'", p->path,
                       p->kernel.fragments[i], base);
    if (r < 0)
      return r;
    for (size_t j = 0; j < g.gl_pathc && r >= 0; j++) {
      const char *rel = g.gl_pathv[j] + strlen(base) + 1;
      if ((r = strv_extend(&paths, g.gl_pathv[j])) >= 0)
        r = strv_push(&names, kgb_strdup_printf("kconfig-fragments/%s", rel));
    }
    globfree(&g);
    if (r < 0)
      return r;
  }
  *ret_paths = TAKE_PTR(paths);
  *ret_names = TAKE_PTR(names);
  return 0;
}

int kgb_profile_source(struct kgb_ctx *ctx, const struct kgb_profile *p, const char *mirror,
                       char **ret) {
  if (p->kernel.source) {
    *ret = strdup(p->kernel.source);
    return *ret ? 0 : -ENOMEM;
  }
  const char *version = p->kernel.version ? p->kernel.version : "6.1";
  _cleanup_free_ char *deb = kgb_strdup_printf("/usr/src/linux-source-%s.tar.xz", version);
  if (!deb)
    return -ENOMEM;
  if (is_file(deb)) {
    *ret = TAKE_PTR(deb);
    return 0;
  }
  /* a series such as 6.1 names Debian's package; a full version can be downloaded */
  size_t dots = 0;
  for (const char *c = version; *c; c++)
    dots += *c == '.';
  if (dots < 2)
    return kgb_error(ctx, -ENOENT,
                     "no kernel source: profile '%s' names none and '%s' does not exist; install "
                     "it with 'apt-get install linux-source-%s', pass --kernel-source "
                     "DIR|TARBALL|URL, or a full version (-v %s.N) to download",
                     p->name, deb, version, version);
  const char *tmpl = mirror             ? mirror
                     : p->kernel.mirror ? p->kernel.mirror
                                        : getenv("KGB_KERNEL_MIRROR");
  return kgb_kernel_url_for_version(ctx, tmpl && *tmpl ? tmpl : KGB_KERNEL_URL_TEMPLATE, version,
                                    ret);
}

/* ---- settings ---- */

static int flatten(const config_setting_t *s, const char *prefix, char ***out) {
  for (int i = 0; i < config_setting_length(s); i++) {
    const config_setting_t *el = config_setting_get_elem(s, (unsigned)i);
    _cleanup_free_ char *name = *prefix
                                    ? kgb_strdup_printf("%s.%s", prefix, config_setting_name(el))
                                    : strdup(config_setting_name(el));
    if (!name)
      return -ENOMEM;
    char *v = NULL;
    switch (config_setting_type(el)) {
    case CONFIG_TYPE_GROUP: {
      int r = flatten(el, name, out);
      if (r < 0)
        return r;
      continue;
    }
    case CONFIG_TYPE_STRING:
      v = kgb_strdup_printf("%s=%s", name, config_setting_get_string(el));
      break;
    case CONFIG_TYPE_INT:
      v = kgb_strdup_printf("%s=%d", name, config_setting_get_int(el));
      break;
    case CONFIG_TYPE_INT64:
      v = kgb_strdup_printf("%s=%lld", name, config_setting_get_int64(el));
      break;
    case CONFIG_TYPE_BOOL:
      v = kgb_strdup_printf("%s=%s", name, config_setting_get_bool(el) ? "true" : "");
      break;
    default:
      return -EINVAL;
    }
    if (strv_push(out, v) < 0)
      return -ENOMEM;
  }
  return 0;
}

int kgb_profile_settings(struct kgb_ctx *ctx, const struct kgb_profile *p, char ***ret) {
  (void)ctx; /* the values were checked when the profile was loaded */
  _cleanup_strv_free_ char **v = NULL;
  for (size_t i = 0; p->settings && p->settings[i]; i++)
    if (strv_extend(&v, p->settings[i]) < 0)
      return -ENOMEM;
  *ret = TAKE_PTR(v);
  return 0;
}
