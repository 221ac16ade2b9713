/* The rootfs and image stages. Order of work in kgb_rootfs_build: recipes resolved and
 * expanded (every error a user can make is reported here, before anything runs), the kernel
 * and its header package built or found, the bootstrap base found or made, the stage key
 * computed, then in a temporary stage directory: the base extracted, each recipe's
 * packages, inputs, files and steps in namespaced chroots, cleanup, the module checks, the
 * report, and a rename into place. */
#define _GNU_SOURCE
#include "rootfs.h"

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../shared/sbuf.h"
#include "../shared/util.h"
#include "chroot.h"
#include "exec.h"
#include "fetch.h"
#include "source.h"

#define KGB_BOOTSTRAP_STAGE_VERSION "bootstrap 1"
#define KGB_ROOTFS_STAGE_VERSION "rootfs 1"
#define KGB_IMAGE_STAGE_VERSION "image 1"

/* ================================================================ apt sources ==== */

void kgb_apt_sources_release(struct kgb_apt_sources *s) {
  for (size_t i = 0; i < s->n; i++) {
    free(s->v[i].uri);
    free(s->v[i].suite);
    strv_free(s->v[i].components);
    free(s->v[i].signed_by);
    free(s->v[i].file);
  }
  free(s->v);
  s->v = NULL;
  s->n = 0;
}

static int add_source(struct kgb_apt_sources *s, const char *uri, const char *suite,
                      char *const *components, const char *signed_by, const char *file,
                      unsigned line) {
  struct kgb_apt_source *v = realloc(s->v, (s->n + 1) * sizeof(*v));
  if (!v)
    return -ENOMEM;
  s->v = v;
  struct kgb_apt_source *e = &s->v[s->n];
  *e = (struct kgb_apt_source){.line = line};
  /* one URI spelling: without the trailing slash */
  size_t ul = strlen(uri);
  while (ul > 1 && uri[ul - 1] == '/')
    ul--;
  e->uri = strndup(uri, ul);
  e->suite = strdup(suite);
  e->signed_by = signed_by ? strdup(signed_by) : NULL;
  e->file = strdup(file);
  int r = e->uri && e->suite && e->file && (!signed_by || e->signed_by) ? 0 : -ENOMEM;
  for (size_t i = 0; r >= 0 && components && components[i]; i++)
    r = strv_extend(&e->components, components[i]);
  s->n++;
  return r;
}

/* "deb [arch=amd64 signed-by=/k.gpg] URI SUITE COMP..." */
static int parse_list_line(char *line, const char *file, unsigned lineno,
                           struct kgb_apt_sources *out) {
  char *hash = strchr(line, '#');
  if (hash)
    *hash = '\0';
  char *save = NULL, *tok = strtok_r(line, " \t", &save);
  if (!tok || !STREQ(tok, "deb"))
    return 0;
  _cleanup_free_ char *signed_by = NULL;
  tok = strtok_r(NULL, " \t", &save);
  if (tok && tok[0] == '[') {
    /* options up to the closing bracket, possibly over several tokens */
    for (;;) {
      char *opt = tok[0] == '[' ? tok + 1 : tok;
      char *end = strchr(opt, ']');
      if (end)
        *end = '\0';
      if (startswith(opt, "signed-by=")) {
        free(signed_by);
        signed_by = strdup(opt + strlen("signed-by="));
        if (!signed_by)
          return -ENOMEM;
      }
      if (end) {
        tok = end[1] ? end + 1 : strtok_r(NULL, " \t", &save);
        break;
      }
      if (!(tok = strtok_r(NULL, " \t", &save)))
        return 0;
    }
  }
  char *uri = tok, *suite = strtok_r(NULL, " \t", &save);
  if (!uri || !suite)
    return 0;
  _cleanup_strv_free_ char **comps = NULL;
  for (char *c; (c = strtok_r(NULL, " \t", &save));)
    if (strv_extend(&comps, c) < 0)
      return -ENOMEM;
  return add_source(out, uri, suite, comps, signed_by, file, lineno);
}

static int read_list(const char *path, struct kgb_apt_sources *out) {
  _cleanup_free_ char *text = NULL;
  if (read_full_file(path, &text, NULL) < 0)
    return 0;
  unsigned lineno = 0;
  int r = 0;
  for (char *line = text, *nl; line && *line && r >= 0; line = nl) {
    nl = strchr(line, '\n');
    if (nl)
      *nl++ = '\0';
    lineno++;
    r = parse_list_line(line, path, lineno, out);
  }
  return r;
}

struct stanza {
  char *types, *uris, *suites, *components, *signed_by, *enabled;
  unsigned line;
};

static void stanza_release(struct stanza *s) {
  free(s->types);
  free(s->uris);
  free(s->suites);
  free(s->components);
  free(s->signed_by);
  free(s->enabled);
  *s = (struct stanza){0};
}

static int split_words(const char *s, char ***ret) {
  _cleanup_free_ char *copy = strdup(s ? s : "");
  if (!copy)
    return -ENOMEM;
  char *save = NULL;
  for (char *w = strtok_r(copy, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save))
    if (strv_extend(ret, w) < 0)
      return -ENOMEM;
  return 0;
}

static int flush_stanza(struct stanza *s, const char *file, struct kgb_apt_sources *out) {
  int r = 0;
  _cleanup_strv_free_ char **types = NULL, **uris = NULL, **suites = NULL, **comps = NULL;
  if (!s->uris || !s->suites || (s->enabled && strcasecmp(strstrip(s->enabled), "no") == 0))
    goto done;
  if ((r = split_words(s->types, &types)) < 0 || (r = split_words(s->uris, &uris)) < 0 ||
      (r = split_words(s->suites, &suites)) < 0 || (r = split_words(s->components, &comps)) < 0)
    goto done;
  if (!strv_contains(types, "deb"))
    goto done;
  /* an inline key (Signed-By: followed by an armored block) has no file to name */
  const char *sb = s->signed_by ? strstrip(s->signed_by) : NULL;
  if (sb && (strchr(sb, '\n') || startswith(sb, "-----") || !*sb))
    sb = NULL;
  for (size_t u = 0; uris && uris[u] && r >= 0; u++)
    for (size_t i = 0; suites && suites[i] && r >= 0; i++)
      r = add_source(out, uris[u], suites[i], comps, sb, file, s->line);
done:
  stanza_release(s);
  return r;
}

static int read_sources(const char *path, struct kgb_apt_sources *out) {
  _cleanup_free_ char *text = NULL;
  if (read_full_file(path, &text, NULL) < 0)
    return 0;
  struct stanza s = {0};
  char **last = NULL;
  unsigned lineno = 0;
  int r = 0;
  for (char *line = text, *nl; line && *line && r >= 0; line = nl) {
    nl = strchr(line, '\n');
    if (nl)
      *nl++ = '\0';
    lineno++;
    if (line[0] == '#')
      continue;
    if (!*strstrip(line)) {
      r = flush_stanza(&s, path, out);
      last = NULL;
      continue;
    }
    if ((line[0] == ' ' || line[0] == '\t') && last) {
      /* a continuation line */
      char *joined = kgb_strdup_printf("%s\n%s", *last ? *last : "", strstrip(line));
      if (!joined)
        return -ENOMEM;
      free(*last);
      *last = joined;
      continue;
    }
    char *colon = strchr(line, ':');
    if (!colon)
      continue;
    *colon = '\0';
    char *key = strstrip(line), *value = strstrip(colon + 1);
    last = strcasecmp(key, "Types") == 0        ? &s.types
           : strcasecmp(key, "URIs") == 0       ? &s.uris
           : strcasecmp(key, "Suites") == 0     ? &s.suites
           : strcasecmp(key, "Components") == 0 ? &s.components
           : strcasecmp(key, "Signed-By") == 0  ? &s.signed_by
           : strcasecmp(key, "Enabled") == 0    ? &s.enabled
                                                : NULL;
    if (last) {
      free(*last);
      if (!(*last = strdup(value)))
        return -ENOMEM;
      if (!s.line)
        s.line = lineno;
    }
  }
  if (r >= 0)
    r = flush_stanza(&s, path, out);
  stanza_release(&s);
  return r;
}

static bool is_sources_file(_unused_ int dir_fd, const char *name, _unused_ void *userdata) {
  return endswith(name, ".list") || endswith(name, ".sources");
}

int kgb_apt_sources_read(struct kgb_ctx *ctx, const char *apt_dir, struct kgb_apt_sources *ret) {
  struct kgb_apt_sources out = {0};
  _cleanup_free_ char *list = strjoin_path(apt_dir, "sources.list");
  _cleanup_free_ char *dir = strjoin_path(apt_dir, "sources.list.d");
  if (!list || !dir)
    return -ENOMEM;
  int r = read_list(list, &out);
  _cleanup_strv_free_ char **names = NULL;
  /* no sources.list.d (or an unreadable one): sources.list is all there is */
  if (r >= 0 && readdir_sorted(dir, READDIR_NO_HIDDEN, is_sources_file, NULL, &names) == -ENOMEM)
    r = -ENOMEM;
  for (size_t i = 0; r >= 0 && names && names[i]; i++) {
    _cleanup_free_ char *p = strjoin_path(dir, names[i]);
    if (!p)
      r = -ENOMEM;
    else
      r = endswith(names[i], ".list") ? read_list(p, &out) : read_sources(p, &out);
  }
  if (r < 0) {
    kgb_apt_sources_release(&out);
    return kgb_error(ctx, r, "cannot read the apt sources in '%s': %s", apt_dir, strerror(-r));
  }
  *ret = out;
  return 0;
}

int kgb_apt_sources_for_suite(struct kgb_ctx *ctx, const struct kgb_apt_sources *all,
                              const char *apt_dir, const char *suite, struct kgb_apt_sources *ret) {
  struct kgb_apt_sources out = {0};
  _cleanup_free_ char *updates = kgb_strdup_printf("%s-updates", suite);
  _cleanup_free_ char *security = kgb_strdup_printf("%s-security", suite);
  if (!updates || !security)
    return -ENOMEM;
  const char *const wanted[] = {suite, updates, security};
  int r = 0;
  for (size_t w = 0; w < ELEMENTSOF(wanted) && r >= 0; w++)
    for (size_t i = 0; i < all->n && r >= 0; i++) {
      const struct kgb_apt_source *s = &all->v[i];
      if (!STREQ(s->suite, wanted[w]))
        continue;
      bool dup = false;
      for (size_t j = 0; j < out.n && !dup; j++)
        dup = STREQ(out.v[j].uri, s->uri) && STREQ(out.v[j].suite, s->suite);
      if (!dup)
        r = add_source(&out, s->uri, s->suite, s->components, s->signed_by, s->file, s->line);
    }
  if (r >= 0 && (out.n == 0 || !STREQ(out.v[0].suite, suite)))
    r = kgb_error(ctx, -ENOENT,
                  "the host's apt sources ('%s/sources.list' and 'sources.list.d/') have no entry "
                  "for suite '%s': add one, or set rootfs.mirror (and rootfs.keyring) in the "
                  "profile",
                  apt_dir, suite);
  if (r < 0) {
    kgb_apt_sources_release(&out);
    return r;
  }
  *ret = out;
  return 0;
}

