#!/usr/bin/env bats
# oci-devices: OCI linux.devices entries read with stat() from device nodes (seed 003).

setup() {
  load ../helpers
  WORKDIR=$BATS_TEST_TMPDIR/work
}

@test "/dev/null: a character device, major 1, minor 3, its mode and owner" {
  run kgb oci-devices /dev/null
  assert_success
  run json '[(d["path"], d["type"], d["major"], d["minor"], d["fileMode"], d["uid"], d["gid"]) for d in j]' <<<"$output"
  assert_output "[('/dev/null', 'c', 1, 3, $((8#$(stat -c %a /dev/null))), $(stat -c %u /dev/null), $(stat -c %g /dev/null))]"
}

@test "a render node made with mknod: seed 003's renderD128 entry" {
  [ "$(id -u)" = 0 ] || skip "mknod needs root"
  mknod "$BATS_TEST_TMPDIR/renderD128" c 226 128
  chmod 0660 "$BATS_TEST_TMPDIR/renderD128"
  chown 0:44 "$BATS_TEST_TMPDIR/renderD128"
  mknod "$BATS_TEST_TMPDIR/blk" b 7 0
  run kgb oci-devices "$BATS_TEST_TMPDIR/renderD128" "$BATS_TEST_TMPDIR/blk"
  assert_success
  run json 'j[0]["type"], j[0]["major"], j[0]["minor"], j[0]["fileMode"], j[0]["uid"], j[0]["gid"], j[1]["type"], j[1]["major"]' <<<"$output"
  assert_output "c 226 128 432 0 44 b 7"
  # the same with --json: the output is JSON either way
  run kgb --json oci-devices "$BATS_TEST_TMPDIR/renderD128"
  assert_success
  run json 'j[0]["path"].endswith("/renderD128")' <<<"$output"
  assert_output "True"
}

@test "a path that is not a device node is an error, and nothing goes to stdout" {
  touch "$BATS_TEST_TMPDIR/file"
  run kgb_split oci-devices /dev/null "$BATS_TEST_TMPDIR/file"
  assert_failure 1
  assert_output ""
  run cat "$BATS_TEST_TMPDIR/stderr"
  assert_output --partial "'$BATS_TEST_TMPDIR/file' is not a device node (it is a regular file)"
  run kgb oci-devices "$BATS_TEST_TMPDIR"
  assert_failure 1
  assert_output --partial "(it is a directory)"
  run kgb oci-devices "$BATS_TEST_TMPDIR/missing"
  assert_failure 1
  assert_output --partial "cannot stat '$BATS_TEST_TMPDIR/missing'"
  run kgb oci-devices
  assert_failure 2
}
