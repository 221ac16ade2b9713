#!/usr/bin/env bats
# host check on the seeds' hosts (fixture trees under tests/fixtures/host-*), and the seeds'
# host steps (bind/unbind, mdev create/remove) on writable copies where tests/cli/
# fake-kernel.bash plays the kernel. KGB_UPDATE_GOLDEN=1 rewrites the golden files.

setup() {
  load ../helpers
  load fake-kernel
  WORKDIR=$BATS_TEST_TMPDIR/work
  GOLDEN=$FIXTURES/golden/host
  DEV=$BATS_TEST_TMPDIR/dev
  BIN=$BATS_TEST_TMPDIR/bin # the only PATH the tool gets: no nvidia-smi unless a test puts one
  mkdir -p "$DEV" "$BIN"
}

teardown() {
  fake_kernel_stop
}

# kgbh ARGS...: the tool with a PATH that holds only $BIN
kgbh() { PATH=$BIN "$KGB" --workdir "$WORKDIR" "$@"; }

# roots NAME: the options that make fixture NAME (or its writable copy) the host
roots() {
  local base=$FIXTURES/$1
  [ -d "$BATS_TEST_TMPDIR/$1" ] && base=$BATS_TEST_TMPDIR/$1
  echo --sysfs "$base/sys" --proc "$base/proc" --boot "$base/boot" --dev "$DEV" --pci-ids "$FIXTURES/pci.ids"
}

# writable NAME: a copy of the fixture that the test may change (config.gz made from its text)
writable() {
  cp -a "$FIXTURES/$1" "$BATS_TEST_TMPDIR/$1"
  if [ -f "$BATS_TEST_TMPDIR/$1/proc-config.txt" ]; then
    gzip -c "$BATS_TEST_TMPDIR/$1/proc-config.txt" >"$BATS_TEST_TMPDIR/$1/proc/config.gz"
  fi
}

# golden NAME: $output, with the fixture and temporary paths made relative, equals $GOLDEN/NAME
golden() {
  local got=$BATS_TEST_TMPDIR/golden.out
  printf '%s\n' "$output" | sed -e "s|$BATS_TEST_TMPDIR|TMP|g" -e "s|$FIXTURES|FIXTURES|g" >"$got"
  if [ -n "${KGB_UPDATE_GOLDEN:-}" ]; then
    mkdir -p "$GOLDEN"
    cp "$got" "$GOLDEN/$1"
  fi
  diff -u "$GOLDEN/$1" "$got"
}

fake_nvidia_smi() {
  cat >"$BIN/nvidia-smi" <<'EOF'
#!/bin/sh
case "$*" in
*--query-gpu*) echo "0, 00000000:41:00.0, $FAKE_MIG_MODE" ;;
-L)
  echo "GPU 0: NVIDIA A100 80GB PCIe (UUID: GPU-5d2b0e3c-1111-2222-3333-444455556666)"
  if [ "$FAKE_MIG_MODE" = Enabled ] && [ -n "$FAKE_MIG_INSTANCES" ]; then
    echo "  MIG 1g.10gb     Device  0: (UUID: MIG-0b6e3ec5-aaaa-bbbb-cccc-ddddeeeeffff)"
  fi
  ;;
esac
EOF
  chmod +x "$BIN/nvidia-smi"
}

