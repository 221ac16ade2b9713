#!/usr/bin/env bats
# build: the whole pipeline for virgl for real; a second run is fully cached; a run killed
# in the middle and run again ends with the same installed tree; --dry-run runs nothing;
# then boot-test checks the result from inside the guest.

setup_file() {
  load ../helpers
  [ -f "$LINUX_TARBALL" ] || skip "no $LINUX_TARBALL (apt-get install linux-source-6.1)"
  export WORKDIR=$BATS_FILE_TMPDIR/work
  "$KGB" --workdir "$WORKDIR" build -p virgl >"$BATS_FILE_TMPDIR/dest" 2>"$BATS_FILE_TMPDIR/build.err" ||
    { cat "$BATS_FILE_TMPDIR/build.err" >&3; return 1; }
}

setup() {
  load ../helpers
  [ -f "$LINUX_TARBALL" ] || skip "no $LINUX_TARBALL"
  dest=$(cat "$BATS_FILE_TMPDIR/dest")
}

tree_sums() { (cd "$1" && find . -type f -o -type l | sort | while read -r f; do
  if [ -L "$f" ]; then echo "$f -> $(readlink "$f")"; else sha256sum "$f"; fi; done); }

@test "build: the table names every stage and the tree holds kernel, image and drop-in" {
  run cat "$BATS_FILE_TMPDIR/build.err"
  for s in config kernel rootfs image kata install; do assert_line --regexp "^$s +(ran|cached) "; done
  d=$dest/usr/share/kata-containers
  [ -L "$d/vmlinuz-virgl-gpu.container" ]
  [ -f "$d/vmlinuz-6.1.192-1-virgl-gpu" ]
  [ -f "$d/kata-containers-virgl.img" ]
  [ -f "$dest/etc/kata-containers/config.d/50-kata-gpu-virgl.toml" ]
  python3 -c 'import sys, tomllib; tomllib.load(open(sys.argv[1], "rb"))' \
    "$dest/etc/kata-containers/config.d/50-kata-gpu-virgl.toml"
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

@test "build --dry-run prints the plan and runs nothing" {
  w=$BATS_TEST_TMPDIR/dry
  run "$KGB" --workdir "$w" --dry-run build -p virgl
  assert_success
  assert_output --partial "would run"
  [ ! -d "$w/stages/kernel" ] && [ ! -d "$w/stages/rootfs" ] && [ ! -d "$w/out" ]
}

@test "build killed in the middle, run again, ends with the same tree as an uninterrupted run" {
  before=$(tree_sums "$dest")
  # another work directory (a cold run): killed while the source is extracted, then while
  # the kernel compiles, then run to the end from what the stages left
  w=$BATS_TEST_TMPDIR/w2
  for at in 3 60; do
    "$KGB" --workdir "$w" build -p virgl >/dev/null 2>&1 &
    pid=$!
    sleep "$at"
    kill -KILL "$pid"
    wait "$pid" || true
  done
  run "$KGB" --workdir "$w" build -p virgl
  assert_success
  after=$(tree_sums "$w/out/virgl")
  assert_equal "$after" "$before"
  rm -rf "$w"
}

@test "boot-test: the virgl guest passes its checks" {
  run kgb boot-test -p virgl --accel tcg
  assert_success
  assert_output --regexp "uname +pass +6.1.192-virgl-gpu"
  assert_output --regexp "virtio-gpu +pass"
  assert_output --regexp "dri-nodes +pass"
}
