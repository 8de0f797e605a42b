#!/usr/bin/python3
"""The SBI-benchmark study of issues 15 and 17: C2ST of lode's NPE, NLE, SCANDAL and rejection-ABC posteriors against references.

    /usr/bin/python3 scripts/sbi-benchmark.py RESULTS_DIR [--tasks T,..] [--budgets N,..] [--methods M,..]
                                              [--obs I,..|A-B] [--lode PATH] [--dry-run] [--summary]

For every task x budget x method x observation selected (defaults: the full study, 7 tasks x 3 budgets x
{npe, nle, scandal where the model has gold} x 10 observations) it writes one directory per cell under
RESULTS_DIR (keep it outside the repository) and skips what is already finished, so the study can be run
in pieces across sessions. Per task, once: 10 observations (theta*, x_obs) drawn from the prior
(`lode mine TASK --for plain --theta prior -n 10`, fixed seed) and a reference posterior for each
(analytic N(x/2, 0.05 I) for gaussian_linear, else a long `lode posterior --exact` run, R-hat and ESS
recorded). Per task x budget, once: the training data (`lode mine --for density` where the model has gold,
`--for plain` otherwise). Per task x budget x method, once: `lode train` with the density family's
defaults (the sbi package's; docs/density.md); NPE and NLE are amortized, so one network serves all
observations. Per cell: 10,000 posterior draws (`lode posterior --model`), C2ST against the reference
(scripts/c2st.py, the sbibm metric) and a line appended to RESULTS_DIR/results.csv.

Method abc (rejection ABC, the baseline; issue 17): no training. At budget n, `lode abc` draws n simulations
from the prior and accepts the 100 closest to the observation (quantile 100/n; sbibm's REJ-ABC default
num_top_samples = 100), then the driver draws the 10,000 samples the C2ST compares from a Gaussian kernel density
estimate of those 100 (sbibm resamples a KDE of its accepted samples to 10,000 as well): each draw is an accepted
theta chosen uniformly plus N(0, h^2 S), S the accepted samples' covariance and h = 100^(-1/(d+4)) (Scott's
rule), numpy seed 2000 + observation. The KDE is not truncated to the prior's support. The simulations of budget
n use seed DATA_SEED[n] (the same stream as the learned methods' training data).

At the end (or alone with --summary) it prints the mean C2ST over observations per task x method x budget
beside the sbibm published means, as a Markdown table. Every command run is appended to
RESULTS_DIR/commands.log with the lode version (git describe) of the run.

Use Debian's python3 (numpy; the C2ST needs python3-sklearn). All lode commands get --threads 1 and the
driver lowers its priority (--nice, default 10): one core per driver.
"""
import argparse
import concurrent.futures
import csv
import datetime
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time

try:
    import numpy as np
except ImportError as e:
    sys.exit(f"sbi-benchmark.py: {e} for {sys.executable}: run it with Debian's /usr/bin/python3 "
             f"(apt-get install python3-numpy python3-sklearn; scripts/setup.sh)")

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

TASKS = ["gaussian_linear", "two_moons", "slcp", "gaussian_mixture", "bernoulli_glm", "sir", "lotka_volterra_ode"]
# Models without gold (lode models, column "gold"): no SCANDAL, training data mined --for plain.
NO_GOLD = {"two_moons"}
BUDGETS = [1000, 10000, 100000]
METHODS = ["npe", "nle", "scandal", "abc"]
# Rejection ABC: accepted draws per cell (sbibm's num_top_samples), resampled by a KDE to N_DRAWS (docstring).
ABC_TOP = 100
N_OBS = 10