@test "data-centre NVIDIA GPU (seed 001): 32 GiB BAR, IOMMU group 192, ready for GPU use" {
  run kgbh host check $(roots host-nvidia-dc)
  assert_success
  golden nvidia-dc.txt
  run kgbh --json host check $(roots host-nvidia-dc)
  assert_success
  printf '%s' "$output" >"$BATS_TEST_TMPDIR/h.json"
  run json 'j["release"], j["kernel_config"]["CONFIG_VFIO"], j["kernel_config"]["CONFIG_VFIO_PCI"], j["iommu_enabled"], j["ready"], j["problems"]' <"$BATS_TEST_TMPDIR/h.json"
  assert_output "6.1.0-18-amd64 m m True True []"
  run json '[(g["bdf"], g["vendor"], g["device"], g["class"], g["name"], g["driver"], g["iommu_group"], g["group_members"], g["large_bar"], g["sriov"], g["mdev_types"]) for g in j["gpus"]]' <"$BATS_TEST_TMPDIR/h.json"
  assert_output "[('0000:d0:00.0', '10de', '20b9', '0x030200', 'GA100 [A30X]', 'nvidia', 192, [], True, None, [])]"
  run json '[(b["index"], b["size"], b["is64"], b["prefetchable"]) for b in j["gpus"][0]["bars"]]' <"$BATS_TEST_TMPDIR/h.json"
  assert_output "[(0, 16777216, False, False), (1, 34359738368, True, True), (3, 33554432, True, True)]"
  run json 'j["cmdline"]' <"$BATS_TEST_TMPDIR/h.json"
  assert_output --partial "intel_iommu=on iommu=pt"
}

@test "nvidia-gpu on a host whose GPU is still bound to nvidia: not ready, with the bind to run" {
  run kgbh host check -p nvidia-gpu $(roots host-nvidia-dc)
  assert_failure 3
  golden nvidia-dc-nvidia-gpu.txt
  assert_output --partial "    fix: kata-gpu-builder host bind 0000:d0:00.0"
}

@test "host bind / unbind: the driver_override flow of seed 001, the original driver remembered" {
  writable host-nvidia-dc
  sys=$BATS_TEST_TMPDIR/host-nvidia-dc/sys
  fake_kernel_start "$sys" "$DEV"
  run kgb_split host bind 0000:d0:00.0 --sysfs "$sys" --dev "$DEV"
  assert_success
  assert_output "$DEV/vfio/192"
  run cat "$BATS_TEST_TMPDIR/stderr"
  assert_line "0000:d0:00.0: bound to vfio-pci (was nvidia); the driver to restore is remembered"
  run readlink "$sys/bus/pci/devices/0000:d0:00.0/driver"
  assert_output "../../../bus/pci/drivers/vfio-pci"
  run cat "$sys/bus/pci/devices/0000:d0:00.0/driver_override"
  assert_output "vfio-pci"
  run cat "$WORKDIR/host/0000:d0:00.0.driver"
  assert_output "nvidia"
  run kgbh host check -p nvidia-gpu $(roots host-nvidia-dc)
  assert_success
  assert_output --partial "VFIO:        $DEV/vfio/192 present"
  assert_output --partial "ready for profile 'nvidia-gpu'"
  # a second bind changes nothing
  run kgb --json host bind d0:00.0 --sysfs "$sys" --dev "$DEV"
  assert_success
  run json 'j["changed"], j["after"], j["iommu_group"], j["vfio_device_present"]' <<<"$output"
  assert_output "False vfio-pci 192 True"
  # unbind gives the GPU back to nvidia and forgets the state
  run kgb --json host unbind 0000:d0:00.0 --sysfs "$sys" --dev "$DEV"
  assert_success
  run json 'j["changed"], j["before"], j["after"]' <<<"$output"
  assert_output "True vfio-pci nvidia"
  run readlink "$sys/bus/pci/devices/0000:d0:00.0/driver"
  assert_output "../../../bus/pci/drivers/nvidia"
  run cat "$sys/bus/pci/devices/0000:d0:00.0/driver_override"
  assert_output ""
  [ ! -e "$WORKDIR/host/0000:d0:00.0.driver" ]
  run kgb host unbind 0000:d0:00.0 --sysfs "$sys"
  assert_success
  assert_output --partial "not bound to vfio-pci (driver nvidia): nothing to undo"
}