int kgb_release_date(const char *text, char **ret) {
  /* InRelease: the fields follow the armor header lines and an empty line */
  if (startswith(text, "-----BEGIN PGP SIGNED MESSAGE-----")) {
    const char *body = strstr(text, "\n\n");
    const char *body_crlf = strstr(text, "\r\n\r\n");
    if (!body && !body_crlf)
      return -ENOENT;
    text = body && (!body_crlf || body < body_crlf) ? body + 2 : body_crlf + 4;
  }
  for (const char *line = text; line && *line;) {
    const char *nl = strchr(line, '\n');
    size_t n = nl ? (size_t)(nl - line) : strlen(line);
    if (n > 5 && strncmp(line, "Date:", 5) == 0) {
      const char *v = line + 5;
      while (*v == ' ' || *v == '\t')
        v++;
      size_t vn = n - (size_t)(v - line);
      while (vn && (v[vn - 1] == '\r' || v[vn - 1] == ' '))
        vn--;
      if (!vn)
        break;
      *ret = strndup(v, vn);
      return *ret ? 0 : -ENOMEM;
    }
    /* the fields end at the first empty line (then comes the signature) */
    if (n == 0 || (n == 1 && line[0] == '\r'))
      break;
    line = nl ? nl + 1 : NULL;
  }
  return -ENOENT;
}

/* ================================================================ Release dates ==== */

static size_t on_body(char *data, size_t size, size_t n, void *userdata) {
  struct sbuf *sb = userdata;
  if (sb->len + size * n > (16u << 20) || sbuf_add(sb, data, size * n) < 0)
    return 0;
  return size * n;
}

/* GETs a small text file; -ENOENT for 404. */
static int http_get_text(const char *url, char **ret, char **ret_msg) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURL *c = curl_easy_init();
  if (!c)
    return -ENOMEM;
  struct sbuf sb = SBUF_INIT;
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sb);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 30L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "kata-gpu-builder");
  CURLcode cc = curl_easy_perform(c);
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(c);
  int r = 0;
  if (cc != CURLE_OK)
    r = -EHOSTUNREACH, *ret_msg = strdup(*errbuf ? errbuf : curl_easy_strerror(cc));
  else if (code == 404 || code == 410)
    r = -ENOENT, *ret_msg = strdup("HTTP 404");
  else if (code >= 400)
    r = -EIO, *ret_msg = kgb_strdup_printf("HTTP %ld", code);
  if (r < 0 || sbuf_addc(&sb, '\0') < 0) {
    sbuf_release(&sb);
    return r < 0 ? r : -ENOMEM;
  }
  *ret = sbuf_steal(&sb);
  return 0;
}

static int mirror_date(struct kgb_ctx *ctx, const char *uri, const char *suite, char **ret) {
  static const char *const files[] = {"InRelease", "Release"};
  _cleanup_free_ char *msg = NULL;
  for (size_t i = 0; i < ELEMENTSOF(files); i++) {
    _cleanup_free_ char *url = kgb_strdup_printf("%s/dists/%s/%s", uri, suite, files[i]);
    _cleanup_free_ char *text = NULL;
    if (!url)
      return -ENOMEM;
    free(msg);
    msg = NULL;
    int r = http_get_text(url, &text, &msg);
    if (r == -ENOENT)
      continue;
    if (r < 0)
      return kgb_error(ctx, r, "%s: %s", url, msg ? msg : strerror(-r));
    r = kgb_release_date(text, ret);
    if (r < 0)
      return kgb_error(ctx, -EBADMSG, "%s: no 'Date:' field", url);
    return 0;
  }
  return kgb_error(ctx, -ENOENT, "%s/dists/%s: no InRelease or Release file (%s)", uri, suite,
                   msg ? msg : "404");
}

/* ================================================================ settings ==== */

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
  const config_setting_t *s = config_lookup(&p->cfg, "settings");
  _cleanup_strv_free_ char **out = NULL;
  if (s) {
    int r = flatten(s, "", &out);
    if (r == -EINVAL)
      return kgb_error(ctx, r, "%s:%u: settings: values must be strings, integers or booleans",
                       p->path, config_setting_source_line(s));
    if (r < 0)
      return r;
  }
  *ret = TAKE_PTR(out);
  return 0;
}

/* ================================================================ helpers ==== */

static int log_line(const char *log_path, const char *fmt, ...) _printf_(2, 3);
static int log_line(const char *log_path, const char *fmt, ...) {
  _cleanup_close_ int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    return -errno;
  va_list ap;
  va_start(ap, fmt);
  vdprintf(fd, fmt, ap);
  va_end(ap);
  return 0;
}

static const char *deb_arch(const char *arch) {
  if (STREQ(arch, "x86_64"))
    return "amd64";
  if (STREQ(arch, "aarch64") || STREQ(arch, "arm64"))
    return "arm64";
  return arch;
}

static int first_line_of(struct kgb_ctx *ctx, char *const *argv, char **ret) {
  int r = kgb_exec_first_line(ctx, argv, ret);
  if (r < 0) {
    kgb_error_clear(ctx);
    *ret = strdup("unknown");
    return *ret ? 0 : -ENOMEM;
  }
  return 0;
}

/* Writes a stage's files into tmp and renames it to dir; a concurrent run that finished the
 * same key first wins (its result is as good). */
static int stage_commit(struct kgb_ctx *ctx, const char *tmp, const char *dir) {
  if (is_dir(dir))
    rm_rf(dir);
  if (rename(tmp, dir) < 0) {
    int e = errno;
    if ((e == EEXIST || e == ENOTEMPTY) && is_dir(dir)) {
      rm_rf(tmp);
      return 0;
    }
    return kgb_error(ctx, -e, "cannot rename '%s' to '%s': %s", tmp, dir, strerror(e));
  }
  return 0;
}

static int make_stage_tmp(struct kgb_ctx *ctx, const char *stage, const char *key, char **ret) {
  _cleanup_free_ char *parent = kgb_strdup_printf("%s/stages/%s", ctx->workdir, stage);
  _cleanup_free_ char *tmp = parent ? kgb_strdup_printf("%s/.%.16s.tmp-XXXXXX", parent, key) : NULL;
  if (!tmp)
    return -ENOMEM;
  int r = mkdir_p(parent, 0755);
  if (r < 0)
    return kgb_error(ctx, r, "cannot create '%s': %s", parent, strerror(-r));
  if (!mkdtemp(tmp))
    return kgb_error(ctx, -errno, "cannot create a directory in '%s': %m", parent);
  *ret = TAKE_PTR(tmp);
  return 0;
}

static int logs_dir(struct kgb_ctx *ctx) {
  _cleanup_free_ char *d = kgb_strdup_printf("%s/logs", ctx->workdir);
  if (!d)
    return -ENOMEM;
  int r = mkdir_p(d, 0755);
  return r < 0 ? kgb_error(ctx, r, "cannot create '%s': %s", d, strerror(-r)) : 0;
}

/* A "key value" state file beside manifest.json, what a cached stage is read back from. */
static int state_get(const char *dir, const char *key, char ***ret) {
  _cleanup_free_ char *p = strjoin_path(dir, "state"), *text = NULL;
  if (!p)
    return -ENOMEM;
  int r = read_full_file(p, &text, NULL);
  if (r < 0)
    return r;
  size_t kl = strlen(key);
  for (char *line = text, *nl; line && *line; line = nl) {
    nl = strchr(line, '\n');
    if (nl)
      *nl++ = '\0';
    if (strncmp(line, key, kl) == 0 && line[kl] == ' ' && strv_extend(ret, line + kl + 1) < 0)
      return -ENOMEM;
  }
  return 0;
}

static char *state_get1(const char *dir, const char *key) {
  _cleanup_strv_free_ char **v = NULL;
  if (state_get(dir, key, &v) < 0 || !v || !v[0])
    return NULL;
  return strdup(v[0]);
}

/* ================================================================ bootstrap ==== */

struct bootstrap {
  char *distro, *suite, *arch, *variant;
  char **components, **packages, **lines, **keyrings;
  char **dates;
  char *tool;
  char *base_id; /* everything but the mirror's dates */
  char *key;
};

static void bootstrap_release(struct bootstrap *b) {
  free(b->distro);
  free(b->suite);
  free(b->arch);
  free(b->variant);
  strv_free(b->components);
  strv_free(b->packages);
  strv_free(b->lines);
  strv_free(b->keyrings);
  strv_free(b->dates);
  free(b->tool);
  free(b->base_id);
  free(b->key);
}

static int bootstrap_plan(struct kgb_ctx *ctx, const struct kgb_profile *p,
                          const struct kgb_rootfs_opts *o, struct bootstrap *b) {
  b->distro = strdup(p->rootfs.distro ? p->rootfs.distro : "debian");
  b->suite = strdup(p->rootfs.suite ? p->rootfs.suite : "bookworm");
  b->arch = strdup(deb_arch(p->kernel.arch));
  b->variant = strdup("minbase");
  if (!b->distro || !b->suite || !b->arch || !b->variant)
    return -ENOMEM;
  int r;
  const config_setting_t *comps = config_lookup(&p->cfg, "rootfs.components");
  for (int i = 0; comps && i < config_setting_length(comps); i++)
    if ((r = strv_extend(&b->components, config_setting_get_string_elem(comps, i))) < 0)
      return r;
  if (!b->components && (r = strv_extend(&b->components, "main")) < 0)
    return r;
  /* sorted, then each name once: linear after the sort, for lists of any length */
  size_t n_pkgs = strv_length(p->rootfs.packages), kept = 0;
  if (n_pkgs) {
    if (!(b->packages = calloc(n_pkgs + 1, sizeof(char *))))
      return -ENOMEM;
    for (size_t i = 0; i < n_pkgs; i++)
      if (!(b->packages[i] = strdup(p->rootfs.packages[i])))
        return -ENOMEM;
    strv_sort(b->packages);
    for (size_t i = 0; i < n_pkgs; i++) {
      if (kept && STREQ(b->packages[kept - 1], b->packages[i]))
        free(b->packages[i]);
      else
        b->packages[kept++] = b->packages[i];
      if (i >= kept)
        b->packages[i] = NULL;
    }
  }
  _cleanup_free_ char *comps_s = NULL;
  {
    struct sbuf sb = SBUF_INIT;
    for (size_t i = 0; b->components[i]; i++)
      sbuf_addf(&sb, "%s%s", i ? " " : "", b->components[i]);
    comps_s = sbuf_steal(&sb);
    if (!comps_s)
      return -ENOMEM;
  }
  const char *mirror = NULL, *keyring = NULL;
  config_lookup_string(&p->cfg, "rootfs.mirror", &mirror);
  config_lookup_string(&p->cfg, "rootfs.keyring", &keyring);
  struct kgb_apt_sources chosen = {0};
  if (mirror) {
    r = add_source(&chosen, mirror, b->suite, NULL, keyring, p->path, 0);
  } else {
    const char *apt_dir = o->apt_dir ? o->apt_dir : "/etc/apt";
    struct kgb_apt_sources all = {0};
    r = kgb_apt_sources_read(ctx, apt_dir, &all);
    if (r >= 0)
      r = kgb_apt_sources_for_suite(ctx, &all, apt_dir, b->suite, &chosen);
    kgb_apt_sources_release(&all);
  }
  for (size_t i = 0; r >= 0 && i < chosen.n; i++) {
    const struct kgb_apt_source *s = &chosen.v[i];
    r = strv_push(&b->lines, kgb_strdup_printf("deb %s %s %s", s->uri, s->suite, comps_s));
    const char *k = keyring ? keyring : s->signed_by;
    if (r >= 0 && k && keyring && !strv_contains(b->keyrings, k))
      r = strv_extend(&b->keyrings, k);
    if (r < 0)
      break;
    char *date = NULL;
    kgb_progress(ctx, "reading the mirror's Release date", 0, 0);
    if (mirror_date(ctx, s->uri, s->suite, &date) < 0) {
      kgb_warn(ctx,
               "cannot read the Release date of %s %s (%s): reusing the newest base "
               "bootstrapped from it",
               s->uri, s->suite, kgb_error_detail(ctx));
      kgb_error_clear(ctx);
      date = strdup("unknown");
    }
    r = strv_push(&b->dates, date);
  }
  kgb_apt_sources_release(&chosen);
  return r;
}