# sbibm's published mean C2ST (Lueckmann et al. 2021), as quoted in issue 15: (NPE, NLE) at 10^3, 10^4, 10^5.
# lotka_volterra: "0.99-1.0 for both"; 0.99 is used as the bar.
SBIBM = {
    "gaussian_linear": ((.69, .55, .51), (.65, .55, .51)),
    "two_moons": ((.73, .61, .54), (.77, .71, .67)),
    "slcp": ((.98, .90, .83), (.95, .77, .70)),
    "bernoulli_glm": ((.86, .68, .56), (.74, .60, .54)),
    "gaussian_mixture": ((.72, .62, .55), (.74, .72, .69)),
    "sir": ((.82, .68, .58), (.76, .75, .73)),
    "lotka_volterra_ode": ((.99, .99, .99), (.99, .99, .99)),
}

# Fixed seeds: the observations, the training data of each budget (independent streams), the draws.
OBS_SEED = 20261206
DATA_SEED = {1000: 13, 10000: 14, 100000: 15}
N_DRAWS = 10000
# lode posterior --exact options for the references: 16 chains (all modes found, each chain moving between them
# through the jumps), thinned by 50 where the likelihood is cheap (bulk ESS close to the 10,000 draws), by 10 for
# sir and lotka_volterra_ode (an ODE solve per evaluation: 4-10 min per reference at thin 10).
EXPENSIVE_LIKELIHOOD = {"sir", "lotka_volterra_ode"}


# sbibm's NLE samples with sbi's vectorized slice sampler: 100 chains, warm-up 25, thinned by 10, started by SIR from
# 10,000 prior draws (lode: 100 per chain, the same 10,000).
SBIBM_MCMC = "--chains 100 --warmup 25 --thin 10"


def default_reference_args(task):
    return f"--chains 16 --warmup 2000 --thin {10 if task in EXPENSIVE_LIKELIHOOD else 50}"

CSV_FIELDS = ["task", "method", "budget", "obs", "c2st", "seconds", "rhat_max", "notes", "train_seconds",
              "ess_min", "lode_version"]


class Failed(Exception):
    pass


