#!/usr/bin/env bash
# Sets everything up (packages, build) and runs all tests: the test suite, the fuzz targets
# for a bounded time (scripts/fuzz.sh, LODE_FUZZ_SECONDS per target, default 30), then the
# suite of everything but the LibTorch estimators built with ASan + UBSan (scripts/sanitize.sh
# build-asan; LODE_SANITIZE_SUITE=0 leaves it out, for a quick local run — CI runs it;
# LODE_SANITIZE_SUITE=all instruments the estimators too). Prints how long each part took
# (docs/testing.md has the figures).
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
scripts/setup.sh build
t1=$(date +%s)
(cd build && ctest --output-on-failure -j "$(nproc)")
t2=$(date +%s)
scripts/fuzz.sh build-fuzz "${LODE_FUZZ_SECONDS:-30}"
t3=$(date +%s)
sanitized="left out (LODE_SANITIZE_SUITE=0)"
if [ "${LODE_SANITIZE_SUITE:-1}" != 0 ]; then
  if [ "${LODE_SANITIZE_SUITE:-1}" = all ]; then scripts/sanitize.sh --with-estimators build-asan
  else scripts/sanitize.sh build-asan; fi
  sanitized="$(($(date +%s) - t3)) s"
fi
echo "run-tests: setup and build $((t1 - t0)) s, tests $((t2 - t1)) s, fuzzing $((t3 - t2)) s," \
     "sanitizer suite ${sanitized}; $(($(date +%s) - t0)) s in all"