static int bootstrap_keys(struct bootstrap *b, const char *tool_version, long long epoch) {
  struct sbuf sb = SBUF_INIT;
  sbuf_addf(&sb, "%s\ntool %s\ndistro %s\nsuite %s\narch %s\nvariant %s\nepoch %lld\n",
            KGB_BOOTSTRAP_STAGE_VERSION, tool_version, b->distro, b->suite, b->arch, b->variant,
            epoch);
  for (size_t i = 0; b->components && b->components[i]; i++)
    sbuf_addf(&sb, "component %s\n", b->components[i]);
  for (size_t i = 0; b->packages && b->packages[i]; i++)
    sbuf_addf(&sb, "package %s\n", b->packages[i]);
  for (size_t i = 0; b->lines && b->lines[i]; i++)
    sbuf_addf(&sb, "source %s\n", b->lines[i]);
  for (size_t i = 0; b->keyrings && b->keyrings[i]; i++)
    sbuf_addf(&sb, "keyring %s\n", b->keyrings[i]);
  char hex[65];
  if (sb.err || kgb_sha256_hex(sbuf_str(&sb), sb.len, hex) < 0) {
    sbuf_release(&sb);
    return -ENOMEM;
  }
  b->base_id = strdup(hex);
  for (size_t i = 0; b->dates && b->dates[i]; i++)
    sbuf_addf(&sb, "date %s\n", b->dates[i]);
  if (!b->base_id || sb.err || kgb_sha256_hex(sbuf_str(&sb), sb.len, hex) < 0) {
    sbuf_release(&sb);
    return -ENOMEM;
  }
  sbuf_release(&sb);
  b->key = strdup(hex);
  return b->key ? 0 : -ENOMEM;
}

static int remove_matching(struct kgb_ctx *ctx, const char *root, const char *dir,
                           const char *pattern);

static int run_bootstrapper(struct kgb_ctx *ctx, const struct bootstrap *b, const char *tool,
                            const char *tmp, const char *log_path, long long epoch) {
  _cleanup_free_ char *out = kgb_strdup_printf("%s/base.tar.zst", tmp);
  _cleanup_free_ char *epoch_env = kgb_strdup_printf("SOURCE_DATE_EPOCH=%lld", epoch);
  _cleanup_strv_free_ char **argv = NULL;
  struct sbuf comps = SBUF_INIT, pkgs = SBUF_INIT;
  for (size_t i = 0; b->components[i]; i++)
    sbuf_addf(&comps, "%s%s", i ? "," : "", b->components[i]);
  for (size_t i = 0; b->packages && b->packages[i]; i++)
    sbuf_addf(&pkgs, "%s%s", i ? "," : "", b->packages[i]);
  bool mm = STREQ(tool, "mmdebstrap");
  _cleanup_free_ char *dir = kgb_strdup_printf("%s/tree", tmp);
  int r = out && epoch_env && dir && comps.buf && !comps.err && !pkgs.err ? 0 : -ENOMEM;
  if (r >= 0)
    r = strv_extend(&argv, tool);
  if (r >= 0)
    r = strv_extend(&argv, "--variant=minbase");
  if (r >= 0 && mm)
    r = strv_extend(&argv, "--mode=root");
  if (r >= 0)
    r = strv_push(&argv, kgb_strdup_printf("--%s=%s", mm ? "architectures" : "arch", b->arch));
  if (r >= 0)
    r = strv_push(&argv, kgb_strdup_printf("--components=%s", comps.buf));
  if (r >= 0 && pkgs.len)
    r = strv_push(&argv, kgb_strdup_printf("--include=%s", pkgs.buf));
  for (size_t i = 0; r >= 0 && b->keyrings && b->keyrings[i]; i++)
    r = strv_push(&argv, kgb_strdup_printf("--keyring=%s", b->keyrings[i]));
  if (r >= 0)
    r = strv_extend(&argv, b->suite);
  if (r >= 0)
    r = strv_extend(&argv, mm ? out : dir);
  if (mm) {
    for (size_t i = 0; r >= 0 && b->lines[i]; i++)
      r = strv_extend(&argv, b->lines[i]);
  } else if (r >= 0) {
    /* debootstrap takes one mirror: "deb URI SUITE COMPS" -> URI */
    char *uri = strdup(b->lines[0] + 4);
    if (uri)
      uri[strcspn(uri, " ")] = '\0';
    r = strv_push(&argv, uri);
  }
  sbuf_release(&comps);
  sbuf_release(&pkgs);
  if (r < 0)
    return r;
  char *env[] = {epoch_env, "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive", NULL};
  struct kgb_chroot_opts co = {.log_path = log_path, .env = env};
  kgb_info(ctx, "bootstrapping %s %s (%s, %s) with %s: log '%s'", b->distro, b->suite, b->variant,
           b->arch, tool, log_path);
  kgb_progress(ctx, "bootstrapping the base system", 0, 0);
  r = kgb_ns_run(ctx, argv, &co);
  if (r == -ENOENT) {
    kgb_error_clear(ctx); /* "cannot run 'mmdebstrap'": what to install says more */
    return kgb_error(ctx, r, "%s is not installed: apt-get install mmdebstrap (or debootstrap)",
                     tool);
  }
  if (r < 0)
    return r;
  if (r != 0) {
    _cleanup_free_ char *tail = file_tail(log_path, 25);
    return kgb_error(ctx, -EIO, "bootstrapping %s %s failed (%s exit %d):\n%s\nfull log: %s",
                     b->distro, b->suite, tool, r, tail ? tail : "", log_path);
  }
  if (mm)
    return 0;
  /* debootstrap wrote a tree: give it every source line, then pack it like mmdebstrap */
  _cleanup_free_ char *list = kgb_strdup_printf("%s/etc/apt/sources.list", dir);
  struct sbuf sb = SBUF_INIT;
  for (size_t i = 0; b->lines[i]; i++)
    sbuf_addf(&sb, "%s\n", b->lines[i]);
  r = list && !sb.err ? write_file_atomic(list, sbuf_str(&sb), sb.len, 0644) : -ENOMEM;
  sbuf_release(&sb);
  /* debootstrap installs from the first mirror only: the updates and security suites, as
   * mmdebstrap would have used them */
  static const char *const upgrade[][5] = {
      {"apt-get", "update", NULL}, {"apt-get", "-y", "upgrade", NULL}, {"apt-get", "clean", NULL}};
  for (size_t i = 0; r >= 0 && b->lines[1] && i < ELEMENTSOF(upgrade); i++) {
    r = kgb_chroot_run(ctx, dir, (char *const *)upgrade[i], &co);
    if (r > 0)
      r = kgb_error(ctx, -EIO, "'%s %s' failed (exit %d) in the new base; log: %s", upgrade[i][0],
                    upgrade[i][1], r, log_path);
  }
  if (r >= 0)
    r = remove_matching(ctx, dir, "/var/lib/apt/lists", "*_*");
  if (r >= 0)
    r = kgb_tree_archive(ctx, dir, out, KGB_ARCHIVE_TAR, KGB_COMPRESS_ZSTD, epoch, NULL);
  rm_rf(dir);
  return r;
}

static int find_latest_base(struct kgb_ctx *ctx, const struct bootstrap *b, char **ret_dir) {
  _cleanup_free_ char *link =
      kgb_strdup_printf("%s/stages/bootstrap/latest-%.16s", ctx->workdir, b->base_id);
  if (!link)
    return -ENOMEM;
  char target[4096];
  ssize_t n = readlink(link, target, sizeof(target) - 1);
  if (n <= 0)
    return -ENOENT;
  target[n] = '\0';
  _cleanup_free_ char *dir = kgb_strdup_printf("%s/stages/bootstrap/%s", ctx->workdir, target);
  _cleanup_free_ char *tar = dir ? strjoin_path(dir, "base.tar.zst") : NULL;
  if (!tar)
    return -ENOMEM;
  if (!is_file(tar))
    return -ENOENT;
  *ret_dir = TAKE_PTR(dir);
  return 0;
}

