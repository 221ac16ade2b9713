#!/usr/bin/env bats
# boot-test for the nvidia-gpu kernel (no proprietary driver): under TCG, pciehp drives the
# profile's PCIe root port, a virtio-net-pci function hot-plugged into it over QMP appears in
# the guest behind that port (the path a large-BAR GPU takes in Kata), and nouveau is absent.

setup_file() {
  load ../helpers
  [ -f "$LINUX_TARBALL" ] || skip "no $LINUX_TARBALL (apt-get install linux-source-6.1)"
  command -v qemu-system-x86_64 >/dev/null || skip "no qemu-system-x86_64 (apt-get install qemu-system-x86)"
  export WORKDIR=$BATS_FILE_TMPDIR/work
  "$KGB" --workdir "$WORKDIR" kernel build -p nvidia-gpu -k "$LINUX_TARBALL" >"$BATS_FILE_TMPDIR/stage" \
    2>"$BATS_FILE_TMPDIR/build.err" || { cat "$BATS_FILE_TMPDIR/build.err" >&3; return 1; }
}

setup() {
  load ../helpers
  [ -f "$LINUX_TARBALL" ] || skip "no $LINUX_TARBALL"
  command -v qemu-system-x86_64 >/dev/null || skip "no qemu-system-x86_64"
  release=6.1.192-nvidia-gpu
}

@test "nvidia-gpu under TCG: pciehp, a device hot-plugged into the root port, no nouveau" {
  run kgb_split boot-test -p nvidia-gpu -k "$LINUX_TARBALL" --accel tcg
  cat "$BATS_TEST_TMPDIR/stderr"
  assert_success
  assert_line --regexp "^  uname +pass +$release$"
  assert_line --regexp '^  config +pass +6 required values in /proc/config.gz$'
  assert_line --regexp '^  pciehp +pass +pciehp on 1 root port \(0000:00:[0-9a-f.]+:pcie004\), slots: 1$'
  assert_line --regexp '^  hotplug +pass +0000:01:00\.0 \(1af4:1041\) appeared [0-9.]+ s after the request, behind 0000:00:[0-9a-f.]+$'
  assert_line --regexp '^  nouveau +pass +nouveau is neither built in nor loaded$'
  assert_line --regexp '^  nvidia-driver +skipped '
  # the Kata settings' kernel parameters reached the guest
  log=$(sed -n 's/^serial log: //p' <<<"$output")
  grep -q "Command line: .*pci=realloc pci=nocrs pci=assign-busses" "$log"
}

@test "nvidia-gpu --json: the boot-to-check time with the hot-plug" {
  run kgb_split --json boot-test -p nvidia-gpu -k "$LINUX_TARBALL" --accel tcg
  assert_success
  [ "$(json 'j["failed"], j["memory_mib"]' <<<"$output")" = "0 2048" ]
  echo "# boot-to-check under TCG with the hot-plug: $(json 'j["seconds"]["boot_to_check"]' <<<"$output") s" >&3
  json 'j["seconds"]["boot_to_check"] < 20 or sys.exit(1)' <<<"$output"
}
