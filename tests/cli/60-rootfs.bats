#!/usr/bin/env bats
# rootfs and image commands without building anything: usage errors, recipe errors with
# file:line, recipes that refuse before anything runs, the module checks on fixture trees
# (tests/fixtures/rootfs/mkmodtrees.py, built by the test build), and the help texts.

setup() {
  load ../helpers
  WORKDIR=$BATS_TEST_TMPDIR/work
  ROOTS=${KGB_BUILDDIR:-}/tests/fixtures/rootfs
  DATADIR=$FIXTURES/rootfs/datadir
}

@test "rootfs and image: help texts with an example, usage errors exit 2" {
  run kgb help rootfs
  assert_success
  assert_output --partial "examples:"
  assert_output --partial "kata-gpu-builder rootfs build -p virgl"
  run kgb help image
  assert_success
  assert_output --partial "image build -p virgl --format ext4"
  run kgb rootfs
  assert_failure 2
  assert_output --partial "usage: kata-gpu-builder rootfs VERB"
  run kgb rootfs build
  assert_failure 2
  assert_output --partial "rootfs build: which profile? give -p PROFILE"
  run kgb rootfs build -p virgl --set novalue
  assert_failure 2
  assert_output --partial "--set takes NAME=VALUE"
  run kgb rootfs build -p virgl --bootstrapper cdebootstrap
  assert_failure 2
  assert_output --partial "--bootstrapper takes mmdebstrap or debootstrap, not 'cdebootstrap'"
  run kgb rootfs build -p virgl --withot mesa-virgl
  assert_failure 2
  assert_output --partial "unknown option '--withot' (did you mean '--without'?)"
  run kgb rootfs build -p virgl --format ext4
  assert_failure 2
  run kgb image build -p virgl --format qcow2
  assert_failure 2
  assert_output --partial "--format takes ext4, erofs or initrd, not 'qcow2'"
  run kgb image build -p virgl --format ext4 --compress gzip
  assert_failure 2
  assert_output --partial "--compress goes with --format initrd"
  run kgb image build -p virgl --format initrd --compress xz
  assert_failure 2
  assert_output --partial "--compress takes zstd or gzip, not 'xz'"
}

@test "rootfs build: settings and recipes that do not exist are refused before anything runs" {
  run kgb rootfs build -p virgl --set kata.agent.ur=/x
  assert_failure 1
  assert_output --partial "--set kata.agent.ur: no recipe of this run declares it (did you mean 'kata.agent.url'?)"
  run kgb rootfs build -p virgl --without nvidia-driver
  assert_failure 1
  assert_output --partial "--without nvidia-driver: the profile has no recipe 'nvidia-driver'"
  run kgb rootfs build -p nvidia-gpu --without kernel-headers
  assert_failure 1
  assert_output --partial "recipe 'nvidia-driver' requires 'kernel-headers', which --without removes"
  # nothing was built, not even the kernel
  [ ! -d "$WORKDIR/stages" ]
}

@test "rootfs build: the NVIDIA driver recipe without a driver says how to give one" {
  run kgb rootfs build -p nvidia-gpu
  assert_failure 1
  assert_output --partial "recipe 'nvidia-driver' (recipes/nvidia-driver.recipe:"
  assert_output --partial "no NVIDIA driver given: --set nvidia.driver.url="
  run kgb rootfs build -p nvidia-gpu --set nvidia.driver.url=/srv/NVIDIA-Linux-x86_64-550.54.14.run
  assert_failure 1
  assert_output --partial "nvidia.driver.url is set without nvidia.driver.sha256"
  run kgb rootfs build -p nvidia-gpu --set nvidia.driver.url=/srv/d.run --set nvidia.driver.sha256=00 \
    --set nvidia.driver.kind=beta
  assert_failure 1
  assert_output --partial "nvidia.driver.kind is 'beta': use run or open"
  # the toolkit is next: it needs a repository or .deb files
  run kgb rootfs build -p nvidia-gpu --set nvidia.driver.url=/srv/d.run --set nvidia.driver.sha256=00
  assert_failure 1
  assert_output --partial "no source for the toolkit: --set nvidia.toolkit.repo="
  [ ! -d "$WORKDIR/stages" ]
}

