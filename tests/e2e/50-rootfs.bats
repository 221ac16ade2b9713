#!/usr/bin/env bats
# rootfs and image for real (issue 4's "done when"): the virgl root file system bootstrapped
# from the host's apt mirror and its ext4, erofs and initrd images; a cached rebuild; the
# DKMS end-to-end test (kernel + header deb, kernel-headers + dkms-module with Debian's
# v4l2loopback-dkms compiled in the chroot against our headers); the same images from a
# second work directory, byte for byte; and a step killed with SIGKILL leaving no mount.
# Needs root, the network to the host's apt mirror and /usr/src/linux-source-6.1.tar.xz.
# The virgl kernel and root come from 15-pipeline in the shared work directory (run alone,
# this file builds them); then about 6 minutes on a slow 2-core machine: 1 for the DKMS kernel
# from a copy of virgl's tree, 2 for its header deb and root, 1.5 for the image booting to
# systemd under QEMU (TCG), 1.5 for the second work directory.

setup_file() {
  load ../helpers
  need_linux_source
  [ "$(id -u)" -eq 0 ] || skip "rootfs build needs root (mount namespaces, chroot)"
  e2e_workdir
  local t0=$SECONDS
  "$KGB" --workdir "$WORKDIR" kernel build -p virgl -k "$LINUX_TARBALL" >/dev/null \
    2>"$BATS_FILE_TMPDIR/kernel.err" || { cat "$BATS_FILE_TMPDIR/kernel.err" >&3; return 1; }
  echo "# virgl kernel: $((SECONDS - t0)) s" >&3
  t0=$SECONDS
  "$KGB" --workdir "$WORKDIR" --json rootfs build -p virgl -k "$LINUX_TARBALL" \
    >"$BATS_FILE_TMPDIR/rootfs.json" 2>"$BATS_FILE_TMPDIR/rootfs.err" ||
    { cat "$BATS_FILE_TMPDIR/rootfs.err" >&3; return 1; }
  echo "# virgl rootfs: $((SECONDS - t0)) s" >&3
}

setup() {
  load ../helpers
  need_linux_source
  [ "$(id -u)" -eq 0 ] || skip "needs root"
  release=6.1.192-virgl-gpu
  root=$(json 'j["root"]' <"$BATS_FILE_TMPDIR/rootfs.json")
}

@test "rootfs: the virgl root boots the distribution's init, has our modules, Mesa's virgl driver" {
  # (built here, or by 15-pipeline's build in the shared work directory: cached then)
  run json 'j["release"], j["kata_agent"], j["recipes"]' <"$BATS_FILE_TMPDIR/rootfs.json"
  assert_output "$release False ['kernel-modules', 'mesa-virgl', 'kata-agent']"
  # without an agent: systemd is init, and the run says plainly this is not a complete guest
  run readlink "$root/sbin/init"
  assert_output /lib/systemd/systemd
  grep -q "not yet a complete Kata guest" "$BATS_FILE_TMPDIR/rootfs.err"
  [ -f "$root/lib/modules/$release/modules.dep" ]
  run ls "$root/lib/modules"
  assert_output "$release"
  [ -f "$root/usr/lib/x86_64-linux-gnu/dri/virtio_gpu_dri.so" ]
  [ -x "$root/usr/bin/glxinfo" ]
  # nothing of the build host or of the build is left in it
  [ ! -s "$root/etc/resolv.conf" ] && [ ! -s "$root/etc/machine-id" ]
  assert_equal "$(cat "$root/etc/hostname")" localhost
  [ ! -e "$root/usr/sbin/policy-rc.d" ] && [ ! -e "$root/var/log/dpkg.log" ]
  run find "$root/var/lib/apt/lists" "$root/var/cache/apt/archives" "$root/tmp" -name '*.deb' -o -name '*_Packages'
  assert_output ""
  # the report: size, file count, the ten largest directories
  run json 'j["files"] > 5000, len(j["largest_directories"]), j["largest_directories"][0]["path"]' \
    <"$BATS_FILE_TMPDIR/rootfs.json"
  assert_output "True 10 /usr"
}

