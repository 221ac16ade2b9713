#!/usr/bin/env bats
# The slow tier (ctest label e2e-slow, `KGB_TEST_LABEL=e2e-slow scripts/test`; not in CI,
# whose 90 minutes on a slow machine hold two cold kernel compiles and no more): intel-gvt-d
# through the whole pipeline (its own cold kernel compile: i915 turns on MMU_NOTIFIER, which
# most objects of the other profiles' trees use) and booted under TCG with i915 built in.

setup_file() {
  load ../helpers
  need_linux_source
  need_qemu
  e2e_workdir
  local t0=$SECONDS
  "$KGB" --workdir "$WORKDIR" build -p intel-gvt-d -k "$LINUX_TARBALL" \
    >"$BATS_FILE_TMPDIR/intel.dest" 2>"$BATS_FILE_TMPDIR/intel.err" ||
    { cat "$BATS_FILE_TMPDIR/intel.err" >&3; return 1; }
  echo "# build intel-gvt-d: $((SECONDS - t0)) s" >&3
}

setup() {
  load ../helpers
}

@test "build intel-gvt-d: every stage, Kata's file names, the drop-in" {
  run cat "$BATS_FILE_TMPDIR/intel.err"
  for s in config kernel rootfs image kata install; do assert_line --regexp "^$s +(ran|cached) "; done
  d=$(cat "$BATS_FILE_TMPDIR/intel.dest")
  [ -L "$d/usr/share/kata-containers/vmlinuz-intel-gpu.container" ]
  [ -f "$d/usr/share/kata-containers/vmlinuz-6.1.192-2-intel-gpu" ]
  [ -f "$d/usr/share/kata-containers/kata-containers-intel-gvt-d.img" ]
}

@test "intel-gvt-d under TCG: the image as root, i915 built in" {
  run kgb_split boot-test -p intel-gvt-d -k "$LINUX_TARBALL" --accel tcg
  cat "$BATS_TEST_TMPDIR/stderr"
  assert_success
  assert_line --regexp "^  uname +pass +6.1.192-intel-gpu$"
  assert_line --regexp '^  config +pass +4 required values in /proc/config.gz$'
  assert_line --regexp '^  rootfs +pass +ext4 on /dev/vda1 mounted read-only: '
  assert_line --regexp '^  i915 +pass +the i915 driver is built in \(no device of its own in this VM\)$'
  assert_line --regexp '^[0-9]+ passed, 0 failed, [0-9]+ skipped; boot-to-check [0-9.]+ s'
}
