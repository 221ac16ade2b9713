#!/usr/bin/env bats
# Profiles: the list, the resolved view, user profiles with overrides, and every kind of
# profile error with its file, line and field.

setup() {
  load ../helpers
  WORKDIR=$BATS_TEST_TMPDIR/work
}

@test "profiles lists the six shipped profiles with vendor and mode" {
  run kgb profiles
  assert_success
  assert_line --regexp '^NAME +VENDOR +MODE +DESCRIPTION$'
  assert_line --regexp '^intel-gvt-d +intel +gvt-d +Intel GVT-d'
  assert_line --regexp '^intel-gvt-g +intel +gvt-g '
  assert_line --regexp '^nvidia-gpu +nvidia +passthrough '
  assert_line --regexp '^nvidia-vgpu +nvidia +vgpu '
  assert_line --regexp '^nvidia-vgpu-mig +nvidia +mig '
  assert_line --regexp '^virgl +virgl +virgl '
  assert_equal "${#lines[@]}" 7
}

@test "profiles --json is one JSON document" {
  kgb --json profiles >"$BATS_TEST_TMPDIR/p.json"
  run json '" ".join(p["name"] for p in j)' <"$BATS_TEST_TMPDIR/p.json"
  assert_output "intel-gvt-d intel-gvt-g nvidia-gpu nvidia-vgpu nvidia-vgpu-mig virgl"
  run json '[p["mode"] for p in j if p["name"]=="nvidia-vgpu-mig"][0]' <"$BATS_TEST_TMPDIR/p.json"
  assert_output "mig"
}

@test "profile show prints the profile with its includes resolved" {
  run kgb profile show nvidia-gpu
  assert_success
  assert_output --partial 'name = "nvidia-gpu";'
  assert_output --partial 'version = "6.1";'      # from include/kernel-6.1-x86_64.cfg
  assert_output --partial 'suite = "bookworm";'   # from include/rootfs-bookworm.cfg
  assert_output --partial '"gpu/nvidia.conf"'
}

@test "profile show --json gives the same fields" {
  kgb --json profile show intel-gvt-g >"$BATS_TEST_TMPDIR/p.json"
  run json 'j["kernel"]["fragments"][-1], j["kernel"]["arch"], j["host"]["cmdline"]' <"$BATS_TEST_TMPDIR/p.json"
  assert_output "gpu/intel.conf x86_64 ['intel_iommu=on', 'i915.enable_gvt=1']"
}

@test "a user profile includes a shipped one and overrides fields" {
  kgb --json profile show "$FIXTURES/profiles/user-override.cfg" >"$BATS_TEST_TMPDIR/p.json"
  run json 'j["name"], j["kernel"]["cfgver"], j["rootfs"]["packages"][-1], j["rootfs"]["suite"], "override" in j' <"$BATS_TEST_TMPDIR/p.json"
  assert_output "nvidia-gpu 7 vim-tiny bookworm False"
}

@test "an unknown profile name suggests the closest" {
  run kgb profile show nvidia-gp
  assert_failure 1
  assert_output --partial "unknown profile 'nvidia-gp' (did you mean 'nvidia-gpu'?)"
}

@test "an unknown key is named with file, line and a suggestion" {
  run kgb profile show "$FIXTURES/profiles/unknown-key.cfg"
  assert_failure 1
  assert_output --partial "unknown-key.cfg:4: unknown key 'kernel.fragmets' (did you mean 'kernel.fragments'?)"
}

@test "a value of the wrong type is named with file and line" {
  run kgb profile show "$FIXTURES/profiles/wrong-type.cfg"
  assert_failure 1
  assert_output --partial "wrong-type.cfg:4: 'kernel.cfgver' must be an integer"
}

@test "a missing required field is named" {
  run kgb profile show "$FIXTURES/profiles/missing-field.cfg"
  assert_failure 1
  assert_output --partial "missing-field.cfg: missing required field 'kernel.cfgver'"
}

@test "a fragment that matches no file is named with file and line" {
  run kgb profile show "$FIXTURES/profiles/unknown-fragment.cfg"
  assert_failure 1
  assert_output --partial "unknown-fragment.cfg:4: fragment 'gpu/virgil.conf' matches no file"
}

