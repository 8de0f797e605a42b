#!/usr/bin/env bash
# Builds everything with AddressSanitizer + UndefinedBehaviorSanitizer (-DLODE_SANITIZE)
# and runs the test suite under them; any sanitizer report fails its test.
#   scripts/sanitize.sh [--with-estimators] [BUILD_DIR]     (default: build-asan; docs/testing.md)
# By default without the LibTorch estimators (-DLODE_BUILD_ESTIMATORS=OFF): the runtime, mining,
# the models, the inference library and the torch-free commands, with all their tests. That is
# what CI runs (.ci/run): instrumenting the LibTorch sources and starting lode-estimators under
# ASan took most of CI's hour. --with-estimators instruments and runs everything (about 35
# more minutes on 2 cores; run it when estimators/ changes).
# Packages: scripts/setup.sh installs them (g++ brings libasan and libubsan).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ESTIMATORS=OFF
if [ "${1:-}" = --with-estimators ]; then ESTIMATORS=ON; shift; fi
BUILD_DIR="${1:-build-asan}"
seconds() { date +%s; }

t0=$(seconds)
# Without MPI: Open MPI's own memory hooks and its allocations kept until exit are not ours to
# judge (the MPI scheduler's tests run in the Release suite; docs/testing.md).
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLODE_SANITIZE=address,undefined -DLODE_WITH_MPI=OFF \
  -DLODE_BUILD_ESTIMATORS="$ESTIMATORS" -DLODE_BUILD_PYTHON=OFF > /dev/null  # an instrumented module cannot load into an uninstrumented python3
cmake --build "$BUILD_DIR" -j "$(nproc)"
t1=$(seconds)

# Errors end the program with a report (-fno-sanitize-recover=all at compile time).
# detect_leaks: LeakSanitizer at exit; its suppressions (scripts/lsan.supp) name only
# allocations made inside libraries that are not ours. verify_asan_link_order=0: the
# install test links programs without -fsanitize against the installed (instrumented)
# libraries, so the ASan runtime comes after libc there.
export ASAN_OPTIONS="detect_leaks=1:check_initialization_order=1:strict_init_order=1:verify_asan_link_order=0:${ASAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$ROOT/scripts/lsan.supp:print_suppressions=0:${LSAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
status=0
# Left out: headers_clang compiles headers with clang (no program runs: nothing to
# sanitize); install_and_plugin checks packaging (install tree, CMake package, pkg-config)
# and runs code the other tests already run here, at 9 minutes of CPU under the sanitizers.
# Test cases tagged [slow] skip themselves (tests/catch_main.cpp) and count as skipped.
(cd "$BUILD_DIR" && ctest --output-on-failure -j "$(nproc)" -E '^(headers_clang|install_and_plugin)$') || status=$?
t2=$(seconds)
echo "sanitize: build $((t1 - t0)) s, tests $((t2 - t1)) s (ASan + UBSan, estimators $ESTIMATORS, $(nproc) cores)"
exit $status
