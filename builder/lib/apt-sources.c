/* The host's apt sources: where a root's packages come from (mirror, suites, components,
 * keyrings) is read from the host at run time, never written into the repository. One-line
 * and deb822 formats, and the Date of a Release file. */
#define _GNU_SOURCE
#include "apt-sources.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../shared/sbuf.h"
#include "../shared/util.h"

const char *kgb_deb_arch(const char *arch) {
  if (STREQ(arch, "x86_64"))
    return "amd64";
  if (STREQ(arch, "aarch64") || STREQ(arch, "arm64"))
    return "arm64";
  return arch;
}

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

int kgb_apt_sources_add(struct kgb_apt_sources *s, const char *uri, const char *suite,
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
  return kgb_apt_sources_add(out, uri, suite, comps, signed_by, file, lineno);
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
      r = kgb_apt_sources_add(out, uris[u], suites[i], comps, sb, file, s->line);
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
        r = kgb_apt_sources_add(&out, s->uri, s->suite, s->components, s->signed_by, s->file,
                                s->line);
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
