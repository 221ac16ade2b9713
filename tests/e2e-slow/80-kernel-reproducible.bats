#!/usr/bin/env bats
# The slow tier (ctest label e2e-slow, `KGB_TEST_LABEL=e2e-slow scripts/test`; not in CI,
# whose 90 minutes on a slow machine hold two cold kernel compiles and no more): the virgl
# kernel built again in another work directory without ccache must be byte for byte the
# first build (made with ccache when it is installed). ccache hits would hand back the first
# build's objects and hide a difference; one was there: ccache's relative source paths in
# __FILE__ (CI still checks that no work-directory path is in vmlinux).

setup_file() {
  load ../helpers
  need_linux_source
  e2e_workdir
  "$KGB" --workdir "$WORKDIR" kernel build -p virgl -k "$LINUX_TARBALL" >"$BATS_FILE_TMPDIR/stage" \
    2>"$BATS_FILE_TMPDIR/build.err" || { cat "$BATS_FILE_TMPDIR/build.err" >&3; return 1; }
}

setup() {
  load ../helpers
  stage=$(cat "$BATS_FILE_TMPDIR/stage")
}

@test "reproducible: a clean build in another work directory gives identical vmlinuz and vmlinux" {
  # a second work directory means a second extraction and O= directory, and without ccache
  # nothing is shared: every object is compiled again (ccache hits would return the first
  # build's objects and hide a difference; one was there: ccache's relative source paths
  # in __FILE__)
  other=$BATS_FILE_TMPDIR/work-second
  stage2=$("$KGB" -q --workdir "$other" kernel build -p virgl -k "$LINUX_TARBALL" --no-ccache)
  # no path of the work directory in the kernel (the first build used ccache when installed)
  run grep -c -a -E 'sources/[0-9a-f]{64}/' "$stage/vmlinux"
  assert_output 0
  [ "$stage2" != "$stage" ]
  run sha256sum "$stage/vmlinuz" "$stage2/vmlinuz" "$stage/vmlinux" "$stage2/vmlinux"
  echo "$output"
  [ "$(sha256sum <"$stage/vmlinuz")" = "$(sha256sum <"$stage2/vmlinuz")" ]
  [ "$(sha256sum <"$stage/vmlinux")" = "$(sha256sum <"$stage2/vmlinux")" ]
  rm -rf "$other"
}
