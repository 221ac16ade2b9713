#!/usr/bin/env bats
# boot-test without a VM: tests/fixtures/fake-qemu.py stands in for QEMU (it reads the plan
# from the initrd it is given, prints what kgb-guest-check would, serves QMP, and can fail or
# hang), so the table, the JSON, the exit status, the timeout and the overlay initrd are
# checked here in seconds; tests/e2e/60-boot-test.bats boots the real kernel.

setup() {
  load ../helpers
  WORKDIR=$BATS_TEST_TMPDIR/work
  FAKE_QEMU=$FIXTURES/fake-qemu.py
  KERNEL=$BATS_TEST_TMPDIR/vmlinuz
  # the parts of an x86 setup header that carry the release string
  python3 - "$KERNEL" <<'PY'
import struct, sys
b = bytearray(0x600)
b[0x202:0x206] = b"HdrS"
struct.pack_into("<HxxxxxxH", b, 0x206, 0x020f, 0x300)
s = b"6.1.0-fake-gpu (kgb@tests) #1 SMP"
b[0x500:0x500 + len(s)] = s
open(sys.argv[1], "wb").write(b)
PY
  export FAKE_QEMU_PLAN=$BATS_TEST_TMPDIR/plan FAKE_QEMU_ARGS=$BATS_TEST_TMPDIR/args
}

boot() { kgb_split boot-test --kernel "$KERNEL" --qemu "$FAKE_QEMU" "$@"; }

@test "boot-test --help: usage, the checks, an example" {
  run kgb boot-test --help
  assert_success
  assert_output --partial "usage: kata-gpu-builder boot-test [-p PROFILE] [--accel auto|kvm|tcg]"
  assert_output --partial "example"
  assert_output --partial "kata-gpu-builder boot-test -p virgl"
  run kgb help
  assert_output --partial "boot-test"
}

@test "boot-test: usage errors exit 2 and say what is wrong" {
  run kgb boot-test --accel hvf
  assert_failure 2
  assert_output --partial "--accel takes auto, kvm or tcg, not 'hvf'"
  run kgb boot-test --timeout 0
  assert_failure 2
  assert_output --partial "--timeout takes a number from 1 to 86400, not '0'"
  run kgb boot-test --kernel "$KERNEL" -k /usr/src/linux.tar.xz
  assert_failure 2
  run kgb boot-test --acel tcg
  assert_failure 2
  assert_output --partial "did you mean '--accel'?"
  run kgb boot-test --image a.img --initrd b.cpio
  assert_failure 2
  assert_output --partial "--image is the root disk; it goes with neither --initrd nor --no-image"
}

@test "boot-test --image: the root disk on virtio-blk, root= as Kata gives it; not an initrd" {
  # Kata's layout: an msdos label, partition 1 (type 0x83) from 1 MiB, ext4's magic in it
  python3 - "$BATS_TEST_TMPDIR/root.img" <<'PY'
import struct, sys
img = bytearray((1 << 20) + 4096)
img[446 + 4] = 0x83
struct.pack_into("<II", img, 446 + 8, 2048, 8)
img[510:512] = b"\x55\xaa"
struct.pack_into("<H", img, (1 << 20) + 1024 + 56, 0xef53)
open(sys.argv[1], "wb").write(img)
PY
  run boot -p virgl --accel tcg --image "$BATS_TEST_TMPDIR/root.img"
  assert_success
  assert_line "  root: ext4 image $BATS_TEST_TMPDIR/root.img as /dev/vda1, read-only"
  assert_line --regexp '^  rootfs +pass +ext4 on /dev/vda1 mounted read-only$'
  grep -qx "root /dev/vda1 ext4" "$FAKE_QEMU_PLAN"
  grep -qx "console=ttyS0 rdinit=/kgb/check panic=-1 root=/dev/vda1 rootfstype=ext4 ro" "$FAKE_QEMU_ARGS"
  grep -qx "virtio-blk-pci,drive=kgb-root" "$FAKE_QEMU_ARGS"
  # an initrd given as the image: exit 1, and where it goes instead
  printf '\x28\xb5\x2f\xfd' >"$BATS_TEST_TMPDIR/initrd.img"
  run boot -p virgl --accel tcg --image "$BATS_TEST_TMPDIR/initrd.img"
  assert_failure 1
  run cat "$BATS_TEST_TMPDIR/stderr"
  assert_output --partial "holds no ext4 or erofs file system"
  assert_output --partial "an initrd image goes to --initrd"
}

@test "boot-test: a passing guest gives the table, the log and the boot-to-check time" {
  run boot -p virgl --accel tcg
  assert_success
  assert_line --partial "boot-test: profile 'virgl', kernel 6.1.0-fake-gpu, TCG, 2048 MiB"
  assert_line --regexp '^  boot +pass +userspace after [0-9.]+ s under TCG'
  assert_line --regexp '^  uname +pass +6\.1\.0-fake-gpu$'
  assert_line --regexp '^  virtio-gpu +pass '
  assert_line --regexp '^  dri-nodes +pass '
  assert_line --regexp '^  virgl-gl +skipped +.*render node'
  assert_line --regexp '^  modules +skipped +no module tree with this kernel'
  assert_line --regexp '^5 passed, 0 failed, 2 skipped; boot-to-check [0-9.]+ s'
  log=$(sed -n 's/^serial log: //p' <<<"$output")
  [ -f "$log" ]
  grep -q "KGB-CHECK end" "$log"
  # the QEMU command line heads the log, to run it again by hand
  head -1 "$log" | grep -q "^\$ $FAKE_QEMU -name kgb-boot-test-virgl -machine q35 -accel tcg"
  grep -qx "virtio-gpu" "$FAKE_QEMU_PLAN"
  grep -qx "require CONFIG_DRM_VIRTIO_GPU=y" "$FAKE_QEMU_PLAN"
}

