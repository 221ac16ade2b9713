#!/usr/bin/env bats
# build: the whole pipeline for virgl for real, the first thing of the e2e run to compile the
# virgl kernel (the files after it share the work directory and find it built); a second run
# is fully cached; a run in another work directory, killed twice and run again, ends with the
# same installed tree byte for byte; --dry-run runs nothing; then boot-test boots the built
# ext4 and erofs images as the guest's root disk and checks the result from inside.

setup_file() {
  load ../helpers
  need_linux_source
  e2e_workdir
  # CI=true: the plain progress lines of a log, one per stage step
  CI=true "$KGB" --workdir "$WORKDIR" build -p virgl >"$BATS_FILE_TMPDIR/dest" 2>"$BATS_FILE_TMPDIR/build.err" ||
    { cat "$BATS_FILE_TMPDIR/build.err" >&3; return 1; }
}

setup() {
  load ../helpers
  need_linux_source
  dest=$(cat "$BATS_FILE_TMPDIR/dest")
}

tree_sums() { (cd "$1" && find . -type f -o -type l | sort | while read -r f; do
  if [ -L "$f" ]; then echo "$f -> $(readlink "$f")"; else sha256sum "$f"; fi; done); }

@test "build: the table names every stage and the tree holds kernel, image and drop-in" {
  run cat "$BATS_FILE_TMPDIR/build.err"
  for s in config kernel rootfs image kata install; do assert_line --regexp "^$s +(ran|cached) "; done
  d=$dest/usr/share/kata-containers
  [ -L "$d/vmlinuz-virgl-gpu.container" ]
  [ -f "$d/vmlinuz-6.1.192-2-virgl-gpu" ]
  [ -f "$d/kata-containers-virgl.img" ]
  [ -f "$dest/etc/kata-containers/config.d/50-kata-gpu-virgl.toml" ]
  python3 -c 'import sys, tomllib; tomllib.load(open(sys.argv[1], "rb"))' \
    "$dest/etc/kata-containers/config.d/50-kata-gpu-virgl.toml"
}

@test "build: progress in a log is one plain line per stage step, the bootstrap's beside the kernel's" {
  run cat "$BATS_FILE_TMPDIR/build.err"
  assert_line --regexp '^kernel: compiling( .*)?: [0-9]+ of about [0-9]+ objects \([0-9]+s\)$'
  assert_line --regexp '^rootfs: '
  # no terminal: no cursor movement in the log
  ! grep -q $'\033' "$BATS_FILE_TMPDIR/build.err"
}

@test "build: a second run is fully cached and takes under 2 s" {
  t0=$(date +%s%N)
  out=$("$KGB" --json --workdir "$WORKDIR" build -p virgl 2>/dev/null)
  t1=$(date +%s%N)
  run json '[s["result"] for s in j["stages"][:4]]' <<<"$out"
  assert_output "['cached', 'cached', 'cached', 'cached']"
  echo "cached pipeline: $(((t1 - t0) / 1000000)) ms"
  [ $(((t1 - t0) / 1000000)) -lt 2000 ]
}

@test "build: each stage runs once: one config resolution, one bootstrap lookup" {
  # the exec helper logs every command at -v: the config stage asks gcc for its version once
  # and the bootstrap stage its tool once (before stages took their inputs: three and two)
  run "$KGB" -v --workdir "$WORKDIR" build -p virgl
  assert_success
  n_gcc=$(grep -c 'running: gcc --version' <<<"$output")
  n_boot=$(grep -cE 'running: (mmdebstrap|debootstrap) --version' <<<"$output")
  echo "gcc --version: $n_gcc, bootstrapper --version: $n_boot"
  [ "$n_gcc" -eq 1 ]
  [ "$n_boot" -eq 1 ]
}

@test "build --dry-run prints the plan and runs nothing" {
  w=$BATS_TEST_TMPDIR/dry
  run "$KGB" --workdir "$w" --dry-run build -p virgl
  assert_success
  assert_output --partial "would run"
  [ ! -d "$w/stages/kernel" ] && [ ! -d "$w/stages/rootfs" ] && [ ! -d "$w/out" ]
  # on the built work dir: the config's and the kernel's keys, both found, nothing written
  touch "$BATS_TEST_TMPDIR/mark"
  run kgb_split --json --dry-run build -p virgl
  assert_success
  run json '[(s["stage"], s["result"], len(s["key"] or "")) for s in j["stages"][:3]]' <<<"$output"
  assert_output "[('config', 'cached', 64), ('kernel', 'cached', 64), ('rootfs', 'would run', 0)]"
  run find "$WORKDIR" -newer "$BATS_TEST_TMPDIR/mark"
  assert_output ""
}