static int bootstrap_stage(struct kgb_ctx *ctx, const struct kgb_profile *p,
                           const struct kgb_rootfs_opts *o, long long epoch,
                           struct kgb_rootfs_result *res) {
  struct bootstrap b = {0};
  _cleanup_free_ char *tool = NULL;
  /* declared before the first goto: the cleanup tail must never see them uninitialised */
  _cleanup_free_ char *dir = NULL, *tar = NULL, *manifest = NULL, *log_path = NULL, *link = NULL,
                      *ltmp = NULL, *tmp = NULL;
  int r = 0;
  if (o->bootstrapper) {
    if (!STREQ(o->bootstrapper, "mmdebstrap") && !STREQ(o->bootstrapper, "debootstrap"))
      return kgb_error(ctx, -EINVAL, "bootstrapper '%s': use mmdebstrap or debootstrap",
                       o->bootstrapper);
    tool = strdup(o->bootstrapper);
  } else {
    _cleanup_free_ char *mm = find_program("mmdebstrap");
    _cleanup_free_ char *db = mm ? NULL : find_program("debootstrap");
    if (!mm && !db && is_file("/usr/sbin/debootstrap"))
      db = strdup("/usr/sbin/debootstrap");
    if (!mm && !db)
      return kgb_error(
          ctx, -ENOENT,
          "neither mmdebstrap nor debootstrap is installed: apt-get install mmdebstrap");
    tool = strdup(mm ? "mmdebstrap" : "debootstrap");
  }
  if (!tool)
    return -ENOMEM;
  _cleanup_free_ char *version = NULL;
  {
    char *argv[] = {tool, "--version", NULL};
    if ((r = first_line_of(ctx, argv, &version)) < 0)
      return r;
  }
  if ((r = bootstrap_plan(ctx, p, o, &b)) < 0 || (r = bootstrap_keys(&b, version, epoch)) < 0)
    goto finish;
  dir = kgb_strdup_printf("%s/stages/bootstrap/%s", ctx->workdir, b.key);
  tar = dir ? strjoin_path(dir, "base.tar.zst") : NULL;
  manifest = dir ? strjoin_path(dir, "manifest.json") : NULL;
  if (!tar || !manifest) {
    r = -ENOMEM;
    goto finish;
  }
  bool offline = strv_contains(b.dates, "unknown");
  if (offline && !is_file(manifest)) {
    _cleanup_free_ char *latest = NULL;
    if (find_latest_base(ctx, &b, &latest) < 0) {
      r = kgb_error(ctx, -EHOSTUNREACH,
                    "the mirror cannot be reached and no base for %s %s was bootstrapped before",
                    b.distro, b.suite);
      goto finish;
    }
    free(dir);
    dir = TAKE_PTR(latest);
    free(tar);
    tar = strjoin_path(dir, "base.tar.zst");
    free(manifest);
    manifest = strjoin_path(dir, "manifest.json");
    if (!tar || !manifest) {
      r = -ENOMEM;
      goto finish;
    }
  }
  if (!ctx->force && is_file(manifest) && is_file(tar)) {
    res->base_cached = true;
    res->base = TAKE_PTR(tar);
    kgb_info(ctx, "bootstrap: base for %s %s is cached ('%s')", b.distro, b.suite, dir);
    goto finish;
  }
  log_path = kgb_strdup_printf("%s/logs/bootstrap-%s-%.16s.log", ctx->workdir, b.suite, b.key);
  if (!log_path) {
    r = -ENOMEM;
    goto finish;
  }
  if ((r = logs_dir(ctx)) < 0 || (r = make_stage_tmp(ctx, "bootstrap", b.key, &tmp)) < 0)
    goto finish;
  unlink(log_path);
  double t0 = monotonic_seconds();
  r = run_bootstrapper(ctx, &b, tool, tmp, log_path, epoch);
  res->bootstrap_seconds = monotonic_seconds() - t0;
  if (r >= 0) {
    struct sbuf sb = SBUF_INIT, st = SBUF_INIT;
    sbuf_adds(&sb, "{\n  \"stage\": \"bootstrap\",\n  \"key\": ");
    sbuf_add_json(&sb, b.key);
    sbuf_adds(&sb, ",\n  \"tool\": ");
    sbuf_add_json(&sb, version);
    sbuf_adds(&sb, ",\n  \"distro\": ");
    sbuf_add_json(&sb, b.distro);
    sbuf_adds(&sb, ",\n  \"suite\": ");
    sbuf_add_json(&sb, b.suite);
    sbuf_addf(&sb, ",\n  \"source_date_epoch\": %lld,\n  \"sources\": [", epoch);
    for (size_t i = 0; b.lines[i]; i++) {
      sbuf_adds(&sb, i ? ",\n    {\"line\": " : "\n    {\"line\": ");
      sbuf_add_json(&sb, b.lines[i]);
      sbuf_adds(&sb, ", \"date\": ");
      sbuf_add_json(&sb, b.dates[i]);
      sbuf_adds(&sb, "}");
    }
    sbuf_adds(&sb, "\n  ],\n  \"packages\": [");
    for (size_t i = 0; b.packages && b.packages[i]; i++) {
      sbuf_adds(&sb, i ? ", " : "");
      sbuf_add_json(&sb, b.packages[i]);
    }
    sbuf_adds(&sb, "]\n}\n");
    _cleanup_free_ char *mpath = strjoin_path(tmp, "manifest.json");
    r = mpath && !sb.err ? write_file_atomic(mpath, sbuf_str(&sb), sb.len, 0644) : -ENOMEM;
    sbuf_release(&sb);
    sbuf_release(&st);
  }
  if (r >= 0)
    r = stage_commit(ctx, tmp, dir);
  if (r < 0) {
    rm_rf(tmp);
    goto finish;
  }
  /* the newest base of these settings, for runs that cannot reach the mirror */
  link = kgb_strdup_printf("%s/stages/bootstrap/latest-%.16s", ctx->workdir, b.base_id);
  ltmp = link ? kgb_strdup_printf("%s.tmp", link) : NULL;
  if (ltmp) {
    unlink(ltmp);
    if (symlink(b.key, ltmp) == 0 && rename(ltmp, link) < 0)
      unlink(ltmp);
  }
  res->base = TAKE_PTR(tar);
finish:
  bootstrap_release(&b);
  return r;
}

/* ================================================================ the tree ==== */

/* Extracts a bootstrap tarball as root: owners, modes, times, extended attributes, device
 * nodes; no entry may climb out or go through a link. */
static int extract_base(struct kgb_ctx *ctx, const char *tarball, const char *dest) {
  return kgb_archive_extract_into(
      ctx, tarball, dest,
      &(struct kgb_extract_opts){.as_root = true, .progress = "unpacking the base"});
}

/* The host path of path in root, its parent directories created (mode 0755, root-owned). */
static int root_path_for_write(struct kgb_ctx *ctx, const char *root, const char *path,
                               bool follow_last, char **ret) {
  _cleanup_free_ char *host = NULL;
  int r = kgb_root_resolve(root, path, follow_last, &host);
  if (r < 0)
    return kgb_error(ctx, r, "cannot resolve '%s' in the root: %s", path, strerror(-r));
  _cleanup_free_ char *parent = strdup(host);
  if (!parent)
    return -ENOMEM;
  char *slash = strrchr(parent, '/');
  if (slash && slash != parent) {
    *slash = '\0';
    if ((r = mkdir_p(parent, 0755)) < 0)
      return kgb_error(ctx, r, "cannot create '%s': %s", parent, strerror(-r));
  }
  *ret = TAKE_PTR(host);
  return 0;
}

/* Replaces whatever is at host (a link is replaced, never followed) with a copy of src. */
static int install_file(struct kgb_ctx *ctx, const char *src, const char *host, mode_t mode,
                        const struct stat *src_st) {
  struct stat st;
  if (lstat(host, &st) == 0 && S_ISDIR(st.st_mode))
    return kgb_error(ctx, -EISDIR, "'%s' is a directory: cannot put the file '%s' there", host,
                     src);
  int r = copy_file_atomic(src, host, mode);
  if (r < 0)
    return kgb_error(ctx, r, "cannot copy '%s' to '%s': %s", src, host, strerror(-r));
  if (lchown(host, 0, 0) < 0)
    return kgb_error(ctx, -errno, "cannot chown '%s': %m", host);
  if (src_st) {
    struct timespec ts[2] = {src_st->st_mtim, src_st->st_mtim};
    utimensat(AT_FDCWD, host, ts, AT_SYMLINK_NOFOLLOW);
  }
  return 0;
}

static int install_symlink(struct kgb_ctx *ctx, const char *target, const char *host) {
  _cleanup_free_ char *tmp = kgb_strdup_printf("%s.kgb-link", host);
  if (!tmp)
    return -ENOMEM;
  unlink(tmp);
  if (symlink(target, tmp) < 0)
    return kgb_error(ctx, -errno, "cannot create the link '%s': %m", host);
  struct stat st;
  if (lstat(host, &st) == 0 && S_ISDIR(st.st_mode)) {
    unlink(tmp);
    return kgb_error(ctx, -EISDIR, "'%s' is a directory: cannot replace it with a link", host);
  }
  if (rename(tmp, host) < 0) {
    int e = errno;
    unlink(tmp);
    return kgb_error(ctx, -e, "cannot create the link '%s': %s", host, strerror(e));
  }
  lchown(host, 0, 0);
  return 0;
}

/* Copies a host file or directory to path in root (directories merge into what is there). */
static int copy_into_root(struct kgb_ctx *ctx, const char *root, const char *src, const char *path,
                          mode_t mode) {
  struct stat st;
  if (lstat(src, &st) < 0)
    return kgb_error(ctx, -errno, "cannot read '%s': %m", src);
  if (S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = readlink(src, target, sizeof(target) - 1);
    if (n < 0)
      return kgb_error(ctx, -errno, "cannot read the link '%s': %m", src);
    target[n] = '\0';
    _cleanup_free_ char *host = NULL;
    int r = root_path_for_write(ctx, root, path, false, &host);
    return r < 0 ? r : install_symlink(ctx, target, host);
  }
  if (S_ISREG(st.st_mode)) {
    _cleanup_free_ char *host = NULL;
    int r = root_path_for_write(ctx, root, path, false, &host);
    return r < 0 ? r : install_file(ctx, src, host, mode ? mode : (st.st_mode & 07777), &st);
  }
  if (!S_ISDIR(st.st_mode))
    return kgb_error(ctx, -EINVAL, "'%s' is neither a file, a directory nor a link", src);
  _cleanup_free_ char *host = NULL;
  int r = root_path_for_write(ctx, root, path, true, &host);
  if (r < 0)
    return r;
  if (mkdir(host, st.st_mode & 07777) < 0 && errno != EEXIST)
    return kgb_error(ctx, -errno, "cannot create '%s': %m", host);
  struct stat hst;
  if (lstat(host, &hst) < 0 || !S_ISDIR(hst.st_mode))
    return kgb_error(ctx, -ENOTDIR, "'%s' is not a directory: cannot copy '%s' into it", host, src);
  lchown(host, 0, 0);
  _cleanup_strv_free_ char **names = NULL;
  r = readdir_sorted(src, 0, NULL, NULL, &names);
  if (r < 0)
    return r == -ENOMEM ? r : kgb_error(ctx, r, "cannot read '%s': %s", src, strerror(-r));
  for (size_t i = 0; r >= 0 && names[i]; i++) {
    _cleanup_free_ char *s = strjoin_path(src, names[i]);
    _cleanup_free_ char *p = kgb_strdup_printf("%s/%s", STREQ(path, "/") ? "" : path, names[i]);
    r = s && p ? copy_into_root(ctx, root, s, p, 0) : -ENOMEM;
  }
  return r;
}

static int write_into_root(struct kgb_ctx *ctx, const char *root, const char *path,
                           const char *content, mode_t mode) {
  _cleanup_free_ char *host = NULL;
  int r = root_path_for_write(ctx, root, path, false, &host);
  if (r < 0)
    return r;
  struct stat st;
  if (lstat(host, &st) == 0 && S_ISDIR(st.st_mode))
    return kgb_error(ctx, -EISDIR, "'%s' is a directory", host);
  if ((r = write_file_atomic(host, content, strlen(content), mode)) < 0)
    return kgb_error(ctx, r, "cannot write '%s': %s", host, strerror(-r));
  lchown(host, 0, 0);
  return 0;
}

/* Removes path in root (links are removed, never followed). */
static int remove_in_root(struct kgb_ctx *ctx, const char *root, const char *path) {
  _cleanup_free_ char *host = NULL;
  int r = kgb_root_resolve(root, path, false, &host);
  if (r < 0)
    return kgb_error(ctx, r, "cannot resolve '%s' in the root: %s", path, strerror(-r));
  if (STREQ(host, root))
    return kgb_error(ctx, -EINVAL, "refusing to remove the root itself ('%s')", path);
  r = rm_rf(host);
  return r < 0 ? kgb_error(ctx, r, "cannot remove '%s': %s", host, strerror(-r)) : 0;
}

static bool matches_pattern(_unused_ int dir_fd, const char *name, void *pattern) {
  return fnmatch(pattern, name, 0) == 0;
}

/* Removes the entries of dir in root that match pattern. */
static int remove_matching(struct kgb_ctx *ctx, const char *root, const char *dir,
                           const char *pattern) {
  _cleanup_free_ char *host = NULL;
  int r = kgb_root_resolve(root, dir, true, &host);
  if (r < 0)
    return r;
  _cleanup_strv_free_ char **names = NULL;
  r = readdir_sorted(host, 0, matches_pattern, (void *)pattern, &names);
  if (r < 0)
    return r == -ENOMEM ? r : 0; /* nothing there: nothing to remove */
  for (size_t i = 0; r >= 0 && names[i]; i++) {
    _cleanup_free_ char *p = kgb_strdup_printf("%s/%s", dir, names[i]);
    r = p ? remove_in_root(ctx, root, p) : -ENOMEM;
  }
  return r;
}