@test "rootfs: the same profile again is a cache hit, nothing runs" {
  t0=$(date +%s%N)
  run kgb rootfs build -p virgl -k "$LINUX_TARBALL"
  t1=$(date +%s%N)
  assert_success
  assert_output --partial "rootfs: 'virgl' for $release is up to date"
  echo "# cached rootfs build: $(((t1 - t0) / 1000000)) ms" >&3
  [ $(((t1 - t0) / 1000000)) -lt 5000 ]
}

@test "image ext4: Kata's layout, a clean file system, every time the epoch" {
  run kgb --json image build -p virgl -k "$LINUX_TARBALL" --format ext4 -o "$BATS_FILE_TMPDIR/virgl.img"
  assert_success
  img=$BATS_FILE_TMPDIR/virgl.img
  size=$(stat -c %s "$img")
  [ $((size % (128 * 1024 * 1024))) -eq 0 ]
  run sfdisk --json "$img"
  run json 'j["partitiontable"]["label"], len(j["partitiontable"]["partitions"]), j["partitiontable"]["partitions"][0]["start"], j["partitiontable"]["partitions"][0]["type"]' <<<"$output"
  assert_output "dos 1 2048 83"
  run e2fsck -fn "$img?offset=1048576"
  assert_success
  run debugfs -R "cat /etc/hostname" "$img?offset=1048576"
  assert_output --partial localhost
  epoch=$(awk '/^epoch /{print $2}' "$(dirname "$root")/state")
  run debugfs -R "stat /usr/bin/glxinfo" "$img?offset=1048576"
  assert_output --partial "ctime: 0x$(printf %08x "$epoch")"
  assert_output --partial "atime: 0x$(printf %08x "$epoch")"
  # the init check passed: /sbin/init resolves inside the image to an executable file
  run debugfs -R "stat /lib/systemd/systemd" "$img?offset=1048576"
  assert_output --partial "Mode:  0755"
}

@test "image ext4 boots: our kernel mounts it as Kata does (root=/dev/vda1) and systemd starts" {
  need_qemu
  img=$BATS_FILE_TMPDIR/virgl.img
  [ -f "$img" ] || kgb -q image build -p virgl -k "$LINUX_TARBALL" --format ext4 -o "$img" >/dev/null
  cp "$img" "$BATS_TEST_TMPDIR/boot.img"
  kernel=$(json 'j["kernel"]' <"$BATS_FILE_TMPDIR/rootfs.json")/vmlinuz
  t0=$SECONDS
  qemu-system-x86_64 -machine q35 -m 1024 -display none -no-reboot -kernel "$kernel" \
    -drive file="$BATS_TEST_TMPDIR/boot.img",if=virtio,format=raw -monitor none \
    -append "console=ttyS0 root=/dev/vda1 rw panic=-1" -serial file:"$BATS_TEST_TMPDIR/serial.log" &
  qemu=$!
  for _ in $(seq 240); do
    grep -aq "Reached target.*Multi-User System" "$BATS_TEST_TMPDIR/serial.log" 2>/dev/null && break
    kill -0 "$qemu" 2>/dev/null || break
    sleep 1
  done
  kill "$qemu" 2>/dev/null || true
  wait "$qemu" || true
  echo "# ext4 image to systemd's multi-user.target under QEMU: $((SECONDS - t0)) s" >&3
  grep -aq "VFS: Mounted root (ext4 filesystem)" "$BATS_TEST_TMPDIR/serial.log"
  grep -aq "Welcome to .*Debian GNU/Linux 12" "$BATS_TEST_TMPDIR/serial.log"
  grep -aq "Reached target.*Multi-User System" "$BATS_TEST_TMPDIR/serial.log" ||
    { tail -30 "$BATS_TEST_TMPDIR/serial.log"; return 1; }
}

