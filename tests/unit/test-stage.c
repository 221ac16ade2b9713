/* The stage lifecycle: a fresh stage writes under a temporary name, a commit makes it the
 * cached result under its key, an uncommitted one leaves nothing, a concurrent commit of the
 * same key is fine, --force replaces, and the sweep removes what a killed run left. No kernel,
 * no network: directories only. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "source.h"
#include "stage.h"
#include "util.h"

static char dir[] = "/tmp/kgb-test-stage-XXXXXX";
static struct kgb_ctx *ctx;

static int setup(void **state) {
  (void)state;
  if (!mkdtemp(dir) || kgb_ctx_new(&ctx) < 0)
    return -1;
  return kgb_ctx_set_string(&ctx->workdir, dir);
}

static int teardown(void **state) {
  (void)state;
  kgb_ctx_free(ctx);
  return rm_rf(dir);
}

/* entries of <workdir>/stages/<name> */
static size_t entries(const char *name) {
  char *p = kgb_strdup_printf("%s/stages/%s", dir, name);
  DIR *d = opendir(p);
  free(p);
  if (!d)
    return 0;
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir(d)))
    if (!STREQ(de->d_name, ".") && !STREQ(de->d_name, ".."))
      n++;
  closedir(d);
  return n;
}

static void write_in(const char *d, const char *name, const char *text) {
  char *p = strjoin_path(d, name);
  assert_int_equal(write_file_atomic(p, text, strlen(text), 0644), 0);
  free(p);
}

static void commit(struct kgb_stage *st, const char *manifest) {
  struct sbuf m = SBUF_INIT;
  sbuf_adds(&m, manifest);
  assert_int_equal(kgb_stage_commit(st, &m), 0);
  sbuf_release(&m);
}

static void test_open_commit_cached(void **state) {
  (void)state;
  struct kgb_stage *st = NULL;
  assert_int_equal(kgb_stage_open(ctx, "a", "key text 1", "out", &st), 0);
  assert_false(st->cached);
  char hex[65];
  assert_int_equal(kgb_sha256_hex("key text 1", 10, hex), 0);
  assert_string_equal(st->key, hex);
  assert_non_null(st->tmp);
  assert_string_equal(st->path, st->tmp);
  assert_true(strstr(st->tmp, "/stages/a/.") != NULL);
  struct stat sb;
  assert_int_equal(stat(st->tmp, &sb), 0);
  assert_int_equal(sb.st_mode & 07777, 0755);
  assert_false(is_dir(st->dir));
  write_in(st->tmp, "out", "hello\n");
  kgb_stage_set(st, "size", "%d", 6);
  kgb_stage_set(st, "name", "first");
  kgb_stage_set(st, "name", "second value");
  commit(st, "{}\n");
  assert_null(st->tmp);
  assert_string_equal(st->path, st->dir);
  assert_true(is_dir(st->dir));
  assert_int_equal(entries("a"), 1);
  char *dirpath = strdup(st->dir);
  st = kgb_stage_free(st);
  /* the committed directory survives the free */
  assert_true(is_dir(dirpath));

  assert_int_equal(kgb_stage_open(ctx, "a", "key text 1", "out", &st), 0);
  assert_true(st->cached);
  assert_null(st->tmp);
  assert_string_equal(st->path, dirpath);
  char *v = kgb_stage_get1(st, "size");
  assert_string_equal(v, "6");
  free(v);
  char **names = NULL;
  assert_int_equal(kgb_stage_get(st, "name", &names), 0);
  assert_int_equal(strv_length(names), 2);
  assert_string_equal(names[0], "first");
  assert_string_equal(names[1], "second value");
  strv_free(names);
  assert_null(kgb_stage_get1(st, "missing"));
  st = kgb_stage_free(st);
  assert_int_equal(entries("a"), 1);

  /* a required file that is missing makes the result unusable: the stage runs again */
  char *out = strjoin_path(dirpath, "out");
  unlink(out);
  free(out);
  assert_int_equal(kgb_stage_open(ctx, "a", "key text 1", "out", &st), 0);
  assert_false(st->cached);
  st = kgb_stage_free(st);
  free(dirpath);
}

static void test_uncommitted_leaves_nothing(void **state) {
  (void)state;
  struct kgb_stage *st = NULL;
  assert_int_equal(kgb_stage_open(ctx, "b", "k", NULL, &st), 0);
  write_in(st->tmp, "half", "written");
  char *tmp = strdup(st->tmp);
  st = kgb_stage_free(st);
  assert_false(is_dir(tmp));
  assert_int_equal(entries("b"), 0);
  free(tmp);

  /* kept for --keep-failed: the caller owns it now */
  assert_int_equal(kgb_stage_open(ctx, "b", "k", NULL, &st), 0);
  const char *kept = kgb_stage_keep(st);
  tmp = strdup(kept);
  st = kgb_stage_free(st);
  assert_true(is_dir(tmp));
  assert_int_equal(rm_rf(tmp), 0);
  free(tmp);
}

static void test_concurrent_commit(void **state) {
  (void)state;
  struct kgb_stage *one = NULL, *two = NULL;
  assert_int_equal(kgb_stage_open(ctx, "c", "same key", NULL, &one), 0);
  assert_int_equal(kgb_stage_open(ctx, "c", "same key", NULL, &two), 0);
  assert_false(one->cached);
  assert_false(two->cached);
  assert_string_not_equal(one->tmp, two->tmp);
  write_in(one->tmp, "who", "one");
  write_in(two->tmp, "who", "two");
  commit(one, "{\"by\": 1}\n");
  /* the second run's rename finds the first's result in place: that is success, and the
   * second's files are dropped (a result under the same key is as good) */
  commit(two, "{\"by\": 2}\n");
  assert_int_equal(entries("c"), 1);
  assert_string_equal(one->dir, two->dir);
  char *who = strjoin_path(one->dir, "who"), *text = NULL;
  assert_int_equal(read_full_file(who, &text, NULL), 0);
  assert_string_equal(text, "one");
  free(who);
  free(text);
  one = kgb_stage_free(one);
  two = kgb_stage_free(two);
}

