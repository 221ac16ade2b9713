#!/usr/bin/env bats
# kernel config on bad input: every failure names the file (and line) and leaves nothing
# half-written. The runs on the real Linux tree are in tests/e2e.

setup() {
  load ../helpers
  WORKDIR=$BATS_TEST_TMPDIR/work
  mkdir -p "$WORKDIR"
}

# mktar NAME ENTRY...: a .tar.gz whose members have exactly these names (python's tarfile
# writes what it is told, which is how a hostile archive looks)
mktar() {
  local out=$1; shift
  python3 - "$out" "$@" <<'PY'
import io, sys, tarfile
out, names = sys.argv[1], sys.argv[2:]
with tarfile.open(out, "w:gz") as t:
    for n in names:
        data = b"x\n"
        info = tarfile.TarInfo(n); info.size = len(data)
        t.addfile(info, io.BytesIO(data))
PY
}

no_leftovers() {
  # nothing under sources/ but completed trees, and no temporary directories anywhere
  run find "$WORKDIR" -name '*.tmp-*'
  assert_output ""
  if [ -d "$WORKDIR/sources" ]; then
    run ls -A "$WORKDIR/sources"
    assert_output ""
  fi
}

@test "a directory that is not a kernel tree is refused" {
  mkdir -p "$BATS_TEST_TMPDIR/notkernel"
  run kgb kernel config -p virgl -k "$BATS_TEST_TMPDIR/notkernel"
  assert_failure 1
  assert_output --partial "'$BATS_TEST_TMPDIR/notkernel' is not a kernel source tree: 'Makefile' is missing"
}

@test "a corrupt tarball is refused and leaves nothing in the work directory" {
  head -c 100000 /dev/urandom >"$BATS_TEST_TMPDIR/linux.tar.xz"
  run kgb kernel config -p virgl -k "$BATS_TEST_TMPDIR/linux.tar.xz"
  assert_failure 1
  assert_output --partial "linux.tar.xz"
  no_leftovers
}

@test "a truncated tarball is refused and leaves nothing in the work directory" {
  mkdir -p "$BATS_TEST_TMPDIR/t/linux"
  head -c 300000 /dev/urandom >"$BATS_TEST_TMPDIR/t/linux/blob"
  tar -C "$BATS_TEST_TMPDIR/t" -cJf "$BATS_TEST_TMPDIR/full.tar.xz" linux
  head -c 150000 "$BATS_TEST_TMPDIR/full.tar.xz" >"$BATS_TEST_TMPDIR/cut.tar.xz"
  run kgb kernel config -p virgl -k "$BATS_TEST_TMPDIR/cut.tar.xz"
  assert_failure 1
  assert_output --partial "cut.tar.xz"
  no_leftovers
}

@test "an archive entry with '..' is refused and nothing is written outside" {
  mkdir -p "$BATS_TEST_TMPDIR/x"
  mktar "$BATS_TEST_TMPDIR/evil.tar.gz" linux/Makefile linux/../../../escaped
  run kgb kernel config -p virgl -k "$BATS_TEST_TMPDIR/evil.tar.gz"
  assert_failure 1
  assert_output --partial "entry 'linux/../../../escaped' has an absolute path or '..': refused"
  run find "$BATS_TEST_TMPDIR" -name escaped
  assert_output ""
  no_leftovers
}

@test "an archive entry with an absolute path is refused" {
  mktar "$BATS_TEST_TMPDIR/abs.tar.gz" linux/Makefile "$BATS_TEST_TMPDIR/absolute-escape"
  run kgb kernel config -p virgl -k "$BATS_TEST_TMPDIR/abs.tar.gz"
  assert_failure 1
  assert_output --partial "has an absolute path or '..': refused"
  [ ! -e "$BATS_TEST_TMPDIR/absolute-escape" ]
  no_leftovers
}

@test "a tarball without a kernel tree is named, and its extraction is not kept" {
  mktar "$BATS_TEST_TMPDIR/other.tar.gz" project/README project/src/main.c
  run kgb kernel config -p virgl -k "$BATS_TEST_TMPDIR/other.tar.gz"
  assert_failure 1
  assert_output --partial "is not a kernel source tree"
  run find "$WORKDIR/sources" -mindepth 1
  assert_output ""
}

