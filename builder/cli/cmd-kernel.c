/* `kernel config` (alias `kernel setup`, as in Kata's build-kernel.sh): merge the profile's
 * fragments, resolve them with the kernel's Kconfig, prove every requested value survived. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"
#include "kernel-build.h"
#include "pipeline.h"
#include "sbuf.h"
#include "util.h"

/* virgl needs no GPU on the build host, so it is the profile that always works. */
#define KGB_DEFAULT_PROFILE "virgl"

struct kernel_opts {
  const char *profile;
  const char *source;
  const char *version;
  const char *arch;
  const char *output;
  char **fragments;
  const char *destdir;
  const char *prefix;
  const char *ccache_dir;
  bool no_ccache;
  const char *headers;
  const char *sha256;
  const char *mirror;
  bool replace;
  const char *compare;
};

static void kernel_opts_release(struct kernel_opts *o) { strv_free(o->fragments); }

static const char *vendor_profile(const char *vendor) {
  if (STREQ(vendor, "nvidia"))
    return "nvidia-gpu";
  if (STREQ(vendor, "intel"))
    return "intel-gvt-d";
  if (STREQ(vendor, "virgl"))
    return "virgl";
  return NULL;
}

static const struct option options[] = {
    {"profile", required_argument, NULL, 'p'},       {"gpu", required_argument, NULL, 'g'},
    {"kernel-source", required_argument, NULL, 'k'}, {"version", required_argument, NULL, 'v'},
    {"arch", required_argument, NULL, 'a'},          {"fragment", required_argument, NULL, 'F'},
    {"output", required_argument, NULL, 'o'},        {"force", no_argument, NULL, 'f'},
    {"destdir", required_argument, NULL, 'D'},       {"prefix", required_argument, NULL, 'P'},
    {"ccache-dir", required_argument, NULL, 'C'},    {"no-ccache", no_argument, NULL, 'N'},
    {"headers", required_argument, NULL, 'H'},       {"sha256", required_argument, NULL, 'S'},
    {"mirror", required_argument, NULL, 'M'},        {"replace", no_argument, NULL, 'R'},
    {"compare", required_argument, NULL, 'c'},       {}};
#define KERNEL_SHORTOPTS "p:g:k:v:a:o:fH:"

static int parse_kernel_opts(struct cli *cli, const char *cmd, int argc, char **argv,
                             struct kernel_opts *o) {
  int c;
  while ((c = getopt_long(argc, argv, KERNEL_SHORTOPTS, options, NULL)) != -1) {
    switch (c) {
    case 'p':
      o->profile = optarg;
      break;
    case 'g':
      o->profile = vendor_profile(optarg);
      if (!o->profile)
        return cli_usage(cli, "%s: -g takes nvidia, intel or virgl, not '%s'", cmd, optarg);
      break;
    case 'k':
      o->source = optarg;
      break;
    case 'v':
      o->version = optarg;
      break;
    case 'a':
      o->arch = optarg;
      break;
    case 'F':
      if (strv_extend(&o->fragments, optarg) < 0)
        return EXIT_FAIL;
      break;
    case 'o':
      o->output = optarg;
      break;
    case 'f':
      cli->ctx->force = true;
      break;
    case 'D':
      o->destdir = optarg;
      break;
    case 'P':
      if (optarg[0] != '/')
        return cli_usage(cli, "%s: --prefix must be an absolute path, not '%s'", cmd, optarg);
      o->prefix = optarg;
      break;
    case 'C':
      o->ccache_dir = optarg;
      break;
    case 'N':
      o->no_ccache = true;
      break;
    case 'S':
      o->sha256 = optarg;
      break;
    case 'M':
      o->mirror = optarg;
      break;
    case 'R':
      o->replace = true;
      break;
    case 'c':
      o->compare = optarg;
      break;
    case 'H':
      if (kgb_headers_format_from_string(optarg) < 0)
        return cli_usage(cli, "%s: -H takes deb, rpm or tar, not '%s'", cmd, optarg);
      o->headers = optarg;
      break;
    default:
      return cli_bad_option(cli, cmd, argv[optind - 1], options);
    }
  }
  if (optind < argc)
    return cli_usage(cli, "%s: unexpected argument '%s'", cmd, argv[optind]);
  if (!o->profile)
    o->profile = KGB_DEFAULT_PROFILE;
  return EXIT_OK;
}

