/* The host's apt sources (one-line and deb822 files, what counts, what is skipped), the
 * entries a suite is bootstrapped from, the Release date, and a profile's settings. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apt-sources.h"
#include "fixture.h"
#include "profile.h"
#include "util.h"

static char dir[] = "/tmp/kgb-test-apt-sources.XXXXXX";

static void put(const char *rel, const char *text) { fixture_put(dir, rel, text, 0644); }

static int setup(void **state) {
  if (!mkdtemp(dir))
    return -1;
  return fixture_setup_datadir(state);
}

static int teardown(void **state) {
  rm_rf(dir);
  return fixture_teardown(state);
}

static void test_sources(void **state) {
  (void)state;
  put("apt/sources.list", "# the main archive\n"
                          "deb [arch=amd64 signed-by=/usr/share/keyrings/a.gpg] "
                          "http://mirror.example/debian/ bookworm main contrib\n"
                          "deb-src http://mirror.example/debian bookworm main\n"
                          "   \n"
                          "deb http://other.example/debian bookworm-backports main # comment\n");
  put("apt/sources.list.d/debian.sources",
      "Types: deb deb-src\n"
      "URIs: http://mirror.example/debian http://second.example/debian\n"
      "Suites: bookworm bookworm-updates\n"
      "Components: main\n"
      "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
      "\n"
      "# a disabled one\n"
      "Types: deb\n"
      "URIs: http://disabled.example/debian\n"
      "Suites: bookworm\n"
      "Enabled: no\n"
      "\n"
      "Types: deb\n"
      "URIs: http://security.example/debian-security\n"
      "Suites: bookworm-security\n"
      "Components: main\n"
      "Signed-By:\n"
      " -----BEGIN PGP PUBLIC KEY BLOCK-----\n"
      " .\n"
      " mQINBF...\n"
      " -----END PGP PUBLIC KEY BLOCK-----\n");
  put("apt/sources.list.d/google.list.disabled-by-farm", "deb http://ignored.example/ x main\n");
  put("apt/sources.list.d/src.sources",
      "Types: deb-src\nURIs: http://src.example/\nSuites: bookworm\n");
  char apt[512];
  snprintf(apt, sizeof(apt), "%s/apt", dir);
  struct kgb_apt_sources all = {0};
  kgb_error_clear(ctx);
  assert_int_equal(kgb_apt_sources_read(ctx, apt, &all), 0);
  /* sources.list: 2 deb lines; debian.sources: 2 URIs x 2 suites + security */
  assert_int_equal(all.n, 7);
  assert_string_equal(all.v[0].uri, "http://mirror.example/debian");
  assert_string_equal(all.v[0].suite, "bookworm");
  assert_string_equal(all.v[0].signed_by, "/usr/share/keyrings/a.gpg");
  assert_string_equal(all.v[0].components[1], "contrib");
  assert_int_equal(all.v[0].line, 2);
  assert_string_equal(all.v[1].suite, "bookworm-backports");
  assert_string_equal(all.v[2].uri, "http://mirror.example/debian");
  assert_string_equal(all.v[2].signed_by, "/usr/share/keyrings/debian-archive-keyring.gpg");
  assert_string_equal(all.v[3].suite, "bookworm-updates");
  assert_string_equal(all.v[4].uri, "http://second.example/debian");
  assert_string_equal(all.v[6].suite, "bookworm-security");
  assert_null(all.v[6].signed_by); /* an inline key names no file */

  struct kgb_apt_sources chosen = {0};
  assert_int_equal(kgb_apt_sources_for_suite(ctx, &all, apt, "bookworm", &chosen), 0);
  /* the suite first (one per URI), then -updates, then -security; never -backports */
  assert_int_equal(chosen.n, 5);
  assert_string_equal(chosen.v[0].suite, "bookworm");
  assert_string_equal(chosen.v[0].uri, "http://mirror.example/debian");
  assert_string_equal(chosen.v[1].suite, "bookworm");
  assert_string_equal(chosen.v[1].uri, "http://second.example/debian");
  assert_string_equal(chosen.v[2].suite, "bookworm-updates");
  assert_string_equal(chosen.v[4].suite, "bookworm-security");
  kgb_apt_sources_release(&chosen);

  kgb_error_clear(ctx);
  assert_int_equal(kgb_apt_sources_for_suite(ctx, &all, apt, "jammy", &chosen), -ENOENT);
  assert_non_null(strstr(kgb_error_detail(ctx),
                         "have no entry for suite 'jammy': add one, or set "
                         "rootfs.mirror (and rootfs.keyring) in the profile"));
  kgb_apt_sources_release(&all);

  /* no apt directory at all: nothing, and then no suite */
  assert_int_equal(kgb_apt_sources_read(ctx, "/nonexistent", &all), 0);
  assert_int_equal(all.n, 0);
}

static void test_release_date(void **state) {
  (void)state;
  char *date = NULL;
  assert_int_equal(kgb_release_date("-----BEGIN PGP SIGNED MESSAGE-----\n"
                                    "Hash: SHA512\n\n"
                                    "Origin: Debian\nLabel: Debian\nSuite: stable\n"
                                    "Date: Sat, 10 May 2025 09:46:33 UTC\r\n"
                                    "Valid-Until: Sat, 17 May 2025 09:46:33 UTC\n",
                                    &date),
                   0);
  assert_string_equal(date, "Sat, 10 May 2025 09:46:33 UTC");
  free(date);
  assert_int_equal(kgb_release_date("Origin: Ubuntu\nDate:Thu, 21 Apr 2022 17:16:08 UTC\n", &date),
                   0);
  assert_string_equal(date, "Thu, 21 Apr 2022 17:16:08 UTC");
  free(date);
  /* only the fields count, not what follows them */
  assert_int_equal(kgb_release_date("Origin: x\n\nDate: later\n", &date), -ENOENT);
  assert_int_equal(kgb_release_date("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n", &date),
                   -ENOENT);
}

static void test_settings(void **state) {
  (void)state;
  put("user.cfg",
      "@include \"virgl.cfg\"\n"
      "override = {\n"
      "  settings = { kata = { agent = { url = \"/srv/agent\"; mode = \"service\"; }; };\n"
      "               dkms = { package = \"v4l2loopback-dkms\"; jobs = 4; debug = true; }; };\n"
      "};\n");
  char p[512];
  snprintf(p, sizeof(p), "%s/user.cfg", dir);
  struct kgb_profile *prof = NULL;
  kgb_error_clear(ctx);
  if (kgb_profile_load(ctx, p, &prof) != 0)
    fail_msg("%s", kgb_error_detail(ctx));
  char **v = NULL;
  assert_int_equal(kgb_profile_settings(ctx, prof, &v), 0);
  assert_string_equal(v[0], "kata.agent.url=/srv/agent");
  assert_string_equal(v[1], "kata.agent.mode=service");
  assert_string_equal(v[2], "dkms.package=v4l2loopback-dkms");
  assert_string_equal(v[3], "dkms.jobs=4");
  assert_string_equal(v[4], "dkms.debug=true");
  assert_null(v[5]);
  strv_free(v);
  kgb_profile_free(prof);
  /* a shipped profile has none */
  assert_int_equal(kgb_profile_load(ctx, "virgl", &prof), 0);
  v = NULL;
  assert_int_equal(kgb_profile_settings(ctx, prof, &v), 0);
  assert_null(v);
  kgb_profile_free(prof);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sources),
      cmocka_unit_test(test_release_date),
      cmocka_unit_test(test_settings),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
