#!/usr/bin/env bats
# kernel verify on a real kernel: skipped unless KGB_TEST_VMLINUX and/or KGB_TEST_BZIMAGE name
# a virgl-profile kernel built with CONFIG_IKCONFIG=y (and KGB_TEST_MODULES plus
# KGB_TEST_RELEASE a modules tree for it). scripts/extract-ikconfig from KGB_TEST_LINUX_SRC,
# when set, gives the reference text.

setup() {
  load ../helpers
  WORKDIR=$BATS_TEST_TMPDIR/work
  mkdir -p "$WORKDIR"
}

kernels() {
  for f in ${KGB_TEST_VMLINUX:-} ${KGB_TEST_BZIMAGE:-}; do echo "$f"; done
}

need_kernel() {
  [ -n "${KGB_TEST_VMLINUX:-}${KGB_TEST_BZIMAGE:-}" ] ||
    skip "set KGB_TEST_VMLINUX and/or KGB_TEST_BZIMAGE to a built virgl kernel"
}

@test "real kernel: the virgl profile's required values are all present" {
  need_kernel
  for f in $(kernels); do
    run kgb kernel verify -p virgl "$f"
    assert_success
    assert_output --partial "required values present"
  done
}

@test "real kernel: a profile that needs DRM_I915 gets exit 3 naming it" {
  need_kernel
  for f in $(kernels); do
    run kgb kernel verify -p intel-gvt-d "$f"
    assert_failure 3
    assert_output --partial "$f: CONFIG_DRM_I915 is n"
  done
}

@test "real kernel: vmlinux and bzImage embed the same config, as extract-ikconfig reads it" {
  need_kernel
  local n=0
  for f in $(kernels); do
    n=$((n + 1))
    kgb -q kernel verify -p virgl -o "$BATS_TEST_TMPDIR/config.$n" "$f"
    grep -q '^CONFIG_IKCONFIG=y' "$BATS_TEST_TMPDIR/config.$n"
    if [ -n "${KGB_TEST_LINUX_SRC:-}" ]; then
      "$KGB_TEST_LINUX_SRC/scripts/extract-ikconfig" "$f" >"$BATS_TEST_TMPDIR/ref.$n"
      cmp "$BATS_TEST_TMPDIR/ref.$n" "$BATS_TEST_TMPDIR/config.$n"
    fi
  done
  [ "$n" -lt 2 ] || cmp "$BATS_TEST_TMPDIR/config.1" "$BATS_TEST_TMPDIR/config.2"
}

@test "real modules: every module matches the kernel's release" {
  [ -n "${KGB_TEST_MODULES:-}" ] && [ -n "${KGB_TEST_RELEASE:-}" ] ||
    skip "set KGB_TEST_MODULES and KGB_TEST_RELEASE to a modules tree and its release"
  run kgb kernel verify --modules "$KGB_TEST_MODULES" --release "$KGB_TEST_RELEASE"
  assert_success
  run kgb kernel verify --modules "$KGB_TEST_MODULES" --release "$KGB_TEST_RELEASE-not"
  assert_failure 3
}