static char *value_text(const struct kgb_fentry *e) {
  return kgb_fentry_display(e->value, e->is_string);
}

static void place_json(struct json *j, const char *key, const struct kgb_request *q) {
  _cleanup_free_ char *v = value_text(q->entry);
  json_object_begin(j, key, JSON_INLINE);
  json_string(j, "fragment", q->fragment->name);
  json_uint(j, "line", q->entry->line);
  json_string(j, "value", v ? v : "");
  json_object_end(j);
}

static void render_json(struct json *j, const struct kgb_profile *p, const char *config,
                        const struct kgb_config_result *res) {
  const struct kgb_verify *v = res->verify;
  const struct kgb_merge *m = res->merge;
  json_object_begin(j, NULL, JSON_BLOCK);
  json_string(j, "config", config);
  json_string(j, "profile", p->name);
  json_string(j, "kernel_version", res->source->version);
  json_bool(j, "cached", res->cached);
  json_uint(j, "requested", v->n_requested);
  json_array_begin(j, "overrides", JSON_BLOCK);
  for (size_t i = 0; i < m->n_overrides; i++) {
    json_object_begin(j, NULL, JSON_INLINE);
    json_stringf(j, "symbol", "CONFIG_%s", m->overrides[i].symbol);
    place_json(j, "from", &m->overrides[i].from);
    place_json(j, "to", &m->overrides[i].to);
    json_object_end(j);
  }
  json_array_end(j);
  json_array_begin(j, "dropped", JSON_BLOCK);
  for (size_t i = 0; i < v->n_drops; i++) {
    const struct kgb_drop *d = &v->drops[i];
    _cleanup_free_ char *want = value_text(d->request->entry);
    _cleanup_free_ char *got = kgb_fentry_display(d->actual, d->actual_is_string);
    json_object_begin(j, NULL, JSON_INLINE);
    json_stringf(j, "symbol", "CONFIG_%s", d->request->symbol);
    json_string(j, "requested", want ? want : "");
    json_string(j, "actual", got ? got : "");
    json_string(j, "reason", kgb_drop_reason_to_string(d->reason));
    json_string(j, "detail", d->detail);
    json_string(j, "fragment", d->request->fragment->name);
    json_uint(j, "line", d->request->entry->line);
    json_string_or_null(j, "allowed", d->allowed ? d->allowed->reason : NULL);
    json_object_end(j);
  }
  json_array_end(j);
  json_uint(j, "unexplained", v->n_unexplained);
  json_object_begin(j, "seconds", JSON_INLINE);
  json_double(j, "resolve", res->resolve_seconds);
  json_double(j, "verify", res->verify_seconds);
  json_object_end(j);
  json_object_end(j);
}

