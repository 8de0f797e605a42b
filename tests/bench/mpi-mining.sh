#!/usr/bin/env bash
# Mining throughput over MPI ranks (issue 18, BENCHMARKS.md "Mining across processes").
#   tests/bench/mpi-mining.sh [LODE] [EVENTS] [ROUNDS]
# Alternates, ROUNDS times: one process with 1 thread, mpirun -np 1, mpirun -np 2 (1 thread
# each), one process with 2 threads; galton --for ratio, shards of 100 000 events. Prints the
# mining rate of each run (events/s of the mining phase, from lode mine's summary) and the
# whole command's wall time (start-up, mining, concatenation), then checks that every dataset
# is byte-identical to the first. Run it on a quiet machine: the 2-rank figure needs both cores.
set -euo pipefail
LODE=${1:-build/tools/lode}
EVENTS=${2:-4000000}
ROUNDS=${3:-3}
ROOT=$([ "$(id -u)" = 0 ] && echo --allow-run-as-root || true)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
args=(mine galton --for ratio --theta0 prior --theta1 -0.6 -n "$EVENTS" --seed 1 --shard-size 100000)
run() {  # name, command...
  local name=$1
  shift
  local out="$work/$name-$RANDOM"
  local t0 t1
  t0=$(date +%s.%N)
  "$@" --out "$out" 2> "$work/err"
  t1=$(date +%s.%N)
  local rate
  rate=$(grep -o '[0-9]* events/s' "$work/err" | head -1)
  printf '%-22s %14s   wall %.2f s\n' "$name" "$rate" "$(awk "BEGIN{print $t1 - $t0}")"
  if [ -z "${FIRST:-}" ]; then FIRST=$out; else cmp -s "$FIRST/x.npy" "$out/x.npy" && cmp -s "$FIRST/r_xz.npy" "$out/r_xz.npy" \
    && cmp -s "$FIRST/t_xz0.npy" "$out/t_xz0.npy" || { echo "DIFFERENT BYTES: $out"; exit 1; }; rm -rf "$out"; fi
}
echo "galton --for ratio, $EVENTS events, $(nproc) processors, $(uname -n); lode $($LODE --version 2>/dev/null | head -1)"
for r in $(seq "$ROUNDS"); do
  run "1 process, 1 thread" "$LODE" "${args[@]}" --threads 1
  run "mpirun -np 1" mpirun $ROOT -np 1 "$LODE" "${args[@]}" --threads 1
  run "mpirun -np 2" mpirun $ROOT -np 2 "$LODE" "${args[@]}" --threads 1
  run "1 process, 2 threads" "$LODE" "${args[@]}" --threads 2
done
echo "every dataset byte-identical to the first"
