/* The CLI's JSON writer: the two layouts byte for byte (the documents users and scripts read
 * keep their shape), escaping, null for a missing string, and the sticky error of a misuse. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static void expect(struct json *j, const char *want) {
  char *got = json_steal(j);
  assert_non_null(got);
  assert_string_equal(got, want);
  free(got);
}

static void test_block_and_inline(void **state) {
  (void)state;
  struct json j = JSON_INIT;
  char *strv[] = {"a", "b", NULL};
  json_object_begin(&j, NULL, JSON_BLOCK);
  json_string(&j, "profile", "virgl");
  json_strv(&j, "qemu", strv);
  json_strv(&j, "none", NULL);
  json_array_begin(&j, "checks", JSON_BLOCK);
  for (int i = 0; i < 2; i++) {
    json_object_begin(&j, NULL, JSON_INLINE);
    json_int(&j, "n", i - 1);
    json_bool(&j, "ok", i);
    json_object_end(&j);
  }
  json_array_end(&j);
  json_array_begin(&j, "empty", JSON_BLOCK);
  json_array_end(&j);
  json_object_begin(&j, "seconds", JSON_INLINE);
  json_double(&j, "boot", 1.23456);
  json_null(&j, "total");
  json_double(&j, "nan", NAN);
  json_object_end(&j);
  json_uint(&j, "size", 34359738368ULL);
  json_object_end(&j);
  expect(&j, "{\n"
             "  \"profile\": \"virgl\",\n"
             "  \"qemu\": [\"a\", \"b\"],\n"
             "  \"none\": [],\n"
             "  \"checks\": [\n"
             "    {\"n\": -1, \"ok\": false},\n"
             "    {\"n\": 0, \"ok\": true}\n"
             "  ],\n"
             "  \"empty\": [],\n"
             "  \"seconds\": {\"boot\": 1.235, \"total\": null, \"nan\": null},\n"
             "  \"size\": 34359738368\n"
             "}\n");

  json_array_begin(&j, NULL, JSON_BLOCK_OPEN);
  json_array_end(&j);
  expect(&j, "[\n]\n");
  json_array_begin(&j, NULL, JSON_BLOCK_OPEN);
  json_object_begin(&j, NULL, JSON_INLINE);
  json_object_end(&j);
  json_array_end(&j);
  expect(&j, "[\n  {}\n]\n");
  json_object_begin(&j, NULL, JSON_INLINE);
  json_string(&j, "error", "x");
  json_object_end(&j);
  expect(&j, "{\"error\": \"x\"}\n");
}

static void test_strings(void **state) {
  (void)state;
  struct json j = JSON_INIT;
  json_object_begin(&j, NULL, JSON_INLINE);
  /* quotes, backslash, the control characters, DEL and UTF-8 as they are */
  json_string(&j, "s", "q\"b\\n\nt\tr\r\b\f\x01\x1f\x7f é ✓");
  json_string_or_null(&j, "missing", NULL);
  json_string_or_null(&j, "k\"ey", "v");
  json_stringf(&j, "vendor", "%04x", 0x10de);
  json_object_end(&j);
  expect(&j, "{\"s\": \"q\\\"b\\\\n\\nt\\tr\\r\\u0008\\u000c\\u0001\\u001f\x7f é ✓\", "
             "\"missing\": null, \"k\\\"ey\": \"v\", \"vendor\": \"10de\"}\n");
}

static void test_misuse(void **state) {
  (void)state;
  struct json j = JSON_INIT;
  /* a member without a key, an array element with one */
  json_object_begin(&j, NULL, JSON_BLOCK);
  json_string(&j, NULL, "x");
  assert_int_equal(j.err, -EINVAL);
  json_object_end(&j);
  assert_null(json_steal(&j));
  json_array_begin(&j, NULL, JSON_INLINE);
  json_bool(&j, "k", true);
  json_array_end(&j);
  assert_null(json_steal(&j));
  /* ends that do not match, a document not finished, a second top-level value */
  json_array_begin(&j, NULL, JSON_INLINE);
  json_object_end(&j);
  assert_null(json_steal(&j));
  json_object_begin(&j, NULL, JSON_INLINE);
  assert_null(json_steal(&j));
  assert_null(json_steal(&j)); /* nothing written at all */
  json_null(&j, NULL);
  json_null(&j, NULL);
  assert_null(json_steal(&j));
  /* a NULL string where one is required */
  json_string(&j, NULL, NULL);
  assert_null(json_steal(&j));
  /* too deep: refused, and nothing after it is written */
  for (int i = 0; i <= JSON_MAX_DEPTH; i++)
    json_array_begin(&j, NULL, JSON_INLINE);
  assert_int_equal(j.err, -E2BIG);
  assert_null(json_steal(&j));
  /* a reset writer is usable again */
  json_bool(&j, NULL, false);
  expect(&j, "false\n");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_block_and_inline),
      cmocka_unit_test(test_strings),
      cmocka_unit_test(test_misuse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
