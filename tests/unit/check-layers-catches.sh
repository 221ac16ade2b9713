#!/usr/bin/env bash
# scripts/check-layers on tests/fixtures/layers/bad.c's library: it fails and names each
# banned import, so that the check on the engine (unit/layers) is known to be able to fail.
set -uo pipefail
out=$("$1" "$2" 2>&1)
if [ $? -eq 0 ]; then
  echo "check-layers accepted a library that prints and exits:"
  echo "$out"
  exit 1
fi
for sym in printf stderr exit getopt_long __assert_fail; do
  if ! grep -q " imports $sym\$" <<<"$out"; then
    echo "check-layers did not name '$sym':"
    echo "$out"
    exit 1
  fi
done
