#!/usr/bin/env bash
# Coverage of the confidence intervals of `lode infer` (a benchmark, not a unit test).
#
#   scripts/coverage.sh (--exact MODEL | --model MODEL_DIR) [--sim-model galton] [--theta -0.7]
#                       [--reps 100] [--events 100] [--grid -1..-0.4:121] [--theta1 P]
#                       [--lode build/tools/lode] [--keep DIR]
#
# For repetitions r = 1..R: simulate N events at the true θ with `lode simulate SIM_MODEL
# --seed r`, run `lode infer --json` on them (with the model's exact likelihood, or with a
# trained ratio estimator), and count how often the 68.27% and the 95% sets contain the true
# θ. Prints each fraction with its binomial standard error sqrt(f(1 − f)/R) next to the
# nominal level (whose own binomial spread over R repetitions is shown as well).
# One-parameter models only (the sets are intervals). Needs python3 (standard library only).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }

exact="" model_dir="" sim_model="galton" theta="-0.7" reps=100 events=100 grid="-1..-0.4:121" theta1=""
lode="build/tools/lode" keep=""
while [ $# -gt 0 ]; do
  case "$1" in
    --exact) exact="$2"; shift 2 ;;
    --model) model_dir="$2"; shift 2 ;;
    --sim-model) sim_model="$2"; shift 2 ;;
    --theta) theta="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --events|-n) events="$2"; shift 2 ;;
    --grid) grid="$2"; shift 2 ;;
    --theta1) theta1="$2"; shift 2 ;;
    --lode) lode="$2"; shift 2 ;;
    --keep) keep="$2"; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "coverage.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
if [ -n "$exact" ] && [ -n "$model_dir" ] || [ -z "$exact$model_dir" ]; then
  echo "coverage.sh: give exactly one of --exact MODEL and --model MODEL_DIR" >&2; usage
fi
python=""
for p in python3 /usr/bin/python3; do command -v "$p" >/dev/null && python="$p" && break; done
[ -n "$python" ] || { echo "coverage.sh: python3 is needed (scripts/setup.sh installs it)" >&2; exit 1; }
[ -x "$lode" ] || { echo "coverage.sh: no lode binary at '$lode' (build it, or pass --lode PATH)" >&2; exit 1; }

if [ -n "$keep" ]; then
  work="$keep"; mkdir -p "$work"
else
  work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
fi
if [ -n "$exact" ]; then
  how=(--exact "$exact"); what="exact likelihood of $exact"
else
  how=(--model "$model_dir"); what="estimator $model_dir"
  [ -n "$theta1" ] && how+=(--theta1 "$theta1")
fi

for r in $(seq 1 "$reps"); do
  "$lode" simulate "$sim_model" --theta "$theta" -n "$events" --seed "$r" --out "$work/obs.npy" 2>"$work/err" &&
    "$lode" infer "${how[@]}" --observed "$work/obs.npy" --grid "$grid" --json >"$work/infer-$r.json" 2>"$work/err" ||
    { printf '\ncoverage.sh: repetition %d failed:\n' "$r" >&2; cat "$work/err" >&2; exit 1; }
  [ -t 2 ] && printf '\rcoverage.sh: %d/%d' "$r" "$reps" >&2
done
[ -t 2 ] && printf '\n' >&2

"$python" - "$work" "$reps" "$theta" "$events" "$sim_model" "$grid" "$what" "$keep" <<'PY'
import json, math, sys
work, reps, theta, events, sim, grid, what, keep = sys.argv[1:]
reps, theta = int(reps), float(theta)
inside = {"68": 0, "95": 0}
edge, mles = 0, []
with open(f"{work}/results.tsv", "w") as out:
    for r in range(1, reps + 1):
        j = json.load(open(f"{work}/infer-{r}.json"))
        row = [r, j["mle"][0]]
        for key in ("68", "95"):
            covered = any(lo <= theta <= hi for lo, hi in j["intervals"][key])
            inside[key] += covered
            row.append(int(covered))
        edge += bool(j["touches_edge"]["95"])
        mles.append(j["mle"][0])
        out.write("\t".join(map(str, row)) + "\n")
print(f"coverage of lode infer ({what}): {reps} repetitions (seeds 1..{reps}) of {events} {sim} events "
      f"at theta = {theta:g}, grid {grid}")
for key, name, nominal in (("68", "68.27%", 0.682689492), ("95", "95%", 0.95)):
    k = inside[key]
    f = k / reps
    print(f"  {name:7s} {k:3d} / {reps} = {f:.3f} +- {math.sqrt(f * (1 - f) / reps):.3f}   "
          f"(nominal {nominal:.4f}, binomial spread over {reps} repetitions +- {math.sqrt(nominal * (1 - nominal) / reps):.3f})")
if edge:
    print(f"  note: in {edge} repetitions the 95% set reached the grid edge (widen --grid)")
m = sum(mles) / len(mles)
sd = math.sqrt(sum((x - m) ** 2 for x in mles) / (len(mles) - 1)) if len(mles) > 1 else 0.0
print(f"  MLE: mean {m:.4f}, sd {sd:.4f} (per repetition in {work}/results.tsv)" if keep else
      f"  MLE: mean {m:.4f}, sd {sd:.4f}")
PY