static void report(struct cli *cli, const struct kgb_profile *p,
                   const struct kgb_config_result *res) {
  const struct kgb_verify *v = res->verify;
  const struct kgb_merge *m = res->merge;
  cli_msg(cli, "kernel config: profile '%s', Linux %s (%s), %zu fragments\n", p->name,
          res->source->version, p->kernel.arch, m->n_fragments);
  for (size_t i = 0; m->skipped && m->skipped[i]; i++)
    cli_msg(cli, "  skipped %s: its tag excludes %s\n", m->skipped[i], p->kernel.arch);
  for (size_t i = 0; i < m->n_overrides; i++) {
    const struct kgb_override *ov = &m->overrides[i];
    _cleanup_free_ char *a = value_text(ov->from.entry), *b = value_text(ov->to.entry);
    cli_msg(cli, "  override CONFIG_%s: %s:%u (%s) -> %s:%u (%s)\n", ov->symbol,
            ov->from.fragment->name, ov->from.entry->line, a ? a : "?", ov->to.fragment->name,
            ov->to.entry->line, b ? b : "?");
  }
  for (size_t i = 0; v->notes && v->notes[i]; i++)
    cli_msg(cli, "  note: %s\n", v->notes[i]);
  for (size_t i = 0; i < v->n_drops; i++) {
    const struct kgb_drop *d = &v->drops[i];
    _cleanup_free_ char *want = value_text(d->request->entry);
    _cleanup_free_ char *got = kgb_fentry_display(d->actual, d->actual_is_string);
    cli_err(cli, "%s:%u: CONFIG_%s=%s did not survive (now %s) [%s%s]\n    %s\n",
            d->request->fragment->name, d->request->entry->line, d->request->symbol,
            want ? want : "?", got ? got : "?", kgb_drop_reason_to_string(d->reason),
            d->allowed ? ", allowed" : "", d->detail);
    if (d->allowed)
      cli_err(cli, "    allowed by kconfig-fragments/allow.conf:%u: %s\n", d->allowed->line,
              d->allowed->reason);
  }
  cli_msg(cli, "  %zu values requested, %zu survived, %zu dropped (%zu allowed)%s\n",
          v->n_requested, v->n_requested - v->n_drops, v->n_drops, v->n_drops - v->n_unexplained,
          res->cached ? "; resolution reused from the stage cache" : "");
  if (cli->verbosity > 0)
    cli_msg(cli, "  resolution %.2f s, verification %.2f s; log: %s\n", res->resolve_seconds,
            res->verify_seconds, res->log_path);
  if (v->n_unexplained)
    cli_err(cli,
            "kata-gpu-builder: %zu requested value%s did not survive: fix the fragment, or "
            "list the symbol with a reason in kconfig-fragments/allow.conf\n",
            v->n_unexplained, v->n_unexplained == 1 ? "" : "s");
}

static int copy_output(struct cli *cli, const char *from, const char *to) {
  int r = copy_file_output(from, to, 0644);
  if (r < 0)
    cli_error(cli, "cannot write '%s': %s", to, file_error_reason(to, r, 0));
  return r;
}

/* Parses the verb's options and loads its profile; returns EXIT_OK with *ret set, or an exit
 * status. */
static int load_for_verb(struct cli *cli, const char *cmd, int argc, char **argv,
                         struct kernel_opts *o, struct kgb_profile **ret) {
  int r = parse_kernel_opts(cli, cmd, argc, argv, o);
  if (r != EXIT_OK)
    return r;
  _cleanup_(kgb_profile_freep) struct kgb_profile *p = NULL;
  r = kgb_profile_load(cli->ctx, o->profile, &p);
  if (r < 0)
    return cli_fail(cli, r, NULL);
  if (o->arch && !STREQ(o->arch, p->kernel.arch))
    return cli_usage(cli, "%s: profile '%s' is for %s, not '%s'", cmd, p->name, p->kernel.arch,
                     o->arch);
  if (o->version && kgb_ctx_set_string(&p->kernel.version, o->version) < 0)
    return EXIT_FAIL;
  if (o->version && !o->source) {
    free(p->kernel.source);
    p->kernel.source = NULL;
  }
  *ret = TAKE_PTR(p);
  return EXIT_OK;
}

/* kernel config --compare DIR: what the other set gets that ours does not, by its file */
static int run_compare(struct cli *cli, const struct kgb_profile *p,
                       const struct kgb_config_result *res, const char *dir) {
  _cleanup_(kgb_config_compare_freep) struct kgb_config_compare *c = NULL;
  int r = kgb_kernel_config_compare(cli->ctx, p, res, dir, &c);
  if (r < 0)
    return cli_fail(cli, r, "kernel config --compare");
  if (cli->json) {
    struct json j = JSON_INIT;
    json_object_begin(&j, NULL, JSON_BLOCK);
    json_string(&j, "profile", p->name);
    json_string(&j, "dir", c->dir);
    json_strv(&j, "files", c->files);
    json_strv(&j, "skipped", c->skipped);
    json_uint(&j, "requested", c->n_requested);
    json_string(&j, "config", c->config_path);
    json_array_begin(&j, "missing", JSON_BLOCK);
    for (size_t i = 0; i < c->n_items; i++) {
      const struct kgb_compare_item *it = &c->items[i];
      json_object_begin(&j, NULL, JSON_INLINE);
      json_string(&j, "file", it->file);
      json_uint(&j, "line", it->line);
      json_string(&j, "symbol", it->symbol);
      json_string(&j, "theirs", it->theirs);
      json_string_or_null(&j, "ours", it->ours);
      json_object_end(&j);
    }
    json_array_end(&j);
    json_object_end(&j);
    return cli_out_json(&j) < 0 ? EXIT_FAIL : EXIT_OK;
  }
  struct sbuf sb = SBUF_INIT;
  sbuf_addf(&sb, "%zu value%s that %s gets and '%s' does not (%zu requested, %zu fragment%s",
            c->n_items, c->n_items == 1 ? "" : "s", c->dir, p->name, c->n_requested,
            strv_length(c->files), strv_length(c->files) == 1 ? "" : "s");
  if (c->skipped)
    sbuf_addf(&sb, ", %zu left out for %s by its tags", strv_length(c->skipped), p->kernel.arch);
  sbuf_adds(&sb, "):\n");
  const char *file = NULL;
  for (size_t i = 0; i < c->n_items; i++) {
    const struct kgb_compare_item *it = &c->items[i];
    if (!file || !STREQ(file, it->file))
      sbuf_addf(&sb, "%s\n", it->file);
    file = it->file;
    sbuf_addf(&sb, "  CONFIG_%s=%s (line %u; ours: %s)\n", it->symbol, it->theirs, it->line,
              it->ours ? it->ours : "not set");
  }
  r = cli_out_sbuf(&sb);
  sbuf_release(&sb);
  return r < 0 ? EXIT_FAIL : EXIT_OK;
}

