#!/bin/sh
# Is a lensing posterior calibrated? (issue 21; docs/lensing.md, "Calibration of the
# posteriors"). Two ways to a posterior of θ = (f_sub, β) on lensing_fix_32:
#   - NPE on images: lode train npe --image auto (the flow over θ conditioned on the residual
#     CNN's features) on N images with θ from the prior, its draws for single lenses, and
#     lode sbc on it (one lens per run);
#   - the ratio estimator of scripts/lensing-figures.sh (FIG/alices: ALICES on 10^5 images
#     against the fixed reference), lode sbc with --events 1, 5, 20 and 100 lenses per run
#     (MCMC on the summed log r̂, the model's prior).
# Every command's output goes to OUT/*.txt, the SBC reports to OUT/sbc-*.json and *.png.
#
#   scripts/lensing-npe.sh LODE OUT FIG [N]
#   scripts/lensing-npe.sh build/tools/lode /work/npe-lens /work/fig 100000
#
# Time on one core of the 2-core VM: mining 10^5 images ~10 min, NPE training 1–4 min per
# epoch (early stopping after 5 epochs without improvement, at most 30), each SBC 2–15 min.
set -eu
LODE=$1
OUT=$2
FIG=$3
N=${4:-100000}
MODEL=lensing_fix_32
mkdir -p "$OUT"
run() {  # run CMD... > OUT/NAME.txt, echoing the command; a failing SBC is a result, not an error
  name=$1; shift
  echo "+ $*" | tee "$OUT/$name.txt"
  "$@" >> "$OUT/$name.txt" 2>&1 || echo "  (exit $?)" | tee -a "$OUT/$name.txt"
}

[ -f "$OUT/data/meta.json" ] ||
  run mine "$LODE" mine $MODEL --for plain --theta prior -n "$N" --seed 31 --threads 1 --out "$OUT/data"
[ -f "$OUT/npe/estimator.json" ] ||
  run train "$LODE" train npe --data "$OUT/data" --out "$OUT/npe" --image auto --epochs 30 --patience 5 \
    --threads 1 --seed 1
for i in 0 1; do
  run "npe-lens-$i" "$LODE" posterior --model "$OUT/npe" --observed "$FIG/lens-$i.npy" -n 4000 --seed 1 \
    --out "$OUT/npe-lens-$i.npy"
  run "alices-lens-$i" "$LODE" posterior --model "$FIG/alices" --observed "$FIG/lens-$i.npy" -n 4000 --chains 4 \
    --seed 1 --out "$OUT/alices-lens-$i.npy"
done
run sbc-npe "$LODE" sbc --model "$OUT/npe" -n 300 --draws 100 --seed 7 --out "$OUT/sbc-npe.json" \
  --plot "$OUT/sbc-npe.png"
for n in 1 5 20 100; do
  run "sbc-alices-$n" "$LODE" sbc --model "$FIG/alices" -n 100 --draws 100 --events $n --seed 7 \
    --out "$OUT/sbc-alices-$n.json" --plot "$OUT/sbc-alices-$n.png"
done
# The coverage curves of all five SBC runs in one picture: OUT/lensing-sbc-coverage.png.
/usr/bin/python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
cols = []
for name, label in [("sbc-npe", "NPE, 1 lens"), ("sbc-alices-1", "ALICES, 1 lens"), ("sbc-alices-5", "ALICES, 5 lenses"),
                    ("sbc-alices-20", "ALICES, 20 lenses"), ("sbc-alices-100", "ALICES, 100 lenses")]:
    j = json.load(open(f"{out}/{name}.json"))
    cols.append((label, j["coverage"]["levels"], j["coverage"]["hpd"]))
with open(f"{out}/coverage.dat", "w") as f:
    for i, level in enumerate(cols[0][1]):
        f.write(" ".join([str(level)] + [str(c[2][i]) for c in cols]) + "\n")
with open(f"{out}/coverage.gp", "w") as f:
    f.write("set terminal pngcairo size 700,600\nset output '%s/lensing-sbc-coverage.png'\n" % out)
    f.write("set title 'lensing\\_fix\\_32: coverage of HPD regions (SBC over the prior)'\n")
    f.write("set xlabel 'credibility level'\nset ylabel 'fraction of runs whose region holds theta*'\n")
    f.write("set xrange [0:1]\nset yrange [0:1]\nset key top left\n")
    plots = ["x with lines dt 2 lc rgb 'black' title 'calibrated'"]
    for k, (label, _, _) in enumerate(cols):
        plots.append("'%s/coverage.dat' using 1:%d with linespoints title '%s'" % (out, k + 2, label))
    f.write("plot " + ", ".join(plots) + "\n")
PY
gnuplot "$OUT/coverage.gp"