@test "host bind checks the result: a driver that does not take the device is an error" {
  writable host-nvidia-dc
  sys=$BATS_TEST_TMPDIR/host-nvidia-dc/sys
  # no fake kernel: nothing reacts to drivers_probe, the device stays unbound
  run kgb host bind 0000:d0:00.0 --sysfs "$sys" --dev "$DEV"
  assert_failure 1
  assert_output --partial "0000:d0:00.0: after driver_override and drivers_probe it is bound to nvidia, not vfio-pci"
  # vfio-pci not loaded on a fixture: said before anything is written
  writable host-no-iommu
  run kgb host bind 0000:3b:00.0 --sysfs "$BATS_TEST_TMPDIR/host-no-iommu/sys"
  assert_failure 1
  assert_output --partial "the vfio-pci driver is not loaded"
  run cat "$BATS_TEST_TMPDIR/host-no-iommu/sys/bus/pci/devices/0000:3b:00.0/driver_override"
  assert_output "(null)"
}

@test "host bind never writes through an attribute that is a symbolic link" {
  writable host-nvidia-dc
  sys=$BATS_TEST_TMPDIR/host-nvidia-dc/sys
  attr=$sys/bus/pci/devices/0000:d0:00.0/driver_override
  echo precious >"$BATS_TEST_TMPDIR/victim"
  rm -f "$attr"
  ln -s "$BATS_TEST_TMPDIR/victim" "$attr"
  run kgb host bind 0000:d0:00.0 --sysfs "$sys" --dev "$DEV"
  assert_failure 1
  assert_output --partial "driver_override' is a symbolic link, not a sysfs attribute: refusing to write through it"
  run cat "$BATS_TEST_TMPDIR/victim"
  assert_output precious
}

@test "Intel iGPU (seed 000): GVT-g types from sysfs, kernel config from config.gz, the vGPU to create" {
  writable host-intel-gvt
  run kgbh host check -p intel-gvt-g $(roots host-intel-gvt)
  assert_failure 3
  golden intel-gvt-g.txt
  assert_output --partial "fix: kata-gpu-builder host mdev create i915-GVTg_V4_2 --parent 0000:00:02.0"
  run kgbh --json host check -p intel-gvt-g $(roots host-intel-gvt)
  printf '%s' "$output" >"$BATS_TEST_TMPDIR/h.json"
  run json 'j["kernel_config_source"].endswith("/proc/config.gz"), j["kernel_config"]["CONFIG_DRM_I915_GVT_KVMGT"], j["kernel_config"]["CONFIG_VFIO_MDEV_DEVICE"]' <"$BATS_TEST_TMPDIR/h.json"
  assert_output "True m m"
  run json '[(t["type"], t["name"], t["available_instances"]) for t in j["gpus"][0]["mdev_types"]]' <"$BATS_TEST_TMPDIR/h.json"
  assert_output "[('i915-GVTg_V4_1', None, 0), ('i915-GVTg_V4_2', None, 1), ('i915-GVTg_V4_4', None, 3), ('i915-GVTg_V4_8', None, 7)]"
  run json 'j["gpus"][0]["mdev_types"][3]["description"]' <"$BATS_TEST_TMPDIR/h.json"
  assert_output "low_gm_size: 64MB,high_gm_size: 384MB,fence: 4,resolution: 1024x768,weight: 2"
  # GVT-d: the iGPU must go to vfio-pci
  run kgbh host check -p intel-gvt-d $(roots host-intel-gvt)
  assert_failure 3
  assert_output --partial "fix: kata-gpu-builder host bind 0000:00:02.0"
}

@test "GVT-g without i915.enable_gvt=1 and without the GVT options: each fix says what to add" {
  writable host-intel-gvt
  h=$BATS_TEST_TMPDIR/host-intel-gvt
  sed -i 's/ i915.enable_gvt=1//' "$h/proc/cmdline"
  sed -i 's/^CONFIG_DRM_I915_GVT_KVMGT=m/# CONFIG_DRM_I915_GVT_KVMGT is not set/' "$h/proc-config.txt"
  gzip -c "$h/proc-config.txt" >"$h/proc/config.gz"
  run kgbh host check -p intel-gvt-g $(roots host-intel-gvt)
  assert_failure 3
  assert_output --partial "'i915.enable_gvt=1' is not on the kernel command line (profile 'intel-gvt-g' needs it)"
  assert_output --partial "fix: add i915.enable_gvt=1 to GRUB_CMDLINE_LINUX in /etc/default/grub"
  assert_output --partial "the host kernel lacks CONFIG_DRM_I915_GVT_KVMGT (not set in $h/proc/config.gz)"
  # the module parameter set another way (modprobe.d) counts
  mkdir -p "$h/sys/module/i915/parameters"
  echo Y >"$h/sys/module/i915/parameters/enable_gvt"
  run kgbh host check -p intel-gvt-g $(roots host-intel-gvt)
  refute_output --partial "i915.enable_gvt=1' is not on the kernel command line"
}

