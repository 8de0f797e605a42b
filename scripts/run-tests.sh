#!/usr/bin/env bash
# Sets everything up (packages, build) and runs all tests: the test suite, the same suite
# built with ASan + UBSan (scripts/sanitize.sh) and the fuzz targets for a bounded time
# (scripts/fuzz.sh). Prints how long each part took (docs/testing.md).
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
scripts/setup.sh build
t1=$(date +%s)
(cd build && ctest --output-on-failure -j "$(nproc)")
t2=$(date +%s)
scripts/sanitize.sh build-asan
t3=$(date +%s)
scripts/fuzz.sh build-fuzz "${LODE_FUZZ_SECONDS:-60}"
t4=$(date +%s)
echo "run-tests: setup and build $((t1 - t0)) s, tests $((t2 - t1)) s, sanitizer suite $((t3 - t2)) s," \
     "fuzzing $((t4 - t3)) s; $((t4 - t0)) s in all"