@test "an unknown recipe is named with file and line" {
  run kgb profile show "$FIXTURES/profiles/unknown-recipe.cfg"
  assert_failure 1
  assert_output --partial "unknown-recipe.cfg:4: unknown recipe 'mesa-virgil'"
}

@test "a value outside its choices lists the allowed ones" {
  run kgb profile show "$FIXTURES/profiles/bad-value.cfg"
  assert_failure 1
  assert_output --partial "bad-value.cfg:3: 'image.format' is 'qcow2': use one of 'ext4', 'erofs', 'initrd'"
}

@test "a libconfig syntax error is reported with file and line" {
  run kgb profile show "$FIXTURES/profiles/syntax-error.cfg"
  assert_failure 1
  assert_output --regexp "syntax-error.cfg:3: syntax error"
}

@test "an include loop is reported with the chain" {
  KGB_DATADIR=$FIXTURES/datadir run kgb profile show loop-a
  assert_failure 1
  assert_output --partial "include loop:"
  assert_output --partial "loop-a.cfg -> "
  assert_output --partial "loop-b.cfg -> "
}

@test "--json errors are one JSON document on stdout" {
  run kgb_split --json profile show nvidia-gp
  assert_failure 1
  run json 'j["error"]' <<<"$output"
  assert_output --partial "unknown profile 'nvidia-gp'"
}

# override_profile FILE BODY: a user profile on top of nvidia-gpu with BODY in its override
override_profile() {
  printf '@include "nvidia-gpu.cfg"\noverride = {\n%b\n};\n' "$2" >"$1"
}

@test "a name that would become a path outside the work directory is refused" {
  override_profile "$BATS_TEST_TMPDIR/evil.cfg" '  name = "../../../../tmp/evil";'
  run kgb kernel build -p "$BATS_TEST_TMPDIR/evil.cfg" -k "$BATS_TEST_TMPDIR/nowhere"
  assert_failure 1
  assert_output --partial "evil.cfg:3: 'name' has '.' at byte 0: it must be a name of letters, digits and '._+-'"
  [ ! -e /tmp/evil ]
  run find "$WORKDIR" -mindepth 1 ! -name lock
  assert_output ""
  override_profile "$BATS_TEST_TMPDIR/slash.cfg" '  name = "gpu/x";'
  run kgb profile show "$BATS_TEST_TMPDIR/slash.cfg"
  assert_failure 1
  assert_output --partial "'name' has '/' at byte 3"
  override_profile "$BATS_TEST_TMPDIR/suite.cfg" '  rootfs = { suite = "bookworm/../x"; };'
  run kgb profile show "$BATS_TEST_TMPDIR/suite.cfg"
  assert_failure 1
  assert_output --partial "'rootfs.suite' has '/' at byte 8"
}

@test "numbers outside their range are refused with the range" {
  override_profile "$BATS_TEST_TMPDIR/mem.cfg" '  kata = { default_memory = -4096; };'
  run kgb kata-config -p "$BATS_TEST_TMPDIR/mem.cfg"
  assert_failure 1
  assert_output --partial "mem.cfg:3: 'kata.default_memory' is -4096: it must be from 128 to 4294967295"
  override_profile "$BATS_TEST_TMPDIR/ports.cfg" '  kata = { pcie_root_port = -3; };'
  run kgb kata-config -p "$BATS_TEST_TMPDIR/ports.cfg"
  assert_failure 1
  assert_output --partial "'kata.pcie_root_port' is -3: it must be from 0 to 16"
  override_profile "$BATS_TEST_TMPDIR/cfgver.cfg" '  kernel = { cfgver = 4294967297L; };'
  run kgb profile show "$BATS_TEST_TMPDIR/cfgver.cfg"
  assert_failure 1
  assert_output --partial "'kernel.cfgver' is 4294967297: it must be from 1 to 2147483647"
  override_profile "$BATS_TEST_TMPDIR/big.cfg" '  kernel = { cfgver = 2147483647; };'
  run kgb profile show "$BATS_TEST_TMPDIR/big.cfg"
  assert_success
}

