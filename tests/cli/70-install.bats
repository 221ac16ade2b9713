#!/usr/bin/env bats
# cmake --install and cpack: the binary, the guest check program, the profiles, fragments and
# recipes, the man page and the bash completion land where the binary looks for them, and the
# .deb that cpack makes holds the same tree with the libraries it links against as Depends.

setup() {
  load ../helpers
  [ -n "${KGB_BUILDDIR:-}" ] || skip "KGB_BUILDDIR names the build directory (ctest sets it)"
}

@test "cmake --install: a complete tree, and the installed binary works from its installed data" {
  prefix=$BATS_TEST_TMPDIR/inst
  cmake --install "$KGB_BUILDDIR" --prefix "$prefix" >/dev/null
  [ -x "$prefix/bin/kata-gpu-builder" ]
  [ -x "$prefix/libexec/kata-gpu-builder/kgb-guest-check" ]
  run file "$prefix/libexec/kata-gpu-builder/kgb-guest-check"
  assert_output --partial "statically linked"
  for p in virgl nvidia-gpu nvidia-vgpu nvidia-vgpu-mig intel-gvt-d intel-gvt-g; do
    [ -f "$prefix/share/kata-gpu-builder/profiles/$p.cfg" ]
  done
  [ -f "$prefix/share/kata-gpu-builder/kconfig-fragments/gpu/nvidia.conf" ]
  [ -f "$prefix/share/kata-gpu-builder/recipes/kernel-modules.recipe" ]
  bash -n "$prefix/share/bash-completion/completions/kata-gpu-builder"
  if command -v scdoc >/dev/null; then
    grep -q 'boot-test' "$prefix/share/man/man1/kata-gpu-builder.1"
  fi
  # the installed data alone is enough: every profile loads with its fragments and recipes
  export KGB_DATADIR=$prefix/share/kata-gpu-builder
  run "$prefix/bin/kata-gpu-builder" --workdir "$BATS_TEST_TMPDIR/w" profiles
  assert_success
  [ "$(grep -c -E '^(virgl|nvidia|intel)' <<<"$output")" -eq 6 ]
  run "$prefix/bin/kata-gpu-builder" --workdir "$BATS_TEST_TMPDIR/w" profile show nvidia-gpu
  assert_success
}

@test "cpack: the .deb holds the installed tree and depends on the libraries it links" {
  command -v dpkg-deb >/dev/null || skip "no dpkg-deb"
  out=$BATS_TEST_TMPDIR/pkg
  (cd "$KGB_BUILDDIR" && cpack -G DEB -B "$out" >"$BATS_TEST_TMPDIR/cpack.log" 2>&1) ||
    { cat "$BATS_TEST_TMPDIR/cpack.log"; return 1; }
  deb=$(ls "$out"/kata-gpu-builder_*.deb)
  run dpkg-deb -c "$deb"
  assert_line --regexp '\./usr/(local/)?bin/kata-gpu-builder$'
  assert_line --regexp '/libexec/kata-gpu-builder/kgb-guest-check$'
  assert_line --regexp '/share/kata-gpu-builder/profiles/virgl\.cfg$'
  assert_line --regexp '/share/bash-completion/completions/kata-gpu-builder$'
  run dpkg-deb -f "$deb" Depends
  assert_output --partial "libcurl"
  assert_output --partial "libarchive"
  assert_output --partial "make, gcc"
}