/* ================================================================ steps ==== */

struct run {
  struct kgb_ctx *ctx;
  const char *root;
  const char *log_path;
  char **env; /* SOURCE_DATE_EPOCH and such, for every step */
};

static int chroot_step(struct run *run, char *const *argv, char *const *extra_env, const char *cwd,
                       const char *what) {
  _cleanup_strv_free_ char **env = NULL;
  for (size_t i = 0; run->env && run->env[i]; i++)
    if (strv_extend(&env, run->env[i]) < 0)
      return -ENOMEM;
  for (size_t i = 0; extra_env && extra_env[i]; i++)
    if (strv_extend(&env, extra_env[i]) < 0)
      return -ENOMEM;
  _cleanup_free_ char *cmd = kgb_argv_to_string(argv);
  log_line(run->log_path, "\n### %s\n", what);
  kgb_debug(run->ctx, "in the root: %s", cmd ? cmd : argv[0]);
  struct kgb_chroot_opts co = {.log_path = run->log_path, .env = env, .cwd = cwd};
  int r = kgb_chroot_run(run->ctx, run->root, argv, &co);
  if (r < 0)
    return r;
  if (r != 0) {
    _cleanup_free_ char *tail = file_tail(run->log_path, 20);
    return kgb_error(run->ctx, -EIO, "%s: '%s' failed (exit %d) in the root:\n%s\nfull log: %s",
                     what, cmd ? cmd : argv[0], r, tail ? tail : "", run->log_path);
  }
  return 0;
}

static int apt_install(struct run *run, char *const *packages, const char *what) {
  _cleanup_strv_free_ char **argv = NULL;
  /* "--": a package name never becomes an option */
  static const char *const head[] = {"apt-get", "install",         "-y", "--no-install-recommends",
                                     "-o",      "Dpkg::Use-Pty=0", "--"};
  for (size_t i = 0; i < ELEMENTSOF(head); i++)
    if (strv_extend(&argv, head[i]) < 0)
      return -ENOMEM;
  for (size_t i = 0; packages && packages[i]; i++)
    if (strv_extend(&argv, packages[i]) < 0)
      return -ENOMEM;
  return chroot_step(run, argv, NULL, NULL, what);
}

/* An input: downloaded (or a local path) checked against its SHA-256, then its file, or the
 * member `extract` of it as an archive, put at its destination. */
static int install_input(struct run *run, const struct kgb_recipe *r,
                         const struct kgb_recipe_input *in) {
  struct kgb_fetch_opts fo;
  kgb_fetch_opts_init(&fo);
  fo.sha256 = in->sha256;
  fo.retries = 3;
  _cleanup_free_ char *file = NULL;
  int rc = kgb_fetch_file(run->ctx, in->url, &fo, &file);
  if (rc < 0)
    return kgb_error_prefix(run->ctx, rc, "recipe '%s' input '%s' (%s:%u)", r->name, in->name,
                            r->path, in->line);
  mode_t mode = in->mode ? in->mode : 0644;
  if (!in->extract || !*in->extract) {
    _cleanup_free_ char *host = NULL;
    rc = root_path_for_write(run->ctx, run->root, in->destination, false, &host);
    return rc < 0 ? rc : install_file(run->ctx, file, host, mode, NULL);
  }
  /* the member of an archive (Kata's static release tarball carries the agent) */
  struct archive *a = archive_read_new();
  if (!a)
    return -ENOMEM;
  archive_read_support_filter_all(a);
  archive_read_support_format_all(a);
  rc = -ENOENT;
  if (archive_read_open_filename(a, file, 1 << 16) == ARCHIVE_OK) {
    struct archive_entry *e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
      const char *name = archive_entry_pathname(e);
      while (name && name[0] == '.' && name[1] == '/')
        name += 2;
      if (!name || !STREQ(name, in->extract) || archive_entry_filetype(e) != AE_IFREG)
        continue;
      _cleanup_free_ char *host = NULL;
      if ((rc = root_path_for_write(run->ctx, run->root, in->destination, false, &host)) < 0)
        break;
      _cleanup_free_ char *tmp = kgb_strdup_printf("%s.kgb-XXXXXX", host);
      _cleanup_close_ int fd = tmp ? mkostemp(tmp, O_CLOEXEC) : -1;
      if (fd < 0) {
        rc = tmp ? kgb_error(run->ctx, -errno, "cannot create '%s': %m", tmp) : -ENOMEM;
        break;
      }
      rc = archive_read_data_into_fd(a, fd) == ARCHIVE_OK ? 0 : -EIO;
      if (rc == 0 && (fchmod(fd, mode) < 0 || fchown(fd, 0, 0) < 0 || rename(tmp, host) < 0))
        rc = -errno;
      if (rc < 0) {
        unlink(tmp);
        rc = kgb_error(run->ctx, rc, "cannot extract '%s' from '%s': %s", in->extract, in->url,
                       strerror(-rc));
      }
      break;
    }
  }
  archive_read_free(a);
  if (rc == -ENOENT)
    return kgb_error(run->ctx, rc, "recipe '%s' input '%s': '%s' has no file '%s'", r->name,
                     in->name, in->url, in->extract);
  return rc;
}

static int run_recipe(struct run *run, const struct kgb_recipe *r, size_t index, size_t total,
                      char ***warnings) {
  kgb_info(run->ctx, "rootfs: recipe %zu of %zu, '%s': %s", index + 1, total, r->name,
           r->description);
  _cleanup_free_ char *what = kgb_strdup_printf("recipe '%s'", r->name);
  if (!what)
    return -ENOMEM;
  int rc;
  if (r->packages && r->packages[0]) {
    _cleanup_free_ char *w =
        kgb_strdup_printf("recipe '%s' (%s): installing its packages", r->name, r->path);
    kgb_progress(run->ctx, "installing packages", 0, 0);
    if (!w || (rc = apt_install(run, r->packages, w)) < 0)
      return w ? rc : -ENOMEM;
  }
  for (size_t i = 0; i < r->n_inputs; i++)
    if ((rc = install_input(run, r, &r->inputs[i])) < 0)
      return rc;
  for (size_t i = 0; i < r->n_files; i++) {
    const struct kgb_recipe_file *f = &r->files[i];
    if (f->content)
      rc = write_into_root(run->ctx, run->root, f->path, f->content, f->mode ? f->mode : 0644);
    else if (f->link) {
      _cleanup_free_ char *host = NULL;
      rc = root_path_for_write(run->ctx, run->root, f->path, false, &host);
      if (rc >= 0)
        rc = install_symlink(run->ctx, f->link, host);
    } else
      rc = copy_into_root(run->ctx, run->root, f->source, f->path, f->mode);
    if (rc < 0)
      return kgb_error_prefix(run->ctx, rc, "recipe '%s' (%s:%u): installing '%s'", r->name,
                              r->path, f->line, f->path);
  }
  for (size_t i = 0; i < r->n_steps; i++) {
    const struct kgb_recipe_step *s = &r->steps[i];
    if (kgb_cancelled(run->ctx))
      return -ECANCELED;
    if (s->warn) {
      kgb_warn(run->ctx, "recipe '%s': %s", r->name, s->warn);
      if ((rc = strv_push(warnings, kgb_strdup_printf("%s: %s", r->name, s->warn))) < 0)
        return rc;
      continue;
    }
    _cleanup_free_ char *w =
        kgb_strdup_printf("recipe '%s' step at %s:%u", r->name, r->path, s->line);
    kgb_progress(run->ctx, r->name, 0, 0);
    if (!w || (rc = chroot_step(run, s->argv, s->env, s->cwd, w)) < 0)
      return w ? rc : -ENOMEM;
  }
  return 0;
}

/* Logs, caches and host traces that would make the image depend on when and where it was
 * built. */
static int standard_cleanup(struct run *run) {
  static const char *const paths[] = {"/var/cache/kgb",
                                      "/var/log/dpkg.log",
                                      "/var/log/alternatives.log",
                                      "/var/log/apt/history.log",
                                      "/var/log/apt/term.log",
                                      "/var/log/apt/eipp.log.xz",
                                      "/var/cache/ldconfig/aux-cache",
                                      "/var/lib/dbus/machine-id",
                                      "/var/lib/systemd/random-seed",
                                      "/root/.bash_history",
                                      "/var/cache/debconf/config.dat-old",
                                      "/var/cache/debconf/templates.dat-old",
                                      "/var/lib/dpkg/status-old",
                                      "/var/lib/dpkg/diversions-old",
                                      "/var/lib/dpkg/statoverride-old",
                                      "/usr/sbin/policy-rc.d"};
  static const struct {
    const char *dir, *pattern;
  } globs[] = {{"/var/lib/apt/lists", "*_*"},
               {"/var/cache/apt", "*.bin"},
               {"/var/cache/apt/archives", "*.deb"},
               {"/tmp", "*"},
               {"/var/tmp", "*"},
               {"/var/log/journal", "*"}};
  int r = 0;
  for (size_t i = 0; i < ELEMENTSOF(paths) && r >= 0; i++)
    r = remove_in_root(run->ctx, run->root, paths[i]);
  for (size_t i = 0; i < ELEMENTSOF(globs) && r >= 0; i++)
    r = remove_matching(run->ctx, run->root, globs[i].dir, globs[i].pattern);
  /* systemd makes a machine ID on first boot when the file is empty (Kata does the same) */
  _cleanup_free_ char *mid = NULL;
  if (r >= 0 && kgb_root_resolve(run->root, "/etc/machine-id", false, &mid) >= 0) {
    struct stat st;
    if (lstat(mid, &st) == 0 && S_ISREG(st.st_mode))
      r = write_into_root(run->ctx, run->root, "/etc/machine-id", "", 0444);
  }
  return r;
}

/* The bootstrapper copies the build host's resolv.conf and hostname: the image gets neutral
 * ones (the runtime provides both). Recipes run with the host's resolv.conf, and the root's
 * own is put back after them. */
static int neutral_host_files(struct kgb_ctx *ctx, const char *root) {
  int r = write_into_root(ctx, root, "/etc/resolv.conf", "", 0644);
  if (r >= 0)
    r = write_into_root(ctx, root, "/etc/hostname", "localhost\n", 0644);
  return r;
}

static int swap_resolv_conf(struct kgb_ctx *ctx, const char *root, bool in) {
  _cleanup_free_ char *conf = NULL, *saved = NULL;
  int r = kgb_root_resolve(root, "/etc/resolv.conf", false, &conf);
  if (r < 0 || (r = kgb_root_resolve(root, "/etc/.resolv.conf.kgb-saved", false, &saved)) < 0)
    return r;
  if (in) {
    struct stat st;
    if (lstat(conf, &st) == 0 && rename(conf, saved) < 0)
      return kgb_error(ctx, -errno, "cannot move '%s' aside: %m", conf);
    _cleanup_free_ char *text = NULL;
    if (read_full_file("/etc/resolv.conf", &text, NULL) < 0)
      text = strdup("");
    r = text ? write_file_atomic(conf, text, strlen(text), 0644) : -ENOMEM;
    return r < 0 ? kgb_error(ctx, r, "cannot write '%s': %s", conf, strerror(-r)) : 0;
  }
  unlink(conf);
  struct stat st;
  if (lstat(saved, &st) == 0 && rename(saved, conf) < 0)
    return kgb_error(ctx, -errno, "cannot restore '%s': %m", conf);
  return 0;
}