@test "host mdev create|remove (seed 000 GVT-g): the new IOMMU group and /dev/vfio/<group>" {
  writable host-intel-gvt
  sys=$BATS_TEST_TMPDIR/host-intel-gvt/sys
  types=$sys/devices/pci0000:00/0000:00:02.0/mdev_supported_types
  fake_kernel_start "$sys" "$DEV"
  run kgb_split host mdev create i915-GVTg_V4_8 --uuid BBC4AAFE-5807-11E8-A43E-03533CCEAE7D --sysfs "$sys" --dev "$DEV"
  assert_success
  assert_output "$(printf 'uuid: bbc4aafe-5807-11e8-a43e-03533cceae7d\nparent: 0000:00:02.0\ntype: i915-GVTg_V4_8\niommu_group: 10\ndevice: %s/vfio/10' "$DEV")"
  run cat "$types/i915-GVTg_V4_8/available_instances"
  assert_output "6"
  run kgbh host check -p intel-gvt-g $(roots host-intel-gvt)
  assert_success
  assert_line --regexp '^bbc4aafe-5807-11e8-a43e-03533cceae7d +0000:00:02.0 +i915-GVTg_V4_8 +10$'
  run kgb --json host mdev list --sysfs "$sys" --dev "$DEV"
  assert_success
  run json '[(d["uuid"], d["parent"], d["type"], d["iommu_group"], d["vfio_device"].endswith("/vfio/10")) for d in j["devices"]]' <<<"$output"
  assert_output "[('bbc4aafe-5807-11e8-a43e-03533cceae7d', '0000:00:02.0', 'i915-GVTg_V4_8', 10, True)]"
  run kgb host mdev create i915-GVTg_V4_8 --uuid bbc4aafe-5807-11e8-a43e-03533cceae7d --sysfs "$sys"
  assert_failure 1
  assert_output --partial "a mediated device bbc4aafe-5807-11e8-a43e-03533cceae7d already exists"
  run kgb host mdev remove bbc4aafe-5807-11e8-a43e-03533cceae7d --sysfs "$sys"
  assert_success
  [ ! -e "$sys/bus/mdev/devices/bbc4aafe-5807-11e8-a43e-03533cceae7d" ]
  run cat "$types/i915-GVTg_V4_8/available_instances"
  assert_output "7"
  run kgb host mdev remove bbc4aafe-5807-11e8-a43e-03533cceae7d --sysfs "$sys"
  assert_failure 1
  assert_output --partial "no mediated device bbc4aafe-5807-11e8-a43e-03533cceae7d"
}

@test "host mdev create refuses a type whose available_instances is 0, before writing" {
  writable host-intel-gvt
  sys=$BATS_TEST_TMPDIR/host-intel-gvt/sys
  run kgb host mdev create i915-GVTg_V4_1 --sysfs "$sys"
  assert_failure 1
  assert_output --partial "mdev type 'i915-GVTg_V4_1' has no instance available on 0000:00:02.0 (available_instances is 0)"
  run cat "$sys/devices/pci0000:00/0000:00:02.0/mdev_supported_types/i915-GVTg_V4_1/create"
  assert_output ""
  run kgb host mdev create i915-GVTg_V9_9 --sysfs "$sys"
  assert_failure 1
  assert_output --partial "no device here offers mdev type 'i915-GVTg_V9_9'; types offered: i915-GVTg_V4_1, i915-GVTg_V4_2, i915-GVTg_V4_4, i915-GVTg_V4_8"
  run kgb host mdev create i915-GVTg_V4_8 --uuid not-a-uuid --sysfs "$sys"
  assert_failure 1
  assert_output --partial "'not-a-uuid' is not a UUID"
}

