#!/usr/bin/env bash
# Mines the same datasets with two lode binaries and compares them byte for byte:
# ratio, local and density mining on three models (galton, weinberg, gaussian_mixture), with
# points, priors, uniform boxes and grids, several threads and small shards.
#   scripts/compare-datasets.sh OLD_LODE NEW_LODE [WORK_DIR]
# Prints one line per job and exits 1 when any file differs.
set -euo pipefail
old=$1 new=$2 work=${3:-$(mktemp -d)}
jobs=(
  "galton --for ratio --theta0 -0.8 --theta1 prior -n 20000 --seed 3"
  "galton --for local --theta=-0.7 -n 5000 --shard-size 1000 --threads 2"
  "galton --for density --theta grid:-1..-0.4:7 -n 3000 --shard-size 500"
  "weinberg --for ratio --theta0 0.2312 --theta1 uniform:0.2..0.26 -n 10000 --threads 2 --shard-size 999"
  "weinberg --for local --theta 0.22 -n 4000"
  "weinberg --for density --theta prior -n 4000 --shard-size 300 --threads 2"
  "gaussian_mixture --for ratio --theta0 0.5,-0.25 --theta1 prior -n 6000 --shard-size 1000 --threads 2"
  "gaussian_mixture --for local --theta 0.5,-0.25 -n 3000"
  "gaussian_mixture --for density --theta grid:-2..2:3,-1..1:4 -n 2400 --shard-size 250"
)
status=0
for k in "${!jobs[@]}"; do
  read -r -a args <<< "${jobs[$k]}"
  "$old" mine "${args[@]}" --out "$work/old$k" 2> /dev/null
  "$new" mine "${args[@]}" --out "$work/new$k" 2> /dev/null
  if diff -r "$work/old$k" "$work/new$k" > /dev/null; then
    echo "identical: lode mine ${jobs[$k]}  ($(ls "$work/new$k" | tr '\n' ' '))"
  else
    echo "DIFFERENT: lode mine ${jobs[$k]}"
    status=1
  fi
done
exit $status
