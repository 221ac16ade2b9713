/* The context's error detail (kgb.h): the first, deepest detail wins over a later kgb_error,
 * a caller adds context in front of it, and a cleared detail can be recorded anew. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#include "kgb.h"

static void test_first_detail_wins(void **state) {
  (void)state;
  _cleanup_(kgb_ctx_freep) struct kgb_ctx *ctx = NULL;
  assert_int_equal(kgb_ctx_new(&ctx), 0);
  assert_null(kgb_error_detail(ctx));
  assert_int_equal(kgb_error(ctx, -EINVAL, "a.conf:%d: bad value", 3), -EINVAL);
  assert_int_equal(kgb_error(ctx, -EINVAL, "cannot load the profile"), -EINVAL);
  assert_string_equal(kgb_error_detail(ctx), "a.conf:3: bad value");
  kgb_error_clear(ctx);
  assert_null(kgb_error_detail(ctx));
  assert_int_equal(kgb_error(ctx, -ENOENT, "mkfs.erofs is not installed"), -ENOENT);
  assert_string_equal(kgb_error_detail(ctx), "mkfs.erofs is not installed");
}

static void test_prefix(void **state) {
  (void)state;
  _cleanup_(kgb_ctx_freep) struct kgb_ctx *ctx = NULL;
  assert_int_equal(kgb_ctx_new(&ctx), 0);
  /* without a deeper detail, the errno's text stands for it */
  assert_int_equal(kgb_error_prefix(ctx, -ENOENT, "recipe '%s'", "x"), -ENOENT);
  assert_string_equal(kgb_error_detail(ctx), "recipe 'x': No such file or directory");
  kgb_error_clear(ctx);
  kgb_error(ctx, -EIO, "'%s': HTTP 404", "https://example.org/a");
  assert_int_equal(kgb_error_prefix(ctx, -EIO, "input '%s'", "drv"), -EIO);
  assert_int_equal(kgb_error_prefix(ctx, -EIO, "recipe '%s' (%s:%u)", "x", "x.recipe", 6), -EIO);
  assert_string_equal(kgb_error_detail(ctx),
                      "recipe 'x' (x.recipe:6): input 'drv': 'https://example.org/a': HTTP 404");
  /* still the first detail for kgb_error */
  kgb_error(ctx, -EIO, "building the root file system");
  assert_string_equal(kgb_error_detail(ctx),
                      "recipe 'x' (x.recipe:6): input 'drv': 'https://example.org/a': HTTP 404");
  /* no context: nothing to record, err returned */
  assert_int_equal(kgb_error_prefix(NULL, -EIO, "x"), -EIO);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_first_detail_wins),
      cmocka_unit_test(test_prefix),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