class Study:
    def __init__(self, args):
        self.a = args
        self.root = os.path.abspath(args.results)
        self.lode = os.path.abspath(args.lode)
        self.version = lode_version(self.lode)
        self.env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.lock = threading.Lock()
        self.pool = (concurrent.futures.ThreadPoolExecutor(max_workers=args.c2st_workers)
                     if args.c2st_workers > 0 else None)
        self.pending = []

    # -- running commands ---------------------------------------------------------------------------------------
    def log(self, msg):
        with self.lock:
            print(f"[{datetime.datetime.utcnow():%H:%M:%S}] {msg}", flush=True)

    def run(self, cmd, log_path, ok=(0,)):
        """Runs cmd (a list), its stdout+stderr appended to log_path; returns (exit status, seconds, output)."""
        line = " ".join(shlex.quote(c) for c in cmd)
        if self.a.dry_run:
            print("  " + line)
            return 0, 0.0, ""
        with self.lock, open(os.path.join(self.root, "commands.log"), "a") as f:
            f.write(f"{datetime.datetime.utcnow():%Y-%m-%dT%H:%M:%SZ}  [{self.version}]  {line}\n")
        t0 = time.monotonic()
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self.env, text=True)
        seconds = time.monotonic() - t0
        with open(log_path, "a") as f:
            f.write(f"$ {line}\n{p.stdout}(exit {p.returncode}, {seconds:.1f} s)\n")
        if p.returncode not in ok:
            tail = "\n".join(p.stdout.strip().splitlines()[-3:])
            raise Failed(f"exit {p.returncode}: {line}\n{tail}")
        return p.returncode, seconds, p.stdout

    def c2st(self, reference, samples, log_path):
        _, seconds, out = self.run([sys.executable, os.path.join(HERE, "c2st.py"), reference, samples], log_path)
        return (float(out.strip().splitlines()[-1]) if not self.a.dry_run else float("nan")), seconds

    # -- stages (each finished stage leaves done.json; a directory without it is redone from scratch) -----------
    @staticmethod
    def done(d):
        p = os.path.join(d, "done.json")
        if os.path.exists(p):
            with open(p) as f:
                return json.load(f)
        return None

    def fresh(self, d):
        if self.a.dry_run:
            return
        if os.path.isdir(d):
            shutil.rmtree(d)
        os.makedirs(d)

    def finish(self, d, info):
        if self.a.dry_run:
            return info
        info = dict(info, lode_version=self.version, finished=f"{datetime.datetime.utcnow():%Y-%m-%dT%H:%M:%SZ}")
        tmp = os.path.join(d, "done.json.tmp")
        with open(tmp, "w") as f:
            json.dump(info, f, indent=1)
        os.replace(tmp, os.path.join(d, "done.json"))
        return info

    def failed_before(self, d):
        p = os.path.join(d, "FAILED")
        if os.path.exists(p) and not self.a.retry_failed:
            with open(p) as f:
                return f.read().strip()
        return None

    def mark_failed(self, d, msg):
        if not self.a.dry_run:
            with open(os.path.join(d, "FAILED"), "w") as f:
                f.write(msg + "\n")

    def observations(self, task):
        d = os.path.join(self.root, task, "observations")
        if self.done(d):
            return d
        self.log(f"{task}: drawing {N_OBS} observations from the prior")
        self.fresh(d)
        self.run([self.lode, "mine", task, "--for", "plain", "--theta", "prior", "-n", str(N_OBS), "--seed",
                  str(OBS_SEED), "--threads", "1", "--out", os.path.join(d, "mined")], os.path.join(d, "log.txt"))
        if not self.a.dry_run:
            x = np.load(os.path.join(d, "mined", "x.npy"))
            theta = np.load(os.path.join(d, "mined", "theta.npy"))
            if x.shape[0] != N_OBS:
                raise Failed(f"{task}: lode mine gave {x.shape[0]} observations, not {N_OBS} (skipped events?)")
            for k in range(N_OBS):
                np.save(os.path.join(d, f"x{k}.npy"), x[k:k + 1])
                np.save(os.path.join(d, f"theta{k}.npy"), theta[k:k + 1])
        self.finish(d, {"task": task, "seed": OBS_SEED, "n": N_OBS})
        return d

    def reference(self, task, k):
        d = os.path.join(self.root, task, "reference", f"obs{k}")
        info = self.done(d)
        if info:
            return d, info
        msg = self.failed_before(d)
        if msg:
            raise Failed(f"reference failed before (--retry-failed to redo): {msg}")
        obs = os.path.join(self.observations(task), f"x{k}.npy")
        self.fresh(d)
        out = os.path.join(d, "samples.npy")
        if task == "gaussian_linear":
            # x ~ N(theta, 0.1 I), prior N(0, 0.1 I) (models/gaussian_linear.cpp): posterior N(x/2, 0.05 I).
            self.log(f"{task} obs {k}: analytic reference")
            if not self.a.dry_run:
                x = np.load(obs)[0]
                rng = np.random.default_rng(1000 + k)
                np.save(out, x / 2 + np.sqrt(0.05) * rng.standard_normal((N_DRAWS, x.size)))
            return d, self.finish(d, {"kind": "analytic N(x/2, 0.05 I)", "seed": 1000 + k})
        self.log(f"{task} obs {k}: reference (lode posterior --exact)")
        cmd = [self.lode, "posterior", "--exact", task, "--observed", obs, "-n", str(N_DRAWS), "--out", out,
               "--seed", str(1 + k), "--threads", "1"] + shlex.split(
                   self.a.reference_args if self.a.reference_args is not None else default_reference_args(task))
        try:
            status, seconds, text = self.run(cmd, os.path.join(d, "log.txt"), ok=(0, 1))
        except Failed as e:
            self.mark_failed(d, str(e))
            raise
        rhat, ess = parse_diagnostics(text)
        notes = "" if status == 0 else "not mixed (R-hat > 1.1)"
        if status != 0 and not os.path.exists(out):
            self.mark_failed(d, text.strip().splitlines()[-1] if text.strip() else f"exit {status}")
            raise Failed(f"{task} obs {k}: reference failed: {text.strip().splitlines()[-1:]}")
        if rhat is not None and rhat > self.a.reference_rhat:
            notes = (notes + "; " if notes else "") + f"R-hat {rhat:.3f} > {self.a.reference_rhat}"
        info = {"kind": "lode posterior --exact", "command": " ".join(map(shlex.quote, cmd)), "seconds": seconds,
                "rhat_max": rhat, "ess_min": ess, "notes": notes}
        self.log(f"{task} obs {k}: reference in {seconds:.0f} s, R-hat max {fmt(rhat, 3)}, ESS min {fmt(ess, 0)}"
                 + (f" ({notes})" if notes else ""))
        return d, self.finish(d, info)

    def data(self, task, budget):
        d = os.path.join(self.root, task, "data", str(budget))
        if self.done(d):
            return d
        self.log(f"{task}: mining {budget} simulations")
        self.fresh(d)
        purpose = "plain" if task in NO_GOLD else "density"
        _, seconds, _ = self.run([self.lode, "mine", task, "--for", purpose, "--theta", "prior", "-n", str(budget),
                                  "--seed", str(DATA_SEED[budget]), "--threads", "1", "--out", os.path.join(d, "data")],
                                 os.path.join(d, "log.txt"))
        self.finish(d, {"seconds": seconds, "for": purpose, "seed": DATA_SEED[budget]})
        return d

    def train(self, task, budget, method):
        d = os.path.join(self.root, task, "train", f"{method}-{budget}")
        info = self.done(d)
        if info:
            return d, info
        msg = self.failed_before(d)
        if msg:
            raise Failed(f"training failed before (--retry-failed to redo): {msg}")
        data = os.path.join(self.data(task, budget), "data")
        self.log(f"{task}: training {method} on {budget} simulations")
        self.fresh(d)
        cmd = [self.lode, "train", method, "--data", data, "--out", os.path.join(d, "model"), "--threads", "1",
               "--seed", "1", "-q"] + shlex.split(self.a.train_args)
        if method == "scandal" and task in self.a.scandal_alpha:
            cmd += ["--alpha", self.a.scandal_alpha[task]]
        try:
            _, seconds, _ = self.run(cmd, os.path.join(d, "log.txt"))
        except Failed as e:
            self.mark_failed(d, str(e))
            raise
        self.log(f"{task}: {method} on {budget} trained in {seconds:.0f} s")
        return d, self.finish(d, {"command": " ".join(map(shlex.quote, cmd)), "seconds": seconds})

    def cell(self, task, budget, method, k):
        d = os.path.join(self.root, task, "cells", f"{method}-{budget}-obs{k}")
        if self.done(d):
            return
        msg = self.failed_before(d)
        if msg:
            self.log(f"{task} {method} {budget} obs {k}: failed before, skipped (--retry-failed): {msg.splitlines()[0]}")
            return
        ref_dir, ref = self.reference(task, k)
        obs = os.path.join(self.root, task, "observations", f"x{k}.npy")
        if method == "abc":
            tr = {"seconds": 0.0}
        else:
            train_dir, tr = self.train(task, budget, method)
        self.fresh(d)
        out = os.path.join(d, "samples.npy")
        if method == "abc":
            accepted = os.path.join(d, "accepted.npy")
            cmd = [self.lode, "abc", task, "--observed", obs, "-n", str(budget), "--quantile",
                   repr(ABC_TOP / budget), "--seed", str(DATA_SEED[budget]), "--out", accepted, "--json"]
        else:
            cmd = [self.lode, "posterior", "--model", os.path.join(train_dir, "model"), "--observed", obs, "-n",
                   str(N_DRAWS), "--out", out, "--seed", str(1 + k)]
        if method not in ("npe", "abc"):
            cmd += ["--threads", "1"] + shlex.split(self.a.mcmc_args)
        log = os.path.join(d, "log.txt")

        def failed(e):
            self.mark_failed(d, str(e))
            self.append_csv({"task": task, "method": method, "budget": budget, "obs": k, "c2st": "",
                             "seconds": "", "rhat_max": "", "notes": "FAILED: " + str(e).splitlines()[0][:200],
                             "train_seconds": f"{tr['seconds']:.1f}", "ess_min": "", "lode_version": self.version})
            self.log(f"{task} {method} {budget} obs {k}: FAILED: {e}")

        try:
            status, seconds, text = self.run(cmd, log, ok=(0,) if method == "abc" else (0, 1))
            if status != 0 and (method == "npe" or not os.path.exists(out)):
                raise Failed(f"exit {status}: {text.strip().splitlines()[-1:] if text.strip() else ''}")
        except Failed as e:
            failed(e)
            return
        if method == "abc" and not self.a.dry_run:
            kde_resample(np.load(accepted), N_DRAWS, 2000 + k, out)
        rhat, ess = parse_diagnostics(text) if method not in ("npe", "abc") else (None, None)
        notes = [] if status == 0 else ["not mixed (R-hat > 1.1)"]
        if method == "npe":
            acc = parse_acceptance(text)
            if acc is not None and acc < 0.99:
                notes.append(f"acceptance {acc:.3g}")
        if ref.get("notes"):
            notes.append("reference: " + ref["notes"])

        def complete():  # the C2ST and the records; in a worker thread with --c2st-workers
            try:
                value, c2st_seconds = self.c2st(os.path.join(ref_dir, "samples.npy"), out, log)
            except Failed as e:
                failed(e)
                return
            row = {"task": task, "method": method, "budget": budget, "obs": k, "c2st": f"{value:.4f}",
                   "seconds": f"{seconds:.1f}", "rhat_max": fmt(rhat, 4), "notes": "; ".join(notes),
                   "train_seconds": f"{tr['seconds']:.1f}", "ess_min": fmt(ess, 0), "lode_version": self.version}
            self.finish(d, dict(row, command=" ".join(map(shlex.quote, cmd)), c2st_seconds=c2st_seconds))
            self.append_csv(row)
            self.log(f"{task} {method} {budget} obs {k}: C2ST {value:.4f} (draws {seconds:.0f} s, C2ST "
                     f"{c2st_seconds:.0f} s" + (f", R-hat max {rhat:.3f}" if rhat is not None else "")
                     + (f"; {'; '.join(notes)}" if notes else "") + ")")

        if self.pool:
            self.pending.append(self.pool.submit(complete))
        else:
            complete()

    def append_csv(self, row):
        if self.a.dry_run:
            return
        with self.lock:
            self._append_csv(row)

    def _append_csv(self, row):
        path = os.path.join(self.root, "results.csv")
        new = not os.path.exists(path)
        with open(path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            if new:
                w.writeheader()
            w.writerow(row)

    def study(self):
        with open(os.devnull if self.a.dry_run else os.path.join(self.root, "runs.log"), "a") as f:
            f.write(f"{datetime.datetime.utcnow():%Y-%m-%dT%H:%M:%SZ}  lode {self.version} ({self.lode})  "
                    f"{' '.join(map(shlex.quote, sys.argv))}\n")
        for task in self.a.tasks:
            try:
                self.observations(task)
                for k in self.a.obs:  # references first: they are per observation, shared by every cell
                    try:
                        self.reference(task, k)
                    except Failed as e:
                        self.log(f"{task} obs {k}: reference failed: {e}")
                if self.a.references_only:
                    continue
                for budget in self.a.budgets:
                    for method in self.a.methods:
                        if method == "scandal" and task in NO_GOLD:
                            continue
                        for k in self.a.obs:
                            try:
                                self.cell(task, budget, method, k)
                            except Failed as e:
                                self.log(f"{task} {method} {budget} obs {k}: skipped: {e}")
            except Failed as e:
                self.log(f"{task}: FAILED: {e}")
        if self.pool:
            self.log(f"waiting for {sum(not f.done() for f in self.pending)} C2ST runs")
            for f in self.pending:
                f.result()


def kde_resample(accepted, n, seed, out):
    """n draws from a Gaussian KDE of the accepted samples (k, d): a uniformly chosen sample plus N(0, h^2 S), S their
    covariance (ddof 1), h = k^(-1/(d+4)) (Scott's rule); saved to out (float64)."""
    k, d = accepted.shape
    if k < 2:
        raise Failed(f"rejection ABC accepted {k} sample(s): a KDE needs at least 2")
    h = k ** (-1.0 / (d + 4))
    cov = np.atleast_2d(np.cov(accepted, rowvar=False)) * h * h
    rng = np.random.default_rng(seed)
    draws = accepted[rng.integers(0, k, n)] + rng.multivariate_normal(np.zeros(d), cov, n, method="svd")
    tmp = out + ".tmp.npy"
    np.save(tmp, draws.astype(np.float64))
    os.replace(tmp, out)


def parse_diagnostics(text):
    """Max R-hat and min bulk ESS from lode posterior's parameter table (header: parameter mean sd R-hat ESS)."""
    rhats, esss, cols = [], [], None
    for line in text.splitlines():
        words = line.split()
        if "R-hat" in words and "ESS" in words and words and words[0] == "parameter":
            cols = (words.index("R-hat"), words.index("ESS"))
            continue
        if cols and len(words) > max(cols):
            try:
                rhats.append(float(words[cols[0]]))
                esss.append(float(words[cols[1]]))
            except ValueError:
                cols = None if not words[0].startswith("lode") else cols
    return (max(rhats) if rhats else None), (min(esss) if esss else None)


def parse_acceptance(text):
    key = "acceptance rate "
    i = text.rfind(key)
    if i < 0:
        return None
    try:
        return float(text[i + len(key):].split(")")[0])
    except ValueError:
        return None


def fmt(v, digits):
    return "" if v is None else f"{v:.{digits}f}"


def lode_version(lode):
    """'lode --version', git describe of the checkout the executable sits in (REPO when it is not in one) and the
    sha256 prefix of the executable and lode's libraries beside it (../lib/liblode*: the estimators live there; the
    checkout may have moved on since the build)."""
    try:
        v = subprocess.run([lode, "--version"], capture_output=True, text=True).stdout.strip().replace("lode ", "")
    except OSError:
        v = "?"
    d = os.path.dirname(lode)
    where = d if subprocess.run(["git", "-C", d, "rev-parse"], capture_output=True).returncode == 0 else REPO
    try:
        g = subprocess.run(["git", "-C", where, "describe", "--always", "--dirty", "--tags"], capture_output=True,
                           text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        g = "unknown"
    try:
        sha = hashlib.sha256()
        lib = os.path.join(d, os.pardir, "lib")
        libs = sorted(os.path.join(lib, n) for n in os.listdir(lib) if n.startswith("liblode")) \
            if os.path.isdir(lib) else []
        for path in [lode] + [p for p in libs if not os.path.islink(p)]:
            with open(path, "rb") as f:
                sha.update(f.read())
        h = sha.hexdigest()[:12]
    except OSError:
        h = "?"
    return f"{v} {g} sha256:{h}"


def summary(root):
    """Markdown: mean C2ST over the finished observations per task x method x budget, beside sbibm's means."""
    cells = {}
    for task in TASKS:
        base = os.path.join(root, task, "cells")
        if not os.path.isdir(base):
            continue
        for name in sorted(os.listdir(base)):
            info = Study.done(os.path.join(base, name))
            if info and info.get("c2st"):
                key = (task, info["method"], int(info["budget"]))
                cells.setdefault(key, []).append(float(info["c2st"]))
    lines = ["| task | method | " + " | ".join(f"{b:.0e}".replace("+0", "") for b in BUDGETS) + " |",
             "|---|---|" + "---|" * len(BUDGETS)]
    for task in TASKS:
        for method in METHODS:
            if not any((task, method, b) in cells for b in BUDGETS):
                continue
            row = []
            for i, b in enumerate(BUDGETS):
                npe, nle = SBIBM[task][0][i], SBIBM[task][1][i]
                bar = nle if method == "scandal" else min(npe, nle)  # abc: the learned methods' bar
                v = cells.get((task, method, b))
                if not v:
                    row.append(f"– (sbibm {fmt_sbibm(task, method, i)})")
                    continue
                mark = "" if np.mean(v) <= bar else " ✗"
                sd = f" ± {np.std(v, ddof=1):.2f}" if len(v) > 1 else ""
                row.append(f"**{np.mean(v):.2f}**{sd} (n={len(v)}){mark} · sbibm {fmt_sbibm(task, method, i)}")
            lines.append(f"| {task} | {method} | " + " | ".join(row) + " |")
    lines += ["", "Mean ± s.d. of C2ST over the observations done (n); sbibm: its published mean for the same "
              "method (NPE / NLE; SCANDAL is compared with NLE). ✗: above the bar (the better of sbibm's NPE and NLE; "
              "for SCANDAL, sbibm's NLE).", "",
              "| task | " + " | ".join(f"{b:.0e}".replace("+0", "") for b in BUDGETS) + " |",
              "|---|" + "---|" * len(BUDGETS)]
    for task in TASKS:
        row = []
        for i, b in enumerate(BUDGETS):
            means = {m: np.mean(cells[(task, m, b)]) for m in METHODS if (task, m, b) in cells and m != "abc"}
            abc = np.mean(cells[(task, "abc", b)]) if (task, "abc", b) in cells else None
            bar = min(SBIBM[task][0][i], SBIBM[task][1][i])
            if not means:
                row.append(f"– (bar {bar:.2f})")
                continue
            best = min(means, key=means.get)
            beaten = "" if abc is None else (f" · abc {abc:.2f}" + ("" if max(means.values()) < abc else
                                                                  " (not beaten by all ✗)"))
            row.append(f"{best} **{means[best]:.2f}**{'' if means[best] <= bar else ' ✗'} (bar {bar:.2f}){beaten}")
        if any(not r.startswith("–") for r in row):
            lines.append(f"| {task} | " + " | ".join(row) + " |")
    lines += ["", "lode's best learned method (lowest mean C2ST over the observations done) against the issue's bar: "
              "the better of sbibm's NPE and NLE means; abc: rejection ABC's mean C2ST, which every learned method run "
              "must beat (✗ when one does not)."]
    return "\n".join(lines)


def fmt_sbibm(task, method, i):
    npe, nle = SBIBM[task][0][i], SBIBM[task][1][i]
    if method == "abc":
        return f"NPE {npe:.2f} / NLE {nle:.2f}"
    return f"{npe:.2f}" if method == "npe" else f"{nle:.2f}"


def parse_list(text, allowed, what, conv=str):
    out = []
    for w in text.split(","):
        w = w.strip()
        if not w:
            continue
        v = conv(w)
        if allowed is not None and v not in allowed:
            sys.exit(f"sbi-benchmark.py: {what} '{w}' is not one of {', '.join(map(str, allowed))}")
        out.append(v)
    return out


def parse_obs(text):
    out = []
    for w in text.split(","):
        if "-" in w:
            a, b = w.split("-")
            out += list(range(int(a), int(b) + 1))
        elif w.strip():
            out.append(int(w))
    bad = [k for k in out if not 0 <= k < N_OBS]
    if bad:
        sys.exit(f"sbi-benchmark.py: --obs {bad[0]}: observations are numbered 0..{N_OBS - 1}")
    return out


def main():
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="Each list option also reads an environment variable (SBI_TASKS, SBI_BUDGETS, "
                                       "SBI_METHODS, SBI_OBS); options win.")
    p.add_argument("results", help="results directory (outside the repository); created if missing")
    p.add_argument("--tasks", default=env("SBI_TASKS", ",".join(TASKS)), help="comma-separated (default: all 7)")
    p.add_argument("--budgets", default=env("SBI_BUDGETS", ",".join(map(str, BUDGETS))),
                   help="simulations, comma-separated (default: 1000,10000,100000)")
    p.add_argument("--methods", default=env("SBI_METHODS", ",".join(m for m in METHODS if m != "abc")),
                   help="npe,nle,scandal,abc (default: npe,nle,scandal; scandal only where the model has gold; abc: "
                        "rejection ABC, the baseline, asked for by name: the issue wants it on gaussian_linear and "
                        "two_moons)")
    p.add_argument("--obs", default=env("SBI_OBS", f"0-{N_OBS - 1}"), help="observation indices, e.g. 0-2 or 0,4")
    p.add_argument("--lode", default=env("LODE", os.path.join(REPO, "build", "tools", "lode")),
                   help="the lode executable (default: $LODE or build/tools/lode of this checkout)")
    p.add_argument("--reference-args", default=None,
                   help="extra lode posterior --exact options (default: '--chains 16 --warmup 2000 --thin 50', "
                        "--thin 10 for sir and lotka_volterra_ode)")
    p.add_argument("--reference-rhat", type=float, default=1.01, help="R-hat above which a reference is noted")
    p.add_argument("--mcmc-args", default=SBIBM_MCMC,
                   help=f"extra lode posterior options for nle and scandal (default: '{SBIBM_MCMC}', the settings "
                        "sbibm ran sbi's NLE with)")
    p.add_argument("--train-args", default="", help="extra lode train options (default: none, the documented defaults)")
    p.add_argument("--scandal-alpha", default="", help="TASK=A,... --alpha for scandal per task (default: lode's)")
    p.add_argument("--references-only", action="store_true", help="only the observations and their references")
    p.add_argument("--retry-failed", action="store_true", help="redo stages that failed before (default: skip them)")
    p.add_argument("--c2st-workers", type=int, default=0,
                   help="run the C2ST classifiers in N background processes while lode goes on (default 0: "
                        "inline; each is one more busy core)")
    p.add_argument("--nice", type=int, default=10, help="lower the priority by this much (default 10)")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    p.add_argument("--summary", action="store_true", help="only print the summary table of what is finished")
    a = p.parse_args()

    a.tasks = parse_list(a.tasks, TASKS, "task")
    a.budgets = parse_list(a.budgets, BUDGETS, "budget", int)
    a.methods = parse_list(a.methods, METHODS, "method")
    a.obs = parse_obs(a.obs)
    a.scandal_alpha = dict(w.split("=", 1) for w in a.scandal_alpha.split(",") if "=" in w)
    root = os.path.abspath(a.results)
    if a.summary:
        print(summary(root))
        return
    if os.path.commonpath([root, REPO]) == REPO:
        sys.exit(f"sbi-benchmark.py: '{root}' is inside the repository; put the results elsewhere (e.g. /work/sbi-study)")
    if not os.access(a.lode, os.X_OK):
        sys.exit(f"sbi-benchmark.py: no lode executable at '{a.lode}': build it (cmake --build build --target lode) "
                 f"or pass --lode PATH")
    os.makedirs(root, exist_ok=True)
    lock = open(os.path.join(root, ".lock"), "w")  # held until exit
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(f"sbi-benchmark.py: another driver is running on '{root}' (it holds {root}/.lock)")
    if a.nice:
        os.nice(a.nice)
    s = Study(a)
    s.log(f"lode {s.version}; results in {root}")
    s.study()
    print()
    print(summary(root))


if __name__ == "__main__":
    main()
