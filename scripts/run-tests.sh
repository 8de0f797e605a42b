#!/usr/bin/env bash
# Sets everything up (packages, build) and runs all tests: the test suite, then the fuzz
# targets for a bounded time (scripts/fuzz.sh, LODE_FUZZ_SECONDS per target, default 30).
# and with LODE_SANITIZE_SUITE=1 the whole suite built with ASan + UBSan (scripts/sanitize.sh;
# not yet CI's default: docs/testing.md). Prints how long each part took.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
scripts/setup.sh build
t1=$(date +%s)
(cd build && ctest --output-on-failure -j "$(nproc)")
t2=$(date +%s)
scripts/fuzz.sh build-fuzz "${LODE_FUZZ_SECONDS:-30}"
t3=$(date +%s)
sanitized="not run (LODE_SANITIZE_SUITE=1 runs it)"
if [ "${LODE_SANITIZE_SUITE:-0}" = 1 ]; then
  scripts/sanitize.sh build-asan
  sanitized="$(($(date +%s) - t3)) s"
fi
echo "run-tests: setup and build $((t1 - t0)) s, tests $((t2 - t1)) s, fuzzing $((t3 - t2)) s," \
     "sanitizer suite ${sanitized}; $(($(date +%s) - t0)) s in all"
