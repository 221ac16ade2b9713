#!/usr/bin/env bats
# The command line itself: help, version, usage errors and their exit codes.

setup() {
  load ../helpers
  WORKDIR=$BATS_TEST_TMPDIR/work
}

@test "--help lists the commands and the exit codes" {
  run kgb --help
  assert_success
  assert_output --partial "usage: kata-gpu-builder"
  assert_output --partial "  kernel "
  assert_output --partial "  profiles "
  assert_output --partial "3 a verification found a mismatch"
}

@test "--version prints the version" {
  run kgb --version
  assert_success
  assert_output --regexp '^kata-gpu-builder [0-9]+\.[0-9]+\.[0-9]+$'
}

@test "no command prints the usage and exits 2" {
  run kgb
  assert_failure 2
  assert_output --partial "usage: kata-gpu-builder"
}

@test "an unknown command exits 2 and suggests the closest one" {
  run kgb profils
  assert_failure 2
  assert_output --partial "'profils' is not a command (did you mean 'profiles'?)"
  run kgb kernal config
  assert_failure 2
  assert_output --partial "did you mean 'kernel'?"
}

@test "an unknown verb exits 2 and suggests the closest one" {
  run kgb kernel confg -p virgl
  assert_failure 2
  assert_output --partial "'kernel confg' is not a command (did you mean 'kernel config'?)"
}

@test "an unknown option exits 2 and suggests the closest one" {
  run kgb --jsn profiles
  assert_failure 2
  assert_output --partial "unknown option '--jsn' (did you mean '--json'?)"
  run kgb kernel config -p virgl --fragmnt x.conf
  assert_failure 2
  assert_output --partial "(did you mean '--fragment'?)"
}

@test "help COMMAND and COMMAND --help show the same help with an example" {
  run kgb help kernel
  assert_success
  assert_output --partial "usage: kata-gpu-builder kernel config"
  assert_output --partial "example"
  help_text=$output
  run kgb kernel config --help
  assert_success
  assert_equal "$output" "$help_text"
  run kgb help nosuch
  assert_failure 2
}

@test "every command's help has an example" {
  for c in profiles profile kernel help; do
    run kgb help "$c"
    assert_success
    assert_output --partial "example"
  done
}

@test "kernel config -g takes a known vendor" {
  run kgb kernel setup -g amd
  assert_failure 2
  assert_output --partial "-g takes nvidia, intel or virgl"
}

@test "--jobs must be a number" {
  run kgb --jobs lots profiles
  assert_failure 2
  assert_output --partial "--jobs takes a number"
}

@test "a second run on a busy work directory waits, or fails with --no-wait" {
  mkdir -p "$WORKDIR"
  # hold the lock the way a running build does: long enough that the first run below, slow
  # under ASan on a loaded machine, is over before the holder lets go
  flock "$WORKDIR/lock" sleep 5 &
  holder=$!
  sleep 0.3
  run kgb --no-wait kernel config -p virgl --fragment /nonexistent.conf
  assert_failure 1
  assert_output --partial "another run is using the work directory"
  t0=$(date +%s%N)
  run kgb kernel config -p virgl --fragment /nonexistent.conf
  t1=$(date +%s%N)
  assert_failure 1
  assert_output --partial "waiting for another run to finish with the work directory"
  assert_output --partial "nonexistent.conf: cannot read fragment"
  [ $(((t1 - t0) / 1000000)) -ge 1000 ]
  wait "$holder"
}

@test "read-only commands do not take the work directory lock" {
  mkdir -p "$WORKDIR"
  flock "$WORKDIR/lock" sleep 2 &
  holder=$!
  sleep 0.3
  run kgb --no-wait profiles
  assert_success
  wait "$holder"
}

@test "a run that got the lock removes what a killed run left under temporary names" {
  mkdir -p "$WORKDIR/stages/kernel/.0123456789abcdef.tmp-Ab12Cd/arch" "$WORKDIR/stages/kernel/feed" \
    "$WORKDIR/sources/4d41.tmp-Xy12Zz" "$WORKDIR/builds" "$WORKDIR/obj/4d41-x86_64/virgl/kernel" \
    "$WORKDIR/obj/4d41-x86_64/virgl-media.tmp-seed/kernel"
  touch "$WORKDIR/builds/virgl.tmp.Qw12Er" "$WORKDIR/stages/kernel/feed/manifest.json"
  # --dry-run runs nothing, removes nothing
  run kgb --dry-run build -p /nonexistent.cfg
  [ -d "$WORKDIR/stages/kernel/.0123456789abcdef.tmp-Ab12Cd" ]
  run kgb build -p /nonexistent.cfg
  assert_failure
  assert_output --partial "removed 4 unfinished results of an interrupted run from '$WORKDIR'"
  [ ! -e "$WORKDIR/stages/kernel/.0123456789abcdef.tmp-Ab12Cd" ]
  [ ! -e "$WORKDIR/sources/4d41.tmp-Xy12Zz" ] && [ ! -e "$WORKDIR/builds/virgl.tmp.Qw12Er" ]
  # a build directory half copied from a sibling goes; build directories themselves stay
  [ ! -e "$WORKDIR/obj/4d41-x86_64/virgl-media.tmp-seed" ]
  [ -d "$WORKDIR/obj/4d41-x86_64/virgl/kernel" ]
  # finished results stay
  [ -f "$WORKDIR/stages/kernel/feed/manifest.json" ]
}
