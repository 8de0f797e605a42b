#!/usr/bin/env bash
# lode train against a lean PyTorch loop (tests/bench/lean_torch_ratio.py) on the same rows.
#
#   tests/bench/trainer-vs-torch.sh [BUILD_DIR] [RUNS] [EPOCHS]     (defaults: build 3 5)
#
# Mines 100 000 galton rows for a ratio (θ0 ~ U(−1, −0.4), θ1 = −0.6, seed 1), then
# alternates RUNS times: `lode train rascal` (fused step), `lode train rascal` with
# LODE_TRAINER=libtorch (LibTorch autograd), and the Python loop with lode's network
# (log r̂ = f(x,θ0) − f(x,θ1)) and with MadMiner's single-parameterized one (log r̂ = f(x,θ0)).
# All: 2×100 tanh, batch 128, Adam, 75 000 training rows, one thread, samples/s over the
# optimizer steps. Prints each run and the median ratios. Needs python3-torch
# (scripts/setup.sh --bench). Pin it (taskset -c 1) on a quiet machine; on a shared one the
# ratios within a run are what counts.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD="${1:-build}"
RUNS="${2:-3}"
EPOCHS="${3:-5}"
LODE="$BUILD/tools/lode"
PY=/usr/bin/python3
[ -x "$LODE" ] || { echo "trainer-vs-torch: no $LODE (build the lode target first)" >&2; exit 1; }
$PY -c 'import torch, numpy' 2>/dev/null ||
  { echo "trainer-vs-torch: $PY cannot import torch and numpy: run scripts/setup.sh --bench" >&2; exit 1; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"$LODE" mine galton --for ratio --theta0 uniform:-1..-0.4 --theta1 -0.6 -n 100000 --seed 1 --out "$WORK/data" >/dev/null 2>&1

rate() { grep -o '[0-9]* samples/s' | grep -o '^[0-9]*'; }
declare -a FAST TORCHPATH PYLODE PYMM
for i in $(seq "$RUNS"); do
  FAST+=("$("$LODE" train rascal --data "$WORK/data" --out "$WORK/m" --epochs "$EPOCHS" -q 2>&1 | rate)")
  PYLODE+=("$($PY tests/bench/lean_torch_ratio.py --data "$WORK/data" --epochs "$EPOCHS" --model lode 2>/dev/null | rate)")
  TORCHPATH+=("$(LODE_TRAINER=libtorch "$LODE" train rascal --data "$WORK/data" --out "$WORK/m" --epochs "$EPOCHS" -q 2>&1 | rate)")
  PYMM+=("$($PY tests/bench/lean_torch_ratio.py --data "$WORK/data" --epochs "$EPOCHS" --model madminer 2>/dev/null | rate)")
  printf 'run %d: lode train %s, lode train (LibTorch path) %s, PyTorch (lode net) %s, PyTorch (MadMiner net) %s samples/s\n' \
    "$i" "${FAST[-1]}" "${TORCHPATH[-1]}" "${PYLODE[-1]}" "${PYMM[-1]}"
done
# Per-run ratios of lode train to each, and their medians.
$PY - "${FAST[*]}" "${TORCHPATH[*]}" "${PYLODE[*]}" "${PYMM[*]}" <<'EOF'
import statistics, sys
fast, lt, pl, pm = ([float(v) for v in a.split()] for a in sys.argv[1:5])
for name, other in [("its LibTorch path", lt), ("PyTorch, lode's network", pl), ("PyTorch, MadMiner's network", pm)]:
    r = [f / o for f, o in zip(fast, other)]
    print(f"lode train / {name}: " + ", ".join(f"{v:.2f}" for v in r) + f"  (median {statistics.median(r):.2f})")
EOF