/* ================================================================ the stage ==== */

struct kgb_rootfs_result *kgb_rootfs_result_free(struct kgb_rootfs_result *r) {
  if (!r)
    return NULL;
  kgb_build_result_free(r->kernel);
  free(r->headers_deb);
  free(r->stage_dir);
  free(r->root);
  free(r->key);
  free(r->base);
  free(r->log_path);
  strv_free(r->recipes);
  strv_free(r->warnings);
  kgb_modcheck_free(r->check);
  kgb_tree_report_release(&r->report);
  free(r);
  return NULL;
}

static bool uses_variable(const struct kgb_recipe *r, const char *var) {
  _cleanup_free_ char *needle = kgb_strdup_printf("${%s}", var);
  if (!needle)
    return false;
  for (size_t i = 0; i < r->n_files; i++)
    if ((r->files[i].source && strstr(r->files[i].source, needle)) ||
        (r->files[i].content && strstr(r->files[i].content, needle)))
      return true;
  for (size_t i = 0; i < r->n_inputs; i++)
    if (strstr(r->inputs[i].url, needle))
      return true;
  for (size_t i = 0; i < r->n_steps; i++)
    for (size_t j = 0; r->steps[i].argv && r->steps[i].argv[j]; j++)
      if (strstr(r->steps[i].argv[j], needle))
        return true;
  return false;
}

/* Every --set and profile setting must be declared by a recipe that runs. */
static int check_settings(struct kgb_ctx *ctx, const struct kgb_profile *p,
                          struct kgb_recipe **recipes, char *const *profile_settings,
                          char *const *set) {
  for (int pass = 0; pass < 2; pass++) {
    char *const *v = pass == 0 ? profile_settings : set;
    for (size_t i = 0; v && v[i]; i++) {
      size_t n = strcspn(v[i], "=");
      bool found = false;
      const char *best = NULL;
      size_t bestd = 4;
      for (size_t k = 0; recipes[k] && !found; k++)
        for (size_t s = 0; s < recipes[k]->n_settings && !found; s++) {
          const char *name = recipes[k]->settings[s].name;
          found = strlen(name) == n && strncmp(name, v[i], n) == 0;
          _cleanup_free_ char *given = strndup(v[i], n);
          size_t d = given ? levenshtein(given, name, 3) : 99;
          if (d < bestd)
            bestd = d, best = name;
        }
      if (found)
        continue;
      if (pass == 0) {
        kgb_warn(ctx, "%s: setting '%.*s' is used by none of the recipes that run", p->path, (int)n,
                 v[i]);
        continue;
      }
      return kgb_error(ctx, -EINVAL, "--set %.*s: no recipe of this run declares it%s%s%s", (int)n,
                       v[i], best ? " (did you mean '" : "", best ? best : "", best ? "'?)" : "");
    }
  }
  return 0;
}

/* What the key covers of a source on the host: a file's content, a tree's listing. */
static int hash_source(struct kgb_ctx *ctx, const char *path, struct sbuf *sb) {
  struct stat st;
  if (lstat(path, &st) < 0)
    return kgb_error(ctx, -errno, "cannot read '%s': %m", path);
  if (S_ISREG(st.st_mode)) {
    _cleanup_free_ char *hex = NULL;
    int r = kgb_sha256_file(ctx, path, &hex);
    return r < 0 ? r : sbuf_addf(sb, " sha256:%s", hex);
  }
  if (S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    return n < 0 ? -errno : sbuf_addf(sb, " link:%.*s", (int)n, target);
  }
  if (!S_ISDIR(st.st_mode))
    return kgb_error(ctx, -EINVAL, "'%s' is neither a file, a directory nor a link", path);
  _cleanup_strv_free_ char **names = NULL;
  int r = readdir_sorted(path, 0, NULL, NULL, &names);
  if (r < 0)
    return r == -ENOMEM ? r : kgb_error(ctx, r, "cannot read '%s': %s", path, strerror(-r));
  for (size_t i = 0; r >= 0 && names[i]; i++) {
    _cleanup_free_ char *sub = strjoin_path(path, names[i]);
    struct stat s2;
    if (!sub)
      return -ENOMEM;
    if (lstat(sub, &s2) < 0)
      return -errno;
    /* content, never times: the same modules built at another moment (another work
     * directory) must give the same key, or the image's UUIDs, derived from it, differ */
    r = sbuf_addf(sb, " [%s %o %lld", names[i], s2.st_mode, (long long)s2.st_size);
    if (r >= 0 && (S_ISDIR(s2.st_mode) || S_ISREG(s2.st_mode) || S_ISLNK(s2.st_mode)))
      r = hash_source(ctx, sub, sb);
    if (r >= 0)
      r = sbuf_addc(sb, ']');
  }
  return r;
}

static int describe_recipe(struct kgb_ctx *ctx, const struct kgb_recipe *r, struct sbuf *sb) {
  int rc = sbuf_addf(sb, "recipe %s %s\n", r->name, r->sha256);
  for (size_t i = 0; rc >= 0 && r->packages && r->packages[i]; i++)
    rc = sbuf_addf(sb, " package %s\n", r->packages[i]);
  for (size_t i = 0; rc >= 0 && i < r->n_inputs; i++) {
    const struct kgb_recipe_input *in = &r->inputs[i];
    rc = sbuf_addf(sb, " input %s %s %s %s %o %s\n", in->name, in->url, in->sha256, in->destination,
                   in->mode, in->extract ? in->extract : "");
  }
  for (size_t i = 0; rc >= 0 && i < r->n_files; i++) {
    const struct kgb_recipe_file *f = &r->files[i];
    rc = sbuf_addf(sb, " file %s %o", f->path, f->mode);
    if (rc >= 0 && f->content)
      rc = sbuf_addf(sb, " content %zu:%s", strlen(f->content), f->content);
    if (rc >= 0 && f->link)
      rc = sbuf_addf(sb, " link %s", f->link);
    if (rc >= 0 && f->source)
      rc = hash_source(ctx, f->source, sb);
    if (rc >= 0)
      rc = sbuf_addc(sb, '\n');
  }
  for (size_t i = 0; rc >= 0 && i < r->n_steps; i++) {
    const struct kgb_recipe_step *s = &r->steps[i];
    rc = sbuf_adds(sb, " step");
    for (size_t j = 0; rc >= 0 && s->argv && s->argv[j]; j++)
      rc = sbuf_addf(sb, " %zu:%s", strlen(s->argv[j]), s->argv[j]);
    for (size_t j = 0; rc >= 0 && s->env && s->env[j]; j++)
      rc = sbuf_addf(sb, " env %s", s->env[j]);
    if (rc >= 0)
      rc = sbuf_addf(sb, " cwd %s warn %s\n", s->cwd ? s->cwd : "", s->warn ? s->warn : "");
  }
  for (size_t i = 0; rc >= 0 && r->purge && r->purge[i]; i++)
    rc = sbuf_addf(sb, " purge %s\n", r->purge[i]);
  for (size_t i = 0; rc >= 0 && r->remove && r->remove[i]; i++)
    rc = sbuf_addf(sb, " remove %s\n", r->remove[i]);
  return rc;
}

static int write_rootfs_manifest(struct kgb_ctx *ctx, const char *dir, const struct kgb_profile *p,
                                 const struct kgb_rootfs_result *res, const char *base_key) {
  struct sbuf sb = SBUF_INIT, st = SBUF_INIT;
  sbuf_adds(&sb, "{\n  \"stage\": \"rootfs\",\n  \"key\": ");
  sbuf_add_json(&sb, res->key);
  sbuf_adds(&sb, ",\n  \"profile\": ");
  sbuf_add_json(&sb, p->name);
  sbuf_adds(&sb, ",\n  \"release\": ");
  sbuf_add_json(&sb, res->kernel->release);
  sbuf_adds(&sb, ",\n  \"bootstrap\": ");
  sbuf_add_json(&sb, base_key);
  sbuf_addf(&sb, ",\n  \"source_date_epoch\": %lld,\n  \"kata_agent\": %s,\n  \"recipes\": [",
            res->epoch, res->kata_agent ? "true" : "false");
  sbuf_addf(&st, "release %s\nepoch %lld\nkata_agent %d\nbytes %llu\nfiles %llu\ndirs %llu\n",
            res->kernel->release, res->epoch, res->kata_agent,
            (unsigned long long)res->report.bytes, (unsigned long long)res->report.files,
            (unsigned long long)res->report.dirs);
  for (size_t i = 0; res->recipes && res->recipes[i]; i++) {
    sbuf_adds(&sb, i ? ", " : "");
    sbuf_add_json(&sb, res->recipes[i]);
    sbuf_addf(&st, "recipe %s\n", res->recipes[i]);
  }
  sbuf_adds(&sb, "],\n  \"warnings\": [");
  for (size_t i = 0; res->warnings && res->warnings[i]; i++) {
    sbuf_adds(&sb, i ? ", " : "");
    sbuf_add_json(&sb, res->warnings[i]);
    sbuf_addf(&st, "warning %s\n", res->warnings[i]);
  }
  sbuf_addf(&sb, "],\n  \"modules_checked\": %zu,\n  \"bytes\": %llu,\n  \"files\": %llu,\n",
            res->check ? res->check->n_modules : 0, (unsigned long long)res->report.bytes,
            (unsigned long long)res->report.files);
  sbuf_adds(&sb, "  \"largest_directories\": [");
  for (size_t i = 0; i < res->report.n_top; i++) {
    sbuf_adds(&sb, i ? ",\n    {\"path\": " : "\n    {\"path\": ");
    sbuf_add_json(&sb, res->report.top[i].path);
    sbuf_addf(&sb, ", \"bytes\": %llu}", (unsigned long long)res->report.top[i].bytes);
    sbuf_addf(&st, "top %llu %s\n", (unsigned long long)res->report.top[i].bytes,
              res->report.top[i].path);
  }
  sbuf_adds(&sb, "\n  ]\n}\n");
  _cleanup_free_ char *m = strjoin_path(dir, "manifest.json"), *s = strjoin_path(dir, "state");
  int r = m && s && !sb.err && !st.err ? 0 : -ENOMEM;
  if (r >= 0)
    r = write_file_atomic(s, sbuf_str(&st), st.len, 0644);
  if (r >= 0)
    r = write_file_atomic(m, sbuf_str(&sb), sb.len, 0644);
  sbuf_release(&sb);
  sbuf_release(&st);
  return r < 0 ? kgb_error(ctx, r, "cannot write the manifest in '%s': %s", dir, strerror(-r)) : 0;
}

