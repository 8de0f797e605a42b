#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, with clang) and runs each for a bounded time
# on its seed corpus (tests/fuzz/corpus/TARGET, run first: the regression inputs); fails on
# the first crash, sanitizer report, leak or timeout.
#   scripts/fuzz.sh [BUILD_DIR [SECONDS]]    (default: build-fuzz, 60 s per target)
# A crash leaves its input in BUILD_DIR/crashes/ (docs/testing.md: reproduce, fix, add it
# to the corpus). New inputs found go to BUILD_DIR/corpus/TARGET, never into the sources.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR="${1:-build-fuzz}"
SECONDS_EACH="${2:-60}"
CXX_FUZZ="${CXX_FUZZ:-clang++-14}"
seconds() { date +%s; }

t0=$(seconds)
cmake -S tests/fuzz -B "$BUILD_DIR" -G Ninja -DCMAKE_CXX_COMPILER="$CXX_FUZZ" > /dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)"
t1=$(seconds)

export ASAN_OPTIONS="detect_leaks=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
mkdir -p "$BUILD_DIR/crashes" "$BUILD_DIR/tmp"
export TMPDIR="$(cd "$BUILD_DIR/tmp" && pwd)"  # the targets' input files (npy_fuzz)
for target in $(cd tests/fuzz && ls ./*_fuzz.cpp | sed 's|^\./||; s|\.cpp$||'); do
  name=${target%_fuzz}
  work="$BUILD_DIR/corpus/$name"
  mkdir -p "$work"
  dict=()
  [ -f "tests/fuzz/$name.dict" ] && dict=(-dict="$ROOT/tests/fuzz/$name.dict")
  log="$BUILD_DIR/$target.log"
  s=$(seconds)
  if ! "$BUILD_DIR/$target" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$BUILD_DIR/crashes/$name-" "${dict[@]}" \
      "$work" "tests/fuzz/corpus/$name" > "$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz: $target FAILED (log: $log; input: $BUILD_DIR/crashes/)" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  echo "fuzz: $target: no crash, $runs runs in $(($(seconds) - s)) s ($rate/s), corpus $(ls "$work" | wc -l) + $(ls "tests/fuzz/corpus/$name" | wc -l) seeds"
done
echo "fuzz: build $((t1 - t0)) s, fuzzing $(($(seconds) - t1)) s"