@test "a source tarball's device nodes, FIFOs, set-id bits and world-writable modes are left out" {
  [ "$(id -u)" -eq 0 ] || skip "device nodes in an archive are extracted only as root"
  python3 - "$BATS_TEST_TMPDIR/hostile.tar.gz" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w:gz") as t:
    def add(name, kind=tarfile.REGTYPE, mode=0o644, data=b"", **kw):
        i = tarfile.TarInfo(name); i.type = kind; i.mode = mode; i.size = len(data)
        for k, v in kw.items(): setattr(i, k, v)
        t.addfile(i, io.BytesIO(data) if data else None)
    add("./", tarfile.DIRTYPE, 0o777)
    add("linux", tarfile.DIRTYPE, 0o777)
    add("linux/Makefile", data=b"VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\n")
    add("linux/Kconfig", data=b"config X\n\tbool\n")
    add("linux/scripts/kconfig/Makefile", data=b"# nothing\n")
    add("linux/disk", tarfile.BLKTYPE, 0o666, devmajor=7, devminor=0)
    add("linux/null", tarfile.CHRTYPE, 0o666, devmajor=1, devminor=3)
    add("linux/pipe", tarfile.FIFOTYPE, 0o666)
    add("linux/suid", mode=0o4755, data=b"#!/bin/sh\n")
    add("linux/open", mode=0o666, data=b"x\n")
PY
  run kgb kernel config -p virgl -k "$BATS_TEST_TMPDIR/hostile.tar.gz"
  assert_output --partial "left out 3 device nodes, FIFOs or sockets"
  top=$(find "$WORKDIR/sources" -mindepth 1 -maxdepth 1 -type d)
  [ -n "$top" ]
  run stat -c '%a %n' "$top" "$top/linux" "$top/linux/suid" "$top/linux/open"
  assert_output "775 $top
775 $top/linux
755 $top/linux/suid
664 $top/linux/open"
  run find "$top" -type b -o -type c -o -type p
  assert_output ""
}

@test "a malformed extra fragment is named with file and line" {
  printf 'CONFIG_DRM=y\nCONFIG_FOO=yes\n' >"$BATS_TEST_TMPDIR/bad.conf"
  run kgb kernel config -p virgl -k "$BATS_TEST_TMPDIR/nowhere" --fragment "$BATS_TEST_TMPDIR/bad.conf"
  assert_failure 1
  assert_output --partial "bad.conf:2: 'yes' is not a valid value for 'CONFIG_FOO'"
  printf '# CONFIG_A is not set\nCONFIG_B="open\n' >"$BATS_TEST_TMPDIR/bad.conf"
  run kgb kernel config -p virgl --fragment "$BATS_TEST_TMPDIR/bad.conf"
  assert_failure 1
  assert_output --partial "bad.conf:2: unterminated string for 'CONFIG_B'"
  printf 'CONFIG_A=y\nDRM=y\n' >"$BATS_TEST_TMPDIR/bad.conf"
  run kgb kernel config -p virgl --fragment "$BATS_TEST_TMPDIR/bad.conf"
  assert_failure 1
  assert_output --partial "bad.conf:2: not an assignment"
}

@test "a missing or empty fragment is an error" {
  run kgb kernel config -p virgl --fragment "$BATS_TEST_TMPDIR/missing.conf"
  assert_failure 1
  assert_output --partial "missing.conf: cannot read fragment: No such file or directory"
  printf '# nothing here\n' >"$BATS_TEST_TMPDIR/empty.conf"
  run kgb kernel config -p virgl --fragment "$BATS_TEST_TMPDIR/empty.conf"
  assert_failure 1
  assert_output --partial "empty.conf: fragment sets no option"
}

@test "two vendor fragments that disagree are an error naming both places" {
  run kgb kernel config -p "$FIXTURES/profiles/two-vendors.cfg"
  assert_failure 1
  assert_output --regexp 'kconfig-fragments/gpu/intel.conf:[0-9]+: CONFIG_LOCALVERSION="-intel-gpu" conflicts with kconfig-fragments/gpu/nvidia.conf:[0-9]+ \("-nvidia-gpu"\)'
  assert_output --partial "kernel.overrides"
}