@test "control characters and option-like package names in profile values are refused" {
  override_profile "$BATS_TEST_TMPDIR/nl.cfg" '  kata = { kernel_params = "quiet\\nroot=/dev/evil"; };'
  run kgb kata-config -p "$BATS_TEST_TMPDIR/nl.cfg"
  assert_failure 1
  assert_output --partial "'kata.kernel_params' has a control character (\\x0a) at byte 5: it must be one line of text"
  override_profile "$BATS_TEST_TMPDIR/pkg.cfg" '  rootfs = { packages = [ "kmod", "-oDPkg::Pre-Invoke::=touch" ]; };'
  run kgb profile show "$BATS_TEST_TMPDIR/pkg.cfg"
  assert_failure 1
  assert_output --partial "'rootfs.packages' has '-' at byte 0: it must be a Debian package name"
  override_profile "$BATS_TEST_TMPDIR/set.cfg" '  settings = { nvidia = { toolkit = { repo = "https://example.invalid/ /\\ndeb [trusted=yes] http://evil/ ./"; }; }; };'
  run kgb profile show "$BATS_TEST_TMPDIR/set.cfg"
  assert_failure 1
  assert_output --partial "'settings.nvidia.toolkit.repo' has a control character (\\x0a)"
}

@test "a profile with 400,000 packages loads in seconds, not minutes" {
  # each package used to be appended by walking the whole list: 200,000 took 12 s, 400,000
  # about 50 s; now about 1.5 s here. Under AddressSanitizer every realloc moves, so libconfig's
  # own list growth turns slow there: the release build measures.
  if ldd "$KGB" | grep -q libasan; then skip "timing under AddressSanitizer measures the sanitizer"; fi
  python3 -c '
import sys
names = ", ".join("\"pkg%d\"" % i for i in range(400000))
sys.stdout.write("@include \"virgl.cfg\"\noverride = {\n  rootfs = { packages = [ %s ]; };\n};\n" % names)
' >"$BATS_TEST_TMPDIR/many.cfg"
  run timeout 15 "$KGB" --workdir "$WORKDIR" --json profile show "$BATS_TEST_TMPDIR/many.cfg"
  assert_success
  run json 'len(j["rootfs"]["packages"]), j["rootfs"]["packages"][-1]' <<<"$output"
  assert_output "400000 pkg399999"
}

@test "an @include of a directory or a FIFO: exit 1 with the including file and line" {
  export KGB_DATADIR=$BATS_TEST_TMPDIR/data
  P=$KGB_DATADIR/profiles
  mkdir -p "$P/dir.cfg"
  mkfifo "$P/fifo.cfg"
  printf 'name = "x";\n@include "dir.cfg"\n' >"$P/p.cfg"
  # libconfig's scanner used to exit(2) on a directory, naming nothing
  run timeout 10 "$KGB" --workdir "$WORKDIR" profile show p
  assert_failure 1
  assert_output --partial "$P/p.cfg:2: cannot include '$P/dir.cfg': it is a directory, not a regular file"
  printf 'name = "x";\n\n@include "fifo.cfg"\n' >"$P/p.cfg"
  run timeout 10 "$KGB" --workdir "$WORKDIR" profile show p
  assert_failure 1
  assert_output --partial "$P/p.cfg:3: cannot include '$P/fifo.cfg': it is a FIFO, not a regular file"
  # libconfig reads an include name past a NUL byte that a C-string scan stops at
  printf 'name = "x";\n@include "\0\0b"\n' >"$P/p.cfg"
  run timeout 10 "$KGB" --workdir "$WORKDIR" profile show p
  assert_failure 1
  assert_output --partial "$P/p.cfg:2: a NUL byte: a profile is text"
}

@test "an absolute @include works or says why not" {
  printf '@include "%s/profiles/nvidia-gpu.cfg"\n' "$KGB_SRCDIR" >"$BATS_TEST_TMPDIR/abs.cfg"
  run kgb profile show "$BATS_TEST_TMPDIR/abs.cfg"
  if [ "$status" -eq 0 ]; then
    assert_output --partial 'name = "nvidia-gpu";'
  else
    assert_failure 1
    assert_output --partial "$BATS_TEST_TMPDIR/abs.cfg:1: cannot include '$KGB_SRCDIR/profiles/nvidia-gpu.cfg': libconfig 1."
    assert_output --partial "give the path relative to that directory"
  fi
}
