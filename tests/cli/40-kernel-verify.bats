#!/usr/bin/env bats
# kernel verify on the fixtures that the test build makes (tests/fixtures/kernels/mkfixtures.py):
# ELF objects and bzImages carrying tests/fixtures/kernels/config, and module trees.

setup() {
  load ../helpers
  WORKDIR=$BATS_TEST_TMPDIR/work
  mkdir -p "$WORKDIR"
  K=${KGB_BUILDDIR:?}/tests/fixtures/kernels
  [ -f "$K/stamp" ] || fail "no kernel fixtures in $K: build the tree first"
}

@test "a vmlinux with every required value passes" {
  run kgb kernel verify -p virgl "$K/vmlinux"
  assert_success
  assert_output --partial "kernel verify: '$K/vmlinux' (ELF, config in .rodata), profile 'virgl'"
  assert_output --partial "all 4 required values present"
}

@test "bzImages in every compression pass, the payload named" {
  for kind in gzip xz zstd bzip2 lzma; do
    run kgb kernel verify -p virgl "$K/bzImage-$kind"
    assert_success
    assert_output --partial "(bzImage, $kind payload of "
  done
}

@test "a profile needing values the kernel lacks: exit 3, one line per symbol" {
  run kgb kernel verify -p intel-gvt-d "$K/bzImage-zstd"
  assert_failure 3
  assert_output --partial "$K/bzImage-zstd: CONFIG_DRM_I915 is n, but profile 'intel-gvt-d' requires y"
  assert_output --partial "$K/bzImage-zstd: CONFIG_DRM_I915_USERPTR is n (not in the kernel's config), but profile 'intel-gvt-d' requires y"
  assert_output --partial "2 of 4 required values missing from '$K/bzImage-zstd'"
  refute_output --partial "CONFIG_DRM is"
}

@test "--json: one document with the checked count and each mismatch" {
  run kgb_split --json kernel verify -p intel-gvt-d "$K/vmlinux"
  assert_failure 3
  echo "$output" | json 'j["file"], j["profile"], j["checked"]' | grep -qx "$K/vmlinux intel-gvt-d 4" ||
    fail "wrong header: $output"
  run json '[(m["symbol"], m["required"], m["actual"]) for m in j["mismatches"]]' <<<"$output"
  assert_output "[('CONFIG_DRM_I915', 'y', 'n'), ('CONFIG_DRM_I915_USERPTR', 'y', 'n')]"
  run kgb_split --json kernel verify -p virgl "$K/bzImage-xz"
  assert_success
  run json 'j["checked"], j["mismatches"], j["compression"]' <<<"$output"
  assert_output "4 [] xz"
}

@test "a user profile: 'is not set' requirements, strings and numbers" {
  cat >"$BATS_TEST_TMPDIR/strict.cfg" <<'EOF'
@include "virgl.cfg"
override = {
  kernel = { required = [ "CONFIG_DRM=y", "# CONFIG_DRM_NOUVEAU is not set",
                          "CONFIG_LOCALVERSION=\"-fixture\"", "CONFIG_NR_CPUS=0x40",
                          "# CONFIG_DRM_VIRTIO_GPU is not set", "CONFIG_VFIO=y" ]; };
};
EOF
  run kgb kernel verify -p "$BATS_TEST_TMPDIR/strict.cfg" "$K/vmlinux"
  assert_failure 3
  assert_output --partial "CONFIG_DRM_VIRTIO_GPU is y, but profile 'virgl' requires it off"
  assert_output --partial "CONFIG_VFIO is m, but profile 'virgl' requires y"
  assert_output --partial "2 of 6 required values missing"
}

@test "-o writes the embedded config exactly" {
  run kgb kernel verify -p virgl -o "$BATS_TEST_TMPDIR/out.config" "$K/bzImage-lzma"
  assert_success
  cmp "$KGB_SRCDIR/tests/fixtures/kernels/config" "$BATS_TEST_TMPDIR/out.config"
}

@test "a kernel built without IKCONFIG: a clear error" {
  for f in vmlinux-noikconfig bzImage-noikconfig; do
    run kgb kernel verify -p virgl "$K/$f"
    assert_failure 1
    assert_output "kata-gpu-builder: error: '$K/$f' has no embedded config: build it with CONFIG_IKCONFIG=y"
  done
}

