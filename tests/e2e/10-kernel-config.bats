#!/usr/bin/env bats
# kernel config for real: every shipped profile resolved by Linux 6.1's own Kconfig (Debian's
# linux-source-6.1), with no unexplained drop and the vendor facts in the result; then
# dropped values with the right reason and exit 3.

setup_file() {
  load ../helpers
  need_linux_source
  e2e_workdir
}

setup() {
  load ../helpers
  need_linux_source
}

# config_of PROFILE: runs kernel config and leaves the .config path in $cfg
config_of() {
  cfg=$(kgb -q kernel config -p "$1" -k "$LINUX_TARBALL")
}

has() { grep -qx "$1" "$cfg" || { echo "missing in $cfg: $1"; return 1; }; }
off() { ! grep -q "^$1=[ym]" "$cfg" || { echo "$1 is on in $cfg"; return 1; }; }

@test "nvidia-gpu: every value survives, vendor facts present" {
  run kgb kernel config -p nvidia-gpu -k "$LINUX_TARBALL"
  assert_success
  assert_output --regexp "values requested, .* 0 dropped"
  config_of nvidia-gpu
  has CONFIG_PCI_MMCONFIG=y
  has CONFIG_HOTPLUG_PCI_PCIE=y
  has CONFIG_MODULES=y
  has CONFIG_MODULE_UNLOAD=y
  has 'CONFIG_LOCALVERSION="-nvidia-gpu"'
  has CONFIG_IKCONFIG_PROC=y
  off CONFIG_DRM_NOUVEAU
}

@test "nvidia-vgpu and nvidia-vgpu-mig: every value survives" {
  for p in nvidia-vgpu nvidia-vgpu-mig; do
    run kgb kernel config -p "$p" -k "$LINUX_TARBALL"
    assert_success
    assert_output --regexp "0 dropped"
    config_of "$p"
    has CONFIG_PCI_MMCONFIG=y
    has CONFIG_HOTPLUG_PCI_PCIE=y
    off CONFIG_DRM_NOUVEAU
  done
}

@test "intel-gvt-d and intel-gvt-g: every value survives, i915 built in" {
  for p in intel-gvt-d intel-gvt-g; do
    run kgb kernel config -p "$p" -k "$LINUX_TARBALL"
    assert_success
    assert_output --regexp "0 dropped"
    config_of "$p"
    has CONFIG_DRM=y
    has CONFIG_DRM_I915=y
    has CONFIG_DRM_I915_USERPTR=y
    has 'CONFIG_LOCALVERSION="-intel-gpu"'
  done
}

@test "virgl: every value survives, virtio-gpu built in" {
  run kgb kernel config -p virgl -k "$LINUX_TARBALL"
  assert_success
  config_of virgl
  has CONFIG_DRM=y
  has CONFIG_DRM_VIRTIO_GPU=y
  has 'CONFIG_LOCALVERSION="-virgl-gpu"'
}

@test "the second run reuses the resolution and says so" {
  run kgb kernel config -p virgl -k "$LINUX_TARBALL"
  assert_success
  assert_output --partial "resolution reused from the stage cache"
}

@test "--json: requested count, no drops, the config path" {
  kgb --json kernel config -p intel-gvt-d -k "$LINUX_TARBALL" 2>/dev/null >"$BATS_TEST_TMPDIR/r.json"
  run json 'j["requested"] > 100, j["dropped"], j["unexplained"], j["config"].endswith("/config")' <"$BATS_TEST_TMPDIR/r.json"
  assert_output "True [] 0 True"
}

@test "a dependency-starved value: reason 'dependency' with operand values, exit 3" {
  # the minimal guest kernel has no sound subsystem, so an HDA driver cannot survive
  printf '# needs CONFIG_SOUND and CONFIG_SND\nCONFIG_SND_HDA_INTEL=y\n' >"$BATS_TEST_TMPDIR/starved.conf"
  run kgb kernel config -p virgl -k "$LINUX_TARBALL" --fragment "$BATS_TEST_TMPDIR/starved.conf"
  assert_failure 3
  assert_output --partial "starved.conf:2: CONFIG_SND_HDA_INTEL=y did not survive (now n) [dependency]"
  assert_output --regexp "SND_HDA_INTEL depends on .*SND_PCI \[=n\]"
  kgb --json kernel config -p virgl -k "$LINUX_TARBALL" --fragment "$BATS_TEST_TMPDIR/starved.conf" \
    2>/dev/null >"$BATS_TEST_TMPDIR/r.json" || true
  run json '(d:=j["dropped"][0])["symbol"], d["requested"], d["actual"], d["reason"], d["line"], d["fragment"].endswith("starved.conf")' <"$BATS_TEST_TMPDIR/r.json"
  assert_output "CONFIG_SND_HDA_INTEL y n dependency 2 True"
}