static int read_cached(const char *dir, struct kgb_rootfs_result *res) {
  _cleanup_free_ char *agent = state_get1(dir, "kata_agent");
  _cleanup_free_ char *bytes = state_get1(dir, "bytes"), *files = state_get1(dir, "files");
  _cleanup_free_ char *dirs = state_get1(dir, "dirs");
  if (!agent || !bytes || !files)
    return -EIO;
  res->kata_agent = STREQ(agent, "1");
  res->report.bytes = strtoull(bytes, NULL, 10);
  res->report.files = strtoull(files, NULL, 10);
  res->report.dirs = dirs ? strtoull(dirs, NULL, 10) : 0;
  int r;
  if ((r = state_get(dir, "recipe", &res->recipes)) < 0 ||
      (r = state_get(dir, "warning", &res->warnings)) < 0)
    return r;
  _cleanup_strv_free_ char **top = NULL;
  if ((r = state_get(dir, "top", &top)) < 0)
    return r;
  for (size_t i = 0; top && top[i] && res->report.n_top < ELEMENTSOF(res->report.top); i++) {
    char *sp = strchr(top[i], ' ');
    if (!sp)
      continue;
    struct kgb_tree_dir *d = &res->report.top[res->report.n_top];
    d->bytes = strtoull(top[i], NULL, 10);
    if (!(d->path = strdup(sp + 1)))
      return -ENOMEM;
    res->report.n_top++;
  }
  return 0;
}

/* The built-in variables of the recipes (recipe.h lists them). */
static int builtin_values(struct kgb_ctx *ctx, const struct kgb_profile *p, const char *release,
                          const char *modules, const char *headers_deb, char ***ret) {
  _cleanup_strv_free_ char **v = NULL;
  int r;
  if ((r = strv_push(&v, kgb_strdup_printf("kernel_release=%s", release))) < 0 ||
      (r = strv_push(&v, kgb_strdup_printf("arch=%s", p->kernel.arch))) < 0 ||
      (r = strv_push(&v, kgb_strdup_printf("deb_arch=%s", deb_arch(p->kernel.arch)))) < 0 ||
      (r = strv_push(&v, kgb_strdup_printf("multiarch=%s-linux-gnu", p->kernel.arch))) < 0 ||
      (r = strv_push(&v, kgb_strdup_printf("jobs=%u", ctx->jobs ? ctx->jobs : 1))) < 0 ||
      (r = strv_push(&v, kgb_strdup_printf("profile=%s", p->name))) < 0 ||
      (r = strv_push(&v, kgb_strdup_printf("distro=%s",
                                           p->rootfs.distro ? p->rootfs.distro : "debian"))) < 0 ||
      (r = strv_push(&v, kgb_strdup_printf("suite=%s",
                                           p->rootfs.suite ? p->rootfs.suite : "bookworm"))) < 0 ||
      (r = strv_push(&v, kgb_strdup_printf("kernel_modules=%s", modules))) < 0)
    return r;
  if (headers_deb &&
      (r = strv_push(&v, kgb_strdup_printf("kernel_headers_deb=%s", headers_deb))) < 0)
    return r;
  *ret = TAKE_PTR(v);
  return 0;
}

int kgb_rootfs_build(struct kgb_ctx *ctx, const struct kgb_profile *p,
                     const struct kgb_rootfs_opts *o, struct kgb_rootfs_result **ret) {
  _cleanup_(kgb_rootfs_result_freep) struct kgb_rootfs_result *res = calloc(1, sizeof(*res));
  if (!res)
    return -ENOMEM;
  double t0 = monotonic_seconds();
  /* 1. recipes and settings: every mistake is reported before anything is built */
  _cleanup_(kgb_recipes_freep) struct kgb_recipe **recipes = NULL;
  int r = kgb_recipes_resolve(ctx, p->rootfs.recipes, o->without, &recipes);
  if (r < 0)
    return r;
  _cleanup_strv_free_ char **settings = NULL;
  if ((r = kgb_profile_settings(ctx, p, &settings)) < 0 ||
      (r = check_settings(ctx, p, recipes, settings, o->set)) < 0)
    return r;
  bool need_headers = false;
  for (size_t i = 0; recipes[i]; i++)
    need_headers = need_headers || uses_variable(recipes[i], "kernel_headers_deb");
  /* a dry expansion with placeholders for what the kernel build will give: a recipe that
   * cannot run fails now, not after ten minutes of compiling */
  {
    _cleanup_strv_free_ char **vals = NULL;
    if ((r = builtin_values(ctx, p, "RELEASE", "/nonexistent", "/nonexistent", &vals)) < 0)
      return r;
    for (size_t i = 0; settings && settings[i] && r >= 0; i++)
      r = strv_extend(&vals, settings[i]);
    for (size_t i = 0; o->set && o->set[i] && r >= 0; i++)
      r = strv_extend(&vals, o->set[i]);
    for (size_t i = 0; recipes[i] && r >= 0; i++) {
      _cleanup_(kgb_recipe_freep) struct kgb_recipe *x = NULL;
      r = kgb_recipe_expand(ctx, recipes[i], vals, &x);
    }
    if (r < 0)
      return r;
  }
  /* 2. the kernel, and its header package when a recipe installs it */
  const struct kgb_build_opts default_kernel = {0};
  const struct kgb_build_opts *ko = o->kernel ? o->kernel : &default_kernel;
  bool force = ctx->force;
  ctx->force = force && !o->inputs_ready;
  r = kgb_kernel_build(ctx, p, ko, &res->kernel);
  ctx->force = force;
  if (r < 0) {
    if (r == -EBADE && res->kernel)
      *ret = TAKE_PTR(res);
    return r;
  }
  const struct kgb_build_result *b = res->kernel;
  if (need_headers) {
    _cleanup_(kgb_headers_result_freep) struct kgb_headers_result *h = NULL;
    if ((r = kgb_kernel_headers(ctx, p, ko, b, KGB_HEADERS_DEB, &h)) < 0)
      return r;
    if (!(res->headers_deb = strdup(h->files[0])))
      return -ENOMEM;
  }
  res->epoch = b->epoch;
  /* 3. every value, then the recipes as they will run */
  _cleanup_strv_free_ char **vals = NULL;
  _cleanup_free_ char *modules =
      kgb_strdup_printf("%s/modules/lib/modules/%s", b->stage_dir, b->release);
  if (!modules)
    return -ENOMEM;
  if (!is_dir(modules)) {
    /* a kernel without modules still gets its (empty) directory and depmod's files; the
     * kernel's finished stage is not written to */
    free(modules);
    modules = kgb_strdup_printf("%s/cache/empty-directory", ctx->workdir);
    if (!modules || (r = mkdir_p(modules, 0755)) < 0)
      return modules ? r : -ENOMEM;
  }
  if ((r = builtin_values(ctx, p, b->release, modules, res->headers_deb, &vals)) < 0)
    return r;
  for (size_t i = 0; settings && settings[i]; i++)
    if ((r = strv_extend(&vals, settings[i])) < 0)
      return r;
  for (size_t i = 0; o->set && o->set[i]; i++)
    if ((r = strv_extend(&vals, o->set[i])) < 0)
      return r;
  size_t n_recipes = 0;
  while (recipes[n_recipes])
    n_recipes++;
  _cleanup_(kgb_recipes_freep) struct kgb_recipe **plan = calloc(n_recipes + 1, sizeof(*plan));
  if (!plan)
    return -ENOMEM;
  for (size_t i = 0; i < n_recipes; i++) {
    if ((r = kgb_recipe_expand(ctx, recipes[i], vals, &plan[i])) < 0)
      return r;
    if ((r = strv_extend(&res->recipes, recipes[i]->name)) < 0)
      return r;
    /* the agent recipe installs /usr/bin/kata-agent from an input when it has one */
    if (STREQ(plan[i]->name, "kata-agent") && plan[i]->n_inputs > 0)
      res->kata_agent = true;
  }
  int purge_setting = 0; /* libconfig writes an int: a bool here took 4 bytes of the stack */
  config_lookup_bool(&p->cfg, "rootfs.purge_build_packages", &purge_setting);
  bool purge = purge_setting != 0;
  _cleanup_strv_free_ char **libvers = NULL;
  {
    const config_setting_t *lv = config_lookup(&p->cfg, "rootfs.library_versions");
    for (int i = 0; lv && i < config_setting_length(lv); i++)
      if ((r = strv_extend(&libvers, config_setting_get_string_elem(lv, i))) < 0)
        return r;
  }
  /* 4. the base */
  bool force_base = ctx->force;
  ctx->force = force_base && !o->inputs_ready;
  r = bootstrap_stage(ctx, p, o, res->epoch, res);
  ctx->force = force_base;
  if (r < 0)
    return r;
  _cleanup_free_ char *base_dir = strdup(res->base);
  if (!base_dir)
    return -ENOMEM;
  *strrchr(base_dir, '/') = '\0';
  const char *base_key = strrchr(base_dir, '/') + 1;
  /* 5. the key */
  struct sbuf ks = SBUF_INIT;
  sbuf_addf(&ks, "%s\nbase %s\nkernel %s\nrelease %s\nepoch %lld\npurge %d\n",
            KGB_ROOTFS_STAGE_VERSION, base_key, strrchr(b->stage_dir, '/') + 1, b->release,
            res->epoch, purge);
  for (size_t i = 0; libvers && libvers[i]; i++)
    sbuf_addf(&ks, "library %s\n", libvers[i]);
  for (size_t i = 0; r >= 0 && plan[i]; i++)
    r = describe_recipe(ctx, plan[i], &ks);
  char key[65];
  if (r < 0 || ks.err || kgb_sha256_hex(sbuf_str(&ks), ks.len, key) < 0) {
    sbuf_release(&ks);
    return r < 0 ? r : -ENOMEM;
  }
  sbuf_release(&ks);
  res->key = strdup(key);
  res->stage_dir = kgb_strdup_printf("%s/stages/rootfs/%s", ctx->workdir, key);
  res->root = res->stage_dir ? strjoin_path(res->stage_dir, "rootfs") : NULL;
  res->log_path = kgb_strdup_printf("%s/logs/rootfs-%s-%.16s.log", ctx->workdir, p->name, key);
  _cleanup_free_ char *manifest =
      res->stage_dir ? strjoin_path(res->stage_dir, "manifest.json") : NULL;
  if (!res->key || !res->root || !res->log_path || !manifest)
    return -ENOMEM;
  if (!ctx->force && is_file(manifest)) {
    strv_free(res->recipes);
    res->recipes = NULL;
    if ((r = read_cached(res->stage_dir, res)) < 0)
      return kgb_error(ctx, -EIO, "'%s' is incomplete: remove it and build again", res->stage_dir);
    res->cached = true;
    res->seconds = monotonic_seconds() - t0;
    *ret = TAKE_PTR(res);
    return 0;
  }
  /* 6. the tree, in a temporary stage directory */
  if ((r = logs_dir(ctx)) < 0)
    return r;
  unlink(res->log_path);
  _cleanup_free_ char *tmp = NULL;
  if ((r = make_stage_tmp(ctx, "rootfs", key, &tmp)) < 0)
    return r;
  _cleanup_free_ char *troot = strjoin_path(tmp, "rootfs");
  if (!troot) {
    rm_rf(tmp);
    return -ENOMEM;
  }
  kgb_info(ctx, "rootfs: building '%s' for %s in '%s': log '%s'", p->name, b->release, tmp,
           res->log_path);
  kgb_progress(ctx, "extracting the base", 0, 0);
  _cleanup_strv_free_ char **run_env = NULL;
  struct run run = {ctx, troot, res->log_path, NULL};
  if ((r = mkdir_p(troot, 0755)) < 0 || (r = extract_base(ctx, res->base, troot)) < 0 ||
      (r = neutral_host_files(ctx, troot)) < 0)
    goto fail;
  if ((r = strv_push(&run_env, kgb_strdup_printf("SOURCE_DATE_EPOCH=%lld", res->epoch))) < 0)
    goto fail;
  run.env = run_env;
  /* no service starts in the root while packages are installed */
  if ((r = write_into_root(ctx, troot, "/usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n", 0755)) <
          0 ||
      (r = swap_resolv_conf(ctx, troot, true)) < 0)
    goto fail;
  {
    char *argv[] = {"apt-get", "update", "-o", "Dpkg::Use-Pty=0", NULL};
    kgb_progress(ctx, "updating the package lists", 0, 0);
    r = chroot_step(&run, argv, NULL, NULL, "updating the package lists");
  }
  for (size_t i = 0; r >= 0 && plan[i]; i++)
    r = run_recipe(&run, plan[i], i, n_recipes, &res->warnings);
  if (r >= 0 && purge) {
    _cleanup_strv_free_ char **argv = NULL;
    static const char *const head[] = {"apt-get", "purge",           "-y", "--auto-remove",
                                       "-o",      "Dpkg::Use-Pty=0", "--"};
    for (size_t i = 0; i < ELEMENTSOF(head) && r >= 0; i++)
      r = strv_extend(&argv, head[i]);
    size_t before = strv_length(argv);
    for (size_t i = 0; r >= 0 && plan[i]; i++)
      for (size_t j = 0; r >= 0 && plan[i]->purge && plan[i]->purge[j]; j++)
        if (!strv_contains(argv, plan[i]->purge[j]))
          r = strv_extend(&argv, plan[i]->purge[j]);
    if (r >= 0 && strv_length(argv) > before) {
      kgb_info(ctx, "rootfs: purging build-only packages");
      r = chroot_step(&run, argv, NULL, NULL, "purging build-only packages");
    }
  }
  if (r >= 0) {
    char *argv[] = {"apt-get", "clean", NULL};
    r = chroot_step(&run, argv, NULL, NULL, "cleaning the apt cache");
  }
  for (size_t i = 0; r >= 0 && plan[i]; i++)
    for (size_t j = 0; r >= 0 && plan[i]->remove && plan[i]->remove[j]; j++)
      r = remove_in_root(ctx, troot, plan[i]->remove[j]);
  {
    int r2 = swap_resolv_conf(ctx, troot, false);
    if (r >= 0)
      r = r2;
  }
  if (r >= 0)
    r = standard_cleanup(&run);
  if (r < 0)
    goto fail;
  /* 7. the checks, the report, the rename */
  {
    _cleanup_free_ char *sysmap = strjoin_path(b->stage_dir, "System.map");
    struct kgb_modcheck_opts mo = {.release = b->release,
                                   .system_map = sysmap && is_file(sysmap) ? sysmap : NULL,
                                   .library_versions = libvers,
                                   .log_path = res->log_path};
    log_line(res->log_path, "\n### checking the modules\n");
    if (!sysmap || (r = kgb_modcheck_run(ctx, troot, &mo, &res->check)) < 0)
      goto fail;
  }
  if (res->check->n_problems) {
    if (o->keep_failed)
      kgb_warn(ctx, "the failed root is kept in '%s' (--keep-failed): remove it when done", troot);
    else
      rm_rf(tmp);
    res->seconds = monotonic_seconds() - t0;
    *ret = TAKE_PTR(res);
    return kgb_error(ctx, -EBADE, "the root file system failed %zu module check%s: not stored",
                     (*ret)->check->n_problems, (*ret)->check->n_problems == 1 ? "" : "s");
  }
  if ((r = kgb_tree_report(ctx, troot, &res->report)) < 0 ||
      (r = write_rootfs_manifest(ctx, tmp, p, res, base_key)) < 0 ||
      (r = stage_commit(ctx, tmp, res->stage_dir)) < 0)
    goto fail;
  res->seconds = monotonic_seconds() - t0;
  *ret = TAKE_PTR(res);
  return 0;
fail:
  if (o->keep_failed && r != -ECANCELED) {
    kgb_warn(ctx, "the failed root is kept in '%s' (--keep-failed): remove it when done", troot);
    return r;
  }
  rm_rf(tmp);
  return r;
}

