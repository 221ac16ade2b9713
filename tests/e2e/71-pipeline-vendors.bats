#!/usr/bin/env bats
# build + boot-test for nvidia-gpu, the vendor profile CI can run without a GPU: no proprietary
# driver (kernel, rootfs, the image as root disk, pciehp and a device hot-plugged into the
# profile's PCIe root port over QMP, the path a large-BAR GPU takes in Kata; no nouveau).
# intel-gvt-d's build and boot are in tests/e2e-slow (a third cold kernel compile does not fit
# in CI's time on a slow machine; its config is checked in 10-kernel-config).

setup_file() {
  load ../helpers
  need_linux_source
  need_qemu
  e2e_workdir
  local t0=$SECONDS
  "$KGB" --workdir "$WORKDIR" build -p nvidia-gpu -k "$LINUX_TARBALL" \
    --without oci-prestart-hook --without nvidia-container-toolkit --without nvidia-driver \
    --without kernel-headers >"$BATS_FILE_TMPDIR/nvidia.dest" 2>"$BATS_FILE_TMPDIR/nvidia.err" ||
    { cat "$BATS_FILE_TMPDIR/nvidia.err" >&3; return 1; }
  echo "# build nvidia-gpu: $((SECONDS - t0)) s" >&3
}

setup() {
  load ../helpers
  need_linux_source
  need_qemu
}

@test "build nvidia-gpu: every stage, Kata's file names, the drop-in" {
  run cat "$BATS_FILE_TMPDIR/nvidia.err"
  for s in config kernel rootfs image kata install; do assert_line --regexp "^$s +(ran|cached) "; done
  d=$(cat "$BATS_FILE_TMPDIR/nvidia.dest")
  [ -L "$d/usr/share/kata-containers/vmlinuz-nvidia-gpu.container" ]
  [ -f "$d/usr/share/kata-containers/kata-containers-nvidia-gpu.img" ]
  # Kata's NVIDIA template: cold-plugged into root ports, the image on virtio-blk
  grep -q 'cold_plug_vfio = "root-port"' "$d/etc/kata-containers/config.d/50-kata-gpu-nvidia-gpu.toml"
  grep -q 'disable_image_nvdimm = true' "$d/etc/kata-containers/config.d/50-kata-gpu-nvidia-gpu.toml"
}

@test "nvidia-gpu under TCG: the image as root, pciehp, a device hot-plugged into the root port, no nouveau" {
  release=6.1.192-nvidia-gpu
  run kgb_split boot-test -p nvidia-gpu -k "$LINUX_TARBALL" --accel tcg
  cat "$BATS_TEST_TMPDIR/stderr"
  assert_success
  assert_line --regexp "^  root: ext4 image $WORKDIR/.* as /dev/vda1, read-only$"
  assert_line --regexp "^  uname +pass +$release$"
  assert_line --regexp '^  config +pass +6 required values in /proc/config.gz$'
  assert_line --regexp '^  rootfs +pass +ext4 on /dev/vda1 mounted read-only: Debian GNU/Linux 12 \(bookworm\); init /sbin/init -> '
  assert_line --regexp "^  modules +skipped +the image's /lib/modules/$release has no loadable modules"
  # Kata's NVIDIA template: 8 root ports
  assert_line --regexp '^  pciehp +pass +pciehp on 8 root ports \((0000:00:[0-9a-f.]+:pcie004, ){7}0000:00:[0-9a-f.]+:pcie004\), slots: .+$'
  assert_line --regexp '^  hotplug +pass +0000:01:00\.0 \(1af4:1041\) appeared [0-9.]+ s after the request, behind 0000:00:[0-9a-f.]+$'
  assert_line --regexp '^  nouveau +pass +nouveau is neither built in nor loaded$'
  assert_line --regexp '^  nvidia-driver +skipped +the image has no nvidia module \(built without the nvidia-driver recipe\)$'
  # the Kata settings' kernel parameters reached the guest
  log=$(sed -n 's/^serial log: //p' <<<"$output")
  grep -q "Command line: .*root=/dev/vda1 rootfstype=ext4 ro cgroup_no_v1=all pci=realloc pci=nocrs pci=assign-busses" "$log"
}

@test "nvidia-gpu --json: the boot-to-check time with the image and the hot-plug" {
  run kgb_split --json boot-test -p nvidia-gpu -k "$LINUX_TARBALL" --accel tcg
  assert_success
  [ "$(json 'j["failed"], j["memory_mib"]' <<<"$output")" = "0 2048" ]
  echo "# nvidia-gpu boot-to-check under TCG, image root + hot-plug: $(json 'j["seconds"]["boot_to_check"]' <<<"$output") s" >&3
  json 'j["seconds"]["boot_to_check"] < 20 or sys.exit(1)' <<<"$output"
}
