#!/usr/bin/env python3
"""The small-sample lensing study of issue 21: does the gold pay when training images are few?

    scripts/lensing-study.py RESULTS --lode build/tools/lode --pymodule build/python \
        [--model lensing_fix_32] [--sizes 1000,3000,10000,30000] [--seeds 1,2,3] \
        [--methods carl,alices] [--alpha 1e-6] [--epochs 0] [--patience 10] [--test 2000] [--threads 2] \
        [--reference 0.05,-1.9 | marginal:1000]

For each seed s, a training pool of max(sizes) ratio rows is mined (`lode mine MODEL --for
ratio --theta0 prior --theta1 0.05,-1.9 --seed s`: even rows drawn at θ0 from the prior, odd
rows at the fiducial θ1, with the joint ratio and scores); each estimator is trained on the
first N rows (balanced: rows alternate) with the image CNN (`--image auto`, seed s). Two
test sets are simulated once: (x, θ) with θ from the prior (seed 1000) and 2000 images at the
fiducial θ (seed 1001). Per estimator:

  auc    ROC AUC of log r̂(x|θ, θ1) on (x, its θ) against (x, a shuffled θ) — how much of
         x's dependence on θ the estimator has learned (0.5: none). It compares scores of
         different images, so it also rewards the reference: log r̂ against the prior
         marginal is the optimal score for it, against a fixed θ1 it carries a per-image
         offset log p(x)/p(x|θ1);
  paired the fraction of test images with log r̂(x|its θ) > log r̂(x|the shuffled θ): the
         same comparison image by image, where any per-image offset cancels (the metric
         for comparing references);
  curve  −2 E[log r̂(x|(f_sub, −1.9), θ1)] over the images at the fiducial θ = θ1: the
         expected per-lens −2Δ log-likelihood ratio along β = −1.9 (0 at f_sub = 0.05).

With --reference marginal:K the pool is mined against the prior-marginal reference (`--theta1
marginal:K`: odd rows drawn from a mixture of K prior points, r_xz = p(x,z|θ0) / the mixture);
the estimators' output is then log r̂(x|θ) against that mixture, the AUC uses it, and the curve
is the same difference, log r̂(x|θ) − log r̂(x|θ_fiducial).

Everything finished is kept in RESULTS (pools, subsets, estimators, results.csv): run it
again to continue. Writes RESULTS/results.csv, RESULTS/summary.md (medians over seeds) and
RESULTS/curves.png (gnuplot). Keep RESULTS outside the repository.
"""
import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time

FIDUCIAL = (0.05, -1.9)
CURVE_FSUB = [0.001, 0.01, 0.02, 0.034, 0.051, 0.067, 0.084, 0.1, 0.134, 0.17, 0.2]
PAPER_FIX = {0.001: 11.17, 0.034: 0.65, 0.051: 0.0, 0.067: 1.39, 0.084: 4.12, 0.134: 13.08}
FIELDS = ["model", "method", "n", "seed", "alpha", "auc", "train_seconds", "best_epoch", "epochs"] + [
    f"q_{f:g}" for f in CURVE_FSUB] + ["reference", "paired"]


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(cmd, logfile):
    with open(logfile, "a") as f:
        f.write("$ " + " ".join(map(str, cmd)) + "\n")
        f.flush()
        status = subprocess.call([str(c) for c in cmd], stdout=f, stderr=subprocess.STDOUT)
    if status != 0:
        sys.exit(f"failed (status {status}): {' '.join(map(str, cmd))}; see {logfile}")