static int run_config(struct cli *cli, int argc, char **argv) {
  _cleanup_(kernel_opts_release) struct kernel_opts o = {0};
  _cleanup_(kgb_profile_freep) struct kgb_profile *p = NULL;
  int r = load_for_verb(cli, "kernel config", argc, argv, &o, &p);
  if (r != EXIT_OK)
    return r;
  struct kgb_kernel_config_opts ko = {
      .source = o.source, .sha256 = o.sha256, .mirror = o.mirror, .fragments = o.fragments};

  _cleanup_(kgb_config_result_freep) struct kgb_config_result *res = NULL;
  r = kgb_kernel_config(cli->ctx, p, &ko, &res);
  if (r < 0)
    return cli_fail(cli, r, NULL);
  const char *config = res->config_path;
  if (o.output) {
    if (copy_output(cli, res->config_path, o.output) < 0)
      return EXIT_FAIL;
    config = o.output;
  }
  report(cli, p, res);
  if (o.compare) {
    int status = run_compare(cli, p, res, o.compare);
    return status == EXIT_OK && res->verify->n_unexplained ? EXIT_MISMATCH : status;
  }
  if (cli->json) {
    struct json j = JSON_INIT;
    render_json(&j, p, config, res);
    r = cli_out_json(&j);
  } else {
    _cleanup_free_ char *line = o.output ? strdup("") : kgb_strdup_printf("%s\n", config);
    r = line ? cli_out(line) : -ENOMEM;
  }
  if (r < 0)
    return EXIT_FAIL;
  return res->verify->n_unexplained ? EXIT_MISMATCH : EXIT_OK;
}

/* Builds (or finds in the stage cache) the profile's kernel; reports a config that lost
 * values like `kernel config` does. Returns EXIT_OK with *ret set, or an exit status. */
static int build_for_verb(struct cli *cli, struct kgb_profile *p, const struct kernel_opts *o,
                          struct kgb_pipeline_result **ret) {
  struct kgb_kernel_config_opts ko = {
      .source = o->source, .sha256 = o->sha256, .mirror = o->mirror, .fragments = o->fragments};
  struct kgb_build_opts bo = {
      .config = &ko, .ccache_dir = o->ccache_dir, .no_ccache = o->no_ccache};
  struct kgb_pipeline_opts po = {.kernel = &bo};
  _cleanup_(kgb_pipeline_result_freep) struct kgb_pipeline_result *res = NULL;
  int r = kgb_pipeline_upto(cli->ctx, p, &po, KGB_STAGE_KERNEL, &res);
  if (r == -EBADE && res && res->config) {
    report(cli, p, res->config);
    cli_fail(cli, r, NULL);
    return EXIT_MISMATCH;
  }
  if (r < 0)
    return cli_fail(cli, r, NULL);
  const struct kgb_build_result *b = res->kernel;
  if (b->cached)
    cli_msg(cli, "kernel build: '%s' is up to date (%s), make did not run\n", p->name, b->release);
  else
    cli_msg(cli, "kernel build: built %s in %.0f s, %lu objects compiled (%s)\n", b->release,
            b->seconds, b->objects, b->why);
  *ret = TAKE_PTR(res);
  return EXIT_OK;
}