@test "SR-IOV GPU (seed 001 vGPU): VFs, vGPU types per VF, create on the first VF with room" {
  run kgbh host check -p nvidia-vgpu $(roots host-nvidia-sriov)
  assert_failure 3
  golden nvidia-sriov-vgpu.txt
  run kgbh --json host check $(roots host-nvidia-sriov)
  printf '%s' "$output" >"$BATS_TEST_TMPDIR/h.json"
  run json 'j["gpus"][0]["sriov"], j["gpus"][0]["virtfns"], j["gpus"][1]["physfn"], j["gpus"][1]["mdev_types"][0]["name"]' <"$BATS_TEST_TMPDIR/h.json"
  assert_output "{'totalvfs': 16, 'numvfs': 4} ['0000:41:00.4', '0000:41:00.5', '0000:41:00.6', '0000:41:00.7'] 0000:41:00.0 GRID A100D-4C"
  run kgb host mdev list --sysfs "$FIXTURES/host-nvidia-sriov/sys"
  assert_success
  golden nvidia-sriov-mdev-list.txt
  writable host-nvidia-sriov
  sys=$BATS_TEST_TMPDIR/host-nvidia-sriov/sys
  fake_kernel_start "$sys" "$DEV"
  run kgb host mdev create nvidia-692 --parent 0000:41:00.7 --sysfs "$sys"
  assert_failure 1
  assert_output --partial "has no instance available on 0000:41:00.7"
  run kgb_split host mdev create "GRID A100D-8C" --sysfs "$sys" --dev "$DEV"
  assert_success
  assert_line "parent: 0000:41:00.4"
  assert_line "type: nvidia-693 (GRID A100D-8C)"
  assert_line "iommu_group: 64"
  assert_line "device: $DEV/vfio/64"
  run kgbh host check -p nvidia-vgpu $(roots host-nvidia-sriov)
  assert_success
}

@test "MIG through nvidia-smi when installed; 'cannot tell' without it" {
  run kgbh host check -p nvidia-vgpu-mig $(roots host-nvidia-sriov)
  assert_line "MIG:          cannot tell: nvidia-smi is not installed"
  assert_output --partial "cannot tell whether MIG is enabled on 0000:41:00.0"
  fake_nvidia_smi
  FAKE_MIG_MODE=Disabled run kgbh --json host check -p nvidia-vgpu-mig $(roots host-nvidia-sriov)
  assert_failure 3
  run json 'j["mig"], j["gpus"][0]["mig_mode"], [p["fix"] for p in j["problems"] if "MIG" in p["what"]]' <<<"$output"
  assert_output "read with nvidia-smi Disabled ['nvidia-smi -i 0000:41:00.0 -mig 1, reset the GPU (nvidia-smi --gpu-reset) or reboot, then create GPU instances (nvidia-smi mig -cgi PROFILE -C)']"
  FAKE_MIG_MODE=Enabled run kgbh host check -p nvidia-vgpu-mig $(roots host-nvidia-sriov)
  assert_output --partial "MIG is enabled on 0000:41:00.0 but it has no GPU instance"
  FAKE_MIG_MODE=Enabled FAKE_MIG_INSTANCES=1 run kgbh host check -p nvidia-vgpu-mig $(roots host-nvidia-sriov)
  assert_line "  MIG:         Enabled, 1 instance"
  refute_output --partial "MIG is"
  # time-sliced vGPUs need MIG off
  FAKE_MIG_MODE=Enabled run kgbh host check -p nvidia-vgpu $(roots host-nvidia-sriov)
  assert_output --partial "MIG is enabled on 0000:41:00.0: time-sliced vGPUs need it off"
  assert_output --partial "fix: nvidia-smi -i 0000:41:00.0 -mig 0"
}