@test "image initrd and erofs: zstd and gzip cpio with /init, erofs in the same layout" {
  run kgb -q image build -p virgl -k "$LINUX_TARBALL" --format initrd
  assert_success
  initrd=${lines[-1]}
  run od -An -tx1 -N4 "$initrd"
  assert_output " 28 b5 2f fd"
  zstd -dc "$initrd" | cpio -it --quiet >"$BATS_TEST_TMPDIR/list"
  grep -qx init "$BATS_TEST_TMPDIR/list"
  grep -qx usr/lib/x86_64-linux-gnu/dri/virtio_gpu_dri.so "$BATS_TEST_TMPDIR/list"
  mkdir "$BATS_TEST_TMPDIR/x"
  (cd "$BATS_TEST_TMPDIR/x" && zstd -dc "$initrd" | cpio -id --quiet init sbin/init 2>/dev/null)
  assert_equal "$(readlink "$BATS_TEST_TMPDIR/x/init")" /sbin/init
  run kgb -q image build -p virgl -k "$LINUX_TARBALL" --format initrd --compress gzip
  assert_success
  # gzip without a timestamp: bytes 4-7 of the header are zero
  run od -An -tx1 -N8 "${lines[-1]}"
  assert_output " 1f 8b 08 00 00 00 00 00"
  run kgb -q image build -p virgl -k "$LINUX_TARBALL" --format erofs
  assert_success
  erofs=${lines[-1]}
  # the erofs superblock (magic e0f5e1e2) at 1024 bytes into the partition at 1 MiB
  run od -An -tx1 -j $((1048576 + 1024)) -N4 "$erofs"
  assert_output " e2 e1 f5 e0"
}

@test "DKMS: v4l2loopback-dkms compiled in the chroot against our header deb, vermagic = our release" {
  # the virgl kernel with the V4L2 core as a module, for v4l2loopback to link against
  printf 'CONFIG_MEDIA_SUPPORT=m\nCONFIG_VIDEO_DEV=m\n' >"$BATS_FILE_TMPDIR/media.conf"
  cat >"$BATS_FILE_TMPDIR/virgl-dkms.cfg" <<'EOF'
@include "virgl.cfg"
override = {
  name = "virgl-dkms";
  rootfs = { recipes = [ "kernel-headers", "kernel-modules", "dkms-module", "kata-agent" ]; };
};
EOF
  # its kernel starts from a copy of virgl's O= directory: kbuild's records say no object
  # of virgl's uses a symbol the media fragment changes, so only the media modules compile
  t0=$SECONDS
  kgb --json kernel build -p "$BATS_FILE_TMPDIR/virgl-dkms.cfg" -k "$LINUX_TARBALL" \
    --fragment "$BATS_FILE_TMPDIR/media.conf" >"$BATS_TEST_TMPDIR/kernel.json"
  echo "# DKMS kernel from a copy of virgl's tree: $((SECONDS - t0)) s" >&3
  run json 'j["why"]' <"$BATS_TEST_TMPDIR/kernel.json"
  assert_output --regexp "^first build of this profile, from a copy of virgl's: 0 of [0-9]+ objects"
  objects=$(json 'j["objects"]' <"$BATS_TEST_TMPDIR/kernel.json")
  [ "$objects" -lt 200 ] || { echo "recompiled $objects objects"; return 1; }
  t0=$SECONDS
  kgb --json rootfs build -p "$BATS_FILE_TMPDIR/virgl-dkms.cfg" -k "$LINUX_TARBALL" \
    --fragment "$BATS_FILE_TMPDIR/media.conf" --set dkms.package=v4l2loopback-dkms \
    >"$BATS_TEST_TMPDIR/dkms.json" 2>"$BATS_TEST_TMPDIR/dkms.err" || { cat "$BATS_TEST_TMPDIR/dkms.err"; return 1; }
  echo "# DKMS kernel, header deb and rootfs: $((SECONDS - t0)) s" >&3
  droot=$(json 'j["root"]' <"$BATS_TEST_TMPDIR/dkms.json")
  run json 'j["recipes"]' <"$BATS_TEST_TMPDIR/dkms.json"
  assert_output "['kernel-headers', 'kernel-modules', 'dkms-module', 'kata-agent']"
  # the header deb of this build is installed: /lib/modules/<release>/build leads to it
  run readlink "$droot/lib/modules/$release/build"
  assert_output "/usr/src/linux-headers-$release"
  [ -f "$droot/usr/src/linux-headers-$release/Makefile" ]
  ko=$(find "$droot/lib/modules/$release" -name 'v4l2loopback.ko*')
  [ -n "$ko" ]
  run modinfo -F vermagic "$ko"
  assert_output --regexp "^$release "
  # its dependency on the kernel's videodev module is in modules.dep, and no other release's
  # module directory (the build host's) was made
  grep -q "v4l2loopback.ko: kernel/drivers/media/v4l2-core/videodev.ko" "$droot/lib/modules/$release/modules.dep"
  run ls "$droot/lib/modules"
  assert_output "$release"
  kstage=$(json 'j["kernel"]' <"$BATS_TEST_TMPDIR/dkms.json")
  run kgb rootfs check --root "$droot" --release "$release" --system-map "$kstage/System.map"
  assert_success
  # kernel verify --modules: the kernel's and DKMS's modules carry this release, not another
  run kgb kernel verify --modules "$droot/lib/modules/$release" --release "$release"
  assert_success
  run kgb kernel verify --modules "$droot/lib/modules/$release" --release "$release-not"
  assert_failure 3
  assert_output --partial "v4l2loopback.ko"
}

