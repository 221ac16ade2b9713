#!/usr/bin/env bash
# scripts/check-layers on what it must refuse: the library of tests/fixtures/layers/
# bad-symbols.c (it prints, exits, parses argv, asserts) and the tree tests/fixtures/layers/
# builder (an engine file including a CLI header, a shared file including an engine header).
# It fails and names each, so that unit/layers is known to be able to fail.
# usage: check-layers-catches.sh CHECK-LAYERS BAD-LIBRARY FIXTURE-TREE
set -uo pipefail
out=$(KGB_LAYERS_SRC=$3 "$1" "$2" 2>&1)
if [ $? -eq 0 ]; then
  echo "check-layers accepted a library that prints and exits:"
  echo "$out"
  exit 1
fi
expect=(" imports printf$" " imports stderr$" " imports exit$" " imports getopt_long$"
  " imports __assert_fail$" "^  lib/engine.c:2:#include \"../cli/cli.h\"$"
  "^  shared/strings.c:2:#include \"../lib/kgb.h\"$")
for e in "${expect[@]}"; do
  if ! grep -q -- "$e" <<<"$out"; then
    echo "check-layers did not report '$e':"
    echo "$out"
    exit 1
  fi
done
