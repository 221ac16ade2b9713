/* What the unit tests share (STYLE.md rule 11): the context a file's tests run with, made and
 * freed by the group setup and teardown given to cmocka_run_group_tests; files written into a
 * fixture tree; the hosts of tests/fixtures as the context's roots; the check of an error
 * detail. Include it after cmocka.h (and the headers cmocka needs before it). KGB_TEST_FIXTURES
 * is tests/fixtures (tests/CMakeLists.txt). */
#pragma once

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kgb.h"
#include "util.h"

/* The source tree: a context with it as datadir finds the shipped profiles, fragments and
 * recipes by name. */
#define FIXTURE_SRCDIR KGB_TEST_FIXTURES "/../.."

/* The context of the file's tests. */
static struct kgb_ctx *ctx _unused_;

/* Group setup: a fresh context with the defaults of kgb_ctx_new. */
static inline int fixture_setup(void **state) {
  (void)state;
  return kgb_ctx_new(&ctx);
}

/* Group setup: fixture_setup with FIXTURE_SRCDIR as datadir. */
static inline int fixture_setup_datadir(void **state) {
  int r = fixture_setup(state);
  return r < 0 ? r : kgb_ctx_set_string(&ctx->datadir, FIXTURE_SRCDIR);
}

static inline int fixture_teardown(void **state) {
  (void)state;
  ctx = kgb_ctx_free(ctx);
  return 0;
}

/* Writes text to dir/rel with mode, making the directories above it. */
static inline void fixture_put(const char *dir, const char *rel, const char *text, mode_t mode) {
  _cleanup_free_ char *path = strjoin_path(dir, rel);
  assert_non_null(path);
  _cleanup_free_ char *parent = strdup(path);
  assert_non_null(parent);
  *strrchr(parent, '/') = '\0';
  assert_int_equal(mkdir_p(parent, 0755), 0);
  assert_int_equal(write_file_atomic(path, text, strlen(text), mode), 0);
}

/* The context's roots at tests/fixtures/<name>/sys, proc and boot: that host, for the code
 * that reads host state through them (STYLE.md rule 9). */
static inline void fixture_use_host(const char *name) {
  static const char *const roots[] = {"sys", "proc", "boot"};
  char **fields[] = {&ctx->sysfs, &ctx->proc, &ctx->boot};
  for (size_t i = 0; i < ELEMENTSOF(roots); i++) {
    _cleanup_free_ char *p = kgb_strdup_printf("%s/%s/%s", KGB_TEST_FIXTURES, name, roots[i]);
    assert_non_null(p);
    assert_int_equal(kgb_ctx_set_string(fields[i], p), 0);
  }
}

/* The context's error detail is set and holds part. */
static inline void assert_detail(const char *part) {
  const char *d = kgb_error_detail(ctx);
  if (!d || !strstr(d, part))
    fail_msg("error detail '%s' lacks '%s'", d ? d : "(none)", part);
}