@test "DKMS image as a guest's root disk: its own modprobe loads v4l2loopback and videodev" {
  [ -f "$BATS_FILE_TMPDIR/virgl-dkms.cfg" ] || skip "needs the DKMS test's profile"
  need_qemu
  set -- -p "$BATS_FILE_TMPDIR/virgl-dkms.cfg" -k "$LINUX_TARBALL" --fragment "$BATS_FILE_TMPDIR/media.conf"
  img=$(kgb -q image build "$@" --set dkms.package=v4l2loopback-dkms --format ext4)
  kstage=$(kgb -q kernel build "$@")
  run kgb_split boot-test -p "$BATS_FILE_TMPDIR/virgl-dkms.cfg" --kernel "$kstage/vmlinuz" \
    --image "$img" --accel tcg
  cat "$BATS_TEST_TMPDIR/stderr"
  assert_success
  assert_line --regexp '^  rootfs +pass +ext4 on /dev/vda1 mounted read-only: Debian GNU/Linux 12'
  assert_line --regexp '^  modules +pass +[0-9]+ modules of the image loaded with its modprobe: (.*, )?videodev(, .*)?$'
  assert_line --regexp '^  modules +pass +.*v4l2loopback'
}

@test "kata-agent: a given agent is /sbin/init, or a systemd service with Kata's target" {
  # a stand-in agent: any executable, given by path and SHA-256 like a real one
  cp /bin/true "$BATS_FILE_TMPDIR/kata-agent"
  sum=$(sha256sum <"$BATS_FILE_TMPDIR/kata-agent" | cut -d' ' -f1)
  printf '@include "virgl.cfg"\noverride = {\n  name = "agent";\n  rootfs = { recipes = [ "kata-agent" ]; };\n};\n' \
    >"$BATS_FILE_TMPDIR/agent.cfg"
  kgb --json rootfs build -p "$BATS_FILE_TMPDIR/agent.cfg" -k "$LINUX_TARBALL" \
    --set kata.agent.url="$BATS_FILE_TMPDIR/kata-agent" --set kata.agent.sha256="$sum" \
    >"$BATS_TEST_TMPDIR/init.json" 2>"$BATS_TEST_TMPDIR/err" || { cat "$BATS_TEST_TMPDIR/err"; return 1; }
  ! grep -q "not yet a complete Kata guest" "$BATS_TEST_TMPDIR/err"
  run json 'j["kata_agent"]' <"$BATS_TEST_TMPDIR/init.json"
  assert_output True
  aroot=$(json 'j["root"]' <"$BATS_TEST_TMPDIR/init.json")
  run readlink "$aroot/sbin/init"
  assert_output /usr/bin/kata-agent
  cmp "$aroot/usr/bin/kata-agent" /bin/true
  run stat -c %a "$aroot/usr/bin/kata-agent"
  assert_output 755
  # as a service: systemd is init and boots into kata-containers.target
  kgb --json rootfs build -p "$BATS_FILE_TMPDIR/agent.cfg" -k "$LINUX_TARBALL" \
    --set kata.agent.url="$BATS_FILE_TMPDIR/kata-agent" --set kata.agent.sha256="$sum" \
    --set kata.agent.mode=service >"$BATS_TEST_TMPDIR/svc.json" 2>"$BATS_TEST_TMPDIR/err" ||
    { cat "$BATS_TEST_TMPDIR/err"; return 1; }
  sroot=$(json 'j["root"]' <"$BATS_TEST_TMPDIR/svc.json")
  run readlink "$sroot/sbin/init"
  assert_output /lib/systemd/systemd
  run readlink "$sroot/etc/systemd/system/default.target"
  assert_output /usr/lib/systemd/system/kata-containers.target
  grep -qx "ExecStart=/usr/bin/kata-agent" "$sroot/usr/lib/systemd/system/kata-agent.service"
  # a wrong checksum is refused
  run kgb rootfs build -p "$BATS_FILE_TMPDIR/agent.cfg" -k "$LINUX_TARBALL" \
    --set kata.agent.url="$BATS_FILE_TMPDIR/kata-agent" --set kata.agent.sha256="${sum//?/0}"
  assert_failure 1
  assert_output --partial "recipe 'kata-agent' input 'agent'"
}

