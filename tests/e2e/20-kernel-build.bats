#!/usr/bin/env bats
# kernel build, install and headers for real: the virgl kernel compiled from linux-source-6.1,
# installed under Kata's names, cached, rebuilt incrementally, and its header packages good
# enough to compile an out-of-tree module with the right vermagic. Its reproducibility without
# ccache is tests/e2e-slow/80-kernel-reproducible.bats (a second cold compile).

setup_file() {
  load ../helpers
  need_linux_source
  e2e_workdir
  # the first build, shared by the tests of this file
  "$KGB" --workdir "$WORKDIR" kernel build -p virgl -k "$LINUX_TARBALL" >"$BATS_FILE_TMPDIR/stage" \
    2>"$BATS_FILE_TMPDIR/build.err" || { cat "$BATS_FILE_TMPDIR/build.err" >&3; return 1; }
}

setup() {
  load ../helpers
  need_linux_source
  stage=$(cat "$BATS_FILE_TMPDIR/stage")
  release=6.1.192-virgl-gpu
}

@test "build: the stage holds vmlinuz, vmlinux, System.map, config, modules and the release" {
  [ -s "$stage/vmlinuz" ] && [ -s "$stage/vmlinux" ] && [ -s "$stage/System.map" ]
  run cat "$stage/kernel.release"
  assert_output "$release"
  grep -qx 'CONFIG_DRM_VIRTIO_GPU=y' "$stage/config"
  [ -f "$stage/modules/lib/modules/$release/modules.dep" ]
  [ -f "$stage/modules/lib/modules/$release/modules.builtin" ]
  [ ! -e "$stage/modules/lib/modules/$release/build" ]
  run file "$stage/vmlinuz"
  assert_output --partial "Linux kernel x86 boot executable bzImage, version $release"
}

@test "build: a second build is a cache hit in under 1 s and make does not run" {
  t0=$(date +%s%N)
  run kgb kernel build -p virgl -k "$LINUX_TARBALL"
  t1=$(date +%s%N)
  assert_success
  assert_output --partial "'virgl' is up to date ($release), make did not run"
  echo "cached build took $(((t1 - t0) / 1000000)) ms"
  [ $(((t1 - t0) / 1000000)) -lt 1000 ]
}

@test "install: Kata's names, modes and relative links" {
  dest=$BATS_TEST_TMPDIR/root
  run kgb kernel install -p virgl -k "$LINUX_TARBALL" --destdir "$dest"
  assert_success
  d=$dest/usr/share/kata-containers
  for f in vmlinuz vmlinux config System.map; do
    [ -f "$d/$f-6.1.192-2-virgl-gpu" ] || { echo "missing $f"; ls -l "$d"; return 1; }
    run stat -c %a "$d/$f-6.1.192-2-virgl-gpu"
    assert_output 644
  done
  run readlink "$d/vmlinuz-virgl-gpu.container"
  assert_output "vmlinuz-6.1.192-2-virgl-gpu"
  run readlink "$d/vmlinux-virgl-gpu.container"
  assert_output "vmlinux-6.1.192-2-virgl-gpu"
  cmp "$d/vmlinuz-virgl-gpu.container" "$stage/vmlinuz"
  run ls -A "$d"
  assert_equal "${#lines[@]}" 6
  # --prefix as kata-deploy lays it out
  run kgb kernel install -p virgl -k "$LINUX_TARBALL" --destdir "$dest" --prefix /opt/kata
  assert_success
  [ -L "$dest/opt/kata/share/kata-containers/vmlinuz-virgl-gpu.container" ]
}

@test "headers -H tar: an out-of-tree module builds against it with our vermagic" {
  run kgb kernel headers -p virgl -k "$LINUX_TARBALL" -H tar
  assert_success
  tarball=${lines[-1]}
  [[ $tarball == */linux-headers-$release.tar.gz ]]
  tar -C "$BATS_TEST_TMPDIR" -xzf "$tarball"
  cp -r "$FIXTURES/hello-module" "$BATS_TEST_TMPDIR/hello"
  make -C "$BATS_TEST_TMPDIR/linux-headers-$release" M="$BATS_TEST_TMPDIR/hello" modules \
    >"$BATS_TEST_TMPDIR/make.log" 2>&1 || { cat "$BATS_TEST_TMPDIR/make.log"; return 1; }
  run modinfo -F vermagic "$BATS_TEST_TMPDIR/hello/hello.ko"
  assert_output --regexp "^$release "
  # cached the second time
  run kgb kernel headers -p virgl -k "$LINUX_TARBALL" -H tar
  assert_output --partial "kernel headers: up to date"
}

