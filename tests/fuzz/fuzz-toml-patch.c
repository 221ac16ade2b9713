/* libFuzzer target: the TOML editor on arbitrary documents, driven by the edit plans that
 * kata-config makes (every shipped profile for Kata 1.x, 2.x and 3.x on the fixture hosts),
 * turned into edits exactly as kgb_kata_patch_file does. An edit that succeeds must give a
 * document that parses, holds every value set and none of the keys switched off, and that the
 * same plan leaves alone; one that fails must produce nothing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kata-config.h"
#include "profile.h"
#include "toml.h"

#define MAX_PLANS 64

static struct kgb_kata_plan *kata_plans[MAX_PLANS]; /* own the strings of the sets */
static struct kgb_toml_set *plans[MAX_PLANS];
static size_t plan_sizes[MAX_PLANS], n_plans;

static void add_plan(struct kgb_ctx *ctx, const char *profile, const char *version,
                     const char *host) {
  struct kgb_profile *p = NULL;
  struct kgb_kata_plan *plan = NULL;
  char sysfs[4096];
  snprintf(sysfs, sizeof(sysfs), "%s/%s/sys", KGB_TEST_FIXTURES, host);
  kgb_ctx_set_string(&ctx->sysfs, sysfs);
  struct kgb_kata_opts opts = {
      .kata_version = version, .base = "none", .experimental_virgl = strcmp(profile, "virgl") == 0};
  if (n_plans == MAX_PLANS || kgb_profile_load(ctx, profile, &p) < 0 ||
      kgb_kata_plan(ctx, p, &opts, &plan) < 0) {
    fprintf(stderr, "fuzz-toml-patch: no plan for %s %s on %s: %s\n", profile, version, host,
            ctx->error ? ctx->error : "");
    abort(); /* a fuzzer without its plans would test nothing */
  }
  /* as kgb_kata_patch_file does */
  struct kgb_toml_set *sets = calloc(plan->n_settings + 1, sizeof(*sets));
  if (!sets)
    abort();
  for (size_t i = 0; i < plan->n_settings; i++) {
    const struct kgb_kata_setting *s = &plan->settings[i];
    sets[i] = (struct kgb_toml_set){
        .table = s->table, .key = s->key, .value = s->clear ? NULL : s->value, .why = s->why};
  }
  kata_plans[n_plans] = plan;
  plans[n_plans] = sets;
  plan_sizes[n_plans++] = plan->n_settings;
  kgb_profile_free(p);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  static const char *const profiles[][2] = {
      {"nvidia-gpu", "host-nvidia-dc"},
      {"nvidia-vgpu", "host-nvidia-sriov"},
      {"nvidia-vgpu-mig", "host-nvidia-dc"},
      {"intel-gvt-d", "host-intel-gvt"},
      {"intel-gvt-g", "host-intel-gvt"},
      {"virgl", "host-geforce"},
      {KGB_TEST_FIXTURES "/kata/nvidia-initrd.cfg", "host-nvidia-dc"}};
  static const char *const versions[] = {"1.x", "2.x", "3.x"};
  struct kgb_ctx *ctx = NULL;
  if (kgb_ctx_new(&ctx) < 0 || kgb_ctx_set_string(&ctx->datadir, KGB_TEST_SRCDIR) < 0)
    abort();
  for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++)
    for (size_t v = 0; v < sizeof(versions) / sizeof(versions[0]); v++)
      add_plan(ctx, profiles[i][0], versions[v], profiles[i][1]);
  kgb_ctx_free(ctx);
  return 0;
}

static void check_applied(struct kgb_ctx *ctx, const struct kgb_toml_patch *p,
                          const struct kgb_toml_set *sets, size_t n) {
  struct kgb_toml_doc *d = NULL;
  if (kgb_toml_parse(ctx, "fuzz.toml", p->text, p->len, &d) < 0)
    abort();
  for (size_t i = 0; i < n; i++) {
    const struct kgb_toml_entry *e = kgb_toml_find(d, sets[i].table, sets[i].key);
    if (!sets[i].value) {
      if (e)
        abort();
      continue;
    }
    char *canon = NULL;
    if (!e || kgb_toml_canonical(ctx, sets[i].value, &canon) < 0 || strcmp(canon, e->value) != 0)
      abort();
    free(canon);
  }
  kgb_toml_doc_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  size_t k = data[0] % n_plans;
  const struct kgb_toml_set *sets = plans[k];
  size_t n = plan_sizes[k];
  const char *text = (const char *)data + 1;
  size_t len = size - 1;
  struct kgb_ctx ctx = {0};

  struct kgb_toml_patch once = {0};
  if (kgb_toml_patch(&ctx, "fuzz.toml", text, len, sets, n, &once) < 0) {
    if (once.text || once.diff || !ctx.error)
      abort();
    free(ctx.error);
    return 0;
  }
  if (!once.text || !once.diff || (once.changes == 0) != (once.diff[0] == '\0'))
    abort();
  if (once.changes == 0 && (once.len != len || memcmp(once.text, text, len) != 0))
    abort();
  check_applied(&ctx, &once, sets, n);

  struct kgb_toml_patch twice = {0};
  if (kgb_toml_patch(&ctx, "fuzz.toml", once.text, once.len, sets, n, &twice) < 0)
    abort();
  if (twice.changes != 0 || twice.len != once.len || memcmp(twice.text, once.text, once.len) != 0)
    abort();
  kgb_toml_patch_release(&twice);
  kgb_toml_patch_release(&once);
  free(ctx.error);
  return 0;
}