@test "reproducible: another work directory bootstraps and builds again, the images are identical" {
  w2=$BATS_FILE_TMPDIR/work2
  # the kernel is an input here, not what is tested: share its stages (hard links)
  mkdir -p "$w2/stages"
  cp -al "$WORKDIR/sources" "$w2/"
  cp -al "$WORKDIR/stages/config" "$WORKDIR/stages/kernel" "$w2/stages/"
  t0=$SECONDS
  for fmt in ext4 initrd; do
    a=$(kgb -q image build -p virgl -k "$LINUX_TARBALL" --format $fmt 2>/dev/null)
    b=$("$KGB" -q --workdir "$w2" image build -p virgl -k "$LINUX_TARBALL" --format $fmt 2>/dev/null)
    [ "$a" != "$b" ]
    run sha256sum "$a" "$b"
    echo "$output"
    assert_equal "$(sha256sum <"$a")" "$(sha256sum <"$b")"
  done
  echo "# second work directory (bootstrap, recipes, two images): $((SECONDS - t0)) s" >&3
  # the second work directory bootstrapped its own base
  run ls "$w2/stages/bootstrap"
  assert_output --partial latest-
}

@test "SIGKILL during a step: the step dies, no mount of the root is left, nothing is stored" {
  local data=$FIXTURES/rootfs/datadir
  KGB_DATADIR=$data "$KGB" --workdir "$WORKDIR" rootfs build -p sleeper -k "$LINUX_TARBALL" \
    >/dev/null 2>"$BATS_TEST_TMPDIR/err" &
  pid=$!
  sleeping=
  for _ in $(seq 1800); do
    sleeping=$(pgrep -f -x 'sleep 3600' | head -1)
    [ -n "$sleeping" ] && break
    sleep 0.1
  done
  [ -n "$sleeping" ] || { cat "$BATS_TEST_TMPDIR/err"; return 1; }
  # while the step runs, its root has /proc, /sys, /dev ... mounted, seen only in its
  # namespace (the chrooted step sees them as its own /proc ...)
  grep -q " /proc " "/proc/$sleeping/mountinfo"
  grep -q " /dev/pts " "/proc/$sleeping/mountinfo"
  run grep -ls "$WORKDIR/stages/rootfs/.*/rootfs/proc " /proc/[0-9]*/mountinfo
  [ -n "$output" ]
  ! grep -q "$WORKDIR/stages/rootfs" /proc/self/mountinfo
  kill -KILL "$pid"
  wait "$pid" || true
  for _ in $(seq 100); do kill -0 "$sleeping" 2>/dev/null || break; sleep 0.1; done
  ! kill -0 "$sleeping" 2>/dev/null
  run grep -ls "$WORKDIR/stages/rootfs" /proc/[0-9]*/mountinfo
  assert_output ""
  # only a temporary directory was written, never a stage under its final name
  run find "$WORKDIR/stages/rootfs" -mindepth 1 -maxdepth 1 -name '.*tmp-*'
  [ -n "$output" ]
  run grep -rl '"profile": "sleeper"' "$WORKDIR/stages/rootfs" --include manifest.json
  assert_output ""
}
