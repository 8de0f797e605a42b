#!/usr/bin/python3
"""The Neyman-construction study of issue 17: coverage of Neyman and Wilks sets on galton.

    /usr/bin/python3 scripts/neyman-study.py RESULTS_DIR [--repetitions R] [--events N] [--toys K]
                                             [--grid SPEC] [--setups exact,rascal,bad,bad-calibrated]
                                             [--train-rows M] [--lode PATH] [--threads J]

R (default 100) experiments of N (default 100) galton events at theta = -0.7 (`lode simulate`, one file of R*N
events split in order). Setups: exact (galton's exact likelihood), rascal (a RASCAL with lode train's default
settings on M = 100,000 mined rows, theta0 ~ U(-1, -0.4), theta1 = -0.6), bad (RASCAL, 2 epochs on 500 rows),
bad-calibrated (bad with `lode calibrate`: 20,000 events per grid point). Per setup one belt of K toys per grid
point (`lode neyman --belt-out`, from the first experiment) reused for every experiment (`lode neyman --belt`):
the toys do not depend on the observed data. An experiment covers at a level when theta = -0.7 (a grid point) is
in the set. Prints a Markdown table: coverage of the 68.27% and 95% Neyman and Wilks sets with binomial standard
errors sqrt(p(1-p)/R), and the calibration's MSE of log r before/after on the bad RASCAL (`lode calibrate`'s
fresh events against the exact log r). What exists in RESULTS_DIR is reused (delete it to start over).
Use Debian's python3 (numpy).
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

try:
    import numpy as np
except ImportError as e:
    sys.exit(f"neyman-study.py: {e}: run it with /usr/bin/python3 (apt-get install python3-numpy)")

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
THETA = -0.7
LEVELS = ["68", "95"]
NOMINAL = {"68": 0.6827, "95": 0.95}


def run(cmd, log):
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
    r = subprocess.run(cmd, capture_output=True, text=True)
    with open(log, "a") as f:
        f.write(r.stderr[-2000:])
    if r.returncode != 0:
        sys.exit(f"neyman-study.py: failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--repetitions", type=int, default=100)
    ap.add_argument("--events", type=int, default=100)
    ap.add_argument("--toys", type=int, default=1000)
    ap.add_argument("--grid", default="-1..-0.4:31")
    ap.add_argument("--setups", default="exact,rascal,bad,bad-calibrated")
    ap.add_argument("--train-rows", type=int, default=100000)
    ap.add_argument("--threads", default="2")
    ap.add_argument("--lode", default=os.path.join(REPO, "build", "tools", "lode"))
    a = ap.parse_args()
    os.makedirs(a.results, exist_ok=True)
    R, N = a.repetitions, a.events
    lode = a.lode
    log = os.path.join(a.results, "commands.log")
    p = lambda *names: os.path.join(a.results, *names)
    t_start = time.time()

    # Observed experiments.
    allx = p("observed-all.npy")
    if not os.path.exists(allx):
        run([lode, "simulate", "galton", "--theta", str(THETA), "-n", str(R * N), "--seed", "17", "--out", allx], log)
    x = np.load(allx).reshape(-1)
    if x.size < R * N:
        sys.exit(f"{allx}: {x.size} events, need {R * N}")
    files = []
    for e in range(R):
        f = p(f"obs-{e:03d}.npy")
        if not os.path.exists(f):
            np.save(f, x[e * N:(e + 1) * N].reshape(N, 1).astype(np.float64))
        files.append(f)

    setups = a.setups.split(",")
    models = {}
    if any(s.startswith("rascal") for s in setups):
        data, model = p("data-rascal"), p("rascal")
        if not os.path.exists(os.path.join(data, "meta.json")):
            run([lode, "mine", "galton", "--for", "ratio", "--theta0", "uniform:-1..-0.4", "--theta1", "-0.6", "-n",
                 str(a.train_rows), "--seed", "4", "--out", data], log)
        if not os.path.exists(os.path.join(model, "estimator.json")):
            run([lode, "train", "rascal", "--data", data, "--out", model, "--seed", "3", "-q"], log)
        models["rascal"] = model
    if any(s.startswith("bad") for s in setups):
        data, model = p("data-bad"), p("bad")
        if not os.path.exists(os.path.join(data, "meta.json")):
            run([lode, "mine", "galton", "--for", "ratio", "--theta0", "uniform:-1..-0.4", "--theta1", "-0.6", "-n",
                 "500", "--seed", "5", "--out", data], log)
        if not os.path.exists(os.path.join(model, "estimator.json")):
            run([lode, "train", "rascal", "--data", data, "--out", model, "--epochs", "2", "--seed", "3", "-q"], log)
        models["bad"] = model
    calibration = None
    if "bad-calibrated" in setups or "bad" in setups:
        calibration = p("bad-calibration.json")
        summary = p("bad-calibration-summary.json")
        if not os.path.exists(summary):
            out = run([lode, "calibrate", "--model", models["bad"], "--grid", a.grid, "-n", "20000", "--seed", "6",
                       "--check-events", "5000", "--out", calibration, "--json"], log)
            with open(summary, "w") as f:
                f.write(out)
        with open(summary) as f:
            effect = json.load(f)["effect"]

    rows = []
    for s in setups:
        src = {"exact": ["--exact", "galton"], "rascal": ["--model", models.get("rascal", "")],
               "bad": ["--model", models.get("bad", "")],
               "bad-calibrated": ["--model", models.get("bad", ""), "--calibration", calibration or ""]}[s]
        threads = ["-j", a.threads]
        belt = p(f"belt-{s}.json")
        t0 = time.time()
        if not os.path.exists(belt):
            run([lode, "neyman", *src, "--observed", files[0], "--grid", a.grid, "--toys", str(a.toys), "--seed", "1",
                 *threads, "--belt-out", belt, "--out", p(f"neyman-{s}-000.json")], log)
        t_belt = time.time() - t0
        cover = {("neyman", l): 0 for l in LEVELS}
        cover.update({("wilks", l): 0 for l in LEVELS})
        for e, f in enumerate(files):
            out = p(f"neyman-{s}-{e:03d}.json")
            if not os.path.exists(out) or e == 0:
                run([lode, "neyman", *src, "--observed", f, "--grid", a.grid, "--belt", belt, *threads, "--out", out],
                    log)
            with open(out) as fh:
                j = json.load(fh)
            for l in LEVELS:
                cover[("neyman", l)] += any(abs(pt[0] - THETA) < 1e-9 for pt in j["neyman"]["sets"][l])
                cover[("wilks", l)] += any(abs(pt[0] - THETA) < 1e-9 for pt in j["sets"][l])
        rows.append((s, cover, t_belt))
        print(f"{s}: done ({time.time() - t0:.0f} s, belt {t_belt:.0f} s)", file=sys.stderr)

    label = {"exact": "exact likelihood", "rascal": "RASCAL (default settings)",
             "bad": "RASCAL, 2 epochs on 500 rows", "bad-calibrated": "the same, histogram-calibrated"}
    cell = lambda k: f"{k / R:.2f} ± {math.sqrt(max(k / R * (1 - k / R), 1e-12) / R):.2f}"
    print(f"\nGalton, {R} experiments of {N} events at theta = {THETA}; grid {a.grid}; {a.toys} toys per grid point.\n")
    print("| L(theta) from | Neyman 68.27% | Neyman 95% | Wilks 68.27% | Wilks 95% |")
    print("|---|---|---|---|---|")
    for s, c, _ in rows:
        print(f"| {label[s]} | {cell(c[('neyman', '68')])} | {cell(c[('neyman', '95')])} | "
              f"{cell(c[('wilks', '68')])} | {cell(c[('wilks', '95')])} |")
    if calibration:
        print(f"\nCalibration of the bad RASCAL (lode calibrate, 20,000 events per grid point and at theta1): MSE of "
              f"log r against the exact log r on {effect['events']} fresh events: {effect['mse_before']:.4g} before, "
              f"{effect['mse_after']:.4g} after.")
    print(f"\n(total {time.time() - t_start:.0f} s)")


if __name__ == "__main__":
    main()