@test "headers -H deb: linux-headers-<release> deb carries the suffix and builds a module" {
  run kgb kernel headers -p virgl -k "$LINUX_TARBALL" -H deb
  assert_success
  deb=${lines[-1]}
  hdr=$(kgb -q kernel headers -p virgl -k "$LINUX_TARBALL" -H deb | head -1)
  [[ $(basename "$hdr") == linux-headers-${release}_6.1.192-2_amd64.deb ]]
  dpkg-deb -x "$hdr" "$BATS_TEST_TMPDIR/deb"
  [ -L "$BATS_TEST_TMPDIR/deb/lib/modules/$release/build" ]
  cp -r "$FIXTURES/hello-module" "$BATS_TEST_TMPDIR/hello"
  make -C "$BATS_TEST_TMPDIR/deb/usr/src/linux-headers-$release" M="$BATS_TEST_TMPDIR/hello" modules \
    >"$BATS_TEST_TMPDIR/make.log" 2>&1 || { cat "$BATS_TEST_TMPDIR/make.log"; return 1; }
  run modinfo -F vermagic "$BATS_TEST_TMPDIR/hello/hello.ko"
  assert_output --regexp "^$release "
}

@test "headers -H rpm without rpmbuild says how to get it" {
  command -v rpmbuild >/dev/null && skip "rpmbuild is installed here"
  run kgb kernel headers -p virgl -k "$LINUX_TARBALL" -H rpm
  assert_failure 1
  assert_output --partial "-H rpm needs rpmbuild, which is not installed: apt-get install rpm"
}

@test "a changed fragment line rebuilds incrementally and says so; Ctrl-C leaves no stage" {
  printf '# timestamps in the guest log\nCONFIG_PRINTK_TIME=y\n' >"$BATS_TEST_TMPDIR/time.conf"
  # start the rebuild and interrupt it once make is compiling
  "$KGB" --workdir "$WORKDIR" kernel build -p virgl -k "$LINUX_TARBALL" \
    --fragment "$BATS_TEST_TMPDIR/time.conf" >/dev/null 2>"$BATS_TEST_TMPDIR/err" &
  pid=$!
  for _ in $(seq 300); do grep -q "building the virgl kernel" "$BATS_TEST_TMPDIR/err" && break; sleep 0.1; done
  sleep 2
  kill -INT "$pid"
  rc=0
  wait "$pid" || rc=$?
  assert_equal "$rc" 1
  run find "$WORKDIR/stages" -name '*.tmp-*'
  assert_output ""
  # the next run continues in the same O= directory and names the change
  out=$("$KGB" --json --workdir "$WORKDIR" kernel build -p virgl -k "$LINUX_TARBALL" \
    --fragment "$BATS_TEST_TMPDIR/time.conf" 2>/dev/null)
  run json 'j["cached"], "continuing an interrupted build" in j["why"], "CONFIG_PRINTK_TIME n -> y" in j["why"], j["objects"] < 300' <<<"$out"
  assert_output "False True True True"
  stage2=$(json 'j["stage"]' <<<"$out")
  grep -qx CONFIG_PRINTK_TIME=y "$stage2/config"
  # and the original profile is still a cache hit
  run kgb kernel build -p virgl -k "$LINUX_TARBALL"
  assert_output --partial "is up to date"
  # virgl's build directory back to virgl's config: later files copy it (the DKMS kernel)
  run kgb kernel build -p virgl -k "$LINUX_TARBALL" --force
  assert_success
  assert_output --partial "rebuild forced"
}

@test "verify: the built vmlinux and vmlinuz carry the profile's values; exit 3 for another profile" {
  run kgb kernel verify -p virgl "$stage/vmlinuz"
  assert_success
  assert_output --partial "all 4 required values present"
  run kgb kernel verify -p virgl "$stage/vmlinux"
  assert_success
  run kgb kernel verify -p intel-gvt-d "$stage/vmlinux"
  assert_failure 3
  assert_output --partial "CONFIG_DRM_I915 is n, but profile 'intel-gvt-d' requires y"
  run kgb kernel verify -p intel-gvt-d "$stage/vmlinuz"
  assert_failure 3
  # the embedded config, read from both forms, is the kernel's own extract-ikconfig's text
  src=$(ls -d "$WORKDIR"/sources/*/linux-source-*)
  for f in vmlinux vmlinuz; do
    kgb -q kernel verify -p virgl -o "$BATS_TEST_TMPDIR/config.$f" "$stage/$f"
    "$src/scripts/extract-ikconfig" "$stage/$f" >"$BATS_TEST_TMPDIR/ref.$f"
    cmp "$BATS_TEST_TMPDIR/ref.$f" "$BATS_TEST_TMPDIR/config.$f"
  done
}
