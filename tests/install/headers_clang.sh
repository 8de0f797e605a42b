#!/usr/bin/env bash
# Every installed public header compiles alone with clang++ (CTest: headers_clang):
#   headers_clang.sh CLANGXX INCLUDE_DIR...
# Each header under lode/ of each INCLUDE_DIR is compiled as `#include "lode/NAME.hpp"`,
# alone, with -std=c++20 -fsyntax-only and every INCLUDE_DIR (plus Eigen's) on the path.
# Headers under lode/estimators/torch/ include LibTorch and are left out (LibTorch's own
# headers are not ours to fix, and parsing them takes minutes).
set -uo pipefail
CXX=${1:?usage: headers_clang.sh CLANGXX INCLUDE_DIR...}
shift
flags=(-std=c++20 -fsyntax-only -Wall -I/usr/include/eigen3)
for d in "$@"; do flags+=(-I"$d"); done
n=0 failed=0
for d in "$@"; do
  for h in $(cd "$d" && find lode -name '*.hpp' -not -path 'lode/estimators/torch/*' | sort); do
    n=$((n + 1))
    if ! out=$(echo "#include \"$h\"" | "$CXX" "${flags[@]}" -x c++ - 2>&1); then
      failed=$((failed + 1))
      echo "FAIL: $h does not compile alone with $CXX:"
      echo "$out" | head -20
    fi
  done
done
echo "$((n - failed)) of $n headers compile alone with $CXX"
[ "$n" -ge 50 ] || { echo "FAIL: only $n headers found"; exit 1; }
[ "$failed" -eq 0 ]
