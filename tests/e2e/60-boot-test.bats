#!/usr/bin/env bats
# boot-test for real: the virgl kernel built from linux-source-6.1 booted in QEMU under TCG,
# checked from inside by kgb-guest-check (release, /proc/config.gz, virtio_gpu and its DRM
# nodes, an out-of-tree module loaded); a kernel that lacks the profile's values fails with
# exit 3; a guest that never powers off is killed after the timeout with the log's tail shown.

setup_file() {
  load ../helpers
  need_linux_source
  need_qemu
  e2e_workdir
  "$KGB" --workdir "$WORKDIR" kernel build -p virgl -k "$LINUX_TARBALL" >"$BATS_FILE_TMPDIR/stage" \
    2>"$BATS_FILE_TMPDIR/build.err" || { cat "$BATS_FILE_TMPDIR/build.err" >&3; return 1; }
}

setup() {
  load ../helpers
  need_linux_source
  need_qemu
  stage=$(cat "$BATS_FILE_TMPDIR/stage")
  release=6.1.192-virgl-gpu
}

@test "virgl under TCG: every check passes, in a few seconds" {
  # the kernel and the checks' initrd only: the shared work directory may hold a build's image,
  # which 15-pipeline boots
  run kgb_split boot-test -p virgl -k "$LINUX_TARBALL" --accel tcg --no-image
  cat "$BATS_TEST_TMPDIR/stderr"
  assert_success
  assert_line --regexp "^  boot +pass +userspace after [0-9.]+ s under TCG"
  assert_line --regexp "^  uname +pass +$release$"
  assert_line --regexp '^  config +pass +4 required values in /proc/config.gz$'
  assert_line --regexp '^  virtio-gpu +pass +virtio_gpu drives virtio[0-9]+ \(PCI 0000:00:[0-9a-f.]+\)$'
  assert_line --regexp '^  dri-nodes +pass +/dev/dri/card0 226:0, /dev/dri/renderD128 226:128$'
  assert_line --regexp '^  modules +skipped +the build has no loadable modules'
  assert_line --regexp '^  virgl-gl +skipped '
  assert_line --regexp '^5 passed, 0 failed, 2 skipped; boot-to-check [0-9.]+ s'
  # the kernel was the cached build, not a new one
  run cat "$BATS_TEST_TMPDIR/stderr"
  assert_output --partial "kernel build: 'virgl' is up to date ($release)"
}

@test "virgl --json: the boot-to-check time, under 10 s with TCG" {
  run kgb_split --json boot-test -p virgl -k "$LINUX_TARBALL" --accel tcg
  assert_success
  [ "$(json 'j["accel"], j["release"], j["failed"], j["timed_out"]' <<<"$output")" = "tcg $release 0 False" ]
  t=$(json 'j["seconds"]["boot_to_check"]' <<<"$output")
  echo "# boot-to-check under TCG: $t s (userspace after $(json 'j["seconds"]["boot"]' <<<"$output") s)" >&3
  json 'j["seconds"]["boot_to_check"] < 10 or sys.exit(1)' <<<"$output"
  log=$(json 'j["log"]' <<<"$output")
  grep -q "Linux version $release" "$log"
  grep -q "KGB-CHECK end" "$log"
}

@test "--accel auto: KVM or TCG, whichever works here, and why" {
  run kgb_split boot-test -p virgl -k "$LINUX_TARBALL"
  assert_success
  assert_line --regexp '^  accelerator: (KVM reached the guest.s userspace in|KVM was tried first and given up after|/dev/kvm: ).*'
  echo "# $(grep '^  accelerator:' <<<"$output")" >&3
}

@test "--kernel: the built bzImage alone, its release read from its header" {
  run kgb_split boot-test -p virgl --kernel "$stage/vmlinuz" --accel tcg
  assert_success
  assert_line --regexp "^  uname +pass +$release$"
  assert_line --regexp '^  modules +skipped +no module tree with this kernel'
}

@test "--modules: a module built against the header package loads in the guest, a broken one not" {
  run kgb kernel headers -p virgl -k "$LINUX_TARBALL" -H tar
  assert_success
  tar -C "$BATS_TEST_TMPDIR" -xzf "${lines[-1]}"
  cp -r "$FIXTURES/hello-module" "$BATS_TEST_TMPDIR/hello"
  make -C "$BATS_TEST_TMPDIR/linux-headers-$release" M="$BATS_TEST_TMPDIR/hello" modules \
    >"$BATS_TEST_TMPDIR/make.log" 2>&1 || { cat "$BATS_TEST_TMPDIR/make.log"; return 1; }
  mods=$BATS_TEST_TMPDIR/root/lib/modules/$release
  mkdir -p "$mods/extra"
  cp "$BATS_TEST_TMPDIR/hello/hello.ko" "$mods/extra/"
  printf 'extra/hello.ko:\n' >"$mods/modules.dep"
  run kgb_split boot-test -p virgl -k "$LINUX_TARBALL" --modules "$mods" --accel tcg
  assert_success
  assert_line --regexp '^  modules +pass +1 module loaded with finit_module: hello$'
  # a file that is no module: the guest kernel refuses it, and the table says so
  printf 'not an ELF file\n' >"$mods/extra/broken.ko"
  printf 'extra/hello.ko:\nextra/broken.ko:\n' >"$mods/modules.dep"
  run kgb_split boot-test -p virgl -k "$LINUX_TARBALL" --modules "$mods" --accel tcg
  assert_failure 3
  assert_line --regexp '^  modules +fail +1 of 2 modules did not load: broken.ko: Exec format error$'
}

@test "a kernel without the profile's values fails its checks with exit 3" {
  # the virgl kernel booted as intel-gvt-d: no i915, no CONFIG_DRM_I915
  run kgb_split boot-test -p intel-gvt-d --kernel "$stage/vmlinuz" --accel tcg
  assert_failure 3
  assert_line --regexp '^  config +fail +2 of 4 required values differ in /proc/config.gz: CONFIG_DRM_I915=n \(wanted y\), CONFIG_DRM_I915_USERPTR=n \(wanted y\)$'
  assert_line --regexp '^  i915 +fail +no PCI driver i915 in the kernel'
}

@test "a guest that never powers off is killed after the timeout, with the log's tail" {
  # an image whose /init sleeps forever, booted instead of the checks (a later rdinit wins)
  printf '#include <unistd.h>\nint main(void) { for (;;) pause(); }\n' >"$BATS_TEST_TMPDIR/sleep.c"
  mkdir -p "$BATS_TEST_TMPDIR/root"
  cc -static -O2 -o "$BATS_TEST_TMPDIR/root/init" "$BATS_TEST_TMPDIR/sleep.c"
  (cd "$BATS_TEST_TMPDIR/root" && echo init | cpio -o -H newc 2>/dev/null) >"$BATS_TEST_TMPDIR/sleep.cpio"
  t0=$(date +%s)
  run kgb_split boot-test -p virgl -k "$LINUX_TARBALL" --accel tcg --timeout 8 \
    --initrd "$BATS_TEST_TMPDIR/sleep.cpio" --append rdinit=/init
  t1=$(date +%s)
  assert_failure 3
  assert_line --regexp '^  boot +fail +no sign of the checks within 8 s under TCG .*: killed$'
  [ $((t1 - t0)) -ge 8 ] && [ $((t1 - t0)) -lt 20 ]
  run cat "$BATS_TEST_TMPDIR/stderr"
  assert_output --partial "the guest did not finish its checks; the serial log ends with:"
  assert_output --partial "  | Run /init as init process"
  assert_output --partial "terminating on signal 15"
}
