#!/usr/bin/env bash
# Data-parallel training throughput (issue 18, BENCHMARKS.md "Data-parallel training").
#   tests/bench/dp-training.sh [LODE] [ROUNDS]
# On 100 000 galton ratio rows (RASCAL, 2x100 tanh) and 20 000 slcp rows (NPE, the sbi
# defaults) trains with one process and with two (LODE_RANK/LODE_WORLD_SIZE, a file
# rendezvous, LibTorch's Gloo), alternating, ROUNDS times, for two batch sizes, one thread per
# process; prints lode train's samples/s (rows per second of the training steps) and the
# command's wall time.
set -euo pipefail
LODE=${1:-build/tools/lode}
ROUNDS=${2:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$LODE" mine galton --for ratio --theta0 uniform:-1..-0.4 --theta1 -0.6 -n 100000 --seed 1 --out "$work/galton" 2> /dev/null
"$LODE" mine slcp --for plain --theta prior -n 20000 --seed 1 --out "$work/slcp" 2> /dev/null
one() {  # label, lode train arguments...
  local label=$1
  shift
  local t0 t1
  t0=$(date +%s.%N)
  OMP_NUM_THREADS=1 "$LODE" "$@" --out "$work/m1" --threads 1 -q 2> "$work/e1"
  t1=$(date +%s.%N)
  printf '%-40s 1 process : %12s   wall %6.2f s\n' "$label" "$(grep -o '[0-9]* samples/s' "$work/e1" | head -1)" \
    "$(awk "BEGIN{print $t1 - $t0}")"
}
two() {
  local label=$1
  shift
  local t0 t1 store="$work/rdv-$RANDOM"
  t0=$(date +%s.%N)
  OMP_NUM_THREADS=1 LODE_RANK=1 LODE_WORLD_SIZE=2 LODE_RENDEZVOUS=file:$store "$LODE" "$@" --out "$work/m2" \
    --threads 1 -q 2> "$work/e2b" &
  OMP_NUM_THREADS=1 LODE_RANK=0 LODE_WORLD_SIZE=2 LODE_RENDEZVOUS=file:$store "$LODE" "$@" --out "$work/m2" \
    --threads 1 -q 2> "$work/e2"
  wait
  t1=$(date +%s.%N)
  printf '%-40s 2 processes: %12s   wall %6.2f s\n' "$label" "$(grep -o '[0-9]* samples/s' "$work/e2" | head -1)" \
    "$(awk "BEGIN{print $t1 - $t0}")"
}
echo "$(nproc) processors, $(uname -n); lode $($LODE --version 2>/dev/null | head -1)"
for r in $(seq "$ROUNDS"); do
  for b in 128 1024; do
    one "rascal galton 1e5, batch $b, 3 epochs" train rascal --data "$work/galton" --epochs 3 --batch "$b"
    two "rascal galton 1e5, batch $b, 3 epochs" train rascal --data "$work/galton" --epochs 3 --batch "$b"
  done
  for b in 200 2000; do
    one "npe slcp 2e4, batch $b, 3 epochs" train npe --data "$work/slcp" --epochs 3 --batch "$b"
    two "npe slcp 2e4, batch $b, 3 epochs" train npe --data "$work/slcp" --epochs 3 --batch "$b"
  done
done