/* Opens the document of build, install and headers with the kernel build's members. */
static void build_json(struct json *j, const struct kgb_profile *p,
                       const struct kgb_build_result *b) {
  json_object_begin(j, NULL, JSON_BLOCK);
  json_string(j, "profile", p->name);
  json_string(j, "release", b->release);
  json_string(j, "stage", b->stage_dir);
  json_bool(j, "cached", b->cached);
  json_string_or_null(j, "why", b->why);
  json_uint(j, "objects", b->objects);
  json_double(j, "seconds", b->seconds);
  json_double(j, "make_seconds", b->make_seconds);
  json_bool(j, "modules", b->has_modules);
  json_string(j, "log", b->log_path);
}

static int run_build(struct cli *cli, int argc, char **argv) {
  _cleanup_(kernel_opts_release) struct kernel_opts o = {0};
  _cleanup_(kgb_profile_freep) struct kgb_profile *p = NULL;
  int r = load_for_verb(cli, "kernel build", argc, argv, &o, &p);
  if (r != EXIT_OK)
    return r;
  _cleanup_(kgb_pipeline_result_freep) struct kgb_pipeline_result *built = NULL;
  if ((r = build_for_verb(cli, p, &o, &built)) != EXIT_OK)
    return r;
  const struct kgb_build_result *b = built->kernel;
  if (cli->json) {
    struct json j = JSON_INIT;
    build_json(&j, p, b);
    json_object_end(&j);
    r = cli_out_json(&j);
  } else {
    _cleanup_free_ char *line = kgb_strdup_printf("%s\n", b->stage_dir);
    r = line ? cli_out(line) : -ENOMEM;
  }
  return r < 0 ? EXIT_FAIL : EXIT_OK;
}

static int run_install(struct cli *cli, int argc, char **argv) {
  _cleanup_(kernel_opts_release) struct kernel_opts o = {0};
  _cleanup_(kgb_profile_freep) struct kgb_profile *p = NULL;
  int r = load_for_verb(cli, "kernel install", argc, argv, &o, &p);
  if (r != EXIT_OK)
    return r;
  _cleanup_(kgb_pipeline_result_freep) struct kgb_pipeline_result *built = NULL;
  if ((r = build_for_verb(cli, p, &o, &built)) != EXIT_OK)
    return r;
  const struct kgb_build_result *b = built->kernel;
  struct kgb_install_opts io = {.destdir = o.destdir, .prefix = o.prefix, .replace = o.replace};
  _cleanup_(kgb_installed_freep) struct kgb_installed *in = NULL;
  r = kgb_kernel_install(cli->ctx, p, b, &io, &in);
  if (r < 0)
    return cli_fail(cli, r, NULL);
  if (cli->json) {
    struct json j = JSON_INIT;
    build_json(&j, p, b);
    json_string(&j, "dir", in->dir);
    json_strv(&j, "files", in->files);
    json_array_begin(&j, "links", JSON_INLINE);
    json_string(&j, NULL, in->vmlinuz_link);
    json_string(&j, NULL, in->vmlinux_link);
    json_array_end(&j);
    json_bool(&j, "cfgver_stale", in->cfgver_stale);
    json_object_end(&j);
    return cli_out_json(&j) < 0 ? EXIT_FAIL : EXIT_OK;
  }
  struct sbuf sb = SBUF_INIT;
  for (size_t i = 0; in->files[i]; i++)
    sbuf_addf(&sb, "%s/%s\n", in->dir, in->files[i]);
  sbuf_addf(&sb, "%s\n%s\n", in->vmlinuz_link, in->vmlinux_link);
  r = cli_out_sbuf(&sb);
  sbuf_release(&sb);
  return r < 0 ? EXIT_FAIL : EXIT_OK;
}