@test "a symbol that Linux 6.1 does not have: reason 'unknown' with suggestions, exit 3" {
  # CONFIG_VFIO_MDEV_DEVICE (seed 001's host list) was folded into CONFIG_VFIO_MDEV before 6.1
  printf 'CONFIG_VFIO_MDEV_DEVICE=y\n' >"$BATS_TEST_TMPDIR/gone.conf"
  run kgb kernel config -p nvidia-gpu -k "$LINUX_TARBALL" --fragment "$BATS_TEST_TMPDIR/gone.conf"
  assert_failure 3
  assert_output --partial "gone.conf:1: CONFIG_VFIO_MDEV_DEVICE=y did not survive (now n) [unknown]"
  assert_output --partial "no Kconfig file of this kernel defines CONFIG_VFIO_MDEV_DEVICE; similar: CONFIG_VFIO_MDEV"
}

@test "a drop listed in an allow-list with a reason passes, and the report says so" {
  data=$BATS_TEST_TMPDIR/data
  mkdir -p "$data/kconfig-fragments"
  ln -s "$KGB_SRCDIR/profiles" "$data/profiles"
  ln -s "$KGB_SRCDIR/recipes" "$data/recipes"
  for d in common x86_64 gpu; do ln -s "$KGB_SRCDIR/kconfig-fragments/$d" "$data/kconfig-fragments/$d"; done
  printf 'CONFIG_VFIO_MDEV_DEVICE kernel:5.16.. merged into CONFIG_VFIO_MDEV\n' >"$data/kconfig-fragments/allow.conf"
  printf 'CONFIG_VFIO_MDEV_DEVICE=y\n' >"$BATS_TEST_TMPDIR/gone.conf"
  KGB_DATADIR=$data run kgb kernel config -p nvidia-gpu -k "$LINUX_TARBALL" --fragment "$BATS_TEST_TMPDIR/gone.conf"
  assert_success
  assert_output --partial "[unknown, allowed]"
  assert_output --partial "allowed by kconfig-fragments/allow.conf:1: merged into CONFIG_VFIO_MDEV"
}

@test "an override by a user fragment is reported with both places" {
  printf '# turn the module loader off for a test\n# CONFIG_MODULE_UNLOAD is not set\n' >"$BATS_TEST_TMPDIR/o.conf"
  run kgb kernel config -p nvidia-gpu -k "$LINUX_TARBALL" --fragment "$BATS_TEST_TMPDIR/o.conf"
  assert_output --regexp "override CONFIG_MODULE_UNLOAD: kconfig-fragments/[a-z0-9_/]+\.conf:[0-9]+ \(y\) -> $BATS_TEST_TMPDIR/o.conf:2 \(n\)"
}

@test "--compare: what another fragment set gets and ours does not, by its file" {
  run kgb_split kernel config -p virgl -k "$LINUX_TARBALL" --compare "$FIXTURES/kata-fragments"
  assert_success
  assert_output "3 values that $FIXTURES/kata-fragments gets and 'virgl' does not (7 requested, 3 fragments, 1 left out for x86_64 by its tags):
common/base.conf
  CONFIG_PSI=y (line 5; ours: not set)
common/network.conf
  CONFIG_PACKET=y (line 4; ours: not set)
x86_64/block.conf
  CONFIG_BLK_DEV_LOOP=y (line 4; ours: not set)"
  kgb_split --json kernel config -p virgl -k "$LINUX_TARBALL" --compare "$FIXTURES/kata-fragments" >"$BATS_TEST_TMPDIR/c.json"
  run json '[m["symbol"] for m in j["missing"]], j["skipped"]' <"$BATS_TEST_TMPDIR/c.json"
  assert_output "['PSI', 'PACKET', 'BLK_DEV_LOOP'] ['x86_64/not-here.conf']"
  run kgb kernel config -p virgl -k "$LINUX_TARBALL" --compare "$BATS_TEST_TMPDIR"
  assert_failure 1
  assert_output --partial "has no fragments in common/ or x86_64/"
}

@test "the source tree is never modified" {
  src=$(ls -d "$WORKDIR"/sources/*/linux-source-6.1)
  run find "$src" -newer "$src/Makefile" -name .config
  assert_output ""
  [ ! -e "$src/.config" ]
  [ ! -e "$src/include/generated" ]
}

@test "Ctrl-C during the extraction leaves nothing half-written, and the next run completes" {
  w=$BATS_TEST_TMPDIR/interrupted
  "$KGB" --workdir "$w" kernel config -p virgl -k "$LINUX_TARBALL" >/dev/null 2>&1 &
  pid=$!
  # wait until the extraction has started, then interrupt it
  for _ in $(seq 100); do
    compgen -G "$w/sources/*.tmp-*" >/dev/null && break
    sleep 0.1
  done
  sleep 1
  kill -INT "$pid"
  rc=0
  wait "$pid" || rc=$?
  assert_equal "$rc" 1
  run find "$w" -name '*.tmp-*'
  assert_output ""
  run ls -A "$w/sources"
  assert_output ""
  run "$KGB" --workdir "$w" kernel config -p virgl -k "$LINUX_TARBALL"
  assert_success
}
