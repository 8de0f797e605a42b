#!/usr/bin/env bash
# The sample-efficiency study of the gold-mining paper on galton (BENCHMARKS.md):
# MSE of log r̂(x|θ0=-0.8, θ1=-0.6) weighted by p(x|θ1), against the exact likelihood, for
# estimators trained with lode's default settings on N mined events (θ0 ~ U[-1,-0.4],
# θ1 = -0.6), several seeds each.
#
#   scripts/efficiency-study.sh [OUT_DIR] (env: METHODS, SIZES, SEEDS, JOBS, LODE)
#
# Re-running it in the same OUT_DIR redoes only the trainings that did not finish.
# Writes OUT_DIR/results.csv (method,n,seed,mse), OUT_DIR/summary.md (mean ± standard error
# per method and N) and OUT_DIR/efficiency.png.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-study}
LODE=${LODE:-build/tools/lode}
METHODS=${METHODS:-"carl rolr cascal rascal alice alices"}
SIZES=${SIZES:-"200 500 1000 2000 5000 10000"}
SEEDS=${SEEDS:-"1 2 3 4 5"}
JOBS=${JOBS:-2}
PY=python3
$PY -c "import numpy" 2> /dev/null || PY=/usr/bin/python3
mkdir -p "$OUT/work"
W=$(cd "$OUT/work" && pwd)

# Every galton outcome x = 0..31 and the exact references.
$PY -c "import numpy as np; np.save('$W/x.npy', np.arange(32, dtype=float).reshape(-1, 1))"
"$LODE" evaluate --exact galton --x "$W/x.npy" --theta0 -0.8 --theta1 -0.6 --out "$W/exact_logr.npy" 2> /dev/null
"$LODE" evaluate --exact galton --x "$W/x.npy" --theta0 -0.6 --out "$W/exact_logp1.npy" 2> /dev/null

one() {  # one() METHOD N SEED: mine (cached per N and seed), train, evaluate, print the MSE
  local m=$1 n=$2 s=$3 d="$W/data-$2-$3" e="$W/est-$1-$2-$3"
  [ -s "$e.csv" ] && return 0  # done in an earlier (interrupted) run of the study
  "$LODE" train "$m" --data "$d" --out "$e" --seed "$s" --quiet 2> "$e.log" || { cat "$e.log" >&2; return 1; }
  "$LODE" evaluate --model "$e" --x "$W/x.npy" --theta0 -0.8 --out "$e/logr.npy" 2> /dev/null
  $PY - "$W" "$e/logr.npy" "$m" "$n" "$s" > "$e.csv.tmp" <<'PY'
import numpy as np, sys
w, est, m, n, s = sys.argv[1:]
r = np.load(w + "/exact_logr.npy")[:, 0]
p = np.exp(np.load(w + "/exact_logp1.npy")[:, 0])
e = np.load(est)[:, 0]
ok = p > 0
print(f"{m},{n},{s},{np.sum(p[ok] * (e[ok] - r[ok]) ** 2):.6g}")
PY
  mv "$e.csv.tmp" "$e.csv"
}
export -f one
export LODE PY W

# Mine first (one job per N and seed), then train in parallel.
for n in $SIZES; do for s in $SEEDS; do
  d="$W/data-$n-$s"
  [ -f "$d/meta.json" ] || "$LODE" mine galton --for ratio --theta0 uniform:-1..-0.4 --theta1 -0.6 -n "$n" \
    --seed "$s" --out "$d" > /dev/null 2>&1
done; done
start=$(date +%s)
for m in $METHODS; do for n in $SIZES; do for s in $SEEDS; do echo "$m $n $s"; done; done; done |
  xargs -P "$JOBS" -n 3 bash -c 'one "$@"' _
for m in $METHODS; do for n in $SIZES; do for s in $SEEDS; do cat "$W/est-$m-$n-$s.csv"; done; done; done \
  > "$OUT/results.csv.tmp"
mv "$OUT/results.csv.tmp" "$OUT/results.csv"
echo "trained $(wc -l < "$OUT/results.csv") estimators in $(( $(date +%s) - start )) s" >&2

$PY - "$OUT" <<'PY'
import csv, sys, collections, math
out = sys.argv[1]
rows = list(csv.reader(open(out + "/results.csv")))
by = collections.defaultdict(list)
for m, n, s, v in rows:
    by[(m, int(n))].append(float(v))
methods = list(dict.fromkeys(m for m, _ in by))
sizes = sorted({n for _, n in by})
with open(out + "/summary.md", "w") as f:
    f.write("| method | " + " | ".join(f"N = {n}" for n in sizes) + " |\n")
    f.write("|---|" + "---|" * len(sizes) + "\n")
    for m in methods:
        cells = []
        for n in sizes:
            v = by[(m, n)]
            mean = sum(v) / len(v)
            se = math.sqrt(sum((x - mean) ** 2 for x in v) / (len(v) - 1) / len(v)) if len(v) > 1 else 0
            cells.append(f"{mean:.2g} ± {se:.1g}")
        f.write(f"| {m.upper()} | " + " | ".join(cells) + " |\n")
with open(out + "/efficiency.dat", "w") as f:
    for m in methods:
        f.write(f'"{m.upper()}"\n')
        for n in sizes:
            v = by[(m, n)]
            f.write(f"{n} {sum(v) / len(v)}\n")
        f.write("\n\n")
print(open(out + "/summary.md").read())
PY
if command -v gnuplot > /dev/null; then
  gnuplot <<GP
set terminal pngcairo size 800,560
set output "$OUT/efficiency.png.tmp"
set logscale xy
set xlabel "training events N"
set ylabel "MSE of log r(x|-0.8,-0.6), weighted by p(x|-0.6)"
set title "galton: sample efficiency (lode defaults, mean over seeds)"
set key outside right
plot for [i=0:*] "$OUT/efficiency.dat" index i using 1:2 with linespoints title columnheader(1)
GP
  mv "$OUT/efficiency.png.tmp" "$OUT/efficiency.png"
fi