@test "build killed twice, run again elsewhere: the same tree, byte for byte" {
  # another work directory with the kernel's stages shared (hard links: a kernel compile is
  # the one thing CI cannot afford twice), killed while the bootstrap runs and again once
  # the root file system's recipes run, then run to the end from what the stages left. The
  # tree it installs must be the uninterrupted run's: kernel, image and drop-in.
  before=$(tree_sums "$dest")
  w=$BATS_TEST_TMPDIR/w2
  mkdir -p "$w/stages"
  cp -al "$WORKDIR/sources" "$w/"
  cp -al "$WORKDIR/stages/config" "$WORKDIR/stages/kernel" "$w/stages/"
  "$KGB" --workdir "$w" build -p virgl >/dev/null 2>"$BATS_TEST_TMPDIR/first.err" &
  pid=$!
  sleep 3
  kill -KILL "$pid"
  wait "$pid" || true
  "$KGB" --workdir "$w" build -p virgl >/dev/null 2>"$BATS_TEST_TMPDIR/second.err" &
  pid=$!
  for _ in $(seq 1200); do
    [ -n "$(find "$w/stages/rootfs" -maxdepth 1 -name '.*.tmp-*' -print -quit 2>/dev/null)" ] && break
    sleep 0.5
  done
  [ -n "$(find "$w/stages/rootfs" -maxdepth 1 -name '.*.tmp-*' -print -quit)" ] ||
    { cat "$BATS_TEST_TMPDIR/second.err"; return 1; }
  sleep 5
  kill -KILL "$pid"
  wait "$pid" || true
  run "$KGB" --workdir "$w" build -p virgl
  assert_success
  after=$(tree_sums "$w/out/virgl")
  diff <(echo "$before") <(echo "$after")
  # no path of the work directory in the kernel (ccache's relative source paths put one into
  # __FILE__ once; the kernel's reproducibility without ccache is bench/kernel's)
  run grep -c -a -E 'sources/[0-9a-f]{64}/' "$dest/usr/share/kata-containers/vmlinux-6.1.192-2-virgl-gpu"
  assert_output 0
  # and nothing half-written is left under a temporary name
  run find "$w/stages" "$w/sources" -maxdepth 2 -name '*.tmp-*'
  assert_output ""
  rm -rf "$w"
}

@test "boot-test: the virgl guest with the built image as its root disk passes its checks" {
  run kgb_split boot-test -p virgl --accel tcg
  cat "$BATS_TEST_TMPDIR/stderr"
  assert_success
  assert_line --regexp "^  root: ext4 image $WORKDIR/stages/.* as /dev/vda1, read-only$"
  assert_line --regexp "^  uname +pass +6.1.192-virgl-gpu$"
  assert_line --regexp '^  rootfs +pass +ext4 on /dev/vda1 mounted read-only: Debian GNU/Linux 12 \(bookworm\); init /sbin/init -> '
  assert_line --regexp "^  modules +skipped +the image's /lib/modules/6.1.192-virgl-gpu has no loadable modules"
  assert_line --regexp '^  virtio-gpu +pass'
  assert_line --regexp '^  dri-nodes +pass'
  run cat "$BATS_TEST_TMPDIR/stderr"
  assert_output --partial "boot-test: the image of the last 'build -p virgl': $WORKDIR/stages/"
  # --no-image: the kernel and the checks' initrd only
  run kgb_split boot-test -p virgl --accel tcg --no-image
  assert_success
  assert_line "  root: the initrd only (no image)"
}

@test "build --format erofs, then boot-test: the erofs image is the root disk" {
  run kgb build -p virgl --format erofs
  assert_success
  run kgb_split --json boot-test -p virgl --accel tcg
  assert_success
  run json 'j["root"]' <<<"$output"
  assert_output --regexp '^erofs image .* as /dev/vda1, read-only$'
  run kgb_split boot-test -p virgl --accel tcg
  assert_line --regexp '^  rootfs +pass +erofs on /dev/vda1 mounted read-only: Debian GNU/Linux 12'
  # back to the profile's format for whatever runs next
  kgb -q build -p virgl >/dev/null 2>&1
}