@test "not a kernel at all: a clear error" {
  run kgb kernel verify -p virgl "$KGB_SRCDIR/tests/fixtures/kernels/config"
  assert_failure 1
  assert_output --partial "is not a kernel image: neither an ELF vmlinux nor an x86 bzImage"
  run kgb kernel verify -p virgl "$K/not-a-kernel.o"
  assert_failure 1
  assert_output --partial "'$K/not-a-kernel.o' is an ELF file but not a Linux kernel"
  run kgb kernel verify -p virgl "$BATS_TEST_TMPDIR/missing"
  assert_failure 1
  assert_output --partial "cannot read '$BATS_TEST_TMPDIR/missing': No such file or directory"
}

@test "a corrupt or truncated kernel: the error says what is wrong" {
  run kgb kernel verify -p virgl "$K/bzImage-corrupt"
  assert_failure 1
  assert_output --partial "its gzip payload is corrupt"
  run kgb kernel verify -p virgl "$K/bzImage-truncated"
  assert_failure 1
  assert_output --partial "outside the file's"
  run kgb kernel verify -p virgl "$K/vmlinux-corrupt"
  assert_failure 1
  assert_output --partial "its embedded config is corrupt"
}

@test "modules: every .ko, .ko.xz, .ko.zst, .ko.gz matches the release" {
  run kgb kernel verify --modules "$K/modules-ok" --release 6.1.0-fixture
  assert_success
  assert_output --partial "4 modules under '$K/modules-ok', release '6.1.0-fixture'"
  assert_output --partial "every module matches"
}

@test "modules: exit 3 listing each module with the wrong vermagic" {
  run kgb kernel verify --modules "$K/modules-mixed" --release 6.1.0-fixture
  assert_failure 3
  assert_output --partial "$K/modules-mixed/b-wrong.ko.xz: vermagic '6.1.0-other SMP preempt mod_unload' is not for release '6.1.0-fixture'"
  assert_output --partial "$K/modules-mixed/c-none.ko.zst: no vermagic in its .modinfo section"
  assert_output --partial "$K/modules-mixed/d-longer.ko: vermagic '6.1.0-fixture-rc1 SMP' is not for release '6.1.0-fixture'"
  assert_output --partial "$K/modules-mixed/e-corrupt.ko.xz: its xz data is corrupt"
  assert_output --partial "$K/modules-mixed/f-text.ko: not an ELF object"
  assert_output --partial "5 of 6 modules do not match release '6.1.0-fixture'"
  refute_output --partial "a-good.ko"
  run kgb_split --json kernel verify --modules "$K/modules-mixed" --release 6.1.0-fixture
  assert_failure 3
  run json 'j["checked"], [m["module"] for m in j["mismatches"]]' <<<"$output"
  assert_output "6 ['b-wrong.ko.xz', 'c-none.ko.zst', 'd-longer.ko', 'e-corrupt.ko.xz', 'f-text.ko']"
}

@test "modules: a directory without modules is an error, not a pass" {
  run kgb kernel verify --modules "$K/modules-empty" --release 6.1.0-fixture
  assert_failure 1
  assert_output --partial "no module (.ko, .ko.gz, .ko.xz, .ko.zst) under '$K/modules-empty'"
}

@test "usage: what is missing is said, exit 2" {
  run kgb kernel verify "$K/vmlinux"
  assert_failure 2
  assert_output --partial "-p PROFILE is required"
  run kgb kernel verify -p virgl
  assert_failure 2
  assert_output --partial "which kernel?"
  run kgb kernel verify --modules "$K/modules-ok"
  assert_failure 2
  assert_output --partial "--modules needs --release KVER"
  run kgb kernel verify --release 6.1 -p virgl "$K/vmlinux"
  assert_failure 2
  run kgb kernel verify -p virgl --modles x "$K/vmlinux"
  assert_failure 2
  assert_output --partial "did you mean '--modules'?"
}

@test "help: kernel verify --help and the kernel verb list" {
  run kgb kernel verify --help
  assert_success
  assert_output --partial "usage: kata-gpu-builder kernel verify -p PROFILE [-o CONFIG] FILE"
  run kgb kernel --help
  assert_success
  assert_output --partial "verify"
}

@test "a FIFO or /dev/zero as the kernel: refused at once, the file named" {
  mkfifo "$BATS_TEST_TMPDIR/vmlinux"
  run timeout 10 "$KGB" --workdir "$WORKDIR" kernel verify -p virgl "$BATS_TEST_TMPDIR/vmlinux"
  assert_failure 1
  assert_output --partial "cannot read '$BATS_TEST_TMPDIR/vmlinux': it is a FIFO, not a regular file"
  run timeout 10 "$KGB" --workdir "$WORKDIR" kernel verify -p virgl /dev/zero
  assert_failure 1
  assert_output --partial "cannot read '/dev/zero': it is a character device, not a regular file"
}