static void test_force_replaces(void **state) {
  (void)state;
  struct kgb_stage *st = NULL;
  assert_int_equal(kgb_stage_open(ctx, "d", "k", NULL, &st), 0);
  write_in(st->tmp, "old", "x");
  commit(st, "{}\n");
  st = kgb_stage_free(st);
  ctx->force = true;
  assert_int_equal(kgb_stage_open(ctx, "d", "k", NULL, &st), 0);
  ctx->force = false;
  assert_false(st->cached);
  write_in(st->tmp, "new", "y");
  commit(st, "{}\n");
  char *old = strjoin_path(st->dir, "old"), *new = strjoin_path(st->dir, "new");
  assert_false(is_file(old));
  assert_true(is_file(new));
  free(old);
  free(new);
  st = kgb_stage_free(st);
  assert_int_equal(entries("d"), 1);
}

/* a lost append (no memory) must not commit a truncated record or manifest */
static void test_failed_append_does_not_commit(void **state) {
  (void)state;
  struct kgb_stage *st = NULL;
  assert_int_equal(kgb_stage_open(ctx, "e", "k", NULL, &st), 0);
  struct sbuf m = SBUF_INIT;
  sbuf_adds(&m, "{}");
  m.err = -ENOMEM;
  assert_int_equal(kgb_stage_commit(st, &m), -ENOMEM);
  sbuf_release(&m);
  assert_false(is_dir(st->dir));
  kgb_error_clear(ctx);
  st = kgb_stage_free(st);
  assert_int_equal(entries("e"), 0);

  assert_int_equal(kgb_stage_open(ctx, "e", "k", NULL, &st), 0);
  st->record.err = -ENOMEM;
  struct sbuf ok = SBUF_INIT;
  sbuf_adds(&ok, "{}");
  assert_int_equal(kgb_stage_commit(st, &ok), -ENOMEM);
  sbuf_release(&ok);
  kgb_error_clear(ctx);
  st = kgb_stage_free(st);
  assert_int_equal(entries("e"), 0);
}

static void test_sweep(void **state) {
  (void)state;
  struct kgb_stage *st = NULL;
  assert_int_equal(kgb_stage_open(ctx, "f", "killed", NULL, &st), 0);
  /* as a SIGKILL would leave it: the temporary directory, never freed */
  char *tmp = strdup(kgb_stage_keep(st));
  st = kgb_stage_free(st);
  assert_int_equal(kgb_stage_open(ctx, "f", "finished", NULL, &st), 0);
  commit(st, "{}\n");
  char *done = strdup(st->dir);
  st = kgb_stage_free(st);
  unsigned removed = 0;
  assert_int_equal(kgb_workdir_sweep(ctx, &removed), 0);
  assert_int_equal(removed, 1);
  assert_false(is_dir(tmp));
  assert_true(is_dir(done));
  free(tmp);
  free(done);
}

static void test_record_parse(void **state) {
  (void)state;
  char **v = NULL;
  assert_int_equal(kgb_record_get("a 1\nab 2\na  3\nb\na\n", "a", &v), 0);
  assert_int_equal(strv_length(v), 2);
  assert_string_equal(v[0], "1");
  assert_string_equal(v[1], " 3");
  strv_free(v);
  v = NULL;
  assert_int_equal(kgb_record_get("", "a", &v), 0);
  assert_null(v);
  assert_int_equal(kgb_record_get("x no-final-newline", "x", &v), 0);
  assert_string_equal(v[0], "no-final-newline");
  strv_free(v);
}

static void test_manifest_text(void **state) {
  (void)state;
  struct sbuf sb = SBUF_INIT;
  kgb_manifest_begin(&sb, "image", "abc");
  kgb_manifest_string(&sb, "rootfs", "a\"b");
  kgb_manifest_string(&sb, "uuid", NULL);
  sbuf_adds(&sb, "\n}\n");
  assert_string_equal(sbuf_str(&sb), "{\n  \"stage\": \"image\",\n  \"key\": \"abc\",\n  "
                                     "\"rootfs\": \"a\\\"b\",\n  \"uuid\": null\n}\n");
  sbuf_release(&sb);
}

static void test_planned(void **state) {
  (void)state;
  char hex[65];
  assert_int_equal(kgb_stage_key("planned", hex), 0);
  char *key = NULL;
  bool cached = true;
  assert_int_equal(kgb_stage_planned(ctx, "g", hex, &key, &cached), 0);
  assert_false(cached);
  free(key);
  struct kgb_stage *st = NULL;
  assert_int_equal(kgb_stage_open(ctx, "g", "planned", NULL, &st), 0);
  commit(st, "{}\n");
  st = kgb_stage_free(st);
  assert_int_equal(kgb_stage_planned(ctx, "g", hex, &key, &cached), 0);
  assert_true(cached);
  free(key);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_open_commit_cached),
      cmocka_unit_test(test_uncommitted_leaves_nothing),
      cmocka_unit_test(test_concurrent_commit),
      cmocka_unit_test(test_force_replaces),
      cmocka_unit_test(test_failed_append_does_not_commit),
      cmocka_unit_test(test_sweep),
      cmocka_unit_test(test_record_parse),
      cmocka_unit_test(test_manifest_text),
      cmocka_unit_test(test_planned),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
