#!/usr/bin/env bats
# kubevirt: permittedHostDevices for the seeds' hosts (golden files), named as NVIDIA's
# KubeVirt device plugin names its resources (seed 002). KGB_UPDATE_GOLDEN=1 rewrites them.

setup() {
  load ../helpers
  WORKDIR=$BATS_TEST_TMPDIR/work
  GOLDEN=$FIXTURES/golden/kubevirt
}

golden() {
  local got=$BATS_TEST_TMPDIR/golden.out
  printf '%s\n' "$output" >"$got"
  if [ -n "${KGB_UPDATE_GOLDEN:-}" ]; then
    mkdir -p "$GOLDEN"
    cp "$got" "$GOLDEN/$1"
  fi
  diff -u "$GOLDEN/$1" "$got"
}

# yaml EXPR: parses $output as YAML (when PyYAML is installed), prints EXPR over it (y)
yaml() {
  python3 -c 'import yaml' 2>/dev/null || return 0
  printf '%s\n' "$output" | python3 -c "import sys, yaml; y = yaml.safe_load(sys.stdin); print($1)"
}

kv() { kgb kubevirt --pci-ids "$FIXTURES/pci.ids" "$@"; }

@test "passthrough: pciVendorSelector and the device plugin's resource name (seed 002)" {
  run kv -p nvidia-gpu --external-provider --sysfs "$FIXTURES/host-geforce/sys"
  assert_success
  golden geforce-nvidia-gpu.yaml
  assert_output --partial '    - pciVendorSelector: "10DE:1F08"'
  assert_output --partial '      resourceName: "nvidia.com/TU106_GEFORCE_RTX_2060_REV__A"'
  assert_output --partial '      externalResourceProvider: true'
  run yaml 'y["permittedHostDevices"]["pciHostDevices"]'
  if python3 -c 'import yaml' 2>/dev/null; then
    assert_output "[{'pciVendorSelector': '10DE:1F08', 'resourceName': 'nvidia.com/TU106_GEFORCE_RTX_2060_REV__A', 'externalResourceProvider': True}]"
  fi
  run kv -p nvidia-gpu --sysfs "$FIXTURES/host-nvidia-dc/sys"
  assert_success
  golden nvidia-dc-nvidia-gpu.yaml
  refute_output --partial externalResourceProvider
}

@test "vGPU profiles: mediatedDevices with mdevNameSelector, from the types or the vGPUs that exist" {
  run kv -p nvidia-vgpu --sysfs "$FIXTURES/host-nvidia-sriov/sys"
  assert_success
  golden nvidia-sriov-vgpu.yaml
  assert_output --partial '    - mdevNameSelector: "GRID A100D-4C"'
  assert_output --partial '      resourceName: "nvidia.com/GRID_A100D-4C"'
  run kv -p intel-gvt-g --sysfs "$FIXTURES/host-intel-gvt/sys"
  assert_success
  golden intel-gvt-g.yaml
  # once a vGPU exists, only its type is permitted
  cp -a "$FIXTURES/host-nvidia-sriov" "$BATS_TEST_TMPDIR/h"
  sys=$BATS_TEST_TMPDIR/h/sys
  vf=$sys/devices/pci0000:41/0000:41:00.4
  uuid=3b0f1f2e-5807-11e8-a43e-03533cceae7d
  mkdir -p "$vf/$uuid" "$sys/bus/mdev/devices"
  ln -s ../mdev_supported_types/nvidia-693 "$vf/$uuid/mdev_type"
  ln -s ../../../devices/pci0000:41/0000:41:00.4/$uuid "$sys/bus/mdev/devices/$uuid"
  run kgb --json kubevirt -p nvidia-vgpu --sysfs "$sys"
  assert_success
  run json 'j["permittedHostDevices"]["mediatedDevices"]' <<<"$output"
  assert_output "[{'mdevNameSelector': 'GRID A100D-8C', 'resourceName': 'nvidia.com/GRID_A100D-8C'}]"
}

@test "--json gives the same structure; no pci.ids names the resource by device ID" {
  run kgb --json kubevirt -p intel-gvt-d --sysfs "$FIXTURES/host-intel-gvt/sys" --pci-ids "$FIXTURES/pci.ids"
  assert_success
  run json 'j["permittedHostDevices"]["pciHostDevices"]' <<<"$output"
  assert_output "[{'pciVendorSelector': '8086:1616', 'resourceName': 'intel.com/HD_GRAPHICS_5500'}]"
  KGB_PCI_IDS= run kgb kubevirt -p intel-gvt-d --sysfs "$FIXTURES/host-intel-gvt/sys"
  assert_success
  assert_output --partial 'resourceName: "intel.com/1616"'
  assert_output --partial "8086:1616 is not in pci.ids (none found, see --pci-ids)"
}

@test "nothing to permit: a clear error" {
  run kgb kubevirt -p virgl
  assert_failure 1
  assert_output --partial "profile 'virgl' passes no host device to the VM"
  run kgb kubevirt -p intel-gvt-d --sysfs "$FIXTURES/host-nvidia-dc/sys"
  assert_failure 1
  assert_output --partial "no Intel GPU under '$FIXTURES/host-nvidia-dc/sys/bus/pci/devices'"
  run kgb kubevirt
  assert_failure 2
  assert_output --partial "-p PROFILE is required"
}