@test "rootfs build: a setting cannot add a line or become an option" {
  # a newline in the toolkit repository would add an apt source line of the user's choosing
  run kgb rootfs build -p nvidia-gpu --set nvidia.driver.url=/srv/d.run --set nvidia.driver.sha256=00 \
    --set nvidia.toolkit.key=/srv/key.asc \
    --set nvidia.toolkit.repo=$'https://nvidia.invalid/stable/deb/amd64 /\ndeb [trusted=yes] http://evil.invalid/ ./'
  assert_failure 1
  assert_output --partial "recipes/nvidia-container-toolkit.recipe:"
  assert_output --partial "the value of '\${nvidia.toolkit.repo}' has a control character (\\x0a) at byte 41"
  # a package name that apt-get would read as an option running a command as root
  printf '@include "virgl.cfg"\noverride = {\n  rootfs = { recipes = [ "kernel-headers", "dkms-module" ]; };\n};\n' \
    >"$BATS_TEST_TMPDIR/dkms.cfg"
  run kgb rootfs build -p "$BATS_TEST_TMPDIR/dkms.cfg" --set 'dkms.package=-oDPkg::Pre-Invoke::=touch /pwned'
  assert_failure 1
  assert_output --partial "recipes/dkms-module.recipe:18: the value of '\${dkms.package}' starts with '-' and would be read as an option"
  [ ! -d "$WORKDIR/stages" ]
}

@test "rootfs build: broken recipes are errors with file and line" {
  KGB_DATADIR=$DATADIR run kgb rootfs build -p bad-field
  assert_failure 1
  assert_output --partial "recipes/bad-field.recipe:5: unknown field 'pakages' (did you mean 'packages'?)"
  KGB_DATADIR=$DATADIR run kgb rootfs build -p bad-var
  assert_failure 1
  assert_output --partial "recipes/bad-var.recipe:5: unknown variable '\${kernel_relase}' (did you mean 'kernel_release'?)"
  KGB_DATADIR=$DATADIR run kgb rootfs build -p loop-a
  assert_failure 1
  assert_output --partial "recipes require each other: loop-a -> loop-b -> loop-a"
}

@test "rootfs recipes: every recipe with its settings" {
  run kgb rootfs recipes
  assert_success
  for r in dkms-module intel-gpu kata-agent kernel-headers kernel-modules mesa-virgl \
    nvidia-container-toolkit nvidia-driver oci-prestart-hook; do
    assert_output --partial "$r: "
  done
  assert_output --partial "--set kata.agent.mode=... (default 'init')"
  run kgb --json rootfs recipes -p nvidia-gpu
  assert_success
  run json '[r["name"] for r in j]' <<<"$output"
  assert_output "['kernel-headers', 'kernel-modules', 'nvidia-driver', 'nvidia-container-toolkit', 'oci-prestart-hook', 'kata-agent']"
}

@test "rootfs check: a good tree passes, with compressed modules and a merged /usr" {
  [ -d "$ROOTS/good" ] || skip "no fixtures in '$ROOTS' (KGB_BUILDDIR)"
  run kgb rootfs check --root "$ROOTS/good" --release 6.1.0-fixture --system-map "$ROOTS/System.map" \
    --library libalpha.so=alpha
  assert_success
  assert_output --partial "rootfs check: 4 modules for 6.1.0-fixture, 0 problems"
}

@test "rootfs check: every problem is listed and the exit status is 3" {
  [ -d "$ROOTS/bad" ] || skip "no fixtures in '$ROOTS' (KGB_BUILDDIR)"
  run kgb rootfs check --root "$ROOTS/bad" --release 6.1.0-fixture --system-map "$ROOTS/System.map" \
    --library libalpha.so=alpha
  assert_failure 3
  assert_output --partial "lib/modules/6.1.0-fixture/extra/wrong.ko: vermagic: built for '6.1.0-other', not '6.1.0-fixture'"
  assert_output --partial "lib/modules/6.1.0-fixture/extra/orphan.ko: dependency: depends on 'missing_mod', which is not in the tree"
  assert_output --partial "lib/modules/6.1.0-fixture/extra/needs.ko: symbol: needs symbol 'missing_symbol'"
  assert_output --partial "lib/modules/6.1.0-fixture/modules.dep: modules.dep: stale"
  assert_output --partial "lib/modules/6.1.0-other: release: modules for release '6.1.0-other', not '6.1.0-fixture'"
  assert_output --partial "libalpha.so: library: libalpha.so.1.9.0 does not match module 'alpha' version 2.0.1"
  assert_output --partial "7 modules for 6.1.0-fixture, 6 problems"
  kgb --json rootfs check --root "$ROOTS/bad" --release 6.1.0-fixture >"$BATS_TEST_TMPDIR/out.json" 2>/dev/null || true
  run json 'sorted(set(p["kind"] for p in j["problems"]))' <"$BATS_TEST_TMPDIR/out.json"
  # without --system-map and --library: no symbol or library checks
  assert_output "['dependency', 'modules.dep', 'release', 'vermagic']"
  run kgb rootfs check --root "$ROOTS/bad"
  assert_failure 2
  assert_output --partial "give --root DIR and --release KVER"
}
