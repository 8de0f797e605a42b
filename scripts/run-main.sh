#!/usr/bin/env bash
# The main job: sets everything up (packages, build) and runs the whole pipeline on the
# default model (galton):
#   1. the gold of one event and the identities E[t] = 0, E[r] = 1 (lode demo);
#   2. mine a training set with ratio and score (θ0 ~ U[-1,-0.4], θ1 = -0.6);
#   3. train an estimator (RASCAL, lode's default settings);
#   4. simulate 100 observed events at a true θ that the estimator is never told;
#   5. infer θ: MLE, 68% and 95% confidence intervals (Wilks), the q(θ) plot; and the same
#      with the exact likelihood, the reference the learned one is judged against.
# Results go to OUT (default: main-job/): data/, model/, observed.npy, inference.json, q.png.
#   scripts/run-main.sh [OUT]       env: METHOD (default rascal), EVENTS (20000), TRUE_THETA (-0.7)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
LODE=build/tools/lode
OUT=${1:-main-job}
METHOD=${METHOD:-rascal}
EVENTS=${EVENTS:-20000}
TRUE_THETA=${TRUE_THETA:--0.7}
GRID=-1..-0.4:121
rm -rf "$OUT"
mkdir -p "$OUT"
step() { printf '\n== %s\n' "$*"; }

step "1. gold of galton: one event, E[t] = 0 and E[r] = 1"
"$LODE" demo -n 100000

step "2. mine $EVENTS events with ratio and score"
"$LODE" mine galton --for ratio --theta0 uniform:-1..-0.4 --theta1 -0.6 -n "$EVENTS" --seed 1 --out "$OUT/data"

step "3. train $METHOD"
"$LODE" train "$METHOD" --data "$OUT/data" --out "$OUT/model"

step "4. 100 observed events at the hidden true θ"
"$LODE" simulate galton --theta="$TRUE_THETA" -n 100 --seed 2026 --out "$OUT/observed.npy"

step "5. inference from the 100 events"
"$LODE" infer --model "$OUT/model" --observed "$OUT/observed.npy" --grid "$GRID" --plot "$OUT/q.png" \
  --out "$OUT/inference.json"
echo
echo "with the exact likelihood (the reference):"
"$LODE" infer --exact galton --observed "$OUT/observed.npy" --grid "$GRID" --out "$OUT/inference-exact.json"
echo
echo "true θ = $TRUE_THETA; plot: $OUT/q.png; results: $OUT/inference.json"
