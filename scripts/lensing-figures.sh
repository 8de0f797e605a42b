#!/bin/sh
# The lensing paper's inference figures made with lode (issue 21; docs/lensing.md,
# "The paper's figures"): an estimator trained on N images of lensing_fix_32 against the
# fixed reference (0.05, -1.9), then
#   - the expected per-lens map with the 95% contours for 5, 20 and 100 lenses
#     (lode infer --expected 5,20,100 on test images at the fiducial θ),
#   - the likelihood maps of single lenses (lode infer on one image),
#   - the posterior of 100 observed lenses (lode posterior, slice sampler, the model's prior;
#     lode corner),
# into OUT/*.png, with every command's output in OUT/*.txt.
#
#   scripts/lensing-figures.sh LODE OUT [N] [METHOD] [ALPHA]
#   scripts/lensing-figures.sh build/tools/lode /work/fig 100000 alices 1e-6
#
# Time on one core of the 2-core VM: mining 10^5 images ~6 min on 2 threads, training ~30 s
# per epoch, the rest a few minutes.
set -eu
LODE=$1
OUT=$2
N=${3:-100000}
METHOD=${4:-alices}
ALPHA=${5:-1e-6}
MODEL=lensing_fix_32
GRID=0.001..0.2:40,-2.5..-1.5:41
mkdir -p "$OUT"
case $LODE in /*) ;; */*) LODE=$(pwd)/$LODE ;; esac
cd "$OUT"  # relative names from here on: the plots' titles name the estimator "alices", not a path
OUT=.
run() {  # run CMD... > OUT/NAME.txt, echoing the command
  name=$1; shift
  echo "+ $*" | tee "$OUT/$name.txt"
  "$@" >> "$OUT/$name.txt" 2>&1 || { tail -20 "$OUT/$name.txt"; exit 1; }
}

[ -f "$OUT/train/meta.json" ] ||
  run mine "$LODE" mine $MODEL --for ratio --theta0 prior --theta1 0.05,-1.9 -n "$N" --seed 11 --threads 2 \
    --out "$OUT/train"
ALPHA_ARG=""
[ "$METHOD" = carl ] || ALPHA_ARG="--alpha $ALPHA"
[ -f "$OUT/$METHOD/estimator.json" ] ||
  run train "$LODE" train "$METHOD" --data "$OUT/train" --out "$OUT/$METHOD" --image auto $ALPHA_ARG --patience 5 \
    --epochs 40 --seed 1
[ -f "$OUT/test.npy" ] ||
  run simulate-test "$LODE" simulate $MODEL --theta 0.05,-1.9 -n 2000 --seed 12 --out "$OUT/test.npy"
[ -f "$OUT/observed.npy" ] ||
  run simulate-observed "$LODE" simulate $MODEL --theta 0.05,-1.9 -n 100 --seed 13 --out "$OUT/observed.npy"

# The expected contours for 5, 20 and 100 lenses from the 2000 test images.
run expected "$LODE" infer --model "$OUT/$METHOD" --observed "$OUT/test.npy" --grid "$GRID" \
  --expected 5,20,100 --plot "$OUT/lensing-expected.png" --out "$OUT/expected.json"
# The per-lens expected curve along beta = -1.9 (the grid's row 24; the paper's fix row),
# -2 [L - L(0.05-ish)] from the 5-lens result divided by 5.
/usr/bin/python3 - "$OUT/expected.json" > "$OUT/slice.txt" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))[0]
n, grid, L = r["expected_events"], r["grid"], r["log_likelihood"]
row = [(t[0], l / n) for t, l in zip(grid, L) if abs(t[1] + 1.9) < 1e-9]
ref = min(row, key=lambda p: abs(p[0] - 0.0508))[1]
print("f_sub  expected -2 dlogL per lens (beta = -1.9, 0 at the grid point nearest 0.0508)")
for f, l in row:
    print(f"{f:.4f} {-2 * (l - ref):.3f}")
PY
# Single lenses, and the 100 observed lenses.
for i in 0 1; do
  "$LODE" image "$OUT/observed.npy" --model $MODEL --rows $i --out "$OUT/lens-$i-image.png" > /dev/null
  /usr/bin/python3 -c "import numpy as n,sys; a=n.load(sys.argv[1]); n.save(sys.argv[2], a[$i:$i+1])" \
    "$OUT/observed.npy" "$OUT/lens-$i.npy"
  run "lens-$i" "$LODE" infer --model "$OUT/$METHOD" --observed "$OUT/lens-$i.npy" --grid "$GRID" \
    --plot "$OUT/lensing-lens-$i.png"
done
run infer-100 "$LODE" infer --model "$OUT/$METHOD" --observed "$OUT/observed.npy" --grid "$GRID" \
  --plot "$OUT/lensing-100-lenses.png"
run posterior "$LODE" posterior --model "$OUT/$METHOD" --observed "$OUT/observed.npy" -n 4000 --chains 4 \
  --seed 1 --out "$OUT/posterior.npy"
run corner "$LODE" corner "$OUT/posterior.npy" --model $MODEL --truth 0.05,-1.9 --out "$OUT/lensing-posterior.png"
# Where the truth lies in the posterior: its squared Mahalanobis distance d2 from the draws'
# mean and covariance, and P(chi2 with 2 d.o.f. > d2) = exp(-d2/2) (a Gaussian posterior).
/usr/bin/python3 - "$OUT/posterior.npy" > "$OUT/posterior-truth.txt" <<'PY'
import math, sys
import numpy as np
p = np.load(sys.argv[1]); m = p.mean(0); C = np.cov(p.T); d = np.array([0.05, -1.9]) - m
d2 = float(d @ np.linalg.solve(C, d))
print(f"mean {m}, sd {np.sqrt(np.diag(C))}, correlation {C[0, 1] / math.sqrt(C[0, 0] * C[1, 1]):.3f}")
print(f"truth (0.05, -1.9): d2 = {d2:.2f}, P(chi2_2 > d2) = {math.exp(-d2 / 2):.3g}")
PY
cat "$OUT/posterior-truth.txt"
echo "figures in $OUT"