def auc(pos, neg):
    """P(pos > neg) + P(pos == neg)/2 by ranks (Mann-Whitney)."""
    import numpy as np
    s = np.concatenate([pos, neg])
    order = s.argsort(kind="mergesort")
    ranks = np.empty(len(s))
    ranks[order] = np.arange(1, len(s) + 1)
    # average ranks over ties
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        if j > i:
            ranks[order[i:j + 1]] = (i + j + 2) / 2
        i = j + 1
    r = ranks[:len(pos)].sum()
    return (r - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results")
    p.add_argument("--lode", required=True)
    p.add_argument("--pymodule", required=True, help="directory holding the lode Python package")
    p.add_argument("--model", default="lensing_fix_32")
    p.add_argument("--sizes", default="1000,3000,10000,30000")
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--methods", default="carl,alices")
    p.add_argument("--alpha", default="1e-6", help="alices' (and rascal's) score-term weight: lensing's joint "
                   "scores are ~10^3 per standardized parameter, so the default 1 would swamp the classifier")
    p.add_argument("--epochs", default="0", help="0: lode train's automatic epochs")
    p.add_argument("--patience", default="10", help="stop after this many epochs without a better validation loss "
                   "(the best epoch is kept either way; 0: never): the small sets overfit within ~10 epochs, and "
                   "alices' 4000 minimum steps would otherwise run ~700 epochs of 1000 images")
    p.add_argument("--test", type=int, default=2000)
    p.add_argument("--threads", type=int, default=2, help="mining threads (training uses one)")
    p.add_argument("--reference", default="0.05,-1.9", help="the pool's --theta1: the fiducial point (default) or "
                   "marginal:K, the prior-marginal reference")
    a = p.parse_args()
    sys.path.insert(0, a.pymodule)
    import numpy as np
    import lode

    R = os.path.abspath(a.results)
    os.makedirs(R, exist_ok=True)
    logfile = os.path.join(R, "commands.log")
    sizes = [int(s) for s in a.sizes.split(",")]
    seeds = [int(s) for s in a.seeds.split(",")]
    methods = a.methods.split(",")
    fid = ",".join(map(str, FIDUCIAL))
    marginal = a.reference.startswith("marginal:")

    # Test sets, once.
    test_dir = os.path.join(R, "test-prior")
    if not os.path.exists(os.path.join(test_dir, "meta.json")):
        shutil.rmtree(test_dir, ignore_errors=True)
        run([a.lode, "mine", a.model, "--for", "plain", "--theta", "prior", "-n", a.test, "--seed", 1000,
             "--threads", a.threads, "--out", test_dir], logfile)
    fid_file = os.path.join(R, "test-fiducial.npy")
    if not os.path.exists(fid_file):
        run([a.lode, "simulate", a.model, "--theta", fid, "-n", a.test, "--seed", 1001, "--out", fid_file], logfile)
    x_test = np.load(os.path.join(test_dir, "x.npy")).astype(np.float64)
    th_test = np.load(os.path.join(test_dir, "theta.npy"))
    shuffled = th_test[np.random.default_rng(7).permutation(len(th_test))]
    x_fid = np.load(fid_file).astype(np.float64)

    csv_path = os.path.join(R, "results.csv")
    done = set()
    if os.path.exists(csv_path):
        with open(csv_path) as f:
            for row in csv.DictReader(f):
                done.add((row["method"], int(row["n"]), int(row["seed"])))

    for seed in seeds:
        pool = os.path.join(R, f"pool-seed{seed}")
        if not os.path.exists(os.path.join(pool, "meta.json")):
            shutil.rmtree(pool, ignore_errors=True)
            log(f"mining the training pool of seed {seed}: {max(sizes)} rows")
            run([a.lode, "mine", a.model, "--for", "ratio", "--theta0", "prior", "--theta1", a.reference, "-n", max(sizes),
                 "--seed", seed, "--threads", a.threads, "--out", pool], logfile)
        for n in sizes:
            sub = os.path.join(R, "subsets", f"seed{seed}-n{n}")
            if not os.path.exists(os.path.join(sub, "t_xz1.npy")):
                os.makedirs(sub, exist_ok=True)
                for f in ["x", "theta0", "theta1", "y", "r_xz", "t_xz0", "t_xz1"]:
                    np.save(os.path.join(sub, f + ".npy"), np.load(os.path.join(pool, f + ".npy"), mmap_mode="r")[:n])
                if marginal:  # the pool's meta.json, cut to n rows: it tells lode train the reference
                    with open(os.path.join(pool, "meta.json")) as fh:
                        meta = json.load(fh)
                    meta["rows"] = n
                    for spec in meta["files"].values():
                        spec["shape"][0] = n
                    with open(os.path.join(sub, "meta.json"), "w") as fh:
                        json.dump(meta, fh)
            for method in methods:
                if (method, n, seed) in done:
                    continue
                out = os.path.join(R, "estimators", f"{method}-n{n}-seed{seed}")
                if not os.path.exists(os.path.join(out, "estimator.json")):
                    log(f"training {method} on {n} images, seed {seed}")
                    cmd = [a.lode, "train", method, "--data", sub] + ([] if marginal else ["--arrays", "--model", a.model]) + [
                        "--out", out, "--image", "auto", "--seed", seed, "--epochs", a.epochs, "--patience", a.patience]
                    if method in ("rascal", "alices", "cascal"):
                        cmd += ["--alpha", a.alpha]
                    run(cmd, os.path.join(R, f"train-{method}-n{n}-seed{seed}.log"))
                e = lode.Estimator.load(out)
                rep = e.reports[0]
                own, other = e.log_ratio_rows(x_test, th_test), e.log_ratio_rows(x_test, shuffled)
                row = {"model": a.model, "method": method, "n": n, "seed": seed,
                       "alpha": a.alpha if method in ("rascal", "alices", "cascal") else "",
                       "auc": f"{auc(own, other):.4f}", "paired": f"{np.mean(own > other) + 0.5 * np.mean(own == other):.4f}",
                       "train_seconds": f"{rep['seconds']:.1f}", "best_epoch": rep["best_epoch"],
                       "epochs": rep["epochs_run"], "reference": a.reference}
                # −2 E[log r̂(x|θ) − log r̂(x|θ_fid)] (the second term is 0 exactly when θ1 is θ_fid)
                at_fid = float(np.mean(e.log_ratio(x_fid, list(FIDUCIAL))))
                for f in CURVE_FSUB:
                    row[f"q_{f:g}"] = f"{-2 * (float(np.mean(e.log_ratio(x_fid, [f, FIDUCIAL[1]]))) - at_fid):.4f}"
                new = not os.path.exists(csv_path)
                with open(csv_path, "a", newline="") as fh:
                    w = csv.DictWriter(fh, fieldnames=FIELDS)
                    if new:
                        w.writeheader()
                    w.writerow(row)
                log(f"{method} n {n} seed {seed}: AUC {row['auc']}, q(0.001) {row['q_0.001']}, "
                    f"q(0.134) {row['q_0.134']}")
                done.add((method, n, seed))
    summarize(R, csv_path, methods, sizes)


def summarize(R, csv_path, methods, sizes):
    import numpy as np
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    lines = ["| method | N | seeds | AUC (median, min–max) | " + " | ".join(
        f"−2ΔlogL at f_sub {f:g}" for f in PAPER_FIX) + " |", "|" + "---|" * (4 + len(PAPER_FIX))]
    curves = {}
    for m in methods:
        for n in sizes:
            sel = [r for r in rows if r["method"] == m and int(r["n"]) == n]
            if not sel:
                continue
            au = np.array([float(r["auc"]) for r in sel])
            q = {f: np.median([float(r[f"q_{f:g}"]) for r in sel]) for f in CURVE_FSUB}
            curves[(m, n)] = q
            lines.append(f"| {m} | {n} | {len(sel)} | {np.median(au):.3f} ({au.min():.3f}–{au.max():.3f}) | " +
                         " | ".join(f"{q[f]:.2f}" for f in PAPER_FIX) + " |")
    lines.append("| paper (as run, 64×64, 10⁶ images, ResNet-18) | 10⁶ | | | " +
                 " | ".join(f"{v:.2f}" for v in PAPER_FIX.values()) + " |")
    with open(os.path.join(R, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    if shutil.which("gnuplot") and curves:
        dat = os.path.join(R, "curves.dat")
        with open(dat, "w") as f:
            for (m, n), q in curves.items():
                f.write(f"# {m} N={n}\n")
                for fs in CURVE_FSUB:
                    f.write(f"{fs} {q[fs]}\n")
                f.write("\n\n")
            f.write("# paper\n")
            for fs, v in PAPER_FIX.items():
                f.write(f"{fs} {v}\n")
        n_blocks = len(curves)
        # colour by N, dash and point type by method
        colours = ["#1f77b4", "#2ca02c", "#ff7f0e", "#d62728", "#9467bd", "#8c564b"]
        size_of = {n: k for k, n in enumerate(sizes)}
        method_of = {m: k for k, m in enumerate(methods)}
        plots = [f"'{dat}' index {i} with linespoints lc rgb '{colours[size_of[n] % len(colours)]}' "
                 f"dt {method_of[m] + 1} pt {method_of[m] + 4} title '{m} N={n}'" for i, (m, n) in enumerate(curves)]
        plots.append(f"'{dat}' index {n_blocks} with points pt 7 ps 1.5 lc rgb 'black' title 'paper (fix, 10^6)'")
        script = (f"set terminal pngcairo size 900,600; set output '{os.path.join(R, 'curves.png')}';"
                  "set xlabel 'f_sub (beta = -1.9)'; set ylabel 'expected -2 Delta log L per lens';"
                  "set key top center; set grid; plot " + ", ".join(plots))
        subprocess.call(["gnuplot", "-e", script])


if __name__ == "__main__":
    main()
