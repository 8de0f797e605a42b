#!/usr/bin/env bash
# The second example: neural posterior estimation (NPE) on two_moons, end to end.
# Sets everything up (packages, build), then:
#   1. simulate 10,000 (θ, x) pairs with θ from the prior (no gold: two_moons' NPE needs none);
#   2. train NPE (a neural spline flow for p(θ|x), the sbi package's defaults; docs/density.md);
#   3. one observed x at a true θ the estimator is never told;
#   4. 10,000 posterior draws from the NPE (direct sampling, rejected outside the prior);
#   5. 10,000 draws of the exact posterior (MCMC on the model's exact likelihood: the reference);
#   6. the corner plot of both (corner.png), and the C2ST of the two samples when
#      scikit-learn is installed (0.5: indistinguishable; scripts/c2st.py).
# Results go to OUT (default: two-moons/).
#   scripts/run-two-moons.sh [OUT]     env: SIMULATIONS (10000), TRUE_THETA (0.2,-0.1), THREADS (1)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
LODE=build/tools/lode
OUT=${1:-two-moons}
SIMULATIONS=${SIMULATIONS:-10000}
TRUE_THETA=${TRUE_THETA:-0.2,-0.1}
THREADS=${THREADS:-1}
rm -rf "$OUT"
mkdir -p "$OUT"
step() { printf '\n== %s\n' "$*"; }
t0=$(date +%s)

step "1. simulate $SIMULATIONS pairs (θ from the prior)"
"$LODE" mine two_moons --for plain --theta prior -n "$SIMULATIONS" --seed 1 --out "$OUT/data"

step "2. train NPE (neural spline flow)"
"$LODE" train npe --data "$OUT/data" --out "$OUT/npe" --threads "$THREADS"

step "3. one observed x at the hidden true θ"
"$LODE" simulate two_moons --theta="$TRUE_THETA" -n 1 --seed 2026 --out "$OUT/observed.npy"

step "4. 10,000 draws of the NPE posterior"
"$LODE" posterior --model "$OUT/npe" --observed "$OUT/observed.npy" -n 10000 --seed 3 --out "$OUT/npe.npy"

step "5. 10,000 draws of the exact posterior (the reference)"
"$LODE" posterior --exact two_moons --observed "$OUT/observed.npy" -n 10000 --seed 4 --out "$OUT/exact.npy"

step "6. corner plot"
"$LODE" corner "$OUT/npe.npy" --reference "$OUT/exact.npy" --model two_moons --truth "$TRUE_THETA" \
  --out "$OUT/corner.png"
if /usr/bin/python3 -c 'import sklearn' 2>/dev/null; then
  printf 'C2ST (NPE against the exact posterior; 0.5 is perfect): '
  OMP_NUM_THREADS=1 /usr/bin/python3 scripts/c2st.py "$OUT/exact.npy" "$OUT/npe.npy"
fi
echo
echo "true θ = $TRUE_THETA; $(($(date +%s) - t0)) s after the build; plot: $OUT/corner.png"