static int run_headers(struct cli *cli, int argc, char **argv) {
  _cleanup_(kernel_opts_release) struct kernel_opts o = {0};
  _cleanup_(kgb_profile_freep) struct kgb_profile *p = NULL;
  int r = load_for_verb(cli, "kernel headers", argc, argv, &o, &p);
  if (r != EXIT_OK)
    return r;
  _cleanup_(kgb_pipeline_result_freep) struct kgb_pipeline_result *built = NULL;
  if ((r = build_for_verb(cli, p, &o, &built)) != EXIT_OK)
    return r;
  const struct kgb_build_result *b = built->kernel;
  struct kgb_kernel_config_opts ko = {
      .source = o.source, .sha256 = o.sha256, .mirror = o.mirror, .fragments = o.fragments};
  struct kgb_build_opts bo = {.config = &ko, .ccache_dir = o.ccache_dir, .no_ccache = o.no_ccache};
  _cleanup_(kgb_headers_result_freep) struct kgb_headers_result *h = NULL;
  r = kgb_kernel_headers(cli->ctx, p, &bo, b,
                         kgb_headers_format_from_string(o.headers ? o.headers : "deb"), &h);
  if (r < 0)
    return cli_fail(cli, r, NULL);
  if (h->cached)
    cli_msg(cli, "kernel headers: up to date in '%s'\n", h->stage_dir);
  if (cli->json) {
    struct json j = JSON_INIT;
    build_json(&j, p, b);
    json_strv(&j, "headers", h->files);
    json_object_end(&j);
    return cli_out_json(&j) < 0 ? EXIT_FAIL : EXIT_OK;
  }
  struct sbuf sb = SBUF_INIT;
  for (size_t i = 0; h->files[i]; i++)
    sbuf_addf(&sb, "%s\n", h->files[i]);
  r = cli_out_sbuf(&sb);
  sbuf_release(&sb);
  return r < 0 ? EXIT_FAIL : EXIT_OK;
}

#define KERNEL_VERB(name_, run_, summary_)                                                         \
  {                                                                                                \
    .name = name_, .run = run_, .summary = summary_, .options = options,                           \
    .shortopts = KERNEL_SHORTOPTS                                                                  \
  }

static const struct cli_command kernel_verbs[] = {
    KERNEL_VERB("config", run_config, "merge fragments, resolve with Kconfig, verify every value"),
    KERNEL_VERB("setup", run_config, "the same as 'config' (Kata build-kernel.sh's name)"),
    KERNEL_VERB("build", run_build, "config, then compile bzImage, vmlinux and modules (cached)"),
    KERNEL_VERB("install", run_install, "build, then install under Kata's file names"),
    KERNEL_VERB("headers", run_headers, "build, then the header package (-H deb|rpm|tar)"),
    KERNEL_VERB("build-headers", run_headers, "the same as 'headers' (build-kernel.sh's name)"),
    {.name = "verify",
     .run = cli_kernel_verify,
     .summary = "check a built kernel's embedded config, or modules",
     .help = cli_kernel_verify_help,
     .options = cli_kernel_verify_options,
     .shortopts = "p:o:"},
};