@test "boot-test --json: one document with the checks and the times" {
  run kgb_split --json boot-test --kernel "$KERNEL" --qemu "$FAKE_QEMU" -p nvidia-gpu --accel tcg --memory 1024
  assert_success
  [ "$(json 'j["profile"], j["release"], j["accel"], j["memory_mib"], j["failed"]' <<<"$output")" = \
    "nvidia-gpu 6.1.0-fake-gpu tcg 1024 0" ]
  [ "$(json '[c["name"] for c in j["checks"]]' <<<"$output")" = \
    "['boot', 'uname', 'config', 'pciehp', 'hotplug', 'nouveau', 'modules', 'nvidia-driver']" ]
  [ "$(json '[c["detail"] for c in j["checks"] if c["name"] == "hotplug"][0]' <<<"$output")" = \
    "virtio-net-pci into rp0 appeared" ]
  json 'j["seconds"]["boot_to_check"] >= j["seconds"]["boot"] >= 0 or sys.exit(1)' <<<"$output"
  [ "$(json 'j["initrd"], j["log_tail"], j["timed_out"]' <<<"$output")" = "None [] False" ]
  json '"-qmp" in j["qemu"] or sys.exit(1)' <<<"$output"
}

@test "boot-test: a failed check exits 3 and keeps the initrd" {
  FAKE_QEMU_MODE=fail run boot -p intel-gvt-d --accel tcg
  assert_failure 3
  assert_line --regexp '^  config +fail +1 of 4 required values differ'
  assert_line --regexp '^  i915 +pass '
  initrd=$(sed -n 's/^initrd (kept for a boot by hand): //p' <<<"$output")
  [ -s "$initrd" ]
}

@test "boot-test: a hung guest is killed after the timeout, with the log's tail" {
  t0=$(date +%s)
  # 4 s: the fake QEMU must print its first lines before the timeout on a loaded machine
  FAKE_QEMU_MODE=hang run boot -p virgl --accel tcg --timeout 4
  t1=$(date +%s)
  assert_failure 3
  assert_line --regexp '^  boot +fail +no sign of the checks within 4 s under TCG .*: killed$'
  run cat "$BATS_TEST_TMPDIR/stderr"
  assert_output --partial "the guest did not finish its checks; the serial log ends with:"
  assert_output --partial "  | Run /kgb/check as init process"
  [ $((t1 - t0)) -lt 15 ]
}

@test "boot-test --accel auto: KVM that fails is given up for TCG, and it says so" {
  if ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
    run boot -p virgl
    assert_success
    assert_line --regexp '^  accelerator: /dev/kvm: .*: TCG$'
    return
  fi
  FAKE_QEMU_MODE=kvm-fails run boot -p virgl
  assert_success
  assert_line --partial "kernel 6.1.0-fake-gpu, TCG"
  assert_line --regexp "^  accelerator: KVM was tried first and given up after [0-9.]+ s \(QEMU failed \(exit status 1\): qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\): TCG$"
  FAKE_QEMU_MODE=kvm-fails run boot -p virgl --accel kvm
  assert_failure 3
  assert_line --regexp '^  boot +fail +QEMU failed \(exit status 1\)'
}

@test "boot-test --initrd: the checks go in a second archive after the image's" {
  mkdir -p "$BATS_TEST_TMPDIR/root"
  printf 'image init\n' >"$BATS_TEST_TMPDIR/root/init"
  (cd "$BATS_TEST_TMPDIR/root" && echo init | cpio -o -H newc 2>/dev/null) >"$BATS_TEST_TMPDIR/base.cpio"
  FAKE_QEMU_MODE=fail run boot -p virgl --accel tcg --initrd "$BATS_TEST_TMPDIR/base.cpio" --append "quiet"
  assert_failure 3
  initrd=$(sed -n 's/^initrd (kept for a boot by hand): //p' <<<"$output")
  size=$(stat -c %s "$BATS_TEST_TMPDIR/base.cpio")
  cmp -n "$size" "$BATS_TEST_TMPDIR/base.cpio" "$initrd"
  # the stand-in found the plan in the second archive
  grep -qx "release 6.1.0-fake-gpu" "$FAKE_QEMU_PLAN"
  grep -qx "console=ttyS0 rdinit=/kgb/check panic=-1 quiet" "$FAKE_QEMU_ARGS"
}

@test "boot-test: QEMU missing, a missing kernel: exit 1 with what to do" {
  run kgb boot-test --kernel "$KERNEL" --qemu /nonexistent/qemu --accel tcg
  assert_failure 1
  assert_output --partial "'/nonexistent/qemu' is not installed: apt-get install qemu-system-x86"
  run kgb boot-test --kernel /nonexistent/vmlinuz --accel tcg
  assert_failure 1
  assert_output --partial "no kernel '/nonexistent/vmlinuz'"
}
