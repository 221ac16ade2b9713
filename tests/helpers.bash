# Shared by the bats files: the binary under test, the work directory of a test file,
# bats-support/bats-assert, and a JSON reader (python3) for --json output.
bats_load_library bats-support 2>/dev/null || load /usr/lib/bats/bats-support/load.bash
bats_load_library bats-assert 2>/dev/null || load /usr/lib/bats/bats-assert/load.bash

: "${KGB:?KGB must name the kata-gpu-builder binary (ctest sets it)}"
: "${KGB_SRCDIR:?KGB_SRCDIR must name the source tree (ctest sets it)}"
FIXTURES="$KGB_SRCDIR/tests/fixtures"
LINUX_TARBALL=${KGB_LINUX_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
# kata-config computes against the Kata configuration this host's runtime loads: none for the
# tests (a developer's installed Kata must not change their output); the tests of that
# reading give --base
export KGB_KATA_BASE=none

kgb() { "$KGB" --workdir "$WORKDIR" "$@"; }

# json FILTER: reads JSON on stdin, prints a python expression over it (j)
json() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }

# the output of the last `run` without the stderr lines (bats 1.8 merges them)
kgb_split() { "$KGB" --workdir "$WORKDIR" "$@" 2>"$BATS_TEST_TMPDIR/stderr"; }

# The e2e files of one run share a work directory, so each distinct kernel compiles once per
# run: scripts/test sets KGB_E2E_WORKDIR and starts it empty. A file run alone gets its own.
e2e_workdir() {
  WORKDIR=${KGB_E2E_WORKDIR:-$BATS_FILE_TMPDIR/work}
  export WORKDIR
}

# the e2e prerequisites: skip (saying what to install) when they are missing
need_linux_source() {
  [ -f "$LINUX_TARBALL" ] || skip "no $LINUX_TARBALL (apt-get install linux-source-6.1)"
}
need_qemu() {
  command -v qemu-system-x86_64 >/dev/null || skip "no qemu-system-x86_64 (apt-get install qemu-system-x86)"
}