static const char kernel_help[] =
    "usage: kata-gpu-builder kernel config  -p PROFILE [options]\n"
    "       kata-gpu-builder kernel setup   -g nvidia|intel|virgl [options]\n"
    "       kata-gpu-builder kernel build   -p PROFILE [options]\n"
    "       kata-gpu-builder kernel install -p PROFILE [--destdir D] [--prefix P] [options]\n"
    "       kata-gpu-builder kernel headers -p PROFILE [-H deb|rpm|tar] [options]\n"
    "       kata-gpu-builder kernel verify  -p PROFILE [-o CONFIG] FILE\n"
    "       kata-gpu-builder kernel verify  --modules DIR --release KVER\n\n"
    "Merges the profile's fragments (common/, then the architecture's, then the vendor's),\n"
    "then each --fragment, resolves them with the kernel's own Kconfig on top of allnoconfig in\n"
    "an out-of-tree directory, and checks every requested value in the result. A value that did\n"
    "not survive is reported with its reason (unknown symbol, unmet dependency with the values of\n"
    "its operands, select, choice, prompt, type) and makes the exit status 3, unless\n"
    "kconfig-fragments/allow.conf lists it with a reason. The .config's path goes to stdout.\n\n"
    "'build' compiles the verified config out of tree (bzImage, vmlinux, modules into a staging\n"
    "tree), reproducibly (KBUILD_BUILD_TIMESTAMP from SOURCE_DATE_EPOCH), with ccache when it is\n"
    "installed; an unchanged profile is a cache hit and make does not run. Its stage directory\n"
    "goes to stdout. 'install' lays the build out under Kata's names in\n"
    "<destdir><prefix>/share/kata-containers: vmlinuz-, vmlinux-, config-, System.map-\n"
    "<version>-<cfgver>-<vendor>-gpu and the links vmlinuz-<vendor>-gpu.container and\n"
    "vmlinux-<vendor>-gpu.container. 'headers' makes the package that out-of-tree drivers\n"
    "compile against: deb (the kernel's bindeb-pkg; default), rpm (binrpm-pkg, needs rpmbuild)\n"
    "or tar (linux-headers-<release>.tar.gz, a tree usable as /lib/modules/<release>/build);\n"
    "the package paths go to stdout, the header package first.\n\n"
    "'verify' reads the config embedded in a built vmlinux or bzImage (CONFIG_IKCONFIG) and\n"
    "checks the profile's required values in it, or checks that every module under DIR has\n"
    "the vermagic of release KVER; exit 3 lists each mismatch ('kernel verify --help').\n\n"
    "options:\n"
    "  -p, --profile NAME|FILE   the profile ('kata-gpu-builder profiles' lists them);\n"
    "                            default: virgl\n"
    "  -g, --gpu VENDOR          the vendor's default profile: nvidia, intel or virgl\n"
    "  -k, --kernel-source SRC   a kernel tree, a tarball (.tar.xz/.gz/.zst/.bz2) or its URL\n"
    "                            (http, https, file); default: the profile's, else\n"
    "                            /usr/src/linux-source-<version>.tar.xz\n"
    "  -v, --version V           6.1: Debian's linux-source-6.1; 6.1.192: that tarball from the\n"
    "                            mirror when no Debian package has it\n"
    "      --mirror TEMPLATE     URL template with ${version} and ${major} (default: kernel.org's\n"
    "                            layout; $KGB_KERNEL_MIRROR or kernel.mirror in the profile)\n"
    "      --sha256 HEX          the downloaded tarball's SHA-256 (default: kernel.sha256, else a\n"
    "                            sha256sums file beside it)\n"
    "  -a, --arch ARCH           check that the profile builds for ARCH\n"
    "      --fragment FILE       merge FILE after the profile's fragments (repeatable)\n"
    "  -o, --output FILE         also write the resolved .config to FILE\n"
    "  -f, --force               resolve (and build) again even when cached\n"
    "      --ccache-dir DIR      ccache's directory (default: $KGB_CCACHE_DIR, else ccache's)\n"
    "      --no-ccache           compile without ccache\n"
    "  -H, --headers FORMAT      deb, rpm or tar (headers)\n"
    "      --destdir D           install under D (install)\n"
    "      --prefix P            install prefix, default /usr (Kata's packages), /opt/kata\n"
    "                            for kata-deploy (install)\n"
    "      --compare DIR         (config) resolve another fragment set on the same tree (DIR's\n"
    "                            common/ and <arch>/ .conf files, as in Kata's\n"
    "                            tools/packaging/kernel/configs/fragments, tags honoured) and\n"
    "                            list each value it gets that ours does not, by its file\n"
    "      --replace             replace a kernel or .container link that kata-gpu-builder did\n"
    "                            not install (Kata's own; install refuses otherwise)\n\n"
    "examples:\n"
    "  kata-gpu-builder kernel config -p nvidia-gpu\n"
    "  kata-gpu-builder --json kernel config -p virgl --fragment extra.conf -o virgl.config\n"
    "  kata-gpu-builder kernel install -p intel-gvt-d --destdir /tmp/root\n"
    "  kata-gpu-builder kernel verify -p virgl vmlinuz-6.1.192-1-virgl-gpu\n";

const struct cli_command cli_cmd_kernel = {
    .name = "kernel",
    .summary = "guest kernel: config (verified), build, install",
    .verbs = kernel_verbs,
    .n_verbs = ELEMENTSOF(kernel_verbs),
    .flags = CLI_LOCKS_WORKDIR,
    .help = kernel_help,
};