@test "a host without IOMMU: every problem with its fix, exit 3" {
  run kgbh host check $(roots host-no-iommu)
  assert_failure 3
  golden no-iommu.txt
  assert_output --partial "fix: add amd_iommu=on to GRUB_CMDLINE_LINUX"
  run kgbh --json host check -p nvidia-gpu $(roots host-no-iommu)
  assert_failure 3
  run json 'j["iommu_enabled"], j["gpus"][0]["iommu_group"], j["gpus"][0]["large_bar"], j["ready"], len(j["problems"])' <<<"$output"
  assert_output "False None False False 4"
}

@test "GPUs sharing their IOMMU group with an audio function: a problem, and the bind that fixes it" {
  run kgbh host check -p nvidia-gpu $(roots host-geforce)
  assert_failure 3
  golden geforce-nvidia-gpu.txt
  assert_output --partial "IOMMU group 40 of 0000:86:00.0 is shared with 0000:86:00.1 (class 0x040300, bound to snd_hda_intel)"
  assert_output --partial "fix: kata-gpu-builder host bind 0000:86:00.1 (the container then gets all of /dev/vfio/40)"
}

@test "works read-only on this machine's real /sys" {
  run kgbh host check
  [ "$status" -eq 0 ] || [ "$status" -eq 3 ]
  assert_line --regexp '^host: +Linux '
  if ! grep -q '^0x03' /sys/bus/pci/devices/*/class 2>/dev/null; then
    assert_line "no GPU (PCI class 0x03) on this host"
    assert_output --partial "no GPU (PCI class 0x03) under '/sys/bus/pci/devices': nothing to pass to a VM"
  fi
  run kgbh --json host check -p virgl
  assert_success
  run json 'j["ready"]' <<<"$output"
  assert_output "True"
}

@test "not root: a clear error before anything is written to the real /sys" {
  if [ "$(id -u)" = 0 ]; then
    command -v setpriv >/dev/null || skip "setpriv is not installed"
    as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
  else
    as_user=()
  fi
  work=$(mktemp -d /tmp/kgb-nobody.XXXXXX)
  chmod 0777 "$work"
  for cmd in "host bind 0000:00:00.0" "host unbind 0000:00:00.0" "host mdev create i915-GVTg_V4_8" \
    "host mdev remove bbc4aafe-5807-11e8-a43e-03533cceae7d"; do
    run "${as_user[@]}" "$KGB" --workdir "$work/w" $cmd
    assert_failure 1
    assert_output --partial "writes to /sys and needs root: run it with sudo (nothing was changed)"
  done
  rm -rf "$work"
}

@test "usage: missing and extra arguments, options that do not apply, --dry-run" {
  run kgb host bind
  assert_failure 2
  assert_output --partial "host bind: missing argument"
  run kgb host bind 0000:d0:00.0 0000:d0:00.1
  assert_failure 2
  run kgb host bind 0000:d0:00.0 --parent 0000:d0:00.0
  assert_failure 2
  assert_output --partial "host bind: --parent does not apply here"
  run kgb host bind zz:00.0 --sysfs "$FIXTURES/host-nvidia-dc/sys"
  assert_failure 1
  assert_output --partial "'zz:00.0' is not a PCI address"
  run kgb host bnd 0000:d0:00.0
  assert_failure 2
  assert_output --partial "did you mean 'host bind'?"
  writable host-nvidia-dc
  sys=$BATS_TEST_TMPDIR/host-nvidia-dc/sys
  run kgb --dry-run host bind 0000:d0:00.0 --sysfs "$sys"
  assert_success
  assert_output --partial "would write vfio-pci to $sys/bus/pci/devices/0000:d0:00.0/driver_override"
  run cat "$sys/bus/pci/devices/0000:d0:00.0/driver_override"
  assert_output "(null)"
}