/* ================================================================ images ==== */

struct kgb_image_result *kgb_image_result_free(struct kgb_image_result *r) {
  if (!r)
    return NULL;
  free(r->stage_dir);
  free(r->path);
  free(r->key);
  kgb_image_info_release(&r->info);
  free(r);
  return NULL;
}

static const char *image_file_name(enum kgb_image_format f) {
  switch (f) {
  case KGB_IMAGE_EXT4:
    return "kata-containers.img";
  case KGB_IMAGE_EROFS:
    return "kata-containers-erofs.img";
  default:
    return "kata-containers-initrd.img";
  }
}

int kgb_rootfs_image(struct kgb_ctx *ctx, const struct kgb_profile *p,
                     const struct kgb_rootfs_result *rootfs, enum kgb_image_format format,
                     enum kgb_compression compression, struct kgb_image_result **ret) {
  _cleanup_(kgb_image_result_freep) struct kgb_image_result *res = calloc(1, sizeof(*res));
  if (!res)
    return -ENOMEM;
  double t0 = monotonic_seconds();
  int r;
  _cleanup_free_ char *tool = NULL;
  {
    char *mk2[] = {"mkfs.ext4", "-V", NULL}, *mkerofs[] = {"mkfs.erofs", "--help", NULL};
    if (format == KGB_IMAGE_EXT4 && (r = first_line_of(ctx, mk2, &tool)) < 0)
      return r;
    if (format == KGB_IMAGE_EROFS && (r = first_line_of(ctx, mkerofs, &tool)) < 0)
      return r;
    if (format == KGB_IMAGE_INITRD) {
      tool = kgb_strdup_printf("%s %s", archive_version_details(),
                               kgb_compression_to_string(compression));
      if (!tool)
        return -ENOMEM;
    }
  }
  _cleanup_free_ char *inputs = kgb_strdup_printf(
      "%s\nrootfs %s\nformat %s\ncompression %s\nfree_mb %d\nepoch %lld\ntool %s\n",
      KGB_IMAGE_STAGE_VERSION, rootfs->key, kgb_image_format_to_string(format),
      format == KGB_IMAGE_INITRD ? kgb_compression_to_string(compression) : "-",
      format == KGB_IMAGE_EXT4 ? p->image.free_mb : 0, rootfs->epoch, tool);
  char key[65];
  if (!inputs || kgb_sha256_hex(inputs, strlen(inputs), key) < 0)
    return -ENOMEM;
  res->key = strdup(key);
  res->stage_dir = kgb_strdup_printf("%s/stages/image/%s", ctx->workdir, key);
  res->path = res->stage_dir ? strjoin_path(res->stage_dir, image_file_name(format)) : NULL;
  _cleanup_free_ char *manifest =
      res->stage_dir ? strjoin_path(res->stage_dir, "manifest.json") : NULL;
  if (!res->key || !res->path || !manifest)
    return -ENOMEM;
  if (!ctx->force && is_file(manifest) && is_file(res->path)) {
    struct stat st;
    if (stat(res->path, &st) == 0)
      res->info.size = (uint64_t)st.st_size;
    res->info.uuid = state_get1(res->stage_dir, "uuid");
    _cleanup_free_ char *fs = state_get1(res->stage_dir, "fs_size");
    res->info.fs_size = fs ? strtoull(fs, NULL, 10) : res->info.size;
    res->cached = true;
    res->seconds = monotonic_seconds() - t0;
    *ret = TAKE_PTR(res);
    return 0;
  }
  if ((r = logs_dir(ctx)) < 0)
    return r;
  _cleanup_free_ char *log_path =
      kgb_strdup_printf("%s/logs/image-%s-%s-%.16s.log", ctx->workdir, p->name,
                        kgb_image_format_to_string(format), key);
  _cleanup_free_ char *tmp = NULL;
  if (!log_path)
    return -ENOMEM;
  unlink(log_path);
  if ((r = make_stage_tmp(ctx, "image", key, &tmp)) < 0)
    return r;
  _cleanup_free_ char *out = strjoin_path(tmp, image_file_name(format));
  if (!out) {
    rm_rf(tmp);
    return -ENOMEM;
  }
  struct kgb_image_opts io = {.format = format,
                              .compression = compression,
                              .free_mb = p->image.free_mb,
                              .epoch = rootfs->epoch,
                              .seed = key,
                              .log_path = log_path};
  kgb_info(ctx, "image: packing '%s' as %s", p->name, kgb_image_format_to_string(format));
  r = kgb_image_pack(ctx, rootfs->root, out, &io, &res->info);
  if (r >= 0) {
    struct sbuf sb = SBUF_INIT, st = SBUF_INIT;
    sbuf_adds(&sb, "{\n  \"stage\": \"image\",\n  \"key\": ");
    sbuf_add_json(&sb, key);
    sbuf_adds(&sb, ",\n  \"rootfs\": ");
    sbuf_add_json(&sb, rootfs->key);
    sbuf_addf(&sb,
              ",\n  \"format\": \"%s\",\n  \"size\": %llu,\n  \"fs_size\": %llu,\n  \"uuid\": ",
              kgb_image_format_to_string(format), (unsigned long long)res->info.size,
              (unsigned long long)res->info.fs_size);
    if (res->info.uuid)
      sbuf_add_json(&sb, res->info.uuid);
    else
      sbuf_adds(&sb, "null");
    sbuf_adds(&sb, "\n}\n");
    sbuf_addf(&st, "fs_size %llu\n", (unsigned long long)res->info.fs_size);
    if (res->info.uuid)
      sbuf_addf(&st, "uuid %s\n", res->info.uuid);
    _cleanup_free_ char *m = strjoin_path(tmp, "manifest.json"), *s = strjoin_path(tmp, "state");
    r = m && s && !sb.err && !st.err ? write_file_atomic(s, sbuf_str(&st), st.len, 0644) : -ENOMEM;
    if (r >= 0)
      r = write_file_atomic(m, sbuf_str(&sb), sb.len, 0644);
    sbuf_release(&sb);
    sbuf_release(&st);
  }
  if (r >= 0)
    r = stage_commit(ctx, tmp, res->stage_dir);
  if (r < 0) {
    rm_rf(tmp);
    return r;
  }
  res->seconds = monotonic_seconds() - t0;
  *ret = TAKE_PTR(res);
  return 0;
}

int kgb_rootfs_bootstrap(struct kgb_ctx *ctx, const struct kgb_profile *p,
                         const struct kgb_rootfs_opts *o, long long epoch, char **ret_base,
                         bool *ret_cached) {
  _cleanup_(kgb_rootfs_result_freep) struct kgb_rootfs_result *res = calloc(1, sizeof(*res));
  if (!res)
    return -ENOMEM;
  int r = bootstrap_stage(ctx, p, o, epoch, res);
  if (r < 0)
    return r;
  *ret_cached = res->base_cached;
  *ret_base = TAKE_PTR(res->base);
  return 0;
}