@test "a full disk during extraction fails cleanly" {
  [ "$(id -u)" = 0 ] || skip "needs root to mount a small tmpfs"
  mkdir -p "$BATS_TEST_TMPDIR/small" "$BATS_TEST_TMPDIR/t/linux"
  mount -t tmpfs -o size=256k tmpfs "$BATS_TEST_TMPDIR/small" || skip "cannot mount tmpfs here"
  head -c 2000000 /dev/urandom >"$BATS_TEST_TMPDIR/t/linux/blob"
  tar -C "$BATS_TEST_TMPDIR/t" -czf "$BATS_TEST_TMPDIR/big.tar.gz" linux
  WORKDIR=$BATS_TEST_TMPDIR/small/work
  run kgb kernel config -p virgl -k "$BATS_TEST_TMPDIR/big.tar.gz"
  status_was=$status
  leftovers=$(find "$WORKDIR" -name '*.tmp-*' | wc -l)
  umount "$BATS_TEST_TMPDIR/small"
  [ "$status_was" -eq 1 ]
  assert_output --partial "No space left on device"
  [ "$leftovers" -eq 0 ]
}

# serve DIR: starts the test HTTP server on 127.0.0.1 for DIR, sets $port
serve() {
  coproc SERVER { exec python3 "$FIXTURES/http-server.py" "$1" "$BATS_TEST_TMPDIR/requests.log"; }
  read -r port <&"${SERVER[0]}"
}

teardown() {
  [ -n "${SERVER_PID:-}" ] && kill "$SERVER_PID" 2>/dev/null || true
}

@test "a source URL is downloaded over HTTP, checked and extracted" {
  mkdir -p "$BATS_TEST_TMPDIR/www"
  mktar "$BATS_TEST_TMPDIR/www/project.tar.gz" project/README
  sum=$(sha256sum "$BATS_TEST_TMPDIR/www/project.tar.gz" | cut -d' ' -f1)
  serve "$BATS_TEST_TMPDIR/www"
  run kgb kernel config -p virgl -k "http://127.0.0.1:$port/files/a/project.tar.gz" --sha256 "$sum"
  assert_failure 1
  # downloaded into the cache by hash, extracted, then found not to be a kernel
  assert_output --partial "is not a kernel source tree"
  [ -f "$WORKDIR/cache/downloads/$sum" ]
  run grep -c "GET /files/a/project.tar.gz" "$BATS_TEST_TMPDIR/requests.log"
  assert_output 1
}

@test "a downloaded source with the wrong checksum is refused with both hashes" {
  mkdir -p "$BATS_TEST_TMPDIR/www"
  mktar "$BATS_TEST_TMPDIR/www/linux.tar.gz" linux/Makefile
  serve "$BATS_TEST_TMPDIR/www"
  wrong=0000000000000000000000000000000000000000000000000000000000000000
  run kgb kernel config -p virgl -k "http://127.0.0.1:$port/files/b/linux.tar.gz" --sha256 "$wrong"
  assert_failure 1
  assert_output --partial "$wrong"
  assert_output --partial "$(sha256sum "$BATS_TEST_TMPDIR/www/linux.tar.gz" | cut -d' ' -f1)"
  run ls -A "$WORKDIR/cache/downloads"
  refute_output --partial "0000"
}

@test "a missing source URL is a clear error naming it" {
  mkdir -p "$BATS_TEST_TMPDIR/www"
  serve "$BATS_TEST_TMPDIR/www"
  run kgb kernel config -p virgl -k "http://127.0.0.1:$port/files/c/linux-9.9.tar.xz" \
    --sha256 0000000000000000000000000000000000000000000000000000000000000000
  assert_failure 1
  assert_output --partial "http://127.0.0.1:$port/files/c/linux-9.9.tar.xz: HTTP 404"
}

@test "a FIFO as --fragment fails at once with the file named" {
  mkfifo "$BATS_TEST_TMPDIR/gpu.conf"
  # timeout: a regression blocks in open() and must fail here, not hang the suite
  run timeout 10 "$KGB" --workdir "$WORKDIR" kernel config -p virgl --fragment "$BATS_TEST_TMPDIR/gpu.conf"
  assert_failure 1
  assert_output --partial "$BATS_TEST_TMPDIR/gpu.conf: cannot read fragment: it is a FIFO, not a regular file"
}

@test "a FIFO as a file:// kernel source fails at once with the file named" {
  mkfifo "$BATS_TEST_TMPDIR/linux.tar.xz"
  run timeout 10 "$KGB" --workdir "$WORKDIR" kernel config -p virgl -k "file://$BATS_TEST_TMPDIR/linux.tar.xz"
  assert_failure 1
  assert_output --partial "cannot read '$BATS_TEST_TMPDIR/linux.tar.xz': it is a FIFO, not a regular file"
}
