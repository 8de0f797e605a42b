#!/bin/bash
# Instructions per galton event (callgrind), for a source tree with a built `build/`:
#   tests/bench/galton_ir.sh [TREE]      (default: this tree)
# Builds tests/bench/galton_ir.cpp against TREE's runtime and models (the flags of the
# Release build), runs 1000 and 3000 events under callgrind per mode and prints the
# difference / 2000 (start-up and the first events cancel out).
set -e
TREE=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
OUT=$(mktemp -d)
g++ -O2 -DNDEBUG -fPIE -std=c++20 -DFMT_SHARED -I"$TREE/runtime/include" -I"$TREE/build/include" -I"$TREE/models/include" \
    "$(dirname "$0")/galton_ir.cpp" -o "$OUT/galton_ir" -Wl,--no-as-needed -Wl,-rpath,"$TREE/build/models:$TREE/build/runtime" \
    -L"$TREE/build/models" -L"$TREE/build/runtime" -llode_models -llode_runtime -lfmt
ir() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 | grep "refs:" | sed 's/.*refs: *//; s/,//g'; }
for mode in ${MODES:-4 0 3 1 2 5}; do
  a=$(ir "$OUT/galton_ir" $mode 1000); b=$(ir "$OUT/galton_ir" $mode 3000)
  echo "mode $mode: $(( (b - a) / 2000 )) instructions/event"
done
rm -rf "$OUT"
